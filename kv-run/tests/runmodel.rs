//! The run model end to end (issue 13): what run-cluster.sh records about a
//! run — workload spelling, effective secs, run time, how it ended — with
//! the real script, the real binaries and temporary directories.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kv_core::runlog::{log_path, read_log, RunRecord, RunStatus};
use kv_run::manifest::Manifest;
use kv_testkit::{pid_gone, TempDir};

const KV_RUN: &str = env!("CARGO_BIN_EXE_kv-run");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The script with test directories and the binaries beside kv-run.
fn script(tmp: &Path) -> Command {
    let bins = Path::new(KV_RUN).parent().unwrap();
    for b in ["kv-server", "kv-client"] {
        assert!(
            bins.join(b).exists(),
            "{b} missing: `cargo build -p kv-server -p kv-client` first"
        );
    }
    let mut c = Command::new(repo().join("run-cluster.sh"));
    c.current_dir(repo())
        .env("KVLAB_BIN_DIR", bins)
        .env("KVLAB_EXPERIMENTS_DIR", tmp.join("experiments"))
        .env("KVLAB_LOG_ROOT", tmp.join("logs"))
        .stdin(Stdio::null());
    c
}

/// The script with stdout and stderr in one stream, in the order written.
fn script_merged(tmp: &Path, args: &[&str]) -> Command {
    let c = script(tmp);
    let mut b = Command::new("bash");
    b.arg("-c")
        .arg("exec \"$0\" \"$@\" 2>&1")
        .arg(c.get_program())
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null());
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            b.env(k, v);
        }
    }
    b
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
    let deadline = Instant::now() + Duration::from_secs(60);
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

fn assert_no_process_left(m: &Manifest) {
    for n in &m.nodes {
        let pid = n.pid.unwrap();
        assert!(pid_gone(pid), "{} (pid {pid}) still running", n.name);
    }
}

/// `--workload ycsb-a` is one workload, logged `YCSB-A`; a `--secs` in
/// client args longer than the script's sets the hang deadline (with 2 s
/// of slack the script's own 1 s would fail the run at 3 s, before the
/// clients' 3 s of load and drain are over); `duration_s` is the run.
#[test]
fn workload_spelling_effective_secs_and_run_time() {
    let tmp = TempDir::new("rm-secs");
    let t0 = Instant::now();
    let o = script(&tmp.0)
        .env("KVLAB_HANG_SLACK_S", "2")
        .args([
            "--secs",
            "1",
            "--no-profile",
            "1",
            "1",
            "--preload 1000",
            "--workload ycsb-a --secs 3",
        ])
        .output()
        .unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let m = Manifest::read(&tmp.0.join("logs/latest/cluster.json")).unwrap();
    assert_eq!(m.secs, 3.0);
    let r = rows(&tmp.0);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].workload, "YCSB-A");
    assert_eq!(r[0].status, RunStatus::Ok);
    // Issue 15's columns: a single run has no series, always a config hash.
    assert_eq!(r[0].series_id, "");
    assert!(r[0].config_hash.len() >= 8, "{:?}", r[0].config_hash);
    let d = r[0].duration_s.expect("duration_s recorded");
    assert!(d >= 3.0 && d <= wall, "duration_s {d} vs wall {wall}");
}

/// A closed terminal (SIGHUP) is recorded as such, with exit 129 and every
/// process stopped; the outcome is printed before the report's figures.
#[test]
fn sighup_is_recorded_with_its_cause_and_said_first() {
    let tmp = TempDir::new("rm-hup");
    let child: Child = script_merged(
        &tmp.0,
        &["--secs", "30", "--no-profile", "1", "1", "--preload 1000"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let m = started_manifest(&tmp.0);
    // The script's PID: bash exec'd it (a process this test started).
    kv_testkit::signal(child.id(), "HUP");
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(129), "{out}");
    assert_no_process_left(&m);
    let failed = out
        .find("Run FAILED: interrupted (SIGHUP")
        .unwrap_or_else(|| panic!("no failure line: {out}"));
    if let Some(total) = out.find("\ntotal ") {
        assert!(failed < total, "failure said after the figures: {out}");
    }
    assert!(!out.contains("Run complete"), "{out}");
    let r = rows(&tmp.0);
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].status,
        RunStatus::Failed("interrupted (SIGHUP: the terminal closed)".into())
    );
}

/// A server killed by a signal is named with the signal, not a status.
#[test]
fn node_killed_by_a_signal_is_recorded_with_it() {
    let tmp = TempDir::new("rm-kill");
    let child = script(&tmp.0)
        .args(["--secs", "30", "--no-profile", "1", "1", "--preload 1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let m = started_manifest(&tmp.0);
    kv_testkit::signal(m.servers().next().unwrap().pid.unwrap(), "KILL");
    let o = child.wait_with_output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert_no_process_left(&m);
    let r = rows(&tmp.0);
    assert_eq!(
        r[0].status,
        RunStatus::Failed(
            "node0 (server) exited killed by signal 9 (SIGKILL) during the run".into()
        ),
        "{out}"
    );
}
