//! Byte accounting for what peers can make a server hold: read and write
//! buffers, and replies built but not yet written to the socket. One
//! [`ProcessMemory`] per process, one [`ConnMemory`] per connection.
//! Counts are exact for buffers (their capacities) and an upper bound of
//! the encoded size for replies ([`Weigh`]). Out: the store itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use crate::rpc::{KvResponse, OpResult, StatsResponse};

/// Bytes a result adds to an encoded reply beyond its value: the variant,
/// the option tag and the length prefix, rounded up (bincode varints use at
/// most 1 + 1 + 9 bytes).
pub const RESULT_OVERHEAD_BYTES: usize = 16;
/// Bytes of a reply frame beyond its results: length prefix, request id,
/// the Result and Vec headers, rounded up.
pub const REPLY_HEADER_BYTES: usize = 64;

/// An upper bound of the encoded size of `results` (at least the real size).
pub fn reply_bytes(results: &[OpResult]) -> usize {
    REPLY_HEADER_BYTES
        + results
            .iter()
            .map(|r| match r {
                OpResult::Value(Some(v)) => v.len() + RESULT_OVERHEAD_BYTES,
                _ => RESULT_OVERHEAD_BYTES,
            })
            .sum::<usize>()
}

/// What a reply counts against the budgets while it waits to be written.
pub trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for KvResponse {
    fn weight(&self) -> usize {
        match self {
            KvResponse::Batch(Ok(results)) => reply_bytes(results),
            KvResponse::Get(Ok(Some(v))) => REPLY_HEADER_BYTES + v.len(),
            _ => REPLY_HEADER_BYTES,
        }
    }
}

impl Weigh for StatsResponse {
    fn weight(&self) -> usize {
        REPLY_HEADER_BYTES
    }
}

impl<T: Weigh, E> Weigh for Result<T, E> {
    fn weight(&self) -> usize {
        self.as_ref().map_or(REPLY_HEADER_BYTES, Weigh::weight)
    }
}

/// The process-wide budget: bytes held by all connections together.
#[derive(Debug)]
pub struct ProcessMemory {
    held: AtomicUsize,
    budget: usize,
    /// Connections that stopped reading because the budget was spent; woken
    /// whenever bytes are released (a cold path, so a lock is fine).
    waiting: Mutex<Vec<Waker>>,
}

impl ProcessMemory {
    pub fn new(budget_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            held: AtomicUsize::new(0),
            budget: budget_bytes,
            waiting: Mutex::new(Vec::new()),
        })
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// True once the held bytes reach the budget.
    pub fn spent(&self) -> bool {
        self.held() >= self.budget
    }

    fn add(&self, n: usize) {
        self.held.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::Relaxed);
        if n > 0 && !self.spent() {
            let wakers =
                std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    fn wait(&self, w: &Waker) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(w.clone());
    }
}

/// One connection's share: its buffers and its unwritten replies.
#[derive(Debug)]
pub struct ConnMemory {
    process: Arc<ProcessMemory>,
    /// Bytes of replies built and not yet encoded into the write buffer.
    replies: AtomicUsize,
    /// Capacity of the read and write buffers, as last seen.
    buffers: AtomicUsize,
    /// Above this many reply bytes the connection stops reading.
    reply_limit: usize,
    waker: Mutex<Option<Waker>>,
}

impl ConnMemory {
    pub fn new(process: Arc<ProcessMemory>, reply_limit_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            process,
            replies: AtomicUsize::new(0),
            buffers: AtomicUsize::new(0),
            reply_limit: reply_limit_bytes,
            waker: Mutex::new(None),
        })
    }

    pub fn process(&self) -> &ProcessMemory {
        &self.process
    }

    pub fn reply_bytes(&self) -> usize {
        self.replies.load(Ordering::Relaxed)
    }

    /// A reply of `n` bytes was built and waits to be written.
    pub fn hold_reply(&self, n: usize) {
        self.replies.fetch_add(n, Ordering::Relaxed);
        self.process.add(n);
    }

    /// A reply of `n` bytes was encoded into the write buffer (which is
    /// counted by [`ConnMemory::set_buffers`] from then on).
    pub fn release_reply(&self, n: usize) {
        // Saturating: a reply built before a count was reset never underflows.
        let before = self
            .replies
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                Some(r.saturating_sub(n))
            })
            .unwrap_or(0);
        self.process.sub(before.min(n));
        if self.reply_bytes() < self.reply_limit {
            if let Some(w) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
                w.wake();
            }
        }
    }

    /// The buffers' capacities now add up to `n` bytes.
    pub fn set_buffers(&self, n: usize) {
        let old = self.buffers.swap(n, Ordering::Relaxed);
        if n > old {
            self.process.add(n - old);
        } else {
            self.process.sub(old - n);
        }
    }

    /// Whether the connection may read more now. When not, `w` is woken
    /// once bytes are released. `reading_big` says a partial frame larger
    /// than a small request is buffered: only such reads wait for the
    /// process budget, so small requests (pings, stats) are always read
    /// and answered, if only with a refusal.
    pub fn may_read(&self, w: &Waker, reading_big: bool) -> bool {
        if self.reply_bytes() >= self.reply_limit {
            *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(w.clone());
            // Re-check: the writer may have released between the load and the store.
            return self.reply_bytes() < self.reply_limit;
        }
        if reading_big && self.process.spent() {
            self.process.wait(w);
            return !self.process.spent();
        }
        true
    }
}

impl Drop for ConnMemory {
    /// A closed connection gives back everything it still counted.
    fn drop(&mut self) {
        let n = *self.replies.get_mut() + *self.buffers.get_mut();
        self.process.sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_return_to_zero_when_a_connection_closes() {
        let p = ProcessMemory::new(1000);
        let c = ConnMemory::new(p.clone(), 100);
        c.hold_reply(150);
        c.set_buffers(300);
        assert_eq!(p.held(), 450);
        let w = futures::task::noop_waker();
        assert!(!c.may_read(&w, false), "over the connection's reply limit");
        c.release_reply(100);
        assert!(c.may_read(&w, false));
        c.set_buffers(1000);
        assert!(p.spent());
        assert!(c.may_read(&w, false), "small reads go on");
        assert!(!c.may_read(&w, true), "big reads wait for the budget");
        drop(c);
        assert_eq!(p.held(), 0);
    }

    #[test]
    fn reply_bytes_bound_the_encoded_size() {
        use bincode::Options;
        let results = vec![
            OpResult::Value(Some(bytes::Bytes::from(vec![7u8; 300]))),
            OpResult::Value(None),
            OpResult::Stored,
        ];
        let resp = tarpc::Response {
            request_id: u64::MAX,
            message: Ok::<_, tarpc::ServerError>(KvResponse::Batch(Ok(results.clone()))),
        };
        let encoded = bincode::DefaultOptions::new().serialize(&resp).unwrap();
        assert!(
            encoded.len() + 4 <= reply_bytes(&results),
            "{}",
            encoded.len()
        );
    }
}
