//! What a key or click asks the browser to do, and where typed characters
//! go: the vocabulary between [`crate::input`] (which maps keys to actions)
//! and [`crate::app`] (which applies them), so neither imports the other.

/// Everything a key can ask the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    First,
    Last,
    /// Open / zoom in.
    Enter,
    /// Zoom out / leave the current pane.
    Back,
    NextView,
    PrevView,
    /// `/`: filter runs (Runs view) or search frames (Flamegraph view).
    StartInput,
    InputChar(char),
    InputBackspace,
    InputSubmit,
    InputCancel,
    SortNext,
    SortReverse,
    Mark,
    Compare,
    OpenSvg,
    ToggleTopBy,
    ToggleDiff,
    /// Flamegraph: zoom out to the whole graph (selection kept).
    ResetZoom,
    /// Flamegraph: back to where it opened (past the runtime frames).
    Focus,
    /// Flamegraph: next / previous search match.
    NextMatch,
    PrevMatch,
    /// Flamegraph tables: functions or every inlined frame.
    ToggleInline,
    /// Mouse: left click at (column, row).
    Click(u16, u16),
    WheelUp,
    WheelDown,
    Help,
    /// Live dashboard: freeze / unfreeze the display.
    Pause,
    /// Esc: close what is open, quit at the top level.
    Escape,
    Quit,
}

/// What typed characters go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    Normal,
    /// Runs filter (`/` in the Runs view).
    Filter,
    /// Frame search (`/` in the Flamegraph view).
    Search,
}
