//! The terminal: raw mode + alternate screen on entry, restored on every
//! exit (normal return, error, and panic via a hook), and the event loop
//! that turns keys into actions for the [`App`] (and, for `kv-dash live`,
//! the loop over the live dashboard's events).

use std::io::{self, Stdout};
use std::path::Path;
use std::time::Duration;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event};
use ratatui::crossterm::terminal::{
    self, disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};
use ratatui::Terminal;

use crate::app::{App, Effect};
use crate::live::state::LiveApp;
use crate::live::{self, event::Event as LiveEvent};
use crate::{input, ui};

/// Events arriving this close together are drawn once (at most 20 frames a
/// second, however many nodes answer).
const LIVE_FRAME: Duration = Duration::from_millis(50);

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

    /// Draws, waits for a key, applies it, until the app says quit.
    pub fn run(&mut self, app: &mut App) -> io::Result<()> {
        while !app.should_quit {
            self.terminal.draw(|f| ui::render(app, f))?;
            // Nothing changes without a key (the browser has no live data),
            // so block on input; the timeout only bounds a resize redraw.
            if !event::poll(Duration::from_millis(500))? {
                continue;
            }
            match event::read()? {
                Event::Key(key) => {
                    if let Some(action) = input::action(app.mode, key) {
                        if let Some(effect) = app.apply(action) {
                            app.message = Some(perform(effect));
                        }
                    }
                }
                Event::Mouse(m) => {
                    if let Some(action) = input::mouse_action(app.mode, m) {
                        if let Some(effect) = app.apply(action) {
                            app.message = Some(perform(effect));
                        }
                    }
                }
                Event::Resize(..) => self.terminal.autoresize()?,
                _ => {}
            }
        }
        Ok(())
    }
}

impl Tui {
    /// The live dashboard: draws, then sleeps until events arrive; draws
    /// again only when they changed what is shown.
    pub fn run_live(
        &mut self,
        app: &mut LiveApp,
        rx: &std::sync::mpsc::Receiver<LiveEvent>,
    ) -> io::Result<()> {
        // Not `Terminal::clear`: it asks the terminal for the cursor
        // position, which deadlocks with the reader thread already in `read`.
        execute!(
            self.terminal.backend_mut(),
            terminal::Clear(terminal::ClearType::All)
        )?;
        self.terminal.draw(|f| ui::live::render(app, f))?;
        while !app.should_quit {
            match live::next_batch(app, rx, LIVE_FRAME) {
                None => break,
                Some(false) => {}
                Some(true) if app.should_quit => break,
                // `draw` resizes the buffers first when the terminal changed size.
                Some(true) => {
                    self.terminal.draw(|f| ui::live::render(app, f))?;
                }
            }
        }
        Ok(())
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

fn perform(effect: Effect) -> String {
    match effect {
        Effect::OpenFile(path) => open_with_system(&path),
    }
}

/// Opens a file with `xdg-open` (or macOS `open`) when one is on PATH;
/// otherwise says where the file is.
pub fn open_with_system(path: &Path) -> String {
    open_with(path, &std::env::var_os("PATH").unwrap_or_default())
}

/// [`open_with_system`] with the directories to look for an opener in
/// (`search_path`, as PATH), so tests choose what is found.
pub fn open_with(path: &Path, search_path: &std::ffi::OsStr) -> String {
    let found = ["xdg-open", "open"].into_iter().find_map(|o| {
        std::env::split_paths(search_path)
            .map(|dir| dir.join(o))
            .find(|p| is_executable(p))
            .map(|p| (o, p))
    });
    match found {
        Some((o, program)) => match std::process::Command::new(program)
            .arg(path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(_) => format!("opened {} with {o}", path.display()),
            Err(e) => format!("{o} failed ({e}); SVG at {}", path.display()),
        },
        None => format!("no xdg-open/open on PATH; SVG at {}", path.display()),
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.is_file() && std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}
