//! kv-core: the pieces of kvlab that servers, clients and tools share —
//! the RPC service and wire types, the exact YCSB workload generator,
//! key sharding, limits, stats/latency types, and the experiments log
//! and per-run folder layout (`runlog`).

pub mod clock;
pub mod commit_history;
pub mod emulation;
pub mod error;
pub mod facts;
pub mod figures;
pub mod folded;
pub mod frame_bytes;
pub mod goflags;
pub mod history;
pub mod identity;
pub mod latency;
pub mod limits;
pub mod manifest;
pub mod memory;
pub mod ops;
pub mod poller;
pub mod process;
pub mod profile;
pub mod rpc;
pub mod runlog;
pub mod series;
pub mod shard;
pub mod shutdown;
pub mod stats;
pub mod summary;
pub mod sweep;
pub mod symbolize;
pub mod transport;
pub mod trials;
pub mod value;
pub mod workload;

pub use error::ConfigError;
