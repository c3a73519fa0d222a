//! kv-dash: browse the experiments log (no subcommand), or print it;
//! `kv-dash live` watches a running cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kv_core::trials::Metric;
use kv_dash::by_commit::{self, HistoryQuery};
use kv_dash::cli::{self, Format};
use kv_dash::flame::TopBy;
use kv_dash::verdict;

#[derive(Parser)]
#[command(
    name = "kv-dash",
    version,
    about = "Browse kvlab experiments (runs, comparisons, flamegraphs), or watch a run live"
)]
struct Cli {
    /// The experiments directory (holds log.csv and runs/).
    #[arg(long, global = true, default_value = "experiments")]
    dir: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Clone, Copy)]
struct Output {
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV.
    #[arg(long)]
    csv: bool,
}

impl Output {
    fn format(self) -> Format {
        match (self.json, self.csv) {
            (true, _) => Format::Json,
            (_, true) => Format::Csv,
            _ => Format::Table,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum MetricArg {
    Throughput,
    P50,
    P99,
}

#[derive(Clone, Copy, ValueEnum)]
enum By {
    #[value(name = "self")]
    SelfTime,
    Total,
}

#[derive(Args)]
struct LiveArgs {
    /// Run manifest to read the nodes from [default: logs/latest/cluster.json].
    #[arg(long, conflicts_with_all = ["servers", "clients"])]
    manifest: Option<PathBuf>,
    /// kv-server addresses (their main port), HOST:PORT,... (instead of a manifest).
    #[arg(long, value_name = "ADDRS")]
    servers: Option<String>,
    /// kv-client stats addresses (`--stats-bind`), HOST:PORT,...
    #[arg(long, value_name = "ADDRS")]
    clients: Option<String>,
    /// Load time of the run in seconds, for the progress gauge (default: the manifest's).
    #[arg(long)]
    secs: Option<f64>,
    /// One line per second (elapsed, total ops/s, nodes up) instead of the
    /// dashboard; the default when stdout is not a terminal.
    #[arg(long)]
    plain: bool,
    /// Seconds a node may take to answer first; until then it is `starting`,
    /// not DOWN (run-cluster.sh passes its --ready-timeout) [default: 60].
    #[arg(long, value_name = "S")]
    ready_timeout: Option<f64>,
    /// Warm-up seconds the steady figure leaves out, as `kv-run record
    /// --warmup` (run-cluster.sh passes its --warmup) [default: 2].
    #[arg(long, value_name = "S")]
    warmup: Option<f64>,
    /// Milliseconds between two polls of a node (for measuring the cost).
    #[arg(long, hide = true, default_value_t = 250)]
    poll_ms: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Every run, newest first.
    List {
        /// Fit the table to N columns: columns are shortened or left out,
        /// never a number cut [default: the terminal's width; unlimited
        /// when stdout is not a terminal].
        #[arg(long, value_name = "N")]
        width: Option<usize>,
        #[command(flatten)]
        out: Output,
    },
    /// One run: every column, per-node medians, profiles.
    Show {
        run: String,
        #[command(flatten)]
        out: Output,
    },
    /// B against A with a verdict per metric (A, B: series, runs, tags or
    /// commits); two single runs also side by side.
    Compare {
        a: String,
        b: String,
        #[command(flatten)]
        out: Output,
    },
    /// The functions with the most samples in one process of a run.
    Top {
        run: String,
        /// Process, as `server-0` / `client-1` (default: the first server).
        #[arg(long)]
        process: Option<String>,
        /// How many functions.
        #[arg(short = 'n', default_value_t = 20)]
        n: usize,
        /// Rank by self or total samples.
        #[arg(long, value_enum, default_value = "self")]
        by: By,
        #[command(flatten)]
        out: Output,
    },
    /// Which functions of one process grew or shrank from A to B (runs, or
    /// series, tags or commits: their trials' profiles merged).
    Diff {
        a: String,
        b: String,
        /// Process, as `server-0` / `client-1` (default: B's first server).
        #[arg(long)]
        process: Option<String>,
        /// How many functions (largest change first).
        #[arg(short = 'n', default_value_t = 20)]
        n: usize,
        #[command(flatten)]
        out: Output,
    },
    /// The baseline later runs are judged against (run-cluster's "vs baseline" line).
    Baseline {
        #[command(subcommand)]
        action: Option<BaselineAction>,
    },
    /// Series of trials (run-cluster.sh --trials), oldest first.
    Series,
    /// One config's figure per commit, oldest first, with change points;
    /// also draws experiments/history-<config>-<metric>.svg.
    History {
        /// Config (setup) hash or a unique prefix [default: the newest run's].
        #[arg(long)]
        config: Option<String>,
        /// Only runs with this tag.
        #[arg(long)]
        tag: Option<String>,
        #[arg(long, value_enum, default_value = "throughput")]
        metric: MetricArg,
        /// Where to write the chart.
        #[arg(long)]
        svg: Option<PathBuf>,
        #[command(flatten)]
        out: Output,
    },
    /// Comparison report of B against A (A, B as for compare).
    Report {
        a: String,
        b: String,
        /// Markdown with relative links to charts and flamegraphs (save it in the experiments dir).
        #[arg(long)]
        markdown: bool,
    },
    /// Live dashboard of a running cluster: every server and client, polled 4 times a second.
    Live(LiveArgs),
    /// Benchmark: write a log of N runs, time opening it.
    #[command(hide = true)]
    BenchLog {
        #[arg(long, default_value_t = 10_000)]
        runs: usize,
    },
}

#[derive(Subcommand)]
enum BaselineAction {
    /// Set the baseline: a series id (or unique prefix) or a tag.
    Set { spec: String },
    /// Forget the baseline.
    Clear,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv-dash: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let dir = cli.dir.as_path();
    let text = match cli.command {
        None => return browse(dir),
        Some(Command::List { width, out }) => {
            cli::list(dir, out.format(), width.or_else(terminal_width))?
        }
        Some(Command::Show { run, out }) => cli::show(dir, &run, out.format())?,
        Some(Command::Compare { a, b, out }) => verdict::compare(dir, &a, &b, out.format())?,
        Some(Command::Baseline { action }) => match action {
            None => verdict::baseline_show(dir)?,
            Some(BaselineAction::Set { spec }) => verdict::baseline_set(dir, &spec)?,
            Some(BaselineAction::Clear) => verdict::baseline_clear(dir)?,
        },
        Some(Command::Series) => verdict::series_list(dir)?,
        Some(Command::History {
            config,
            tag,
            metric,
            svg,
            out,
        }) => {
            let metric = match metric {
                MetricArg::Throughput => Metric::Throughput,
                MetricArg::P50 => Metric::P50,
                MetricArg::P99 => Metric::P99,
            };
            let q = HistoryQuery {
                config: config.as_deref(),
                tag: tag.as_deref(),
                metric,
                svg: svg.as_deref(),
            };
            by_commit::history(dir, &q, out.format())?
        }
        Some(Command::Report { a, b, markdown }) => {
            if markdown {
                verdict::report_markdown(dir, &a, &b)?
            } else {
                verdict::compare(dir, &a, &b, Format::Table)?
            }
        }
        Some(Command::Top {
            run,
            process,
            n,
            by,
            out,
        }) => {
            let by = match by {
                By::SelfTime => TopBy::Self_,
                By::Total => TopBy::Total,
            };
            cli::top(dir, &run, process.as_deref(), n, by, out.format())?
        }
        Some(Command::Diff {
            a,
            b,
            process,
            n,
            out,
        }) => cli::diff(dir, &a, &b, process.as_deref(), n, out.format())?,
        Some(Command::Live(a)) => {
            let cfg = kv_dash::live::LiveFlags {
                manifest: a.manifest,
                servers: a.servers,
                clients: a.clients,
                secs: a.secs,
                plain: a.plain,
                poll_interval: Some(std::time::Duration::from_millis(a.poll_ms.max(10))),
                ready_timeout: a.ready_timeout,
                warmup: a.warmup,
            }
            .into_config()?;
            return kv_dash::live::run(cfg);
        }
        Some(Command::BenchLog { runs }) => {
            let b = kv_dash::bench::bench_log(runs)?;
            format!("{b}\n")
        }
    };
    print!("{text}");
    Ok(())
}

/// The terminal's width when stdout is one.
fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    ratatui::crossterm::terminal::size()
        .ok()
        .map(|(w, _)| w as usize)
}

/// The browser: load first (errors print as one line, terminal untouched),
/// then take over the terminal.
fn browse(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut app = kv_dash::app::App::load(dir)?;
    let mut tui = kv_dash::tui::Tui::init()?;
    tui.capture_mouse()?;
    kv_dash::browser::run(&mut tui, &mut app)?;
    Ok(())
}
