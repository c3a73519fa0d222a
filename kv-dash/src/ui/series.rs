//! The Series view: every series of trials with its median ± spread and
//! verdict against the baseline; the selected series' trials, and its
//! chart: the trials' per-second throughput as a median with a band, or a
//! rate sweep's latency–throughput curve with the knee.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table,
};
use ratatui::Frame;

use super::theme::Theme;
use crate::app::{App, SeriesChart};
use crate::browse::{self, fmt_ops};
use crate::fit::{fit, FitColumn, Step};
use crate::series::median_spread;

/// The legend names the band and the percentiles: shown at any size.
const ALWAYS: (Constraint, Constraint) = (Constraint::Ratio(1, 1), Constraint::Ratio(1, 1));

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    if app.series.series.is_empty() {
        frame.render_widget(
            Paragraph::new(
                "No series yet: ./run-cluster.sh --trials 5 ... runs trials of one config as a series.",
            )
            .block(Block::default().borders(Borders::ALL).title(" series ")),
            area,
        );
        return;
    }
    let bottom_h = if area.height >= 24 {
        13
    } else {
        area.height / 2
    };
    let [table, bottom] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(bottom_h)]).areas(area);
    render_table(app, theme, frame, table);
    let trials_w = 36.min(bottom.width / 2);
    let [trials, chart] =
        Layout::horizontal([Constraint::Length(trials_w), Constraint::Min(10)]).areas(bottom);
    render_trials(app, theme, frame, trials);
    render_chart(app, theme, frame, chart);
}

fn render_table(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let all = &app.series.series;
    let inner_rows = area.height.saturating_sub(3) as usize;
    let offset = app
        .series_selected
        .checked_div(inner_rows)
        .map_or(0, |page| page * inner_rows);
    let shown: Vec<&crate::series::SeriesSummary> =
        all.iter().skip(offset).take(inner_rows).collect();
    let col = |title: &str, f: &dyn Fn(&crate::series::SeriesSummary) -> String| {
        FitColumn::new(title, shown.iter().map(|s| f(s)).collect())
    };
    let cols = vec![
        col("SERIES", &|s| s.series_id.clone()),
        col("CREATED", &|s| browse::short_time(&s.created_at)).short(
            "CREATED",
            shown
                .iter()
                .map(|s| {
                    browse::short_time(&s.created_at)
                        .get(5..16)
                        .unwrap_or_default()
                        .to_string()
                })
                .collect(),
        ),
        col("TRIALS", &|s| {
            let failed = if s.failed > 0 {
                format!(" {}✖", s.failed)
            } else {
                String::new()
            };
            format!("{}/{}{failed}", s.ok, s.asked)
        })
        .right(),
        col("OPS/S MEDIAN ±", &|s| {
            s.throughput
                .as_ref()
                .map_or("-".into(), |t| median_spread(t, fmt_ops))
        })
        .right(),
        col("P99 US", &|s| {
            s.p99_us
                .as_ref()
                .map_or("-".into(), |t| format!("{:.0}", t.median))
        })
        .right(),
        col("VS BASELINE", &|s| s.verdict()).short(
            "VS BASELINE",
            shown
                .iter()
                .map(|s| match (&s.vs_baseline, s.is_baseline) {
                    (_, true) => "baseline".to_string(),
                    (Some(c), _) => c.verdict.word().to_string(),
                    (None, _) => "-".to_string(),
                })
                .collect(),
        ),
        col("LABEL", &|s| browse::printable(&s.label)).flex(8),
    ];
    // The label says what a series is (`sweep 30%:90%:30%`): it goes last.
    let steps = [
        Step::Shorten(1),
        Step::Shorten(5),
        Step::Drop(1),
        Step::Drop(4),
        Step::Drop(6),
    ];
    let width = (area.width as usize).saturating_sub(4);
    let fitted = fit(cols, &steps, width, 1);
    let header = Row::new(
        std::iter::once(Cell::from(" ")).chain(fitted.iter().map(|f| Cell::from(f.title.clone()))),
    )
    .style(theme.header());
    let rows: Vec<Row> = shown
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let mark = if app.series_marks.contains(&s.series_id) {
                "*"
            } else {
                " "
            };
            let cells = std::iter::once(Cell::from(mark).style(theme.marked())).chain(
                fitted.iter().map(|f| {
                    let text = &f.cells[k];
                    Cell::from(if f.right {
                        format!("{text:>w$}", w = f.width)
                    } else {
                        text.clone()
                    })
                }),
            );
            let row = Row::new(cells);
            if offset + k == app.series_selected {
                row.style(theme.selected_row())
            } else {
                row
            }
        })
        .collect();
    let widths = std::iter::once(Constraint::Length(1))
        .chain(fitted.iter().map(|f| Constraint::Length(f.width as u16)));
    let baseline = all
        .iter()
        .find_map(|s| s.baseline_label.clone())
        .map_or("no baseline (kv-dash baseline set)".to_string(), |b| {
            format!("baseline: {b}")
        });
    let title = format!(" series of trials, oldest first — {baseline} ");
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

fn render_trials(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(s) = app.selected_series() else {
        return;
    };
    let mut lines: Vec<Line> = Vec::new();
    for (i, id) in s.members.iter().enumerate() {
        let Some(r) = app.run(id) else { continue };
        let figure = match browse::throughput(r) {
            _ if !r.status.is_ok() => "FAILED".to_string(),
            Some(t) => t.cell(),
            None => "-".to_string(),
        };
        let line = format!("{:>2} {id} {figure:>10}", i + 1);
        lines.push(if r.status.is_ok() {
            Line::from(line)
        } else {
            Line::styled(line, theme.failed())
        });
    }
    // The label again: the table leaves it out first on a narrow screen.
    let title = if s.label.is_empty() {
        format!(" {} trials ", s.members.len())
    } else {
        let label = crate::fit::cut_words(
            &browse::printable(&s.label),
            (area.width as usize).saturating_sub(16),
        );
        format!(" {} trials: {label} ", s.members.len())
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

fn render_chart(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let chart = app
        .series_chart
        .as_ref()
        .filter(|c| app.selected_series().is_some_and(|s| s.series_id == c.0))
        .map(|c| &c.1);
    match chart {
        Some(SeriesChart::Band {
            median,
            low,
            high,
            trials,
        }) => {
            let x_max = median.last().map_or(1.0, |p| p.0).max(1.0);
            let y_max = (high.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1).max(1.0);
            let sets = vec![
                Dataset::default()
                    .name("highest")
                    .marker(Marker::Dot)
                    .graph_type(GraphType::Line)
                    .style(theme.dim())
                    .data(high),
                Dataset::default()
                    .name("lowest")
                    .marker(Marker::Dot)
                    .graph_type(GraphType::Line)
                    .style(theme.dim())
                    .data(low),
                Dataset::default()
                    .name("median")
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(theme.header())
                    .data(median),
            ];
            let title = if *trials > 1 {
                format!(" server ops/s per second: median of {trials} trials, band lowest–highest ")
            } else {
                " server ops/s per second (one ok trial) ".to_string()
            };
            frame.render_widget(
                Chart::new(sets)
                    .block(Block::default().borders(Borders::ALL).title(title))
                    .x_axis(
                        Axis::default()
                            .bounds([1.0, x_max])
                            .labels(["1 s".to_string(), format!("{x_max:.0} s")])
                            .style(theme.dim()),
                    )
                    .y_axis(
                        Axis::default()
                            .bounds([0.0, y_max])
                            .labels(["0".to_string(), fmt_ops(y_max)])
                            .style(theme.dim()),
                    )
                    .legend_position(Some(ratatui::widgets::LegendPosition::TopRight))
                    .hidden_legend_constraints(ALWAYS),
                area,
            );
        }
        Some(SeriesChart::Curve(r)) => {
            let pts = |f: fn(&kv_core::latency::LatencySummary) -> u64| -> Vec<(f64, f64)> {
                r.steps
                    .iter()
                    .map(|s| (s.achieved_per_s, f(&s.latency) as f64))
                    .collect()
            };
            let (p50, p99, p999) = (pts(|l| l.p50_us), pts(|l| l.p99_us), pts(|l| l.p999_us));
            let x_max =
                (r.steps.iter().map(|s| s.achieved_per_s).fold(0.0, f64::max) * 1.05).max(1.0);
            let y_max = (p999.iter().map(|p| p.1).fold(r.slo_us as f64, f64::max) * 1.1).max(1.0);
            let slo = vec![(0.0, r.slo_us as f64), (x_max, r.slo_us as f64)];
            let knee: Vec<(f64, f64)> = r
                .knee
                .as_ref()
                .map(|k| vec![(k.achieved_per_s, 0.0), (k.achieved_per_s, y_max)])
                .unwrap_or_default();
            let knee_name = r.knee.as_ref().map_or("no knee".to_string(), |k| {
                format!("knee {}", fmt_ops(k.achieved_per_s))
            });
            let mut sets = vec![
                Dataset::default()
                    .name("p99.9")
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(theme.series(2))
                    .data(&p999),
                Dataset::default()
                    .name("p99")
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(theme.series(1))
                    .data(&p99),
                Dataset::default()
                    .name("p50")
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(theme.series(0))
                    .data(&p50),
                Dataset::default()
                    .name(format!("SLO {} us", r.slo_us))
                    .marker(Marker::Dot)
                    .graph_type(GraphType::Line)
                    .style(theme.dim())
                    .data(&slo),
            ];
            if !knee.is_empty() {
                sets.push(
                    Dataset::default()
                        .name(knee_name.clone())
                        .marker(Marker::Dot)
                        .graph_type(GraphType::Line)
                        .style(theme.marked())
                        .data(&knee),
                );
            }
            let title = format!(
                " latency vs achieved ops/s ({} steps), {knee_name} (o: SVG) ",
                r.steps.len()
            );
            frame.render_widget(
                Chart::new(sets)
                    .block(Block::default().borders(Borders::ALL).title(title))
                    .x_axis(
                        Axis::default()
                            .bounds([0.0, x_max])
                            .labels(["0".to_string(), fmt_ops(x_max)])
                            .style(theme.dim()),
                    )
                    .y_axis(
                        Axis::default()
                            .bounds([0.0, y_max])
                            .labels(["0".to_string(), format!("{y_max:.0}")])
                            .style(theme.dim()),
                    )
                    .legend_position(Some(ratatui::widgets::LegendPosition::TopLeft))
                    .hidden_legend_constraints(ALWAYS),
                area,
            );
        }
        Some(SeriesChart::Nothing(why)) => frame.render_widget(
            Paragraph::new(why.clone())
                .style(theme.dim())
                .block(Block::default().borders(Borders::ALL).title(" chart ")),
            area,
        ),
        None => frame.render_widget(Block::default().borders(Borders::ALL), area),
    }
}
