//! The client's live stats endpoint has the server's protections (issue 14
//! item 5): a header announcing a huge frame is refused at once and commits
//! nothing, and a transient accept error (the fd limit) does not stop the
//! endpoint for the rest of the run.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kv_core::transport::{connect_stats, context_with_timeout, ConnectOptions};

/// A kv-client serving stats for up to 60 s, killed by PID when dropped.
/// Against a real server: in-process mode's generators never yield, which
/// starves the endpoint's tasks on a one-thread runtime.
struct Client {
    child: std::process::Child,
    stats: String,
    _server: kv_testkit::ServerProc,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Client {
    let server = kv_testkit::ServerProc::start(&["--preload", "1000"]);
    let mut child = Command::new(kv_testkit::bin("kv-client"))
        .args(["--hosts", &server.addr, "--threads", "1", "--secs", "60"])
        .args(["--stats-bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = out.lines();
    let stats = loop {
        let l = lines.next().expect("client exited early").unwrap();
        if let Some(a) = l.strip_prefix("Serving stats on ") {
            break a.to_string();
        }
    };
    // Keep draining stdout so the client never blocks on it.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    Client {
        child,
        stats,
        _server: server,
    }
}

fn rss_bytes(pid: u32) -> u64 {
    kv_testkit::rss_bytes(pid)
}

fn poll_stats(addr: &str) -> Result<u64, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = connect_stats(addr, &ConnectOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let s = c
            .stats(context_with_timeout(Duration::from_secs(3)))
            .await
            .map_err(|e| kv_core::transport::rpc_error_text(&e))?;
        Ok(s.pid as u64)
    })
}

/// Closed by the peer (EOF or reset) within `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 256];
    matches!(s.read(&mut buf), Ok(0) | Err(_)) && {
        // A timeout is an Err too: tell it apart.
        s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        !matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

#[test]
fn huge_headers_are_refused_at_once_and_commit_nothing() {
    let c = start();
    let pid = c.child.id();
    assert_eq!(poll_stats(&c.stats), Ok(pid as u64));
    let base = rss_bytes(pid);
    let header = ((8u32 << 20) - 1).to_be_bytes();
    let mut conns: Vec<TcpStream> = (0..60)
        .map(|_| {
            let mut s = TcpStream::connect(&c.stats).unwrap();
            let _ = s.write_all(&header);
            s
        })
        .collect();
    for s in &mut conns {
        assert!(
            closed_within(s, Duration::from_secs(5)),
            "8 MiB header not refused"
        );
    }
    let grew = rss_bytes(pid).saturating_sub(base);
    println!("60 headers of 8 MiB: RSS grew {} KiB", grew >> 10);
    // Before: 100 such headers took the client from 10 to 230 MB.
    assert!(grew < 16 << 20, "RSS grew {} MiB", grew >> 20);
    assert_eq!(
        poll_stats(&c.stats),
        Ok(pid as u64),
        "endpoint still answers"
    );
}

#[test]
fn an_accept_error_does_not_stop_the_endpoint() {
    let c = start();
    let pid = c.child.id();
    assert_eq!(poll_stats(&c.stats), Ok(pid as u64));
    // Leave the client two free descriptors: the third connection's accept fails (EMFILE).
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = (open + 2).to_string();
    // Only the soft limit moves: raising a hard limit needs privileges.
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let nofile: Vec<String> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| {
            l.split_whitespace()
                .skip(3)
                .take(2)
                .map(str::to_string)
                .collect()
        })
        .unwrap();
    let (soft, hard) = (nofile[0].clone(), nofile[1].clone());
    let set = |n: &str| {
        let st = Command::new("prlimit")
            .args(["--pid", &pid.to_string(), &format!("--nofile={n}:{hard}")])
            .status()
            .expect("prlimit (util-linux) is needed for this test");
        assert!(st.success());
    };
    set(&limit);
    let conns: Vec<TcpStream> = (0..6)
        .map(|_| TcpStream::connect(&c.stats).unwrap())
        .collect();
    // Wait until the fd table is full: the next queued connection's accept fails.
    let end = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
        < open + 2
    {
        assert!(Instant::now() < end, "the client never filled its fd table");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(conns);
    set(&soft);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match poll_stats(&c.stats) {
            Ok(p) => {
                assert_eq!(p, pid as u64);
                break;
            }
            Err(e) => assert!(
                Instant::now() < end,
                "endpoint stopped after an accept error: {e}"
            ),
        }
    }
}
