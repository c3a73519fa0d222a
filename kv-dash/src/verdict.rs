//! `kv-dash compare`, `baseline` and `report`: groups of trials (series,
//! runs, tags, commits) compared with a verdict per metric
//! (`kv_core::series`, `kv_core::trials`), and the Markdown lab report.

use std::path::Path;

use anyhow::{anyhow, Context};
use kv_core::runlog::{RunDir, RunRecord};
use kv_core::series::{self, compare_groups, Baseline, Group, SeriesInfo};
use kv_core::trials::percent;

use crate::cli::{self, Format};

fn groups(dir: &Path, a: &str, b: &str) -> anyhow::Result<(Group, Group)> {
    let runs = cli::load_runs(dir)?;
    let ga = series::resolve(dir, &runs, a).map_err(|e| anyhow!(e))?;
    let gb = series::resolve(dir, &runs, b).map_err(|e| anyhow!(e))?;
    Ok((ga, gb))
}

fn single(g: &Group) -> Option<&RunRecord> {
    (g.label.starts_with("run ") && g.runs.len() == 1).then(|| &g.runs[0])
}

/// `kv-dash compare A B`: the verdict of B against A for each metric and
/// the config differences; for two single runs, first the side-by-side
/// table of every column.
pub fn compare(dir: &Path, a: &str, b: &str, format: Format) -> anyhow::Result<String> {
    let (ga, gb) = groups(dir, a, b)?;
    let c = compare_groups(&ga, &gb);
    let runs = match (single(&ga), single(&gb)) {
        (Some(x), Some(y)) => Some(cli::compare(dir, &x.run_id, &y.run_id, format)?),
        _ => None,
    };
    if let (Format::Csv, Some(rows)) = (format, &runs) {
        // One trial a side has no interval, so the side-by-side rows are
        // the whole answer for two single runs.
        return Ok(rows.clone());
    }
    match format {
        // Two single runs keep the side-by-side shape scripts already read
        // (`metrics`, `config`), with the verdicts added beside it.
        Format::Json => {
            let mut out = match runs {
                Some(r) => serde_json::from_str::<serde_json::Value>(&r)?,
                None => serde_json::json!({}),
            };
            if let Some(obj) = out.as_object_mut() {
                obj.insert("verdicts".into(), serde_json::to_value(&c)?);
            }
            Ok(serde_json::to_string_pretty(&out)? + "\n")
        }
        Format::Csv => {
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new());
            w.write_record([
                "metric", "trials_a", "trials_b", "median_a", "median_b", "estimate", "lower",
                "upper", "verdict",
            ])?;
            let f = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
            for m in &c.metrics {
                w.write_record([
                    m.metric.name().to_string(),
                    m.trials_a.to_string(),
                    m.trials_b.to_string(),
                    f(m.median_a),
                    f(m.median_b),
                    f(m.estimate),
                    f(m.interval.map(|i| i.lower)),
                    f(m.interval.map(|i| i.upper)),
                    m.verdict.word().to_string(),
                ])?;
            }
            Ok(String::from_utf8(w.into_inner()?)?)
        }
        Format::Table => Ok(match runs {
            Some(table) => format!("{table}\n{}", c.text()),
            None => c.text(),
        }),
    }
}

/// `kv-dash baseline set SPEC`: a series id or a tag later runs are judged
/// against (`experiments/baseline.json`).
pub fn baseline_set(dir: &Path, spec: &str) -> anyhow::Result<String> {
    let runs = cli::load_runs(dir)?;
    let g = series::resolve(dir, &runs, spec).map_err(|e| anyhow!(e))?;
    let b = if let Some(id) = g.label.strip_prefix("series ") {
        Baseline::Series(id.split(' ').next().unwrap_or(id).to_string())
    } else if g.label.starts_with("tag ") {
        Baseline::Tag(spec.to_string())
    } else {
        anyhow::bail!(
            "a baseline is a series id or a tag; '{spec}' is a {}",
            g.label
        );
    };
    b.write(dir)
        .with_context(|| format!("cannot write the baseline in {}", dir.display()))?;
    Ok(format!(
        "baseline: {} ({} ok runs)\n",
        g.label,
        g.runs.len()
    ))
}

/// `kv-dash baseline`: what is set.
pub fn baseline_show(dir: &Path) -> anyhow::Result<String> {
    Ok(match Baseline::read(dir) {
        Some(Baseline::Series(s)) => format!("baseline: series {s}\n"),
        Some(Baseline::Tag(t)) => format!("baseline: tag {t}\n"),
        None => "no baseline set (kv-dash baseline set SERIES|TAG)\n".to_string(),
    })
}

/// `kv-dash baseline clear`.
pub fn baseline_clear(dir: &Path) -> anyhow::Result<String> {
    let p = dir.join(series::BASELINE_FILE);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok("baseline cleared\n".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("no baseline was set\n".into()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", p.display())),
    }
}

/// Markdown links to a run's folder, charts and flamegraphs, relative to
/// the experiments directory.
fn run_links(dir: &Path, r: &RunRecord) -> String {
    let rd = RunDir::new(dir, &r.run_id);
    let base = format!("runs/{}", r.run_id);
    let mut links = vec![format!("[{}]({base}/)", r.run_id)];
    for chart in ["throughput.svg", "latency.svg"] {
        if rd.path().join(chart).exists() {
            links.push(format!("[{chart}]({base}/{chart})"));
        }
    }
    if let Ok(profiles) = rd.profiles() {
        for p in profiles.iter().filter(|p| p.svg.is_some()) {
            links.push(format!(
                "[{} flamegraph]({base}/{}.svg)",
                p.name(),
                p.name()
            ));
        }
    }
    links.join(" · ")
}

/// `kv-dash report A B --markdown`: the comparison table with intervals and
/// verdicts, the config differences, and links to every trial's charts and
/// flamegraphs (relative to the experiments directory: save the report there).
pub fn report_markdown(dir: &Path, a: &str, b: &str) -> anyhow::Result<String> {
    let (ga, gb) = groups(dir, a, b)?;
    let c = compare_groups(&ga, &gb);
    let mut out = String::from("# kvlab comparison: B against A\n\n");
    out += &format!("- **A**: {}\n- **B**: {}\n", ga.label, gb.label);
    out += &format!(
        "- method: medians of trials; 95% confidence interval of the relative difference B/A − 1 by {} (Hodges–Lehmann estimate, exact Mann–Whitney interval)\n\n",
        c.method
    );
    out += "| metric | better when | trials A | trials B | median A | median B | change | 95% interval | verdict |\n";
    out += "|---|---|---:|---:|---:|---:|---:|---|---|\n";
    let med = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
    for m in &c.metrics {
        let better = match m.metric.direction() {
            kv_core::trials::Direction::HigherIsBetter => "higher",
            kv_core::trials::Direction::LowerIsBetter => "lower",
        };
        let unit = if m.metric == kv_core::trials::Metric::Throughput {
            " (ops/s)"
        } else {
            " (µs)"
        };
        out += &format!(
            "| {}{unit} | {better} | {} | {} | {} | {} | {} | {} | **{}** |\n",
            m.metric.name(),
            m.trials_a,
            m.trials_b,
            med(m.median_a),
            med(m.median_b),
            m.estimate.map_or("–".into(), percent),
            m.interval
                .map_or("none (too few trials)".into(), |i| format!(
                    "[{}, {}]",
                    percent(i.lower),
                    percent(i.upper)
                )),
            m.verdict
        );
    }
    out += "\n## Config differences\n\n";
    for l in c.config_lines() {
        out += &format!("- {l}\n");
    }
    for w in &c.warnings {
        out += &format!("- warning: {w}\n");
    }
    for (name, g) in [("A", &ga), ("B", &gb)] {
        out += &format!("\n## Trials of {name}\n\n");
        for r in &g.runs {
            let t = r
                .total_ops_per_s
                .map_or("–".to_string(), |v| format!("{v:.0} ops/s"));
            out += &format!("- {t}: {}\n", run_links(dir, r));
        }
    }
    Ok(out)
}

/// Series and their trial counts, for `kv-dash series`.
pub fn series_list(dir: &Path) -> anyhow::Result<String> {
    let runs = cli::load_runs(dir)?;
    let rows: Vec<Vec<String>> = SeriesInfo::list(dir)
        .iter()
        .map(|s| {
            let members = series::series_members(dir, &runs, &s.series_id);
            let ok: Vec<f64> = members
                .iter()
                .filter(|r| r.status.is_ok())
                .filter_map(|r| r.total_ops_per_s)
                .collect();
            let sample = kv_core::trials::Sample::new(ok.iter().copied().filter(|v| *v > 0.0));
            let spread = sample.ok().and_then(|s| s.spread());
            vec![
                s.series_id.clone(),
                s.created_at.clone(),
                format!("{}/{}", members.len(), s.trials),
                spread.map_or("-".into(), |p| crate::browse::fmt_ops(p.median)),
                spread.map_or("-".into(), |p| {
                    format!(
                        "{}..{}",
                        crate::browse::fmt_ops(p.min),
                        crate::browse::fmt_ops(p.max)
                    )
                }),
                s.compared_with.clone().unwrap_or_default(),
                s.label.clone(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return Ok("no series yet (./run-cluster.sh --trials 5 ...)\n".into());
    }
    Ok(cli::text_table(
        &[
            "SERIES", "CREATED", "TRIALS", "MEDIAN", "RANGE", "AGAINST", "LABEL",
        ],
        &rows,
        &[2, 3, 4],
    ))
}
