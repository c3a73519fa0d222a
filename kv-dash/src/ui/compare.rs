//! The Compare view: two runs' metrics side by side with the change in
//! percent, and their config with differences highlighted.

use kv_core::series::GroupComparison;
use kv_core::trials::{percent, Metric, Verdict};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::theme::Theme;
use crate::app::App;
use crate::browse::{fmt_change, fmt_metric, fmt_ops};
use crate::fit::{fit, FitColumn, Step};

/// Metrics where a smaller number is the better one.
fn lower_is_better(name: &str) -> bool {
    name.ends_with("_us") || name.contains("cpu") || name.contains("rss") || name == "duration_s"
}

/// Two groups (series) with a verdict per metric, and what differs.
fn render_groups(g: &GroupComparison, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [table_area, notes_area] =
        Layout::vertical([Constraint::Length(7), Constraint::Min(3)]).areas(area);
    let col = |title: &str, f: &dyn Fn(&kv_core::trials::Comparison) -> String| {
        FitColumn::new(title, g.metrics.iter().map(f).collect())
    };
    let med = |m: &kv_core::trials::Comparison, v: Option<f64>| match (m.metric, v) {
        (_, None) => "-".to_string(),
        (Metric::Throughput, Some(v)) => fmt_ops(v),
        (_, Some(v)) => format!("{v:.0}"),
    };
    let cols = vec![
        col("METRIC", &|m| m.metric.name().to_string()),
        col("TRIALS", &|m| format!("{}/{}", m.trials_a, m.trials_b)).right(),
        col("MEDIAN A", &|m| med(m, m.median_a)).right(),
        col("MEDIAN B", &|m| med(m, m.median_b)).right(),
        col("CHANGE", &|m| m.estimate.map_or("-".to_string(), percent)).right(),
        col("95% INTERVAL", &|m| {
            m.interval.map_or("-".to_string(), |i| {
                format!("[{}, {}]", percent(i.lower), percent(i.upper))
            })
        }),
        col("VERDICT", &|m| m.verdict.word().to_string()).short(
            "VERDICT",
            g.metrics
                .iter()
                .map(|m| match m.verdict {
                    Verdict::NoSignificantDifference => "no sig. difference".to_string(),
                    v => v.word().to_string(),
                })
                .collect(),
        ),
    ];
    let width = table_area.width.saturating_sub(2) as usize;
    let fitted = fit(cols, &[Step::Shorten(6), Step::Drop(1)], width, 1);
    let rows: Vec<Row> = g
        .metrics
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let style = match m.verdict {
                Verdict::Better => theme.change(1.0, true),
                Verdict::Worse => theme.change(-1.0, true),
                _ => theme.dim(),
            };
            Row::new(fitted.iter().map(|f| {
                let text = &f.cells[k];
                let cell = Cell::from(if f.right {
                    format!("{text:>w$}", w = f.width)
                } else {
                    text.clone()
                });
                if f.index == 6 {
                    cell.style(style)
                } else {
                    cell
                }
            }))
        })
        .collect();
    frame.render_widget(
        Table::new(
            rows,
            fitted.iter().map(|f| Constraint::Length(f.width as u16)),
        )
        .header(Row::new(fitted.iter().map(|f| Cell::from(f.title.clone()))).style(theme.header()))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" B against A "),
        ),
        table_area,
    );
    let width = notes_area.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    for (side, label) in [("A", &g.a), ("B", &g.b)] {
        lines.extend(
            crate::fit::flow(&[format!("{side} = {label}")], " ", width)
                .into_iter()
                .map(Line::from),
        );
    }
    lines.push(Line::styled(
        format!("medians of trials; 95% interval of B/A − 1 ({})", g.method),
        theme.dim(),
    ));
    for l in g.config_lines() {
        lines.push(Line::from(format!("config: {l}")));
    }
    for w in &g.warnings {
        lines.push(Line::styled(format!("warning: {w}"), theme.failed()));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" groups ")),
        notes_area,
    );
}

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    if let Some(g) = &app.group_comparison {
        render_groups(g, theme, frame, area);
        return;
    }
    let Some(c) = &app.comparison else {
        frame.render_widget(
            Paragraph::new("Mark two runs with space or m in the Runs view, then press c.")
                .block(Block::default().borders(Borders::ALL).title(" compare ")),
            area,
        );
        return;
    };
    // Side by side when both fit whole; on a narrow screen the config goes
    // below, so no figure is cut.
    let [metrics_area, config_area] = if area.width >= 120 {
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area)
    } else {
        Layout::vertical([
            Constraint::Length(c.metrics.len() as u16 + 3),
            Constraint::Min(3),
        ])
        .areas(area)
    };
    let metric_rows: Vec<Row> = c
        .metrics
        .iter()
        .map(|m| {
            let style = m
                .change_percent
                .map(|p| theme.change(p, !lower_is_better(m.name)))
                .unwrap_or_default();
            Row::new(vec![
                Cell::from(m.name),
                Cell::from(fmt_metric(m.unit, m.a)),
                Cell::from(fmt_metric(m.unit, m.b)),
                Cell::from(fmt_change(m.change_percent)).style(style),
            ])
        })
        .collect();
    frame.render_widget(
        Table::new(
            metric_rows,
            [
                Constraint::Length(22),
                Constraint::Length(13),
                Constraint::Length(13),
                Constraint::Min(8),
            ],
        )
        .header(Row::new(vec!["METRIC", "A", "B", "CHANGE"]).style(theme.header()))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" A = {}  B = {} ", c.a, c.b)),
        ),
        metrics_area,
    );
    let config_rows: Vec<Row> = c
        .config
        .iter()
        .map(|d| {
            let row = Row::new(vec![
                Cell::from(if d.differs { "≠" } else { " " }),
                Cell::from(d.name),
                Cell::from(d.a.clone()),
                Cell::from(d.b.clone()),
            ]);
            if d.differs {
                row.style(theme.differs())
            } else {
                row
            }
        })
        .collect();
    frame.render_widget(
        Table::new(
            config_rows,
            [
                Constraint::Length(1),
                Constraint::Length(12),
                Constraint::Percentage(50),
                Constraint::Percentage(50),
            ],
        )
        .header(Row::new(vec![" ", "CONFIG", "A", "B"]).style(theme.header()))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" config (≠ differs) "),
        ),
        config_area,
    );
}
