//! The load loop: per-thread generators → per-server batches → bounded
//! pipelines of batch RPCs → counted completions.
//!
//! Ordering: every (generator thread, server) stream uses one fixed
//! connection, its calls are enqueued on that connection in generation order
//! (each call is polled once, which enqueues it, before the next batch is
//! built), and the server executes a connection's requests one at a time in
//! arrival order. So a thread's ops to a server are applied in the order they
//! were generated, and each op is sent exactly once.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::nap::Nap;

use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use kv_core::latency::{LatencyHistogram, LatencySummary, LatencyWindow};
use kv_core::rpc::{KvClient, Op, OpResult, ServerInfo};
use kv_core::shard::server_for;
use kv_core::summary::{ClientSummary, OpCounts, OpenLoopSummary};
use kv_core::transport::{self, context_with_timeout, ConnectOptions};
use kv_core::value::filler_value;
use kv_core::workload::{key_text, thread_seed, OpKind, WorkloadSpec};
use kv_store::Store;
use tokio::sync::Semaphore;

use crate::check::{BatchTrace, CheckSink, ClockTrace, RunFacts};
use crate::config::{Config, Load, OpenLoop, Target};
use crate::schedule::Schedule;

/// Ops generated between two looks at the clock and the stop flags.
const CHUNK: usize = 256;

/// Room per op in a batch's key buffer: the benchmark's keys have at most
/// 7 digits (longer ones grow the buffer).
const KEY_BYTES: usize = 8;

/// Counts of one generator thread. Every generated op ends up exactly once
/// in completed (gets or puts) or failed, once the thread has drained.
///
/// The generator bumps `generated`/`sent` while completions (on other
/// workers) bump the rest: the two groups live on separate cache lines so
/// neither side stalls on the other's writes.
#[derive(Debug, Default)]
#[repr(C, align(128))]
pub struct ThreadCounts {
    pub generated: AtomicU64,
    pub sent: AtomicU64,
    /// Open loop: most the generator was behind its schedule since the
    /// last [`Shared::take_pace`], in microseconds.
    pub lag_us: AtomicU64,
    /// Time spent waiting for a free window slot, in nanoseconds.
    pub window_wait_ns: AtomicU64,
    _pad: [u64; 12],
    pub gets: AtomicU64,
    pub puts: AtomicU64,
    pub failed: AtomicU64,
}

impl ThreadCounts {
    pub fn load(&self) -> OpCounts {
        OpCounts {
            generated: self.generated.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            gets: self.gets.load(Ordering::Relaxed),
            puts: self.puts.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

#[derive(Default)]
struct Latencies {
    batch: LatencyHistogram,
    op: LatencyHistogram,
}

/// State shared by the generator threads, completions and the stats reporter.
pub struct Shared {
    pub started: Instant,
    pub threads: Vec<ThreadCounts>,
    latencies: Vec<Mutex<Latencies>>,
    /// Last-second op latency for the live stats.
    recent: Mutex<LatencyWindow>,
    /// Stop generating (time is up or the user asked); drain what is in flight.
    pub stop: AtomicBool,
    /// First failure seen, naming the server; also stops generation.
    failure: Mutex<Option<String>>,
    /// Every thread has drained: the run is over.
    pub finished: AtomicBool,
    /// When the load started (after connecting): open-loop time zero.
    pub run_start: OnceLock<Instant>,
    /// Open loop: the last whole second's pace, for the live stats.
    pub pace: Mutex<Option<kv_core::stats::OpenLoopPace>>,
}

impl Shared {
    fn new(threads: usize) -> Self {
        Self {
            started: Instant::now(),
            threads: (0..threads).map(|_| ThreadCounts::default()).collect(),
            latencies: (0..threads).map(|_| Mutex::default()).collect(),
            recent: Mutex::new(LatencyWindow::new(Duration::from_secs(1))),
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
            finished: AtomicBool::new(false),
            run_start: OnceLock::new(),
            pace: Mutex::new(None),
        }
    }

    /// The generator-side pace figures since the last call: the most any
    /// thread was behind schedule, and the window wait summed over threads.
    pub fn take_pace(&self) -> (Duration, Duration) {
        let mut lag_us = 0;
        let mut wait_ns = 0;
        for t in &self.threads {
            lag_us = lag_us.max(t.lag_us.swap(0, Ordering::Relaxed));
            wait_ns += t.window_wait_ns.load(Ordering::Relaxed);
        }
        (Duration::from_micros(lag_us), Duration::from_nanos(wait_ns))
    }

    /// Live stats of this client, for the `Stats` endpoint.
    pub fn snapshot(&self) -> kv_core::stats::StatsSnapshot {
        let t = self.totals();
        let op = self.merged(|l| &l.op);
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(&op, self.started.elapsed());
        kv_core::stats::StatsSnapshot {
            role: kv_core::stats::Role::Client,
            pid: std::process::id(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            gets: t.gets,
            puts: t.puts,
            failed: t.failed,
            batches: 0,
            generated: t.generated,
            keys: 0,
            process: kv_core::process::ProcessSample::now(),
            latency: Some(op.summary()),
            recent_latency: recent,
            open_loop: self.pace.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            finished: self.finished.load(Ordering::Relaxed),
        }
    }

    pub fn totals(&self) -> OpCounts {
        let mut c = OpCounts::default();
        for t in &self.threads {
            c.add(&t.load());
        }
        c
    }

    fn fail(&self, msg: String) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(msg);
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The op latency histogram so far, merged across threads.
    pub fn op_histogram(&self) -> LatencyHistogram {
        self.merged(|l| &l.op)
    }

    /// Op latency so far, merged across threads.
    pub fn op_latency(&self) -> LatencySummary {
        self.merged(|l| &l.op).summary()
    }

    fn merged(&self, pick: impl Fn(&Latencies) -> &LatencyHistogram) -> LatencyHistogram {
        let mut h = LatencyHistogram::default();
        for l in &self.latencies {
            h.merge(pick(&l.lock().unwrap_or_else(|e| e.into_inner())));
        }
        h
    }
}

/// One server's connections and the name errors use.
struct ServerConns {
    name: String,
    clients: Vec<KvClient>,
    /// The first connection's `ping` answer.
    info: ServerInfo,
}

enum Sink {
    Rpc(Vec<ServerConns>),
    Local(Arc<Store>),
}

/// Connects to every server (or builds the in-process store).
async fn open_sink(cfg: &Config) -> Result<Sink> {
    match &cfg.target {
        Target::InProcess { preload } => {
            let n = *preload;
            let store = tokio::task::spawn_blocking(move || Store::preloaded(n)).await?;
            Ok(Sink::Local(Arc::new(store)))
        }
        Target::Servers(hosts) => {
            let opts = ConnectOptions {
                connect_timeout: cfg.connect_timeout,
                // Every thread sharing a connection may have `window` calls queued.
                max_in_flight: (cfg.window * cfg.threads.div_ceil(cfg.connections)).max(64),
                ..ConnectOptions::default()
            };
            let mut servers = Vec::with_capacity(hosts.len());
            for host in hosts {
                let mut clients = Vec::with_capacity(cfg.connections);
                for _ in 0..cfg.connections {
                    clients.push(transport::connect(host, &opts).await?);
                }
                // Readiness: the first connection must answer a ping.
                let info = clients[0]
                    .ping(context_with_timeout(cfg.rpc_timeout))
                    .await
                    .with_context(|| format!("server {host} did not answer ping"))?;
                servers.push(ServerConns {
                    name: host.clone(),
                    clients,
                    info,
                });
            }
            Ok(Sink::Rpc(servers))
        }
    }
}

/// Ops being gathered for one server.
struct OpenBatch {
    ops: Vec<Op>,
    /// The ops' key texts, one buffer per batch: its reference count is
    /// touched by this thread while the batch is built, then by whoever
    /// consumes it, never by both at once.
    keys: BytesMut,
    gets: u64,
    opened: Instant,
    /// Open loop: each op's intended start, ns after the run's start.
    intended: Vec<u64>,
    trace: Option<BatchTrace>,
}

impl OpenBatch {
    fn new(cap: usize, check: bool, open_loop: bool) -> Self {
        Self {
            ops: Vec::with_capacity(cap),
            keys: BytesMut::with_capacity(cap * KEY_BYTES),
            gets: 0,
            opened: Instant::now(),
            intended: Vec::with_capacity(if open_loop { cap } else { 0 }),
            trace: check.then(BatchTrace::default),
        }
    }
}

/// Runs the configured load until its duration passes or `stop` resolves,
/// drains every in-flight batch, and summarises.
pub async fn run(cfg: Config, shared: Arc<Shared>, stop: impl Future) -> Result<ClientSummary> {
    let spec = Arc::new(WorkloadSpec::new(cfg.workload, cfg.theta));
    tokio::pin!(stop);
    // A signal while connecting (retries can take --connect-timeout per
    // server) ends the client at once, as an interrupted run that ran no op
    // (zero counts, exit 0), so a Ctrl-C right after start never waits.
    let sink = tokio::select! {
        sink = open_sink(&cfg) => Arc::new(sink?),
        _ = &mut stop => {
            return Ok(ClientSummary {
                config: Some(cfg.facts()),
                totals: shared.totals(),
                per_thread: Vec::new(),
                elapsed_s: 0.0,
                batch_latency: None,
                op_latency: None,
                op_latency_hdr: None,
                failure: None,
                seeds: Some((
                    thread_seed(cfg.seed, 0),
                    thread_seed(cfg.seed, cfg.threads as u64 - 1),
                )),
                open_loop: None,
            })
        }
    };
    let check = match &cfg.check {
        Some(path) => {
            let facts = match &*sink {
                Sink::Rpc(servers) => RunFacts::of_servers(servers.iter().map(|s| &s.info))?,
                Sink::Local(store) => RunFacts::in_process(store.preload()),
            };
            Some(Arc::new(CheckSink::create(path, cfg.client_id, &facts)?))
        }
        None => None,
    };
    // Check mode over RPC: the history clock's offset to the first server's.
    let clock = match (&cfg.check, &*sink) {
        (Some(_), Sink::Rpc(servers)) => {
            let first = &servers[0];
            let trace =
                ClockTrace::start(first.clients[0].clone(), &first.info, cfg.rpc_timeout).await?;
            Some(Arc::new(trace))
        }
        _ => None,
    };
    let sampler = clock.clone().map(|c| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            while !shared.finished.load(Ordering::Relaxed) {
                tick.tick().await;
                c.sample(1).await;
            }
        })
    });
    let cfg = Arc::new(cfg);
    let start = Instant::now();
    let deadline = start + cfg.duration;
    shared.run_start.get_or_init(|| start);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..cfg.threads {
        tasks.spawn(generate(
            i,
            cfg.clone(),
            spec.clone(),
            sink.clone(),
            shared.clone(),
            check.clone(),
            start,
            deadline,
        ));
    }
    let mut stopped_early = false;
    loop {
        tokio::select! {
            _ = &mut stop, if !stopped_early => {
                stopped_early = true;
                shared.stop.store(true, Ordering::Relaxed);
            }
            next = tasks.join_next() => match next {
                Some(r) => r.context("generator thread panicked")?,
                None => break,
            }
        }
    }
    let elapsed = start.elapsed();
    shared.finished.store(true, Ordering::Relaxed);
    if let Some(s) = sampler {
        s.abort();
    }
    if let (Some(c), Some(path)) = (&clock, &cfg.check) {
        c.sample(8).await;
        c.write(path)?;
    }
    if let Some(check) = check {
        check.finish()?;
    }
    let per_thread: Vec<OpCounts> = shared.threads.iter().map(ThreadCounts::load).collect();
    Ok(ClientSummary {
        config: Some(cfg.facts()),
        totals: shared.totals(),
        per_thread,
        elapsed_s: elapsed.as_secs_f64(),
        batch_latency: Some(shared.merged(|l| &l.batch).summary()),
        op_latency: Some(shared.op_latency()),
        op_latency_hdr: Some(shared.merged(|l| &l.op).to_hex()),
        failure: shared.failure(),
        seeds: Some((
            thread_seed(cfg.seed, 0),
            thread_seed(cfg.seed, cfg.threads as u64 - 1),
        )),
        open_loop: match cfg.load {
            Load::Closed => None,
            Load::Open(o) => Some(OpenLoopSummary {
                offered_per_s: o.rate_per_s,
                arrival: o.arrival.name().into(),
                flush_us: o.flush.as_micros() as u64,
                scheduled: (o.rate_per_s * cfg.duration.as_secs_f64()) as u64,
                // Per-second verdicts are the pace monitor's (main.rs).
                seconds: 0,
                client_limited_s: 0,
            }),
        },
    })
}

pub fn new_shared(threads: usize) -> Arc<Shared> {
    Arc::new(Shared::new(threads))
}

/// Builds ops from one thread's generator into per-server open batches:
/// the part closed and open loop share.
struct OpMaker<'a> {
    gen: kv_core::workload::Generator,
    servers: usize,
    batch: usize,
    check: Option<&'a Arc<CheckSink>>,
    thread: usize,
    seq: u64,
    key_buf: [u8; 20],
    filler: Bytes,
    skip_one: bool,
}

impl OpMaker<'_> {
    /// Adds the next op to its server's batch; returns that server when
    /// the batch is now full. `intended` is the op's intended start (open
    /// loop), as an offset from the run's start.
    fn add(&mut self, open: &mut [OpenBatch], intended: Option<u64>) -> Option<usize> {
        let op = self.gen.next_op();
        self.seq += 1;
        if std::mem::take(&mut self.skip_one) {
            return None;
        }
        let text = key_text(op.key, &mut self.key_buf);
        let s = if self.servers == 1 {
            0
        } else {
            server_for(text, self.servers)
        };
        let b = &mut open[s];
        // A slice of the batch's key buffer: no allocation per key.
        b.keys.extend_from_slice(text);
        let key = b.keys.split().freeze();
        if b.ops.is_empty() {
            b.opened = Instant::now();
        }
        if let Some(at) = intended {
            b.intended.push(at);
        }
        let value = match self.check {
            Some(c) if op.kind == OpKind::Put => c.value_for(self.thread as u32, self.seq),
            _ => self.filler.clone(),
        };
        if let Some(t) = &mut b.trace {
            t.push(self.seq, op.kind, op.key, &value);
        }
        match op.kind {
            OpKind::Get => {
                b.gets += 1;
                b.ops.push(Op::Get { key });
            }
            OpKind::Put => b.ops.push(Op::Put { key, value }),
        }
        (b.ops.len() >= self.batch).then_some(s)
    }

    fn take(&self, open: &mut [OpenBatch], s: usize, open_loop: bool) -> OpenBatch {
        std::mem::replace(
            &mut open[s],
            OpenBatch::new(self.batch, self.check.is_some(), open_loop),
        )
    }
}

#[allow(clippy::too_many_arguments)]
async fn generate(
    thread: usize,
    cfg: Arc<Config>,
    spec: Arc<WorkloadSpec>,
    sink: Arc<Sink>,
    shared: Arc<Shared>,
    check: Option<Arc<CheckSink>>,
    start: Instant,
    deadline: Instant,
) {
    let servers = match &*sink {
        Sink::Rpc(s) => s.len(),
        Sink::Local(_) => 1,
    };
    let windows: Vec<Arc<Semaphore>> = (0..servers)
        .map(|_| Arc::new(Semaphore::new(cfg.window)))
        .collect();
    let open_loop = matches!(cfg.load, Load::Open(_));
    let mut open: Vec<OpenBatch> = (0..servers)
        .map(|_| OpenBatch::new(cfg.batch, check.is_some(), open_loop))
        .collect();
    let mut maker = OpMaker {
        gen: spec.generator(thread_seed(cfg.seed, thread as u64)),
        servers,
        batch: cfg.batch,
        check: check.as_ref(),
        thread,
        seq: 0,
        key_buf: [0u8; 20],
        filler: filler_value(),
        skip_one: cfg.drop_one_op,
    };
    let ctx = Dispatch {
        thread,
        cfg: &cfg,
        sink: &sink,
        shared: &shared,
        check: check.as_ref(),
        windows: &windows,
        start,
    };
    match cfg.load {
        Load::Closed => closed_loop(&ctx, &mut maker, &mut open, deadline).await,
        Load::Open(o) => open_loop_run(&ctx, &mut maker, &mut open, o, start, deadline).await,
    }
    // Drain: send the partial batches, then wait until every window is whole again.
    for (s, b) in open.into_iter().enumerate() {
        if !b.ops.is_empty() {
            ctx.dispatch(s, b).await;
        }
    }
    for w in &windows {
        // The semaphore is never closed, so this only waits.
        let _ = w.acquire_many(cfg.window as u32).await;
    }
}

/// As fast as the windows allow: a batch is sent when full.
async fn closed_loop(
    ctx: &Dispatch<'_>,
    maker: &mut OpMaker<'_>,
    open: &mut [OpenBatch],
    deadline: Instant,
) {
    let counts = &ctx.shared.threads[ctx.thread];
    loop {
        // Counted once per chunk: a per-op atomic add showed up in profiles.
        counts.generated.fetch_add(CHUNK as u64, Ordering::Relaxed);
        for _ in 0..CHUNK {
            if let Some(s) = maker.add(open, None) {
                let full = maker.take(open, s, false);
                ctx.dispatch(s, full).await;
            }
        }
        if ctx.shared.stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            return;
        }
    }
}

/// Longest the open-loop generator sleeps between looks at the stop flag.
const MAX_NAP: Duration = Duration::from_millis(50);
/// How soon a generator looks again at a due batch whose window is full.
const WINDOW_RECHECK: Duration = Duration::from_micros(50);

/// On a schedule: every op due by now is generated (latency counts from
/// its intended start, so a generator that wakes late or waits for a
/// window charges that wait to the op), a batch is sent when full or
/// `flush` after its first op's intended start if a window slot is free
/// (else it goes on filling: batches grow with the load).
async fn open_loop_run(
    ctx: &Dispatch<'_>,
    maker: &mut OpMaker<'_>,
    open: &mut [OpenBatch],
    o: OpenLoop,
    start: Instant,
    deadline: Instant,
) {
    let counts = &ctx.shared.threads[ctx.thread];
    let threads = ctx.cfg.threads;
    let mut sched = Schedule::new(
        o.rate_per_s / threads as f64,
        o.arrival,
        thread_seed(ctx.cfg.seed, ctx.thread as u64),
        ctx.thread as f64 / threads as f64,
    );
    let mut next = sched.next_offset();
    let end = deadline.saturating_duration_since(start);
    let flush_ns = o.flush.as_nanos() as u64;
    // Time for one batch's worth of ops to arrive at this thread's mean rate.
    let fill_ns = (ctx.cfg.batch as f64 * 1e9 * threads as f64 / o.rate_per_s) as u64;
    let mut nap = Nap::new().unwrap_or_else(|e| {
        eprintln!("kv-client: no timerfd ({e}): open-loop naps round up to 1 ms");
        Nap::Coarse
    });
    loop {
        if ctx.shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let now = start.elapsed();
        if now >= end {
            return;
        }
        // How far behind its schedule this generator is (0 when on time).
        let lag = now.saturating_sub(next);
        counts.lag_us.fetch_max(micros(lag), Ordering::Relaxed);
        let mut made: u64 = 0;
        while next <= now && next < end && made < CHUNK as u64 {
            let at = next.as_nanos() as u64;
            made += 1;
            next = sched.next_offset();
            if let Some(s) = maker.add(open, Some(at)) {
                counts.generated.fetch_add(made, Ordering::Relaxed);
                made = 0;
                let full = maker.take(open, s, true);
                ctx.dispatch(s, full).await;
            }
        }
        counts.generated.fetch_add(made, Ordering::Relaxed);
        // Partial batches whose flush time has come.
        let now_ns = start.elapsed().as_nanos() as u64;
        // Ops need to exist only when their batch goes out: wake when the
        // next op's batch could be due (flushed, or full at the mean rate),
        // not at every op's arrival (a wake-up per op would eat a core).
        let next_ns = next.as_nanos() as u64;
        let mut wake = (next_ns + flush_ns.min(fill_ns)).min(end.as_nanos() as u64);
        for s in 0..open.len() {
            let Some(&first) = open[s].intended.first() else {
                continue;
            };
            if first + flush_ns > now_ns {
                wake = wake.min(first + flush_ns);
            } else if ctx.windows[s].available_permits() > 0 {
                // This thread is the window's only taker: no wait.
                let b = maker.take(open, s, true);
                ctx.dispatch(s, b).await;
            } else {
                // Due, but every slot is in flight: the batch keeps filling
                // (up to --batch) until one frees, so batches grow with the
                // load instead of small ones queueing for slots.
                wake = wake.min(now_ns + WINDOW_RECHECK.as_nanos() as u64);
            }
        }
        let now_ns = start.elapsed().as_nanos() as u64;
        if wake > now_ns {
            // Precise to microseconds (nap.rs): tokio's timer would wake
            // up to ~1 ms late, which intended-time latency would show.
            nap.sleep(Duration::from_nanos(wake - now_ns).min(MAX_NAP))
                .await;
        } else {
            // Behind schedule: let completions on this worker run.
            tokio::task::yield_now().await;
        }
    }
}

struct Dispatch<'a> {
    thread: usize,
    cfg: &'a Arc<Config>,
    sink: &'a Arc<Sink>,
    shared: &'a Arc<Shared>,
    check: Option<&'a Arc<CheckSink>>,
    windows: &'a [Arc<Semaphore>],
    /// The run's start: open-loop intended times are offsets from it.
    start: Instant,
}

/// How a batch ended.
enum Outcome {
    Done(Vec<OpResult>),
    Failed(String),
}

impl Dispatch<'_> {
    async fn dispatch(&self, server: usize, batch: OpenBatch) {
        let n = batch.ops.len() as u64;
        let counts = &self.shared.threads[self.thread];
        let window = &self.windows[server];
        let permit = match window.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // The window is full: time spent here is the client's limit.
                let waited = Instant::now();
                let Ok(p) = window.clone().acquire_owned().await else {
                    return;
                };
                counts
                    .window_wait_ns
                    .fetch_add(waited.elapsed().as_nanos() as u64, Ordering::Relaxed);
                p
            }
        };
        if self
            .shared
            .failure
            .lock()
            .map(|f| f.is_some())
            .unwrap_or(true)
        {
            // A server already failed: do not send into a broken run; count as failed.
            counts.sent.fetch_add(n, Ordering::Relaxed);
            counts.failed.fetch_add(n, Ordering::Relaxed);
            drop(permit);
            return;
        }
        counts.sent.fetch_add(n, Ordering::Relaxed);
        let sent_at = Instant::now();
        let invoke_ns = kv_core::history::monotonic_ns();
        let done = Completion {
            thread: self.thread,
            shared: self.shared.clone(),
            check: self.check.cloned(),
            opened: batch.opened,
            start: self.start,
            intended: batch.intended,
            sent_at,
            invoke_ns,
            gets: batch.gets,
            n,
            trace: batch.trace,
        };
        match &**self.sink {
            Sink::Local(store) => {
                // No wire, so no reply bound: usize::MAX always yields Some.
                let (results, _) = store.apply(batch.ops, usize::MAX);
                done.finish(
                    "in-process store",
                    Outcome::Done(results.unwrap_or_default()),
                );
                drop(permit);
            }
            Sink::Rpc(servers) => {
                let conn = &servers[server];
                let client = conn.clients[self.thread % conn.clients.len()].clone();
                let name = conn.name.clone();
                let ctx = context_with_timeout(self.cfg.rpc_timeout);
                let ops = batch.ops;
                let mut call = Box::pin(async move { client.batch(ctx, ops).await });
                // Poll once here so the call is enqueued on its connection
                // before the next batch of this stream is built (ordering).
                let first = futures::poll!(call.as_mut());
                let finish = move |r: Result<
                    Result<Vec<OpResult>, kv_core::rpc::KvError>,
                    tarpc::client::RpcError,
                >| {
                    let outcome = match r {
                        Ok(Ok(results)) => Outcome::Done(results),
                        Ok(Err(e)) => {
                            Outcome::Failed(format!("server {name} refused a batch: {e}"))
                        }
                        Err(e) => Outcome::Failed(format!(
                            "server {name} failed: {}",
                            kv_core::transport::rpc_error_text(&e)
                        )),
                    };
                    done.finish(&name, outcome);
                    drop(permit);
                };
                match first {
                    Poll::Ready(r) => finish(r),
                    Poll::Pending => {
                        tokio::spawn(async move { finish(call.await) });
                    }
                }
            }
        }
    }
}

/// Everything needed to account for a batch once its reply (or error) arrives.
struct Completion {
    thread: usize,
    shared: Arc<Shared>,
    check: Option<Arc<CheckSink>>,
    opened: Instant,
    start: Instant,
    intended: Vec<u64>,
    sent_at: Instant,
    invoke_ns: u64,
    gets: u64,
    n: u64,
    trace: Option<BatchTrace>,
}

impl Completion {
    fn finish(self, server: &str, outcome: Outcome) {
        let counts = &self.shared.threads[self.thread];
        let now = Instant::now();
        let complete_ns = kv_core::history::monotonic_ns();
        match outcome {
            Outcome::Done(results) if results.len() as u64 == self.n => {
                counts.gets.fetch_add(self.gets, Ordering::Relaxed);
                counts.puts.fetch_add(self.n - self.gets, Ordering::Relaxed);
                {
                    let mut l = self.shared.latencies[self.thread]
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    l.batch.record_n(micros(now - self.sent_at), 1);
                    if self.intended.is_empty() {
                        l.op.record_n(micros(now - self.opened), self.n);
                    } else {
                        // Open loop: from each op's intended start.
                        let done_ns = (now - self.start).as_nanos() as u64;
                        for &at in &self.intended {
                            l.op.record_n(done_ns.saturating_sub(at) / 1000, 1);
                        }
                    }
                }
                if let (Some(check), Some(trace)) = (&self.check, &self.trace) {
                    check.record(
                        self.thread as u32,
                        trace,
                        Some(&results),
                        self.invoke_ns,
                        complete_ns,
                    );
                }
            }
            Outcome::Done(results) => {
                counts.failed.fetch_add(self.n, Ordering::Relaxed);
                // Recorded as they came: ops beyond the reply are unknown.
                if let (Some(check), Some(trace)) = (&self.check, &self.trace) {
                    check.record(
                        self.thread as u32,
                        trace,
                        Some(&results),
                        self.invoke_ns,
                        complete_ns,
                    );
                }
                self.shared.fail(format!(
                    "server {server} answered {} results to a batch of {} ops",
                    results.len(),
                    self.n
                ));
            }
            Outcome::Failed(msg) => {
                counts.failed.fetch_add(self.n, Ordering::Relaxed);
                if let (Some(check), Some(trace)) = (&self.check, &self.trace) {
                    check.record(self.thread as u32, trace, None, self.invoke_ns, complete_ns);
                }
                self.shared.fail(msg);
            }
        }
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}
