//! The sync channel's frame format (docs/sync.md), after the handshake.
//!
//! Layout (network byte order):
//!
//! ```text
//!  len  u32     length of what follows (type .. tag), 25 ..= 65536
//!  type u8      1 BulkStart, 2 Entries, 3 Deletes, 4 BulkEnd, 5 Keepalive,
//!               6 Gateways
//!  seq  u64     per direction, the first frame is 1, then strictly +1
//!  payload      BulkStart: epoch u64
//!               Entries:   count u16 (<= 1000), then count entries:
//!                            kind u8 (1 vlanif, 2 vbdif), gateway id u32,
//!                            family u8 (4 | 6), ip (4 | 16 bytes), mac [6]
//!               Deletes:   count u16 (<= 1000), then count keys:
//!                            kind u8, gateway id u32, family u8, ip
//!               BulkEnd:   total u32 (entries sent since BulkStart)
//!               Keepalive: empty
//!               Gateways:  flags u8 (bit 0 first frame of a set, bit 1 last;
//!                            others 0), count u16, then count gateways:
//!                            kind u8, id u32, mac [6], up_delay_ms u32,
//!                            n4 u16 (<= 256), n4 × (addr [4], len u8 <= 32),
//!                            n6 u16 (<= 256), n6 × (addr [16], len u8 <= 128)
//!  tag  [16]    first 16 bytes of HMAC-SHA256(direction's session key,
//!               type || seq || payload)
//! ```
//!
//! [`FrameWriter`] appends frames to a caller's buffer; [`FrameReader`] is fed
//! bytes as they arrive and yields frames only after their tag and sequence
//! number have been checked. Nothing in a frame is trusted before that.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{GW_VBDIF, GW_VLANIF, NeighEntry, NeighKey, SyncError};
use crate::config::{Ipv4Prefix, Ipv6Prefix, MAX_ADDRESSES};
use crate::core::consistency::GwConfig;

type HmacSha256 = Hmac<Sha256>;

pub const TYPE_BULK_START: u8 = 1;
pub const TYPE_ENTRIES: u8 = 2;
pub const TYPE_DELETES: u8 = 3;
pub const TYPE_BULK_END: u8 = 4;
pub const TYPE_KEEPALIVE: u8 = 5;
pub const TYPE_GATEWAYS: u8 = 6;
/// Gateways flag: the first frame of a set (the receiver starts afresh).
pub const GATEWAYS_FIRST: u8 = 1;
/// Gateways flag: the last frame of a set (the receiver's view is replaced).
pub const GATEWAYS_LAST: u8 = 2;

pub const TAG_LEN: usize = 16;
/// The largest value of the length field (what follows it).
pub const MAX_FRAME: usize = 64 * 1024;
/// The smallest: type, seq and tag around an empty payload.
pub const MIN_FRAME: usize = 1 + 8 + TAG_LEN;
/// Entries or keys per frame.
pub const MAX_ITEMS: usize = 1000;
/// How much a reader may be fed at once (see [`FrameReader::feed`]).
pub const READ_CHUNK: usize = 16 * 1024;
/// A reader never holds more than this: one incomplete frame and one chunk.
pub const MAX_BUFFERED: usize = 4 + MAX_FRAME + READ_CHUNK;
/// The largest Gateways payload: the frame less type, seq and tag.
const MAX_GATEWAYS_PAYLOAD: usize = MAX_FRAME - MIN_FRAME;

/// The encoded size of one gateway in a Gateways frame (at most 5651 bytes:
/// 256 addresses of each family).
pub fn gateway_len(g: &GwConfig) -> usize {
    1 + 4 + 6 + 4 + 2 + g.ipv4().len() * 5 + 2 + g.ipv6().len() * 17
}

/// A decoded, authenticated frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    BulkStart {
        epoch: u64,
    },
    Entries(Vec<NeighEntry>),
    Deletes(Vec<NeighKey>),
    BulkEnd {
        total: u32,
    },
    Keepalive,
    /// Part of the sender's announcement of its gateways' exact values
    /// (`first`: a new set begins; `last`: the set is complete).
    Gateways {
        first: bool,
        last: bool,
        gateways: Vec<GwConfig>,
    },
}

fn keyed(key: &[u8; 32]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length")
}

fn check_kind(kind: u8) -> Result<(), SyncError> {
    if kind != GW_VLANIF && kind != GW_VBDIF {
        return Err(SyncError::Frame(format!("gateway kind {kind}")));
    }
    Ok(())
}

fn put_key(out: &mut Vec<u8>, kind: u8, id: u32, ip: &IpAddr) {
    out.push(kind);
    out.extend_from_slice(&id.to_be_bytes());
    match ip {
        IpAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
}

/// Signs and numbers the frames of one direction.
#[derive(Clone)]
pub struct FrameWriter {
    mac: HmacSha256,
    seq: u64,
}

impl std::fmt::Debug for FrameWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrameWriter(next seq {})", self.seq) // never the key
    }
}

impl FrameWriter {
    /// `key`: this direction's session key (see the handshake).
    pub fn new(key: &[u8; 32]) -> FrameWriter {
        FrameWriter {
            mac: keyed(key),
            seq: 1,
        }
    }

    /// The sequence number the next frame will carry.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    fn begin(&self, out: &mut Vec<u8>, ty: u8) -> usize {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        out.push(ty);
        out.extend_from_slice(&self.seq.to_be_bytes());
        start
    }

    fn finish(&mut self, out: &mut Vec<u8>, start: usize) {
        let mut m = self.mac.clone();
        m.update(&out[start + 4..]);
        let tag = m.finalize().into_bytes();
        out.extend_from_slice(&tag[..TAG_LEN]);
        let len = out.len() - start - 4;
        debug_assert!((MIN_FRAME..=MAX_FRAME).contains(&len));
        out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
        self.seq += 1;
    }

    pub fn bulk_start(&mut self, epoch: u64, out: &mut Vec<u8>) {
        let s = self.begin(out, TYPE_BULK_START);
        out.extend_from_slice(&epoch.to_be_bytes());
        self.finish(out, s);
    }

    /// At most [`MAX_ITEMS`] entries of a known gateway kind; else nothing
    /// is written.
    pub fn entries(&mut self, entries: &[NeighEntry], out: &mut Vec<u8>) -> Result<(), SyncError> {
        if entries.len() > MAX_ITEMS {
            return Err(SyncError::Frame(format!(
                "{} entries in one frame",
                entries.len()
            )));
        }
        for e in entries {
            check_kind(e.gw_kind)?;
        }
        let s = self.begin(out, TYPE_ENTRIES);
        out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
        for e in entries {
            put_key(out, e.gw_kind, e.gw_id, &e.ip);
            out.extend_from_slice(&e.mac);
        }
        self.finish(out, s);
        Ok(())
    }

    /// At most [`MAX_ITEMS`] keys of a known gateway kind; else nothing is
    /// written.
    pub fn deletes(&mut self, keys: &[NeighKey], out: &mut Vec<u8>) -> Result<(), SyncError> {
        if keys.len() > MAX_ITEMS {
            return Err(SyncError::Frame(format!(
                "{} deletes in one frame",
                keys.len()
            )));
        }
        for k in keys {
            check_kind(k.gw_kind)?;
        }
        let s = self.begin(out, TYPE_DELETES);
        out.extend_from_slice(&(keys.len() as u16).to_be_bytes());
        for k in keys {
            put_key(out, k.gw_kind, k.gw_id, &k.ip);
        }
        self.finish(out, s);
        Ok(())
    }

    pub fn bulk_end(&mut self, total: u32, out: &mut Vec<u8>) {
        let s = self.begin(out, TYPE_BULK_END);
        out.extend_from_slice(&total.to_be_bytes());
        self.finish(out, s);
    }

    pub fn keepalive(&mut self, out: &mut Vec<u8>) {
        let s = self.begin(out, TYPE_KEEPALIVE);
        self.finish(out, s);
    }

    /// One Gateways frame. At most 65511 bytes of payload and
    /// [`MAX_ADDRESSES`] addresses of each family per gateway; else nothing
    /// is written.
    pub fn gateways(
        &mut self,
        first: bool,
        last: bool,
        gateways: &[GwConfig],
        out: &mut Vec<u8>,
    ) -> Result<(), SyncError> {
        let size = 3 + gateways.iter().map(gateway_len).sum::<usize>();
        if size > MAX_GATEWAYS_PAYLOAD || gateways.len() > usize::from(u16::MAX) {
            return Err(SyncError::Frame(format!(
                "{} gateways ({size} bytes) in one frame",
                gateways.len()
            )));
        }
        for g in gateways {
            check_kind(g.kind)?;
            if g.ipv4().len() > MAX_ADDRESSES || g.ipv6().len() > MAX_ADDRESSES {
                return Err(SyncError::Frame(format!(
                    "gateway {} {}: more than {MAX_ADDRESSES} addresses",
                    g.kind, g.id
                )));
            }
        }
        let s = self.begin(out, TYPE_GATEWAYS);
        let flags = if first { GATEWAYS_FIRST } else { 0 } | if last { GATEWAYS_LAST } else { 0 };
        out.push(flags);
        out.extend_from_slice(&(gateways.len() as u16).to_be_bytes());
        for g in gateways {
            out.push(g.kind);
            out.extend_from_slice(&g.id.to_be_bytes());
            out.extend_from_slice(&g.mac);
            out.extend_from_slice(&g.up_delay_ms.to_be_bytes());
            out.extend_from_slice(&(g.ipv4().len() as u16).to_be_bytes());
            for p in g.ipv4() {
                out.extend_from_slice(&p.addr.octets());
                out.push(p.len);
            }
            out.extend_from_slice(&(g.ipv6().len() as u16).to_be_bytes());
            for p in g.ipv6() {
                out.extend_from_slice(&p.addr.octets());
                out.push(p.len);
            }
        }
        self.finish(out, s);
        Ok(())
    }

    /// A whole set: every gateway, in as few frames as fit (one frame,
    /// flagged first and last, when there are none). Nothing is written if
    /// one gateway could not be.
    pub fn gateway_set(
        &mut self,
        gateways: &[GwConfig],
        out: &mut Vec<u8>,
    ) -> Result<(), SyncError> {
        let mut frames: Vec<&[GwConfig]> = Vec::new();
        let (mut start, mut size) = (0, 3);
        for (i, g) in gateways.iter().enumerate() {
            let n = gateway_len(g);
            if size + n > MAX_GATEWAYS_PAYLOAD && i > start {
                frames.push(&gateways[start..i]);
                (start, size) = (i, 3);
            }
            size += n;
        }
        frames.push(&gateways[start..]);
        let (mark, seq) = (out.len(), self.seq);
        let last = frames.len() - 1;
        for (i, f) in frames.into_iter().enumerate() {
            if let Err(e) = self.gateways(i == 0, i == last, f, out) {
                out.truncate(mark);
                self.seq = seq;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Any frame (mostly for tests; the session uses the typed methods).
    pub fn write(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), SyncError> {
        match frame {
            Frame::BulkStart { epoch } => self.bulk_start(*epoch, out),
            Frame::Entries(e) => self.entries(e, out)?,
            Frame::Deletes(k) => self.deletes(k, out)?,
            Frame::BulkEnd { total } => self.bulk_end(*total, out),
            Frame::Keepalive => self.keepalive(out),
            Frame::Gateways {
                first,
                last,
                gateways,
            } => self.gateways(*first, *last, gateways, out)?,
        }
        Ok(())
    }
}

/// Why a reader stopped: it stays stopped (the session is reset).
#[derive(Debug, Clone)]
enum Poison {
    Auth,
    Length(usize),
    Sequence { got: u64, expected: u64 },
    Frame(String),
}

impl Poison {
    fn error(&self) -> SyncError {
        match self {
            Poison::Auth => SyncError::Auth("frame tag does not verify"),
            Poison::Length(n) => SyncError::FrameLength(*n),
            Poison::Sequence { got, expected } => SyncError::Sequence {
                got: *got,
                expected: *expected,
            },
            Poison::Frame(s) => SyncError::Frame(s.clone()),
        }
    }
}

/// Incremental decoder of one direction: feed it bytes as they arrive, then
/// take frames until it answers `Ok(None)` (it needs more bytes). The first
/// error is final: every later call returns it again.
pub struct FrameReader {
    buf: Vec<u8>,
    pos: usize,
    mac: HmacSha256,
    seq: u64,
    poison: Option<Poison>,
}

impl std::fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("buffered", &(self.buf.len() - self.pos))
            .field("next_seq", &self.seq)
            .field("poison", &self.poison)
            .finish_non_exhaustive()
    }
}

impl FrameReader {
    /// `key`: the peer's direction's session key (see the handshake).
    pub fn new(key: &[u8; 32]) -> FrameReader {
        FrameReader {
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            mac: keyed(key),
            seq: 1,
            poison: None,
        }
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Add received bytes. Feed at most [`READ_CHUNK`] bytes between draining
    /// [`next`](Self::next) to `Ok(None)`: the buffer is bounded by
    /// [`MAX_BUFFERED`], and overfilling it is an error (from `next`).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.poison.is_some() {
            return;
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.len() + bytes.len() > MAX_BUFFERED {
            self.poison = Some(Poison::Frame("receive buffer overflow".into()));
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete, authenticated, in-sequence frame; `Ok(None)` when
    /// more bytes are needed. (Not an `Iterator`: `None` means "not yet",
    /// and errors are final.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Frame>, SyncError> {
        match self.step() {
            Ok(f) => Ok(f),
            Err(p) => {
                let e = p.error();
                self.poison = Some(p);
                Err(e)
            }
        }
    }

    fn step(&mut self) -> Result<Option<Frame>, Poison> {
        if let Some(p) = &self.poison {
            return Err(p.clone());
        }
        let avail = &self.buf[self.pos..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if !(MIN_FRAME..=MAX_FRAME).contains(&len) {
            return Err(Poison::Length(len));
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let body = &avail[4..4 + len];
        let (signed, tag) = body.split_at(len - TAG_LEN);
        let mut m = self.mac.clone();
        m.update(signed);
        if m.verify_truncated_left(tag).is_err() {
            return Err(Poison::Auth);
        }
        let ty = signed[0];
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&signed[1..9]);
        let seq = u64::from_be_bytes(seq);
        if seq != self.seq {
            return Err(Poison::Sequence {
                got: seq,
                expected: self.seq,
            });
        }
        let frame = parse(ty, &signed[9..]).map_err(Poison::Frame)?;
        self.seq += 1;
        self.pos += 4 + len;
        Ok(Some(frame))
    }
}

struct Rd<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("truncated payload")?;
        let s = self.buf.get(self.pos..end).ok_or("truncated payload")?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn key(&mut self) -> Result<NeighKey, String> {
        let gw_kind = self.u8()?;
        if gw_kind != GW_VLANIF && gw_kind != GW_VBDIF {
            return Err(format!("gateway kind {gw_kind}"));
        }
        let gw_id = self.u32()?;
        let ip = match self.u8()? {
            4 => {
                let mut a = [0u8; 4];
                a.copy_from_slice(self.take(4)?);
                IpAddr::V4(Ipv4Addr::from(a))
            }
            6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.take(16)?);
                IpAddr::V6(Ipv6Addr::from(a))
            }
            f => return Err(format!("address family {f}")),
        };
        Ok(NeighKey { gw_kind, gw_id, ip })
    }
    fn addresses(&mut self) -> Result<usize, String> {
        let n = self.u16()? as usize;
        if n > MAX_ADDRESSES {
            return Err(format!("{n} addresses of one family"));
        }
        Ok(n)
    }
    fn gateway(&mut self) -> Result<GwConfig, String> {
        let kind = self.u8()?;
        if kind != GW_VLANIF && kind != GW_VBDIF {
            return Err(format!("gateway kind {kind}"));
        }
        let id = self.u32()?;
        let mut mac = [0u8; 6];
        mac.copy_from_slice(self.take(6)?);
        let up_delay_ms = self.u32()?;
        let n4 = self.addresses()?;
        let mut v4 = Vec::with_capacity(n4);
        for _ in 0..n4 {
            let mut a = [0u8; 4];
            a.copy_from_slice(self.take(4)?);
            let len = self.u8()?;
            if len > 32 {
                return Err(format!("IPv4 prefix length {len}"));
            }
            v4.push(Ipv4Prefix {
                addr: Ipv4Addr::from(a),
                len,
            });
        }
        let n6 = self.addresses()?;
        let mut v6 = Vec::with_capacity(n6);
        for _ in 0..n6 {
            let mut a = [0u8; 16];
            a.copy_from_slice(self.take(16)?);
            let len = self.u8()?;
            if len > 128 {
                return Err(format!("IPv6 prefix length {len}"));
            }
            v6.push(Ipv6Prefix {
                addr: Ipv6Addr::from(a),
                len,
            });
        }
        Ok(GwConfig::new((kind, id), mac, up_delay_ms, &v4, &v6))
    }
    fn count(&mut self) -> Result<usize, String> {
        let n = self.u16()? as usize;
        if n > MAX_ITEMS {
            return Err(format!("{n} items in one frame"));
        }
        Ok(n)
    }
}

fn parse(ty: u8, payload: &[u8]) -> Result<Frame, String> {
    let mut r = Rd {
        buf: payload,
        pos: 0,
    };
    let frame = match ty {
        TYPE_BULK_START => Frame::BulkStart { epoch: r.u64()? },
        TYPE_ENTRIES => {
            let n = r.count()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let k = r.key()?;
                let mut mac = [0u8; 6];
                mac.copy_from_slice(r.take(6)?);
                v.push(NeighEntry {
                    gw_kind: k.gw_kind,
                    gw_id: k.gw_id,
                    ip: k.ip,
                    mac,
                });
            }
            Frame::Entries(v)
        }
        TYPE_DELETES => {
            let n = r.count()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(r.key()?);
            }
            Frame::Deletes(v)
        }
        TYPE_BULK_END => Frame::BulkEnd { total: r.u32()? },
        TYPE_KEEPALIVE => Frame::Keepalive,
        TYPE_GATEWAYS => {
            let flags = r.u8()?;
            if flags & !(GATEWAYS_FIRST | GATEWAYS_LAST) != 0 {
                return Err(format!("gateways flags {flags:#04x}"));
            }
            // no count is trusted for an allocation: each gateway is at
            // least 19 bytes of this payload
            let n = r.u16()? as usize;
            let mut gateways = Vec::with_capacity(n.min(payload.len() / 19));
            for _ in 0..n {
                gateways.push(r.gateway()?);
            }
            Frame::Gateways {
                first: flags & GATEWAYS_FIRST != 0,
                last: flags & GATEWAYS_LAST != 0,
                gateways,
            }
        }
        t => return Err(format!("unknown frame type {t}")),
    };
    if r.pos != payload.len() {
        return Err(format!(
            "{} trailing bytes in a type {ty} frame",
            payload.len() - r.pos
        ));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K1: [u8; 32] = [7; 32];
    const K2: [u8; 32] = [8; 32];

    fn entry(i: u32) -> NeighEntry {
        NeighEntry {
            gw_kind: if i.is_multiple_of(2) {
                GW_VLANIF
            } else {
                GW_VBDIF
            },
            gw_id: i % 4094 + 1,
            ip: if i.is_multiple_of(3) {
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16))
            } else {
                IpAddr::V4(Ipv4Addr::from(0xc000_0200 + i))
            },
            mac: [2, 0, 0, 0, (i >> 8) as u8, i as u8],
        }
    }

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::BulkStart { epoch: 42 },
            Frame::Entries((0..MAX_ITEMS as u32).map(entry).collect()),
            Frame::Entries(vec![]),
            Frame::Deletes((0..10).map(|i| entry(i).key()).collect()),
            Frame::BulkEnd { total: 1000 },
            Frame::Keepalive,
            Frame::Gateways {
                first: true,
                last: true,
                gateways: vec![gateway(10, 3, 2), gateway(11, 0, 0)],
            },
        ]
    }

    /// A gateway with `n4` IPv4 and `n6` IPv6 addresses, canonical.
    fn gateway(id: u32, n4: u32, n6: u32) -> GwConfig {
        let v4: Vec<Ipv4Prefix> = (0..n4)
            .map(|i| Ipv4Prefix {
                addr: Ipv4Addr::from(0xc633_6400 + 255 - i),
                len: 25,
            })
            .collect();
        let v6: Vec<Ipv6Prefix> = (0..n6)
            .map(|i| Ipv6Prefix {
                addr: Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(n6 - i)),
                len: 64,
            })
            .collect();
        GwConfig::new(
            (1 + (id % 2) as u8, id),
            [0, 0, 0x5e, 0, 1, 1],
            1000,
            &v4,
            &v6,
        )
    }

    fn decode_all(r: &mut FrameReader) -> Result<Vec<Frame>, SyncError> {
        let mut v = vec![];
        while let Some(f) = r.next()? {
            v.push(f);
        }
        Ok(v)
    }

    #[test]
    fn round_trip_every_type_byte_by_byte() {
        let frames = all_frames();
        let mut w = FrameWriter::new(&K1);
        let mut out = vec![];
        for f in &frames {
            w.write(f, &mut out).unwrap();
        }
        assert_eq!(w.next_seq(), frames.len() as u64 + 1);
        let biggest = 4 + MIN_FRAME + 2 + MAX_ITEMS * 28;
        assert!(biggest <= 4 + MAX_FRAME);
        let mut r = FrameReader::new(&K1);
        let mut got = vec![];
        for b in &out {
            r.feed(std::slice::from_ref(b));
            got.extend(decode_all(&mut r).unwrap());
        }
        assert_eq!(got, frames);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn a_gateway_set_fills_frames_to_the_limit_and_flags_first_and_last() {
        // 40 gateways of 256 + 256 addresses: 5651 bytes each, 11 a frame
        let big: Vec<GwConfig> = (0..40).map(|i| gateway(i, 256, 256)).collect();
        assert_eq!(gateway_len(&big[0]), 5651);
        let mut w = FrameWriter::new(&K1);
        let mut out = vec![];
        w.gateway_set(&big, &mut out).unwrap();
        let mut r = FrameReader::new(&K1);
        let mut got = vec![];
        let mut flags = vec![];
        for chunk in out.chunks(READ_CHUNK) {
            r.feed(chunk);
            for f in decode_all(&mut r).unwrap() {
                let Frame::Gateways {
                    first,
                    last,
                    gateways,
                } = f
                else {
                    panic!("{f:?}")
                };
                assert!(
                    gateways.iter().map(gateway_len).sum::<usize>() + 3 <= MAX_FRAME - MIN_FRAME
                );
                flags.push((first, last, gateways.len()));
                got.extend(gateways);
            }
        }
        assert_eq!(
            flags,
            vec![
                (true, false, 11),
                (false, false, 11),
                (false, false, 11),
                (false, true, 7)
            ]
        );
        assert_eq!(r.buffered(), 0);
        assert_eq!(got, big, "in order, canonical");
        // none: one frame, first and last
        let mut w = FrameWriter::new(&K1);
        let mut out = vec![];
        w.gateway_set(&[], &mut out).unwrap();
        let mut r = FrameReader::new(&K1);
        r.feed(&out);
        assert_eq!(
            r.next().unwrap(),
            Some(Frame::Gateways {
                first: true,
                last: true,
                gateways: vec![]
            })
        );
    }

    #[test]
    fn a_gateway_set_is_written_whole_or_not_at_all() {
        let mut too_many = gateway(1, 256, 0);
        too_many.kind = 3;
        let set = vec![gateway(2, 1, 1), too_many];
        let mut w = FrameWriter::new(&K1);
        let mut out = vec![];
        assert!(w.gateway_set(&set, &mut out).is_err());
        assert!(out.is_empty());
        assert_eq!(w.next_seq(), 1);
    }

    #[test]
    fn limits_on_the_writer() {
        let mut w = FrameWriter::new(&K1);
        let mut out = vec![];
        let many: Vec<_> = (0..MAX_ITEMS as u32 + 1).map(entry).collect();
        assert!(w.entries(&many, &mut out).is_err());
        let mut bad = entry(1);
        bad.gw_kind = 3;
        assert!(w.entries(&[bad], &mut out).is_err());
        assert!(w.deletes(&[bad.key()], &mut out).is_err());
        assert!(out.is_empty(), "nothing written on error");
        assert_eq!(w.next_seq(), 1, "no sequence number used");
    }

    #[test]
    fn wrong_key_is_an_auth_error_and_final() {
        let mut w = FrameWriter::new(&K1);
        let mut out = vec![];
        w.keepalive(&mut out);
        w.keepalive(&mut out);
        let mut r = FrameReader::new(&K2);
        r.feed(&out);
        assert!(matches!(r.next(), Err(SyncError::Auth(_))));
        assert!(matches!(r.next(), Err(SyncError::Auth(_))), "poisoned");
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let mut w = FrameWriter::new(&K1);
        let mut out = vec![];
        w.entries(&[entry(1), entry(3)], &mut out).unwrap();
        for i in 0..out.len() {
            for bit in 0..8 {
                let mut bad = out.clone();
                bad[i] ^= 1 << bit;
                let mut r = FrameReader::new(&K1);
                r.feed(&bad);
                let res = r.next();
                if i < 4 {
                    // a changed length: an error, or waiting for bytes that
                    // never come (the read timeout ends that session)
                    assert!(!matches!(res, Ok(Some(_))), "byte {i} bit {bit}");
                } else {
                    assert!(matches!(res, Err(SyncError::Auth(_))), "byte {i} bit {bit}");
                }
            }
        }
    }

    #[test]
    fn replayed_reordered_and_skipped_frames_are_rejected() {
        let mut w = FrameWriter::new(&K1);
        let mut frames = vec![];
        for _ in 0..3 {
            let mut out = vec![];
            w.keepalive(&mut out);
            frames.push(out);
        }
        // a repeat
        let mut r = FrameReader::new(&K1);
        r.feed(&frames[0]);
        r.feed(&frames[0]);
        assert_eq!(r.next().unwrap(), Some(Frame::Keepalive));
        assert!(matches!(
            r.next(),
            Err(SyncError::Sequence {
                got: 1,
                expected: 2
            })
        ));
        // a gap
        let mut r = FrameReader::new(&K1);
        r.feed(&frames[0]);
        r.feed(&frames[2]);
        assert_eq!(r.next().unwrap(), Some(Frame::Keepalive));
        assert!(matches!(
            r.next(),
            Err(SyncError::Sequence {
                got: 3,
                expected: 2
            })
        ));
        // not starting at 1
        let mut r = FrameReader::new(&K1);
        r.feed(&frames[1]);
        assert!(matches!(r.next(), Err(SyncError::Sequence { .. })));
    }

    #[test]
    fn lengths_out_of_bounds() {
        for len in [0u32, 24, 65537, u32::MAX] {
            let mut r = FrameReader::new(&K1);
            r.feed(&len.to_be_bytes());
            assert!(
                matches!(r.next(), Err(SyncError::FrameLength(n)) if n == len as usize),
                "{len}"
            );
        }
        // the largest legal length just waits for its bytes
        let mut r = FrameReader::new(&K1);
        r.feed(&(MAX_FRAME as u32).to_be_bytes());
        assert!(matches!(r.next(), Ok(None)));
    }

    #[test]
    fn overfeeding_is_an_error_not_growth() {
        let mut r = FrameReader::new(&K1);
        r.feed(&(MAX_FRAME as u32).to_be_bytes());
        let chunk = vec![0u8; READ_CHUNK];
        for _ in 0..(MAX_FRAME / READ_CHUNK + 1) {
            r.feed(&chunk);
        }
        assert!(r.buf.len() <= MAX_BUFFERED);
        assert!(r.next().is_err());
    }

    #[test]
    fn authenticated_garbage_payloads_are_frame_errors() {
        // frames signed with the right key but malformed inside
        fn signed(ty: u8, payload: &[u8]) -> Vec<u8> {
            let mut out = vec![];
            let len = (1 + 8 + payload.len() + TAG_LEN) as u32;
            out.extend_from_slice(&len.to_be_bytes());
            out.push(ty);
            out.extend_from_slice(&1u64.to_be_bytes());
            out.extend_from_slice(payload);
            let mut m = keyed(&K1);
            m.update(&out[4..]);
            let t = m.finalize().into_bytes();
            out.extend_from_slice(&t[..TAG_LEN]);
            out
        }
        let cases: Vec<(u8, Vec<u8>)> = vec![
            (9, vec![]),
            (TYPE_KEEPALIVE, vec![0]),
            (TYPE_BULK_START, vec![0; 7]),
            (TYPE_BULK_END, vec![0; 5]),
            (TYPE_ENTRIES, vec![0, 1]),
            (TYPE_ENTRIES, vec![0x03, 0xe9]), // 1001 entries
            (TYPE_DELETES, vec![0, 1, 1, 0, 0, 0, 1, 5, 1, 2, 3, 4]), // family 5
            (TYPE_DELETES, vec![0, 1, 3, 0, 0, 0, 1, 4, 1, 2, 3, 4]), // kind 3
            (TYPE_GATEWAYS, vec![4, 0, 0]),   // flag bit 2
            (TYPE_GATEWAYS, vec![3, 0, 1]),   // 1 gateway, no bytes
            (TYPE_GATEWAYS, gw_payload(1, 257, 24, 0)), // 257 IPv4
            (TYPE_GATEWAYS, gw_payload(1, 1, 33, 0)), // IPv4 /33
            (TYPE_GATEWAYS, gw_payload(1, 0, 0, 129)), // IPv6 /129
            (TYPE_GATEWAYS, gw_payload(0, 0, 0, 0)), // kind 0
            (TYPE_GATEWAYS, [gw_payload(1, 0, 0, 0), vec![0]].concat()), // trailing
        ];
        for (ty, p) in cases {
            let mut r = FrameReader::new(&K1);
            r.feed(&signed(ty, &p));
            assert!(matches!(r.next(), Err(SyncError::Frame(_))), "{ty} {p:?}");
        }
        let mut r = FrameReader::new(&K1);
        r.feed(&signed(TYPE_BULK_END, &[0, 0, 0, 9]));
        assert_eq!(r.next().unwrap(), Some(Frame::BulkEnd { total: 9 }));
    }

    /// A Gateways payload (first and last) of one gateway of `kind`: an
    /// IPv4 count of `n4` (at most 256 addresses follow, of length `len4`)
    /// and, if `len6` > 0, one IPv6 address of length `len6`.
    fn gw_payload(kind: u8, n4: u16, len4: u8, len6: u8) -> Vec<u8> {
        let mut p = vec![
            3, 0, 1, kind, 0, 0, 0, 10, 0, 0, 0x5e, 0, 1, 1, 0, 0, 3, 0xe8,
        ];
        p.extend_from_slice(&n4.to_be_bytes());
        for _ in 0..n4.min(256) {
            p.extend_from_slice(&[192, 0, 2, 1, len4]);
        }
        if len6 > 0 {
            p.extend_from_slice(&[0, 1]);
            p.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            p.push(len6);
        } else {
            p.extend_from_slice(&[0, 0]);
        }
        p
    }

    fn arb_entry() -> impl Strategy<Value = NeighEntry> {
        (
            1u8..=2,
            any::<u32>(),
            prop_oneof![
                any::<[u8; 4]>().prop_map(|a| IpAddr::V4(a.into())),
                any::<[u8; 16]>().prop_map(|a| IpAddr::V6(a.into())),
            ],
            any::<[u8; 6]>(),
        )
            .prop_map(|(gw_kind, gw_id, ip, mac)| NeighEntry {
                gw_kind,
                gw_id,
                ip,
                mac,
            })
    }

    fn arb_gateway() -> impl Strategy<Value = GwConfig> {
        (
            1u8..=2,
            any::<u32>(),
            any::<[u8; 6]>(),
            any::<u32>(),
            proptest::collection::vec((any::<[u8; 4]>(), 0u8..=32), 0..6),
            proptest::collection::vec((any::<[u8; 16]>(), 0u8..=128), 0..6),
        )
            .prop_map(|(kind, id, mac, delay, v4, v6)| {
                let v4: Vec<Ipv4Prefix> = v4
                    .into_iter()
                    .map(|(a, len)| Ipv4Prefix {
                        addr: a.into(),
                        len,
                    })
                    .collect();
                let v6: Vec<Ipv6Prefix> = v6
                    .into_iter()
                    .map(|(a, len)| Ipv6Prefix {
                        addr: a.into(),
                        len,
                    })
                    .collect();
                GwConfig::new((kind, id), mac, delay, &v4, &v6)
            })
    }

    proptest! {
        #[test]
        fn gateway_sets_round_trip(set in proptest::collection::vec(arb_gateway(), 0..50)) {
            let mut w = FrameWriter::new(&K2);
            let mut out = Vec::new();
            w.gateway_set(&set, &mut out).unwrap();
            let mut r = FrameReader::new(&K2);
            r.feed(&out);
            let mut got = Vec::new();
            for f in decode_all(&mut r).unwrap() {
                match f {
                    Frame::Gateways { gateways, .. } => got.extend(gateways),
                    other => prop_assert!(false, "{other:?}"),
                }
            }
            prop_assert_eq!(got, set);
        }

        #[test]
        fn decoder_never_panics(chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
            let mut r = FrameReader::new(&K1);
            for c in &chunks {
                r.feed(c);
                while let Ok(Some(_)) = r.next() {}
            }
        }

        #[test]
        fn decoder_never_panics_on_plausible_lengths(len in 0u32..200, rest in
            proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut r = FrameReader::new(&K1);
            r.feed(&len.to_be_bytes());
            r.feed(&rest);
            let _ = r.next();
        }

        #[test]
        fn round_trip(entries in proptest::collection::vec(arb_entry(), 0..200),
                      epoch in any::<u64>(), split in any::<usize>()) {
            let keys: Vec<NeighKey> = entries.iter().map(|e| e.key()).collect();
            let frames = vec![
                Frame::BulkStart { epoch },
                Frame::Entries(entries.clone()),
                Frame::Deletes(keys),
                Frame::BulkEnd { total: entries.len() as u32 },
                Frame::Keepalive,
            ];
            let mut w = FrameWriter::new(&K2);
            let mut out = Vec::new();
            for f in &frames {
                w.write(f, &mut out).unwrap();
            }
            let at = split % (out.len() + 1);
            let mut r = FrameReader::new(&K2);
            r.feed(&out[..at]);
            let mut got = decode_all(&mut r).unwrap();
            r.feed(&out[at..]);
            got.extend(decode_all(&mut r).unwrap());
            prop_assert_eq!(got, frames);
        }
    }
}
