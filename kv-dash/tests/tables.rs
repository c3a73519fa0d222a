//! Tables never cut a number, an id or a status (issue 13 item 6), and the
//! browser's series view (issues 15, 16, 18), over a log of real runs of
//! every kind: bench, in-process ceiling, Redis, a failed run, two series of
//! trials and a rate sweep (`fixtures/mixed`).

use std::process::Command;

use kv_dash::app::{App, SeriesChart, View};
use kv_dash::browse::{self, fmt_ops};
use kv_dash::input::Action::*;

use crate::util::*;

const SIZES: [(u16, u16); 3] = [(80, 24), (120, 30), (200, 50)];

fn mixed_app(dir: &TempDir) -> App {
    let mut app = App::load(&dir.0).expect("mixed log loads");
    app.color = false;
    app
}

/// No `…` touches a digit anywhere: whatever was cut, it was not a number.
fn assert_no_cut_number(screen: &str) {
    for line in screen.lines() {
        let chars: Vec<char> = line.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            if *c == '…' {
                let before = i.checked_sub(1).map(|j| chars[j]);
                let after = chars.get(i + 1);
                assert!(
                    !before.is_some_and(|b| b.is_ascii_digit())
                        && !after.is_some_and(|a| a.is_ascii_digit()),
                    "a number cut in {line:?}\n{screen}"
                );
            }
        }
    }
}

#[test]
fn runs_table_and_detail_keep_every_number_whole_at_80x24_and_wide() {
    let dir = mixed();
    let mut app = mixed_app(&dir);
    assert_eq!(app.runs.len(), 15);
    for (w, h) in SIZES {
        press(&mut app, &[First]);
        for _ in 0..app.visible.len() {
            let r = app.selected_run().unwrap().clone();
            let buf = draw(&app, w, h);
            let text = screen(&buf);
            assert_no_cut_number(&text);
            let row = lines(&buf)
                .into_iter()
                .find(|l| l.starts_with('│') && l.contains(&r.run_id))
                .unwrap_or_else(|| panic!("{w}x{h}: no whole row for {}\n{text}", r.run_id));
            // Every row that has a throughput shows it, whole.
            let tput = browse::throughput(&r).map_or("-".to_string(), |t| t.cell());
            assert!(
                row.contains(&format!(" {tput} ")),
                "{w}x{h}: {tput} in {row}"
            );
            if let Some(p99) = r.p99_us {
                assert!(row.contains(&format!(" {p99} ")), "{w}x{h}: p99 in {row}");
            }
            let status = if r.status.is_ok() { " ok " } else { " FAILED" };
            assert!(row.contains(status), "{w}x{h}: status in {row}");
            // The detail pane wraps between figures, never through one.
            if let Some(c) = r.client_ops_per_s {
                let item = format!("client {} ops/s", fmt_ops(c));
                assert!(text.contains(&item), "{w}x{h}: {item}\n{text}");
            }
            press(&mut app, &[Down]);
        }
    }
    // The Redis and in-process ceiling rows, "-" before, show the clients' figure.
    for (note, want) in [
        ("redis-benchmark -P 512 -d 128 GET", "36,451*"),
        ("ceiling", "230,441*"),
    ] {
        let r = app
            .runs
            .iter()
            .find(|r| r.note.contains(note))
            .unwrap()
            .clone();
        select_run(&mut app, &r.run_id);
        let buf = draw(&app, 80, 24);
        let row = lines(&buf)
            .into_iter()
            .find(|l| l.contains(&r.run_id))
            .unwrap();
        assert!(row.contains(want), "{row}");
    }
}

#[test]
fn flamegraph_and_compare_views_keep_ids_and_numbers_whole_at_80x24() {
    let dir = mixed();
    let mut app = mixed_app(&dir);
    select_run(&mut app, "20261202-183526-01ad");
    press(&mut app, &[Enter]);
    let text = screen(&draw(&app, 80, 24));
    assert!(
        text.contains("20261202-183526-01ad"),
        "run id whole:\n{text}"
    );
    press(&mut app, &[Enter]);
    let text = screen(&draw(&app, 80, 24));
    assert_no_cut_number(&text);
    assert!(text.contains("server-node0"), "{text}");

    // Two single runs side by side: at 80 columns the config goes below.
    let mut app = mixed_app(&dir);
    select_run(&mut app, "20261202-183526-01ad");
    press(&mut app, &[Mark]);
    select_run(&mut app, "20261202-182950-30c3");
    press(&mut app, &[Mark, Compare]);
    assert_eq!(app.view, View::Compare);
    let text = screen(&draw(&app, 80, 24));
    assert_no_cut_number(&text);
    for v in ["176,483", "218,321", "230,441", "135167", "51.6 MiB"] {
        assert!(text.contains(v), "{v} whole:\n{text}");
    }
}

#[test]
fn series_view_groups_trials_with_median_spread_and_verdict() {
    let dir = mixed();
    let mut app = mixed_app(&dir);
    press(&mut app, &[NextView, NextView]);
    assert_eq!(app.view, View::Series);
    let ids: Vec<&str> = app
        .series
        .series
        .iter()
        .map(|s| s.series_id.as_str())
        .collect();
    assert_eq!(ids, [SERIES_A, SERIES_B, SWEEP], "oldest first");
    for (w, h) in SIZES {
        let buf = draw(&app, w, h);
        let text = screen(&buf);
        assert_no_cut_number(&text);
        let row = |id: &str| {
            lines(&buf)
                .into_iter()
                .find(|l| l.starts_with('│') && l.contains(id))
                .unwrap_or_else(|| panic!("{w}x{h}: no row {id}\n{text}"))
        };
        // Series A: 66.0K, 85.8K, 176.5K; the baseline.
        let a = row(SERIES_A);
        assert!(a.contains("3/3") && a.contains("85,754 ±64.4%"), "{a}");
        assert!(a.contains("baseline"), "{a}");
        // B (batch 64) against A: 3 vs 3 trials are too few for an interval.
        let b = row(SERIES_B);
        assert!(b.contains("41,640 ±"), "{b}");
        assert!(b.contains("too few trials"), "{b}");
        assert!(
            text.contains(&format!("baseline: series {SERIES_A}")),
            "{text}"
        );
        // The trials of the selected series, and their band.
        for id in [
            "20261202-183504-3469",
            "20261202-183515-7ed7",
            "20261202-183526-01ad",
        ] {
            assert!(text.contains(id), "{w}x{h}: trial {id}\n{text}");
        }
    }
    match &app.series_chart {
        Some((
            id,
            SeriesChart::Band {
                median,
                low,
                high,
                trials,
            },
        )) => {
            assert_eq!((id.as_str(), *trials), (SERIES_A, 3));
            assert!(median.len() >= 4, "{median:?}");
            for ((m, l), h) in median.iter().zip(low).zip(high) {
                assert!(l.1 <= m.1 && m.1 <= h.1, "band around the median");
            }
        }
        other => panic!("no band: {other:?}"),
    }
    let text = screen(&draw(&app, 120, 30));
    assert!(
        text.contains("median of 3 trials, band lowest–highest"),
        "{text}"
    );

    // A run's detail names its series, the spread and the verdict.
    let mut runs = mixed_app(&dir);
    select_run(&mut runs, "20261202-184135-3b71");
    let text = screen(&draw(&runs, 80, 24));
    assert!(
        text.contains(&format!("series {SERIES_B} (trials): trial 2 of 3")),
        "{text}"
    );
    assert!(text.contains("throughput median 41,640 ops/s ±"), "{text}");
}

#[test]
fn sweep_series_shows_its_latency_throughput_curve() {
    let dir = mixed();
    let mut app = mixed_app(&dir);
    press(&mut app, &[NextView, NextView, Last]);
    match &app.series_chart {
        Some((id, SeriesChart::Curve(r))) => {
            assert_eq!(id, SWEEP);
            assert_eq!(r.steps.len(), 3);
        }
        other => panic!("no curve: {other:?}"),
    }
    for (w, h) in SIZES {
        let text = screen(&draw(&app, w, h));
        assert_no_cut_number(&text);
        assert!(text.contains("sweep 30%:90%:30%"), "{w}x{h}: label\n{text}");
        // The closed-loop run and the three steps are the series' trials.
        assert!(text.contains("4/4"), "{w}x{h}\n{text}");
        if w >= 120 {
            assert!(
                text.contains("latency vs achieved ops/s (3 steps), knee 113,544"),
                "{w}x{h}\n{text}"
            );
            for name in ["p50", "p99", "p99.9", "SLO 41726 us"] {
                assert!(text.contains(name), "{w}x{h}: legend {name}\n{text}");
            }
        }
    }
    assert!(matches!(
        app.apply(OpenSvg),
        Some(kv_dash::app::Effect::OpenFile(p)) if p.ends_with(format!("{SWEEP}.svg"))
    ));
}

#[test]
fn series_compare_and_profile_diff_in_the_browser() {
    let dir = mixed();
    let mut app = mixed_app(&dir);
    press(&mut app, &[NextView, NextView, First, Mark, Down, Mark]);
    assert_eq!(app.series_marks, [SERIES_A, SERIES_B]);
    press(&mut app, &[Compare]);
    assert_eq!(app.view, View::Compare);
    let g = app.group_comparison.as_ref().unwrap();
    assert!(g.a.contains(SERIES_A) && g.b.contains(SERIES_B));
    let text = screen(&draw(&app, 80, 24));
    assert_no_cut_number(&text);
    let row = text
        .lines()
        .find(|l| l.contains("throughput"))
        .expect(&text);
    assert!(
        row.contains("3/3") && row.contains("85,754") && row.contains("41,640"),
        "{row}"
    );
    assert!(row.contains("too few trials"), "{row}");
    assert!(text.contains("client.batch"), "config differences: {text}");

    // d: B's three profiles merged against A's, the same merge as `kv-dash diff`.
    press(&mut app, &[PrevView, ToggleDiff]);
    assert_eq!(app.view, View::Flame);
    let f = app.flame.as_ref().unwrap();
    assert!(f.run_id.contains("(3 profiles merged)"), "{}", f.run_id);
    let d = f.diff.as_ref().expect("a diff");
    let cli = kv_dash::cli::diff(
        &dir.0,
        SERIES_A,
        SERIES_B,
        None,
        1000,
        kv_dash::cli::Format::Json,
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&cli).unwrap();
    assert_eq!(json["samples_a"].as_u64(), Some(d.samples_a));
    assert_eq!(json["samples_b"].as_u64(), Some(f.graph.total_samples()));
    let text = screen(&draw(&app, 120, 40));
    assert!(text.contains("server-node0"), "{text}");
    assert!(
        text.contains(&format!("since series {SERIES_A}")) || text.contains("Δ"),
        "{text}"
    );
}

fn kv_dash(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_kv-dash"))
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn list_fits_80_columns_and_show_formats_like_list() {
    let dir = mixed();
    let d = dir.0.display().to_string();
    let app = mixed_app(&dir);
    for width in [80usize, 120] {
        let text = kv_dash(&["list", "--dir", &d, "--width", &width.to_string()]);
        assert!(text.lines().all(|l| l.chars().count() <= width), "{text}");
        // Only notes are cut, between words.
        assert_no_cut_number(&text);
        for line in text.lines().filter(|l| l.contains('…')) {
            assert!(
                line.trim_end().ends_with('…'),
                "cut elsewhere than the note: {line}"
            );
        }
        for r in &app.runs {
            let line = text
                .lines()
                .find(|l| l.starts_with(&r.run_id))
                .expect(&text);
            let tput = browse::throughput(r).map_or("-".to_string(), |t| t.cell());
            assert!(line.contains(&tput), "{tput} in {line}");
        }
        assert!(text.contains(browse::CLIENTS_ONLY_NOTE), "{text}");
    }
    // Unlimited when piped: every column.
    let wide = kv_dash(&["list", "--dir", &d]);
    assert!(wide.lines().next().unwrap().contains("NOTE"), "{wide}");

    let redis = kv_dash(&["show", "30c5", "--dir", &d]);
    assert!(redis.contains("client_ops_per_s       36,451\n"), "{redis}");
    let run = kv_dash(&["show", "01ad", "--dir", &d]);
    for v in [
        "total_ops_per_s        176,483\n",
        "client_ops_per_s       218,321\n",
        "steady_ops_per_s       178,892\n",
        "server_cpu_percent     12.7\n",
        "net_bytes_per_s        16.8 MiB/s\n",
        "batch                  1024\n",
    ] {
        assert!(run.contains(v), "{v:?} in\n{run}");
    }
    // No raw float like 3057417.134194691 anywhere.
    for line in run.lines().chain(redis.lines()) {
        let raw = line.split_whitespace().any(|w| {
            w.split_once('.').is_some_and(|(i, f)| {
                i.chars().all(|c| c.is_ascii_digit())
                    && f.len() > 3
                    && f.chars().all(|c| c.is_ascii_digit())
            })
        });
        assert!(!raw, "raw float in {line:?}");
    }
}
