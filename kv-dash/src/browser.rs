//! The browser's event loop: keys and clicks become [`crate::action::Action`]s
//! for the [`App`], and the effects it asks for (opening an SVG) are
//! performed here.

use std::io;
use std::path::Path;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event};

use crate::app::{App, Effect};
use crate::tui::Tui;
use crate::{input, ui};

/// Draws, waits for a key, applies it, until the app says quit.
pub fn run(tui: &mut Tui, app: &mut App) -> io::Result<()> {
    while !app.should_quit {
        tui.draw(|f| ui::render(app, f))?;
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
            Event::Resize(..) => tui.autoresize()?,
            _ => {}
        }
    }
    Ok(())
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
