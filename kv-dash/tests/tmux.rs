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
