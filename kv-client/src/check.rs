//! Check mode: every put writes a value unique in the run, and every op is
//! recorded (key, kind, value written or read, invoke and completion times
//! on CLOCK_MONOTONIC) to this process's history file for `kv-check`.
//!
//! The history records exactly what came back for each op, including
//! replies of the wrong kind and no reply at all: the checker reads only
//! the history, so anything dropped or tidied up here it could never see.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use kv_core::clock::{ClockLog, ClockSample};
use kv_core::history::{
    monotonic_ns, run_id_of, Action, Header, HistoryOp, HistoryWriter, Outcome, ReadValue,
};
use kv_core::rpc::{KvClient, OpResult, ServerInfo};
use kv_core::transport::context_with_timeout;
use kv_core::value::{unique_value, ValueId};
use kv_core::workload::{key_text, OpKind};

/// What a history's header says about the run: the servers' preload and
/// the run's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFacts {
    pub preload: u64,
    pub run: String,
}

impl RunFacts {
    /// From the `ping` answers of every server of the run. Servers with
    /// different preloads would give keys different initial values by
    /// shard, which no history header can say: refused.
    pub fn of_servers<'a>(servers: impl IntoIterator<Item = &'a ServerInfo>) -> Result<Self> {
        let mut preload = None;
        let mut instances = Vec::new();
        for s in servers {
            match preload {
                None => preload = Some(s.preload),
                Some(p) if p != s.preload => bail!(
                    "check mode needs every server preloaded alike: one has --preload {p}, \
                     another --preload {}",
                    s.preload
                ),
                Some(_) => {}
            }
            instances.push(s.instance);
        }
        Ok(RunFacts {
            preload: preload.context("check mode needs at least one server")?,
            run: run_id_of(&instances),
        })
    }

    /// For `--in-process`: the store lives and dies with this process, so
    /// the run is this process (its pid and start time).
    pub fn in_process(preload: u64) -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        RunFacts {
            preload,
            run: run_id_of(&[u64::from(std::process::id()), started]),
        }
    }
}

/// The ops of one batch, as the history needs them.
#[derive(Debug, Default)]
pub struct BatchTrace {
    ops: Vec<(u64, u64, Option<ValueId>)>,
}

impl BatchTrace {
    /// Notes op `seq` on `key`; `value` is what a put writes (ignored for gets).
    pub fn push(&mut self, seq: u64, kind: OpKind, key: u64, value: &Bytes) {
        let written = match kind {
            OpKind::Put => Some(written_id(key, value)),
            OpKind::Get => None,
        };
        self.ops.push((seq, key, written));
    }
}

/// The id a check-mode put's value carries. Check mode only sends values
/// made by [`CheckSink::value_for`]; anything else is a client bug, and
/// is recorded as an id no get can match (`u32::MAX` client) rather than
/// silently turned into a get.
fn written_id(key: u64, value: &Bytes) -> ValueId {
    let mut buf = [0u8; 20];
    match kv_core::value::identify(key_text(key, &mut buf), value) {
        kv_core::value::ValueKind::Written(id) => id,
        _ => ValueId {
            client: u32::MAX,
            thread: u32::MAX,
            seq: 0,
        },
    }
}

/// One op's history entry from what came back for it (`None`: no reply).
fn entry(key: u64, written: Option<ValueId>, reply: Option<&OpResult>) -> (Action, Outcome) {
    match (written, reply) {
        (Some(id), Some(OpResult::Stored)) => (Action::Put(id), Outcome::Ok),
        (Some(id), Some(OpResult::Value(_))) => (Action::Put(id), Outcome::WrongKind),
        (Some(id), None) => (Action::Put(id), Outcome::Unknown),
        (None, Some(OpResult::Value(v))) => {
            let mut buf = [0u8; 20];
            let key = key_text(key, &mut buf);
            (
                Action::Get(ReadValue::from_stored(key, v.as_deref())),
                Outcome::Ok,
            )
        }
        (None, Some(OpResult::Stored)) => (Action::Get(ReadValue::NotAValue), Outcome::WrongKind),
        (None, None) => (Action::Get(ReadValue::NotAValue), Outcome::Unknown),
    }
}

pub struct CheckSink {
    client: u32,
    /// `None` once finished, or after a write failed: then no end line is
    /// ever written, so the checker refuses the file instead of trusting it.
    writer: Mutex<Option<HistoryWriter>>,
    /// The first write error, reported by [`CheckSink::finish`].
    error: Mutex<Option<String>>,
    path: std::path::PathBuf,
}

impl CheckSink {
    pub fn create(path: &Path, client: u32, facts: &RunFacts) -> Result<Self> {
        let header = Header {
            preload: Some(facts.preload),
            run: Some(facts.run.clone()),
            ..Header::local(client)
        };
        let writer = HistoryWriter::create(path, &header)
            .with_context(|| format!("cannot create history file {}", path.display()))?;
        Ok(Self {
            client,
            writer: Mutex::new(Some(writer)),
            error: Mutex::new(None),
            path: path.to_path_buf(),
        })
    }

    /// The unique value op `seq` of `thread` writes.
    pub fn value_for(&self, thread: u32, seq: u64) -> Bytes {
        unique_value(ValueId {
            client: self.client,
            thread,
            seq,
        })
    }

    /// Records a batch's ops; `results` is `None` when the batch got no
    /// reply. A reply with too few results leaves the rest unknown.
    pub fn record(
        &self,
        thread: u32,
        trace: &BatchTrace,
        results: Option<&[OpResult]>,
        invoke_ns: u64,
        complete_ns: u64,
    ) {
        let ops: Vec<HistoryOp> = trace
            .ops
            .iter()
            .enumerate()
            .map(|(i, &(seq, key, written))| {
                let reply = results.and_then(|r| r.get(i));
                let (action, outcome) = entry(key, written, reply);
                HistoryOp {
                    thread,
                    seq,
                    key,
                    action,
                    invoke_ns,
                    complete_ns,
                    outcome,
                }
            })
            .collect();
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(writer) = w.as_mut() {
            if let Err(e) = writer.record_all(&ops) {
                // Give up on the file: a history with a hole must not look whole.
                *w = None;
                let mut error = self.error.lock().unwrap_or_else(|e| e.into_inner());
                error.get_or_insert_with(|| e.to_string());
            }
        }
    }

    /// Writes the end line; a history without it is refused by the checker.
    /// Fails if any write failed, naming the file and the first error.
    pub fn finish(&self) -> Result<()> {
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(e) = self.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bail!("cannot write history file {}: {e}", self.path.display());
        }
        if let Some(w) = w {
            w.finish()
                .with_context(|| format!("cannot write history file {}", self.path.display()))?;
        }
        Ok(())
    }
}

/// Samples the offset of this process's history clock to the reference
/// server's clock ([`kv_core::clock`]): `n` pings, each one sample.
pub async fn sample_clock(
    reference: &KvClient,
    n: usize,
    timeout: std::time::Duration,
) -> Result<Vec<ClockSample>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let send_ns = monotonic_ns();
        let info = reference
            .ping(context_with_timeout(timeout))
            .await
            .context("clock sample: the reference server did not answer ping")?;
        out.push(ClockSample {
            send_ns,
            recv_ns: monotonic_ns(),
            reference_ns: info.clock_ns,
        });
    }
    Ok(out)
}

/// The reference clock's name: the server's boot and lifetime.
pub fn reference_name(info: &ServerInfo) -> String {
    format!("{}/{:016x}", info.boot, info.instance)
}

/// Clock samples taken through a run: at start, every second, at the end.
/// Kept beside the history so kv-check can map ops of other hosts.
pub struct ClockTrace {
    reference: KvClient,
    log: Mutex<ClockLog>,
    timeout: std::time::Duration,
}

impl ClockTrace {
    /// Samples at start: the tightest of 8 round trips bounds the start.
    pub async fn start(
        reference: KvClient,
        info: &ServerInfo,
        timeout: std::time::Duration,
    ) -> Result<Self> {
        let samples = sample_clock(&reference, 8, timeout).await?;
        Ok(ClockTrace {
            reference,
            log: Mutex::new(ClockLog {
                reference: reference_name(info),
                samples,
            }),
            timeout,
        })
    }

    /// One sample; a failed one is skipped (the run's own RPCs report a
    /// dead server; fewer samples only widen ε).
    pub async fn sample(&self, n: usize) {
        if let Ok(s) = sample_clock(&self.reference, n, self.timeout).await {
            self.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .samples
                .extend(s);
        }
    }

    /// Writes the samples beside `history`.
    pub fn write(&self, history: &Path) -> Result<()> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        log.write(history).with_context(|| {
            format!(
                "cannot write clock samples {}",
                kv_core::clock::clock_path(history).display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_core::history::read_history;
    use kv_core::value::preload_value;

    /// Unique per call: tests run in parallel and may pass the same name.
    fn temp(name: &str) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::env::temp_dir().join(format!("kv-client-check-{}-{n}-{name}", std::process::id()))
    }

    fn facts() -> RunFacts {
        RunFacts {
            preload: 100,
            run: "00000000000000aa".into(),
        }
    }

    /// A batch: put on key 5, get of key 5, get of key 6, put on key 7.
    fn batch(sink: &CheckSink) -> BatchTrace {
        let mut t = BatchTrace::default();
        t.push(1, OpKind::Put, 5, &sink.value_for(2, 1));
        t.push(2, OpKind::Get, 5, &Bytes::new());
        t.push(3, OpKind::Get, 6, &Bytes::new());
        t.push(4, OpKind::Put, 7, &sink.value_for(2, 4));
        t
    }

    fn id(seq: u64) -> ValueId {
        ValueId {
            client: 9,
            thread: 2,
            seq,
        }
    }

    /// (action, outcome) of each recorded op.
    fn recorded(results: Option<&[OpResult]>) -> Vec<(u64, u64, Action, Outcome)> {
        let path = temp(&format!("{}", results.map_or(0, |r| r.len() + 1)));
        let sink = CheckSink::create(&path, 9, &facts()).unwrap();
        sink.record(2, &batch(&sink), results, 100, 200);
        sink.finish().unwrap();
        let h = read_history(&path).unwrap();
        let header = kv_core::history::HistoryReader::open(&path)
            .unwrap()
            .header()
            .clone();
        std::fs::remove_file(&path).unwrap();
        assert!(h.complete);
        assert_eq!((header.client, header.preload), (9, Some(100)));
        assert_eq!(header.run.as_deref(), Some("00000000000000aa"));
        assert!(h.ops.iter().all(|o| o.thread == 2 && o.invoke_ns == 100));
        h.ops
            .iter()
            .map(|o| (o.seq, o.key, o.action, o.outcome))
            .collect()
    }

    #[test]
    fn records_what_a_correct_reply_said() {
        let got = recorded(Some(&[
            OpResult::Stored,
            OpResult::Value(Some(unique_value(id(1)))),
            OpResult::Value(Some(preload_value(b"6"))),
            OpResult::Stored,
        ]));
        assert_eq!(
            got,
            vec![
                (1, 5, Action::Put(id(1)), Outcome::Ok),
                (2, 5, Action::Get(ReadValue::Written(id(1))), Outcome::Ok),
                (3, 6, Action::Get(ReadValue::Init), Outcome::Ok),
                (4, 7, Action::Put(id(4)), Outcome::Ok),
            ]
        );
    }

    #[test]
    fn records_wrong_kinds_and_another_keys_value() {
        let got = recorded(Some(&[
            OpResult::Value(None),
            OpResult::Stored,
            OpResult::Value(Some(preload_value(b"60"))),
            OpResult::Stored,
        ]));
        assert_eq!(
            got,
            vec![
                (1, 5, Action::Put(id(1)), Outcome::WrongKind),
                (2, 5, Action::Get(ReadValue::NotAValue), Outcome::WrongKind),
                (3, 6, Action::Get(ReadValue::InitOf(60)), Outcome::Ok),
                (4, 7, Action::Put(id(4)), Outcome::Ok),
            ]
        );
    }

    #[test]
    fn no_reply_or_a_short_one_leaves_ops_unknown() {
        let unknown = vec![
            (1, 5, Action::Put(id(1)), Outcome::Unknown),
            (2, 5, Action::Get(ReadValue::NotAValue), Outcome::Unknown),
            (3, 6, Action::Get(ReadValue::NotAValue), Outcome::Unknown),
            (4, 7, Action::Put(id(4)), Outcome::Unknown),
        ];
        assert_eq!(recorded(None), unknown);
        let mut short = unknown.clone();
        short[0].3 = Outcome::Ok;
        short[1] = (2, 5, Action::Get(ReadValue::Absent), Outcome::Ok);
        assert_eq!(
            recorded(Some(&[OpResult::Stored, OpResult::Value(None)])),
            short
        );
    }

    #[test]
    fn a_failed_write_fails_finish_and_leaves_no_end_line() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let sink = CheckSink::create(Path::new("/dev/full"), 1, &facts());
        let Ok(sink) = sink else {
            panic!("/dev/full must open");
        };
        let mut t = BatchTrace::default();
        // Enough rows to overflow the writer's 1 MiB buffer.
        for seq in 0..80_000 {
            t.push(seq, OpKind::Get, seq, &Bytes::new());
        }
        sink.record(0, &t, None, 1, 2);
        // Binary (no .csv name): the loss may show at the last flush only.
        let err = format!("{:#}", sink.finish().unwrap_err());
        assert!(
            err.starts_with("cannot write history file /dev/full: No space left on device"),
            "{err}"
        );
    }

    #[test]
    fn servers_must_agree_on_preload() {
        let info = |preload, instance| ServerInfo {
            version: "0".into(),
            pid: 1,
            keys: 0,
            limits: Default::default(),
            preload,
            instance,
            clock_ns: 0,
            boot: String::new(),
        };
        let f = RunFacts::of_servers(&[info(10, 1), info(10, 2)]).unwrap();
        assert_eq!(f.preload, 10);
        assert_eq!(f.run, run_id_of(&[2, 1]));
        let err = RunFacts::of_servers(&[info(10, 1), info(0, 2)]).unwrap_err();
        assert!(err.to_string().contains("--preload 10"), "{err}");
        assert!(RunFacts::of_servers(&[]).is_err());
    }
}
