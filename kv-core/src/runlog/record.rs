//! One row of `log.csv` ([`RunRecord`]) and its columns.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::*;

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
pub(super) const COLUMNS_PER_VERSION: &[usize] = &[33];
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

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
