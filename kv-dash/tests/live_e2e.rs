//! `kv-dash live` against a real kv-server and kv-client: plain lines,
//! then the dashboard in tmux (both nodes busy, the server killed shows
//! down, `q` quits and leaves nothing running).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kv_testkit::tmux::Tmux;
use kv_testkit::{bin, signal, wait_gone, wait_timeout, ServerProc};

/// A child process killed (and reaped) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `child`'s stdout until a line starts with `prefix`; returns the
/// rest of that line, and keeps draining the pipe so the child never blocks.
fn read_until(stdout: ChildStdout, prefix: &str, what: &str) -> String {
    let (tx, rx) = mpsc::channel();
    let prefix = prefix.to_string();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if !sent {
                if let Some(rest) = line.strip_prefix(&prefix) {
                    let _ = tx.send(rest.trim().to_string());
                    sent = true;
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} did not print its address"))
}

use kv_testkit::live_screen::ops_of;
pub use kv_testkit::live_screen::row_of;

/// The P50/P99 cell of a node's table row (the last second's latency).
fn latency_of(screen: &str, node: &str) -> Option<(u64, u64)> {
    let row = row_of(screen, node)?;
    row.split_whitespace().find_map(|cell| {
        let (p50, p99) = cell.split_once('/')?;
        Some((p50.parse().ok()?, p99.parse().ok()?))
    })
}

/// A server's address given as a client's: the poller says what is wrong
/// instead of tarpc's "connection ... already shutdown".
#[test]
fn a_server_polled_as_a_client_is_named() {
    use kv_core::poller::StatsSource;
    let server = ServerProc::start(&["--preload", "10"]);
    let addr = server.addr.clone();
    let mut source = StatsSource::new(kv_core::stats::Role::Client, addr.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The first answer after connecting (a connect that timed out on a
    // loaded machine is retried).
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        assert!(Instant::now() < deadline, "no poll result");
        match rt.block_on(source.fetch()) {
            Err(e) if e == "connect timed out" => continue,
            r => break r.expect_err("a server cannot answer a client's stats call"),
        }
    };
    assert_eq!(
        err,
        format!("{addr} closed the connection: stopped, or not a kvlab client stats address")
    );
}

#[test]
fn live_plain_then_dashboard_with_a_server_killed() {
    let mut server = ServerProc::start(&["--preload", "1000"]);
    let server_addr = server.addr.clone();
    let mut client = Proc(
        Command::new(bin("kv-client"))
            .args(["--hosts", &server_addr, "--stats-bind", "127.0.0.1:0"])
            .args(["--secs", "20", "--threads", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kv-client starts"),
    );
    let client_addr = read_until(
        client.0.stdout.take().unwrap(),
        "Serving stats on ",
        "kv-client",
    );
    let dash = env!("CARGO_BIN_EXE_kv-dash");
    let nodes = [
        "--servers",
        server_addr.as_str(),
        "--clients",
        client_addr.as_str(),
        "--secs",
        "20",
    ];

    // Plain: stdout is a pipe, so lines without --plain; SIGTERM ends it cleanly.
    let mut plain = Proc(
        Command::new(dash)
            .arg("live")
            .args(nodes)
            .stdout(Stdio::piped())
            .spawn()
            .expect("kv-dash starts"),
    );
    let (tx, rx) = mpsc::channel();
    let out = plain.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let started = Instant::now();
    while got.len() < 3 {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no plain line; got {got:?}"));
        got.push((started.elapsed(), line));
    }
    for (_, l) in &got {
        assert!(
            l.starts_with('[') && l.contains("/20 s] total ") && l.contains(" ops/s, nodes up "),
            "{l}"
        );
    }
    let (_, last) = got.last().unwrap();
    assert!(last.contains("nodes up 2/2"), "{got:?}");
    let total: f64 = last
        .split("total ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .map(|n| n.replace(',', ""))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(total > 0.0, "{got:?}");
    let gap = got[2].0 - got[1].0;
    assert!(
        // Wide on the slow side: a loaded CI machine delays a tick or two.
        gap > Duration::from_millis(500) && gap < Duration::from_millis(1900),
        "one line a second: {got:?}"
    );
    signal(plain.0.id(), "TERM");
    let status =
        wait_timeout(&mut plain.0, Duration::from_secs(5)).expect("plain kv-dash ignored SIGTERM");
    assert!(status.success(), "SIGTERM is a clean exit: {status}");

    // The dashboard, in a real terminal.
    let tmux = Tmux::start(
        "kvdash-live",
        140,
        40,
        &format!("exec {dash} live {}", nodes.join(" ")),
    );
    let pane_pid = tmux.pane_pid();
    tmux.wait_for("both nodes with ops/s", Duration::from_secs(20), |s| {
        ops_of(s, "server-0").is_some_and(|v| v > 0.0)
            && ops_of(s, "client-0").is_some_and(|v| v > 0.0)
            && latency_of(s, "client-0").is_some_and(|(p50, p99)| 0 < p50 && p50 <= p99)
            && s.contains("nodes up 2/2")
    });

    server.child.kill().unwrap();
    let killed = Instant::now();
    server.child.wait().unwrap();
    let s = tmux.wait_for("the server shown down", Duration::from_secs(10), |s| {
        row_of(s, "server-0").is_some_and(|r| r.contains("✖ DOWN"))
    });
    let took = killed.elapsed();
    eprintln!("server shown down {took:?} after the kill");
    assert!(took < Duration::from_secs(3), "down after {took:?}:\n{s}");
    assert!(s.contains("✖ 1 DOWN") || s.contains("✖ 2 DOWN"), "{s}");

    tmux.keys(&["q"]);
    tmux.wait_exit(Duration::from_secs(10));
    assert!(
        wait_gone(pane_pid, Duration::from_secs(5)),
        "kv-dash (pid {pane_pid}) still running after q"
    );
    client.0.kill().unwrap();
    client.0.wait().unwrap();
}

/// Waits for the tmux screen to satisfy `pred`, checking `each` on every
/// screen seen on the way (a state that must never show).
fn watch_until(
    tmux: &Tmux,
    what: &str,
    limit: Duration,
    each: impl Fn(&str),
    pred: impl Fn(&str) -> bool,
) -> String {
    tmux.wait_for(what, limit, |s| {
        each(s);
        pred(s)
    })
}

/// The interactive path run-cluster.sh takes on a terminal (`kv-dash live
/// --manifest PATH`), with a client that starts 3 s late (a wrapper that
/// waits, then execs the real kv-client): the client is `starting`, never
/// DOWN, then up; the run ends; `kv-dash live` on the finished run says it
/// is over, on a terminal and in plain mode, and once its report is gone,
/// from its processes being gone.
#[test]
fn run_cluster_on_a_terminal_late_client_starting_then_run_over() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = kv_testkit::TempDir::new("live-late");
    let bins = bin("kv-run").parent().unwrap().to_path_buf();
    assert!(bins.join("kv-dash").exists(), "kv-dash missing in {bins:?}");
    let node_bins = tmp.0.join("node-bin");
    std::fs::create_dir_all(&node_bins).unwrap();
    std::os::unix::fs::symlink(bin("kv-server"), node_bins.join("kv-server")).unwrap();
    let wrapper = node_bins.join("kv-client");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n# A client slow to start (not when asked for its flags).\n\
             case \" $* \" in *\" --help \"*|*\" --version \"*) ;; *) sleep 3 ;; esac\n\
             exec '{}' \"$@\"\n",
            bin("kv-client").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cmd = format!(
        "cd '{}' && KVLAB_BIN_DIR='{}' KVLAB_NODE_BIN_DIR='{}' KVLAB_EXPERIMENTS_DIR='{}' \
         KVLAB_LOG_ROOT='{}' ./run-cluster.sh --secs 4 --no-profile 1 1 '--preload 1000' \
         '--threads 1'; echo \"run-cluster exit $?\"; exec cat",
        repo.display(),
        bins.display(),
        node_bins.display(),
        tmp.0.join("experiments").display(),
        tmp.0.join("logs").display()
    );
    let tmux = Tmux::start("kvdash-late", 140, 40, &cmd);
    let never_down = |s: &str| assert!(!s.contains("DOWN"), "a node shown DOWN:\n{s}");
    let s = watch_until(
        &tmux,
        "the dashboard, the client starting",
        Duration::from_secs(120),
        never_down,
        |s| {
            row_of(s, "client-node1").is_some_and(|r| r.contains("◌ starting"))
                && row_of(s, "server-node0").is_some_and(|r| r.contains("● up"))
        },
    );
    let starting_seen = Instant::now();
    assert!(s.contains(" kv-dash live  run "), "{s}");
    assert!(s.contains("starting: no client has answered yet"), "{s}");
    watch_until(
        &tmux,
        "the late client up",
        Duration::from_secs(30),
        never_down,
        |s| ops_of(s, "client-node1").is_some_and(|v| v > 0.0),
    );
    let starting_for = starting_seen.elapsed();
    eprintln!("client shown starting for {starting_for:?}, never DOWN");
    // Longer than the 1 s after which an answering node that falls silent
    // is down: the old rule would have shown this client DOWN.
    assert!(
        starting_for > Duration::from_millis(1500),
        "{starting_for:?}"
    );
    let s = tmux.wait_for("the run's end", Duration::from_secs(90), |s| {
        s.contains("run-cluster exit ")
    });
    assert!(s.contains("run-cluster exit 0"), "{s}");

    // The run is over: the dashboard says so instead of watching it.
    let manifest = tmp.0.join("logs/latest/cluster.json");
    let m = kv_core::manifest::Manifest::read(&manifest).unwrap();
    let dash = env!("CARGO_BIN_EXE_kv-dash");
    let over = Tmux::start(
        "kvdash-over",
        120,
        30,
        &format!(
            "{dash} live --manifest '{}'; echo \"kv-dash exit $?\"; exec cat",
            manifest.display()
        ),
    );
    let s = over.wait_for("the run said over", Duration::from_secs(20), |s| {
        s.contains("kv-dash exit ")
    });
    assert!(
        s.contains(&format!("run {} is over: it ended ", m.run_id)) && s.contains("kv-dash exit 0"),
        "{s}"
    );
    assert!(!s.contains("DOWN"), "{s}");
    let plain = |what: &str| {
        let o = Command::new(dash)
            .args(["live", "--manifest"])
            .arg(&manifest)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{out}");
        assert!(
            out.starts_with(&format!("run {} is over: {what}", m.run_id)),
            "{out}"
        );
        assert_eq!(out.lines().count(), 1, "one line, no count-up: {out}");
    };
    plain("it ended ");
    // A run killed outright writes no report; its processes are gone.
    std::fs::remove_file(manifest.parent().unwrap().join("report.txt")).unwrap();
    assert!(m.nodes.iter().all(|n| n.pid.is_some()), "{m:?}");
    plain("none of its processes is running");
}
