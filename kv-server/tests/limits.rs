//! The real kv-server binary enforces its limits with error replies and
//! keeps serving.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use kv_core::rpc::{KvError, Op};
use kv_core::transport::{connect, context_with_timeout, ConnectOptions};
use kv_testkit::ServerProc as Server;

#[test]
fn oversized_batch_key_and_value_are_refused_and_the_connection_survives() {
    let server = Server::start(&[
        "--preload",
        "0",
        "--max-batch-ops",
        "4",
        "--max-key-bytes",
        "8",
        "--max-value-bytes",
        "16",
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = connect(&server.addr, &ConnectOptions::default())
            .await
            .unwrap();
        let ctx = || context_with_timeout(Duration::from_secs(5));
        let get = |k: &'static [u8]| Op::Get {
            key: Bytes::from_static(k),
        };
        let five = vec![get(b"1"), get(b"2"), get(b"3"), get(b"4"), get(b"5")];
        assert_eq!(
            c.batch(ctx(), five).await.unwrap(),
            Err(KvError::BatchTooLarge { ops: 5, max: 4 })
        );
        assert_eq!(
            c.get(ctx(), Bytes::from_static(b"123456789"))
                .await
                .unwrap(),
            Err(KvError::KeyTooLarge { len: 9, max: 8 })
        );
        assert_eq!(
            c.put(ctx(), Bytes::from_static(b"k"), Bytes::from(vec![0u8; 17]))
                .await
                .unwrap(),
            Err(KvError::ValueTooLarge { len: 17, max: 16 })
        );
        assert_eq!(
            c.get(ctx(), Bytes::new()).await.unwrap(),
            Err(KvError::EmptyKey)
        );
        // A refused batch has no partial effect, and the connection still works.
        let mixed = vec![
            Op::Put {
                key: Bytes::from_static(b"a"),
                value: Bytes::from_static(b"1"),
            },
            get(b"123456789"),
        ];
        assert!(c.batch(ctx(), mixed).await.unwrap().is_err());
        assert_eq!(
            c.get(ctx(), Bytes::from_static(b"a")).await.unwrap(),
            Ok(None)
        );
        c.put(ctx(), Bytes::from_static(b"a"), Bytes::from_static(b"ok"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            c.get(ctx(), Bytes::from_static(b"a")).await.unwrap(),
            Ok(Some(Bytes::from_static(b"ok")))
        );
        assert_eq!(c.stats(ctx()).await.unwrap().failed, 5);
    });
}

#[test]
fn zero_limits_are_rejected_with_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_kv-server"))
        .args(["--max-batch-ops", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1);
    assert!(err.contains("--max-batch-ops must be at least 1"), "{err}");
}

/// Every upper-bound flag is refused at start with one line and exit 1,
/// before a thread starts or a record is loaded (issue 14 item 6).
#[test]
fn upper_bound_flags_are_refused_with_one_line() {
    for (args, needle) in [
        (
            &["--workers", "100000"][..],
            "--workers must be at most 1024",
        ),
        // An unwritable profile prefix fails before serving, not at shutdown.
        (
            &["--preload", "0", "--profile", "/nonexistent/dir/p"],
            "cannot write /nonexistent/dir/p.svg",
        ),
        (
            &["--preload", "99999999999"],
            "--preload 99999999999 needs about",
        ),
        (
            &["--max-connections", "99999999"],
            "--max-connections must be at most",
        ),
        (
            &["--max-in-flight", "99999999"],
            "--max-in-flight must be at most",
        ),
        (
            &["--max-frame-bytes", "99999999999"],
            "--max-frame-bytes must be at most",
        ),
        (
            &["--idle-timeout-secs", "99999999999"],
            "--idle-timeout-secs must be at most",
        ),
    ] {
        let start = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_kv-server"))
            .args(["--port", "0"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        // Refused up front, not after preloading or spawning.
        assert!(out.stdout.is_empty(), "{args:?} started serving");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?}",
            start.elapsed()
        );
    }
}

/// Reads until the peer closes; the time from `since`, or None after `limit`.
fn closed_at(
    s: &mut std::net::TcpStream,
    since: std::time::Instant,
    limit: Duration,
) -> Option<Duration> {
    use std::io::Read;
    let mut b = [0u8; 256];
    loop {
        let left = limit.saturating_sub(since.elapsed());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut b) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(_) => return Some(since.elapsed()),
        }
    }
}

/// Trickling a frame one byte every 100 ms does not reset the idle timer:
/// the connection is closed about one idle timeout (1 s) after it opened,
/// not after the 4 s the trickle would take.
#[test]
fn trickled_bytes_do_not_reset_the_idle_timer() {
    use std::io::Write;
    let server = Server::start(&["--preload", "0", "--idle-timeout-secs", "1"]);
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    let opened = std::time::Instant::now();
    let mut w = s.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        let _ = w.write_all(&100u32.to_be_bytes());
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(100));
            if w.write_all(&[0]).is_err() {
                return;
            }
        }
    });
    let took = closed_at(&mut s, opened, Duration::from_secs(4))
        .expect("still open after 4 s of trickling");
    assert!(
        took >= Duration::from_millis(900),
        "closed after {took:?}, before the idle timeout"
    );
    drop(s);
    trickle.join().unwrap();
}

/// Log lines are rate-limited per kind: a flood of closes is summarised
/// ("N similar lines suppressed") and does not hide the first line of
/// another kind (a refused request).
#[test]
fn a_log_flood_is_counted_and_hides_no_other_kind() {
    use std::io::Write;
    let server = Server::start(&["--preload", "0", "--max-batch-ops", "1"]);
    let garbage = || {
        let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
        let _ = s.write_all(&[0xff; 16]);
        let _ = closed_at(&mut s, std::time::Instant::now(), Duration::from_secs(5));
    };
    for _ in 0..50 {
        garbage();
    }
    // One refused request in the middle of the flood.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = connect(&server.addr, &ConnectOptions::default())
            .await
            .unwrap();
        let two = vec![
            Op::Get {
                key: Bytes::from_static(b"a"),
            },
            Op::Get {
                key: Bytes::from_static(b"b"),
            },
        ];
        let r = c
            .batch(context_with_timeout(Duration::from_secs(5)), two)
            .await
            .unwrap();
        assert!(matches!(r, Err(KvError::BatchTooLarge { .. })));
    });
    // More closes until one lands in a later second and reports the count.
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while !server.stderr_text().contains("similar lines suppressed") {
        assert!(
            std::time::Instant::now() < end,
            "no suppressed count:\n{}",
            server.stderr_text()
        );
        garbage();
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.stderr_text();
    assert!(log.contains("refused request: batch of 2 ops"), "{log}");
    let suppressed: u64 = log
        .lines()
        .find_map(|l| l.split("(and ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(suppressed >= 1, "{log}");
    // Far fewer lines than events: 50+ closes.
    assert!(log.lines().count() < 20, "{log}");
}

/// A closed stdout pipe is ignored: the per-second stats printer keeps
/// failing to write and the server keeps serving.
#[test]
fn a_closed_stdout_pipe_is_ignored() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kv-server"))
        .args(["--port", "0", "--preload", "0", "--workers", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first.trim().rsplit(' ').next().unwrap().to_string();
    drop(out); // the reader goes away
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let served = rt.block_on(async {
        let c = connect(&addr, &ConnectOptions::default()).await.unwrap();
        // Serve across 3 stats ticks (one a second), each a failed write.
        let start = std::time::Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_millis(3500) {
            c.ping(context_with_timeout(Duration::from_secs(5)))
                .await
                .expect("server stopped serving");
            n += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        n
    });
    assert!(child.try_wait().unwrap().is_none(), "server exited");
    assert!(served > 10);
    let _ = child.kill();
    let _ = child.wait();
}
