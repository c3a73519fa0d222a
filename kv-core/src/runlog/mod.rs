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

    #[test]
    fn old_schema_with_fewer_columns_still_reads() {
        let dir = TempDir::new("old");
        let path = dir.0.join("log.csv");
        // An imagined earlier layout: same leading columns, fewer of them.
        let header = COLUMNS[..21].join(",");
        let row = "1,20240101-000000-abcd,2024-01-01T00:00:00Z,30,deadbee,false,local,localhost,1,1,2,1,32,4,YCSB-B,0.5,1000,7,old run,ok,98765.4";
        fs::write(&path, format!("{header}\n{row}\n")).unwrap();
        let rows = read_log(&path).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].total_ops_per_s, Some(98765.4));
        assert_eq!(rows[0].workload, "YCSB-B");
        assert_eq!(rows[0].p99_us, None);
        assert_eq!(rows[0].tag, "");
    }

    #[test]
    fn newer_schema_and_garbage_are_clear_errors() {
        let dir = TempDir::new("bad");
        let path = dir.0.join("log.csv");
        let header = COLUMNS.join(",");
        fs::write(&path, format!("{header}\n2,20240101-000000-abcd\n")).unwrap();
        let err = read_log(&path).unwrap_err().to_string();
        assert!(
            err.contains(":2:") && err.contains("schema_version 2 is newer"),
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

    #[test]
    fn torn_last_line_does_not_swallow_the_next_row() {
        let dir = TempDir::new("torn");
        append_run(&dir.0, &sample("a")).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(log_path(&dir.0))
            .unwrap();
        f.write_all(b"1,torn-row").unwrap();
        append_run(&dir.0, &sample("b")).unwrap();
        let text = fs::read_to_string(log_path(&dir.0)).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert!(text.lines().nth(3).unwrap().contains(",b,"));
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
        assert_eq!(COLUMNS_PER_VERSION.len(), SCHEMA_VERSION as usize);
        assert_eq!(*COLUMNS_PER_VERSION.last().unwrap(), COLUMNS.len());
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
