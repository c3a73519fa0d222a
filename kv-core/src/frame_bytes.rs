//! Byte fields decoded as slices of the frame they arrived in.
//!
//! serde's `Bytes` impl asks bincode for an owned buffer, so every key of a
//! request and every value of a reply was a heap allocation and a copy.
//! A codec that owns the frame as `Bytes` decodes it inside [`with_frame`];
//! fields marked `#[serde(deserialize_with = "frame_bytes::bytes")]` then
//! borrow from the frame and become `frame.slice_ref(..)`: a reference
//! count on the frame, no allocation. Outside a frame (or for formats that
//! cannot borrow) they are copied as before. The wire format is unchanged:
//! bincode lays out `serialize_bytes` and `deserialize_bytes` alike.

use std::cell::RefCell;
use std::fmt;

use bytes::Bytes;
use serde::de::{Deserializer, SeqAccess, Visitor};

thread_local! {
    /// The frame being decoded on this thread, if any.
    static FRAME: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Runs `decode` over `frame`'s bytes with `frame` as this thread's current
/// frame, so byte fields borrowing from it become slices of it.
pub fn with_frame<T>(frame: &Bytes, decode: impl FnOnce(&[u8]) -> T) -> T {
    struct Reset(Option<Bytes>);
    impl Drop for Reset {
        fn drop(&mut self) {
            FRAME.with(|f| *f.borrow_mut() = self.0.take());
        }
    }
    let _reset = Reset(FRAME.with(|f| f.borrow_mut().replace(frame.clone())));
    decode(frame)
}

/// `borrowed` as a slice of the current frame when it lies inside it,
/// otherwise a copy.
fn from_frame(borrowed: &[u8]) -> Bytes {
    FRAME.with(|f| match &*f.borrow() {
        Some(frame) if within(frame, borrowed) => frame.slice_ref(borrowed),
        _ => Bytes::copy_from_slice(borrowed),
    })
}

fn within(frame: &[u8], part: &[u8]) -> bool {
    let (f, p) = (frame.as_ptr() as usize, part.as_ptr() as usize);
    p >= f && p + part.len() <= f + frame.len()
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Bytes, E> {
        Ok(from_frame(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v))
    }

    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(Bytes::from(v))
    }
}

/// A `Bytes` field, sliced from the current frame when possible.
pub fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    d.deserialize_bytes(BytesVisitor)
}

/// An `Option<Bytes>` field, sliced from the current frame when possible.
pub fn opt_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Bytes>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<Bytes>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an optional byte string")
        }
        fn visit_none<E>(self) -> Result<Option<Bytes>, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<Bytes>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<Bytes>, D::Error> {
            bytes(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{Op, OpResult};
    use bincode::Options;

    fn opts() -> impl Options {
        bincode::DefaultOptions::new()
    }

    #[test]
    fn fields_are_slices_of_the_frame_and_the_wire_is_unchanged() {
        let ops = vec![
            Op::Get {
                key: Bytes::from_static(b"1234"),
            },
            Op::Put {
                key: Bytes::from_static(b"99"),
                value: Bytes::from(vec![7u8; 128]),
            },
        ];
        let frame = Bytes::from(opts().serialize(&ops).unwrap());
        // The same bytes as serde's own `Bytes` layout.
        #[derive(serde::Serialize)]
        enum Plain {
            Get { key: Vec<u8> },
            Put { key: Vec<u8>, value: Vec<u8> },
        }
        let plain = vec![
            Plain::Get {
                key: b"1234".to_vec(),
            },
            Plain::Put {
                key: b"99".to_vec(),
                value: vec![7u8; 128],
            },
        ];
        assert_eq!(&frame[..], &opts().serialize(&plain).unwrap()[..]);

        let decoded: Vec<Op> = with_frame(&frame, |b| opts().deserialize(b)).unwrap();
        assert_eq!(decoded, ops);
        for op in &decoded {
            assert!(within(&frame, op.key()), "key copied, not sliced");
        }
        // Outside a frame: copied, and still equal.
        let copied: Vec<Op> = opts().deserialize(&frame).unwrap();
        assert_eq!(copied, ops);
        assert!(!within(&frame, copied[0].key()));

        let results = vec![
            OpResult::Value(Some(Bytes::from_static(b"abc"))),
            OpResult::Value(None),
            OpResult::Stored,
        ];
        let frame = Bytes::from(opts().serialize(&results).unwrap());
        let decoded: Vec<OpResult> = with_frame(&frame, |b| opts().deserialize(b)).unwrap();
        assert_eq!(decoded, results);
        match &decoded[0] {
            OpResult::Value(Some(v)) => assert!(within(&frame, v)),
            other => panic!("unexpected {other:?}"),
        }
        // JSON cannot borrow bytes: copied, same values.
        let json = serde_json::to_string(&results).unwrap();
        let back: Vec<OpResult> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, results);
    }
}
