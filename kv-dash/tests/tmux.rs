//! End to end in a real terminal: tmux runs the browser on the fixtures,
//! we navigate to a run's flamegraph, search a function, and quit.

use std::time::Duration;

use kv_testkit::tmux::Tmux;

use crate::util::*;

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn browse_to_flamegraph_search_and_quit() {
    let cmd = format!(
        "{} --dir {}",
        env!("CARGO_BIN_EXE_kv-dash"),
        fixtures().display()
    );
    let tmux = Tmux::start("kvdash-browse", 120, 40, &cmd);

    tmux.wait_for("the runs table", WAIT, |s| {
        s.contains("4 runs") && s.contains(A)
    });
    tmux.keys(&["G"]); // oldest run: the baseline, which has profiles
    tmux.wait_for("run A selected", WAIT, |s| {
        s.contains("median ops/s: server-0 100,000")
    });
    tmux.keys(&["Tab"]);
    tmux.wait_for("the process list", WAIT, |s| {
        s.contains("server-0 fs-") && s.contains("pick a process")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the flamegraph", WAIT, |s| {
        s.contains("server-0 1000 samples") && s.contains("kv_server::store::get")
    });
    tmux.keys(&["/", "s", "t", "o", "r", "e", "Enter"]);
    let s = tmux.wait_for("search result", WAIT, |s| {
        s.contains("search 'store': 85.0% of samples (2 frames)")
    });
    assert!(s.contains("top 7 by self"));
    tmux.keys(&["q"]);
    tmux.wait_exit(Duration::from_secs(10));
}

#[test]
fn real_flamegraph_navigate_to_the_hot_frame_with_keys() {
    let dir = real_runs();
    let cmd = format!(
        "{} --dir {}",
        env!("CARGO_BIN_EXE_kv-dash"),
        dir.0.display()
    );
    let tmux = Tmux::start("kvdash-flame", 160, 45, &cmd);
    tmux.wait_for("the runs table", WAIT, |s| {
        s.contains("2 runs") && s.contains(REAL_1)
    });
    tmux.keys(&["G", "Tab"]); // the older run, its processes
    tmux.wait_for("the process list", WAIT, |s| s.contains("server-node0 f--"));
    tmux.keys(&["Enter"]);
    // Opens past the runtime frames, the store lookup selected.
    tmux.wait_for("the default focus", WAIT, |s| {
        s.contains("▲ tokio-rt-worker … 62 frames above")
            && s.contains("selected: kv_server::store::get  total 74.2%")
    });
    // z: whole graph in one key; f: back.
    tmux.keys(&["z"]);
    tmux.wait_for("the whole graph", WAIT, |s| {
        s.lines().any(|l| l.ends_with("5974 samples  zoom: all"))
    });
    tmux.keys(&["f"]);
    tmux.wait_for("the focus again", WAIT, |s| {
        s.contains("▲ tokio-rt-worker … 62 frames")
    });
    // Down the hot path with j into the hash map's lookup, then
    // search for the shard lock and step to it with n.
    tmux.keys(&["j", "j"]);
    tmux.wait_for("two frames down", WAIT, |s| {
        s.contains("selected: dashmap::_get<")
    });
    tmux.keys(&["/", "t", "r", "y", "_", "l", "o", "c", "k", "Enter", "n"]);
    tmux.wait_for("the first match", WAIT, |s| {
        s.contains("selected: dashmap::lock::try_lock_shared_fast") && s.contains("match 1/3 (n/N)")
    });
    tmux.keys(&["q"]);
    tmux.wait_exit(Duration::from_secs(10));
}

/// At 80×24 in a real terminal: the runs table keeps the Redis row's
/// throughput whole; Tab Tab opens the series, whose two trial series
/// compare with a verdict (`c`) and diff their merged profiles (`d`).
#[test]
fn series_at_80x24_compare_and_diff_with_keys() {
    let dir = mixed();
    let cmd = format!(
        "NO_COLOR=1 {} --dir {}",
        env!("CARGO_BIN_EXE_kv-dash"),
        dir.0.display()
    );
    let tmux = Tmux::start("kvdash-series", 80, 24, &cmd);
    tmux.wait_for("the runs table", WAIT, |s| {
        s.contains("15 runs") && s.contains("OPS/S")
    });
    tmux.keys(&["G"]);
    tmux.wait_for("the oldest run: the in-process ceiling", WAIT, |s| {
        s.contains("20261202-182950-30c3") && s.contains("230,441*")
    });
    tmux.keys(&["Tab", "Tab"]);
    tmux.wait_for("the series", WAIT, |s| {
        s.contains(SERIES_A) && s.contains("85,754 ±64.4%") && s.contains("3 trials: trials")
    });
    tmux.keys(&["Space", "j", "Space", "c"]);
    tmux.wait_for("the verdict", WAIT, |s| {
        s.contains("B against A") && s.contains("too few trials") && s.contains("41,640")
    });
    tmux.keys(&["BTab", "d"]);
    tmux.wait_for("the series diff", WAIT, |s| {
        s.contains(&format!("diff: A = series {SERIES_A}"))
    });
    tmux.keys(&["q"]);
    tmux.wait_exit(Duration::from_secs(10));
}
