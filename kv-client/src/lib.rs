//! kv-client as a library: configuration and the load driver, so tests and
//! the bench can run them in-process.

pub mod check;
/// The flags and their checks live in kv-config (kv-run reads them too).
pub use kv_config::client as config;
pub mod driver;
pub mod nap;
pub mod pace;
pub mod schedule;
pub mod stats;
