//! One end of the heartbeat link: seals outgoing packets (epoch, sequence,
//! echo, sender binding, HMAC) and admits incoming ones (source, framing,
//! MAC, decode, sender, freshness, replay), counting every drop by reason.
//!
//! Freshness (docs/protocol.md, "Freshness"): our epoch is a random value
//! drawn at start and again whenever the peer goes down. A packet of an epoch
//! of the peer's that is not the one we accept (`live`) only becomes live when
//! it echoes our current epoch and a sequence of ours newer than any the peer
//! echoed before: proof that it was made after it heard us, now. Packets that
//! cannot prove that are refused as `stale`, but their epoch and sequence are
//! echoed, which is how a genuine, (re)started peer gets its proof.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::auth::{Keyring, Replay, ReplayWindow, Verified};
use super::codec::{self, DecodeError, FROM_HIGHER, FROM_LOWER, Heartbeat, MAC_LEN};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    WrongSource,
    Truncated,
    Oversized,
    Malformed,
    Version,
    BadMac,
    Reflected,
    Replayed,
    Stale,
}

impl DropReason {
    pub const ALL: [DropReason; 9] = [
        DropReason::WrongSource,
        DropReason::Truncated,
        DropReason::Oversized,
        DropReason::Malformed,
        DropReason::Version,
        DropReason::BadMac,
        DropReason::Reflected,
        DropReason::Replayed,
        DropReason::Stale,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::WrongSource => "wrong-source",
            DropReason::Truncated => "truncated",
            DropReason::Oversized => "oversized",
            DropReason::Malformed => "malformed",
            DropReason::Version => "unsupported-version",
            DropReason::BadMac => "auth-failed",
            DropReason::Reflected => "reflected",
            DropReason::Replayed => "replayed",
            DropReason::Stale => "stale",
        }
    }
    fn index(self) -> usize {
        DropReason::ALL.iter().position(|x| *x == self).unwrap_or(0)
    }
}

impl From<DecodeError> for DropReason {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Truncated => DropReason::Truncated,
            DecodeError::Oversized => DropReason::Oversized,
            DecodeError::Version(_) => DropReason::Version,
            _ => DropReason::Malformed,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub tx: u64,
    pub rx: u64,
    pub dropped: [u64; DropReason::ALL.len()],
}

impl Counters {
    pub fn drop(&mut self, r: DropReason) {
        self.dropped[r.index()] += 1;
    }
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.dropped[r.index()]
    }
}

const SENT_RING: usize = 32;
/// Epochs of the peer that were live before the current one: refused outright.
const RETIRED: usize = 8;

/// The `direction` a side stamps on what it sends: bound to its address, so
/// that a packet sent back to its author is recognised as reflected.
pub fn direction(local: IpAddr, peer: IpAddr) -> u8 {
    if local < peer {
        FROM_LOWER
    } else {
        FROM_HIGHER
    }
}

pub struct PeerLink {
    pub keys: Keyring,
    pub peer: SocketAddr,
    /// Our node name and direction: a packet carrying them is our own.
    node: heapless::String<{ codec::MAX_NAME }>,
    direction: u8,
    epoch: u64,
    seq: u64,
    /// The peer's epoch we accept heartbeats of, with its sequence window.
    live: Option<ReplayWindow>,
    /// An epoch of the peer's not (yet) proven fresh: its packets are echoed only.
    candidate: Option<ReplayWindow>,
    /// The live window before the peer went down: if that epoch proves itself
    /// again, its window continues (what it saw stays refused).
    dormant: Option<ReplayWindow>,
    retired: [Option<u64>; RETIRED],
    retired_next: usize,
    /// The highest sequence of ours (this epoch) a live packet echoed.
    max_echo: u64,
    sent: [(u64, Option<Instant>); SENT_RING],
    /// The peer's last authentic packet: (epoch, sequence, when), to echo.
    last_rx: Option<(u64, u64, Instant)>,
    /// The previous key was dropped: the peer authenticated with the current one.
    previous_retired: bool,
    pub counters: Counters,
}

impl PeerLink {
    /// `epoch` must be random (see [`random_epoch`]): it is the challenge a
    /// peer must echo to be believed.
    pub fn new(keys: Keyring, local: IpAddr, peer: SocketAddr, node: &str, epoch: u64) -> Self {
        PeerLink {
            keys,
            peer,
            node: wire_name(node),
            direction: direction(local, peer.ip()),
            epoch,
            seq: 0,
            live: None,
            candidate: None,
            dormant: None,
            retired: [None; RETIRED],
            retired_next: 0,
            max_echo: 0,
            sent: [(0, None); SENT_RING],
            last_rx: None,
            previous_retired: false,
            counters: Counters::default(),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The peer went down: a new epoch of ours (nothing the peer sent before
    /// can echo it) and no live epoch of the peer's. Its last live epoch is
    /// not retired: a peer that did not restart (only its packets were lost)
    /// keeps that epoch, and proves it fresh again by echoing our new one.
    pub fn restart(&mut self, epoch: u64) {
        if let Some(w) = self.live.take() {
            self.dormant = Some(w);
        }
        self.candidate = None;
        self.epoch = epoch;
        self.seq = 0;
        self.max_echo = 0;
        self.sent = [(0, None); SENT_RING];
        self.last_rx = None;
    }

    /// True once after the previous key was dropped.
    pub fn take_previous_retired(&mut self) -> bool {
        std::mem::take(&mut self.previous_retired)
    }

    fn retire(&mut self, epoch: u64) {
        self.retired[self.retired_next] = Some(epoch);
        self.retired_next = (self.retired_next + 1) % RETIRED;
    }

    /// Fill the link fields of `hb`, encode and sign it into `out`.
    pub fn seal(&mut self, hb: &mut Heartbeat, now: Instant, out: &mut [u8]) -> Option<usize> {
        self.seq += 1;
        hb.key_id = self.keys.current.id;
        hb.epoch = self.epoch;
        hb.seq = self.seq;
        hb.direction = self.direction;
        hb.node.clone_from(&self.node);
        (hb.echo_epoch, hb.echo_seq, hb.echo_hold_us) = match self.last_rx {
            Some((e, s, at)) => (
                e,
                s,
                now.saturating_duration_since(at)
                    .as_micros()
                    .min(u32::MAX as u128) as u32,
            ),
            None => (0, 0, 0),
        };
        let n = codec::encode(hb, out)?;
        let tag = self.keys.current.sign(&out[..n]);
        out.get_mut(n..n + MAC_LEN)?.copy_from_slice(&tag);
        self.sent[(self.seq as usize) % SENT_RING] = (self.seq, Some(now));
        self.counters.tx += 1;
        Some(n + MAC_LEN)
    }

    /// Admit a received datagram: Ok with the heartbeat and, when it echoes one
    /// of ours, the round-trip time. Only what is admitted proves the peer live.
    pub fn admit(
        &mut self,
        pkt: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<(Heartbeat, Option<Duration>), DropReason> {
        let r = self.admit_inner(pkt, from, now);
        match &r {
            Ok(_) => self.counters.rx += 1,
            Err(e) => self.counters.drop(*e),
        }
        r
    }

    fn admit_inner(
        &mut self,
        pkt: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<(Heartbeat, Option<Duration>), DropReason> {
        if from.ip() != self.peer.ip() {
            return Err(DropReason::WrongSource);
        }
        let (signed, tag) = codec::split_mac(pkt)?;
        // the key id sits in the fixed header, before any parsing
        let key = self
            .keys
            .verify_which(signed[10], signed, tag)
            .ok_or(DropReason::BadMac)?;
        let hb = codec::decode(signed)?;
        if hb.direction == self.direction || hb.node.as_str() == self.node {
            return Err(DropReason::Reflected);
        }
        // it echoes this epoch of ours, and a sequence we did send
        let echoes_us = hb.echo_epoch == self.epoch && hb.echo_seq != 0 && hb.echo_seq <= self.seq;
        match &mut self.live {
            Some(w) if w.epoch == hb.epoch => {
                if w.check_and_update(hb.seq) == Replay::Replayed {
                    return Err(DropReason::Replayed);
                }
            }
            _ => {
                if self.retired.contains(&Some(hb.epoch)) {
                    return Err(DropReason::Replayed);
                }
                if !(echoes_us && hb.echo_seq > self.max_echo) {
                    // Not proven fresh. Echo it (once): a genuine peer that
                    // just (re)started proves itself with its next packet.
                    match &mut self.candidate {
                        Some(c) if c.epoch == hb.epoch => {
                            if c.check_and_update(hb.seq) == Replay::Replayed {
                                return Err(DropReason::Replayed);
                            }
                        }
                        c => *c = Some(ReplayWindow::new(hb.epoch, hb.seq)),
                    }
                    self.last_rx = Some((hb.epoch, hb.seq, now));
                    return Err(DropReason::Stale);
                }
                let window = match self.dormant.take() {
                    Some(mut w) if w.epoch == hb.epoch => {
                        if w.check_and_update(hb.seq) == Replay::Replayed {
                            self.dormant = Some(w);
                            return Err(DropReason::Replayed);
                        }
                        w
                    }
                    Some(w) => {
                        self.retire(w.epoch);
                        ReplayWindow::new(hb.epoch, hb.seq)
                    }
                    None => ReplayWindow::new(hb.epoch, hb.seq),
                };
                if let Some(old) = self.live.replace(window) {
                    self.retire(old.epoch);
                }
                self.candidate = None;
            }
        }
        if echoes_us {
            self.max_echo = self.max_echo.max(hb.echo_seq);
        }
        if key == Verified::Current && self.keys.previous.take().is_some() {
            self.previous_retired = true;
        }
        self.last_rx = Some((hb.epoch, hb.seq, now));
        let rtt = match self.sent[(hb.echo_seq as usize) % SENT_RING] {
            (s, Some(at)) if echoes_us && s == hb.echo_seq => Some(
                now.saturating_duration_since(at)
                    .saturating_sub(Duration::from_micros(hb.echo_hold_us.into())),
            ),
            _ => None,
        };
        Ok((hb, rtt))
    }
}

/// `node` as sent: at most [`codec::MAX_NAME`] bytes, cut at a character boundary.
fn wire_name(node: &str) -> heapless::String<{ codec::MAX_NAME }> {
    let mut end = node.len().min(codec::MAX_NAME);
    while !node.is_char_boundary(end) {
        end -= 1;
    }
    let mut s = heapless::String::new();
    let _ = s.push_str(&node[..end]);
    s
}

/// A random epoch from the kernel (never 0, which means "none" in an echo).
pub fn random_epoch() -> std::io::Result<u64> {
    let n = crate::sync::random_nonce()?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&n[..8]);
    Ok(u64::from_be_bytes(b).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::auth::Key;
    use crate::peer::codec::MAX_PACKET;

    const A: &str = "203.0.113.1:8742";
    const B: &str = "203.0.113.2:8742";

    fn ring(secret: &[u8]) -> Keyring {
        Keyring {
            current: Key::new(secret.to_vec()),
            previous: None,
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A's and B's links (A at .1, B at .2), epochs 11 and 22.
    fn pair() -> (PeerLink, PeerLink) {
        let k = b"0123456789abcdef";
        (
            PeerLink::new(ring(k), addr(A).ip(), addr(B), "leafa", 11),
            PeerLink::new(ring(k), addr(B).ip(), addr(A), "leafb", 22),
        )
    }

    fn seal(l: &mut PeerLink, now: Instant) -> Vec<u8> {
        let mut buf = [0u8; MAX_PACKET];
        let mut hb = Heartbeat {
            pages: 1,
            ..Default::default()
        };
        let n = l.seal(&mut hb, now, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    /// The exchange that proves both sides fresh: B's first packet is stale
    /// to A (it echoes nothing of A's) but echoed; A's answer proves A to B;
    /// B's next proves B to A.
    fn handshake(a: &mut PeerLink, b: &mut PeerLink, t: Instant) {
        assert_eq!(
            a.admit(&seal(b, t), addr(B), t).err(),
            Some(DropReason::Stale)
        );
        assert!(b.admit(&seal(a, t), addr(A), t).is_ok());
        assert!(a.admit(&seal(b, t), addr(B), t).is_ok());
    }

    #[test]
    fn a_sealed_packet_is_admitted_once_and_measures_rtt() {
        let (mut a, mut b) = pair();
        let t0 = Instant::now();
        handshake(&mut a, &mut b, t0);
        let p = seal(&mut a, t0);
        let (got, _) = b.admit(&p, addr(A), t0).unwrap();
        assert_eq!(got.seq, 2);
        assert_eq!(got.echo_epoch, 22);
        assert_eq!(b.admit(&p, addr(A), t0), Err(DropReason::Replayed));
        // b answers 2 ms later, echoing a's packet; a sees it 5 ms after sending
        let p = seal(&mut b, t0 + Duration::from_millis(2));
        let (_, rtt) = a.admit(&p, addr(B), t0 + Duration::from_millis(5)).unwrap();
        assert_eq!(rtt, Some(Duration::from_millis(3)));
        assert_eq!(
            a.admit(&p, addr("198.51.100.1:8742"), t0),
            Err(DropReason::WrongSource)
        );
    }

    #[test]
    fn a_wrong_key_or_tampering_is_refused() {
        let from = addr(A);
        let mut a = PeerLink::new(ring(b"0123456789abcdef"), from.ip(), addr(B), "a", 1);
        let mut b = PeerLink::new(ring(b"another-key-0123"), addr(B).ip(), from, "b", 2);
        let mut p = seal(&mut a, Instant::now());
        assert_eq!(b.admit(&p, from, Instant::now()), Err(DropReason::BadMac));
        let mut c = PeerLink::new(ring(b"0123456789abcdef"), addr(B).ip(), from, "b", 2);
        p[30] ^= 1;
        assert_eq!(c.admit(&p, from, Instant::now()), Err(DropReason::BadMac));
        assert_eq!(
            c.admit(&p[..10], from, Instant::now()),
            Err(DropReason::Truncated)
        );
        assert_eq!(c.counters.dropped(DropReason::BadMac), 1);
    }

    #[test]
    fn our_own_packets_sent_back_are_reflected() {
        let (mut a, mut b) = pair();
        let t = Instant::now();
        handshake(&mut a, &mut b, t);
        // A's own packet, arriving from B's address (the measured attack)
        let own = seal(&mut a, t);
        assert_eq!(a.admit(&own, addr(B), t), Err(DropReason::Reflected));
        // a packet with B's direction but A's name is A's too
        let mut twin = PeerLink::new(ring(b"0123456789abcdef"), addr(B).ip(), addr(A), "leafa", 5);
        assert_eq!(
            a.admit(&seal(&mut twin, t), addr(B), t),
            Err(DropReason::Reflected)
        );
        assert_eq!(a.counters.dropped(DropReason::Reflected), 2);
    }

    #[test]
    fn nothing_from_before_our_start_makes_the_peer_live() {
        let (mut a, mut b) = pair();
        let t = Instant::now();
        handshake(&mut a, &mut b, t);
        let captured: Vec<Vec<u8>> = (0..5).map(|_| seal(&mut b, t)).collect();
        // A restarts (a new process: a new random epoch, nothing remembered)
        let mut a2 = PeerLink::new(
            ring(b"0123456789abcdef"),
            addr(A).ip(),
            addr(B),
            "leafa",
            33,
        );
        for p in &captured {
            assert_eq!(a2.admit(p, addr(B), t), Err(DropReason::Stale));
            assert_eq!(a2.admit(p, addr(B), t), Err(DropReason::Replayed));
        }
        assert_eq!(a2.counters.rx, 0);
        // the same within one process: the peer went down, our epoch changed
        a.restart(44);
        for p in &captured {
            assert!(a.admit(p, addr(B), t).is_err());
        }
    }

    #[test]
    fn a_peer_that_did_not_restart_comes_back_after_a_loss() {
        let (mut a, mut b) = pair();
        let t = Instant::now();
        handshake(&mut a, &mut b, t);
        let old = seal(&mut b, t);
        assert!(a.admit(&old, addr(B), t).is_ok());
        // A lost B's packets for a dead interval; B, hearing A, kept its epoch
        a.restart(77);
        assert_eq!(
            a.admit(&seal(&mut b, t), addr(B), t).err(),
            Some(DropReason::Stale)
        );
        assert!(
            b.admit(&seal(&mut a, t), addr(A), t).is_ok(),
            "A's new epoch proven to B"
        );
        assert!(
            a.admit(&seal(&mut b, t), addr(B), t).is_ok(),
            "B's epoch proven again"
        );
        // a packet of B's seen before the loss is still a replay
        assert_eq!(a.admit(&old, addr(B), t), Err(DropReason::Replayed));
    }

    #[test]
    fn a_previous_incarnation_of_the_peer_stays_dead() {
        let (mut a, mut b) = pair();
        let t = Instant::now();
        handshake(&mut a, &mut b, t);
        let old: Vec<Vec<u8>> = (0..3).map(|_| seal(&mut b, t)).collect();
        // B restarts: its first packet is stale, then it proves itself
        let mut b2 = PeerLink::new(
            ring(b"0123456789abcdef"),
            addr(B).ip(),
            addr(A),
            "leafb",
            55,
        );
        assert_eq!(
            a.admit(&seal(&mut b2, t), addr(B), t).err(),
            Some(DropReason::Stale)
        );
        assert!(b2.admit(&seal(&mut a, t), addr(A), t).is_ok());
        assert!(
            a.admit(&seal(&mut b2, t), addr(B), t).is_ok(),
            "the restarted peer is live"
        );
        // the old incarnation's packets, never seen by A, are not
        for p in &old {
            assert_eq!(a.admit(p, addr(B), t), Err(DropReason::Replayed));
        }
    }

    #[test]
    fn the_previous_key_is_retired_once_the_peer_uses_the_current_one() {
        let (old, new) = (b"old-key-0123456789", b"new-key-0123456789");
        let t = Instant::now();
        let mut a = PeerLink::new(
            Keyring {
                current: Key::new(new.to_vec()),
                previous: Some(Key::new(old.to_vec())),
            },
            addr(A).ip(),
            addr(B),
            "leafa",
            1,
        );
        // B, not yet changed over, accepts the new key already (step 1)
        let mut b_old = PeerLink::new(
            Keyring {
                current: Key::new(old.to_vec()),
                previous: Some(Key::new(new.to_vec())),
            },
            addr(B).ip(),
            addr(A),
            "leafb",
            2,
        );
        handshake(&mut a, &mut b_old, t);
        assert!(a.keys.previous.is_some(), "the old key still serves");
        assert!(!a.take_previous_retired());
        let mut b_new = PeerLink::new(ring(new), addr(B).ip(), addr(A), "leafb", 3);
        assert_eq!(
            a.admit(&seal(&mut b_new, t), addr(B), t).err(),
            Some(DropReason::Stale)
        );
        let mut hb = Heartbeat {
            pages: 1,
            ..Default::default()
        };
        let mut buf = [0u8; MAX_PACKET];
        let n = a.seal(&mut hb, t, &mut buf).unwrap();
        assert!(b_new.admit(&buf[..n], addr(A), t).is_ok());
        assert!(a.admit(&seal(&mut b_new, t), addr(B), t).is_ok());
        assert!(a.take_previous_retired());
        assert!(a.keys.previous.is_none());
        assert_eq!(
            a.admit(&seal(&mut b_old, t), addr(B), t),
            Err(DropReason::BadMac)
        );
    }
}
