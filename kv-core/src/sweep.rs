//! The latency–throughput curve of a rate sweep (`run-cluster.sh
//! --sweep-rate`, `kv-run sweep`): its steps, the knee, and where the
//! result is kept, so the browser can draw the curve of a sweep series.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::latency::LatencySummary;

/// `experiments/<series>.json`: the sweep's result (beside its `.svg`).
pub fn result_path(experiments: &Path, series: &str) -> PathBuf {
    experiments.join(format!("{series}.json"))
}

/// The chart `kv-run sweep` draws, beside the result.
pub fn svg_path(experiments: &Path, series: &str) -> PathBuf {
    experiments.join(format!("{series}.svg"))
}

impl SweepResult {
    /// The result of the sweep series `series`, if it is one.
    pub fn read(experiments: &Path, series: &str) -> Option<SweepResult> {
        crate::runlog::read_json(&result_path(experiments, series)).ok()
    }
}

/// One measured step of the curve.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub run_id: String,
    /// Percent of the closed-loop maximum; `None` for the closed-loop run.
    pub percent: Option<f64>,
    /// Offered ops/s over all clients (`None`: closed loop).
    pub offered_per_s: Option<f64>,
    pub achieved_per_s: f64,
    pub latency: LatencySummary,
    /// Seconds some client reported itself the limit.
    pub client_limited_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepResult {
    pub series: String,
    pub closed_loop: Step,
    pub steps: Vec<Step>,
    pub slo_us: u64,
    /// The knee: the highest achieved rate whose p99 stays within the SLO.
    pub knee: Option<Step>,
}

/// The knee: among the open-loop steps, the highest achieved rate whose
/// p99 is within `slo_us`, or twice the lowest step's p99 when none is
/// given. Returns the SLO used and the knee step.
pub fn knee(steps: &[Step], slo_us: Option<u64>) -> (u64, Option<&Step>) {
    let slo = slo_us.unwrap_or_else(|| {
        steps
            .iter()
            .min_by(|a, b| a.achieved_per_s.total_cmp(&b.achieved_per_s))
            .map_or(0, |s| s.latency.p99_us * 2)
    });
    let k = steps
        .iter()
        .filter(|s| s.latency.p99_us <= slo)
        .max_by(|a, b| a.achieved_per_s.total_cmp(&b.achieved_per_s));
    (slo, k)
}
