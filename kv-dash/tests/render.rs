//! TestBackend renders of the fixture runs.

use kv_dash::app::{Effect, View};
use kv_dash::input::Action::*;
use ratatui::style::{Color, Modifier};

use crate::util::*;

#[test]
fn runs_table_newest_first_with_values_and_failed_marker() {
    let app = app();
    let buf = draw(&app, 140, 40);
    let text = screen(&buf);
    let rows: Vec<usize> = ["dddd", "cccc", "bbbb", "aaaa"]
        .iter()
        .map(|id| find(&buf, &format!("-100000-{id}")).unwrap().1 as usize)
        .collect();
    assert!(
        rows.windows(2).all(|w| w[0] < w[1]),
        "newest first: {rows:?}\n{text}"
    );
    let failed = &lines(&buf)[rows[1]];
    assert!(failed.contains("FAILED: server 1"), "{failed}");
    assert!(
        !failed.contains("150,000") && failed.contains(" - "),
        "{failed}"
    );
    let (x, y) = find(&buf, "FAILED").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Red);
    let newest = &lines(&buf)[rows[0]];
    for v in [
        "210,000",
        "650",
        "2s 2c 4t b128 w8",
        "YCSB-B",
        "4444444d+",
        "batch 128",
    ] {
        assert!(newest.contains(v), "{v} missing in {newest}");
    }
    assert!(text.contains("4 runs"));
}

#[test]
fn no_color_uses_no_colors_but_keeps_markers() {
    let mut app = app();
    app.color = false;
    select_run(&mut app, A);
    let buf = draw(&app, 140, 40);
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let c = &buf[(x, y)];
            assert!(
                matches!(c.fg, Color::Reset) && matches!(c.bg, Color::Reset),
                "colored cell at {x},{y}"
            );
        }
    }
    let (x, y) = find(&buf, "FAILED").unwrap();
    assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
    let (x, y) = find(&buf, A).unwrap();
    assert!(
        buf[(x, y)].modifier.contains(Modifier::REVERSED),
        "selected row"
    );
}

#[test]
fn detail_pane_shows_config_results_medians_and_chart() {
    let mut app = app();
    select_run(&mut app, A);
    let text = screen(&draw(&app, 140, 40));
    for v in [
        "servers 1  clients 1  threads 4  connections 2  batch 64  window 8",
        "workload YCSB-A  theta 0.99  preload 100000  seed 42",
        "total 100,000 ops/s",
        "p50 300 / p99 900 / p99.9 2000 us",
        "median ops/s: server-0 100,000  client-0 99,000",
        "profiles: server-0, client-0",
        "server ops/s per second (max 101,000)",
        "note: baseline",
    ] {
        assert!(text.contains(v), "missing {v:?} in\n{text}");
    }
    // Run B recorded per-second client latency: its median p99 is shown.
    select_run(&mut app, B);
    let text = screen(&draw(&app, 140, 40));
    assert!(text.contains("client-0 148,500 (p99 1100 us)"), "{text}");
}

#[test]
fn filter_sort_and_marks() {
    let mut app = app();
    press(&mut app, &[StartInput]);
    type_text(&mut app, "BATCH");
    let text = screen(&draw(&app, 140, 40));
    assert!(text.contains("filter: BATCH_"));
    press(&mut app, &[InputSubmit]);
    assert_eq!(app.visible.len(), 1);
    let text = screen(&draw(&app, 140, 40));
    assert!(text.contains("1/4 runs (filter 'BATCH')"), "{text}");
    assert!(!text.contains("-100000-aaaa"));
    press(&mut app, &[Escape]);
    assert_eq!(app.visible.len(), 4);
    assert!(!app.should_quit, "Esc first clears the filter");

    // s cycles columns: Started -> RunId -> ... -> TotalOps (largest first).
    while app.sort.column != kv_dash::browse::Column::TotalOps {
        press(&mut app, &[SortNext]);
    }
    let ids: Vec<&str> = app
        .visible
        .iter()
        .map(|&i| &app.runs[i].run_id[16..])
        .collect();
    assert_eq!(
        ids,
        ["dddd", "bbbb", "aaaa", "cccc"],
        "failed run (no number) last"
    );
    assert!(screen(&draw(&app, 140, 40)).contains("sorted by total ops/s ▼"));

    select_run(&mut app, A);
    press(&mut app, &[Mark]);
    let buf = draw(&app, 140, 40);
    let text = screen(&buf);
    assert!(lines(&buf)[0].contains(&format!("marked: {A}")), "{text}");
    let row = lines(&buf)
        .into_iter()
        .find(|l| l.starts_with('│') && l.contains(A))
        .unwrap();
    assert!(row.starts_with("│*"), "mark shown: {row}");
}

#[test]
fn compare_shows_percentages_and_config_differences() {
    let mut app = app();
    select_run(&mut app, A);
    press(&mut app, &[Mark]);
    select_run(&mut app, B);
    press(&mut app, &[Mark, Compare]);
    assert_eq!(app.view, View::Compare);
    let buf = draw(&app, 160, 40);
    let text = screen(&buf);
    let row = |name: &str| {
        lines(&buf)
            .into_iter()
            .find(|l| l.contains(&format!("│{name} ")) || l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no row {name}\n{text}"))
    };
    let tput = row("total_ops_per_s");
    assert!(
        tput.contains("100,000") && tput.contains("150,000") && tput.contains("+50.0%"),
        "{tput}"
    );
    assert!(row("p99_us").contains("-20.0%"));
    assert!(row("servers").contains('≠'));
    assert!(!row("workload").contains('≠'));
    let (x, y) = find(&buf, "+50.0%").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Green, "more throughput is better");
    let (x, y) = find(&buf, "-20.0%").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Green, "lower p99 is better");
    let (x, y) = find(&buf, "≠ servers").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Yellow);
    assert!(text.contains(&format!("A = {A}  B = {B}")));
}

/// Opens the fixture run A's server-0 flamegraph.
fn open_server_flame() -> kv_dash::app::App {
    let mut app = app();
    select_run(&mut app, A);
    press(&mut app, &[Enter]);
    assert_eq!(app.view, View::Flame);
    press(&mut app, &[Enter]);
    assert!(app.flame.is_some(), "{:?}", app.message);
    // It opens focused on the first kv_ frame, the hot frame selected;
    // these tests start from the whole graph with the root selected.
    let f = app.flame.as_ref().unwrap();
    assert_eq!(f.graph.frame(f.zoom).name, "kv_server::server::run");
    assert_eq!(f.graph.frame(f.selected).name, "kv_server::store::get");
    press(&mut app, &[ResetZoom, First]);
    app
}

#[test]
fn flamegraph_draws_zooms_and_zooms_out() {
    let mut app = open_server_flame();
    let buf = draw(&app, 140, 40);
    let text = screen(&buf);
    assert!(text.contains("server-0 1000 samples  zoom: all"), "{text}");
    assert!(text.contains("▶server-0"));
    // Graph spans 140 - 22 = 118 columns; store::get is 60% of them.
    let (gx, gy) = find(&buf, "kv_server::store::get").unwrap();
    let (px, _) = find(&buf, "kv_server::store::put").unwrap();
    assert_eq!(px - gx, 118 * 60 / 100);
    assert!(text.contains("tarpc::ser…"), "10% of 118 columns, cut");

    // all -> main -> run -> apply_batch, then zoom in.
    press(&mut app, &[Down, Down, Down, Enter]);
    let buf = draw(&app, 140, 40);
    let text = screen(&buf);
    assert!(
        text.contains(
            "zoom: all › main › kv_server::server::run › kv_server::service::apply_batch"
        ),
        "{text}"
    );
    assert!(!text.contains("tarpc::ser"), "outside the zoomed frame");
    let (zx, zy) = find(&buf, "kv_server::store::put").unwrap();
    let (gx2, _) = find(&buf, "kv_server::store::get").unwrap();
    assert_eq!(
        zx - gx2,
        (118 * 600 / 850) as u16,
        "get now 600/850 of the width"
    );
    assert!(zy < gy);

    press(&mut app, &[Back]);
    assert!(screen(&draw(&app, 140, 40)).contains("zoom: all › main › kv_server::server::run  "));
    press(&mut app, &[Back, Back, Back]);
    assert!(screen(&draw(&app, 140, 40)).contains("zoom: all "));
}

#[test]
fn flamegraph_search_highlights_and_gives_share() {
    let mut app = open_server_flame();
    press(&mut app, &[StartInput]);
    type_text(&mut app, "store");
    press(&mut app, &[InputSubmit]);
    let buf = draw(&app, 140, 40);
    let text = screen(&buf);
    assert!(
        text.contains("search 'store': 85.0% of samples (2 frames)"),
        "{text}"
    );
    let (x, y) = find(&buf, "kv_server::store::get").unwrap();
    assert_eq!(buf[(x, y)].bg, Color::Magenta, "match highlighted");
    let (x, y) = find(&buf, "tarpc::ser").unwrap();
    assert_ne!(buf[(x, y)].bg, Color::Magenta);

    press(&mut app, &[Escape]);
    assert!(
        app.flame.as_ref().unwrap().search.is_none(),
        "Esc clears the search"
    );
}

#[test]
fn flamegraph_top_n_by_self_and_total() {
    let mut app = open_server_flame();
    let buf = draw(&app, 140, 40);
    let text = screen(&buf);
    assert!(text.contains("top 7 by self"), "{text}");
    let (_, y_get) = find(&buf, "  60.0%    60.0%  kv_server::store::get").unwrap();
    let (_, y_put) = find(&buf, "  25.0%    25.0%  kv_server::store::put").unwrap();
    assert!(y_get < y_put);
    press(&mut app, &[ToggleTopBy]);
    let buf = draw(&app, 140, 40);
    assert!(screen(&buf).contains("top 7 by total"));
    let (_, y_main) = find(&buf, "   0.0%   100.0%  main").unwrap();
    let (_, y_run) = find(&buf, "   0.0%    95.0%  kv_server::server::run").unwrap();
    assert!(y_main < y_run);
    // 8 functions, 7 rows: PgDn scrolls to the last page, PgUp back.
    assert!(screen(&buf).contains("top 7 by total, 1-7 of 8 (PgUp/PgDn)"));
    assert!(!screen(&buf).contains("   5.0%     5.0%  tokio::runtime::park"));
    press(&mut app, &[PageDown]);
    let buf = draw(&app, 140, 40);
    let text = screen(&buf);
    assert!(
        text.contains("top 7 by total, 2-8 of 8 (PgUp/PgDn)"),
        "{text}"
    );
    assert!(
        text.contains("   5.0%     5.0%  tokio::runtime::park"),
        "{text}"
    );
    assert!(find(&buf, "   0.0%   100.0%  main").is_none(), "{text}");
    press(&mut app, &[PageDown, PageUp]);
    assert!(screen(&draw(&app, 140, 40)).contains("top 7 by total, 1-7 of 8"));
}

#[test]
fn flamegraph_diff_against_the_other_marked_run() {
    let mut app = app();
    select_run(&mut app, B);
    press(&mut app, &[Mark]);
    select_run(&mut app, A);
    press(&mut app, &[Enter, Enter, ResetZoom, First, ToggleDiff]);
    let buf = draw(&app, 140, 40);
    let text = screen(&buf);
    assert!(text.contains(&format!("diff: A = {B} , B = {A}")), "{text}");
    let row = |name: &str| {
        lines(&buf)
            .into_iter()
            .find(|l| l.contains(&format!(" {name} ")) && l.contains('%'))
            .unwrap()
    };
    // B (this run, aaaa) has get 60% vs 40% in bbbb: +20 points.
    assert!(row("kv_server::store::get").contains("+20.0"), "{text}");
    assert!(row("bincode::deserialize").contains("-20.0"), "{text}");
    // The flamegraph itself is differential: bars colored by the change of
    // their stack's share (the graph is drawn above the table, so the
    // first match is the bar).
    let bg = |name: &str| {
        let (x, y) = find(&buf, name).unwrap();
        buf[(x, y)].bg
    };
    assert!(
        matches!(bg("kv_server::store::get"), Color::Rgb(255, g, b) if g == b && g < 220),
        "grew: {:?}",
        bg("kv_server::store::get")
    );
    assert!(
        // 10% of the width: the label is cut, so match its start.
        matches!(bg("bincode"), Color::Rgb(r, g, 255) if r == g && r < 220),
        "shrank: {:?}",
        bg("bincode")
    );
    assert_eq!(bg("kv_server::store::put"), Color::Rgb(210, 210, 210));
    assert!(
        text.contains(&format!(
            "+0.0 points since {B}  (bars: red grew, blue shrank)"
        )),
        "{text}"
    );
}

#[test]
fn svg_opens_when_present_and_says_so_when_not() {
    let mut app = open_server_flame();
    match app.apply(OpenSvg) {
        Some(Effect::OpenFile(p)) => assert!(p.ends_with("runs/20250101-100000-aaaa/server-0.svg")),
        other => panic!("{other:?}"),
    }
    press(&mut app, &[Back, Down, OpenSvg]);
    assert_eq!(
        app.message.as_deref(),
        Some("no SVG flamegraph for this process")
    );
}

#[test]
fn svg_opener_found_on_path_or_the_path_is_shown() {
    use std::os::unix::fs::PermissionsExt;
    let svg = std::path::Path::new("/nonexistent/x.svg");
    // No opener in the directories searched: the message says so and
    // gives the path (and nothing on the real PATH is started).
    let empty = TempDir::new("no-opener");
    assert_eq!(
        kv_dash::browser::open_with(svg, empty.0.as_os_str()),
        "no xdg-open/open on PATH; SVG at /nonexistent/x.svg"
    );
    // A fake xdg-open that records what it was asked to open.
    let bin = TempDir::new("fake-opener");
    let record = bin.0.join("opened.txt");
    let script = bin.write(
        "xdg-open",
        &format!(
            "#!/bin/sh\necho \"$1\" > {}.tmp && mv {0}.tmp {0}\n",
            record.display()
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A non-executable `open` earlier on the path is skipped.
    bin.write("open", "not a program");
    assert_eq!(
        kv_dash::browser::open_with(svg, bin.0.as_os_str()),
        "opened /nonexistent/x.svg with xdg-open"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !record.exists() {
        assert!(std::time::Instant::now() < deadline, "the opener never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        "/nonexistent/x.svg\n"
    );
}

#[test]
fn h_l_keys_move_between_sibling_frames_and_r_reverses_the_sort() {
    use kv_dash::app::InputMode;
    use kv_dash::input::action;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let key = |c: char| {
        action(
            InputMode::Normal,
            KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
        )
    };
    assert_eq!(key('h'), Some(Left));
    assert_eq!(key('l'), Some(Right));
    assert_eq!(key('r'), Some(SortReverse));

    // r: the runs table newest first, then oldest first.
    let mut app = app();
    let order = |app: &kv_dash::app::App| -> Vec<String> {
        app.visible
            .iter()
            .map(|&i| app.runs[i].run_id[16..].to_string())
            .collect()
    };
    assert_eq!(order(&app), ["dddd", "cccc", "bbbb", "aaaa"]);
    press(&mut app, &[key('r').unwrap()]);
    assert_eq!(order(&app), ["aaaa", "bbbb", "cccc", "dddd"]);
    let text = screen(&draw(&app, 140, 40));
    assert!(text.contains("sorted by started (utc) ▲"), "{text}");

    // h / l: siblings in the flamegraph (get and put under apply_batch).
    let mut app = open_server_flame();
    press(&mut app, &[Focus]); // the hot frame, store::get
    let name = |app: &kv_dash::app::App| {
        let f = app.flame.as_ref().unwrap();
        f.graph.frame(f.selected).name.clone()
    };
    assert_eq!(name(&app), "kv_server::store::get");
    press(&mut app, &[key('l').unwrap()]);
    assert_eq!(name(&app), "kv_server::store::put");
    press(&mut app, &[key('l').unwrap()]);
    assert_eq!(
        name(&app),
        "kv_server::store::put",
        "no sibling after the last"
    );
    press(&mut app, &[key('h').unwrap()]);
    assert_eq!(name(&app), "kv_server::store::get");
    let text = screen(&draw(&app, 140, 40));
    assert!(text.contains("selected: kv_server::store::get"), "{text}");
}

#[test]
fn help_overlay_and_quit() {
    let mut app = app();
    press(&mut app, &[Help]);
    let text = screen(&draw(&app, 140, 40));
    assert!(text.contains("keys (any key closes)") && text.contains("mark run for compare"));
    press(&mut app, &[Down]);
    assert!(!app.show_help);
    press(&mut app, &[Escape]);
    assert!(app.should_quit);
    let mut app = crate::util::app();
    press(&mut app, &[Quit]);
    assert!(app.should_quit);
}

#[test]
fn tiny_terminal_does_not_panic() {
    let mut app = open_server_flame();
    for (w, h) in [(1, 1), (10, 5), (30, 8), (200, 3)] {
        draw(&app, w, h);
    }
    app.view = View::Runs;
    for (w, h) in [(1, 1), (20, 4)] {
        draw(&app, w, h);
    }
}
