//! The client's live stats endpoint: the `Stats` tarpc service, answered
//! from the driver's shared counters. It has the server's protections
//! (kv-core's framing and byte accounting, a connection limit, an idle
//! timeout) and keeps accepting after transient accept errors (fd limit).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use kv_core::memory::{ConnMemory, ProcessMemory};
use kv_core::rpc::Stats;
use kv_core::stats::StatsSnapshot;
use kv_core::transport::{server_transport, Metered};
use tarpc::server::{BaseChannel, Channel};

use crate::driver::Shared;

/// Stats requests and replies are a few hundred bytes: these bounds leave
/// room for pollers (run-cluster, kv-dash) and nothing for a flood.
pub const STATS_MAX_FRAME_BYTES: usize = 64 << 10;
pub const STATS_MAX_CONNECTIONS: usize = 64;
pub const STATS_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const STATS_MEMORY_BUDGET_BYTES: usize = 16 << 20;

#[derive(Clone)]
struct StatsService(Arc<Shared>);

impl Stats for StatsService {
    async fn stats(self, _: tarpc::context::Context) -> StatsSnapshot {
        self.0.snapshot()
    }
}

/// Binds `addr` and answers stats requests until the process exits.
pub async fn serve(addr: SocketAddr, shared: Arc<Shared>) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for stats on {addr}"))?;
    let local = listener.local_addr()?;
    let memory = ProcessMemory::new(STATS_MEMORY_BUDGET_BYTES);
    let slots = Arc::new(tokio::sync::Semaphore::new(STATS_MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors is transient: back off, keep serving.
                    eprintln!("kv-client: stats endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                continue; // over the limit: closed at once
            };
            let conn = ConnMemory::new(memory.clone(), STATS_MAX_FRAME_BYTES);
            let channel = BaseChannel::with_defaults(server_transport(
                stream,
                STATS_MAX_FRAME_BYTES,
                conn.clone(),
            ));
            let serve = Metered::new(StatsService(shared.clone()).serve(), conn);
            tokio::spawn(async move {
                let mut requests = channel.requests();
                // Sequential, like the server: one request at a time, and a
                // connection silent for the idle timeout is closed.
                while let Ok(Some(Ok(r))) =
                    tokio::time::timeout(STATS_IDLE_TIMEOUT, requests.next()).await
                {
                    if tokio::time::timeout(STATS_IDLE_TIMEOUT, r.execute(serve.clone()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                drop(slot);
            });
        }
    });
    Ok(local)
}
