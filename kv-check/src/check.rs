//! The linearizability check: each key is a read/write register, and every
//! put writes a value unique in the run, so each get names the put it read.
//!
//! With the read-from mapping known, linearizability of a register is
//! decidable in O(n log n) (Gibbons & Korach, "Testing shared memories",
//! SIAM J. Comput. 1997), by the *zones* characterisation as restated by
//! Golab, Li & Shah ("Analyzing consistency properties for fun and profit",
//! PODC 2011):
//!
//! * A *cluster* is a put and the gets that read its value. In any
//!   linearization a cluster is contiguous (values are never written twice),
//!   so it occupies a span of time covering from its earliest completion
//!   (`lo`, no later than its put) to its latest invocation (`hi`, no earlier
//!   than its last get).
//! * If `lo < hi` the cluster has a *forward zone* `[lo, hi]`: its value was
//!   current over all of it. Otherwise it has a *backward zone* `[hi, lo]`:
//!   its ops all overlap one instant, where the whole cluster can go.
//! * The history is linearizable iff (1) no get completes before its put is
//!   invoked, (2) no two forward zones overlap, and (3) no backward zone lies
//!   inside a forward zone. (2) and (3) are exact, not merely necessary: they
//!   fix one real-time order of the clusters, so reads that see w1, then w2,
//!   then w1 again overlap two forward zones and fail.
//!
//! The register's initial value (preloaded `init`, or absent) is a cluster
//! whose put is virtual and happens at [`BEGINNING`], before every op, so it
//! is linearized first. A put of unknown outcome completes at [`NEVER`]: if
//! someone read it, it took effect somewhere after its invocation; if nobody
//! did, it is dropped (it may never have happened). Reads of a value no put
//! of the key wrote (or `other`, another key's preloaded value, or the wrong
//! initial value) fail, and so does any reply of the wrong kind (a value
//! answering a put, `stored` answering a get).
//!
//! Times are compared strictly: an op precedes another only if it completed
//! before the other was invoked, so ops touching at an instant may go either
//! way. Per key: sort by value (O(n log n)), one pass to build zones, a sort
//! and a sweep of the zones.

use crate::failure::Failure;
use crate::load::{Loaded, Loc, Rec, Time, Value, BEGINNING, NEVER};

/// The register's value before the first put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initial {
    /// Every key was preloaded (`init`).
    Init,
    /// Keys start absent (`none`).
    Absent,
    /// Keys below N were preloaded, the others start absent (a server's
    /// `--preload N` with a workload over more keys).
    PreloadedBelow(u64),
}

impl std::str::FromStr for Initial {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "init" => Ok(Initial::Init),
            "absent" => Ok(Initial::Absent),
            _ => Err(format!("'{s}': expected init or absent")),
        }
    }
}

impl Initial {
    fn value(self, key: u64) -> Value {
        match self {
            Initial::Init => Value::INIT,
            Initial::Absent => Value::ABSENT,
            Initial::PreloadedBelow(n) if key < n => Value::INIT,
            Initial::PreloadedBelow(_) => Value::ABSENT,
        }
    }
}

/// An op in a counterexample: a record (index into the sorted records) or
/// the virtual put of the initial value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpRef {
    Initial,
    Rec(usize),
}

/// A put with the gets that read it, reduced to what proves a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cluster {
    pub value: Value,
    pub put: OpRef,
    /// Earliest completion among the cluster's ops, and the op.
    pub lo: Time,
    pub lo_op: OpRef,
    /// Latest invocation among the cluster's ops, and the op.
    pub hi: Time,
    pub hi_op: OpRef,
}

impl Cluster {
    fn is_forward(&self) -> bool {
        self.lo < self.hi
    }

    /// The ops that fix the cluster's zone.
    pub fn ops(&self) -> [OpRef; 3] {
        [self.put, self.lo_op, self.hi_op]
    }
}

/// Why one key's history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The server answered an op with a reply of the wrong kind.
    WrongReply { key: u64, op: usize },
    /// A get read a value that no put of this key wrote (or `other`, or
    /// the initial value the run did not have).
    UnwrittenRead { key: u64, get: usize },
    /// A get completed before the put of its value was invoked.
    ReadBeforeWrite { key: u64, put: usize, get: usize },
    /// Two values were each current over overlapping periods: no order of
    /// their puts explains the gets.
    Interleaved { key: u64, a: Cluster, b: Cluster },
    /// A value was written (and read) entirely while another must have been
    /// current: some get of `current` is stale.
    Stale {
        key: u64,
        current: Cluster,
        hidden: Cluster,
    },
}

impl OpRef {
    fn map(self, f: &impl Fn(usize) -> usize) -> OpRef {
        match self {
            OpRef::Initial => OpRef::Initial,
            OpRef::Rec(i) => OpRef::Rec(f(i)),
        }
    }
}

impl Cluster {
    fn map_ops(self, f: &impl Fn(usize) -> usize) -> Cluster {
        Cluster {
            put: self.put.map(f),
            lo_op: self.lo_op.map(f),
            hi_op: self.hi_op.map(f),
            ..self
        }
    }
}

impl Violation {
    /// The same violation with record `i` renamed `f(i)` (records moved).
    pub fn map_ops(&self, f: impl Fn(usize) -> usize) -> Violation {
        let f = &f;
        match *self {
            Violation::WrongReply { key, op } => Violation::WrongReply { key, op: f(op) },
            Violation::UnwrittenRead { key, get } => Violation::UnwrittenRead { key, get: f(get) },
            Violation::ReadBeforeWrite { key, put, get } => Violation::ReadBeforeWrite {
                key,
                put: f(put),
                get: f(get),
            },
            Violation::Interleaved { key, a, b } => Violation::Interleaved {
                key,
                a: a.map_ops(f),
                b: b.map_ops(f),
            },
            Violation::Stale {
                key,
                current,
                hidden,
            } => Violation::Stale {
                key,
                current: current.map_ops(f),
                hidden: hidden.map_ops(f),
            },
        }
    }

    pub fn key(&self) -> u64 {
        match self {
            Violation::WrongReply { key, .. }
            | Violation::UnwrittenRead { key, .. }
            | Violation::ReadBeforeWrite { key, .. }
            | Violation::Interleaved { key, .. }
            | Violation::Stale { key, .. } => *key,
        }
    }

    /// The ops of the counterexample, without repeats, in time order of the
    /// records (the initial value first).
    pub fn ops(&self, recs: &[Rec]) -> Vec<OpRef> {
        let mut ops: Vec<OpRef> = match self {
            Violation::WrongReply { op, .. } => vec![OpRef::Rec(*op)],
            Violation::UnwrittenRead { get, .. } => vec![OpRef::Rec(*get)],
            Violation::ReadBeforeWrite { put, get, .. } => vec![OpRef::Rec(*put), OpRef::Rec(*get)],
            Violation::Interleaved { a, b, .. } => a.ops().into_iter().chain(b.ops()).collect(),
            Violation::Stale {
                current, hidden, ..
            } => current.ops().into_iter().chain(hidden.ops()).collect(),
        };
        let order = |op: &OpRef| match op {
            OpRef::Initial => (0, 0, 0),
            OpRef::Rec(i) => (1, recs[*i].invoke, *i),
        };
        ops.sort_by_key(order);
        ops.dedup();
        ops
    }
}

/// The same value written by two puts: the history breaks the uniqueness
/// the check relies on (a client bug, not a store bug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateWrite {
    pub key: u64,
    pub first: Loc,
    pub second: Loc,
}

/// The result of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Rows in all histories.
    pub ops: u64,
    pub keys: u64,
    pub failed_keys: u64,
    /// The failures of the smallest failing keys, in key order: as many as
    /// the check was asked to keep.
    pub failures: Vec<Failure>,
}

impl Summary {
    pub fn passed(&self) -> bool {
        self.failed_keys == 0
    }

    /// The smallest failing key's failure.
    pub fn first(&self) -> Option<&Failure> {
        self.failures.first()
    }

    /// The smallest failing key's violation.
    pub fn first_violation(&self) -> Option<Violation> {
        self.first().map(|f| f.violation.clone())
    }

    /// Adds another set of keys' result, keeping the `keep` smallest
    /// failing keys' failures.
    pub fn merge(&mut self, other: Summary, keep: usize) {
        self.ops += other.ops;
        self.keys += other.keys;
        self.failed_keys += other.failed_keys;
        self.failures.extend(other.failures);
        self.failures.sort_by_key(Failure::key);
        self.failures.truncate(keep);
    }
}

/// Failures kept by default: one witness page each.
pub const KEEP_FAILURES: usize = 10;

/// Below this many ops, [`check`] uses one thread.
const MIN_PARALLEL_OPS: usize = 1 << 16;

/// Checks every key of `loaded`, on up to `threads` threads, keeping the
/// [`KEEP_FAILURES`] smallest failing keys' failures.
pub fn check(
    loaded: &mut Loaded,
    initial: Initial,
    threads: usize,
) -> Result<Summary, DuplicateWrite> {
    check_keeping(loaded, initial, threads, KEEP_FAILURES)
}

/// [`check`], keeping `keep` failures. The in-memory check: every op of
/// every key at once, 40 bytes each (`crate::stream` is the bounded one).
/// Reorders `loaded.recs`: split in place into buckets by a hash of the
/// key, one per thread, each sorted by [`Rec::order`].
pub fn check_keeping(
    loaded: &mut Loaded,
    initial: Initial,
    threads: usize,
    keep: usize,
) -> Result<Summary, DuplicateWrite> {
    // Keys are independent registers, so buckets of keys can be checked
    // apart. Small histories are not worth a thread.
    let threads = if loaded.recs.len() < MIN_PARALLEL_OPS {
        1
    } else {
        threads
    };
    let buckets = split_by_key(&mut loaded.recs, threads);
    let results: Vec<_> = std::thread::scope(|s| {
        let mut rest: &mut [Rec] = &mut loaded.recs;
        let handles: Vec<_> = buckets
            .iter()
            .map(|&len| {
                let (part, tail) = std::mem::take(&mut rest).split_at_mut(len);
                rest = tail;
                s.spawn(move || {
                    part.sort_unstable_by_key(Rec::order);
                    check_sorted(part, initial, keep)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut total = Summary {
        ops: loaded.rows,
        keys: 0,
        failed_keys: 0,
        failures: Vec::new(),
    };
    let mut duplicate: Option<DuplicateWrite> = None;
    for result in results {
        match result {
            Ok(s) => total.merge(s, keep),
            Err(d) => {
                if duplicate.as_ref().is_none_or(|f| d.key < f.key) {
                    duplicate = Some(d);
                }
            }
        }
    }
    duplicate.map_or(Ok(total), Err)
}

/// The hash that spreads keys over buckets and partitions (splitmix64's
/// finalizer: hot neighbouring keys land apart).
#[inline]
pub fn key_hash(key: u64) -> u64 {
    let mut h = key ^ (key >> 30);
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Reorders `recs` into buckets by key hash (a power of two of them, at
/// most `threads`), returning the buckets' lengths in order.
fn split_by_key(recs: &mut [Rec], threads: usize) -> Vec<usize> {
    fn bucket_bit(key: u64, bit: u32) -> bool {
        (key_hash(key) >> (63 - bit)) & 1 == 1
    }
    fn split(recs: &mut [Rec], bit: u32, depth: u32, out: &mut Vec<usize>) {
        if depth == bit {
            out.push(recs.len());
            return;
        }
        let mut mid = 0;
        for j in 0..recs.len() {
            if !bucket_bit(recs[j].key, bit) {
                recs.swap(mid, j);
                mid += 1;
            }
        }
        let (low, high) = recs.split_at_mut(mid);
        split(low, bit + 1, depth, out);
        split(high, bit + 1, depth, out);
    }
    let depth = threads.clamp(1, 64).ilog2();
    let mut out = Vec::with_capacity(1 << depth);
    split(recs, 0, depth, &mut out);
    out
}

/// Checks records sorted by [`Rec::sort_key`] (or [`Rec::order`]), keeping the failures of
/// the `keep` smallest failing keys; `ops` is left 0.
pub fn check_sorted(
    recs: &[Rec],
    initial: Initial,
    keep: usize,
) -> Result<Summary, DuplicateWrite> {
    let mut summary = Summary {
        ops: 0,
        keys: 0,
        failed_keys: 0,
        failures: Vec::new(),
    };
    let mut scratch = Scratch::default();
    let mut start = 0;
    while start < recs.len() {
        let key = recs[start].key;
        // A linear scan: a binary search over the rest of the array would
        // miss the cache ~25 times per key.
        let end = start + recs[start..].iter().take_while(|r| r.key == key).count();
        summary.keys += 1;
        let verdict =
            check_key(key, recs, start..end, initial, &mut scratch).map_err(|(a, b)| {
                DuplicateWrite {
                    key,
                    first: recs[a].loc,
                    second: recs[b].loc,
                }
            })?;
        if let Err(v) = verdict {
            summary.failed_keys += 1;
            if summary.failures.len() < keep {
                let v = v.map_ops(|i| i - start);
                summary.failures.push(Failure::keep(&recs[start..end], &v));
            }
        }
        start = end;
    }
    Ok(summary)
}

/// Buffers reused from key to key.
#[derive(Default)]
struct Scratch {
    forward: Vec<Cluster>,
    backward: Vec<Cluster>,
}

/// Checks one key: `range` of `recs` holds its ops, sorted by value, puts
/// first. Records are named by their index in `recs`; `Err((a, b))`: records
/// a and b write the same value.
fn check_key(
    key: u64,
    recs: &[Rec],
    range: std::ops::Range<usize>,
    initial: Initial,
    scratch: &mut Scratch,
) -> Result<Result<(), Violation>, (usize, usize)> {
    scratch.forward.clear();
    scratch.backward.clear();
    let mut i = range.start;
    while i < range.end {
        let value = recs[i].value();
        let end = i + recs[i..range.end]
            .iter()
            .take_while(|r| r.value() == value)
            .count();
        let (put, gets) = if value == Value::WRONG_REPLY {
            return Ok(Err(Violation::WrongReply { key, op: i }));
        } else if value == initial.value(key) {
            (OpRef::Initial, i..end)
        } else if value.writer_seq().is_none() || recs[i].is_get() {
            // `other`, the wrong initial value, or a value no put of this key wrote.
            return Ok(Err(Violation::UnwrittenRead { key, get: i }));
        } else if i + 1 < end && !recs[i + 1].is_get() {
            return Err((i, i + 1));
        } else {
            (OpRef::Rec(i), i + 1..end)
        };
        i = end;
        let (put_invoke, put_complete) = match put {
            OpRef::Initial => (BEGINNING, BEGINNING),
            OpRef::Rec(p) => (recs[p].invoke, recs[p].complete),
        };
        if gets.is_empty() && put_complete == NEVER {
            // Unread put of unknown outcome: it may never have happened.
            continue;
        }
        let mut c = Cluster {
            value,
            put,
            lo: put_complete,
            lo_op: put,
            hi: put_invoke,
            hi_op: put,
        };
        for g in gets {
            let r = &recs[g];
            if r.complete < c.lo {
                (c.lo, c.lo_op) = (r.complete, OpRef::Rec(g));
            }
            if r.invoke > c.hi {
                (c.hi, c.hi_op) = (r.invoke, OpRef::Rec(g));
            }
        }
        // (1) The earliest-completing get must not precede the put.
        if let (OpRef::Rec(p), OpRef::Rec(g)) = (put, c.lo_op) {
            if c.lo < put_invoke {
                return Ok(Err(Violation::ReadBeforeWrite {
                    key,
                    put: p,
                    get: g,
                }));
            }
        }
        if c.is_forward() {
            scratch.forward.push(c);
        } else {
            scratch.backward.push(c);
        }
    }

    // (2) Forward zones pairwise disjoint: sorted by start, each must start
    // no earlier than every earlier zone ends.
    let forward = &mut scratch.forward;
    forward.sort_unstable_by_key(|c| (c.lo, c.hi));
    let mut latest: Option<&Cluster> = None;
    for c in forward.iter() {
        if let Some(a) = latest {
            if c.lo < a.hi {
                return Ok(Err(Violation::Interleaved { key, a: *a, b: *c }));
            }
        }
        if latest.is_none_or(|a| c.hi > a.hi) {
            latest = Some(c);
        }
    }

    // (3) No backward zone [hi, lo] strictly inside a forward zone. Forward
    // zones are now disjoint and sorted, so only the last one starting
    // before the backward zone can contain it.
    for b in &scratch.backward {
        let n = forward.partition_point(|a| a.lo < b.hi);
        if let Some(a) = n.checked_sub(1).map(|k| &forward[k]) {
            if b.lo < a.hi {
                return Ok(Err(Violation::Stale {
                    key,
                    current: *a,
                    hidden: *b,
                }));
            }
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_texts;
    use kv_core::workload::Xorshift64;

    /// A client-1 history of key 1 from lines `kind value invoke complete`:
    /// kind `w` (put), `w?` (put, no reply) or `r` (get); a value is a letter
    /// (one distinct value each), `init`, `none` or `other`; `key=N` as a
    /// fifth word moves the op to key N. Op `i` runs on thread `i`.
    fn history(lines: &str) -> String {
        let mut out = format!(
            "# kvlab-history v1 client=1 clock=CLOCK_MONOTONIC\n{}\n",
            kv_core::history::COLUMNS
        );
        let mut n = 0;
        for (i, line) in lines
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            let w: Vec<&str> = line.split_whitespace().collect();
            let (kind, outcome) = match w[0] {
                "w" => ("put", "ok"),
                "w?" => ("put", "unknown"),
                "r" => ("get", "ok"),
                k => panic!("bad kind {k}"),
            };
            let value = match w[1] {
                v @ ("init" | "none" | "other") => v.to_string(),
                v => format!("1.{}.0", v.as_bytes()[0] - b'a' + 100),
            };
            let key = w.get(4).and_then(|k| k.strip_prefix("key=")).unwrap_or("1");
            out += &format!("{i},0,{kind},{key},{value},{},{},{outcome}\n", w[2], w[3]);
            n += 1;
        }
        out + &format!("# end ops={n}\n")
    }

    fn check_with(lines: &str, initial: Initial) -> Result<Summary, DuplicateWrite> {
        let mut loaded = load_texts(&[("h", &history(lines))]).unwrap();
        check(&mut loaded, initial, 4)
    }

    fn verdict(lines: &str) -> Option<Violation> {
        check_with(lines, Initial::Init).unwrap().first_violation()
    }

    #[track_caller]
    fn passes(lines: &str) {
        assert_eq!(verdict(lines), None, "{lines}");
    }

    #[test]
    fn sequential_and_concurrent_histories_pass() {
        passes("w a 0 10\n r a 20 30");
        // b is written and read inside a's long put; a wins afterwards.
        passes("w a 0 100\n w b 10 50\n r b 20 30\n r a 60 70");
        // A get concurrent with the put may see either value.
        passes("w a 10 20\n r init 5 15\n r a 12 30\n r init 0 25");
        // Ops touching at an instant may be ordered either way.
        passes("w a 0 10\n r a 10 20");
        passes("w a 0 10\n w b 10 20\n r a 20 30");
        // Writes nobody read constrain nothing beyond their interval.
        passes("w a 0 10\n w b 20 30\n w c 40 50\n r c 60 70");
    }

    #[test]
    fn stale_read_fails() {
        let v = verdict("w a 0 10\n w b 20 30\n r a 40 50").unwrap();
        assert!(matches!(v, Violation::Stale { key: 1, .. }), "{v:?}");
        // The preloaded value read after a put completed: stale too.
        let v = verdict("w a 0 10\n r init 20 30").unwrap();
        assert!(
            matches!(
                v,
                Violation::Stale {
                    current: Cluster {
                        put: OpRef::Initial,
                        ..
                    },
                    ..
                }
            ),
            "{v:?}"
        );
    }

    #[test]
    fn w1_w2_w1_fails_even_with_concurrent_puts() {
        // Either order of the two puts is possible, but not both at once.
        let v = verdict("w a 0 10\n w b 0 10\n r a 20 30\n r b 40 50\n r a 60 70").unwrap();
        assert!(matches!(v, Violation::Interleaved { .. }), "{v:?}");
        // Same with init as w1.
        let v = verdict("w a 0 10\n r init 0 1\n r a 20 30\n r init 40 50").unwrap();
        assert!(
            matches!(v, Violation::Interleaved { .. } | Violation::Stale { .. }),
            "{v:?}"
        );
    }

    #[test]
    fn unknown_puts_take_effect_only_if_read() {
        passes("w? a 0 5\n r a 50 60");
        passes("w? a 0 5\n r init 50 60");
        passes("w? a 0 5\n r init 50 60\n r a 70 80");
        // Once read, it took effect: the initial value cannot come back.
        let v = verdict("w? a 0 5\n r a 10 20\n r init 30 40").unwrap();
        assert!(matches!(v, Violation::Stale { .. }), "{v:?}");
        // Still not before its invocation.
        let v = verdict("r a 0 5\n w? a 10 20").unwrap();
        assert!(matches!(v, Violation::ReadBeforeWrite { .. }), "{v:?}");
    }

    #[test]
    fn initial_value_depends_on_preload() {
        assert_eq!(
            check_with("r init 0 5", Initial::Init)
                .unwrap()
                .first_violation(),
            None
        );
        assert_eq!(
            check_with("r none 0 5", Initial::Absent)
                .unwrap()
                .first_violation(),
            None
        );
        let absent_read = check_with("r none 0 5", Initial::Init)
            .unwrap()
            .first_violation();
        assert!(matches!(absent_read, Some(Violation::UnwrittenRead { .. })));
        let init_read = check_with("r init 0 5", Initial::Absent)
            .unwrap()
            .first_violation();
        assert!(matches!(init_read, Some(Violation::UnwrittenRead { .. })));
        // --preload 10: keys 0..9 start preloaded, key 10 on starts absent.
        let below = Initial::PreloadedBelow(10);
        let ok = "r init 0 5 key=9\n r none 0 5 key=10\n r none 0 5 key=12345";
        assert_eq!(check_with(ok, below).unwrap().first_violation(), None);
        let v = check_with("r none 0 5 key=9", below)
            .unwrap()
            .first_violation();
        assert!(
            matches!(v, Some(Violation::UnwrittenRead { key: 9, .. })),
            "{v:?}"
        );
        let v = check_with("r init 0 5 key=10", below)
            .unwrap()
            .first_violation();
        assert!(
            matches!(v, Some(Violation::UnwrittenRead { key: 10, .. })),
            "{v:?}"
        );
    }

    #[test]
    fn reads_of_unwritten_values_fail() {
        for lines in ["r z 0 5", "r other 0 5", "w a 0 5 key=2\n r a 10 20"] {
            let v = verdict(lines).unwrap();
            assert!(
                matches!(v, Violation::UnwrittenRead { key: 1, .. }),
                "{lines}: {v:?}"
            );
        }
    }

    #[test]
    fn wrong_kind_replies_and_foreign_initial_values_fail() {
        let text = |rows: &str| {
            format!(
                "# kvlab-history v1 client=1 clock=CLOCK_MONOTONIC\n{}\n{rows}# end ops={}\n",
                kv_core::history::COLUMNS,
                rows.lines().count()
            )
        };
        let first = |rows: &str| {
            let mut loaded = load_texts(&[("h", &text(rows))]).unwrap();
            check(&mut loaded, Initial::Init, 1)
                .unwrap()
                .first_violation()
        };
        // Key 4 answered with key 5's preloaded value.
        let v = first("0,0,get,4,init:5,10,20,ok\n");
        assert!(
            matches!(v, Some(Violation::UnwrittenRead { key: 4, .. })),
            "{v:?}"
        );
        // A put answered with a value, and a get answered `stored`: each
        // fails even when every other op of the key is fine.
        let v = first("0,0,put,4,1.0.0,10,20,wrong-kind\n1,0,get,4,init,0,5,ok\n");
        assert!(
            matches!(v, Some(Violation::WrongReply { key: 4, .. })),
            "{v:?}"
        );
        let v = first("0,0,get,4,-,10,20,wrong-kind\n");
        assert!(
            matches!(v, Some(Violation::WrongReply { key: 4, .. })),
            "{v:?}"
        );
        // A get with no reply says nothing.
        assert_eq!(first("0,0,get,4,-,10,20,unknown\n"), None);
    }

    #[test]
    fn read_before_its_put_fails() {
        let v = verdict("r a 0 5\n w a 10 20").unwrap();
        assert!(
            matches!(v, Violation::ReadBeforeWrite { key: 1, .. }),
            "{v:?}"
        );
    }

    #[test]
    fn duplicate_values_are_refused() {
        let dup = check_with("w a 0 5\n w a 10 20", Initial::Init).unwrap_err();
        assert_eq!(dup.key, 1);
    }

    #[test]
    fn counts_keys_and_reports_the_first_failing_one() {
        let s = check_with(
            "w a 0 10 key=7\n w b 20 30 key=7\n r a 40 50 key=7\n r other 0 1 key=9\n r init 0 1 key=3",
            Initial::Init,
        )
        .unwrap();
        assert_eq!((s.ops, s.keys, s.failed_keys), (5, 3, 2));
        assert_eq!(s.first().unwrap().key(), 7);
    }

    #[test]
    fn counterexample_holds_only_the_conflicting_ops() {
        let lines =
            "w a 0 10\n w b 20 30\n r a 40 50\n r a 5 6\n r b 31 32\n w c 100 110\n r c 120 130";
        let mut loaded = load_texts(&[("h", &history(lines))]).unwrap();
        let s = check(&mut loaded, Initial::Init, 4).unwrap();
        let f = s.first().unwrap();
        let v = &f.violation;
        assert!(matches!(v, Violation::Interleaved { .. }), "{v:?}");
        let lines: Vec<u64> = v
            .ops(&f.recs)
            .iter()
            .map(|op| match op {
                OpRef::Rec(i) => f.recs[*i].loc.line(),
                OpRef::Initial => 0,
            })
            .collect();
        // Rows start at line 3: the puts of a and b, a's first and last
        // gets, b's get; not c's ops.
        assert_eq!(lines, vec![3, 6, 4, 7, 5]);
    }

    #[test]
    fn buckets_do_not_change_the_verdict() {
        use crate::synth::{write_synth, SynthConfig};
        let dir = std::env::temp_dir().join(format!("kv-check-buckets-{}", std::process::id()));
        let cfg = SynthConfig {
            ops: 300_000,
            keys: 5_000,
            clients: 2,
            threads: 4,
            workload: kv_core::workload::Workload::A,
            theta: Some(kv_core::workload::Theta::new(0.99).unwrap()),
            seed: 5,
            unknown_every: 100,
            stale_every: 2_000,
        };
        let paths = write_synth(&cfg, &dir).unwrap();
        let verdicts: Vec<_> = [1, 2, 4]
            .into_iter()
            .map(|threads| {
                let mut loaded = crate::load::load_files(&paths, threads).unwrap();
                let s = check(&mut loaded, Initial::Init, threads).unwrap();
                // The key sets of the buckets are disjoint and cover all ops.
                (s.ops, s.keys, s.failed_keys, s.first().map(|v| v.key()))
            })
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(verdicts[0].2 > 0, "{verdicts:?}");
        assert!(verdicts.iter().all(|v| *v == verdicts[0]), "{verdicts:?}");
    }

    /// One op of a brute-force case: (is_put, value, invoke, complete, known).
    type BruteOp = (bool, u8, u64, u64, bool);

    /// Exhaustive search for a linearization (Wing & Gong style), with
    /// value 0 as the initial value. Unknown puts may be dropped.
    fn brute_force(ops: &[BruteOp]) -> bool {
        fn go(ops: &[BruteOp], done: u32, current: u8) -> bool {
            if done.count_ones() as usize == ops.len() {
                return true;
            }
            let pending = |j: usize| done & (1 << j) == 0;
            (0..ops.len()).filter(|&i| pending(i)).any(|i| {
                let (is_put, value, invoke, _, known) = ops[i];
                // A known op that completed before `i` began must come first.
                let blocked =
                    (0..ops.len()).any(|j| j != i && pending(j) && ops[j].4 && ops[j].3 < invoke);
                let dropped = is_put && !known && go(ops, done | (1 << i), current);
                dropped
                    || (!blocked
                        && if is_put {
                            go(ops, done | (1 << i), value)
                        } else {
                            value == current && go(ops, done | (1 << i), current)
                        })
            })
        }
        go(ops, 0, 0)
    }

    #[test]
    fn agrees_with_brute_force_on_random_small_histories() {
        let mut rng = Xorshift64::new(7);
        let mut below = |n: u64| rng.next_u64() % n;
        let (mut linearizable, mut not) = (0, 0);
        for case in 0..20_000 {
            let n = 1 + below(7) as usize;
            let mut ops: Vec<BruteOp> = Vec::new();
            let mut puts = 0u8;
            for _ in 0..n {
                let invoke = below(12);
                let complete = invoke + below(6);
                if below(2) == 0 {
                    puts += 1;
                    ops.push((true, puts, invoke, complete, below(5) != 0));
                } else {
                    // Mostly values that some put writes (maybe later), or init.
                    ops.push((
                        false,
                        below(u64::from(puts) + 2) as u8,
                        invoke,
                        complete,
                        true,
                    ));
                }
            }
            let name = |v: u8| {
                if v == 0 {
                    "init".to_string()
                } else {
                    ((b'a' + v - 1) as char).to_string()
                }
            };
            let lines: String = ops
                .iter()
                .map(|&(is_put, v, i, c, known)| {
                    let kind = match (is_put, known) {
                        (true, true) => "w",
                        (true, false) => "w?",
                        (false, _) => "r",
                    };
                    format!("{kind} {} {i} {c}\n", name(v))
                })
                .collect();
            // Gets may name a value no put wrote: brute force cannot pass those.
            let want = brute_force(&ops);
            let got = verdict(&lines);
            assert_eq!(got.is_none(), want, "case {case}:\n{lines}{got:?}");
            if want {
                linearizable += 1;
            } else {
                not += 1;
            }
        }
        // Both verdicts must be well represented for the test to mean anything.
        assert!(
            linearizable > 3_000 && not > 3_000,
            "{linearizable} / {not}"
        );
    }
}
