//! kv-server as a library: the store, the service and the accept loop, so
//! the client's `--in-process` mode and tests reuse exactly the same code.

#[cfg(feature = "fault-stale-reads")]
mod fault;
mod key;
pub mod server;
pub mod service;
pub mod store;
