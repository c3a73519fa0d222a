//! `kv-run sweep`: the latency–throughput curve. Runs run-cluster.sh once
//! closed-loop for the maximum, then once per step at a fraction of it
//! (open loop, `--rate` split across clients), every run tagged with one
//! series; reads each step's client summaries, draws p50/p99/p99.9
//! against achieved rate and marks the knee.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use kv_core::latency::{LatencyHistogram, LatencySummary};
use kv_core::runlog::{RunDir, RunRecord};
use kv_core::summary::ClientSummary;
pub use kv_core::sweep::{knee, Step, SweepResult};

use crate::plot::{line_chart, Series};

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// FROM%:TO%:STEP% of the closed-loop maximum, e.g. 20%:100%:20%.
    #[arg(long)]
    pub rate: String,
    /// The knee's latency bound: p99 in microseconds (default: twice the
    /// lowest step's p99).
    #[arg(long)]
    pub slo_us: Option<u64>,
    /// run-cluster.sh to run for each step.
    #[arg(long)]
    pub script: PathBuf,
    /// Where log.csv and runs/ are (the script's KVLAB_EXPERIMENTS_DIR).
    #[arg(long)]
    pub experiments: PathBuf,
    #[arg(long)]
    pub servers: u32,
    #[arg(long)]
    pub clients: u32,
    #[arg(long, default_value = "")]
    pub server_args: String,
    #[arg(long, default_value = "")]
    pub client_args: String,
    /// Client args for the open-loop steps only (after client_args), e.g.
    /// "--flush-us 1000": kv-client refuses them without --rate.
    #[arg(long, default_value = "")]
    pub open_args: String,
    /// run-cluster.sh options to pass on (--sweep-rate/--slo-us/--tag/--note are dropped).
    #[arg(last = true)]
    pub options: Vec<String>,
}

/// Fractions of the closed-loop maximum, in percent.
#[derive(Debug, Clone, PartialEq)]
pub struct Steps(pub Vec<f64>);

impl std::str::FromStr for Steps {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        ensure!(
            parts.len() == 3,
            "--sweep-rate must be FROM%:TO%:STEP%, got '{s}'"
        );
        let pct = |p: &str| -> Result<f64> {
            let v: f64 = p
                .trim()
                .trim_end_matches('%')
                .parse()
                .with_context(|| format!("--sweep-rate: '{p}' is not a percentage"))?;
            ensure!(
                v.is_finite() && v > 0.0 && v <= 1000.0,
                "--sweep-rate: {p} must be in (0%, 1000%]"
            );
            Ok(v)
        };
        let (from, to, step) = (pct(parts[0])?, pct(parts[1])?, pct(parts[2])?);
        ensure!(
            to >= from,
            "--sweep-rate: TO ({to}%) is below FROM ({from}%)"
        );
        let n = ((to - from) / step + 1e-9).floor() as usize + 1;
        ensure!(n <= 50, "--sweep-rate: {n} steps is too many (at most 50)");
        Ok(Steps((0..n).map(|i| from + step * i as f64).collect()))
    }
}

/// Achieved rate and merged latency of one recorded run.
fn read_step(experiments: &Path, rec: &RunRecord, percent: Option<f64>) -> Result<Step> {
    ensure!(
        rec.status.is_ok(),
        "step run {} failed: the sweep stops",
        rec.run_id
    );
    let logs = RunDir::new(experiments, &rec.run_id).logs_dir();
    let mut hist = LatencyHistogram::default();
    let (mut achieved, mut offered, mut limited, mut n) = (0.0, 0.0, 0, 0);
    for e in std::fs::read_dir(&logs).with_context(|| format!("cannot read {}", logs.display()))? {
        let path = e?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !(name.starts_with("client-") && name.ends_with(".summary.json")) {
            continue;
        }
        let s: ClientSummary = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let h = s
            .op_latency_hdr
            .as_deref()
            .and_then(LatencyHistogram::from_hex)
            .with_context(|| format!("{} has no latency histogram", path.display()))?;
        hist.merge(&h);
        achieved += s.throughput().unwrap_or(0.0);
        if let Some(o) = &s.open_loop {
            offered += o.offered_per_s;
            limited = limited.max(o.client_limited_s);
        }
        n += 1;
    }
    ensure!(n > 0, "run {} left no client summaries", rec.run_id);
    Ok(Step {
        run_id: rec.run_id.clone(),
        percent,
        offered_per_s: percent.map(|_| offered),
        achieved_per_s: achieved,
        latency: hist.summary(),
        client_limited_s: limited,
    })
}

/// One open-loop step's client args: the user's, the open-loop ones, the rate.
fn open_loop_args(a: &SweepArgs, per_client: f64) -> String {
    format!("{} {} --rate {per_client:.3}", a.client_args, a.open_args)
        .trim()
        .to_string()
}

/// Drops the options the sweep sets itself.
fn pass_on(options: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = options.iter();
    while let Some(o) = it.next() {
        match o.as_str() {
            "--sweep-rate" | "--slo-us" | "--open-args" | "--tag" | "--note" => {
                it.next();
            }
            _ => out.push(o.clone()),
        }
    }
    out
}

/// Runs one step through the script; returns its log.csv row.
fn run_step(
    a: &SweepArgs,
    series: &str,
    trial: usize,
    note: &str,
    client_args: &str,
) -> Result<RunRecord> {
    let mut cmd = Command::new(&a.script);
    // Every step is a trial of one series, so the browser groups them
    // and draws the curve (`kv_core::sweep`).
    cmd.env(kv_core::series::ENV_SERIES_ID, series)
        .env(kv_core::series::ENV_TRIAL, trial.to_string())
        .args(pass_on(&a.options))
        .args(["--tag", series, "--note", note])
        .arg(a.servers.to_string())
        .arg(a.clients.to_string())
        .arg(&a.server_args)
        .arg(client_args);
    println!("sweep: {note}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", a.script.display()))?;
    if !status.success() {
        bail!("sweep step '{note}' failed ({status}): the sweep stops");
    }
    let log = kv_core::runlog::log_path(&a.experiments);
    let rows =
        crate::record::read_runs(&log).with_context(|| format!("cannot read {}", log.display()))?;
    rows.into_iter()
        .rev()
        .find(|r| r.tag == series && r.note == note)
        .with_context(|| format!("no log.csv row for sweep step '{note}'"))
}

pub fn sweep(a: &SweepArgs) -> Result<(PathBuf, SweepResult)> {
    let steps: Steps = a.rate.parse()?;
    ensure!(
        a.servers >= 1 && a.clients >= 1,
        "a sweep needs servers and clients"
    );
    // Bad open-loop args fail now, not after the closed-loop step.
    crate::plan::parse_client_args(&open_loop_args(a, 1.0))?;
    let started = std::time::SystemTime::now();
    let series = format!("sweep-{}", kv_core::runlog::new_run_id(started));
    kv_core::series::SeriesInfo {
        series_id: series.clone(),
        created_at: kv_core::runlog::rfc3339_utc(started),
        side: String::new(),
        label: format!("sweep {}", a.rate),
        trials: steps.0.len() as u32 + 1,
        compared_with: None,
    }
    .write(&a.experiments)?;
    let closed_rec = run_step(a, &series, 1, "sweep closed-loop max", &a.client_args)?;
    let closed = read_step(&a.experiments, &closed_rec, None)?;
    ensure!(
        closed.achieved_per_s > 0.0,
        "the closed-loop run completed nothing"
    );
    println!(
        "sweep: closed-loop maximum {:.0} ops/s, p99 {} us",
        closed.achieved_per_s, closed.latency.p99_us
    );
    let mut done = Vec::new();
    for (i, pct) in steps.0.iter().enumerate() {
        let per_client = closed.achieved_per_s * pct / 100.0 / a.clients as f64;
        let client_args = open_loop_args(a, per_client);
        let note = format!("sweep {pct}% = {:.0} ops/s", per_client * a.clients as f64);
        let rec = run_step(a, &series, i + 2, &note, &client_args)?;
        done.push(read_step(&a.experiments, &rec, Some(*pct))?);
    }
    let (slo_us, k) = knee(&done, a.slo_us);
    let result = SweepResult {
        series: series.clone(),
        closed_loop: closed,
        knee: k.cloned(),
        steps: done,
        slo_us,
    };
    let svg = kv_core::sweep::svg_path(&a.experiments, &series);
    draw(&svg, &result)?;
    kv_core::runlog::write_json(
        &kv_core::sweep::result_path(&a.experiments, &series),
        &result,
    )?;
    Ok((svg, result))
}

fn draw(path: &Path, r: &SweepResult) -> Result<()> {
    let line = |name: &str, f: fn(&LatencySummary) -> u64| {
        Series::new(
            name,
            r.steps
                .iter()
                .map(|s| (s.achieved_per_s, f(&s.latency) as f64))
                .collect(),
        )
    };
    let mut series = vec![
        line("p50", |l| l.p50_us),
        line("p99", |l| l.p99_us),
        line("p99.9", |l| l.p999_us),
    ];
    let top = r
        .steps
        .iter()
        .map(|s| s.latency.p999_us as f64)
        .fold(r.slo_us as f64, f64::max);
    if let Some(k) = &r.knee {
        series.push(Series::new(
            format!("knee {:.0} ops/s", k.achieved_per_s),
            vec![(k.achieved_per_s, 0.0), (k.achieved_per_s, top)],
        ));
    }
    let x_max = r.steps.iter().map(|s| s.achieved_per_s).fold(0.0, f64::max);
    series.push(Series::new(
        format!("p99 SLO {} us", r.slo_us),
        vec![(0.0, r.slo_us as f64), (x_max, r.slo_us as f64)],
    ));
    line_chart(
        path,
        &format!("latency vs throughput ({})", r.series),
        "achieved ops/s",
        "latency (us)",
        &series,
    )
}

/// The table `kv-run sweep` prints: one row per step, then the knee.
pub fn table(r: &SweepResult) -> String {
    let mut t = String::from(
        "step      offered/s   achieved/s    p50 us    p99 us  p99.9 us  limited s  run\n",
    );
    for s in std::iter::once(&r.closed_loop).chain(&r.steps) {
        let step = s.percent.map_or("closed".into(), |p| format!("{p}%"));
        let offered = s.offered_per_s.map_or("-".into(), |o| format!("{o:.0}"));
        t += &format!(
            "{step:<8} {offered:>11} {:>12.0} {:>9} {:>9} {:>9} {:>10}  {}\n",
            s.achieved_per_s,
            s.latency.p50_us,
            s.latency.p99_us,
            s.latency.p999_us,
            s.client_limited_s,
            s.run_id
        );
    }
    match &r.knee {
        Some(k) => {
            t += &format!(
                "knee: {:.0} ops/s ({}% step, p99 {} us within {} us)\n",
                k.achieved_per_s,
                k.percent.unwrap_or(0.0),
                k.latency.p99_us,
                r.slo_us
            )
        }
        None => t += &format!("knee: none (no step's p99 within {} us)\n", r.slo_us),
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(achieved: f64, p99: u64) -> Step {
        Step {
            run_id: format!("r{achieved}"),
            percent: Some(achieved),
            offered_per_s: Some(achieved),
            achieved_per_s: achieved,
            latency: LatencySummary {
                p99_us: p99,
                ..Default::default()
            },
            client_limited_s: 0,
        }
    }

    #[test]
    fn steps_parse() {
        assert_eq!(
            "20%:100%:40%".parse::<Steps>().unwrap().0,
            vec![20.0, 60.0, 100.0]
        );
        assert_eq!(
            "10:30:10".parse::<Steps>().unwrap().0,
            vec![10.0, 20.0, 30.0]
        );
        for bad in ["20%:10%:5%", "a:b:c", "10%:20%", "0%:50%:10%", "1%:100%:1%"] {
            assert!(bad.parse::<Steps>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn knee_is_the_highest_rate_within_the_slo() {
        let s = vec![
            step(100.0, 500),
            step(200.0, 700),
            step(300.0, 990),
            step(400.0, 5000),
        ];
        let (slo, k) = knee(&s, None);
        assert_eq!(slo, 1000, "twice the lowest step's p99");
        assert_eq!(k.unwrap().achieved_per_s, 300.0);
        let (slo, k) = knee(&s, Some(600));
        assert_eq!((slo, k.unwrap().achieved_per_s), (600, 100.0));
        assert!(knee(&s, Some(100)).1.is_none());
    }

    #[test]
    fn sweep_options_are_not_passed_on() {
        let o: Vec<String> = [
            "--secs",
            "2",
            "--sweep-rate",
            "1:2:1",
            "--tag",
            "x",
            "--no-dash",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(pass_on(&o), vec!["--secs", "2", "--no-dash"]);
    }
}
