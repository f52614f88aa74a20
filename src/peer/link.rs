//! One end of the heartbeat link: seals outgoing packets (epoch, sequence,
//! echo for RTT, HMAC) and admits incoming ones (source, framing, MAC, replay,
//! decode), counting every drop by reason.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::auth::{Keyring, Replay, ReplayWindow};
use super::codec::{self, DecodeError, Heartbeat, MAC_LEN};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    WrongSource,
    Truncated,
    Oversized,
    Malformed,
    Version,
    BadMac,
    Replayed,
}

impl DropReason {
    pub const ALL: [DropReason; 7] = [
        DropReason::WrongSource,
        DropReason::Truncated,
        DropReason::Oversized,
        DropReason::Malformed,
        DropReason::Version,
        DropReason::BadMac,
        DropReason::Replayed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::WrongSource => "wrong-source",
            DropReason::Truncated => "truncated",
            DropReason::Oversized => "oversized",
            DropReason::Malformed => "malformed",
            DropReason::Version => "unsupported-version",
            DropReason::BadMac => "auth-failed",
            DropReason::Replayed => "replayed",
        }
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
    pub dropped: [u64; 7],
}

impl Counters {
    pub fn drop(&mut self, r: DropReason) {
        let i = DropReason::ALL.iter().position(|x| *x == r).unwrap_or(0);
        self.dropped[i] += 1;
    }
    pub fn dropped(&self, r: DropReason) -> u64 {
        DropReason::ALL
            .iter()
            .position(|x| *x == r)
            .map(|i| self.dropped[i])
            .unwrap_or(0)
    }
}

const SENT_RING: usize = 32;

pub struct PeerLink {
    pub keys: Keyring,
    pub peer: SocketAddr,
    epoch: u64,
    seq: u64,
    window: ReplayWindow,
    sent: [(u64, Option<Instant>); SENT_RING],
    last_rx: Option<(u64, Instant)>,
    pub counters: Counters,
}

impl PeerLink {
    /// `epoch` must grow across restarts (ms since 1970 at start).
    pub fn new(keys: Keyring, peer: SocketAddr, epoch: u64) -> Self {
        PeerLink {
            keys,
            peer,
            epoch,
            seq: 0,
            window: ReplayWindow::default(),
            sent: [(0, None); SENT_RING],
            last_rx: None,
            counters: Counters::default(),
        }
    }

    /// Fill the link fields of `hb`, encode and sign it into `out`.
    pub fn seal(&mut self, hb: &mut Heartbeat, now: Instant, out: &mut [u8]) -> Option<usize> {
        self.seq += 1;
        hb.key_id = self.keys.current.id;
        hb.epoch = self.epoch;
        hb.seq = self.seq;
        (hb.echo_seq, hb.echo_hold_us) = match self.last_rx {
            Some((s, at)) => (
                s,
                now.saturating_duration_since(at)
                    .as_micros()
                    .min(u32::MAX as u128) as u32,
            ),
            None => (0, 0),
        };
        let n = codec::encode(hb, out)?;
        let tag = self.keys.current.sign(&out[..n]);
        out.get_mut(n..n + MAC_LEN)?.copy_from_slice(&tag);
        self.sent[(self.seq as usize) % SENT_RING] = (self.seq, Some(now));
        self.counters.tx += 1;
        Some(n + MAC_LEN)
    }

    /// Admit a received datagram: Ok with the heartbeat and, when it echoes one
    /// of ours, the round-trip time.
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
        if !self.keys.verify(signed[10], signed, tag) {
            return Err(DropReason::BadMac);
        }
        let hb = codec::decode(signed)?;
        if self.window.check_and_update(hb.epoch, hb.seq) == Replay::Replayed {
            return Err(DropReason::Replayed);
        }
        self.last_rx = Some((hb.seq, now));
        let rtt = match self.sent[(hb.echo_seq as usize) % SENT_RING] {
            (s, Some(at)) if s == hb.echo_seq && hb.echo_seq != 0 => Some(
                now.saturating_duration_since(at)
                    .saturating_sub(Duration::from_micros(hb.echo_hold_us.into())),
            ),
            _ => None,
        };
        Ok((hb, rtt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::auth::Key;

    fn ring(secret: &[u8]) -> Keyring {
        Keyring {
            current: Key::new(secret.to_vec()),
            previous: None,
        }
    }

    #[test]
    fn a_sealed_packet_is_admitted_once_and_measures_rtt() {
        let a_addr: SocketAddr = "203.0.113.1:8742".parse().unwrap();
        let b_addr: SocketAddr = "203.0.113.2:8742".parse().unwrap();
        let mut a = PeerLink::new(ring(b"0123456789abcdef"), b_addr, 1);
        let mut b = PeerLink::new(ring(b"0123456789abcdef"), a_addr, 2);
        let t0 = Instant::now();
        let mut buf = [0u8; codec::MAX_PACKET];
        let mut hb = Heartbeat {
            pages: 1,
            ..Default::default()
        };
        let n = a.seal(&mut hb, t0, &mut buf).unwrap();
        let (got, rtt) = b.admit(&buf[..n], a_addr, t0).unwrap();
        assert_eq!(got.seq, 1);
        assert_eq!(rtt, None);
        assert_eq!(b.admit(&buf[..n], a_addr, t0), Err(DropReason::Replayed));
        // b answers 2 ms later, echoing a's packet; a sees it 5 ms after sending
        let mut hb = Heartbeat {
            pages: 1,
            ..Default::default()
        };
        let n = b
            .seal(&mut hb, t0 + Duration::from_millis(2), &mut buf)
            .unwrap();
        let (_, rtt) = a
            .admit(&buf[..n], b_addr, t0 + Duration::from_millis(5))
            .unwrap();
        assert_eq!(rtt, Some(Duration::from_millis(3)));
        assert_eq!(
            a.admit(&buf[..n], "198.51.100.1:8742".parse().unwrap(), t0),
            Err(DropReason::WrongSource)
        );
    }

    #[test]
    fn a_wrong_key_or_tampering_is_refused() {
        let from: SocketAddr = "203.0.113.1:8742".parse().unwrap();
        let mut a = PeerLink::new(ring(b"0123456789abcdef"), from, 1);
        let mut b = PeerLink::new(ring(b"another-key-0123"), from, 2);
        let mut buf = [0u8; codec::MAX_PACKET];
        let mut hb = Heartbeat {
            pages: 1,
            ..Default::default()
        };
        let n = a.seal(&mut hb, Instant::now(), &mut buf).unwrap();
        assert_eq!(
            b.admit(&buf[..n], from, Instant::now()),
            Err(DropReason::BadMac)
        );
        let mut c = PeerLink::new(ring(b"0123456789abcdef"), from, 2);
        buf[30] ^= 1;
        assert_eq!(
            c.admit(&buf[..n], from, Instant::now()),
            Err(DropReason::BadMac)
        );
        assert_eq!(
            c.admit(&buf[..10], from, Instant::now()),
            Err(DropReason::Truncated)
        );
        assert_eq!(c.counters.dropped(DropReason::BadMac), 1);
    }
}
