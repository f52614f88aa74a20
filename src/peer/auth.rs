//! Heartbeat authentication: HMAC-SHA256 under the shared key (a second key
//! may be accepted during a key changeover), and replay protection within one
//! epoch of the sender by a 64-packet sequence window. Which epochs are
//! accepted at all (the freshness rule) is decided in `link.rs`.
//!
//! Secrets are wiped from memory when dropped (`zeroize`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::codec::MAC_LEN;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Key {
    pub id: u8,
    secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(id {:#04x})", self.id) // never the secret
    }
}

impl Key {
    pub fn new(secret: impl Into<Zeroizing<Vec<u8>>>) -> Key {
        let secret = secret.into();
        let id = Sha256::digest(secret.as_slice())[0];
        Key { id, secret }
    }

    /// The same secret (compared in constant time).
    pub fn same_secret(&self, other: &Key) -> bool {
        use subtle_eq::ct_eq;
        ct_eq(&self.secret, &other.secret)
    }

    pub fn sign(&self, signed: &[u8]) -> [u8; MAC_LEN] {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(self.secret.as_slice())
            .expect("HMAC takes any key length");
        m.update(signed);
        m.finalize().into_bytes().into()
    }

    /// Constant-time comparison.
    pub fn verify(&self, signed: &[u8], tag: &[u8]) -> bool {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(self.secret.as_slice())
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

/// Which key of a [`Keyring`] verified a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    Current,
    Previous,
}

impl Keyring {
    pub fn verify(&self, key_id: u8, signed: &[u8], tag: &[u8]) -> bool {
        self.verify_which(key_id, signed, tag).is_some()
    }

    /// The key that verifies `tag`, the current one tried first.
    pub fn verify_which(&self, key_id: u8, signed: &[u8], tag: &[u8]) -> Option<Verified> {
        if self.current.id == key_id && self.current.verify(signed, tag) {
            return Some(Verified::Current);
        }
        self.previous
            .as_ref()
            .filter(|k| k.id == key_id && k.verify(signed, tag))
            .map(|_| Verified::Previous)
    }

    /// The same secrets in the same places.
    pub fn same_as(&self, other: &Keyring) -> bool {
        self.current.same_secret(&other.current)
            && match (&self.previous, &other.previous) {
                (None, None) => true,
                (Some(a), Some(b)) => a.same_secret(b),
                _ => false,
            }
    }
}

/// Constant-time equality of two byte strings (their lengths are not secret).
mod subtle_eq {
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        std::hint::black_box(diff) == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    Fresh,
    /// Seen before, or too old for the window.
    Replayed,
}

/// Anti-replay within one epoch of the sender: a sequence is accepted once,
/// and only within 64 of the highest seen.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    pub epoch: u64,
    highest: u64,
    seen: u64,
}

impl ReplayWindow {
    /// A window for `epoch` that has seen `seq`.
    pub fn new(epoch: u64, seq: u64) -> Self {
        ReplayWindow {
            epoch,
            highest: seq,
            seen: 1,
        }
    }

    /// `seq` of this window's epoch: fresh (and now seen) or replayed.
    pub fn check_and_update(&mut self, seq: u64) -> Replay {
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
        let mut w = ReplayWindow::new(5, 10);
        assert_eq!(w.check_and_update(10), Replay::Replayed);
        assert_eq!(w.check_and_update(12), Replay::Fresh);
        assert_eq!(
            w.check_and_update(11),
            Replay::Fresh,
            "reordered within the window"
        );
        assert_eq!(w.check_and_update(11), Replay::Replayed);
        assert_eq!(w.check_and_update(200), Replay::Fresh);
        assert_eq!(
            w.check_and_update(120),
            Replay::Replayed,
            "older than the window"
        );
    }

    #[test]
    fn which_key_verified_and_keyring_equality() {
        let old = Key::new(b"0123456789abcdef".to_vec());
        let new = Key::new(b"fedcba9876543210".to_vec());
        let ring = Keyring {
            current: new.clone(),
            previous: Some(old.clone()),
        };
        let t_old = old.sign(b"x");
        let t_new = new.sign(b"x");
        assert_eq!(
            ring.verify_which(new.id, b"x", &t_new),
            Some(Verified::Current)
        );
        assert_eq!(
            ring.verify_which(old.id, b"x", &t_old),
            Some(Verified::Previous)
        );
        assert_eq!(ring.verify_which(old.id, b"y", &t_old), None);
        let same = Keyring {
            current: Key::new(b"fedcba9876543210".to_vec()),
            previous: Some(Key::new(b"0123456789abcdef".to_vec())),
        };
        assert!(ring.same_as(&same));
        let fewer = Keyring {
            current: new,
            previous: None,
        };
        assert!(!ring.same_as(&fewer));
    }
}
