//! The bench's quick mode as CI's guard against gross regressions: a short
//! YCSB-B run of the real binaries must reach a fraction of the in-process
//! ceiling measured around it in the same invocation (never a figure from
//! another machine), and every run must land in the log.

use std::process::Command;

#[test]
fn quick_bench_meets_the_ratio_floor_and_records_its_runs() {
    let bench = env!("CARGO_BIN_EXE_kv-bench");
    let bin_dir = std::path::Path::new(bench).parent().unwrap();
    assert!(
        bin_dir.join("kv-server").exists(),
        "run `cargo test --workspace` so kv-server is built"
    );
    let exp = std::env::temp_dir().join(format!("kvbench-guard-{}", std::process::id()));
    let out = Command::new(bench)
        .arg("--quick")
        .arg("--bin-dir")
        .arg(bin_dir)
        .args(["--label", "guard-build"])
        .arg("--experiments")
        .arg(&exp)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("guard: ok"), "{stdout}");
    let log = kv_core::runlog::read_log(&exp.join("log.csv")).unwrap();
    assert_eq!(log.len(), 3, "ceiling, kvlab and ceiling runs recorded");
    assert!(log
        .iter()
        .all(|r| r.status.is_ok() && r.client_ops_per_s.unwrap_or(0.0) > 0.0));
    // A --bin-dir build is logged under its label, not this tree's commit.
    assert!(log.iter().all(|r| r.git_commit == "guard-build"), "{log:?}");
    let _ = std::fs::remove_dir_all(exp);
}

/// The guard must catch what it is for: one op per RPC and no pipelining
/// (~2.6% of the ceiling on a loaded 2-core VM) is a gross regression.
#[test]
fn quick_bench_fails_on_a_gross_regression() {
    let bench = env!("CARGO_BIN_EXE_kv-bench");
    let bin_dir = std::path::Path::new(bench).parent().unwrap();
    let exp = std::env::temp_dir().join(format!("kvbench-regress-{}", std::process::id()));
    let out = Command::new(bench)
        .args(["--quick", "--client-args", "--batch 1 --window 1"])
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--experiments")
        .arg(&exp)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&exp);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("gross regression"), "{stderr}");
}

#[test]
fn bad_arguments_fail_with_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_kv-bench"))
        .args(["--runs", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("must be positive"), "{err}");
}
