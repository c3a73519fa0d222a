//! The kvlab RPC service and its wire types.
//!
//! One `batch` RPC carries many ops for one server, in their generated order,
//! and returns one result per op in the same order. The single-op methods are
//! for ad-hoc use and tests.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::limits::Limits;
use crate::stats::StatsSnapshot;

/// One operation on the store. Keys are the decimal key text as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Get { key: Bytes },
    Put { key: Bytes, value: Bytes },
}

impl Op {
    pub fn key(&self) -> &Bytes {
        match self {
            Op::Get { key } | Op::Put { key, .. } => key,
        }
    }
}

/// The result of one [`Op`], at the same position in the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// A get: the value, or `None` when the key is absent.
    Value(Option<Bytes>),
    /// A put was applied.
    Stored,
}

/// Why a server refused a request. The connection stays usable.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum KvError {
    #[error("batch of {ops} ops exceeds the server's limit of {max}")]
    BatchTooLarge { ops: usize, max: usize },
    #[error("key of {len} bytes exceeds the server's limit of {max}")]
    KeyTooLarge { len: usize, max: usize },
    #[error("value of {len} bytes exceeds the server's limit of {max}")]
    ValueTooLarge { len: usize, max: usize },
    #[error("empty key")]
    EmptyKey,
    /// The gets' values would not fit in one frame. The batch's puts were
    /// all applied (the effect of the whole batch); no value is returned.
    #[error("reply would exceed the frame limit of {max} bytes (send fewer gets of large values per batch); the batch's puts were applied")]
    ReplyTooLarge { max: usize },
    /// The server's memory budget is spent by buffered replies and frames.
    #[error("server busy: {held} bytes held, memory budget {budget} bytes; retry later")]
    Overloaded { held: usize, budget: usize },
}

/// What `ping` tells a client about the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    pub pid: u32,
    pub keys: u64,
    pub limits: Limits,
    /// Records `0..preload` were loaded at start (`--preload`).
    pub preload: u64,
    /// Drawn at random when the server starts: names this server's
    /// lifetime, so check-mode histories can tell runs apart.
    pub instance: u64,
    /// The server's CLOCK_MONOTONIC when it answered: check-mode clients
    /// sample their offset to it ([`crate::clock`]).
    pub clock_ns: u64,
    /// The server machine's boot id (empty when unreadable).
    pub boot: String,
}

#[tarpc::service]
pub trait Kv {
    /// Applies `ops` in order; the reply holds one result per op, in order.
    async fn batch(ops: Vec<Op>) -> Result<Vec<OpResult>, KvError>;
    async fn get(key: Bytes) -> Result<Option<Bytes>, KvError>;
    async fn put(key: Bytes, value: Bytes) -> Result<(), KvError>;
    /// Readiness probe: answers as soon as the store is loaded and serving.
    async fn ping() -> ServerInfo;
    /// Live counters of this process, for dashboards and reports.
    async fn stats() -> StatsSnapshot;
}

/// The stats endpoint of processes that have no `Kv` service (clients).
#[tarpc::service]
pub trait Stats {
    async fn stats() -> StatsSnapshot;
}
