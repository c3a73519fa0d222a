//! `kv-run wait-ready`: every server answers `ping` within a bounded time,
//! or the error names the first one that did not (by node name when the
//! host is given as `NAME=HOST:PORT`).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kv_core::transport::{connect, context_with_timeout, ConnectOptions};

/// Pings every host in turn until each has answered once, all within
/// `timeout` overall. Returns each server's version line.
pub async fn wait_ready(hosts: &[String], timeout: Duration) -> Result<Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut answers = Vec::new();
    for spec in hosts {
        let (name, host) = match spec.split_once('=') {
            Some((n, h)) => (format!("{n} ({h})"), h),
            None => (format!("server {spec}"), spec.as_str()),
        };
        let mut last_err = String::from("no answer");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "{name} did not answer a ping within {:.0} s ({last_err})",
                    timeout.as_secs_f64()
                );
            }
            let opts = ConnectOptions {
                connect_timeout: left.min(Duration::from_secs(2)),
                ..ConnectOptions::default()
            };
            match connect(host, &opts).await {
                Ok(client) => match client
                    .ping(context_with_timeout(left.min(Duration::from_secs(5))))
                    .await
                {
                    Ok(info) => {
                        answers.push(format!(
                            "{host}: kv-server {} pid {} ({} keys)",
                            info.version, info.pid, info.keys
                        ));
                        break;
                    }
                    Err(e) => last_err = e.to_string(),
                },
                Err(e) => last_err = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100).min(left)).await;
        }
    }
    Ok(answers)
}
