//! `kv-server`: flags → limits → preload → serve until SIGINT/SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use kv_core::limits::Limits;
use kv_core::shutdown::Shutdown;
use kv_core::stats::{course_stats_block, Rates};
use kv_server::service::ServerState;
use kv_server::store::Store;
use tokio::net::TcpListener;

/// Writes to stdout and flushes, ignoring errors: a closed or full stdout
/// (the reader of a pipe went away) must not panic a server that is
/// serving or draining.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        let _ = o.write_fmt(format_args!($($t)*));
        let _ = o.flush();
    }};
}

const MAX_CONNECTIONS: usize = 1 << 20;
const MAX_IN_FLIGHT: usize = 1 << 16;
/// One year: enough for "never", small enough to stay far from overflow.
const MAX_IDLE_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The kvlab key-value server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TCP port to listen on (0 picks a free one; the first line says which).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to bind. Loopback by default: pass the node's address to serve other hosts.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Records 0..N-1 loaded with 128-byte values before serving (0 starts empty).
    #[arg(long, default_value_t = kv_core::workload::RECORD_COUNT)]
    preload: u64,
    /// Profile this process; writes PREFIX.svg, PREFIX.pb and PREFIX.folded when it stops.
    #[arg(long, value_name = "PREFIX")]
    profile: Option<std::path::PathBuf>,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Largest frame accepted, in bytes; a longer one closes the connection.
    #[arg(long, default_value_t = Limits::default().max_frame_bytes)]
    max_frame_bytes: usize,
    /// Most ops in one batch; a larger batch is refused with an error reply.
    #[arg(long, default_value_t = Limits::default().max_batch_ops)]
    max_batch_ops: usize,
    #[arg(long, default_value_t = Limits::default().max_key_bytes)]
    max_key_bytes: usize,
    #[arg(long, default_value_t = Limits::default().max_value_bytes)]
    max_value_bytes: usize,
    /// Concurrent connections; further ones are closed on accept.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Replies buffered per connection before the server stops reading it.
    #[arg(long, default_value_t = Limits::default().max_in_flight_per_connection)]
    max_in_flight: usize,
    /// Seconds a connection may stay silent (or not read replies) before it is closed.
    #[arg(long, default_value_t = Limits::default().idle_timeout_ms / 1000)]
    idle_timeout_secs: u64,
    /// Bytes of replies one connection may leave unread before the server stops reading it.
    #[arg(long, default_value_t = Limits::default().max_reply_buffer_bytes)]
    max_reply_buffer_bytes: usize,
    /// Bytes all connections together may hold in buffers and unwritten
    /// replies; beyond it gets and batches are refused ("server busy").
    #[arg(long, default_value_t = Limits::default().memory_budget_bytes)]
    memory_budget_bytes: usize,
}

impl Args {
    fn limits(&self) -> Result<Limits> {
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
}

/// The command line with the course's single-dash long flags (`-port`)
/// read as their `--` forms (kv_core::goflags).
fn go_style_args() -> Vec<String> {
    let cmd = Args::command();
    let longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    kv_core::goflags::go_style(std::env::args().collect(), &longs)
}

fn main() {
    let args = Args::parse_from(go_style_args());
    if let Err(e) = run(args) {
        eprintln!("kv-server: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let limits = args.limits()?;
    kv_core::limits::check_preload("--preload", args.preload).map_err(anyhow::Error::msg)?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(w) = args.workers {
        kv_core::limits::check_threads("--workers", w).map_err(anyhow::Error::msg)?;
        rt.worker_threads(w);
    }
    let rt = rt
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(serve(args, limits))
}

async fn serve(args: Args, limits: Limits) -> Result<()> {
    let addr = SocketAddr::new(args.bind, args.port);
    // Bind before preloading so a busy port fails at once.
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener
        .local_addr()
        .context("listener has no local address")?;
    let store = tokio::task::spawn_blocking(move || Store::preloaded(args.preload))
        .await
        .context("preload failed")?;
    let state = Arc::new(ServerState::new(store, limits));
    // Profile the serving phase only, not the preload.
    let profiler = args
        .profile
        .as_deref()
        .map(|p| kv_core::profile::Profiler::start(p, kv_core::profile::hz_from_env()))
        .transpose()?;
    let shutdown = Shutdown::install().context("cannot install signal handlers")?;
    out!("Starting KVS server on {local}\n");
    let printer = tokio::spawn(print_stats(state.clone()));
    kv_server::server::run(listener, state.clone(), shutdown.recv()).await;
    printer.abort();
    let s = state.snapshot();
    out!(
        "kv-server stopped: {} gets, {} puts, {} batches, {} refused in {:.1} s\n",
        s.gets,
        s.puts,
        s.batches,
        s.failed,
        s.uptime_ms as f64 / 1000.0
    );
    if let Some(p) = profiler {
        let files = p.finish()?;
        out!(
            "profile: {} samples in {}\n",
            files.samples,
            files.svg.display()
        );
    }
    Ok(())
}

/// The course's per-second stats block on stdout.
async fn print_stats(state: Arc<ServerState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut prev = state.snapshot();
    loop {
        tick.tick().await;
        let now = state.snapshot();
        let r = Rates::between(&prev, &now);
        out!("{}", course_stats_block(r.gets_per_s, r.puts_per_s));
        prev = now;
    }
}
