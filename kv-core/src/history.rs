//! The check-mode history format: what each kv-client process records of its
//! ops (one text file per process), and what `kv-check` reads back to test
//! linearizability. Writing is cheap (no allocation per op); reading streams
//! and rejects malformed input with the line number, never panics.
//!
//! ```text
//! # kvlab-history v1 client=3 clock=CLOCK_MONOTONIC boot=1b4e28ba-2fa1-11d2-883f-0016d3cca427 preload=1000000 run=5d0c2b7e91f3a4c6
//! thread,seq,kind,key,value,invoke_ns,complete_ns,outcome
//! 0,0,put,4004,3.0.0,1000,1900,ok
//! 1,0,get,4004,init,1200,2100,ok
//! 1,1,get,17,none,2200,2900,ok
//! 0,1,put,17,3.0.1,2000,2000,unknown
//! # end ops=4
//! ```
//!
//! * Header fields: `client=` the writer's `--client-id`; `boot=` see below;
//!   `preload=` the records the servers preloaded (keys `0..N-1` start with
//!   their `init` value, the others absent); `run=` the run's identity: a
//!   hash of the instance ids of the servers the client talked to, so
//!   histories of different runs (different server lifetimes) cannot be
//!   checked together by mistake. Older files lack `preload=` and `run=`.
//! * `key`: kvlab's key text, a decimal number ([`crate::workload::key_text`]).
//! * `value`: for a put, the unique value written ([`ValueId`], `client.thread.seq`);
//!   for a get, what was read: a `ValueId`, `init` (this key's preloaded
//!   value), `init:K` (key K's preloaded value: a server mixing keys up),
//!   `none` (key absent), `other` (anything else), or `-` when no value
//!   came back (outcome `unknown` or `wrong-kind`).
//! * `invoke_ns`, `complete_ns`: [`monotonic_ns`] when the op was sent and when
//!   its reply arrived. Only comparable between processes of one machine
//!   (one boot of it): `boot=` in the header is the kernel's boot id
//!   ([`boot_id`]), so a reader can tell. Files without it (older writers)
//!   are accepted.
//! * `outcome`: `ok`; `unknown` when no reply came (a put that may or may not
//!   have taken effect; `complete_ns` is then when the client gave up);
//!   `wrong-kind` when the reply was of the wrong kind (a value for a put,
//!   `stored` for a get): always a failure of the server.
//! * The `# end ops=N` line is written by [`HistoryWriter::finish`]: a file
//!   without it belongs to a client that did not finish, so it misses ops.
//!
//! Rows need not be in time order: threads may interleave their batches.
//!
//! That is the text format (v1), written for files named `*.csv`. Any other
//! name gets the compact binary format (v2, [`binary`]): the same header
//! line with `v2` and `codec=zstd`, then a zstd stream of batch records,
//! a few bytes an op. Readers take either; for a binary file, "line N"
//! means the line the op has in `kv-check dump`'s text rendering of it.

pub mod binary;

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use thiserror::Error;

use crate::value::{ValueId, ValueKind};

/// First word of the header line; the version follows it.
const MAGIC: &str = "# kvlab-history v1";
/// The binary format's header line starts so.
const MAGIC_V2: &str = "# kvlab-history v2";
const CLOCK: &str = "CLOCK_MONOTONIC";
/// The CSV header, the file's second line.
pub const COLUMNS: &str = "thread,seq,kind,key,value,invoke_ns,complete_ns,outcome";
const END_PREFIX: &str = "# end ops=";

/// The clock of every history timestamp: [`raw_monotonic_ns`], shifted by
/// the test-only skew ([`crate::clock::ENV_TEST_SKEW_NS`], 0 unless set).
#[inline]
pub fn monotonic_ns() -> u64 {
    raw_monotonic_ns().saturating_add_signed(crate::clock::test_skew_ns())
}

/// Nanoseconds of `CLOCK_MONOTONIC`, shared by all processes of one
/// machine, so their ops can be ordered.
#[inline]
pub fn raw_monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// This boot of this machine (`/proc/sys/kernel/random/boot_id`): the
/// domain in which [`monotonic_ns`] values compare. `None` when unreadable.
pub fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    // Goes into a space-separated header: refuse anything odd.
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .then(|| id.to_string())
}

/// What a get returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadValue {
    /// This key's preloaded value (`init`).
    Init,
    /// Another key's preloaded value (`init:K`).
    InitOf(u64),
    /// No value came back (`-`): the get's outcome is unknown or wrong-kind.
    NotAValue,
    /// The key was absent (`none`).
    Absent,
    /// A value written by a check-mode put.
    Written(ValueId),
    /// Anything else (`other`): never written in check mode.
    Other,
}

impl ReadValue {
    /// Classifies a get's reply for `key` (`None`: key absent).
    pub fn from_stored(key: &[u8], value: Option<&[u8]>) -> Self {
        match value.map(|v| crate::value::identify(key, v)) {
            None => ReadValue::Absent,
            Some(ValueKind::Init) => ReadValue::Init,
            Some(ValueKind::InitOf(k)) => ReadValue::InitOf(k),
            Some(ValueKind::Written(id)) => ReadValue::Written(id),
            Some(ValueKind::Other) => ReadValue::Other,
        }
    }
}

/// A get and what it read, or a put and what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Get(ReadValue),
    Put(ValueId),
}

/// Whether the client saw the op's reply, and of which kind it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    /// No reply: the op may or may not have taken effect.
    Unknown,
    /// A reply of the wrong kind: a value for a put, `stored` for a get.
    WrongKind,
}

/// One op of one client thread, as recorded in a history file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HistoryOp {
    pub thread: u32,
    /// The op's sequence number within its thread.
    pub seq: u64,
    pub key: u64,
    pub action: Action,
    pub invoke_ns: u64,
    pub complete_ns: u64,
    pub outcome: Outcome,
}

impl HistoryOp {
    /// Appends the op's CSV row, newline included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        push_u64(out, u64::from(self.thread));
        out.push(b',');
        push_u64(out, self.seq);
        let (kind, value): (&[u8], _) = match self.action {
            Action::Get(v) => (b",get,", v),
            Action::Put(id) => (b",put,", ReadValue::Written(id)),
        };
        out.extend_from_slice(kind);
        push_u64(out, self.key);
        out.push(b',');
        match value {
            ReadValue::Init => out.extend_from_slice(b"init"),
            ReadValue::InitOf(k) => {
                out.extend_from_slice(b"init:");
                push_u64(out, k);
            }
            ReadValue::NotAValue => out.push(b'-'),
            ReadValue::Absent => out.extend_from_slice(b"none"),
            ReadValue::Other => out.extend_from_slice(b"other"),
            ReadValue::Written(id) => {
                push_u64(out, u64::from(id.client));
                out.push(b'.');
                push_u64(out, u64::from(id.thread));
                out.push(b'.');
                push_u64(out, id.seq);
            }
        }
        out.push(b',');
        push_u64(out, self.invoke_ns);
        out.push(b',');
        push_u64(out, self.complete_ns);
        out.extend_from_slice(match self.outcome {
            Outcome::Ok => b",ok\n",
            Outcome::Unknown => b",unknown\n",
            Outcome::WrongKind => b",wrong-kind\n",
        });
    }
}

/// Decimal digits of `v`, without going through `fmt`.
#[inline]
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A history's first line: who wrote it, on which clock, for which run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    pub client: u32,
    /// The writer's [`boot_id`]; `None` in files of older writers.
    pub boot: Option<String>,
    /// The servers' `--preload`; `None` in files of older writers.
    pub preload: Option<u64>,
    /// The run's identity ([`run_id_of`]); `None` in files of older writers.
    pub run: Option<String>,
}

impl Header {
    /// A header for this machine, without preload or run (tools, tests).
    /// The boot id is the test-only [`crate::clock::ENV_TEST_BOOT_ID`]
    /// when set (one machine playing several hosts).
    pub fn local(client: u32) -> Self {
        let test_boot = std::env::var(crate::clock::ENV_TEST_BOOT_ID)
            .ok()
            .filter(|b| !b.is_empty() && b.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
        Header {
            client,
            boot: test_boot.or_else(boot_id),
            preload: None,
            run: None,
        }
    }

    fn write_to(&self, out: &mut impl Write, format: HistoryFormat) -> io::Result<()> {
        let magic = match format {
            HistoryFormat::Text => MAGIC,
            HistoryFormat::Binary => MAGIC_V2,
        };
        write!(out, "{magic} client={} clock={CLOCK}", self.client)?;
        if let Some(boot) = &self.boot {
            write!(out, " boot={boot}")?;
        }
        if let Some(n) = self.preload {
            write!(out, " preload={n}")?;
        }
        if let Some(run) = &self.run {
            write!(out, " run={run}")?;
        }
        if format == HistoryFormat::Binary {
            write!(out, " codec={}", binary::CODEC)?;
        }
        writeln!(out)
    }
}

/// How a history file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFormat {
    /// v1: one CSV row per op (~48 bytes an op).
    Text,
    /// v2: zstd-compressed batch records (a few bytes an op).
    Binary,
}

impl HistoryFormat {
    /// Text for `*.csv`, binary for any other name.
    pub fn for_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => HistoryFormat::Text,
            _ => HistoryFormat::Binary,
        }
    }
}

enum Sink {
    Text(BufWriter<File>),
    Binary {
        out: zstd::stream::write::Encoder<'static, BufWriter<File>>,
        encoder: binary::Encoder,
    },
}

/// A run's identity from the instance ids of its servers (each server draws
/// one at start): FNV-1a over the sorted ids, as 16 hex digits. Every client
/// of a run talks to the same servers, so they agree; another run (the
/// servers restarted) differs.
pub fn run_id_of(instances: &[u64]) -> String {
    let mut ids = instances.to_vec();
    ids.sort_unstable();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ids.iter().flat_map(|id| id.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Writes one client process's history file. Rows are formatted into a
/// reused buffer and written through a large `BufWriter`: a few tens of
/// nanoseconds per op. Several threads share one writer behind a lock;
/// [`HistoryWriter::record_all`] takes a whole batch per lock.
pub struct HistoryWriter {
    out: Sink,
    row: Vec<u8>,
    ops: u64,
}

impl HistoryWriter {
    /// Creates (truncates) `path` with a [`Header::local`] header.
    pub fn new(path: impl AsRef<Path>, client: u32) -> io::Result<Self> {
        Self::create(path, &Header::local(client))
    }

    /// Creates (truncates) `path` and writes `header`, in the format its
    /// name asks for ([`HistoryFormat::for_path`]).
    pub fn create(path: impl AsRef<Path>, header: &Header) -> io::Result<Self> {
        let format = HistoryFormat::for_path(path.as_ref());
        Self::create_as(path, header, format)
    }

    /// Creates (truncates) `path` and writes `header`, in `format`.
    pub fn create_as(
        path: impl AsRef<Path>,
        header: &Header,
        format: HistoryFormat,
    ) -> io::Result<Self> {
        let file = File::create(path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        header.write_to(&mut out, format)?;
        let out = match format {
            HistoryFormat::Text => {
                writeln!(out, "{COLUMNS}")?;
                Sink::Text(out)
            }
            HistoryFormat::Binary => Sink::Binary {
                out: binary::compress(out)?,
                encoder: binary::Encoder::new(header.client),
            },
        };
        Ok(Self {
            out,
            row: Vec::with_capacity(128),
            ops: 0,
        })
    }

    #[inline]
    pub fn record(&mut self, op: &HistoryOp) -> io::Result<()> {
        self.record_all(std::slice::from_ref(op))
    }

    /// Records ops; in the binary format a batch's ops (same thread and
    /// times, consecutive) share one record.
    pub fn record_all(&mut self, ops: &[HistoryOp]) -> io::Result<()> {
        self.ops += ops.len() as u64;
        match &mut self.out {
            Sink::Text(out) => ops.iter().try_for_each(|op| {
                self.row.clear();
                op.encode(&mut self.row);
                out.write_all(&self.row)
            }),
            Sink::Binary { out, encoder } => out.write_all(encoder.encode(ops)),
        }
    }

    /// Ops recorded so far.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Writes the end line and flushes. A history not finished (the client
    /// died, or dropped the writer) is refused by the checker as incomplete.
    pub fn finish(self) -> io::Result<()> {
        let mut out = match self.out {
            Sink::Text(mut out) => {
                writeln!(out, "{END_PREFIX}{}", self.ops)?;
                out
            }
            Sink::Binary {
                mut out,
                mut encoder,
            } => {
                out.write_all(encoder.end(self.ops))?;
                out.finish()?
            }
        };
        out.flush()?;
        out.get_ref().sync_data()
    }
}

/// Why a history file cannot be read. Display is one line, naming the line.
#[derive(Debug, Error)]
pub enum HistoryError {
    #[error("cannot open: {0}")]
    Open(io::Error),
    #[error("line {line}: read failed: {error}")]
    Io { line: u64, error: io::Error },
    #[error("line {line}: {reason}")]
    Malformed { line: u64, reason: String },
}

fn malformed(line: u64, reason: impl Into<String>) -> HistoryError {
    HistoryError::Malformed {
        line,
        reason: reason.into(),
    }
}

/// Streams the ops of one history file.
/// The decompressed ops of a binary history.
type BinaryInput<R> = binary::Decoder<BufReader<zstd::stream::read::Decoder<'static, R>>>;

enum Input<R: BufRead> {
    Text(R),
    Binary(Box<BinaryInput<R>>),
    /// Only while switching from the header to the binary stream.
    Switching,
}

pub struct HistoryReader<R: BufRead> {
    input: Input<R>,
    header: Header,
    format: HistoryFormat,
    /// Number of the last line read (1-based).
    line: u64,
    buf: Vec<u8>,
    ops: u64,
    /// The end line was seen.
    complete: bool,
}

impl HistoryReader<BufReader<File>> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let file = File::open(path).map_err(HistoryError::Open)?;
        Self::new(BufReader::with_capacity(1 << 20, file))
    }
}

impl<R: BufRead> HistoryReader<R> {
    /// Reads and checks the two header lines.
    pub fn new(input: R) -> Result<Self, HistoryError> {
        let mut r = Self {
            input: Input::Text(input),
            header: Header::default(),
            format: HistoryFormat::Text,
            line: 0,
            buf: Vec::with_capacity(128),
            ops: 0,
            complete: false,
        };
        if !r.read_line()? {
            return Err(malformed(1, "empty file: expected the history header"));
        }
        (r.header, r.format) = parse_header(&r.buf).map_err(|reason| malformed(1, reason))?;
        if r.format == HistoryFormat::Binary {
            let Input::Text(raw) = std::mem::replace(&mut r.input, Input::Switching) else {
                unreachable!("the header is read from text input");
            };
            let stream =
                binary::decompress(raw).map_err(|error| HistoryError::Io { line: 2, error })?;
            r.input = Input::Binary(Box::new(binary::Decoder::new(
                BufReader::with_capacity(1 << 16, stream),
                r.header.client,
            )));
            // As in `kv-check dump`'s rendering: the ops start on line 3.
            r.line = 2;
            return Ok(r);
        }
        if !r.read_line()? || r.buf != COLUMNS.as_bytes() {
            return Err(malformed(
                2,
                format!("expected the column line '{COLUMNS}'"),
            ));
        }
        Ok(r)
    }

    /// The client id from the header.
    pub fn client(&self) -> u32 {
        self.header.client
    }

    /// The writer's boot id ([`boot_id`]), when the header has one.
    pub fn boot(&self) -> Option<&str> {
        self.header.boot.as_deref()
    }

    /// The whole header line, parsed.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file's encoding.
    pub fn format(&self) -> HistoryFormat {
        self.format
    }

    /// Number of the line last read: after [`Self::next_op`] returned an op, its line.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Whether the end line was seen; meaningful once [`Self::next_op`] returned `None`.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The next op, or `None` at the end of the file.
    pub fn next_op(&mut self) -> Result<Option<HistoryOp>, HistoryError> {
        if let Input::Binary(decoder) = &mut self.input {
            let line = self.line + 1;
            let next = decoder
                .next_record()
                .map_err(|reason| malformed(line, reason))?;
            return match (next, self.complete) {
                (binary::Next::Eof, _) => Ok(None),
                (_, true) => Err(malformed(line, "data after the end record")),
                (binary::Next::Op(op), false) => {
                    self.line = line;
                    self.ops += 1;
                    Ok(Some(op))
                }
                (binary::Next::End(count), false) => {
                    if count != self.ops {
                        return Err(malformed(
                            line,
                            format!(
                                "end record counts {count} ops but the file has {}",
                                self.ops
                            ),
                        ));
                    }
                    self.complete = true;
                    self.next_op()
                }
            };
        }
        if self.complete {
            // Nothing may follow the end line.
            return match self.read_line()? {
                false => Ok(None),
                true => Err(malformed(self.line, "data after the end line")),
            };
        }
        if !self.read_line()? {
            return Ok(None);
        }
        if let Some(count) = self.buf.strip_prefix(END_PREFIX.as_bytes()) {
            let count = parse_u64(count).ok_or_else(|| malformed(self.line, "bad end line"))?;
            if count != self.ops {
                return Err(malformed(
                    self.line,
                    format!("end line counts {count} ops but the file has {}", self.ops),
                ));
            }
            self.complete = true;
            return self.next_op();
        }
        let op = parse_row(&self.buf).map_err(|reason| malformed(self.line, reason))?;
        self.ops += 1;
        Ok(Some(op))
    }

    /// Reads the next line into `buf` without its line ending; false at EOF.
    fn read_line(&mut self) -> Result<bool, HistoryError> {
        self.buf.clear();
        let line = self.line + 1;
        let Input::Text(input) = &mut self.input else {
            return Ok(false);
        };
        let n = input
            .read_until(b'\n', &mut self.buf)
            .map_err(|error| HistoryError::Io { line, error })?;
        if n == 0 {
            return Ok(false);
        }
        self.line = line;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        Ok(true)
    }
}

impl<R: BufRead> Iterator for HistoryReader<R> {
    type Item = Result<HistoryOp, HistoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_op().transpose()
    }
}

/// A whole history file in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    pub client: u32,
    pub ops: Vec<HistoryOp>,
    /// The end line was present.
    pub complete: bool,
}

/// Reads a whole history file (for tools and tests; the checker streams).
pub fn read_history(path: impl AsRef<Path>) -> Result<History, HistoryError> {
    let mut r = HistoryReader::open(path)?;
    let mut ops = Vec::new();
    while let Some(op) = r.next_op()? {
        ops.push(op);
    }
    Ok(History {
        client: r.client(),
        ops,
        complete: r.is_complete(),
    })
}

/// Parses a header line; `boot`, `preload` and `run` are optional.
fn parse_header(line: &[u8]) -> Result<(Header, HistoryFormat), String> {
    let bad = || format!("expected the header '{MAGIC} client=<id> clock={CLOCK}'");
    let text = std::str::from_utf8(line).map_err(|_| bad())?;
    let (format, rest) = match (text.strip_prefix(MAGIC), text.strip_prefix(MAGIC_V2)) {
        (Some(rest), _) => (HistoryFormat::Text, rest),
        (_, Some(rest)) => (HistoryFormat::Binary, rest),
        _ => return Err(bad()),
    };
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(bad());
    }
    let (mut client, mut clock, mut codec) = (None, None, None);
    let mut header = Header::default();
    for field in rest.split_ascii_whitespace() {
        match field.split_once('=') {
            Some(("client", v)) => client = Some(v.parse::<u32>().map_err(|_| bad())?),
            Some(("clock", v)) => clock = Some(v),
            Some(("boot", v)) => header.boot = Some(v.to_string()),
            Some(("preload", v)) => {
                header.preload = Some(
                    v.parse()
                        .map_err(|_| format!("preload: '{v}' is not a number"))?,
                )
            }
            Some(("run", v)) => header.run = Some(v.to_string()),
            Some(("codec", v)) => codec = Some(v),
            // Unknown fields are for later versions of the writer.
            _ => {}
        }
    }
    if format == HistoryFormat::Binary && codec != Some(binary::CODEC) {
        return Err(format!(
            "a v2 history needs codec={} (got {})",
            binary::CODEC,
            codec.unwrap_or("none")
        ));
    }
    match (client, clock) {
        (Some(c), Some(CLOCK)) => Ok((
            Header {
                client: c,
                ..header
            },
            format,
        )),
        (Some(_), Some(other)) => Err(format!("unsupported clock '{other}' (expected {CLOCK})")),
        _ => Err(bad()),
    }
}

/// Parses one CSV row; the error names the column at fault.
fn parse_row(line: &[u8]) -> Result<HistoryOp, String> {
    let mut fields = line.split(|&c| c == b',');
    let mut next = |name: &'static str| {
        fields
            .next()
            .ok_or_else(|| format!("missing column '{name}' (expected {COLUMNS})"))
    };
    let number = |name: &'static str, v: &[u8]| {
        parse_u64(v).ok_or_else(|| format!("{name}: '{}' is not a number", lossy(v)))
    };
    let thread = next("thread")?;
    let thread = u32::try_from(number("thread", thread)?)
        .map_err(|_| format!("thread: '{}' is out of range", lossy(thread)))?;
    let seq = number("seq", next("seq")?)?;
    let kind = next("kind")?;
    let key = number("key", next("key")?)?;
    let value = next("value")?;
    let action = match kind {
        b"get" => Action::Get(match value {
            b"init" => ReadValue::Init,
            b"none" => ReadValue::Absent,
            b"other" => ReadValue::Other,
            b"-" => ReadValue::NotAValue,
            v => match v.strip_prefix(b"init:") {
                Some(k) => ReadValue::InitOf(
                    parse_u64(k)
                        .ok_or_else(|| format!("value: '{}': bad key after init:", lossy(v)))?,
                ),
                None => ReadValue::Written(parse_value_id(v).ok_or_else(|| {
                    format!(
                        "value: '{}' is not client.thread.seq, init, init:KEY, none, other or -",
                        lossy(v)
                    )
                })?),
            },
        }),
        b"put" => Action::Put(parse_value_id(value).ok_or_else(|| {
            format!(
                "value: a put writes client.thread.seq, got '{}'",
                lossy(value)
            )
        })?),
        k => return Err(format!("kind: '{}' is neither get nor put", lossy(k))),
    };
    let invoke_ns = number("invoke_ns", next("invoke_ns")?)?;
    let complete_ns = number("complete_ns", next("complete_ns")?)?;
    let outcome = match next("outcome")? {
        b"ok" => Outcome::Ok,
        b"unknown" => Outcome::Unknown,
        b"wrong-kind" => Outcome::WrongKind,
        o => {
            return Err(format!(
                "outcome: '{}' is not ok, unknown or wrong-kind",
                lossy(o)
            ))
        }
    };
    // '-' (no value) is what a get read when no value came back: no reply,
    // or one of the wrong kind. (Older writers put other values there.)
    if action == Action::Get(ReadValue::NotAValue) && outcome == Outcome::Ok {
        return Err("value: '-' (no value) cannot be what an ok get read".into());
    }
    if fields.next().is_some() {
        return Err(format!("too many columns (expected {COLUMNS})"));
    }
    // An unknown op's completion is only when the client gave up: not checked.
    if outcome != Outcome::Unknown && complete_ns < invoke_ns {
        return Err(format!(
            "complete_ns {complete_ns} is before invoke_ns {invoke_ns}"
        ));
    }
    Ok(HistoryOp {
        thread,
        seq,
        key,
        action,
        invoke_ns,
        complete_ns,
        outcome,
    })
}

/// Bytes for an error message, cut short: a corrupt line may be huge.
fn lossy(v: &[u8]) -> String {
    let cut = &v[..v.len().min(40)];
    String::from_utf8_lossy(cut).into_owned()
}

/// A plain decimal u64: digits only, no sign, no overflow.
#[inline]
fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &c| {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

fn parse_value_id(v: &[u8]) -> Option<ValueId> {
    let mut parts = v.split(|&c| c == b'.');
    let client = u32::try_from(parse_u64(parts.next()?)?).ok()?;
    let thread = u32::try_from(parse_u64(parts.next()?)?).ok()?;
    let seq = parse_u64(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    Some(ValueId {
        client,
        thread,
        seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops() -> Vec<HistoryOp> {
        let id = |seq| ValueId {
            client: 3,
            thread: 0,
            seq,
        };
        let op = |thread, seq, key, action, outcome| HistoryOp {
            thread,
            seq,
            key,
            action,
            invoke_ns: 1000 + seq % 1000,
            complete_ns: 1900 + seq % 1000,
            outcome,
        };
        vec![
            op(0, 0, 4004, Action::Put(id(0)), Outcome::Ok),
            op(1, 0, 4004, Action::Get(ReadValue::Init), Outcome::Ok),
            op(1, 1, 17, Action::Get(ReadValue::Absent), Outcome::Ok),
            op(
                1,
                2,
                17,
                Action::Get(ReadValue::NotAValue),
                Outcome::Unknown,
            ),
            op(
                u32::MAX,
                u64::MAX,
                u64::MAX,
                Action::Get(ReadValue::Written(ValueId {
                    client: u32::MAX,
                    thread: 7,
                    seq: u64::MAX,
                })),
                Outcome::Ok,
            ),
            op(0, 1, 0, Action::Put(id(1)), Outcome::Unknown),
            op(2, 0, 8, Action::Get(ReadValue::InitOf(9)), Outcome::Ok),
            op(
                2,
                1,
                8,
                Action::Get(ReadValue::NotAValue),
                Outcome::WrongKind,
            ),
            op(2, 2, 8, Action::Put(id(2)), Outcome::WrongKind),
        ]
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("kvlab-history-{}-{name}", std::process::id()))
    }

    #[test]
    fn round_trips_through_a_file() {
        for (name, format) in [
            ("round-trip.csv", HistoryFormat::Text),
            ("round-trip.hist", HistoryFormat::Binary),
        ] {
            let path = temp_path(name);
            let ops = ops();
            let mut w = HistoryWriter::new(&path, 3).unwrap();
            w.record(&ops[0]).unwrap();
            w.record_all(&ops[1..]).unwrap();
            assert_eq!(w.ops(), ops.len() as u64);
            w.finish().unwrap();
            // The header names this boot of this machine.
            let r = HistoryReader::open(&path).unwrap();
            assert_eq!(r.format(), format);
            let boot = boot_id().expect("Linux has a boot id");
            assert_eq!(r.boot(), Some(boot.as_str()));
            let h = read_history(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            assert_eq!(h.client, 3);
            assert!(h.complete, "{name}");
            assert_eq!(h.ops, ops, "{name}");
        }
    }

    /// A client batch as the client records it: one thread, shared times,
    /// consecutive seqs, YCSB-B-like values.
    fn batch(thread: u32, first_seq: u64, t: u64) -> Vec<HistoryOp> {
        (0..64)
            .map(|i| {
                let seq = first_seq + i;
                let key = (seq * 7919) % 1_000_000;
                let action = match seq % 20 {
                    0 => Action::Put(ValueId {
                        client: 1,
                        thread,
                        seq,
                    }),
                    1..=5 => Action::Get(ReadValue::Written(ValueId {
                        client: 0,
                        thread: 3,
                        seq: seq / 2,
                    })),
                    _ => Action::Get(ReadValue::Init),
                };
                HistoryOp {
                    thread,
                    seq,
                    key,
                    action,
                    invoke_ns: t,
                    complete_ns: t + 150_000,
                    outcome: Outcome::Ok,
                }
            })
            .collect()
    }

    #[test]
    fn binary_history_is_compact_and_streams_line_numbers() {
        let path = temp_path("compact.hist");
        let mut w = HistoryWriter::new(&path, 1).unwrap();
        let mut want = Vec::new();
        for b in 0..2_000u64 {
            let ops = batch((b % 4) as u32, b / 4 * 64, 1_000_000_000 + b * 40_000);
            w.record_all(&ops).unwrap();
            want.extend(ops);
        }
        w.finish().unwrap();
        let bytes = std::fs::metadata(&path).unwrap().len();
        let mut r = HistoryReader::open(&path).unwrap();
        let mut got = Vec::new();
        while let Some(op) = r.next_op().unwrap() {
            // Line N of op N-2, as in the text rendering.
            assert_eq!(r.line(), got.len() as u64 + 3);
            got.push(op);
        }
        assert!(r.is_complete());
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got, want);
        let per_op = bytes as f64 / want.len() as f64;
        assert!(per_op <= 10.0, "{per_op:.2} bytes an op");
    }

    #[test]
    fn a_cut_binary_history_is_not_complete_or_is_refused() {
        let path = temp_path("cut.hist");
        let mut w = HistoryWriter::new(&path, 1).unwrap();
        for b in 0..200u64 {
            w.record_all(&batch(0, b * 64, b * 1000)).unwrap();
        }
        w.finish().unwrap();
        let full = std::fs::read(&path).unwrap();
        for cut in [full.len() - 1, full.len() / 2, 120] {
            std::fs::write(&path, &full[..cut]).unwrap();
            let mut r = HistoryReader::open(&path).unwrap();
            let ended = loop {
                match r.next_op() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break None,
                    Err(e) => break Some(e.to_string()),
                }
            };
            // Either an error naming the line, or a plain end without the end record.
            match ended {
                None => assert!(!r.is_complete(), "cut at {cut} looked complete"),
                Some(e) => assert!(e.starts_with("line ") && !e.contains('\n'), "{e}"),
            }
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn header_records_preload_and_run() {
        let path = temp_path("header");
        let header = Header {
            client: 4,
            boot: boot_id(),
            preload: Some(1000),
            run: Some(run_id_of(&[7, 3])),
        };
        HistoryWriter::create(&path, &header)
            .unwrap()
            .finish()
            .unwrap();
        let r = HistoryReader::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(r.header(), &header);
        // Order of the servers does not matter; their identity does.
        assert_eq!(run_id_of(&[3, 7]), run_id_of(&[7, 3]));
        assert_ne!(run_id_of(&[3, 7]), run_id_of(&[3, 8]));
        assert_eq!(run_id_of(&[1]).len(), 16);
    }

    #[test]
    fn encodes_the_documented_row() {
        let mut row = Vec::new();
        ops()[0].encode(&mut row);
        assert_eq!(row, b"0,0,put,4004,3.0.0,1000,1900,ok\n");
        row.clear();
        ops()[2].encode(&mut row);
        assert_eq!(row, b"1,1,get,17,none,1001,1901,ok\n");
        row.clear();
        ops()[6].encode(&mut row);
        assert_eq!(row, b"2,0,get,8,init:9,1000,1900,ok\n");
        row.clear();
        ops()[7].encode(&mut row);
        assert_eq!(row, b"2,1,get,8,-,1001,1901,wrong-kind\n");
    }

    #[test]
    fn parses_the_module_doc_example() {
        let text = "# kvlab-history v1 client=3 clock=CLOCK_MONOTONIC\n\
                    thread,seq,kind,key,value,invoke_ns,complete_ns,outcome\n\
                    0,0,put,4004,3.0.0,1000,1900,ok\n\
                    1,0,get,4004,init,1200,2100,ok\n\
                    1,1,get,17,none,2200,2900,ok\n\
                    0,1,put,17,3.0.1,2000,2000,unknown\n\
                    # end ops=4\n";
        let mut r = HistoryReader::new(text.as_bytes()).unwrap();
        assert_eq!(r.boot(), None, "older files have no boot id");
        let ops: Vec<_> = r.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(ops.len(), 4);
        assert!(r.is_complete());
        assert_eq!(ops[3].outcome, Outcome::Unknown);
    }

    #[test]
    fn unfinished_file_is_not_complete() {
        let text = format!("{MAGIC} client=1 clock={CLOCK}\n{COLUMNS}\n0,0,get,1,init,5,6,ok");
        let mut r = HistoryReader::new(text.as_bytes()).unwrap();
        assert!(r.next_op().unwrap().is_some());
        assert!(r.next_op().unwrap().is_none());
        assert!(!r.is_complete());
    }

    fn error_of(body: &str) -> String {
        let text =
            format!("{MAGIC} client=1 clock={CLOCK}\n{COLUMNS}\n0,0,get,1,init,5,6,ok\n{body}");
        let mut r = HistoryReader::new(text.as_bytes()).unwrap();
        loop {
            match r.next_op() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("{body:?} was accepted"),
                Err(e) => return e.to_string(),
            }
        }
    }

    #[test]
    fn malformed_rows_name_their_line() {
        for (body, want) in [
            ("0,1,gett,1,init,5,6,ok\n", "line 4: kind: 'gett'"),
            ("0,1,get,1,init,5,6\n", "line 4: missing column 'outcome'"),
            ("0,1,get,1,init,5,6,ok,9\n", "line 4: too many columns"),
            (
                "0,1,get,x1,init,5,6,ok\n",
                "line 4: key: 'x1' is not a number",
            ),
            (
                "0,1,get,1,init,5,99999999999999999999999,ok\n",
                "line 4: complete_ns:",
            ),
            ("0,1,put,1,init,5,6,ok\n", "line 4: value: a put writes"),
            ("0,1,get,1,1.2,5,6,ok\n", "line 4: value: '1.2'"),
            (
                "0,1,get,1,init,7,6,ok\n",
                "line 4: complete_ns 6 is before invoke_ns 7",
            ),
            ("0,1,get,1,init,5,6,maybe\n", "line 4: outcome: 'maybe'"),
            (
                "0,1,get,1,-,5,6,ok\n",
                "line 4: value: '-' (no value) cannot",
            ),
            (
                "0,1,get,1,init:x,5,6,ok\n",
                "line 4: value: 'init:x': bad key",
            ),
            (
                "0,1,put,1,1.0.1,7,6,wrong-kind\n",
                "line 4: complete_ns 6 is before",
            ),
            (
                "4294967296,1,get,1,init,5,6,ok\n",
                "line 4: thread: '4294967296' is out of range",
            ),
            ("\n", "line 4: thread: '' is not a number"),
            (
                "0,1,get,1,init,5,6,ok\n# end ops=1\n",
                "line 5: end line counts 1 ops but the file has 2",
            ),
            (
                "# end ops=1\n0,1,get,1,init,5,6,ok\n",
                "line 5: data after the end line",
            ),
        ] {
            let got = error_of(body);
            assert!(
                got.starts_with(want),
                "{body:?}: got {got:?}, want {want:?}"
            );
            assert!(!got.contains('\n'), "{got:?} is not one line");
        }
    }

    #[test]
    fn bad_headers_are_rejected() {
        let err = |text: &str| match HistoryReader::new(text.as_bytes()) {
            Ok(_) => panic!("{text:?} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err("").starts_with("line 1: empty file"));
        assert!(err("thread,seq\n").starts_with("line 1: expected the header"));
        assert!(err(&format!("{MAGIC} client=x clock={CLOCK}\n")).starts_with("line 1:"));
        assert!(err(&format!("{MAGIC} client=1 clock=REALTIME\n")).contains("unsupported clock"));
        assert!(err(&format!("{MAGIC} client=1 clock={CLOCK}\nthread\n")).starts_with("line 2:"));
    }

    #[test]
    fn read_value_from_stored_bytes() {
        use crate::value::{filler_value, preload_value, unique_value};
        let id = ValueId {
            client: 1,
            thread: 2,
            seq: 3,
        };
        assert_eq!(ReadValue::from_stored(b"9", None), ReadValue::Absent);
        assert_eq!(
            ReadValue::from_stored(b"9", Some(&preload_value(b"9"))),
            ReadValue::Init
        );
        assert_eq!(
            ReadValue::from_stored(b"10", Some(&preload_value(b"9"))),
            ReadValue::InitOf(9)
        );
        assert_eq!(
            ReadValue::from_stored(b"9", Some(&unique_value(id))),
            ReadValue::Written(id)
        );
        assert_eq!(
            ReadValue::from_stored(b"9", Some(&filler_value())),
            ReadValue::Other
        );
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a);
    }
}
