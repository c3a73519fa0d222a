//! SIGTERM and SIGINT: the server stops accepting, answers every batch that
//! was already sent, prints its final stats line and exits 0 in bounded
//! time, even with an idle peer and a peer that never reads.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use kv_core::rpc::{Op, OpResult};

/// How long a stopping server may take: the drain grace period plus slack
/// for a loaded machine.
const EXIT_LIMIT: Duration = Duration::from_secs(5);

fn stop_with(sig: &str) {
    let mut server = Server::start(&["--preload", "1000", "--idle-timeout-secs", "30"]);
    let addr = server.addr.clone();
    // An idle peer and a peer that sends batches and never reads the replies.
    let idle = raw(&addr, &[]);
    let mut deaf = raw(&addr, &[]);
    deaf.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let request = batch_frame(1, (0..200).map(|k| Op::Get { key: key(k) }).collect());
    for _ in 0..2000 {
        if deaf.write_all(&request).is_err() {
            break;
        }
    }
    let rt = rt();
    let batches = 64u64;
    let ops_per_batch = 1000u64;
    let (results, signalled) = rt.block_on(async {
        let c = client(&addr).await;
        c.ping(ctx()).await.unwrap();
        let calls: Vec<_> = (0..batches)
            .map(|b| {
                let c = c.clone();
                let ops = (0..ops_per_batch)
                    .map(|k| Op::Get {
                        key: key((b * ops_per_batch + k) % 1000),
                    })
                    .collect();
                tokio::spawn(async move { c.batch(ctx(), ops).await })
            })
            .collect();
        // Let the calls reach the wire, then stop the server while they run.
        tokio::time::sleep(Duration::from_millis(20)).await;
        server.signal(sig);
        let signalled = Instant::now();
        let mut results = Vec::new();
        for call in calls {
            results.push(call.await.unwrap());
        }
        (results, signalled)
    });
    // Every batch in flight got its full, correct reply.
    for r in &results {
        let ops = r.as_ref().expect("in-flight batch lost").as_ref().unwrap();
        assert_eq!(ops.len() as u64, ops_per_batch);
        assert!(ops
            .iter()
            .all(|o| matches!(o, OpResult::Value(Some(v)) if v.len() == 128)));
    }
    // It stopped accepting.
    std::thread::sleep(Duration::from_millis(100));
    if let Ok(mut late) = TcpStream::connect(&addr) {
        assert!(
            closed_within(&mut late, Duration::from_secs(3)).is_some(),
            "a connection made after {sig} was served"
        );
    }
    let status = server
        .wait_exit(EXIT_LIMIT)
        .unwrap_or_else(|| panic!("server still running {EXIT_LIMIT:?} after {sig}"));
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status:?} after {sig}");
    // Let the pipe reader catch up with the last lines.
    std::thread::sleep(Duration::from_millis(200));
    let out = server.stdout_text();
    let last = out
        .lines()
        .find(|l| l.starts_with("kv-server stopped: "))
        .unwrap_or_else(|| panic!("no final stats line:\n{out}"));
    let gets: u64 = last["kv-server stopped: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(gets >= batches * ops_per_batch, "{last}");
    eprintln!("{sig}: exited 0 after {took:?}; {last}");
    drop((idle, deaf));
}

#[test]
fn sigterm_drains_in_flight_batches_and_exits_zero() {
    stop_with("TERM");
}

#[test]
fn sigint_drains_in_flight_batches_and_exits_zero() {
    stop_with("INT");
}

#[test]
fn an_idle_server_stops_at_once() {
    let mut server = Server::start(&["--preload", "10"]);
    let _idle = raw(&server.addr, &[]);
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(EXIT_LIMIT).expect("server did not stop");
    assert!(status.success(), "{status:?}");
    // Only the idle connection's short quiet period, not the whole grace.
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
}
