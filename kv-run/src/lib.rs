//! kv-run: the Rust side of `run-cluster.sh`. The script only starts and
//! stops processes; planning (nodes, ports, seeds, command lines),
//! readiness, live collection, the report and the experiment record are
//! here, each a subcommand of the `kv-run` binary.

pub mod balance;
pub mod cloudlab;
pub mod collect;
pub mod emulate;
pub mod lost;
pub mod manifest;
pub mod plan;
pub mod plot;
pub mod preflight;
pub mod ready;
pub mod record;
pub mod report;
pub mod room;
pub mod scale;
pub mod shell;
pub mod sweep;
pub mod trials;
