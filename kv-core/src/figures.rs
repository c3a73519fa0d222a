//! The figures of a run, from its time series (`timeseries.csv`: one row
//! per node per second), by one function ([`RunFigures::of`]) with one rule
//! for which seconds count. `kv-run record` and `kv-bench` both fill their
//! log rows from it ([`RunFigures::apply_to`]), so their figures compare.
//!
//! # The rule
//!
//! - **Load start** `t0`: the first second in which any client completed an
//!   op. Seconds before it (servers up, clients connecting) are idle, not
//!   load.
//! - **Steady window**: seconds `t` with `t0 + warmup_s < t <= t0 + secs`,
//!   where `secs` is the clients' load time and `warmup_s` the warm-up
//!   (`run-cluster.sh --warmup S`, default [`DEFAULT_WARMUP_S`]). This drops
//!   the warm-up (connections opening, the map's first touches) and the
//!   drain after the clients stop generating. A second inside the window in
//!   which a server did 0 ops still counts: a stall is part of the steady
//!   state, not noise to trim.
//! - **Steady throughput** (`steady_ops_per_s`): per server, the median of
//!   its ops/s over the window; summed over servers — the course's shape
//!   (sum of per-server medians) over honest seconds. `None` when the window
//!   holds no second (a run no longer than its warm-up).
//! - **The course's figure** (`total_ops_per_s`) stays as report-tput.py
//!   computes it: per server the median over *all* its per-second log lines,
//!   summed (`kv-run report`, from the server logs). It is its own column.
//! - CPU and network: mean over all seconds of the per-second sum over a
//!   role's nodes (the columns' documented meaning); RSS: the peak.

use crate::runlog::{RunRecord, TimeseriesRow};
use crate::stats::{median, Role};

/// Warm-up seconds left out of the steady figure unless told otherwise.
pub const DEFAULT_WARMUP_S: f64 = 2.0;

/// Which seconds of a run count for its steady figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Seconds after load start left out.
    pub warmup_s: f64,
    /// The clients' load time (seconds from load start); later seconds are
    /// the drain.
    pub secs: f64,
}

/// Every aggregate of a run's time series (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFigures {
    /// Load start (`t0`), seconds since the series began.
    pub load_start_s: Option<f64>,
    /// Seconds in the steady window.
    pub steady_seconds: usize,
    pub warmup_s: f64,
    pub steady_ops_per_s: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    pub client_cpu_percent: Option<f64>,
    pub server_peak_rss_bytes: Option<u64>,
    pub client_peak_rss_bytes: Option<u64>,
    pub net_bytes_per_s: Option<f64>,
}

/// Load start (`t0`): the first second in which a client completed an op.
pub fn load_start(rows: &[TimeseriesRow]) -> Option<f64> {
    rows.iter()
        .filter(|r| r.role == Role::Client && r.ops_per_s > 0.0)
        .map(|r| r.t_s)
        .min_by(f64::total_cmp)
}

impl Window {
    /// Whether second `t` is in the steady window of a load started at `t0`.
    fn holds(&self, t0: Option<f64>, t: f64) -> bool {
        t0.is_some_and(|t0| t > t0 + self.warmup_s && t <= t0 + self.secs + 1e-9)
    }
}

/// The steady throughput alone (see the module docs): what
/// [`RunFigures::of`] puts in `steady_ops_per_s`, for a caller that needs
/// only it, often (the live view, once a second).
pub fn steady_ops_per_s(rows: &[TimeseriesRow], w: Window) -> Option<f64> {
    let t0 = load_start(rows);
    let mut servers: Vec<&str> = rows
        .iter()
        .filter(|r| r.role == Role::Server)
        .map(|r| r.node.as_str())
        .collect();
    servers.sort_unstable();
    servers.dedup();
    if servers.is_empty() {
        return None;
    }
    servers
        .iter()
        .map(|n| {
            let ops: Vec<f64> = rows
                .iter()
                .filter(|r| r.role == Role::Server && r.node == *n && w.holds(t0, r.t_s))
                .map(|r| r.ops_per_s)
                .collect();
            median(&ops)
        })
        .sum()
}

impl RunFigures {
    pub fn of(rows: &[TimeseriesRow], w: Window) -> RunFigures {
        let load_start_s = load_start(rows);
        let in_window = |t: f64| w.holds(load_start_s, t);
        let steady_ops_per_s = steady_ops_per_s(rows, w);
        let mut steady: Vec<f64> = rows
            .iter()
            .map(|r| r.t_s)
            .filter(|t| in_window(*t))
            .collect();
        steady.sort_by(f64::total_cmp);
        steady.dedup();
        RunFigures {
            load_start_s,
            steady_seconds: steady.len(),
            warmup_s: w.warmup_s,
            steady_ops_per_s,
            server_cpu_percent: mean_of_sums(rows, Role::Server, |x| x.cpu_percent),
            client_cpu_percent: mean_of_sums(rows, Role::Client, |x| x.cpu_percent),
            server_peak_rss_bytes: peak(rows, Role::Server),
            client_peak_rss_bytes: peak(rows, Role::Client),
            net_bytes_per_s: mean_of_sums(rows, Role::Server, |x| x.net_bytes_per_s),
        }
    }

    /// Fills the row's figures from the series: the one record builder of
    /// run-cluster runs and bench runs.
    pub fn apply_to(&self, r: &mut RunRecord) {
        r.steady_ops_per_s = self.steady_ops_per_s;
        r.warmup_s = Some(self.warmup_s);
        r.server_cpu_percent = self.server_cpu_percent;
        r.client_cpu_percent = self.client_cpu_percent;
        r.server_peak_rss_bytes = self.server_peak_rss_bytes;
        r.client_peak_rss_bytes = self.client_peak_rss_bytes;
        r.net_bytes_per_s = self.net_bytes_per_s;
    }
}

/// Mean over seconds of the per-second sum over nodes of `role`.
fn mean_of_sums(rows: &[TimeseriesRow], role: Role, f: fn(&TimeseriesRow) -> f64) -> Option<f64> {
    let mut ts: Vec<f64> = rows
        .iter()
        .filter(|r| r.role == role)
        .map(|r| r.t_s)
        .collect();
    ts.sort_by(f64::total_cmp);
    ts.dedup();
    if ts.is_empty() {
        return None;
    }
    let total: f64 = ts
        .iter()
        .map(|t| {
            rows.iter()
                .filter(|r| r.role == role && r.t_s == *t)
                .map(f)
                .sum::<f64>()
        })
        .sum();
    Some(total / ts.len() as f64)
}

fn peak(rows: &[TimeseriesRow], role: Role) -> Option<u64> {
    rows.iter()
        .filter(|r| r.role == role)
        .map(|r| r.rss_bytes)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A recorded-style series (tests/fixtures/series/ramp-stall-drain.csv):
    /// 2 servers, 1 client; idle second 1, load from t=2, a ramp at 2–4, a
    /// stall of server 0 at t=7–8, load ends at t0+8 = 10, drain at 11–12.
    fn fixture() -> Vec<TimeseriesRow> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/series/ramp-stall-drain.csv");
        crate::runlog::read_timeseries(&p).unwrap()
    }

    #[test]
    fn steady_window_drops_warmup_and_drain_keeps_stalls() {
        let rows = fixture();
        let f = RunFigures::of(
            &rows,
            Window {
                warmup_s: 2.0,
                secs: 8.0,
            },
        );
        assert_eq!(f.load_start_s, Some(2.0));
        // Window (4, 10]: t = 5..=10, six seconds.
        assert_eq!(f.steady_seconds, 6);
        // Server 0 over t=5..10: 1000,1000,0,0,1000,1000 → median 1000;
        // server 1: 2000 each → 2000. The stall stays in, the ramp and the
        // drain (t=11,12 at 100) stay out.
        assert_eq!(f.steady_ops_per_s, Some(3000.0));
        // No warm-up: the ramp (t=3,4: 200, 500 on server 0) comes in and
        // server 0's median falls to (500+1000)/2.
        let all = RunFigures::of(
            &rows,
            Window {
                warmup_s: 0.0,
                secs: 8.0,
            },
        );
        assert_eq!(all.steady_seconds, 8);
        assert_eq!(all.steady_ops_per_s, Some(750.0 + 2000.0));
        // A run no longer than its warm-up has no steady figure.
        let none = RunFigures::of(
            &rows,
            Window {
                warmup_s: 8.0,
                secs: 8.0,
            },
        );
        assert_eq!((none.steady_seconds, none.steady_ops_per_s), (0, None));
        assert_eq!(f.server_peak_rss_bytes, Some(2000));
        // The row records the warm-up its steady figure left out.
        let mut r = RunRecord::default();
        f.apply_to(&mut r);
        assert_eq!((r.steady_ops_per_s, r.warmup_s), (Some(3000.0), Some(2.0)));
    }
}
