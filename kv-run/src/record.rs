//! `kv-run record`: writes the run's row to `experiments/log.csv` and fills
//! `experiments/runs/<run_id>/` (config, summary, time series, logs,
//! profiles, charts) through `kv_core::runlog`. A failed run gets its reason
//! and no throughput figure. Also `plot-scaling` across recorded runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use kv_core::facts::NodeFacts;
use kv_core::figures::{RunFigures, Window, DEFAULT_WARMUP_S};
use kv_core::runlog::{
    append_run, node_medians, read_timeseries, write_json, write_timeseries, PerClient,
    ProfileKind, RunDir, RunRecord, RunStatus, RunSummary, TimeseriesRow,
};
use kv_core::series::TrialInfo;
use kv_core::summary::{ClientSummary, ServerSummary};
use serde_json::json;

use crate::lost::Lost;
use crate::manifest::{log_dir_of, Manifest};
use crate::plot::{self, Series};
use crate::report;

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    #[arg(long)]
    pub manifest: PathBuf,
    /// The experiments directory (holds log.csv and runs/).
    #[arg(long)]
    pub experiments: PathBuf,
    /// Mark the run failed with this reason (one line).
    #[arg(long)]
    pub failed: Option<String>,
    /// Per-second series from `kv-run collect` (default: LOGDIR/timeseries.csv).
    #[arg(long)]
    pub timeseries: Option<PathBuf>,
    /// Wall time of the whole run, seconds.
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Seconds after load start left out of the steady figure
    /// (`kv_core::figures`).
    #[arg(long, default_value_t = DEFAULT_WARMUP_S)]
    pub warmup: f64,
    /// The repository whose commit ran (default: current directory).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
}

fn cmd_out(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let o = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// `(commit, dirty)` of the repository.
fn git_state(repo: &Path) -> (String, Option<bool>) {
    let commit = cmd_out("git", &["rev-parse", "--short=12", "HEAD"], repo).unwrap_or_default();
    let dirty = cmd_out(
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
        repo,
    )
    .map(|s| !s.is_empty());
    (commit, dirty)
}

/// Builds the log row from the manifest, the report and the time series.
pub fn build_record(
    m: &Manifest,
    rep: &report::Report,
    rows: &[TimeseriesRow],
    status: RunStatus,
    duration_s: Option<f64>,
    warmup_s: f64,
    repo: &Path,
) -> RunRecord {
    let mut r = RunRecord::new(std::time::SystemTime::now());
    r.run_id = m.run_id.clone();
    r.started_at = m.started_at.clone();
    r.duration_s = duration_s;
    (r.git_commit, r.git_dirty) = git_state(repo);
    // Emulated runs carry their resources: `emulated cpus=0.2,...`.
    r.backend = m
        .emulate
        .as_ref()
        .map_or_else(|| m.backend.clone(), |e| e.backend_label());
    r.hosts = m.hosts().join(";");
    r.servers = Some(m.servers().count() as u32);
    r.clients = Some(m.clients().count() as u32);
    r.threads = PerClient::of(m.client_threads());
    // The plan's facts, parsed once before the run (no args text here).
    if let Some(c) = m.client_facts() {
        r.connections = Some(c.connections);
        r.batch = Some(c.batch);
        r.window = Some(c.window);
        // Typed: `ycsb-a`, `a` and `YCSB-A` are all `YCSB-A`.
        r.workload = c.workload.name().to_string();
        r.theta = Some(c.theta.get());
    }
    r.preload = m.preloaded_keys();
    r.seed = Some(m.seed);
    r.note = m.note.clone();
    r.tag = m.tag.clone();
    r.status = status;
    r.total_ops_per_s = Some(rep.total_ops_per_s);
    r.client_ops_per_s = rep.client_ops_per_s;
    if let Some(l) = rep.op_latency {
        r.p50_us = Some(l.p50_us);
        r.p99_us = Some(l.p99_us);
        r.p999_us = Some(l.p999_us);
    }
    r.generated_ops = rep.generated;
    r.completed_ops = rep.completed;
    RunFigures::of(
        rows,
        Window {
            warmup_s,
            secs: m.secs,
        },
    )
    .apply_to(&mut r);
    r
}

/// The nodes whose summary reports another config than the plan's, as one
/// line (`config differs from the plan: node1 threads: planned 4, ran 3`).
/// A node without facts (older manifest) or without a readable summary (it
/// failed; other checks say so) is not compared.
pub fn config_mismatch(m: &Manifest, log_dir: &Path) -> Option<String> {
    let mut found = Vec::new();
    for n in &m.nodes {
        let (Some(planned), Some(file)) = (&n.facts, &n.summary_json) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(log_dir.join(file)) else {
            continue;
        };
        let ran = if n.is_server() {
            serde_json::from_str::<ServerSummary>(&text)
                .ok()
                .map(|s| NodeFacts::Server(s.config))
        } else {
            serde_json::from_str::<ClientSummary>(&text)
                .ok()
                .and_then(|s| s.config)
                .map(NodeFacts::Client)
        };
        if let Some(ran) = ran {
            found.extend(
                planned
                    .differences(&ran)
                    .into_iter()
                    .map(|d| format!("{} {d}", n.name)),
            );
        }
    }
    (!found.is_empty()).then(|| format!("config differs from the plan: {}", found.join("; ")))
}

fn version_of(bin: &Path) -> String {
    cmd_out(&bin.display().to_string(), &["--version"], Path::new("."))
        .unwrap_or_else(|| "unknown".into())
}

fn host_info() -> serde_json::Value {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let mem_total = read("/proc/meminfo")
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    json!({
        "hostname": read("/proc/sys/kernel/hostname"),
        "kernel": read("/proc/sys/kernel/osrelease"),
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "mem_total": mem_total,
    })
}

/// Records the run; returns the run folder. The row is appended to
/// log.csv first (one small write), then each file of the run folder is
/// written on its own: on a full disk the row survives, and the error
/// ([`Incomplete`](crate::lost::Incomplete)) names every file lost.
pub fn record(a: &RecordArgs) -> Result<PathBuf> {
    let m = Manifest::read(&a.manifest)?;
    let log_dir = log_dir_of(&a.manifest);
    let rep = report::build(&log_dir)?;
    let ts_path = a
        .timeseries
        .clone()
        .unwrap_or_else(|| log_dir.join("timeseries.csv"));
    let rows = if ts_path.exists() {
        read_timeseries(&ts_path).unwrap_or_default()
    } else {
        Vec::new()
    };
    let status = match &a.failed {
        Some(reason) => RunStatus::Failed(reason.clone()),
        None => RunStatus::Ok,
    };
    // A process that ran with another config than planned makes the row's
    // config columns untrue: the run is failed, naming the difference.
    let status = match (status, config_mismatch(&m, &log_dir)) {
        (s, None) => s,
        (RunStatus::Ok, Some(d)) => {
            eprintln!("kv-run record: {d}");
            RunStatus::Failed(d)
        }
        (RunStatus::Failed(r), Some(d)) => RunStatus::Failed(format!("{r}; {d}")),
    };
    let mut record = build_record(&m, &rep, &rows, status, a.duration_s, a.warmup, &a.repo);
    // The row's series and config identity (issue 15); trial.json later.
    let trial = crate::trials::trial_info(&m, &record, &a.repo);
    record.series_id = trial.series_id.clone();
    record.config_hash = trial.config_hash.clone();
    append_run(&a.experiments, &record).context("the run's row could not be written")?;

    let run = RunDir::new(&a.experiments, &m.run_id);
    let mut lost = Lost::default();
    if let Err(e) = run.create() {
        lost.other("the whole folder", e);
        lost.into_result(run.path(), &kv_core::runlog::log_path(&a.experiments))?;
        return Ok(run.path().to_path_buf());
    }
    // Small files first: what the run was and what it measured.
    lost.file(
        "trial.json",
        &TrialInfo::path(&a.experiments, &m.run_id),
        trial.write(&a.experiments, &m.run_id),
    );
    let bin = PathBuf::from(&m.bin_dir);
    let (commit, dirty) = (record.git_commit.clone(), record.git_dirty);
    lost.file(
        "config.json",
        &run.config_json(),
        write_json(
            &run.config_json(),
            &json!({
                "run_id": m.run_id,
                "script_args": m.script_args,
                "manifest": m,
                "versions": {
                    "kv-run": env!("CARGO_PKG_VERSION"),
                    "kv-server": version_of(&bin.join("kv-server")),
                    "kv-client": version_of(&bin.join("kv-client")),
                },
                "git": { "commit": commit, "dirty": dirty },
                "host": host_info(),
            }),
        ),
    );
    lost.file(
        "summary.json",
        &run.summary_json(),
        write_json(
            &run.summary_json(),
            &RunSummary {
                record: record.clone(),
                nodes: node_medians(&rows),
            },
        ),
    );
    let report_json = run.path().join("report.json");
    lost.file("report.json", &report_json, write_json(&report_json, &rep));
    let report_txt = run.path().join("report.txt");
    lost.file(
        "report.txt",
        &report_txt,
        std::fs::write(&report_txt, rep.text()),
    );
    // Then the bulky ones: logs, histories, series, profiles, charts.
    copy_logs(&log_dir, &run, &mut lost);
    lost.file(
        "timeseries.csv",
        &run.timeseries_csv(),
        write_timeseries(&run.timeseries_csv(), &rows),
    );
    // Profiles, named <role>-<node>.<ext> as runlog expects.
    for n in &m.nodes {
        let Some(prefix) = &n.profile_prefix else {
            continue;
        };
        for kind in [ProfileKind::Svg, ProfileKind::Pb, ProfileKind::Folded] {
            let src = log_dir.join(format!("{prefix}.{}", kind.extension()));
            if src.exists() {
                let to = run.profile(n.role, &n.name, kind);
                let what = to
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                lost.file(&what, &to, std::fs::copy(&src, &to).map(|_| ()));
            }
        }
        titled_svg(&run, n, &record);
    }
    for (file, r) in plot::run_charts(run.path(), &rows) {
        lost.file(
            file,
            &run.path().join(file),
            r.map_err(|e| format!("{e:#}")),
        );
    }
    lost.into_result(run.path(), &kv_core::runlog::log_path(&a.experiments))?;
    Ok(run.path().to_path_buf())
}

/// Logs, the manifest, client summaries and reports into `runs/<id>/logs`.
/// Histories are big: moved, not copied, so each is stored once.
fn copy_logs(log_dir: &Path, run: &RunDir, lost: &mut Lost) {
    let entries = match std::fs::read_dir(log_dir) {
        Ok(e) => e,
        Err(e) => return lost.other(&format!("the logs of {}", log_dir.display()), e),
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let history =
            name.starts_with("history-") && (name.ends_with(".csv") || name.ends_with(".hist"));
        let keep = name.ends_with(".log")
            || name.ends_with(".json")
            || name.ends_with(".txt")
            || name.ends_with(".hlog")
            || name.ends_with(".html")
            || history;
        if !keep || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let to = run.logs_dir().join(&name);
        let what = format!("logs/{name}");
        if history && std::fs::rename(e.path(), &to).is_ok() {
            continue;
        }
        let copied = std::fs::copy(e.path(), &to).map(|_| ());
        let failed = copied.is_err();
        lost.file(&what, &to, copied);
        if history && !failed {
            if let Err(err) = std::fs::remove_file(e.path()) {
                eprintln!("kv-run record: warning: {name} stored but not removed: {err}");
            }
        }
    }
}

/// Redraws a process's SVG from its folded stacks, titled with the run id,
/// process and config so it can go into a lab report as it is. The
/// process's own SVG stays when this fails (a warning, not a lost run).
fn titled_svg(run: &RunDir, n: &kv_core::manifest::Node, r: &kv_core::runlog::RunRecord) {
    let folded = run.profile(n.role, &n.name, ProfileKind::Folded);
    let svg = run.profile(n.role, &n.name, ProfileKind::Svg);
    if !folded.exists() {
        return;
    }
    let process = svg
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let opt = |v: Option<u32>, unit: &str| v.map(|v| format!("{v}{unit}")).unwrap_or_default();
    let title = format!(
        "run {} · {process} · {} {} {}t b{} w{} {}",
        r.run_id,
        opt(r.servers, "s"),
        opt(r.clients, "c"),
        r.threads,
        opt(r.batch, ""),
        opt(r.window, ""),
        r.workload
    );
    let subtitle = format!("commit {} · started {}", r.git_commit, r.started_at);
    // Beside it, then over it: a failed write leaves the untitled SVG whole.
    let tmp = svg.with_extension("svg.tmp");
    let r = kv_core::folded::write_svg(&folded, &tmp, &title, &subtitle)
        .and_then(|()| std::fs::rename(&tmp, &svg));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("kv-run record: warning: {} not titled: {e}", svg.display());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScaleBy {
    Clients,
    Servers,
}

#[derive(Debug, clap::Args)]
pub struct ScalingArgs {
    #[arg(long)]
    pub experiments: PathBuf,
    /// Runs whose tag or note equals this.
    #[arg(long)]
    pub tag: String,
    #[arg(long, value_enum, default_value = "clients")]
    pub by: ScaleBy,
    /// Output SVG (default: <experiments>/scaling-<tag>.svg).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Every valid run of a log; a row that is not data (torn, bad value) is
/// named on stderr with its line and skipped, never read as a run.
pub fn read_runs(log: &Path) -> Result<Vec<RunRecord>> {
    let read = kv_core::runlog::read_log_all(log)?;
    for w in read.warnings() {
        eprintln!("kv-run: {w}");
    }
    Ok(read.runs)
}

/// Throughput against cluster size for the ok runs sharing a tag or note.
pub fn plot_scaling(a: &ScalingArgs) -> Result<(PathBuf, String)> {
    let runs = read_runs(&kv_core::runlog::log_path(&a.experiments))?;
    let mut pts: Vec<(f64, f64, f64)> = runs
        .iter()
        .filter(|r| r.status.is_ok() && (r.tag == a.tag || r.note == a.tag))
        .filter_map(|r| {
            let x = match a.by {
                ScaleBy::Clients => r.clients?,
                ScaleBy::Servers => r.servers?,
            };
            Some((
                x as f64,
                r.total_ops_per_s?,
                r.client_ops_per_s.unwrap_or(f64::NAN),
            ))
        })
        .collect();
    anyhow::ensure!(
        !pts.is_empty(),
        "no successful run has tag or note '{}'",
        a.tag
    );
    pts.sort_by(|p, q| p.0.total_cmp(&q.0));
    let by = match a.by {
        ScaleBy::Clients => "clients",
        ScaleBy::Servers => "servers",
    };
    let mut table = format!("{by} total_ops_per_s client_ops_per_s\n");
    for (x, t, c) in &pts {
        table.push_str(&format!("{x:.0} {t:.0} {c:.0}\n"));
    }
    // Repeated trials of one size: their median, with the range as a band.
    let series = vec![
        Series::of_trials(
            "total (sum of server medians)",
            &pts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
        ),
        Series::of_trials(
            "clients combined",
            &pts.iter()
                .filter(|p| p.2.is_finite())
                .map(|p| (p.0, p.2))
                .collect::<Vec<_>>(),
        ),
    ];
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.experiments.join(format!("scaling-{}.svg", a.tag)));
    plot::line_chart(
        &out,
        &format!("throughput vs {by} ({})", a.tag),
        by,
        "ops/s",
        &series,
    )?;
    Ok((out, table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_core::facts::ClientFacts;
    use kv_core::manifest::{Node, MANIFEST_VERSION};
    use kv_core::stats::Role;

    fn node(i: usize, role: Role, threads: Option<u32>) -> Node {
        Node {
            name: format!("node{i}"),
            role,
            host: "127.0.0.1".into(),
            ssh: None,
            ssh_port: None,
            bind: "127.0.0.1".into(),
            port: 9000 + i as u16,
            stats_addr: format!("127.0.0.1:{}", 9000 + i),
            argv: Vec::new(),
            log: String::new(),
            pid: None,
            remote_pid: None,
            remote_dir: None,
            client_id: None,
            seeds: None,
            summary_json: None,
            profile_prefix: None,
            threads,
            facts: threads.map(|t| NodeFacts::Client(client_facts(t))),
        }
    }

    fn client_facts(threads: u32) -> ClientFacts {
        ClientFacts {
            workload: kv_core::workload::Workload::A,
            theta: kv_core::workload::Theta::new(0.99).unwrap(),
            secs: 1.0,
            threads,
            batch: 1024,
            window: 8,
            connections: 2,
            seed: 1,
            client_id: 0,
            hosts: vec!["127.0.0.1:9000".into()],
            in_process_preload: None,
            open_loop: None,
            check: false,
        }
    }

    fn manifest(nodes: Vec<Node>) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            run_id: "20260101-000000-abcd".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            backend: "hosts".into(),
            secs: 1.0,
            seed: 1,
            threads: 2,
            server_args: String::new(),
            client_args: "--workload a".into(),
            note: String::new(),
            tag: String::new(),
            profile: false,
            check: false,
            bin_dir: String::new(),
            remote_dir: None,
            script_args: Vec::new(),
            nodes,
            emulate: None,
        }
    }

    /// Two clients on hosts with different core counts: both counts are
    /// in the row, and survive the log file.
    #[test]
    fn every_clients_threads_are_recorded() {
        let dir = std::env::temp_dir().join(format!("kvlab-record-threads-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rep = report::build(&dir).unwrap();
        let m = manifest(vec![
            node(0, Role::Server, None),
            node(1, Role::Client, Some(2)),
            node(2, Role::Client, Some(4)),
        ]);
        let r = build_record(&m, &rep, &[], RunStatus::Ok, None, 2.0, &dir);
        assert_eq!(r.threads.values(), [2, 4]);
        assert_eq!(r.workload, "YCSB-A");
        append_run(&dir, &r).unwrap();
        let back = kv_core::runlog::read_log(&kv_core::runlog::log_path(&dir)).unwrap();
        assert_eq!(back[0].threads, r.threads);
        assert_eq!(back[0].threads.to_string(), "2;4");
        // Equal counts fold to one number, as older rows hold it.
        let m = manifest(vec![
            node(0, Role::Server, None),
            node(1, Role::Client, Some(3)),
            node(2, Role::Client, Some(3)),
        ]);
        let r = build_record(&m, &rep, &[], RunStatus::Ok, None, 2.0, &dir);
        assert_eq!(
            (r.threads.uniform(), r.threads.to_string()),
            (Some(3), "3".into())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A client that ran with other threads than planned is named, in one
    /// line; one that agrees, or left no summary, is not.
    #[test]
    fn a_config_other_than_planned_is_named() {
        let dir = std::env::temp_dir().join(format!("kvlab-record-facts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut nodes = vec![
            node(0, Role::Server, None),
            node(1, Role::Client, Some(4)),
            node(2, Role::Client, Some(2)),
            node(3, Role::Client, Some(2)),
        ];
        for n in &mut nodes[1..] {
            n.summary_json = Some(format!("client-{}.summary.json", n.name));
        }
        let m = manifest(nodes);
        let write = |name: &str, threads: u32| {
            let s = ClientSummary {
                config: Some(client_facts(threads)),
                ..Default::default()
            };
            let path = dir.join(format!("client-{name}.summary.json"));
            std::fs::write(path, serde_json::to_string(&s).unwrap()).unwrap();
        };
        write("node1", 3);
        write("node2", 2);
        // node3 left no summary.
        let line = config_mismatch(&m, &dir).expect("node1 differs");
        assert_eq!(
            line,
            "config differs from the plan: node1 threads: planned 4, ran 3"
        );
        write("node1", 4);
        assert_eq!(config_mismatch(&m, &dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
