//! The Runs view: the table of runs and the selected run's detail pane.

use kv_core::runlog::RunRecord;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use super::theme::Theme;
use crate::app::App;
use crate::browse::{self, fmt_bytes, fmt_ops, fmt_opt, Column};

/// Table columns and their widths (the note takes the rest).
const COLUMNS: [(Column, u16); 9] = [
    (Column::Started, 11),
    (Column::RunId, 20),
    (Column::Commit, 9),
    (Column::Config, 16),
    (Column::Workload, 12),
    (Column::Status, 18),
    (Column::TotalOps, 11),
    (Column::P99, 6),
    (Column::Note, 0),
];

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let detail_h = if area.height >= 24 {
        13
    } else {
        area.height / 2
    };
    let [table, detail] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(detail_h)]).areas(area);
    render_table(app, theme, frame, table);
    render_detail(app, theme, frame, detail);
}

fn cell_text(col: Column, r: &RunRecord) -> String {
    match col {
        // `MM-DD HH:MM`: the run id carries the full time.
        Column::Started => browse::short_time(&r.started_at)
            .get(5..16)
            .unwrap_or_default()
            .to_string(),
        _ => col.cell(r),
    }
}

fn render_table(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let block = Block::default().borders(Borders::ALL).title(format!(
        " runs — sorted by {} {} ",
        app.sort.column.title().to_lowercase(),
        if app.sort.descending { "▼" } else { "▲" }
    ));
    let inner_rows = area.height.saturating_sub(3) as usize; // borders + header
                                                             // Paged scrolling: stateless, so rendering needs no mutable state and
                                                             // only the rows on screen are built (10,000-run logs stay instant).
    let offset = app
        .selected
        .checked_div(inner_rows)
        .map_or(0, |page| page * inner_rows);
    let header = Row::new(
        std::iter::once(Cell::from(" ")).chain(COLUMNS.iter().map(|(c, _)| {
            let mut t = match c {
                Column::Started => "STARTED".to_string(),
                _ => c.title().to_string(),
            };
            if *c == app.sort.column {
                t.push(if app.sort.descending { '▼' } else { '▲' });
            }
            Cell::from(t)
        })),
    )
    .style(theme.header());
    let rows: Vec<Row> = app
        .visible
        .iter()
        .enumerate()
        .skip(offset)
        .take(inner_rows)
        .map(|(pos, &i)| {
            let r = &app.runs[i];
            let mark = if app.is_marked(&r.run_id) { "*" } else { " " };
            let cells = std::iter::once(Cell::from(mark).style(theme.marked())).chain(
                COLUMNS.iter().map(|(c, _)| {
                    let cell = Cell::from(cell_text(*c, r));
                    if *c == Column::Status && !r.status.is_ok() {
                        cell.style(theme.failed())
                    } else {
                        cell
                    }
                }),
            );
            let row = Row::new(cells);
            if pos == app.selected {
                row.style(theme.selected_row())
            } else {
                row
            }
        })
        .collect();
    let widths = std::iter::once(Constraint::Length(1)).chain(COLUMNS.iter().map(|(_, w)| {
        if *w == 0 {
            Constraint::Min(4)
        } else {
            Constraint::Length(*w)
        }
    }));
    let table = Table::new(rows, widths).header(header).block(block);
    frame.render_widget(table, area);
    if app.visible.is_empty() {
        let msg = if app.runs.is_empty() {
            "no runs recorded yet"
        } else {
            "no run matches the filter (Esc clears it)"
        };
        let inner = Rect {
            x: area.x + 2,
            y: area.y + 2,
            width: area.width.saturating_sub(4),
            height: 1.min(area.height.saturating_sub(2)),
        };
        frame.render_widget(Paragraph::new(msg).style(theme.dim()), inner);
    }
}

fn render_detail(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(r) = app.selected_run() else {
        frame.render_widget(
            Block::default().borders(Borders::ALL).title(" detail "),
            area,
        );
        return;
    };
    let [text_area, chart_area] =
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(area);
    let o = |v: Option<u32>| fmt_opt(v, |v| v.to_string());
    let status = match &r.status {
        kv_core::runlog::RunStatus::Ok => Span::raw("ok"),
        s => Span::styled(s.to_string().to_uppercase(), theme.failed()),
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", r.run_id), theme.header()),
            Span::raw(format!("{}  ", r.started_at)),
            status,
        ]),
        Line::from(format!(
            "commit {}{}  backend {}  hosts {}  duration {}",
            r.git_commit,
            if r.git_dirty == Some(true) { " (dirty)" } else { "" },
            r.backend,
            r.hosts,
            fmt_opt(r.duration_s, |v| format!("{v:.0} s")),
        )),
        Line::from(format!(
            "servers {}  clients {}  threads {}  connections {}  batch {}  window {}",
            o(r.servers),
            o(r.clients),
            if r.threads.is_empty() { "-".to_string() } else { r.threads.to_string() },
            o(r.connections),
            o(r.batch),
            o(r.window)
        )),
        Line::from(format!(
            "workload {}  theta {}  preload {}  seed {}",
            r.workload,
            fmt_opt(r.theta, |v| v.to_string()),
            fmt_opt(r.preload, |v| v.to_string()),
            fmt_opt(r.seed, |v| v.to_string()),
        )),
        Line::from(format!(
            "total {} ops/s  client {} ops/s  latency p50 {} / p99 {} / p99.9 {} us",
            fmt_opt(r.total_ops_per_s, fmt_ops),
            fmt_opt(r.client_ops_per_s, fmt_ops),
            fmt_opt(r.p50_us, |v| v.to_string()),
            fmt_opt(r.p99_us, |v| v.to_string()),
            fmt_opt(r.p999_us, |v| v.to_string()),
        )),
        Line::from(format!(
            "ops generated {} completed {}  cpu server {}% client {}%  rss server {} client {}  net {}/s",
            fmt_opt(r.generated_ops, |v| fmt_ops(v as f64)),
            fmt_opt(r.completed_ops, |v| fmt_ops(v as f64)),
            fmt_opt(r.server_cpu_percent, |v| format!("{v:.0}")),
            fmt_opt(r.client_cpu_percent, |v| format!("{v:.0}")),
            fmt_opt(r.server_peak_rss_bytes, |v| fmt_bytes(v as f64)),
            fmt_opt(r.client_peak_rss_bytes, |v| fmt_bytes(v as f64)),
            fmt_opt(r.net_bytes_per_s, fmt_bytes),
        )),
    ];
    if !r.note.is_empty() || !r.tag.is_empty() {
        lines.push(Line::from(format!(
            "note: {}  tag: {}",
            crate::browse::printable(&r.note),
            crate::browse::printable(&r.tag)
        )));
    }
    if let Some(d) = &app.detail {
        if let Some(series) = &d.series {
            lines.push(Line::from(series.clone()));
        }
        for page in &d.witnesses {
            lines.push(Line::styled(
                format!("check witness: {}", page.display()),
                theme.failed(),
            ));
        }
        if !d.nodes.is_empty() {
            let medians: Vec<String> = d
                .nodes
                .iter()
                .map(|n| {
                    let p99 = n
                        .median_p99_us
                        .map_or(String::new(), |v| format!(" (p99 {v} us)"));
                    format!(
                        "{}-{} {}{p99}",
                        n.role.name(),
                        n.node,
                        fmt_ops(n.median_ops_per_s)
                    )
                })
                .collect();
            lines.push(Line::from(format!("median ops/s: {}", medians.join("  "))));
        }
        let profiles: Vec<String> = d.profiles.iter().map(|p| p.name()).collect();
        lines.push(Line::from(if profiles.is_empty() {
            "profiles: none".to_string()
        } else {
            format!("profiles: {}  (Enter opens)", profiles.join(", "))
        }));
        if let Some(p) = &d.problem {
            lines.push(Line::styled(p.clone(), theme.dim()));
        }
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" detail ")),
        text_area,
    );
    let series: &[u64] = app.detail.as_ref().map_or(&[], |d| &d.ops_series);
    let max = series.iter().copied().max().unwrap_or(0);
    let title = if series.is_empty() {
        " server ops/s: no time series ".to_string()
    } else {
        format!(" server ops/s per second (max {}) ", fmt_ops(max as f64))
    };
    frame.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(title))
            .data(series)
            .style(theme.header()),
        chart_area,
    );
}
