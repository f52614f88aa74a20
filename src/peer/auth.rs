//! Heartbeat authentication: HMAC-SHA256 under the shared key (a second key
//! may be accepted during a key changeover), and replay protection by the
//! sender's epoch and a 64-packet sequence window.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::codec::MAC_LEN;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Key {
    pub id: u8,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(id {:#04x})", self.id) // never the secret
    }
}

impl Key {
    pub fn new(secret: Vec<u8>) -> Key {
        let id = Sha256::digest(&secret)[0];
        Key { id, secret }
    }

    pub fn sign(&self, signed: &[u8]) -> [u8; MAC_LEN] {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes any key length");
        m.update(signed);
        m.finalize().into_bytes().into()
    }

    /// Constant-time comparison.
    pub fn verify(&self, signed: &[u8], tag: &[u8]) -> bool {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes any key length");
        m.update(signed);
        m.verify_slice(tag).is_ok()
    }
}

/// The keys in force: the current one signs; both verify during a changeover.
#[derive(Debug, Clone)]
pub struct Keyring {
    pub current: Key,
    pub previous: Option<Key>,
}

impl Keyring {
    pub fn verify(&self, key_id: u8, signed: &[u8], tag: &[u8]) -> bool {
        [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .filter(|k| k.id == key_id)
            .any(|k| k.verify(signed, tag))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    Fresh,
    /// Seen before, or too old for the window, or from an older epoch.
    Replayed,
}

/// Per-sender anti-replay: epochs only grow (a restart picks a larger one),
/// and within an epoch a sequence is accepted once, within 64 of the highest.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    epoch: u64,
    highest: u64,
    seen: u64,
    started: bool,
}

impl ReplayWindow {
    pub fn check_and_update(&mut self, epoch: u64, seq: u64) -> Replay {
        if !self.started || epoch > self.epoch {
            *self = ReplayWindow {
                epoch,
                highest: seq,
                seen: 1,
                started: true,
            };
            return Replay::Fresh;
        }
        if epoch < self.epoch {
            return Replay::Replayed;
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = seq;
            return Replay::Fresh;
        }
        let back = self.highest - seq;
        if back >= 64 || self.seen & (1 << back) != 0 {
            return Replay::Replayed;
        }
        self.seen |= 1 << back;
        Replay::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let k = Key::new(b"0123456789abcdef".to_vec());
        let tag = k.sign(b"hello");
        assert!(k.verify(b"hello", &tag));
        assert!(!k.verify(b"hellp", &tag));
        let other = Key::new(b"fedcba9876543210".to_vec());
        assert!(!other.verify(b"hello", &tag));
        let ring = Keyring {
            current: other.clone(),
            previous: Some(k.clone()),
        };
        assert!(
            ring.verify(k.id, b"hello", &tag),
            "the previous key still verifies during a changeover"
        );
        let ring = Keyring {
            current: other,
            previous: None,
        };
        assert!(!ring.verify(k.id, b"hello", &tag));
    }

    #[test]
    fn replay_window() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.check_and_update(5, 10), Replay::Fresh);
        assert_eq!(w.check_and_update(5, 10), Replay::Replayed);
        assert_eq!(w.check_and_update(5, 12), Replay::Fresh);
        assert_eq!(
            w.check_and_update(5, 11),
            Replay::Fresh,
            "reordered within the window"
        );
        assert_eq!(w.check_and_update(5, 11), Replay::Replayed);
        assert_eq!(w.check_and_update(5, 200), Replay::Fresh);
        assert_eq!(
            w.check_and_update(5, 120),
            Replay::Replayed,
            "older than the window"
        );
        assert_eq!(
            w.check_and_update(4, 999),
            Replay::Replayed,
            "an older epoch"
        );
        assert_eq!(
            w.check_and_update(6, 1),
            Replay::Fresh,
            "the sender restarted"
        );
    }
}
