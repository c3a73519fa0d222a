//! kv-core: the pieces of kvlab that servers, clients and tools share —
//! the RPC service and wire types, the exact YCSB workload generator,
//! key sharding, limits, and stats/latency types.

pub mod error;
pub mod latency;
pub mod limits;
pub mod process;
pub mod rpc;
pub mod shard;
pub mod stats;
pub mod transport;
pub mod value;
pub mod workload;

pub use error::ConfigError;
