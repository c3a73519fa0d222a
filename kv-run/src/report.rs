//! `kv-run report LOGDIR`: the course's `report-tput.py` figures from the
//! servers' `ops/s` lines (median per server, summed), then the clients'
//! combined throughput and latency from their summary JSONs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kv_core::latency::{LatencyHistogram, LatencySummary};
use kv_core::stats::median;
use serde::{Deserialize, Serialize};

use crate::balance::{ServerOps, ShardBalance};

/// One server's line of the course report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMedian {
    pub node: String,
    /// `None` when its log has no `ops/s` line.
    pub median_ops_per_s: Option<f64>,
}

pub use kv_core::summary::{ClientSummary, OpCounts as ClientCounts};

/// One client's figures and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientFigures {
    pub node: String,
    /// Parsed summary JSON; `None` when only the log's last line was found.
    pub summary: Option<ClientSummary>,
    pub throughput: Option<f64>,
    /// Why this client's op counts are not in the report's totals (a
    /// client killed before writing its summary); `None` when they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts_missing: Option<String>,
}

/// The whole report of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub servers: Vec<ServerMedian>,
    /// Sum of server medians (the course's total).
    pub total_ops_per_s: f64,
    pub clients: Vec<ClientFigures>,
    /// Sum of the clients' own throughput figures.
    pub client_ops_per_s: Option<f64>,
    pub generated: Option<u64>,
    pub completed: Option<u64>,
    pub failed: Option<u64>,
    pub op_latency: Option<LatencySummary>,
    /// True when `op_latency` comes from the clients' merged HDR histograms
    /// (exact); false when it is, per percentile, the maximum over clients
    /// (an upper bound; count and max are exact either way).
    pub latency_exact: bool,
    /// Multi-server runs: ops per server and max/mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<ShardBalance>,
}

/// Files `<prefix><node>.log` in `dir`, sorted by node name.
fn logs(dir: &Path, prefix: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(node) = name
            .strip_prefix(prefix)
            .and_then(|n| n.strip_suffix(".log"))
        {
            out.push((node.to_string(), e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The values of every line containing `ops/s`, second column (the course's parse).
pub fn ops_lines(text: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.contains("ops/s"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

fn client_throughput_line(text: &str) -> Option<f64> {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("throughput "))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
}

/// Merges client summaries: counts add up; percentiles take the maximum.
pub fn merge_latency(all: &[LatencySummary]) -> Option<LatencySummary> {
    let mut it = all.iter().filter(|s| s.count > 0);
    let first = *it.next()?;
    Some(it.fold(first, |a, b| LatencySummary {
        count: a.count + b.count,
        p50_us: a.p50_us.max(b.p50_us),
        p90_us: a.p90_us.max(b.p90_us),
        p99_us: a.p99_us.max(b.p99_us),
        p999_us: a.p999_us.max(b.p999_us),
        max_us: a.max_us.max(b.max_us),
    }))
}

/// A client's summary and, when its op counts are not in it, why. A
/// client writes `{}` at start (to fail early on an unwritable path) and
/// its counts at the end, so `{}` means it never finished; a failure
/// summary holds the error, not the counts.
fn read_summary(path: &Path) -> (Option<ClientSummary>, Option<String>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (None, Some("no summary written".into()))
        }
        Err(e) => return (None, Some(format!("summary unreadable: {e}"))),
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => return (None, Some("summary cut short".into())),
    };
    let summary: Option<ClientSummary> = serde_json::from_value(value.clone()).ok();
    let why = if value.get("totals").is_some() {
        None
    } else if summary.as_ref().is_some_and(|s| s.failure.is_some()) {
        // The failure has its own line (`<node> failed: ...`).
        Some("it failed before writing them".into())
    } else {
        Some("it stopped before writing its summary (killed?)".into())
    };
    (summary, why)
}

pub fn build(dir: &Path) -> Result<Report> {
    let mut servers = Vec::new();
    let mut total = 0.0;
    let mut per_server = Vec::new();
    for (node, path) in logs(dir, "kvsserver-")? {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines = ops_lines(&text);
        let m = median(&lines);
        total += m.unwrap_or(0.0);
        // One line a second: their sum is the ops the server handled.
        per_server.push(ServerOps {
            node: node.clone(),
            ops: lines.iter().sum(),
        });
        servers.push(ServerMedian {
            node,
            median_ops_per_s: m,
        });
    }
    let mut clients = Vec::new();
    for (node, path) in logs(dir, "kvsclient-")? {
        let json = dir.join(format!("client-{node}.summary.json"));
        let (summary, counts_missing) = read_summary(&json);
        let throughput = match &summary {
            Some(s) if counts_missing.is_none() => s.throughput(),
            _ => client_throughput_line(&std::fs::read_to_string(&path).unwrap_or_default()),
        };
        clients.push(ClientFigures {
            node,
            summary,
            throughput,
            counts_missing,
        });
    }
    let tputs: Vec<f64> = clients.iter().filter_map(|c| c.throughput).collect();
    let sums: Vec<&ClientSummary> = clients.iter().filter_map(|c| c.summary.as_ref()).collect();
    // Totals only when every client's counts are in: a sum that silently
    // leaves a killed client out would read as the whole run's.
    let all_summaries = !clients.is_empty() && clients.iter().all(|c| c.counts_missing.is_none());
    let lat: Vec<LatencySummary> = sums.iter().filter_map(|s| s.op_latency).collect();
    let hists: Option<Vec<LatencyHistogram>> = sums
        .iter()
        .filter(|s| s.op_latency.is_some())
        .map(|s| LatencyHistogram::from_hex(s.op_latency_hdr.as_deref()?))
        .collect();
    let exact = hists.filter(|h| !h.is_empty()).map(|hs| {
        let mut all = LatencyHistogram::default();
        hs.iter().for_each(|h| all.merge(h));
        all.summary()
    });
    Ok(Report {
        servers,
        total_ops_per_s: total,
        client_ops_per_s: (!tputs.is_empty()).then(|| tputs.iter().sum()),
        generated: all_summaries.then(|| sums.iter().map(|s| s.totals.generated).sum()),
        completed: all_summaries.then(|| sums.iter().map(|s| s.totals.completed()).sum()),
        failed: all_summaries.then(|| sums.iter().map(|s| s.totals.failed).sum()),
        latency_exact: exact.is_some(),
        op_latency: exact.or_else(|| merge_latency(&lat)),
        clients,
        balance: ShardBalance::of(per_server),
    })
}

impl Report {
    /// The printed report: the course's lines first, then the clients'.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for srv in &self.servers {
            match srv.median_ops_per_s {
                Some(m) => writeln!(s, "{} median {m:.0} op/s", srv.node),
                None => writeln!(s, "{} no ops/s data found", srv.node),
            }
            .ok();
        }
        writeln!(s).ok();
        writeln!(s, "total {:.0} op/s", self.total_ops_per_s).ok();
        if let Some(b) = &self.balance {
            writeln!(s, "{}", b.line()).ok();
        }
        if self.clients.is_empty() {
            return s;
        }
        writeln!(s).ok();
        match self.client_ops_per_s {
            Some(t) => writeln!(s, "clients {} combined {t:.0} op/s", self.clients.len()),
            None => writeln!(s, "clients {} reported no throughput", self.clients.len()),
        }
        .ok();
        if let (Some(g), Some(c), Some(f)) = (self.generated, self.completed, self.failed) {
            writeln!(s, "ops generated {g} completed {c} failed {f}").ok();
        } else {
            // Partial counts say whose they are, and whose are missing.
            let counted: Vec<&ClientFigures> = self
                .clients
                .iter()
                .filter(|c| c.counts_missing.is_none())
                .collect();
            if !counted.is_empty() {
                let mut t = ClientCounts::default();
                for c in &counted {
                    if let Some(sum) = &c.summary {
                        t.add(&sum.totals);
                    }
                }
                let names: Vec<&str> = counted.iter().map(|c| c.node.as_str()).collect();
                writeln!(
                    s,
                    "ops generated {} completed {} failed {} (only {} of {} clients: {})",
                    t.generated,
                    t.completed(),
                    t.failed,
                    counted.len(),
                    self.clients.len(),
                    names.join(", ")
                )
                .ok();
            }
            for c in &self.clients {
                if let Some(why) = &c.counts_missing {
                    writeln!(s, "{} counts missing: {why}", c.node).ok();
                }
            }
        }
        if let Some(l) = self.op_latency {
            writeln!(
                s,
                "op latency p50 {} us, p90 {} us, p99 {} us, p99.9 {} us, max {} us, {} samples ({})",
                l.p50_us,
                l.p90_us,
                l.p99_us,
                l.p999_us,
                l.max_us,
                l.count,
                if self.latency_exact {
                    "merged histograms"
                } else {
                    "percentiles: max over clients"
                }
            )
            .ok();
        }
        for c in &self.clients {
            if let Some(f) = c.summary.as_ref().and_then(|s| s.failure.as_ref()) {
                writeln!(s, "{} failed: {f}", c.node).ok();
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn course_parse_and_median() {
        let log = "Starting KVS server on 127.0.0.1:1\nget/s 1.00\nput/s 2.00\nops/s 3.00\n\nops/s 5.00\n\nops/s 100.00\n";
        assert_eq!(ops_lines(log), vec![3.0, 5.0, 100.0]);
        assert_eq!(median(&ops_lines(log)), Some(5.0));
    }

    #[test]
    fn report_from_a_log_dir() {
        let dir = std::env::temp_dir().join(format!("kvrun-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("kvsserver-node0.log"),
            "ops/s 10.00\nops/s 30.00\nops/s 20.00\n",
        )
        .unwrap();
        std::fs::write(dir.join("kvsserver-node1.log"), "ops/s 5.00\n").unwrap();
        std::fs::write(
            dir.join("kvsclient-node2.log"),
            "ops/s 1\nthroughput 12.50 ops/s\n",
        )
        .unwrap();
        std::fs::write(dir.join("kvsclient-node3.log"), "").unwrap();
        let lat = |p: u64| LatencySummary {
            count: 10,
            p50_us: p,
            p90_us: p,
            p99_us: p,
            p999_us: p,
            max_us: p,
        };
        let mut h = LatencyHistogram::default();
        h.record_n(40, 10);
        let sum = ClientSummary {
            totals: ClientCounts {
                gets: 12,
                puts: 3,
                generated: 15,
                sent: 15,
                failed: 0,
            },
            elapsed_s: 2.0,
            op_latency: Some(lat(40)),
            ..Default::default()
        };
        let mut json = serde_json::to_value(&sum).unwrap();
        json["op_latency_hdr"] = h.to_hex().into();
        std::fs::write(dir.join("client-node3.summary.json"), json.to_string()).unwrap();
        let r = build(&dir).unwrap();
        let text = r.text();
        assert!(
            text.starts_with("node0 median 20 op/s\nnode1 median 5 op/s\n\ntotal 25 op/s\n"),
            "{text}"
        );
        assert!(text.contains("clients 2 combined 20 op/s"), "{text}");
        assert!(
            r.latency_exact,
            "one client with a histogram merges exactly"
        );
        // node2 had no summary, so op counts are not claimed as the run's.
        assert_eq!(r.completed, None);
        assert!(
            text.contains("ops generated 15 completed 15 failed 0 (only 1 of 2 clients: node3)\n"),
            "{text}"
        );
        assert!(
            text.contains("node2 counts missing: no summary written\n"),
            "{text}"
        );
        assert_eq!(r.op_latency.unwrap().p50_us, 40);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A client killed mid-run leaves the `{}` it wrote at start: its
    /// counts are missing, not zero (issue 14 item 9).
    #[test]
    fn a_killed_clients_placeholder_is_missing_counts_not_zero() {
        let dir = std::env::temp_dir().join(format!("kvrun-report-killed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let full = ClientSummary {
            totals: ClientCounts {
                gets: 8,
                puts: 2,
                generated: 10,
                sent: 10,
                failed: 0,
            },
            elapsed_s: 1.0,
            ..Default::default()
        };
        for (node, json) in [
            ("node1", serde_json::to_string(&full).unwrap()),
            ("node2", "{}".to_string()),
            (
                "node3",
                r#"{"failure":"server 127.0.0.1:1 failed"}"#.to_string(),
            ),
        ] {
            std::fs::write(dir.join(format!("kvsclient-{node}.log")), "").unwrap();
            std::fs::write(dir.join(format!("client-{node}.summary.json")), json).unwrap();
        }
        let r = build(&dir).unwrap();
        let text = r.text();
        assert_eq!((r.generated, r.completed, r.failed), (None, None, None));
        assert_eq!(
            r.client_ops_per_s,
            Some(10.0),
            "node2 adds no 0 op/s figure"
        );
        let missing: Vec<_> = r
            .clients
            .iter()
            .map(|c| (c.node.as_str(), c.counts_missing.as_deref()))
            .collect();
        assert_eq!(
            missing,
            [
                ("node1", None),
                (
                    "node2",
                    Some("it stopped before writing its summary (killed?)")
                ),
                ("node3", Some("it failed before writing them")),
            ]
        );
        assert!(
            text.contains("ops generated 10 completed 10 failed 0 (only 1 of 3 clients: node1)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "node2 counts missing: it stopped before writing its summary (killed?)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("node3 failed: server 127.0.0.1:1 failed\n"),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn latency_merge_counts_add_percentiles_max() {
        let a = LatencySummary {
            count: 3,
            p50_us: 10,
            p90_us: 20,
            p99_us: 30,
            p999_us: 40,
            max_us: 50,
        };
        let b = LatencySummary {
            count: 7,
            p50_us: 15,
            p90_us: 18,
            p99_us: 35,
            p999_us: 39,
            max_us: 45,
        };
        let m = merge_latency(&[a, b, LatencySummary::default()]).unwrap();
        assert_eq!(
            (m.count, m.p50_us, m.p90_us, m.p99_us, m.p999_us, m.max_us),
            (10, 15, 20, 35, 40, 50)
        );
    }
}
