//! One row of `log.csv` ([`RunRecord`]) and its columns.
//!
//! [`TABLE`] is the one description of the columns: the writer
//! ([`RunRecord::to_fields`]), the reader ([`RunRecord::from_fields`]) and
//! the column docs in `experiments/README.md` ([`column_docs`]) are all made
//! from it. Adding a recorded field is: the struct field and its table entry
//! (this file), whoever fills it, and the regenerated docs.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::*;

/// Version of the log row written by this build: the highest `since` in
/// [`TABLE`].
pub const SCHEMA_VERSION: u32 = 4;

/// One column of `log.csv`: its name, the schema version that added it,
/// its unit and meaning (for the docs), and how a record writes and reads it.
pub struct Column {
    pub name: &'static str,
    /// Schema version that added the column (columns are only added at the end).
    pub since: u32,
    pub unit: &'static str,
    pub doc: &'static str,
    write: fn(&RunRecord) -> String,
    read: fn(&mut RunRecord, &str) -> Result<(), String>,
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

fn optf(v: &Option<f64>) -> String {
    // NaN or infinity is not a measurement: leave the field empty.
    v.filter(|x| x.is_finite())
        .map(|x| x.to_string())
        .unwrap_or_default()
}

fn num<T: FromStr>(s: &str) -> Result<Option<T>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| format!("'{s}' is not a valid number"))
}

/// A table entry for a field of one of the shapes the log has.
macro_rules! col {
    ($since:expr, $name:ident, $unit:expr, $doc:expr, text) => {
        Column {
            name: stringify!($name),
            since: $since,
            unit: $unit,
            doc: $doc,
            write: |r| r.$name.clone(),
            read: |r, s| {
                r.$name = s.to_string();
                Ok(())
            },
        }
    };
    ($since:expr, $name:ident, $unit:expr, $doc:expr, num) => {
        Column {
            name: stringify!($name),
            since: $since,
            unit: $unit,
            doc: $doc,
            write: |r| opt(&r.$name),
            read: |r, s| {
                r.$name = num(s)?;
                Ok(())
            },
        }
    };
    ($since:expr, $name:ident, $unit:expr, $doc:expr, float) => {
        Column {
            name: stringify!($name),
            since: $since,
            unit: $unit,
            doc: $doc,
            write: |r| optf(&r.$name),
            read: |r, s| {
                r.$name = num(s)?;
                Ok(())
            },
        }
    };
    // A throughput: never written for a failed run (see `from_fields`).
    ($since:expr, $name:ident, $unit:expr, $doc:expr, tput) => {
        Column {
            name: stringify!($name),
            since: $since,
            unit: $unit,
            doc: $doc,
            write: |r| {
                if r.status.is_ok() {
                    optf(&r.$name)
                } else {
                    String::new()
                }
            },
            read: |r, s| {
                r.$name = num(s)?;
                Ok(())
            },
        }
    };
}

/// Every column of `log.csv`, in file order. Append only, with `since` =
/// the new [`SCHEMA_VERSION`].
pub static TABLE: &[Column] = &[
    Column {
        name: "schema_version",
        since: 1,
        unit: "integer",
        doc: "layout version of this row",
        // Always the version this build writes, whatever the record says.
        write: |_| SCHEMA_VERSION.to_string(),
        read: |r, s| {
            r.schema_version = num(s)?.ok_or("empty")?;
            Ok(())
        },
    },
    Column {
        name: "run_id",
        since: 1,
        unit: "`YYYYmmdd-HHMMSS-xxxx`",
        doc: "UTC start time + 4 random hex digits; unique, sorts by start time; names \
              `runs/<run_id>/`. Tools accept a unique prefix or the unique 4-hex ending",
        write: |r| r.run_id.clone(),
        read: |r, s| {
            if s.trim().is_empty() {
                return Err("empty".into());
            }
            r.run_id = s.to_string();
            Ok(())
        },
    },
    col!(
        1,
        started_at,
        "RFC 3339, UTC (`2025-01-31T12:00:00Z`)",
        "when the run started",
        text
    ),
    col!(
        1,
        duration_s,
        "seconds",
        "the run's own time: first server started to every process stopped (not the build)",
        float
    ),
    col!(1, git_commit, "hex", "commit of the code that ran", text),
    Column {
        name: "git_dirty",
        since: 1,
        unit: "`true`/`false`",
        doc: "the work tree had uncommitted changes",
        write: |r| opt(&r.git_dirty),
        read: |r, s| {
            r.git_dirty = match s.trim() {
                "" => None,
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                other => return Err(format!("'{other}' is not true/false")),
            };
            Ok(())
        },
    },
    col!(
        1,
        backend,
        "text",
        "where processes ran (`local`, `hosts`, `cloudlab`, `bench`, ...)",
        text
    ),
    col!(1, hosts, "text, `;`-separated", "hosts used", text),
    col!(1, servers, "count", "server processes", num),
    col!(1, clients, "count", "client processes", num),
    Column {
        name: "threads",
        since: 1,
        unit: "count, or counts `;`-separated",
        doc: "generator threads per client: one number when every client has it, else one per \
              client in node order (`4;2`)",
        write: |r| r.threads.to_string(),
        read: |r, s| {
            r.threads = s.parse()?;
            Ok(())
        },
    },
    col!(
        1,
        connections,
        "count",
        "connections per client per server",
        num
    ),
    col!(1, batch, "ops", "ops per batch RPC", num),
    col!(
        1,
        window,
        "batches",
        "batches in flight per server connection",
        num
    ),
    Column {
        name: "workload",
        since: 1,
        unit: "`YCSB-A`/`YCSB-B`/`YCSB-C`",
        doc: "op mix, one spelling (`ycsb-a` and `a` given on the command line are `YCSB-A`)",
        write: |r| r.workload.clone(),
        read: |r, s| {
            // Rows from before the name was normalized read as one workload.
            r.workload = crate::workload::Workload::canonical(s);
            Ok(())
        },
    },
    col!(1, theta, "0 < θ < 1", "Zipf skew", float),
    col!(
        1,
        preload,
        "keys",
        "records loaded before the measured window",
        num
    ),
    col!(1, seed, "integer", "workload seed", num),
    col!(
        1,
        note,
        "text",
        "`--note \"text\"`; may contain commas, quotes, newlines (quoted)",
        text
    ),
    Column {
        name: "status",
        since: 1,
        unit: "`ok` or `failed: reason`",
        doc: "how the run ended; the reason is one line (an interrupted run names the signal: \
              `failed: interrupted (SIGINT)`)",
        write: |r| match &r.status {
            RunStatus::Ok => "ok".to_string(),
            // Keep the reason on one line so tables and greps stay simple.
            RunStatus::Failed(reason) => format!("failed: {}", one_line(reason)),
        },
        read: |r, s| {
            r.status = s.parse()?;
            Ok(())
        },
    },
    col!(
        1,
        total_ops_per_s,
        "ops/s",
        "**sum over servers of each server's median per-second ops/s** \
        (the course's method, as report-tput.py). Empty when the run failed: a failed run never \
        carries a throughput",
        tput
    ),
    col!(
        1,
        client_ops_per_s,
        "ops/s",
        "completed ops per second as the clients saw them; empty when failed",
        tput
    ),
    col!(
        1,
        p50_us,
        "µs",
        "op latency median (HDR histogram merged over all clients)",
        num
    ),
    col!(1, p99_us, "µs", "op latency 99th percentile", num),
    col!(1, p999_us, "µs", "op latency 99.9th percentile", num),
    col!(1, generated_ops, "ops", "ops generated by clients", num),
    col!(1, completed_ops, "ops", "ops answered", num),
    col!(
        1,
        server_cpu_percent,
        "% (100 = one core)",
        "CPU of all server processes together, mean over the run",
        float
    ),
    col!(
        1,
        client_cpu_percent,
        "% (100 = one core)",
        "same, for clients",
        float
    ),
    col!(
        1,
        server_peak_rss_bytes,
        "bytes",
        "largest peak RSS of any server process",
        num
    ),
    col!(
        1,
        client_peak_rss_bytes,
        "bytes",
        "largest peak RSS of any client process",
        num
    ),
    col!(
        1,
        net_bytes_per_s,
        "bytes/s",
        "bytes read + written per second, summed over server processes",
        float
    ),
    col!(
        1,
        tag,
        "text",
        "free label grouping runs (scaling charts, filters)",
        text
    ),
    col!(
        2,
        series_id,
        "text",
        "the series of repeated trials the run belongs to \
        (`run-cluster.sh --trials/--against/--ab`); empty for a single run",
        text
    ),
    col!(
        2,
        config_hash,
        "hex",
        "hash of everything that can change performance (binaries, \
        effective parameters, node counts, backend, host); equal hashes = same config",
        text
    ),
    col!(
        3,
        steady_ops_per_s,
        "ops/s",
        "steady-state throughput: per server the median ops/s over the steady window \
        (after the warm-up, before the drain; `kv_core::figures`), summed over servers. \
        Empty when failed or when the run was no longer than its warm-up",
        tput
    ),
    col!(
        4,
        warmup_s,
        "seconds",
        "warm-up left out of `steady_ops_per_s` (`--warmup`, default 2)",
        float
    ),
];

/// The column names in file order.
pub static COLUMNS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| TABLE.iter().map(|c| c.name).collect());

/// How many columns a row of schema `version` has (`None`: no such version).
pub fn columns_in(version: u32) -> Option<usize> {
    (1..=SCHEMA_VERSION)
        .contains(&version)
        .then(|| TABLE.iter().filter(|c| c.since <= version).count())
}

/// The column reference of `experiments/README.md`, made from [`TABLE`].
pub fn column_docs() -> String {
    let mut out = String::from(
        "| # | column | since | unit / format | meaning |\n|---|--------|-------|---------------|---------|\n",
    );
    for (i, c) in TABLE.iter().enumerate() {
        let doc = c.doc.split_whitespace().collect::<Vec<_>>().join(" ");
        out += &format!(
            "| {} | `{}` | {} | {} | {doc} |\n",
            i + 1,
            c.name,
            c.since,
            c.unit
        );
    }
    out
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The series of trials the run is part of (empty: a single run).
    #[serde(default)]
    pub series_id: String,
    /// [`crate::identity::ConfigIdentity`] hash of the run's config.
    #[serde(default)]
    pub config_hash: String,
    /// Sum over servers of each one's median ops/s in the steady window
    /// ([`crate::figures`]).
    #[serde(default)]
    pub steady_ops_per_s: Option<f64>,
    /// The warm-up the steady figure left out.
    #[serde(default)]
    pub warmup_s: Option<f64>,
}

impl RunRecord {
    /// An empty record with a fresh run id and start time `now`.
    pub fn new(started: SystemTime) -> Self {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            run_id: new_run_id(started),
            started_at: rfc3339_utc(started),
            ..RunRecord::default()
        }
    }

    /// The row's fields in [`COLUMNS`] order, as written to the file.
    pub fn to_fields(&self) -> Vec<String> {
        TABLE.iter().map(|c| (c.write)(self)).collect()
    }

    /// Parses one row given by position. A row has exactly the columns of
    /// its schema version (older versions fewer); any other count is a torn
    /// or foreign row, never data. Errors name the column.
    pub fn from_fields(fields: &[&str]) -> Result<Self, String> {
        let version: u32 = num(fields.first().copied().unwrap_or(""))
            .ok()
            .flatten()
            .ok_or("column schema_version is not a number")?;
        let expected = columns_in(version).ok_or_else(|| {
            format!("schema_version {version} is not one this build knows (1 to {SCHEMA_VERSION})")
        })?;
        if fields.len() != expected {
            return Err(format!(
                "torn row: {} fields, but schema_version {version} has {expected}",
                fields.len()
            ));
        }
        let mut r = RunRecord::default();
        // Fields parse in column order, so the first bad column is the one named.
        for (c, f) in TABLE.iter().zip(fields) {
            (c.read)(&mut r, f).map_err(|e| format!("column {}: {e}", c.name))?;
        }
        if !r.status.is_ok() {
            // Hand-edited logs: a failed run still shows no throughput.
            r.total_ops_per_s = None;
            r.client_ops_per_s = None;
            r.steady_ops_per_s = None;
        }
        Ok(r)
    }
}

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
