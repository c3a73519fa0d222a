//! A bounded soak: many valid and garbage connections against one server.
//! Every valid op must complete correctly, and the server's RSS must come
//! back near its baseline once the load is gone.
//!
//! CI runs a short version (`KV_SOAK_SECS`, default 5 s, `KV_SOAK_CONNS`,
//! default 100). The full one:
//! `KV_SOAK_SECS=60 KV_SOAK_CONNS=400 cargo test -p kv-server --test soak -- --nocapture`.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kv_core::rpc::{Op, OpResult};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Overwrites and reads back its own 16 preloaded keys (so the store does
/// not grow) until `stop`, checking every reply.
async fn valid(addr: String, id: u64, stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) {
    let c = client(&addr).await;
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let keys: Vec<Bytes> = (0..16).map(|k| key(id * 16 + k)).collect();
        let mut batch = Vec::new();
        let mut want = Vec::new();
        for k in &keys {
            let mut v = format!("{id}:{round}:").into_bytes();
            v.resize(128, b'.');
            let v = Bytes::from(v);
            batch.push(Op::Put {
                key: k.clone(),
                value: v.clone(),
            });
            batch.push(Op::Get { key: k.clone() });
            want.push(OpResult::Stored);
            want.push(OpResult::Value(Some(v)));
        }
        let got = c
            .batch(ctx(), batch)
            .await
            .unwrap_or_else(|e| panic!("valid connection {id}: {e}"))
            .unwrap_or_else(|e| panic!("valid connection {id} refused: {e}"));
        assert_eq!(got, want, "connection {id} round {round}");
        ops.fetch_add(want.len() as u64, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Opens connection after connection, each misbehaving in its own way.
fn garbage(addr: String, seed: u64, stop: Arc<AtomicBool>, conns: Arc<AtomicU64>) {
    let mut rng = Rng(seed | 1);
    let request = batch_frame(9, (0..100).map(|k| Op::Get { key: key(k) }).collect());
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = std::net::TcpStream::connect(&addr) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        conns.fetch_add(1, Ordering::Relaxed);
        match rng.next_u64() % 5 {
            0 => {
                let n = (rng.next_u64() % 8192) as usize;
                let _ = s.write_all(&rng.bytes(n));
            }
            1 => {
                let _ = s.write_all(&u32::MAX.to_be_bytes());
            }
            2 => {
                let mut f = request.clone();
                f.truncate(f.len() / 2);
                let _ = s.write_all(&f);
            }
            3 => {
                // Never reads its replies.
                for _ in 0..50 {
                    if s.write_all(&request).is_err() {
                        break;
                    }
                }
            }
            _ => {} // connects and says nothing
        }
        // Hold it a while (sometimes past the idle timeout), then drop it.
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 1500));
    }
}

#[test]
fn soak_valid_and_garbage_connections() {
    let secs = env("KV_SOAK_SECS", 5);
    let conns = env("KV_SOAK_CONNS", 100).max(2);
    let (valid_n, garbage_n) = (conns / 2, conns - conns / 2);
    let mut server = Server::start(&[
        "--preload",
        &(valid_n * 16).max(1000).to_string(),
        "--idle-timeout-secs",
        "1",
        "--max-frame-bytes",
        &(1 << 20).to_string(),
    ]);
    let addr = server.addr.clone();
    let rt = rt();
    rt.block_on(async { client(&addr).await.ping(ctx()).await.unwrap() });
    std::thread::sleep(Duration::from_millis(300));
    let baseline = server.rss_bytes();

    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let (pid, peak, stop) = (server.pid(), peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let started = Instant::now();
    let valid_tasks: Vec<_> = (0..valid_n)
        .map(|id| rt.spawn(valid(addr.clone(), id, stop.clone(), ops.clone())))
        .collect();
    let garbage_threads: Vec<_> = (0..garbage_n)
        .map(|i| {
            let (addr, stop, bad) = (addr.clone(), stop.clone(), bad.clone());
            std::thread::spawn(move || garbage(addr, 0x5eed + i * 7919, stop, bad))
        })
        .collect();
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(200));
        assert!(server.is_alive(), "server died during the soak");
    }
    stop.store(true, Ordering::Relaxed);
    for t in valid_tasks {
        rt.block_on(t).expect("a valid connection failed");
    }
    for t in garbage_threads {
        t.join().unwrap();
    }
    let ran = started.elapsed();
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    // Idle timeouts close what is left; freed memory goes back to the OS.
    let mut after = server.rss_bytes();
    let settle = Instant::now();
    while after > baseline + (8 << 20) && settle.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(250));
        after = server.rss_bytes();
    }
    let completed = ops.load(Ordering::Relaxed);
    eprintln!(
        "soak: {valid_n} valid + {garbage_n} garbage connection loops ({} garbage connections) for {:.1} s; \
         {completed} valid ops, all correct; RSS baseline {:.1} MiB, peak {:.1} MiB, after {:.1} MiB ({:.1} s to settle)",
        bad.load(Ordering::Relaxed),
        ran.as_secs_f64(),
        mib(baseline),
        mib(peak),
        mib(after),
        settle.elapsed().as_secs_f64()
    );
    assert!(completed > valid_n * 32, "only {completed} valid ops");
    assert!(server.is_alive());
    assert!(
        after <= baseline + (16 << 20),
        "RSS {:.1} MiB did not return near the baseline {:.1} MiB",
        mib(after),
        mib(baseline)
    );
    // The server still answers.
    rt.block_on(async {
        let c = client(&addr).await;
        assert_eq!(
            c.get(ctx(), key(0)).await.unwrap().unwrap().unwrap().len(),
            128
        );
    });
}
