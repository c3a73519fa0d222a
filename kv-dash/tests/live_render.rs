//! TestBackend renders of the live dashboard from fixed snapshots.

use std::time::Duration;

use kv_core::latency::LatencySummary;
use kv_core::stats::{Role, StatsSnapshot};
use kv_dash::input::Action;
use kv_dash::live::state::{LiveApp, LiveView, NodeSpec, RunInfo, Status};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

use crate::util::{find, screen};

fn spec(name: &str, role: Role, port: u16) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        role,
        addr: format!("127.0.0.1:{port}"),
        pollable: true,
    }
}

fn snap(role: Role, uptime_ms: u64, gets: u64, puts: u64) -> StatsSnapshot {
    StatsSnapshot {
        pid: 4242,
        uptime_ms,
        gets,
        puts,
        ..StatsSnapshot::empty(role)
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// node0: server at 100,000 ops/s (90k gets, 10k puts), 95% CPU, 250 MiB,
/// 12 MB/s. node1: server that answered once, then refused: down.
/// node2: client 12 s into a 30 s run, p50/p99 120/900 us since start,
/// 150/2400 us in its last second.
pub fn live_app() -> LiveApp {
    let run = RunInfo {
        run_id: "20250105-120000-live".into(),
        config: "2 servers, 1 client, YCSB-B θ0.99 batch 1024 window 8, 2 threads".into(),
        total: Some(Duration::from_secs(30)),
        ready_timeout: None,
        warmup_s: None,
    };
    let mut app = LiveApp::new(
        run,
        vec![
            spec("server-node0", Role::Server, 8080),
            spec("server-node1", Role::Server, 8081),
            spec("client-node2", Role::Client, 9000),
        ],
    );
    app.color = true;
    let mut s0 = snap(Role::Server, 5_000, 0, 0);
    s0.process.rss_bytes = 250 << 20;
    let mut s1 = s0.clone();
    s1.uptime_ms = 6_000;
    s1.gets = 90_000;
    s1.puts = 10_000;
    s1.process.cpu_ms = 950;
    s1.process.read_bytes = 8_000_000;
    s1.process.written_bytes = 4_000_000;
    let mut c0 = snap(Role::Client, 11_000, 0, 0);
    c0.latency = Some(LatencySummary {
        count: 10,
        p50_us: 100,
        p90_us: 500,
        p99_us: 800,
        p999_us: 1000,
        max_us: 2000,
    });
    let mut c1 = c0.clone();
    c1.uptime_ms = 12_000;
    c1.gets = 88_200;
    c1.puts = 9_800;
    c1.latency = Some(LatencySummary {
        count: 98_000,
        p50_us: 120,
        p90_us: 600,
        p99_us: 900,
        p999_us: 1500,
        max_us: 4000,
    });
    // The last second was slower than the run so far.
    c1.recent_latency = Some(LatencySummary {
        count: 9_800,
        p50_us: 150,
        p90_us: 700,
        p99_us: 2_400,
        p999_us: 3_000,
        max_us: 4000,
    });
    app.ingest(0, Ok(s0), ms(0));
    app.ingest(1, Ok(snap(Role::Server, 5_000, 0, 0)), ms(0));
    app.ingest(2, Ok(c0), ms(0));
    // The nodes' clocks moved 1 s; the dashboard's 0.9 s (polls are not exact).
    app.ingest(0, Ok(s1), ms(900));
    app.ingest(2, Ok(c1), ms(900));
    app.ingest(1, Err("connection refused".into()), ms(1500));
    app
}

pub fn draw(app: &LiveApp, width: u16, height: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
    t.draw(|f| kv_dash::ui::live::render(app, f)).unwrap();
    t.backend().buffer().clone()
}

/// A node's table row, from its name on (after the color swatch, if any).
fn row_of(buf: &Buffer, name: &str) -> String {
    crate::live_e2e::row_of(&screen(buf), name)
        .unwrap_or_else(|| panic!("no row {name}:\n{}", screen(buf)))
        .to_string()
}

#[test]
fn table_shows_rates_latency_resources_and_status() {
    let app = live_app();
    assert_eq!(app.data.nodes[1].status(), Status::Down);
    let buf = draw(&app, 140, 40);
    let server = row_of(&buf, "server-node0");
    for v in [
        "server",
        "127.0.0.1:8080",
        "100,000",
        "90,000",
        "10,000",
        "95",
        "250.0 MiB",
        "12.0",
        "● up",
    ] {
        assert!(server.contains(v), "{v:?} missing in {server}");
    }
    let client = row_of(&buf, "client-node2");
    for v in ["client", "98,000", "88,200", "9,800", "150/2400", "● up"] {
        assert!(client.contains(v), "{v:?} missing in {client}");
    }
    let text = screen(&buf);
    for v in [
        "run 20250105-120000-live",
        "2 servers, 1 client, YCSB-B θ0.99 batch 1024",
        "total 100,000 ops/s",
        "steady - so far",
        "nodes up 2/3",
        "✖ 1 DOWN",
        "latency since start p50 120 / p99 900 us",
        "ops/s per second: total and ■ per node",
        "client latency us",
        "server-node0 at 127.0.0.1:8080",
        "gets 90,000  puts 10,000",
    ] {
        assert!(text.contains(v), "missing {v:?} in\n{text}");
    }
}

#[test]
fn latency_chart_and_detail_show_the_last_second() {
    let mut app = live_app();
    // One whole second has passed: its sample is the client's last second,
    // not the cumulative figure.
    assert_eq!(
        app.data.latency.iter().copied().collect::<Vec<_>>(),
        [(150, 2400)]
    );
    app.apply(Action::Down);
    app.apply(Action::Down);
    let text = screen(&draw(&app, 140, 40));
    for v in [
        "client-node2 at 127.0.0.1:9000",
        "latency since start: p50 120 p90 600 p99 900 p99.9 1500 max 4000 us",
        "latency last second: p50 150 p90 700 p99 2400 p99.9 3000 max 4000 us",
        "client latency us (worst client, each second)",
    ] {
        assert!(text.contains(v), "missing {v:?} in\n{text}");
    }
}

#[test]
fn down_node_is_marked_in_red_and_shows_no_stale_numbers() {
    let app = live_app();
    let buf = draw(&app, 140, 40);
    let down = row_of(&buf, "server-node1");
    assert!(down.contains("✖ DOWN"), "{down}");
    assert!(!down.contains("MiB") && down.contains(" - "), "{down}");
    let (x, y) = find(&buf, "✖ DOWN").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Red);
    assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
}

#[test]
fn no_color_keeps_markers_without_colors() {
    let mut app = live_app();
    app.color = false;
    let buf = draw(&app, 140, 40);
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let c = &buf[(x, y)];
            assert!(
                matches!(c.fg, Color::Reset) && matches!(c.bg, Color::Reset),
                "colored cell at {x},{y}:\n{}",
                screen(&buf)
            );
        }
    }
    let (x, y) = find(&buf, "✖ DOWN").unwrap();
    assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
    let (x, y) = find(&buf, "│server-node0").unwrap();
    assert!(buf[(x + 1, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn gauge_shows_elapsed_of_total() {
    let app = live_app();
    let text = screen(&draw(&app, 140, 40));
    assert!(text.contains("12 s / 30 s (40%)"), "{text}");
    let mut app = live_app();
    app.run.total = None;
    let text = screen(&draw(&app, 140, 40));
    assert!(text.contains("elapsed 12 s"), "{text}");
}

#[test]
fn narrow_terminal_drops_columns_small_one_shows_a_notice() {
    let app = live_app();
    let text = screen(&draw(&app, 90, 30));
    assert!(
        !text.contains("ADDRESS") && !text.contains("GET/S"),
        "{text}"
    );
    assert!(row_of(&draw(&app, 90, 30), "server-node0").contains("100,000"));
    let text = screen(&draw(&app, 60, 15));
    assert!(
        text.contains("terminal too small: 60×15") && text.contains("80×20"),
        "{text}"
    );
    assert!(!text.contains("node0"));
}

#[test]
fn help_overlay_lists_live_keys() {
    let mut app = live_app();
    app.apply(Action::Help);
    let text = screen(&draw(&app, 120, 30));
    for v in [
        "keys (any key closes)",
        "pause / resume the display",
        "quit the dashboard (the run keeps going)",
    ] {
        assert!(text.contains(v), "missing {v:?} in\n{text}");
    }
    app.apply(Action::Down);
    assert!(
        !app.show_help && app.selected == 0,
        "a key closes help only"
    );
}

#[test]
fn select_switch_view_and_pause() {
    let mut app = live_app();
    app.apply(Action::Down);
    let text = screen(&draw(&app, 140, 40));
    assert!(text.contains("server-node1 at 127.0.0.1:8081"), "{text}");
    assert!(text.contains("down: connection refused"), "{text}");
    app.apply(Action::NextView);
    assert_eq!(app.view, LiveView::Nodes);
    let text = screen(&draw(&app, 140, 40));
    assert!(text.contains("ops/s per second, per node"), "{text}");
    app.apply(Action::Pause);
    app.ingest(0, Err("connection refused".into()), ms(9000));
    let text = screen(&draw(&app, 140, 40));
    assert!(text.contains("PAUSED"), "{text}");
    assert!(row_of(&draw(&app, 140, 40), "server-node0").contains("● up"));
    app.apply(Action::Pause);
    assert!(row_of(&draw(&app, 140, 40), "server-node0").contains("✖ DOWN"));
}

#[test]
fn plain_line_has_elapsed_total_and_nodes_up() {
    let app = live_app();
    assert_eq!(
        app.plain_line(),
        "[  12/30 s] total 100,000 ops/s, nodes up 2/3, DOWN server-node1"
    );
}

/// `n` nodes (two servers, the rest clients), 10 s of polls at 4 Hz; node
/// i does `rates[i]` ops/s.
fn many_nodes(rates: &[u64]) -> LiveApp {
    let specs: Vec<NodeSpec> = rates
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let role = if i < 2 { Role::Server } else { Role::Client };
            spec(&format!("{}-node{i}", role.name()), role, 8080 + i as u16)
        })
        .collect();
    let run = RunInfo {
        run_id: "20261202-190000-6a6a".into(),
        config: format!(
            "2 servers, {} clients, YCSB-B θ0.99 batch 1024 window 8, 4 threads",
            rates.len() - 2
        ),
        total: Some(Duration::from_secs(30)),
        ..RunInfo::default()
    };
    let mut app = LiveApp::new(run, specs.clone());
    app.color = true;
    for t in (0..=10_000u64).step_by(250) {
        for (i, s) in specs.iter().enumerate() {
            let ops = rates[i] * t / 1000;
            app.ingest(i, Ok(snap(s.role, 1_000 + t, ops, 0)), ms(t));
        }
    }
    app
}

fn is_braille(sym: &str) -> bool {
    sym.chars()
        .next()
        .is_some_and(|c| ('\u{2801}'..='\u{28ff}').contains(&c))
}

#[test]
fn six_nodes_each_row_shows_its_chart_color_at_80x24_and_160x45() {
    let rates = [10_000, 25_000, 45_000, 60_000, 80_000, 100_000];
    let app = many_nodes(&rates);
    for (w, h) in [(80, 24), (160, 45)] {
        let buf = draw(&app, w, h);
        let text = screen(&buf);
        assert!(text.contains("total and ■ per node"), "{w}×{h}:\n{text}");
        let mut colors = Vec::new();
        for (i, n) in app.data.nodes.iter().enumerate() {
            let row = row_of(&buf, &n.spec.name);
            // Every number whole, the status too.
            let ops = kv_dash::browse::fmt_ops(rates[i] as f64);
            assert!(row.contains(&format!(" {ops} ")), "{w}×{h}: {ops} in {row}");
            assert!(row.contains("● up"), "{w}×{h}: {row}");
            let (x, y) = find(&buf, &format!("■ {}", n.spec.name))
                .unwrap_or_else(|| panic!("{w}×{h}: no swatch for {}:\n{text}", n.spec.name));
            colors.push(buf[(x, y)].fg);
        }
        let mut distinct = colors.clone();
        distinct.sort_by_key(|c| format!("{c:?}"));
        distinct.dedup();
        assert_eq!(distinct.len(), 6, "{w}×{h}: one color per node: {colors:?}");
        assert!(!colors.contains(&Color::Reset), "{colors:?}");
        if (w, h) == (160, 45) {
            // Each swatch's color is a line in the throughput chart.
            for c in &colors {
                let drawn = (0..h).any(|y| {
                    (0..w * 6 / 10)
                        .any(|x| buf[(x, y)].fg == *c && is_braille(buf[(x, y)].symbol()))
                });
                assert!(drawn, "no {c:?} line in the chart:\n{text}");
            }
        }
        // The chart's legend names the total only, so it fits at any node
        // count; at 80×24 the chart is too short for one, and the title
        // ("total and ■ per node") says the same.
        if (w, h) == (160, 45) {
            assert!(text.contains("│total│"), "{w}×{h}: legend:\n{text}");
        }
    }
}

#[test]
fn more_nodes_than_colors_chart_the_selected_one() {
    let rates: Vec<u64> = (1..=12).map(|i| i * 1000).collect();
    let mut app = many_nodes(&rates);
    app.apply(Action::Down);
    app.apply(Action::Down);
    let buf = draw(&app, 160, 45);
    let text = screen(&buf);
    assert!(text.contains("total and ■ client-node2 "), "{text}");
    assert!(find(&buf, "■ client-node2").is_some(), "{text}");
    assert!(find(&buf, "■ server-node0").is_none(), "{text}");
    assert!(row_of(&buf, "server-node0").starts_with("server-node0"));
}

#[test]
fn a_client_not_answered_yet_is_starting_and_nothing_counts_up() {
    let run = RunInfo {
        run_id: "r".into(),
        total: Some(Duration::from_secs(30)),
        ..RunInfo::default()
    };
    let mut app = LiveApp::new(
        run,
        vec![
            spec("server-node0", Role::Server, 8080),
            spec("client-node1", Role::Client, 9000),
        ],
    );
    app.color = true;
    for t in (0..=5_000u64).step_by(250) {
        app.ingest(0, Ok(snap(Role::Server, 1_000 + t, t, 0)), ms(t));
        app.ingest(1, Err("connection refused".into()), ms(t));
    }
    app.apply(Action::Down);
    let text = screen(&draw(&app, 120, 30));
    assert!(row_of(&draw(&app, 120, 30), "client-node1").contains("◌ starting"));
    assert!(!text.contains("DOWN"), "{text}");
    for v in [
        "starting: no client has answered yet (1 starting, up to 60 s)",
        "starting; last try: connection refused",
        "nodes up 1/2  starting 1",
    ] {
        assert!(text.contains(v), "missing {v:?} in\n{text}");
    }
    assert!(!text.contains(" s / 30 s"), "no gauge counting up: {text}");
}

#[test]
fn a_run_that_ended_says_so_servers_stopped_not_down() {
    let run = RunInfo {
        run_id: "r".into(),
        total: Some(Duration::from_secs(5)),
        ..RunInfo::default()
    };
    let mut app = LiveApp::new(
        run,
        vec![
            spec("server-node0", Role::Server, 8080),
            spec("client-node1", Role::Client, 9000),
        ],
    );
    for t in (0..=4_750u64).step_by(250) {
        app.ingest(0, Ok(snap(Role::Server, 1_000 + t, t, 0)), ms(t));
        app.ingest(1, Ok(snap(Role::Client, t, t, 0)), ms(t));
    }
    // Both go silent: the client at the end of its load, the server after.
    for t in (5_000..=8_000u64).step_by(250) {
        app.ingest(0, Err("connection refused".into()), ms(t));
        app.ingest(1, Err("connection refused".into()), ms(t));
    }
    let buf = draw(&app, 120, 30);
    let text = screen(&buf);
    assert!(row_of(&buf, "server-node0").contains("✔ stopped"), "{text}");
    assert!(
        row_of(&buf, "client-node1").contains("✔ finished"),
        "{text}"
    );
    assert!(!text.contains("DOWN"), "{text}");
    assert!(
        text.contains("run over: every client finished after 5 s of load; q quits"),
        "{text}"
    );
    assert_eq!(
        app.plain_line(),
        "[   5/5 s] total 0 ops/s, nodes up 0/2, finished server-node0 client-node1"
    );
}
