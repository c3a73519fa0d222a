//! `kv-check HISTORY...`: merges the clients' histories and checks every
//! key is linearizable. Exit 0 PASS, 1 FAIL, 2 unusable input (or nothing
//! to check), 3 the verdict could not be written. Only 0 and 1 are
//! verdicts: a tool or I/O failure never reads as "not linearizable".

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use kv_check::synth::{write_synth, SynthConfig};
use kv_check::{check, load_files, report, witness, Initial};
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
    /// preloaded, `absent` otherwise. Default: the histories' recorded
    /// preload, or `init` for older files that have none.
    #[arg(long)]
    initial: Option<Initial>,
    /// The servers' `--preload N`: keys below N start with the preloaded
    /// value, the others absent (overrides --initial and the histories'
    /// recorded preload).
    #[arg(long, value_name = "N")]
    preload: Option<u64>,
    /// Also write the verdict (or the error) to this file. Failing to write
    /// it exits 3, never 1.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Where a FAIL's witness page goes (`witness-key-K.html`: the failing
    /// key's ops around the violation). Default: the --output file's
    /// directory; without either, no page is written.
    #[arg(long, value_name = "DIR")]
    witness_dir: Option<PathBuf>,
    /// Print phase timings to stderr.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a synthetic linearizable history (benchmarking the checker).
    #[command(hide = true)]
    Synth(SynthArgs),
    /// Prints a history (text or binary) in the text format: line N of the
    /// output is what a verdict calls line N of the file.
    Dump { history: PathBuf },
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

/// Exit codes. Only PASS and FAIL are verdicts.
const PASS: u8 = 0;
const FAIL: u8 = 1;
const UNUSABLE: u8 = 2;
const CANNOT_WRITE: u8 = 3;

/// One line to stderr; a closed stderr is ignored (nothing else to tell).
fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "kv-check: {line}");
}

/// What a check came to: text for stdout (a verdict) or for stderr (why
/// there is none), and the exit code.
struct Ending {
    code: u8,
    text: String,
    to_stdout: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ending = match cli.command {
        Some(Command::Dump { history }) => {
            return ExitCode::from(match dump(&history) {
                Ok(()) => PASS,
                Err(e) if e.downcast_ref::<std::io::Error>().is_some() => {
                    note(&format!("cannot write the dump: {e}"));
                    CANNOT_WRITE
                }
                Err(e) => {
                    note(&format!("{}: {e:#}", history.display()));
                    UNUSABLE
                }
            })
        }
        Some(Command::Synth(args)) => match synth(args) {
            Ok(()) => return ExitCode::SUCCESS,
            Err(e) => {
                note(&format!("{e:#}"));
                return ExitCode::from(UNUSABLE);
            }
        },
        None => {
            let initial = cli.preload.map(Initial::PreloadedBelow).or(cli.initial);
            let witness_dir = cli.witness_dir.clone().or_else(|| {
                cli.output.as_ref().map(|o| match o.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                })
            });
            run(&cli.histories, initial, witness_dir.as_deref(), cli.verbose).unwrap_or_else(|e| {
                Ending {
                    code: UNUSABLE,
                    text: format!("kv-check: {e:#}"),
                    to_stdout: false,
                }
            })
        }
    };
    ExitCode::from(finish(ending, cli.output.as_deref()))
}

/// Writes the ending to `output` (when asked) and to stdout or stderr.
/// Any failure to write the verdict is exit 3 with one line on stderr:
/// a broken pipe or a full disk must not look like a verdict.
fn finish(ending: Ending, output: Option<&Path>) -> u8 {
    if let Some(path) = output {
        let written = std::fs::File::create(path).and_then(|mut f| {
            writeln!(f, "{}", ending.text)?;
            f.sync_all()
        });
        if let Err(e) = written {
            note(&format!("cannot write {}: {e}", path.display()));
            return CANNOT_WRITE;
        }
    }
    if !ending.to_stdout {
        let _ = writeln!(std::io::stderr(), "{}", ending.text);
        return ending.code;
    }
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{}", ending.text).and_then(|()| stdout.flush()) {
        Ok(()) => ending.code,
        Err(e) => {
            note(&format!("cannot write the verdict to stdout: {e}"));
            CANNOT_WRITE
        }
    }
}

fn run(
    histories: &[PathBuf],
    initial: Option<Initial>,
    witness_dir: Option<&Path>,
    verbose: bool,
) -> anyhow::Result<Ending> {
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut loaded = load_files(histories, threads)?;
    let loaded_at = Instant::now();
    // The histories say how the servers were preloaded; a flag overrides.
    let recorded = loaded.preload.map(Initial::PreloadedBelow);
    if let (Some(given), Some(r)) = (initial, recorded) {
        if given != r {
            note(&format!(
                "note: {} overrides the histories' recorded preload={}",
                describe(given),
                loaded.preload.unwrap_or(0)
            ));
        }
    }
    let initial = initial.or(recorded).unwrap_or(Initial::Init);
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
        note(&format!(
            "{} ops: loaded in {:.2} s, sorted and checked in {:.2} s ({threads} threads)",
            summary.ops,
            (loaded_at - started).as_secs_f64(),
            loaded_at.elapsed().as_secs_f64()
        ));
    }
    if summary.keys == 0 {
        // No op constrains anything: that is not a PASS.
        anyhow::bail!(
            "nothing checked: the {} histories hold no op with a reply ({} rows)",
            histories.len(),
            summary.ops
        );
    }
    let clocks = loaded.clock_report.map(|c| report::clock_line(&c));
    let with_clocks = |text: String| match &clocks {
        Some(line) => format!("{text}\n{line}"),
        None => text,
    };
    Ok(match &summary.first {
        None => Ending {
            code: PASS,
            text: with_clocks(report::pass_line(&summary, histories.len())),
            to_stdout: true,
        },
        Some(v) => {
            let mut text = report::fail_text(&loaded, &summary, v, initial)?;
            if let Some(dir) = witness_dir {
                // The page adds to the verdict; failing to write it is said,
                // and the verdict stands.
                let path = dir.join(witness::file_name(v.key()));
                match witness::witness_html(&loaded, &summary, v, initial)
                    .map_err(|e| e.to_string())
                    .and_then(|html| std::fs::write(&path, html).map_err(|e| e.to_string()))
                {
                    Ok(()) => text += &format!("\n  witness: {}", path.display()),
                    Err(e) => note(&format!("cannot write the witness {}: {e}", path.display())),
                }
            }
            Ending {
                code: FAIL,
                text: with_clocks(text),
                to_stdout: true,
            }
        }
    })
}

fn describe(initial: Initial) -> String {
    match initial {
        Initial::Init => "--initial init".into(),
        Initial::Absent => "--initial absent".into(),
        Initial::PreloadedBelow(n) => format!("--preload {n}"),
    }
}

/// Renders a history as text (v1) on stdout. Errors reading it are plain
/// messages; errors writing stdout are `io::Error`s (exit 3).
fn dump(path: &Path) -> anyhow::Result<()> {
    use kv_core::history::{HistoryFormat, HistoryReader, COLUMNS};
    let mut r = HistoryReader::open(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let h = r.header().clone();
    // The header as a text file of the same run would have it.
    let mut line = format!(
        "# kvlab-history v1 client={} clock=CLOCK_MONOTONIC",
        h.client
    );
    for (k, v) in [
        ("boot", h.boot.clone()),
        ("preload", h.preload.map(|p| p.to_string())),
        ("run", h.run.clone()),
    ] {
        if let Some(v) = v {
            line += &format!(" {k}={v}");
        }
    }
    writeln!(out, "{line}\n{COLUMNS}")?;
    let mut row = Vec::with_capacity(128);
    let mut ops = 0u64;
    while let Some(op) = r.next_op().map_err(|e| anyhow::anyhow!("{e}"))? {
        row.clear();
        op.encode(&mut row);
        out.write_all(&row)?;
        ops += 1;
    }
    if r.is_complete() {
        writeln!(out, "# end ops={ops}")?;
    }
    out.flush()?;
    if !r.is_complete() && r.format() == HistoryFormat::Binary {
        note(&format!(
            "{}: no end record (the client did not finish)",
            path.display()
        ));
    }
    Ok(())
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
