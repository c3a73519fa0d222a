//! `kv-check HISTORY...`: merges the clients' histories and checks every
//! key is linearizable. Exit 0 PASS, 1 FAIL, 2 unusable input.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use kv_check::synth::{write_synth, SynthConfig};
use kv_check::{check, load_files, report, Initial};
use kv_core::workload::{Theta, Workload};

#[derive(Parser)]
#[command(
    name = "kv-check",
    version,
    about = "Checks that a kvlab check-mode run was linearizable",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// History files, one per client process.
    #[arg(required = true)]
    histories: Vec<PathBuf>,
    /// Every key's value before the first put: `init` when the run was
    /// preloaded, `absent` otherwise.
    #[arg(long, default_value = "init")]
    initial: Initial,
    /// The servers' `--preload N`: keys below N start with the preloaded
    /// value, the others absent (overrides --initial).
    #[arg(long, value_name = "N")]
    preload: Option<u64>,
    /// Print phase timings to stderr.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a synthetic linearizable history (benchmarking the checker).
    #[command(hide = true)]
    Synth(SynthArgs),
}

#[derive(Args)]
struct SynthArgs {
    #[arg(long, default_value_t = 1_000_000)]
    ops: u64,
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    #[arg(long, default_value_t = 4)]
    clients: u32,
    #[arg(long, default_value_t = 8)]
    threads: u32,
    #[arg(long, default_value = "A")]
    workload: Workload,
    /// Zipfian skew of keys; 0 for uniform keys.
    #[arg(long, default_value_t = 0.99)]
    theta: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// One put in this many gets no reply (0: never).
    #[arg(long, default_value_t = 10_000)]
    unknown_every: u64,
    /// One get in this many returns the key's previous value (0: never).
    #[arg(long, default_value_t = 0)]
    stale_every: u64,
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Synth(args)) => synth(args).map(|()| ExitCode::SUCCESS),
        None => {
            let initial = cli.preload.map_or(cli.initial, Initial::PreloadedBelow);
            run(&cli.histories, initial, cli.verbose)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("kv-check: {e:#}");
        ExitCode::from(2)
    })
}

fn run(histories: &[PathBuf], initial: Initial, verbose: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut loaded = load_files(histories, threads)?;
    let loaded_at = Instant::now();
    let summary = check(&mut loaded, initial, threads).map_err(|dup| {
        let at = |i: usize| {
            let loc = loaded.recs[i].loc;
            format!("{}:{}", loaded.paths[loc.file()].display(), loc.line())
        };
        anyhow::anyhow!(
            "{}: key {}: value written twice (also at {}): check-mode values must be unique",
            at(dup.second),
            dup.key,
            at(dup.first)
        )
    })?;
    if verbose {
        eprintln!(
            "kv-check: {} ops: loaded in {:.2} s, sorted and checked in {:.2} s ({threads} threads)",
            summary.ops,
            (loaded_at - started).as_secs_f64(),
            loaded_at.elapsed().as_secs_f64()
        );
    }
    match &summary.first {
        None => {
            println!("{}", report::pass_line(&summary, histories.len()));
            Ok(ExitCode::SUCCESS)
        }
        Some(v) => {
            println!("{}", report::fail_text(&loaded, &summary, v, initial)?);
            Ok(ExitCode::from(1))
        }
    }
}

fn synth(a: SynthArgs) -> anyhow::Result<()> {
    let theta = if a.theta == 0.0 {
        None
    } else {
        Some(Theta::new(a.theta)?)
    };
    let cfg = SynthConfig {
        ops: a.ops,
        keys: a.keys,
        clients: a.clients,
        threads: a.threads,
        workload: a.workload,
        theta,
        seed: a.seed,
        unknown_every: a.unknown_every,
        stale_every: a.stale_every,
    };
    let started = Instant::now();
    let paths =
        write_synth(&cfg, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "kv-check synth: {} ops in {} files under {} in {:.1} s",
        a.ops,
        paths.len(),
        a.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
