//! `kv-run collect`: polls every node's stats a few times a second (the
//! one poller, `kv_core::poller`) and writes one `timeseries.csv` row per
//! node per second, optionally printing one progress line per second. Stops
//! on SIGTERM/SIGINT, once every client has finished (by the poller's
//! status rule: a client that dies early is down, not finished), or when
//! the script that started it is gone (killed before it could stop us).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use futures::future::join_all;
use kv_core::poller::{NodePoller, Timing, POLL_INTERVAL};
use kv_core::runlog::TimeseriesWriter;
use kv_core::shutdown::Shutdown;
use kv_core::stats::Role;

use crate::manifest::Manifest;

/// Runs until stopped; returns the number of rows written.
pub async fn collect(manifest_path: &Path, out: &Path, plain: bool) -> Result<usize> {
    let stop = Shutdown::install()
        .context("cannot install signal handlers")?
        .recv();
    let manifest = Manifest::read(manifest_path)?;
    // The clients' load time tells a client that finished from one that died.
    let timing = Timing {
        load: (manifest.secs > 0.0).then(|| std::time::Duration::from_secs_f64(manifest.secs)),
        ..Timing::default()
    };
    let mut nodes: Vec<NodePoller> = manifest
        .nodes
        .iter()
        .map(|n| NodePoller::of_node(n, timing))
        .collect();
    let mut writer = TimeseriesWriter::create(out)?;
    let start = Instant::now();
    let mut next_second = 1u64;
    let mut rows = 0usize;
    let orphaned = kv_core::shutdown::orphaned();
    tokio::pin!(stop, orphaned);
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = &mut orphaned => break,
            _ = tick.tick() => {}
        }
        join_all(nodes.iter_mut().map(NodePoller::poll)).await;
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
                let up = nodes.iter().filter(|w| w.up()).count();
                println!(
                    "[{t_s:>4.0} s] total {total:.0} ops/s (servers), nodes up {up}/{}",
                    nodes.len()
                );
            }
        }
        let clients: Vec<&NodePoller> = nodes.iter().filter(|w| w.role() == Role::Client).collect();
        if !clients.is_empty() && clients.iter().all(|w| w.pollable() && w.finished()) {
            break;
        }
    }
    writer.flush()?;
    Ok(rows)
}
