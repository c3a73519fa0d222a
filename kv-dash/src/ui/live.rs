//! The live dashboard: header (run, config, gauge, totals), node table,
//! charts or per-node sparklines, the selected node's detail. Draws what
//! [`LiveApp::shown`] holds; changes nothing. Each node's row starts with a
//! swatch of its line's color in the throughput chart: the chart's legend
//! names only the total, so it fits whatever the node count.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Dataset, Gauge, GraphType, Paragraph, Row, Sparkline, Table,
    TableState,
};
use ratatui::Frame;

use super::theme::{Theme, SERIES_COLORS};
use super::{fit, help};
use crate::browse::{fmt_bytes, fmt_ops};
use crate::input::LIVE_KEYS;
use crate::live::state::{status_word, LiveApp, LiveData, LiveView, NodeState, Status};
use kv_core::stats::Role;

/// Below this the screen shows a notice instead of a squashed dashboard.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 20;

/// Seconds of history the charts show (the latest ones).
const CHART_SECS: usize = 300;

/// The swatch before a node's name: its line in the throughput chart.
pub const SWATCH: &str = "■ ";

/// The chart draws every node when the colors tell them apart, else only
/// the selected one (the Per node view has them all).
fn charted(data: &LiveData, theme: &Theme, i: usize, selected: usize) -> bool {
    theme.color && (data.nodes.len() <= SERIES_COLORS || i == selected)
}

/// Rows of the table, detail and chart areas for `avail` rows: the table
/// whole when it fits beside a readable chart, the detail pane shrinks
/// first.
fn heights(nodes: usize, avail: u16) -> (u16, u16) {
    const CHART_MIN: u16 = 8;
    const DETAIL_FULL: u16 = 6;
    let table_full = nodes as u16 + 3;
    let rest = avail.saturating_sub(table_full + CHART_MIN);
    let detail = match rest {
        r if r >= DETAIL_FULL => DETAIL_FULL,
        r if r >= 3 => r,
        _ => 0,
    };
    let table = table_full
        .min(avail.saturating_sub(detail + CHART_MIN))
        .max(4);
    (table, detail)
}

pub fn render(app: &LiveApp, frame: &mut Frame) {
    let theme = Theme { color: app.color };
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}×{}; kv-dash live needs at least {MIN_WIDTH}×{MIN_HEIGHT} (q quits)",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(msg).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let data = app.shown();
    let (table_h, detail_h) = heights(data.nodes.len(), area.height - 4);
    let [header, table, body, detail, status] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(table_h),
        Constraint::Min(4),
        Constraint::Length(detail_h),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(app, data, &theme, frame, header);
    render_table(app, data, &theme, frame, table);
    match app.view {
        LiveView::Overview => render_charts(app, data, &theme, frame, body),
        LiveView::Nodes => render_sparklines(app, data, &theme, frame, body),
    }
    render_detail(app, data, &theme, frame, detail);
    let hints = "↑↓ select  Tab view  p pause  ? help  q quit (the run keeps going)";
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(hints, theme.dim()))),
        status,
    );
    if app.show_help {
        help::render(&theme, frame, area, LIVE_KEYS);
    }
}

fn render_header(app: &LiveApp, data: &LiveData, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [title, gauge, totals] = Layout::vertical([Constraint::Length(1); 3]).areas(area);
    let mut tail = Vec::new();
    super::push_tabs(
        &mut tail,
        theme,
        [LiveView::Overview, LiveView::Nodes].map(|v| (v.title(), v == app.view)),
    );
    if app.paused() {
        tail.push(Span::styled("  PAUSED (p resumes)", theme.marked()));
    }
    let mut spans = vec![
        Span::styled(" kv-dash live ", theme.header()),
        Span::raw(format!(" run {}  ", app.run.run_id)),
    ];
    // The config gets what is left, in whole comma-separated parts.
    let used: usize = spans.iter().chain(&tail).map(Span::width).sum();
    let config = whole_parts(&app.run.config, (title.width as usize).saturating_sub(used));
    spans.push(Span::styled(config, theme.dim()));
    spans.extend(tail);
    frame.render_widget(Paragraph::new(Line::from(spans)), title);

    let elapsed = data.run_elapsed().map(|e| e.as_secs_f64());
    if let Some(over) = &data.over {
        let at = elapsed.map_or(String::new(), |e| format!(" after {e:.0} s of load"));
        frame.render_widget(
            Paragraph::new(format!("■ {}{at}; q quits", over.text())).style(theme.marked()),
            gauge,
        );
    } else if elapsed.is_none() {
        let starting = data.count(Status::Starting);
        frame.render_widget(
            Paragraph::new(format!(
                "starting: no client has answered yet ({starting} starting, up to {:.0} s)",
                data.ready_timeout.as_secs_f64()
            ))
            .style(theme.dim()),
            gauge,
        );
    }
    let elapsed = elapsed.unwrap_or(0.0);
    match app.run.total {
        _ if data.over.is_some() || data.run_elapsed().is_none() => {}
        Some(total) => {
            let total = total.as_secs_f64();
            let ratio = (elapsed / total).clamp(0.0, 1.0);
            frame.render_widget(
                Gauge::default()
                    .ratio(ratio)
                    .label(format!(
                        "{elapsed:.0} s / {total:.0} s ({:.0}%)",
                        ratio * 100.0
                    ))
                    .gauge_style(theme.gauge())
                    .use_unicode(true),
                gauge,
            );
        }
        None => frame.render_widget(
            Paragraph::new(format!(
                "elapsed {elapsed:.0} s (total unknown: --secs sets it)"
            )),
            gauge,
        ),
    }

    let mut spans = vec![
        Span::styled(
            format!("total {} ops/s", fmt_ops(data.total_ops_per_s())),
            theme.header(),
        ),
        Span::raw(format!(
            "  steady {} so far",
            data.steady.map_or("-".to_string(), fmt_ops)
        )),
        Span::raw(format!(
            "  nodes up {}/{}",
            data.nodes_up(),
            data.nodes.len()
        )),
    ];
    for s in [Status::Starting, Status::Finished] {
        let n = data.count(s);
        if n > 0 {
            spans.push(Span::raw(format!("  {} {n}", status_word(s))));
        }
    }
    let down = data.count(Status::Down);
    if down > 0 {
        spans.push(Span::styled(format!("  ✖ {down} DOWN"), theme.down()));
    }
    if let Some((p50, p99)) = data.client_latency() {
        spans.push(Span::raw(format!(
            "  latency since start p50 {p50} / p99 {p99} us"
        )));
    }
    // Whole figures only: a part that does not fit is left out, not cut.
    let mut room = totals.width as usize;
    spans.retain(|s| {
        let fits = s.width() <= room;
        if fits {
            room -= s.width();
        }
        fits
    });
    frame.render_widget(Paragraph::new(Line::from(spans)), totals);
}

/// The leading comma-separated parts of `text` that fit in `width`
/// (with `…` when some were left out): never half a figure.
fn whole_parts(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    for part in text.split(", ") {
        let next = if out.is_empty() {
            part.to_string()
        } else {
            format!("{out}, {part}")
        };
        if next.chars().count() + 2 > width {
            break;
        }
        out = next;
    }
    if width >= 1 {
        out.push('…');
    }
    out
}

fn rate_cell(n: &NodeState, f: impl Fn(&kv_core::stats::Rates) -> String) -> String {
    n.rates.as_ref().map_or("-".to_string(), f)
}

/// A node's status as the table shows it.
pub fn status_text(n: &NodeState) -> &'static str {
    match (n.status(), n.spec.role) {
        (Status::Down, _) => "✖ DOWN",
        (Status::Finished, Role::Server) => "✔ stopped",
        (Status::Finished, Role::Client) => "✔ finished",
        (Status::Up, _) => "● up",
        (Status::Starting, _) => "◌ starting",
        (Status::NoStats, _) => "no stats",
    }
}

fn status_cell(n: &NodeState, theme: &Theme) -> Cell<'static> {
    let style = match n.status() {
        Status::Down => theme.down(),
        Status::Up => theme.up(),
        _ => theme.dim(),
    };
    Cell::from(status_text(n)).style(style)
}

/// Columns by terminal width: full, without address, without get/put.
fn columns(width: u16) -> (bool, bool) {
    (width >= 124, width >= 100)
}

fn render_table(app: &LiveApp, data: &LiveData, theme: &Theme, frame: &mut Frame, area: Rect) {
    let (with_addr, with_get_put) = columns(area.width);
    // The process name (`server-node0`) carries the role; never cut.
    // With colors it follows the swatch of its chart line.
    let swatch = if theme.color {
        SWATCH.chars().count()
    } else {
        0
    };
    let name_width = data
        .nodes
        .iter()
        .map(|n| n.spec.name.chars().count() + swatch)
        .max()
        .unwrap_or(0)
        .max("PROCESS".len()) as u16;
    let mut header = vec!["PROCESS"];
    let mut widths = vec![Constraint::Length(name_width)];
    if with_addr {
        header.push("ADDRESS");
        widths.push(Constraint::Length(21));
    }
    header.push("OPS/S");
    widths.push(Constraint::Length(10));
    if with_get_put {
        header.extend(["GET/S", "PUT/S"]);
        widths.extend([Constraint::Length(10), Constraint::Length(10)]);
    }
    header.extend(["P50/P99 US", "CPU %", "RSS", "NET MB/S", "STATUS"]);
    widths.extend([
        Constraint::Length(12),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Min(10),
    ]);
    let rows: Vec<Row> = data
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let answering = n.rates.is_some();
            let name = if !theme.color {
                Line::from(n.spec.name.clone())
            } else if charted(data, theme, i, app.selected) {
                Line::from(vec![
                    Span::styled(SWATCH, theme.series(i)),
                    Span::raw(n.spec.name.clone()),
                ])
            } else {
                Line::from(format!("{:w$}{}", "", n.spec.name, w = swatch))
            };
            let mut cells = vec![Cell::from(name)];
            if with_addr {
                cells.push(Cell::from(fit(&n.spec.addr, 21)));
            }
            cells.push(Cell::from(rate_cell(n, |r| fmt_ops(r.ops_per_s()))));
            if with_get_put {
                cells.push(Cell::from(rate_cell(n, |r| fmt_ops(r.gets_per_s))));
                cells.push(Cell::from(rate_cell(n, |r| fmt_ops(r.puts_per_s))));
            }
            let latency = n
                .latest()
                .and_then(|s| s.recent_latency)
                .filter(|l| answering && l.count > 0)
                .map_or("-".to_string(), |l| format!("{}/{}", l.p50_us, l.p99_us));
            cells.push(Cell::from(latency));
            cells.push(Cell::from(rate_cell(n, |r| {
                format!("{:.0}", r.cpu_percent)
            })));
            let rss = n
                .latest()
                .filter(|_| answering)
                .map_or("-".to_string(), |s| fmt_bytes(s.process.rss_bytes as f64));
            cells.push(Cell::from(rss));
            cells.push(Cell::from(rate_cell(n, |r| {
                format!("{:.1}", r.net_bytes_per_s / 1e6)
            })));
            cells.push(status_cell(n, theme));
            let mut row = Row::new(cells);
            if n.status() == Status::Down {
                row = row.style(theme.down());
            }
            if i == app.selected {
                row = row.style(theme.selected_row());
            }
            row
        })
        .collect();
    let title = if theme.color {
        " nodes (■ its line in the chart; latency: clients, last second) "
    } else {
        " nodes (latency: clients, last second) "
    };
    // More nodes than rows: the table scrolls to keep the selected one.
    let mut state = TableState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(theme.header()))
            .block(Block::default().borders(Borders::ALL).title(title)),
        area,
        &mut state,
    );
}

/// Points of the last [`CHART_SECS`] seconds of a per-second series.
fn points(series: impl ExactSizeIterator<Item = f64>, end_s: u64) -> Vec<(f64, f64)> {
    let len = series.len() as u64;
    let skip = series.len().saturating_sub(CHART_SECS);
    series
        .enumerate()
        .skip(skip)
        .map(|(i, v)| ((end_s + 1 + i as u64 - len) as f64, v))
        .collect()
}

fn x_axis<'a>(data: &LiveData, theme: &Theme) -> Axis<'a> {
    let end = data.seconds as f64;
    let start = (end - CHART_SECS as f64).max(0.0);
    Axis::default()
        .bounds([start, end.max(start + 1.0)])
        .labels([format!("{start:.0} s"), format!("{end:.0} s")])
        .style(theme.dim())
}

fn render_charts(app: &LiveApp, data: &LiveData, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area);
    // Throughput: the total, and each node in its swatch's color (without
    // colors they cannot be told apart, so only the total: the Per node
    // view has them).
    let total = points(data.totals.iter().copied(), data.seconds);
    let per_node: Vec<(usize, Vec<(f64, f64)>)> = data
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| charted(data, theme, *i, app.selected))
        .map(|(i, n)| (i, points(n.ops_history.iter().copied(), data.seconds)))
        .collect();
    let max = total
        .iter()
        .chain(per_node.iter().flat_map(|(_, p)| p))
        .map(|p| p.1)
        .fold(0.0, f64::max);
    let mut sets = vec![Dataset::default()
        .name("total")
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(theme.header())
        .data(&total)];
    // Unnamed: the table's swatches are their legend.
    for (i, pts) in &per_node {
        let i = *i;
        sets.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(theme.series(i))
                .data(pts),
        );
    }
    let y_max = (max * 1.1).max(1.0);
    let title = match (theme.color, per_node.as_slice()) {
        (false, _) => " ops/s per second: total (Tab: per node) ".to_string(),
        (true, [(i, _)]) if data.nodes.len() > 1 => {
            format!(
                " ops/s per second: total and ■ {} ",
                data.nodes[*i].spec.name
            )
        }
        _ => " ops/s per second: total and ■ per node ".to_string(),
    };
    frame.render_widget(
        Chart::new(sets)
            .block(Block::default().borders(Borders::ALL).title(title))
            .x_axis(x_axis(data, theme))
            .y_axis(
                Axis::default()
                    .bounds([0.0, y_max])
                    .labels(["0".to_string(), fmt_ops(y_max)])
                    .style(theme.dim()),
            )
            .legend_position(Some(ratatui::widgets::LegendPosition::TopLeft)),
        left,
    );

    let p50 = points(data.latency.iter().map(|l| l.0 as f64), data.seconds);
    let p99 = points(data.latency.iter().map(|l| l.1 as f64), data.seconds);
    let (p50, p99): (Vec<_>, Vec<_>) = (
        p50.into_iter().filter(|p| p.1 > 0.0).collect(),
        p99.into_iter().filter(|p| p.1 > 0.0).collect(),
    );
    let y_max = (p99.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1).max(1.0);
    let sets = vec![
        Dataset::default()
            .name("p99")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.series(1))
            .data(&p99),
        Dataset::default()
            .name("p50")
            .marker(Marker::Dot)
            .graph_type(GraphType::Line)
            .style(theme.series(0))
            .data(&p50),
    ];
    frame.render_widget(
        Chart::new(sets)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" client latency us (worst client, each second) "),
            )
            .x_axis(x_axis(data, theme))
            .y_axis(
                Axis::default()
                    .bounds([0.0, y_max])
                    .labels(["0".to_string(), format!("{y_max:.0}")])
                    .style(theme.dim()),
            )
            .legend_position(Some(ratatui::widgets::LegendPosition::TopLeft)),
        right,
    );
}

fn render_sparklines(app: &LiveApp, data: &LiveData, theme: &Theme, frame: &mut Frame, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" ops/s per second, per node (latest on the right) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Keep the selected node visible when there are more nodes than rows.
    let rows = inner.height as usize;
    let first = app.selected.saturating_sub(rows.saturating_sub(1));
    for (row, (i, n)) in data
        .nodes
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .enumerate()
    {
        let y = inner.y + row as u16;
        let [label, spark, now] = Layout::horizontal([
            Constraint::Length(14),
            Constraint::Min(10),
            Constraint::Length(22),
        ])
        .areas(Rect {
            y,
            height: 1,
            ..inner
        });
        let style = if i == app.selected {
            theme.selected_row()
        } else {
            Style::new()
        };
        frame.render_widget(
            Paragraph::new(format!("{:<13}", n.spec.name)).style(style),
            label,
        );
        let width = spark.width as usize;
        let series: Vec<u64> = n
            .ops_history
            .iter()
            .skip(n.ops_history.len().saturating_sub(width))
            .map(|v| v.max(0.0) as u64)
            .collect();
        frame.render_widget(
            Sparkline::default().data(&series).style(theme.series(i)),
            spark,
        );
        let text = match n.status() {
            Status::Up => Span::raw(format!(" {} ops/s", fmt_ops(n.ops_per_s()))),
            Status::Down => Span::styled(" ✖ DOWN", theme.down()),
            _ => Span::styled(format!(" {}", status_text(n)), theme.dim()),
        };
        frame.render_widget(Paragraph::new(Line::from(text)), now);
    }
}

fn render_detail(app: &LiveApp, data: &LiveData, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(n) = data.nodes.get(app.selected) else {
        return;
    };
    let title = format!(" {} at {} ", n.spec.name, n.spec.addr);
    let mut lines = Vec::new();
    let why = |e: &str| fit(e, area.width.saturating_sub(16) as usize);
    match (n.status(), n.error()) {
        (Status::Down, Some(e)) => lines.push(Line::from(Span::styled(
            format!("down: {}", why(e)),
            theme.down(),
        ))),
        (Status::Starting, Some(e)) => lines.push(Line::from(Span::styled(
            format!("starting; last try: {}", why(e)),
            theme.dim(),
        ))),
        _ => {}
    }
    match n.latest() {
        Some(s) => {
            lines.push(Line::from(format!(
                "pid {}  uptime {:.1} s  gets {}  puts {}  failed {}  batches {}{}{}",
                s.pid,
                s.uptime_ms as f64 / 1000.0,
                fmt_ops(s.gets as f64),
                fmt_ops(s.puts as f64),
                fmt_ops(s.failed as f64),
                fmt_ops(s.batches as f64),
                if s.generated > 0 {
                    format!("  generated {}", fmt_ops(s.generated as f64))
                } else {
                    String::new()
                },
                if s.keys > 0 {
                    format!("  keys {}", fmt_ops(s.keys as f64))
                } else {
                    String::new()
                },
            )));
            lines.push(Line::from(format!(
                "cpu {:.1} s  rss {} (peak {})  net in {} out {}",
                s.process.cpu_ms as f64 / 1000.0,
                fmt_bytes(s.process.rss_bytes as f64),
                fmt_bytes(s.process.peak_rss_bytes as f64),
                fmt_bytes(s.process.read_bytes as f64),
                fmt_bytes(s.process.written_bytes as f64),
            )));
            if let Some(p) = &s.open_loop {
                lines.push(Line::from(format!(
                    "open loop: offered {} achieved {} ops/s{}",
                    fmt_ops(p.offered_per_s),
                    fmt_ops(p.achieved_per_s),
                    p.client_limited
                        .as_deref()
                        .map_or(String::new(), |l| format!("  {l}"))
                )));
            }
            for (label, l) in [
                ("latency since start", s.latency),
                ("latency last second", s.recent_latency),
            ] {
                if let Some(l) = l.filter(|l| l.count > 0) {
                    lines.push(Line::from(format!(
                        "{label}: p50 {} p90 {} p99 {} p99.9 {} max {} us",
                        l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us
                    )));
                }
            }
        }
        None => lines.push(Line::from(match n.status() {
            Status::NoStats => "started without --stats-bind: no live stats".to_string(),
            _ => "no answer yet".to_string(),
        })),
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}
