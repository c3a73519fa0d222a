//! SVG charts with plotters: a run's time series, and throughput against
//! cluster size across runs. SVG needs no font files, so this works on any
//! machine that builds kvlab.

use std::path::Path;

use anyhow::{anyhow, Result};
use kv_core::runlog::TimeseriesRow;
use kv_core::stats::Role;
use plotters::prelude::*;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// One named line of points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Draws lines (and their points) on one chart.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x_max, mut y_max) = (1.0f64, 1.0f64);
    let mut x_min = f64::INFINITY;
    for &(x, y) in pts {
        x_max = x_max.max(x);
        x_min = x_min.min(x);
        y_max = y_max.max(y);
    }
    if !x_min.is_finite() || x_min >= x_max {
        x_min = 0.0;
    }
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x_min..x_max * 1.02, 0.0..y_max * 1.1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

fn human(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e3 {
        format!("{:.0}K", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Per-node series of one field, servers first, plus the servers' total.
fn per_node(
    rows: &[TimeseriesRow],
    field: fn(&TimeseriesRow) -> f64,
    with_total: bool,
) -> Vec<Series> {
    let mut names: Vec<(Role, String)> = Vec::new();
    for r in rows {
        if !names
            .iter()
            .any(|(role, n)| *role == r.role && *n == r.node)
        {
            names.push((r.role, r.node.clone()));
        }
    }
    names.sort_by(|a, b| (a.0 != Role::Server, &a.1).cmp(&(b.0 != Role::Server, &b.1)));
    let mut out: Vec<Series> = names
        .iter()
        .map(|(role, node)| Series {
            name: format!("{}-{node}", role.name()),
            points: rows
                .iter()
                .filter(|r| r.role == *role && r.node == *node)
                .map(|r| (r.t_s, field(r)))
                .collect(),
        })
        .collect();
    if with_total && names.iter().filter(|(r, _)| *r == Role::Server).count() > 1 {
        let mut ts: Vec<f64> = rows.iter().map(|r| r.t_s).collect();
        ts.sort_by(f64::total_cmp);
        ts.dedup();
        out.insert(
            0,
            Series {
                name: "servers total".into(),
                points: ts
                    .iter()
                    .map(|&t| {
                        let sum = rows
                            .iter()
                            .filter(|r| r.t_s == t && r.role == Role::Server)
                            .map(field)
                            .sum();
                        (t, sum)
                    })
                    .collect(),
            },
        );
    }
    out
}

/// One chart of a run: file, title, y label, the field, whether to add the servers' total.
type RunChart = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TimeseriesRow) -> f64,
    bool,
);

/// The run's charts: `throughput.svg`, `cpu.svg`, `rss.svg`, and
/// `latency.svg` when clients reported latency. Returns the files written.
pub fn run_charts(dir: &Path, rows: &[TimeseriesRow]) -> Result<Vec<String>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let charts: [RunChart; 3] = [
        (
            "throughput.svg",
            "ops/s per node",
            "ops/s",
            |r| r.ops_per_s,
            true,
        ),
        (
            "cpu.svg",
            "CPU per node (100 = one core)",
            "CPU %",
            |r| r.cpu_percent,
            false,
        ),
        (
            "rss.svg",
            "resident memory per node",
            "bytes",
            |r| r.rss_bytes as f64,
            false,
        ),
    ];
    let mut written = Vec::new();
    for (file, title, y, field, total) in charts {
        line_chart(
            &dir.join(file),
            title,
            "seconds",
            y,
            &per_node(rows, field, total),
        )?;
        written.push(file.to_string());
    }
    let clients: Vec<TimeseriesRow> = rows
        .iter()
        .filter(|r| r.p99_us.is_some())
        .cloned()
        .collect();
    if !clients.is_empty() {
        let file = "latency.svg";
        line_chart(
            &dir.join(file),
            "client p99 op latency, each second",
            "seconds",
            "us",
            &per_node(&clients, |r| r.p99_us.unwrap_or(0) as f64, false),
        )?;
        written.push(file.to_string());
    }
    Ok(written)
}
