//! The one stats poller: run collection (`kv-run collect`), the bench and
//! the live view (`kv-dash live`) all ask nodes for snapshots here and read
//! the answers by one rule, so a second means the same thing in
//! `timeseries.csv` and on the dashboard (rates from snapshot deltas), and a
//! node is starting, up, finished or down by the same rule everywhere.
//!
//! Two halves, so the live view's state stays free of sockets and clocks:
//! [`StatsSource`] asks (connect, one RPC, reconnect after a failure) and
//! [`NodeTrack`] says what the answers mean (status, the per-second row),
//! from times the caller gives. [`NodePoller`] is both, on a clock of its own.
//!
//! # Status rule
//!
//! - **starting** until the node's first answer, for at most the ready
//!   timeout (run-cluster.sh's `--ready-timeout`, default 60 s) after the
//!   watch began: a client still preloading or connecting is not down.
//! - **up** while it answers.
//! - **finished** once a client says its load is done, or goes silent within
//!   [`FINISH_SLACK`] of the end of its load time (it drains and exits
//!   between two polls); once the run is over, a server that goes silent
//!   has stopped (see [`NodeTrack::run_over`]).
//! - **down** after [`DOWN_AFTER`] without an answer (or no first answer
//!   within the ready timeout); an answer brings it back up.

use std::time::{Duration, Instant};

use crate::manifest::Node;
use crate::rpc::{KvClient, StatsClient};
use crate::runlog::TimeseriesRow;
use crate::stats::{Rates, Role, StatsSnapshot};
use crate::transport::{
    connect, connect_stats, context_with_timeout, rpc_error_text, ConnectOptions,
};

/// How often every node is asked for a snapshot.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Deadline of one connection attempt (the next poll is the retry).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Deadline of one stats RPC (a reply is a few hundred bytes).
pub const RPC_TIMEOUT: Duration = Duration::from_millis(800);
/// A node that answered before and has been silent this long is down.
/// Nodes are asked every [`POLL_INTERVAL`], so a dead one shows within
/// this plus one poll.
pub const DOWN_AFTER: Duration = Duration::from_millis(1000);
/// A client silent this close to the end of its load time (or later) has
/// finished: its `finished` snapshot is rarely seen before it exits.
pub const FINISH_SLACK: Duration = Duration::from_millis(1000);
/// run-cluster.sh's default `--ready-timeout`.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a node is in its life, by the rule in the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// No answer yet, within the ready timeout.
    Starting,
    Up,
    /// A client whose load is done, or a server stopped after the run.
    Finished,
    /// Silent for [`DOWN_AFTER`], or never answered within the ready timeout.
    Down,
    /// A client started without `--stats-bind`: nothing to ask.
    NoStats,
}

/// What the status rule needs to know about the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// How long a node may take to answer first (from the watch's start).
    pub ready_timeout: Duration,
    /// The clients' load time, when known.
    pub load: Option<Duration>,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ready_timeout: DEFAULT_READY_TIMEOUT,
            load: None,
        }
    }
}

/// Whether a manifest node serves stats: servers always, clients only when
/// started with `--stats-bind` (either spelling, `--stats-bind=ADDR` too).
pub fn serves_stats(node: &Node) -> bool {
    node.is_server() || node.argv.iter().any(|a| a.starts_with("--stats-bind"))
}

enum Conn {
    Server(KvClient),
    Client(StatsClient),
}

/// Asks one node for snapshots: a server's main port (`KvClient::stats`)
/// or a client's `--stats-bind` port (`StatsClient::stats`).
pub struct StatsSource {
    role: Role,
    addr: String,
    conn: Option<Conn>,
}

impl StatsSource {
    pub fn new(role: Role, addr: impl Into<String>) -> StatsSource {
        StatsSource {
            role,
            addr: addr.into(),
            conn: None,
        }
    }

    /// One snapshot, or one line saying why there is none. Connects first
    /// when needed; after a failure the next call connects again.
    pub async fn fetch(&mut self) -> Result<StatsSnapshot, String> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => {
                let opts = ConnectOptions {
                    connect_timeout: CONNECT_TIMEOUT,
                    ..ConnectOptions::default()
                };
                let addr = self.addr.as_str();
                let open = async {
                    match self.role {
                        Role::Server => connect(addr, &opts).await.map(Conn::Server),
                        Role::Client => connect_stats(addr, &opts).await.map(Conn::Client),
                    }
                };
                match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => return Err(e.to_string()),
                    Err(_) => return Err("connect timed out".into()),
                }
            }
        };
        let ctx = context_with_timeout(RPC_TIMEOUT);
        let r = match &conn {
            Conn::Server(c) => c.stats(ctx).await,
            Conn::Client(c) => c.stats(ctx).await,
        };
        // After a failure the connection may be dead: connect again next time.
        if r.is_ok() {
            self.conn = Some(conn);
        }
        r.map_err(|e| {
            match e {
                // Also what a process of the other role does with this request.
                tarpc::client::RpcError::Shutdown => format!(
                    "{} closed the connection: stopped, or not a kvlab {} stats address",
                    self.addr,
                    self.role.name()
                ),
                e => rpc_error_text(&e),
            }
        })
    }
}

/// What one node's answers mean: its status, its latest snapshot, and the
/// per-second rows of `timeseries.csv`. No I/O and no clock: every input
/// carries its time (`at`, since the watch began).
#[derive(Debug, Clone)]
pub struct NodeTrack {
    name: String,
    role: Role,
    timing: Timing,
    status: NodeStatus,
    latest: Option<StatsSnapshot>,
    /// Snapshot at the start of the current one-second interval.
    base: Option<StatsSnapshot>,
    last_ok: Option<Duration>,
    error: Option<String>,
    run_over: bool,
}

impl NodeTrack {
    /// `pollable` is false for a client started without `--stats-bind`.
    pub fn new(name: impl Into<String>, role: Role, pollable: bool, timing: Timing) -> NodeTrack {
        NodeTrack {
            name: name.into(),
            role,
            timing,
            status: if pollable {
                NodeStatus::Starting
            } else {
                NodeStatus::NoStats
            },
            latest: None,
            base: None,
            last_ok: None,
            error: None,
            run_over: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn status(&self) -> NodeStatus {
        self.status
    }

    pub fn pollable(&self) -> bool {
        self.status != NodeStatus::NoStats
    }

    /// The last snapshot it sent (kept while it is down).
    pub fn latest(&self) -> Option<&StatsSnapshot> {
        self.latest.as_ref()
    }

    /// When it last answered.
    pub fn last_ok(&self) -> Option<Duration> {
        self.last_ok
    }

    /// Why the last poll failed (cleared by an answer).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// One poll's outcome at `at`.
    pub fn record(&mut self, result: Result<StatsSnapshot, String>, at: Duration) {
        if self.status == NodeStatus::NoStats {
            return;
        }
        match result {
            Ok(s) => {
                // A restarted process counts from zero again: start over.
                let restarted = self
                    .latest
                    .as_ref()
                    .is_some_and(|p| s.uptime_ms < p.uptime_ms || s.pid != p.pid);
                if self.base.is_none() || restarted {
                    self.base = Some(s.clone());
                }
                self.status = if s.finished {
                    NodeStatus::Finished
                } else {
                    NodeStatus::Up
                };
                self.latest = Some(s);
                self.last_ok = Some(at);
                self.error = None;
            }
            Err(e) => {
                self.error = Some(e);
                self.tick(at);
            }
        }
    }

    /// Time passing without an answer: applies the timeouts.
    pub fn tick(&mut self, at: Duration) {
        let silent_for = at.saturating_sub(self.last_ok.unwrap_or(Duration::ZERO));
        self.status = match self.status {
            NodeStatus::Starting if at >= self.timing.ready_timeout => NodeStatus::Down,
            NodeStatus::Up if silent_for >= DOWN_AFTER => {
                if self.load_done() || (self.run_over && self.role == Role::Server) {
                    NodeStatus::Finished
                } else {
                    NodeStatus::Down
                }
            }
            s => s,
        };
    }

    /// A client whose last answer came at (or near) the end of its load.
    fn load_done(&self) -> bool {
        self.role == Role::Client
            && self.latest.as_ref().is_some_and(|s| {
                self.timing
                    .load
                    .is_some_and(|t| Duration::from_millis(s.uptime_ms) + FINISH_SLACK >= t)
            })
    }

    /// The run is over (every client finished, or it ended), its last
    /// client answer at `end` when known: from now on a silent server has
    /// stopped with the run, and one that went silent together with the
    /// clients (within [`DOWN_AFTER`] of `end`) was stopped, not lost.
    pub fn run_over(&mut self, end: Option<Duration>) {
        self.run_over = true;
        let with_the_clients = match (self.last_ok, end) {
            (Some(ok), Some(end)) => ok + DOWN_AFTER >= end,
            _ => false,
        };
        if self.role == Role::Server && self.status == NodeStatus::Down && with_the_clients {
            self.status = NodeStatus::Finished;
        }
    }

    /// The row for the interval ending now (`t_s`), and start the next
    /// interval. `None` when nothing new arrived since the last row.
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

/// One node being watched: a [`StatsSource`] and a [`NodeTrack`] on the
/// poller's own clock (started at construction).
pub struct NodePoller {
    source: StatsSource,
    track: NodeTrack,
    start: Instant,
}

impl NodePoller {
    /// `pollable` is false for a client started without `--stats-bind`.
    pub fn new(
        name: impl Into<String>,
        role: Role,
        addr: impl Into<String>,
        pollable: bool,
        timing: Timing,
    ) -> Self {
        NodePoller {
            source: StatsSource::new(role, addr),
            track: NodeTrack::new(name, role, pollable, timing),
            start: Instant::now(),
        }
    }

    /// For a manifest node (clients poll only with `--stats-bind`).
    pub fn of_node(node: &Node, timing: Timing) -> Self {
        NodePoller::new(
            node.name.clone(),
            node.role,
            node.stats_addr.clone(),
            serves_stats(node),
            timing,
        )
    }

    pub fn role(&self) -> Role {
        self.track.role()
    }

    pub fn status(&self) -> NodeStatus {
        self.track.status()
    }

    /// It answered the last poll.
    pub fn up(&self) -> bool {
        self.track.status() == NodeStatus::Up
    }

    /// Finished by the status rule (a client stays finished: it is not
    /// asked again).
    pub fn finished(&self) -> bool {
        self.track.status() == NodeStatus::Finished
    }

    pub fn pollable(&self) -> bool {
        self.track.pollable()
    }

    /// Asks the node for a snapshot (connecting first when needed).
    pub async fn poll(&mut self) {
        if !self.pollable() || self.finished() {
            return;
        }
        let r = self.source.fetch().await;
        self.track.record(r, self.start.elapsed());
    }

    /// The row for the interval ending now, and start the next interval.
    pub fn row(&mut self, t_s: f64) -> Option<TimeseriesRow> {
        self.track.row(t_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(role: Role, uptime_ms: u64, ops: u64) -> StatsSnapshot {
        StatsSnapshot {
            pid: 1,
            uptime_ms,
            gets: ops,
            ..StatsSnapshot::empty(role)
        }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn timing(load_s: u64) -> Timing {
        Timing {
            ready_timeout: Duration::from_secs(10),
            load: Some(Duration::from_secs(load_s)),
        }
    }

    #[test]
    fn starting_until_the_first_answer_bounded_by_the_ready_timeout() {
        let mut late = NodeTrack::new("c", Role::Client, true, timing(20));
        let mut never = late.clone();
        for t in (0..=3000).step_by(250) {
            late.record(Err("connection refused".into()), ms(t));
            never.record(Err("connection refused".into()), ms(t));
        }
        // 3 s of refusals: still starting, not down.
        assert_eq!(late.status(), NodeStatus::Starting);
        assert_eq!(late.error(), Some("connection refused"));
        late.record(Ok(snap(Role::Client, 100, 0)), ms(3250));
        assert_eq!((late.status(), late.error()), (NodeStatus::Up, None));
        never.tick(ms(9_999));
        assert_eq!(never.status(), NodeStatus::Starting);
        never.tick(ms(10_000));
        assert_eq!(
            never.status(),
            NodeStatus::Down,
            "no answer by the ready timeout"
        );
    }

    #[test]
    fn silent_for_a_second_is_down_unless_the_load_is_done() {
        let mut early = NodeTrack::new("c1", Role::Client, true, timing(5));
        let mut at_end = early.clone();
        early.record(Ok(snap(Role::Client, 2_000, 10)), ms(2_000));
        at_end.record(Ok(snap(Role::Client, 4_800, 10)), ms(4_800));
        early.tick(ms(2_999));
        assert_eq!(early.status(), NodeStatus::Up, "999 ms silent");
        early.tick(ms(3_000));
        at_end.tick(ms(5_800));
        assert_eq!(early.status(), NodeStatus::Down, "died 3 s early");
        assert_eq!(at_end.status(), NodeStatus::Finished);
        // Down is not final: an answer brings it back.
        early.record(Ok(snap(Role::Client, 3_500, 20)), ms(3_500));
        assert_eq!(early.status(), NodeStatus::Up);
        let mut said = NodeTrack::new("c", Role::Client, true, timing(5));
        let mut s = snap(Role::Client, 100, 10);
        s.finished = true;
        said.record(Ok(s), ms(100));
        said.record(Err("refused".into()), ms(9_000));
        assert_eq!(said.status(), NodeStatus::Finished, "stays finished");
    }

    #[test]
    fn a_server_silent_with_the_clients_stopped_with_the_run() {
        let mut early = NodeTrack::new("s0", Role::Server, true, timing(5));
        let mut with = early.clone();
        let mut after = early.clone();
        early.record(Ok(snap(Role::Server, 1_000, 10)), ms(1_000));
        with.record(Ok(snap(Role::Server, 4_800, 10)), ms(4_800));
        after.record(Ok(snap(Role::Server, 5_000, 10)), ms(5_000));
        for n in [&mut early, &mut with] {
            n.tick(ms(5_900));
            assert_eq!(n.status(), NodeStatus::Down);
        }
        // The last client answered at 5.0 s.
        for n in [&mut early, &mut with, &mut after] {
            n.run_over(Some(ms(5_000)));
        }
        assert_eq!(early.status(), NodeStatus::Down, "died 4 s before the end");
        assert_eq!(with.status(), NodeStatus::Finished);
        after.tick(ms(6_000));
        assert_eq!(after.status(), NodeStatus::Finished);
    }

    #[test]
    fn rows_from_snapshot_deltas_restart_from_a_new_process() {
        let mut n = NodeTrack::new("s0", Role::Server, true, Timing::default());
        n.record(Ok(snap(Role::Server, 1_000, 0)), ms(0));
        assert!(n.row(1.0).is_none(), "one snapshot: no interval yet");
        n.record(Ok(snap(Role::Server, 2_000, 500)), ms(1_000));
        assert_eq!(n.row(2.0).map(|r| r.ops_per_s), Some(500.0));
        assert!(n.row(3.0).is_none(), "nothing new");
        let mut restarted = snap(Role::Server, 300, 10);
        restarted.pid = 2;
        n.record(Ok(restarted), ms(2_000));
        assert!(n.row(3.0).is_none(), "no delta across two processes");
        let mut next = snap(Role::Server, 1_300, 1_010);
        next.pid = 2;
        n.record(Ok(next), ms(3_000));
        assert_eq!(n.row(4.0).map(|r| r.ops_per_s), Some(1000.0));
    }
}
