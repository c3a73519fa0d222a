//! One task per node asking for a [`StatsSnapshot`] a few times a second.
//! Every attempt ends in one [`Event::Stats`]: a snapshot, or why there is
//! none. Connecting and each RPC have short deadlines, so a dead or hung
//! node yields errors on time, and the dashboard marks it down; nothing
//! here ever waits on the UI or the UI on it.

use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use kv_core::rpc::{KvClient, StatsClient};
use kv_core::stats::{Role, StatsSnapshot};
use kv_core::transport::{
    connect, connect_stats, context_with_timeout, rpc_error_text, ConnectOptions,
};

use super::event::Event;
use super::state::NodeSpec;

/// How often each node is asked (4 Hz: "several times a second").
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Deadline of one stats RPC. Short: a stats reply is a few hundred bytes.
pub const RPC_DEADLINE: Duration = Duration::from_millis(500);
/// Deadline of one connection attempt (no retries inside: the next poll is one).
pub const CONNECT_DEADLINE: Duration = Duration::from_millis(300);

enum Conn {
    Server(KvClient),
    Client(StatsClient),
}

async fn open(spec: &NodeSpec) -> Result<Conn, String> {
    let opts = ConnectOptions {
        connect_timeout: CONNECT_DEADLINE,
        max_in_flight: 4,
        ..ConnectOptions::default()
    };
    let conn = match spec.role {
        Role::Server => connect(&spec.addr, &opts).await.map(Conn::Server),
        Role::Client => connect_stats(&spec.addr, &opts).await.map(Conn::Client),
    };
    conn.map_err(|e| e.to_string())
}

async fn ask(conn: &Conn, spec: &NodeSpec) -> Result<StatsSnapshot, String> {
    let ctx = context_with_timeout(RPC_DEADLINE);
    let r = match conn {
        Conn::Server(c) => c.stats(ctx).await,
        Conn::Client(c) => c.stats(ctx).await,
    };
    r.map_err(|e| match e {
        // Also what a process of the other role does with this request.
        tarpc::client::RpcError::Shutdown => format!(
            "{} closed the connection: stopped, or not a kvlab {} stats address",
            spec.addr,
            spec.role.name()
        ),
        e => rpc_error_text(&e),
    })
}

/// Polls node `index` until the receiver is gone. `start` is the
/// dashboard's time origin, so events carry comparable times.
pub async fn poll_node(
    index: usize,
    spec: NodeSpec,
    start: Instant,
    interval: Duration,
    tx: Sender<Event>,
) {
    if !spec.pollable {
        return;
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<Conn> = None;
    loop {
        tick.tick().await;
        if conn.is_none() {
            match tokio::time::timeout(CONNECT_DEADLINE, open(&spec)).await {
                Ok(Ok(c)) => conn = Some(c),
                Ok(Err(e)) => {
                    if send(&tx, index, Err(e), start).is_err() {
                        return;
                    }
                    continue;
                }
                Err(_) => {
                    if send(&tx, index, Err("connect timed out".into()), start).is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        let result = match &conn {
            Some(c) => ask(c, &spec).await,
            None => continue,
        };
        if result.is_err() {
            // Reconnect next time: the old connection may be dead.
            conn = None;
        }
        if send(&tx, index, result, start).is_err() {
            return;
        }
    }
}

fn send(
    tx: &Sender<Event>,
    node: usize,
    result: Result<StatsSnapshot, String>,
    start: Instant,
) -> Result<(), ()> {
    tx.send(Event::Stats {
        node,
        result: Box::new(result),
        at: start.elapsed(),
    })
    .map_err(|_| ())
}
