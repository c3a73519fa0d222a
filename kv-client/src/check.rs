//! Check mode: unique put values and a per-process history of every op.
//! (Being wired to kv_core::history.)

use std::path::Path;

use anyhow::Result;
use bytes::Bytes;
use kv_core::rpc::OpResult;
use kv_core::workload::OpKind;

pub fn monotonic_ns() -> u64 {
    0
}

#[derive(Debug, Default)]
pub struct BatchTrace;

impl BatchTrace {
    pub fn push(&mut self, _seq: u64, _kind: OpKind, _key: u64, _value: &Bytes) {}
}

pub struct CheckSink;

impl CheckSink {
    pub fn create(_path: &Path, _client: u32) -> Result<Self> {
        anyhow::bail!("--check is not available yet")
    }
    pub fn value_for(&self, _thread: u32, _seq: u64) -> Bytes {
        Bytes::new()
    }
    pub fn record(&self, _t: u32, _trace: &BatchTrace, _r: Option<&[OpResult]>, _i: u64, _c: u64) {}
    pub fn finish(&self) -> Result<()> {
        Ok(())
    }
}
