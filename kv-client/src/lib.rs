//! kv-client as a library: configuration and the load driver, so tests and
//! the bench can run them in-process.

pub mod check;
pub mod config;
pub mod driver;
pub mod pace;
pub mod schedule;
pub mod stats;
