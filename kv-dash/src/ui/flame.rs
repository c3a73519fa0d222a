//! The Flamegraph view: the run's profiled processes, the open process's
//! flamegraph (top-down, zoomable, search highlighted) and a top-N or
//! differential table.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, List, ListItem, Paragraph, Row, Table};
use ratatui::Frame;

use super::fit;
use super::theme::Theme;
use crate::app::{App, FlameFocus, FlameView, TABLE_ROWS};

/// Height of the bottom table (top-N or diff), borders and header included.
const TABLE_H: u16 = TABLE_ROWS as u16 + 3;

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [list_area, main] =
        Layout::horizontal([Constraint::Length(22), Constraint::Min(10)]).areas(area);
    render_processes(app, theme, frame, list_area);
    match &app.flame {
        Some(f) if app.detail.as_ref().is_some_and(|d| d.run_id == f.run_id) => {
            let table_h = if main.height > TABLE_H + 6 {
                TABLE_H
            } else {
                0
            };
            let [info, graph, table] = Layout::vertical([
                Constraint::Length(2),
                Constraint::Min(1),
                Constraint::Length(table_h),
            ])
            .areas(main);
            render_info(f, theme, frame, info);
            render_graph(
                f,
                theme,
                app.flame_focus == FlameFocus::Graph,
                frame.buffer_mut(),
                graph,
            );
            if table_h > 0 {
                match &f.diff {
                    Some(_) => render_diff(f, theme, frame, table),
                    None => render_top(app, f, theme, frame, table),
                }
            }
        }
        _ => {
            let msg = match app.selected_run() {
                Some(r) => format!("Run {}: pick a process and press Enter.", r.run_id),
                None => "No run selected.".to_string(),
            };
            frame.render_widget(
                Paragraph::new(msg)
                    .block(Block::default().borders(Borders::ALL).title(" flamegraph ")),
                main,
            );
        }
    }
}

fn render_processes(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let profiles = app
        .detail
        .as_ref()
        .map(|d| d.profiles.as_slice())
        .unwrap_or(&[]);
    let items: Vec<ListItem> = if profiles.is_empty() {
        vec![ListItem::new("(no profiles)").style(theme.dim())]
    } else {
        profiles
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let open = app.flame.as_ref().is_some_and(|f| {
                    f.process == p.name()
                        && Some(&f.run_id) == app.detail.as_ref().map(|d| &d.run_id)
                });
                let kinds = format!(
                    "{}{}{}",
                    if p.folded.is_some() { "f" } else { "-" },
                    if p.svg.is_some() { "s" } else { "-" },
                    if p.pb.is_some() { "p" } else { "-" }
                );
                let text = format!(
                    "{}{} {kinds}",
                    if open { "▶" } else { " " },
                    fit(&p.name(), 15)
                );
                let item = ListItem::new(text);
                if i == app.process_selected && app.flame_focus == FlameFocus::Processes {
                    item.style(theme.selected_row())
                } else {
                    item
                }
            })
            .collect()
    };
    let title = match app.selected_run() {
        Some(r) => format!(" {} ", fit(&r.run_id, 18)),
        None => " processes ".to_string(),
    };
    frame.render_widget(
        List::new(items).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

fn render_info(f: &FlameView, theme: &Theme, frame: &mut Frame, area: Rect) {
    let g = &f.graph;
    let crumbs: Vec<String> = g
        .path(f.zoom)
        .iter()
        .map(|&id| g.frame(id).name.clone())
        .collect();
    let sel = g.frame(f.selected);
    let mut first = vec![
        Span::styled(format!("{} ", f.process), theme.header()),
        Span::raw(format!(
            "{} samples  zoom: {}",
            g.total_samples(),
            crumbs.join(" › ")
        )),
    ];
    if let Some(s) = &f.search {
        first.push(Span::styled(
            format!(
                "  search '{}': {:.1}% of samples ({} frames)",
                s.pattern, s.share, s.frames
            ),
            theme.frame_match(),
        ));
    }
    let mut second = vec![Span::raw(format!(
        "selected: {}  total {:.1}%  self {:.1}%",
        sel.name,
        g.percent(sel.total),
        g.percent(sel.self_samples)
    ))];
    if let Some(d) = &f.diff {
        let delta = d.frame_deltas[f.selected];
        second.push(Span::styled(
            format!("  {delta:+.1} points since {}", d.other),
            theme.change(delta, false),
        ));
        second.push(Span::styled("  (bars: red grew, blue shrank)", theme.dim()));
    }
    let second = Line::from(second);
    frame.render_widget(Paragraph::new(vec![Line::from(first), second]), area);
}

/// Draws the bars straight into the buffer: one row per depth below the
/// zoomed frame, widths proportional to samples.
fn render_graph(f: &FlameView, theme: &Theme, focused: bool, buf: &mut Buffer, area: Rect) {
    let g = &f.graph;
    for bar in g.layout(f.zoom, area.width, area.height as usize) {
        let frame = g.frame(bar.frame);
        let matched = f.search.as_ref().is_some_and(|s| s.matched[bar.frame]);
        let style: Style = if focused && bar.frame == f.selected {
            theme.frame_selected()
        } else if matched {
            theme.frame_match()
        } else if let Some(d) = &f.diff {
            theme.frame_change(d.frame_deltas[bar.frame])
        } else {
            theme.frame(&frame.name)
        };
        let w = bar.width as usize;
        // A one-column gap on the right keeps neighbours apart without color.
        let label = if w >= 2 {
            format!("{:<width$}", fit(&frame.name, w - 1), width = w - 1)
        } else {
            String::new()
        };
        let x = area.x + bar.x;
        let y = area.y + bar.depth as u16;
        buf.set_stringn(x, y, &label, w, style);
        if w >= 1 {
            let gap_style = if theme.color { Style::new() } else { style };
            let last = if w >= 2 { " " } else { "▏" };
            buf.set_stringn(
                x + bar.width - 1,
                y,
                last,
                1,
                if w >= 2 { gap_style } else { style },
            );
        }
    }
}

fn render_top(app: &App, f: &FlameView, theme: &Theme, frame: &mut Frame, area: Rect) {
    let n = area.height.saturating_sub(3) as usize;
    let top = f.graph.top(app.top_by, f.table_offset + n);
    let rows: Vec<Row> = top
        .iter()
        .skip(f.table_offset)
        .map(|s| {
            let matched = f
                .search
                .as_ref()
                .is_some_and(|q| s.name.to_lowercase().contains(&q.pattern.to_lowercase()));
            let row = Row::new(vec![
                Cell::from(format!("{:>6.1}%", s.self_percent)),
                Cell::from(format!("{:>6.1}%", s.total_percent)),
                Cell::from(s.name.clone()),
            ]);
            if matched {
                row.style(theme.frame_match())
            } else {
                row
            }
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(vec!["SELF", "TOTAL", "FUNCTION"]).style(theme.header()))
    .block(Block::default().borders(Borders::ALL).title(format!(
        " top {n} by {}{} (t toggles; d diff) ",
        app.top_by.label(),
        scrolled(f, n)
    )));
    frame.render_widget(table, area);
}

fn render_diff(f: &FlameView, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(diff) = &f.diff else { return };
    let n = area.height.saturating_sub(3) as usize;
    let rows: Vec<Row> = diff
        .rows
        .iter()
        .skip(f.table_offset)
        .take(n)
        .map(|d| {
            let delta = d.total_delta();
            Row::new(vec![
                Cell::from(format!("{:>6.1}%", d.total_percent_a)),
                Cell::from(format!("{:>6.1}%", d.total_percent_b)),
                Cell::from(format!("{delta:>+7.1}")).style(theme.change(delta, false)),
                Cell::from(format!("{:>+7.1}", d.self_delta()))
                    .style(theme.change(d.self_delta(), false)),
                Cell::from(d.name.clone()),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(vec!["TOTAL A", "TOTAL B", "Δ TOTAL", "Δ SELF", "FUNCTION"]).style(theme.header()),
    )
    .block(Block::default().borders(Borders::ALL).title(format!(
        " diff: A = {} , B = {}{} (percentage points; d closes) ",
        diff.other,
        f.run_id,
        scrolled(f, n)
    )));
    frame.render_widget(table, area);
}

/// `, 8-14 of 40 (PgUp/PgDn)` when the table has more rows than `shown`.
fn scrolled(f: &FlameView, shown: usize) -> String {
    let len = f.table_len();
    if len <= shown {
        return String::new();
    }
    let last = (f.table_offset + shown).min(len);
    format!(", {}-{last} of {len} (PgUp/PgDn)", f.table_offset + 1)
}
