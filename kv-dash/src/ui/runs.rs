//! The Runs view: the table of runs and the selected run's detail pane.

use kv_core::runlog::RunRecord;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use super::theme::Theme;
use crate::app::App;
use crate::browse::{self, fmt_bytes, fmt_ops, fmt_opt, Column};

/// Table columns, in display order; when the screen is narrow they give
/// way as [`browse::fit_runs`] says (the note is cut, columns dropped),
/// never a number, id or status cut.
const COLUMNS: [Column; 9] = [
    Column::Started,
    Column::RunId,
    Column::Commit,
    Column::Config,
    Column::Workload,
    Column::Status,
    Column::TotalOps,
    Column::P99,
    Column::Note,
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
    let on_screen: Vec<usize> = app
        .visible
        .iter()
        .copied()
        .skip(offset)
        .take(inner_rows)
        .collect();
    let title = |c: Column, t: &'static str| {
        let mut t = match c {
            Column::Started => "STARTED".to_string(),
            _ => t.to_string(),
        };
        if c == app.sort.column {
            t.push(if app.sort.descending { '▼' } else { '▲' });
        }
        t
    };
    // Inside the borders, after the mark column and its gap.
    let width = (area.width as usize).saturating_sub(4);
    let fitted = browse::fit_runs(&app.runs, &on_screen, &COLUMNS, title, width, 1);
    let header = Row::new(
        std::iter::once(Cell::from(" "))
            .chain(fitted.iter().map(|(_, f)| Cell::from(f.title.clone()))),
    )
    .style(theme.header());
    let rows: Vec<Row> = on_screen
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let r = &app.runs[i];
            let mark = if app.is_marked(&r.run_id) { "*" } else { " " };
            let cells = std::iter::once(Cell::from(mark).style(theme.marked())).chain(
                fitted.iter().map(|(c, f)| {
                    let text = &f.cells[k];
                    let text = if f.right {
                        format!("{text:>w$}", w = f.width)
                    } else {
                        text.clone()
                    };
                    let cell = Cell::from(text);
                    if *c == Column::Status && !r.status.is_ok() {
                        cell.style(theme.failed())
                    } else {
                        cell
                    }
                }),
            );
            let row = Row::new(cells);
            if offset + k == app.selected {
                row.style(theme.selected_row())
            } else {
                row
            }
        })
        .collect();
    let widths = std::iter::once(Constraint::Length(1)).chain(
        fitted
            .iter()
            .map(|(_, f)| Constraint::Length(f.width as u16)),
    );
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

/// Below this width the detail pane takes the whole width (no chart), so
/// its lines wrap less.
const CHART_MIN_WIDTH: u16 = 100;

fn render_detail(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(r) = app.selected_run() else {
        frame.render_widget(
            Block::default().borders(Borders::ALL).title(" detail "),
            area,
        );
        return;
    };
    let (text_area, chart_area) = if area.width >= CHART_MIN_WIDTH {
        let [t, c] = Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
            .areas(area);
        (t, Some(c))
    } else {
        (area, None)
    };
    let width = text_area.width.saturating_sub(2) as usize;
    let lines = detail_lines(app, r, theme, width);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" detail ")),
        text_area,
    );
    if let Some(chart_area) = chart_area {
        render_sparkline(app, theme, frame, chart_area);
    }
}

/// The detail pane's lines: groups of items (a label and its figure),
/// each group flowed to `width` so a narrow pane wraps between two
/// figures instead of cutting one.
fn detail_lines(app: &App, r: &RunRecord, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let o = |v: Option<u32>| fmt_opt(v, |v| v.to_string());
    let status = match &r.status {
        kv_core::runlog::RunStatus::Ok => Span::raw("ok"),
        s => Span::styled(
            browse::printable(&s.to_string().to_uppercase()),
            theme.failed(),
        ),
    };
    let mut lines = flow_spans(
        vec![
            Span::styled(r.run_id.clone(), theme.header()),
            Span::raw(r.started_at.clone()),
            status,
        ],
        width,
    );
    let group = |lines: &mut Vec<Line<'static>>, items: Vec<String>| {
        for l in crate::fit::flow(&items, "  ", width) {
            lines.push(Line::from(l));
        }
    };
    group(
        &mut lines,
        vec![
            format!(
                "commit {}{}",
                r.git_commit,
                if r.git_dirty == Some(true) {
                    " (dirty)"
                } else {
                    ""
                }
            ),
            format!("backend {}", r.backend),
            format!("hosts {}", browse::printable(&r.hosts)),
            format!(
                "duration {}",
                fmt_opt(r.duration_s, |v| format!("{v:.0} s"))
            ),
        ],
    );
    group(
        &mut lines,
        vec![
            format!("servers {}", o(r.servers)),
            format!("clients {}", o(r.clients)),
            format!(
                "threads {}",
                if r.threads.is_empty() {
                    "-".to_string()
                } else {
                    r.threads.to_string()
                }
            ),
            format!("connections {}", o(r.connections)),
            format!("batch {}", o(r.batch)),
            format!("window {}", o(r.window)),
        ],
    );
    group(
        &mut lines,
        vec![
            format!("workload {}", browse::printable(&r.workload)),
            format!("theta {}", fmt_opt(r.theta, |v| v.to_string())),
            format!("preload {}", fmt_opt(r.preload, |v| v.to_string())),
            format!("seed {}", fmt_opt(r.seed, |v| v.to_string())),
        ],
    );
    group(
        &mut lines,
        vec![
            format!("total {} ops/s", fmt_opt(r.total_ops_per_s, fmt_ops)),
            format!("client {} ops/s", fmt_opt(r.client_ops_per_s, fmt_ops)),
            format!("steady {} ops/s", fmt_opt(r.steady_ops_per_s, fmt_ops)),
            format!(
                "latency p50 {} / p99 {} / p99.9 {} us",
                fmt_opt(r.p50_us, |v| v.to_string()),
                fmt_opt(r.p99_us, |v| v.to_string()),
                fmt_opt(r.p999_us, |v| v.to_string()),
            ),
        ],
    );
    // The run's series right after its figures: on a small screen the
    // pane's last lines are the ones that do not fit.
    if let Some(series) = app.detail.as_ref().and_then(|d| d.series.as_ref()) {
        group(&mut lines, series.clone());
    }
    group(
        &mut lines,
        vec![
            format!(
                "ops generated {} completed {}",
                fmt_opt(r.generated_ops, |v| fmt_ops(v as f64)),
                fmt_opt(r.completed_ops, |v| fmt_ops(v as f64)),
            ),
            format!(
                "cpu server {}% client {}%",
                fmt_opt(r.server_cpu_percent, |v| format!("{v:.0}")),
                fmt_opt(r.client_cpu_percent, |v| format!("{v:.0}")),
            ),
            format!(
                "rss server {} client {}",
                fmt_opt(r.server_peak_rss_bytes, |v| fmt_bytes(v as f64)),
                fmt_opt(r.client_peak_rss_bytes, |v| fmt_bytes(v as f64)),
            ),
            format!("net {}/s", fmt_opt(r.net_bytes_per_s, fmt_bytes)),
        ],
    );
    if !r.note.is_empty() || !r.tag.is_empty() {
        let item = |name: &str, v: &str| {
            if v.is_empty() {
                String::new()
            } else {
                format!("{name}: {}", browse::printable(v))
            }
        };
        group(&mut lines, vec![item("note", &r.note), item("tag", &r.tag)]);
    }
    if let Some(d) = &app.detail {
        for page in &d.witnesses {
            lines.push(Line::styled(
                format!("check witness: {}", page.display()),
                theme.failed(),
            ));
        }
        if !d.nodes.is_empty() {
            let mut items = vec!["median ops/s:".to_string()];
            items.extend(d.nodes.iter().map(|n| {
                let p99 = n
                    .median_p99_us
                    .map_or(String::new(), |v| format!(" (p99 {v} us)"));
                format!(
                    "{}-{} {}{p99}",
                    n.role.name(),
                    n.node,
                    fmt_ops(n.median_ops_per_s)
                )
            }));
            let mut flowed = crate::fit::flow(&items, "  ", width).into_iter();
            // The label and the first node share a line.
            if let Some(first) = flowed.next() {
                lines.push(Line::from(first.replacen(
                    "median ops/s:  ",
                    "median ops/s: ",
                    1,
                )));
            }
            lines.extend(flowed.map(Line::from));
        }
        let profiles: Vec<String> = d.profiles.iter().map(|p| p.name()).collect();
        if profiles.is_empty() {
            lines.push(Line::from("profiles: none"));
        } else {
            let mut items = vec![format!("profiles: {}", profiles.join(", "))];
            items.push("(Enter opens)".into());
            group(&mut lines, items);
        }
        if let Some(p) = &d.problem {
            lines.push(Line::styled(p.clone(), theme.dim()));
        }
    }
    lines
}

/// Spans flowed into lines of `width` like [`crate::fit::flow`], styles kept.
fn flow_spans(items: Vec<Span<'static>>, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut line: Vec<Span<'static>> = Vec::new();
    let mut len = 0;
    for item in items {
        let n = item.content.chars().count();
        if !line.is_empty() && len + 2 + n > width {
            lines.push(Line::from(std::mem::take(&mut line)));
            len = 0;
        }
        if !line.is_empty() {
            line.push(Span::raw("  "));
            len += 2;
        }
        len += n;
        line.push(item);
    }
    if !line.is_empty() {
        lines.push(Line::from(line));
    }
    lines
}

fn render_sparkline(app: &App, theme: &Theme, frame: &mut Frame, chart_area: Rect) {
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
