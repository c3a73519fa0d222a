//! The store on its own: kv-server serves it and kv-client's `--in-process`
//! mode drives it directly, so the client needs no part of the server.

#[cfg(feature = "fault-stale-reads")]
mod fault;
mod key;
pub mod store;

pub use store::{Applied, Store};
