//! `kv-run`: subcommands called by run-cluster.sh (see docs/run-cluster.md).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kv_run::manifest::Manifest;
use kv_run::{collect, plan, ready, record, report, room, scale, sweep, trials};

/// Orchestration helpers for kvlab runs.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Plan a run: write LOGDIR/cluster.json and print bash arrays of the processes to start.
    Plan(plan::PlanArgs),
    /// Record PIDs in the manifest: `--pid node0=1234`, `--remote-pid node0=987`.
    SetPids {
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long = "pid", value_name = "NODE=PID")]
        pids: Vec<String>,
        #[arg(long = "remote-pid", value_name = "NODE=PID")]
        remote_pids: Vec<String>,
    },
    /// Wait until every server answers a ping (bounded), naming the one that does not.
    WaitReady {
        /// Servers as HOST:PORT or NAME=HOST:PORT, comma-separated.
        #[arg(long)]
        hosts: String,
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Poll every node's stats ~4x/s and write per-second rows until SIGTERM or all clients finished.
    Collect {
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Print one progress line per second.
        #[arg(long)]
        plain: bool,
    },
    /// Print the course-style report of a log directory.
    Report {
        logdir: PathBuf,
        /// Print the report as JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Append the run's row to log.csv and fill runs/<run_id>/.
    Record(record::RecordArgs),
    /// Before a run: the experiments folder is writable and has room for its record.
    CheckRoom {
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long)]
        experiments: PathBuf,
    },
    /// Chart throughput against clients or servers for runs sharing a tag or note.
    PlotScaling(record::ScalingArgs),
    /// Latency–throughput curve: closed-loop max, then open-loop steps (run-cluster.sh --sweep-rate).
    Sweep(sweep::SweepArgs),
    /// Scaling study: S servers + S clients per size, emulated (run-cluster.sh --emulate … --scale 1,2,4).
    Scale(scale::ScaleArgs),
    /// Run run-cluster.sh once per trial (A B A B for --against/--ab), then print the verdicts.
    Trials(trials::TrialsArgs),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // A study's sizes and spec are checked before any run: bad ones are
    // bad arguments (exit 2), like a plan's.
    let bad_config = match &cli.cmd {
        Cmd::Plan(_) => true,
        Cmd::Scale(a) => scale::check(a).is_err(),
        _ => false,
    };
    if let Err(e) = run(cli) {
        eprintln!("kv-run: error: {e:#}");
        // A preflight problem is the environment's, not the arguments'.
        let env_problem = e.downcast_ref::<kv_run::preflight::Failed>().is_some();
        std::process::exit(if bad_config && !env_problem { 2 } else { 1 });
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

fn parse_pairs(v: &[String]) -> Result<Vec<(String, u32)>> {
    v.iter()
        .map(|s| {
            let (n, p) = s
                .split_once('=')
                .with_context(|| format!("'{s}' is not NODE=PID"))?;
            Ok((
                n.to_string(),
                p.parse().with_context(|| format!("'{p}' is not a PID"))?,
            ))
        })
        .collect()
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Plan(a) => print!("{}", plan::plan(&a)?),
        Cmd::SetPids {
            manifest,
            pids,
            remote_pids,
        } => {
            let mut m = Manifest::read(&manifest)?;
            for (node, pid) in parse_pairs(&pids)? {
                let n = m
                    .nodes
                    .iter_mut()
                    .find(|n| n.name == node)
                    .with_context(|| format!("no node {node}"))?;
                n.pid = Some(pid);
            }
            for (node, pid) in parse_pairs(&remote_pids)? {
                let n = m
                    .nodes
                    .iter_mut()
                    .find(|n| n.name == node)
                    .with_context(|| format!("no node {node}"))?;
                n.remote_pid = Some(pid);
            }
            m.write(&manifest)?;
        }
        Cmd::WaitReady { hosts, timeout } => {
            let hosts: Vec<String> = hosts.split(',').map(|h| h.trim().to_string()).collect();
            anyhow::ensure!(
                timeout > 0.0 && timeout.is_finite(),
                "--timeout must be positive"
            );
            for line in
                runtime()?.block_on(ready::wait_ready(&hosts, Duration::from_secs_f64(timeout)))?
            {
                println!("{line}");
            }
        }
        Cmd::Collect {
            manifest,
            out,
            plain,
        } => {
            runtime()?.block_on(collect::collect(&manifest, &out, plain))?;
        }
        Cmd::Report { logdir, json } => {
            let r = report::build(&logdir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", r.text());
            }
        }
        Cmd::Record(a) => {
            let dir = record::record(&a)?;
            let status = if a.failed.is_some() { "failed" } else { "ok" };
            println!("recorded run ({status}) in {}", dir.display());
        }
        Cmd::CheckRoom {
            manifest,
            experiments,
        } => room::check(&experiments, &Manifest::read(&manifest)?)?,
        Cmd::Sweep(a) => {
            let (svg, r) = sweep::sweep(&a)?;
            print!("{}", sweep::table(&r));
            println!("curve: {}", svg.display());
        }
        Cmd::Scale(a) => {
            let (svg, r) = scale::scale(&a)?;
            println!();
            print!("{}", r.table());
            println!("chart: {}", svg.display());
        }
        Cmd::PlotScaling(a) => {
            let (out, table) = record::plot_scaling(&a)?;
            print!("{table}");
            println!("chart: {}", out.display());
        }
        Cmd::Trials(a) => {
            let code = trials::run_trials(&a)?;
            if code != 0 {
                std::process::exit(code);
            }
        }
    }
    Ok(())
}
