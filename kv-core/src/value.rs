//! Value encodings shared by servers, clients and the checker: preloaded
//! values name their key, and check-mode puts write a value unique in the
//! whole run (client, thread, sequence), so a read tells which write it saw.

use bytes::{Bytes, BytesMut};

use crate::workload::VALUE_LEN;

const INIT_PREFIX: &[u8] = b"kvlab:init:";
const PUT_PREFIX: &[u8] = b"kvlab:put:";
const PAD: u8 = b'_';

/// Identity of a written value, unique within a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId {
    pub client: u32,
    pub thread: u32,
    pub seq: u64,
}

impl std::fmt::Display for ValueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.client, self.thread, self.seq)
    }
}

impl std::str::FromStr for ValueId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let mut it = s.split('.');
        let v = ValueId {
            client: it.next().ok_or(())?.parse().map_err(|_| ())?,
            thread: it.next().ok_or(())?.parse().map_err(|_| ())?,
            seq: it.next().ok_or(())?.parse().map_err(|_| ())?,
        };
        if it.next().is_some() {
            return Err(());
        }
        Ok(v)
    }
}

/// What a stored value is, as far as kvlab can tell from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// Written by `--preload` (the register's initial value).
    Init,
    /// Written by a check-mode put.
    Written(ValueId),
    /// Anything else (benchmark filler, ad-hoc puts).
    Other,
}

fn padded(prefix: &[u8], body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(VALUE_LEN);
    b.extend_from_slice(prefix);
    b.extend_from_slice(body);
    if b.len() < VALUE_LEN {
        b.resize(VALUE_LEN, PAD);
    }
    b.freeze()
}

/// The 128-byte value `--preload` stores under `key`.
pub fn preload_value(key: &[u8]) -> Bytes {
    padded(INIT_PREFIX, key)
}

/// The 128-byte value a check-mode put writes.
pub fn unique_value(id: ValueId) -> Bytes {
    padded(PUT_PREFIX, id.to_string().as_bytes())
}

/// Benchmark filler: one shared 128-byte value, cloned without copying.
pub fn filler_value() -> Bytes {
    static FILLER: [u8; VALUE_LEN] = [b'v'; VALUE_LEN];
    Bytes::from_static(&FILLER)
}

/// Classifies a stored value by its prefix.
pub fn identify(value: &[u8]) -> ValueKind {
    let body = |prefix: &[u8]| {
        value
            .strip_prefix(prefix)
            .map(|rest| rest.split(|&c| c == PAD).next().unwrap_or(rest))
    };
    if body(INIT_PREFIX).is_some() {
        return ValueKind::Init;
    }
    match body(PUT_PREFIX)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
    {
        Some(id) => ValueKind::Written(id),
        None => ValueKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let id = ValueId {
            client: 3,
            thread: 1,
            seq: 987_654,
        };
        let v = unique_value(id);
        assert_eq!(v.len(), VALUE_LEN);
        assert_eq!(identify(&v), ValueKind::Written(id));
        assert_eq!(identify(&preload_value(b"4004")), ValueKind::Init);
        assert_eq!(preload_value(b"4004").len(), VALUE_LEN);
        assert_eq!(identify(&filler_value()), ValueKind::Other);
        assert_eq!(identify(b"kvlab:put:1.2"), ValueKind::Other);
    }
}
