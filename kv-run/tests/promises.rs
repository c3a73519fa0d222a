//! run-cluster.sh's documented promises (docs/run-cluster.md, "Failure and
//! quitting" and "Backends"), each held by a test with the real script,
//! the real binaries and temporary directories (issue 20 item 10):
//! Ctrl-C/SIGTERM exit codes and recorded causes, a failing client stopping
//! the rest (and the report naming its missing counts, issue 14 item 9),
//! the hang deadline, `--ready-timeout` naming the silent server, the
//! default thread count, and `kv-run report --json`. Signals go by PID to
//! processes the test started (the script) or the script recorded.
//! (`--secs` in client args winning: runmodel.rs and course.rs.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kv_core::runlog::{log_path, read_log, RunDir, RunRecord, RunStatus};
use kv_core::stats::Role;
use kv_run::manifest::Manifest;
use kv_testkit::live_screen::ops_of;
use kv_testkit::{pid_gone, TempDir};

const KV_RUN: &str = env!("CARGO_BIN_EXE_kv-run");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn bin_dir() -> PathBuf {
    let bins = Path::new(KV_RUN).parent().unwrap().to_path_buf();
    for b in ["kv-server", "kv-client"] {
        assert!(
            bins.join(b).exists(),
            "{b} missing: `cargo build --workspace --bins` first"
        );
    }
    bins
}

/// The script with test directories and the binaries in `bins`.
fn script_with(tmp: &Path, bins: &Path) -> Command {
    let mut c = Command::new(repo().join("run-cluster.sh"));
    c.current_dir(repo())
        .env("KVLAB_BIN_DIR", bins)
        .env("KVLAB_EXPERIMENTS_DIR", tmp.join("experiments"))
        .env("KVLAB_LOG_ROOT", tmp.join("logs"))
        .stdin(Stdio::null());
    c
}

fn script(tmp: &Path) -> Command {
    script_with(tmp, &bin_dir())
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn rows(tmp: &Path) -> Vec<RunRecord> {
    read_log(&log_path(&tmp.join("experiments"))).unwrap()
}

/// The manifest once every node has a PID (all started).
fn started_manifest(tmp: &Path) -> Manifest {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(Instant::now() < deadline, "nodes never started");
        if let Ok(m) = Manifest::read(&tmp.join("logs/latest/cluster.json")) {
            if m.nodes.iter().all(|n| n.pid.is_some()) {
                return m;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (bounded) until every client's log has a second of completed ops.
fn clients_under_load(tmp: &Path, m: &Manifest) {
    let deadline = Instant::now() + Duration::from_secs(90);
    for n in m.clients() {
        let log = tmp.join("logs/latest").join(&n.log);
        loop {
            assert!(Instant::now() < deadline, "{} never reported ops", n.name);
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.lines().any(|l| {
                l.strip_prefix("ops/s ")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .is_some_and(|v| v > 0.0)
            }) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn assert_no_process_left(m: &Manifest) {
    for n in &m.nodes {
        let pid = n.pid.unwrap();
        assert!(pid_gone(pid), "{} (pid {pid}) still running", n.name);
    }
}

fn finished(child: Child) -> Output {
    // Bounded: a run that hangs fails here, not by timing out CI.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(180)) {
        Ok(o) => o.unwrap(),
        Err(_) => panic!("run-cluster.sh (pid {pid}) did not end within 180 s"),
    }
}

/// Ctrl-C (SIGINT) and SIGTERM stop every process, exit 130 and 143, and
/// record the run as failed with the signal named.
#[test]
fn sigint_and_sigterm_exit_130_and_143_and_record_the_cause() {
    for (sig, code, cause) in [
        ("INT", 130, "interrupted (SIGINT)"),
        ("TERM", 143, "interrupted (SIGTERM)"),
    ] {
        // A folder per run: `logs/latest` must be this run's manifest.
        let tmp = TempDir::new(&format!("pr-sig{sig}"));
        let mut c = script(&tmp.0);
        c.args(["--secs", "60", "--no-profile", "1", "1", "--preload 1000"]);
        let child = spawn(c);
        let m = started_manifest(&tmp.0);
        // The script's own PID: a process this test started.
        kv_testkit::signal(child.id(), sig);
        let o = finished(child);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(code), "SIG{sig}: {out}");
        assert!(out.contains(&format!("Run FAILED: {cause}")), "{out}");
        assert_no_process_left(&m);
        let r = rows(&tmp.0);
        let row = r.iter().find(|r| r.run_id == m.run_id).expect("row");
        assert_eq!(row.status, RunStatus::Failed(cause.into()), "{out}");
    }
}

/// A client that exits non-zero (here SIGKILLed: status 137) stops the
/// others and the server at once, and the failed run's report names the
/// killed client's counts as missing instead of adding zeros (issue 14
/// item 9: it used to say `failed 0`). `kv-run report --json` gives the
/// same report as JSON.
#[test]
fn a_failing_client_stops_the_rest_and_its_counts_are_named_missing() {
    let tmp = TempDir::new("pr-client");
    let secs = 60.0;
    let mut c = script(&tmp.0);
    c.args(["--secs", "60", "--no-profile", "1", "3", "--preload 1000"]);
    let child = spawn(c);
    let m = started_manifest(&tmp.0);
    clients_under_load(&tmp.0, &m);
    let victim = m.nodes.last().unwrap();
    assert_eq!((victim.name.as_str(), victim.role), ("node3", Role::Client));
    kv_testkit::signal(victim.pid.unwrap(), "KILL");
    let o = finished(child);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let reason = "node3 (client) exited killed by signal 9 (SIGKILL)";
    assert!(out.contains(&format!("Error: {reason}")), "{out}");
    assert_no_process_left(&m);
    // The others were stopped (SIGINT: drain, summary), not left to run
    // their 60 s.
    let logs = tmp.0.join("logs/latest");
    for n in ["node1", "node2"] {
        let s: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(logs.join(format!("client-{n}.summary.json"))).unwrap(),
        )
        .unwrap();
        let elapsed = s["elapsed_s"].as_f64().unwrap();
        assert!(
            elapsed > 0.0 && elapsed < secs,
            "{n} ran {elapsed} s: {out}"
        );
        assert!(s["totals"]["generated"].as_u64().unwrap() > 0, "{s}");
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("node3 counts missing: it stopped before writing its summary (killed?)\n"),
        "{out}"
    );
    assert!(
        stdout.contains("(only 2 of 3 clients: node1, node2)\n"),
        "{out}"
    );
    let row = rows(&tmp.0)
        .into_iter()
        .find(|r| r.run_id == m.run_id)
        .unwrap();
    assert_eq!(row.status, RunStatus::Failed(reason.into()));
    assert_eq!(row.generated_ops, None, "no total claimed without node3");

    // `kv-run report --json`: the report of the folder as JSON, equal to
    // the recorded report.json, with node3's missing counts in it.
    let o = Command::new(KV_RUN)
        .args(["report", "--json"])
        .arg(&logs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            RunDir::new(&tmp.0.join("experiments"), &m.run_id)
                .path()
                .join("report.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json, recorded);
    let clients = json["clients"].as_array().unwrap();
    let missing: Vec<(&str, Option<&str>)> = clients
        .iter()
        .map(|c| (c["node"].as_str().unwrap(), c["counts_missing"].as_str()))
        .collect();
    assert_eq!(
        missing,
        [
            ("node1", None),
            ("node2", None),
            (
                "node3",
                Some("it stopped before writing its summary (killed?)")
            ),
        ]
    );
    assert!(json["generated"].is_null(), "{json}");
    assert_eq!(json["servers"][0]["node"], "node0");
    // The text report says the same figures.
    let o = Command::new(KV_RUN)
        .arg("report")
        .arg(&logs)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&o.stdout);
    let total = json["total_ops_per_s"].as_f64().unwrap();
    assert!(
        report.contains(&format!("total {total:.0} op/s")),
        "{report}"
    );
}

/// Clients still running at `1.5 × secs + slack` fail the run (the slack
/// is 60 s, KVLAB_HANG_SLACK_S for tests): one SIGSTOPped client, 2 s of
/// load and 2 s of slack fail at 5 s, and the stopped client is killed.
#[test]
fn a_hung_client_fails_the_run_at_the_hang_deadline() {
    let tmp = TempDir::new("pr-hang");
    let mut c = script(&tmp.0);
    c.env("KVLAB_HANG_SLACK_S", "2").args([
        "--secs",
        "2",
        "--no-profile",
        "1",
        "1",
        "--preload 1000",
    ]);
    let child = spawn(c);
    let m = started_manifest(&tmp.0);
    let started = Instant::now();
    let client = m.clients().next().unwrap().pid.unwrap();
    kv_testkit::signal(client, "STOP");
    let o = finished(child);
    let waited = started.elapsed();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let reason = "clients did not finish within 5 s";
    assert!(out.contains(&format!("Error: {reason}")), "{out}");
    assert!(waited >= Duration::from_secs(5), "failed after {waited:?}");
    assert!(
        out.contains("node1 ignored SIGTERM for 15 s; killing it"),
        "{out}"
    );
    assert_no_process_left(&m);
    let row = rows(&tmp.0)
        .into_iter()
        .find(|r| r.run_id == m.run_id)
        .unwrap();
    assert_eq!(row.status, RunStatus::Failed(reason.into()));
}

/// A server that never answers fails the run after `--ready-timeout`,
/// named (node1, not node0 which answers), before any client starts. The
/// silent server is a stand-in binary that starts and never listens.
#[test]
fn ready_timeout_names_the_silent_server() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("pr-ready");
    let real = bin_dir();
    let bins = tmp.0.join("bin");
    std::fs::create_dir_all(&bins).unwrap();
    for b in ["kv-client", "kv-run"] {
        std::os::unix::fs::symlink(real.join(b), bins.join(b)).unwrap();
    }
    // node1's argv has `--profile server-node1`; every other call (help,
    // node0) runs the real server.
    let wrapper = bins.join("kv-server");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \" $* \" in *\" server-node1 \"*) exec sleep 300 ;; esac\nexec '{}' \"$@\"\n",
            real.join("kv-server").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = script_with(&tmp.0, &bins)
        .args([
            "--ready-timeout",
            "4",
            "--secs",
            "1",
            "2",
            "1",
            "--preload 0",
        ])
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let m = Manifest::read(&tmp.0.join("logs/latest/cluster.json")).unwrap();
    let node1 = &m.nodes[1];
    let says = format!(
        "servers not ready: node1 ({}:{}) did not answer a ping within 4 s",
        node1.bind, node1.port
    );
    assert!(out.contains(&format!("Error: {says}")), "{out}");
    // Only the silent server is named.
    assert!(
        out.lines()
            .filter(|l| l.starts_with("Error:") || l.starts_with("Run FAILED:"))
            .all(|l| !l.contains("node0")),
        "{out}"
    );
    assert!(!out.contains("Started client"), "{out}");
    let row = rows(&tmp.0).pop().unwrap();
    match &row.status {
        RunStatus::Failed(r) => assert!(r.starts_with(&says), "{r}"),
        s => panic!("{s:?}"),
    }
    for n in m.servers() {
        assert!(pid_gone(n.pid.unwrap()), "{} still running", n.name);
    }
}

/// Without `--threads` in client args each local client gets
/// `max(1, cores / clients)` generator threads, and runs them.
#[test]
fn default_threads_are_cores_over_clients() {
    let tmp = TempDir::new("pr-threads");
    let o = script(&tmp.0)
        .args(["--secs", "1", "--no-profile", "1", "2", "--preload 1000"])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let cores = std::thread::available_parallelism().unwrap().get() as u32;
    let want = (cores / 2).max(1);
    let m = Manifest::read(&tmp.0.join("logs/latest/cluster.json")).unwrap();
    for n in m.clients() {
        assert_eq!(n.threads, Some(want), "{}", n.name);
        assert!(
            n.argv
                .windows(2)
                .any(|w| w == ["--threads", &want.to_string()]),
            "{:?}",
            n.argv
        );
        // What the client itself says it ran.
        let log = std::fs::read_to_string(tmp.0.join("logs/latest").join(&n.log)).unwrap();
        let first = log.lines().next().unwrap_or("");
        assert!(first.contains(&format!(", {want} threads,")), "{first}");
    }
    let row = rows(&tmp.0).pop().unwrap();
    assert_eq!(row.threads.uniform(), Some(want));
}

/// On a terminal, run-cluster.sh shows the live dashboard (`kv-dash live
/// --manifest`, the interactive path) with every node of the run; `q`
/// closes only the dashboard: the run goes on with plain progress lines,
/// ends by itself and is recorded ok (docs/run-cluster.md, "The live
/// view"). tmux gives the script a real terminal.
#[test]
fn on_a_terminal_the_dashboard_shows_the_run_and_q_leaves_it_going() {
    let tmp = TempDir::new("pr-dash");
    let bins = bin_dir();
    assert!(
        bins.join("kv-dash").exists(),
        "kv-dash missing: `cargo build --workspace --bins` first"
    );
    let cmd = format!(
        "cd '{}' && env KVLAB_BIN_DIR='{}' KVLAB_EXPERIMENTS_DIR='{}' KVLAB_LOG_ROOT='{}' \
         ./run-cluster.sh --secs 8 --no-profile 1 1 '--preload 1000'; echo \"EXIT=$?\"; exec cat",
        repo().display(),
        bins.display(),
        tmp.0.join("experiments").display(),
        tmp.0.join("logs").display(),
    );
    let tmux = kv_testkit::tmux::Tmux::start("kvrun-dash", 140, 60, &cmd);
    tmux.wait_for(
        "the dashboard with both nodes busy",
        Duration::from_secs(90),
        |s| {
            ops_of(s, "server-node0").is_some_and(|v| v > 0.0)
                && ops_of(s, "client-node1").is_some_and(|v| v > 0.0)
                && s.contains("nodes up 2/2")
        },
    );
    let m = started_manifest(&tmp.0);
    tmux.keys(&["q"]);
    tmux.wait_for("the run going on after q", Duration::from_secs(10), |s| {
        s.contains("Dashboard closed; the run goes on")
    });
    let s = tmux.wait_for("the script's exit", Duration::from_secs(120), |s| {
        s.contains("EXIT=")
    });
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(
        s.contains("total ") && s.contains("nodes up "),
        "progress lines after q: {s}"
    );
    assert!(s.contains("recorded run (ok)"), "{s}");
    assert_no_process_left(&m);
    let r = rows(&tmp.0);
    let row = r.iter().find(|r| r.run_id == m.run_id).expect("row");
    assert_eq!(row.status, RunStatus::Ok, "{s}");
}
