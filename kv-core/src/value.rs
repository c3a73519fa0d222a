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

/// What a stored value is, as far as kvlab can tell from its bytes and
/// the key it was read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// Written by `--preload` under this very key (the register's initial value).
    Init,
    /// The preloaded value of another key (numbered as given): a server
    /// that answers it mixed keys up, which the checker must see.
    InitOf(u64),
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

/// Classifies `value`, read under `key`, by its prefix. A preloaded value
/// counts as the initial value only when it names `key` itself.
pub fn identify(key: &[u8], value: &[u8]) -> ValueKind {
    let body = |prefix: &[u8]| {
        value
            .strip_prefix(prefix)
            .map(|rest| rest.split(|&c| c == PAD).next().unwrap_or(rest))
    };
    if let Some(owner) = body(INIT_PREFIX) {
        if owner == key {
            return ValueKind::Init;
        }
        return std::str::from_utf8(owner)
            .ok()
            .and_then(|s| s.parse().ok())
            // Keys are canonical decimal: "007" is nobody's key text.
            .filter(|k: &u64| k.to_string().as_bytes() == owner)
            .map_or(ValueKind::Other, ValueKind::InitOf);
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
        assert_eq!(identify(b"9", &v), ValueKind::Written(id));
        assert_eq!(identify(b"4004", &preload_value(b"4004")), ValueKind::Init);
        assert_eq!(preload_value(b"4004").len(), VALUE_LEN);
        assert_eq!(identify(b"1", &filler_value()), ValueKind::Other);
        assert_eq!(identify(b"1", b"kvlab:put:1.2"), ValueKind::Other);
    }

    #[test]
    fn another_keys_preloaded_value_is_not_the_initial_value() {
        // A server answering key 4004 with key 4005's record mixed keys up.
        assert_eq!(
            identify(b"4004", &preload_value(b"4005")),
            ValueKind::InitOf(4005)
        );
        assert_eq!(
            identify(b"40", &preload_value(b"4004")),
            ValueKind::InitOf(4004)
        );
        // Not a key at all, or not canonical: plain garbage.
        assert_eq!(identify(b"1", &preload_value(b"x1")), ValueKind::Other);
        assert_eq!(identify(b"1", &preload_value(b"01")), ValueKind::Other);
    }
}
