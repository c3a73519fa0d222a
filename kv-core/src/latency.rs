//! Latency histograms (HDR, microseconds) and their summaries. Percentiles
//! are always computed from merged histograms, never averaged.

use std::time::Duration;

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

/// Latency over the last whole window, from a cumulative histogram fed
/// at any rate: the difference between the newest feed and the one at
/// least `window` earlier. A live display of cumulative percentiles stays
/// flat after the first seconds and hides a stall; this shows it.
#[derive(Debug, Clone)]
pub struct LatencyWindow {
    window: Duration,
    base: LatencyHistogram,
    base_at: Duration,
    last: Option<LatencySummary>,
}

impl LatencyWindow {
    /// `at` times below are on any clock that starts at or before zero.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            base: LatencyHistogram::default(),
            base_at: Duration::ZERO,
            last: None,
        }
    }

    /// Feeds the cumulative histogram as of `at`; returns the latency of
    /// the ops recorded in the last whole window (`None` before the first
    /// window has passed; `count` 0 when none completed in it).
    pub fn update(
        &mut self,
        cumulative: &LatencyHistogram,
        at: Duration,
    ) -> Option<LatencySummary> {
        if at.saturating_sub(self.base_at) >= self.window {
            let mut delta = cumulative.clone();
            // A cumulative histogram only grows, so this cannot underflow;
            // if a caller breaks that, report nothing rather than garbage.
            self.last = delta
                .0
                .subtract(&self.base.0)
                .ok()
                .map(|()| delta.summary());
            self.base = cumulative.clone();
            self.base_at = at;
        }
        self.last
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

    #[test]
    fn window_reports_only_the_last_whole_window() {
        let mut w = LatencyWindow::new(Duration::from_secs(1));
        let mut cum = LatencyHistogram::default();
        cum.record_n(100, 1000);
        assert_eq!(w.update(&cum, Duration::from_millis(500)), None);
        let first = w.update(&cum, Duration::from_millis(1000)).unwrap();
        assert_eq!((first.count, first.p99_us), (1000, 100));
        // A slow second: the window shows it, the cumulative view hides it.
        cum.record_n(50_000, 100);
        assert_eq!(w.update(&cum, Duration::from_millis(1500)), Some(first));
        let slow = w.update(&cum, Duration::from_millis(2000)).unwrap();
        assert_eq!(slow.count, 100);
        assert!(slow.p50_us >= 49_000, "{slow:?}");
        assert!(cum.summary().p50_us < 200);
        // Nothing completed: an empty window, not the old figures.
        let idle = w.update(&cum, Duration::from_millis(3000)).unwrap();
        assert_eq!(idle.count, 0);
    }
}
