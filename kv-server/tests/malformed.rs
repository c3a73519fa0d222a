//! Malformed traffic against the real kv-server binary: random bytes,
//! truncated frames, huge length prefixes, bad payloads, silent peers and
//! peers that never read. None of it may crash the server, grow its memory
//! without bound, or disturb a well-behaved client.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kv_core::rpc::{Op, OpResult};

const MAX_FRAME: usize = 1 << 20;
/// The server's idle timeout here. Garbage must be closed well before it
/// (in under half of it), or a server that ignores garbage until the idle
/// timeout would pass; truncated frames and silent peers not before half.
const IDLE: Duration = Duration::from_secs(2);

/// Writes and reads back its own keys until `stop`, checking every reply.
async fn well_behaved(addr: String, id: u64, stop: Arc<AtomicBool>, rounds: Arc<AtomicU64>) {
    let c = client(&addr).await;
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let mut ops = Vec::new();
        let mut want = Vec::new();
        for k in 0..8u64 {
            let key = Bytes::from(format!("good-{id}-{k}"));
            let value = Bytes::from(format!("v{round}-{k}"));
            ops.push(Op::Put {
                key: key.clone(),
                value: value.clone(),
            });
            ops.push(Op::Get { key });
            want.push(OpResult::Stored);
            want.push(OpResult::Value(Some(value)));
        }
        let got = c
            .batch(ctx(), ops)
            .await
            .expect("well-behaved batch failed")
            .expect("well-behaved batch refused");
        assert_eq!(got, want, "wrong results in round {round}");
        rounds.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn malformed_traffic_never_hurts_well_behaved_clients() {
    let mut server = Server::start(&[
        "--preload",
        "1000",
        "--max-frame-bytes",
        &MAX_FRAME.to_string(),
        "--idle-timeout-secs",
        &IDLE.as_secs().to_string(),
        "--max-in-flight",
        "16",
    ]);
    let addr = server.addr.clone();
    let rt = rt();
    let started = Instant::now();
    // Warm up the code paths once so the baseline includes them.
    rt.block_on(async {
        let c = client(&addr).await;
        c.ping(ctx()).await.unwrap();
    });
    let baseline = server.rss_bytes();
    let peak = Arc::new(AtomicU64::new(baseline));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pid, peak, stop) = (server.pid(), peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let rounds = Arc::new(AtomicU64::new(0));
    let good: Vec<_> = (0..2)
        .map(|id| rt.spawn(well_behaved(addr.clone(), id, stop.clone(), rounds.clone())))
        .collect();

    // Random bytes, 50 connections of 4 KiB each.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let conns: Vec<_> = (0..50).map(|_| raw(&addr, &rng.bytes(4096))).collect();
    for mut c in conns {
        let took = closed_within(&mut c, IDLE / 2);
        assert!(
            took.is_some(),
            "a random-bytes connection was not closed within {:?}",
            IDLE / 2
        );
    }

    // A huge length prefix: closed at once, without waiting for the idle timeout.
    for prefix in [u32::MAX, MAX_FRAME as u32 + 1] {
        let mut hello = prefix.to_be_bytes().to_vec();
        hello.extend_from_slice(&[7; 64]);
        let mut c = raw(&addr, &hello);
        let took = closed_within(&mut c, IDLE / 2);
        assert!(
            took.is_some(),
            "huge prefix not closed within {:?}",
            IDLE / 2
        );
    }

    // Truncated frames (a header promising more than is sent, a header cut
    // short, a prefix just under the limit then silence): the idle timeout
    // closes them.
    let mut cut = frame(&[0u8; 100]);
    cut.truncate(54);
    let valid = batch_frame(1, vec![Op::Get { key: key(1) }]);
    let truncated = [
        cut,
        vec![0, 0],
        (MAX_FRAME as u32 - 1).to_be_bytes().to_vec(),
        valid[..valid.len() - 1].to_vec(),
    ];
    // All at once, with the silent peer, so the idle timeout is waited once.
    let mut waiting: Vec<_> = truncated.iter().map(|b| raw(&addr, b)).collect();
    waiting.push(raw(&addr, &[]));
    let opened = Instant::now();
    for c in &mut waiting {
        assert!(
            closed_within(c, IDLE * 3).is_some(),
            "truncated frame or silent peer left open"
        );
        let took = opened.elapsed();
        assert!(
            took >= IDLE / 2,
            "closed after {took:?}, before the idle timeout"
        );
    }

    // Valid frames with bad bincode payloads: closed.
    let mut mutated = valid.clone();
    mutated[4] = 0x7f; // no such ClientMessage variant
    let mut bad_len = valid.clone();
    let n = bad_len.len();
    bad_len[n - 2] = 0xfb; // a key length beyond the frame
    for bytes in [frame(&[0xff; 32]), frame(&[]), mutated, bad_len] {
        let mut c = raw(&addr, &bytes);
        assert!(
            closed_within(&mut c, IDLE / 2).is_some(),
            "bad payload not closed within {:?}",
            IDLE / 2
        );
    }

    // The worst decode amplification a frame under the limit allows: ~500k
    // empty-key gets (2 bytes each on the wire, one `Op` each in memory).
    // The batch is refused after decoding; memory is given back.
    let amplified = batch_frame(2, vec![Op::Get { key: Bytes::new() }; 500_000]);
    assert!(amplified.len() - 4 <= MAX_FRAME, "{}", amplified.len());
    let mut c = raw(&addr, &amplified);
    // The promised refusal: an error reply, and the connection stays usable.
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let reply = read_reply(&mut c);
    assert_eq!(reply.request_id, 2);
    assert!(
        matches!(
            reply.message,
            Ok(kv_core::rpc::KvResponse::Batch(Err(
                kv_core::rpc::KvError::BatchTooLarge { ops: 500_000, .. }
            )))
        ),
        "{:?}",
        reply.message
    );
    // Then the idle timeout closes it, and the decoded ops are given back.
    assert!(closed_within(&mut c, IDLE * 3).is_some());
    let after_amplified = peak.load(Ordering::Relaxed);

    // A client that sends many requests and never reads: once the server's
    // reply buffers are full it stops reading, and the idle timeout closes
    // the connection. Each reply carries 200 preloaded 128-byte values.
    let request = batch_frame(3, (0..200).map(|k| Op::Get { key: key(k) }).collect());
    let mut sink = raw(&addr, &[]);
    let mut sent = 0usize;
    while sent < 5000 && sink.write_all(&request).is_ok() {
        sent += 1;
    }
    // Once the idle timeout has closed it, writing fails instead of
    // blocking. Probe until then (bounded), 64 KiB at a time.
    sink.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let chunk = vec![0u8; 1 << 16];
    let deadline = Instant::now() + IDLE * 5;
    loop {
        match sink.write_all(&chunk) {
            Err(e)
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            _ => assert!(
                Instant::now() < deadline,
                "a peer that never reads is still connected ({sent} requests sent)"
            ),
        }
    }

    // Meanwhile the well-behaved clients kept getting correct answers.
    let before_stop = rounds.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for g in good {
        rt.block_on(g).expect("well-behaved client panicked");
    }
    sampler.join().unwrap();
    assert!(before_stop > 20, "only {before_stop} good rounds");
    // And afterwards a new one does too.
    rt.block_on(async {
        let c = client(&addr).await;
        c.put(ctx(), key(5), Bytes::from_static(b"after"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            c.get(ctx(), key(5)).await.unwrap(),
            Ok(Some(Bytes::from_static(b"after")))
        );
        assert_eq!(
            c.get(ctx(), key(6)).await.unwrap().unwrap().unwrap().len(),
            128
        );
    });
    assert!(server.is_alive(), "server died");
    // Memory comes back once the connections are gone: wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut end = server.rss_bytes();
    while end >= baseline + (32 << 20) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        end = server.rss_bytes();
    }
    let peak = peak.load(Ordering::Relaxed).max(end);
    let secs = started.elapsed().as_secs_f64();
    let log_lines = server.stderr_text().lines().count();
    eprintln!(
        "malformed: RSS baseline {:.1} MiB, peak {:.1} MiB (after the amplified frame {:.1} MiB), end {:.1} MiB; \
         {before_stop} good rounds; {log_lines} log lines in {secs:.1} s",
        mib(baseline),
        mib(peak),
        mib(after_amplified),
        mib(end)
    );
    // A 1 MiB frame decodes to at most ~32x its size in ops; everything
    // else here is bounded by the frame limit and the reply buffer.
    assert!(
        peak < baseline + (96 << 20),
        "peak RSS {:.1} MiB",
        mib(peak)
    );
    assert!(
        end < baseline + (32 << 20),
        "RSS did not come back: {:.1} MiB",
        mib(end)
    );
    // Log lines are rate-limited to one a second per kind of event
    // (close, idle, unread, refused, limit, accept).
    assert!(
        (log_lines as f64) <= 6.0 * (secs + 1.0),
        "{log_lines} log lines in {secs:.1} s:\n{}",
        server.stderr_text()
    );
}

#[test]
fn connections_beyond_the_limit_are_closed_and_the_others_keep_working() {
    let server = Server::start(&["--preload", "10", "--max-connections", "4"]);
    let addr = server.addr.clone();
    let rt = rt();
    rt.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..4 {
            let c = client(&addr).await;
            c.ping(ctx()).await.unwrap();
            clients.push(c);
        }
        let extras = tokio::task::spawn_blocking({
            let addr = addr.clone();
            move || {
                for _ in 0..3 {
                    let mut s = raw(&addr, &[]);
                    let took = closed_within(&mut s, Duration::from_secs(3))
                        .expect("a connection beyond the limit was kept");
                    assert!(took < Duration::from_millis(900), "closed after {took:?}");
                }
            }
        });
        extras.await.unwrap();
        for c in &clients {
            assert_eq!(
                c.get(ctx(), key(3)).await.unwrap().unwrap().unwrap().len(),
                128
            );
        }
        // A freed slot is reusable.
        drop(clients.pop());
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let c = client(&addr).await;
            match c.ping(context_short()).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("freed slot not reusable: {e}"),
            }
        }
    });
    let stderr = server.stderr_text();
    assert!(stderr.contains("connection limit 4 reached"), "{stderr}");
}

fn context_short() -> tarpc::context::Context {
    kv_core::transport::context_with_timeout(Duration::from_millis(500))
}
