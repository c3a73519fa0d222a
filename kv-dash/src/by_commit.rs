//! `kv-dash history`: one setup's figure per commit, oldest first, with
//! change points flagged ([`kv_core::commit_history`]), as a table (or
//! JSON / CSV) and an SVG chart beside the log.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail};
use kv_core::commit_history::{self, setup_hash, CommitHistory};
use kv_core::runlog::RunRecord;
use kv_core::series::TrialInfo;
use kv_core::trials::{percent, Metric};
use kv_plot::{line_chart, Series};

use crate::browse::fmt_ops;
use crate::cli::{self, Format};

/// What to draw the history of.
pub struct HistoryQuery<'a> {
    /// A setup hash or a unique prefix of one.
    pub config: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub metric: Metric,
    /// Where the chart goes (default: `history-<setup>-<metric>.svg` in the dir).
    pub svg: Option<&'a Path>,
}

/// Commits oldest first as git knows them; empty when `dir` is in no
/// repository (then code states are ordered by when they were first run).
fn commit_order(dir: &Path) -> Vec<String> {
    Command::new("git")
        .args(["rev-list", "--topo-order", "--reverse", "--all"])
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn fmt_value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::Throughput => fmt_ops(v),
        Metric::P50 | Metric::P99 => format!("{v:.0} us"),
    }
}

pub fn history(dir: &Path, q: &HistoryQuery, format: Format) -> anyhow::Result<String> {
    let runs = cli::load_runs(dir)?;
    let selected: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.status.is_ok() && q.tag.is_none_or(|t| r.tag == t))
        .collect();
    let with_identity: Vec<(&RunRecord, TrialInfo)> = selected
        .iter()
        .filter_map(|r| TrialInfo::read(dir, &r.run_id).map(|t| (*r, t)))
        .collect();
    let pairs: Vec<(&RunRecord, &TrialInfo)> = with_identity.iter().map(|(r, t)| (*r, t)).collect();
    if pairs.is_empty() {
        bail!(
            "no successful run{} records a config identity (runs/<id>/trial.json, written since trials landed)",
            q.tag.map(|t| format!(" tagged '{t}'")).unwrap_or_default()
        );
    }
    // Setups in order of their newest run, newest first.
    let mut setups: Vec<(String, usize)> = Vec::new();
    for (_, t) in pairs.iter().rev() {
        let h = setup_hash(&t.identity);
        match setups.iter_mut().find(|s| s.0 == h) {
            Some(s) => s.1 += 1,
            None => setups.push((h, 1)),
        }
    }
    let setup = match q.config {
        Some(c) => {
            let hits: Vec<&(String, usize)> =
                setups.iter().filter(|s| s.0.starts_with(c)).collect();
            match hits.as_slice() {
                [one] => one.0.clone(),
                [] => bail!(
                    "no run has config '{c}' (configs: {})",
                    list_setups(&setups)
                ),
                _ => bail!(
                    "config '{c}' is ambiguous: {}",
                    list_setups(&hits.into_iter().cloned().collect::<Vec<_>>())
                ),
            }
        }
        None => setups[0].0.clone(),
    };
    let h = commit_history::build(&pairs, &setup, q.metric, &commit_order(dir));
    let others: Vec<(String, usize)> = setups.into_iter().filter(|s| s.0 != setup).collect();
    let svg: PathBuf = q
        .svg
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(format!("history-{}-{}.svg", setup, q.metric.name())));
    draw(&svg, &h)?;
    match format {
        Format::Json => Ok(serde_json::to_string_pretty(&h)? + "\n"),
        Format::Csv => csv_text(&h),
        Format::Table => {
            let mut out = table(&h);
            if !others.is_empty() {
                out += &format!("other configs (--config HASH): {}\n", list_setups(&others));
            }
            out += &format!("chart: {}\n", svg.display());
            Ok(out)
        }
    }
}

fn list_setups(s: &[(String, usize)]) -> String {
    s.iter()
        .map(|(h, n)| format!("{h} ({n} runs)"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn table(h: &CommitHistory) -> String {
    let rows: Vec<Vec<String>> = h
        .points
        .iter()
        .map(|p| {
            let spread = p.spread;
            vec![
                p.code.clone(),
                p.first_started.clone(),
                p.trials.to_string(),
                spread.map_or("-".into(), |s| fmt_value(h.metric, s.median)),
                spread.map_or("-".into(), |s| {
                    format!(
                        "{}..{}",
                        fmt_value(h.metric, s.min),
                        fmt_value(h.metric, s.max)
                    )
                }),
                p.vs_previous
                    .as_ref()
                    .map_or(String::new(), |c| c.summary()),
                if p.is_change_point() {
                    "◆ change".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    let direction = match h.metric {
        Metric::Throughput => "higher is better",
        Metric::P50 | Metric::P99 => "lower is better",
    };
    format!(
        "history of config {} ({}, {direction}), {} code state{}, oldest first\nmethod: {}\n{}",
        h.setup_hash,
        h.metric,
        h.points.len(),
        if h.points.len() == 1 { "" } else { "s" },
        h.method,
        cli::text_table(
            &[
                "CODE",
                "FIRST RUN",
                "TRIALS",
                "MEDIAN",
                "RANGE",
                "VS PREVIOUS",
                ""
            ],
            &rows,
            &[2, 3, 4],
        )
    )
}

fn csv_text(h: &CommitHistory) -> anyhow::Result<String> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record([
        "code",
        "commit",
        "first_started",
        "trials",
        "median",
        "min",
        "max",
        "estimate",
        "lower",
        "upper",
        "verdict",
        "change_point",
    ])?;
    let f = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for p in &h.points {
        let c = p.vs_previous.as_ref();
        w.write_record([
            p.code.clone(),
            p.commit.clone(),
            p.first_started.clone(),
            p.trials.to_string(),
            f(p.spread.map(|s| s.median)),
            f(p.spread.map(|s| s.min)),
            f(p.spread.map(|s| s.max)),
            f(c.and_then(|c| c.estimate)),
            f(c.and_then(|c| c.interval).map(|i| i.lower)),
            f(c.and_then(|c| c.interval).map(|i| i.upper)),
            c.map_or(String::new(), |c| c.verdict.word().to_string()),
            p.is_change_point().to_string(),
        ])?;
    }
    Ok(String::from_utf8(
        w.into_inner().map_err(|e| anyhow!("{e}"))?,
    )?)
}

/// Median per code state (x = its position, oldest first) with the trial
/// range as a band; change points named in the title.
fn draw(path: &Path, h: &CommitHistory) -> anyhow::Result<()> {
    let mut s = Series::new(h.metric.name(), Vec::new());
    for (i, p) in h.points.iter().enumerate() {
        if let Some(sp) = p.spread {
            let x = (i + 1) as f64;
            s.points.push((x, sp.median));
            s.band.push((x, sp.min, sp.max));
        }
    }
    let changes: Vec<String> = h
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.is_change_point())
        .map(|(i, p)| {
            let est = p.vs_previous.as_ref().and_then(|c| c.estimate);
            format!(
                "#{} {} {}",
                i + 1,
                p.code,
                est.map(percent).unwrap_or_default()
            )
        })
        .collect();
    let title = if changes.is_empty() {
        format!(
            "{} by commit, config {} (no change point)",
            h.metric, h.setup_hash
        )
    } else {
        format!(
            "{} by commit, config {}; change: {}",
            h.metric,
            h.setup_hash,
            changes.join(", ")
        )
    };
    line_chart(
        path,
        &title,
        "code state, oldest first (see the table)",
        h.metric.name(),
        &[s],
    )
}
