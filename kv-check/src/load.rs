//! Loading history files into one flat array of compact records ([`Rec`],
//! 40 bytes an op), ready to be sorted by key. Files are parsed in parallel,
//! streaming; nothing of an op is kept but what the check needs and where
//! the op's row is, so a counterexample can be printed from the file itself.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use kv_core::clock::ClockLog;
use kv_core::history::{Action, Header, HistoryError, HistoryReader, Outcome, ReadValue};
use kv_core::value::ValueId;

/// Bits of a written value's sequence number in a [`Value`].
const SEQ_BITS: u32 = 40;
/// Bits of a line number in a [`Loc`].
const LINE_BITS: u32 = 40;
/// Most (client, thread) pairs that write: their index + 1 must fit above
/// the sequence bits of a [`Value`], which itself is shifted left by one.
const MAX_WRITERS: usize = (1 << (63 - SEQ_BITS)) - 2;
const MAX_FILES: usize = 1 << (64 - LINE_BITS);
/// A row is rarely shorter (`0,0,get,1,init,1000000000,1000000000,ok`):
/// dividing a file's size by this bounds its rows, for reserving memory.
const MIN_ROW_BYTES: usize = 48;
/// The same for binary histories (zstd does better on real runs; the
/// reserve is virtual memory until used, so erring high is cheap).
const MIN_BINARY_OP_BYTES: usize = 2;

/// Check-time clock: a history's nanoseconds plus one, so that 0 can stand
/// for "before every op" (the initial value's virtual write).
pub type Time = u64;
/// The virtual initial write happens at this time, before every real op.
pub const BEGINNING: Time = 0;
/// Completion of a put whose outcome is unknown: it may take effect at any
/// time after its invocation, or never.
pub const NEVER: Time = Time::MAX;

fn time(ns: u64) -> Time {
    // Saturating below NEVER: a real completion must stay a real one.
    ns.saturating_add(1).min(NEVER - 1)
}

/// A value as the checker compares it: the three special read values, or a
/// written [`ValueId`] packed as (writer index + 1, seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Value(u64);

impl Value {
    pub const INIT: Value = Value(0);
    pub const ABSENT: Value = Value(1);
    pub const OTHER: Value = Value(2);
    /// Another key's preloaded value (`init:K`): the server mixed keys up.
    pub const FOREIGN_INIT: Value = Value(3);
    /// A reply of the wrong kind (outcome `wrong-kind`), put or get.
    pub const WRONG_REPLY: Value = Value(4);

    fn written(writer: usize, seq: u64) -> Value {
        Value(((writer as u64 + 1) << SEQ_BITS) | seq)
    }

    /// The writer index and sequence number of a written value.
    pub fn writer_seq(self) -> Option<(usize, u64)> {
        let writer = self.0 >> SEQ_BITS;
        (writer > 0).then(|| ((writer - 1) as usize, self.0 & ((1 << SEQ_BITS) - 1)))
    }
}

/// Where an op's row is: file index and line number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc(u64);

impl Loc {
    pub fn new(file: usize, line: u64) -> Loc {
        Loc(((file as u64) << LINE_BITS) | line)
    }

    pub fn file(self) -> usize {
        (self.0 >> LINE_BITS) as usize
    }

    pub fn line(self) -> u64 {
        self.0 & ((1 << LINE_BITS) - 1)
    }
}

/// One op, as the checker sees it. Gets of unknown outcome are not kept:
/// they constrain nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rec {
    pub key: u64,
    /// The value read or written, shifted left once; the low bit is set for
    /// gets, so that sorting puts a value's put before its gets.
    code: u64,
    pub invoke: Time,
    /// [`NEVER`] for a put of unknown outcome.
    pub complete: Time,
    pub loc: Loc,
}

impl Rec {
    pub fn new(
        key: u64,
        value: Value,
        is_get: bool,
        invoke: Time,
        complete: Time,
        loc: Loc,
    ) -> Rec {
        Rec {
            key,
            code: (value.0 << 1) | u64::from(is_get),
            invoke,
            complete,
            loc,
        }
    }

    pub fn value(&self) -> Value {
        Value(self.code >> 1)
    }

    pub fn is_get(&self) -> bool {
        self.code & 1 == 1
    }

    /// The order the checker groups ops in: by key, then value, put first.
    #[inline]
    pub fn sort_key(&self) -> u128 {
        (u128::from(self.key) << 64) | u128::from(self.code)
    }
}

/// A history that cannot be checked: missing, malformed or inconsistent.
/// Displays as one line naming the file (and line, when there is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for InputError {}

/// All ops of all histories, and what is needed to name them.
#[derive(Debug, Default)]
pub struct Loaded {
    pub recs: Vec<Rec>,
    /// The history files (or names, for in-memory input), by file index.
    pub paths: Vec<PathBuf>,
    /// (client, thread) of each writer index of a [`Value`].
    pub writers: Vec<(u32, u32)>,
    /// Rows in all files, including ignored gets of unknown outcome.
    pub rows: u64,
    /// The servers' preload, as every header records it (`None`: older files).
    pub preload: Option<u64>,
    /// The run every header names (`None`: older files).
    pub run: Option<String>,
    /// Histories of several hosts: each file's clock samples (by file
    /// index), the ops mapped onto the reference clock and widened by ε.
    /// `None` when every history is of one machine's clock.
    pub clocks: Option<Vec<ClockLog>>,
    /// What the widening cost, when there was one.
    pub clock_report: Option<ClockReport>,
}

/// The uncertainty of a multi-host check and what it left of real-time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockReport {
    pub epsilon_median_ns: u64,
    pub epsilon_max_ns: u64,
    /// Sampled precedence edges (an op completing before another, of
    /// another client, on the same key, began) on the reference clock...
    pub edges: u64,
    /// ...and how many stay ordered after widening: the check's power.
    pub edges_kept: u64,
}

impl ClockReport {
    /// Share of real-time precedence kept (1 with no edges sampled).
    pub fn power(&self) -> f64 {
        if self.edges == 0 {
            1.0
        } else {
            self.edges_kept as f64 / self.edges as f64
        }
    }
}

impl Loaded {
    pub fn value_id(&self, value: Value) -> Option<ValueId> {
        let (writer, seq) = value.writer_seq()?;
        let &(client, thread) = self.writers.get(writer)?;
        Some(ValueId {
            client,
            thread,
            seq,
        })
    }
}

/// FxHash (rustc's): a multiply per word, plenty for (client, thread) pairs.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.write_u64(u64::from(b)));
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// One file's ops, with writer indices local to the file.
struct FileRecs {
    /// Client id, boot id (times of different boots cannot be compared),
    /// preload and run.
    header: Header,
    recs: Vec<Rec>,
    writers: Vec<(u32, u32)>,
    rows: u64,
}

/// Parses one history; `file` is its index, recorded in each [`Loc`].
/// `rows_hint` sizes the record array up front: growing it by doubling
/// would copy it and fault its pages in again.
fn load_one<R: BufRead>(
    file: usize,
    mut reader: HistoryReader<R>,
    rows_hint: usize,
) -> Result<FileRecs, String> {
    let mut out = FileRecs {
        header: reader.header().clone(),
        recs: Vec::with_capacity(rows_hint),
        writers: Vec::new(),
        rows: 0,
    };
    let mut index: FxMap<u64, usize> = FxMap::default();
    let mut value_of = |id: ValueId, line: u64| -> Result<Value, String> {
        if id.seq >> SEQ_BITS != 0 {
            return Err(format!(
                "line {line}: value {id}: sequence numbers from 2^{SEQ_BITS} on are not supported"
            ));
        }
        let pair = (u64::from(id.client) << 32) | u64::from(id.thread);
        let next = out.writers.len();
        let w = *index.entry(pair).or_insert(next);
        if w == next {
            if next == MAX_WRITERS {
                return Err(format!(
                    "line {line}: more than {MAX_WRITERS} writing threads"
                ));
            }
            out.writers.push((id.client, id.thread));
        }
        Ok(Value::written(w, id.seq))
    };
    while let Some(op) = reader.next_op().map_err(|e| e.to_string())? {
        out.rows += 1;
        let line = reader.line();
        if line >> LINE_BITS != 0 {
            return Err(format!("line {line}: too many lines"));
        }
        let (value, is_get) = match op.action {
            // A get without reply tells nothing about the store.
            Action::Get(_) if op.outcome == Outcome::Unknown => continue,
            // A reply of the wrong kind is a failure whatever the value.
            Action::Get(_) if op.outcome == Outcome::WrongKind => (Value::WRONG_REPLY, true),
            Action::Put(_) if op.outcome == Outcome::WrongKind => (Value::WRONG_REPLY, false),
            Action::Get(ReadValue::Init) => (Value::INIT, true),
            Action::Get(ReadValue::InitOf(_)) => (Value::FOREIGN_INIT, true),
            // The parser admits '-' only with the outcomes handled above.
            Action::Get(ReadValue::NotAValue) => (Value::WRONG_REPLY, true),
            Action::Get(ReadValue::Absent) => (Value::ABSENT, true),
            Action::Get(ReadValue::Other) => (Value::OTHER, true),
            Action::Get(ReadValue::Written(id)) => (value_of(id, line)?, true),
            Action::Put(id) => (value_of(id, line)?, false),
        };
        let complete = match op.outcome {
            Outcome::Ok | Outcome::WrongKind => time(op.complete_ns),
            Outcome::Unknown => NEVER,
        };
        let loc = Loc::new(file, line);
        out.recs.push(Rec::new(
            op.key,
            value,
            is_get,
            time(op.invoke_ns),
            complete,
            loc,
        ));
    }
    if !reader.is_complete() {
        return Err(format!(
            "line {}: no '# end' line: the client did not finish this history, so ops may be missing",
            reader.line() + 1
        ));
    }
    Ok(out)
}

/// Merges per-file results (in file order) into one [`Loaded`], giving
/// writers global indices.
fn assemble(
    paths: Vec<PathBuf>,
    mut files: Vec<FileRecs>,
    clocks: Vec<Option<ClockLog>>,
) -> Result<Loaded, InputError> {
    let mut loaded = Loaded {
        recs: Vec::with_capacity(files.iter().map(|f| f.recs.len()).sum()),
        ..Loaded::default()
    };
    let mut clients: FxMap<u32, usize> = FxMap::default();
    // CLOCK_MONOTONIC times only compare within one boot of one machine.
    // Histories of several machines are checked only when each carries
    // clock samples against one reference clock: then every op is mapped
    // onto that clock and widened by its uncertainty. Otherwise the verdict
    // would compare unrelated clocks, so none is given. Files without a
    // boot id (older writers) are let through.
    let mut first_boot: Option<(usize, &str)> = None;
    let mut other_boot: Option<(usize, &str)> = None;
    for (i, file) in files.iter().enumerate() {
        let Some(boot) = file.header.boot.as_deref() else {
            continue;
        };
        match first_boot {
            None => first_boot = Some((i, boot)),
            Some((_, b)) if b != boot && other_boot.is_none() => other_boot = Some((i, boot)),
            Some(_) => {}
        }
    }
    if let (Some((j, other)), Some((i, boot))) = (first_boot, other_boot) {
        let one_reference = clocks.iter().all(Option::is_some)
            && clocks
                .iter()
                .flatten()
                .all(|c| Some(&c.reference) == clocks[0].as_ref().map(|c| &c.reference));
        if !one_reference {
            return Err(InputError {
                path: paths[i].clone(),
                message: format!(
                    "recorded on another machine (boot id {boot}) than {} (boot id {other}): \
                     their CLOCK_MONOTONIC times cannot be compared without clock samples \
                     against one reference (<history>.clock.json, written by kv-client in \
                     check mode); run check mode with every client on one host",
                    paths[j].display()
                ),
            });
        }
        let clocks: Vec<ClockLog> = clocks.into_iter().flatten().collect();
        let report = map_to_reference(&mut files, &clocks);
        loaded.clocks = Some(clocks);
        loaded.clock_report = Some(report);
    }
    (loaded.run, loaded.preload) = one_run(&paths, &files)?;
    let mut writer_index: FxMap<(u32, u32), usize> = FxMap::default();
    for (i, file) in files.into_iter().enumerate() {
        if let Some(first) = clients.insert(file.header.client, i) {
            return Err(InputError {
                path: paths[i].clone(),
                message: format!(
                    "client {} also wrote {}: each client process needs its own id",
                    file.header.client,
                    paths[first].display()
                ),
            });
        }
        let mut remap = Vec::with_capacity(file.writers.len());
        for pair in file.writers {
            let next = loaded.writers.len();
            let w = *writer_index.entry(pair).or_insert(next);
            if w == next {
                if next == MAX_WRITERS {
                    return Err(InputError {
                        path: paths[i].clone(),
                        message: format!("more than {MAX_WRITERS} writing threads in all"),
                    });
                }
                loaded.writers.push(pair);
            }
            remap.push(w);
        }
        loaded.rows += file.rows;
        loaded.recs.extend(file.recs.into_iter().map(|mut r| {
            if let Some((w, seq)) = r.value().writer_seq() {
                r = Rec::new(
                    r.key,
                    Value::written(remap[w], seq),
                    r.is_get(),
                    r.invoke,
                    r.complete,
                    r.loc,
                );
            }
            r
        }));
    }
    loaded.paths = paths;
    Ok(loaded)
}

/// The run and preload all headers share. Histories of different runs
/// (servers restarted in between) describe different stores: checked
/// together they would report violations of nothing, so they are refused,
/// as are files with and without a run id mixed.
fn one_run(
    paths: &[PathBuf],
    files: &[FileRecs],
) -> Result<(Option<String>, Option<u64>), InputError> {
    let Some(first) = files.first() else {
        return Ok((None, None));
    };
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none (an older writer)".into());
    for (i, file) in files.iter().enumerate().skip(1) {
        let h = &file.header;
        if h.run != first.header.run {
            return Err(InputError {
                path: paths[i].clone(),
                message: format!(
                    "belongs to another run (run {}) than {} (run {}): histories of \
                     different runs cannot be checked together",
                    show(&h.run),
                    paths[0].display(),
                    show(&first.header.run)
                ),
            });
        }
        if h.preload != first.header.preload {
            let show = |p: Option<u64>| p.map_or("none".into(), |p| p.to_string());
            return Err(InputError {
                path: paths[i].clone(),
                message: format!(
                    "records preload {} but {} records preload {}: not one run",
                    show(h.preload),
                    paths[0].display(),
                    show(first.header.preload)
                ),
            });
        }
    }
    Ok((first.header.run.clone(), first.header.preload))
}

/// Loads history files, parsing up to `threads` of them at once.
pub fn load_files(paths: &[PathBuf], threads: usize) -> Result<Loaded, InputError> {
    if paths.len() > MAX_FILES {
        return Err(InputError {
            path: paths[MAX_FILES].clone(),
            message: format!("more than {MAX_FILES} history files"),
        });
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<FileRecs, String>>>> =
        Mutex::new((0..paths.len()).map(|_| None).collect());
    let load = |path: &Path, i: usize| {
        let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        let bytes = usize::try_from(bytes).unwrap_or(0);
        HistoryReader::open(path)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let rows_hint = match r.format() {
                    kv_core::history::HistoryFormat::Text => bytes / MIN_ROW_BYTES,
                    kv_core::history::HistoryFormat::Binary => bytes / MIN_BINARY_OP_BYTES,
                };
                load_one(i, r, rows_hint)
            })
    };
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, paths.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                let result = load(path, i);
                // A poisoned lock means another loader panicked: that panic is reported.
                if let Ok(mut results) = results.lock() {
                    results[i] = Some(result);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut files = Vec::with_capacity(paths.len());
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Some(Ok(f)) => files.push(f),
            Some(Err(message)) => {
                return Err(InputError {
                    path: paths[i].clone(),
                    message,
                })
            }
            None => {
                return Err(InputError {
                    path: paths[i].clone(),
                    message: "was not loaded".into(),
                })
            }
        }
    }
    let mut clocks = Vec::with_capacity(paths.len());
    for p in paths {
        clocks.push(ClockLog::read(p).map_err(|message| InputError {
            path: p.clone(),
            message,
        })?);
    }
    assemble(paths.to_vec(), files, clocks)
}

/// Loads in-memory histories (name, text): for tests and tools.
pub fn load_texts(texts: &[(&str, &str)]) -> Result<Loaded, InputError> {
    let paths: Vec<PathBuf> = texts.iter().map(|(name, _)| PathBuf::from(name)).collect();
    let mut files = Vec::with_capacity(texts.len());
    for (i, (_, text)) in texts.iter().enumerate() {
        let parsed = HistoryReader::new(text.as_bytes())
            .map_err(|e: HistoryError| e.to_string())
            .and_then(|r| load_one(i, r, text.len() / MIN_ROW_BYTES));
        files.push(parsed.map_err(|message| InputError {
            path: paths[i].clone(),
            message,
        })?);
    }
    let clocks = vec![None; paths.len()];
    assemble(paths, files, clocks)
}

/// Keys sampled for the power estimate: one in this many.
const POWER_KEY_SAMPLE: u64 = 8;
/// Ops sampled for the power estimate at most.
const POWER_MAX_OPS: usize = 1 << 20;

/// Maps every op of `files` onto the reference clock and widens it to
/// [invoke − ε, complete + ε] (file i by `clocks[i]`). Returns ε's median
/// and max and the share of sampled real-time precedence that survives.
fn map_to_reference(files: &mut [FileRecs], clocks: &[ClockLog]) -> ClockReport {
    let to_time = |ns: i128| time(ns.clamp(0, i128::from(u64::MAX)) as u64);
    let mut eps: Vec<u64> = Vec::new();
    // (key, file, invoke, complete, ε invoke, ε complete) on the reference clock, unwidened.
    let mut sample: Vec<(u64, usize, i128, i128, u64, u64)> = Vec::new();
    // Every key of a small history; one in POWER_KEY_SAMPLE of a large one.
    let total: usize = files.iter().map(|f| f.recs.len()).sum();
    let every = if total <= POWER_MAX_OPS {
        1
    } else {
        POWER_KEY_SAMPLE
    };
    for (f, (file, clock)) in files.iter_mut().zip(clocks).enumerate() {
        let clock = clock.mapper();
        for r in file.recs.iter_mut() {
            // Rec times are ns + 1 (0 is "the beginning").
            let Some(inv) = clock.map(r.invoke.saturating_sub(1)) else {
                continue;
            };
            let cmp = (r.complete != NEVER)
                .then(|| clock.map(r.complete.saturating_sub(1)))
                .flatten();
            if eps.len() < POWER_MAX_OPS {
                eps.push(inv.epsilon_ns);
            }
            if r.key % every == 0 && sample.len() < POWER_MAX_OPS {
                if let Some(c) = cmp {
                    sample.push((
                        r.key,
                        f,
                        inv.reference_ns,
                        c.reference_ns,
                        inv.epsilon_ns,
                        c.epsilon_ns,
                    ));
                }
            }
            let invoke = to_time(inv.reference_ns - i128::from(inv.epsilon_ns));
            let complete = match cmp {
                Some(c) => to_time(c.reference_ns + i128::from(c.epsilon_ns)).max(invoke),
                None => NEVER,
            };
            *r = Rec::new(r.key, r.value(), r.is_get(), invoke, complete, r.loc);
        }
    }
    eps.sort_unstable();
    // Adjacent ops of a key by invoke, of different clients: ordered
    // before widening, and still after?
    sample.sort_unstable_by_key(|s| (s.0, s.2));
    let (mut edges, mut kept) = (0, 0);
    for w in sample.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a.0 == b.0 && a.1 != b.1 && a.3 < b.2 {
            edges += 1;
            if a.3 + i128::from(a.5) < b.2 - i128::from(b.4) {
                kept += 1;
            }
        }
    }
    ClockReport {
        epsilon_median_ns: eps.get(eps.len() / 2).copied().unwrap_or(0),
        epsilon_max_ns: eps.last().copied().unwrap_or(0),
        edges,
        edges_kept: kept,
    }
}
