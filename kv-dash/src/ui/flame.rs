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
use crate::cost::{fmt_ns, ProcessCost};
use crate::flame::TopBy;
use crate::functions::{change_margin, strip_generics, FEW_SAMPLES};

/// Height of the bottom table (top-N or diff), borders and header included.
const TABLE_H: u16 = TABLE_ROWS as u16 + 3;

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [list_area, main] =
        Layout::horizontal([Constraint::Length(22), Constraint::Min(10)]).areas(area);
    render_processes(app, theme, frame, list_area);
    match &app.flame {
        Some(f)
            if f.group.is_some() || app.detail.as_ref().is_some_and(|d| d.run_id == f.run_id) =>
        {
            // The graph gets at least two thirds of a small screen.
            let table_h = if main.height >= 30 {
                TABLE_H
            } else if main.height > 12 {
                (main.height / 3).min(TABLE_H)
            } else {
                0
            };
            let [info, graph, table] = Layout::vertical([
                Constraint::Length(info_height(f)),
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
        // The whole id: the pane is as wide as one, without the padding.
        Some(r) if r.run_id.chars().count() + 4 > area.width as usize => r.run_id.clone(),
        Some(r) => format!(" {} ", r.run_id),
        None => " processes ".to_string(),
    };
    frame.render_widget(
        List::new(items).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

fn render_info(f: &FlameView, theme: &Theme, frame: &mut Frame, area: Rect) {
    let g = &f.graph;
    let path = g.path(f.zoom);
    // A long path (stacks run 100 frames deep) keeps its ends.
    let names: Vec<String> = path
        .iter()
        .map(|&id| fit(&strip_generics(&g.frame(id).name), 48))
        .collect();
    let crumbs = if names.len() <= 4 {
        names.join(" › ")
    } else {
        format!(
            "{} › {} › … {} frames … › {}",
            names[0],
            names[1],
            names.len() - 3,
            names[names.len() - 1]
        )
    };
    let n = g.total_samples();
    let first = vec![
        Span::styled(format!("{} ", f.process), theme.header()),
        Span::raw(format!("{n} samples  zoom: {crumbs}")),
    ];
    let notes = info_notes(f, theme);
    let sel = g.frame(f.selected);
    let mut second = vec![Span::raw(format!(
        "selected: {}  total {:.1}%  self {:.1}%",
        sel.name,
        g.percent(sel.total),
        g.percent(sel.self_samples),
    ))];
    if let Some(d) = &f.diff {
        let delta = d.frame_deltas[f.selected];
        second.push(Span::styled(
            format!("  {delta:+.1} points since {}", d.other),
            theme.change(delta, false),
        ));
        second.push(Span::styled("  (bars: red grew, blue shrank)", theme.dim()));
        let gone: Vec<String> = d
            .vanished
            .iter()
            .filter(|v| v.under == f.selected)
            .take(3)
            .map(|v| format!("{} -{:.1}", v.name, v.loss))
            .collect();
        if !gone.is_empty() {
            second.push(Span::styled(
                format!("  only in A here: {}", gone.join(", ")),
                theme.marked(),
            ));
        }
    }
    let mut counts = format!("  ({} samples", sel.total);
    if let Some(ns) = f.cost.and_then(|c| c.ns_per_op(sel.total, n)) {
        counts += &format!(", {}/op", fmt_ns(ns));
    }
    counts.push(')');
    second.push(Span::raw(counts));
    let mut lines = vec![Line::from(first)];
    if !notes.is_empty() {
        lines.push(Line::from(notes));
    }
    lines.push(Line::from(second));
    frame.render_widget(Paragraph::new(lines), area);
}

/// Rows the info lines take: a second line when there is something to note.
fn info_height(f: &FlameView) -> u16 {
    if f.search.is_some() || f.cost.is_some() || f.graph.total_samples() < FEW_SAMPLES {
        3
    } else {
        2
    }
}

/// The line under the zoom path: too few samples, cost per op, search
/// share (kept in view whatever the zoom).
fn info_notes(f: &FlameView, theme: &Theme) -> Vec<Span<'static>> {
    let g = &f.graph;
    let n = g.total_samples();
    let mut notes = Vec::new();
    if let Some(s) = &f.search {
        let mut text = format!(
            "search '{}': {:.1}% of samples ({} frames)",
            s.pattern, s.share, s.frames
        );
        if f.zoom != g.root() {
            let within = g.matched_within(s, f.zoom);
            let zt = g.frame(f.zoom).total.max(1);
            text += &format!(", {:.1}% of this zoom", within as f64 * 100.0 / zt as f64);
        }
        if let Some(i) = f.match_at {
            text += &format!("  match {}/{} (n/N)", i + 1, s.frames);
        }
        notes.push(Span::styled(text, theme.frame_match()));
        notes.push(Span::raw("  "));
    }
    if n < FEW_SAMPLES {
        notes.push(Span::styled(
            format!(
                "⚠ only {n} samples: a share is ±{:.1} points  ",
                change_margin(n / 2, n, n / 2, n) / 2f64.sqrt()
            ),
            theme.failed(),
        ));
    }
    if let Some(c) = &f.cost {
        notes.push(Span::styled(
            format!(
                "{:.1} CPU-s for {:.0} ops: {}/op ({:.0} samples per CPU-s)",
                c.cpu_s,
                c.ops,
                c.ns_per_op(n, n).map(fmt_ns).unwrap_or_default(),
                c.samples_per_cpu_s(n)
            ),
            theme.dim(),
        ));
    }
    notes
}

/// Draws the bars straight into the buffer: one row per depth below the
/// zoomed frame, widths proportional to samples, scrolled to keep the
/// selection on screen. When zoomed, the first row stands for the frames
/// above (thread start, runtime), folded into one label.
fn render_graph(f: &FlameView, theme: &Theme, focused: bool, buf: &mut Buffer, area: Rect) {
    let g = &f.graph;
    f.graph_area.set(area);
    if area.height == 0 || area.width == 0 {
        return;
    }
    let mut top = area.y;
    if f.folded_row() {
        let above = g.path(f.zoom);
        // The thread's name, then how many frames lead down to the zoom.
        let thread = above
            .get(1)
            .map(|&id| g.frame(id).name.as_str())
            .unwrap_or("all");
        let hidden = above.len().saturating_sub(2);
        let label =
            format!("▲ {thread} … {hidden} frames above (Backspace: one out, z: whole graph)");
        buf.set_stringn(
            area.x,
            top,
            fit(&label, area.width as usize),
            area.width as usize,
            theme.dim(),
        );
        top += 1;
    }
    let rows = (area.y + area.height - top) as usize;
    if rows == 0 {
        return;
    }
    // Keep the selection visible.
    let sel = f.rel_depth(f.selected);
    let mut scroll = if f.scroll_zoom.replace(f.zoom) == f.zoom {
        f.scroll.get()
    } else {
        0
    };
    if sel < scroll {
        scroll = sel;
    } else if sel >= scroll + rows {
        scroll = sel + 1 - rows;
    }
    f.scroll.set(scroll);
    for bar in g.layout(f.zoom, area.width, scroll + rows) {
        if bar.depth < scroll {
            continue;
        }
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
        let y = top + (bar.depth - scroll) as u16;
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
    let top = f.graph.top_by(app.top_by, f.table_offset + n, f.grouping);
    let total = f.graph.total_samples();
    let rows: Vec<Row> = top
        .iter()
        .skip(f.table_offset)
        .map(|s| {
            let matched = f
                .search
                .as_ref()
                .is_some_and(|q| s.name.to_lowercase().contains(&q.pattern.to_lowercase()));
            let samples = match app.top_by {
                TopBy::Self_ => s.self_samples,
                TopBy::Total => s.total_samples,
            };
            let ns = f
                .cost
                .and_then(|c| c.ns_per_op(samples, total))
                .map(fmt_ns)
                .unwrap_or_else(|| "-".into());
            let row = Row::new(vec![
                Cell::from(format!("{samples:>7}")),
                Cell::from(format!("{ns:>7}")),
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
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(vec!["SAMPLES", "NS/OP", "SELF", "TOTAL", "FUNCTION"]).style(theme.header()))
    .block(Block::default().borders(Borders::ALL).title(format!(
        " top {n} by {}{} · {} (t self/total; i inlined; d diff) ",
        app.top_by.label(),
        scrolled(f, n),
        f.grouping.label()
    )));
    frame.render_widget(table, area);
}

fn render_diff(f: &FlameView, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(diff) = &f.diff else { return };
    let n = area.height.saturating_sub(3) as usize;
    let (na, nb) = (diff.samples_a, f.graph.total_samples());
    let rows: Vec<Row> = diff
        .rows
        .iter()
        .skip(f.table_offset)
        .take(n)
        .map(|d| {
            let delta = d.total_delta();
            // `~`: the change is within the sampling noise (grey).
            let (mark, style) = if d.noise {
                ("~", theme.dim())
            } else {
                (" ", theme.change(delta, false))
            };
            let ns = |c: Option<ProcessCost>, k: u64, n: u64| {
                c.and_then(|c| c.ns_per_op(k, n))
                    .map(fmt_ns)
                    .unwrap_or_else(|| "-".into())
            };
            let cost = format!(
                "{} → {}",
                ns(diff.cost_a, d.total_samples_a, na),
                ns(f.cost, d.total_samples_b, nb)
            );
            Row::new(vec![
                Cell::from(format!("{:>6.1}%", d.total_percent_a)),
                Cell::from(format!("{:>6.1}%", d.total_percent_b)),
                Cell::from(format!("{delta:>+7.1}{mark}")).style(style),
                Cell::from(format!("{:>+7.1}", d.self_delta())).style(if d.noise {
                    theme.dim()
                } else {
                    theme.change(d.self_delta(), false)
                }),
                Cell::from(format!("{:>5}/{:<5}", d.total_samples_a, d.total_samples_b)),
                Cell::from(cost),
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
            Constraint::Length(11),
            Constraint::Length(17),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(vec![
            "TOTAL A",
            "TOTAL B",
            "Δ TOTAL",
            "Δ SELF",
            "SAMPLES",
            "NS/OP A → B",
            "FUNCTION",
        ])
        .style(theme.header()),
    )
    .block(Block::default().borders(Borders::ALL).title(format!(
        " diff: A = {} , B = {}{} · {} vs {} samples{} · points, ~ noise (d closes) ",
        diff.other,
        f.run_id,
        scrolled(f, n),
        na,
        nb,
        if na.min(nb) < FEW_SAMPLES {
            " ⚠ few"
        } else {
            ""
        }
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
