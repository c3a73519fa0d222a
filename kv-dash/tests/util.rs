use std::path::{Path, PathBuf};

use kv_dash::app::App;
use kv_dash::input::Action;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

pub const A: &str = "20250101-100000-aaaa";
pub const B: &str = "20250102-100000-bbbb";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/experiments")
}

/// The browser over the fixture runs, colors on.
pub fn app() -> App {
    let mut app = App::load(&fixtures()).expect("fixture log loads");
    app.color = true;
    app
}

pub fn press(app: &mut App, actions: &[Action]) {
    for a in actions {
        app.apply(*a);
    }
}

pub fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        app.apply(Action::InputChar(c));
    }
}

/// Moves the cursor to the run with this id.
pub fn select_run(app: &mut App, id: &str) {
    press(app, &[Action::First]);
    for _ in 0..app.visible.len() {
        if app.selected_run().unwrap().run_id == id {
            return;
        }
        app.apply(Action::Down);
    }
    panic!("run {id} not in the table");
}

pub fn draw(app: &App, width: u16, height: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
    t.draw(|f| kv_dash::ui::render(app, f)).unwrap();
    t.backend().buffer().clone()
}

pub fn lines(buf: &Buffer) -> Vec<String> {
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

pub fn screen(buf: &Buffer) -> String {
    lines(buf).join("\n")
}

/// Position of the first occurrence of `text` on screen (column in cells).
pub fn find(buf: &Buffer, text: &str) -> Option<(u16, u16)> {
    lines(buf).iter().enumerate().find_map(|(y, l)| {
        l.find(text)
            .map(|byte| (l[..byte].chars().count() as u16, y as u16))
    })
}

pub use kv_testkit::TempDir;
