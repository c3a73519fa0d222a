//! The client's live stats endpoint: the `Stats` tarpc service, answered
//! from the driver's shared counters.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use futures::StreamExt;
use kv_core::rpc::Stats;
use kv_core::stats::StatsSnapshot;
use kv_core::transport::server_transport;
use tarpc::server::{BaseChannel, Channel};

use crate::driver::Shared;

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
    let limits = kv_core::limits::Limits::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let channel =
                BaseChannel::with_defaults(server_transport(stream, limits.max_frame_bytes));
            let serve = StatsService(shared.clone()).serve();
            tokio::spawn(channel.execute(serve).for_each(|reply| reply));
        }
    });
    Ok(local)
}
