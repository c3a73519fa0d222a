//! Resource limits a server enforces, with their defaults. Beyond a limit a
//! request gets a [`crate::ops::KvError`] or its connection is closed; the
//! server keeps serving everyone else.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ops::{KvError, Op};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest length-delimited frame accepted, in bytes; a longer frame closes the connection.
    pub max_frame_bytes: usize,
    /// Most ops in one batch.
    pub max_batch_ops: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    /// Concurrent connections; further ones are closed on accept.
    pub max_connections: usize,
    /// Requests of one connection admitted before the server stops reading it.
    pub max_in_flight_per_connection: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout_ms: u64,
    /// Bytes of replies one connection may have built and not yet written
    /// before the server stops reading it (a peer that never reads).
    pub max_reply_buffer_bytes: usize,
    /// Bytes all connections together may hold in buffers and unwritten
    /// replies; beyond it batches and gets are refused and large frames
    /// wait (docs/reliability.md has the worst case).
    pub memory_budget_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // A 1024-op batch of 128-byte values is ~150 KiB; 8 MiB leaves
            // room for big batches while bounding decode amplification.
            max_frame_bytes: 8 << 20,
            max_batch_ops: 16_384,
            max_key_bytes: 1024,
            max_value_bytes: 64 << 10,
            max_connections: 1024,
            max_in_flight_per_connection: 256,
            idle_timeout_ms: 60_000,
            // Two full frames: a window of 8 batches of 1024 128-byte
            // values needs ~1.2 MB.
            max_reply_buffer_bytes: 16 << 20,
            memory_budget_bytes: 512 << 20,
        }
    }
}

impl Limits {
    /// The largest reply a batch may build: one frame.
    pub fn max_reply_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    pub fn check_key(&self, key: &[u8]) -> Result<(), KvError> {
        if key.is_empty() {
            return Err(KvError::EmptyKey);
        }
        if key.len() > self.max_key_bytes {
            return Err(KvError::KeyTooLarge {
                len: key.len(),
                max: self.max_key_bytes,
            });
        }
        Ok(())
    }

    pub fn check_value(&self, value: &[u8]) -> Result<(), KvError> {
        if value.len() > self.max_value_bytes {
            return Err(KvError::ValueTooLarge {
                len: value.len(),
                max: self.max_value_bytes,
            });
        }
        Ok(())
    }

    /// Validates a whole batch before any op of it is applied, so a refused
    /// batch has no partial effect.
    pub fn check_batch(&self, ops: &[Op]) -> Result<(), KvError> {
        if ops.len() > self.max_batch_ops {
            return Err(KvError::BatchTooLarge {
                ops: ops.len(),
                max: self.max_batch_ops,
            });
        }
        for op in ops {
            match op {
                Op::Get { key } => self.check_key(key)?,
                Op::Put { key, value } => {
                    self.check_key(key)?;
                    self.check_value(value)?;
                }
            }
        }
        Ok(())
    }
}

/// Most worker or generator threads a flag may ask for: far beyond any core
/// count, far below what makes thread creation itself the problem.
pub const MAX_THREADS: usize = 1024;

/// Server RSS per preloaded 128-byte record, measured (244 MB for 1M,
/// docs/performance.md), rounded up.
pub const PRELOAD_BYTES_PER_RECORD: u64 = 256;

/// Refuses a preload whose table would not fit in the memory available now
/// (MemAvailable in /proc/meminfo; unchecked where that cannot be read).
pub fn check_preload(flag: &str, records: u64) -> Result<(), String> {
    let need = records.saturating_mul(PRELOAD_BYTES_PER_RECORD);
    let Some(avail) = mem_available_bytes() else {
        return Ok(());
    };
    if need > avail {
        return Err(format!(
            "{flag} {records} needs about {} MB ({PRELOAD_BYTES_PER_RECORD} bytes per record) but only {} MB are available",
            need >> 20,
            avail >> 20
        ));
    }
    Ok(())
}

/// Refuses a thread count above [`MAX_THREADS`].
pub fn check_threads(flag: &str, n: usize) -> Result<(), String> {
    if n == 0 {
        return Err(format!("{flag} must be at least 1"));
    }
    if n > MAX_THREADS {
        return Err(format!("{flag} must be at most {MAX_THREADS}"));
    }
    Ok(())
}

fn mem_available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
