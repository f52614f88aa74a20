//! The heartbeat wire format (docs/protocol.md). Fixed-size structures, no
//! allocation per packet: a packet decodes into a [`Heartbeat`] of `heapless`
//! containers, and encodes into a caller's buffer.
//!
//! Layout (network byte order):
//!
//! ```text
//!  0  magic "DAGW"            4
//!  4  version (2)             1
//!  5  type (1 = heartbeat)    1
//!  6  header length (52)      2   newer versions may grow the header: skipped
//!  8  total length            2   including the 32-byte MAC trailer
//! 10  key id                  1   first byte of SHA-256(key): picks the key
//! 11  gateway entry length    1   (32) newer versions may grow entries: skipped
//! 12  epoch                   8   sender's random per-relationship value
//! 20  sequence                8   per epoch, strictly increasing
//! 28  echo epoch              8   the epoch of the last packet heard from the peer
//! 36  echo sequence           8   its sequence
//! 44  echo hold (us)          4   how long we held it before this packet
//! 48  direction               1   1 sent by the lower address, 2 by the higher
//! 49  reserved                3   sent as 0, ignored
//! 52  body ...
//!     node name: len u8 + bytes (<= 64)
//!     priority u8, health u8, health reasons u32, peer-link u8
//!     page u16, pages u16, gateway count u16, then count entries:
//!       kind u8 (1 vlanif, 2 vbdif), state u8 (0 down, 1 holding, 2 up),
//!       id u32, mac [6], up_delay_ms u32, ipv4 digest u32, ipv6 digest u32,
//!       arp u32, nd u32                                     (= 32 bytes)
//!     extensions: (type u16, len u16, value) until the trailer; unknown skipped
//!       1 node flags (len 4): u32, bit 0 drained, bit 1 goodbye
//!       2 node policy (len >= 13): member_up_delay_ms u32, up_delay mode u8
//!         (1 static, 2 dynamic), up_delay min_ms u32, max_ms u32
//!  .. HMAC-SHA256 over everything before it      32
//! ```

pub const MAGIC: &[u8; 4] = b"DAGW";
/// 2: sender-bound, echo of the peer's epoch (issue 11). 1 is refused.
pub const VERSION: u8 = 2;
pub const TYPE_HEARTBEAT: u8 = 1;
pub const HEADER_LEN: usize = 52;
pub const ENTRY_LEN: usize = 32;
pub const MAC_LEN: usize = 32;
/// The largest datagram accepted: a full page plus 256 bytes of header growth
/// and extensions (1443 bytes; with IPv6 and UDP headers still < 1500).
pub const MAX_PACKET: usize =
    HEADER_LEN + 1 + MAX_NAME + 14 + MAX_ENTRIES * ENTRY_LEN + 256 + MAC_LEN;
/// Extension 1: node flags.
pub const EXT_FLAGS: u16 = 1;
/// Extension 2: the node-wide settings the peers compare (`member_up_delay`
/// and the `[up_delay]` policy).
pub const EXT_NODE_POLICY: u16 = 2;
/// The value of extension 2 in this version; a longer one is read up to here.
pub const NODE_POLICY_LEN: usize = 13;

pub use crate::core::heartbeat::{
    FLAG_DRAINED, FLAG_GOODBYE, FROM_HIGHER, FROM_LOWER, GwEntry, Heartbeat, MAX_ENTRIES, MAX_NAME,
    NodePolicy,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated packet")]
    Truncated,
    #[error("oversized packet")]
    Oversized,
    #[error("not a dagw packet")]
    BadMagic,
    #[error("unsupported protocol version {0}")]
    Version(u8),
    #[error("unknown packet type {0}")]
    Type(u8),
    #[error("inconsistent length field")]
    Length,
    #[error("field out of range")]
    Range,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

/// The signed part and the trailer of a packet, after the framing checks.
pub fn split_mac(packet: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    if packet.len() > MAX_PACKET {
        return Err(DecodeError::Oversized);
    }
    if packet.len() < HEADER_LEN + MAC_LEN {
        return Err(DecodeError::Truncated);
    }
    if &packet[..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let total = u16::from_be_bytes([packet[8], packet[9]]) as usize;
    if total != packet.len() {
        return Err(DecodeError::Length);
    }
    Ok(packet.split_at(packet.len() - MAC_LEN))
}

/// Decode the signed part (authenticate it first: nothing here is trusted).
pub fn decode(signed: &[u8]) -> Result<Heartbeat, DecodeError> {
    let mut r = Reader {
        buf: signed,
        pos: 0,
    };
    if r.take(4)? != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let ty = r.u8()?;
    if ty != TYPE_HEARTBEAT {
        return Err(DecodeError::Type(ty));
    }
    let header_len = r.u16()? as usize;
    if header_len < HEADER_LEN {
        return Err(DecodeError::Length);
    }
    let _total = r.u16()?;
    let mut hb = Heartbeat {
        key_id: r.u8()?,
        ..Default::default()
    };
    let entry_len = r.u8()? as usize;
    if entry_len < ENTRY_LEN {
        return Err(DecodeError::Length);
    }
    hb.epoch = r.u64()?;
    hb.seq = r.u64()?;
    hb.echo_epoch = r.u64()?;
    hb.echo_seq = r.u64()?;
    hb.echo_hold_us = r.u32()?;
    hb.direction = r.u8()?;
    if hb.direction != FROM_LOWER && hb.direction != FROM_HIGHER {
        return Err(DecodeError::Range);
    }
    r.take(3)?; // reserved
    r.take(header_len - HEADER_LEN)?; // a newer, longer header
    let name_len = r.u8()? as usize;
    if name_len > MAX_NAME {
        return Err(DecodeError::Range);
    }
    let name = core::str::from_utf8(r.take(name_len)?).map_err(|_| DecodeError::Range)?;
    hb.node.push_str(name).map_err(|_| DecodeError::Range)?;
    hb.priority = r.u8()?;
    hb.health = r.u8()?;
    hb.health_reasons = r.u32()?;
    hb.peer_link = r.u8()?;
    hb.page = r.u16()?;
    hb.pages = r.u16()?;
    if hb.pages == 0 || hb.page >= hb.pages {
        return Err(DecodeError::Range);
    }
    let count = r.u16()? as usize;
    if count > MAX_ENTRIES {
        return Err(DecodeError::Range);
    }
    for _ in 0..count {
        let e = r.take(entry_len)?;
        let mut er = Reader { buf: e, pos: 0 };
        let mut g = GwEntry {
            kind: er.u8()?,
            state: er.u8()?,
            id: er.u32()?,
            ..Default::default()
        };
        g.mac.copy_from_slice(er.take(6)?);
        g.up_delay_ms = er.u32()?;
        g.ipv4_digest = er.u32()?;
        g.ipv6_digest = er.u32()?;
        g.arp = er.u32()?;
        g.nd = er.u32()?;
        if !(1..=2).contains(&g.kind) || g.state > 2 {
            return Err(DecodeError::Range);
        }
        let _ = hb.gateways.push(g);
    }
    // extensions: known ones are read, unknown ones skipped; all must frame
    while r.pos < signed.len() {
        let ty = r.u16()?;
        let len = r.u16()? as usize;
        let value = r.take(len)?;
        if ty == EXT_FLAGS {
            let v: [u8; 4] = value.try_into().map_err(|_| DecodeError::Length)?;
            hb.flags = u32::from_be_bytes(v);
        } else if ty == EXT_NODE_POLICY {
            hb.policy = Some(decode_policy(value)?);
        }
    }
    Ok(hb)
}

/// Extension 2's value: its first [`NODE_POLICY_LEN`] bytes (a later
/// version may append fields).
fn decode_policy(value: &[u8]) -> Result<NodePolicy, DecodeError> {
    if value.len() < NODE_POLICY_LEN {
        return Err(DecodeError::Length);
    }
    let mut r = Reader { buf: value, pos: 0 };
    let member_up_delay_ms = r.u32()?;
    let dynamic = match r.u8()? {
        1 => false,
        2 => true,
        _ => return Err(DecodeError::Range),
    };
    Ok(NodePolicy {
        member_up_delay_ms,
        dynamic,
        min_ms: r.u32()?,
        max_ms: r.u32()?,
    })
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(b.len())?;
        self.buf.get_mut(self.pos..end)?.copy_from_slice(b);
        self.pos = end;
        Some(())
    }
}

/// Encode the signed part into `out`; returns its length (the caller appends
/// the MAC: total length already counts it). None if `out` is too small.
pub fn encode(hb: &Heartbeat, out: &mut [u8]) -> Option<usize> {
    let mut w = Writer { buf: out, pos: 0 };
    w.put(MAGIC)?;
    w.put(&[VERSION, TYPE_HEARTBEAT])?;
    w.put(&(HEADER_LEN as u16).to_be_bytes())?;
    w.put(&[0, 0])?; // total length, patched below
    w.put(&[hb.key_id, ENTRY_LEN as u8])?;
    w.put(&hb.epoch.to_be_bytes())?;
    w.put(&hb.seq.to_be_bytes())?;
    w.put(&hb.echo_epoch.to_be_bytes())?;
    w.put(&hb.echo_seq.to_be_bytes())?;
    w.put(&hb.echo_hold_us.to_be_bytes())?;
    w.put(&[hb.direction, 0, 0, 0])?;
    w.put(&[hb.node.len() as u8])?;
    w.put(hb.node.as_bytes())?;
    w.put(&[hb.priority, hb.health])?;
    w.put(&hb.health_reasons.to_be_bytes())?;
    w.put(&[hb.peer_link])?;
    w.put(&hb.page.to_be_bytes())?;
    w.put(&hb.pages.to_be_bytes())?;
    w.put(&(hb.gateways.len() as u16).to_be_bytes())?;
    for g in &hb.gateways {
        w.put(&[g.kind, g.state])?;
        w.put(&g.id.to_be_bytes())?;
        w.put(&g.mac)?;
        for v in [g.up_delay_ms, g.ipv4_digest, g.ipv6_digest, g.arp, g.nd] {
            w.put(&v.to_be_bytes())?;
        }
    }
    if hb.flags != 0 {
        w.put(&EXT_FLAGS.to_be_bytes())?;
        w.put(&4u16.to_be_bytes())?;
        w.put(&hb.flags.to_be_bytes())?;
    }
    if let Some(p) = &hb.policy {
        w.put(&EXT_NODE_POLICY.to_be_bytes())?;
        w.put(&(NODE_POLICY_LEN as u16).to_be_bytes())?;
        w.put(&p.member_up_delay_ms.to_be_bytes())?;
        w.put(&[if p.dynamic { 2 } else { 1 }])?;
        w.put(&p.min_ms.to_be_bytes())?;
        w.put(&p.max_ms.to_be_bytes())?;
    }
    let len = w.pos;
    let total = u16::try_from(len + MAC_LEN).ok()?;
    out[8..10].copy_from_slice(&total.to_be_bytes());
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample() -> Heartbeat {
        let mut hb = Heartbeat {
            key_id: 0xab,
            epoch: 0x1122_3344_5566_7788,
            seq: 7,
            echo_epoch: 0x99aa_bbcc_ddee_ff01,
            echo_seq: 42,
            echo_hold_us: 3,
            direction: FROM_LOWER,
            priority: 100,
            peer_link: 1,
            page: 0,
            pages: 1,
            ..Default::default()
        };
        hb.node.push_str("leaf1a").unwrap();
        hb.gateways
            .push(GwEntry {
                kind: 1,
                state: 2,
                id: 10,
                mac: [0, 0, 0x5e, 0, 1, 1],
                up_delay_ms: 1000,
                ipv4_digest: 0x01020304,
                ipv6_digest: 0x05060708,
                arp: 120,
                nd: 40,
            })
            .unwrap();
        hb
    }

    #[test]
    fn node_flags_travel_as_extension_1() {
        let mut hb = sample();
        hb.flags = FLAG_DRAINED | FLAG_GOODBYE;
        let mut buf = [0u8; MAX_PACKET];
        let n = encode(&hb, &mut buf).unwrap();
        assert_eq!(decode(&buf[..n]).unwrap(), hb);
        // without flags, no extension at all (the golden packet is unchanged)
        let plain = sample();
        let m = encode(&plain, &mut buf).unwrap();
        assert_eq!(m + 8, n);
        assert_eq!(decode(&buf[..m]).unwrap().flags, 0);
    }

    #[test]
    fn node_policy_travels_as_extension_2() {
        let mut hb = sample();
        hb.flags = FLAG_DRAINED;
        hb.policy = Some(NodePolicy {
            member_up_delay_ms: 240_000,
            dynamic: true,
            min_ms: 1000,
            max_ms: 120_000,
        });
        let mut buf = [0u8; MAX_PACKET];
        let n = encode(&hb, &mut buf).unwrap();
        assert_eq!(decode(&buf[..n]).unwrap(), hb);
        let m = encode(&sample(), &mut buf).unwrap();
        assert_eq!(
            m + 8 + 4 + NODE_POLICY_LEN,
            n,
            "both extensions, nothing else"
        );
        // a static policy: mode 1
        hb.policy = Some(NodePolicy {
            dynamic: false,
            ..hb.policy.unwrap()
        });
        let n = encode(&hb, &mut buf).unwrap();
        assert_eq!(decode(&buf[..n]).unwrap().policy, hb.policy);
    }

    #[test]
    fn node_policy_bounds() {
        let mut buf = [0u8; MAX_PACKET];
        let n = encode(&sample(), &mut buf).unwrap();
        let with = |value: &[u8]| {
            let mut v = buf[..n].to_vec();
            v.extend_from_slice(&EXT_NODE_POLICY.to_be_bytes());
            v.extend_from_slice(&(value.len() as u16).to_be_bytes());
            v.extend_from_slice(value);
            decode(&v)
        };
        let good = [0, 0, 0xea, 0x60, 2, 0, 0, 3, 0xe8, 0, 1, 0xd4, 0xc0];
        let p = with(&good).unwrap().policy.unwrap();
        assert_eq!(
            p,
            NodePolicy {
                member_up_delay_ms: 60_000,
                dynamic: true,
                min_ms: 1000,
                max_ms: 120_000
            }
        );
        // a longer value (a later version's): the known part is read
        let mut longer = good.to_vec();
        longer.extend_from_slice(&[9, 9, 9]);
        assert_eq!(with(&longer).unwrap().policy, Some(p));
        assert_eq!(with(&good[..12]), Err(DecodeError::Length), "too short");
        let mut bad_mode = good;
        bad_mode[4] = 3;
        assert_eq!(with(&bad_mode), Err(DecodeError::Range), "mode 3");
        bad_mode[4] = 0;
        assert_eq!(with(&bad_mode), Err(DecodeError::Range), "mode 0");
    }

    #[test]
    fn golden_bytes() {
        let mut buf = [0u8; MAX_PACKET];
        let n = encode(&sample(), &mut buf).unwrap();
        let expected: &[u8] = &[
            b'D', b'A', b'G', b'W', 2, 1, 0, 52, 0, 136, 0xab, 32, // header start
            0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // epoch
            0, 0, 0, 0, 0, 0, 0, 7, // seq
            0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, // echo epoch
            0, 0, 0, 0, 0, 0, 0, 42, // echo seq
            0, 0, 0, 3, // echo hold
            1, 0, 0, 0, // direction, reserved
            6, b'l', b'e', b'a', b'f', b'1', b'a', // name
            100, 0, 0, 0, 0, 0, 1, // priority, health, reasons, peer-link
            0, 0, 0, 1, 0, 1, // page, pages, count
            1, 2, 0, 0, 0, 10, 0, 0, 0x5e, 0, 1, 1, // kind state id mac
            0, 0, 0x03, 0xe8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 120, 0, 0, 0, 40,
        ];
        assert_eq!(&buf[..n], expected);
        assert_eq!(n + MAC_LEN, 136);
        assert_eq!(decode(&buf[..n]).unwrap(), sample());
        // the test vector of docs/protocol.md
        let tag = crate::peer::auth::Key::new(b"0123456789abcdef".to_vec()).sign(&buf[..n]);
        assert_eq!(
            tag,
            [
                0x52, 0x5f, 0xca, 0xcf, 0x1d, 0xe7, 0xd0, 0x0c, 0x28, 0x29, 0xe1, 0x48, 0x29, 0xb2,
                0xc4, 0x5b, 0xe8, 0xd9, 0x71, 0x60, 0x2b, 0x82, 0x2f, 0x92, 0x8a, 0x28, 0x19, 0xfc,
                0x09, 0x9a, 0x06, 0xe0
            ]
        );
    }

    #[test]
    fn unknown_extensions_and_longer_entries_are_skipped() {
        let mut buf = [0u8; MAX_PACKET];
        let n = encode(&sample(), &mut buf).unwrap();
        let mut v = buf[..n].to_vec();
        v.extend_from_slice(&[0, 99, 0, 2, 0xde, 0xad]);
        assert_eq!(decode(&v).unwrap(), sample());
        v.truncate(n);
        v.push(0); // a dangling extension header
        assert_eq!(decode(&v), Err(DecodeError::Truncated));
    }

    #[test]
    fn a_newer_version_is_reported() {
        let mut buf = [0u8; MAX_PACKET];
        let n = encode(&sample(), &mut buf).unwrap();
        buf[4] = 3;
        assert_eq!(decode(&buf[..n]), Err(DecodeError::Version(3)));
        buf[4] = 1;
        assert_eq!(
            decode(&buf[..n]),
            Err(DecodeError::Version(1)),
            "version 1 carried no sender or echo epoch: refused"
        );
    }

    #[test]
    fn a_direction_other_than_1_or_2_is_malformed() {
        let mut buf = [0u8; MAX_PACKET];
        let n = encode(&sample(), &mut buf).unwrap();
        for bad in [0u8, 3, 255] {
            buf[48] = bad;
            assert_eq!(decode(&buf[..n]), Err(DecodeError::Range));
        }
    }

    #[test]
    fn a_full_page_fits_one_ethernet_frame() {
        let mut hb = sample();
        hb.node.clear();
        hb.node.push_str(&"n".repeat(MAX_NAME)).unwrap();
        while hb
            .gateways
            .push(GwEntry {
                kind: 1,
                ..Default::default()
            })
            .is_ok()
        {}
        let mut buf = [0u8; MAX_PACKET];
        let n = encode(&hb, &mut buf).unwrap() + MAC_LEN;
        assert_eq!(n, 1186);
        // with both extensions of this version, as dagw sends it
        hb.flags = FLAG_DRAINED;
        hb.policy = Some(NodePolicy::default());
        let n = encode(&hb, &mut buf).unwrap() + MAC_LEN;
        assert_eq!(n, 1186 + 8 + 4 + NODE_POLICY_LEN);
        assert!(n + 40 + 8 <= 1500 && MAX_PACKET + 40 + 8 <= 1500);
        assert_eq!(MAX_PACKET, 1443);
    }

    fn arb_entry() -> impl Strategy<Value = GwEntry> {
        (
            1u8..=2,
            0u8..=2,
            any::<u32>(),
            any::<[u8; 6]>(),
            any::<[u32; 5]>(),
        )
            .prop_map(|(kind, state, id, mac, v)| GwEntry {
                kind,
                state,
                id,
                mac,
                up_delay_ms: v[0],
                ipv4_digest: v[1],
                ipv6_digest: v[2],
                arp: v[3],
                nd: v[4],
            })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            name in "[a-z0-9-]{0,64}",
            nums in any::<(u64, u64, u64, u32, u8, u8, u32, u8)>(),
            echo_epoch in any::<u64>(),
            direction in 1u8..=2,
            entries in proptest::collection::vec(arb_entry(), 0..MAX_ENTRIES),
        ) {
            let mut hb = Heartbeat { epoch: nums.0, seq: nums.1, echo_epoch, echo_seq: nums.2, echo_hold_us: nums.3, direction,
                priority: nums.4, health: nums.5, health_reasons: nums.6, peer_link: nums.7, page: 0, pages: 1, ..Default::default() };
            hb.node.push_str(&name).unwrap();
            for e in entries { hb.gateways.push(e).unwrap(); }
            let mut buf = [0u8; MAX_PACKET];
            let n = encode(&hb, &mut buf).unwrap();
            prop_assert_eq!(decode(&buf[..n]).unwrap(), hb);
            let (signed, _) = split_mac(&buf[..n + MAC_LEN]).unwrap();
            prop_assert_eq!(signed.len(), n);
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode(&bytes);
            let _ = split_mac(&bytes);
        }

        #[test]
        fn mutated_packets_never_panic(pos in 0usize..139, val in any::<u8>()) {
            let mut buf = [0u8; MAX_PACKET];
            let n = encode(&sample(), &mut buf).unwrap();
            buf[pos % n] = val;
            let _ = decode(&buf[..n]);
        }
    }
}
