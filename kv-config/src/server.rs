//! kv-server's flags and the limits and facts they give. Here rather than
//! in the binary so `kv-run plan` reads a run's server arguments with the
//! very types the server parses them with.

use std::net::IpAddr;

use anyhow::Result;
use clap::Parser;
use kv_core::facts::ServerFacts;
use kv_core::limits::Limits;

pub const MAX_CONNECTIONS: usize = 1 << 20;
pub const MAX_IN_FLIGHT: usize = 1 << 16;
/// One year: enough for "never", small enough to stay far from overflow.
pub const MAX_IDLE_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// The kvlab key-value server.
#[derive(Debug, Parser)]
#[command(
    name = "kv-server",
    version,
    about = "kvlab key-value server: tarpc over TCP, sharded concurrent map, batched ops"
)]
pub struct Args {
    /// TCP port to listen on (0 picks a free one; the first line says which).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to bind. Loopback by default: pass the node's address to serve other hosts.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Records 0..N-1 loaded with 128-byte values before serving (0 starts empty).
    #[arg(long, default_value_t = kv_core::workload::RECORD_COUNT)]
    pub preload: u64,
    /// Profile this process; writes PREFIX.svg, PREFIX.pb and PREFIX.folded when it stops.
    #[arg(long, value_name = "PREFIX")]
    pub profile: Option<std::path::PathBuf>,
    /// Write the effective config and final counts as JSON to this file
    /// when it stops (kv_core::summary::ServerSummary).
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<std::path::PathBuf>,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Largest frame accepted, in bytes; a longer one closes the connection.
    #[arg(long, default_value_t = Limits::default().max_frame_bytes)]
    pub max_frame_bytes: usize,
    /// Most ops in one batch; a larger batch is refused with an error reply.
    #[arg(long, default_value_t = Limits::default().max_batch_ops)]
    pub max_batch_ops: usize,
    #[arg(long, default_value_t = Limits::default().max_key_bytes)]
    pub max_key_bytes: usize,
    #[arg(long, default_value_t = Limits::default().max_value_bytes)]
    pub max_value_bytes: usize,
    /// Concurrent connections; further ones are closed on accept.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Replies buffered per connection before the server stops reading it.
    #[arg(long, default_value_t = Limits::default().max_in_flight_per_connection)]
    pub max_in_flight: usize,
    /// Seconds a connection may stay silent (or not read replies) before it is closed.
    #[arg(long, default_value_t = Limits::default().idle_timeout_ms / 1000)]
    pub idle_timeout_secs: u64,
    /// Bytes of replies one connection may leave unread before the server stops reading it.
    #[arg(long, default_value_t = Limits::default().max_reply_buffer_bytes)]
    pub max_reply_buffer_bytes: usize,
    /// Bytes all connections together may hold in buffers and unwritten
    /// replies; beyond it gets and batches are refused ("server busy").
    #[arg(long, default_value_t = Limits::default().memory_budget_bytes)]
    pub memory_budget_bytes: usize,
}

impl Args {
    /// The limits these flags ask for, checked (one line per bad value).
    pub fn limits(&self) -> Result<Limits> {
        for (name, v) in [
            ("--max-frame-bytes", self.max_frame_bytes),
            ("--max-batch-ops", self.max_batch_ops),
            ("--max-key-bytes", self.max_key_bytes),
            ("--max-value-bytes", self.max_value_bytes),
            ("--max-connections", self.max_connections),
            ("--max-in-flight", self.max_in_flight),
            ("--idle-timeout-secs", self.idle_timeout_secs as usize),
            ("--max-reply-buffer-bytes", self.max_reply_buffer_bytes),
            ("--memory-budget-bytes", self.memory_budget_bytes),
        ] {
            anyhow::ensure!(v > 0, "{name} must be at least 1");
        }
        // Upper bounds keep absurd values from panicking deep inside tokio
        // (semaphore and channel sizes) instead of failing here in one line.
        for (name, v, max) in [
            ("--max-connections", self.max_connections, MAX_CONNECTIONS),
            ("--max-in-flight", self.max_in_flight, MAX_IN_FLIGHT),
            // The length prefix is 4 bytes.
            ("--max-frame-bytes", self.max_frame_bytes, u32::MAX as usize),
        ] {
            anyhow::ensure!(v <= max, "{name} must be at most {max}");
        }
        anyhow::ensure!(
            self.idle_timeout_secs <= MAX_IDLE_TIMEOUT_SECS,
            "--idle-timeout-secs must be at most {MAX_IDLE_TIMEOUT_SECS}"
        );
        Ok(Limits {
            max_frame_bytes: self.max_frame_bytes,
            max_batch_ops: self.max_batch_ops,
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
            max_connections: self.max_connections,
            max_in_flight_per_connection: self.max_in_flight,
            idle_timeout_ms: self.idle_timeout_secs * 1000,
            max_reply_buffer_bytes: self.max_reply_buffer_bytes,
            memory_budget_bytes: self.memory_budget_bytes,
        })
    }

    /// The run facts of these flags (kv_core::facts), limits and worker
    /// count checked: what `kv-run plan` checks is what the server would.
    pub fn facts(&self) -> Result<ServerFacts> {
        if let Some(w) = self.workers {
            kv_core::limits::check_threads("--workers", w).map_err(anyhow::Error::msg)?;
        }
        Ok(ServerFacts {
            bind: self.bind.to_string(),
            port: self.port,
            preload: self.preload,
            workers: self.workers.map(|w| w as u32),
            limits: self.limits()?,
        })
    }
}
