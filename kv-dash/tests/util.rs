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

/// The two real 1 server + 3 client runs of one config (YCSB-B, batch 1024,
/// 45 s, `KVLAB_PROFILE_HZ=999`), recorded with `./run-cluster.sh --no-dash
/// --secs 45 1 3`: ~6,000 server samples each, stacks ~90 frames deep.
pub const REAL_1: &str = "20261202-092117-c0ec";
pub const REAL_2: &str = "20261202-092206-97ce";

/// The real runs as an experiments directory: the fixtures are stored
/// gzipped; the folded files are unpacked as the browser reads them.
pub fn real_runs() -> TempDir {
    use std::io::Read;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real");
    let dir = TempDir::new("real-runs");
    std::fs::copy(src.join("log.csv"), dir.0.join("log.csv")).unwrap();
    for run in [REAL_1, REAL_2] {
        let (from, to) = (src.join("runs").join(run), dir.0.join("runs").join(run));
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            match name.strip_suffix(".gz") {
                Some(plain) => {
                    let mut text = String::new();
                    flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap())
                        .read_to_string(&mut text)
                        .unwrap();
                    std::fs::write(to.join(plain), text).unwrap();
                }
                None => {
                    std::fs::copy(&p, to.join(&name)).unwrap();
                }
            }
        }
    }
    dir
}

/// A fixture directory copied into a scratch one, `.gz` files unpacked.
pub fn unpacked(name: &str) -> TempDir {
    fn copy(from: &Path, to: &Path) {
        use std::io::Read;
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                copy(&p, &to.join(&name));
            } else if let Some(plain) = name.strip_suffix(".gz") {
                let mut text = String::new();
                flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap())
                    .read_to_string(&mut text)
                    .unwrap();
                std::fs::write(to.join(plain), text).unwrap();
            } else {
                std::fs::copy(&p, to.join(&name)).unwrap();
            }
        }
    }
    let dir = TempDir::new(name);
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
        &dir.0,
    );
    dir
}

/// Real runs of every kind (bench, in-process ceiling, Redis, a failed
/// run, two series of trials, a rate sweep); see `fixtures/mixed/README.md`.
pub fn mixed() -> TempDir {
    unpacked("mixed")
}

pub const SERIES_A: &str = "s-20261202-183503-879d";
pub const SERIES_B: &str = "s-20261202-184121-742f";
pub const SWEEP: &str = "sweep-20261202-190049-42d7";

/// The browser over the real runs with `run`'s `process` flamegraph open.
pub fn open_real(dir: &TempDir, run: &str, process: &str) -> App {
    let mut app = App::load(&dir.0).expect("real log loads");
    app.color = true;
    select_run(&mut app, run);
    press(&mut app, &[Action::Enter]);
    let i = app
        .detail
        .as_ref()
        .unwrap()
        .profiles
        .iter()
        .position(|p| p.name() == process)
        .unwrap_or_else(|| panic!("no {process} in {run}"));
    for _ in 0..i {
        app.apply(Action::Down);
    }
    press(&mut app, &[Action::Enter]);
    assert!(app.flame.is_some(), "{:?}", app.message);
    app
}
