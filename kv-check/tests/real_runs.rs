//! Check mode on real runs: the real kv-server and two kv-client processes
//! on loopback write histories that kv-check must pass, and a server built
//! with the `fault-stale-reads` bug must be caught with a counterexample.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use kv_testkit::{bin, ServerProc, TempDir};

const CHECK: &str = env!("CARGO_BIN_EXE_kv-check");

/// Two client processes with distinct ids and seeds, YCSB-A at theta 0.99
/// against a server preloaded with all 1M records (every key starts `init`):
/// the hot keys see many concurrent puts and gets.
fn run_clients(addr: &str, dir: &Path) -> Vec<PathBuf> {
    let children: Vec<(Child, PathBuf)> = (0..2)
        .map(|id| {
            let hist = dir.join(format!("history-{id}.csv"));
            let child = Command::new(bin("kv-client"))
                .args([
                    "--hosts",
                    addr,
                    "--workload",
                    "YCSB-A",
                    "--secs",
                    "1",
                    "--threads",
                    "2",
                ])
                .args([
                    "--batch",
                    "64",
                    "--window",
                    "4",
                    "--client-id",
                    &id.to_string(),
                ])
                .args(["--seed", &(100 + 10 * id).to_string()])
                .arg("--check")
                .arg(&hist)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (child, hist)
        })
        .collect();
    children
        .into_iter()
        .map(|(child, hist)| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "client failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            hist
        })
        .collect()
}

fn check(histories: &[PathBuf]) -> Output {
    Command::new(CHECK).args(histories).output().unwrap()
}

#[test]
fn a_real_two_client_run_is_linearizable() {
    let server = ServerProc::start(&[]);
    let dir = TempDir::new("check-ok");
    let hist = run_clients(&server.addr, &dir.0);
    let out = check(&hist);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("PASS"), "{stdout}");
}

#[test]
fn stale_reads_from_a_faulty_server_are_caught() {
    // The fault lives behind a cargo feature, so build that server apart
    // from the normal binaries (its own target dir).
    let target = Path::new(CHECK)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("fault-build");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "kv-server",
            "--features",
            "fault-stale-reads",
        ])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "building the faulty server failed");
    let server = ServerProc::start_bin(&target.join("debug/kv-server"), &[]);
    let dir = TempDir::new("check-fault");
    let hist = run_clients(&server.addr, &dir.0);
    let out = check(&hist);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("FAIL: key "), "{stdout}");
}
