//! End to end in a real terminal: tmux runs the browser on the fixtures,
//! we navigate to a run's flamegraph, search a function, and quit.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

/// A tmux server on its own socket, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "dash"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "dash"]).stdout)
            .into_owned()
    }

    /// Polls the screen until `pred` holds, or fails after a deadline.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn alive(&self) -> bool {
        self.cmd(&["has-session", "-t", "dash"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn browse_to_flamegraph_search_and_quit() {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok(),
        "tmux is not installed: run scripts/install-test-deps.sh"
    );
    let tmux = Tmux {
        socket: format!("kvdash-test-{}", std::process::id()),
    };
    let cmd = format!(
        "{} --dir {}",
        env!("CARGO_BIN_EXE_kv-dash"),
        fixtures().display()
    );
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "dash",
        "-x",
        "120",
        "-y",
        "40",
        &cmd,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    tmux.wait_for("the runs table", |s| s.contains("4 runs") && s.contains(A));
    tmux.keys(&["G"]); // oldest run: the baseline, which has profiles
    tmux.wait_for("run A selected", |s| {
        s.contains("median ops/s: server-0 100,000")
    });
    tmux.keys(&["Tab"]);
    tmux.wait_for("the process list", |s| {
        s.contains("server-0 fs-") && s.contains("pick a process")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the flamegraph", |s| {
        s.contains("server-0 1000 samples") && s.contains("kv_server::store::get")
    });
    tmux.keys(&["/", "s", "t", "o", "r", "e", "Enter"]);
    let s = tmux.wait_for("search result", |s| {
        s.contains("search 'store': 85.0% of samples (2 frames)")
    });
    assert!(s.contains("top 7 by self"));
    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.alive() {
        assert!(Instant::now() < deadline, "kv-dash did not exit on q");
        std::thread::sleep(Duration::from_millis(50));
    }
}
