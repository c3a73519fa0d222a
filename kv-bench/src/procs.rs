//! Starting, measuring and stopping the real kv-server and kv-client
//! processes of one bench run. Every process is stopped by its PID.

use kv_core::runlog::TimeseriesRow;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kv_core::summary::ClientSummary;
use kv_core::workload::Workload;

use crate::Args;

/// One build's binaries and the flags its processes get (so `--against`
/// can also compare two configurations of the same build).
pub struct Bins {
    server: PathBuf,
    client: PathBuf,
    /// kv-server's flags besides `--port` (and `--profile`).
    server_args: Vec<String>,
    /// Extra kv-client flags for every kvlab run.
    client_args: Vec<String>,
}

impl Bins {
    /// These flags for this build's processes.
    pub fn with_args(mut self, server_args: &str, client_args: &str) -> Bins {
        self.server_args = server_args.split_whitespace().map(String::from).collect();
        self.client_args = client_args.split_whitespace().map(String::from).collect();
        self
    }

    /// kv-server and kv-client from `dir`, or beside this executable.
    pub fn locate(dir: Option<&Path>) -> Result<Bins> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_exe()?
                .parent()
                .context("executable has no folder")?
                .to_path_buf(),
        };
        let bins = Bins {
            server: dir.join("kv-server"),
            client: dir.join("kv-client"),
            server_args: Vec::new(),
            client_args: Vec::new(),
        };
        for b in [&bins.server, &bins.client] {
            if !crate::exists(b) {
                bail!("{} not found (build it, or pass --bin-dir)", b.display());
            }
        }
        Ok(bins)
    }
}

/// What a client reported in its `--summary-json`.
#[derive(Debug, Clone)]
pub struct ClientRun {
    pub throughput: f64,
    pub elapsed_s: f64,
    pub generated: u64,
    pub completed: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub failure: Option<String>,
}

/// Reaps `child` with wait4(2) and returns its exit status and peak RSS in
/// bytes (`ru_maxrss`: the whole life, including what it did after the
/// last moment /proc could be read, such as writing its profile).
/// `None` when `block` is false and it has not exited yet.
fn reap(child: &Child, block: bool) -> Result<Option<(std::process::ExitStatus, u64)>> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let flags = if block { 0 } else { libc::WNOHANG };
    // SAFETY: wait4 on the PID of a child we started and have not reaped.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, flags, &mut usage) };
    match pid {
        0 => Ok(None),
        p if p < 0 => Err(std::io::Error::last_os_error()).context("wait4 failed"),
        // ru_maxrss is in KiB on Linux.
        _ => Ok(Some((
            std::process::ExitStatus::from_raw(status),
            usage.ru_maxrss.max(0) as u64 * 1024,
        ))),
    }
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kvbench-{}-{name}", std::process::id()))
}

fn read_summary(path: &Path, status: std::process::ExitStatus) -> Result<ClientRun> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("client left no summary (exit {status})"))?;
    let _ = std::fs::remove_file(path);
    let s: ClientSummary = serde_json::from_str(&text).context("malformed client summary")?;
    let l = s.op_latency.unwrap_or_default();
    let failure = s
        .failure
        .clone()
        .or_else(|| (!status.success()).then(|| format!("client exited with {status}")))
        .or_else(|| (!s.totals.is_intact()).then(|| "integrity check failed".to_string()));
    Ok(ClientRun {
        throughput: if failure.is_none() {
            s.throughput().unwrap_or(0.0)
        } else {
            0.0
        },
        elapsed_s: s.elapsed_s,
        generated: s.totals.generated,
        completed: s.totals.completed(),
        p50_us: l.p50_us,
        p99_us: l.p99_us,
        p999_us: l.p999_us,
        failure,
    })
}

/// The in-process ceiling: the client's generator threads on a local store.
pub fn run_in_process(bins: &Bins, w: Workload, threads: usize, secs: f64) -> Result<ClientRun> {
    let summary = temp_path("ceiling.json");
    let status = Command::new(&bins.client)
        .args([
            "--in-process",
            "--workload",
            w.name(),
            "--threads",
            &threads.to_string(),
            "--secs",
            &secs.to_string(),
        ])
        .arg("--summary-json")
        .arg(&summary)
        .stdout(Stdio::null())
        .status()
        .context("cannot run kv-client")?;
    read_summary(&summary, status)
}

/// A kv-server child; killed by PID if still running when dropped.
struct Server {
    child: Child,
    addr: String,
    get_lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    fn start(bins: &Bins, profile: Option<&Path>) -> Result<Server> {
        let mut cmd = Command::new(&bins.server);
        cmd.args(["--port", "0"])
            .args(&bins.server_args)
            .stdout(Stdio::piped());
        if let Some(p) = profile {
            cmd.arg("--profile").arg(p);
        }
        let mut child = cmd.spawn().context("cannot start kv-server")?;
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let first = lines.next().transpose()?.unwrap_or_default();
        let Some(addr) = first.strip_prefix("Starting KVS server on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("kv-server did not start: its first line was \"{first}\"");
        };
        let addr = addr.to_string();
        let get_lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = get_lines.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                if l.starts_with("get/s") || l.starts_with("put/s") || l.starts_with("ops/s") {
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push(l);
                }
            }
        });
        Ok(Server {
            child,
            addr,
            get_lines,
        })
    }

    fn rss(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix(field)
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                })
            })
            .map_or(0, |kb| kb * 1024)
    }

    /// SIGTERM, then a bounded wait; SIGKILL if it does not stop. Returns
    /// the server's peak RSS over its whole life (profile writing included).
    fn stop(mut self) -> Result<u64> {
        // SAFETY: kill(2) on the PID of a child we started and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut failed = None;
        let stopped = crate::wait_for(Duration::from_secs(15), || match reap(&self.child, false) {
            Ok(r) => r,
            Err(e) => {
                failed = Some(e);
                Some((std::process::ExitStatus::default(), 0))
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        match stopped {
            Some((_, peak)) => Ok(peak),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("kv-server did not stop within 15 s of SIGTERM");
            }
        }
    }

    /// The course's per-server figure: median of the per-second `ops/s` lines.
    fn median_ops(&self) -> Option<f64> {
        let lines = self.get_lines.lock().unwrap_or_else(|e| e.into_inner());
        let v: Vec<f64> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("ops/s "))
            .filter_map(|v| v.trim().parse().ok())
            .filter(|&x: &f64| x > 0.0)
            .collect();
        kv_core::stats::median(&v)
    }

    /// Share of gets among the ops the server applied, from its stats lines.
    fn get_share(&self) -> f64 {
        let lines = self.get_lines.lock().unwrap_or_else(|e| e.into_inner());
        let sum = |p: &str| -> f64 {
            lines
                .iter()
                .filter_map(|l| l.strip_prefix(p))
                .filter_map(|v| v.trim().parse::<f64>().ok())
                .sum()
        };
        let (g, p) = (sum("get/s "), sum("put/s "));
        if g + p > 0.0 {
            g / (g + p)
        } else {
            0.0
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub struct LoopbackRun {
    pub client: ClientRun,
    pub server_rss_after_preload: u64,
    /// The server's VmHWM when the client has finished (the load's peak).
    pub server_peak_rss: u64,
    /// The server's peak over its whole life, from wait4 (includes writing the profile).
    pub server_exit_peak_rss: u64,
    /// The client's peak over its whole life, from wait4.
    pub client_peak_rss: u64,
    pub server_get_share: f64,
    /// Median of the server's per-second ops/s (seconds with load).
    pub server_median: Option<f64>,
    /// Per-second rows from the one stats poller (`kv_core::poller`).
    pub series: Vec<TimeseriesRow>,
    /// The client's load time.
    pub secs: f64,
}

/// 1 server + 1 client over loopback. With `observe`, both processes
/// profile themselves and a poller reads their live stats 4 times a
/// second, as `run-cluster.sh` and the dashboard do.
pub fn run_loopback(
    bins: &Bins,
    w: Workload,
    args: &Args,
    extra: &[String],
    secs: f64,
    observe: bool,
) -> Result<LoopbackRun> {
    let prof = temp_path("prof");
    let server = Server::start(
        bins,
        observe.then(|| prof.with_extension("server")).as_deref(),
    )?;
    let after_preload = server.rss("VmRSS:");
    let summary = temp_path("client.json");
    let mut cmd = Command::new(&bins.client);
    cmd.args([
        "--hosts",
        &server.addr,
        "--workload",
        w.name(),
        "--threads",
        &args.threads.to_string(),
    ])
    .args(["--secs", &secs.to_string()])
    .args(&bins.client_args)
    .args(extra)
    .arg("--summary-json")
    .arg(&summary)
    .stdout(Stdio::piped());
    if observe {
        cmd.arg("--profile")
            .arg(prof.with_extension("client"))
            .args(["--stats-bind", "127.0.0.1:0"]);
    }
    let mut child = cmd.spawn().context("cannot start kv-client")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (stats_tx, stats_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = l.strip_prefix("Serving stats on ") {
                let _ = stats_tx.send(a.to_string());
            }
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    // The server is always polled (run-cluster does too): its series gives
    // the row's steady figure. The client's stats only when observed.
    let client_stats = if observe {
        stats_rx.recv_timeout(Duration::from_secs(30)).ok()
    } else {
        None
    };
    let poller = {
        let stop = stop.clone();
        let server_addr = server.addr.clone();
        Some(std::thread::spawn(move || {
            poll_stats(&server_addr, client_stats.as_deref(), &stop)
        }))
    };
    let (status, client_peak) = reap(&child, true)?.context("kv-client was not reaped")?;
    stop.store(true, Ordering::Relaxed);
    let series = poller.and_then(|p| p.join().ok()).unwrap_or_default();
    let _ = reader.join();
    let peak = server.rss("VmHWM:");
    let share = server.get_share();
    let server_median = server.median_ops();
    let server_exit_peak = server.stop()?;
    for ext in ["server", "client"] {
        for kind in ["svg", "pb", "folded"] {
            let _ = std::fs::remove_file(format!("{}.{ext}.{kind}", prof.display()));
        }
    }
    Ok(LoopbackRun {
        client: read_summary(&summary, status)?,
        server_rss_after_preload: after_preload,
        server_peak_rss: peak,
        server_exit_peak_rss: server_exit_peak,
        client_peak_rss: client_peak,
        server_get_share: share,
        server_median,
        series,
        secs,
    })
}

/// Polls the server (and, when observed, the client) through the one
/// stats poller until told to stop: one [`TimeseriesRow`] per node per
/// second, as `kv-run collect` writes them, so a bench row's figures come
/// from the same kind of series as a run-cluster row's.
fn poll_stats(server: &str, client: Option<&str>, stop: &AtomicBool) -> Vec<TimeseriesRow> {
    use kv_core::poller::{NodePoller, Timing, POLL_INTERVAL};
    use kv_core::stats::Role;
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    rt.block_on(async {
        let mut nodes = vec![NodePoller::new(
            "node0",
            Role::Server,
            server,
            true,
            Timing::default(),
        )];
        if let Some(c) = client {
            nodes.push(NodePoller::new(
                "node1",
                Role::Client,
                c,
                true,
                Timing::default(),
            ));
        }
        let mut rows = Vec::new();
        let start = std::time::Instant::now();
        let mut next_second = 1u64;
        while !stop.load(Ordering::Relaxed) {
            futures::future::join_all(nodes.iter_mut().map(NodePoller::poll)).await;
            let elapsed = start.elapsed().as_secs_f64();
            if elapsed >= next_second as f64 {
                let t_s = next_second as f64;
                next_second = elapsed.floor() as u64 + 1;
                rows.extend(nodes.iter_mut().filter_map(|n| n.row(t_s)));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        rows
    })
}
