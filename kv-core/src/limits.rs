//! Resource limits a server enforces, with their defaults. Beyond a limit a
//! request gets a [`crate::rpc::KvError`] or its connection is closed; the
//! server keeps serving everyone else.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rpc::{KvError, Op};

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
        }
    }
}

impl Limits {
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
