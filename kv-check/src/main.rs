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
use kv_check::check::check_keeping;
use kv_check::stream::{self, StreamConfig};
use kv_check::synth::{skew, write_synth, SynthConfig};
use kv_check::{load_files, report, witness, Initial, Loaded, Summary};
use kv_core::workload::Workload;

mod bench;

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
    /// Where a FAIL's witness pages go (`witness-key-K.html` for each
    /// failing key, up to --max-witnesses: the key's ops around its
    /// violation). Default: the --output file's directory; without either,
    /// no page is written.
    #[arg(long, value_name = "DIR")]
    witness_dir: Option<PathBuf>,
    /// Witness pages written at most, for the smallest failing keys; the
    /// verdict counts the rest.
    #[arg(long, value_name = "N", default_value_t = kv_check::check::KEEP_FAILURES)]
    max_witnesses: usize,
    /// Where the streaming check spills records once its memory allowance
    /// is spent (files unlinked as they are created). Default: $TMPDIR or /tmp.
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
    /// MiB of spilled records kept in memory before spill files.
    #[arg(long, value_name = "MIB", default_value_t = stream::SPILL_MEMORY >> 20)]
    spill_memory_mib: usize,
    /// Key partitions of the streaming check (default: from the histories' sizes).
    #[arg(long, hide = true)]
    partitions: Option<usize>,
    /// Check with every op in memory at once (40 bytes an op), as kv-check
    /// did before it streamed: for comparison.
    #[arg(long)]
    in_memory: bool,
    /// Print timings and peak memory to stderr.
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
    /// Times the check and its peak memory: in memory (as before) against
    /// streaming, in alternating rounds, on given or synthetic histories.
    Bench(bench::BenchArgs),
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
    let mut cli = Cli::parse();
    let ending = match cli.command.take() {
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
        Some(Command::Bench(args)) => match bench::bench(args) {
            Ok(()) => return ExitCode::SUCCESS,
            Err(e) => {
                note(&format!("bench: {e:#}"));
                return ExitCode::from(UNUSABLE);
            }
        },
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
            run(&cli, initial, witness_dir.as_deref()).unwrap_or_else(|e| Ending {
                code: UNUSABLE,
                text: format!("kv-check: {e:#}"),
                to_stdout: false,
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

/// The initial value to check with: `given` by a flag, else the preload
/// the histories record, else all preloaded (older files).
fn resolve_initial(given: Option<Initial>, preload: Option<u64>) -> Initial {
    let recorded = preload.map(Initial::PreloadedBelow);
    if let (Some(given), Some(r)) = (given, recorded) {
        if given != r {
            note(&format!(
                "note: {} overrides the histories' recorded preload={}",
                describe(given),
                preload.unwrap_or(0)
            ));
        }
    }
    given.or(recorded).unwrap_or(Initial::Init)
}

fn duplicate_error(paths: &[PathBuf], dup: &kv_check::check::DuplicateWrite) -> anyhow::Error {
    let at = |loc: kv_check::load::Loc| {
        let path = paths
            .get(loc.file())
            .map_or("?".into(), |p| p.display().to_string());
        format!("{path}:{}", loc.line())
    };
    anyhow::anyhow!(
        "{}: key {}: value written twice (also at {}): check-mode values must be unique",
        at(dup.second),
        dup.key,
        at(dup.first)
    )
}

/// Checks the histories, streaming (or all in memory with --in-memory).
fn check_histories(
    cli: &Cli,
    given: Option<Initial>,
) -> anyhow::Result<(Loaded, Summary, Initial)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The report needs the first failure even when no page is written.
    let keep = cli.max_witnesses.max(1);
    if cli.in_memory {
        let mut loaded = load_files(&cli.histories, threads)?;
        let initial = resolve_initial(given, loaded.preload);
        let summary = check_keeping(&mut loaded, initial, threads, keep)
            .map_err(|dup| duplicate_error(&cli.histories, &dup))?;
        loaded.recs = Vec::new();
        return Ok((loaded, summary, initial));
    }
    let histories = stream::open(&cli.histories)?;
    let initial = resolve_initial(given, histories.preload());
    let cfg = StreamConfig {
        threads,
        spill_dir: cli
            .spill_dir
            .clone()
            .unwrap_or_else(stream::default_spill_dir),
        spill_memory: cli.spill_memory_mib.saturating_mul(1 << 20),
        partitions: cli.partitions,
        keep,
    };
    let (loaded, summary) = histories.check(initial, &cfg).map_err(|e| match e {
        stream::CheckError::Duplicate(dup) => duplicate_error(&cli.histories, &dup),
        e => anyhow::anyhow!("{e}"),
    })?;
    Ok((loaded, summary, initial))
}

fn run(cli: &Cli, given: Option<Initial>, witness_dir: Option<&Path>) -> anyhow::Result<Ending> {
    let histories = &cli.histories;
    let started = Instant::now();
    let (loaded, summary, initial) = check_histories(cli, given)?;
    if cli.verbose {
        let peak = kv_core::process::ProcessSample::now().peak_rss_bytes;
        note(&format!(
            "{} ops checked in {:.2} s ({}); peak memory (VmHWM) {} MiB",
            summary.ops,
            started.elapsed().as_secs_f64(),
            if cli.in_memory {
                "in memory"
            } else {
                "streaming"
            },
            peak >> 20
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
    let Some(first) = summary.first() else {
        return Ok(Ending {
            code: PASS,
            text: with_clocks(report::pass_line(&summary, histories.len())),
            to_stdout: true,
        });
    };
    let mut text = report::fail_text(&loaded, &summary, first, initial)?;
    if let Some(dir) = witness_dir {
        text += &write_witnesses(dir, &loaded, &summary, initial, cli.max_witnesses);
    }
    Ok(Ending {
        code: FAIL,
        text: with_clocks(text),
        to_stdout: true,
    })
}

/// Writes a page for each kept failing key, up to `max`; returns the
/// verdict's lines about them. A page adds to the verdict: failing to write
/// one is said on stderr, and the verdict stands.
fn write_witnesses(
    dir: &Path,
    loaded: &Loaded,
    summary: &Summary,
    initial: Initial,
    max: usize,
) -> String {
    let failures = &summary.failures[..max.min(summary.failures.len())];
    let keys: Vec<u64> = failures.iter().map(|f| f.key()).collect();
    let mut written = Vec::new();
    for f in failures {
        let path = dir.join(witness::file_name(f.key()));
        match witness::witness_html(loaded, summary, f, initial, &keys)
            .map_err(|e| e.to_string())
            .and_then(|html| std::fs::write(&path, html).map_err(|e| e.to_string()))
        {
            Ok(()) => written.push((f.key(), path)),
            Err(e) => note(&format!("cannot write the witness {}: {e}", path.display())),
        }
    }
    let mut text = String::new();
    if let Some((_, first)) = written.first().filter(|(k, _)| Some(k) == keys.first()) {
        text += &format!("\n  witness: {}", first.display());
    }
    if summary.failed_keys > 1 {
        let shown: Vec<String> = written.iter().map(|(k, _)| k.to_string()).collect();
        let rest = summary.failed_keys - written.len() as u64;
        text += &format!(
            "\n  witness pages: {} of {} failing keys (keys {}) in {}",
            written.len(),
            summary.failed_keys,
            if shown.is_empty() {
                "none".into()
            } else {
                shown.join(", ")
            },
            dir.display()
        );
        if rest > 0 {
            text += &format!("; {rest} failing keys have no page (--max-witnesses N writes more)");
        }
    }
    text
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
    let cfg = SynthConfig {
        ops: a.ops,
        keys: a.keys,
        clients: a.clients,
        threads: a.threads,
        workload: a.workload,
        theta: skew(a.theta)?,
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
