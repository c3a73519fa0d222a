//! A deliberate bug for testing the linearizability checker, compiled only
//! with the `fault-stale-reads` feature (never in release builds): after a
//! key is overwritten, some gets return its previous value.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use dashmap::DashMap;

#[derive(Debug, Default)]
pub struct StaleReads {
    previous: DashMap<Box<[u8]>, Bytes>,
    gets: AtomicU64,
}

impl StaleReads {
    pub fn remember(&self, key: &[u8], old: Box<[u8]>) {
        self.previous.insert(key.into(), Bytes::from(old));
    }

    /// Every 4th get of a key that has a previous value returns that stale value.
    pub fn maybe_stale(&self, key: &[u8]) -> Option<Bytes> {
        let previous = self.previous.get(key)?;
        (self.gets.fetch_add(1, Ordering::Relaxed) % 4 == 0).then(|| previous.value().clone())
    }
}
