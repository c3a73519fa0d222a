//! `kv-dash bench-log --runs N`: writes a log of N runs through
//! `runlog::append_run` into a scratch directory, then times what opening
//! the browser costs: reading the log, building the sorted table, drawing
//! the first frame.

use std::time::{Duration, Instant, SystemTime};

use kv_core::runlog::{self, RunRecord, RunStatus};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::app::App;
use crate::browse;

/// Timings of one benchmark round.
#[derive(Debug, Clone)]
pub struct BenchLog {
    pub runs: usize,
    pub write: Duration,
    pub read: Duration,
    pub table: Duration,
    pub first_frame: Duration,
}

impl BenchLog {
    /// What a user waits for: read + table + first frame.
    pub fn open(&self) -> Duration {
        self.read + self.table + self.first_frame
    }
}

impl std::fmt::Display for BenchLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "runs {}: write {:.1} ms; open {:.1} ms = read {:.1} ms + table {:.1} ms + first frame {:.1} ms",
            self.runs,
            ms(self.write),
            ms(self.open()),
            ms(self.read),
            ms(self.table),
            ms(self.first_frame)
        )
    }
}

/// Runs the benchmark in a fresh directory under the system temp dir and
/// removes it afterwards.
pub fn bench_log(runs: usize) -> anyhow::Result<BenchLog> {
    let dir = std::env::temp_dir().join(format!(
        "kv-dash-bench-{}-{}",
        std::process::id(),
        runlog::new_run_id(SystemTime::now())
    ));
    let result = bench_in(&dir, runs);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn bench_in(dir: &std::path::Path, runs: usize) -> anyhow::Result<BenchLog> {
    let t0 = Instant::now();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600);
    for i in 0..runs {
        let mut r = RunRecord::new(start + Duration::from_secs(60 * i as u64));
        r.git_commit = format!("{:07x}", i * 7919 % 0xfffffff);
        r.git_dirty = Some(i % 5 == 0);
        r.backend = "local".into();
        r.hosts = "localhost".into();
        r.servers = Some(1 + (i % 4) as u32);
        r.clients = Some(1 + (i % 3) as u32);
        r.threads = kv_core::runlog::PerClient::of([4]);
        r.connections = Some(2);
        r.batch = Some(64);
        r.window = Some(8);
        r.workload = ["YCSB-A", "YCSB-B", "YCSB-C"][i % 3].into();
        r.theta = Some(0.99);
        r.preload = Some(1_000_000);
        r.seed = Some(i as u64);
        r.note = format!("bench run {i}, batch sweep");
        r.tag = format!("sweep-{}", i / 100);
        if i % 17 == 0 {
            r.status = RunStatus::Failed("server 1 exited with status 101".into());
        } else {
            r.total_ops_per_s = Some(100_000.0 + (i * 37 % 1000) as f64 * 250.0);
            r.client_ops_per_s = r.total_ops_per_s.map(|v| v * 0.99);
        }
        r.p50_us = Some(200 + (i % 50) as u64);
        r.p99_us = Some(900 + (i % 300) as u64);
        r.p999_us = Some(3000 + (i % 700) as u64);
        r.duration_s = Some(30.0);
        runlog::append_run(dir, &r)?;
    }
    let write = t0.elapsed();

    let t = Instant::now();
    let records = runlog::read_log(&runlog::log_path(dir))?;
    let read = t.elapsed();
    anyhow::ensure!(
        records.len() == runs,
        "read {} of {runs} runs",
        records.len()
    );

    let t = Instant::now();
    let app = App::from_runs(dir, records);
    // The text table of every run, as `kv-dash list` builds it.
    let cells = browse::table_cells(&app.runs, &app.visible);
    let table = t.elapsed();
    anyhow::ensure!(cells.len() == runs);

    let t = Instant::now();
    let mut terminal = Terminal::new(TestBackend::new(160, 48))?;
    terminal.draw(|f| crate::ui::render(&app, f))?;
    let first_frame = t.elapsed();

    Ok(BenchLog {
        runs,
        write,
        read,
        table,
        first_frame,
    })
}
