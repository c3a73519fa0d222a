//! The live dashboard's state and how snapshots and [`Action`]s change it.
//! No terminal, no sockets, no clock: every input carries the time it
//! happened at (`at`, since the dashboard started), so tests drive it with
//! fixed snapshots and fixed times.

use std::collections::VecDeque;
use std::time::Duration;

use kv_core::latency::LatencySummary;
use kv_core::stats::{median, Rates, Role, StatsSnapshot};

use crate::input::Action;

/// A node without an answer for this long is shown down. Pollers ask every
/// [`super::poll::POLL_INTERVAL`] with a short deadline, so a dead node is
/// marked within this plus one poll (well inside the 2 s the issue asks).
pub const DOWN_AFTER: Duration = Duration::from_millis(1000);

/// Rates are taken over (at least) this much of the node's own uptime:
/// shorter windows make a 4 Hz display jitter.
pub const RATE_WINDOW_MS: u64 = 1000;

/// A client that goes silent this close to the end of its load time (or
/// later) is taken as finished: it drains and exits within milliseconds,
/// often between two polls, so its `finished` snapshot is rarely seen.
pub const FINISH_SLACK: Duration = Duration::from_millis(1000);

/// Per-second history kept per node (an hour; older seconds drop off).
pub const HISTORY_SECS: usize = 3600;

/// One process to watch.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// The process name: `server-node0` (from a manifest) or `server-0` /
    /// `client-0` (from addresses), as in the browser and profile files.
    pub name: String,
    pub role: Role,
    /// Where its stats are served (`HOST:PORT`).
    pub addr: String,
    /// False for a client started without `--stats-bind`: nothing to poll.
    pub pollable: bool,
}

/// What the header says about the run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunInfo {
    /// The run id, or a label when there is no manifest.
    pub run_id: String,
    /// One line: servers, clients, workload, theta, batch.
    pub config: String,
    /// Load time of the run, for the gauge.
    pub total: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not answered yet (only during the first [`DOWN_AFTER`]).
    Waiting,
    Up,
    /// No answer for [`DOWN_AFTER`] (or never, after that long).
    Down,
    /// The process said its work is done (client finished, server draining).
    Finished,
    /// A client without a stats endpoint.
    NoStats,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Up => "up",
            Status::Down => "DOWN",
            Status::Finished => "finished",
            Status::NoStats => "no stats",
        }
    }
}

/// One node as the dashboard knows it.
#[derive(Debug, Clone)]
pub struct NodeState {
    pub spec: NodeSpec,
    pub status: Status,
    pub latest: Option<StatsSnapshot>,
    /// Rates over the last [`RATE_WINDOW_MS`] of snapshots; `None` until
    /// two snapshots, and while down.
    pub rates: Option<Rates>,
    /// When it last answered.
    pub last_ok: Option<Duration>,
    /// Why the last poll failed.
    pub error: Option<String>,
    /// ops/s per second of the dashboard (0 while down).
    pub ops_history: VecDeque<f64>,
    /// Snapshots inside the rate window, oldest first.
    recent: VecDeque<StatsSnapshot>,
}

impl NodeState {
    pub fn new(spec: NodeSpec) -> NodeState {
        NodeState {
            status: if spec.pollable {
                Status::Waiting
            } else {
                Status::NoStats
            },
            spec,
            latest: None,
            rates: None,
            last_ok: None,
            error: None,
            ops_history: VecDeque::new(),
            recent: VecDeque::new(),
        }
    }

    /// ops/s now, 0 when unknown or down.
    pub fn ops_per_s(&self) -> f64 {
        self.rates.map_or(0.0, |r| r.ops_per_s())
    }

    fn ok(&mut self, snap: StatsSnapshot, at: Duration) {
        // A restarted process counts from zero again: start over.
        if self
            .recent
            .back()
            .is_some_and(|p| snap.uptime_ms < p.uptime_ms || snap.pid != p.pid)
        {
            self.recent.clear();
        }
        self.recent.push_back(snap.clone());
        // Keep exactly one snapshot at least a window older than the newest.
        while self.recent.len() > 2 && snap.uptime_ms - self.recent[1].uptime_ms >= RATE_WINDOW_MS {
            self.recent.pop_front();
        }
        let oldest = &self.recent[0];
        self.rates = (oldest.uptime_ms < snap.uptime_ms).then(|| Rates::between(oldest, &snap));
        self.status = if snap.finished {
            Status::Finished
        } else {
            Status::Up
        };
        self.latest = Some(snap);
        self.last_ok = Some(at);
        self.error = None;
    }

    fn failed(&mut self, error: String) {
        self.error = Some(error);
    }

    /// Marks the node down once it has been silent for [`DOWN_AFTER`];
    /// a client silent after its load time (`total`) has finished and
    /// exited between two polls.
    fn check_down(&mut self, at: Duration, total: Option<Duration>) {
        let since = at.saturating_sub(self.last_ok.unwrap_or(Duration::ZERO));
        match self.status {
            // A finished client exits soon after: silence then is expected,
            // but its last rates are no longer current.
            Status::Finished if since >= DOWN_AFTER => self.rates = None,
            Status::Finished | Status::NoStats | Status::Down => {}
            Status::Waiting | Status::Up if since >= DOWN_AFTER => {
                let load_done = self.latest.as_ref().is_some_and(|s| {
                    s.role == Role::Client
                        && total
                            .is_some_and(|t| Duration::from_millis(s.uptime_ms) + FINISH_SLACK >= t)
                });
                self.status = if load_done {
                    Status::Finished
                } else {
                    Status::Down
                };
                self.rates = None;
                self.recent.clear();
            }
            Status::Waiting | Status::Up => {}
        }
    }
}

/// Everything the screen shows; the pause key freezes a copy of it.
#[derive(Debug, Clone)]
pub struct LiveData {
    pub nodes: Vec<NodeState>,
    /// Dashboard time of the latest update.
    pub at: Duration,
    /// Total ops/s per second (servers; clients when there are none).
    pub totals: VecDeque<f64>,
    /// Client latency per second (worst client up, over that second):
    /// p50, p99 in us; (0, 0) when no client completed ops.
    pub latency: VecDeque<(u64, u64)>,
    /// Seconds recorded so far (the histories' length, before trimming).
    pub seconds: u64,
    /// The run's load time, when known (see [`FINISH_SLACK`]).
    pub total: Option<Duration>,
}

impl LiveData {
    fn new(nodes: Vec<NodeSpec>, total: Option<Duration>) -> LiveData {
        LiveData {
            total,
            nodes: nodes.into_iter().map(NodeState::new).collect(),
            at: Duration::ZERO,
            totals: VecDeque::new(),
            latency: VecDeque::new(),
            seconds: 0,
        }
    }

    /// The role whose ops make the run's throughput: servers apply every
    /// op once; clients only when no server is watched.
    fn counted_role(&self) -> Role {
        if self.nodes.iter().any(|n| n.spec.role == Role::Server) {
            Role::Server
        } else {
            Role::Client
        }
    }

    /// Total ops/s now.
    pub fn total_ops_per_s(&self) -> f64 {
        let role = self.counted_role();
        self.nodes
            .iter()
            .filter(|n| n.spec.role == role)
            .map(NodeState::ops_per_s)
            .sum()
    }

    /// Median of the per-second totals, from the first second with traffic
    /// to the last (idle seconds before and after the load do not count).
    pub fn median_total(&self) -> Option<f64> {
        let v: Vec<f64> = self.totals.iter().copied().collect();
        let first = v.iter().position(|&t| t > 0.0)?;
        let last = v.iter().rposition(|&t| t > 0.0)?;
        median(&v[first..=last])
    }

    pub fn count(&self, status: Status) -> usize {
        self.nodes.iter().filter(|n| n.status == status).count()
    }

    /// Nodes answering (up or finished-but-still-answering).
    pub fn nodes_up(&self) -> usize {
        self.count(Status::Up)
    }

    /// Load time of the run so far: the longest client uptime (clients
    /// start counting when they start generating), else dashboard time.
    pub fn run_elapsed(&self) -> Duration {
        self.nodes
            .iter()
            .filter(|n| n.spec.role == Role::Client)
            .filter_map(|n| n.latest.as_ref())
            .map(|s| Duration::from_millis(s.uptime_ms))
            .max()
            .unwrap_or(self.at)
    }

    /// Worst client latency so far (p50, p99), if any client reports one.
    pub fn client_latency(&self) -> Option<(u64, u64)> {
        worst(self.nodes.iter().filter_map(|n| n.latest.as_ref()?.latency))
    }

    /// Worst latency of the last whole second among clients still up.
    pub fn recent_client_latency(&self) -> Option<(u64, u64)> {
        worst(
            self.nodes
                .iter()
                .filter(|n| n.status == Status::Up)
                .filter_map(|n| n.latest.as_ref()?.recent_latency),
        )
    }

    /// Moves time to `at`: marks silent nodes down and records one history
    /// sample per whole second passed.
    fn advance(&mut self, at: Duration) {
        self.at = self.at.max(at);
        for n in &mut self.nodes {
            n.check_down(self.at, self.total);
        }
        while self.seconds < self.at.as_secs() {
            self.seconds += 1;
            let total = self.total_ops_per_s();
            let latency = self.recent_client_latency().unwrap_or((0, 0));
            push_capped(&mut self.totals, total);
            push_capped(&mut self.latency, latency);
            for n in &mut self.nodes {
                let ops = n.ops_per_s();
                push_capped(&mut n.ops_history, ops);
            }
        }
    }
}

/// Worst (p50, p99) of the summaries that saw any ops.
fn worst(summaries: impl Iterator<Item = LatencySummary>) -> Option<(u64, u64)> {
    summaries
        .filter(|l| l.count > 0)
        .map(|l| (l.p50_us, l.p99_us))
        .reduce(|a, b| (a.0.max(b.0), a.1.max(b.1)))
}

fn push_capped<T>(v: &mut VecDeque<T>, x: T) {
    if v.len() == HISTORY_SECS {
        v.pop_front();
    }
    v.push_back(x);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveView {
    /// Table, total and latency charts, selected node's detail.
    Overview,
    /// One ops/s sparkline per node.
    Nodes,
}

impl LiveView {
    pub fn title(self) -> &'static str {
        match self {
            LiveView::Overview => "Overview",
            LiveView::Nodes => "Per node",
        }
    }
}

pub struct LiveApp {
    pub run: RunInfo,
    pub data: LiveData,
    /// The display while paused (`p`); `data` keeps collecting underneath.
    pub frozen: Option<LiveData>,
    pub selected: usize,
    pub view: LiveView,
    pub show_help: bool,
    /// Colors on (off under NO_COLOR).
    pub color: bool,
    pub should_quit: bool,
}

impl LiveApp {
    pub fn new(run: RunInfo, nodes: Vec<NodeSpec>) -> LiveApp {
        let total = run.total;
        LiveApp {
            run,
            data: LiveData::new(nodes, total),
            frozen: None,
            selected: 0,
            view: LiveView::Overview,
            show_help: false,
            color: crate::app::color_enabled(),
            should_quit: false,
        }
    }

    /// What the screen shows: the frozen copy while paused.
    pub fn shown(&self) -> &LiveData {
        self.frozen.as_ref().unwrap_or(&self.data)
    }

    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    /// A poll of node `node` at `at`: a snapshot, or why there is none.
    pub fn ingest(&mut self, node: usize, result: Result<StatsSnapshot, String>, at: Duration) {
        if let Some(n) = self.data.nodes.get_mut(node) {
            match result {
                Ok(s) => n.ok(s, at),
                Err(e) => n.failed(e),
            }
        }
        self.data.advance(at);
    }

    /// Time passing without data (the once-a-second tick).
    pub fn tick(&mut self, at: Duration) {
        self.data.advance(at);
    }

    /// Applies a key's action; returns whether the screen changed.
    pub fn apply(&mut self, action: Action) -> bool {
        if self.show_help {
            match action {
                Action::Quit => self.should_quit = true,
                _ => self.show_help = false,
            }
            return true;
        }
        let last = self.data.nodes.len().saturating_sub(1);
        match action {
            Action::Quit | Action::Escape => self.should_quit = true,
            Action::Help => self.show_help = true,
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::First => self.selected = 0,
            Action::Last => self.selected = last,
            Action::NextView | Action::PrevView => {
                self.view = match self.view {
                    LiveView::Overview => LiveView::Nodes,
                    LiveView::Nodes => LiveView::Overview,
                }
            }
            Action::Pause => {
                self.frozen = match self.frozen {
                    Some(_) => None,
                    None => Some(self.data.clone()),
                }
            }
            _ => return false,
        }
        true
    }

    /// Every client has finished (and there is at least one).
    pub fn all_clients_finished(&self) -> bool {
        let mut clients = self
            .data
            .nodes
            .iter()
            .filter(|n| n.spec.role == Role::Client)
            .peekable();
        clients.peek().is_some() && clients.all(|n| n.status == Status::Finished)
    }

    /// The `--plain` line for the current second.
    pub fn plain_line(&self) -> String {
        let d = &self.data;
        let elapsed = d.run_elapsed().as_secs_f64();
        let of = self
            .run
            .total
            .map(|t| format!("/{:.0}", t.as_secs_f64()))
            .unwrap_or_default();
        let mut line = format!(
            "[{elapsed:>4.0}{of} s] total {} ops/s, nodes up {}/{}",
            crate::browse::fmt_ops(d.total_ops_per_s()),
            d.nodes_up(),
            d.nodes.len()
        );
        for (status, what) in [(Status::Finished, "finished"), (Status::Down, "DOWN")] {
            let names: Vec<&str> = d
                .nodes
                .iter()
                .filter(|n| n.status == status)
                .map(|n| n.spec.name.as_str())
                .collect();
            if !names.is_empty() {
                line += &format!(", {what} {}", names.join(" "));
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_core::process::ProcessSample;

    fn spec(name: &str, role: Role) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            role,
            addr: "127.0.0.1:1".into(),
            pollable: true,
        }
    }

    fn snap(role: Role, uptime_ms: u64, ops: u64) -> StatsSnapshot {
        StatsSnapshot {
            role,
            pid: 1,
            uptime_ms,
            gets: ops,
            puts: 0,
            failed: 0,
            batches: 0,
            generated: 0,
            keys: 0,
            process: ProcessSample::default(),
            latency: None,
            recent_latency: None,
            open_loop: None,
            finished: false,
        }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn rates_over_a_one_second_window() {
        let mut app = LiveApp::new(RunInfo::default(), vec![spec("s", Role::Server)]);
        for i in 0..=8u64 {
            // 1000 ops per 250 ms = 4000 ops/s.
            app.ingest(0, Ok(snap(Role::Server, i * 250, i * 1000)), ms(i * 250));
        }
        let n = &app.data.nodes[0];
        assert_eq!(n.status, Status::Up);
        assert_eq!(n.ops_per_s(), 4000.0);
        assert_eq!(n.recent.len(), 5, "one window: 1000 ms of uptime");
        assert_eq!(app.data.totals, [4000.0, 4000.0]);
    }

    #[test]
    fn silent_node_goes_down_after_a_second_and_comes_back() {
        let mut app = LiveApp::new(
            RunInfo::default(),
            vec![spec("s", Role::Server), spec("c", Role::Client)],
        );
        app.ingest(0, Ok(snap(Role::Server, 0, 0)), ms(0));
        app.ingest(0, Ok(snap(Role::Server, 500, 500)), ms(500));
        app.ingest(0, Err("refused".into()), ms(1400));
        assert_eq!(app.data.nodes[0].status, Status::Up, "900 ms silent");
        assert_eq!(app.data.nodes[1].status, Status::Down, "never answered");
        app.tick(ms(1500));
        assert_eq!(app.data.nodes[0].status, Status::Down);
        assert_eq!(app.data.nodes[0].ops_per_s(), 0.0);
        app.ingest(0, Ok(snap(Role::Server, 2000, 900)), ms(2000));
        assert_eq!(app.data.nodes[0].status, Status::Up);
    }

    #[test]
    fn finished_client_stays_finished_when_it_exits() {
        let mut app = LiveApp::new(RunInfo::default(), vec![spec("c", Role::Client)]);
        let mut s = snap(Role::Client, 100, 10);
        s.finished = true;
        app.ingest(0, Ok(s), ms(100));
        app.ingest(0, Err("refused".into()), ms(5000));
        assert_eq!(app.data.nodes[0].status, Status::Finished);
        assert!(app.all_clients_finished());
    }

    #[test]
    fn client_silent_at_the_end_of_its_load_finished_not_down() {
        let run = RunInfo {
            total: Some(Duration::from_secs(5)),
            ..RunInfo::default()
        };
        let mut app = LiveApp::new(
            run,
            vec![spec("c1", Role::Client), spec("c2", Role::Client)],
        );
        app.ingest(0, Ok(snap(Role::Client, 4_800, 10)), ms(4_800));
        app.ingest(1, Ok(snap(Role::Client, 2_000, 10)), ms(4_800));
        app.tick(ms(6_000));
        assert_eq!(app.data.nodes[0].status, Status::Finished);
        assert_eq!(app.data.nodes[1].status, Status::Down, "died 3 s early");
    }

    #[test]
    fn median_skips_idle_seconds_around_the_load() {
        let mut d = LiveData::new(vec![], None);
        d.totals = [0.0, 10.0, 30.0, 0.0, 20.0, 0.0, 0.0].into();
        assert_eq!(d.median_total(), Some(15.0), "median of 10, 30, 0, 20");
        d.totals = [0.0].into();
        assert_eq!(d.median_total(), None);
    }

    #[test]
    fn pause_freezes_the_display_not_the_data() {
        let mut app = LiveApp::new(RunInfo::default(), vec![spec("s", Role::Server)]);
        app.ingest(0, Ok(snap(Role::Server, 0, 0)), ms(0));
        assert!(app.apply(Action::Pause));
        app.ingest(0, Ok(snap(Role::Server, 1000, 5000)), ms(1000));
        assert_eq!(app.shown().nodes[0].ops_per_s(), 0.0);
        assert_eq!(app.data.nodes[0].ops_per_s(), 5000.0);
        app.apply(Action::Pause);
        assert_eq!(app.shown().nodes[0].ops_per_s(), 5000.0);
    }
}
