//! `kv-bench`: one invocation measures, side by side on this machine, the
//! in-process ceiling, kvlab 1 server + 1 client over loopback (YCSB-B, A,
//! C), the cost of profiling + live stats, and Redis with pipelining, and
//! prints a table with ratios. Every run is appended to the experiments log.
//! `--quick` is the CI regression guard: a ratio of two figures measured in
//! the same invocation, so it passes on a slow or loaded machine.

mod procs;
mod redis;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use clap::Parser;
use kv_core::runlog::{append_run, RunRecord, RunStatus};
use kv_core::stats::median;
use kv_core::trials::{compare, Metric, Sample, METHOD};
use kv_core::workload::Workload;
use serde::{Deserialize, Serialize};

use procs::{Bins, ClientRun};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Seconds of load per kvlab run.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Seconds after load start left out of a row's steady-state figure
    /// (`kv_core::figures`, as run-cluster.sh --warmup).
    #[arg(long, default_value_t = kv_core::figures::DEFAULT_WARMUP_S)]
    warmup: f64,
    /// Runs per measurement (the figure is their median).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Generator threads of the client (and of the in-process ceiling).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Extra kv-client flags for every kvlab run (e.g. "--batch 512 --window 16").
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    client_args: String,
    /// kv-server flags for every kvlab run (besides --port and --profile).
    #[arg(long, default_value = "--workers 2", allow_hyphen_values = true)]
    server_args: String,
    /// kv-server flags of the --against-bin-dir build (default: --server-args).
    #[arg(long, allow_hyphen_values = true)]
    against_server_args: Option<String>,
    /// kv-client flags of the --against-bin-dir build (default: --client-args).
    #[arg(long, allow_hyphen_values = true)]
    against_client_args: Option<String>,
    /// Workloads measured over loopback (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "YCSB-B,YCSB-A,YCSB-C")]
    workloads: Vec<Workload>,
    /// Skip the profiling + live stats on/off pairs.
    #[arg(long)]
    no_profile_cost: bool,
    /// Instead of the comparison: sweep batch size x window (YCSB-B) and draw the chart.
    #[arg(long)]
    sweep: bool,
    /// Where the sweep chart goes.
    #[arg(long, default_value = "docs/sweep.svg")]
    sweep_chart: PathBuf,
    /// Skip the Redis comparison.
    #[arg(long)]
    no_redis: bool,
    /// CI guard: one short YCSB-B run between two in-process ceiling runs;
    /// fails when kvlab falls below --min-ratio of the ceiling.
    #[arg(long)]
    quick: bool,
    /// Where --write-baseline stores this machine's medians (a record for
    /// people; no check reads it, since another machine's figures say nothing here).
    #[arg(long, default_value = "docs/bench-baseline.json")]
    baseline: PathBuf,
    /// Store this run's medians as the new baseline.
    #[arg(long)]
    write_baseline: bool,
    /// Fail --quick when kvlab YCSB-B over loopback falls below this fraction
    /// of the in-process ceiling measured around it (0.63 release, 0.9 debug
    /// idle, 0.64 debug beside a CPU hog on 2 cores; batch 1 window 1 gives ~0.02).
    #[arg(long, default_value_t = 0.15)]
    min_ratio: f64,
    /// Where kv-server and kv-client are (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Also measure the kv-server and kv-client in this folder (another
    /// build, e.g. an older commit's: `./bench.sh --against REV` builds it),
    /// alternating rounds with this build's, and print each metric's ratio.
    #[arg(long)]
    against_bin_dir: Option<PathBuf>,
    /// What to call the --bin-dir build in the output and the log's
    /// git_commit (default: this tree's commit without --bin-dir, else the
    /// folder, since its binaries need not be this tree's).
    #[arg(long)]
    label: Option<String>,
    /// What to call the --against-bin-dir build in the output and the log.
    #[arg(long, default_value = "against")]
    against_label: String,
    /// The experiments directory (env KVLAB_EXPERIMENTS_DIR, default experiments/).
    #[arg(long, env = "KVLAB_EXPERIMENTS_DIR", default_value = "experiments")]
    experiments: PathBuf,
    /// Free text stored with every run of this bench.
    #[arg(long, default_value = "")]
    note: String,
}

/// Medians the quick guard compares against.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Baseline {
    ycsb_b_ops_per_s: f64,
    ceiling_ops_per_s: f64,
    recorded_at: String,
    git_commit: String,
}

const KVLAB_B: &str = "kvlab 1 server + 1 client, YCSB-B";

fn kvlab_name(w: Workload) -> String {
    format!("kvlab 1 server + 1 client, {w}")
}

/// One named figure: every run's ops/s and their median.
struct Figure {
    name: String,
    runs: Vec<f64>,
}

impl Figure {
    fn median(&self) -> f64 {
        median(&self.runs).unwrap_or(0.0)
    }
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("kv-bench: error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run(args: &Args) -> Result<()> {
    if args.secs.is_nan() || args.secs <= 0.0 || args.runs == 0 || args.threads == 0 {
        bail!("--secs, --runs and --threads must be positive");
    }
    if !(args.min_ratio > 0.0 && args.min_ratio < 1.0) {
        bail!("--min-ratio must be between 0 and 1");
    }
    let bins =
        Bins::locate(args.bin_dir.as_deref())?.with_args(&args.server_args, &args.client_args);
    let tag = format!("bench-{}", kv_core::runlog::new_run_id(SystemTime::now()));
    let rec = Recorder {
        args,
        tag: tag.clone(),
        git: match (&args.label, &args.bin_dir) {
            (Some(label), _) => label.clone(),
            (None, Some(dir)) => dir.display().to_string(),
            (None, None) => git_commit(),
        },
    };
    let (secs, runs) = if args.quick {
        (args.secs.min(2.0), 1)
    } else {
        (args.secs, args.runs)
    };
    println!(
        "kv-bench: {} run(s) of {secs} s each, {} client threads, tag {tag}",
        runs, args.threads
    );
    println!("machine: {}", machine());

    let mut figures = Vec::new();
    let mut ceiling = Figure {
        name: "in-process ceiling, YCSB-B".into(),
        runs: vec![],
    };
    if args.sweep {
        return sweep(args, &bins, &rec, secs);
    }
    if let Some(dir) = &args.against_bin_dir {
        if args.quick {
            bail!("--quick and --against-bin-dir do not go together");
        }
        let other = Bins::locate(Some(dir))?.with_args(
            args.against_server_args
                .as_deref()
                .unwrap_or(&args.server_args),
            args.against_client_args
                .as_deref()
                .unwrap_or(&args.client_args),
        );
        return against(args, &other, &bins, &rec, secs, runs);
    }
    let mut kv: Vec<(Workload, Figure)> = Vec::new();
    let workloads: &[Workload] = if args.quick {
        &[Workload::B]
    } else {
        &args.workloads
    };
    for w in workloads {
        kv.push((
            *w,
            Figure {
                name: kvlab_name(*w),
                runs: vec![],
            },
        ));
    }
    let mut prof_on = Figure {
        name: "kvlab YCSB-B, profiling + live stats on".into(),
        runs: vec![],
    };
    let mut prof_off = Figure {
        name: "kvlab YCSB-B, profiling + live stats off".into(),
        runs: vec![],
    };
    let mut rss = (0u64, 0u64);
    let mut mem_on = Memory::default();
    let mut mem_off = Memory::default();

    for i in 0..runs {
        println!("-- round {}/{runs}", i + 1);
        let c = procs::run_in_process(&bins, Workload::B, args.threads, secs)?;
        rec.record(&c, "in-process", Workload::B, "ceiling");
        println!("  ceiling            {:>12.0} ops/s", c.throughput);
        ceiling.runs.push(c.throughput);
        for (w, fig) in &mut kv {
            let r = procs::run_loopback(&bins, *w, args, &[], secs, false)?;
            rec.record_loopback(&r, *w, "kvlab");
            println!(
                "  kvlab {w}       {:>12.0} ops/s (server saw {:.1}% gets)",
                r.client.throughput,
                r.server_get_share * 100.0
            );
            if *w == Workload::B {
                rss.0 = rss.0.max(r.server_rss_after_preload);
                rss.1 = rss.1.max(r.server_peak_rss);
            }
            fig.runs.push(r.client.throughput);
        }
        if args.quick {
            // A second ceiling after kvlab: load that comes or goes during
            // the run moves the ceiling's mean along with kvlab's figure.
            let c = procs::run_in_process(&bins, Workload::B, args.threads, secs)?;
            rec.record(&c, "in-process", Workload::B, "ceiling (after)");
            println!("  ceiling (after)    {:>12.0} ops/s", c.throughput);
            ceiling.runs.push(c.throughput);
        }
        if !args.quick && !args.no_profile_cost {
            // On and off back to back, in alternating order (on first in
            // odd rounds), so drift of the machine hits both alike.
            let pair = |observe: bool| -> Result<procs::LoopbackRun> {
                let r = procs::run_loopback(&bins, Workload::B, args, &[], secs, observe)?;
                let what = if observe { "on" } else { "off" };
                rec.record_loopback(&r, Workload::B, &format!("profiling+stats {what}"));
                Ok(r)
            };
            let (on, off) = if i % 2 == 0 {
                let on = pair(true)?;
                (on, pair(false)?)
            } else {
                let off = pair(false)?;
                (pair(true)?, off)
            };
            println!(
                "  profiling on/off   {:>12.0} / {:.0} ops/s",
                on.client.throughput, off.client.throughput
            );
            prof_on.runs.push(on.client.throughput);
            prof_off.runs.push(off.client.throughput);
            mem_on.add(&on);
            mem_off.add(&off);
        }
    }

    let redis = if args.quick || args.no_redis {
        None
    } else {
        measure_redis(&rec, runs)
    };

    // The table.
    let c = ceiling.median();
    let ceiling_runs = ceiling.runs.clone();
    println!();
    println!(
        "{:<44} {:>14} {:>10}  runs",
        "measurement", "median ops/s", "of ceiling"
    );
    figures.push(ceiling);
    figures.extend(kv.into_iter().map(|(_, f)| f));
    let profile_cost = !args.quick && !args.no_profile_cost;
    let (prof_on_runs, prof_off_runs) = (prof_on.runs.clone(), prof_off.runs.clone());
    if profile_cost {
        figures.push(prof_on);
        figures.push(prof_off);
    }
    if let Some(r) = &redis {
        figures.extend(redis_figures(r));
    }
    for f in &figures {
        let runs: Vec<String> = f.runs.iter().map(|x| format!("{:.2}M", x / 1e6)).collect();
        println!(
            "{:<44} {:>14.0} {:>9.1}%  {}",
            f.name,
            f.median(),
            100.0 * f.median() / c.max(1.0),
            runs.join(" ")
        );
    }
    let b = figures
        .iter()
        .find(|f| f.name == KVLAB_B)
        .map(Figure::median)
        .unwrap_or(0.0);
    if profile_cost {
        let on = figures
            .iter()
            .find(|f| f.name.contains("stats on"))
            .map(Figure::median)
            .unwrap_or(0.0);
        let off = figures
            .iter()
            .find(|f| f.name.contains("stats off"))
            .map(Figure::median)
            .unwrap_or(0.0);
        println!(
            "profiling + live stats cost: {:+.1}% (on vs off, medians)",
            100.0 * (on - off) / off.max(1.0)
        );
        if let (Ok(a), Ok(b)) = (
            Sample::new(prof_off_runs.iter().copied().filter(|x| *x > 0.0)),
            Sample::new(prof_on_runs.iter().copied().filter(|x| *x > 0.0)),
        ) {
            println!(
                "profiling + live stats on / off: {} ({METHOD}, {} alternating rounds)",
                compare(Metric::Throughput, &a, &b).summary(),
                a.len()
            );
        }
    }
    if let Some(r) = &redis {
        print_redis_ratios(r, b, "kvlab YCSB-B");
    }
    println!(
        "kvlab YCSB-B / in-process ceiling: {:.1}%",
        100.0 * b / c.max(1.0)
    );
    println!(
        "server RSS (1M preloaded 128-byte records): {:.0} MB after preload, {:.0} MB peak",
        rss.0 as f64 / 1e6,
        rss.1 as f64 / 1e6
    );

    let over_budget = if profile_cost {
        memory_table(&mem_off, &mem_on)
    } else {
        None
    };

    if args.write_baseline {
        let base = Baseline {
            ycsb_b_ops_per_s: b,
            ceiling_ops_per_s: c,
            recorded_at: kv_core::runlog::rfc3339_utc(SystemTime::now()),
            git_commit: rec.git.clone(),
        };
        std::fs::write(&args.baseline, serde_json::to_string_pretty(&base)? + "\n")
            .with_context(|| format!("cannot write {}", args.baseline.display()))?;
        println!("baseline written to {}", args.baseline.display());
    }
    if args.quick {
        guard(args, b, &ceiling_runs)?;
    }
    if let Some(why) = over_budget {
        bail!("{why}");
    }
    Ok(())
}

/// Redis's rounds, each recorded; None (with a line saying why) when it
/// cannot run here.
fn measure_redis(rec: &Recorder, runs: usize) -> Option<redis::RedisFigures> {
    match redis::bench(runs) {
        Ok(r) => {
            for f in redis_figures(&r) {
                for x in &f.runs {
                    rec.record_plain("redis", &f.name, *x);
                }
            }
            Some(r)
        }
        Err(e) => {
            println!("redis: skipped ({e:#})");
            None
        }
    }
}

fn redis_figures(r: &redis::RedisFigures) -> Vec<Figure> {
    [
        ("redis-benchmark -P 512 -d 128, GET", &r.get),
        ("redis-benchmark -P 512 -d 128, SET", &r.set),
        ("redis GET, server --io-threads 2", &r.get_io_threads),
        (
            "redis GET, redis-benchmark --threads 2",
            &r.get_bench_threads,
        ),
    ]
    .into_iter()
    .filter(|(_, runs)| !runs.is_empty())
    .map(|(name, runs)| Figure {
        name: name.into(),
        runs: runs.clone(),
    })
    .collect()
}

/// kvlab's figure against each Redis GET variant's median.
fn print_redis_ratios(r: &redis::RedisFigures, kvlab: f64, what: &str) {
    for (variant, runs) in [
        ("Redis GET", &r.get),
        ("Redis GET (io-threads 2)", &r.get_io_threads),
        (
            "Redis GET (redis-benchmark --threads 2)",
            &r.get_bench_threads,
        ),
    ] {
        if let Some(g) = median(runs) {
            println!("{what} / {variant}: {:.2}x", kvlab / g.max(1.0));
        }
    }
}

/// A profiled server with 1M preloaded records must fit in this (issue 19).
const SERVER_BUDGET_BYTES: u64 = 300_000_000;
/// What profiling may add to any one process's peak RSS (issue 19).
const PROFILING_MEMORY_BUDGET_BYTES: u64 = 30_000_000;

/// The largest memory figures seen over a measurement's rounds, in bytes.
#[derive(Debug, Default)]
struct Memory {
    server_after_preload: u64,
    server_load_peak: u64,
    server_exit_peak: u64,
    client_peak: u64,
}

impl Memory {
    fn add(&mut self, r: &procs::LoopbackRun) {
        self.server_after_preload = self.server_after_preload.max(r.server_rss_after_preload);
        self.server_load_peak = self.server_load_peak.max(r.server_peak_rss);
        self.server_exit_peak = self.server_exit_peak.max(r.server_exit_peak_rss);
        self.client_peak = self.client_peak.max(r.client_peak_rss);
    }
}

/// Prints RSS with profiling off and on and what profiling adds; returns
/// why the run is over budget, if it is: the profiled server's peak over
/// its life (the load, then writing the profile) above
/// [`SERVER_BUDGET_BYTES`], or profiling adding more than
/// [`PROFILING_MEMORY_BUDGET_BYTES`] to the server.
fn memory_table(off: &Memory, on: &Memory) -> Option<String> {
    let mb = |b: u64| b as f64 / 1e6;
    println!();
    println!(
        "{:<52} {:>8} {:>8} {:>9}",
        "memory (MB, largest over rounds)", "prof off", "prof on", "profiling"
    );
    // (name, off, on, checked). The server's life peak includes writing
    // the profile (symbolised in a child process, whose peak wait4 folds in
    // too). The client is not under the server's budget: reported only.
    let rows = [
        (
            "server VmRSS after preload (1M records)",
            off.server_after_preload,
            on.server_after_preload,
            true,
        ),
        (
            "server VmHWM at the end of the load",
            off.server_load_peak,
            on.server_load_peak,
            true,
        ),
        (
            "server peak RSS over its life (incl. profile write)",
            off.server_exit_peak,
            on.server_exit_peak,
            true,
        ),
        (
            "client peak RSS over its life (incl. profile write)",
            off.client_peak,
            on.client_peak,
            false,
        ),
    ];
    let mut worst_cost = 0i64;
    for (name, a, b, checked) in rows {
        let cost = b as i64 - a as i64;
        if checked {
            worst_cost = worst_cost.max(cost);
        }
        println!(
            "{name:<52} {:>8.0} {:>8.0} {:>+9.1}{}",
            mb(a),
            mb(b),
            cost as f64 / 1e6,
            if checked { "" } else { "  (not checked)" }
        );
    }
    let server_peak = on.server_load_peak.max(on.server_exit_peak);
    println!(
        "budget: profiled server peak {:.0} MB (limit {:.0} MB), profiling adds {:+.1} MB to the server (limit {:.0} MB)",
        mb(server_peak),
        mb(SERVER_BUDGET_BYTES),
        worst_cost as f64 / 1e6,
        mb(PROFILING_MEMORY_BUDGET_BYTES)
    );
    if server_peak > SERVER_BUDGET_BYTES {
        Some(format!(
            "over budget: a profiled server peaked at {:.0} MB with 1M records (limit {:.0} MB)",
            mb(server_peak),
            mb(SERVER_BUDGET_BYTES)
        ))
    } else if worst_cost > PROFILING_MEMORY_BUDGET_BYTES as i64 {
        Some(format!(
            "over budget: profiling added {:.1} MB to the server (limit {:.0} MB)",
            worst_cost as f64 / 1e6,
            mb(PROFILING_MEMORY_BUDGET_BYTES)
        ))
    } else {
        println!("budget: ok");
        None
    }
}

/// YCSB-B over a grid of batch sizes and windows: a table, a recorded run
/// each, and a chart of throughput against batch size, one line per window.
fn sweep(args: &Args, bins: &Bins, rec: &Recorder, secs: f64) -> Result<()> {
    const BATCHES: [usize; 5] = [16, 64, 256, 1024, 4096];
    const WINDOWS: [usize; 4] = [1, 2, 8, 32];
    let mut series = Vec::new();
    println!("{:>8} {:>8} {:>14}", "batch", "window", "ops/s");
    for window in WINDOWS {
        let mut points = Vec::new();
        for batch in BATCHES {
            let extra = [
                "--batch".to_string(),
                batch.to_string(),
                "--window".into(),
                window.to_string(),
            ];
            let r = procs::run_loopback(bins, Workload::B, args, &extra, secs, false)?;
            rec.record_loopback(
                &r,
                Workload::B,
                &format!("sweep batch={batch} window={window}"),
            );
            println!("{batch:>8} {window:>8} {:>14.0}", r.client.throughput);
            points.push(((batch as f64).log2(), r.client.throughput / 1e6));
        }
        series.push(kv_run::plot::Series::new(
            format!("window {window}"),
            points,
        ));
    }
    kv_run::plot::line_chart(
        &args.sweep_chart,
        "kvlab YCSB-B, 1 server + 1 client: batch size x window",
        "log2(batch size, ops per RPC)",
        "M ops/s",
        &series,
    )?;
    println!("chart: {}", args.sweep_chart.display());
    Ok(())
}

/// Another build (`a`, e.g. an older commit's) against this one (`b`): the
/// ceiling and each workload over loopback, both builds in every round and
/// in alternating order (a-b, b-a, ...) so drift of a shared machine hits
/// both alike; then each metric's medians and b's ratio to a with its 95%
/// interval ([`kv_core::trials`]).
fn against(args: &Args, a: &Bins, b: &Bins, rec: &Recorder, secs: f64, runs: usize) -> Result<()> {
    let label_a = args.against_label.as_str();
    let label_b = if rec.git.is_empty() {
        "this build"
    } else {
        rec.git.as_str()
    };
    let mut names = vec!["in-process ceiling, YCSB-B".to_string()];
    names.extend(args.workloads.iter().map(|w| kvlab_name(*w)));
    // figures[build][metric]: ops/s of every round.
    let mut figures = [vec![Vec::new(); names.len()], vec![Vec::new(); names.len()]];
    println!("against: {label_a} (a) and {label_b} (b), alternating a-b / b-a each round");
    for i in 0..runs {
        println!("-- round {}/{runs}", i + 1);
        let order: [usize; 2] = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for build in order {
            let (bins, label) = if build == 0 {
                (a, label_a)
            } else {
                (b, label_b)
            };
            let what = |m: &str| format!("against {m}: build {label}");
            let c = procs::run_in_process(bins, Workload::B, args.threads, secs)?;
            rec.record_as(
                &rec.row(&c, "in-process", Workload::B, &what("ceiling")),
                label,
            );
            println!("  {label:<12} ceiling      {:>12.0} ops/s", c.throughput);
            figures[build][0].push(c.throughput);
            for (j, w) in args.workloads.iter().enumerate() {
                let r = procs::run_loopback(bins, *w, args, &[], secs, false)?;
                rec.record_as(&rec.loopback_row(&r, *w, &what("kvlab")), label);
                println!(
                    "  {label:<12} kvlab {w}  {:>12.0} ops/s",
                    r.client.throughput
                );
                figures[build][j + 1].push(r.client.throughput);
            }
        }
    }
    let redis = if args.no_redis {
        None
    } else {
        measure_redis(rec, runs)
    };
    println!();
    println!(
        "{:<36} {:>14} {:>14} {:>7}  b vs a, 95% interval ({METHOD})",
        "measurement (median ops/s)", label_a, label_b, "b / a"
    );
    for (j, name) in names.iter().enumerate() {
        let (fa, fb) = (&figures[0][j], &figures[1][j]);
        let (ma, mb) = (median(fa).unwrap_or(0.0), median(fb).unwrap_or(0.0));
        let cmp = match (
            Sample::new(fa.iter().copied().filter(|x| *x > 0.0)),
            Sample::new(fb.iter().copied().filter(|x| *x > 0.0)),
        ) {
            (Ok(sa), Ok(sb)) => compare(Metric::Throughput, &sa, &sb).summary(),
            _ => "no valid runs".to_string(),
        };
        println!(
            "{name:<36} {ma:>14.0} {mb:>14.0} {:>6.2}x  {cmp}",
            mb / ma.max(1.0)
        );
    }
    // Each build's loopback figures as a share of its own ceiling.
    for (build, label) in [(0, label_a), (1, label_b)] {
        let c = median(&figures[build][0]).unwrap_or(0.0);
        for (j, w) in args.workloads.iter().enumerate() {
            let k = median(&figures[build][j + 1]).unwrap_or(0.0);
            println!(
                "{label}: kvlab {w} / in-process ceiling: {:.1}%",
                100.0 * k / c.max(1.0)
            );
        }
    }
    if let Some(r) = &redis {
        for f in redis_figures(r) {
            let runs: Vec<String> = f.runs.iter().map(|x| format!("{:.2}M", x / 1e6)).collect();
            println!("{:<44} {:>14.0}  {}", f.name, f.median(), runs.join(" "));
        }
        if let Some(j) = args.workloads.iter().position(|w| *w == Workload::B) {
            let b = median(&figures[1][j + 1]).unwrap_or(0.0);
            print_redis_ratios(r, b, &format!("{label_b}: kvlab YCSB-B"));
        }
    }
    Ok(())
}

/// Fails only on a gross regression: kvlab below `min_ratio` of the mean
/// in-process ceiling of this same invocation. Both figures slow down alike
/// on a slow or loaded machine, so the ratio does not depend on its speed.
fn guard(args: &Args, ycsb_b: f64, ceiling_runs: &[f64]) -> Result<()> {
    let mean = ceiling_runs.iter().sum::<f64>() / ceiling_runs.len().max(1) as f64;
    if mean <= 0.0 || ycsb_b <= 0.0 {
        bail!("no throughput measured (ceiling {mean:.0}, kvlab {ycsb_b:.0} ops/s)");
    }
    let ratio = ycsb_b / mean;
    println!(
        "guard: kvlab YCSB-B / in-process ceiling = {ycsb_b:.0} / {mean:.0} = {:.1}% (floor {:.0}%)",
        ratio * 100.0,
        args.min_ratio * 100.0
    );
    if ratio < args.min_ratio {
        bail!(
            "gross regression: kvlab reaches {:.1}% of the in-process ceiling, below {:.0}%",
            ratio * 100.0,
            args.min_ratio * 100.0
        );
    }
    println!("guard: ok");
    Ok(())
}

/// Appends bench runs to the experiments log.
struct Recorder<'a> {
    args: &'a Args,
    tag: String,
    git: String,
}

impl Recorder<'_> {
    fn base(&self, backend: &str, what: &str) -> RunRecord {
        let mut r = RunRecord::new(SystemTime::now());
        r.backend = backend.into();
        r.git_commit = self.git.clone();
        r.tag = self.tag.clone();
        r.note = if self.args.note.is_empty() {
            format!("bench: {what}")
        } else {
            format!("bench: {what}; {}", self.args.note)
        };
        r
    }

    fn record(&self, c: &ClientRun, backend: &str, w: Workload, what: &str) {
        let r = self.row(c, backend, w, what);
        self.append(&r);
    }

    fn row(&self, c: &ClientRun, backend: &str, w: Workload, what: &str) -> RunRecord {
        let mut r = self.base(backend, what);
        r.hosts = "127.0.0.1".into();
        r.servers = Some(u32::from(backend != "in-process"));
        r.clients = Some(1);
        r.threads = kv_core::runlog::PerClient::of([self.args.threads as u32]);
        r.workload = w.name().into();
        r.theta = Some(0.99);
        r.preload = Some(kv_core::workload::RECORD_COUNT);
        r.duration_s = Some(c.elapsed_s);
        r.generated_ops = Some(c.generated);
        r.completed_ops = Some(c.completed);
        match &c.failure {
            None => {
                r.client_ops_per_s = Some(c.throughput);
                r.p50_us = Some(c.p50_us);
                r.p99_us = Some(c.p99_us);
                r.p999_us = Some(c.p999_us);
            }
            Some(f) => r.status = RunStatus::Failed(f.clone()),
        }
        r
    }

    fn record_loopback(&self, r: &procs::LoopbackRun, w: Workload, what: &str) {
        let rec = self.loopback_row(r, w, what);
        self.append(&rec);
    }

    /// A loopback run's row: the figures from its series by the same
    /// builder as run-cluster rows (`RunFigures::apply_to`).
    fn loopback_row(&self, r: &procs::LoopbackRun, w: Workload, what: &str) -> RunRecord {
        let mut rec = self.row(&r.client, "local", w, what);
        if rec.status.is_ok() {
            rec.total_ops_per_s = r.server_median;
        }
        kv_core::figures::RunFigures::of(
            &r.series,
            kv_core::figures::Window {
                warmup_s: self.args.warmup,
                secs: r.secs,
            },
        )
        .apply_to(&mut rec);
        // The process's own high-water mark beats 4 Hz samples of RSS.
        rec.server_peak_rss_bytes = Some(r.server_peak_rss);
        rec
    }

    fn record_plain(&self, backend: &str, what: &str, ops_per_s: f64) {
        let mut r = self.base(backend, what);
        r.hosts = "127.0.0.1".into();
        r.client_ops_per_s = Some(ops_per_s);
        self.append(&r);
    }

    /// Appends `r` as a run of the build `label` (its commit, for --against).
    fn record_as(&self, r: &RunRecord, label: &str) {
        let mut r = r.clone();
        r.git_commit = label.to_string();
        self.append(&r);
    }

    fn append(&self, r: &RunRecord) {
        match append_run(&self.args.experiments, r) {
            Ok(()) => println!("    recorded run {} ({})", r.run_id, r.note),
            Err(e) => eprintln!("kv-bench: warning: run not recorded: {e}"),
        }
    }
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// CPU model and core count, for the table's header.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cores} cores, {cpu}")
}

/// Waits until `f` returns Some or the deadline passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_core::manifest::{Manifest, MANIFEST_VERSION};

    /// One recorded series, two builders: a bench row and a run-cluster row
    /// of the same config get the same steady-state figure from it.
    #[test]
    fn bench_and_run_cluster_rows_share_the_steady_figure() {
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../kv-core/tests/fixtures/series/ramp-stall-drain.csv");
        let series = kv_core::runlog::read_timeseries(&fixture).unwrap();
        let args = Args::parse_from(["kv-bench", "--warmup", "2"]);
        let rec = Recorder {
            args: &args,
            tag: "t".into(),
            git: "abc".into(),
        };
        let run = procs::LoopbackRun {
            client: procs::ClientRun {
                throughput: 2500.0,
                elapsed_s: 8.5,
                generated: 20_000,
                completed: 20_000,
                p50_us: 100,
                p99_us: 900,
                p999_us: 1000,
                failure: None,
            },
            server_rss_after_preload: 1000,
            server_peak_rss: 2000,
            server_exit_peak_rss: 2500,
            client_peak_rss: 500,
            server_get_share: 0.95,
            server_median: Some(1000.0),
            series: series.clone(),
            secs: 8.0,
        };
        let bench = rec.loopback_row(&run, Workload::B, "kvlab");

        let m = Manifest {
            version: MANIFEST_VERSION,
            run_id: "20260101-000000-abcd".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            backend: "local".into(),
            secs: 8.0,
            seed: 1,
            threads: 2,
            server_args: String::new(),
            client_args: String::new(),
            note: String::new(),
            tag: String::new(),
            profile: false,
            check: false,
            bin_dir: String::new(),
            remote_dir: None,
            script_args: Vec::new(),
            emulate: None,
            nodes: Vec::new(),
        };
        let empty = std::env::temp_dir().join(format!("kvbench-figures-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let report = kv_run::report::build(&empty).unwrap();
        let cluster =
            kv_run::record::build_record(&m, &report, &series, RunStatus::Ok, None, 2.0, &empty);
        std::fs::remove_dir_all(&empty).unwrap();
        // (median 1000 of server 0 + 2000 of server 1 over t = 5..10).
        assert_eq!(bench.steady_ops_per_s, Some(3000.0));
        assert_eq!(cluster.steady_ops_per_s, bench.steady_ops_per_s);
        assert_eq!(cluster.server_cpu_percent, bench.server_cpu_percent);
        assert_eq!(cluster.net_bytes_per_s, bench.net_bytes_per_s);
    }
}
