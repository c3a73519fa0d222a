//! Property-based fuzzing of the server's request decoding and handling.
//!
//! Every case drives `kv_server::server::serve_connection` (the same code
//! that serves TCP connections: length-delimited framing, the bincode
//! codec, tarpc's channel and `KvService`) over an in-memory duplex with
//! arbitrary bytes, or with valid frames mutated. The connection must end
//! without a panic, and a fresh, well-behaved connection to the same server
//! state must then get correct answers.
//!
//! Cases: `PROPTEST_CASES` (default 256 per property). A longer campaign:
//! `PROPTEST_CASES=20000 cargo test -p kv-server --test fuzz --release`.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{encode, frame};
use kv_core::limits::Limits;
use kv_core::rpc::{KvClient, KvRequest, Op, OpResult};
use kv_server::server::serve_connection;
use kv_server::service::ServerState;
use kv_store::Store;
use proptest::prelude::*;
use proptest::sample::Index;
use tarpc::tokio_util::codec::{Framed, LengthDelimitedCodec};
use tarpc::{ClientMessage, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const MAX_FRAME: usize = 16 << 10;
const MAX_AHEAD_S: u64 = kv_core::transport::MAX_DEADLINE_AHEAD.as_secs();

fn limits() -> Limits {
    Limits {
        max_frame_bytes: MAX_FRAME,
        max_batch_ops: 64,
        max_key_bytes: 16,
        max_value_bytes: 256,
        max_in_flight_per_connection: 4,
        idle_timeout_ms: 2_000,
        ..Limits::default()
    }
}

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    /// One server state per test thread, shared by all its cases, like a
    /// long-running server.
    static STATE: Arc<ServerState> = Arc::new(ServerState::new(Store::preloaded(100), limits()));
}

static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

/// Feeds `bytes` to a fresh connection, closes the write half, and waits
/// (bounded) for the server to finish with it. Returns the reply bytes.
async fn feed(state: Arc<ServerState>, bytes: Vec<u8>) -> Vec<u8> {
    let (client_io, server_io) = tokio::io::duplex(64 << 10);
    let (_stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(serve_connection(server_io, state, stop_rx));
    let (mut rd, mut wr) = tokio::io::split(client_io);
    let reader = tokio::spawn(async move {
        let mut replies = Vec::new();
        let _ = rd.read_to_end(&mut replies).await;
        replies
    });
    // The server may close first (that is one correct answer to garbage).
    let _ = wr.write_all(&bytes).await;
    let _ = wr.shutdown().await;
    let served = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("connection not finished 10 s after its input ended");
    if let Err(e) = served {
        std::panic::resume_unwind(e.into_panic());
    }
    drop(wr);
    let n = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("reply stream not closed")
        .unwrap();
    EXECUTIONS.fetch_add(1, Ordering::Relaxed);
    n
}

/// The request ids of the complete, decodable reply frames in `bytes`.
fn reply_ids(mut bytes: &[u8]) -> Vec<u64> {
    use tarpc::tokio_serde::Deserializer;
    let mut ids = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let Some(body) = bytes.get(4..4 + len) else {
            break;
        };
        let mut codec = tarpc::tokio_serde::formats::Bincode::<
            tarpc::Response<kv_core::rpc::KvResponse>,
            (),
        >::default();
        let r = std::pin::Pin::new(&mut codec)
            .deserialize(&bytes::BytesMut::from(body))
            .expect("a reply frame that does not decode");
        ids.push(r.request_id);
        bytes = &bytes[4 + len..];
    }
    ids
}

/// A well-behaved tarpc client over a fresh duplex to the same state.
async fn live_check(state: Arc<ServerState>) {
    let (client_io, server_io) = tokio::io::duplex(64 << 10);
    let (_stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(serve_connection(server_io, state, stop_rx));
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec();
    let transport = tarpc::serde_transport::new(
        Framed::new(client_io, codec),
        tarpc::tokio_serde::formats::Bincode::default(),
    );
    let c = KvClient::new(Default::default(), transport).spawn();
    let ctx = || kv_core::transport::context_with_timeout(Duration::from_secs(5));
    let key = Bytes::from_static(b"live-check");
    let value = Bytes::from(EXECUTIONS.load(Ordering::Relaxed).to_string());
    let got = c
        .batch(
            ctx(),
            vec![
                Op::Put {
                    key: key.clone(),
                    value: value.clone(),
                },
                Op::Get { key },
            ],
        )
        .await
        .expect("live check: rpc failed")
        .expect("live check: refused");
    assert_eq!(got, vec![OpResult::Stored, OpResult::Value(Some(value))]);
    drop(c);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("live-check connection did not end")
        .expect("live-check connection panicked");
}

fn run_case(bytes: Vec<u8>) {
    let state = STATE.with(Arc::clone);
    RT.with(|rt| {
        rt.block_on(async {
            feed(state.clone(), bytes).await;
            live_check(state).await;
        })
    });
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Ops within and beyond the limits (empty keys, long keys and values,
/// batches over the op limit).
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        bytes(24).prop_map(|key| Op::Get { key }),
        (bytes(24), bytes(300)).prop_map(|(key, value)| Op::Put { key, value }),
    ]
}

fn request() -> impl Strategy<Value = KvRequest> {
    prop_oneof![
        4 => proptest::collection::vec(op(), 0..80).prop_map(|ops| KvRequest::Batch { ops }),
        1 => bytes(24).prop_map(|key| KvRequest::Get { key }),
        1 => (bytes(24), bytes(300)).prop_map(|(key, value)| KvRequest::Put { key, value }),
        1 => Just(()).prop_map(|()| KvRequest::Ping {}),
        1 => Just(()).prop_map(|()| KvRequest::Stats {}),
    ]
}

/// A client message: a request (small ids, so some repeat; deadlines from
/// already-passed to minutes ahead) or a cancel.
fn message() -> impl Strategy<Value = ClientMessage<KvRequest>> {
    prop_oneof![
        8 => (request(), 0u64..4, 0u64..120_000).prop_map(|(message, id, ms)| {
            let mut context = tarpc::context::current();
            context.deadline = std::time::Instant::now() + Duration::from_millis(ms);
            ClientMessage::Request(Request { context, id, message })
        }),
        1 => (0u64..4).prop_map(|request_id| ClientMessage::Cancel {
            trace_context: Default::default(),
            request_id,
        }),
    ]
}

/// One edit of a valid byte stream.
#[derive(Debug, Clone)]
enum Mutation {
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Truncate(Index),
    /// A varint-encoded u64 (bincode's integer form) over whatever is there.
    Varint(Index, u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), any::<u64>()).prop_map(|(i, v)| Mutation::Varint(i, v)),
    ]
}

/// bincode's varint: < 251 in one byte, else a marker and LE bytes.
fn varint(v: u64) -> Vec<u8> {
    match v {
        0..=250 => vec![v as u8],
        251..=0xffff => [vec![251], (v as u16).to_le_bytes().to_vec()].concat(),
        0x1_0000..=0xffff_ffff => [vec![252], (v as u32).to_le_bytes().to_vec()].concat(),
        _ => [vec![253], v.to_le_bytes().to_vec()].concat(),
    }
}

/// Length of the varint whose first byte is `b`.
fn varint_len(b: u8) -> usize {
    match b {
        0..=250 => 1,
        251 => 3,
        252 => 5,
        253 => 9,
        _ => 17,
    }
}

fn apply(mut s: Vec<u8>, m: &Mutation) -> Vec<u8> {
    if s.is_empty() {
        return s;
    }
    match m {
        Mutation::Set(i, b) => {
            let i = i.index(s.len());
            s[i] = *b;
        }
        Mutation::Insert(i, b) => {
            let i = i.index(s.len() + 1);
            s.splice(i..i, b.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let i = i.index(s.len());
            let end = (i + n).min(s.len());
            s.drain(i..end);
        }
        Mutation::Truncate(i) => s.truncate(i.index(s.len())),
        Mutation::Varint(i, v) => {
            let i = i.index(s.len());
            let enc = varint(*v);
            let end = (i + enc.len()).min(s.len());
            s.splice(i..end, enc);
        }
    }
    s
}

fn frames(msgs: &[ClientMessage<KvRequest>]) -> Vec<u8> {
    msgs.iter().flat_map(|m| frame(&encode(m))).collect()
}

fn config() -> ProptestConfig {
    // PROPTEST_CASES in the environment overrides the default of 256.
    ProptestConfig {
        max_shrink_iters: 2_000,
        // A failure prints its minimal input; no regression files in the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes, including ones that start like a frame.
    #[test]
    fn arbitrary_bytes(garbage in proptest::collection::vec(any::<u8>(), 0..2048), len_prefix in any::<Option<u32>>()) {
        let mut input = len_prefix.map(|l| (l % (2 * MAX_FRAME as u32)).to_be_bytes().to_vec()).unwrap_or_default();
        input.extend(garbage);
        run_case(input);
    }

    /// Valid request frames, mutated: flipped bytes, splices, cuts and
    /// out-of-range integers in any field (length prefixes, deadlines,
    /// variant tags, vector and key lengths).
    #[test]
    fn mutated_valid_frames(
        msgs in proptest::collection::vec(message(), 1..4),
        mutations in proptest::collection::vec(mutation(), 0..6),
    ) {
        let input = mutations.iter().fold(frames(&msgs), apply);
        run_case(input);
    }

    /// A valid ping whose deadline is anywhere from seconds to u64::MAX
    /// seconds ahead, half of them within a minute of the 24 h limit (tarpc
    /// panics on some far deadlines unless the codec refuses them): at or
    /// under the limit it is answered, past it the connection is closed
    /// without a reply.
    #[test]
    fn any_deadline(
        secs in prop_oneof![
            1 => 10u64..u64::MAX,
            1 => (MAX_AHEAD_S - 60)..(MAX_AHEAD_S + 60),
            1 => (MAX_AHEAD_S - 2)..(MAX_AHEAD_S + 2),
        ],
        nanos in prop_oneof![1 => Just(0u32), 1 => 0u32..1_000_000_000],
        id in any::<u64>(),
    ) {
        let mut context = tarpc::context::current();
        context.deadline = std::time::Instant::now();
        let msg = ClientMessage::Request(Request { context, id, message: KvRequest::Ping {} });
        let payload = encode(&msg);
        // Replace the deadline: the two varints after the one-byte variant tag.
        let secs_at = 1;
        let nanos_at = secs_at + varint_len(payload[secs_at]);
        let rest_at = nanos_at + varint_len(payload[nanos_at]);
        let mut head = vec![payload[0]];
        head.extend(varint(secs));
        head.extend(varint(u64::from(nanos)));
        head.extend_from_slice(&payload[rest_at..]);
        let state = STATE.with(Arc::clone);
        let replies = RT.with(|rt| rt.block_on(feed(state, frame(&head))));
        let within = secs < MAX_AHEAD_S || (secs == MAX_AHEAD_S && nanos == 0);
        let expected = if within { vec![id] } else { vec![] };
        prop_assert_eq!(reply_ids(&replies), expected, "deadline {}.{:09} s ahead", secs, nanos);
    }

    /// Several valid frames back to back: every one is answered.
    #[test]
    fn valid_frames_are_answered(msgs in proptest::collection::vec(message(), 1..6)) {
        // Requests whose deadline has not passed by the time they are served
        // and that no later message cancels (tarpc drops a cancelled
        // request's reply if it has not been written yet).
        let soon = std::time::Instant::now() + Duration::from_secs(2);
        let cancelled: Vec<u64> = msgs
            .iter()
            .filter_map(|m| match m {
                ClientMessage::Cancel { request_id, .. } => Some(*request_id),
                _ => None,
            })
            .collect();
        let input = frames(&msgs);
        let state = STATE.with(Arc::clone);
        let replies = RT.with(|rt| rt.block_on(feed(state, input)));
        // Each such request gets its own reply (ids repeat: compare sets).
        let answered: std::collections::BTreeSet<u64> = reply_ids(&replies).into_iter().collect();
        let expected: std::collections::BTreeSet<u64> = msgs
            .iter()
            .filter_map(|m| match m {
                ClientMessage::Request(r) if r.context.deadline > soon && !cancelled.contains(&r.id) => Some(r.id),
                _ => None,
            })
            .collect();
        prop_assert!(expected.is_subset(&answered), "expected replies to {:?}, got {:?}", expected, answered);
    }
}

/// The oracle itself: a valid ping and batch get their two replies, and
/// garbage gets none (so the properties above can tell the difference).
#[test]
fn the_reply_oracle_sees_replies_and_their_absence() {
    let ping = ClientMessage::Request(Request {
        context: tarpc::context::current(),
        id: 7,
        message: KvRequest::Ping {},
    });
    let batch = ClientMessage::Request(Request {
        context: tarpc::context::current(),
        id: 8,
        message: KvRequest::Batch {
            ops: vec![Op::Get {
                key: Bytes::from_static(b"1"),
            }],
        },
    });
    let state = STATE.with(Arc::clone);
    let replies = RT.with(|rt| rt.block_on(feed(state.clone(), frames(&[ping, batch]))));
    assert_eq!(reply_ids(&replies), vec![7, 8]);
    let garbage = RT.with(|rt| rt.block_on(feed(state, vec![0xff; 64])));
    assert!(reply_ids(&garbage).is_empty());
    assert!(EXECUTIONS.load(Ordering::Relaxed) >= 2);
}
