//! Rendering only: every function draws from `&App` and changes nothing.

mod compare;
mod flame;
mod help;
pub mod live;
mod runs;
mod series;
pub mod theme;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::{App, InputMode, View};
use theme::Theme;

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) {
    let theme = Theme { color: app.color };
    let [tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_tabs(app, &theme, frame, tabs);
    match app.view {
        View::Runs => runs::render(app, &theme, frame, body),
        View::Series => series::render(app, &theme, frame, body),
        View::Flame => flame::render(app, &theme, frame, body),
        View::Compare => compare::render(app, &theme, frame, body),
    }
    render_status(app, &theme, frame, status);
    if app.show_help {
        help::render(&theme, frame, body, crate::input::KEYS);
    }
}

fn render_tabs(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut spans = vec![Span::styled(" kv-dash ", theme.header())];
    push_tabs(
        &mut spans,
        theme,
        [View::Runs, View::Flame, View::Series, View::Compare].map(|v| (v.title(), v == app.view)),
    );
    let shown = app.visible.len();
    let total = app.runs.len();
    let count = if shown == total {
        format!("  {total} runs")
    } else {
        format!("  {shown}/{total} runs (filter '{}')", app.filter)
    };
    spans.push(Span::styled(count, theme.dim()));
    if app.view == View::Series && !app.series_marks.is_empty() {
        spans.push(Span::styled(
            format!("  marked: {}", app.series_marks.join(", ")),
            theme.marked(),
        ));
    } else if !app.marks.is_empty() {
        spans.push(Span::styled(
            format!("  marked: {}", app.marks.join(", ")),
            theme.marked(),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Appends one tab per `(title, active)`, the active one highlighted.
fn push_tabs<'a>(
    spans: &mut Vec<Span<'a>>,
    theme: &Theme,
    tabs: impl IntoIterator<Item = (&'a str, bool)>,
) {
    for (title, active) in tabs {
        let style = if active {
            theme.active_tab()
        } else {
            theme.dim()
        };
        spans.push(Span::raw(" "));
        spans.push(Span::styled(format!(" {title} "), style));
    }
}

fn render_status(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let line = match app.mode {
        InputMode::Filter => Line::from(vec![
            Span::styled("filter: ", theme.header()),
            Span::raw(format!("{}_", app.input)),
            Span::styled("  (Enter keep, Esc clear)", theme.dim()),
        ]),
        InputMode::Search => Line::from(vec![
            Span::styled("search: ", theme.header()),
            Span::raw(format!("{}_", app.input)),
            Span::styled("  (Enter keep, Esc clear)", theme.dim()),
        ]),
        InputMode::Normal => match &app.message {
            Some(m) => Line::from(Span::styled(m.clone(), theme.marked())),
            None => Line::from(Span::styled(hints(app), theme.dim())),
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn hints(app: &App) -> &'static str {
    match app.view {
        View::Runs => "↑↓ move  Enter flamegraphs  / filter  s sort  r reverse  space mark  c compare  Tab view  ? help  q quit",
        View::Flame => "↑↓←→ frames  Enter zoom  Backspace out  z whole  f focus  / search  n/N match  t self/total  i inlined  d diff  o SVG  ? help  q quit",
        View::Series => "↑↓ move  space mark  c compare  d diff profiles  o curve SVG  Tab view  ? help  q quit",
        View::Compare => "Backspace back  Tab view  ? help  q quit",
    }
}

/// Cuts `s` to at most `width` characters, with `…` when cut.
pub(crate) fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}
