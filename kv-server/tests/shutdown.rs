//! SIGTERM and SIGINT: the server stops accepting, answers every batch that
//! was already sent, prints its final stats line and exits 0 in bounded
//! time, even with an idle peer and a peer that never reads.

mod common;

use std::io::{Read, Write};

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use kv_core::rpc::{KvRequest, KvResponse, Op, OpResult};

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
    // The drained peer: 36 batches of 8,192 gets (1 MiB of reply each),
    // not read until after the signal. The server stops reading it once
    // 16 MiB of replies are unwritten, so batches are certainly still
    // waiting when the signal comes (asserted from the server's counts).
    let batches = 36u64;
    let ops_per_batch = 8_192u64;
    let mut drained = TcpStream::connect(&addr).unwrap();
    let mut sent = Vec::new();
    for b in 0..batches {
        let ops = (0..ops_per_batch)
            .map(|k| Op::Get {
                key: key((b * ops_per_batch + k) % 1000),
            })
            .collect();
        sent.extend(batch_frame(b + 1, ops));
    }
    let writer = {
        let mut w = drained.try_clone().unwrap();
        std::thread::spawn(move || w.write_all(&sent).is_ok())
    };
    let rt = rt();
    let observer = rt.block_on(client(&addr));
    let executed = || rt.block_on(async { observer.stats(ctx()).await.unwrap().batches });
    // Wait until it is stalled: some batches executed, the count standing still.
    let start = Instant::now();
    let mut before = executed();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = executed();
        if now > 0 && now == before {
            break;
        }
        before = now;
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server never stalled"
        );
    }
    assert!(
        before < batches,
        "all {batches} batches ran before the signal: nothing to drain"
    );
    server.signal(sig);
    let signalled = Instant::now();
    // Every batch that was sent is answered in full, though most of them
    // are executed after the signal.
    let reader = std::thread::spawn(move || {
        drained
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        for _ in 0..batches {
            let r = read_reply(&mut drained);
            let KvResponse::Batch(Ok(ops)) = r.message.expect("server error") else {
                panic!("not a batch reply");
            };
            assert_eq!(ops.len() as u64, ops_per_batch);
            assert!(ops
                .iter()
                .all(|o| matches!(o, OpResult::Value(Some(v)) if v.len() == 128)));
        }
    });
    // Shutdown has begun (listener closed) once stats say finished.
    let finished = rt.block_on(async {
        loop {
            let s = observer.stats(ctx()).await.expect("stats while draining");
            if s.finished {
                break true;
            }
            if signalled.elapsed() > Duration::from_secs(2) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(
        finished,
        "server did not report draining within 2 s of {sig}"
    );
    reader
        .join()
        .expect("a batch sent before the signal was not answered");
    assert!(writer.join().unwrap(), "the batches were not all sent");
    // It stopped accepting: a late ping is never answered.
    if let Ok(mut late) = TcpStream::connect(&addr) {
        let ping = frame(&encode(&tarpc::ClientMessage::Request(tarpc::Request {
            context: tarpc::context::current(),
            id: 1,
            message: KvRequest::Ping {},
        })));
        let _ = late.write_all(&ping);
        late.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut b = [0u8; 1];
        let answered = matches!(late.read(&mut b), Ok(n) if n > 0);
        assert!(!answered, "a request sent after {sig} was answered");
    }
    let status = server
        .wait_exit(EXIT_LIMIT)
        .unwrap_or_else(|| panic!("server still running {EXIT_LIMIT:?} after {sig}"));
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status:?} after {sig}");
    // The pipe reader may still be catching up with the last lines.
    let end = Instant::now() + Duration::from_secs(5);
    let last = loop {
        let out = server.stdout_text();
        if let Some(l) = out.lines().find(|l| l.starts_with("kv-server stopped: ")) {
            break l.to_string();
        }
        assert!(Instant::now() < end, "no final stats line:\n{out}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let gets: u64 = last["kv-server stopped: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(gets >= batches * ops_per_batch, "{last}");
    eprintln!("{sig}: {before} of {batches} batches executed at the signal; exited 0 after {took:?}; {last}");
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
