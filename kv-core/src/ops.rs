//! The ops a batch carries, their results, and the errors a server answers
//! with: the wire's data, apart from the service traits in [`crate::rpc`]
//! (which re-exports them).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One operation on the store. Keys are the decimal key text as bytes.
/// Decoded inside a frame, the byte fields are slices of it
/// ([`crate::frame_bytes`]): no allocation per key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Get {
        #[serde(deserialize_with = "crate::frame_bytes::bytes")]
        key: Bytes,
    },
    Put {
        #[serde(deserialize_with = "crate::frame_bytes::bytes")]
        key: Bytes,
        #[serde(deserialize_with = "crate::frame_bytes::bytes")]
        value: Bytes,
    },
}

impl Op {
    pub fn key(&self) -> &Bytes {
        match self {
            Op::Get { key } | Op::Put { key, .. } => key,
        }
    }
}

/// The result of one [`Op`], at the same position in the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// A get: the value, or `None` when the key is absent (a slice of the
    /// reply frame when decoded by the client's codec).
    Value(#[serde(deserialize_with = "crate::frame_bytes::opt_bytes")] Option<Bytes>),
    /// A put was applied.
    Stored,
}

/// Why a server refused a request. The connection stays usable.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum KvError {
    #[error("batch of {ops} ops exceeds the server's limit of {max}")]
    BatchTooLarge { ops: usize, max: usize },
    #[error("key of {len} bytes exceeds the server's limit of {max}")]
    KeyTooLarge { len: usize, max: usize },
    #[error("value of {len} bytes exceeds the server's limit of {max}")]
    ValueTooLarge { len: usize, max: usize },
    #[error("empty key")]
    EmptyKey,
    /// The gets' values would not fit in one frame. The batch's puts were
    /// all applied (the effect of the whole batch); no value is returned.
    #[error("reply would exceed the frame limit of {max} bytes (send fewer gets of large values per batch); the batch's puts were applied")]
    ReplyTooLarge { max: usize },
    /// The server's memory budget is spent by buffered replies and frames.
    #[error("server busy: {held} bytes held, memory budget {budget} bytes; retry later")]
    Overloaded { held: usize, budget: usize },
}
