//! Helpers for tests that run the real kv-server binary on loopback.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kv_core::rpc::{KvClient, KvRequest, Op};
use kv_core::transport::{connect, context_with_timeout, ConnectOptions};
use tarpc::tokio_serde::Serializer;
use tarpc::{ClientMessage, Request};

/// A kv-server child: its address, and every stdout/stderr line it printed.
/// Killed by PID when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `kv-server --port 0 --workers 2 ARGS` and waits for its start line.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kv-server"))
            .args(["--port", "0", "--workers", "2"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kv-server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next()
            .expect("kv-server exited before its start line")
            .expect("read start line");
        let addr = first
            .strip_prefix("Starting KVS server on ")
            .unwrap_or_else(|| panic!("unexpected start line {first:?}"))
            .to_string();
        // Keep draining both pipes so the server never blocks on a full one.
        let stdout = Arc::new(Mutex::new(vec![first]));
        let out = stdout.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                out.lock().unwrap().push(l);
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                err.lock().unwrap().push(l);
            }
        });
        Server {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size of the server process, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        rss_bytes(self.pid())
    }

    pub fn is_alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// Waits (bounded) for the exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A stopped process must be continued to die cleanly under SIGKILL's reaping.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

/// VmRSS of `pid` from /proc, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS line");
    kb * 1024
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub async fn client(addr: &str) -> KvClient {
    connect(addr, &ConnectOptions::default())
        .await
        .expect("connect")
}

pub fn ctx() -> tarpc::context::Context {
    context_with_timeout(Duration::from_secs(5))
}

pub fn key(k: u64) -> Bytes {
    Bytes::from(k.to_string())
}

/// A length-prefixed frame holding a valid `batch` request, as a tarpc
/// client would write it.
pub fn batch_frame(id: u64, ops: Vec<Op>) -> Vec<u8> {
    let msg: ClientMessage<KvRequest> = ClientMessage::Request(Request {
        context: tarpc::context::current(),
        id,
        message: KvRequest::Batch { ops },
    });
    frame(&encode(&msg))
}

pub fn encode(msg: &ClientMessage<KvRequest>) -> Vec<u8> {
    let mut codec = tarpc::tokio_serde::formats::Bincode::<(), ClientMessage<KvRequest>>::default();
    std::pin::Pin::new(&mut codec)
        .serialize(msg)
        .expect("encode")
        .to_vec()
}

/// Prefixes `payload` with its 4-byte big-endian length.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// Reads until the peer closes (EOF or reset) and returns how long that
/// took, or `None` if it was still open after `limit`.
pub fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 64 << 10];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(_) => return Some(start.elapsed()),
        }
    }
}

/// Connects and writes `bytes` (a write error means the server already closed).
pub fn raw(addr: &str, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("raw connect");
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.write_all(bytes);
    s
}

/// A small deterministic PRNG (xorshift64*) for garbage bytes.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
