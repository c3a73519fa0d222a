//! `kv-server`: flags → limits → preload → serve until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use kv_config::server::Args;
use kv_core::limits::Limits;
use kv_core::shutdown::Shutdown;
use kv_core::stats::{course_stats_block, Rates};
use kv_core::summary::ServerSummary;
use kv_server::service::ServerState;
use kv_store::Store;
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

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // A child this process started to symbolise its profile (its flags
    // are not ours to parse).
    if let Some(code) = kv_core::symbolize::run_if_asked() {
        std::process::exit(code);
    }
    let args = Args::parse_from(kv_config::go_style::<Args>(std::env::args().collect()));
    if let Err(e) = run(args) {
        eprintln!("kv-server: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let limits = args.limits()?;
    // Fail now, not at shutdown, when the summary cannot be written.
    if let Some(path) = &args.summary_json {
        std::fs::write(path, b"{}").with_context(|| format!("cannot write {}", path.display()))?;
    }
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
    if let Some(path) = &args.summary_json {
        let summary = ServerSummary {
            config: args.facts()?,
            gets: s.gets,
            puts: s.puts,
            batches: s.batches,
            refused: s.failed,
            uptime_s: s.uptime_ms as f64 / 1000.0,
        };
        let json = serde_json::to_string_pretty(&summary).context("server summary")?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
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
