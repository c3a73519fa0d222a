//! Keys → [`Action`]s (defined in [`crate::action`]). The only place that knows the key bindings (the help
//! screen lists them from [`KEYS`]).

use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

pub use crate::action::{Action, InputMode};

/// Key bindings as shown in the help screen and the README.
pub const KEYS: &[(&str, &str)] = &[
    ("↑/↓ j/k", "move; in a flamegraph: parent / widest child"),
    ("←/→ h/l", "flamegraph: previous / next sibling frame"),
    (
        "PgUp/PgDn g/G",
        "page; first / last; flamegraph: scroll the table",
    ),
    (
        "Enter",
        "runs: open flamegraphs; processes: open; frame: zoom in",
    ),
    ("Backspace", "zoom out / back"),
    (
        "z / f",
        "flamegraph: whole graph / back to the focus (where the work is)",
    ),
    ("n / N", "flamegraph: next / previous search match"),
    (
        "mouse",
        "flamegraph: click zooms into a frame, wheel moves down / up",
    ),
    ("i", "flamegraph tables: functions / inlined frames"),
    (
        "Tab / S-Tab",
        "switch view: Runs, Flamegraph, Series, Compare",
    ),
    (
        "/",
        "runs: filter (note, tag, commit, workload); flamegraph: search",
    ),
    ("s / r", "sort by next column / reverse order"),
    (
        "space / m",
        "mark run for compare (in Series: a series), two at most",
    ),
    (
        "c",
        "compare the two marked runs / series (or marked vs selected)",
    ),
    ("t", "flamegraph: top-N by self / total"),
    (
        "d",
        "flamegraph: diff with the other marked run; Series: B's merged profiles vs A's",
    ),
    (
        "o",
        "open the process's SVG flamegraph; Series: a sweep's curve SVG",
    ),
    ("?", "help"),
    ("q / Esc", "quit (Esc first closes what is open)"),
];

/// Key bindings of `kv-dash live`, as shown in its help and the README.
pub const LIVE_KEYS: &[(&str, &str)] = &[
    ("↑/↓ j/k", "select a node"),
    ("g / G", "first / last node"),
    ("Tab / S-Tab", "switch view: Overview, Per node"),
    ("p", "pause / resume the display (polling goes on)"),
    ("?", "help"),
    ("q / Esc", "quit the dashboard (the run keeps going)"),
];

/// The action for a key in `kv-dash live`, if any.
pub fn live_action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    Some(match key.code {
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Home | KeyCode::Char('g') => Action::First,
        KeyCode::End | KeyCode::Char('G') => Action::Last,
        KeyCode::Tab => Action::NextView,
        KeyCode::BackTab => Action::PrevView,
        KeyCode::Char('p') => Action::Pause,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Esc => Action::Escape,
        KeyCode::Char('q') => Action::Quit,
        _ => return None,
    })
}

/// The action for a mouse event (the browser only; typing ignores it).
pub fn mouse_action(mode: InputMode, m: MouseEvent) -> Option<Action> {
    if mode != InputMode::Normal {
        return None;
    }
    match m.kind {
        MouseEventKind::Down(MouseButton::Left) => Some(Action::Click(m.column, m.row)),
        MouseEventKind::ScrollDown => Some(Action::WheelDown),
        MouseEventKind::ScrollUp => Some(Action::WheelUp),
        _ => None,
    }
}

/// The action for a key in the given input mode, if any.
pub fn action(mode: InputMode, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if mode != InputMode::Normal {
        return match key.code {
            KeyCode::Esc => Some(Action::InputCancel),
            KeyCode::Enter => Some(Action::InputSubmit),
            KeyCode::Backspace => Some(Action::InputBackspace),
            KeyCode::Char(c) => Some(Action::InputChar(c)),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Left | KeyCode::Char('h') => Action::Left,
        KeyCode::Right | KeyCode::Char('l') => Action::Right,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::First,
        KeyCode::End | KeyCode::Char('G') => Action::Last,
        KeyCode::Enter => Action::Enter,
        KeyCode::Backspace => Action::Back,
        KeyCode::Tab => Action::NextView,
        KeyCode::BackTab => Action::PrevView,
        KeyCode::Char('/') => Action::StartInput,
        KeyCode::Char('s') => Action::SortNext,
        KeyCode::Char('r') => Action::SortReverse,
        KeyCode::Char(' ') | KeyCode::Char('m') => Action::Mark,
        KeyCode::Char('c') => Action::Compare,
        KeyCode::Char('o') => Action::OpenSvg,
        KeyCode::Char('t') => Action::ToggleTopBy,
        KeyCode::Char('d') => Action::ToggleDiff,
        KeyCode::Char('z') => Action::ResetZoom,
        KeyCode::Char('f') => Action::Focus,
        KeyCode::Char('n') => Action::NextMatch,
        KeyCode::Char('N') => Action::PrevMatch,
        KeyCode::Char('i') => Action::ToggleInline,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Esc => Action::Escape,
        KeyCode::Char('q') => Action::Quit,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn normal_and_input_modes() {
        assert_eq!(
            action(InputMode::Normal, key(KeyCode::Char('j'))),
            Some(Action::Down)
        );
        assert_eq!(
            action(InputMode::Normal, key(KeyCode::Char('q'))),
            Some(Action::Quit)
        );
        assert_eq!(
            action(InputMode::Filter, key(KeyCode::Char('q'))),
            Some(Action::InputChar('q'))
        );
        assert_eq!(
            action(InputMode::Search, key(KeyCode::Esc)),
            Some(Action::InputCancel)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(InputMode::Search, ctrl_c), Some(Action::Quit));
    }

    #[test]
    fn live_keys() {
        assert_eq!(live_action(key(KeyCode::Char('p'))), Some(Action::Pause));
        assert_eq!(live_action(key(KeyCode::Char('k'))), Some(Action::Up));
        assert_eq!(live_action(key(KeyCode::Tab)), Some(Action::NextView));
        assert_eq!(live_action(key(KeyCode::Char('q'))), Some(Action::Quit));
        assert_eq!(live_action(key(KeyCode::Char('x'))), None);
    }
}
