//! Cost per op: what a function's samples mean in CPU time per completed
//! operation, so runs at different throughput compare honestly.
//!
//! The CPU time comes from the run's time series (the process's own CPU
//! use, polled every second), not from the nominal sampling rate: the
//! kernel delivers profiling signals on its tick, so at `KVLAB_PROFILE_HZ`
//! above ~100 a process gets fewer samples per CPU second than asked
//! (999 Hz gave ~175 on the 2-core dev VM). Samples give the shares, the
//! time series the CPU seconds and the ops the process completed.

use kv_core::runlog::TimeseriesRow;
use kv_core::stats::Role;

/// CPU time and completed ops of one process over a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessCost {
    pub cpu_s: f64,
    pub ops: f64,
}

impl ProcessCost {
    /// Sums the rows of `role`/`node` (one per second; a repeated second
    /// counts once). None without ops or CPU time.
    pub fn from_timeseries(rows: &[TimeseriesRow], role: Role, node: &str) -> Option<ProcessCost> {
        let mut mine: Vec<&TimeseriesRow> = rows
            .iter()
            .filter(|r| r.role == role && r.node == node)
            .collect();
        mine.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        mine.dedup_by(|b, a| a.t_s == b.t_s);
        let (mut cpu_s, mut ops, mut prev) = (0.0, 0.0, 0.0);
        for r in mine {
            let dt = r.t_s - prev;
            prev = r.t_s;
            if dt > 0.0 && r.cpu_percent.is_finite() && r.ops_per_s.is_finite() {
                cpu_s += r.cpu_percent.max(0.0) / 100.0 * dt;
                ops += r.ops_per_s.max(0.0) * dt;
            }
        }
        (cpu_s > 0.0 && ops >= 1.0).then_some(ProcessCost { cpu_s, ops })
    }

    /// CPU nanoseconds per completed op of `samples` out of `total`.
    pub fn ns_per_op(&self, samples: u64, total: u64) -> Option<f64> {
        (total > 0).then(|| samples as f64 / total as f64 * self.cpu_s * 1e9 / self.ops)
    }

    /// Profiling samples per CPU second: how finely the profile saw the work.
    pub fn samples_per_cpu_s(&self, total: u64) -> f64 {
        total as f64 / self.cpu_s
    }
}

/// `212 ns/op`, `1.2 us/op`.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1}us", ns / 1000.0)
    } else if ns >= 10.0 {
        format!("{ns:.0}ns")
    } else {
        format!("{ns:.1}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t_s: f64, node: &str, role: Role, ops: f64, cpu: f64) -> TimeseriesRow {
        TimeseriesRow {
            t_s,
            node: node.into(),
            role,
            ops_per_s: ops,
            gets_per_s: 0.0,
            puts_per_s: 0.0,
            cpu_percent: cpu,
            rss_bytes: 0,
            net_bytes_per_s: 0.0,
            p50_us: None,
            p99_us: None,
        }
    }

    #[test]
    fn cost_from_the_process_rows() {
        let rows = [
            row(1.0, "node0", Role::Server, 1_000_000.0, 50.0),
            row(1.0, "node0", Role::Server, 1_000_000.0, 50.0), // repeated
            row(2.0, "node0", Role::Server, 1_000_000.0, 100.0),
            row(2.0, "node1", Role::Client, 5.0, 100.0),
        ];
        let c = ProcessCost::from_timeseries(&rows, Role::Server, "node0").unwrap();
        assert!(
            (c.cpu_s - 1.5).abs() < 1e-9 && (c.ops - 2e6).abs() < 1e-6,
            "{c:?}"
        );
        // All samples: 1.5 s / 2M ops = 750 ns/op; a quarter of them 187.5.
        assert!((c.ns_per_op(250, 1000).unwrap() - 187.5).abs() < 1e-9);
        assert!(ProcessCost::from_timeseries(&rows, Role::Client, "node9").is_none());
        assert_eq!(fmt_ns(187.5), "188ns");
        assert_eq!(fmt_ns(12_345.0), "12.3us");
    }
}
