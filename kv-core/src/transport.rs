//! The wire: length-delimited frames carrying bincode, over TCP with
//! TCP_NODELAY. Server and client build their transports here so both sides
//! always agree on framing and codec.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bincode::Options;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{Sink, Stream};

use tarpc::tokio_util::codec::{Decoder, Encoder, Framed};
use tarpc::{ClientMessage, Response};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::memory::{ConnMemory, Weigh};
use crate::rpc::{KvClient, KvRequest, KvResponse, StatsClient, StatsRequest, StatsResponse};

/// The furthest ahead a request's deadline may be. tarpc turns the relative
/// deadline on the wire into `Instant::now() + d` (which panics on overflow)
/// and queues it in a tokio-util `DelayQueue` (which panics beyond ~2 years):
/// one small frame could panic the connection's task. Such frames are
/// refused as invalid data instead, which closes the connection.
pub const MAX_DEADLINE_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// Partial frames up to this size are always read, even with the process
/// budget spent, so small requests (ping, stats) are still answered.
pub const SMALL_FRAME_BYTES: usize = 64 << 10;

/// After a frame, a read buffer larger than this is given back, so an idle
/// connection that once sent a big batch does not keep its capacity.
const KEEP_READ_BUFFER_BYTES: usize = 64 << 10;

/// The leading fields of a `ClientMessage` as bincode lays them out: the
/// variant, then (for a request) the deadline, relative to now.
#[derive(serde::Deserialize)]
enum MessageHead {
    Request(Duration),
    Cancel,
}

/// Refuses a request frame whose deadline tarpc cannot represent.
pub fn check_deadline(frame: &[u8]) -> std::io::Result<()> {
    let head = bincode::DefaultOptions::new()
        .allow_trailing_bytes()
        .deserialize::<MessageHead>(frame);
    // An unreadable head is left to the full decode, which reports it.
    if let Ok(MessageHead::Request(ahead)) = head {
        if ahead > MAX_DEADLINE_AHEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("request deadline {ahead:?} ahead exceeds {MAX_DEADLINE_AHEAD:?}"),
            ));
        }
    }
    Ok(())
}

/// The server's framing: a 4-byte big-endian length, then bincode exactly
/// as the client writes it (tokio-serde's `Bincode`). Unlike tokio-util's
/// `LengthDelimitedCodec`, a header does not reserve the announced length:
/// the read buffer grows as bytes arrive, so a 4-byte header commits no
/// memory. Encoded replies are released from the connection's count.
pub struct ServerCodec<Req, Resp> {
    max_frame_bytes: usize,
    memory: Arc<ConnMemory>,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> Decoder for ServerCodec<Req, Resp>
where
    Req: for<'de> serde::Deserialize<'de>,
{
    type Item = ClientMessage<Req>;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> std::io::Result<Option<ClientMessage<Req>>> {
        let Some(head) = src.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len > self.max_frame_bytes {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "frame of {len} bytes exceeds the limit of {}",
                    self.max_frame_bytes
                ),
            ));
        }
        if src.len() < 4 + len {
            // No reserve here: FramedRead grows the buffer as bytes arrive.
            return Ok(None);
        }
        src.advance(4);
        let frame = src.split_to(len).freeze();
        if src.is_empty() && src.capacity() > KEEP_READ_BUFFER_BYTES {
            *src = BytesMut::new();
        }
        check_deadline(&frame)?;
        decode_frame(frame).map(Some)
    }
}

impl<Req, Resp> Encoder<Response<Resp>> for ServerCodec<Req, Resp>
where
    Resp: serde::Serialize + Weigh,
{
    type Error = std::io::Error;

    fn encode(&mut self, item: Response<Resp>, dst: &mut BytesMut) -> std::io::Result<()> {
        let weight = item.message.weight();
        let r = encode_frame(&item, dst, weight, self.max_frame_bytes, "reply");
        drop(item);
        self.memory.release_reply(weight);
        r
    }
}

fn bincode_options() -> bincode::DefaultOptions {
    // What tokio-serde's `Bincode::default()` uses: the wire stays the same.
    bincode::DefaultOptions::new()
}

/// Decodes one whole frame; its byte fields become slices of it
/// ([`crate::frame_bytes`]) instead of one allocation each.
fn decode_frame<T: serde::de::DeserializeOwned>(frame: Bytes) -> std::io::Result<T> {
    crate::frame_bytes::with_frame(&frame, |b| bincode_options().deserialize(b))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Encodes `item` as one frame (4-byte big-endian length, then bincode)
/// straight into the write buffer, reserving `size_hint` bytes first: no
/// intermediate buffer and copy per frame. A frame above `max_frame_bytes`
/// is taken back out and refused.
fn encode_frame<T: serde::Serialize>(
    item: &T,
    dst: &mut BytesMut,
    size_hint: usize,
    max_frame_bytes: usize,
    what: &str,
) -> std::io::Result<()> {
    let start = dst.len();
    dst.reserve(4 + size_hint.min(max_frame_bytes));
    dst.put_u32(0);
    let written = bincode_options().serialize_into((&mut *dst).writer(), item);
    let len = dst.len() - start - 4;
    let refused = match written {
        Err(e) => Some(e.to_string()),
        Ok(()) if len > max_frame_bytes => Some(format!(
            "{what} of {len} bytes exceeds the frame limit of {max_frame_bytes}"
        )),
        Ok(()) => None,
    };
    if let Some(msg) = refused {
        dst.truncate(start);
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, msg));
    }
    dst[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// The client's framing, the same as the server's: decodes replies with
/// their values sliced from the frame (no allocation per value) and
/// encodes requests straight into the write buffer.
pub struct ClientCodec<Req, Resp> {
    max_frame_bytes: usize,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> Decoder for ClientCodec<Req, Resp>
where
    Resp: for<'de> serde::Deserialize<'de>,
{
    type Item = Response<Resp>;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> std::io::Result<Option<Response<Resp>>> {
        let Some(head) = src.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len > self.max_frame_bytes {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "frame of {len} bytes exceeds the limit of {}",
                    self.max_frame_bytes
                ),
            ));
        }
        if src.len() < 4 + len {
            // The server is trusted with its announced length (as
            // LengthDelimitedCodec does): one reservation, fewer reads.
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        let frame = src.split_to(len).freeze();
        decode_frame(frame).map(Some)
    }
}

impl<Req, Resp> Encoder<ClientMessage<Req>> for ClientCodec<Req, Resp>
where
    Req: serde::Serialize,
{
    type Error = std::io::Error;

    fn encode(&mut self, item: ClientMessage<Req>, dst: &mut BytesMut) -> std::io::Result<()> {
        encode_frame(&item, dst, 0, self.max_frame_bytes, "request")
    }
}

/// Server side of one connection: the framed stream, plus the byte
/// accounting. It stops reading while the connection's unwritten replies
/// exceed their limit (a peer that does not read its replies stops being
/// read), or, for a large partial frame, while the process budget is spent;
/// writing goes on meanwhile, which frees the bytes.
pub struct ServerTransport<Req, Resp, S = TcpStream> {
    framed: Framed<S, ServerCodec<Req, Resp>>,
    memory: Arc<ConnMemory>,
}

impl<Req, Resp, S> ServerTransport<Req, Resp, S> {
    fn count_buffers(&self) {
        self.memory.set_buffers(
            self.framed.read_buffer().capacity() + self.framed.write_buffer().capacity(),
        );
    }
}

impl<Req, Resp, S> Stream for ServerTransport<Req, Resp, S>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Req: for<'de> serde::Deserialize<'de>,
{
    type Item = std::io::Result<ClientMessage<Req>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let reading_big = self.framed.read_buffer().len() > SMALL_FRAME_BYTES;
        if !self.memory.may_read(cx.waker(), reading_big) {
            return Poll::Pending;
        }
        let r = Pin::new(&mut self.framed).poll_next(cx);
        self.count_buffers();
        r
    }
}

impl<Req, Resp, S> Sink<Response<Resp>> for ServerTransport<Req, Resp, S>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Resp: serde::Serialize + Weigh,
{
    type Error = std::io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.framed).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Response<Resp>) -> std::io::Result<()> {
        let r = Pin::new(&mut self.framed).start_send(item);
        self.count_buffers();
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.framed).poll_flush(cx);
        self.count_buffers();
        r
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.framed).poll_close(cx)
    }
}

/// A tarpc `Serve` that counts each reply it builds against its
/// connection until the codec encodes it.
#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
    memory: Arc<ConnMemory>,
}

impl<S> Metered<S> {
    pub fn new(inner: S, memory: Arc<ConnMemory>) -> Self {
        Self { inner, memory }
    }
}

impl<S> tarpc::server::Serve for Metered<S>
where
    S: tarpc::server::Serve,
    S::Resp: Weigh,
{
    type Req = S::Req;
    type Resp = S::Resp;

    async fn serve(
        self,
        ctx: tarpc::context::Context,
        req: S::Req,
    ) -> Result<S::Resp, tarpc::ServerError> {
        let reply = self.inner.serve(ctx, req).await;
        self.memory.hold_reply(reply.weight());
        reply
    }
}
type ClientTransport<Req, Resp> = Framed<TcpStream, ClientCodec<Req, Resp>>;

/// Wraps an accepted connection, counting its bytes in `memory`.
pub fn server_transport<Req, Resp>(
    stream: TcpStream,
    max_frame_bytes: usize,
    memory: Arc<ConnMemory>,
) -> ServerTransport<Req, Resp>
where
    Req: for<'de> serde::Deserialize<'de>,
    Resp: serde::Serialize,
{
    // Nagle would hold back small replies behind delayed ACKs.
    let _ = stream.set_nodelay(true);
    server_transport_over(stream, max_frame_bytes, memory)
}

/// The same framing and codec over any byte stream (an in-memory
/// `tokio::io::duplex` in tests and fuzzing), so they exercise exactly the
/// server's decode path.
pub fn server_transport_over<S, Req, Resp>(
    stream: S,
    max_frame_bytes: usize,
    memory: Arc<ConnMemory>,
) -> ServerTransport<Req, Resp, S>
where
    S: AsyncRead + AsyncWrite,
    Req: for<'de> serde::Deserialize<'de>,
    Resp: serde::Serialize,
{
    let codec = ServerCodec {
        max_frame_bytes,
        memory: memory.clone(),
        _types: PhantomData,
    };
    ServerTransport {
        framed: Framed::new(stream, codec),
        memory,
    }
}

/// Client-side options that shape every connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_frame_bytes: usize,
    /// Total time to keep retrying a refused or unreachable address.
    pub connect_timeout: Duration,
    /// Requests the client may have queued or in flight on one connection.
    pub max_in_flight: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_frame_bytes: crate::limits::Limits::default().max_frame_bytes,
            connect_timeout: Duration::from_secs(10),
            max_in_flight: 1024,
        }
    }
}

/// Why a connection could not be made, naming the address.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve host '{host}': {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("no server reachable at {addr} after {waited:?}: {source}")]
    Unreachable {
        addr: String,
        waited: Duration,
        source: std::io::Error,
    },
}

/// Resolves `host:port` to its first socket address.
pub async fn resolve(host: &str) -> Result<SocketAddr, ConnectError> {
    let mut addrs =
        tokio::net::lookup_host(host)
            .await
            .map_err(|source| ConnectError::Resolve {
                host: host.to_string(),
                source,
            })?;
    addrs.next().ok_or_else(|| ConnectError::Resolve {
        host: host.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
    })
}

/// Connects to a kv-server at `host` (HOST:PORT), retrying with exponential
/// backoff until `opts.connect_timeout` has passed.
pub async fn connect(host: &str, opts: &ConnectOptions) -> Result<KvClient, ConnectError> {
    let transport: ClientTransport<KvRequest, KvResponse> = open(host, opts).await?;
    Ok(KvClient::new(client_config(opts), transport).spawn())
}

/// Connects to a client's stats endpoint.
pub async fn connect_stats(host: &str, opts: &ConnectOptions) -> Result<StatsClient, ConnectError> {
    let transport: ClientTransport<StatsRequest, StatsResponse> = open(host, opts).await?;
    Ok(StatsClient::new(client_config(opts), transport).spawn())
}

#[allow(clippy::field_reassign_with_default)] // tarpc's Config is #[non_exhaustive]
fn client_config(opts: &ConnectOptions) -> tarpc::client::Config {
    let mut config = tarpc::client::Config::default();
    // Keep the request queue deeper than any window we use, so enqueueing a
    // call never waits and calls reach the wire in the order they were made.
    config.max_in_flight_requests = opts.max_in_flight;
    config.pending_request_buffer = opts.max_in_flight;
    config
}

async fn open<Req, Resp>(
    host: &str,
    opts: &ConnectOptions,
) -> Result<ClientTransport<Req, Resp>, ConnectError>
where
    Req: serde::Serialize,
    Resp: for<'de> serde::Deserialize<'de>,
{
    let addr = resolve(host).await?;
    let start = Instant::now();
    let mut backoff = Duration::from_millis(10);
    let stream = loop {
        let left = opts.connect_timeout.saturating_sub(start.elapsed());
        let attempt =
            tokio::time::timeout(left.max(Duration::from_millis(1)), TcpStream::connect(addr))
                .await;
        let err = match attempt {
            Ok(Ok(s)) => break s,
            Ok(Err(e)) => e,
            Err(_) => std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
        };
        if start.elapsed() + backoff >= opts.connect_timeout {
            return Err(ConnectError::Unreachable {
                addr: host.to_string(),
                waited: start.elapsed(),
                source: err,
            });
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    };
    let _ = stream.set_nodelay(true);
    Ok(Framed::new(
        stream,
        ClientCodec {
            max_frame_bytes: opts.max_frame_bytes,
            _types: PhantomData,
        },
    ))
}

/// A request context whose deadline is `timeout` from now.
pub fn context_with_timeout(timeout: Duration) -> tarpc::context::Context {
    let mut ctx = tarpc::context::current();
    ctx.deadline = Instant::now() + timeout;
    ctx
}

/// A failed call in words, with its causes: tarpc's own texts are terse
/// ("the connection to the server was already shutdown").
pub fn rpc_error_text(e: &tarpc::client::RpcError) -> String {
    use tarpc::client::RpcError;
    match e {
        RpcError::DeadlineExceeded => "no reply before the RPC deadline".into(),
        RpcError::Shutdown => "connection closed by the peer".into(),
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(e) = src {
                s.push_str(": ");
                s.push_str(&e.to_string());
                src = e.source();
            }
            s
        }
    }
}
