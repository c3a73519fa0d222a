//! `impl Kv`: validates requests against the limits, applies them to the
//! store, and counts what was applied.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kv_core::limits::Limits;
use kv_core::memory::ProcessMemory;
use kv_core::process::ProcessSample;
use kv_core::rpc::{Kv, KvError, Op, OpResult, ServerInfo};
use kv_core::stats::{Role, ShardedCounter, StatsSnapshot};
use tarpc::context::Context;

use kv_store::Store;

/// Counters of applied work, bumped once per request.
#[derive(Debug, Default)]
pub struct Counters {
    pub gets: ShardedCounter,
    pub puts: ShardedCounter,
    pub batches: ShardedCounter,
    /// Requests refused for breaking a limit.
    pub refused: ShardedCounter,
}

/// Everything a connection's handler needs, shared by all connections.
#[derive(Debug)]
pub struct ServerState {
    pub store: Store,
    pub limits: Limits,
    pub counters: Counters,
    pub started: Instant,
    /// Random, drawn at start: this server's lifetime (`ping`'s `instance`).
    pub instance: u64,
    /// Set once shutdown begins; reported in stats.
    pub draining: std::sync::atomic::AtomicBool,
    /// Bytes held by all connections, against `limits.memory_budget_bytes`.
    pub memory: Arc<ProcessMemory>,
}

impl ServerState {
    pub fn new(store: Store, limits: Limits) -> Self {
        Self {
            memory: ProcessMemory::new(limits.memory_budget_bytes),
            store,
            limits,
            counters: Counters::default(),
            started: Instant::now(),
            instance: random_u64(),
            draining: Default::default(),
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            role: Role::Server,
            pid: std::process::id(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            gets: self.counters.gets.get(),
            puts: self.counters.puts.get(),
            failed: self.counters.refused.get(),
            batches: self.counters.batches.get(),
            generated: 0,
            keys: self.store.len() as u64,
            process: ProcessSample::now(),
            latency: None,
            recent_latency: None,
            open_loop: None,
            finished: self.draining.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Refuses new work that builds replies once the process budget is spent.
    fn check_budget(&self) -> Result<(), KvError> {
        if self.memory.spent() {
            return Err(KvError::Overloaded {
                held: self.memory.held(),
                budget: self.memory.budget(),
            });
        }
        Ok(())
    }

    fn refuse<T>(&self, e: KvError) -> Result<T, KvError> {
        self.counters.refused.add(1);
        crate::log::log_limited("refused", &format!("refused request: {e}"));
        Err(e)
    }
}

/// A random u64 from the standard library's per-process hash keys (no RNG
/// crate needed for one number).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[derive(Debug, Clone)]
pub struct KvService(pub Arc<ServerState>);

impl Kv for KvService {
    async fn batch(self, _: Context, ops: Vec<Op>) -> Result<Vec<OpResult>, KvError> {
        let s = &self.0;
        if let Err(e) = s.limits.check_batch(&ops) {
            return s.refuse(e);
        }
        if let Err(e) = s.check_budget() {
            return s.refuse(e);
        }
        let (results, applied) = s.store.apply(ops, s.limits.max_reply_bytes());
        s.counters.gets.add(applied.gets);
        s.counters.puts.add(applied.puts);
        s.counters.batches.add(1);
        match results {
            Some(r) => Ok(r),
            None => s.refuse(KvError::ReplyTooLarge {
                max: s.limits.max_reply_bytes(),
            }),
        }
    }

    async fn get(self, _: Context, key: Bytes) -> Result<Option<Bytes>, KvError> {
        let s = &self.0;
        if let Err(e) = s.limits.check_key(&key).and(s.check_budget()) {
            return s.refuse(e);
        }
        s.counters.gets.add(1);
        Ok(s.store.get(&key))
    }

    async fn put(self, _: Context, key: Bytes, value: Bytes) -> Result<(), KvError> {
        let s = &self.0;
        if let Err(e) = s.limits.check_key(&key).and(s.limits.check_value(&value)) {
            return s.refuse(e);
        }
        s.counters.puts.add(1);
        s.store.put(&key, value);
        Ok(())
    }

    async fn ping(self, _: Context) -> ServerInfo {
        ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            keys: self.0.store.len() as u64,
            limits: self.0.limits.clone(),
            preload: self.0.store.preload(),
            instance: self.0.instance,
            clock_ns: kv_core::history::raw_monotonic_ns(),
            boot: kv_core::history::boot_id().unwrap_or_default(),
        }
    }

    async fn stats(self, _: Context) -> kv_core::stats::StatsSnapshot {
        self.0.snapshot()
    }
}
