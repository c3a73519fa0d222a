//! kv-client's flags → a validated [`Config`]: bad values fail here, before
//! any socket is opened. `kv-run plan` parses a run's client arguments with
//! the same types, so both agree on every default.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;
use kv_core::facts::{Arrival, ClientFacts, OpenLoopFacts};
use kv_core::workload::{Theta, Workload};

/// The kvlab load generator.
#[derive(Debug, Parser)]
#[command(
    name = "kv-client",
    version,
    about = "kvlab load generator: exact YCSB workload, key-hash sharding, batched pipelined RPCs"
)]
pub struct Args {
    /// Servers as HOST:PORT, comma-separated. Keys are sharded across them by FNV-1a hash.
    #[arg(long, default_value = "localhost:8080")]
    pub hosts: String,
    /// Zipfian skew, strictly between 0 and 1.
    #[arg(long, default_value = "0.99")]
    pub theta: String,
    /// YCSB-A (50% reads), YCSB-B (95%) or YCSB-C (100%).
    #[arg(long, default_value = "YCSB-B")]
    pub workload: String,
    /// Seconds to generate load (then drain everything in flight).
    #[arg(long, default_value_t = 30.0)]
    pub secs: f64,
    /// Generator threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Base seed: thread i's generator is seeded with SEED + i (default: drawn at start and printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Ops per batch RPC.
    #[arg(long, default_value_t = 1024)]
    pub batch: usize,
    /// Batches in flight per generator thread and server.
    #[arg(long, default_value_t = 8)]
    pub window: usize,
    /// TCP connections per server; generator thread i uses connection i mod C.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Drive an in-process copy of the store, no network: the ceiling.
    #[arg(long)]
    pub in_process: bool,
    /// Records preloaded into the in-process store.
    #[arg(long, default_value_t = kv_core::workload::RECORD_COUNT)]
    pub preload: u64,
    /// Print the first N ops of thread 0's stream (`index,key,op`) and exit.
    #[arg(long, value_name = "N")]
    pub dump_ops: Option<u64>,
    /// Seconds to keep retrying a server that refuses connections.
    #[arg(long, default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Deadline of every RPC, in seconds.
    #[arg(long, default_value_t = 3.0)]
    pub rpc_timeout: f64,
    /// This process's id within a run (distinguishes check-mode values and histories).
    #[arg(long, default_value_t = 0)]
    pub client_id: u32,
    /// Check mode: unique put values and a history of every op written to this file.
    #[arg(long, value_name = "HISTORY")]
    pub check: Option<PathBuf>,
    /// Profile this process; writes PREFIX.svg, PREFIX.pb and PREFIX.folded at the end.
    #[arg(long, value_name = "PREFIX")]
    pub profile: Option<PathBuf>,
    /// Write the final counts, latencies and outcome as JSON to this file (also on failure).
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    /// Serve live stats (the `Stats` tarpc service) on this address, e.g. 127.0.0.1:0.
    #[arg(long, value_name = "ADDR:PORT")]
    pub stats_bind: Option<std::net::SocketAddr>,
    /// Open loop: ops per second for this process, split evenly over its
    /// threads; each op's latency counts from its intended start time
    /// (absent: closed loop, as fast as the servers answer).
    #[arg(long, value_name = "OPS_PER_S")]
    pub rate: Option<f64>,
    /// Open loop: spacing of intended start times, fixed or poisson (seeded
    /// from --seed) [default: fixed].
    #[arg(long, value_name = "fixed|poisson")]
    pub arrival: Option<String>,
    /// Open loop: send a partial batch this many microseconds after its
    /// first op's intended start [default: 200].
    #[arg(long, value_name = "US")]
    pub flush_us: Option<u64>,
    /// Write per-second op latency histograms here, in HdrHistogram's
    /// interval log format (microseconds).
    #[arg(long, value_name = "PATH")]
    pub hdr_log: Option<PathBuf>,
    /// Test hook: generate one more op than is sent, to prove the integrity check fires.
    #[arg(long, hide = true)]
    pub drop_one_op: bool,
}

/// Where the ops go.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Servers(Vec<String>),
    InProcess { preload: u64 },
}

/// How ops are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Each thread keeps its window of batches full: peak throughput.
    Closed,
    /// Ops start on a schedule, whether or not earlier ones were answered.
    Open(OpenLoop),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenLoop {
    /// Ops per second for the whole process.
    pub rate_per_s: f64,
    pub arrival: Arrival,
    /// A partial batch is sent this long after its first op's intended start.
    pub flush: Duration,
}

/// Highest `--rate`: far beyond what one process can generate, low enough
/// that a gap (1/rate per thread) stays a sane number of nanoseconds.
pub const MAX_RATE: f64 = 1e9;
/// Lowest `--rate`: one op per thousand seconds.
pub const MIN_RATE: f64 = 1e-3;
const DEFAULT_FLUSH_US: u64 = 200;
const MAX_FLUSH_US: u64 = 1_000_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub load: Load,
    pub target: Target,
    pub workload: Workload,
    pub theta: Theta,
    pub duration: Duration,
    pub threads: usize,
    pub seed: u64,
    pub batch: usize,
    pub window: usize,
    pub connections: usize,
    pub connect_timeout: Duration,
    pub rpc_timeout: Duration,
    pub client_id: u32,
    pub check: Option<PathBuf>,
    pub drop_one_op: bool,
}

fn positive(name: &str, v: usize) -> Result<usize> {
    if v == 0 {
        bail!("{name} must be at least 1");
    }
    Ok(v)
}

/// Longest duration any time flag accepts (a day): beyond it tokio's timers
/// and tarpc's deadlines would overflow.
const MAX_SECS: f64 = 86_400.0;

fn seconds(name: &str, v: f64) -> Result<Duration> {
    if !(v.is_finite() && v > 0.0 && v <= MAX_SECS) {
        bail!("{name} must be a number of seconds in (0, {MAX_SECS}], got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

/// Splits and checks `host:port,host:port`.
pub fn parse_hosts(s: &str) -> Result<Vec<String>> {
    let hosts: Vec<String> = s.split(',').map(|h| h.trim().to_string()).collect();
    for h in &hosts {
        let ok = h.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !ok {
            bail!("{}", kv_core::ConfigError::BadHost(h.clone()));
        }
    }
    Ok(hosts)
}

impl TryFrom<&Args> for Config {
    type Error = anyhow::Error;

    fn try_from(a: &Args) -> Result<Self> {
        let theta: Theta = a.theta.parse()?;
        let workload: Workload = a.workload.parse()?;
        let threads = match a.threads {
            Some(t) => {
                kv_core::limits::check_threads("--threads", t).map_err(anyhow::Error::msg)?;
                t
            }
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let target = if a.in_process {
            // Checked before any allocation: a preload that cannot fit
            // would otherwise grow until the OOM killer ends it.
            kv_core::limits::check_preload("--preload", a.preload).map_err(anyhow::Error::msg)?;
            Target::InProcess { preload: a.preload }
        } else {
            Target::Servers(parse_hosts(&a.hosts)?)
        };
        let load = match a.rate {
            None => {
                if a.arrival.is_some() || a.flush_us.is_some() {
                    bail!("--arrival and --flush-us need --rate (open loop)");
                }
                Load::Closed
            }
            Some(r) => {
                if !(r.is_finite() && (MIN_RATE..=MAX_RATE).contains(&r)) {
                    bail!("--rate must be ops per second in [{MIN_RATE}, {MAX_RATE:e}], got {r}");
                }
                let flush_us = a.flush_us.unwrap_or(DEFAULT_FLUSH_US);
                if !(1..=MAX_FLUSH_US).contains(&flush_us) {
                    bail!("--flush-us must be in [1, {MAX_FLUSH_US}], got {flush_us}");
                }
                Load::Open(OpenLoop {
                    rate_per_s: r,
                    arrival: a.arrival.as_deref().unwrap_or("fixed").parse()?,
                    flush: Duration::from_micros(flush_us),
                })
            }
        };
        Ok(Config {
            load,
            target,
            workload,
            theta,
            duration: seconds("--secs", a.secs)?,
            threads,
            seed: a.seed.unwrap_or_else(random_seed),
            batch: positive("--batch", a.batch)?,
            window: positive("--window", a.window)?,
            connections: positive("--connections", a.connections)?,
            connect_timeout: seconds("--connect-timeout", a.connect_timeout)?,
            rpc_timeout: seconds("--rpc-timeout", a.rpc_timeout)?,
            client_id: a.client_id,
            check: a.check.clone(),
            drop_one_op: a.drop_one_op,
        })
    }
}

impl Config {
    /// The run facts of this config, as recorded in the manifest and the
    /// summary (kv_core::facts).
    pub fn facts(&self) -> ClientFacts {
        let (hosts, in_process_preload) = match &self.target {
            Target::Servers(h) => (h.clone(), None),
            Target::InProcess { preload } => (Vec::new(), Some(*preload)),
        };
        ClientFacts {
            workload: self.workload,
            theta: self.theta,
            secs: self.duration.as_secs_f64(),
            threads: self.threads as u32,
            batch: self.batch as u32,
            window: self.window as u32,
            connections: self.connections as u32,
            seed: self.seed,
            client_id: self.client_id,
            hosts,
            in_process_preload,
            open_loop: match self.load {
                Load::Closed => None,
                Load::Open(o) => Some(OpenLoopFacts {
                    rate_per_s: o.rate_per_s,
                    arrival: o.arrival,
                    flush_us: o.flush.as_micros() as u64,
                }),
            },
            check: self.check.is_some(),
        }
    }
}

/// A seed from the clock and pid, for runs that did not ask for one.
fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // splitmix64 finaliser spreads nearby clock values apart.
    let mut z = t ^ (u64::from(std::process::id()) << 32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        Args::parse_from(std::iter::once("kv-client").chain(extra.iter().copied()))
    }

    #[test]
    fn defaults_validate() {
        let c = Config::try_from(&args(&[])).unwrap();
        assert_eq!(c.target, Target::Servers(vec!["localhost:8080".into()]));
        assert_eq!(c.workload, Workload::B);
        assert_eq!(c.load, Load::Closed, "closed loop stays the default");
    }

    #[test]
    fn open_loop_flags() {
        let c = Config::try_from(&args(&["--rate", "5000", "--arrival", "poisson"])).unwrap();
        assert_eq!(
            c.load,
            Load::Open(OpenLoop {
                rate_per_s: 5000.0,
                arrival: Arrival::Poisson,
                flush: Duration::from_micros(DEFAULT_FLUSH_US),
            })
        );
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["--theta", "1.2"][..],
            &["--workload", "YCSB-Q"],
            &["--threads", "0"],
            &["--threads", "100000"],
            &["--in-process", "--preload", "99999999999"],
            &["--hosts", "nohost"],
            &["--hosts", "a:1,b:notaport"],
            &["--secs", "0"],
            &["--batch", "0"],
            &["--rpc-timeout", "1e12"],
            &["--rate", "0"],
            &["--rate", "nan"],
            &["--rate", "1e12"],
            &["--rate", "100", "--arrival", "uniform"],
            &["--rate", "100", "--flush-us", "0"],
            &["--arrival", "poisson"],
            &["--flush-us", "100"],
        ] {
            assert!(Config::try_from(&args(bad)).is_err(), "{bad:?} accepted");
        }
    }
}
