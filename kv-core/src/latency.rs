//! Latency histograms (HDR, microseconds) and their summaries. Percentiles
//! are always computed from merged histograms, never averaged.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
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

/// Per-interval latency histograms written in HdrHistogram's interval log
/// format (the `HistogramLogWriter` text format: a header, then one line
/// `start,length,max,base64 of a compressed V2 histogram` per interval),
/// so HdrHistogram's own log tools read it. Values are microseconds:
/// pass `-outputValueUnitRatio 1000` to the Java `HistogramLogProcessor`
/// for milliseconds. Intervals are fed cumulative histograms; each line
/// holds the difference since the previous feed.
pub struct IntervalLog<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
    prev: LatencyHistogram,
    prev_at: Duration,
}

impl IntervalLog<std::io::BufWriter<std::fs::File>> {
    /// Creates (truncates) `path`; `start` is wall time at offset zero.
    pub fn create(path: &Path, start: SystemTime, comment: &str) -> std::io::Result<Self> {
        let f = std::fs::File::create(path)?;
        Self::new(std::io::BufWriter::new(f), start, comment)
    }
}

impl<W: Write> IntervalLog<W> {
    pub fn new(mut out: W, start: SystemTime, comment: &str) -> std::io::Result<Self> {
        let mut serializer = V2DeflateSerializer::new();
        // Both StartTime and BaseTime: line timestamps are then offsets
        // from the start for every reader, with no guessing.
        IntervalLogWriterBuilder::new()
            .add_comment(comment)
            .add_comment("values in microseconds")
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut out, &mut serializer)?;
        out.write_all(
            b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
        )?;
        out.flush()?;
        Ok(Self {
            out,
            serializer,
            prev: LatencyHistogram::default(),
            prev_at: Duration::ZERO,
        })
    }

    /// Writes the interval from the previous feed to `at` (an offset from
    /// the start): what `cumulative` gained in it. Flushed, so a reader
    /// (or a run that dies) sees every whole interval.
    pub fn write_cumulative(
        &mut self,
        cumulative: &LatencyHistogram,
        at: Duration,
    ) -> std::io::Result<()> {
        let mut delta = cumulative.clone();
        delta
            .0
            .subtract(&self.prev.0)
            .map_err(|e| std::io::Error::other(format!("latency histogram went back: {e:?}")))?;
        let start = self.prev_at;
        let length = at.saturating_sub(start);
        {
            let mut w = IntervalLogWriterBuilder::new()
                .begin_log_with(&mut self.out, &mut self.serializer)?;
            w.write_histogram(&delta.0, start, length, None)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        self.out.flush()?;
        self.prev = cumulative.clone();
        self.prev_at = at;
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// An interval log that cannot be read, and why.
#[derive(Debug, thiserror::Error)]
#[error("interval log: {0}")]
pub struct IntervalLogError(String);

/// One interval of an interval log, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyInterval {
    /// Offset of the interval's start from the log's start (seconds).
    pub start_s: f64,
    pub length_s: f64,
    pub latency: LatencySummary,
}

/// Reads an interval log (ours or any `HistogramLogWriter`'s) into
/// per-interval summaries, in file order.
pub fn read_interval_log(text: &[u8]) -> Result<Vec<LatencyInterval>, IntervalLogError> {
    use base64::Engine as _;
    let bad = IntervalLogError;
    let mut out = Vec::new();
    let mut base: Option<Duration> = None;
    let mut start: Option<Duration> = None;
    for e in IntervalLogIterator::new(text) {
        match e.map_err(|e| bad(format!("{e:?}")))? {
            LogEntry::StartTime(t) => start = Some(t),
            LogEntry::BaseTime(t) => base = Some(t),
            LogEntry::Interval(h) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(h.encoded_histogram())
                    .map_err(|e| bad(format!("bad base64: {e}")))?;
                let hist: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut bytes.as_slice())
                    .map_err(|e| bad(format!("bad histogram: {e:?}")))?;
                // Offsets from the start: timestamps are deltas when a
                // BaseTime is given, else seconds since the epoch.
                let abs = base.unwrap_or(Duration::ZERO) + h.start_timestamp();
                let zero = start.or(base).unwrap_or(Duration::ZERO);
                let mut lh = LatencyHistogram::default();
                lh.0.add(&hist)
                    .map_err(|e| bad(format!("histogram out of range: {e:?}")))?;
                out.push(LatencyInterval {
                    start_s: abs.saturating_sub(zero).as_secs_f64(),
                    length_s: h.duration().as_secs_f64(),
                    latency: lh.summary(),
                });
            }
        }
    }
    Ok(out)
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
    fn interval_log_round_trips_per_interval() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut log = IntervalLog::new(Vec::new(), start, "kvlab test").unwrap();
        let mut cum = LatencyHistogram::default();
        cum.record_n(100, 1000);
        log.write_cumulative(&cum, Duration::from_secs(1)).unwrap();
        cum.record_n(500_000, 10);
        log.write_cumulative(&cum, Duration::from_secs(2)).unwrap();
        log.write_cumulative(&cum, Duration::from_millis(2500))
            .unwrap();
        let text = log.into_inner();
        let s = String::from_utf8(text.clone()).unwrap();
        assert!(s.starts_with("#kvlab test\n"), "{s}");
        assert!(s.contains("#[StartTime: 1700000000.000"), "{s}");
        assert!(
            s.contains("\n0.000,1.000,100.000,HISTFAA"),
            "compressed V2 lines: {s}"
        );
        let v = read_interval_log(&text).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!((v[0].start_s, v[0].length_s), (0.0, 1.0));
        assert_eq!((v[0].latency.count, v[0].latency.p99_us), (1000, 100));
        // The second interval holds only what arrived in it.
        assert_eq!(v[1].latency.count, 10);
        assert!(v[1].latency.p50_us >= 499_000, "{:?}", v[1]);
        assert_eq!(
            (v[2].start_s, v[2].length_s, v[2].latency.count),
            (2.0, 0.5, 0)
        );
        assert!(read_interval_log(b"0.0,1.0,2.0,notbase64!\n").is_err());
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
