//! The commands that print instead of opening the browser: `list`, `show`,
//! `compare`, `top`, `diff`. Each returns its whole output as a string (tests call
//! them directly); errors are one clear line for `main` to print.

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use kv_core::runlog::{self, RunDir, RunRecord, COLUMNS};
use serde::Serialize;

use crate::app::load_folded;
use crate::browse::{self, fmt_change, fmt_metric, fmt_ops, Column, Sort};
use crate::flame::{DiffRow, FlameGraph, TopBy};

/// How a command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Reads the log of an experiments directory, with a helpful message when
/// there is none. Rows that are not data (torn, bad values) are named on
/// stderr with their line; every other run is kept.
pub fn load_runs(dir: &Path) -> anyhow::Result<Vec<RunRecord>> {
    let log = load_log(dir)?;
    for w in log.warnings() {
        eprintln!("kv-dash: {w}");
    }
    Ok(log.runs)
}

/// The log's valid runs and its bad rows (see [`runlog::read_log_all`]).
pub fn load_log(dir: &Path) -> anyhow::Result<runlog::LogRead> {
    let path = runlog::log_path(dir);
    runlog::read_log_all(&path).map_err(|e| {
        if e.is_not_found() {
            anyhow!(
                "no experiments log at {} (run ./run-cluster.sh, or pass --dir)",
                path.display()
            )
        } else {
            anyhow::Error::new(e)
        }
    })
}

fn find<'a>(runs: &'a [RunRecord], id: &str) -> anyhow::Result<&'a RunRecord> {
    browse::find_run(runs, id).map_err(|e| anyhow!(e))
}

/// Left-aligned text table; columns in `right` are right-aligned.
pub fn text_table(headers: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths[i] - c.chars().count();
                if right.contains(&i) {
                    format!("{}{c}", " ".repeat(pad))
                } else if i + 1 == cells.len() {
                    c.to_string()
                } else {
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

fn csv_out(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<String> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(headers)?;
    for r in rows {
        w.write_record(r)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn json<T: Serialize>(v: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(v)? + "\n")
}

/// `kv-dash list`: every run, newest first. With a `width` (the
/// terminal's, or `--width`), columns give way instead of numbers being
/// cut (see [`browse::fit_runs`]); without, every column is whole.
pub fn list(dir: &Path, format: Format, width: Option<usize>) -> anyhow::Result<String> {
    let runs = load_runs(dir)?;
    let order = browse::visible_runs(&runs, "", Sort::default());
    match format {
        Format::Json => json(&order.iter().map(|&i| &runs[i]).collect::<Vec<_>>()),
        Format::Csv => csv_out(
            &COLUMNS,
            &order
                .iter()
                .map(|&i| runs[i].to_fields())
                .collect::<Vec<_>>(),
        ),
        Format::Table => {
            let cols = [
                Column::RunId,
                Column::Started,
                Column::Commit,
                Column::Config,
                Column::Workload,
                Column::Status,
                Column::TotalOps,
                Column::P99,
                Column::Note,
            ];
            let fitted = browse::fit_runs(
                &runs,
                &order,
                &cols,
                |_, t| t.to_string(),
                width.unwrap_or(usize::MAX),
                2,
            );
            let headers: Vec<&str> = fitted.iter().map(|(_, f)| f.title.as_str()).collect();
            let rows: Vec<Vec<String>> = (0..order.len())
                .map(|r| fitted.iter().map(|(_, f)| f.cells[r].clone()).collect())
                .collect();
            let right: Vec<usize> = (0..fitted.len()).filter(|&i| fitted[i].1.right).collect();
            let mut out = text_table(&headers, &rows, &right);
            if order
                .iter()
                .any(|&i| browse::throughput(&runs[i]).is_some_and(|t| t.clients_only))
            {
                out += &format!("\n{}\n", browse::CLIENTS_ONLY_NOTE);
            }
            Ok(out)
        }
    }
}

/// Lines `show` flows its series and verdict into.
const SHOW_WIDTH: usize = 80;

/// `kv-dash show RUN`: every column (numbers as `list` shows them),
/// per-node medians, profile files.
pub fn show(dir: &Path, id: &str, format: Format) -> anyhow::Result<String> {
    let runs = load_runs(dir)?;
    let run = find(&runs, id)?;
    let rd = RunDir::new(dir, &run.run_id);
    let nodes = match runlog::read_timeseries(&rd.timeseries_csv()) {
        Ok(rows) => runlog::node_medians(&rows),
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let profiles = rd.profiles()?;
    match format {
        Format::Json => {
            #[derive(Serialize)]
            struct Show<'a> {
                record: &'a RunRecord,
                nodes: &'a [runlog::NodeSummary],
                profiles: Vec<String>,
                folder: String,
            }
            json(&Show {
                record: run,
                nodes: &nodes,
                profiles: profiles.iter().map(|p| p.name()).collect(),
                folder: rd.path().display().to_string(),
            })
        }
        Format::Csv => csv_out(&COLUMNS, &[run.to_fields()]),
        Format::Table => {
            let rows: Vec<Vec<String>> = runlog::TABLE
                .iter()
                .zip(run.to_fields())
                .map(|(c, v)| vec![c.name.to_string(), browse::field_value(c.name, c.unit, &v)])
                .collect();
            let mut out = text_table(&["FIELD", "VALUE"], &rows, &[]);
            out += &format!("\nfolder: {}\n", rd.path().display());
            let index = crate::series::SeriesIndex::build(dir, &runs);
            if let Some((series, trial)) = index.of_run(&run.run_id) {
                for line in crate::fit::flow(&series.detail_items(trial), "  ", SHOW_WIDTH) {
                    out += &format!("{line}\n");
                }
            }
            for page in browse::witness_pages(dir, &run.run_id) {
                out += &format!("check witness: {}\n", page.display());
            }
            if nodes.is_empty() {
                out += "per-node medians: no timeseries.csv\n";
            } else {
                out += "\nper-node medians:\n";
                let rows: Vec<Vec<String>> = nodes
                    .iter()
                    .map(|n| {
                        vec![
                            runlog::process_name(n.role, &n.node),
                            fmt_ops(n.median_ops_per_s),
                            format!("{:.1}", n.median_cpu_percent),
                            browse::fmt_bytes(n.peak_rss_bytes as f64),
                            n.median_p99_us.map_or("-".into(), |v| v.to_string()),
                        ]
                    })
                    .collect();
                out += &text_table(
                    &["NODE", "OPS/S", "CPU %", "PEAK RSS", "P99 US"],
                    &rows,
                    &[1, 2, 3, 4],
                );
            }
            let names: Vec<String> = profiles.iter().map(|p| p.name()).collect();
            out += &format!(
                "profiles: {}\n",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
            Ok(out)
        }
    }
}

/// `kv-dash compare A B`: metrics with change in percent, config differences.
pub fn compare(dir: &Path, a: &str, b: &str, format: Format) -> anyhow::Result<String> {
    let runs = load_runs(dir)?;
    let (ra, rb) = (find(&runs, a)?, find(&runs, b)?);
    let c = browse::compare(ra, rb);
    match format {
        Format::Json => json(&c),
        Format::Csv => {
            let mut rows: Vec<Vec<String>> = c
                .metrics
                .iter()
                .map(|m| {
                    let f = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
                    vec![
                        "metric".into(),
                        m.name.into(),
                        f(m.a),
                        f(m.b),
                        f(m.change_percent),
                    ]
                })
                .collect();
            rows.extend(c.config.iter().map(|d| {
                vec![
                    "config".into(),
                    d.name.into(),
                    d.a.clone(),
                    d.b.clone(),
                    String::new(),
                ]
            }));
            csv_out(&["kind", "name", "a", "b", "change_percent"], &rows)
        }
        Format::Table => {
            let mut out = format!("A = {}\nB = {}\n\n", c.a, c.b);
            let rows: Vec<Vec<String>> = c
                .metrics
                .iter()
                .map(|m| {
                    vec![
                        m.name.to_string(),
                        fmt_metric(m.unit, m.a),
                        fmt_metric(m.unit, m.b),
                        fmt_change(m.change_percent),
                    ]
                })
                .collect();
            out += &text_table(&["METRIC", "A", "B", "CHANGE"], &rows, &[1, 2, 3]);
            out += "\n";
            let rows: Vec<Vec<String>> = c
                .config
                .iter()
                .map(|d| {
                    vec![
                        if d.differs { "≠" } else { "" }.to_string(),
                        d.name.to_string(),
                        d.a.clone(),
                        d.b.clone(),
                    ]
                })
                .collect();
            out += &text_table(&["", "CONFIG", "A", "B"], &rows, &[]);
            Ok(out)
        }
    }
}

/// The flamegraph of one profiled process of `run`: `process` by name or
/// prefix, or the first process with stacks (servers sort first).
/// The folded profile of `process` in `run` (by name or prefix; default
/// the first profiled process): its name and file.
fn find_profile(
    dir: &Path,
    run: &RunRecord,
    process: Option<&str>,
) -> anyhow::Result<(String, std::path::PathBuf)> {
    let profiles = RunDir::new(dir, &run.run_id).profiles()?;
    let with_folded: Vec<_> = profiles.iter().filter(|p| p.folded.is_some()).collect();
    let profile = match process {
        None => with_folded.first().copied(),
        Some(name) => with_folded
            .iter()
            .find(|p| p.answers_to(name))
            .or_else(|| {
                // A unique prefix of a process or node name.
                let hits: Vec<_> = with_folded
                    .iter()
                    .filter(|p| p.name().starts_with(name) || p.node.starts_with(name))
                    .collect();
                (hits.len() == 1).then(|| hits[0])
            })
            .copied(),
    };
    let Some(profile) = profile else {
        let names: Vec<String> = with_folded.iter().map(|p| p.name()).collect();
        match process {
            Some(name) if !names.is_empty() => bail!(
                "run {} has no process '{name}' (profiled: {})",
                run.run_id,
                names.join(", ")
            ),
            _ => bail!("run {} has no .folded profiles", run.run_id),
        }
    };
    let path = profile.folded.clone().context("no folded file")?;
    Ok((profile.name(), path))
}

fn process_graph(
    dir: &Path,
    run: &RunRecord,
    process: Option<&str>,
) -> anyhow::Result<(String, FlameGraph)> {
    let (name, path) = find_profile(dir, run, process)?;
    Ok((name, load_folded(&path)?))
}

/// One side of a diff: a run, or a group of runs (series, tag, commit)
/// whose profiles are merged.
pub(crate) struct DiffSide {
    pub label: String,
    pub process: String,
    pub graph: FlameGraph,
}

/// Resolves `spec` like `compare` does. A single run is used whatever its
/// status; a group's ok runs have their stacks summed (the same process
/// in each trial), so a series is diffed with all its samples.
pub(crate) fn diff_side(
    dir: &Path,
    runs: &[RunRecord],
    spec: &str,
    process: Option<&str>,
) -> anyhow::Result<DiffSide> {
    let group = kv_core::series::resolve(dir, runs, spec).map_err(|e| anyhow!(e))?;
    if let Some(id) = group.label.strip_prefix("run ") {
        let run = find(runs, id)?;
        let (process, graph) = process_graph(dir, run, process)?;
        return Ok(DiffSide {
            label: run.run_id.clone(),
            process,
            graph,
        });
    }
    let (mut name, mut text, mut merged) = (process.map(str::to_string), String::new(), 0);
    let mut last_err = None;
    for run in &group.runs {
        match find_profile(dir, run, name.as_deref()) {
            Ok((n, path)) => {
                text += &std::fs::read_to_string(&path)
                    .with_context(|| format!("{}", path.display()))?;
                text.push('\n');
                name = Some(n);
                merged += 1;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some(process) = name.filter(|_| merged > 0) else {
        return Err(last_err.unwrap_or_else(|| anyhow!("{} has no successful runs", group.label)));
    };
    let graph = FlameGraph::parse(&text).with_context(|| format!("profiles of {}", group.label))?;
    Ok(DiffSide {
        label: format!("{} ({merged} profiles merged)", group.label),
        process,
        graph,
    })
}

/// `kv-dash diff A B`: which functions of one process grew or shrank from
/// A to B, in percentage points of all samples. A and B are runs, or
/// series, tags or commits whose trials' profiles are merged.
pub fn diff(
    dir: &Path,
    a: &str,
    b: &str,
    process: Option<&str>,
    n: usize,
    format: Format,
) -> anyhow::Result<String> {
    let runs = load_runs(dir)?;
    let side_b = diff_side(dir, &runs, b, process)?;
    let side_a = diff_side(dir, &runs, a, Some(&side_b.process))?;
    let (name, graph_a, graph_b) = (&side_b.process, &side_a.graph, &side_b.graph);
    let mut rows = FlameGraph::diff(graph_a, graph_b);
    rows.truncate(n);
    match format {
        Format::Json => {
            #[derive(Serialize)]
            struct Diff<'a> {
                a: &'a str,
                b: &'a str,
                process: &'a str,
                samples_a: u64,
                samples_b: u64,
                functions: &'a [DiffRow],
            }
            json(&Diff {
                a: &side_a.label,
                b: &side_b.label,
                process: name,
                samples_a: graph_a.total_samples(),
                samples_b: graph_b.total_samples(),
                functions: &rows,
            })
        }
        Format::Csv => {
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        format!("{:.3}", d.total_percent_a),
                        format!("{:.3}", d.total_percent_b),
                        format!("{:.3}", d.self_percent_a),
                        format!("{:.3}", d.self_percent_b),
                    ]
                })
                .collect();
            csv_out(
                &[
                    "function",
                    "total_percent_a",
                    "total_percent_b",
                    "self_percent_a",
                    "self_percent_b",
                ],
                &rows,
            )
        }
        Format::Table => {
            let mut out = format!(
                "{name}: A = {} ({} samples), B = {} ({} samples); change in percentage points, largest first\n\n",
                side_a.label,
                graph_a.total_samples(),
                side_b.label,
                graph_b.total_samples()
            );
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|d| {
                    vec![
                        format!("{}/{}", d.total_samples_a, d.total_samples_b),
                        format!("{:.1}%", d.total_percent_a),
                        format!("{:.1}%", d.total_percent_b),
                        format!("{:+.1}{}", d.total_delta(), if d.noise { "~" } else { "" }),
                        format!("{:+.1}", d.self_delta()),
                        d.name.clone(),
                    ]
                })
                .collect();
            out += &text_table(
                &[
                    "SAMPLES A/B",
                    "TOTAL A",
                    "TOTAL B",
                    "Δ TOTAL",
                    "Δ SELF",
                    "FUNCTION",
                ],
                &rows,
                &[0, 1, 2, 3, 4],
            );
            out += "\n~ marks a change within sampling noise (95% interval includes 0)\n";
            let few = graph_a.total_samples().min(graph_b.total_samples());
            if few < crate::functions::FEW_SAMPLES {
                out += &format!("warning: only {few} samples in one profile: shares are rough\n");
            }
            let gone = graph_b.vanished(graph_a);
            if !gone.is_empty() {
                out += "\nonly in A (stacks B no longer has):\n";
                for v in gone.iter().take(n) {
                    out += &format!(
                        "  -{:.1}  {} (under {})\n",
                        v.loss,
                        v.name,
                        graph_b.frame(v.under).name
                    );
                }
            }
            Ok(out)
        }
    }
}

/// `kv-dash top RUN`: the functions with the most samples in one process.
pub fn top(
    dir: &Path,
    id: &str,
    process: Option<&str>,
    n: usize,
    by: TopBy,
    format: Format,
) -> anyhow::Result<String> {
    let runs = load_runs(dir)?;
    let run = find(&runs, id)?;
    let (name, graph) = process_graph(dir, run, process)?;
    let top = graph.top(by, n);
    match format {
        Format::Json => {
            #[derive(Serialize)]
            struct Top<'a> {
                run_id: &'a str,
                process: String,
                samples: u64,
                by: &'static str,
                functions: &'a [crate::flame::FunctionStat],
            }
            json(&Top {
                run_id: &run.run_id,
                process: name,
                samples: graph.total_samples(),
                by: by.label(),
                functions: &top,
            })
        }
        Format::Csv => {
            let rows: Vec<Vec<String>> = top
                .iter()
                .map(|f| {
                    vec![
                        f.name.clone(),
                        f.self_samples.to_string(),
                        f.total_samples.to_string(),
                        format!("{:.3}", f.self_percent),
                        format!("{:.3}", f.total_percent),
                    ]
                })
                .collect();
            csv_out(
                &[
                    "function",
                    "self_samples",
                    "total_samples",
                    "self_percent",
                    "total_percent",
                ],
                &rows,
            )
        }
        Format::Table => {
            let mut out = format!(
                "{} of run {}: {} samples, top {} by {}\n\n",
                name,
                run.run_id,
                graph.total_samples(),
                top.len(),
                by.label()
            );
            let rows: Vec<Vec<String>> = top
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    vec![
                        (i + 1).to_string(),
                        format!("{:.1}%", f.self_percent),
                        format!("{:.1}%", f.total_percent),
                        f.name.clone(),
                    ]
                })
                .collect();
            out += &text_table(&["#", "SELF", "TOTAL", "FUNCTION"], &rows, &[0, 1, 2]);
            Ok(out)
        }
    }
}
