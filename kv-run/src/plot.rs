//! A run's charts (its time series per node), drawn with [`kv_plot`].

use std::path::Path;

use anyhow::Result;
use kv_core::runlog::TimeseriesRow;
use kv_core::stats::Role;
pub use kv_plot::{line_chart, Series};

/// Per-node series of one field, servers first, plus the servers' total.
fn per_node(
    rows: &[TimeseriesRow],
    field: fn(&TimeseriesRow) -> f64,
    with_total: bool,
) -> Vec<Series> {
    let mut names: Vec<(Role, String)> = Vec::new();
    for r in rows {
        if !names
            .iter()
            .any(|(role, n)| *role == r.role && *n == r.node)
        {
            names.push((r.role, r.node.clone()));
        }
    }
    names.sort_by(|a, b| (a.0 != Role::Server, &a.1).cmp(&(b.0 != Role::Server, &b.1)));
    let mut out: Vec<Series> = names
        .iter()
        .map(|(role, node)| {
            Series::new(
                format!("{}-{node}", role.name()),
                rows.iter()
                    .filter(|r| r.role == *role && r.node == *node)
                    .map(|r| (r.t_s, field(r)))
                    .collect(),
            )
        })
        .collect();
    if with_total && names.iter().filter(|(r, _)| *r == Role::Server).count() > 1 {
        let mut ts: Vec<f64> = rows.iter().map(|r| r.t_s).collect();
        ts.sort_by(f64::total_cmp);
        ts.dedup();
        out.insert(
            0,
            Series::new(
                "servers total",
                ts.iter()
                    .map(|&t| {
                        let sum = rows
                            .iter()
                            .filter(|r| r.t_s == t && r.role == Role::Server)
                            .map(field)
                            .sum();
                        (t, sum)
                    })
                    .collect(),
            ),
        );
    }
    out
}

/// One chart of a run: file, title, y label, the field, whether to add the servers' total.
type RunChart = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TimeseriesRow) -> f64,
    bool,
);

/// The run's charts: `throughput.svg`, `cpu.svg`, `rss.svg`, and
/// `latency.svg` when clients reported latency. Each is drawn on its own:
/// returns every chart's file and how its write went.
pub fn run_charts(dir: &Path, rows: &[TimeseriesRow]) -> Vec<(&'static str, Result<()>)> {
    if rows.is_empty() {
        return Vec::new();
    }
    let charts: [RunChart; 3] = [
        (
            "throughput.svg",
            "ops/s per node",
            "ops/s",
            |r| r.ops_per_s,
            true,
        ),
        (
            "cpu.svg",
            "CPU per node (100 = one core)",
            "CPU %",
            |r| r.cpu_percent,
            false,
        ),
        (
            "rss.svg",
            "resident memory per node",
            "bytes",
            |r| r.rss_bytes as f64,
            false,
        ),
    ];
    let mut out = Vec::new();
    for (file, title, y, field, total) in charts {
        let r = line_chart(
            &dir.join(file),
            title,
            "seconds",
            y,
            &per_node(rows, field, total),
        );
        out.push((file, r));
    }
    let clients: Vec<TimeseriesRow> = rows
        .iter()
        .filter(|r| r.p99_us.is_some())
        .cloned()
        .collect();
    if !clients.is_empty() {
        let file = "latency.svg";
        let r = line_chart(
            &dir.join(file),
            "client p99 op latency, each second",
            "seconds",
            "us",
            &per_node(&clients, |r| r.p99_us.unwrap_or(0) as f64, false),
        );
        out.push((file, r));
    }
    out
}
