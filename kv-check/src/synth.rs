//! Synthetic check-mode histories, to benchmark and exercise the checker
//! without a cluster: a simulated linearizable store serves a YCSB op
//! stream from `clients × threads` lanes.
//!
//! Op `i` takes effect at `BASE + i·STEP` ns and its interval spreads up to
//! half a lane period either side, so a lane's ops never overlap each other
//! but overlap those of every other lane: on hot keys, many concurrent ops.
//! Every op takes effect inside its interval, so the history is
//! linearizable, unless stale reads are injected on purpose.

use std::io;
use std::path::{Path, PathBuf};

use kv_core::history::{Action, HistoryOp, HistoryWriter, Outcome, ReadValue};
use kv_core::value::ValueId;
use kv_core::workload::{OpKind, Theta, Workload, WorkloadSpec, Xorshift64};

const BASE_NS: u64 = 1_000_000_000;
/// Time between the linearization points of consecutive ops.
const STEP_NS: u64 = 8;

#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub ops: u64,
    pub keys: u64,
    pub clients: u32,
    pub threads: u32,
    pub workload: Workload,
    /// Zipfian skew of keys; `None` for uniform keys.
    pub theta: Option<Theta>,
    pub seed: u64,
    /// Every this many puts, one has no reply (and takes effect or not,
    /// at random); 0 for never.
    pub unknown_every: u64,
    /// Every this many gets, one returns the key's previous value, which
    /// usually makes the history non-linearizable; 0 for never.
    pub stale_every: u64,
}

/// `--theta` for synthetic histories: 0 means uniform keys.
pub fn skew(theta: f64) -> Result<Option<Theta>, kv_core::error::ConfigError> {
    (theta != 0.0).then(|| Theta::new(theta)).transpose()
}

/// Writes `client-<c>.hist` for each client into `dir`; returns the paths.
pub fn write_synth(cfg: &SynthConfig, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    if cfg.keys == 0 || cfg.clients == 0 || cfg.threads == 0 {
        return Err(invalid("keys, clients and threads must be at least 1"));
    }
    let keys = usize::try_from(cfg.keys).map_err(|_| invalid("too many keys"))?;
    std::fs::create_dir_all(dir)?;
    let paths: Vec<PathBuf> = (0..cfg.clients)
        .map(|c| dir.join(format!("client-{c}.hist")))
        .collect();
    let mut writers = paths
        .iter()
        .zip(0..)
        .map(|(p, c)| HistoryWriter::new(p, c))
        .collect::<io::Result<Vec<_>>>()?;

    let lanes = u64::from(cfg.clients) * u64::from(cfg.threads);
    let half_ns = lanes * STEP_NS / 2 - 1;
    let zipf_theta = cfg
        .theta
        .unwrap_or(Theta::new(0.5).map_err(|e| invalid(&e.to_string()))?);
    let mut ops =
        WorkloadSpec::with_records(cfg.workload, zipf_theta, cfg.keys).generator(cfg.seed);
    let mut rng = Xorshift64::new(cfg.seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut current = vec![ReadValue::Init; keys];
    let mut previous = vec![ReadValue::Init; if cfg.stale_every > 0 { keys } else { 0 }];
    let mut seqs = vec![0u64; lanes as usize];
    let (mut puts, mut gets) = (0u64, 0u64);

    for i in 0..cfg.ops {
        let lane = i % lanes;
        let (client, thread) = (
            (lane / u64::from(cfg.threads)) as u32,
            (lane % u64::from(cfg.threads)) as u32,
        );
        let seq = seqs[lane as usize];
        seqs[lane as usize] += 1;
        let gen = ops.next_op();
        let key = match cfg.theta {
            Some(_) => gen.key,
            None => rng.next_u64() % cfg.keys,
        };
        let k = key as usize;
        let lin = BASE_NS + i * STEP_NS;
        let invoke_ns = lin - rng.next_u64() % (half_ns + 1);
        let complete_ns = lin + rng.next_u64() % (half_ns + 1);
        let (action, outcome) = match gen.kind {
            OpKind::Put => {
                puts += 1;
                let id = ValueId {
                    client,
                    thread,
                    seq,
                };
                let unknown = cfg.unknown_every > 0 && puts % cfg.unknown_every == 0;
                if !unknown || rng.next_u64() & 1 == 0 {
                    if cfg.stale_every > 0 {
                        previous[k] = current[k];
                    }
                    current[k] = ReadValue::Written(id);
                }
                let outcome = if unknown {
                    Outcome::Unknown
                } else {
                    Outcome::Ok
                };
                (Action::Put(id), outcome)
            }
            OpKind::Get => {
                gets += 1;
                let stale = cfg.stale_every > 0 && gets % cfg.stale_every == 0;
                let v = if stale { previous[k] } else { current[k] };
                (Action::Get(v), Outcome::Ok)
            }
        };
        writers[client as usize].record(&HistoryOp {
            thread,
            seq,
            key,
            action,
            invoke_ns,
            complete_ns,
            outcome,
        })?;
    }
    for w in writers {
        w.finish()?;
    }
    Ok(paths)
}
