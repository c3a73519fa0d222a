//! Per-second pace of an open-loop client: offered vs achieved, and a
//! plain verdict when the client itself held the load back (its own CPU
//! behind schedule, or its window of in-flight batches full), so nobody
//! blames the servers for the client's limit.

use std::fmt;
use std::time::Duration;

/// A generator this far behind its schedule at some look in a second is
/// not keeping up: well above tokio's 1 ms timer resolution and the
/// wake-up jitter of a loaded machine, well below a stall worth a line.
pub const BEHIND_LIMIT: Duration = Duration::from_millis(10);
/// Share of a second (per generator thread) spent waiting for a window
/// slot from which the window, not the schedule, set the pace.
pub const WINDOW_LIMIT: f64 = 0.10;

/// Why the client, not the servers, limited a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClientLimit {
    /// Every in-flight slot was taken for this long (mean per thread):
    /// ops waited in the client for the servers to answer earlier ones.
    WindowFull { waited: Duration, window: usize },
    /// The generator fell this far behind its schedule: this client's CPU.
    Behind { by: Duration },
}

impl fmt::Display for ClientLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientLimit::WindowFull { waited, window } => write!(
                f,
                "client-limited: window full ({window} batches in flight per server) for {} ms of this second",
                waited.as_millis()
            ),
            ClientLimit::Behind { by } => write!(
                f,
                "client-limited: generator {} ms behind schedule (this client's CPU)",
                by.as_millis()
            ),
        }
    }
}

/// Decides one interval. `window_wait` is summed over `threads`
/// generators; `behind` is the most any of them lagged.
pub fn judge(
    interval: Duration,
    threads: usize,
    window_wait: Duration,
    window: usize,
    behind: Duration,
) -> Option<ClientLimit> {
    let per_thread = window_wait.div_f64(threads.max(1) as f64);
    if per_thread.as_secs_f64() >= WINDOW_LIMIT * interval.as_secs_f64() {
        return Some(ClientLimit::WindowFull {
            waited: per_thread,
            window,
        });
    }
    (behind >= BEHIND_LIMIT).then_some(ClientLimit::Behind { by: behind })
}

/// One second's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceSecond {
    pub offered_per_s: f64,
    pub achieved_per_s: f64,
    pub limit: Option<ClientLimit>,
}

impl fmt::Display for PaceSecond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "offered {:.2} ops/s achieved {:.2} ops/s",
            self.offered_per_s, self.achieved_per_s
        )?;
        if let Some(l) = &self.limit {
            write!(f, "; {l}")?;
        }
        Ok(())
    }
}

/// Turns cumulative counters, read once a second, into [`PaceSecond`]s
/// and keeps the run's tally.
#[derive(Debug)]
pub struct PaceMonitor {
    offered_per_s: f64,
    threads: usize,
    window: usize,
    prev_completed: u64,
    prev_wait: Duration,
    prev_at: Duration,
    pub seconds: u64,
    pub limited_seconds: u64,
}

impl PaceMonitor {
    pub fn new(offered_per_s: f64, threads: usize, window: usize) -> Self {
        Self {
            offered_per_s,
            threads,
            window,
            prev_completed: 0,
            prev_wait: Duration::ZERO,
            prev_at: Duration::ZERO,
            seconds: 0,
            limited_seconds: 0,
        }
    }

    /// `completed` and `window_wait` are cumulative; `behind` is the most
    /// lag since the last call; `at` is time since the load started.
    pub fn tick(
        &mut self,
        completed: u64,
        window_wait: Duration,
        behind: Duration,
        at: Duration,
    ) -> PaceSecond {
        let dt = at.saturating_sub(self.prev_at);
        let done = completed.saturating_sub(self.prev_completed);
        let waited = window_wait.saturating_sub(self.prev_wait);
        self.prev_completed = completed;
        self.prev_wait = window_wait;
        self.prev_at = at;
        let limit = judge(dt, self.threads, waited, self.window, behind);
        self.seconds += 1;
        self.limited_seconds += u64::from(limit.is_some());
        PaceSecond {
            offered_per_s: self.offered_per_s,
            achieved_per_s: if dt.is_zero() {
                0.0
            } else {
                done as f64 / dt.as_secs_f64()
            },
            limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn on_time_is_not_limited() {
        assert_eq!(
            judge(S, 2, Duration::from_millis(50), 8, Duration::from_millis(2)),
            None
        );
    }

    #[test]
    fn window_wait_counts_per_thread() {
        // 150 ms summed over 2 threads is 75 ms each: under 10%.
        assert_eq!(
            judge(S, 2, Duration::from_millis(150), 8, Duration::ZERO),
            None
        );
        let l = judge(S, 2, Duration::from_millis(1600), 8, Duration::from_secs(1)).unwrap();
        assert_eq!(
            l,
            ClientLimit::WindowFull {
                waited: Duration::from_millis(800),
                window: 8
            }
        );
        assert!(l.to_string().starts_with("client-limited: window full"));
    }

    #[test]
    fn lagging_generator_is_cpu_limited() {
        let l = judge(S, 1, Duration::ZERO, 8, Duration::from_millis(420)).unwrap();
        assert_eq!(
            l.to_string(),
            "client-limited: generator 420 ms behind schedule (this client's CPU)"
        );
    }

    #[test]
    fn monitor_rates_and_tally() {
        let mut m = PaceMonitor::new(1000.0, 1, 8);
        let a = m.tick(990, Duration::ZERO, Duration::ZERO, S);
        assert_eq!(
            (a.offered_per_s, a.achieved_per_s, a.limit),
            (1000.0, 990.0, None)
        );
        let b = m.tick(1490, Duration::ZERO, Duration::from_millis(500), 2 * S);
        assert_eq!(b.achieved_per_s, 500.0);
        assert!(b.limit.is_some());
        assert_eq!((m.seconds, m.limited_seconds), (2, 1));
        assert!(b.to_string().contains("; client-limited"), "{b}");
    }
}
