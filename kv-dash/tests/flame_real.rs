//! Flamegraphs of real runs (fixtures recorded from two 1+3 runs of one
//! config, see `util::real_runs`): default focus, scrolling, keys, mouse,
//! functions instead of fragments, cost per op, noise.

use kv_dash::flame::{FlameGraph, Grouping, TopBy};
use kv_dash::input::Action::*;
use ratatui::buffer::Buffer;
use ratatui::style::Modifier;

use crate::util::*;

const STORE_GET: &str = "kv_server::store::get";

/// The text of the selected bar (drawn bold + underlined).
fn selected_bar(buf: &Buffer) -> Option<String> {
    (0..buf.area.height).find_map(|y| {
        let cells: String = (0..buf.area.width)
            .filter(|&x| {
                let m = buf[(x, y)].modifier;
                m.contains(Modifier::UNDERLINED) && m.contains(Modifier::BOLD)
            })
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        (!cells.is_empty()).then_some(cells)
    })
}

fn graph(dir: &TempDir, run: &str, process: &str) -> FlameGraph {
    kv_dash::app::load_folded(
        &dir.0
            .join("runs")
            .join(run)
            .join(format!("{process}.folded")),
    )
    .unwrap()
}

#[test]
fn real_fixture_is_deep_with_thousands_of_samples_and_names_with_spaces() {
    let dir = real_runs();
    for run in [REAL_1, REAL_2] {
        let g = graph(&dir, run, "server-node0");
        assert!(g.total_samples() >= 5000, "{}", g.total_samples());
        let depth = (0..g.len()).map(|i| g.frame(i).depth).max().unwrap();
        assert!(depth >= 80, "{depth}");
        assert!(g.has_inline_marks());
        // The thread start frame's name holds spaces: it must stay one
        // frame, with every sample of the worker threads under it (a
        // parser splitting on whitespace would cut it and lose the counts).
        let boxed = "<alloc::boxed::Box<dyn core::ops::function::FnOnce<(), Output = ()> + core::marker::Send> as core::ops::function::FnOnce<()>>::call_once";
        let id = (0..g.len())
            .find(|&i| g.frame(i).name == boxed)
            .expect("frame with spaces");
        assert!(g.frame(id).total * 10 >= g.total_samples() * 9);
        let text =
            std::fs::read_to_string(dir.0.join("runs").join(run).join("server-node0.folded"))
                .unwrap();
        let sum: u64 = text
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(g.total_samples(), sum);
    }
}

#[test]
fn default_focus_shows_the_store_lookup_at_160x45_and_80x24() {
    let dir = real_runs();
    let app = open_real(&dir, REAL_1, "server-node0");
    for (w, h) in [(160, 45), (80, 24)] {
        let buf = draw(&app, w, h);
        let text = screen(&buf);
        // The thread start and runtime frames are one labeled row.
        assert!(
            text.contains("▲ tokio-rt-worker … 62 frames above"),
            "{w}x{h}\n{text}"
        );
        // The view starts at the server's first frame, the store lookup
        // is on screen and selected.
        let (_, y_get) = find(&buf, &format!("{STORE_GET} ")).expect("store lookup on screen");
        assert!(y_get < h - 1, "{text}");
        assert!(
            selected_bar(&buf).is_some_and(|s| s.starts_with(STORE_GET)),
            "{w}x{h}: {:?}\n{text}",
            selected_bar(&buf)
        );
        assert!(
            text.contains("selected: kv_server::store::get  total 74.2%"),
            "{text}"
        );
    }
    let buf = draw(&app, 160, 45);
    assert!(screen(&buf).contains(
        "zoom: all › tokio-rt-worker › … 61 frames … › kv_server::server::{async_block#1}"
    ));
}

#[test]
fn scrolling_keeps_the_selection_visible() {
    let dir = real_runs();
    let mut app = open_real(&dir, REAL_1, "server-node0");
    // Down the widest path to the leaf and back up to the top, at 80x24:
    // the selected bar is on screen after every step.
    let mut steps = 0;
    loop {
        let buf = draw(&app, 80, 24);
        let f = app.flame.as_ref().unwrap();
        let name = &f.graph.frame(f.selected).name;
        let shown =
            selected_bar(&buf).unwrap_or_else(|| panic!("{name} off screen\n{}", screen(&buf)));
        assert!(
            name.starts_with(shown.trim_end().trim_end_matches('…')),
            "{name} vs {shown}"
        );
        if f.graph.frame(f.selected).children.is_empty() {
            break;
        }
        press(&mut app, &[Down]);
        steps += 1;
    }
    assert!(steps >= 8, "{steps}");
    let leaf_scroll = app.flame.as_ref().unwrap().scroll.get();
    assert!(leaf_scroll > 0, "the view scrolled");
    for _ in 0..40 {
        press(&mut app, &[Up]);
        let buf = draw(&app, 80, 24);
        assert!(selected_bar(&buf).is_some(), "{}", screen(&buf));
    }
    let f = app.flame.as_ref().unwrap();
    assert_eq!(f.selected, f.zoom);
    assert_eq!(f.scroll.get(), 0);
}

#[test]
fn reset_zoom_focus_and_search_matches() {
    let dir = real_runs();
    let mut app = open_real(&dir, REAL_1, "server-node0");
    press(&mut app, &[ResetZoom]);
    let buf = draw(&app, 160, 45);
    assert!(
        screen(&buf).contains("5974 samples  zoom: all  "),
        "{}",
        screen(&buf)
    );
    // One key out, and the selection stays on the store lookup.
    assert!(selected_bar(&buf).is_some_and(|s| s.starts_with(STORE_GET)));
    press(&mut app, &[Focus]);
    assert!(screen(&draw(&app, 160, 45)).contains("▲ tokio-rt-worker … 62 frames above"));

    press(&mut app, &[StartInput]);
    type_text(&mut app, "try_lock_shared");
    press(&mut app, &[InputSubmit, NextMatch]);
    let buf = draw(&app, 160, 45);
    let text = screen(&buf);
    assert!(
        text.contains("search 'try_lock_shared': 25.5% of samples (2 frames), 25.6% of this zoom  match 1/2 (n/N)"),
        "{text}"
    );
    assert!(
        selected_bar(&buf).is_some_and(|s| s.starts_with("dashmap::lock::try_lock_sh")),
        "{text}"
    );
    // Zoom in elsewhere: the share stays in view.
    press(&mut app, &[Enter, NextMatch]);
    let text = screen(&draw(&app, 160, 45));
    assert!(
        text.contains("search 'try_lock_shared': 25.5% of samples") && text.contains("match 2/2"),
        "{text}"
    );
    press(&mut app, &[PrevMatch]);
    assert!(screen(&draw(&app, 160, 45)).contains("match 1/2"));
}

#[test]
fn mouse_click_zooms_and_wheel_moves() {
    let dir = real_runs();
    let mut app = open_real(&dir, REAL_1, "server-node0");
    let buf = draw(&app, 160, 45);
    let (x, y) = find(&buf, "kv_server::store::apply ").unwrap();
    press(&mut app, &[Click(x + 2, y)]);
    let f = app.flame.as_ref().unwrap();
    assert_eq!(f.graph.frame(f.zoom).name, "kv_server::store::apply");
    assert_eq!(f.selected, f.zoom);
    let buf = draw(&app, 160, 45);
    assert!(
        screen(&buf).contains("▲ tokio-rt-worker … 73 frames above"),
        "{}",
        screen(&buf)
    );
    // The wheel moves the selection down the stack, 3 frames a notch.
    press(&mut app, &[WheelDown]);
    let f = app.flame.as_ref().unwrap();
    assert_eq!(f.rel_depth(f.selected), 3);
    press(&mut app, &[WheelUp, WheelUp]);
    let f = app.flame.as_ref().unwrap();
    assert_eq!(f.selected, f.zoom);
    // A click on the folded row zooms one out.
    let buf = draw(&app, 160, 45);
    let (x, y) = find(&buf, "▲ tokio-rt-worker").unwrap();
    press(&mut app, &[Click(x, y)]);
    let f = app.flame.as_ref().unwrap();
    assert_eq!(
        f.graph.frame(f.zoom).name,
        "kv_server::service::{async_fn#0}"
    );
}

#[test]
fn top_n_groups_inlined_frames_into_their_function_with_cost_per_op() {
    let dir = real_runs();
    let mut app = open_real(&dir, REAL_1, "server-node0");
    let buf = draw(&app, 160, 45);
    let text = screen(&buf);
    // 31.9 CPU-s over 44.6M ops = 716 ns per op; apply has 52.4% of it.
    assert!(
        text.contains("31.9 CPU-s for 44592237 ops: 716ns/op"),
        "{text}"
    );
    assert!(text.contains("top 7 by self, 1-7 of"), "{text}");
    let row = lines(&buf)
        .into_iter()
        .find(|l| l.contains(" kv_server::store::apply "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("   3129   375ns   52.4%    77.7%"), "{row}");
    assert!(
        !text.contains("kv_server::key::as_bytes  "),
        "inlined: {text}"
    );
    // `i`: the inlined frames themselves.
    press(&mut app, &[ToggleInline]);
    let text = screen(&draw(&app, 160, 45));
    assert!(text.contains("frames (inlined detail)"), "{text}");
    assert!(
        text.contains("   1589   190ns   26.6%    26.6%  kv_server::key::as_bytes"),
        "{text}"
    );
}

#[test]
fn same_config_diff_calls_no_big_change_significant() {
    // Two runs of one config. Frame by frame, the shard lock and the key
    // compare swing by 25+ points (where the sampled instruction lands);
    // by function, no change above 5 points, and the table says which
    // changes are within sampling noise.
    let dir = real_runs();
    let (a, b) = (
        graph(&dir, REAL_2, "server-node0"),
        graph(&dir, REAL_1, "server-node0"),
    );
    let frames = FlameGraph::diff_by(&a, &b, Grouping::Frames);
    assert!(
        frames[0].total_delta().abs() > 25.0 && !frames[0].noise,
        "{:?}",
        frames[0]
    );
    let functions = FlameGraph::diff(&a, &b);
    for r in &functions {
        assert!(
            r.total_delta().abs() <= 5.0 && r.self_delta().abs() <= 5.0,
            "{r:?}"
        );
    }
    // Small changes are noise, one sample more or less above all.
    assert!(functions.iter().filter(|r| r.noise).count() > 100);
    for r in functions
        .iter()
        .filter(|r| r.total_samples_a.max(r.total_samples_b) <= 3)
    {
        assert!(r.noise, "{r:?}");
    }

    let mut app = kv_dash::app::App::load(&dir.0).unwrap();
    app.color = true;
    select_run(&mut app, REAL_2);
    press(&mut app, &[Mark]);
    let mut app = {
        select_run(&mut app, REAL_1);
        press(&mut app, &[Enter, Enter, ToggleDiff]);
        app
    };
    let buf = draw(&app, 160, 45);
    let text = screen(&buf);
    assert!(
        text.contains("5700 vs 5974 samples · points, ~ noise"),
        "{text}"
    );
    let row = lines(&buf)
        .into_iter()
        .find(|l| l.contains(" kv_server::store::apply"))
        .unwrap_or_else(|| panic!("{text}"));
    // Total share 77.3% → 77.7%: within noise; ns per op at each run's
    // throughput (A ran slower: more CPU per op).
    assert!(row.contains("77.3%    77.7%     +0.4~"), "{row}");
    assert!(row.contains("697ns → 556ns"), "{row}");
    // A noise row is marked `~` and grey.
    let noisy = functions.iter().find(|r| r.noise).unwrap();
    press(&mut app, &[]);
    let (x, y) = lines(&buf)
        .iter()
        .enumerate()
        .find_map(|(y, l)| {
            l.find(&format!(" {}", noisy.name)).and(
                l.find('~')
                    .map(|b| (l[..b].chars().count() as u16, y as u16)),
            )
        })
        .unwrap_or_else(|| panic!("{} not shown as noise\n{text}", noisy.name));
    assert_eq!(buf[(x - 1, y)].fg, ratatui::style::Color::DarkGray);
    let _ = &mut app;
}

#[test]
fn few_samples_warned_and_vanished_stacks_listed() {
    let dir = real_runs();
    let mut app = open_real(&dir, REAL_1, "client-node1");
    let text = screen(&draw(&app, 160, 45));
    assert!(
        text.contains("⚠ only 421 samples: a share is ±4.8 points"),
        "{text}"
    );
    // Stacks only in A: listed with their loss.
    let a = graph(&dir, REAL_2, "server-node0");
    let b = graph(&dir, REAL_1, "server-node0");
    let gone = b.vanished(&a);
    assert!(!gone.is_empty());
    let lost: f64 = gone.iter().map(|v| v.loss).sum();
    assert!(lost > 0.5, "{lost}");
    assert!(gone.windows(2).all(|w| w[0].loss >= w[1].loss));
    let _ = &mut app;
    let top = b.top(TopBy::Self_, 1);
    assert_eq!(top[0].name, "kv_server::store::apply");
}

/// `kv-dash diff SERIES RUN`: a series' trials are merged (their stacks
/// summed), so the diff counts every sample of every trial.
#[test]
fn diff_of_a_series_merges_its_trials_profiles() {
    use kv_core::identity::ConfigIdentity;
    use kv_core::series::{SeriesInfo, TrialInfo};
    let dir = real_runs();
    let sid = "s-20261202-092000-abcd";
    SeriesInfo {
        series_id: sid.into(),
        created_at: "2026-12-02T09:20:00Z".into(),
        side: String::new(),
        label: "two real trials".into(),
        trials: 2,
        compared_with: None,
    }
    .write(&dir.0)
    .unwrap();
    for (i, run) in [REAL_1, REAL_2].into_iter().enumerate() {
        TrialInfo::new(sid.into(), i as u32 + 1, ConfigIdentity::new())
            .write(&dir.0, run)
            .unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kv-dash"))
        .args([
            "diff",
            sid,
            REAL_2,
            "--json",
            "--process",
            "server-node0",
            "--dir",
        ])
        .arg(&dir.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (one, two) = (
        graph(&dir, REAL_1, "server-node0").total_samples(),
        graph(&dir, REAL_2, "server-node0").total_samples(),
    );
    assert_eq!(json["samples_a"], one + two);
    assert_eq!(json["samples_b"], two);
    assert_eq!(
        json["a"],
        format!("series {sid} (two real trials) (2 profiles merged)")
    );
    assert_eq!(json["b"], REAL_2);
    assert_eq!(json["process"], "server-node0");
}
