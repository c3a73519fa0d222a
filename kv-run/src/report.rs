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
        let summary: Option<ClientSummary> = std::fs::read_to_string(&json)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let throughput = match &summary {
            Some(s) => s.throughput(),
            None => client_throughput_line(&std::fs::read_to_string(&path).unwrap_or_default()),
        };
        clients.push(ClientFigures {
            node,
            summary,
            throughput,
        });
    }
    let tputs: Vec<f64> = clients.iter().filter_map(|c| c.throughput).collect();
    let sums: Vec<&ClientSummary> = clients.iter().filter_map(|c| c.summary.as_ref()).collect();
    let all_summaries = !clients.is_empty() && sums.len() == clients.len();
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
        // node2 had no summary, so op counts are not claimed.
        assert_eq!(r.completed, None);
        assert_eq!(r.op_latency.unwrap().p50_us, 40);
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
