//! The runs table and the comparison of two runs, over `kv_core::runlog`
//! records: columns, sorting, filtering, number formatting. Shared by the
//! TUI and the plain-text commands; no terminal I/O.

use std::cmp::Ordering;

use kv_core::runlog::{RunRecord, RunStatus};
use serde::Serialize;

/// Columns of the runs table, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Started,
    RunId,
    Commit,
    Config,
    Workload,
    Status,
    TotalOps,
    P99,
    Note,
}

impl Column {
    pub const ALL: [Column; 9] = [
        Column::Started,
        Column::RunId,
        Column::Commit,
        Column::Config,
        Column::Workload,
        Column::Status,
        Column::TotalOps,
        Column::P99,
        Column::Note,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Started => "STARTED (UTC)",
            Column::RunId => "RUN ID",
            Column::Commit => "COMMIT",
            Column::Config => "CONFIG",
            Column::Workload => "WORKLOAD",
            Column::Status => "STATUS",
            Column::TotalOps => "TOTAL OPS/S",
            Column::P99 => "P99 US",
            Column::Note => "NOTE",
        }
    }

    /// The next column in the `s` sort cycle.
    pub fn next(self) -> Column {
        let i = Column::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Column::ALL[(i + 1) % Column::ALL.len()]
    }

    /// Text of this column for one run, safe for a terminal ([`printable`]).
    pub fn cell(self, r: &RunRecord) -> String {
        printable(&self.raw_cell(r))
    }

    fn raw_cell(self, r: &RunRecord) -> String {
        match self {
            Column::Started => short_time(&r.started_at),
            Column::RunId => r.run_id.clone(),
            Column::Commit => commit(r),
            Column::Config => config_summary(r),
            Column::Workload => match r.theta {
                Some(t) => format!("{} θ{t}", r.workload),
                None => r.workload.clone(),
            },
            Column::Status => match &r.status {
                RunStatus::Ok => "ok".to_string(),
                RunStatus::Failed(reason) => format!("FAILED: {reason}"),
            },
            Column::TotalOps => match throughput(r) {
                Some(t) => t.cell(),
                None => "-".to_string(),
            },
            Column::P99 => fmt_opt(r.p99_us, |v| v.to_string()),
            Column::Note => match (r.note.is_empty(), r.tag.is_empty()) {
                (_, true) => r.note.clone(),
                (true, false) => format!("[{}]", r.tag),
                (false, false) => format!("[{}] {}", r.tag, r.note),
            },
        }
    }

    /// True when this column has no value for the run (sorted last
    /// whatever the direction).
    pub fn is_missing(self, r: &RunRecord) -> bool {
        match self {
            Column::TotalOps => throughput(r).is_none(),
            Column::P99 => r.p99_us.is_none(),
            _ => false,
        }
    }

    /// Order of two runs by this column, ascending; unknown numbers last.
    pub fn compare(self, a: &RunRecord, b: &RunRecord) -> Ordering {
        fn num(a: Option<f64>, b: Option<f64>) -> Ordering {
            match (a, b) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }
        match self {
            Column::Started => a.started_at.cmp(&b.started_at),
            Column::RunId => a.run_id.cmp(&b.run_id),
            Column::Commit => a.git_commit.cmp(&b.git_commit),
            Column::Config => (a.servers, a.clients, &a.threads, a.batch, a.window)
                .cmp(&(b.servers, b.clients, &b.threads, b.batch, b.window)),
            Column::Workload => a.workload.cmp(&b.workload),
            Column::Status => a.status.to_string().cmp(&b.status.to_string()),
            Column::TotalOps => num(
                throughput(a).map(|t| t.ops_per_s),
                throughput(b).map(|t| t.ops_per_s),
            ),
            Column::P99 => num(a.p99_us.map(|v| v as f64), b.p99_us.map(|v| v as f64)),
            Column::Note => a.note.cmp(&b.note),
        }
        .then_with(|| a.run_id.cmp(&b.run_id))
    }
}

/// A run's throughput as the tables show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    pub ops_per_s: f64,
    /// The clients' figure: the run had no kvlab server measuring one
    /// (the in-process ceiling, Redis), or recorded none.
    pub clients_only: bool,
}

impl Throughput {
    /// `1,234,567`, or `1,234,567*` for the clients' figure.
    pub fn cell(self) -> String {
        let star = if self.clients_only { CLIENTS_ONLY } else { "" };
        format!("{}{star}", fmt_ops(self.ops_per_s))
    }
}

/// Marks a throughput that is the clients' figure ([`Throughput`]).
pub const CLIENTS_ONLY: &str = "*";

/// What `*` after a throughput means, for under a table.
pub const CLIENTS_ONLY_NOTE: &str =
    "* clients' ops/s: no kvlab server measured the run (in-process ceiling, Redis)";

/// The servers' total (the course's figure) when recorded, else the
/// clients' figure: every row that has a throughput shows one. A failed
/// run has neither.
pub fn throughput(r: &RunRecord) -> Option<Throughput> {
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
    match (finite(r.total_ops_per_s), finite(r.client_ops_per_s)) {
        (Some(v), _) => Some(Throughput {
            ops_per_s: v,
            clients_only: false,
        }),
        (None, Some(v)) => Some(Throughput {
            ops_per_s: v,
            clients_only: true,
        }),
        (None, None) => None,
    }
}

/// How the table is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: Column,
    pub descending: bool,
}

impl Default for Sort {
    /// Newest first.
    fn default() -> Self {
        Sort {
            column: Column::Started,
            descending: true,
        }
    }
}

/// Does the run match a `/` filter? Case-insensitive substring of note,
/// tag, commit, workload, run id, status or backend.
pub fn matches_filter(r: &RunRecord, filter: &str) -> bool {
    if filter.is_empty() {
        return true;
    }
    let needle = filter.to_lowercase();
    let status = r.status.to_string();
    [
        r.note.as_str(),
        r.tag.as_str(),
        r.git_commit.as_str(),
        r.workload.as_str(),
        r.run_id.as_str(),
        status.as_str(),
        r.backend.as_str(),
    ]
    .iter()
    .any(|f| f.to_lowercase().contains(&needle))
}

/// Indices of the runs to show, filtered then sorted.
pub fn visible_runs(runs: &[RunRecord], filter: &str, sort: Sort) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..runs.len())
        .filter(|&i| matches_filter(&runs[i], filter))
        .collect();
    let col = sort.column;
    idx.sort_by(|&a, &b| {
        let (ra, rb) = (&runs[a], &runs[b]);
        let o = col.compare(ra, rb);
        let o = if sort.descending { o.reverse() } else { o };
        col.is_missing(ra).cmp(&col.is_missing(rb)).then(o)
    });
    idx
}

impl Column {
    /// The narrower form of this column, if it has one: same information,
    /// fewer characters (a failed status without its reason, which the
    /// detail pane gives).
    fn short(self, r: &RunRecord) -> Option<String> {
        Some(match self {
            Column::Started => short_time(&r.started_at)
                .get(5..16)
                .unwrap_or_default()
                .to_string(),
            Column::Status => match &r.status {
                RunStatus::Ok => "ok".to_string(),
                RunStatus::Failed(_) => "FAILED".to_string(),
            },
            Column::Workload => printable(&match r.theta {
                Some(t) => format!("{} θ{t}", r.workload.trim_start_matches("YCSB-")),
                None => r.workload.clone(),
            }),
            Column::TotalOps => self.cell(r),
            _ => return None,
        })
    }

    fn short_title(self) -> &'static str {
        match self {
            Column::Started => "STARTED",
            Column::TotalOps => "OPS/S",
            _ => self.title(),
        }
    }
}

/// How the runs table gives way when narrow: shorter forms first, then
/// whole columns, least telling first; the run id, status, throughput and
/// p99 stay, and only the note is ever cut.
const RUNS_STEPS: [(Column, bool); 10] = [
    (Column::Started, true),
    (Column::Status, true),
    (Column::TotalOps, true),
    (Column::Workload, true),
    (Column::Note, false),
    (Column::Commit, false),
    (Column::Workload, false),
    (Column::Started, false),
    (Column::Config, false),
    (Column::P99, false),
];

/// The runs table over `rows` (indices into `runs`) with `cols`, fitted
/// to `width` with `gap` between columns (see [`crate::fit`]). `title`
/// gives each column's header (the browser adds its sort arrow).
pub fn fit_runs(
    runs: &[RunRecord],
    rows: &[usize],
    cols: &[Column],
    title: impl Fn(Column, &'static str) -> String,
    width: usize,
    gap: usize,
) -> Vec<(Column, crate::fit::Fitted)> {
    use crate::fit::{FitColumn, Step};
    let fit_cols: Vec<FitColumn> = cols
        .iter()
        .map(|&c| {
            let cells = rows.iter().map(|&i| c.cell(&runs[i])).collect();
            let mut f = FitColumn::new(title(c, c.title()), cells);
            if matches!(c, Column::TotalOps | Column::P99) {
                f = f.right();
            }
            if c == Column::Note {
                f = f.flex(20);
            }
            let short: Option<Vec<String>> = rows.iter().map(|&i| c.short(&runs[i])).collect();
            if let Some(short) = short {
                f = f.short(title(c, c.short_title()), short);
            }
            f
        })
        .collect();
    let steps: Vec<Step> = RUNS_STEPS
        .iter()
        .filter_map(|&(c, shorten)| {
            let i = cols.iter().position(|x| *x == c)?;
            Some(if shorten {
                Step::Shorten(i)
            } else {
                Step::Drop(i)
            })
        })
        .collect();
    crate::fit::fit(fit_cols, &steps, width, gap)
        .into_iter()
        .map(|f| (cols[f.index], f))
        .collect()
}

/// The cells of every visible run, in [`Column::ALL`] order.
pub fn table_cells(runs: &[RunRecord], visible: &[usize]) -> Vec<Vec<String>> {
    visible
        .iter()
        .map(|&i| Column::ALL.iter().map(|c| c.cell(&runs[i])).collect())
        .collect()
}

/// The run an id names: see [`runlog::find_run`] (prefix or 4-hex ending).
pub fn find_run<'a>(runs: &'a [RunRecord], id: &str) -> Result<&'a RunRecord, String> {
    kv_core::runlog::find_run(runs, id).map_err(|e| e.to_string())
}

/// `2025-01-31T12:00:00Z` → `2025-01-31 12:00:00`.
pub fn short_time(rfc3339: &str) -> String {
    rfc3339.trim_end_matches('Z').replacen('T', " ", 1)
}

pub fn commit(r: &RunRecord) -> String {
    let short: String = r.git_commit.chars().take(8).collect();
    if r.git_dirty == Some(true) {
        format!("{short}+")
    } else {
        short
    }
}

/// `2s 3c 4t b64 w8`: servers, clients, threads per client, batch, window.
pub fn config_summary(r: &RunRecord) -> String {
    let threads = (!r.threads.is_empty()).then(|| format!("{}t", r.threads));
    let parts = [(r.servers, "s"), (r.clients, "c")]
        .into_iter()
        .filter_map(|(v, unit)| v.map(|v| format!("{v}{unit}")))
        .chain(threads)
        .chain(r.batch.map(|v| format!("b{v}")))
        .chain(r.window.map(|v| format!("w{v}")));
    parts.collect::<Vec<_>>().join(" ")
}

pub fn fmt_opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".to_string())
}

/// Ops/s with thousands separators, no decimals: `1,234,567`.
pub fn fmt_ops(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A log field as `show` prints it, by its column's unit (see
/// `kv_core::runlog::TABLE`): ops with separators, bytes in binary units,
/// percentages and seconds with one decimal; no raw floats like
/// `3057417.134194691`. Empty is `-`; text is [`printable`].
pub fn field_value(name: &str, unit: &str, raw: &str) -> String {
    if raw.is_empty() {
        return "-".into();
    }
    let Ok(v) = raw.parse::<f64>() else {
        return printable(raw);
    };
    // Counts of ops and keys get separators; a batch size (also in ops)
    // or a seed stays as typed.
    let count = name.ends_with("_ops") || name == "preload";
    match unit {
        "ops/s" => fmt_ops(v),
        _ if count => fmt_ops(v),
        "bytes" => fmt_bytes(v),
        "bytes/s" => format!("{}/s", fmt_bytes(v)),
        "seconds" => format!("{v:.1}"),
        u if u.starts_with('%') => format!("{v:.1}"),
        _ => printable(raw),
    }
}

/// Bytes in binary units: `1.5 MiB`.
pub fn fmt_bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut u = 0;
    while v.abs() >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Text from the log as a terminal may show it: newlines, tabs and every
/// other control character (escape sequences included) written as escapes
/// (`\n`, `\t`, `\u{1b}`), so a note can neither break a table nor drive
/// the terminal. The CSV keeps the text exactly.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// One config value of two runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigDiff {
    pub name: &'static str,
    pub a: String,
    pub b: String,
    pub differs: bool,
}

/// One metric of two runs and its change from A to B.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricDiff {
    pub name: &'static str,
    pub unit: &'static str,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// (B − A) / A × 100; `None` when either is unknown or A is zero.
    pub change_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub config: Vec<ConfigDiff>,
    pub metrics: Vec<MetricDiff>,
}

/// Every config value and metric of two runs side by side.
pub fn compare(a: &RunRecord, b: &RunRecord) -> Comparison {
    fn s<T: ToString>(v: &Option<T>) -> String {
        v.as_ref().map(T::to_string).unwrap_or_default()
    }
    let cfg = |name: &'static str, f: &dyn Fn(&RunRecord) -> String| {
        let (va, vb) = (f(a), f(b));
        ConfigDiff {
            name,
            differs: va != vb,
            a: va,
            b: vb,
        }
    };
    let config = vec![
        cfg("started_at", &|r| r.started_at.clone()),
        cfg("git_commit", &|r| r.git_commit.clone()),
        cfg("git_dirty", &|r| s(&r.git_dirty)),
        cfg("backend", &|r| r.backend.clone()),
        cfg("hosts", &|r| r.hosts.clone()),
        cfg("servers", &|r| s(&r.servers)),
        cfg("clients", &|r| s(&r.clients)),
        cfg("threads", &|r| r.threads.to_string()),
        cfg("connections", &|r| s(&r.connections)),
        cfg("batch", &|r| s(&r.batch)),
        cfg("window", &|r| s(&r.window)),
        cfg("workload", &|r| r.workload.clone()),
        cfg("theta", &|r| s(&r.theta)),
        cfg("preload", &|r| s(&r.preload)),
        cfg("seed", &|r| s(&r.seed)),
        cfg("note", &|r| printable(&r.note)),
        cfg("tag", &|r| r.tag.clone()),
        cfg("status", &|r| r.status.to_string()),
    ];
    let metric = |name: &'static str, unit: &'static str, f: &dyn Fn(&RunRecord) -> Option<f64>| {
        let (va, vb) = (f(a), f(b));
        let change_percent = match (va, vb) {
            (Some(x), Some(y)) if x != 0.0 => Some((y - x) / x * 100.0),
            _ => None,
        };
        MetricDiff {
            name,
            unit,
            a: va,
            b: vb,
            change_percent,
        }
    };
    let u = |v: Option<u64>| v.map(|v| v as f64);
    let metrics = vec![
        metric("total_ops_per_s", "ops/s", &|r| r.total_ops_per_s),
        metric("client_ops_per_s", "ops/s", &|r| r.client_ops_per_s),
        metric("p50_us", "us", &|r| u(r.p50_us)),
        metric("p99_us", "us", &|r| u(r.p99_us)),
        metric("p999_us", "us", &|r| u(r.p999_us)),
        metric("duration_s", "s", &|r| r.duration_s),
        metric("generated_ops", "ops", &|r| u(r.generated_ops)),
        metric("completed_ops", "ops", &|r| u(r.completed_ops)),
        metric("server_cpu_percent", "%", &|r| r.server_cpu_percent),
        metric("client_cpu_percent", "%", &|r| r.client_cpu_percent),
        metric("server_peak_rss_bytes", "bytes", &|r| {
            u(r.server_peak_rss_bytes)
        }),
        metric("client_peak_rss_bytes", "bytes", &|r| {
            u(r.client_peak_rss_bytes)
        }),
        metric("net_bytes_per_s", "bytes/s", &|r| r.net_bytes_per_s),
    ];
    Comparison {
        a: a.run_id.clone(),
        b: b.run_id.clone(),
        config,
        metrics,
    }
}

/// A metric value for tables: ops with separators, bytes in binary units.
pub fn fmt_metric(unit: &str, v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(v) => match unit {
            "ops/s" | "ops" => fmt_ops(v),
            "bytes" => fmt_bytes(v),
            "bytes/s" => format!("{}/s", fmt_bytes(v)),
            "%" => format!("{v:.1}"),
            _ => {
                if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            }
        },
    }
}

/// `+12.3%`, `-4.0%`, or `-`.
pub fn fmt_change(p: Option<f64>) -> String {
    match p {
        Some(p) => format!("{p:+.1}%"),
        None => "-".to_string(),
    }
}

/// The check-mode witness pages of a run (`logs/witness-key-K.html`, one
/// per failing key kv-check drew), sorted.
pub fn witness_pages(dir: &std::path::Path, run_id: &str) -> Vec<std::path::PathBuf> {
    let logs = kv_core::runlog::RunDir::new(dir, run_id).logs_dir();
    let mut pages: Vec<std::path::PathBuf> = std::fs::read_dir(&logs)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("witness-key-") && n.ends_with(".html"))
        })
        .collect();
    pages.sort();
    pages
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn run(id: &str, started: &str, ops: Option<f64>) -> RunRecord {
        let mut r = RunRecord::new(SystemTime::now());
        r.run_id = id.into();
        r.started_at = started.into();
        r.total_ops_per_s = ops;
        r
    }

    #[test]
    fn newest_first_and_sort_by_ops_with_unknown_last() {
        let runs = vec![
            run("a", "2025-01-01T00:00:00Z", Some(10.0)),
            run("b", "2025-01-03T00:00:00Z", None),
            run("c", "2025-01-02T00:00:00Z", Some(30.0)),
        ];
        assert_eq!(visible_runs(&runs, "", Sort::default()), [1, 2, 0]);
        let by_ops = Sort {
            column: Column::TotalOps,
            descending: false,
        };
        assert_eq!(visible_runs(&runs, "", by_ops), [0, 2, 1]);
        let by_ops_desc = Sort {
            descending: true,
            ..by_ops
        };
        assert_eq!(visible_runs(&runs, "", by_ops_desc), [2, 0, 1]);
    }

    #[test]
    fn filter_and_find() {
        let mut runs = vec![
            run("20250101-000000-aaaa", "x", None),
            run("20250102-000000-bbbb", "y", None),
        ];
        runs[1].note = "Batch 128".into();
        assert_eq!(visible_runs(&runs, "batch", Sort::default()), [1]);
        assert_eq!(
            find_run(&runs, "20250102").unwrap().run_id,
            "20250102-000000-bbbb"
        );
        assert!(find_run(&runs, "2025").unwrap_err().contains("ambiguous"));
        assert!(find_run(&runs, "nope")
            .unwrap_err()
            .contains("unknown run id"));
    }

    #[test]
    fn compare_percentages() {
        let a = run("a", "t", Some(100_000.0));
        let mut b = run("b", "t", Some(150_000.0));
        b.servers = Some(2);
        let c = compare(&a, &b);
        assert_eq!(c.metrics[0].change_percent, Some(50.0));
        assert!(
            c.config
                .iter()
                .find(|d| d.name == "servers")
                .unwrap()
                .differs
        );
        assert!(
            !c.config
                .iter()
                .find(|d| d.name == "workload")
                .unwrap()
                .differs
        );
        assert_eq!(fmt_change(Some(50.0)), "+50.0%");
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_ops(1_234_567.4), "1,234,567");
        assert_eq!(fmt_ops(999.0), "999");
        assert_eq!(fmt_bytes(1536.0), "1.5 KiB");
        assert_eq!(short_time("2025-01-31T12:00:00Z"), "2025-01-31 12:00:00");
    }
}
