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
