//! `kv-run collect`: polls every node's stats a few times a second and
//! writes one `timeseries.csv` row per node per second (rates from snapshot
//! deltas), optionally printing one progress line per second. Stops on
//! SIGTERM/SIGINT, or once every client has finished.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::future::join_all;
use kv_core::rpc::KvClient;
use kv_core::runlog::{TimeseriesRow, TimeseriesWriter};
use kv_core::shutdown::Shutdown;
use kv_core::stats::{Rates, Role, StatsSnapshot};
use kv_core::transport::{connect, context_with_timeout, ConnectOptions};

use crate::manifest::{Manifest, Node};
use kv_core::rpc::StatsClient;
use kv_core::transport::connect_stats;

/// How often every node is asked for a snapshot.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
const RPC_TIMEOUT: Duration = Duration::from_millis(800);

enum Conn {
    None,
    Server(KvClient),
    Client(StatsClient),
}

/// One node being watched.
struct Watched {
    node: Node,
    /// Clients started without `--stats-bind` cannot be polled.
    pollable: bool,
    conn: Conn,
    /// Snapshot at the start of the current one-second interval.
    base: Option<StatsSnapshot>,
    latest: Option<StatsSnapshot>,
    up: bool,
    ever_up: bool,
    finished: bool,
}

impl Watched {
    fn new(node: Node) -> Self {
        let pollable = node.is_server() || node.argv.iter().any(|a| a == "--stats-bind");
        Watched {
            node,
            pollable,
            conn: Conn::None,
            base: None,
            latest: None,
            up: false,
            ever_up: false,
            finished: false,
        }
    }

    async fn poll(&mut self) {
        if !self.pollable || self.finished {
            return;
        }
        if matches!(self.conn, Conn::None) {
            let opts = ConnectOptions {
                connect_timeout: Duration::from_millis(300),
                ..ConnectOptions::default()
            };
            let addr = &self.node.stats_addr;
            self.conn = match self.node.role {
                Role::Server => connect(addr, &opts).await.map(Conn::Server),
                Role::Client => connect_stats(addr, &opts).await.map(Conn::Client),
            }
            .unwrap_or(Conn::None);
        }
        let ctx = context_with_timeout(RPC_TIMEOUT);
        let snap = match &self.conn {
            Conn::None => None,
            Conn::Server(c) => c.stats(ctx).await.ok(),
            Conn::Client(c) => c.stats(ctx).await.ok(),
        };
        self.up = snap.is_some();
        match snap {
            Some(s) => {
                self.ever_up = true;
                if !self.node.is_server() && s.finished {
                    self.finished = true;
                }
                if self.base.is_none() {
                    self.base = Some(s.clone());
                }
                self.latest = Some(s);
            }
            None => {
                self.conn = Conn::None;
                // A client that answered before and is gone now has exited.
                if !self.node.is_server() && self.ever_up {
                    self.finished = true;
                }
            }
        }
    }

    /// The row for the interval ending now, and start the next interval.
    fn row(&mut self, t_s: f64) -> Option<TimeseriesRow> {
        let (base, now) = (self.base.as_ref()?, self.latest.as_ref()?);
        if now.uptime_ms <= base.uptime_ms {
            return None;
        }
        let r = Rates::between(base, now);
        let recent = now.recent_latency.filter(|l| l.count > 0);
        let row = TimeseriesRow {
            t_s,
            node: self.node.name.clone(),
            role: self.node.role,
            ops_per_s: r.ops_per_s(),
            gets_per_s: r.gets_per_s,
            puts_per_s: r.puts_per_s,
            cpu_percent: r.cpu_percent,
            rss_bytes: now.process.rss_bytes,
            net_bytes_per_s: r.net_bytes_per_s,
            p50_us: recent.map(|l| l.p50_us),
            p99_us: recent.map(|l| l.p99_us),
        };
        self.base = Some(now.clone());
        Some(row)
    }
}

/// Runs until stopped; returns the number of rows written.
pub async fn collect(manifest_path: &Path, out: &Path, plain: bool) -> Result<usize> {
    let stop = Shutdown::install()
        .context("cannot install signal handlers")?
        .recv();
    let manifest = Manifest::read(manifest_path)?;
    let mut nodes: Vec<Watched> = manifest.nodes.iter().cloned().map(Watched::new).collect();
    let mut writer = TimeseriesWriter::create(out)?;
    let start = Instant::now();
    let mut next_second = 1u64;
    let mut rows = 0usize;
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        join_all(nodes.iter_mut().map(Watched::poll)).await;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= next_second as f64 {
            let t_s = next_second as f64;
            next_second = elapsed.floor() as u64 + 1;
            let mut total = 0.0;
            for w in nodes.iter_mut() {
                if let Some(row) = w.row(t_s) {
                    if row.role == Role::Server {
                        total += row.ops_per_s;
                    }
                    writer.write(&row)?;
                    rows += 1;
                }
            }
            writer.flush()?;
            if plain {
                let up = nodes.iter().filter(|w| w.up).count();
                println!(
                    "[{t_s:>4.0} s] total {total:.0} ops/s (servers), nodes up {up}/{}",
                    nodes.len()
                );
            }
        }
        let clients: Vec<&Watched> = nodes.iter().filter(|w| !w.node.is_server()).collect();
        if !clients.is_empty() && clients.iter().all(|w| w.pollable && w.finished) {
            break;
        }
    }
    writer.flush()?;
    Ok(rows)
}
