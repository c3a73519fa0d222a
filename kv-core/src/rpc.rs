//! The kvlab RPC service and its wire types.
//!
//! One `batch` RPC carries many ops for one server, in their generated order,
//! and returns one result per op in the same order. The single-op methods are
//! for ad-hoc use and tests.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::limits::Limits;
// The wire's ops and errors live apart from the service traits, so the
// limits (which check ops and answer with errors) need not import rpc.
pub use crate::ops::{KvError, Op, OpResult};
use crate::stats::StatsSnapshot;

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
