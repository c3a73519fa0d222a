//! `run-cluster.sh --sweep-rate`: a short 3-step sweep end to end with the
//! real script and binaries (prebuilt debug ones via KVLAB_BIN_DIR), in
//! temporary log and experiments directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kv_core::runlog::{log_path, read_log, RunDir};
use kv_run::sweep::SweepResult;
use kv_testkit::TempDir;

const KV_RUN: &str = env!("CARGO_BIN_EXE_kv-run");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn a_three_step_sweep_records_one_series_and_draws_the_curve() {
    let tmp = TempDir::new("sweep");
    let bin_dir = Path::new(KV_RUN).parent().unwrap();
    let exp = tmp.0.join("experiments");
    let o = Command::new(repo().join("run-cluster.sh"))
        .current_dir(repo())
        .env("KVLAB_BIN_DIR", bin_dir)
        .env("KVLAB_EXPERIMENTS_DIR", &exp)
        .env("KVLAB_LOG_ROOT", tmp.0.join("logs"))
        .stdin(Stdio::null())
        .args([
            "--secs",
            "2",
            "--no-profile",
            "--sweep-rate",
            "20%:60%:20%",
            "--open-args",
            "--window 4 --flush-us 500",
            "1",
            "1",
            "--preload 10000",
            "--threads 1",
        ])
        .output()
        .unwrap();
    let out = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{out}");
    assert!(out.contains("knee: "), "{out}");
    // One series in log.csv: the closed-loop run and three steps.
    let rows = read_log(&log_path(&exp)).unwrap();
    assert_eq!(rows.len(), 4, "{out}");
    let series = &rows[0].tag;
    assert!(series.starts_with("sweep-"), "{series}");
    assert!(rows.iter().all(|r| &r.tag == series && r.status.is_ok()));
    // ... and one series of trials, which the browser groups and draws.
    assert!(rows.iter().all(|r| &r.series_id == series), "{rows:?}");
    // --open-args reach the open-loop steps only (kv-client refuses
    // --flush-us without --rate).
    let windows: Vec<Option<u32>> = rows.iter().map(|r| r.window).collect();
    assert_eq!(windows, [Some(8), Some(4), Some(4), Some(4)], "{out}");
    let info = kv_core::series::SeriesInfo::read(&exp, series).unwrap();
    assert_eq!((info.trials, info.label.as_str()), (4, "sweep 20%:60%:20%"));
    let r: SweepResult =
        serde_json::from_str(&std::fs::read_to_string(exp.join(format!("{series}.json"))).unwrap())
            .unwrap();
    assert_eq!(r.steps.len(), 3);
    let offered: Vec<f64> = r.steps.iter().map(|s| s.offered_per_s.unwrap()).collect();
    assert!(
        offered.windows(2).all(|w| w[0] < w[1]),
        "offered rates rise: {offered:?}"
    );
    // Each step offered its share of the closed-loop maximum.
    let max = r.closed_loop.achieved_per_s;
    for (s, pct) in r.steps.iter().zip([20.0, 40.0, 60.0]) {
        let want = max * pct / 100.0;
        assert!(
            (s.offered_per_s.unwrap() / want - 1.0).abs() < 1e-3,
            "{s:?}"
        );
        assert!(s.latency.count > 0, "{s:?}");
        // Every step kept its per-second latency histograms.
        let hlog = RunDir::new(&exp, &s.run_id)
            .logs_dir()
            .join("latency-node1.hlog");
        assert!(hlog.exists(), "{} missing", hlog.display());
    }
    let svg = std::fs::read_to_string(exp.join(format!("{series}.svg"))).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("p99.9"),
        "curve drawn"
    );
}

#[test]
fn bad_open_loop_args_are_refused_before_any_step() {
    let tmp = TempDir::new("sweep-bad");
    let bin_dir = Path::new(KV_RUN).parent().unwrap();
    let exp = tmp.0.join("experiments");
    let run = |args: &[&str]| {
        Command::new(repo().join("run-cluster.sh"))
            .current_dir(repo())
            .env("KVLAB_BIN_DIR", bin_dir)
            .env("KVLAB_EXPERIMENTS_DIR", &exp)
            .env("KVLAB_LOG_ROOT", tmp.0.join("logs"))
            .stdin(Stdio::null())
            .args(args)
            .output()
            .unwrap()
    };
    let first_err_line = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let o = run(&[
        "--sweep-rate",
        "20%:40%:20%",
        "--open-args",
        "--flush-us 0",
        "1",
        "1",
    ]);
    assert!(!o.status.success());
    let err = first_err_line(&o);
    assert!(err.contains("--flush-us must be in"), "{err}");
    assert!(!log_path(&exp).exists(), "nothing ran");
    for lone in [["--open-args", "--flush-us 500"], ["--slo-us", "2000"]] {
        let o = run(&[lone[0], lone[1], "1", "1"]);
        assert_eq!(o.status.code(), Some(2));
        let err = first_err_line(&o);
        assert!(
            err.contains(&format!("{} needs --sweep-rate", lone[0])),
            "{err}"
        );
    }
}
