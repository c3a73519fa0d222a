//! The Compare view: two runs' metrics side by side with the change in
//! percent, and their config with differences highlighted.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::theme::Theme;
use crate::app::App;
use crate::browse::{fmt_change, fmt_metric};

/// Metrics where a smaller number is the better one.
fn lower_is_better(name: &str) -> bool {
    name.ends_with("_us") || name.contains("cpu") || name.contains("rss") || name == "duration_s"
}

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(c) = &app.comparison else {
        frame.render_widget(
            Paragraph::new("Mark two runs with space or m in the Runs view, then press c.")
                .block(Block::default().borders(Borders::ALL).title(" compare ")),
            area,
        );
        return;
    };
    let [metrics_area, config_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
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
