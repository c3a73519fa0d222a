//! The one channel the live loop reads: keys and resizes from a terminal
//! thread, snapshots from the pollers, a once-a-second tick (and the run's
//! end when its log directory says so), and a stop request from signals.
//! The loop sleeps on it: no event, no work.

use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use kv_core::poller::StatsSource;
use kv_core::stats::StatsSnapshot;
use ratatui::crossterm::event::{self, KeyEvent};

use super::over::EndCheck;

#[derive(Debug)]
pub enum Event {
    Key(KeyEvent),
    Resize,
    /// One poll of node `node`, at `at` since the dashboard started
    /// (boxed: a snapshot is large next to the other events).
    Stats {
        node: usize,
        result: Box<Result<StatsSnapshot, String>>,
        at: Duration,
    },
    /// A second passed (advances the clock when every node is silent).
    Tick(Duration),
    /// The run is over, and why (sent once).
    RunEnded(String),
    /// SIGTERM / SIGHUP / SIGINT: leave, restoring the terminal.
    Stop,
}

/// Reads terminal events on a thread of its own (crossterm's read blocks).
/// The thread ends when the loop is gone or the terminal fails; at exit it
/// may still sit in `read`, which the process's end takes care of.
pub fn spawn_terminal_reader(tx: Sender<Event>) {
    std::thread::spawn(move || loop {
        let ev = match event::read() {
            Ok(event::Event::Key(k)) => Event::Key(k),
            Ok(event::Event::Resize(..)) => Event::Resize,
            Ok(_) => continue,
            Err(_) => return,
        };
        if tx.send(ev).is_err() {
            return;
        }
    });
}

/// Asks node `index` for a snapshot every `interval` through the one
/// poller's [`StatsSource`] (short connect and RPC deadlines, so a dead or
/// hung node yields errors on time), until the receiver is gone. Every
/// attempt ends in one [`Event::Stats`]; `start` is the dashboard's time
/// origin, so events carry comparable times.
pub async fn polls(
    index: usize,
    mut source: StatsSource,
    start: Instant,
    interval: Duration,
    tx: Sender<Event>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = Box::new(source.fetch().await);
        let ev = Event::Stats {
            node: index,
            result,
            at: start.elapsed(),
        };
        if tx.send(ev).is_err() {
            return;
        }
    }
}

/// Sends a [`Event::Tick`] every second, and [`Event::RunEnded`] once
/// `end` says the run is over.
pub async fn ticks(start: Instant, tx: Sender<Event>, mut end: Option<EndCheck>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if tx.send(Event::Tick(start.elapsed())).is_err() {
            return;
        }
        if let Some(why) = end.as_ref().and_then(EndCheck::check) {
            end = None;
            if tx.send(Event::RunEnded(why)).is_err() {
                return;
            }
        }
    }
}

/// Sends [`Event::Stop`] on SIGTERM, SIGHUP or SIGINT: run-cluster.sh
/// stops the dashboard with SIGTERM when the run ends, and the terminal
/// must come back usable. Also when the process that started the
/// dashboard is gone (a script killed before it could stop us). The
/// handlers are installed by this call, not on first poll, so a signal
/// sent right after start is not lost. Call it inside the runtime.
pub fn stop_signals(tx: Sender<Event>) -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::interrupt(),
    ];
    let mut streams: Vec<_> = kinds.into_iter().filter_map(|k| signal(k).ok()).collect();
    async move {
        let signalled = async {
            if streams.is_empty() {
                return std::future::pending().await;
            }
            futures::future::select_all(streams.iter_mut().map(|s| Box::pin(s.recv()))).await;
        };
        tokio::select! {
            _ = signalled => {}
            _ = kv_core::shutdown::orphaned() => {}
        }
        let _ = tx.send(Event::Stop);
    }
}
