//! `timeseries.csv`: one node's rates per second.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::*;
use crate::stats::Role;

/// Columns of `timeseries.csv`, in file order.
pub const TIMESERIES_COLUMNS: &[&str] = &[
    "t_s",
    "node",
    "role",
    "ops_per_s",
    "gets_per_s",
    "puts_per_s",
    "cpu_percent",
    "rss_bytes",
    "net_bytes_per_s",
    "p50_us",
    "p99_us",
];
/// One line of `timeseries.csv`: one node's rates over one second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeseriesRow {
    /// Seconds since the run started (end of the interval).
    pub t_s: f64,
    /// Node name as in profile file names (`0`, `host1-2`, ...).
    pub node: String,
    pub role: Role,
    pub ops_per_s: f64,
    pub gets_per_s: f64,
    pub puts_per_s: f64,
    /// 100 = one core.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub net_bytes_per_s: f64,
    /// Client: op latency over its last whole second, in us. Empty for
    /// servers, for seconds without completed ops, and in files written
    /// before these columns existed.
    #[serde(default)]
    pub p50_us: Option<u64>,
    #[serde(default)]
    pub p99_us: Option<u64>,
}

/// Writes `timeseries.csv` row by row (header first), so a run that dies
/// midway still leaves what it had.
pub struct TimeseriesWriter {
    path: PathBuf,
    inner: csv::Writer<File>,
}

impl TimeseriesWriter {
    pub fn create(path: &Path) -> Result<Self, RunLogError> {
        let file = File::create(path).map_err(|e| RunLogError::io(path, e))?;
        let inner = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(file);
        Ok(TimeseriesWriter {
            path: path.to_path_buf(),
            inner,
        })
    }

    pub fn write(&mut self, row: &TimeseriesRow) -> Result<(), RunLogError> {
        self.inner
            .serialize(row)
            .map_err(|e| RunLogError::malformed(&self.path, 0, e.to_string()))
    }

    pub fn flush(&mut self) -> Result<(), RunLogError> {
        self.inner
            .flush()
            .map_err(|e| RunLogError::io(&self.path, e))
    }
}

/// Writes a whole `timeseries.csv` at once.
pub fn write_timeseries(path: &Path, rows: &[TimeseriesRow]) -> Result<(), RunLogError> {
    let mut w = TimeseriesWriter::create(path)?;
    for row in rows {
        w.write(row)?;
    }
    w.flush()
}

/// Reads `timeseries.csv`; errors carry the line number.
pub fn read_timeseries(path: &Path) -> Result<Vec<TimeseriesRow>, RunLogError> {
    let file = File::open(path).map_err(|e| RunLogError::io(path, e))?;
    let mut rdr = csv::Reader::from_reader(io::BufReader::new(file));
    let mut out = Vec::new();
    for row in rdr.deserialize() {
        let row: TimeseriesRow = row.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            RunLogError::malformed(path, line, e.to_string())
        })?;
        out.push(row);
    }
    Ok(out)
}

/// One node's figure over a run: the median of its per-second ops/s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub node: String,
    pub role: Role,
    pub median_ops_per_s: f64,
    pub median_cpu_percent: f64,
    pub peak_rss_bytes: u64,
    /// Client: median of its per-second p99 latency, in us (`None` for
    /// servers and for runs recorded without latency columns).
    #[serde(default)]
    pub median_p99_us: Option<u64>,
}

/// Per-node medians from a run's time series, servers first.
pub fn node_medians(rows: &[TimeseriesRow]) -> Vec<NodeSummary> {
    let mut keys: Vec<(Role, &str)> = Vec::new();
    for r in rows {
        if !keys.iter().any(|(role, n)| *role == r.role && *n == r.node) {
            keys.push((r.role, &r.node));
        }
    }
    keys.sort_by(|a, b| (a.0 != Role::Server, a.1).cmp(&(b.0 != Role::Server, b.1)));
    keys.into_iter()
        .map(|(role, node)| {
            let mine: Vec<&TimeseriesRow> = rows
                .iter()
                .filter(|r| r.role == role && r.node == node)
                .collect();
            let ops: Vec<f64> = mine.iter().map(|r| r.ops_per_s).collect();
            let cpu: Vec<f64> = mine.iter().map(|r| r.cpu_percent).collect();
            let p99: Vec<f64> = mine
                .iter()
                .filter_map(|r| r.p99_us)
                .map(|v| v as f64)
                .collect();
            NodeSummary {
                node: node.to_string(),
                role,
                median_ops_per_s: crate::stats::median(&ops).unwrap_or(0.0),
                median_cpu_percent: crate::stats::median(&cpu).unwrap_or(0.0),
                peak_rss_bytes: mine.iter().map(|r| r.rss_bytes).max().unwrap_or(0),
                median_p99_us: crate::stats::median(&p99).map(|v| v as u64),
            }
        })
        .collect()
}
