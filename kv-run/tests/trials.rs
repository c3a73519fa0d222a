//! End-to-end tests of repeated trials: `run-cluster.sh --trials N --ab`
//! and `--against HEAD` with the real script and binaries, temporary log
//! and experiments directories, and the verdicts read back from the
//! recorded series (kv_core::series, the same code kv-dash uses).
//!
//! Why these cannot flake on a loaded machine:
//! - A/B: `--batch 1024` against `--batch 4` differs by about 10x in
//!   throughput on this machine (2.0M vs 0.21M ops/s, debug build). The
//!   verdict needs only that every A trial beats every B trial, 4 vs 4
//!   (rank method, see kv_core::trials), and load slows both sides, which
//!   alternate A B A B.
//! - A/A (`--against HEAD`): 3 vs 3 trials. No distribution-free 95%
//!   interval exists for 3 vs 3 (the smallest two-sided p-value is 0.10),
//!   so the rank method cannot call an A/A better or worse however the
//!   noise falls; the A/A false-positive rate itself (at most 5%) is tested
//!   on seeded synthetic samples in kv_core::trials. What this test checks
//!   end to end is the A/A construction: the same commit on both sides,
//!   identical configs from a clean tree, and exactly the dirty diff as the
//!   difference from a dirty one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kv_core::runlog::{log_path, read_log};
use kv_core::series::{compare_groups, resolve, SeriesInfo, TrialInfo};
use kv_core::trials::{Metric, Verdict};
use kv_testkit::TempDir;

const KV_RUN: &str = env!("CARGO_BIN_EXE_kv-run");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn bin_dir() -> PathBuf {
    let dir = Path::new(KV_RUN).parent().unwrap().to_path_buf();
    for b in ["kv-server", "kv-client"] {
        assert!(
            dir.join(b).exists(),
            "{} missing: run `cargo build -p kv-server -p kv-client` first",
            dir.join(b).display()
        );
    }
    dir
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn script(tmp: &Path) -> Command {
    let mut c = Command::new(repo().join("run-cluster.sh"));
    c.current_dir(repo())
        .env("KVLAB_BIN_DIR", bin_dir())
        .env("KVLAB_EXPERIMENTS_DIR", tmp.join("experiments"))
        .env("KVLAB_LOG_ROOT", tmp.join("logs"))
        .env_remove("KVLAB_SERIES_ID")
        .env_remove("KVLAB_TRIAL")
        .stdin(Stdio::null());
    c
}

/// The two series of the newest A/B, A first.
fn ab_series(exp: &Path) -> (SeriesInfo, SeriesInfo) {
    let all = SeriesInfo::list(exp);
    let a = all
        .iter()
        .rev()
        .find(|s| s.side == "A")
        .expect("series A")
        .clone();
    let b = SeriesInfo::read(exp, a.compared_with.as_deref().expect("linked")).unwrap();
    assert_eq!(b.compared_with.as_deref(), Some(a.series_id.as_str()));
    (a, b)
}

#[test]
fn ab_with_an_obvious_effect_says_worse() {
    let tmp = TempDir::new("trials-ab");
    let o = script(&tmp.0)
        .args([
            "--no-dash",
            "--no-profile",
            "--secs",
            "2",
            "--trials",
            "4",
            "--ab",
            "--batch 1024",
            "--batch 4",
            "1",
            "1",
            "--preload 1000",
        ])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let exp = tmp.0.join("experiments");
    let runs = read_log(&log_path(&exp)).unwrap();
    assert_eq!(runs.len(), 8, "one row per trial: {out}");
    // Fresh processes, own run folder and trial.json per trial; A B A B.
    let mut order = Vec::new();
    for r in &runs {
        let t = TrialInfo::read(&exp, &r.run_id).expect("trial.json");
        assert!(r.status.is_ok(), "{}: {:?}", r.run_id, r.status);
        order.push((t.series_id.chars().last().unwrap(), t.trial));
    }
    assert_eq!(
        order,
        [
            ('a', 1),
            ('b', 1),
            ('a', 2),
            ('b', 2),
            ('a', 3),
            ('b', 3),
            ('a', 4),
            ('b', 4)
        ]
    );
    let (sa, sb) = ab_series(&exp);
    let ga = resolve(&exp, &runs, &sa.series_id).unwrap();
    let gb = resolve(&exp, &runs, &sb.series_id).unwrap();
    assert_eq!((ga.runs.len(), gb.runs.len()), (4, 4));
    assert_eq!(ga.runs[0].batch, Some(1024));
    assert_eq!(gb.runs[0].batch, Some(4));
    let c = compare_groups(&ga, &gb);
    let t = c.metric(Metric::Throughput).unwrap();
    assert_eq!(t.verdict, Verdict::Worse, "{}", c.text());
    assert!(t.interval.unwrap().upper < 0.0);
    // The only config difference is the batch size.
    assert_eq!(
        c.config_lines(),
        ["client.batch: 1024 -> 4"],
        "{}",
        c.text()
    );
    // One config per side.
    assert_eq!(ga.config_hashes().len(), 1);
    // The script's final report says the same.
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("throughput "))
        .unwrap_or_else(|| panic!("no verdict line: {out}"));
    assert!(line.ends_with("worse (4 vs 4 trials)"), "{line}");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Builds HEAD in a worktree: its target dir is seeded from this build's, so
/// only kvlab's crates compile (about 3 minutes of 2 cores).
#[test]
fn against_head_is_a_a_from_clean_and_dirty_trees() {
    let tmp = TempDir::new("trials-against");
    // A checkout of this repository's HEAD that the test may make dirty.
    let src = tmp.0.join("src");
    let head = git(&repo(), &["rev-parse", "HEAD"]);
    let src_s = src.display().to_string();
    git(&repo(), &["clone", "-q", "--no-checkout", ".", &src_s]);
    git(&src, &["checkout", "-q", "--detach", &head]);
    // The worktree lives in the test's folder; the HEAD build's target dir
    // persists under target/ between test runs (only kvlab's crates
    // rebuild), apart from the binaries under test.
    let against = tmp.0.join("against");
    let against_target = repo().join("target").join("against-test");
    let run = |tmp: &Path| {
        let o = script(tmp)
            .env("KVLAB_REPO", &src)
            .env("KVLAB_AGAINST_DIR", &against)
            .env("KVLAB_AGAINST_TARGET_DIR", &against_target)
            .env("KVLAB_BUILD_PROFILE", "dev")
            .args([
                "--no-dash",
                "--no-profile",
                "--secs",
                "1",
                "--trials",
                "3",
                "--against",
                "HEAD",
                "1",
                "1",
                "--preload 1000",
            ])
            .output()
            .unwrap();
        let out = text(&o);
        assert!(o.status.success(), "{out}");
        let exp = tmp.join("experiments");
        let runs = read_log(&log_path(&exp)).unwrap();
        let (sa, sb) = ab_series(&exp);
        let ga = resolve(&exp, &runs, &sa.series_id).unwrap();
        let gb = resolve(&exp, &runs, &sb.series_id).unwrap();
        assert_eq!((ga.runs.len(), gb.runs.len()), (3, 3), "{out}");
        (compare_groups(&ga, &gb), ga, gb, out)
    };

    let (c, ga, gb, out) = run(&tmp.0.join("clean"));
    for m in &c.metrics {
        assert!(
            !matches!(m.verdict, Verdict::Better | Verdict::Worse),
            "A/A said {}: {}",
            m.verdict,
            c.text()
        );
    }
    assert_eq!(
        c.config_lines(),
        ["identical configs: any difference is run-to-run noise"],
        "{out}"
    );
    let ia = ga.identity().unwrap();
    assert_eq!(ia.get("git.commit"), Some(head.as_str()));
    assert_eq!(ia.get("git.dirty_diff"), Some("clean"));
    assert_eq!(ga.config_hashes(), gb.config_hashes());
    // Side A's nodes ran the worktree's build, not the tree's binaries.
    let m = kv_run::manifest::Manifest::read(
        &kv_core::runlog::RunDir::new(&tmp.0.join("clean/experiments"), &ga.runs[0].run_id)
            .logs_dir()
            .join("cluster.json"),
    )
    .unwrap();
    assert!(
        m.bin_dir.starts_with(&against_target.display().to_string()),
        "{}",
        m.bin_dir
    );

    // Dirty: an edit to a tracked file; side B (the tree) records its hash.
    std::fs::write(src.join("README.md"), "changed by the test\n").unwrap();
    let (c, ga, gb, out) = run(&tmp.0.join("dirty"));
    for m in &c.metrics {
        assert!(
            !matches!(m.verdict, Verdict::Better | Verdict::Worse),
            "{}",
            c.text()
        );
    }
    let diff = gb
        .identity()
        .unwrap()
        .get("git.dirty_diff")
        .unwrap()
        .to_string();
    assert_ne!(diff, "clean");
    assert_eq!(diff.len(), kv_core::identity::HASH_HEX_LEN);
    assert_eq!(ga.identity().unwrap().get("git.dirty_diff"), Some("clean"));
    assert_eq!(
        c.config_lines(),
        [format!("git.dirty_diff: clean -> {diff}")],
        "{out}"
    );
    assert_eq!(gb.runs[0].git_dirty, Some(true));
    assert_eq!(ga.runs[0].git_dirty, Some(false));
}
