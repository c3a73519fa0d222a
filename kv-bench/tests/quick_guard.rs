//! The bench's quick mode as CI's guard against gross regressions: a short
//! YCSB-B run of the real binaries must reach 25% of the recorded median
//! (docs/bench-baseline.json), and every run must land in the log.

use std::process::Command;

#[test]
fn quick_bench_meets_the_recorded_floor_and_records_its_runs() {
    let bench = env!("CARGO_BIN_EXE_kv-bench");
    let bin_dir = std::path::Path::new(bench).parent().unwrap();
    assert!(
        bin_dir.join("kv-server").exists(),
        "run `cargo test --workspace` so kv-server is built"
    );
    let exp = std::env::temp_dir().join(format!("kvbench-guard-{}", std::process::id()));
    let baseline = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/bench-baseline.json");
    let out = Command::new(bench)
        .args(["--quick", "--baseline", baseline])
        .arg("--bin-dir")
        .arg(bin_dir)
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
    assert_eq!(log.len(), 2, "ceiling and kvlab runs recorded");
    assert!(log
        .iter()
        .all(|r| r.status.is_ok() && r.client_ops_per_s.unwrap_or(0.0) > 0.0));
    let _ = std::fs::remove_dir_all(exp);
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
