//! The compact history format (`# kvlab-history v2 … codec=zstd`): the same
//! header line as the text format, uncompressed, then one zstd stream of
//! records. What makes it small:
//!
//! * ops of one batch share their thread and times, written once per batch
//!   (`invoke` as a delta from the previous batch's, `complete` as a delta
//!   from `invoke`, both zigzag varints);
//! * a put's value is its own (client, thread, seq) id, so it costs one
//!   flag bit; a get's value is an id (three varints), a key, or nothing;
//! * sequence numbers are deltas from the previous op of the batch.
//!
//! ```text
//! record := 0x01 batch | 0x00 end
//! batch  := thread n invoke_delta complete_minus_invoke op{n}      (varints)
//! op     := seq_delta key tag [value]
//! tag    := kind (bit 0: 1 put) | outcome << 1 (0 ok, 1 unknown, 2 wrong-kind)
//!           | value << 3 (see `ValueTag`)
//! end    := ops                                                    (varint)
//! ```
//!
//! Zigzag deltas keep the format total: any `HistoryOp` round-trips, even
//! out-of-order times.

use std::io::{self, BufRead, Read, Write};

use crate::value::ValueId;

use super::{Action, HistoryOp, Outcome, ReadValue};

/// The codec named in the header.
pub const CODEC: &str = "zstd";
/// zstd level: 3 is zstd's default, fast enough for the client's writer
/// thread at millions of ops/s and ~2× smaller than level 1 on histories.
const LEVEL: i32 = 3;

const BATCH: u8 = 1;
const END: u8 = 0;

// Value tags (bits 3..): what follows the tag byte.
const V_OWN: u8 = 0; // put of (client, thread, seq): nothing follows
const V_ID: u8 = 1; // client thread seq
const V_INIT: u8 = 2;
const V_ABSENT: u8 = 3;
const V_OTHER: u8 = 4;
const V_INIT_OF: u8 = 5; // key
const V_NONE: u8 = 6; // no value came back

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes ops into records, keeping the previous batch's invoke time.
pub struct Encoder {
    client: u32,
    last_invoke: u64,
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new(client: u32) -> Self {
        Encoder {
            client,
            last_invoke: 0,
            buf: Vec::with_capacity(1 << 16),
        }
    }

    /// Appends `ops` as batch records: consecutive ops sharing thread and
    /// times form one batch (a client's batch always does).
    pub fn encode(&mut self, ops: &[HistoryOp]) -> &[u8] {
        self.buf.clear();
        let mut rest = ops;
        while let Some(first) = rest.first() {
            let n = rest
                .iter()
                .take_while(|o| {
                    (o.thread, o.invoke_ns, o.complete_ns)
                        == (first.thread, first.invoke_ns, first.complete_ns)
                })
                .count();
            let (batch, tail) = rest.split_at(n);
            rest = tail;
            let b = &mut self.buf;
            b.push(BATCH);
            put_varint(b, u64::from(first.thread));
            put_varint(b, n as u64);
            put_varint(
                b,
                zigzag(first.invoke_ns.wrapping_sub(self.last_invoke) as i64),
            );
            put_varint(
                b,
                zigzag(first.complete_ns.wrapping_sub(first.invoke_ns) as i64),
            );
            self.last_invoke = first.invoke_ns;
            let mut last_seq = 0u64;
            for op in batch {
                put_varint(b, zigzag(op.seq.wrapping_sub(last_seq) as i64));
                last_seq = op.seq;
                put_varint(b, op.key);
                let outcome = match op.outcome {
                    Outcome::Ok => 0u8,
                    Outcome::Unknown => 1,
                    Outcome::WrongKind => 2,
                };
                let own = ValueId {
                    client: self.client,
                    thread: op.thread,
                    seq: op.seq,
                };
                let (is_put, value) = match op.action {
                    Action::Put(id) if id == own => (1, None),
                    Action::Put(id) => (1, Some(ReadValue::Written(id))),
                    Action::Get(v) => (0, Some(v)),
                };
                let tag = |v: u8| is_put | (outcome << 1) | (v << 3);
                match value {
                    None => b.push(tag(V_OWN)),
                    Some(ReadValue::Written(id)) => {
                        b.push(tag(V_ID));
                        put_varint(b, u64::from(id.client));
                        put_varint(b, u64::from(id.thread));
                        put_varint(b, id.seq);
                    }
                    Some(ReadValue::Init) => b.push(tag(V_INIT)),
                    Some(ReadValue::Absent) => b.push(tag(V_ABSENT)),
                    Some(ReadValue::Other) => b.push(tag(V_OTHER)),
                    Some(ReadValue::InitOf(k)) => {
                        b.push(tag(V_INIT_OF));
                        put_varint(b, k);
                    }
                    Some(ReadValue::NotAValue) => b.push(tag(V_NONE)),
                }
            }
        }
        &self.buf
    }

    /// The end record.
    pub fn end(&mut self, ops: u64) -> &[u8] {
        self.buf.clear();
        self.buf.push(END);
        put_varint(&mut self.buf, ops);
        &self.buf
    }
}

/// A zstd stream writer over `out`.
pub fn compress<W: Write>(out: W) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    zstd::stream::write::Encoder::new(out, LEVEL)
}

/// A zstd stream reader over `input` (positioned after the header line).
pub fn decompress<R: BufRead>(input: R) -> io::Result<zstd::stream::read::Decoder<'static, R>> {
    let mut d = zstd::stream::read::Decoder::with_buffer(input)?;
    // A history is one stream; anything after it is garbage, not another frame.
    d = d.single_frame();
    Ok(d)
}

/// What the decoder found next.
pub enum Next {
    Op(HistoryOp),
    /// The end record, with its op count.
    End(u64),
    /// The stream ended without an end record.
    Eof,
}

/// Decodes records from a decompressed stream, one op at a time.
pub struct Decoder<R> {
    input: R,
    client: u32,
    last_invoke: u64,
    /// Ops left in the current batch, and its shared fields.
    left: u64,
    thread: u32,
    invoke: u64,
    complete: u64,
    seq: u64,
}

impl<R: Read> Decoder<R> {
    pub fn new(input: R, client: u32) -> Self {
        Decoder {
            input,
            client,
            last_invoke: 0,
            left: 0,
            thread: 0,
            invoke: 0,
            complete: 0,
            seq: 0,
        }
    }

    /// One byte, or `None` at the end of the stream.
    fn byte(&mut self) -> Result<Option<u8>, String> {
        let mut b = [0u8];
        loop {
            return match self.input.read(&mut b) {
                Ok(0) => Ok(None),
                Ok(_) => Ok(Some(b[0])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(format!("read failed: {e}")),
            };
        }
    }

    fn varint(&mut self, what: &str) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self
                .byte()?
                .ok_or_else(|| format!("{what}: the stream ends inside a record"))?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{what}: varint longer than 64 bits"))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let v = self.varint(what)?;
        u32::try_from(v).map_err(|_| format!("{what}: {v} is out of range"))
    }

    pub fn next_record(&mut self) -> Result<Next, String> {
        if self.left == 0 {
            match self.byte()? {
                None => return Ok(Next::Eof),
                Some(END) => return Ok(Next::End(self.varint("end count")?)),
                Some(BATCH) => {}
                Some(b) => return Err(format!("unknown record type {b:#04x}")),
            }
            self.thread = self.u32("thread")?;
            self.left = self.varint("batch size")?;
            if self.left == 0 {
                return Err("empty batch record".into());
            }
            let d = unzigzag(self.varint("invoke")?);
            self.invoke = self.last_invoke.wrapping_add(d as u64);
            self.last_invoke = self.invoke;
            let d = unzigzag(self.varint("complete")?);
            self.complete = self.invoke.wrapping_add(d as u64);
            self.seq = 0;
        }
        self.left -= 1;
        self.seq = self.seq.wrapping_add(unzigzag(self.varint("seq")?) as u64);
        let key = self.varint("key")?;
        let tag = self.byte()?.ok_or("tag: the stream ends inside a record")?;
        let is_put = tag & 1 == 1;
        let outcome = match (tag >> 1) & 3 {
            0 => Outcome::Ok,
            1 => Outcome::Unknown,
            2 => Outcome::WrongKind,
            o => return Err(format!("tag {tag:#04x}: bad outcome {o}")),
        };
        let value = match tag >> 3 {
            V_OWN if is_put => None,
            V_ID => Some(ReadValue::Written(ValueId {
                client: self.u32("value client")?,
                thread: self.u32("value thread")?,
                seq: self.varint("value seq")?,
            })),
            V_INIT => Some(ReadValue::Init),
            V_ABSENT => Some(ReadValue::Absent),
            V_OTHER => Some(ReadValue::Other),
            V_INIT_OF => Some(ReadValue::InitOf(self.varint("init key")?)),
            V_NONE => Some(ReadValue::NotAValue),
            v => return Err(format!("tag {tag:#04x}: bad value kind {v}")),
        };
        let action = match (is_put, value) {
            (true, None) => Action::Put(ValueId {
                client: self.client,
                thread: self.thread,
                seq: self.seq,
            }),
            (true, Some(ReadValue::Written(id))) => Action::Put(id),
            (true, Some(_)) => return Err(format!("tag {tag:#04x}: a put writes an id")),
            (false, Some(v)) => Action::Get(v),
            (false, None) => return Err(format!("tag {tag:#04x}: a get without a value kind")),
        };
        Ok(Next::Op(HistoryOp {
            thread: self.thread,
            seq: self.seq,
            key,
            action,
            invoke_ns: self.invoke,
            complete_ns: self.complete,
            outcome,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips() {
        for v in [0i64, 1, -1, i64::MAX, i64::MIN, 12345, -98765] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
