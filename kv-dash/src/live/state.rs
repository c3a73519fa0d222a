//! The live dashboard's state and how snapshots and [`Action`]s change it.
//! No terminal, no sockets, no clock: every input carries the time it
//! happened at (`at`, since the dashboard started), so tests drive it with
//! fixed snapshots and fixed times. What a node's answers mean (its status,
//! its per-second rows) is the one poller's rule, [`NodeTrack`]; the
//! steady figure is the record's, [`kv_core::figures`].

use std::collections::VecDeque;
use std::time::Duration;

use kv_core::figures::{self, Window, DEFAULT_WARMUP_S};
use kv_core::poller::{NodeTrack, Timing, DEFAULT_READY_TIMEOUT, DOWN_AFTER};
use kv_core::runlog::TimeseriesRow;
use kv_core::stats::{Rates, Role, StatsSnapshot};

use crate::input::Action;

/// A node's status, by the poller's rule (`kv_core::poller`).
pub use kv_core::poller::NodeStatus as Status;

/// Rates in the table are taken over (at least) this much of the node's
/// own uptime: shorter windows make a 4 Hz display jitter.
pub const RATE_WINDOW_MS: u64 = 1000;

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

/// What the header says about the run, and the facts its figures need.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunInfo {
    /// The run id, or a label when there is no manifest.
    pub run_id: String,
    /// One line: servers, clients, workload, theta, batch.
    pub config: String,
    /// Load time of the run, for the gauge.
    pub total: Option<Duration>,
    /// How long a node may take to answer first (default: run-cluster.sh's
    /// 60 s): until then it is `starting`, not down.
    pub ready_timeout: Option<Duration>,
    /// Warm-up left out of the steady figure (default: the record's).
    pub warmup_s: Option<f64>,
}

/// Why the run is over.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOver {
    /// Every client finished (the dashboard saw it).
    ClientsFinished,
    /// The run ended (its log directory says so; see `live::over`).
    Ended(String),
}

impl RunOver {
    pub fn text(&self) -> String {
        match self {
            RunOver::ClientsFinished => "run over: every client finished".into(),
            RunOver::Ended(why) => format!("run over: {why}"),
        }
    }
}

/// One node as the dashboard knows it.
#[derive(Debug, Clone)]
pub struct NodeState {
    pub spec: NodeSpec,
    /// Its status, latest snapshot and per-second rows (the one poller's).
    pub track: NodeTrack,
    /// Rates over the last [`RATE_WINDOW_MS`] of snapshots; `None` until
    /// two snapshots, and while down.
    pub rates: Option<Rates>,
    /// ops/s per second of the dashboard, from its rows (0: no row).
    pub ops_history: VecDeque<f64>,
    /// Snapshots inside the rate window, oldest first.
    recent: VecDeque<StatsSnapshot>,
}

impl NodeState {
    pub fn new(spec: NodeSpec, timing: Timing) -> NodeState {
        NodeState {
            track: NodeTrack::new(spec.name.clone(), spec.role, spec.pollable, timing),
            spec,
            rates: None,
            ops_history: VecDeque::new(),
            recent: VecDeque::new(),
        }
    }

    pub fn status(&self) -> Status {
        self.track.status()
    }

    pub fn latest(&self) -> Option<&StatsSnapshot> {
        self.track.latest()
    }

    /// Why the last poll failed.
    pub fn error(&self) -> Option<&str> {
        self.track.error()
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
        self.track.record(Ok(snap), at);
    }

    /// After the status changed: no stale rates for a node that is down
    /// or finished and silent.
    fn settle(&mut self, at: Duration) {
        let silent = at.saturating_sub(self.track.last_ok().unwrap_or(Duration::ZERO));
        match self.status() {
            Status::Down => {
                self.rates = None;
                self.recent.clear();
            }
            Status::Finished if silent >= DOWN_AFTER => self.rates = None,
            _ => {}
        }
    }
}

/// Everything the screen shows; the pause key freezes a copy of it.
#[derive(Debug, Clone)]
pub struct LiveData {
    pub nodes: Vec<NodeState>,
    /// Dashboard time of the latest update.
    pub at: Duration,
    /// Total ops/s per second (servers; clients when there are none), the
    /// sum of that second's rows.
    pub totals: VecDeque<f64>,
    /// Client latency per second (worst client, its last whole second):
    /// p50, p99 in us; (0, 0) when no client completed ops.
    pub latency: VecDeque<(u64, u64)>,
    /// Seconds recorded so far (the histories' length, before trimming).
    pub seconds: u64,
    /// The run's load time, when known.
    pub total: Option<Duration>,
    /// Every node's rows so far, as `kv-run collect` writes them to
    /// `timeseries.csv` (the last [`HISTORY_SECS`] seconds).
    pub rows: VecDeque<TimeseriesRow>,
    /// The record's steady figure over the rows so far (`None` until the
    /// window after the warm-up holds a second).
    pub steady: Option<f64>,
    pub warmup_s: f64,
    /// How long a node may stay `starting`.
    pub ready_timeout: Duration,
    pub over: Option<RunOver>,
}

impl LiveData {
    fn new(nodes: Vec<NodeSpec>, run: &RunInfo) -> LiveData {
        let timing = Timing {
            ready_timeout: run.ready_timeout.unwrap_or(DEFAULT_READY_TIMEOUT),
            load: run.total,
        };
        LiveData {
            total: run.total,
            nodes: nodes
                .into_iter()
                .map(|n| NodeState::new(n, timing))
                .collect(),
            at: Duration::ZERO,
            totals: VecDeque::new(),
            latency: VecDeque::new(),
            seconds: 0,
            rows: VecDeque::new(),
            steady: None,
            warmup_s: run.warmup_s.unwrap_or(DEFAULT_WARMUP_S),
            ready_timeout: timing.ready_timeout,
            over: None,
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

    /// Total ops/s of the last whole second (as `kv-run collect` prints it).
    pub fn total_ops_per_s(&self) -> f64 {
        self.totals.back().copied().unwrap_or(0.0)
    }

    pub fn count(&self, status: Status) -> usize {
        self.nodes.iter().filter(|n| n.status() == status).count()
    }

    /// Nodes answering.
    pub fn nodes_up(&self) -> usize {
        self.count(Status::Up)
    }

    fn clients(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.iter().filter(|n| n.spec.role == Role::Client)
    }

    /// Load time of the run so far: the longest client uptime (clients
    /// start counting when they start generating); `None` while no client
    /// has answered. Dashboard time when no client is watched.
    pub fn run_elapsed(&self) -> Option<Duration> {
        if self.clients().next().is_none() {
            return Some(self.at);
        }
        self.clients()
            .filter_map(NodeState::latest)
            .map(|s| Duration::from_millis(s.uptime_ms))
            .max()
    }

    /// Worst client latency so far (p50, p99), if any client reports one.
    pub fn client_latency(&self) -> Option<(u64, u64)> {
        worst(
            self.nodes
                .iter()
                .filter_map(|n| n.latest()?.latency)
                .filter(|l| l.count > 0)
                .map(|l| (l.p50_us, l.p99_us)),
        )
    }

    /// Every client finished (and there is at least one).
    pub fn all_clients_finished(&self) -> bool {
        let mut clients = self.clients().peekable();
        clients.peek().is_some() && clients.all(|n| n.status() == Status::Finished)
    }

    /// The run is over: from now on a silent server stopped with it.
    fn set_over(&mut self, why: RunOver) {
        if self.over.is_some() {
            return;
        }
        let end = self.clients().filter_map(|n| n.track.last_ok()).max();
        for n in &mut self.nodes {
            n.track.run_over(end);
        }
        self.over = Some(why);
    }

    /// Moves time to `at`: applies the status rule's timeouts and records
    /// one row per node per whole second passed.
    fn advance(&mut self, at: Duration) {
        self.at = self.at.max(at);
        for n in &mut self.nodes {
            n.track.tick(self.at);
        }
        if self.all_clients_finished() {
            self.set_over(RunOver::ClientsFinished);
        }
        for n in &mut self.nodes {
            n.settle(self.at);
        }
        let now = self.at.as_secs();
        if self.seconds >= now {
            return;
        }
        // One row per node for the interval ending now (seconds skipped
        // while the dashboard stalled share it, as in `kv-run collect`).
        let rows: Vec<Option<TimeseriesRow>> = self
            .nodes
            .iter_mut()
            .map(|n| n.track.row(now as f64))
            .collect();
        let role = self.counted_role();
        let total: f64 = rows
            .iter()
            .flatten()
            .filter(|r| r.role == role)
            .map(|r| r.ops_per_s)
            .sum();
        let latency = worst(
            rows.iter()
                .flatten()
                .filter(|r| r.role == Role::Client)
                .filter_map(|r| r.p50_us.zip(r.p99_us)),
        )
        .unwrap_or((0, 0));
        while self.seconds < now {
            self.seconds += 1;
            push_capped(&mut self.totals, total);
            push_capped(&mut self.latency, latency);
            for (n, r) in self.nodes.iter_mut().zip(&rows) {
                push_capped(&mut n.ops_history, r.as_ref().map_or(0.0, |r| r.ops_per_s));
            }
        }
        self.rows.extend(rows.into_iter().flatten());
        let oldest = now.saturating_sub(HISTORY_SECS as u64) as f64;
        while self.rows.front().is_some_and(|r| r.t_s <= oldest) {
            self.rows.pop_front();
        }
        let window = Window {
            warmup_s: self.warmup_s,
            secs: self.total.map_or(f64::INFINITY, |t| t.as_secs_f64()),
        };
        self.steady = figures::steady_ops_per_s(self.rows.make_contiguous(), window);
    }
}

/// Worst (p50, p99) of the pairs given.
fn worst(pairs: impl Iterator<Item = (u64, u64)>) -> Option<(u64, u64)> {
    pairs.reduce(|a, b| (a.0.max(b.0), a.1.max(b.1)))
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
        LiveApp {
            data: LiveData::new(nodes, &run),
            run,
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
                Err(e) => n.track.record(Err(e), at),
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

    /// The run ended (seen from outside, see `live::over`).
    pub fn run_ended(&mut self, why: String) {
        self.data.set_over(RunOver::Ended(why));
    }

    /// The run is over (every client finished, or it ended).
    pub fn over(&self) -> Option<&RunOver> {
        self.data.over.as_ref()
    }

    /// The `--plain` line for the current second.
    pub fn plain_line(&self) -> String {
        let d = &self.data;
        let elapsed = d
            .run_elapsed()
            .map_or("-".to_string(), |e| format!("{:.0}", e.as_secs_f64()));
        let of = self
            .run
            .total
            .map(|t| format!("/{:.0}", t.as_secs_f64()))
            .unwrap_or_default();
        let mut line = format!(
            "[{elapsed:>4}{of} s] total {} ops/s, nodes up {}/{}",
            crate::browse::fmt_ops(d.total_ops_per_s()),
            d.nodes_up(),
            d.nodes.len()
        );
        for status in [Status::Starting, Status::Finished, Status::Down] {
            let names: Vec<&str> = d
                .nodes
                .iter()
                .filter(|n| n.status() == status)
                .map(|n| n.spec.name.as_str())
                .collect();
            if !names.is_empty() {
                line += &format!(", {} {}", status_word(status), names.join(" "));
            }
        }
        line
    }
}

/// How a status reads in the plain lines and the table.
pub fn status_word(s: Status) -> &'static str {
    match s {
        Status::Starting => "starting",
        Status::Up => "up",
        Status::Finished => "finished",
        Status::Down => "DOWN",
        Status::NoStats => "no stats",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            pid: 1,
            uptime_ms,
            gets: ops,
            ..StatsSnapshot::empty(role)
        }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn run(total_s: u64) -> RunInfo {
        RunInfo {
            total: Some(Duration::from_secs(total_s)),
            ready_timeout: Some(Duration::from_secs(10)),
            ..RunInfo::default()
        }
    }

    #[test]
    fn rates_over_a_one_second_window_rows_per_second() {
        let mut app = LiveApp::new(RunInfo::default(), vec![spec("s", Role::Server)]);
        for i in 0..=8u64 {
            // 1000 ops per 250 ms = 4000 ops/s.
            app.ingest(0, Ok(snap(Role::Server, i * 250, i * 1000)), ms(i * 250));
        }
        let n = &app.data.nodes[0];
        assert_eq!(n.status(), Status::Up);
        assert_eq!(n.ops_per_s(), 4000.0);
        assert_eq!(n.recent.len(), 5, "one window: 1000 ms of uptime");
        assert_eq!(app.data.totals, [4000.0, 4000.0]);
        let t: Vec<f64> = app.data.rows.iter().map(|r| r.t_s).collect();
        assert_eq!(t, [1.0, 2.0], "one row per node per second");
    }

    #[test]
    fn a_late_client_is_starting_then_up_never_down() {
        let mut app = LiveApp::new(
            run(20),
            vec![spec("s", Role::Server), spec("c", Role::Client)],
        );
        for t in (0..=3000).step_by(250) {
            app.ingest(0, Ok(snap(Role::Server, 1000 + t, t)), ms(t));
            app.ingest(1, Err("connection refused".into()), ms(t));
            assert_eq!(app.data.nodes[1].status(), Status::Starting, "at {t} ms");
            assert_eq!(app.data.run_elapsed(), None, "no client: no count-up");
        }
        assert!(
            app.plain_line().ends_with(", starting c"),
            "{}",
            app.plain_line()
        );
        app.ingest(1, Ok(snap(Role::Client, 50, 0)), ms(3250));
        assert_eq!(app.data.nodes[1].status(), Status::Up);
        assert_eq!(app.data.run_elapsed(), Some(ms(50)));
        // Never answering: down at the ready timeout, not before.
        let mut app = LiveApp::new(run(20), vec![spec("c", Role::Client)]);
        app.tick(ms(9_000));
        assert_eq!(app.data.nodes[0].status(), Status::Starting);
        app.tick(ms(10_000));
        assert_eq!(app.data.nodes[0].status(), Status::Down);
    }

    #[test]
    fn silent_node_goes_down_after_a_second_and_comes_back() {
        let mut app = LiveApp::new(run(20), vec![spec("s", Role::Server)]);
        app.ingest(0, Ok(snap(Role::Server, 0, 0)), ms(0));
        app.ingest(0, Ok(snap(Role::Server, 500, 500)), ms(500));
        app.ingest(0, Err("refused".into()), ms(1400));
        assert_eq!(app.data.nodes[0].status(), Status::Up, "900 ms silent");
        app.tick(ms(1500));
        assert_eq!(app.data.nodes[0].status(), Status::Down);
        assert_eq!(app.data.nodes[0].ops_per_s(), 0.0);
        app.ingest(0, Ok(snap(Role::Server, 2000, 900)), ms(2000));
        assert_eq!(app.data.nodes[0].status(), Status::Up);
    }

    #[test]
    fn clients_finished_make_the_run_over_and_servers_stopped_not_down() {
        let mut app = LiveApp::new(
            run(5),
            vec![
                spec("s", Role::Server),
                spec("c1", Role::Client),
                spec("c2", Role::Client),
            ],
        );
        let mut said = snap(Role::Client, 5_000, 10);
        said.finished = true;
        app.ingest(0, Ok(snap(Role::Server, 6_000, 10)), ms(4_900));
        app.ingest(1, Ok(said), ms(5_000));
        app.ingest(2, Ok(snap(Role::Client, 4_900, 10)), ms(5_100));
        assert_eq!(app.over(), None, "c2 may still run");
        // The server stops with the clients; it falls silent first.
        app.tick(ms(5_950));
        assert_eq!(app.data.nodes[0].status(), Status::Down);
        app.tick(ms(6_100));
        assert_eq!(app.data.nodes[2].status(), Status::Finished);
        assert_eq!(app.over(), Some(&RunOver::ClientsFinished));
        assert_eq!(app.data.nodes[0].status(), Status::Finished, "stopped");
        assert_eq!(app.data.run_elapsed(), Some(ms(5_000)), "no count-up");
        app.tick(ms(60_000));
        assert_eq!(app.data.run_elapsed(), Some(ms(5_000)));
    }

    #[test]
    fn a_client_dying_early_is_down_and_the_run_goes_on() {
        let mut app = LiveApp::new(run(5), vec![spec("c1", Role::Client)]);
        app.ingest(0, Ok(snap(Role::Client, 2_000, 10)), ms(2_000));
        app.tick(ms(3_000));
        assert_eq!(app.data.nodes[0].status(), Status::Down, "died 3 s early");
        assert_eq!(app.over(), None);
        app.run_ended("it ended 1 s ago".into());
        assert_eq!(
            app.over().map(RunOver::text).as_deref(),
            Some("run over: it ended 1 s ago")
        );
        assert_eq!(
            app.data.nodes[0].status(),
            Status::Down,
            "a death stays a death"
        );
    }

    #[test]
    fn steady_figure_is_the_records_over_the_rows_so_far() {
        // The client's snapshot of each second arrives after the server's,
        // which closes that second: its first row with ops is t=2, the load
        // start; with the 2 s warm-up the window opens after t=4.
        let mut app = LiveApp::new(
            run(20),
            vec![spec("s", Role::Server), spec("c", Role::Client)],
        );
        let server_ops = [0u64, 1000, 3000, 6000, 10000, 14000];
        for (i, ops) in server_ops.iter().enumerate() {
            let t = i as u64 * 1000;
            app.ingest(0, Ok(snap(Role::Server, t, *ops)), ms(t));
            app.ingest(1, Ok(snap(Role::Client, t, *ops)), ms(t));
            if i == 3 {
                assert_eq!(app.data.steady, None, "still warming up");
            }
        }
        // Second 5: 4000 ops/s (the ramp before it stays out).
        assert_eq!(app.data.steady, Some(4000.0));
        let rows: Vec<_> = app.data.rows.iter().cloned().collect();
        let w = Window {
            warmup_s: DEFAULT_WARMUP_S,
            secs: 20.0,
        };
        assert_eq!(
            kv_core::figures::RunFigures::of(&rows, w).steady_ops_per_s,
            app.data.steady,
            "the record's figure of the same rows"
        );
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
