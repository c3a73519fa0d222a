//! Open-loop load (`--rate`) against the real kv-server: the achieved rate
//! follows the offered one, a paused server shows up in the latency of
//! every op scheduled during the pause (and hides in a closed-loop run),
//! and a rate the client cannot generate is reported as client-limited.

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kv_core::summary::ClientSummary;
use kv_testkit::TempDir;
use util::{client, text, Server, CLIENT};

fn summary(path: &std::path::Path) -> ClientSummary {
    let raw = std::fs::read_to_string(path).expect("summary written");
    serde_json::from_str(&raw).expect("summary parses")
}

#[test]
fn achieved_rate_follows_a_moderate_offered_rate() {
    let server = Server::start(&["--preload", "10000"]);
    let dir = TempDir::new("openloop-rate");
    let sum = dir.0.join("s.json");
    let hlog = dir.0.join("c.hlog");
    let out = client(&[
        "--hosts",
        &server.addr,
        "--secs",
        "6",
        "--threads",
        "2",
        "--rate",
        "4000",
        "--arrival",
        "poisson",
        "--seed",
        "11",
        "--summary-json",
        sum.to_str().unwrap(),
        "--hdr-log",
        hlog.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let s = summary(&sum);
    let ol = s.open_loop.as_ref().expect("open-loop summary");
    assert_eq!(ol.offered_per_s, 4000.0);
    assert_eq!(ol.arrival, "poisson");
    let achieved = s.throughput().unwrap();
    assert!(
        (achieved / 4000.0 - 1.0).abs() < 0.02,
        "achieved {achieved} ops/s for 4000 offered\n{stdout}"
    );
    assert!(s.totals.is_intact(), "{:?}", s.totals);
    assert!(
        stdout.contains("offered 4000.00 ops/s achieved"),
        "per-second offered vs achieved lines\n{stdout}"
    );
    // One interval per second of load (plus the last partial one), and
    // together they hold every op.
    let log = std::fs::read(&hlog).unwrap();
    let iv = kv_core::latency::read_interval_log(&log).unwrap();
    assert!((6..=8).contains(&iv.len()), "{} intervals", iv.len());
    let n: u64 = iv.iter().map(|i| i.latency.count).sum();
    assert_eq!(n, s.totals.completed());
}

/// A client started in the background whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(CLIENT)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kv-client");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// Waits (bounded) for the `n`th per-second line with completed ops.
    fn wait_for_load(&self, n: usize, limit: Duration) {
        let end = Instant::now() + limit;
        let mut seen = 0;
        while seen < n {
            let left = end.saturating_duration_since(Instant::now());
            let l = self
                .lines
                .recv_timeout(left)
                .expect("client reported load in time");
            if l.strip_prefix("ops/s ")
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v > 0.0)
            {
                seen += 1;
            }
        }
    }

    /// Waits (bounded) for a line starting with `prefix`; returns the rest.
    fn wait_for_line(&self, prefix: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let l = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no '{prefix}' line in time"));
            if let Some(rest) = l.strip_prefix(prefix) {
                return rest.to_string();
            }
        }
    }

    fn wait(mut self) -> String {
        let status = util::wait_timeout(&mut self.child, Duration::from_secs(60))
            .expect("client finished within 60 s");
        let rest: Vec<String> = self.lines.try_iter().collect();
        assert!(status.success(), "client failed: {}", rest.join("\n"));
        rest.join("\n")
    }
}

/// Resumes a stopped server even when the test fails half-way.
struct Resume(u32);
impl Drop for Resume {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

const PAUSE: Duration = Duration::from_secs(1);

/// Runs 10 s of load with `extra` flags, stopping the server for
/// [`PAUSE`] after the second second of load; returns the summary.
fn run_with_pause(server: &Server, dir: &TempDir, name: &str, extra: &[&str]) -> ClientSummary {
    let sum = dir.0.join(format!("{name}.json"));
    let mut args = vec![
        "--hosts",
        &server.addr,
        "--secs",
        "10",
        "--threads",
        "1",
        "--connections",
        "1",
        "--batch",
        "64",
        "--window",
        "4",
        "--summary-json",
        sum.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let c = Running::start(&args);
    c.wait_for_load(2, Duration::from_secs(30));
    util::signal(server.pid(), "STOP");
    let resume = Resume(server.pid());
    // The pause is the stimulus, not a wait for a condition.
    std::thread::sleep(PAUSE);
    drop(resume);
    c.wait();
    summary(&sum)
}

#[test]
fn a_paused_server_shows_in_open_loop_latency_and_hides_in_closed_loop() {
    let server = Server::start(&["--preload", "10000"]);
    let dir = TempDir::new("openloop-pause");
    let open = run_with_pause(&server, &dir, "open", &["--rate", "5000"]);
    let closed = run_with_pause(&server, &dir, "closed", &[]);
    let o = open.op_latency.unwrap();
    let c = closed.op_latency.unwrap();
    let pause_us = PAUSE.as_micros() as u64;
    eprintln!("open loop: {o}\nclosed loop: {c}");
    // Both runs saw the pause: some op waited through most of it.
    assert!(o.max_us >= pause_us * 8 / 10, "open {o}");
    assert!(c.max_us >= pause_us * 8 / 10, "closed {c}");
    // Open loop: ~10% of the 10 s run's ops were scheduled during the
    // 1 s pause, each waiting out the rest of it, so the slowest 1% waited
    // at least ~0.9 s. Half the pause leaves room for a late SIGSTOP.
    assert!(
        o.p99_us >= pause_us / 2,
        "open-loop p99 hides the pause: {o}"
    );
    // Closed loop: only the few batches in flight waited (4 x 64 ops of
    // the run's many), so its p99 is the ordinary latency.
    assert!(
        c.p99_us * 5 <= o.p99_us,
        "closed-loop p99 {} us not far below open-loop {} us",
        c.p99_us,
        o.p99_us
    );
}

#[test]
fn a_rate_beyond_the_client_is_reported_client_limited() {
    let server = Server::start(&["--preload", "10000"]);
    let dir = TempDir::new("openloop-limited");
    let sum = dir.0.join("s.json");
    let out = client(&[
        "--hosts",
        &server.addr,
        "--secs",
        "3",
        "--threads",
        "1",
        "--rate",
        "1e9",
        "--summary-json",
        sum.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let limited: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("offered ") && l.contains("; client-limited: "))
        .collect();
    assert!(!limited.is_empty(), "no client-limited second\n{stdout}");
    let s = summary(&sum);
    let ol = s.open_loop.clone().unwrap();
    assert!(ol.client_limited_s >= 1 && ol.client_limited_s <= ol.seconds);
    assert!(
        s.throughput().unwrap() < ol.offered_per_s / 2.0,
        "a client cannot complete 1e9 ops/s"
    );
    // Ops it never got to generate are not counted as sent or lost.
    assert!(s.totals.generated < ol.scheduled);
    assert!(s.totals.is_intact(), "{:?}", s.totals);
}

#[test]
fn open_loop_flags_without_rate_are_refused() {
    let out = client(&["--arrival", "poisson", "--secs", "1"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("need --rate"), "{stderr}");
}

#[test]
fn live_stats_carry_offered_and_achieved() {
    let server = Server::start(&["--preload", "10000"]);
    let c = Running::start(&[
        "--hosts",
        &server.addr,
        "--secs",
        "5",
        "--threads",
        "1",
        "--rate",
        "2000",
        "--stats-bind",
        "127.0.0.1:0",
    ]);
    let addr = c.wait_for_line("Serving stats on ", Duration::from_secs(30));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pace = rt.block_on(async {
        let opts = kv_core::transport::ConnectOptions::default();
        let stats = kv_core::transport::connect_stats(&addr, &opts)
            .await
            .expect("connect to the client's stats");
        // The first whole second of load fills it in: poll, bounded.
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let ctx = kv_core::transport::context_with_timeout(Duration::from_secs(5));
            let snap = stats.stats(ctx).await.expect("stats answer");
            if let Some(p) = snap.open_loop.filter(|p| p.achieved_per_s > 0.0) {
                break p;
            }
            assert!(Instant::now() < end, "no open-loop pace in the live stats");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert_eq!(pace.offered_per_s, 2000.0);
    c.wait();
}
