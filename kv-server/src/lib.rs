//! kv-server as a library: the service and the accept loop, so tests and
//! the fuzz target drive exactly the same code. The store is `kv_store`
//! (kv-client's `--in-process` mode uses it too).

pub mod log;
pub mod server;
pub mod service;
