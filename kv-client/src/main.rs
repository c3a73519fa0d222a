//! `kv-client`: flags → Config → driver::run, then the report and an exit
//! code that says whether every generated op completed.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use kv_client::config::{Args, Config, Target};
use kv_client::driver::{self, Shared};
use kv_core::shutdown::Shutdown;
use kv_core::summary::ClientSummary;
use kv_core::workload::{thread_seed, WorkloadSpec};

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("kv-client: error: {e:#}");
            std::process::exit(2);
        }
    }
}

fn run(args: &Args) -> Result<i32> {
    let cfg = Config::try_from(args)?;
    if let Some(n) = args.dump_ops {
        dump_ops(&cfg, n)?;
        return Ok(0);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    // Before the first line is out: whoever reads it may signal at once.
    let shutdown = {
        let _in_runtime = rt.enter();
        Shutdown::install().context("cannot install signal handlers")?
    };
    let target = match &cfg.target {
        Target::Servers(h) => h.join(","),
        Target::InProcess { preload } => format!("in-process store ({preload} records)"),
    };
    println!(
        "kv-client: {} theta {} against {target}, {} threads, seeds {}..={}, batch {}, window {}, {} conns/server, {:.1} s",
        cfg.workload,
        cfg.theta,
        cfg.threads,
        thread_seed(cfg.seed, 0),
        thread_seed(cfg.seed, cfg.threads as u64 - 1),
        cfg.batch,
        cfg.window,
        cfg.connections,
        cfg.duration.as_secs_f64()
    );
    // Fail now, not after a long run, when the summary cannot be written.
    if let Some(path) = &args.summary_json {
        std::fs::write(path, b"{}").with_context(|| format!("cannot write {}", path.display()))?;
    }
    let profiler = args
        .profile
        .as_deref()
        .map(|p| kv_core::profile::Profiler::start(p, kv_core::profile::hz_from_env()))
        .transpose()?;
    let shared = driver::new_shared(cfg.threads);
    let summary = rt.block_on(async {
        if let Some(addr) = args.stats_bind {
            let local = kv_client::stats::serve(addr, shared.clone()).await?;
            println!("Serving stats on {local}");
        }
        let ticker = tokio::spawn(print_progress(shared.clone()));
        let r = driver::run(cfg, shared.clone(), shutdown.recv()).await;
        ticker.abort();
        r
    });
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            // Still leave a summary behind: the run failed, it did not vanish.
            if let Some(path) = &args.summary_json {
                let failed = serde_json::json!({ "failure": format!("{e:#}") });
                let _ = std::fs::write(path, failed.to_string());
            }
            return Err(e);
        }
    };
    report(&summary);
    if let Some(path) = &args.summary_json {
        let json = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(p) = profiler {
        let files = p.finish()?;
        println!(
            "profile: {} samples in {}",
            files.samples,
            files.svg.display()
        );
    }
    let ok = summary.is_ok();
    Ok(if ok { 0 } else { 1 })
}

/// `index,key,op` rows of thread 0's stream, the fixture format.
fn dump_ops(cfg: &Config, n: u64) -> Result<()> {
    let spec = WorkloadSpec::new(cfg.workload, cfg.theta);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "index,key,op")?;
    for (i, op) in spec.generator(cfg.seed).take(n as usize).enumerate() {
        writeln!(out, "{i},{},{}", op.key, op.kind.name())?;
    }
    out.flush()?;
    Ok(())
}

async fn print_progress(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut prev = shared.totals().completed();
    loop {
        tick.tick().await;
        let now = shared.totals().completed();
        println!("ops/s {:.2}", now.saturating_sub(prev) as f64);
        prev = now;
    }
}

fn report(s: &ClientSummary) {
    let t = &s.totals;
    for (i, c) in s.per_thread.iter().enumerate() {
        println!(
            "thread {i}: generated {} sent {} completed {} (gets {} puts {}) failed {}",
            c.generated,
            c.sent,
            c.completed(),
            c.gets,
            c.puts,
            c.failed
        );
    }
    println!(
        "generated {} sent {} completed {} (gets {} puts {}) failed {}",
        t.generated,
        t.sent,
        t.completed(),
        t.gets,
        t.puts,
        t.failed
    );
    if t.completed() > 0 {
        println!(
            "op mix: gets {:.2}% puts {:.2}%",
            100.0 * t.gets as f64 / t.completed() as f64,
            100.0 * t.puts as f64 / t.completed() as f64
        );
    }
    if let (Some(batch), Some(op)) = (&s.batch_latency, &s.op_latency) {
        println!("batch latency: {batch}");
        println!("op latency: {op}");
    }
    if let Some(f) = &s.failure {
        eprintln!("kv-client: error: {f} (partial counts above)");
    } else if !t.is_intact() {
        eprintln!(
            "kv-client: error: integrity check failed: generated {} but completed {} (failed {})",
            t.generated,
            t.completed(),
            t.failed
        );
    }
    println!("throughput {:.2} ops/s", s.throughput().unwrap_or(0.0));
}
