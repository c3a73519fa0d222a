//! Deliberate bugs for testing the linearizability checker, compiled only
//! with the `fault-stale-reads` feature (never in release builds). The
//! environment variable `KVLAB_FAULT` picks one, read once at start:
//!
//! * `stale-reads` (the default): after a key is overwritten, every 4th get
//!   of a key with a previous value returns that stale value;
//! * `foreign-init`: every 4th get of a key still holding its preloaded
//!   value returns the next key's preloaded value instead;
//! * `wrong-kind`: every 64th put is applied but answered with a value, as
//!   if it were a get.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use bytes::Bytes;
use dashmap::DashMap;
use kv_core::ops::OpResult;
use kv_core::value::preload_value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    StaleReads,
    ForeignInit,
    WrongKind,
}

fn mode() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("KVLAB_FAULT").as_deref() {
        Ok("foreign-init") => Mode::ForeignInit,
        Ok("wrong-kind") => Mode::WrongKind,
        _ => Mode::StaleReads,
    })
}

#[derive(Debug, Default)]
pub struct StaleReads {
    previous: DashMap<Box<[u8]>, Bytes>,
    gets: AtomicU64,
    puts: AtomicU64,
}

impl StaleReads {
    pub fn remember(&self, key: &[u8], old: Box<[u8]>) {
        if mode() == Mode::StaleReads {
            self.previous.insert(key.into(), Bytes::from(old));
        }
    }

    /// A stale value to answer instead of the current one (stale-reads mode).
    pub fn maybe_stale(&self, key: &[u8]) -> Option<Bytes> {
        if mode() != Mode::StaleReads {
            return None;
        }
        let previous = self.previous.get(key)?;
        (self.gets.fetch_add(1, Ordering::Relaxed) % 4 == 0).then(|| previous.value().clone())
    }

    /// What a get answers, given the stored value (foreign-init mode).
    pub fn answer(&self, key: &[u8], stored: Option<Bytes>) -> Option<Bytes> {
        if mode() != Mode::ForeignInit {
            return stored;
        }
        let next = std::str::from_utf8(key)
            .ok()
            .and_then(|k| k.parse::<u64>().ok())
            .and_then(|k| k.checked_add(1));
        match (stored, next) {
            (Some(v), Some(next))
                if v == preload_value(key)
                    && self.gets.fetch_add(1, Ordering::Relaxed) % 4 == 0 =>
            {
                Some(preload_value(next.to_string().as_bytes()))
            }
            (stored, _) => stored,
        }
    }

    /// The reply to an applied put (wrong-kind mode).
    pub fn put_reply(&self) -> OpResult {
        if mode() == Mode::WrongKind && self.puts.fetch_add(1, Ordering::Relaxed) % 64 == 0 {
            return OpResult::Value(None);
        }
        OpResult::Stored
    }
}
