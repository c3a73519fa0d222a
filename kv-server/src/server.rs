//! Accepting connections and serving them until shutdown.
//!
//! Each connection is served by one task that executes its requests one at a
//! time, in arrival order: a client's batches to this server are therefore
//! applied in the order it sent them, which keeps per-key order without any
//! sequencing protocol. Parallelism comes from serving many connections.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kv_core::memory::ConnMemory;
use kv_core::rpc::Kv;
use kv_core::transport::{server_transport_over, Metered};
use tarpc::server::{BaseChannel, Channel};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::log::log_limited;
use crate::service::{KvService, ServerState};

/// How long a stopping server keeps answering requests that were already sent.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// A draining connection that has been quiet this long is done.
const DRAIN_QUIET: Duration = Duration::from_millis(100);

/// Serves `listener` until `shutdown` resolves, then drains connections.
pub async fn run(listener: TcpListener, state: Arc<ServerState>, shutdown: impl Future) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(state.limits.max_connections));
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Running out of file descriptors is transient: back off, don't die.
                        log_limited("accept", &format!("accept failed: {e}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    log_limited("limit", &format!("connection limit {} reached, closing {peer}", state.limits.max_connections));
                    continue;
                };
                // Nagle would hold back small replies behind delayed ACKs.
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let stop = stop_rx.clone();
                conns.spawn(async move {
                    serve_connection(stream, state, stop).await;
                    drop(slot);
                });
            }
            // Reap finished connection tasks so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    state.draining.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let deadline = tokio::time::sleep(DRAIN_GRACE + Duration::from_millis(500));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => { conns.abort_all(); break; }
            next = conns.join_next() => if next.is_none() { break },
        }
    }
}

/// Serves one connection until the peer leaves, breaks a limit or stays
/// idle, or until `stop` turns true (then answers what was already sent).
/// Generic over the byte stream so tests and the fuzz target drive exactly
/// this decode-and-execute path over an in-memory `tokio::io::duplex`.
pub async fn serve_connection<S>(
    stream: S,
    state: Arc<ServerState>,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &state.limits;
    // Replies are bounded in bytes by the transport (it stops reading while
    // this connection's unwritten replies exceed max_reply_buffer_bytes);
    // the count here only caps tarpc's queue. tarpc's Config is
    // #[non_exhaustive]: it can only be changed after Default.
    #[allow(clippy::field_reassign_with_default)]
    let config = {
        let mut c = tarpc::server::Config::default();
        c.pending_response_buffer = limits.max_in_flight_per_connection.max(1);
        c
    };
    let memory = ConnMemory::new(state.memory.clone(), limits.max_reply_buffer_bytes);
    let channel = BaseChannel::new(
        config,
        server_transport_over(stream, limits.max_frame_bytes, memory.clone()),
    );
    let mut requests = channel.requests();
    let serve = Metered::new(KvService(state.clone()).serve(), memory.clone());
    let idle = limits.idle_timeout();
    loop {
        // Only the wait for the next request races shutdown: a request that
        // has been read is always executed and answered.
        let next = tokio::select! {
            next = tokio::time::timeout(idle, requests.next()) => next,
            _ = stop.changed() => break,
        };
        match next {
            Ok(Some(Ok(request))) => {
                // A peer that never reads its replies stalls here once the
                // reply buffer is full; the idle timeout closes it.
                if tokio::time::timeout(idle, request.execute(serve.clone()))
                    .await
                    .is_err()
                {
                    log_limited(
                        "unread",
                        "closing connection that does not read its replies",
                    );
                    return;
                }
            }
            Ok(Some(Err(e))) => {
                log_limited("close", &format!("closing connection: {e}"));
                return;
            }
            Ok(None) => return,
            Err(_) => {
                log_limited("idle", "closing idle connection");
                return;
            }
        }
    }
    // Draining: answer what the peer already sent, flush, then close. Each
    // wait is bounded by the grace period, so a peer that never reads its
    // replies cannot hold the shutdown (the next poll of `requests` is what
    // flushes the last replies).
    let until = Instant::now() + DRAIN_GRACE;
    let left = || until.saturating_duration_since(Instant::now());
    loop {
        let request = match tokio::time::timeout(DRAIN_QUIET.min(left()), requests.next()).await {
            Ok(Some(Ok(request))) => request,
            // Quiet, but replies are still unwritten: the transport is not
            // reading until the peer takes them, so requests it already
            // sent may be waiting behind them. Keep going within the grace.
            Err(_) if memory.reply_bytes() > 0 && !left().is_zero() => continue,
            _ => return,
        };
        if tokio::time::timeout(left(), request.execute(serve.clone()))
            .await
            .is_err()
        {
            return;
        }
    }
}
