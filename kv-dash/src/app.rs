//! All state of the browser and how [`Action`]s change it. Reads the
//! experiments files it needs (through `kv_core::runlog`) but never touches
//! the terminal; side effects that need the outside world (opening an SVG)
//! come back as an [`Effect`] for the event loop.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kv_core::runlog::{self, NodeSummary, ProcessProfile, RunDir, RunRecord};
use kv_core::stats::Role;

pub use crate::action::{Action, InputMode};
use crate::browse::{self, Column, Comparison, Sort};
use crate::cost::ProcessCost;
use crate::flame::{DiffRow, FlameGraph, FrameId, Grouping, SearchResult, TopBy, Vanished};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Runs,
    Series,
    Flame,
    Compare,
}

impl View {
    pub fn title(self) -> &'static str {
        match self {
            View::Runs => "Runs",
            View::Series => "Series",
            View::Flame => "Flamegraph",
            View::Compare => "Compare",
        }
    }
}

/// Which pane of the Flamegraph view has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlameFocus {
    Processes,
    Graph,
}

/// Something the event loop must do outside the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    OpenFile(PathBuf),
}

/// What the detail pane shows for the selected run, loaded from its folder.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetail {
    pub run_id: String,
    pub nodes: Vec<NodeSummary>,
    /// Total server ops/s per second of the run.
    pub ops_series: Vec<u64>,
    pub profiles: Vec<ProcessProfile>,
    /// The run's series, its spread and the verdict against the baseline
    /// (items a pane flows to its width).
    pub series: Option<Vec<String>>,
    /// Check-mode witness pages of failing keys.
    pub witnesses: Vec<PathBuf>,
    /// Why something is missing (no timeseries, unreadable file).
    pub problem: Option<String>,
}

/// Rows of the flamegraph view's bottom table (top-N or diff) on screen;
/// PgUp/PgDn scroll it by this much.
pub const TABLE_ROWS: usize = 7;

/// An open flamegraph: one process of one run.
#[derive(Debug, Clone)]
pub struct FlameView {
    pub run_id: String,
    pub process: String,
    pub graph: FlameGraph,
    pub zoom: FrameId,
    pub selected: FrameId,
    /// Where it opened: past the thread-start and runtime frames.
    pub focus: FrameId,
    pub search: Option<SearchResult>,
    /// Which search match `n`/`N` last went to.
    pub match_at: Option<usize>,
    /// First row (depth below the zoomed frame) on screen; the drawing
    /// moves it to keep the selection visible, so it is a `Cell`.
    pub scroll: Cell<usize>,
    /// The zoom `scroll` was for: a new zoom starts at its top.
    pub scroll_zoom: Cell<FrameId>,
    /// Where the bars were last drawn (for mouse clicks).
    pub graph_area: Cell<ratatui::layout::Rect>,
    /// CPU time and ops of this process, for ns per op.
    pub cost: Option<ProcessCost>,
    pub svg: Option<PathBuf>,
    /// Differential against the same process of another run.
    pub diff: Option<FlameDiff>,
    /// First row of the bottom table shown.
    pub table_offset: usize,
    /// A graph merged from a group's profiles (series against series):
    /// its label, and the other side's merged graph the diff is against.
    pub group: Option<GroupDiff>,
    /// Functions, or every frame (inlined detail), in the tables.
    pub grouping: Grouping,
}

impl FlameView {
    /// The frame's depth below the zoomed frame.
    pub fn rel_depth(&self, id: FrameId) -> usize {
        self.graph
            .frame(id)
            .depth
            .saturating_sub(self.graph.frame(self.zoom).depth)
    }

    /// Moves the selection (and the zoom, if the frame is outside it).
    fn go_to(&mut self, id: FrameId) {
        if !self.graph.is_within(id, self.zoom) {
            self.zoom = if self.graph.is_within(id, self.focus) {
                self.focus
            } else {
                self.graph.root()
            };
        }
        self.selected = id;
    }

    /// `n` / `N`: the next (or previous) search match, hottest first.
    fn step_match(&mut self, forward: bool) -> Option<String> {
        let Some(search) = &self.search else {
            return Some("no search: / first".into());
        };
        let matches = self.graph.matches(search);
        if matches.is_empty() {
            return Some(format!("no frame matches '{}'", search.pattern));
        }
        let n = matches.len();
        let next = match (self.match_at, forward) {
            (None, true) => 0,
            (None, false) => n - 1,
            (Some(i), true) => (i + 1) % n,
            (Some(i), false) => (i + n - 1) % n,
        };
        self.match_at = Some(next);
        self.go_to(matches[next]);
        None
    }

    /// The frame drawn at a screen cell, if any (mouse clicks).
    pub fn frame_at(&self, column: u16, row: u16) -> Option<FrameId> {
        let area = self.graph_area.get();
        if !area.contains(ratatui::layout::Position::new(column, row)) {
            return None;
        }
        let top = area.y + u16::from(self.folded_row());
        let depth = row.checked_sub(top)? as usize + self.scroll.get();
        self.graph
            .layout(self.zoom, area.width, depth + 1)
            .into_iter()
            .find(|b| b.depth == depth && column >= area.x + b.x && column < area.x + b.x + b.width)
            .map(|b| b.frame)
    }

    /// The first row of the graph labels the frames above the zoomed one.
    pub fn folded_row(&self) -> bool {
        self.zoom != self.graph.root()
    }

    /// Rows the bottom table has: changed functions, or all functions.
    pub fn table_len(&self) -> usize {
        match &self.diff {
            Some(d) => d.rows.len(),
            None => self.graph.functions_by(self.grouping).len(),
        }
    }
}

/// Series against series: B's trials' profiles merged (the open graph)
/// against A's merged (`cli::diff_side`, as `kv-dash diff` does it).
#[derive(Debug, Clone)]
pub struct GroupDiff {
    pub label_a: String,
    pub base: FlameGraph,
}

/// What the Series view draws for the selected series.
#[derive(Debug, Clone)]
pub enum SeriesChart {
    /// A rate sweep: its latency–throughput curve and knee.
    Curve(Box<kv_core::sweep::SweepResult>),
    /// Repeated trials: per second of the run, the servers' total ops/s
    /// over the ok trials as median, lowest and highest (the band).
    Band {
        median: Vec<(f64, f64)>,
        low: Vec<(f64, f64)>,
        high: Vec<(f64, f64)>,
        trials: usize,
    },
    /// Why there is nothing to draw.
    Nothing(String),
}

/// The open flamegraph (B) against the same process of another run (A).
#[derive(Debug, Clone)]
pub struct FlameDiff {
    /// Run id of A.
    pub other: String,
    /// Per function, largest change first (the table).
    pub rows: Vec<DiffRow>,
    /// Per frame of B, change of its share in percentage points (the colors).
    pub frame_deltas: Vec<f64>,
    /// Stacks only A has (not drawn: the bars are B's), largest loss first.
    pub vanished: Vec<Vanished>,
    /// Samples in A's profile.
    pub samples_a: u64,
    pub cost_a: Option<ProcessCost>,
}

pub struct App {
    pub dir: PathBuf,
    pub runs: Vec<RunRecord>,
    /// Indices into `runs`, filtered and sorted: the table's rows.
    pub visible: Vec<usize>,
    /// Position in `visible`.
    pub selected: usize,
    pub sort: Sort,
    pub filter: String,
    /// Run ids marked for compare, oldest mark first.
    pub marks: Vec<String>,
    pub view: View,
    pub mode: InputMode,
    /// Text typed so far in Filter/Search mode.
    pub input: String,
    pub show_help: bool,
    pub message: Option<String>,
    pub detail: Option<RunDetail>,
    pub process_selected: usize,
    pub flame_focus: FlameFocus,
    pub flame: Option<FlameView>,
    pub top_by: TopBy,
    pub comparison: Option<Comparison>,
    /// Series (or other groups) B against A with verdicts: the Compare
    /// view shows it instead of `comparison` when set.
    pub group_comparison: Option<kv_core::series::GroupComparison>,
    /// Position in `series.series` of the Series view's cursor.
    pub series_selected: usize,
    /// Series ids marked for compare and diff, oldest mark first.
    pub series_marks: Vec<String>,
    /// The selected series' chart, loaded when the cursor moves.
    pub series_chart: Option<(String, SeriesChart)>,
    /// Which runs are trials of which series, with their figures.
    pub series: crate::series::SeriesIndex,
    /// Colors on (off under NO_COLOR): the ui reads it.
    pub color: bool,
    pub should_quit: bool,
}

/// True unless NO_COLOR is set to a non-empty value (no-color.org).
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

impl App {
    /// Opens `<dir>/log.csv`. A missing or headless log is an error; a
    /// bad row is named in the status line and every other run is shown.
    pub fn load(dir: &Path) -> anyhow::Result<App> {
        let log = crate::cli::load_log(dir)?;
        let warning = match log.bad.as_slice() {
            [] => None,
            [one] => Some(format!("{one} (row skipped)")),
            [first, rest @ ..] => Some(format!(
                "{first} (row skipped; {} more bad rows: kv-dash list names them)",
                rest.len()
            )),
        };
        let mut app = App::from_runs(dir, log.runs);
        app.message = warning;
        Ok(app)
    }

    pub fn from_runs(dir: &Path, runs: Vec<RunRecord>) -> App {
        let mut app = App {
            dir: dir.to_path_buf(),
            visible: Vec::new(),
            runs,
            selected: 0,
            sort: Sort::default(),
            filter: String::new(),
            marks: Vec::new(),
            view: View::Runs,
            mode: InputMode::Normal,
            input: String::new(),
            show_help: false,
            message: None,
            detail: None,
            process_selected: 0,
            flame_focus: FlameFocus::Processes,
            flame: None,
            top_by: TopBy::Self_,
            comparison: None,
            series: crate::series::SeriesIndex::default(),
            group_comparison: None,
            series_selected: 0,
            series_marks: Vec::new(),
            series_chart: None,
            color: color_enabled(),
            should_quit: false,
        };
        app.series = crate::series::SeriesIndex::build(dir, &app.runs);
        app.refresh_visible();
        app
    }

    /// The run under the cursor.
    pub fn selected_run(&self) -> Option<&RunRecord> {
        self.visible.get(self.selected).map(|&i| &self.runs[i])
    }

    pub fn run(&self, id: &str) -> Option<&RunRecord> {
        self.runs.iter().find(|r| r.run_id == id)
    }

    pub fn is_marked(&self, id: &str) -> bool {
        self.marks.iter().any(|m| m == id)
    }

    fn refresh_visible(&mut self) {
        let keep = self.selected_run().map(|r| r.run_id.clone());
        self.visible = browse::visible_runs(&self.runs, &self.filter, self.sort);
        self.selected = keep
            .and_then(|id| self.visible.iter().position(|&i| self.runs[i].run_id == id))
            .unwrap_or(0);
        self.load_detail();
    }

    fn select(&mut self, pos: usize) {
        let pos = pos.min(self.visible.len().saturating_sub(1));
        if pos != self.selected || self.detail.is_none() {
            self.selected = pos;
            self.load_detail();
        }
    }

    /// Loads the selected run's folder: time series medians and profiles.
    fn load_detail(&mut self) {
        let Some(run) = self.selected_run() else {
            self.detail = None;
            return;
        };
        let run_id = run.run_id.clone();
        if self.detail.as_ref().is_some_and(|d| d.run_id == run_id) {
            return;
        }
        let dir = RunDir::new(&self.dir, &run_id);
        let series = self
            .series
            .of_run(&run_id)
            .map(|(s, trial)| s.detail_items(trial));
        let witnesses = crate::browse::witness_pages(&self.dir, &run_id);
        let mut detail = RunDetail {
            run_id,
            nodes: Vec::new(),
            ops_series: Vec::new(),
            profiles: Vec::new(),
            series,
            witnesses,
            problem: None,
        };
        match runlog::read_timeseries(&dir.timeseries_csv()) {
            Ok(rows) => {
                detail.nodes = runlog::node_medians(&rows);
                detail.ops_series = server_totals(&rows);
            }
            Err(e) if e.is_not_found() => detail.problem = Some("no timeseries.csv".into()),
            Err(e) => detail.problem = Some(e.to_string()),
        }
        match dir.profiles() {
            Ok(p) => detail.profiles = p,
            Err(e) => detail.problem = Some(e.to_string()),
        }
        self.detail = Some(detail);
        self.process_selected = 0;
    }

    /// The views Tab cycles through.
    fn views(&self) -> Vec<View> {
        let mut v = vec![View::Runs, View::Flame, View::Series];
        if self.comparison.is_some() || self.group_comparison.is_some() {
            v.push(View::Compare);
        }
        v
    }

    /// Applies one action; returns what the event loop must do, if anything.
    pub fn apply(&mut self, action: Action) -> Option<Effect> {
        if self.show_help {
            match action {
                Action::Quit => self.should_quit = true,
                _ => self.show_help = false,
            }
            return None;
        }
        if self.mode != InputMode::Normal {
            self.apply_input(action);
            return None;
        }
        self.message = None;
        match action {
            Action::Quit => self.should_quit = true,
            Action::Help => self.show_help = true,
            Action::NextView | Action::PrevView => {
                let views = self.views();
                let i = views.iter().position(|v| *v == self.view).unwrap_or(0);
                let n = views.len();
                let next = if action == Action::NextView {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.view = views[next];
                if self.view == View::Series {
                    self.load_series_chart();
                }
            }
            Action::Mark if self.view == View::Series => self.toggle_series_mark(),
            Action::Compare if self.view == View::Series => self.compare_series(),
            Action::Mark => self.toggle_mark(),
            Action::Compare => self.compare(),
            _ => {
                return match self.view {
                    View::Runs => self.apply_runs(action),
                    View::Series => self.apply_series(action),
                    View::Flame => self.apply_flame(action),
                    View::Compare => {
                        if matches!(action, Action::Back | Action::Escape) {
                            self.view = View::Runs;
                        }
                        None
                    }
                };
            }
        }
        None
    }

    fn apply_input(&mut self, action: Action) {
        match action {
            Action::InputChar(c) => self.input.push(c),
            Action::InputBackspace => {
                self.input.pop();
            }
            Action::InputSubmit => self.mode = InputMode::Normal,
            Action::InputCancel => {
                self.input.clear();
                self.mode = InputMode::Normal;
            }
            Action::Quit => {
                self.should_quit = true;
                return;
            }
            _ => return,
        }
        // Both filter and search follow the typing, so results show at once.
        match self.mode_target() {
            InputMode::Filter => {
                self.filter = self.input.clone();
                self.refresh_visible();
            }
            InputMode::Search => {
                if let Some(f) = &mut self.flame {
                    f.search = (!self.input.is_empty()).then(|| f.graph.search(&self.input));
                    f.match_at = None;
                }
            }
            InputMode::Normal => {}
        }
    }

    /// The mode the current input belongs to (kept after Submit ends it).
    fn mode_target(&self) -> InputMode {
        match self.view {
            View::Flame => InputMode::Search,
            _ => InputMode::Filter,
        }
    }

    fn apply_runs(&mut self, action: Action) -> Option<Effect> {
        let page = 10;
        match action {
            Action::Up => self.select(self.selected.saturating_sub(1)),
            Action::Down => self.select(self.selected + 1),
            Action::PageUp => self.select(self.selected.saturating_sub(page)),
            Action::PageDown => self.select(self.selected + page),
            Action::First => self.select(0),
            Action::Last => self.select(usize::MAX),
            Action::Enter => {
                self.view = View::Flame;
                self.flame_focus = FlameFocus::Processes;
            }
            Action::StartInput => {
                self.mode = InputMode::Filter;
                self.input = self.filter.clone();
            }
            Action::SortNext => {
                let column = self.sort.column.next();
                // Numbers read best largest first, text in order.
                let descending = matches!(column, Column::Started | Column::TotalOps);
                self.sort = Sort { column, descending };
                self.refresh_visible();
            }
            Action::SortReverse => {
                self.sort.descending = !self.sort.descending;
                self.refresh_visible();
            }
            Action::OpenSvg => {
                let svg = self
                    .detail
                    .as_ref()
                    .and_then(|d| d.profiles.iter().find_map(|p| p.svg.clone()));
                return self.open(svg, "this run");
            }
            Action::Escape | Action::Back => {
                if !self.filter.is_empty() {
                    self.filter.clear();
                    self.refresh_visible();
                } else if action == Action::Escape {
                    self.should_quit = true;
                }
            }
            _ => {}
        }
        None
    }

    fn apply_flame(&mut self, action: Action) -> Option<Effect> {
        if self.flame_focus == FlameFocus::Processes {
            let n = self.detail.as_ref().map_or(0, |d| d.profiles.len());
            match action {
                Action::Up => self.process_selected = self.process_selected.saturating_sub(1),
                Action::Down => {
                    self.process_selected = (self.process_selected + 1).min(n.saturating_sub(1))
                }
                Action::Enter | Action::Right => self.open_process(),
                Action::OpenSvg => {
                    let svg = self
                        .detail
                        .as_ref()
                        .and_then(|d| d.profiles.get(self.process_selected))
                        .and_then(|p| p.svg.clone());
                    return self.open(svg, "this process");
                }
                Action::Back | Action::Escape | Action::Left => self.view = View::Runs,
                _ => {}
            }
            return None;
        }
        let Some(f) = &mut self.flame else {
            self.flame_focus = FlameFocus::Processes;
            return None;
        };
        let g = &f.graph;
        match action {
            Action::Up if f.selected != f.zoom => {
                f.selected = g.frame(f.selected).parent.unwrap_or(f.selected);
            }
            Action::Down => {
                if let Some(&c) = g.frame(f.selected).children.first() {
                    f.selected = c;
                }
            }
            Action::Left | Action::Right if f.selected != f.zoom => {
                let sib = g.siblings(f.selected);
                if let Some(i) = sib.iter().position(|&s| s == f.selected) {
                    let j = if action == Action::Left {
                        i.checked_sub(1)
                    } else {
                        Some(i + 1).filter(|&j| j < sib.len())
                    };
                    if let Some(j) = j {
                        f.selected = sib[j];
                    }
                }
            }
            Action::First => f.selected = f.zoom,
            Action::Enter => f.zoom = f.selected,
            Action::ResetZoom => f.zoom = g.root(),
            Action::Focus => {
                f.zoom = f.focus;
                f.selected = f.graph.hot_frame(f.focus);
            }
            Action::NextMatch | Action::PrevMatch => {
                self.message = f.step_match(action == Action::NextMatch);
            }
            Action::WheelDown => {
                for _ in 0..WHEEL_ROWS {
                    if let Some(&c) = f.graph.frame(f.selected).children.first() {
                        f.selected = c;
                    }
                }
            }
            Action::WheelUp => {
                for _ in 0..WHEEL_ROWS {
                    if f.selected != f.zoom {
                        f.selected = f.graph.frame(f.selected).parent.unwrap_or(f.selected);
                    }
                }
            }
            Action::Click(column, row) => {
                if f.folded_row()
                    && row == f.graph_area.get().y
                    && f.graph_area.get().width > column.saturating_sub(f.graph_area.get().x)
                {
                    // The label of the folded frames: one level out.
                    f.zoom = f.graph.frame(f.zoom).parent.unwrap_or(f.zoom);
                } else if let Some(id) = f.frame_at(column, row) {
                    f.selected = id;
                    f.zoom = id;
                }
            }
            Action::ToggleInline => {
                f.table_offset = 0;
                f.grouping = f.grouping.toggle();
                if f.diff.is_some() {
                    self.load_diff();
                }
            }
            Action::Back | Action::Escape => {
                if f.zoom != g.root() {
                    f.zoom = g.frame(f.zoom).parent.unwrap_or(g.root());
                } else if f.search.is_some() && action == Action::Escape {
                    f.search = None;
                } else {
                    self.flame_focus = FlameFocus::Processes;
                }
            }
            Action::StartInput => {
                self.mode = InputMode::Search;
                self.input = f
                    .search
                    .as_ref()
                    .map(|s| s.pattern.clone())
                    .unwrap_or_default();
            }
            Action::PageDown => {
                let last_page = f.table_len().saturating_sub(TABLE_ROWS);
                f.table_offset = (f.table_offset + TABLE_ROWS).min(last_page);
            }
            Action::PageUp => f.table_offset = f.table_offset.saturating_sub(TABLE_ROWS),
            Action::ToggleTopBy => {
                f.table_offset = 0;
                self.top_by = match self.top_by {
                    TopBy::Self_ => TopBy::Total,
                    TopBy::Total => TopBy::Self_,
                }
            }
            Action::ToggleDiff => {
                f.table_offset = 0;
                if f.diff.is_some() {
                    f.diff = None;
                } else {
                    self.load_diff();
                }
            }
            Action::OpenSvg => {
                let svg = f.svg.clone();
                return self.open(svg, "this process");
            }
            _ => {}
        }
        None
    }

    fn open(&mut self, svg: Option<PathBuf>, what: &str) -> Option<Effect> {
        match svg {
            Some(p) => Some(Effect::OpenFile(p)),
            None => {
                self.message = Some(format!("no SVG flamegraph for {what}"));
                None
            }
        }
    }

    /// Loads the selected process's folded stacks into the graph pane.
    fn open_process(&mut self) {
        let Some(detail) = &self.detail else { return };
        let Some(p) = detail.profiles.get(self.process_selected) else {
            self.message = Some(format!("run {} has no profiles", detail.run_id));
            return;
        };
        let Some(folded) = &p.folded else {
            self.message = Some(format!("{} has no .folded file", p.name()));
            return;
        };
        match load_folded(folded) {
            Ok(graph) => {
                let focus = graph.default_focus();
                let cost = process_cost(&self.dir, &detail.run_id, p.role, &p.node);
                self.flame = Some(FlameView {
                    run_id: detail.run_id.clone(),
                    process: p.name(),
                    zoom: focus,
                    selected: graph.hot_frame(focus),
                    focus,
                    graph,
                    search: None,
                    match_at: None,
                    scroll: Cell::new(0),
                    scroll_zoom: Cell::new(focus),
                    graph_area: Cell::new(ratatui::layout::Rect::default()),
                    cost,
                    svg: p.svg.clone(),
                    diff: None,
                    table_offset: 0,
                    grouping: Grouping::default(),
                    group: None,
                });
                self.flame_focus = FlameFocus::Graph;
            }
            Err(e) => self.message = Some(format!("{e:#}")),
        }
    }

    /// Diff of the open process against the same process of the other
    /// marked run (or the first mark, when this run is not marked).
    fn load_diff(&mut self) {
        let Some(f) = &mut self.flame else { return };
        if let Some(g) = &f.group {
            f.diff = Some(FlameDiff {
                cost_a: None,
                rows: FlameGraph::diff_by(&g.base, &f.graph, f.grouping),
                frame_deltas: f.graph.frame_deltas(&g.base),
                vanished: f.graph.vanished(&g.base),
                samples_a: g.base.total_samples(),
                other: g.label_a.clone(),
            });
            return;
        }
        let Some(other) = self.marks.iter().find(|m| **m != f.run_id).cloned() else {
            self.message = Some("mark another run (space) to diff against".into());
            return;
        };
        let path = self
            .dir
            .join(runlog::RUNS_DIR)
            .join(&other)
            .join(format!("{}.folded", f.process));
        match load_folded(&path) {
            Ok(base) => {
                // A = the other (baseline) run, B = this one: growth is positive.
                let (role, node) = (f.process.split_once('-')).unwrap_or(("", ""));
                let role = if role == "client" {
                    Role::Client
                } else {
                    Role::Server
                };
                f.diff = Some(FlameDiff {
                    cost_a: process_cost(&self.dir, &other, role, node),
                    rows: FlameGraph::diff_by(&base, &f.graph, f.grouping),
                    frame_deltas: f.graph.frame_deltas(&base),
                    vanished: f.graph.vanished(&base),
                    samples_a: base.total_samples(),
                    other,
                });
            }
            Err(e) => self.message = Some(format!("{e:#}")),
        }
    }

    fn toggle_mark(&mut self) {
        let Some(id) = self.selected_run().map(|r| r.run_id.clone()) else {
            return;
        };
        if let Some(i) = self.marks.iter().position(|m| *m == id) {
            self.marks.remove(i);
        } else {
            if self.marks.len() == 2 {
                self.marks.remove(0);
            }
            self.marks.push(id);
        }
        self.message = Some(match self.marks.len() {
            0 => "no runs marked".to_string(),
            1 => format!("marked {} (mark one more, then c)", self.marks[0]),
            _ => format!("marked {} and {}: c compares", self.marks[0], self.marks[1]),
        });
    }

    fn compare(&mut self) {
        let pair = match self.marks.as_slice() {
            [a, b] => Some((a.clone(), b.clone())),
            [a] => self
                .selected_run()
                .filter(|r| r.run_id != *a)
                .map(|r| (a.clone(), r.run_id.clone())),
            _ => None,
        };
        let Some((a, b)) = pair else {
            self.message = Some("mark two runs with space or m, then press c".into());
            return;
        };
        if let (Some(ra), Some(rb)) = (self.run(&a), self.run(&b)) {
            self.comparison = Some(browse::compare(ra, rb));
            self.group_comparison = None;
            self.view = View::Compare;
        }
    }
}

impl App {
    fn apply_series(&mut self, action: Action) -> Option<Effect> {
        let n = self.series.series.len();
        let before = self.series_selected;
        match action {
            Action::Up => self.series_selected = self.series_selected.saturating_sub(1),
            Action::Down => {
                self.series_selected = (self.series_selected + 1).min(n.saturating_sub(1))
            }
            Action::First => self.series_selected = 0,
            Action::Last => self.series_selected = n.saturating_sub(1),
            Action::PageUp => self.series_selected = self.series_selected.saturating_sub(10),
            Action::PageDown => {
                self.series_selected = (self.series_selected + 10).min(n.saturating_sub(1))
            }
            Action::ToggleDiff => self.diff_series(),
            Action::OpenSvg => {
                let svg = self.selected_series().and_then(|s| {
                    let p = kv_core::sweep::svg_path(&self.dir, &s.series_id);
                    p.exists().then_some(p)
                });
                return match svg {
                    Some(p) => Some(Effect::OpenFile(p)),
                    None => {
                        self.message = Some("no SVG curve for this series (not a sweep)".into());
                        None
                    }
                };
            }
            Action::Back | Action::Escape => self.view = View::Runs,
            _ => {}
        }
        if self.series_selected != before {
            self.load_series_chart();
        }
        None
    }

    /// The series under the Series view's cursor.
    pub fn selected_series(&self) -> Option<&crate::series::SeriesSummary> {
        self.series.series.get(self.series_selected)
    }

    /// Loads the chart of the selected series: its sweep curve, or the
    /// band of its trials' per-second throughput.
    pub fn load_series_chart(&mut self) {
        let Some(s) = self.selected_series() else {
            self.series_chart = None;
            return;
        };
        if self
            .series_chart
            .as_ref()
            .is_some_and(|c| c.0 == s.series_id)
        {
            return;
        }
        let id = s.series_id.clone();
        let chart = match kv_core::sweep::SweepResult::read(&self.dir, &id) {
            Some(r) => SeriesChart::Curve(Box::new(r)),
            None => band(&self.dir, &self.runs, &s.members),
        };
        self.series_chart = Some((id, chart));
    }

    fn toggle_series_mark(&mut self) {
        let Some(id) = self.selected_series().map(|s| s.series_id.clone()) else {
            self.message = Some("no series yet (./run-cluster.sh --trials 5 ...)".into());
            return;
        };
        if let Some(i) = self.series_marks.iter().position(|m| *m == id) {
            self.series_marks.remove(i);
        } else {
            if self.series_marks.len() == 2 {
                self.series_marks.remove(0);
            }
            self.series_marks.push(id);
        }
        self.message = Some(match self.series_marks.as_slice() {
            [] => "no series marked".to_string(),
            [a] => format!("marked series {a} (mark one more: c compares, d diffs profiles)"),
            [a, b, ..] => format!("A = {a}, B = {b}: c compares, d diffs their profiles"),
        });
    }

    /// The two series a compare or diff is about: the marks (A first), or
    /// the one mark against the selected series.
    fn series_pair(&mut self) -> Option<(String, String)> {
        let pair = match self.series_marks.as_slice() {
            [a, b] => Some((a.clone(), b.clone())),
            [a] => self
                .selected_series()
                .filter(|s| s.series_id != *a)
                .map(|s| (a.clone(), s.series_id.clone())),
            _ => None,
        };
        if pair.is_none() {
            self.message = Some("mark two series with space or m, then c or d".into());
        }
        pair
    }

    /// `c` in the Series view: B against A with a verdict per metric.
    fn compare_series(&mut self) {
        let Some((a, b)) = self.series_pair() else {
            return;
        };
        let group = |id: &str| {
            let s = self.series.series.iter().find(|s| s.series_id == id)?;
            let members = self
                .runs
                .iter()
                .filter(|r| s.members.contains(&r.run_id))
                .collect();
            let label = if s.label.is_empty() {
                format!("series {id}")
            } else {
                format!("series {id} ({})", s.label)
            };
            Some(kv_core::series::Group::new(label, members, &self.dir))
        };
        if let (Some(ga), Some(gb)) = (group(&a), group(&b)) {
            self.group_comparison = Some(kv_core::series::compare_groups(&ga, &gb));
            self.comparison = None;
            self.view = View::Compare;
        }
    }

    /// `d` in the Series view: B's trials' profiles merged against A's,
    /// opened as a differential flamegraph (first server unless A lacks it).
    fn diff_series(&mut self) {
        let Some((a, b)) = self.series_pair() else {
            return;
        };
        let sides = crate::cli::diff_side(&self.dir, &self.runs, &b, None).and_then(|sb| {
            let sa = crate::cli::diff_side(&self.dir, &self.runs, &a, Some(&sb.process))?;
            Ok((sa, sb))
        });
        let (sa, sb) = match sides {
            Ok(s) => s,
            Err(e) => {
                self.message = Some(format!("{e:#}"));
                return;
            }
        };
        let focus = sb.graph.default_focus();
        self.flame = Some(FlameView {
            run_id: sb.label.clone(),
            process: sb.process,
            zoom: focus,
            selected: sb.graph.hot_frame(focus),
            focus,
            graph: sb.graph,
            search: None,
            match_at: None,
            scroll: Cell::new(0),
            scroll_zoom: Cell::new(focus),
            graph_area: Cell::new(ratatui::layout::Rect::default()),
            cost: None,
            svg: None,
            diff: None,
            table_offset: 0,
            grouping: Grouping::default(),
            group: Some(GroupDiff {
                label_a: sa.label,
                base: sa.graph,
            }),
        });
        self.load_diff();
        self.view = View::Flame;
        self.flame_focus = FlameFocus::Graph;
    }
}

/// Total server ops/s per second of a run, in time order.
fn server_totals(rows: &[runlog::TimeseriesRow]) -> Vec<u64> {
    let mut per_second: Vec<(f64, f64)> = Vec::new();
    for r in rows.iter().filter(|r| r.role == Role::Server) {
        match per_second.iter_mut().find(|(t, _)| *t == r.t_s) {
            Some((_, ops)) => *ops += r.ops_per_s,
            None => per_second.push((r.t_s, r.ops_per_s)),
        }
    }
    per_second.sort_by(|a, b| a.0.total_cmp(&b.0));
    per_second.iter().map(|(_, o)| o.max(0.0) as u64).collect()
}

/// The band of a series' ok trials: second by second, the median, lowest
/// and highest servers' total over the trials that lasted that long.
fn band(dir: &Path, runs: &[RunRecord], members: &[String]) -> SeriesChart {
    let trials: Vec<Vec<u64>> = runs
        .iter()
        .filter(|r| r.status.is_ok() && members.contains(&r.run_id))
        .filter_map(|r| runlog::read_timeseries(&RunDir::new(dir, &r.run_id).timeseries_csv()).ok())
        .map(|rows| server_totals(&rows))
        .filter(|t| !t.is_empty())
        .collect();
    if trials.is_empty() {
        return SeriesChart::Nothing("no ok trial has a timeseries.csv".into());
    }
    let longest = trials.iter().map(Vec::len).max().unwrap_or(0);
    let (mut median, mut low, mut high) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..longest {
        let mut v: Vec<f64> = trials
            .iter()
            .filter_map(|t| t.get(i))
            .map(|&x| x as f64)
            .collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let m = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let x = (i + 1) as f64;
        median.push((x, m));
        low.push((x, v[0]));
        high.push((x, v[n - 1]));
    }
    SeriesChart::Band {
        median,
        low,
        high,
        trials: trials.len(),
    }
}

/// Rows the mouse wheel moves the selection by.
const WHEEL_ROWS: usize = 3;

/// The process's CPU time and ops from the run's time series, if recorded.
fn process_cost(dir: &Path, run_id: &str, role: Role, node: &str) -> Option<ProcessCost> {
    let rows = runlog::read_timeseries(&RunDir::new(dir, run_id).timeseries_csv()).ok()?;
    ProcessCost::from_timeseries(&rows, role, node)
}

/// Reads and parses a `.folded` file; errors name the file and line.
pub fn load_folded(path: &Path) -> anyhow::Result<FlameGraph> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    FlameGraph::parse(&text).with_context(|| format!("{}", path.display()))
}
