//! `kv-run scale`: the scaling study (`run-cluster.sh --emulate SPEC
//! --scale 1,2,4`). Runs S servers + S clients for each size through the
//! script, one series; draws total throughput against servers with the
//! ideal line (the smallest size's throughput per server, times S) and
//! the bound the shard imbalance leaves (ideal / imbalance).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use kv_core::emulation::EmulateSpec;
use kv_core::runlog::{read_log, rfc3339_utc, RunDir, RunRecord};
use kv_core::series::{self, SeriesInfo};
use serde::{Deserialize, Serialize};

use crate::plot::{line_chart, Series};
use crate::report::Report;

#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// Sizes, comma-separated: S servers + S clients each (e.g. 1,2,4).
    #[arg(long)]
    pub sizes: String,
    /// The emulation spec every run uses (its cpus bound the sizes).
    #[arg(long)]
    pub emulate: String,
    /// run-cluster.sh to run for each size.
    #[arg(long)]
    pub script: PathBuf,
    /// Where log.csv and runs/ are (the script's KVLAB_EXPERIMENTS_DIR).
    #[arg(long)]
    pub experiments: PathBuf,
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub server_args: String,
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub client_args: String,
    /// run-cluster.sh options to pass on (--scale/--tag/--note are dropped).
    #[arg(last = true)]
    pub options: Vec<String>,
}

/// Parses `1,2,4` (distinct positive sizes, ascending order kept as given
/// after sorting) and refuses a size whose 2×S nodes need more CPUs than
/// `cores`.
pub fn parse_sizes(s: &str, spec: &EmulateSpec, cores: u32) -> Result<Vec<u32>> {
    let mut sizes = Vec::new();
    for p in s.split(',').map(str::trim) {
        let n: u32 = p
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .with_context(|| format!("--scale: '{p}' is not a positive size"))?;
        sizes.push(n);
    }
    sizes.sort_unstable();
    sizes.dedup();
    ensure!(!sizes.is_empty(), "--scale needs sizes like 1,2,4");
    for &n in &sizes {
        spec.check_budget(2 * n, cores)
            .with_context(|| format!("--scale size {n} ({n} servers + {n} clients)"))?;
    }
    Ok(sizes)
}

/// One size of the study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalePoint {
    pub servers: u32,
    pub run_id: String,
    /// The clients' combined throughput (completed ops over their own
    /// time): unlike the servers' medians it has no idle seconds in it.
    pub ops_per_s: f64,
    /// Busiest server's ops over the mean (`None` for one server).
    pub imbalance: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleResult {
    pub series: String,
    pub emulate: String,
    pub points: Vec<ScalePoint>,
}

impl ScaleResult {
    /// Throughput per server of the smallest size: the ideal's slope.
    fn per_server(&self) -> f64 {
        self.points
            .first()
            .map_or(0.0, |p| p.ops_per_s / p.servers as f64)
    }

    pub fn table(&self) -> String {
        let mut t = String::from(
            "servers+clients    ops/s    ideal  speedup  efficiency  imbalance  balance-bound  run\n",
        );
        let base = self.per_server();
        let first = self.points.first().map_or(1.0, |p| p.ops_per_s);
        for p in &self.points {
            let ideal = base * p.servers as f64;
            let imb = p.imbalance.unwrap_or(1.0);
            t += &format!(
                "{:>7}+{:<7} {:>9.0} {:>8.0} {:>7.2}x {:>10.0}% {:>10} {:>14.0}  {}\n",
                p.servers,
                p.servers,
                p.ops_per_s,
                ideal,
                p.ops_per_s / first,
                100.0 * p.ops_per_s / ideal,
                p.imbalance.map_or("-".into(), |i| format!("{i:.2}")),
                ideal / imb,
                p.run_id
            );
        }
        t
    }
}

/// Drops the options the study sets itself.
fn pass_on(options: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = options.iter();
    while let Some(o) = it.next() {
        match o.as_str() {
            "--scale" | "--tag" | "--note" | "--trials" => {
                it.next();
            }
            // The end of the options as typed; the study adds its own.
            "--" => {}
            _ => out.push(o.clone()),
        }
    }
    out
}

fn run_size(a: &ScaleArgs, series_id: &str, trial: usize, n: u32) -> Result<RunRecord> {
    let note = format!("scale {n}+{n}");
    println!();
    println!("==== scale: {n} servers + {n} clients ====");
    let status = Command::new(&a.script)
        .args(pass_on(&a.options))
        .args(["--no-build", "--tag", series_id, "--note", &note, "--"])
        .arg(n.to_string())
        .arg(n.to_string())
        .arg(&a.server_args)
        .arg(&a.client_args)
        .env(series::ENV_SERIES_ID, series_id)
        .env(series::ENV_TRIAL, (trial + 1).to_string())
        .status()
        .with_context(|| format!("cannot run {}", a.script.display()))?;
    if !status.success() {
        bail!("scale size {n}+{n} failed ({status}): the study stops");
    }
    let log = kv_core::runlog::log_path(&a.experiments);
    let rows = read_log(&log).with_context(|| format!("cannot read {}", log.display()))?;
    rows.into_iter()
        .rev()
        .find(|r| r.tag == series_id && r.note == note)
        .with_context(|| format!("no log.csv row for '{note}'"))
}

/// The spec and sizes, checked against this machine's cores.
pub fn check(a: &ScaleArgs) -> Result<(EmulateSpec, Vec<u32>)> {
    let spec: EmulateSpec = a.emulate.parse()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let sizes = parse_sizes(&a.sizes, &spec, cores)?;
    Ok((spec, sizes))
}

pub fn scale(a: &ScaleArgs) -> Result<(PathBuf, ScaleResult)> {
    let (spec, sizes) = check(a)?;
    let series_id = series::new_series_id();
    SeriesInfo {
        series_id: series_id.clone(),
        created_at: rfc3339_utc(std::time::SystemTime::now()),
        side: String::new(),
        label: format!("scale {} emulated {spec}", a.sizes),
        trials: sizes.len() as u32,
        compared_with: None,
    }
    .write(&a.experiments)?;
    println!("Scaling study {series_id}: sizes {sizes:?}, emulated {spec}");
    let mut points = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let rec = run_size(a, &series_id, i, n)?;
        ensure!(
            rec.status.is_ok(),
            "run {} failed: the study stops",
            rec.run_id
        );
        let report: Option<Report> = std::fs::read_to_string(
            RunDir::new(&a.experiments, &rec.run_id)
                .path()
                .join("report.json"),
        )
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
        points.push(ScalePoint {
            servers: n,
            run_id: rec.run_id.clone(),
            ops_per_s: rec
                .client_ops_per_s
                .with_context(|| format!("run {} has no client throughput", rec.run_id))?,
            imbalance: report.and_then(|r| r.balance).map(|b| b.imbalance),
        });
    }
    let result = ScaleResult {
        series: series_id.clone(),
        emulate: spec.to_string(),
        points,
    };
    let svg = a.experiments.join(format!("scale-{series_id}.svg"));
    draw(&svg, &result)?;
    kv_core::runlog::write_json(
        &a.experiments.join(format!("scale-{series_id}.json")),
        &result,
    )?;
    Ok((svg, result))
}

fn draw(path: &Path, r: &ScaleResult) -> Result<()> {
    let base = r.per_server();
    let pts = |f: &dyn Fn(&ScalePoint) -> f64| -> Vec<(f64, f64)> {
        r.points.iter().map(|p| (p.servers as f64, f(p))).collect()
    };
    let series = vec![
        Series::new("measured (clients' ops/s)", pts(&|p| p.ops_per_s)),
        Series::new("ideal (linear)", pts(&|p| base * p.servers as f64)),
        Series::new(
            "ideal / shard imbalance",
            pts(&|p| base * p.servers as f64 / p.imbalance.unwrap_or(1.0)),
        ),
    ];
    line_chart(
        path,
        &format!(
            "throughput vs servers, S+S, emulated {} ({})",
            r.emulate, r.series
        ),
        "servers (= clients)",
        "ops/s",
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_the_budget_refuses() {
        let spec: EmulateSpec = "cpus=0.2".parse().unwrap();
        assert_eq!(parse_sizes("4,1, 2,2", &spec, 2).unwrap(), vec![1, 2, 4]);
        let e = format!("{:#}", parse_sizes("1,2,8", &spec, 2).unwrap_err());
        assert!(
            e.contains("size 8 (8 servers + 8 clients)") && e.contains("16 nodes need 3.2 CPUs"),
            "{e}"
        );
        assert!(parse_sizes("1,0", &spec, 2).is_err());
        assert!(parse_sizes("a", &spec, 2).is_err());
    }

    #[test]
    fn table_has_speedup_and_balance_bound() {
        let r = ScaleResult {
            series: "s".into(),
            emulate: "cpus=0.2".into(),
            points: vec![
                ScalePoint {
                    servers: 1,
                    run_id: "a".into(),
                    ops_per_s: 1000.0,
                    imbalance: None,
                },
                ScalePoint {
                    servers: 4,
                    run_id: "b".into(),
                    ops_per_s: 3200.0,
                    imbalance: Some(1.25),
                },
            ],
        };
        let t = r.table();
        let last = t.lines().nth(2).unwrap();
        assert!(last.contains("3.20x") && last.contains(" 80%"), "{t}");
        assert!(last.contains("1.25") && last.contains(" 3200 "), "{t}");
    }
}
