//! Helpers for tests that run the real kv-server binary on loopback.

#![allow(dead_code, unused_imports)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kv_core::rpc::{KvClient, KvRequest, KvResponse, Op};
use kv_core::transport::{connect, context_with_timeout, ConnectOptions};
use tarpc::tokio_serde::{Deserializer, Serializer};
use tarpc::{ClientMessage, Request};

pub use kv_testkit::{rss_bytes, signal, ServerProc as Server};

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

/// Reads one length-prefixed reply frame and decodes it.
pub fn read_reply(s: &mut TcpStream) -> tarpc::Response<KvResponse> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("reply header");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("reply body");
    let mut codec =
        tarpc::tokio_serde::formats::Bincode::<tarpc::Response<KvResponse>, ()>::default();
    std::pin::Pin::new(&mut codec)
        .deserialize(&bytes::BytesMut::from(&body[..]))
        .expect("decode reply")
}
