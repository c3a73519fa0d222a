//! `kv-dash live` against a real kv-server and kv-client: plain lines,
//! then the dashboard in tmux (both nodes busy, the server killed shows
//! down, `q` quits and leaves nothing running).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kv_testkit::tmux::Tmux;
use kv_testkit::{bin, pid_gone, signal, wait_timeout, ServerProc};

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

/// The OPS/S cell of a node's table row, as a number (None: not a number).
fn ops_of(screen: &str, node: &str) -> Option<f64> {
    let row = screen
        .lines()
        .find(|l| l.starts_with(&format!("│{node} ")))?;
    let cells: Vec<&str> = row.trim_matches('│').split_whitespace().collect();
    // PROCESS ADDRESS OPS/S ...
    cells.get(2)?.replace(',', "").parse().ok()
}

/// The P50/P99 cell of a node's table row (the last second's latency).
fn latency_of(screen: &str, node: &str) -> Option<(u64, u64)> {
    let row = screen
        .lines()
        .find(|l| l.starts_with(&format!("│{node} ")))?;
    row.split_whitespace().find_map(|cell| {
        let (p50, p99) = cell.split_once('/')?;
        Some((p50.parse().ok()?, p99.parse().ok()?))
    })
}

/// A server's address given as a client's: the poller says what is wrong
/// instead of tarpc's "connection ... already shutdown".
#[test]
fn a_server_polled_as_a_client_is_named() {
    use kv_dash::live::{event::Event, poll::poll_node, state::NodeSpec};
    let server = ServerProc::start(&["--preload", "10"]);
    let addr = server.addr.clone();
    let spec = NodeSpec {
        name: "client-0".into(),
        role: kv_core::stats::Role::Client,
        addr: addr.clone(),
        pollable: true,
    };
    let (tx, rx) = mpsc::channel();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.spawn(poll_node(
        0,
        spec,
        Instant::now(),
        Duration::from_millis(50),
        tx,
    ));
    // The first answer after connecting (a connect that timed out on a
    // loaded machine is retried by the poller).
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Event::Stats { result, .. }) = rx.recv_timeout(left) else {
            panic!("no poll result");
        };
        match *result {
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
        s.lines()
            .any(|l| l.starts_with("│server-0 ") && l.contains("✖ DOWN"))
    });
    let took = killed.elapsed();
    eprintln!("server shown down {took:?} after the kill");
    assert!(took < Duration::from_secs(3), "down after {took:?}:\n{s}");
    assert!(s.contains("✖ 1 DOWN") || s.contains("✖ 2 DOWN"), "{s}");

    tmux.keys(&["q"]);
    tmux.wait_exit(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pid_gone(pane_pid) {
        assert!(
            Instant::now() < deadline,
            "kv-dash (pid {pane_pid}) still running after q"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    client.0.kill().unwrap();
    client.0.wait().unwrap();
}
