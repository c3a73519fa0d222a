//! Memory is bounded in bytes: per reply, per connection and per process
//! (docs/reliability.md, "Memory bounds"). Each test runs the real
//! kv-server over loopback, attacks it as issue 14 items 1-4 did, and
//! asserts the server's peak RSS (VmHWM) growth and the worst ping latency
//! of a neighbour connection while the attack runs. The bounds are the
//! promise, set well above what the server needs and far below what the
//! unbounded server took (the note of issue 14 has both figures).
//!
//! `KVLAB_TEST_SERVER` runs them against another build (how they were
//! checked against the unbounded server).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{batch_frame, client, closed_within, ctx, mib, rt, Server};
use kv_core::rpc::{KvError, Op};

const BIG: usize = 64 << 10;
/// A neighbour's ping must never wait this long (the unbounded server
/// stalled it 6.9 s). A promise, not a speed: one request holds a worker
/// for at most one frame's worth of copying.
const PING_STALL_LIMIT: Duration = Duration::from_secs(2);

fn server(args: &[&str]) -> Server {
    let bin = std::env::var_os("KVLAB_TEST_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| kv_testkit::bin("kv-server"));
    Server::start_bin(&bin, args)
}

/// Peak RSS (VmHWM) of `pid`, in bytes.
fn hwm_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("VmHWM line")
        * 1024
}

fn gets(key: &'static [u8], n: usize) -> Vec<Op> {
    (0..n)
        .map(|_| Op::Get {
            key: Bytes::from_static(key),
        })
        .collect()
}

/// Pings the server on its own connection until `stop`, keeping the
/// slowest round trip in `worst_us`.
fn neighbour(
    addr: String,
    stop: Arc<AtomicBool>,
    worst_us: Arc<AtomicU64>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        rt().block_on(async move {
            let c = client(&addr).await;
            let mut pings = 0;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = c.ping(ctx()).await.is_ok();
                worst_us.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                if !ok {
                    break; // no reply within the 5 s deadline: worst says so
                }
                pings += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            pings
        })
    })
}

/// Puts a 64 KiB value under `big` and returns the server's VmHWM after.
fn setup_big(addr: &str, pid: u32) -> u64 {
    rt().block_on(async {
        let c = client(addr).await;
        c.put(
            ctx(),
            Bytes::from_static(b"big"),
            Bytes::from(vec![7u8; BIG]),
        )
        .await
        .unwrap()
        .unwrap();
        // Warm the path once, so allocator caches count in the baseline.
        c.batch(ctx(), gets(b"big", 8)).await.unwrap().unwrap();
    });
    hwm_bytes(pid)
}

/// Item 1: a batch of 16,384 gets of a 64 KiB value (an 82 KB frame) would
/// build a ~1 GiB reply. It is answered with `ReplyTooLarge` once the reply
/// would pass one frame, the connection stays usable, and two such batches
/// in parallel neither grow the server by more than a few frames nor stall
/// a neighbour's ping.
#[test]
fn a_batch_whose_reply_exceeds_a_frame_is_refused_while_building_it() {
    let s = server(&["--preload", "0"]);
    let base = setup_big(&s.addr, s.pid());
    let stop = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(AtomicU64::new(0));
    let pinger = neighbour(s.addr.clone(), stop.clone(), worst.clone());
    let attackers: Vec<_> = (0..2)
        .map(|_| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                rt().block_on(async move {
                    let c = client(&addr).await;
                    let reply = c
                        .batch(ctx(), gets(b"big", 16_384))
                        .await
                        .map_err(|e| kv_core::transport::rpc_error_text(&e));
                    // The connection survives the refusal.
                    let v = c.get(ctx(), Bytes::from_static(b"big")).await;
                    (reply, v.map(|v| v.map(|b| b.map(|b| b.len()))))
                })
            })
        })
        .collect();
    let replies: Vec<_> = attackers
        .into_iter()
        .map(|a| a.join().expect("attacker"))
        .collect();
    stop.store(true, Ordering::Relaxed);
    let pings = pinger.join().expect("neighbour");
    let grew = hwm_bytes(s.pid()).saturating_sub(base);
    let worst = Duration::from_micros(worst.load(Ordering::Relaxed));
    println!(
        "item 1: VmHWM grew {:.1} MiB, neighbour's worst ping {worst:?} ({pings} answered)",
        mib(grew)
    );
    assert!(pings > 0, "no ping answered");
    for (reply, after) in replies {
        assert_eq!(reply, Ok(Err(KvError::ReplyTooLarge { max: 8 << 20 })));
        assert!(matches!(after, Ok(Ok(Some(n))) if n == BIG), "{after:?}");
    }
    // Two replies of at most one frame (8 MiB) each, plus their encoding.
    assert!(grew < 64 << 20, "VmHWM grew {:.1} MiB", mib(grew));
    assert!(
        worst < PING_STALL_LIMIT,
        "neighbour's ping waited {worst:?}"
    );
}

/// Item 2: a peer sends 300 batches of 120 gets of a 64 KiB value (~7.5 MiB
/// of reply each, 210 KB sent) and never reads. The server stops reading it
/// once its unwritten replies pass --max-reply-buffer-bytes (16 MiB), so
/// only a few batches are ever executed and RSS stays bounded until the
/// idle timeout closes it.
#[test]
fn a_peer_that_never_reads_pins_a_bounded_number_of_bytes() {
    let s = server(&["--preload", "0", "--idle-timeout-secs", "5"]);
    let base = setup_big(&s.addr, s.pid());
    let stop = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(AtomicU64::new(0));
    let pinger = neighbour(s.addr.clone(), stop.clone(), worst.clone());
    let mut bytes = Vec::new();
    for id in 0..300 {
        bytes.extend(batch_frame(id, gets(b"big", 120)));
    }
    let mut peer = TcpStream::connect(&s.addr).unwrap();
    peer.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    peer.write_all(&bytes)
        .expect("all requests fit in the socket buffers");
    let stats = rt();
    let stats_client = stats.block_on(client(&s.addr));
    let batches = || stats.block_on(async { stats_client.stats(ctx()).await.unwrap().batches });
    // Wait until the server has executed some of them (and so filled the
    // socket buffers with replies), then watch it for a second.
    let start = Instant::now();
    while batches() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no batch executed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let watch = Instant::now();
    let mut executed = 0;
    while watch.elapsed() < Duration::from_secs(1) {
        executed = batches();
        std::thread::sleep(Duration::from_millis(50));
    }
    let grew = hwm_bytes(s.pid()).saturating_sub(base);
    stop.store(true, Ordering::Relaxed);
    pinger.join().expect("neighbour");
    let worst = Duration::from_micros(worst.load(Ordering::Relaxed));
    println!(
        "item 2: {executed} of 300 batches executed, VmHWM grew {:.1} MiB, neighbour's worst ping {worst:?}",
        mib(grew)
    );
    // 16 MiB of unwritten replies + one reply over + the socket buffers'
    // worth (~10 MiB on loopback) lets ~5 batches of 7.5 MiB run: the
    // warm-up batch counts as one.
    assert!(
        executed < 20,
        "{executed} batches executed for a peer that never reads"
    );
    assert!(grew < 64 << 20, "VmHWM grew {:.1} MiB", mib(grew));
    assert!(
        worst < PING_STALL_LIMIT,
        "neighbour's ping waited {worst:?}"
    );
    // The idle timeout still closes it.
    assert!(closed_within(&mut peer, Duration::from_secs(15)).is_some());
}

/// Item 3: 500 connections each announce a frame of 8 MiB - 1 and send no
/// body (2 KB of traffic). The read buffer grows only as bytes arrive, so
/// they cost a few KiB each, not a reserved frame.
#[test]
fn a_header_announcing_a_big_frame_commits_no_memory() {
    let s = server(&["--preload", "0", "--idle-timeout-secs", "1"]);
    let base = setup_big(&s.addr, s.pid());
    let header = ((8u32 << 20) - 1).to_be_bytes();
    let mut conns: Vec<TcpStream> = (0..500)
        .map(|_| {
            let mut c = TcpStream::connect(&s.addr).unwrap();
            c.write_all(&header).unwrap();
            c
        })
        .collect();
    // Each is closed by the idle timeout, after the server has read its header.
    for c in &mut conns {
        assert!(
            closed_within(c, Duration::from_secs(20)).is_some(),
            "not closed"
        );
    }
    let grew = hwm_bytes(s.pid()).saturating_sub(base);
    println!("item 3: 500 headers, VmHWM grew {:.1} MiB", mib(grew));
    // 500 x (8 KiB read + 8 KiB write buffer + task) is ~10 MiB.
    assert!(
        grew < 48 << 20,
        "VmHWM grew {:.1} MiB for 500 headers",
        mib(grew)
    );
}

/// Item 4: with --memory-budget-bytes 32 MiB, eight peers that never read
/// (each allowed 16 MiB of replies by itself) cannot take more than the
/// budget plus one reply per worker; meanwhile a new batch gets a clear
/// `Overloaded` refusal and pings are still answered at once.
#[test]
fn the_process_budget_bounds_all_peers_together() {
    let s = server(&[
        "--preload",
        "0",
        "--idle-timeout-secs",
        "30",
        "--memory-budget-bytes",
        "33554432",
    ]);
    let base = setup_big(&s.addr, s.pid());
    let mut bytes = Vec::new();
    for id in 0..60 {
        bytes.extend(batch_frame(id, gets(b"big", 120)));
    }
    let peers: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut p = TcpStream::connect(&s.addr).unwrap();
            p.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            p.write_all(&bytes).unwrap();
            p
        })
        .collect();
    let (refusal, worst) = rt().block_on(async {
        let c = client(&s.addr).await;
        let start = Instant::now();
        let refusal = loop {
            match c.batch(ctx(), gets(b"big", 1)).await.unwrap() {
                Err(e) => break e,
                Ok(_) if start.elapsed() < Duration::from_secs(15) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Ok(_) => panic!("the budget was never spent"),
            }
        };
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let t = Instant::now();
            c.ping(ctx()).await.unwrap();
            worst = worst.max(t.elapsed());
        }
        (refusal, worst)
    });
    let grew = hwm_bytes(s.pid()).saturating_sub(base);
    println!(
        "item 4: refusal {refusal}; VmHWM grew {:.1} MiB; worst ping {worst:?}",
        mib(grew)
    );
    assert!(
        matches!(refusal, KvError::Overloaded { budget, .. } if budget == 32 << 20),
        "{refusal:?}"
    );
    // Budget (32 MiB) + one 7.5 MiB reply per worker (2) + allocator slack.
    assert!(grew < 96 << 20, "VmHWM grew {:.1} MiB", mib(grew));
    assert!(worst < PING_STALL_LIMIT, "ping waited {worst:?}");
    drop(peers);
}
