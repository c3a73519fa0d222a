//! Series of trials and what they are compared with: the files that group
//! runs, and the comparison of two groups (medians, intervals, verdicts via
//! [`crate::trials`], config differences via [`crate::identity`]).
//!
//! Layout, all under the experiments directory:
//! - `runs/<run_id>/trial.json` ([`TrialInfo`]): the run's series id, its
//!   trial number and its config identity. Written by `kv-run record`.
//! - `series/<series_id>.json` ([`SeriesInfo`]): what a series is (label,
//!   the arguments that made it, the series it was run against).
//! - `baseline.json` ([`Baseline`]): the series or tag later runs are
//!   judged against.
//!
//! A group to compare ([`Group`]) is a series, a run, a tag or a commit;
//! only its successful runs count (a failed run has no figures).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::identity::{describe_differences, ConfigDifference, ConfigIdentity};
use crate::runlog::{read_json, write_json, RunDir, RunLogError, RunRecord};
use crate::trials::{self, Comparison, Metric, Sample};

pub const SERIES_DIR: &str = "series";
pub const TRIAL_FILE: &str = "trial.json";
pub const BASELINE_FILE: &str = "baseline.json";

/// Set by `kv-run trials` for every trial it starts; read by `kv-run record`.
pub const ENV_SERIES_ID: &str = "KVLAB_SERIES_ID";
pub const ENV_TRIAL: &str = "KVLAB_TRIAL";

/// What `runs/<run_id>/trial.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialInfo {
    /// Empty for a run made outside any series.
    #[serde(default)]
    pub series_id: String,
    /// 1-based trial number within the series (0 outside a series).
    #[serde(default)]
    pub trial: u32,
    pub config_hash: String,
    pub identity: ConfigIdentity,
}

impl TrialInfo {
    pub fn new(series_id: String, trial: u32, identity: ConfigIdentity) -> Self {
        TrialInfo {
            series_id,
            trial,
            config_hash: identity.hash(),
            identity,
        }
    }

    pub fn path(experiments: &Path, run_id: &str) -> PathBuf {
        RunDir::new(experiments, run_id).path().join(TRIAL_FILE)
    }

    pub fn write(&self, experiments: &Path, run_id: &str) -> Result<(), RunLogError> {
        write_json(&Self::path(experiments, run_id), self)
    }

    /// `None` when the run has no trial.json (runs from before series).
    pub fn read(experiments: &Path, run_id: &str) -> Option<TrialInfo> {
        read_json(&Self::path(experiments, run_id)).ok()
    }
}

/// What `series/<series_id>.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesInfo {
    pub series_id: String,
    /// UTC, RFC 3339.
    pub created_at: String,
    /// `A` / `B` of an A/B, else empty.
    #[serde(default)]
    pub side: String,
    /// What distinguishes it: `HEAD~1 (3f2a…)`, `--batch 4`, the args.
    pub label: String,
    /// Trials asked for.
    pub trials: u32,
    /// The other series of an A/B (`--against`, `--ab`).
    #[serde(default)]
    pub compared_with: Option<String>,
}

pub fn series_path(experiments: &Path, series_id: &str) -> PathBuf {
    experiments
        .join(SERIES_DIR)
        .join(format!("{series_id}.json"))
}

impl SeriesInfo {
    pub fn write(&self, experiments: &Path) -> Result<(), RunLogError> {
        let dir = experiments.join(SERIES_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| RunLogError::Io {
            path: dir.clone(),
            source: e,
        })?;
        write_json(&series_path(experiments, &self.series_id), self)
    }

    pub fn read(experiments: &Path, series_id: &str) -> Result<SeriesInfo, RunLogError> {
        read_json(&series_path(experiments, series_id))
    }

    /// Every series file, oldest first.
    pub fn list(experiments: &Path) -> Vec<SeriesInfo> {
        let Ok(entries) = std::fs::read_dir(experiments.join(SERIES_DIR)) else {
            return Vec::new();
        };
        let mut out: Vec<SeriesInfo> = entries
            .filter_map(Result::ok)
            .filter_map(|e| read_json(&e.path()).ok())
            .collect();
        out.sort_by(|a, b| (&a.created_at, &a.series_id).cmp(&(&b.created_at, &b.series_id)));
        out
    }
}

/// A new series id, `s-YYYYmmdd-HHMMSS-xxxx`.
pub fn new_series_id() -> String {
    format!(
        "s-{}",
        crate::runlog::new_run_id(std::time::SystemTime::now())
    )
}

/// What later runs are judged against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    Series(String),
    Tag(String),
}

impl Baseline {
    pub fn read(experiments: &Path) -> Option<Baseline> {
        read_json(&experiments.join(BASELINE_FILE)).ok()
    }

    pub fn write(&self, experiments: &Path) -> Result<(), RunLogError> {
        std::fs::create_dir_all(experiments).map_err(|e| RunLogError::Io {
            path: experiments.to_path_buf(),
            source: e,
        })?;
        write_json(&experiments.join(BASELINE_FILE), self)
    }

    /// As `compare` accepts it.
    pub fn spec(&self) -> &str {
        match self {
            Baseline::Series(s) | Baseline::Tag(s) => s,
        }
    }
}

/// One side of a comparison: a label and its successful runs.
#[derive(Debug, Clone)]
pub struct Group {
    /// `series s-…`, `run …`, `tag …`, `commit …`.
    pub label: String,
    pub runs: Vec<RunRecord>,
    /// Trial info of each run, where recorded.
    pub trials: Vec<Option<TrialInfo>>,
    /// Runs of the group that failed (not in `runs`).
    pub failed: usize,
}

impl Group {
    /// A group of `members` (their failed runs counted, not kept).
    pub fn new(label: String, members: Vec<&RunRecord>, experiments: &Path) -> Group {
        let failed = members.iter().filter(|r| !r.status.is_ok()).count();
        let runs: Vec<RunRecord> = members
            .into_iter()
            .filter(|r| r.status.is_ok())
            .cloned()
            .collect();
        let trials = runs
            .iter()
            .map(|r| TrialInfo::read(experiments, &r.run_id))
            .collect();
        Group {
            label,
            runs,
            trials,
            failed,
        }
    }

    /// The values of `metric` over the group's runs (runs without it skipped).
    pub fn sample(&self, metric: Metric) -> Sample {
        let v = self.runs.iter().filter_map(|r| metric_value(r, metric));
        // metric_value only yields positive finite values.
        Sample::new(v.collect::<Vec<_>>()).unwrap_or_else(|_| Sample::new([]).expect("empty"))
    }

    /// The distinct config hashes of the group, in run order.
    pub fn config_hashes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.trials.iter().flatten() {
            if !out.contains(&t.config_hash) {
                out.push(t.config_hash.clone());
            }
        }
        out
    }

    /// The identity of the group's first run that recorded one.
    pub fn identity(&self) -> Option<&ConfigIdentity> {
        self.trials.iter().flatten().map(|t| &t.identity).next()
    }
}

/// The figure of `metric` in a log row, if recorded and usable.
pub fn metric_value(r: &RunRecord, metric: Metric) -> Option<f64> {
    let v = match metric {
        Metric::Throughput => r.total_ops_per_s,
        Metric::P50 => r.p50_us.map(|v| v as f64),
        Metric::P99 => r.p99_us.map(|v| v as f64),
    }?;
    (v.is_finite() && v > 0.0).then_some(v)
}

/// Resolves what `compare` was given: a series id (or unique prefix), a run
/// id (or unique prefix), a tag, or a commit (prefix of `git_commit`), in
/// that order. Errors name what was tried.
pub fn resolve(experiments: &Path, runs: &[RunRecord], spec: &str) -> Result<Group, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("an empty name is not a series, run, tag or commit".into());
    }
    let series = SeriesInfo::list(experiments);
    let hits: Vec<&SeriesInfo> = series
        .iter()
        .filter(|s| s.series_id == spec)
        .chain(
            series
                .iter()
                .filter(|s| s.series_id != spec && s.series_id.starts_with(spec)),
        )
        .collect();
    if let Some(s) = hits.first() {
        if hits.len() > 1 && hits[0].series_id != spec {
            return Err(format!(
                "series '{spec}' is ambiguous: {}",
                hits.iter()
                    .map(|s| s.series_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let members = series_members(experiments, runs, &s.series_id);
        let label = if s.label.is_empty() {
            format!("series {}", s.series_id)
        } else {
            format!("series {} ({})", s.series_id, s.label)
        };
        return Ok(Group::new(label, members, experiments));
    }
    // Run ids resolve as everywhere else (prefix or 4-hex ending).
    match crate::runlog::find_run(runs, spec) {
        Ok(r) => {
            return Ok(Group::new(
                format!("run {}", r.run_id),
                vec![r],
                experiments,
            ))
        }
        Err(e @ crate::runlog::FindRunError::Ambiguous { .. }) => return Err(e.to_string()),
        Err(crate::runlog::FindRunError::Unknown { .. }) => {}
    }
    let tagged: Vec<&RunRecord> = runs.iter().filter(|r| r.tag == spec).collect();
    if !tagged.is_empty() {
        return Ok(Group::new(format!("tag {spec}"), tagged, experiments));
    }
    if spec.len() >= 4 && spec.chars().all(|c| c.is_ascii_hexdigit()) {
        let at: Vec<&RunRecord> = runs
            .iter()
            .filter(|r| r.git_commit.starts_with(spec))
            .collect();
        if !at.is_empty() {
            return Ok(Group::new(format!("commit {spec}"), at, experiments));
        }
    }
    Err(format!(
        "unknown run id '{spec}': no run, series, tag or commit in the log matches it ({} runs, {} series)",
        runs.len(),
        series.len()
    ))
}

/// The runs of a series, in log order.
pub fn series_members<'a>(
    experiments: &Path,
    runs: &'a [RunRecord],
    series_id: &str,
) -> Vec<&'a RunRecord> {
    runs.iter()
        .filter(|r| {
            TrialInfo::read(experiments, &r.run_id).is_some_and(|t| t.series_id == series_id)
        })
        .collect()
}

/// `vs baseline: +12.3% [+8.1%, +16.0%] better (series s-…)`: the
/// throughput verdict of `group` against the baseline, when one is set
/// (an unresolvable baseline is said as such).
pub fn vs_baseline(experiments: &Path, runs: &[RunRecord], group: &Group) -> Option<String> {
    let b = Baseline::read(experiments)?;
    Some(match resolve(experiments, runs, b.spec()) {
        Ok(base) => {
            let c = compare_groups(&base, group);
            let t = c.metric(Metric::Throughput)?;
            format!("vs baseline: {} ({})", t.summary(), base.label)
        }
        Err(e) => format!("vs baseline: {e}"),
    })
}

/// The series line of a run's detail: its series, trial number, the
/// series' throughput median and range, and the verdict against the
/// baseline. `None` for a run outside any series.
pub fn series_line(experiments: &Path, runs: &[RunRecord], run_id: &str) -> Option<String> {
    let t = TrialInfo::read(experiments, run_id)?;
    if t.series_id.is_empty() {
        return None;
    }
    let info = SeriesInfo::read(experiments, &t.series_id).ok();
    let members = series_members(experiments, runs, &t.series_id);
    let label = info
        .as_ref()
        .map_or(String::new(), |i| format!(" ({})", i.label));
    let asked = info.map_or(members.len() as u32, |i| i.trials);
    let group = Group::new(format!("series {}", t.series_id), members, experiments);
    let sample = group.sample(Metric::Throughput);
    let mut line = format!(
        "series {}{label}: trial {} of {asked}",
        t.series_id, t.trial
    );
    if let Some(sp) = sample.spread() {
        line += &format!(
            ", throughput median {:.0} ops/s over {} ok trials (min {:.0}, max {:.0})",
            sp.median,
            sample.len(),
            sp.min,
            sp.max
        );
    }
    if let Some(v) = vs_baseline(experiments, runs, &group) {
        line += "; ";
        line += &v;
    }
    Some(line)
}

/// Group B against group A: one comparison per metric and the config
/// differences.
#[derive(Debug, Clone, Serialize)]
pub struct GroupComparison {
    pub a: String,
    pub b: String,
    pub method: &'static str,
    pub metrics: Vec<Comparison>,
    /// `None` when either side recorded no identity (runs from before
    /// identities existed).
    pub config_differences: Option<Vec<ConfigDifference>>,
    /// Notes on the groups themselves: mixed configs, failed trials.
    pub warnings: Vec<String>,
}

pub fn compare_groups(a: &Group, b: &Group) -> GroupComparison {
    let metrics = Metric::ALL
        .iter()
        .map(|&m| trials::compare(m, &a.sample(m), &b.sample(m)))
        .collect();
    let mut warnings = Vec::new();
    for (name, g) in [("A", a), ("B", b)] {
        let hashes = g.config_hashes();
        if hashes.len() > 1 {
            warnings.push(format!(
                "{name} mixes {} configs ({}): its trials are not repeats of one config",
                hashes.len(),
                hashes.join(", ")
            ));
        }
        if g.failed > 0 {
            warnings.push(format!("{name}: {} failed trial(s) left out", g.failed));
        }
    }
    let config_differences = match (a.identity(), b.identity()) {
        (Some(x), Some(y)) => Some(x.differences(y)),
        _ => None,
    };
    GroupComparison {
        a: a.label.clone(),
        b: b.label.clone(),
        method: trials::METHOD,
        metrics,
        config_differences,
        warnings,
    }
}

impl GroupComparison {
    pub fn metric(&self, m: Metric) -> Option<&Comparison> {
        self.metrics.iter().find(|c| c.metric == m)
    }

    /// Lines for the config section of a report.
    pub fn config_lines(&self) -> Vec<String> {
        match &self.config_differences {
            Some(d) => describe_differences(d),
            None => vec![
                "config identity not recorded for one side (runs from before trial.json)".into(),
            ],
        }
    }

    /// The verdict block `kv-run trials` and `kv-dash compare` print.
    pub fn text(&self) -> String {
        let mut out = format!("A = {}\nB = {}\n", self.a, self.b);
        out += &format!(
            "B against A: medians of trials, 95% interval of the relative difference ({}):\n",
            self.method
        );
        for m in &self.metrics {
            let med = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
            let counts = if m.interval.is_some() {
                format!(" ({} vs {} trials)", m.trials_a, m.trials_b)
            } else {
                String::new()
            };
            out += &format!(
                "  {:<10} A {:>10}  B {:>10}  {}{counts}\n",
                m.metric.name(),
                med(m.median_a),
                med(m.median_b),
                m.summary(),
            );
        }
        for w in &self.warnings {
            out += &format!("  warning: {w}\n");
        }
        out += "config differences:\n";
        for l in self.config_lines() {
            out += &format!("  {l}\n");
        }
        if self
            .metrics
            .iter()
            .any(|m| m.verdict == trials::Verdict::TooFewTrials)
        {
            out += "(for a verdict run 5 trials a side: run-cluster.sh --trials 5)\n";
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runlog::RunStatus;

    fn run(id: &str, tput: f64, tag: &str) -> RunRecord {
        let mut r = RunRecord::new(std::time::SystemTime::now());
        r.run_id = id.to_string();
        r.total_ops_per_s = Some(tput);
        r.p50_us = Some((1e9 / tput) as u64);
        r.p99_us = Some((4e9 / tput) as u64);
        r.tag = tag.to_string();
        r.git_commit = "abcdef123456".into();
        r
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kvlab-series-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn series_resolve_and_compare() {
        let dir = tmp("resolve");
        let mut runs = Vec::new();
        let mut id_a = ConfigIdentity::new();
        id_a.set("client.batch", 1024);
        let mut id_b = ConfigIdentity::new();
        id_b.set("client.batch", 4);
        for i in 0..4 {
            for (side, tput, id) in [
                ("a", 2e6 + i as f64 * 1e4, &id_a),
                ("b", 2e5 + i as f64 * 1e3, &id_b),
            ] {
                let r = run(
                    &format!("2026010{i}-000000-{side}{side}{side}{side}"),
                    tput,
                    "t",
                );
                std::fs::create_dir_all(RunDir::new(&dir, &r.run_id).path()).unwrap();
                TrialInfo::new(format!("s-x-{side}"), i + 1, id.clone())
                    .write(&dir, &r.run_id)
                    .unwrap();
                runs.push(r);
            }
        }
        // A failed B trial is left out and said so.
        let mut f = run("20260109-000000-ffff", 1.0, "t");
        f.status = RunStatus::Failed("x".into());
        std::fs::create_dir_all(RunDir::new(&dir, &f.run_id).path()).unwrap();
        TrialInfo::new("s-x-b".into(), 5, id_b.clone())
            .write(&dir, &f.run_id)
            .unwrap();
        runs.push(f);
        for side in ["a", "b"] {
            SeriesInfo {
                series_id: format!("s-x-{side}"),
                created_at: "2026-01-01T00:00:00Z".into(),
                side: side.to_uppercase(),
                label: format!("side {side}"),
                trials: 4,
                compared_with: None,
            }
            .write(&dir)
            .unwrap();
        }
        let a = resolve(&dir, &runs, "s-x-a").unwrap();
        let b = resolve(&dir, &runs, "s-x-b").unwrap();
        assert_eq!((a.runs.len(), b.runs.len(), b.failed), (4, 4, 1));
        assert!(resolve(&dir, &runs, "s-x")
            .unwrap_err()
            .contains("ambiguous"));
        let c = compare_groups(&a, &b);
        assert_eq!(
            c.metric(Metric::Throughput).unwrap().verdict,
            trials::Verdict::Worse
        );
        // Latency went up 10x: worse too.
        assert_eq!(
            c.metric(Metric::P99).unwrap().verdict,
            trials::Verdict::Worse
        );
        assert_eq!(c.config_lines(), ["client.batch: 1024 -> 4"]);
        assert!(
            c.warnings.iter().any(|w| w.contains("1 failed")),
            "{:?}",
            c.warnings
        );

        // Other ways to name a group.
        assert_eq!(resolve(&dir, &runs, "t").unwrap().runs.len(), 8);
        assert_eq!(resolve(&dir, &runs, "abcdef12").unwrap().runs.len(), 8);
        let one = resolve(&dir, &runs, "20260101-000000-a").unwrap();
        assert_eq!(one.runs.len(), 1);
        assert!(resolve(&dir, &runs, "nothing")
            .unwrap_err()
            .contains("unknown run id 'nothing': no run, series, tag or commit"));

        // A group mixing configs is flagged.
        let mixed = resolve(&dir, &runs, "t").unwrap();
        let c = compare_groups(&mixed, &a);
        assert!(c.warnings.iter().any(|w| w.contains("mixes 2 configs")));
        let c = compare_groups(&a, &a);
        assert_eq!(
            c.config_lines(),
            ["identical configs: any difference is run-to-run noise"]
        );

        Baseline::Series("s-x-a".into()).write(&dir).unwrap();
        assert_eq!(Baseline::read(&dir), Some(Baseline::Series("s-x-a".into())));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unusable_figures_are_skipped() {
        let mut r = run("x", 5.0, "");
        assert_eq!(metric_value(&r, Metric::Throughput), Some(5.0));
        r.total_ops_per_s = Some(0.0);
        assert_eq!(metric_value(&r, Metric::Throughput), None);
        r.total_ops_per_s = Some(f64::NAN);
        assert_eq!(metric_value(&r, Metric::Throughput), None);
        r.p50_us = None;
        assert_eq!(metric_value(&r, Metric::P50), None);
    }
}
