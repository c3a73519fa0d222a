//! Live counters and the snapshot every process serves.
//!
//! Counters are striped over cache-line-padded atomics so that worker threads
//! bumping them per batch do not contend on one cache line; a snapshot sums
//! the stripes. Rates come from the difference of two snapshots.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::latency::LatencySummary;
use crate::process::ProcessSample;

const STRIPES: usize = 16;

#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// A counter striped per thread: cheap to bump from many threads at once.
pub struct ShardedCounter {
    stripes: [Padded; STRIPES],
}

impl Default for ShardedCounter {
    fn default() -> Self {
        Self {
            stripes: std::array::from_fn(|_| Padded::default()),
        }
    }
}

fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

impl ShardedCounter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.stripes[stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

impl std::fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShardedCounter({})", self.get())
    }
}

/// Which kind of kvlab process a snapshot comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Server,
    Client,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}

/// Cumulative counters of one process at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub role: Role,
    pub pid: u32,
    /// Milliseconds since the process started counting.
    pub uptime_ms: u64,
    /// Gets completed (server: applied; client: answered).
    pub gets: u64,
    pub puts: u64,
    /// Ops that failed (client) or were refused (server).
    pub failed: u64,
    pub batches: u64,
    /// Client: ops generated so far. Server: 0.
    pub generated: u64,
    /// Server: records in the store. Client: 0.
    pub keys: u64,
    pub process: ProcessSample,
    /// Client: op latency so far. Server: `None`.
    pub latency: Option<LatencySummary>,
    /// Client: op latency of the last whole second (see
    /// [`crate::latency::LatencyWindow`]). Server: `None`.
    pub recent_latency: Option<LatencySummary>,
    /// The process has finished its work (client done, server draining).
    pub finished: bool,
    /// Client in open loop (`--rate`): its last whole second's pace.
    /// Closed loop and servers: `None`.
    pub open_loop: Option<OpenLoopPace>,
}

/// An open-loop client's pace over its last whole second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenLoopPace {
    pub offered_per_s: f64,
    pub achieved_per_s: f64,
    /// Set when the client itself held the load back, saying how
    /// (`client-limited: window full ...`); `None` when it kept up.
    pub client_limited: Option<String>,
}

impl StatsSnapshot {
    /// A `role` process that has counted nothing yet (fill in with `..`).
    pub fn empty(role: Role) -> Self {
        StatsSnapshot {
            role,
            pid: 0,
            uptime_ms: 0,
            gets: 0,
            puts: 0,
            failed: 0,
            batches: 0,
            generated: 0,
            keys: 0,
            process: crate::process::ProcessSample::default(),
            latency: None,
            recent_latency: None,
            finished: false,
            open_loop: None,
        }
    }

    pub fn ops(&self) -> u64 {
        self.gets + self.puts
    }
}

/// Per-second rates between two snapshots of one process.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Rates {
    pub gets_per_s: f64,
    pub puts_per_s: f64,
    pub cpu_percent: f64,
    pub net_bytes_per_s: f64,
}

impl Rates {
    pub fn ops_per_s(&self) -> f64 {
        self.gets_per_s + self.puts_per_s
    }

    /// Rates from `prev` to `now`; zero when no time passed.
    pub fn between(prev: &StatsSnapshot, now: &StatsSnapshot) -> Rates {
        let dt_ms = now.uptime_ms.saturating_sub(prev.uptime_ms);
        if dt_ms == 0 {
            return Rates::default();
        }
        let per_s = |a: u64, b: u64| b.saturating_sub(a) as f64 * 1000.0 / dt_ms as f64;
        Rates {
            gets_per_s: per_s(prev.gets, now.gets),
            puts_per_s: per_s(prev.puts, now.puts),
            cpu_percent: per_s(prev.process.cpu_ms, now.process.cpu_ms) / 10.0,
            net_bytes_per_s: per_s(prev.process.net_bytes(), now.process.net_bytes()),
        }
    }
}

/// The course skeleton's per-second stats block, byte for byte, so its
/// `report-tput.py` parses our logs:
/// `get/s X.XX\nput/s X.XX\nops/s X.XX\n\n`.
pub fn course_stats_block(gets_per_s: f64, puts_per_s: f64) -> String {
    format!(
        "get/s {:.2}\nput/s {:.2}\nops/s {:.2}\n\n",
        gets_per_s,
        puts_per_s,
        gets_per_s + puts_per_s
    )
}

/// Median of a list of per-second rates (the course's per-server figure).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharded_counter_sums_across_threads() {
        let c = std::sync::Arc::new(ShardedCounter::default());
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.add(3)))
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(c.get(), 24_000);
    }

    #[test]
    fn course_block_format() {
        assert_eq!(
            course_stats_block(1.0, 2.5),
            "get/s 1.00\nput/s 2.50\nops/s 3.50\n\n"
        );
    }

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
