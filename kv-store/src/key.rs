//! `StoreKey`: a map key that keeps short keys inline in the table slot.
//!
//! Benchmark keys are at most 7 decimal digits. Holding them inline saves a
//! heap allocation per record and, more importantly, the cache miss of
//! following a pointer to compare keys during a lookup: with boxed keys that
//! comparison was half of the server's CPU time on the Zipf tail.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// Longest key stored inline (the slot is 24 bytes either way).
const INLINE: usize = 22;

#[derive(Clone)]
pub enum StoreKey {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl StoreKey {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            StoreKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            StoreKey::Heap(b) => b,
        }
    }
}

impl From<&[u8]> for StoreKey {
    fn from(key: &[u8]) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            StoreKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            StoreKey::Heap(key.into())
        }
    }
}

// Hash and Eq must agree with `[u8]`'s, so lookups can borrow as `&[u8]`.
impl Hash for StoreKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialEq for StoreKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for StoreKey {}

impl Borrow<[u8]> for StoreKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn inline_and_heap_keys_behave_like_slices() {
        assert_eq!(std::mem::size_of::<StoreKey>(), 24);
        let long = [b'x'; 100];
        let mut m = HashMap::new();
        m.insert(StoreKey::from(&b"4004"[..]), 1);
        m.insert(StoreKey::from(&long[..]), 2);
        m.insert(StoreKey::from(&b""[..]), 3);
        assert!(matches!(
            StoreKey::from(&b"4004"[..]),
            StoreKey::Inline { .. }
        ));
        assert!(matches!(StoreKey::from(&long[..]), StoreKey::Heap(_)));
        assert_eq!(m.get(&b"4004"[..]), Some(&1));
        assert_eq!(m.get(&long[..]), Some(&2));
        assert_eq!(m.get(&b""[..]), Some(&3));
        assert_eq!(m.get(&b"400"[..]), None);
        assert_eq!(StoreKey::from(&b"22"[..]).as_bytes(), b"22");
    }
}
