//! The streaming check: memory bounded by a key partition, not by the
//! history. Keys are independent registers, so the check splits them by a
//! hash into partitions and checks one partition at a time (one per
//! thread):
//!
//! 1. the headers are read and checked together (one run, one clock
//!    domain or samples against one reference, distinct clients);
//! 2. each history is parsed once, streaming (files in parallel), each op
//!    mapped onto the reference clock when there is one, and spilled to its
//!    partition ([`crate::spill`]: ~a dozen bytes an op, in memory up to an
//!    allowance, then in unlinked temp files);
//! 3. each partition is decoded, sorted and checked by the same per-key
//!    check as the in-memory path ([`crate::check::check_sorted`]); a
//!    failing key keeps its conflicting and nearby ops ([`Failure`]).
//!
//! Peak memory is about the allowance plus, per thread, one partition of
//! 40-byte records (88 with clocks of several hosts); a partition holds at
//! least one whole key, so one key's ops must fit in memory.
//!
//! [`Failure`]: crate::failure::Failure

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use kv_core::history::{Header, HistoryReader};

use crate::check::{check_sorted, DuplicateWrite, Initial, Summary};
use crate::load::{
    check_file_count, check_headers, merge_writers, parse_file, read_clocks, rows_hint,
    ClockReport, EpsStats, InputError, Loaded, ParseError, PowerOp, Rec, RunInfo, Widener,
};
use crate::spill::{Allowance, SpillWriter, Spilled};

/// Records a partition is sized for (from an upper bound on the ops).
const PARTITION_RECORDS: usize = 1 << 21;
const MAX_PARTITION_BITS: u32 = 12;
/// Memory for all streams' open chunk buffers together.
const STREAM_BUFFERS: usize = 32 << 20;
/// Default bytes of spilled records kept in memory before temp files.
pub const SPILL_MEMORY: usize = 512 << 20;

/// How a streaming check runs.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub threads: usize,
    /// Where spill files go once `spill_memory` is spent (each unlinked as
    /// it is created).
    pub spill_dir: PathBuf,
    /// Bytes of spilled records that may stay in memory.
    pub spill_memory: usize,
    /// Key partitions (rounded up to a power of two); `None`: from the
    /// histories' sizes.
    pub partitions: Option<usize>,
    /// Failing keys whose failures are kept (the smallest keys).
    pub keep: usize,
}

/// Why a streaming check gave no verdict.
#[derive(Debug)]
pub enum CheckError {
    Input(InputError),
    /// A value written twice: file indices in the locations.
    Duplicate(DuplicateWrite),
    /// The spill could not be written or read back.
    Spill {
        dir: PathBuf,
        error: std::io::Error,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Input(e) => write!(f, "{e}"),
            CheckError::Duplicate(d) => write!(f, "key {}: value written twice", d.key),
            CheckError::Spill { dir, error } => write!(
                f,
                "cannot spill records to {}: {error} (--spill-dir DIR picks another place)",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for CheckError {}

impl From<InputError> for CheckError {
    fn from(e: InputError) -> Self {
        CheckError::Input(e)
    }
}

/// Histories whose headers were read and checked together.
pub struct Histories {
    paths: Vec<PathBuf>,
    headers: Vec<Header>,
    info: RunInfo,
    /// An upper bound on all files' ops.
    ops_bound: usize,
}

/// Reads and checks the headers of `paths` (step 1).
pub fn open(paths: &[PathBuf]) -> Result<Histories, InputError> {
    check_file_count(paths)?;
    let mut headers = Vec::with_capacity(paths.len());
    let mut ops_bound = 0usize;
    for path in paths {
        let r = HistoryReader::open(path).map_err(|e| InputError {
            path: path.clone(),
            message: e.to_string(),
        })?;
        ops_bound = ops_bound.saturating_add(rows_hint(path, r.format()));
        headers.push(r.header().clone());
    }
    let clocks = read_clocks(paths)?;
    let refs: Vec<&Header> = headers.iter().collect();
    let info = check_headers(paths, &refs, clocks)?;
    Ok(Histories {
        paths: paths.to_vec(),
        headers,
        info,
        ops_bound,
    })
}

/// What pass 2's threads add up.
struct Outcome {
    summary: Summary,
    /// The smallest key with a value written twice.
    duplicate: Option<DuplicateWrite>,
    /// Precedence edges, and those kept.
    edges: (u64, u64),
    io_error: Option<std::io::Error>,
}

/// One file after pass 1.
struct Parsed<'a> {
    writers: Vec<(u32, u32)>,
    rows: u64,
    eps: EpsStats,
    spilled: Spilled<'a>,
}

impl Histories {
    /// The servers' preload the headers record.
    pub fn preload(&self) -> Option<u64> {
        self.info.preload
    }

    /// The partition bits for `cfg`.
    fn partition_bits(&self, cfg: &StreamConfig) -> u32 {
        let wanted = match cfg.partitions {
            Some(n) => n.max(1),
            None => {
                let per = if self.info.clocks.is_some() {
                    PARTITION_RECORDS / 2
                } else {
                    PARTITION_RECORDS
                };
                self.ops_bound.div_ceil(per).max(1)
            }
        };
        wanted.next_power_of_two().ilog2().min(MAX_PARTITION_BITS)
    }

    /// Checks every key (steps 2 and 3). The [`Loaded`] returned names the
    /// files, writers and clocks; its `recs` are empty (the summary's
    /// failures hold what the report needs).
    pub fn check(
        self,
        initial: Initial,
        cfg: &StreamConfig,
    ) -> Result<(Loaded, Summary), CheckError> {
        let bits = self.partition_bits(cfg);
        let partitions = 1usize << bits;
        let files = self.paths.len();
        let chunk_bytes = (STREAM_BUFFERS / (files.max(1) * partitions)).clamp(4 << 10, 1 << 20);
        let allowance = Allowance::new(cfg.spill_memory);
        let spill_error = |error| CheckError::Spill {
            dir: cfg.spill_dir.clone(),
            error,
        };

        // Pass 1: parse and spill, files in parallel.
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<Parsed, CheckError>>>> =
            Mutex::new((0..files).map(|_| None).collect());
        let parse = |i: usize| -> Result<Parsed, CheckError> {
            let path = &self.paths[i];
            let input = |message: String| {
                CheckError::Input(InputError {
                    path: path.clone(),
                    message,
                })
            };
            let reader = HistoryReader::open(path).map_err(|e| input(e.to_string()))?;
            if reader.header() != &self.headers[i] {
                return Err(input("line 1: the header changed during the check".into()));
            }
            let widener = self.info.clocks.as_ref().map(|c| Widener::new(&c[i]));
            let mut spill = SpillWriter::new(
                i,
                &cfg.spill_dir,
                &allowance,
                chunk_bytes,
                bits,
                widener.is_some(),
            );
            let mut eps = EpsStats::default();
            let info = parse_file(i, reader, |mut r: Rec| {
                let e = match &widener {
                    Some(w) => match w.widen(&mut r) {
                        Some(e) => {
                            eps.record(e.invoke);
                            e
                        }
                        None => Default::default(),
                    },
                    None => Default::default(),
                };
                spill.push(&r, e)
            })
            .map_err(|e| match e {
                ParseError::Input(m) => input(m),
                ParseError::Sink(e) => spill_error(e),
            })?;
            Ok(Parsed {
                writers: info.writers,
                rows: info.rows,
                eps,
                spilled: spill.finish().map_err(spill_error)?,
            })
        };
        std::thread::scope(|s| {
            for _ in 0..cfg.threads.clamp(1, files.max(1)) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= files {
                        break;
                    }
                    let result = parse(i);
                    // A poisoned lock means another thread panicked: that panic is reported.
                    if let Ok(mut results) = results.lock() {
                        results[i] = Some(result);
                    }
                });
            }
        });
        let mut parsed = Vec::with_capacity(files);
        for (i, r) in results
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .enumerate()
        {
            parsed.push(r.unwrap_or_else(|| {
                Err(CheckError::Input(InputError {
                    path: self.paths[i].clone(),
                    message: "was not loaded".into(),
                }))
            })?);
        }
        let per_file: Vec<&[(u32, u32)]> = parsed.iter().map(|p| p.writers.as_slice()).collect();
        let (writers, remaps) = merge_writers(&self.paths, &per_file)?;
        let rows: u64 = parsed.iter().map(|p| p.rows).sum();
        let mapped = self.info.clocks.is_some();

        // Pass 2: partitions, one per thread at a time.
        let next = AtomicUsize::new(0);
        let outcome = Mutex::new(Outcome {
            summary: Summary {
                ops: rows,
                keys: 0,
                failed_keys: 0,
                failures: Vec::new(),
            },
            duplicate: None,
            edges: (0, 0),
            io_error: None,
        });
        let check_partitions = || {
            let mut recs: Vec<Rec> = Vec::new();
            let mut power: Vec<PowerOp> = Vec::new();
            let mut scratch = Vec::new();
            loop {
                let p = next.fetch_add(1, Ordering::Relaxed);
                if p >= partitions {
                    break;
                }
                let n: u64 = parsed.iter().map(|f| f.spilled.records(p)).sum();
                if n == 0 {
                    continue;
                }
                recs.clear();
                power.clear();
                recs.reserve(usize::try_from(n).unwrap_or(usize::MAX));
                let decoded = parsed.iter().zip(&remaps).try_for_each(|(f, remap)| {
                    f.spilled
                        .decode(p, remap, &mut recs, &mut power, &mut scratch)
                });
                let edges = if mapped {
                    crate::load::power_edges(&mut power)
                } else {
                    (0, 0)
                };
                recs.sort_unstable_by_key(Rec::order);
                let checked = decoded.map(|()| check_sorted(&recs, initial, cfg.keep));
                let mut out = outcome.lock().unwrap_or_else(|e| e.into_inner());
                match checked {
                    Err(e) => {
                        out.io_error.get_or_insert(e);
                    }
                    Ok(Ok(s)) => out.summary.merge(s, cfg.keep),
                    Ok(Err(d)) => {
                        if out.duplicate.as_ref().is_none_or(|f| d.key < f.key) {
                            out.duplicate = Some(d);
                        }
                    }
                }
                out.edges.0 += edges.0;
                out.edges.1 += edges.1;
            }
        };
        std::thread::scope(|s| {
            for _ in 0..cfg.threads.clamp(1, partitions) {
                s.spawn(check_partitions);
            }
        });
        let Outcome {
            summary,
            duplicate,
            edges,
            io_error,
        } = outcome.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = io_error {
            return Err(spill_error(e));
        }
        if let Some(d) = duplicate {
            return Err(CheckError::Duplicate(d));
        }
        let clock_report = mapped.then(|| {
            let mut eps = EpsStats::default();
            for p in &parsed {
                eps.merge(&p.eps);
            }
            ClockReport::new(&eps, edges)
        });
        let loaded = Loaded {
            recs: Vec::new(),
            paths: self.paths,
            writers,
            rows,
            preload: self.info.preload,
            run: self.info.run,
            clocks: self.info.clocks,
            clock_report,
        };
        Ok((loaded, summary))
    }
}

/// The default place for spill files: the system's temp directory.
pub fn default_spill_dir() -> PathBuf {
    std::env::temp_dir()
}

/// Convenience: [`open`] then [`Histories::check`] with `initial`, or the
/// recorded preload, or [`Initial::Init`].
pub fn check_files(
    paths: &[PathBuf],
    initial: Option<Initial>,
    cfg: &StreamConfig,
) -> Result<(Loaded, Summary), CheckError> {
    let h = open(paths)?;
    let initial = initial
        .or(h.preload().map(Initial::PreloadedBelow))
        .unwrap_or(Initial::Init);
    h.check(initial, cfg)
}

impl StreamConfig {
    /// Defaults for `threads` threads, spilling to `dir`.
    pub fn new(threads: usize, dir: &Path) -> StreamConfig {
        StreamConfig {
            threads,
            spill_dir: dir.to_path_buf(),
            spill_memory: SPILL_MEMORY,
            partitions: None,
            keep: crate::check::KEEP_FAILURES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_keeping;
    use crate::synth::{write_synth, SynthConfig};
    use kv_core::history::{read_history, Action, HistoryWriter, Outcome, ReadValue};
    use kv_core::workload::{Theta, Workload, Xorshift64};

    fn synth(dir: &Path, ops: u64, keys: u64, stale_every: u64, seed: u64) -> Vec<PathBuf> {
        let cfg = SynthConfig {
            ops,
            keys,
            clients: 3,
            threads: 4,
            workload: Workload::A,
            theta: Some(Theta::new(0.99).unwrap()),
            seed,
            unknown_every: 50,
            stale_every,
        };
        write_synth(&cfg, dir).unwrap()
    }

    /// Every failing key kept, so whole verdicts can be compared.
    const ALL: usize = usize::MAX;

    fn in_memory(paths: &[PathBuf], threads: usize) -> (Loaded, Summary) {
        let mut loaded = crate::load::load_files(paths, threads).unwrap();
        let initial = loaded
            .preload
            .map_or(Initial::Init, Initial::PreloadedBelow);
        let s = check_keeping(&mut loaded, initial, threads, ALL).unwrap();
        loaded.recs = Vec::new();
        (loaded, s)
    }

    fn streaming(
        paths: &[PathBuf],
        threads: usize,
        partitions: usize,
        spill_memory: usize,
    ) -> (Loaded, Summary) {
        let cfg = StreamConfig {
            threads,
            spill_dir: std::env::temp_dir(),
            spill_memory,
            partitions: Some(partitions),
            keep: ALL,
        };
        check_files(paths, None, &cfg).unwrap()
    }

    /// The streaming check and the in-memory one agree on everything:
    /// counts, every failing key's violation and kept ops, writers, clocks.
    #[track_caller]
    fn agree(paths: &[PathBuf]) -> Summary {
        let (want_loaded, want) = in_memory(paths, 4);
        for (threads, partitions, spill_memory) in [
            (1, 1, usize::MAX),
            (2, 8, 0),
            (4, 64, 64 << 10),
            (3, 4096, 1 << 20),
        ] {
            let (loaded, got) = streaming(paths, threads, partitions, spill_memory);
            assert_eq!(
                got, want,
                "{threads} threads, {partitions} partitions, {spill_memory} bytes in memory"
            );
            assert_eq!(loaded.writers, want_loaded.writers);
            assert_eq!(loaded.rows, want_loaded.rows);
            assert_eq!(loaded.clock_report, want_loaded.clock_report);
        }
        want
    }

    #[test]
    fn streaming_agrees_with_in_memory_on_synthetic_histories() {
        let dir = tempfile::tempdir().unwrap();
        let ok = agree(&synth(&dir.path().join("ok"), 200_000, 3_000, 0, 1));
        assert!(ok.passed() && ok.keys > 1_000, "{ok:?}");
        let bad = agree(&synth(&dir.path().join("bad"), 200_000, 3_000, 500, 2));
        assert!(bad.failed_keys > 20, "{}", bad.failed_keys);
    }

    /// Random mutations of a linearizable history: gets made to return
    /// another value of the key (or an older one, or the initial one), ops
    /// moved in time, puts' replies lost, replies of the wrong kind. Both
    /// paths must give the same verdict on each, and most must fail.
    #[test]
    fn streaming_agrees_with_in_memory_on_mutated_histories() {
        let dir = tempfile::tempdir().unwrap();
        let base = synth(&dir.path().join("base"), 20_000, 300, 0, 3);
        let histories: Vec<_> = base.iter().map(|p| read_history(p).unwrap()).collect();
        let mut rng = Xorshift64::new(11);
        let mut failing = 0;
        for case in 0..24 {
            let out = dir.path().join(format!("case-{case}"));
            std::fs::create_dir_all(&out).unwrap();
            let mut paths = Vec::new();
            for (c, h) in histories.iter().enumerate() {
                let mut ops = h.ops.clone();
                for _ in 0..1 + rng.next_u64() % 20 {
                    let i = (rng.next_u64() % ops.len() as u64) as usize;
                    let donor = ops[(rng.next_u64() % ops.len() as u64) as usize];
                    let op = &mut ops[i];
                    match rng.next_u64() % 5 {
                        0 => {
                            if let Action::Put(id) = donor.action {
                                op.action = Action::Get(ReadValue::Written(id));
                            }
                        }
                        1 => op.action = Action::Get(ReadValue::Init),
                        2 => {
                            let shift = rng.next_u64() % 4_000;
                            op.invoke_ns += shift;
                            op.complete_ns += shift;
                        }
                        3 => op.outcome = Outcome::Unknown,
                        _ => op.outcome = Outcome::WrongKind,
                    }
                    if op.outcome == Outcome::WrongKind {
                        if let Action::Get(_) = op.action {
                            op.action = Action::Get(ReadValue::NotAValue);
                        }
                    }
                    if op.outcome == Outcome::Unknown {
                        if let Action::Get(_) = op.action {
                            op.action = Action::Get(ReadValue::NotAValue);
                        }
                    }
                }
                // Text and binary alike.
                let name = if case % 2 == 0 { "h.csv" } else { "h.hist" };
                let p = out.join(format!("{c}-{name}"));
                let mut w = HistoryWriter::new(&p, h.client).unwrap();
                w.record_all(&ops).unwrap();
                w.finish().unwrap();
                paths.push(p);
            }
            if !agree(&paths).passed() {
                failing += 1;
            }
        }
        assert!(failing >= 12, "only {failing} of 24 mutated histories fail");
    }

    /// With clocks of several hosts: the same widening, ε and power.
    #[test]
    fn streaming_agrees_with_in_memory_across_hosts() {
        use kv_core::clock::{ClockLog, ClockSample};
        use kv_core::history::Header;
        let dir = tempfile::tempdir().unwrap();
        let paths = synth(dir.path(), 60_000, 500, 700, 4);
        for (i, p) in paths.iter().enumerate() {
            let h = read_history(p).unwrap();
            let header = Header {
                client: h.client,
                boot: Some(format!("00000000-0000-0000-0000-00000000000{i}")),
                preload: None,
                run: None,
            };
            let mut w = HistoryWriter::create(p, &header).unwrap();
            w.record_all(&h.ops).unwrap();
            w.finish().unwrap();
            // Clocks 2 us apart per host, sampled with round trips of 40 ns.
            let offset = 2_000 * i as u64;
            ClockLog {
                reference: "ref-boot/1".into(),
                samples: vec![ClockSample {
                    send_ns: 1_000_000_000 + offset - 20,
                    recv_ns: 1_000_000_000 + offset + 20,
                    reference_ns: 1_000_000_000,
                }],
            }
            .write(p)
            .unwrap();
        }
        let s = agree(&paths);
        let (loaded, _) = in_memory(&paths, 2);
        let report = loaded.clock_report.unwrap();
        assert!(report.edges > 1_000 && report.edges_kept > 0, "{report:?}");
        assert!(s.failed_keys > 0);
    }
}
