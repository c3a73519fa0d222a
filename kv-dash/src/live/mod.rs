//! `kv-dash live`: every server and client of a run, polled a few times a
//! second through the one poller (`kv_core::poller`). `state` holds what is
//! known (no I/O), `event` is the loop's one channel (pollers, ticks, keys,
//! signals), `over` tells a run that is over, `ui::live` draws. The
//! dashboard only observes: it starts nothing and stops nothing, so quitting
//! it leaves the run as it is.

pub mod event;
pub mod over;
pub mod state;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kv_core::manifest::Manifest;
use kv_core::poller::{serves_stats, StatsSource, POLL_INTERVAL};
use kv_core::stats::Role;

use crate::input;
use event::Event;
use over::EndCheck;
use state::{LiveApp, NodeSpec, RunInfo};

/// Where run-cluster.sh leaves the manifest of the latest run.
pub const DEFAULT_MANIFEST: &str = "logs/latest/cluster.json";

/// What `kv-dash live` was asked to do, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    pub run: RunInfo,
    pub nodes: Vec<NodeSpec>,
    pub plain: bool,
    pub poll_interval: Duration,
    /// How to tell the run has ended (runs from a manifest).
    pub end: Option<EndCheck>,
    /// The run was over before the dashboard started: why.
    pub over: Option<String>,
}

/// The flags as typed (see `main.rs`), before any file is read.
#[derive(Debug, Clone, Default)]
pub struct LiveFlags {
    pub manifest: Option<PathBuf>,
    pub servers: Option<String>,
    pub clients: Option<String>,
    pub secs: Option<f64>,
    pub plain: bool,
    pub poll_interval: Option<Duration>,
    pub ready_timeout: Option<f64>,
    pub warmup: Option<f64>,
}

fn positive_secs(v: Option<f64>, flag: &str) -> anyhow::Result<Option<Duration>> {
    match v {
        Some(s) if !(s.is_finite() && s > 0.0) => bail!("{flag} must be positive, got {s}"),
        Some(s) => Ok(Some(Duration::from_secs_f64(s))),
        None => Ok(None),
    }
}

impl LiveFlags {
    /// Reads the manifest (unless addresses were given) and checks values.
    pub fn into_config(self) -> anyhow::Result<LiveConfig> {
        let total = positive_secs(self.secs, "--secs")?;
        let ready_timeout = positive_secs(self.ready_timeout, "--ready-timeout")?;
        if let Some(w) = self.warmup.filter(|w| !(w.is_finite() && *w >= 0.0)) {
            bail!("--warmup must be 0 or more seconds, got {w}");
        }
        let mut end = None;
        let (mut run, nodes) = if self.servers.is_some() || self.clients.is_some() {
            from_addresses(self.servers.as_deref(), self.clients.as_deref())?
        } else {
            let path = self
                .manifest
                .unwrap_or_else(|| PathBuf::from(DEFAULT_MANIFEST));
            let run = from_manifest(&path)?;
            end = Some(EndCheck::new(&path));
            run
        };
        if total.is_some() {
            run.total = total;
        }
        run.ready_timeout = ready_timeout.or(run.ready_timeout);
        run.warmup_s = self.warmup.or(run.warmup_s);
        let plain = self.plain || !std::io::stdout().is_terminal();
        let over = end.as_ref().and_then(EndCheck::check);
        Ok(LiveConfig {
            run,
            nodes,
            plain,
            poll_interval: self.poll_interval.unwrap_or(POLL_INTERVAL),
            end,
            over,
        })
    }
}

fn split_addrs(list: Option<&str>, what: &str) -> anyhow::Result<Vec<String>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| match a.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(a.to_string())
            }
            _ => bail!("{what}: '{a}' is not HOST:PORT"),
        })
        .collect()
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Nodes from `--servers` / `--clients` (stats addresses).
pub fn from_addresses(
    servers: Option<&str>,
    clients: Option<&str>,
) -> anyhow::Result<(RunInfo, Vec<NodeSpec>)> {
    let servers = split_addrs(servers, "--servers")?;
    let clients = split_addrs(clients, "--clients")?;
    if servers.is_empty() && clients.is_empty() {
        bail!("no nodes to watch: give --servers and/or --clients (HOST:PORT,...)");
    }
    let mut nodes = Vec::new();
    for (role, addrs) in [(Role::Server, &servers), (Role::Client, &clients)] {
        for (i, addr) in addrs.iter().enumerate() {
            nodes.push(NodeSpec {
                name: format!("{}-{i}", role.name()),
                role,
                addr: addr.clone(),
                pollable: true,
            });
        }
    }
    let run = RunInfo {
        run_id: "(no manifest)".into(),
        config: format!(
            "{}, {}",
            plural(servers.len(), "server"),
            plural(clients.len(), "client")
        ),
        ..RunInfo::default()
    };
    Ok((run, nodes))
}

/// Nodes and run facts from a run manifest (`cluster.json`).
pub fn from_manifest(path: &Path) -> anyhow::Result<(RunInfo, Vec<NodeSpec>)> {
    let m = Manifest::read(path).map_err(|e| {
        if e.is_not_found() {
            anyhow::anyhow!(
                "no run manifest at {} (start a run with ./run-cluster.sh, or pass --manifest or --servers/--clients)",
                path.display()
            )
        } else {
            anyhow::Error::new(e)
        }
    })?;
    Ok(run_from_manifest(&m))
}

pub fn run_from_manifest(m: &Manifest) -> (RunInfo, Vec<NodeSpec>) {
    let nodes: Vec<NodeSpec> = m
        .nodes
        .iter()
        .map(|n| NodeSpec {
            // One name per process everywhere: `server-node0`.
            name: kv_core::runlog::process_name(n.role, &n.name),
            role: n.role,
            addr: n.stats_addr.clone(),
            pollable: serves_stats(n),
        })
        .collect();
    let mut config = format!(
        "{}, {}",
        plural(m.servers().count(), "server"),
        plural(m.clients().count(), "client")
    );
    // The plan's facts, parsed once from the run's arguments.
    if let Some(c) = m.client_facts() {
        config += &format!(
            ", {} θ{} batch {} window {}, {} threads",
            c.workload,
            c.theta.get(),
            c.batch,
            c.window,
            threads_text(&m.client_threads())
        );
    }
    let run = RunInfo {
        run_id: m.run_id.clone(),
        config,
        total: (m.secs > 0.0).then(|| Duration::from_secs_f64(m.secs)),
        ..RunInfo::default()
    };
    (run, nodes)
}

/// Every client's thread count, one number when they agree (`2` or `2/4`).
fn threads_text(threads: &[u32]) -> String {
    match threads {
        [first, rest @ ..] if rest.iter().all(|t| t == first) => first.to_string(),
        _ => threads
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join("/"),
    }
}

/// Applies one event; returns whether the screen must be drawn again.
pub fn handle(app: &mut LiveApp, ev: Event) -> bool {
    match ev {
        Event::Key(key) => input::live_action(key).is_some_and(|a| app.apply(a)),
        Event::Resize => true,
        Event::Stats { node, result, at } => {
            app.ingest(node, *result, at);
            !app.paused()
        }
        Event::Tick(at) => {
            app.tick(at);
            !app.paused()
        }
        Event::RunEnded(why) => {
            app.run_ended(why);
            true
        }
        Event::Stop => {
            app.should_quit = true;
            true
        }
    }
}

/// Runs the dashboard (or plain lines) until `q`, a signal, or (plain
/// mode) the run is over. A run over before the start is said so, in one
/// line, instead of a dashboard of silent nodes.
pub fn run(cfg: LiveConfig) -> anyhow::Result<()> {
    if let Some(why) = &cfg.over {
        println!("run {} is over: {why}; nothing to watch.", cfg.run.run_id);
        return Ok(());
    }
    // One worker: polling is a few small RPCs a second, and the machine
    // running the dashboard often runs the benchmark too.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("kv-dash-poll")
        .enable_all()
        .build()
        .context("cannot start the polling runtime")?;
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, spec) in cfg.nodes.iter().enumerate().filter(|(_, s)| s.pollable) {
        let source = StatsSource::new(spec.role, spec.addr.clone());
        rt.spawn(event::polls(
            i,
            source,
            start,
            cfg.poll_interval,
            tx.clone(),
        ));
    }
    rt.spawn(event::ticks(start, tx.clone(), cfg.end));
    let stop = {
        let _in_runtime = rt.enter();
        event::stop_signals(tx.clone())
    };
    rt.spawn(stop);
    let mut app = LiveApp::new(cfg.run, cfg.nodes);
    let result = if cfg.plain {
        drop(tx);
        plain(&mut app, &rx);
        Ok(())
    } else {
        crate::tui::Tui::init()
            .and_then(|mut tui| {
                event::spawn_terminal_reader(tx);
                run_screen(&mut tui, &mut app, &rx)
            })
            .context("terminal")
    };
    // Pollers may sit in an RPC: do not wait for them.
    rt.shutdown_background();
    result
}

/// Events arriving this close together are drawn once (at most 20 frames a
/// second, however many nodes answer).
const LIVE_FRAME: Duration = Duration::from_millis(50);

/// The live dashboard: draws, then sleeps until events arrive; draws
/// again only when they changed what is shown.
fn run_screen(
    tui: &mut crate::tui::Tui,
    app: &mut LiveApp,
    rx: &Receiver<Event>,
) -> std::io::Result<()> {
    tui.clear()?;
    tui.draw(|f| crate::ui::live::render(app, f))?;
    while !app.should_quit {
        match next_batch(app, rx, LIVE_FRAME) {
            None => break,
            Some(false) => {}
            Some(true) if app.should_quit => break,
            // `draw` resizes the buffers first when the terminal changed size.
            Some(true) => {
                tui.draw(|f| crate::ui::live::render(app, f))?;
            }
        }
    }
    Ok(())
}

/// Plain mode: one line a second, until stopped or the run is over.
fn plain(app: &mut LiveApp, rx: &Receiver<Event>) {
    use std::io::Write;
    let mut printed = 0u64;
    while let Ok(ev) = rx.recv() {
        handle(app, ev);
        if app.should_quit {
            break;
        }
        let second = app.data.at.as_secs();
        if second > printed {
            printed = second;
            let mut out = std::io::stdout().lock();
            // A closed stdout (the reader went away) ends the dashboard.
            if writeln!(out, "{}", app.plain_line())
                .and_then(|_| out.flush())
                .is_err()
            {
                break;
            }
            if let Some(over) = app.over() {
                let _ = writeln!(out, "{}", over.text());
                break;
            }
        }
    }
}

/// Waits for the next event, then takes whatever else arrives within
/// `frame` (pollers answer in bursts): one draw per burst, not per event.
pub fn next_batch(app: &mut LiveApp, rx: &Receiver<Event>, frame: Duration) -> Option<bool> {
    let first = rx.recv().ok()?;
    let mut dirty = handle(app, first);
    let until = Instant::now() + frame;
    loop {
        if app.should_quit {
            return Some(true);
        }
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(ev) => dirty |= handle(app, ev),
            Err(RecvTimeoutError::Timeout) => return Some(dirty),
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}
