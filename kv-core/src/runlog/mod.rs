//! The experiments record: `experiments/log.csv` (one row per run, append
//! only) and the per-run folder `experiments/runs/<run_id>/`.
//!
//! This module is the only place that knows that layout and the column
//! order. Writers (run orchestration, bench) call [`append_run`] and the
//! [`RunDir`] path helpers; readers (kv-dash, scripts) call [`read_log`] and
//! [`read_timeseries`]. Plotting and profiling live elsewhere.
//!
//! Schema rule: columns are only ever added at the end, with
//! [`SCHEMA_VERSION`] bumped. Each row carries its own version, because an
//! append-only file keeps the header it was created with; the reader therefore
//! maps fields by position, accepts any version up to the current one
//! (missing trailing fields read as `None`), and rejects a newer one.

mod error;
mod id;
mod log;
mod record;
mod rundir;
mod status;
mod summary;
mod timeseries;

pub use error::*;
pub use id::*;
pub use log::*;
pub use record::*;
pub use rundir::*;
pub use status::*;
pub use summary::*;
pub use timeseries::*;

/// The log file's name inside the experiments directory.
pub const LOG_FILE: &str = "log.csv";
/// The folder of per-run folders inside the experiments directory.
pub const RUNS_DIR: &str = "runs";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Role;
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::time::Duration;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// A fresh empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "kvlab-runlog-{name}-{}-{}",
                std::process::id(),
                new_run_id(SystemTime::now())
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn sample(note: &str) -> RunRecord {
        let mut r = RunRecord::new(SystemTime::now());
        r.git_commit = "abc1234".into();
        r.git_dirty = Some(false);
        r.backend = "local".into();
        r.hosts = "localhost".into();
        r.servers = Some(2);
        r.clients = Some(3);
        r.threads = PerClient::of([4]);
        r.series_id = "s-1".into();
        r.config_hash = "abc123".into();
        r.batch = Some(64);
        r.workload = "YCSB-A".into();
        r.theta = Some(0.99);
        r.seed = Some(42);
        r.note = note.into();
        r.total_ops_per_s = Some(1_234_567.5);
        r.p99_us = Some(850);
        r
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661); // 2000-02-29
        assert_eq!(rfc3339_utc(t), "2000-02-29T01:01:01Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(rfc3339_utc(t), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn run_ids_sortable_and_distinct() {
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        let a = new_run_id(t);
        assert!(a.starts_with("20241231-235959-"), "{a}");
        assert_eq!(a.len(), "20241231-235959-abcd".len());
        let ids: std::collections::HashSet<String> = (0..200).map(|_| new_run_id(t)).collect();
        // One process never repeats an id.
        assert_eq!(ids.len(), 200);
        assert!(new_run_id(t + Duration::from_secs(1)) > a);
    }

    #[test]
    fn two_appends_give_two_rows_with_distinct_ids() {
        let dir = TempDir::new("two");
        let a = sample("first, with \"quotes\"");
        let mut b = sample("second\nline");
        b.status = RunStatus::Failed("server 1 died".into());
        append_run(&dir.0, &a).unwrap();
        append_run(&dir.0, &b).unwrap();
        let rows = read_log(&log_path(&dir.0)).unwrap();
        assert_eq!(rows.len(), 2);
        assert_ne!(rows[0].run_id, rows[1].run_id);
        assert_eq!(rows[0], a);
        assert_eq!(rows[0].servers, Some(2));
        assert_eq!(rows[0].theta, Some(0.99));
        assert_eq!(rows[1].note, "second\nline");
        assert_eq!(rows[1].status, RunStatus::Failed("server 1 died".into()));
        assert_eq!(
            rows[1].total_ops_per_s, None,
            "failed run carries no number"
        );
        let text = fs::read_to_string(log_path(&dir.0)).unwrap();
        assert_eq!(text.matches("schema_version").count(), 1);
        assert!(text.starts_with(&COLUMNS.join(",")));
    }

    #[test]
    fn concurrent_thread_appends_all_land() {
        let dir = TempDir::new("threads");
        let hs: Vec<_> = (0..8)
            .map(|t| {
                let d = dir.0.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        append_run(&d, &sample(&format!("t{t} i{i} {}", "x".repeat(300)))).unwrap();
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        let rows = read_log(&log_path(&dir.0)).unwrap();
        assert_eq!(rows.len(), 200);
        assert!(rows.iter().all(|r| r.total_ops_per_s == Some(1_234_567.5)));
    }

    /// Child half of `concurrent_process_appends_all_land`: does nothing
    /// unless started by it with the env var set.
    #[test]
    fn child_appender() {
        if let Ok(dir) = std::env::var("KVLAB_RUNLOG_CHILD_DIR") {
            for i in 0..20 {
                append_run(
                    Path::new(&dir),
                    &sample(&format!("pid {} i{i}", std::process::id())),
                )
                .unwrap();
            }
        }
    }

    #[test]
    fn concurrent_process_appends_all_land() {
        let dir = TempDir::new("procs");
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..4)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args(["--exact", "runlog::tests::child_appender", "--nocapture"])
                    .env("KVLAB_RUNLOG_CHILD_DIR", &dir.0)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let rows = read_log(&log_path(&dir.0)).unwrap();
        assert_eq!(rows.len(), 80);
        // Every child's every row landed once, intact (notes are unique).
        let notes: std::collections::HashSet<&str> = rows.iter().map(|r| r.note.as_str()).collect();
        assert_eq!(notes.len(), 80);
    }

    /// Real logs written by earlier builds (schema 1, 33 columns; kept in
    /// kv-core/tests/fixtures/logs/) read whole under today's schema.
    #[test]
    fn every_old_log_fixture_still_reads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs");
        let mut seen = 0;
        for e in fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let rows = read_log(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!rows.is_empty(), "{}", path.display());
            for r in &rows {
                assert_eq!(r.schema_version, 1);
                assert!(
                    r.run_id.len() == "20250101-000000-abcd".len(),
                    "{}",
                    r.run_id
                );
                // Columns added later read as unknown.
                assert_eq!((r.series_id.as_str(), r.config_hash.as_str()), ("", ""));
                // Written again, a v1 row becomes a current one and reads the same.
                let again = RunRecord::from_fields(
                    &r.to_fields().iter().map(String::as_str).collect::<Vec<_>>(),
                )
                .unwrap();
                assert_eq!(
                    RunRecord {
                        schema_version: 1,
                        ..again
                    },
                    *r
                );
            }
            seen += 1;
        }
        assert!(seen >= 2, "fixtures missing in {}", dir.display());
        let real = read_log(&dir.join("v1-real-runs.csv")).unwrap();
        assert_eq!(real[0].run_id, "20261202-092117-c0ec");
        assert_eq!(real[0].total_ops_per_s, Some(919349.365));
        assert_eq!(real[0].threads.uniform(), Some(1));
    }

    #[test]
    fn newer_schema_and_garbage_are_clear_errors() {
        let dir = TempDir::new("bad");
        let path = dir.0.join("log.csv");
        let header = COLUMNS.join(",");
        let newer = SCHEMA_VERSION + 1;
        fs::write(&path, format!("{header}\n{newer},20240101-000000-abcd\n")).unwrap();
        let err = read_log(&path).unwrap_err().to_string();
        assert!(
            err.contains(":2:") && err.contains(&format!("schema_version {newer} is newer")),
            "{err}"
        );

        let mut fields = sample("n").to_fields();
        fields[8] = "two".into();
        fs::write(&path, format!("{header}\n{}", fields.join(","))).unwrap();
        let err = read_log(&path).unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("servers"), "{err}");

        fs::write(&path, "hello,world\n").unwrap();
        assert!(read_log(&path)
            .unwrap_err()
            .to_string()
            .contains("no header"));
        assert!(read_log(&dir.0.join("missing.csv"))
            .unwrap_err()
            .is_not_found());
    }

    /// A row cut short (here inside total_ops_per_s, as a writer dying
    /// mid-row leaves it) is never data, whatever precedes or follows it:
    /// read back, it is reported with its line and every other run is kept.
    #[test]
    fn torn_rows_are_reported_never_read_as_data() {
        let dir = TempDir::new("torn");
        append_run(&dir.0, &sample("a")).unwrap();
        let whole = sample("torn").to_fields();
        let cut = whole[..21].join(",");
        let cut = &cut[..cut.len() - 4]; // "1234567.5" → "12345"
        let mut f = OpenOptions::new()
            .append(true)
            .open(log_path(&dir.0))
            .unwrap();
        f.write_all(cut.as_bytes()).unwrap();
        append_run(&dir.0, &sample("b")).unwrap();
        // Torn at the very end too (no newline after it).
        let mut f = OpenOptions::new()
            .append(true)
            .open(log_path(&dir.0))
            .unwrap();
        f.write_all(whole[..5].join(",").as_bytes()).unwrap();

        let log = read_log_all(&log_path(&dir.0)).unwrap();
        let notes: Vec<&str> = log.runs.iter().map(|r| r.note.as_str()).collect();
        assert_eq!(notes, ["a", "b"], "only the whole rows are runs");
        assert_eq!(log.runs[1].total_ops_per_s, Some(1_234_567.5));
        let bad: Vec<String> = log.bad.iter().map(|e| e.to_string()).collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].ends_with(&format!(
                "log.csv:3: torn row: 21 fields, but schema_version {SCHEMA_VERSION} has {}",
                COLUMNS.len()
            )),
            "{bad:?}"
        );
        assert!(bad[1].contains("log.csv:5: torn row: 5 fields"), "{bad:?}");
        assert!(
            log.warnings()[0].starts_with("warning: ")
                && log.warnings()[0].ends_with("(row skipped)")
        );
        // The strict reader refuses the file, naming the first bad line.
        let err = read_log(&log_path(&dir.0)).unwrap_err().to_string();
        assert!(err.contains("log.csv:3: torn row"), "{err}");
    }

    /// The column docs in experiments/README.md are generated from the
    /// table: this fails when they drift (KVLAB_WRITE_DOCS=1 rewrites them).
    #[test]
    fn column_docs_match_the_readme() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/README.md");
        let text = fs::read_to_string(&path).unwrap();
        let (begin, end) = ("<!-- columns:begin -->\n", "<!-- columns:end -->");
        let a = text.find(begin).expect("columns:begin marker") + begin.len();
        let b = text.find(end).expect("columns:end marker");
        let want = column_docs();
        if text[a..b] != want {
            if std::env::var_os("KVLAB_WRITE_DOCS").is_some() {
                fs::write(&path, format!("{}{want}{}", &text[..a], &text[b..])).unwrap();
            } else {
                panic!(
                    "experiments/README.md column table is stale: run \
                     KVLAB_WRITE_DOCS=1 cargo test -p kv-core column_docs"
                );
            }
        }
    }

    #[test]
    fn python_csv_module_parses_the_log() {
        let dir = TempDir::new("py");
        append_run(&dir.0, &sample("plain")).unwrap();
        append_run(&dir.0, &sample("comma, \"quote\"\nnewline")).unwrap();
        let mut failed = sample("dead");
        failed.status = RunStatus::Failed("server 0 exited".into());
        append_run(&dir.0, &failed).unwrap();
        let script = "import csv,sys\n\
            rows=list(csv.DictReader(open(sys.argv[1],newline='')))\n\
            assert len(rows)==3, len(rows)\n\
            assert rows[1]['note']=='comma, \"quote\"\\nnewline', rows[1]['note']\n\
            assert rows[2]['status']=='failed: server 0 exited'\n\
            assert rows[2]['total_ops_per_s']==''\n\
            assert float(rows[0]['total_ops_per_s'])==1234567.5\n\
            assert all(len(r)==int(sys.argv[2]) for r in rows)\n\
            print('ok', len(rows))";
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(log_path(&dir.0))
            .arg(COLUMNS.len().to_string())
            .output()
            .expect("python3 is on the machine");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 3");
    }

    #[test]
    fn columns_per_version_matches() {
        assert_eq!(columns_in(1), Some(33));
        assert_eq!(columns_in(SCHEMA_VERSION), Some(COLUMNS.len()));
        assert_eq!(columns_in(0), None);
        assert_eq!(columns_in(SCHEMA_VERSION + 1), None);
        // Versions only grow down the table: columns are added at the end.
        assert!(TABLE.windows(2).all(|w| w[0].since <= w[1].since));
        assert_eq!(TABLE.last().unwrap().since, SCHEMA_VERSION);
        assert_eq!(sample("x").to_fields().len(), COLUMNS.len());
    }

    #[test]
    fn run_dir_layout_and_profiles() {
        let dir = TempDir::new("rundir");
        let run = RunDir::new(&dir.0, "20240101-000000-abcd");
        run.create().unwrap();
        assert!(run.logs_dir().is_dir());
        assert!(run.path().ends_with("runs/20240101-000000-abcd"));
        for (role, node, kind) in [
            (Role::Client, "0", ProfileKind::Folded),
            (Role::Server, "1", ProfileKind::Svg),
            (Role::Server, "1", ProfileKind::Folded),
            (Role::Server, "0", ProfileKind::Pb),
        ] {
            fs::write(run.profile(role, node, kind), "x").unwrap();
        }
        assert!(run
            .profile(Role::Server, "1", ProfileKind::Svg)
            .ends_with("server-1.svg"));
        let p = run.profiles().unwrap();
        let names: Vec<String> = p.iter().map(ProcessProfile::name).collect();
        assert_eq!(names, ["server-0", "server-1", "client-0"]);
        assert!(p[1].svg.is_some() && p[1].folded.is_some() && p[1].pb.is_none());

        let rows: Vec<TimeseriesRow> = (1..=5)
            .flat_map(|t| {
                ["0", "1"].map(|n| TimeseriesRow {
                    t_s: t as f64,
                    node: n.into(),
                    role: Role::Server,
                    ops_per_s: 100.0 * t as f64,
                    gets_per_s: 50.0 * t as f64,
                    puts_per_s: 50.0 * t as f64,
                    cpu_percent: 90.0,
                    rss_bytes: 1000 + t,
                    net_bytes_per_s: 1e6,
                    p50_us: (n == "1").then_some(100 + t),
                    p99_us: (n == "1").then_some(900 + t),
                })
            })
            .collect();
        write_timeseries(&run.timeseries_csv(), &rows).unwrap();
        let text = fs::read_to_string(run.timeseries_csv()).unwrap();
        assert!(text.starts_with(&TIMESERIES_COLUMNS.join(",")));
        assert_eq!(read_timeseries(&run.timeseries_csv()).unwrap(), rows);
        let med = node_medians(&rows);
        assert_eq!(med.len(), 2);
        assert_eq!(med[0].median_ops_per_s, 300.0);
        assert_eq!(med[0].peak_rss_bytes, 1005);
        assert_eq!(
            (med[0].median_p99_us, med[1].median_p99_us),
            (None, Some(903))
        );

        let summary = RunSummary {
            record: sample("s"),
            nodes: med,
        };
        write_json(&run.summary_json(), &summary).unwrap();
        assert_eq!(
            read_json::<RunSummary>(&run.summary_json()).unwrap(),
            summary
        );
    }
}
