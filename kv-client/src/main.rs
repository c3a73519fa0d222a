//! `kv-client`: flags → Config → driver::run, then the report and an exit
//! code that says whether every generated op completed.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use clap::Parser;
use kv_client::config::{Args, Config, Load, Target};
use kv_client::driver::{self, Shared};
use kv_client::pace::PaceMonitor;
use kv_core::latency::IntervalLog;
use kv_core::shutdown::Shutdown;
use kv_core::stats::OpenLoopPace;
use kv_core::summary::ClientSummary;
use kv_core::workload::{thread_seed, WorkloadSpec};

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // A child this process started to symbolise its profile (its flags
    // are not ours to parse).
    if let Some(code) = kv_core::symbolize::run_if_asked() {
        std::process::exit(code);
    }
    // The course's single-dash long flags (`-secs`) read as their `--` forms.
    let args = Args::parse_from(kv_config::go_style::<Args>(std::env::args().collect()));
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
    if let Load::Open(o) = cfg.load {
        println!(
            "open loop: {} ops/s offered ({} arrivals, flush {} us); latency from each op's intended start",
            o.rate_per_s,
            o.arrival.name(),
            o.flush.as_micros()
        );
    }
    let shared = driver::new_shared(cfg.threads);
    // A failure's summary names the config too (the driver's own has it).
    let facts = cfg.facts();
    let progress = Arc::new(Mutex::new(Progress::new(&cfg, args.hdr_log.as_deref())?));
    let summary = rt.block_on(async {
        if let Some(addr) = args.stats_bind {
            let local = kv_client::stats::serve(addr, shared.clone()).await?;
            println!("Serving stats on {local}");
        }
        let ticker = tokio::spawn(print_progress(shared.clone(), progress.clone()));
        let r = driver::run(cfg, shared.clone(), shutdown.recv()).await;
        ticker.abort();
        r
    });
    let mut progress = progress.lock().unwrap_or_else(|e| e.into_inner());
    // The last partial interval, also after a failure: what was measured is kept.
    if let Err(e) = progress.finish(&shared) {
        eprintln!("kv-client: warning: {e:#}");
    }
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            // Still leave a summary behind: the run failed, it did not vanish.
            if let Some(path) = &args.summary_json {
                let failed = ClientSummary {
                    failure: Some(format!("{e:#}")),
                    config: Some(facts),
                    ..Default::default()
                };
                let failed = serde_json::to_string_pretty(&failed)?;
                let _ = std::fs::write(path, failed);
            }
            return Err(e);
        }
    };
    let mut summary = summary;
    if let (Some(ol), Some(m)) = (&mut summary.open_loop, &progress.pace) {
        ol.seconds = m.seconds;
        ol.client_limited_s = m.limited_seconds;
    }
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

/// What the once-a-second ticker keeps between ticks.
struct Progress {
    client_id: u32,
    prev_completed: u64,
    /// Open loop only.
    pace: Option<PaceMonitor>,
    hdr: Option<IntervalLog<std::io::BufWriter<std::fs::File>>>,
    hdr_path: Option<std::path::PathBuf>,
}

impl Progress {
    fn new(cfg: &Config, hdr_log: Option<&std::path::Path>) -> Result<Self> {
        // Fail now, not after a long run; the header waits for the load's start.
        if let Some(p) = hdr_log {
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?;
        }
        Ok(Self {
            client_id: cfg.client_id,
            prev_completed: 0,
            pace: match cfg.load {
                Load::Closed => None,
                Load::Open(o) => Some(PaceMonitor::new(o.rate_per_s, cfg.threads, cfg.window)),
            },
            hdr: None,
            hdr_path: hdr_log.map(|p| p.to_path_buf()),
        })
    }

    /// Time since the load started (zero while connecting).
    fn at(shared: &Shared) -> Duration {
        shared
            .run_start
            .get()
            .map_or(Duration::ZERO, |t| t.elapsed())
    }

    fn tick(&mut self, shared: &Shared) -> Result<()> {
        let now = shared.totals().completed();
        println!(
            "ops/s {:.2}",
            now.saturating_sub(self.prev_completed) as f64
        );
        self.prev_completed = now;
        if shared.run_start.get().is_none() {
            return Ok(());
        }
        let at = Self::at(shared);
        if let Some(m) = &mut self.pace {
            let (behind, waited) = shared.take_pace();
            let second = m.tick(now, waited, behind, at);
            println!("{second}");
            *shared.pace.lock().unwrap_or_else(|e| e.into_inner()) = Some(OpenLoopPace {
                offered_per_s: second.offered_per_s,
                achieved_per_s: second.achieved_per_s,
                client_limited: second.limit.map(|l| l.to_string()),
            });
        }
        self.write_hdr(shared, at)
    }

    fn write_hdr(&mut self, shared: &Shared, at: Duration) -> Result<()> {
        let Some(p) = &self.hdr_path else {
            return Ok(());
        };
        if self.hdr.is_none() {
            // Offset zero of the log is the load's start.
            let start = SystemTime::now() - at;
            let comment = format!("kvlab kv-client {} op latency per second", self.client_id);
            self.hdr = Some(
                IntervalLog::create(p, start, &comment)
                    .with_context(|| format!("cannot write {}", p.display()))?,
            );
        }
        if let Some(h) = &mut self.hdr {
            h.write_cumulative(&shared.op_histogram(), at)
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        Ok(())
    }

    fn finish(&mut self, shared: &Shared) -> Result<()> {
        if shared.run_start.get().is_none() {
            return Ok(());
        }
        let at = Self::at(shared);
        self.write_hdr(shared, at)
    }
}

async fn print_progress(shared: Arc<Shared>, progress: Arc<Mutex<Progress>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let r = progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tick(&shared);
        if let Err(e) = r {
            // The run goes on; the log is what failed.
            eprintln!("kv-client: warning: {e:#}; no more latency intervals");
            progress.lock().unwrap_or_else(|e| e.into_inner()).hdr_path = None;
        }
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
    if let Some(o) = &s.open_loop {
        println!(
            "open loop: offered {:.2} ops/s achieved {:.2} ops/s (generated {} of {} scheduled); client-limited in {} of {} s",
            o.offered_per_s,
            s.throughput().unwrap_or(0.0),
            t.generated,
            o.scheduled,
            o.client_limited_s,
            o.seconds
        );
    }
}
