//! The store: the only code that touches the concurrent map.
//!
//! DashMap shards the table behind per-shard RwLocks; FxHash is several times
//! cheaper than SipHash for short decimal keys, and the server is not exposed
//! to adversarial key choice beyond its own limits. Keys sit inline in the
//! slot ([`StoreKey`]). Values are boxed slices and a get copies them out
//! under the shard's read lock: a 128-byte copy costs less than sharing a
//! reference count that every core bumps for the hottest Zipf keys, and a
//! 16-byte slot keeps the table of 1M records small.

use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use kv_core::ops::{Op, OpResult};
use kv_core::value::preload_value;
use kv_core::workload::key_text;
use rustc_hash::FxBuildHasher;

use crate::key::StoreKey;

type Map = DashMap<StoreKey, Box<[u8]>, FxBuildHasher>;

/// Lock stripes of the map. DashMap's default (4 x cores) left two cores
/// bouncing the few shard locks' cache lines on every lookup (a quarter of
/// the server's CPU in profiles); with many more, two lookups rarely touch
/// the same lock. Memory does not change: the tables hold the same buckets.
const SHARDS: usize = 1024;

/// Gets and puts applied by one call, for the stats counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub gets: u64,
    pub puts: u64,
}

#[derive(Debug, Default)]
pub struct Store {
    map: Map,
    /// Records loaded by [`Store::preloaded`] (reported by `ping`).
    preload: u64,
    #[cfg(feature = "fault-stale-reads")]
    stale: crate::fault::StaleReads,
}

impl Store {
    /// An empty store sized for `capacity` records.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            map: Map::with_capacity_and_hasher_and_shard_amount(capacity, FxBuildHasher, SHARDS),
            preload: 0,
            #[cfg(feature = "fault-stale-reads")]
            stale: Default::default(),
        }
    }

    /// A store holding records `0..records` with their 128-byte preload
    /// values, as a YCSB load phase leaves it.
    ///
    /// Loading runs on short-lived threads, one per core. Besides being
    /// faster, this matters for memory: mimalloc returns a block freed by
    /// another thread to its owner's heap, so values allocated by a thread
    /// that lingers idle (a blocking-pool thread) are never reused when puts
    /// replace them, and RSS grows by every overwritten value. Pages of a
    /// thread that has exited are reclaimed by the live ones.
    pub fn preloaded(records: u64) -> Self {
        let store = Self {
            preload: records,
            ..Self::with_capacity(records as usize)
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let per_thread = records.div_ceil(threads.max(1));
        std::thread::scope(|scope| {
            for t in 0..threads {
                let store = &store;
                scope.spawn(move || {
                    let mut buf = [0u8; 20];
                    for k in (t * per_thread)..((t + 1) * per_thread).min(records) {
                        let key = key_text(k, &mut buf);
                        store
                            .map
                            .insert(key.into(), Box::from(&preload_value(key)[..]));
                    }
                });
            }
        });
        store
    }

    /// Records loaded at start: keys `0..preload` began with their init value.
    pub fn preload(&self) -> u64 {
        self.preload
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        #[cfg(feature = "fault-stale-reads")]
        if let Some(old) = self.stale.maybe_stale(key) {
            return Some(old);
        }
        let value = self.map.get(key).map(|v| Bytes::copy_from_slice(v.value()));
        #[cfg(feature = "fault-stale-reads")]
        let value = self.stale.answer(key, value);
        value
    }

    #[inline]
    pub fn put(&self, key: &[u8], value: Bytes) {
        // Zero-copy when the bytes came from a decoded frame (a unique Vec).
        let value: Box<[u8]> = Vec::from(value).into_boxed_slice();
        match self.map.get_mut(key) {
            Some(mut slot) => {
                let _old = std::mem::replace(slot.value_mut(), value);
                #[cfg(feature = "fault-stale-reads")]
                self.stale.remember(key, _old);
            }
            None => {
                self.map.insert(key.into(), value);
            }
        }
    }

    /// The map's hash of `key`, as its own lookups compute it.
    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.map.hash_usize(&key) as u64
    }

    /// Prefetches what a lookup of `hash` touches first: the control
    /// bytes of its home group and its home slot (MICA-style batched
    /// lookups: the misses of several keys overlap instead of queueing).
    /// Only addresses are computed here; a prefetch never faults, so a
    /// table resized meanwhile costs a wasted prefetch, nothing more.
    #[inline]
    fn prefetch(&self, hash: u64) {
        let shard = &self.map.shards()[self.map.determine_shard(hash as usize)];
        let table = shard.read();
        let pos = (hash as usize) & (table.buckets() - 1);
        let end = table.data_end().as_ptr();
        prefetch_read((end as *const u8).wrapping_add(pos));
        prefetch_read(end.wrapping_sub(pos + 1) as *const u8);
    }

    /// Appends `key`'s value to `out`; false when the key is absent.
    #[inline]
    #[cfg(not(feature = "fault-stale-reads"))]
    fn copy_value(&self, key: &[u8], out: &mut BytesMut) -> bool {
        self.map
            .get(key)
            .map(|v| out.extend_from_slice(v.value()))
            .is_some()
    }

    #[cfg(feature = "fault-stale-reads")]
    fn copy_value(&self, key: &[u8], out: &mut BytesMut) -> bool {
        self.get(key).map(|v| out.extend_from_slice(&v)).is_some()
    }

    /// Applies `ops` in order and returns one result per op, in order, or
    /// `None` when the reply would exceed `max_reply_bytes`
    /// ([`kv_core::memory::reply_bytes`]). The size is checked as the reply
    /// is built: from the first get that would overflow it, no value is
    /// copied any more (one batch of big gets never builds more than one
    /// frame), but every put is still applied, so the effect is the whole
    /// batch's either way.
    ///
    /// The gets' values are copied into one buffer per batch and the
    /// results are slices of it: one allocation per batch instead of one
    /// per get, and a reference count that only this batch's reply touches.
    pub fn apply(&self, ops: Vec<Op>, max_reply_bytes: usize) -> (Option<Vec<OpResult>>, Applied) {
        use kv_core::memory::{REPLY_HEADER_BYTES, RESULT_OVERHEAD_BYTES};
        let mut applied = Applied::default();
        let mut results = Vec::with_capacity(ops.len());
        let mut reply = REPLY_HEADER_BYTES + ops.len() * RESULT_OVERHEAD_BYTES;
        let mut overflow = reply > max_reply_bytes;
        let mut values =
            BytesMut::with_capacity((ops.len() * GUESS_VALUE_BYTES).min(max_reply_bytes));
        // Where each found value ends in `values`, in result order.
        let mut ends: Vec<usize> = Vec::with_capacity(ops.len());
        let hashes: Vec<u64> = ops.iter().map(|op| self.hash(op.key())).collect();
        for &h in hashes.iter().take(PREFETCH_AHEAD) {
            self.prefetch(h);
        }
        for (i, op) in ops.into_iter().enumerate() {
            if let Some(&h) = hashes.get(i + PREFETCH_AHEAD) {
                self.prefetch(h);
            }
            match op {
                Op::Get { key } => {
                    applied.gets += 1;
                    if overflow {
                        continue;
                    }
                    let start = values.len();
                    let found = self.copy_value(&key, &mut values);
                    reply += values.len() - start;
                    if reply > max_reply_bytes {
                        overflow = true;
                        results = Vec::new();
                        values = BytesMut::new();
                        continue;
                    }
                    if found {
                        ends.push(values.len());
                        // A placeholder, replaced by its slice below.
                        results.push(OpResult::Value(Some(Bytes::new())));
                    } else {
                        results.push(OpResult::Value(None));
                    }
                }
                Op::Put { key, value } => {
                    applied.puts += 1;
                    self.put(&key, value);
                    if overflow {
                        continue;
                    }
                    #[cfg(feature = "fault-stale-reads")]
                    results.push(self.stale.put_reply());
                    #[cfg(not(feature = "fault-stale-reads"))]
                    results.push(OpResult::Stored);
                }
            }
        }
        if overflow {
            return (None, applied);
        }
        let values = values.freeze();
        let mut ends = ends.into_iter();
        let mut start = 0;
        for r in &mut results {
            if let OpResult::Value(Some(v)) = r {
                let end = ends.next().unwrap_or(start);
                *v = values.slice(start..end);
                start = end;
            }
        }
        (Some(results), applied)
    }
}

/// How many keys ahead of its lookup a batch prefetches: enough misses in
/// flight to overlap, few enough that the first are still cached when used.
const PREFETCH_AHEAD: usize = 8;

#[inline]
fn prefetch_read(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing and never faults,
    // whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Value bytes reserved per op of a batch: the benchmark's 128-byte values
/// (larger ones grow the buffer).
const GUESS_VALUE_BYTES: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_and_ordered_batch() {
        let store = Store::preloaded(10);
        assert_eq!(store.len(), 10);
        assert_eq!(store.get(b"7"), Some(preload_value(b"7")));
        assert_eq!(store.get(b"10"), None);
        let k = Bytes::from_static(b"3");
        let (res, applied) = store.apply(
            vec![
                Op::Put {
                    key: k.clone(),
                    value: Bytes::from_static(b"a"),
                },
                Op::Get { key: k.clone() },
                Op::Put {
                    key: k.clone(),
                    value: Bytes::from_static(b"b"),
                },
                Op::Get { key: k },
            ],
            1 << 20,
        );
        assert_eq!(
            res.unwrap(),
            vec![
                OpResult::Stored,
                OpResult::Value(Some(Bytes::from_static(b"a"))),
                OpResult::Stored,
                OpResult::Value(Some(Bytes::from_static(b"b"))),
            ]
        );
        assert_eq!(applied, Applied { gets: 2, puts: 2 });
    }

    #[test]
    fn a_reply_past_the_bound_is_refused_but_its_puts_apply() {
        let store = Store::with_capacity(4);
        let big = Bytes::from(vec![1u8; 1000]);
        let k = |s: &'static str| Bytes::from_static(s.as_bytes());
        store.put(b"a", big.clone());
        let mut ops: Vec<Op> = (0..10).map(|_| Op::Get { key: k("a") }).collect();
        ops.push(Op::Put {
            key: k("b"),
            value: big.clone(),
        });
        let (res, applied) = store.apply(ops.clone(), 5_000);
        assert_eq!(res, None);
        assert_eq!(applied, Applied { gets: 10, puts: 1 });
        assert_eq!(store.get(b"b"), Some(big));
        let (res, _) = store.apply(ops, 20_000);
        assert_eq!(res.map(|r| r.len()), Some(11));
    }
}
