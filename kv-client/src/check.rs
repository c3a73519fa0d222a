//! Check mode: every put writes a value unique in the run, and every op is
//! recorded (key, kind, value written or read, invoke and completion times
//! on CLOCK_MONOTONIC) to this process's history file for `kv-check`.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use bytes::Bytes;
use kv_core::history::{Action, HistoryOp, HistoryWriter, Outcome, ReadValue};
use kv_core::rpc::OpResult;
use kv_core::value::{unique_value, ValueId};
use kv_core::workload::OpKind;

/// The ops of one batch, as the history needs them.
#[derive(Debug, Default)]
pub struct BatchTrace {
    ops: Vec<(u64, u64, Option<ValueId>)>,
}

impl BatchTrace {
    /// Notes op `seq` on `key`; `value` is what a put writes (ignored for gets).
    pub fn push(&mut self, seq: u64, kind: OpKind, key: u64, value: &Bytes) {
        let written = match (kind, kv_core::value::identify(value)) {
            (OpKind::Put, kv_core::value::ValueKind::Written(id)) => Some(id),
            _ => None,
        };
        self.ops.push((seq, key, written));
    }
}

pub struct CheckSink {
    client: u32,
    writer: Mutex<Option<HistoryWriter>>,
    path: std::path::PathBuf,
}

impl CheckSink {
    pub fn create(path: &Path, client: u32) -> Result<Self> {
        let writer = HistoryWriter::new(path, client)
            .with_context(|| format!("cannot create history file {}", path.display()))?;
        Ok(Self {
            client,
            writer: Mutex::new(Some(writer)),
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

    /// Records a batch's ops; `results` is `None` when the batch got no reply.
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
            .filter_map(|(i, &(seq, key, written))| {
                let (action, outcome) = match (written, results.map(|r| &r[i])) {
                    (Some(id), Some(_)) => (Action::Put(id), Outcome::Ok),
                    (Some(id), None) => (Action::Put(id), Outcome::Unknown),
                    (None, Some(OpResult::Value(v))) => (
                        Action::Get(ReadValue::from_stored(v.as_deref())),
                        Outcome::Ok,
                    ),
                    // A get without a reply read nothing: it says nothing about the register.
                    (None, _) => return None,
                };
                Some(HistoryOp {
                    thread,
                    seq,
                    key,
                    action,
                    invoke_ns,
                    complete_ns,
                    outcome,
                })
            })
            .collect();
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = w.as_mut() {
            if let Err(e) = w.record_all(&ops) {
                eprintln!("kv-client: error: history {}: {e}", self.path.display());
            }
        }
    }

    /// Writes the end line; a history without it is refused by the checker.
    pub fn finish(&self) -> Result<()> {
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = w {
            w.finish()
                .with_context(|| format!("cannot write history file {}", self.path.display()))?;
        }
        Ok(())
    }
}
