//! The one stats poller: run collection (`kv-run collect`) and the bench
//! poll nodes through [`NodePoller`], so a second means the same thing in
//! `timeseries.csv` whoever wrote it (rates from snapshot deltas).

use std::time::Duration;

use crate::manifest::Node;
use crate::rpc::{KvClient, StatsClient};
use crate::runlog::TimeseriesRow;
use crate::stats::{Rates, Role, StatsSnapshot};
use crate::transport::{connect, connect_stats, context_with_timeout, ConnectOptions};

/// How often every node is asked for a snapshot.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
const RPC_TIMEOUT: Duration = Duration::from_millis(800);

enum Conn {
    None,
    Server(KvClient),
    Client(StatsClient),
}

/// One node being watched: connects (and reconnects), keeps the snapshot
/// at the start of the current second, and turns two snapshots into that
/// second's [`TimeseriesRow`].
pub struct NodePoller {
    name: String,
    role: Role,
    addr: String,
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

impl NodePoller {
    /// `pollable` is false for a client started without `--stats-bind`.
    pub fn new(
        name: impl Into<String>,
        role: Role,
        addr: impl Into<String>,
        pollable: bool,
    ) -> Self {
        NodePoller {
            name: name.into(),
            role,
            addr: addr.into(),
            pollable,
            conn: Conn::None,
            base: None,
            latest: None,
            up: false,
            ever_up: false,
            finished: false,
        }
    }

    /// For a manifest node (clients poll only with `--stats-bind`).
    pub fn of_node(node: &Node) -> Self {
        let pollable = node.is_server() || node.argv.iter().any(|a| a == "--stats-bind");
        NodePoller::new(
            node.name.clone(),
            node.role,
            node.stats_addr.clone(),
            pollable,
        )
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// It answered the last poll.
    pub fn up(&self) -> bool {
        self.up
    }

    /// A client that said it finished, or that answered once and is gone.
    pub fn finished(&self) -> bool {
        self.finished
    }

    pub fn pollable(&self) -> bool {
        self.pollable
    }

    /// Asks the node for a snapshot (connecting first when needed).
    pub async fn poll(&mut self) {
        if !self.pollable || self.finished {
            return;
        }
        if matches!(self.conn, Conn::None) {
            let opts = ConnectOptions {
                connect_timeout: Duration::from_millis(300),
                ..ConnectOptions::default()
            };
            let addr = &self.addr;
            self.conn = match self.role {
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
                if !(self.role == Role::Server) && s.finished {
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
                if !(self.role == Role::Server) && self.ever_up {
                    self.finished = true;
                }
            }
        }
    }

    /// The row for the interval ending now, and start the next interval.
    pub fn row(&mut self, t_s: f64) -> Option<TimeseriesRow> {
        let (base, now) = (self.base.as_ref()?, self.latest.as_ref()?);
        if now.uptime_ms <= base.uptime_ms {
            return None;
        }
        let r = Rates::between(base, now);
        let recent = now.recent_latency.filter(|l| l.count > 0);
        let row = TimeseriesRow {
            t_s,
            node: self.name.clone(),
            role: self.role,
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
