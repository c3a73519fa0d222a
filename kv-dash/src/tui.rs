//! The terminal and nothing else: raw mode + alternate screen on entry,
//! restored on every exit (normal return, error, and panic via a hook).
//! The loops that draw into it are the browser's ([`crate::browser`]) and
//! the live dashboard's ([`crate::live`]).

use std::io::{self, Stdout};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event;
use ratatui::crossterm::terminal::{
    self, disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};
use ratatui::{Frame, Terminal};

/// The terminal in TUI mode; dropping it restores the terminal.
pub struct Tui {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Tui {
    pub fn init() -> io::Result<Tui> {
        install_panic_hook();
        enable_raw_mode()?;
        let mut out = io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen) {
            let _ = restore();
            return Err(e);
        }
        let terminal = Terminal::new(CrosstermBackend::new(out))?;
        Ok(Tui { terminal })
    }

    /// Mouse capture, for the browser: clicks and the wheel drive the
    /// flamegraph (the live dashboard leaves the mouse to the terminal).
    pub fn capture_mouse(&mut self) -> io::Result<()> {
        execute!(self.terminal.backend_mut(), event::EnableMouseCapture)
    }

    /// Draws one frame (`draw` resizes the buffers first when the terminal
    /// changed size).
    pub fn draw(&mut self, render: impl FnOnce(&mut Frame)) -> io::Result<()> {
        self.terminal.draw(render).map(|_| ())
    }

    /// Clears the screen. Not `Terminal::clear`: it asks the terminal for
    /// the cursor position, which deadlocks with a reader thread already in
    /// `read` (the live dashboard's).
    pub fn clear(&mut self) -> io::Result<()> {
        execute!(
            self.terminal.backend_mut(),
            terminal::Clear(terminal::ClearType::All)
        )
    }

    pub fn autoresize(&mut self) -> io::Result<()> {
        self.terminal.autoresize()
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = restore();
    }
}

fn restore() -> io::Result<()> {
    disable_raw_mode()?;
    execute!(
        io::stdout(),
        event::DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    )
}

/// Restores the terminal before the default hook prints the panic, so the
/// message is readable and the shell is usable.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = restore();
        previous(info);
    }));
}
