//! The plain-text commands on the real binary, including the error cases.

use std::process::{Command, Output};

use crate::util::*;

fn kv_dash(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kv-dash"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("kv-dash runs")
}

fn ok(args: &[&str]) -> String {
    let out = kv_dash(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a failing command: exit 1, one line on stderr, nothing on stdout.
fn fails(args: &[&str]) -> String {
    let out = kv_dash(args);
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("kv-dash: "), "{err}");
    err
}

fn dir() -> String {
    fixtures().display().to_string()
}

#[test]
fn list_table_json_csv() {
    let d = dir();
    let text = ok(&["list", "--dir", &d]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("RUN ID"));
    assert!(lines[1].starts_with("20250104-100000-dddd"));
    assert!(lines[4].starts_with(A));
    assert!(lines[2].contains("FAILED: server 1 exited"));
    assert!(lines[1].contains("210,000"));

    let json: serde_json::Value =
        serde_json::from_str(&ok(&["list", "--dir", &d, "--json"])).unwrap();
    let runs = json.as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[1]["status"], "failed: server 1 exited");
    assert!(runs[1]["total_ops_per_s"].is_null());
    assert_eq!(runs[3]["total_ops_per_s"], 100000.0);

    let csv_text = ok(&["list", "--dir", &d, "--csv"]);
    let mut rdr = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(&rdr.headers().unwrap()[0], "schema_version");
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(&rows[0][18], "batch 128, \"big\"");
}

#[test]
fn show_by_prefix_with_medians_and_profiles() {
    let d = dir();
    let text = ok(&["show", "20250101", "--dir", &d]);
    assert!(
        text.contains(&format!("run_id                 {A}")),
        "{text}"
    );
    // Numbers as `list` shows them, never a raw float.
    assert!(text.contains("total_ops_per_s        100,000"), "{text}");
    assert!(text.contains("server_peak_rss_bytes  50.0 MiB"), "{text}");
    assert!(text.contains("batch                  64\n"), "{text}");
    assert!(text.contains("server-0  100,000"), "{text}");
    assert!(text.contains("profiles: server-0, client-0"));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["show", A, "--dir", &d, "--json"])).unwrap();
    assert_eq!(json["record"]["servers"], 1);
    assert_eq!(json["nodes"][0]["median_ops_per_s"], 100000.0);
    assert_eq!(json["profiles"][1], "client-0");
}

/// Run B's time series has the per-second client latency columns; run A's
/// predates them and still reads, with no latency.
#[test]
fn show_gives_client_p99_when_recorded() {
    let d = dir();
    let text = ok(&["show", B, "--dir", &d]);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in\n{text}"))
            .to_string()
    };
    assert!(text.contains("P99 US"), "{text}");
    assert!(row("client-0 ").trim_end().ends_with(" 1100"), "{text}");
    assert!(row("server-1 ").trim_end().ends_with(" -"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["show", B, "--dir", &d, "--json"])).unwrap();
    let client = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == "client")
        .unwrap();
    assert_eq!(client["median_p99_us"], 1100);
    let old: serde_json::Value =
        serde_json::from_str(&ok(&["show", A, "--dir", &d, "--json"])).unwrap();
    assert!(old["nodes"][1]["median_p99_us"].is_null(), "{old}");
}

#[test]
fn diff_names_what_grew_and_shrank() {
    let d = dir();
    // A = run B (get 40%, decode 30%), B = run A (get 60%, decode 10%).
    let text = ok(&["diff", B, A, "--dir", &d, "-n", "3"]);
    assert!(
        text.starts_with(&format!(
            "server-0: A = {B} (1000 samples), B = {A} (1000 samples)"
        )),
        "{text}"
    );
    // The table ends at the first blank line (notes follow it).
    let rows: Vec<&str> = text.lines().skip(3).take_while(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 3, "{text}");
    for (row, end) in [
        (
            rows[0],
            "30.0%    10.0%    -20.0   -20.0  bincode::deserialize",
        ),
        (
            rows[1],
            "40.0%    60.0%    +20.0   +20.0  kv_server::store::get",
        ),
    ] {
        assert!(row.ends_with(end), "{row:?} vs {end:?}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["diff", B, A, "--dir", &d, "--json"])).unwrap();
    assert_eq!(json["process"], "server-0");
    assert_eq!(json["functions"][1]["name"], "kv_server::store::get");
    assert_eq!(json["functions"][1]["total_percent_b"], 60.0);
    let csv_text = ok(&["diff", B, A, "--dir", &d, "--csv"]);
    assert!(csv_text.starts_with("function,total_percent_a,total_percent_b"));
    // Run A never profiled server-1: named, with what it has.
    let err = fails(&["diff", A, B, "--dir", &d, "--process", "server-1"]);
    assert!(
        err.contains(&format!(
            "run {A} has no process 'server-1' (profiled: server-0, client-0)"
        )),
        "{err}"
    );
    assert!(fails(&["diff", A, "nope", "--dir", &d]).contains("unknown run id 'nope'"));
}

#[test]
fn compare_table_json_csv() {
    let d = dir();
    let text = ok(&["compare", A, B, "--dir", &d]);
    let tput = text
        .lines()
        .find(|l| l.starts_with("total_ops_per_s"))
        .unwrap();
    assert!(
        tput.contains("100,000") && tput.contains("150,000") && tput.ends_with("+50.0%"),
        "{tput}"
    );
    assert!(text.lines().any(|l| l.starts_with("≠  servers")), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["compare", A, B, "--dir", &d, "--json"])).unwrap();
    assert_eq!(json["metrics"][0]["change_percent"], 50.0);
    // One trial a side: every verdict says so rather than guessing.
    let verdicts = json["verdicts"]["metrics"].as_array().unwrap();
    assert!(!verdicts.is_empty());
    assert!(
        verdicts.iter().all(|m| m["verdict"] == "too-few-trials"),
        "{json}"
    );
    let csv_text = ok(&["compare", A, B, "--dir", &d, "--csv"]);
    assert!(
        csv_text
            .starts_with("kind,name,a,b,change_percent\nmetric,total_ops_per_s,100000,150000,50\n"),
        "{csv_text}"
    );
}

#[test]
fn top_by_self_total_and_process() {
    let d = dir();
    let text = ok(&["top", A, "-n", "2", "--dir", &d]);
    assert!(
        text.starts_with(&format!("server-0 of run {A}: 1000 samples, top 2 by self")),
        "{text}"
    );
    let rows: Vec<&str> = text.lines().skip(3).collect();
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0].ends_with("60.0%  60.0%  kv_server::store::get"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "top",
        A,
        "--process",
        "client-0",
        "--by",
        "total",
        "-n",
        "1",
        "--json",
        "--dir",
        &d,
    ]))
    .unwrap();
    assert_eq!(json["process"], "client-0");
    assert_eq!(json["functions"][0]["total_percent"], 100.0);
    assert_eq!(json["samples"], 1000);
    let csv_text = ok(&["top", B, "--process", "server-1", "--csv", "--dir", &d]);
    assert!(csv_text
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("kv_server::store::get,400,400,40.000"));
}

#[test]
fn errors_are_one_line_and_exit_1() {
    let d = dir();
    assert!(fails(&["show", "nope", "--dir", &d]).contains("unknown run id 'nope'"));
    assert!(fails(&["show", "2025", "--dir", &d]).contains("ambiguous"));
    assert!(fails(&["compare", A, "zzz", "--dir", &d]).contains("unknown run id 'zzz'"));
    assert!(fails(&["top", A, "--process", "server-9", "--dir", &d])
        .contains("has no process 'server-9'"));
    assert!(fails(&["top", "20250104", "--dir", &d]).contains("has no .folded profiles"));

    let empty = TempDir::new("missing");
    let e = empty.0.display().to_string();
    assert!(fails(&["list", "--dir", &e]).contains("no experiments log at"));
    // The browser checks the log before touching the terminal.
    assert!(fails(&["--dir", &e]).contains("no experiments log at"));

    let header = kv_core::runlog::COLUMNS.join(",");
    let bad = TempDir::new("malformed");
    let b = bad.0.display().to_string();
    let good_row = std::fs::read_to_string(fixtures().join("log.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    std::fs::write(
        bad.0.join("log.csv"),
        format!("{header}\n{good_row}\n1,x,t,lots\n"),
    )
    .unwrap();
    // A bad row is named with its line; every other run is still listed.
    let warned = |expect: &str| {
        let out = kv_dash(&["list", "--dir", &b]);
        assert!(out.status.success(), "a bad row does not hide the log");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(expect), "{expect}: {err}");
        String::from_utf8(out.stdout).unwrap().lines().count()
    };
    assert_eq!(warned("log.csv:3: torn row: 4 fields"), 2);
    let mut f: Vec<&str> = good_row.splitn(5, ',').collect();
    f[3] = "lots";
    std::fs::write(
        bad.0.join("log.csv"),
        format!("{header}\n{}\n{good_row}\n", f.join(",")),
    )
    .unwrap();
    assert_eq!(
        warned("log.csv:2: column duration_s: 'lots' is not a valid number"),
        2
    );
    std::fs::write(bad.0.join("log.csv"), format!("{header}\n9,x\n")).unwrap();
    assert_eq!(warned("log.csv:2: schema_version 9 is newer"), 1);
    std::fs::write(bad.0.join("log.csv"), "not,a,log\n").unwrap();
    assert!(fails(&["--dir", &b]).contains("no header"));
    std::fs::write(bad.0.join("log.csv"), format!("{header}\n")).unwrap();
    assert_eq!(
        ok(&["list", "--dir", &b]).lines().count(),
        1,
        "header only: empty list"
    );

    let out = kv_dash(&["list", "--json", "--csv"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
}

#[test]
fn bench_log_reports_timings() {
    let text = ok(&["bench-log", "--runs", "300"]);
    assert!(text.starts_with("runs 300: write "), "{text}");
    assert!(text.contains("open ") && text.contains("first frame"));
}

/// An experiments dir with one setup run at three commits (the third 30%
/// slower) and one run of another setup; not inside any git repository, so
/// commits are ordered by when they were first run.
fn history_dir() -> TempDir {
    use kv_core::identity::ConfigIdentity;
    use kv_core::runlog::{append_run, RunRecord, RunStatus};
    use kv_core::series::TrialInfo;
    use std::time::{Duration, UNIX_EPOCH};
    let d = TempDir::new("history");
    let jitter = [-6e3, 3e3, -1e3, 5e3, 0.0];
    let mut n = 0u64;
    let mut add = |commit: &str, batch: u32, tput: f64| {
        n += 1;
        let mut r = RunRecord::new(UNIX_EPOCH + Duration::from_secs(1_750_000_000 + n * 60));
        r.git_commit = commit.into();
        r.status = RunStatus::Ok;
        r.total_ops_per_s = Some(tput);
        append_run(&d.0, &r).unwrap();
        std::fs::create_dir_all(d.0.join("runs").join(&r.run_id)).unwrap();
        let mut id = ConfigIdentity::new();
        id.set("git.commit", commit)
            .set("git.dirty_diff", "clean")
            .set("client.batch", batch);
        TrialInfo::new(String::new(), 0, id)
            .write(&d.0, &r.run_id)
            .unwrap();
    };
    add("c0ffee000000", 8, 5e5);
    for (commit, level) in [
        ("aaaa00000001", 1e6),
        ("bbbb00000002", 1e6),
        ("cccc00000003", 7e5),
    ] {
        for j in jitter {
            add(commit, 64, level + j);
        }
    }
    d
}

#[test]
fn history_orders_commits_and_flags_only_the_real_change() {
    let d = history_dir();
    let p = d.0.display().to_string();
    let svg = d.0.join("h.svg").display().to_string();
    let text = ok(&["history", "--dir", &p, "--svg", &svg]);
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("0000000")).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[0].starts_with("aaaa") && rows[1].starts_with("bbbb"),
        "{text}"
    );
    assert!(!rows[1].contains('◆'), "A/A flagged: {text}");
    assert!(rows[2].starts_with("cccc") && rows[2].contains("worse") && rows[2].contains('◆'));
    assert!(rows[2].contains("-30."), "{text}");
    assert!(text.contains("other configs (--config HASH): "), "{text}");
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.contains("<polygon") && chart.contains("cccc00000003"),
        "band and change"
    );

    let json: serde_json::Value =
        serde_json::from_str(&ok(&["history", "--dir", &p, "--svg", &svg, "--json"])).unwrap();
    assert_eq!(json["points"][2]["vs_previous"]["verdict"], "worse");
    assert_eq!(
        json["points"][1]["vs_previous"]["verdict"],
        "no-significant-difference"
    );
    assert_eq!(json["points"][0]["trials"], 5);

    // The other setup by its hash prefix: one code state, nothing to compare.
    let other = text
        .lines()
        .find_map(|l| l.strip_prefix("other configs (--config HASH): "))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let one = ok(&[
        "history",
        "--dir",
        &p,
        "--svg",
        &svg,
        "--config",
        &other[..6],
    ]);
    assert!(
        one.contains("1 code state,") && one.contains("c0ffee"),
        "{one}"
    );
    assert!(fails(&["history", "--dir", &p, "--config", "zzz"]).contains("no run has config 'zzz'"));
}

/// Two series of 5 trials (B 30% faster) with A as the baseline: `show`
/// and the browser's detail pane name a run's series, its spread and the
/// verdict against the baseline.
#[test]
fn show_and_detail_give_the_series_and_the_verdict_against_the_baseline() {
    use kv_core::identity::ConfigIdentity;
    use kv_core::runlog::{append_run, RunRecord, RunStatus};
    use kv_core::series::{Baseline, SeriesInfo, TrialInfo};
    use std::time::{Duration, UNIX_EPOCH};
    let d = TempDir::new("series-detail");
    let mut last = String::new();
    for (k, (sid, level)) in [("s-a", 1e6), ("s-b", 1.3e6)].into_iter().enumerate() {
        SeriesInfo {
            series_id: sid.into(),
            created_at: format!("2026-01-0{}T00:00:00Z", k + 1),
            side: String::new(),
            label: format!("side {sid}"),
            trials: 5,
            compared_with: None,
        }
        .write(&d.0)
        .unwrap();
        for (i, j) in [-6e3, 3e3, -1e3, 5e3, 0.0].into_iter().enumerate() {
            let t = 1_750_000_000 + (k * 10 + i) as u64 * 60;
            let mut r = RunRecord::new(UNIX_EPOCH + Duration::from_secs(t));
            r.status = RunStatus::Ok;
            r.total_ops_per_s = Some(level + j);
            append_run(&d.0, &r).unwrap();
            std::fs::create_dir_all(d.0.join("runs").join(&r.run_id)).unwrap();
            TrialInfo::new(sid.into(), i as u32 + 1, ConfigIdentity::new())
                .write(&d.0, &r.run_id)
                .unwrap();
            last = r.run_id;
        }
    }
    Baseline::Series("s-a".into()).write(&d.0).unwrap();
    // A check-mode witness page kept by record.
    let logs = d.0.join("runs").join(&last).join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("witness-key-5.html"), "<!DOCTYPE html>").unwrap();
    let p = d.0.display().to_string();
    let text = ok(&["show", &last, "--dir", &p]);
    assert!(
        text.contains(&format!(
            "check witness: {}",
            logs.join("witness-key-5.html").display()
        )),
        "{text}"
    );
    let at = text.find("series s-b").expect(&text);
    let block: String = text[at..]
        .lines()
        .take_while(|l| !l.is_empty() && !l.starts_with("check witness"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(block.lines().all(|l| l.chars().count() <= 80), "{block}");
    let flat = block.replace('\n', "  ");
    assert!(flat.starts_with("series s-b (side s-b): trial 5 of 5  throughput median 1,300,000 ops/s ±0.4% over 5 ok trials  (min 1,294,000, max 1,305,000)"), "{block}");
    assert!(flat.contains("vs baseline: +30."), "{block}");
    assert!(flat.contains("better (series s-a (side s-a))"), "{block}");

    let mut app = kv_dash::app::App::load(&d.0).unwrap();
    select_run(&mut app, &last);
    let screen = lines(&draw(&app, 200, 40)).join("\n");
    assert!(
        screen.contains("series s-b (side s-b): trial 5 of 5"),
        "{screen}"
    );
}

/// Run ids resolve the same way in every command: a unique prefix or the
/// unique 4-hex ending; an ambiguous one lists its candidates. A process
/// is named `server-0` (role and node) or by its node alone.
#[test]
fn run_ids_by_ending_and_processes_by_node() {
    let d = dir();
    let by_end = ok(&["show", "cccc", "--dir", &d]);
    assert!(by_end.contains("20250103-100000-cccc"), "{by_end}");
    assert_eq!(ok(&["show", "100000-cccc", "--dir", &d]), by_end);
    let err = fails(&["show", "2025", "--dir", &d]);
    assert!(
        err.contains("4 runs match it: 20250101-100000-aaaa, 20250102-100000-bbbb"),
        "{err}"
    );
    let by_name = ok(&["top", "aaaa", "--process", "server-0", "--dir", &d]);
    assert_eq!(ok(&["top", "aaaa", "--process", "0", "--dir", &d]), by_name);
}

/// A torn row never hides the other runs, is never shown as data, and is
/// named with its line; control characters in notes and tags are shown
/// escaped, never sent to the terminal (the CSV keeps them exactly).
#[test]
fn torn_rows_are_named_and_notes_cannot_drive_the_terminal() {
    use kv_core::runlog::{append_run, log_path, RunRecord};
    let tmp = TempDir::new("torn-list");
    let mut a = RunRecord::new(std::time::SystemTime::now());
    a.note = "evil\x1b[2J\nsecond line\tend".into();
    a.tag = "t\x07ag".into();
    a.total_ops_per_s = Some(1_184_129.0);
    append_run(&tmp.0, &a).unwrap();
    // A row cut inside total_ops_per_s: 21 fields, "1184" of 1,184,129.
    let mut c = RunRecord::new(std::time::SystemTime::now());
    c.note = "torn".into();
    c.total_ops_per_s = Some(1_184_129.0);
    let mut torn = c.to_fields()[..21].join(",");
    torn.truncate(torn.len() - 3);
    assert!(torn.ends_with(",ok,1184"), "{torn}");
    let mut text = std::fs::read_to_string(log_path(&tmp.0)).unwrap();
    text += &torn;
    std::fs::write(log_path(&tmp.0), text).unwrap();
    let mut b = RunRecord::new(std::time::SystemTime::now());
    b.note = "fine".into();
    b.total_ops_per_s = Some(2_000_000.0);
    append_run(&tmp.0, &b).unwrap();

    let d = tmp.0.display().to_string();
    let out = kv_dash(&["list", "--dir", &d]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    // Line 4: the first run's note spans lines 2 and 3.
    assert!(
        stderr.contains("log.csv:4: torn row: 21 fields"),
        "{stderr}"
    );
    assert_eq!(stdout.lines().count(), 3, "header and two runs:\n{stdout}");
    assert!(
        stdout.contains("1,184,129") && stdout.contains("2,000,000"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(" 1,184 "),
        "the torn row is not data:\n{stdout}"
    );
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\x07'),
        "{stdout:?}"
    );
    assert!(
        stdout.contains(r"evil\u{1b}[2J\nsecond line\tend"),
        "{stdout}"
    );
    let show = ok(&["show", &a.run_id, "--dir", &d]);
    assert!(
        !show.contains('\x1b') && show.contains(r"t\u{7}ag"),
        "{show:?}"
    );
    // The CSV output keeps the note exactly.
    let csv = ok(&["list", "--csv", "--dir", &d]);
    assert!(csv.contains("evil\x1b[2J\nsecond line\tend"));
}
