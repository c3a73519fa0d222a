//! The experiments record: `experiments/log.csv` (one row per run, append
//! only) and the per-run folder `experiments/runs/<run_id>/`.
//!
//! This module is the only place that knows that layout and the column
//! order. Writers (run orchestration, bench) call [`append_run`] and the
//! [`RunDir`] path helpers; readers (kv-dash, scripts) call [`read_log`] and
//! [`read_timeseries`]. Plotting and profiling live elsewhere.
//!
//! Schema rule: columns are only ever added at the end, with
//! [`SCHEMA_VERSION`] bumped. Each row carries its own version, because an
//! append-only file keeps the header it was created with; the reader therefore
//! maps fields by position, accepts any version up to the current one
//! (missing trailing fields read as `None`), and rejects a newer one.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::stats::Role;

/// Version of the log row written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// The log's columns in file order. Append only; see the module docs.
pub const COLUMNS: &[&str] = &[
    "schema_version",
    "run_id",
    "started_at",
    "duration_s",
    "git_commit",
    "git_dirty",
    "backend",
    "hosts",
    "servers",
    "clients",
    "threads",
    "connections",
    "batch",
    "window",
    "workload",
    "theta",
    "preload",
    "seed",
    "note",
    "status",
    "total_ops_per_s",
    "client_ops_per_s",
    "p50_us",
    "p99_us",
    "p999_us",
    "generated_ops",
    "completed_ops",
    "server_cpu_percent",
    "client_cpu_percent",
    "server_peak_rss_bytes",
    "client_peak_rss_bytes",
    "net_bytes_per_s",
    "tag",
];

/// Number of columns each schema version has (index = version - 1).
const COLUMNS_PER_VERSION: &[usize] = &[33];

/// The log file's name inside the experiments directory.
pub const LOG_FILE: &str = "log.csv";
/// The folder of per-run folders inside the experiments directory.
pub const RUNS_DIR: &str = "runs";
/// Columns of `timeseries.csv`, in file order.
pub const TIMESERIES_COLUMNS: &[&str] = &[
    "t_s",
    "node",
    "role",
    "ops_per_s",
    "gets_per_s",
    "puts_per_s",
    "cpu_percent",
    "rss_bytes",
    "net_bytes_per_s",
    "p50_us",
    "p99_us",
];

/// Everything that can go wrong reading or writing the experiments record.
#[derive(Debug, Error)]
pub enum RunLogError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error(
        "{}:{line}: schema_version {found} is newer than this build understands \
         (up to {supported}); update kvlab to read this log",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        line: u64,
        found: u32,
        supported: u32,
    },
}

impl RunLogError {
    fn io(path: &Path, source: io::Error) -> Self {
        RunLogError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn malformed(path: &Path, line: u64, message: impl Into<String>) -> Self {
        RunLogError::Malformed {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// True when the file simply does not exist (no run recorded yet).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RunLogError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// How a run ended. A failed run is recorded with its reason and never
/// with a throughput figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Ok,
    Failed(String),
}

impl RunStatus {
    pub fn is_ok(&self) -> bool {
        matches!(self, RunStatus::Ok)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunStatus::Ok => f.write_str("ok"),
            RunStatus::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "ok" {
            return Ok(RunStatus::Ok);
        }
        match s.strip_prefix("failed") {
            Some(rest) => Ok(RunStatus::Failed(
                rest.trim_start_matches(':').trim().to_string(),
            )),
            None => Err(format!("status '{s}' is neither 'ok' nor 'failed: reason'")),
        }
    }
}

impl Serialize for RunStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A count that each client of a run has (generator threads): written as
/// one number when every client has the same (`4`, as older rows hold it),
/// else one per client in node order (`4;2`). Empty = unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PerClient(Vec<u32>);

impl PerClient {
    /// From each client's value in node order; equal values fold to one.
    pub fn of(values: impl IntoIterator<Item = u32>) -> Self {
        let mut v: Vec<u32> = values.into_iter().collect();
        if v.windows(2).all(|w| w[0] == w[1]) {
            v.truncate(1);
        }
        PerClient(v)
    }

    /// The one value every client has, if they agree.
    pub fn uniform(&self) -> Option<u32> {
        match self.0.as_slice() {
            [v] => Some(*v),
            _ => None,
        }
    }

    /// The recorded values (one, or one per client).
    pub fn values(&self) -> &[u32] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for PerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join(";"))
    }
}

impl FromStr for PerClient {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(PerClient::default());
        }
        s.split(';')
            .map(|p| {
                p.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("'{s}' is not a number or numbers separated by ';'"))
            })
            .collect::<Result<Vec<u32>, String>>()
            .map(PerClient)
    }
}

// JSON: a number when uniform (as summary.json files before per-client
// counts hold it), a `4;2` string when not, null when unknown.
impl Serialize for PerClient {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [] => s.serialize_none(),
            [v] => s.serialize_u32(*v),
            _ => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for PerClient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            N(u32),
            S(String),
        }
        match Option::<Repr>::deserialize(d)? {
            None => Ok(PerClient::default()),
            Some(Repr::N(v)) => Ok(PerClient(vec![v])),
            Some(Repr::S(s)) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// One row of `experiments/log.csv`. Numbers are `None` when unknown
/// (written as an empty field). Units are in the names; see
/// `experiments/README.md` for each column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Version the row was written with; [`append_run`] always writes
    /// [`SCHEMA_VERSION`] whatever this says.
    pub schema_version: u32,
    pub run_id: String,
    /// UTC, RFC 3339 (`2025-01-31T12:00:00Z`), so text order is time order.
    pub started_at: String,
    pub duration_s: Option<f64>,
    pub git_commit: String,
    pub git_dirty: Option<bool>,
    /// Where processes ran: `local`, `ssh`, ...
    pub backend: String,
    /// Hosts used, separated by `;`.
    pub hosts: String,
    pub servers: Option<u32>,
    pub clients: Option<u32>,
    /// Generator threads of each client (one number when all agree).
    pub threads: PerClient,
    /// Connections per client per server.
    pub connections: Option<u32>,
    /// Ops per batch RPC.
    pub batch: Option<u32>,
    /// Batches in flight per server connection.
    pub window: Option<u32>,
    pub workload: String,
    pub theta: Option<f64>,
    /// Keys loaded before the measured window.
    pub preload: Option<u64>,
    pub seed: Option<u64>,
    pub note: String,
    pub status: RunStatus,
    /// Sum over servers of each server's median ops/s (the course's method).
    pub total_ops_per_s: Option<f64>,
    /// Completed ops per second as the clients saw them.
    pub client_ops_per_s: Option<f64>,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub p999_us: Option<u64>,
    pub generated_ops: Option<u64>,
    pub completed_ops: Option<u64>,
    /// CPU of all server processes together (100 = one core), mean over the run.
    pub server_cpu_percent: Option<f64>,
    pub client_cpu_percent: Option<f64>,
    /// Largest peak RSS of any server process.
    pub server_peak_rss_bytes: Option<u64>,
    pub client_peak_rss_bytes: Option<u64>,
    /// Bytes read plus written per second, summed over server processes.
    pub net_bytes_per_s: Option<f64>,
    pub tag: String,
}

impl RunRecord {
    /// An empty record with a fresh run id and start time `now`.
    pub fn new(started: SystemTime) -> Self {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            run_id: new_run_id(started),
            started_at: rfc3339_utc(started),
            duration_s: None,
            git_commit: String::new(),
            git_dirty: None,
            backend: String::new(),
            hosts: String::new(),
            servers: None,
            clients: None,
            threads: PerClient::default(),
            connections: None,
            batch: None,
            window: None,
            workload: String::new(),
            theta: None,
            preload: None,
            seed: None,
            note: String::new(),
            status: RunStatus::Ok,
            total_ops_per_s: None,
            client_ops_per_s: None,
            p50_us: None,
            p99_us: None,
            p999_us: None,
            generated_ops: None,
            completed_ops: None,
            server_cpu_percent: None,
            client_cpu_percent: None,
            server_peak_rss_bytes: None,
            client_peak_rss_bytes: None,
            net_bytes_per_s: None,
            tag: String::new(),
        }
    }

    /// The row's fields in [`COLUMNS`] order, as written to the file.
    pub fn to_fields(&self) -> Vec<String> {
        fn o<T: ToString>(v: &Option<T>) -> String {
            v.as_ref().map(T::to_string).unwrap_or_default()
        }
        fn of(v: &Option<f64>) -> String {
            // NaN or infinity is not a measurement: leave the field empty.
            v.filter(|x| x.is_finite())
                .map(|x| x.to_string())
                .unwrap_or_default()
        }
        let failed = !self.status.is_ok();
        // A failed run never carries a throughput number, whatever the caller set.
        let tput = |v: &Option<f64>| if failed { String::new() } else { of(v) };
        let status = match &self.status {
            RunStatus::Ok => "ok".to_string(),
            // Keep the reason on one line so tables and greps stay simple.
            RunStatus::Failed(r) => format!("failed: {}", one_line(r)),
        };
        vec![
            SCHEMA_VERSION.to_string(),
            self.run_id.clone(),
            self.started_at.clone(),
            of(&self.duration_s),
            self.git_commit.clone(),
            o(&self.git_dirty),
            self.backend.clone(),
            self.hosts.clone(),
            o(&self.servers),
            o(&self.clients),
            self.threads.to_string(),
            o(&self.connections),
            o(&self.batch),
            o(&self.window),
            self.workload.clone(),
            of(&self.theta),
            o(&self.preload),
            o(&self.seed),
            self.note.clone(),
            status,
            tput(&self.total_ops_per_s),
            tput(&self.client_ops_per_s),
            o(&self.p50_us),
            o(&self.p99_us),
            o(&self.p999_us),
            o(&self.generated_ops),
            o(&self.completed_ops),
            of(&self.server_cpu_percent),
            of(&self.client_cpu_percent),
            o(&self.server_peak_rss_bytes),
            o(&self.client_peak_rss_bytes),
            of(&self.net_bytes_per_s),
            self.tag.clone(),
        ]
    }

    /// Parses one row given by position; `fields` may be shorter than
    /// [`COLUMNS`] (older schema). Errors name the column.
    pub fn from_fields(fields: &[&str]) -> Result<Self, String> {
        let get = |i: usize| fields.get(i).map(|s| s.trim()).unwrap_or("");
        let text = |i: usize| fields.get(i).map(|s| s.to_string()).unwrap_or_default();
        fn num<T: FromStr>(fields_i: &str, col: &str) -> Result<Option<T>, String> {
            if fields_i.is_empty() {
                Ok(None)
            } else {
                fields_i
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("column {col}: '{fields_i}' is not a valid number"))
            }
        }
        let n = |i: usize| -> Result<Option<u64>, String> { num(get(i), COLUMNS[i]) };
        let n32 = |i: usize| -> Result<Option<u32>, String> { num(get(i), COLUMNS[i]) };
        let f = |i: usize| -> Result<Option<f64>, String> { num(get(i), COLUMNS[i]) };
        let schema_version: u32 =
            num(get(0), COLUMNS[0])?.ok_or_else(|| "column schema_version is empty".to_string())?;
        let git_dirty = match get(5) {
            "" => None,
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            other => return Err(format!("column git_dirty: '{other}' is not true/false")),
        };
        let run_id = text(1);
        if run_id.trim().is_empty() {
            return Err("column run_id is empty".to_string());
        }
        // Fields parse in column order, so the first bad column is the one named.
        let mut r = RunRecord {
            schema_version,
            run_id,
            started_at: text(2),
            duration_s: f(3)?,
            git_commit: text(4),
            git_dirty,
            backend: text(6),
            hosts: text(7),
            servers: n32(8)?,
            clients: n32(9)?,
            threads: get(10)
                .parse()
                .map_err(|e| format!("column threads: {e}"))?,
            connections: n32(11)?,
            batch: n32(12)?,
            window: n32(13)?,
            // Rows from before the name was normalized read as one workload.
            workload: crate::workload::Workload::canonical(&text(14)),
            theta: f(15)?,
            preload: n(16)?,
            seed: n(17)?,
            note: text(18),
            status: get(19).parse().map_err(|e| format!("column status: {e}"))?,
            total_ops_per_s: f(20)?,
            client_ops_per_s: f(21)?,
            p50_us: n(22)?,
            p99_us: n(23)?,
            p999_us: n(24)?,
            generated_ops: n(25)?,
            completed_ops: n(26)?,
            server_cpu_percent: f(27)?,
            client_cpu_percent: f(28)?,
            server_peak_rss_bytes: n(29)?,
            client_peak_rss_bytes: n(30)?,
            net_bytes_per_s: f(31)?,
            tag: text(32),
        };
        if !r.status.is_ok() {
            // Hand-edited logs: a failed run still shows no throughput.
            r.total_ops_per_s = None;
            r.client_ops_per_s = None;
        }
        Ok(r)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Path of the log inside an experiments directory.
pub fn log_path(experiments_dir: &Path) -> PathBuf {
    experiments_dir.join(LOG_FILE)
}

/// Appends one row to `<experiments_dir>/log.csv`, creating the directory
/// and the file (with its header) when needed.
///
/// The whole row is formatted first and written with one `write_all` while
/// holding an exclusive `flock`, so runs finishing at the same moment (threads
/// or processes) each land as an intact line; the header check happens under
/// the same lock, so exactly one writer creates it.
pub fn append_run(experiments_dir: &Path, record: &RunRecord) -> Result<(), RunLogError> {
    let path = log_path(experiments_dir);
    fs::create_dir_all(experiments_dir).map_err(|e| RunLogError::io(experiments_dir, e))?;
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| RunLogError::io(&path, e))?;
    let _lock = FileLock::exclusive(&file).map_err(|e| RunLogError::io(&path, e))?;

    let len = file
        .metadata()
        .map_err(|e| RunLogError::io(&path, e))?
        .len();
    let mut buf = Vec::with_capacity(512);
    if len == 0 {
        buf.extend(csv_line(COLUMNS.iter().copied()));
    } else if !ends_with_newline(&file, len) {
        // A previous writer died mid-line: start ours on a fresh line so it
        // stays readable (the torn line is reported by the reader).
        buf.push(b'\n');
    }
    let fields = record.to_fields();
    buf.extend(csv_line(fields.iter().map(String::as_str)));
    (&file)
        .write_all(&buf)
        .map_err(|e| RunLogError::io(&path, e))?;
    (&file).flush().map_err(|e| RunLogError::io(&path, e))?;
    Ok(())
}

fn ends_with_newline(file: &File, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut last = [0u8; 1];
    matches!(file.read_at(&mut last, len - 1), Ok(1) if last[0] == b'\n')
}

/// One CSV line (RFC 4180 quoting, `\n` terminator).
fn csv_line<'a>(fields: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let record: csv::StringRecord = fields.collect();
    // Writing into a Vec cannot fail.
    let _ = w.write_record(&record);
    w.into_inner().unwrap_or_default()
}

/// An advisory exclusive lock on an open file, released on drop.
struct FileLock<'a>(&'a File);

impl<'a> FileLock<'a> {
    fn exclusive(file: &'a File) -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: flock on a valid open descriptor has no other preconditions.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(FileLock(file));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above; closing the file would release it anyway.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Reads every row of a log file. Errors carry the file's line number.
pub fn read_log(path: &Path) -> Result<Vec<RunRecord>, RunLogError> {
    let file = File::open(path).map_err(|e| RunLogError::io(path, e))?;
    read_log_from(path, io::BufReader::new(file))
}

/// Like [`read_log`] over any reader; `path` is only used in errors.
pub fn read_log_from(path: &Path, input: impl io::Read) -> Result<Vec<RunRecord>, RunLogError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut first = true;
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(line);
                return Err(RunLogError::malformed(path, line, e.to_string()));
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(line);
        if first {
            first = false;
            if record.get(0) != Some(COLUMNS[0]) {
                return Err(RunLogError::malformed(
                    path,
                    line,
                    "no header: the first line must start with 'schema_version'",
                ));
            }
            continue;
        }
        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim().is_empty()) {
            continue; // blank line
        }
        let version: u32 =
            record.get(0).unwrap_or("").trim().parse().map_err(|_| {
                RunLogError::malformed(path, line, "schema_version is not a number")
            })?;
        if version == 0 {
            return Err(RunLogError::malformed(path, line, "schema_version 0"));
        }
        if version > SCHEMA_VERSION {
            return Err(RunLogError::NewerSchema {
                path: path.to_path_buf(),
                line,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let expected = COLUMNS_PER_VERSION[version as usize - 1];
        if record.len() > expected {
            return Err(RunLogError::malformed(
                path,
                line,
                format!(
                    "{} fields, but schema_version {version} has {expected}",
                    record.len()
                ),
            ));
        }
        let fields: Vec<&str> = record.iter().collect();
        let run = RunRecord::from_fields(&fields)
            .map_err(|msg| RunLogError::malformed(path, line, msg))?;
        out.push(run);
    }
    if first {
        return Err(RunLogError::malformed(path, 1, "empty file: no header"));
    }
    Ok(out)
}

/// Formats a time as UTC RFC 3339 with whole seconds: `2025-01-31T12:00:00Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

fn utc_parts(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, mo, d) = civil_from_days(days);
    (y, mo, d, sod / 3600, sod / 60 % 60, sod % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A new run id, `YYYYmmdd-HHMMSS-xxxx` (UTC start time, 4 random hex
/// digits): sorts by start time, and two runs started in the same second
/// still differ.
pub fn new_run_id(started: SystemTime) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU16, Ordering};
    use std::sync::OnceLock;
    // A random salt per process (RandomState is seeded randomly; pid and
    // clock mixed in) plus a counter: ids made by one process never collide
    // (65,536 per second), ids of two processes collide only if their salts
    // line up within the same second.
    static SALT: OnceLock<u16> = OnceLock::new();
    static COUNTER: AtomicU16 = AtomicU16::new(0);
    let salt = *SALT.get_or_init(|| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        hasher.finish() as u16
    });
    let (y, mo, d, h, mi, s) = utc_parts(started);
    let tag = salt.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{tag:04x}")
}

/// Kind of profile file written for each process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    /// Flamegraph drawing.
    Svg,
    /// pprof protobuf.
    Pb,
    /// Collapsed stacks, one `frame;frame;frame count` per line.
    Folded,
}

impl ProfileKind {
    pub fn extension(self) -> &'static str {
        match self {
            ProfileKind::Svg => "svg",
            ProfileKind::Pb => "pb",
            ProfileKind::Folded => "folded",
        }
    }
}

/// The profile files found for one process of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessProfile {
    pub role: Role,
    pub node: String,
    pub folded: Option<PathBuf>,
    pub svg: Option<PathBuf>,
    pub pb: Option<PathBuf>,
}

impl ProcessProfile {
    /// `<role>-<node>`, the process's name in file names and in kv-dash.
    pub fn name(&self) -> String {
        format!("{}-{}", self.role.name(), self.node)
    }
}

/// The folder of one run: `<experiments>/runs/<run_id>/`. Paths only; the
/// files are written by whoever produces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn new(experiments_dir: &Path, run_id: &str) -> Self {
        RunDir {
            path: experiments_dir.join(RUNS_DIR).join(run_id),
        }
    }

    /// Creates the folder and its `logs/` subfolder.
    pub fn create(&self) -> Result<(), RunLogError> {
        let logs = self.logs_dir();
        fs::create_dir_all(&logs).map_err(|e| RunLogError::io(&logs, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every flag, versions, host info (free-form JSON).
    pub fn config_json(&self) -> PathBuf {
        self.path.join("config.json")
    }

    /// The run's results ([`RunSummary`]).
    pub fn summary_json(&self) -> PathBuf {
        self.path.join("summary.json")
    }

    /// Per second, per node rates ([`TimeseriesRow`]).
    pub fn timeseries_csv(&self) -> PathBuf {
        self.path.join("timeseries.csv")
    }

    /// Copies of every process's log.
    pub fn logs_dir(&self) -> PathBuf {
        self.path.join("logs")
    }

    /// `<role>-<node>.<ext>`.
    pub fn profile(&self, role: Role, node: &str, kind: ProfileKind) -> PathBuf {
        self.path
            .join(format!("{}-{}.{}", role.name(), node, kind.extension()))
    }

    /// The processes that left at least one profile file, sorted by name
    /// (servers first). An absent folder is no profiles, not an error.
    pub fn profiles(&self) -> Result<Vec<ProcessProfile>, RunLogError> {
        let entries = match fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RunLogError::io(&self.path, e)),
        };
        let mut found: Vec<ProcessProfile> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| RunLogError::io(&self.path, e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            let Some((stem, ext)) = name.rsplit_once('.') else {
                continue;
            };
            let kind = match ext {
                "svg" => ProfileKind::Svg,
                "pb" => ProfileKind::Pb,
                "folded" => ProfileKind::Folded,
                _ => continue,
            };
            let (role, node) = if let Some(n) = stem.strip_prefix("server-") {
                (Role::Server, n)
            } else if let Some(n) = stem.strip_prefix("client-") {
                (Role::Client, n)
            } else {
                continue;
            };
            let idx = match found.iter().position(|p| p.role == role && p.node == node) {
                Some(i) => i,
                None => {
                    found.push(ProcessProfile {
                        role,
                        node: node.to_string(),
                        folded: None,
                        svg: None,
                        pb: None,
                    });
                    found.len() - 1
                }
            };
            let slot = match kind {
                ProfileKind::Svg => &mut found[idx].svg,
                ProfileKind::Pb => &mut found[idx].pb,
                ProfileKind::Folded => &mut found[idx].folded,
            };
            *slot = Some(entry.path());
        }
        found.sort_by(|a, b| {
            (a.role != Role::Server, &a.node).cmp(&(b.role != Role::Server, &b.node))
        });
        Ok(found)
    }
}

/// One line of `timeseries.csv`: one node's rates over one second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeseriesRow {
    /// Seconds since the run started (end of the interval).
    pub t_s: f64,
    /// Node name as in profile file names (`0`, `host1-2`, ...).
    pub node: String,
    pub role: Role,
    pub ops_per_s: f64,
    pub gets_per_s: f64,
    pub puts_per_s: f64,
    /// 100 = one core.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub net_bytes_per_s: f64,
    /// Client: op latency over its last whole second, in us. Empty for
    /// servers, for seconds without completed ops, and in files written
    /// before these columns existed.
    #[serde(default)]
    pub p50_us: Option<u64>,
    #[serde(default)]
    pub p99_us: Option<u64>,
}

/// Writes `timeseries.csv` row by row (header first), so a run that dies
/// midway still leaves what it had.
pub struct TimeseriesWriter {
    path: PathBuf,
    inner: csv::Writer<File>,
}

impl TimeseriesWriter {
    pub fn create(path: &Path) -> Result<Self, RunLogError> {
        let file = File::create(path).map_err(|e| RunLogError::io(path, e))?;
        let inner = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(file);
        Ok(TimeseriesWriter {
            path: path.to_path_buf(),
            inner,
        })
    }

    pub fn write(&mut self, row: &TimeseriesRow) -> Result<(), RunLogError> {
        self.inner
            .serialize(row)
            .map_err(|e| RunLogError::malformed(&self.path, 0, e.to_string()))
    }

    pub fn flush(&mut self) -> Result<(), RunLogError> {
        self.inner
            .flush()
            .map_err(|e| RunLogError::io(&self.path, e))
    }
}

/// Writes a whole `timeseries.csv` at once.
pub fn write_timeseries(path: &Path, rows: &[TimeseriesRow]) -> Result<(), RunLogError> {
    let mut w = TimeseriesWriter::create(path)?;
    for row in rows {
        w.write(row)?;
    }
    w.flush()
}

/// Reads `timeseries.csv`; errors carry the line number.
pub fn read_timeseries(path: &Path) -> Result<Vec<TimeseriesRow>, RunLogError> {
    let file = File::open(path).map_err(|e| RunLogError::io(path, e))?;
    let mut rdr = csv::Reader::from_reader(io::BufReader::new(file));
    let mut out = Vec::new();
    for row in rdr.deserialize() {
        let row: TimeseriesRow = row.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            RunLogError::malformed(path, line, e.to_string())
        })?;
        out.push(row);
    }
    Ok(out)
}

/// One node's figure over a run: the median of its per-second ops/s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub node: String,
    pub role: Role,
    pub median_ops_per_s: f64,
    pub median_cpu_percent: f64,
    pub peak_rss_bytes: u64,
    /// Client: median of its per-second p99 latency, in us (`None` for
    /// servers and for runs recorded without latency columns).
    #[serde(default)]
    pub median_p99_us: Option<u64>,
}

/// Per-node medians from a run's time series, servers first.
pub fn node_medians(rows: &[TimeseriesRow]) -> Vec<NodeSummary> {
    let mut keys: Vec<(Role, &str)> = Vec::new();
    for r in rows {
        if !keys.iter().any(|(role, n)| *role == r.role && *n == r.node) {
            keys.push((r.role, &r.node));
        }
    }
    keys.sort_by(|a, b| (a.0 != Role::Server, a.1).cmp(&(b.0 != Role::Server, b.1)));
    keys.into_iter()
        .map(|(role, node)| {
            let mine: Vec<&TimeseriesRow> = rows
                .iter()
                .filter(|r| r.role == role && r.node == node)
                .collect();
            let ops: Vec<f64> = mine.iter().map(|r| r.ops_per_s).collect();
            let cpu: Vec<f64> = mine.iter().map(|r| r.cpu_percent).collect();
            let p99: Vec<f64> = mine
                .iter()
                .filter_map(|r| r.p99_us)
                .map(|v| v as f64)
                .collect();
            NodeSummary {
                node: node.to_string(),
                role,
                median_ops_per_s: crate::stats::median(&ops).unwrap_or(0.0),
                median_cpu_percent: crate::stats::median(&cpu).unwrap_or(0.0),
                peak_rss_bytes: mine.iter().map(|r| r.rss_bytes).max().unwrap_or(0),
                median_p99_us: crate::stats::median(&p99).map(|v| v as u64),
            }
        })
        .collect()
}

/// `summary.json`: the run's log row plus per-node figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub record: RunRecord,
    pub nodes: Vec<NodeSummary>,
}

/// Writes any serializable value as pretty JSON (config.json, summary.json).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RunLogError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| RunLogError::malformed(path, 0, e.to_string()))?;
    fs::write(path, text + "\n").map_err(|e| RunLogError::io(path, e))
}

/// Reads a JSON file written by [`write_json`].
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RunLogError> {
    let text = fs::read_to_string(path).map_err(|e| RunLogError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| RunLogError::malformed(path, e.line() as u64, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A fresh empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "kvlab-runlog-{name}-{}-{}",
                std::process::id(),
                new_run_id(SystemTime::now())
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn sample(note: &str) -> RunRecord {
        let mut r = RunRecord::new(SystemTime::now());
        r.git_commit = "abc1234".into();
        r.git_dirty = Some(false);
        r.backend = "local".into();
        r.hosts = "localhost".into();
        r.servers = Some(2);
        r.clients = Some(3);
        r.threads = PerClient::of([4]);
        r.batch = Some(64);
        r.workload = "YCSB-A".into();
        r.theta = Some(0.99);
        r.seed = Some(42);
        r.note = note.into();
        r.total_ops_per_s = Some(1_234_567.5);
        r.p99_us = Some(850);
        r
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661); // 2000-02-29
        assert_eq!(rfc3339_utc(t), "2000-02-29T01:01:01Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(rfc3339_utc(t), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn run_ids_sortable_and_distinct() {
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        let a = new_run_id(t);
        assert!(a.starts_with("20241231-235959-"), "{a}");
        assert_eq!(a.len(), "20241231-235959-abcd".len());
        let ids: std::collections::HashSet<String> = (0..200).map(|_| new_run_id(t)).collect();
        // One process never repeats an id.
        assert_eq!(ids.len(), 200);
        assert!(new_run_id(t + Duration::from_secs(1)) > a);
    }

    #[test]
    fn two_appends_give_two_rows_with_distinct_ids() {
        let dir = TempDir::new("two");
        let a = sample("first, with \"quotes\"");
        let mut b = sample("second\nline");
        b.status = RunStatus::Failed("server 1 died".into());
        append_run(&dir.0, &a).unwrap();
        append_run(&dir.0, &b).unwrap();
        let rows = read_log(&log_path(&dir.0)).unwrap();
        assert_eq!(rows.len(), 2);
        assert_ne!(rows[0].run_id, rows[1].run_id);
        assert_eq!(rows[0], a);
        assert_eq!(rows[0].servers, Some(2));
        assert_eq!(rows[0].theta, Some(0.99));
        assert_eq!(rows[1].note, "second\nline");
        assert_eq!(rows[1].status, RunStatus::Failed("server 1 died".into()));
        assert_eq!(
            rows[1].total_ops_per_s, None,
            "failed run carries no number"
        );
        let text = fs::read_to_string(log_path(&dir.0)).unwrap();
        assert_eq!(text.matches("schema_version").count(), 1);
        assert!(text.starts_with(&COLUMNS.join(",")));
    }

    #[test]
    fn concurrent_thread_appends_all_land() {
        let dir = TempDir::new("threads");
        let hs: Vec<_> = (0..8)
            .map(|t| {
                let d = dir.0.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        append_run(&d, &sample(&format!("t{t} i{i} {}", "x".repeat(300)))).unwrap();
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        let rows = read_log(&log_path(&dir.0)).unwrap();
        assert_eq!(rows.len(), 200);
        assert!(rows.iter().all(|r| r.total_ops_per_s == Some(1_234_567.5)));
    }

    /// Child half of `concurrent_process_appends_all_land`: does nothing
    /// unless started by it with the env var set.
    #[test]
    fn child_appender() {
        if let Ok(dir) = std::env::var("KVLAB_RUNLOG_CHILD_DIR") {
            for i in 0..20 {
                append_run(
                    Path::new(&dir),
                    &sample(&format!("pid {} i{i}", std::process::id())),
                )
                .unwrap();
            }
        }
    }

    #[test]
    fn concurrent_process_appends_all_land() {
        let dir = TempDir::new("procs");
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..4)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args(["--exact", "runlog::tests::child_appender", "--nocapture"])
                    .env("KVLAB_RUNLOG_CHILD_DIR", &dir.0)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let rows = read_log(&log_path(&dir.0)).unwrap();
        assert_eq!(rows.len(), 80);
        // Every child's every row landed once, intact (notes are unique).
        let notes: std::collections::HashSet<&str> = rows.iter().map(|r| r.note.as_str()).collect();
        assert_eq!(notes.len(), 80);
    }

    #[test]
    fn old_schema_with_fewer_columns_still_reads() {
        let dir = TempDir::new("old");
        let path = dir.0.join("log.csv");
        // An imagined earlier layout: same leading columns, fewer of them.
        let header = COLUMNS[..21].join(",");
        let row = "1,20240101-000000-abcd,2024-01-01T00:00:00Z,30,deadbee,false,local,localhost,1,1,2,1,32,4,YCSB-B,0.5,1000,7,old run,ok,98765.4";
        fs::write(&path, format!("{header}\n{row}\n")).unwrap();
        let rows = read_log(&path).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].total_ops_per_s, Some(98765.4));
        assert_eq!(rows[0].workload, "YCSB-B");
        assert_eq!(rows[0].p99_us, None);
        assert_eq!(rows[0].tag, "");
    }

    #[test]
    fn newer_schema_and_garbage_are_clear_errors() {
        let dir = TempDir::new("bad");
        let path = dir.0.join("log.csv");
        let header = COLUMNS.join(",");
        fs::write(&path, format!("{header}\n2,20240101-000000-abcd\n")).unwrap();
        let err = read_log(&path).unwrap_err().to_string();
        assert!(
            err.contains(":2:") && err.contains("schema_version 2 is newer"),
            "{err}"
        );

        let mut fields = sample("n").to_fields();
        fields[8] = "two".into();
        fs::write(&path, format!("{header}\n{}", fields.join(","))).unwrap();
        let err = read_log(&path).unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("servers"), "{err}");

        fs::write(&path, "hello,world\n").unwrap();
        assert!(read_log(&path)
            .unwrap_err()
            .to_string()
            .contains("no header"));
        assert!(read_log(&dir.0.join("missing.csv"))
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn torn_last_line_does_not_swallow_the_next_row() {
        let dir = TempDir::new("torn");
        append_run(&dir.0, &sample("a")).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(log_path(&dir.0))
            .unwrap();
        f.write_all(b"1,torn-row").unwrap();
        append_run(&dir.0, &sample("b")).unwrap();
        let text = fs::read_to_string(log_path(&dir.0)).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert!(text.lines().nth(3).unwrap().contains(",b,"));
    }

    #[test]
    fn python_csv_module_parses_the_log() {
        let dir = TempDir::new("py");
        append_run(&dir.0, &sample("plain")).unwrap();
        append_run(&dir.0, &sample("comma, \"quote\"\nnewline")).unwrap();
        let mut failed = sample("dead");
        failed.status = RunStatus::Failed("server 0 exited".into());
        append_run(&dir.0, &failed).unwrap();
        let script = "import csv,sys\n\
            rows=list(csv.DictReader(open(sys.argv[1],newline='')))\n\
            assert len(rows)==3, len(rows)\n\
            assert rows[1]['note']=='comma, \"quote\"\\nnewline', rows[1]['note']\n\
            assert rows[2]['status']=='failed: server 0 exited'\n\
            assert rows[2]['total_ops_per_s']==''\n\
            assert float(rows[0]['total_ops_per_s'])==1234567.5\n\
            assert all(len(r)==int(sys.argv[2]) for r in rows)\n\
            print('ok', len(rows))";
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(log_path(&dir.0))
            .arg(COLUMNS.len().to_string())
            .output()
            .expect("python3 is on the machine");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 3");
    }

    #[test]
    fn columns_per_version_matches() {
        assert_eq!(COLUMNS_PER_VERSION.len(), SCHEMA_VERSION as usize);
        assert_eq!(*COLUMNS_PER_VERSION.last().unwrap(), COLUMNS.len());
        assert_eq!(sample("x").to_fields().len(), COLUMNS.len());
    }

    #[test]
    fn run_dir_layout_and_profiles() {
        let dir = TempDir::new("rundir");
        let run = RunDir::new(&dir.0, "20240101-000000-abcd");
        run.create().unwrap();
        assert!(run.logs_dir().is_dir());
        assert!(run.path().ends_with("runs/20240101-000000-abcd"));
        for (role, node, kind) in [
            (Role::Client, "0", ProfileKind::Folded),
            (Role::Server, "1", ProfileKind::Svg),
            (Role::Server, "1", ProfileKind::Folded),
            (Role::Server, "0", ProfileKind::Pb),
        ] {
            fs::write(run.profile(role, node, kind), "x").unwrap();
        }
        assert!(run
            .profile(Role::Server, "1", ProfileKind::Svg)
            .ends_with("server-1.svg"));
        let p = run.profiles().unwrap();
        let names: Vec<String> = p.iter().map(ProcessProfile::name).collect();
        assert_eq!(names, ["server-0", "server-1", "client-0"]);
        assert!(p[1].svg.is_some() && p[1].folded.is_some() && p[1].pb.is_none());

        let rows: Vec<TimeseriesRow> = (1..=5)
            .flat_map(|t| {
                ["0", "1"].map(|n| TimeseriesRow {
                    t_s: t as f64,
                    node: n.into(),
                    role: Role::Server,
                    ops_per_s: 100.0 * t as f64,
                    gets_per_s: 50.0 * t as f64,
                    puts_per_s: 50.0 * t as f64,
                    cpu_percent: 90.0,
                    rss_bytes: 1000 + t,
                    net_bytes_per_s: 1e6,
                    p50_us: (n == "1").then_some(100 + t),
                    p99_us: (n == "1").then_some(900 + t),
                })
            })
            .collect();
        write_timeseries(&run.timeseries_csv(), &rows).unwrap();
        let text = fs::read_to_string(run.timeseries_csv()).unwrap();
        assert!(text.starts_with(&TIMESERIES_COLUMNS.join(",")));
        assert_eq!(read_timeseries(&run.timeseries_csv()).unwrap(), rows);
        let med = node_medians(&rows);
        assert_eq!(med.len(), 2);
        assert_eq!(med[0].median_ops_per_s, 300.0);
        assert_eq!(med[0].peak_rss_bytes, 1005);
        assert_eq!(
            (med[0].median_p99_us, med[1].median_p99_us),
            (None, Some(903))
        );

        let summary = RunSummary {
            record: sample("s"),
            nodes: med,
        };
        write_json(&run.summary_json(), &summary).unwrap();
        assert_eq!(
            read_json::<RunSummary>(&run.summary_json()).unwrap(),
            summary
        );
    }
}
