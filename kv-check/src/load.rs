//! Turning history files into compact records ([`Rec`], 40 bytes an op):
//! what the check needs of an op and where its row is, so a counterexample
//! can be printed from the file itself. [`parse_file`] streams one file's
//! records to a sink, and the checks that span files (one run, one clock
//! domain, distinct clients) and the writer numbering are shared by both
//! paths of the check: [`load_files`] keeps every record in one array (the
//! in-memory check), `crate::stream` partitions them to bounded memory.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use kv_core::clock::{ClockLog, ClockMap};
use kv_core::history::{
    Action, Header, HistoryError, HistoryFormat, HistoryReader, Outcome, ReadValue,
};
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

    pub(crate) fn written(writer: usize, seq: u64) -> Value {
        Value(((writer as u64 + 1) << SEQ_BITS) | seq)
    }

    /// The packed form, for the spill's encoding.
    pub(crate) const fn raw(self) -> u64 {
        self.0
    }

    pub(crate) const fn from_raw(raw: u64) -> Value {
        Value(raw)
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

    /// [`Rec::sort_key`], ties broken by where the op is: a total order,
    /// so every path that sorts the same ops gets the same array and so
    /// the same counterexample.
    #[inline]
    pub fn order(&self) -> (u128, Loc) {
        (self.sort_key(), self.loc)
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
    /// Every op, for the in-memory check (empty after a streaming one).
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
    /// Real-time precedence edges on the reference clock: ops of a key,
    /// adjacent by invocation, of different histories, one completing
    /// before the other began. All of them, not a sample...
    pub edges: u64,
    /// ...and how many stay ordered after widening: the check's power.
    pub edges_kept: u64,
}

impl ClockReport {
    /// Share of real-time precedence kept (1 with no edges).
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

/// What parsing one history found besides its records.
pub(crate) struct FileInfo {
    /// Client id, boot id (times of different boots cannot be compared),
    /// preload and run.
    pub header: Header,
    /// (client, thread) of each writer index local to the file.
    pub writers: Vec<(u32, u32)>,
    pub rows: u64,
}

/// Why a file's records did not all arrive: the file, or the sink.
pub(crate) enum ParseError {
    Input(String),
    Sink(std::io::Error),
}

impl From<String> for ParseError {
    fn from(message: String) -> Self {
        ParseError::Input(message)
    }
}

/// Parses one history, handing each record to `sink`; `file` is its index,
/// recorded in each [`Loc`]. Values name writers by file-local index
/// ([`FileInfo::writers`]); [`merge_writers`] numbers them for all files.
pub(crate) fn parse_file<R: BufRead>(
    file: usize,
    mut reader: HistoryReader<R>,
    mut sink: impl FnMut(Rec) -> std::io::Result<()>,
) -> Result<FileInfo, ParseError> {
    let mut info = FileInfo {
        header: reader.header().clone(),
        writers: Vec::new(),
        rows: 0,
    };
    let mut index: FxMap<u64, usize> = FxMap::default();
    let writers = &mut info.writers;
    let mut value_of = |id: ValueId, line: u64| -> Result<Value, String> {
        if id.seq >> SEQ_BITS != 0 {
            return Err(format!(
                "line {line}: value {id}: sequence numbers from 2^{SEQ_BITS} on are not supported"
            ));
        }
        let pair = (u64::from(id.client) << 32) | u64::from(id.thread);
        let next = writers.len();
        let w = *index.entry(pair).or_insert(next);
        if w == next {
            if next == MAX_WRITERS {
                return Err(format!(
                    "line {line}: more than {MAX_WRITERS} writing threads"
                ));
            }
            writers.push((id.client, id.thread));
        }
        Ok(Value::written(w, id.seq))
    };
    let mut rows = 0;
    while let Some(op) = reader.next_op().map_err(|e| e.to_string())? {
        rows += 1;
        let line = reader.line();
        if line >> LINE_BITS != 0 {
            return Err(format!("line {line}: too many lines").into());
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
        sink(Rec::new(
            op.key,
            value,
            is_get,
            time(op.invoke_ns),
            complete,
            loc,
        ))
        .map_err(ParseError::Sink)?;
    }
    if !reader.is_complete() {
        return Err(format!(
            "line {}: no '# end' line: the client did not finish this history, so ops may be missing",
            reader.line() + 1
        )
        .into());
    }
    info.rows = rows;
    Ok(info)
}

/// What the headers of a set of histories allow, once checked.
pub(crate) struct RunInfo {
    pub run: Option<String>,
    pub preload: Option<u64>,
    /// Each file's clock samples, when the histories are of several hosts.
    pub clocks: Option<Vec<ClockLog>>,
}

/// Checks the histories can be checked together: one clock domain (or
/// samples against one reference clock), one run, distinct clients.
pub(crate) fn check_headers(
    paths: &[PathBuf],
    headers: &[&Header],
    clocks: Vec<Option<ClockLog>>,
) -> Result<RunInfo, InputError> {
    // CLOCK_MONOTONIC times only compare within one boot of one machine.
    // Histories of several machines are checked only when each carries
    // clock samples against one reference clock: then every op is mapped
    // onto that clock and widened by its uncertainty. Otherwise the verdict
    // would compare unrelated clocks, so none is given. Files without a
    // boot id (older writers) are let through.
    let mut first_boot: Option<(usize, &str)> = None;
    let mut other_boot: Option<(usize, &str)> = None;
    for (i, header) in headers.iter().enumerate() {
        let Some(boot) = header.boot.as_deref() else {
            continue;
        };
        match first_boot {
            None => first_boot = Some((i, boot)),
            Some((_, b)) if b != boot && other_boot.is_none() => other_boot = Some((i, boot)),
            Some(_) => {}
        }
    }
    let mut several_hosts = None;
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
        several_hosts = Some(clocks.into_iter().flatten().collect());
    }
    let (run, preload) = one_run(paths, headers)?;
    let mut clients: FxMap<u32, usize> = FxMap::default();
    for (i, header) in headers.iter().enumerate() {
        if let Some(first) = clients.insert(header.client, i) {
            return Err(InputError {
                path: paths[i].clone(),
                message: format!(
                    "client {} also wrote {}: each client process needs its own id",
                    header.client,
                    paths[first].display()
                ),
            });
        }
    }
    Ok(RunInfo {
        run,
        preload,
        clocks: several_hosts,
    })
}

/// All writers (client, thread), and per file its local index → global index.
pub(crate) type Writers = (Vec<(u32, u32)>, Vec<Vec<usize>>);

/// Numbers the writers of all files (first seen first, in file order):
/// all of them, and each file's local index → global index.
pub(crate) fn merge_writers(
    paths: &[PathBuf],
    per_file: &[&[(u32, u32)]],
) -> Result<Writers, InputError> {
    let mut writers = Vec::new();
    let mut writer_index: FxMap<(u32, u32), usize> = FxMap::default();
    let mut remaps = Vec::with_capacity(per_file.len());
    for (i, file) in per_file.iter().enumerate() {
        let mut remap = Vec::with_capacity(file.len());
        for &pair in file.iter() {
            let next = writers.len();
            let w = *writer_index.entry(pair).or_insert(next);
            if w == next {
                if next == MAX_WRITERS {
                    return Err(InputError {
                        path: paths[i].clone(),
                        message: format!("more than {MAX_WRITERS} writing threads in all"),
                    });
                }
                writers.push(pair);
            }
            remap.push(w);
        }
        remaps.push(remap);
    }
    Ok((writers, remaps))
}

/// `r` with its writer renamed by `remap` (file-local → global).
#[inline]
pub(crate) fn remapped(r: Rec, remap: &[usize]) -> Rec {
    match r.value().writer_seq() {
        Some((w, seq)) => Rec::new(
            r.key,
            Value::written(remap[w], seq),
            r.is_get(),
            r.invoke,
            r.complete,
            r.loc,
        ),
        None => r,
    }
}

/// One file's records, for the in-memory check.
struct FileRecs {
    info: FileInfo,
    recs: Vec<Rec>,
}

/// Parses one history into memory. `rows_hint` sizes the record array up
/// front: growing it by doubling would copy it and fault its pages in again.
fn load_one<R: BufRead>(
    file: usize,
    reader: HistoryReader<R>,
    rows_hint: usize,
) -> Result<FileRecs, String> {
    let mut recs = Vec::with_capacity(rows_hint);
    let info = parse_file(file, reader, |r| {
        recs.push(r);
        Ok(())
    })
    .map_err(|e| match e {
        ParseError::Input(m) => m,
        ParseError::Sink(e) => e.to_string(),
    })?;
    Ok(FileRecs { info, recs })
}

/// Merges per-file results (in file order) into one [`Loaded`], giving
/// writers global indices.
fn assemble(
    paths: Vec<PathBuf>,
    mut files: Vec<FileRecs>,
    clocks: Vec<Option<ClockLog>>,
) -> Result<Loaded, InputError> {
    let headers: Vec<&Header> = files.iter().map(|f| &f.info.header).collect();
    let info = check_headers(&paths, &headers, clocks)?;
    let mut loaded = Loaded {
        recs: Vec::with_capacity(files.iter().map(|f| f.recs.len()).sum()),
        run: info.run,
        preload: info.preload,
        ..Loaded::default()
    };
    if let Some(clocks) = info.clocks {
        loaded.clock_report = Some(map_to_reference(&mut files, &clocks));
        loaded.clocks = Some(clocks);
    }
    let per_file: Vec<&[(u32, u32)]> = files.iter().map(|f| f.info.writers.as_slice()).collect();
    let (writers, remaps) = merge_writers(&paths, &per_file)?;
    loaded.writers = writers;
    for (file, remap) in files.into_iter().zip(remaps) {
        loaded.rows += file.info.rows;
        loaded
            .recs
            .extend(file.recs.into_iter().map(|r| remapped(r, &remap)));
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
    headers: &[&Header],
) -> Result<(Option<String>, Option<u64>), InputError> {
    let Some(first) = headers.first() else {
        return Ok((None, None));
    };
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none (an older writer)".into());
    for (i, h) in headers.iter().enumerate().skip(1) {
        if h.run != first.run {
            return Err(InputError {
                path: paths[i].clone(),
                message: format!(
                    "belongs to another run (run {}) than {} (run {}): histories of \
                     different runs cannot be checked together",
                    show(&h.run),
                    paths[0].display(),
                    show(&first.run)
                ),
            });
        }
        if h.preload != first.preload {
            let show = |p: Option<u64>| p.map_or("none".into(), |p| p.to_string());
            return Err(InputError {
                path: paths[i].clone(),
                message: format!(
                    "records preload {} but {} records preload {}: not one run",
                    show(h.preload),
                    paths[0].display(),
                    show(first.preload)
                ),
            });
        }
    }
    Ok((first.run.clone(), first.preload))
}

/// Refuses more files than a [`Loc`] can name.
pub(crate) fn check_file_count(paths: &[PathBuf]) -> Result<(), InputError> {
    match paths.get(MAX_FILES) {
        Some(path) => Err(InputError {
            path: path.clone(),
            message: format!("more than {MAX_FILES} history files"),
        }),
        None => Ok(()),
    }
}

/// Each history's clock samples (`<history>.clock.json`), if any.
pub(crate) fn read_clocks(paths: &[PathBuf]) -> Result<Vec<Option<ClockLog>>, InputError> {
    paths
        .iter()
        .map(|p| {
            ClockLog::read(p).map_err(|message| InputError {
                path: p.clone(),
                message,
            })
        })
        .collect()
}

/// A size to reserve for a history's records: an upper bound on its ops.
pub(crate) fn rows_hint(path: &Path, format: HistoryFormat) -> usize {
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    let bytes = usize::try_from(bytes).unwrap_or(0);
    match format {
        HistoryFormat::Text => bytes / MIN_ROW_BYTES,
        HistoryFormat::Binary => bytes / MIN_BINARY_OP_BYTES,
    }
}

/// Loads history files into memory, parsing up to `threads` of them at once.
pub fn load_files(paths: &[PathBuf], threads: usize) -> Result<Loaded, InputError> {
    check_file_count(paths)?;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<FileRecs, String>>>> =
        Mutex::new((0..paths.len()).map(|_| None).collect());
    let load = |path: &Path, i: usize| {
        HistoryReader::open(path)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let hint = rows_hint(path, r.format());
                load_one(i, r, hint)
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
    let clocks = read_clocks(paths)?;
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

/// The clock uncertainty of one end of an op, and of the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Eps {
    pub invoke: u64,
    /// 0 for a completion that is [`NEVER`].
    pub complete: u64,
}

/// Maps one history's ops onto the reference clock.
pub(crate) struct Widener {
    map: ClockMap,
}

impl Widener {
    pub fn new(log: &ClockLog) -> Widener {
        Widener { map: log.mapper() }
    }

    /// Maps `r` onto the reference clock and widens it to [invoke − ε,
    /// complete + ε]; `None` (and `r` as it was) without clock samples.
    #[inline]
    pub fn widen(&self, r: &mut Rec) -> Option<Eps> {
        let to_time = |ns: i128| time(ns.clamp(0, i128::from(u64::MAX)) as u64);
        // Rec times are ns + 1 (0 is "the beginning").
        let inv = self.map.map(r.invoke.saturating_sub(1))?;
        let cmp = (r.complete != NEVER)
            .then(|| self.map.map(r.complete.saturating_sub(1)))
            .flatten();
        let invoke = to_time(inv.reference_ns - i128::from(inv.epsilon_ns));
        let complete = match cmp {
            Some(c) => to_time(c.reference_ns + i128::from(c.epsilon_ns)).max(invoke),
            None => NEVER,
        };
        *r = Rec::new(r.key, r.value(), r.is_get(), invoke, complete, r.loc);
        Some(Eps {
            invoke: inv.epsilon_ns,
            complete: cmp.map_or(0, |c| c.epsilon_ns),
        })
    }
}

/// ε over all mapped ops (their invocations'): median and max.
#[derive(Debug, Clone)]
pub(crate) struct EpsStats {
    hist: hdrhistogram::Histogram<u64>,
    max: u64,
}

impl Default for EpsStats {
    fn default() -> Self {
        EpsStats {
            // Three significant digits, resizing to any ε: infallible.
            hist: hdrhistogram::Histogram::new(3).expect("3 significant digits are valid"),
            max: 0,
        }
    }
}

impl EpsStats {
    #[inline]
    pub fn record(&mut self, eps: u64) {
        self.hist.saturating_record(eps);
        self.max = self.max.max(eps);
    }

    pub fn merge(&mut self, other: &EpsStats) {
        // Both auto-resize; adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.max = self.max.max(other.max);
    }

    pub fn median(&self) -> u64 {
        if self.hist.is_empty() {
            0
        } else {
            self.hist.value_at_quantile(0.5)
        }
    }

    pub fn max(&self) -> u64 {
        self.max
    }
}

/// A mapped op with a completion, for counting real-time precedence:
/// its unwidened times on the reference clock and their ε.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PowerOp {
    key: u64,
    invoke: u64,
    complete: u64,
    eps: Eps,
    loc: Loc,
}

impl PowerOp {
    /// From a widened record and its ε; `None` when it never completed.
    #[inline]
    pub fn of(r: &Rec, eps: Eps) -> Option<PowerOp> {
        (r.complete != NEVER).then(|| PowerOp {
            key: r.key,
            invoke: r.invoke.saturating_add(eps.invoke),
            complete: r.complete.saturating_sub(eps.complete),
            eps,
            loc: r.loc,
        })
    }
}

/// Real-time precedence edges among `ops` (which hold every op of their
/// keys): adjacent ops of a key by invocation, of different histories, one
/// completing before the other began; and how many stay ordered after
/// widening. Sums over disjoint key sets add up.
pub(crate) fn power_edges(ops: &mut [PowerOp]) -> (u64, u64) {
    ops.sort_unstable_by_key(|o| (o.key, o.invoke, o.loc));
    let (mut edges, mut kept) = (0, 0);
    for w in ops.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.key == b.key && a.loc.file() != b.loc.file() && a.complete < b.invoke {
            edges += 1;
            if i128::from(a.complete) + i128::from(a.eps.complete)
                < i128::from(b.invoke) - i128::from(b.eps.invoke)
            {
                kept += 1;
            }
        }
    }
    (edges, kept)
}

impl ClockReport {
    pub(crate) fn new(eps: &EpsStats, (edges, edges_kept): (u64, u64)) -> ClockReport {
        ClockReport {
            epsilon_median_ns: eps.median(),
            epsilon_max_ns: eps.max(),
            edges,
            edges_kept,
        }
    }
}

/// Maps every op of `files` onto the reference clock and widens it to
/// [invoke − ε, complete + ε] (file i by `clocks[i]`). Returns ε's median
/// and max and the share of real-time precedence that survives.
fn map_to_reference(files: &mut [FileRecs], clocks: &[ClockLog]) -> ClockReport {
    let mut eps = EpsStats::default();
    let mut power = Vec::new();
    for (file, clock) in files.iter_mut().zip(clocks) {
        let widener = Widener::new(clock);
        for r in file.recs.iter_mut() {
            if let Some(e) = widener.widen(r) {
                eps.record(e.invoke);
                power.extend(PowerOp::of(r, e));
            }
        }
    }
    ClockReport::new(&eps, power_edges(&mut power))
}
