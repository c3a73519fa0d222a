//! Latency histograms (HDR, microseconds) and their summaries. Percentiles
//! are always computed from merged histograms, never averaged.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency tracked: one minute, in microseconds.
const MAX_US: u64 = 60_000_000;

/// A latency histogram in microseconds with 3 significant digits.
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid"))
    }
}

impl LatencyHistogram {
    /// Records `count` samples of `us` microseconds (clamped into range).
    #[inline]
    pub fn record_n(&mut self, us: u64, count: u64) {
        // Saturating: values past the bound are clamped, never dropped.
        self.0.saturating_record_n(us.clamp(1, MAX_US), count);
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The histogram in HDR V2 form, hex-encoded (for JSON files).
    pub fn to_hex(&self) -> String {
        let mut buf = Vec::new();
        // Serialising into a Vec cannot fail for a valid histogram.
        use hdrhistogram::serialization::Serializer as _;
        let _ = hdrhistogram::serialization::V2Serializer::new().serialize(&self.0, &mut buf);
        buf.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads what [`LatencyHistogram::to_hex`] wrote.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if !hex.len().is_multiple_of(2) {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        let h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut bytes?.as_slice())
            .ok()?;
        let mut out = Self::default();
        out.0.add(&h).ok()?;
        Some(out)
    }

    pub fn summary(&self) -> LatencySummary {
        let h = &self.0;
        LatencySummary {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {} us, p90 {} us, p99 {} us, p99.9 {} us, max {} us ({} samples)",
            self.p50_us, self.p90_us, self.p99_us, self.p999_us, self.max_us, self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_percentiles() {
        let mut a = LatencyHistogram::default();
        let mut b = LatencyHistogram::default();
        a.record_n(100, 99);
        b.record_n(10_000, 1);
        a.merge(&b);
        let back = LatencyHistogram::from_hex(&a.to_hex()).unwrap();
        assert_eq!(back.summary(), a.summary());
        assert!(LatencyHistogram::from_hex("zz").is_none());
        let s = a.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_us, 100);
        assert!(s.max_us >= 10_000 && s.max_us < 10_100);
    }
}
