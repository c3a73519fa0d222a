//! `kv-check bench`: how long a check takes and how much memory it needs,
//! in memory (as kv-check checked before it streamed) against streaming,
//! each a fresh `kv-check` process timed by wall clock with its peak RSS
//! (VmHWM, from wait4's rusage), in alternating rounds so a busy machine
//! slows both alike. Histories are given, or synthetic ones are written
//! first (`kv_check::synth`).

use std::ffi::OsString;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use kv_check::synth::{skew, write_synth, SynthConfig};
use kv_core::workload::Workload;

#[derive(Args)]
pub struct BenchArgs {
    /// Histories to check; without any, synthetic ones are written first.
    histories: Vec<PathBuf>,
    /// Synthetic histories: ops in all.
    #[arg(long, default_value_t = 20_000_000)]
    ops: u64,
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Client processes (files), as in a 1+2 run.
    #[arg(long, default_value_t = 2)]
    clients: u32,
    #[arg(long, default_value_t = 16)]
    threads: u32,
    #[arg(long, default_value = "B")]
    workload: Workload,
    #[arg(long, default_value_t = 0.99)]
    theta: f64,
    /// Rounds; each runs every variant once, the order alternating.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Where synthetic histories go (kept); default a temp dir, removed after.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also time this kv-check binary (e.g. one built before a change) on
    /// the same histories, as variant "against".
    #[arg(long, value_name = "KV_CHECK")]
    against: Option<PathBuf>,
    /// An argument for every streaming check (repeatable), e.g.
    /// `--check-arg=--spill-dir=/data`.
    #[arg(long = "check-arg", allow_hyphen_values = true)]
    check_args: Vec<String>,
}

/// One timed check.
struct Measured {
    secs: f64,
    peak_kib: u64,
    verdict: String,
}

/// Runs `program args`, returning its wall time, peak RSS and verdict line.
fn measure(program: &Path, args: &[OsString]) -> anyhow::Result<Measured> {
    let mut out = tempfile::tempfile()?;
    let mut err = tempfile::tempfile()?;
    let started = Instant::now();
    let child = Command::new(program)
        .args(args)
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?)
        .spawn()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed is a valid rusage (plain integers).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our child, not yet waited for (std's `Child` is
        // never waited on); `status` and `usage` are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            bail!("waiting for {}: {e}", program.display());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let mut text = String::new();
    out.rewind()?;
    out.read_to_string(&mut text)?;
    if code != 0 && code != 1 {
        let mut e = String::new();
        err.rewind()?;
        err.read_to_string(&mut e)?;
        bail!(
            "{} exited {code} without a verdict: {}",
            program.display(),
            e.trim()
        );
    }
    Ok(Measured {
        secs,
        // ru_maxrss is in KiB on Linux.
        peak_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        verdict: text.lines().next().unwrap_or_default().to_string(),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `PASS: N ops on ...` → N.
fn ops_of(verdict: &str) -> Option<u64> {
    verdict
        .strip_prefix("PASS: ")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    if a.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let me = std::env::current_exe().context("finding kv-check itself")?;
    let mut temp = None;
    let histories = if a.histories.is_empty() {
        let dir = match &a.dir {
            Some(d) => d.clone(),
            None => temp.insert(tempfile::tempdir()?).path().to_path_buf(),
        };
        let cfg = SynthConfig {
            ops: a.ops,
            keys: a.keys,
            clients: a.clients,
            threads: a.threads,
            workload: a.workload,
            theta: skew(a.theta)?,
            seed: 42,
            unknown_every: 10_000,
            stale_every: 0,
        };
        let started = Instant::now();
        let paths =
            write_synth(&cfg, &dir).with_context(|| format!("writing {}", dir.display()))?;
        eprintln!(
            "kv-check bench: wrote {} synthetic ops ({} clients, {}) under {} in {:.1} s",
            a.ops,
            a.clients,
            a.workload,
            dir.display(),
            started.elapsed().as_secs_f64()
        );
        paths
    } else {
        a.histories.clone()
    };
    let disk: u64 = histories
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()))
        .sum::<std::io::Result<u64>>()
        .context("reading the histories' sizes")?;

    let files: Vec<OsString> = histories
        .iter()
        .map(|p| p.clone().into_os_string())
        .collect();
    let streaming: Vec<OsString> = files
        .iter()
        .cloned()
        .chain(a.check_args.iter().map(OsString::from))
        .collect();
    let in_memory: Vec<OsString> = files
        .iter()
        .cloned()
        .chain([OsString::from("--in-memory")])
        .collect();
    let mut variants: Vec<(&str, PathBuf, Vec<OsString>)> = vec![
        ("in-memory", me.clone(), in_memory),
        ("streaming", me, streaming),
    ];
    if let Some(bin) = &a.against {
        variants.push(("against", bin.clone(), files.clone()));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "kv-check bench: {} files, {:.1} MB on disk; {cores} cores, load average {}",
        histories.len(),
        disk as f64 / 1e6,
        load.split(' ').next().unwrap_or("?")
    );
    let mut runs: Vec<Vec<Measured>> = variants.iter().map(|_| Vec::new()).collect();
    for round in 0..a.rounds {
        let mut order: Vec<usize> = (0..variants.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (name, program, args) = &variants[i];
            let m = measure(program, args)?;
            println!(
                "round {}  {name:<10} {:>7.2} s  {:>6} MiB  {}",
                round + 1,
                m.secs,
                m.peak_kib >> 10,
                m.verdict.chars().take(60).collect::<String>()
            );
            runs[i].push(m);
        }
    }
    let ops = runs.iter().flatten().find_map(|m| ops_of(&m.verdict));
    if let Some(ops) = ops.filter(|&n| n > 0) {
        println!(
            "{ops} ops: {:.2} bytes an op on disk",
            disk as f64 / ops as f64
        );
    }
    let summary: Vec<(f64, u64)> = runs
        .iter()
        .map(|r| {
            (
                median(r.iter().map(|m| m.secs).collect()),
                r.iter().map(|m| m.peak_kib).max().unwrap_or(0),
            )
        })
        .collect();
    let (base_secs, base_kib) = summary[0];
    for ((name, _, _), (secs, kib)) in variants.iter().zip(&summary) {
        println!(
            "{name:<10} median {secs:>7.2} s, peak {:>6} MiB ({:.2}x the time, {:.2}x the memory of in-memory)",
            kib >> 10,
            secs / base_secs,
            *kib as f64 / base_kib.max(1) as f64
        );
    }
    let verdicts: Vec<&str> = runs.iter().flatten().map(|m| m.verdict.as_str()).collect();
    if verdicts
        .iter()
        .any(|v| v.split(':').next() != verdicts[0].split(':').next())
    {
        bail!("the variants disagree: {verdicts:?}");
    }
    drop(temp);
    Ok(())
}
