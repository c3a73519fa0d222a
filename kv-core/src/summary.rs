//! What a kv-client or kv-server reports at the end of a run
//! (`--summary-json`): written by the process, read by `kv-run
//! report`/`record` and by `kv-bench`. One type per role for all of them, so
//! each file has one definition. Both carry the effective config the
//! process ran with (`kv_core::facts`), which record checks against the plan.

use serde::{Deserialize, Serialize};

use crate::facts::{ClientFacts, ServerFacts};
use crate::latency::LatencySummary;

/// Op counts of one generator thread, or of a whole client. Once a client
/// has drained, every generated op is in exactly one of gets, puts, failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpCounts {
    pub generated: u64,
    pub sent: u64,
    pub gets: u64,
    pub puts: u64,
    pub failed: u64,
}

impl OpCounts {
    pub fn completed(&self) -> u64 {
        self.gets + self.puts
    }

    /// Generated, sent and completed agree and nothing failed.
    pub fn is_intact(&self) -> bool {
        self.failed == 0 && self.generated == self.sent && self.sent == self.completed()
    }

    pub fn add(&mut self, o: &OpCounts) {
        self.generated += o.generated;
        self.sent += o.sent;
        self.gets += o.gets;
        self.puts += o.puts;
        self.failed += o.failed;
    }
}

/// A client's final report. A client that failed before running writes only
/// `failure`, so every field has a default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientSummary {
    pub per_thread: Vec<OpCounts>,
    pub totals: OpCounts,
    pub elapsed_s: f64,
    pub batch_latency: Option<LatencySummary>,
    pub op_latency: Option<LatencySummary>,
    pub failure: Option<String>,
    /// First and last generator seed of this client.
    pub seeds: Option<(u64, u64)>,
    /// The op latency histogram (HDR V2, hex), so runs merge percentiles exactly.
    pub op_latency_hdr: Option<String>,
    /// Open-loop runs (`--rate`): what was offered and whether the client
    /// kept up. `None` for closed loop.
    pub open_loop: Option<OpenLoopSummary>,
    /// The config this client ran with (absent from older clients).
    pub config: Option<ClientFacts>,
}

/// A server's final report, written when it stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSummary {
    /// The config this server ran with.
    pub config: ServerFacts,
    pub gets: u64,
    pub puts: u64,
    pub batches: u64,
    /// Requests refused for breaking a limit.
    pub refused: u64,
    pub uptime_s: f64,
}

/// The pace of an open-loop client over its whole run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenLoopSummary {
    /// The asked rate (`--rate`), ops per second for this client.
    pub offered_per_s: f64,
    /// `fixed` or `poisson`.
    pub arrival: String,
    pub flush_us: u64,
    /// Ops the schedule placed before the end of the run (offered rate ×
    /// duration); `totals.generated` falls short when the client lagged.
    pub scheduled: u64,
    /// Whole seconds measured, and those in which the client itself held
    /// the load back (its CPU behind schedule, or its window full).
    pub seconds: u64,
    pub client_limited_s: u64,
}

impl ClientSummary {
    /// Completed ops per second; `None` when no time was measured.
    pub fn throughput(&self) -> Option<f64> {
        (self.elapsed_s > 0.0).then(|| self.totals.completed() as f64 / self.elapsed_s)
    }

    /// The run finished, every op completed, and no server failed.
    pub fn is_ok(&self) -> bool {
        self.failure.is_none() && self.totals.is_intact()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_only_summary_reads() {
        let s: ClientSummary = serde_json::from_str(r#"{"failure":"boom"}"#).unwrap();
        assert_eq!(s.failure.as_deref(), Some("boom"));
        assert!(!s.is_ok());
        assert_eq!(s.throughput(), None);
    }

    #[test]
    fn round_trip_and_intact() {
        let c = OpCounts {
            generated: 10,
            sent: 10,
            gets: 9,
            puts: 1,
            failed: 0,
        };
        let s = ClientSummary {
            totals: c,
            elapsed_s: 2.0,
            per_thread: vec![c],
            ..Default::default()
        };
        let back: ClientSummary =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(s.is_ok());
        assert_eq!(s.throughput(), Some(5.0));
        let lost = OpCounts { generated: 11, ..c };
        assert!(!lost.is_intact());
    }
}
