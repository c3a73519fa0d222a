//! Where the streaming check keeps records between its two passes. Pass 1
//! encodes each history's records into one stream per key partition, a
//! dozen bytes a record (varints; line numbers and invocations as deltas
//! from the stream's previous record, completion from invocation). A
//! stream grows in chunks; full chunks stay in memory while a shared
//! allowance lasts and then go to one temp file per history, unlinked as it
//! is created, so nothing is left behind whatever happens to the process.
//! Pass 2 decodes one partition's streams at a time, in file order.
//!
//! ```text
//! record := tag line_delta key [writer seq] invoke_delta [duration] [eps_i [eps_c]]
//! tag    := bit 0 get | bit 1 never completed | bits 2.. value kind
//!           (the special values 0..=4 as `Value`'s, 5 a written value)
//! ```
//!
//! `duration` and `eps_c` are absent for a completion that is `NEVER`; the
//! ε fields are there only for histories mapped onto a reference clock.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use crate::check::key_hash;
use crate::load::{remapped, Eps, Loc, PowerOp, Rec, Value, NEVER};

const GET: u8 = 1;
const NEVER_COMPLETED: u8 = 2;
const KIND_SHIFT: u32 = 2;
/// Value kind of a written value (the special values are 0..=4).
const WRITTEN: u8 = 5;
/// Longest encoded record: tag, 8 varints of at most 10 bytes.
const MAX_RECORD: usize = 1 + 8 * 10;

/// The partition of `key`, of `1 << bits`: the hash's top bits.
#[inline]
pub(crate) fn partition(key: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (key_hash(key) >> (64 - bits)) as usize
    }
}

/// Bytes of chunks all files together may keep in memory.
pub(crate) struct Allowance(AtomicI64);

impl Allowance {
    pub fn new(bytes: usize) -> Allowance {
        Allowance(AtomicI64::new(i64::try_from(bytes).unwrap_or(i64::MAX)))
    }

    fn take(&self, n: usize) -> bool {
        let n = n as i64;
        if self.0.fetch_sub(n, Ordering::Relaxed) >= n {
            true
        } else {
            self.0.fetch_add(n, Ordering::Relaxed);
            false
        }
    }

    fn give(&self, n: usize) {
        self.0.fetch_add(n as i64, Ordering::Relaxed);
    }
}

enum Chunk {
    Memory(Vec<u8>),
    Disk { offset: u64, len: usize },
}

/// One partition's stream of one file, being written.
struct Stream {
    buf: Vec<u8>,
    last_line: u64,
    last_invoke: u64,
    records: u64,
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Pass 1's writer for one history file.
pub(crate) struct SpillWriter<'a> {
    file: usize,
    dir: &'a Path,
    allowance: &'a Allowance,
    chunk_bytes: usize,
    bits: u32,
    mapped: bool,
    disk: Option<File>,
    disk_len: u64,
    streams: Vec<Stream>,
    chunks: Vec<Vec<Chunk>>,
}

impl<'a> SpillWriter<'a> {
    /// A writer for history `file` into `1 << bits` partitions, spilling to
    /// `dir` once `allowance` is spent; `mapped`: records carry ε.
    pub fn new(
        file: usize,
        dir: &'a Path,
        allowance: &'a Allowance,
        chunk_bytes: usize,
        bits: u32,
        mapped: bool,
    ) -> Self {
        let n = 1usize << bits;
        SpillWriter {
            file,
            dir,
            allowance,
            chunk_bytes,
            bits,
            mapped,
            disk: None,
            disk_len: 0,
            streams: (0..n)
                .map(|_| Stream {
                    buf: Vec::new(),
                    last_line: 0,
                    last_invoke: 0,
                    records: 0,
                })
                .collect(),
            chunks: (0..n).map(|_| Vec::new()).collect(),
        }
    }

    /// Appends `r` (with its ε when mapped) to its partition's stream.
    #[inline]
    pub fn push(&mut self, r: &Rec, eps: Eps) -> io::Result<()> {
        let p = partition(r.key, self.bits);
        let s = &mut self.streams[p];
        if s.buf.capacity() == 0 {
            s.buf.reserve_exact(self.chunk_bytes + MAX_RECORD);
        }
        let b = &mut s.buf;
        let value = r.value();
        let never = r.complete == NEVER;
        let (kind, written) = match value.writer_seq() {
            Some(ws) => (WRITTEN, Some(ws)),
            None => (value.raw() as u8, None),
        };
        b.push(
            (u8::from(r.is_get()) * GET)
                | (u8::from(never) * NEVER_COMPLETED)
                | (kind << KIND_SHIFT),
        );
        let line = r.loc.line();
        put_varint(b, line.wrapping_sub(s.last_line));
        s.last_line = line;
        put_varint(b, r.key);
        if let Some((w, seq)) = written {
            put_varint(b, w as u64);
            put_varint(b, seq);
        }
        put_varint(b, zigzag(r.invoke.wrapping_sub(s.last_invoke) as i64));
        s.last_invoke = r.invoke;
        if !never {
            put_varint(b, zigzag(r.complete.wrapping_sub(r.invoke) as i64));
        }
        if self.mapped {
            put_varint(b, eps.invoke);
            if !never {
                put_varint(b, eps.complete);
            }
        }
        s.records += 1;
        if s.buf.len() >= self.chunk_bytes {
            self.flush(p)?;
        }
        Ok(())
    }

    /// Moves partition `p`'s buffer into a chunk: in memory if the
    /// allowance has room, else appended to this file's spill file.
    fn flush(&mut self, p: usize) -> io::Result<()> {
        let s = &mut self.streams[p];
        if s.buf.is_empty() {
            return Ok(());
        }
        if self.allowance.take(s.buf.capacity()) {
            let full = std::mem::take(&mut s.buf);
            self.chunks[p].push(Chunk::Memory(full));
            return Ok(());
        }
        let disk = match &mut self.disk {
            Some(f) => f,
            None => self.disk.insert(tempfile::tempfile_in(self.dir)?),
        };
        disk.write_all(&s.buf)?;
        self.chunks[p].push(Chunk::Disk {
            offset: self.disk_len,
            len: s.buf.len(),
        });
        self.disk_len += s.buf.len() as u64;
        s.buf.clear();
        Ok(())
    }

    /// Flushes every stream; the file's spill, ready for pass 2.
    pub fn finish(mut self) -> io::Result<Spilled<'a>> {
        for p in 0..self.streams.len() {
            self.flush(p)?;
            // The last chunks are small: free their slack.
            if let Some(Chunk::Memory(v)) = self.chunks[p].last_mut() {
                let before = v.capacity();
                v.shrink_to_fit();
                self.allowance.give(before - v.capacity());
            }
        }
        Ok(Spilled {
            file: self.file,
            allowance: self.allowance,
            mapped: self.mapped,
            disk: self.disk,
            records: self.streams.iter().map(|s| s.records).collect(),
            chunks: self.chunks.into_iter().map(Mutex::new).collect(),
        })
    }
}

/// One history's spilled records, by partition.
pub(crate) struct Spilled<'a> {
    file: usize,
    allowance: &'a Allowance,
    mapped: bool,
    disk: Option<File>,
    records: Vec<u64>,
    /// Taken (and freed) as each partition is decoded.
    chunks: Vec<Mutex<Vec<Chunk>>>,
}

fn corrupt() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "spill record cut short")
}

/// A cursor over one chunk.
struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl Reader<'_> {
    #[inline]
    fn byte(&mut self) -> io::Result<u8> {
        let b = *self.bytes.get(self.at).ok_or_else(corrupt)?;
        self.at += 1;
        Ok(b)
    }

    #[inline]
    fn varint(&mut self) -> io::Result<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(corrupt());
            }
        }
    }
}

impl Spilled<'_> {
    /// Records of partition `p` in this file.
    pub fn records(&self, p: usize) -> u64 {
        self.records[p]
    }

    /// Appends partition `p`'s records to `out`, writers renamed by
    /// `remap`, and when mapped their [`PowerOp`]s to `power`. Each
    /// partition is decoded once: its chunks are freed.
    pub fn decode(
        &self,
        p: usize,
        remap: &[usize],
        out: &mut Vec<Rec>,
        power: &mut Vec<PowerOp>,
        scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        let chunks = std::mem::take(&mut *self.chunks[p].lock().unwrap_or_else(|e| e.into_inner()));
        let (mut line, mut invoke) = (0u64, 0u64);
        for chunk in chunks {
            let bytes: &[u8] = match &chunk {
                Chunk::Memory(v) => v,
                Chunk::Disk { offset, len } => {
                    let disk = self.disk.as_ref().ok_or_else(corrupt)?;
                    scratch.resize(*len, 0);
                    disk.read_exact_at(scratch, *offset)?;
                    scratch
                }
            };
            let mut r = Reader { bytes, at: 0 };
            while r.at < bytes.len() {
                let tag = r.byte()?;
                line = line.wrapping_add(r.varint()?);
                let key = r.varint()?;
                let kind = tag >> KIND_SHIFT;
                let value = if kind == WRITTEN {
                    let w = usize::try_from(r.varint()?).map_err(|_| corrupt())?;
                    let seq = r.varint()?;
                    Value::written(w, seq)
                } else {
                    Value::from_raw(u64::from(kind))
                };
                invoke = invoke.wrapping_add(unzigzag(r.varint()?) as u64);
                let never = tag & NEVER_COMPLETED != 0;
                let complete = if never {
                    NEVER
                } else {
                    invoke.wrapping_add(unzigzag(r.varint()?) as u64)
                };
                let rec = remapped(
                    Rec::new(
                        key,
                        value,
                        tag & GET != 0,
                        invoke,
                        complete,
                        Loc::new(self.file, line),
                    ),
                    remap,
                );
                if self.mapped {
                    let eps_invoke = r.varint()?;
                    let eps_complete = if never { 0 } else { r.varint()? };
                    power.extend(PowerOp::of(
                        &rec,
                        Eps {
                            invoke: eps_invoke,
                            complete: eps_complete,
                        },
                    ));
                }
                out.push(rec);
            }
            if let Chunk::Memory(v) = chunk {
                self.allowance.give(v.capacity());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: u64, value: Value, get: bool, invoke: u64, complete: u64, line: u64) -> Rec {
        Rec::new(key, value, get, invoke, complete, Loc::new(3, line))
    }

    /// Records round-trip through memory chunks, disk chunks and both,
    /// with and without ε, in every partition.
    #[test]
    fn records_round_trip_through_memory_and_disk() {
        let dir = std::env::temp_dir();
        let mut recs = Vec::new();
        for i in 0..5_000u64 {
            let value = match i % 7 {
                0 => Value::INIT,
                1 => Value::ABSENT,
                2 => Value::WRONG_REPLY,
                _ => Value::written((i % 5) as usize, i * 1_000_003),
            };
            let invoke = 1_000_000_000 + (i * 7919) % 100_000;
            let complete = match i % 11 {
                0 => NEVER,
                // Out of order times still round-trip.
                1 => invoke - 5,
                _ => invoke + i,
            };
            recs.push(rec(i % 97, value, i % 2 == 0, invoke, complete, 3 + i));
        }
        for (bytes, mapped) in [(usize::MAX / 2, false), (0, true), (20_000, true)] {
            let allowance = Allowance::new(bytes);
            let mut w = SpillWriter::new(3, &dir, &allowance, 256, 2, mapped);
            for (i, r) in recs.iter().enumerate() {
                let eps = Eps {
                    invoke: i as u64,
                    complete: if r.complete == NEVER { 0 } else { 2 * i as u64 },
                };
                w.push(r, eps).unwrap();
            }
            let spilled = w.finish().unwrap();
            let remap: Vec<usize> = (0..5).map(|w| w + 10).collect();
            let mut got = Vec::new();
            let mut power = Vec::new();
            let mut scratch = Vec::new();
            for p in 0..4 {
                let before = got.len();
                spilled
                    .decode(p, &remap, &mut got, &mut power, &mut scratch)
                    .unwrap();
                assert_eq!((got.len() - before) as u64, spilled.records(p));
            }
            let mut want: Vec<Rec> = recs.iter().map(|r| remapped(*r, &remap)).collect();
            want.sort_by_key(|r| r.loc);
            got.sort_by_key(|r| r.loc);
            assert_eq!(got, want, "allowance {bytes}");
            let with_completion = recs.iter().filter(|r| r.complete != NEVER).count();
            assert_eq!(power.len(), if mapped { with_completion } else { 0 });
        }
    }
}
