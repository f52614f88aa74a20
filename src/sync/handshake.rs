//! Mutual challenge–response authentication of a sync connection and the
//! derivation of its per-direction session keys (docs/sync.md). A pure state
//! machine: the caller moves bytes, [`Handshake`] decides.
//!
//! Messages are framed as `len u16` + body (at most [`MAX_MESSAGE`] bytes):
//!
//! ```text
//! Hello: type 1, magic "DSYN", version 1, key id u8, nonce [32],
//!        node name (len u8 + <= 64 bytes UTF-8)
//! Proof: type 2, key id u8,
//!        HMAC-SHA256(key, "dagw-sync-proof" || role || own nonce ||
//!                         their nonce || own name)          [32]
//! ```
//!
//! Both sides send Hello at once, and Proof as soon as they have the other's
//! Hello. `role` is 0 for the connecting side (client) and 1 for the
//! accepting side (server), so a proof cannot be reflected back; the nonces
//! make an old proof useless. A Hello's key id names the sender's current
//! key; a Proof is signed with the key the peer's Hello named if this side
//! has it (so a changeover works whichever side got the new key first), else
//! with the current key, and its key id says which. The verifier accepts its
//! current or previous key (as `Keyring::verify`).
//!
//! Session keys, under the key of the client's proof (both sides have it):
//! `k_c2s = HMAC(key, "dagw-sync-c2s" || client nonce || server nonce)`,
//! `k_s2c = HMAC(key, "dagw-sync-s2c" || client nonce || server nonce)`.

use std::io::Read;

use super::SyncError;
use super::frame::{FrameReader, FrameWriter};
use crate::peer::auth::{Key, Keyring};

pub const MAGIC: &[u8; 4] = b"DSYN";
pub const VERSION: u8 = 1;
pub const NONCE_LEN: usize = 32;
pub const MAX_NAME: usize = 64;
const TYPE_HELLO: u8 = 1;
const TYPE_PROOF: u8 = 2;
const PROOF_LEN: usize = 32;
/// The largest handshake message body (a Hello with a 64-byte name).
pub const MAX_MESSAGE: usize = 1 + 4 + 1 + 1 + NONCE_LEN + 1 + MAX_NAME;
const PROOF_LABEL: &[u8] = b"dagw-sync-proof";
const C2S_LABEL: &[u8] = b"dagw-sync-c2s";
const S2C_LABEL: &[u8] = b"dagw-sync-s2c";

/// Which end of the TCP connection this side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The connecting side.
    Client,
    /// The accepting side.
    Server,
}

impl Role {
    fn byte(self) -> u8 {
        match self {
            Role::Client => 0,
            Role::Server => 1,
        }
    }
    fn other(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// 32 random bytes from the kernel.
pub fn random_nonce() -> std::io::Result<[u8; NONCE_LEN]> {
    let mut n = [0u8; NONCE_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut n)?;
    Ok(n)
}

/// The result of a successful handshake.
pub struct Established {
    /// The peer's node name from its (authenticated) Hello.
    pub peer_name: String,
    /// The id of the key the session keys derive from.
    pub key_id: u8,
    /// Session keys, wiped when dropped.
    tx: zeroize::Zeroizing<[u8; 32]>,
    rx: zeroize::Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Established {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Established")
            .field("peer_name", &self.peer_name)
            .field("key_id", &format_args!("{:#04x}", self.key_id))
            .finish_non_exhaustive() // never the keys
    }
}

impl Established {
    /// Signs this side's frames.
    pub fn frame_writer(&self) -> FrameWriter {
        FrameWriter::new(&self.tx)
    }
    /// Checks the peer's frames.
    pub fn frame_reader(&self) -> FrameReader {
        FrameReader::new(&self.rx)
    }
}

struct PeerHello {
    nonce: [u8; NONCE_LEN],
    name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitHello,
    AwaitProof,
    Done,
    Failed,
}

/// One side of the handshake.
///
/// Drive it with [`outgoing`](Self::outgoing) (bytes to send) and
/// [`incoming`](Self::incoming) (bytes received) until
/// [`is_done`](Self::is_done), then take [`finish`](Self::finish). Any error
/// is final.
pub struct Handshake {
    role: Role,
    keyring: Keyring,
    name: String,
    nonce: [u8; NONCE_LEN],
    out: Vec<u8>,
    inbuf: Vec<u8>,
    peer: Option<PeerHello>,
    /// The key this side's proof was signed with.
    proof_key: Option<Key>,
    state: State,
    result: Option<Established>,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("role", &self.role)
            .field("name", &self.name)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    pub fn client(
        keyring: Keyring,
        name: &str,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Handshake, SyncError> {
        Handshake::new(Role::Client, keyring, name, nonce)
    }

    pub fn server(
        keyring: Keyring,
        name: &str,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Handshake, SyncError> {
        Handshake::new(Role::Server, keyring, name, nonce)
    }

    /// Refuses a node name longer than [`MAX_NAME`] bytes.
    pub fn new(
        role: Role,
        keyring: Keyring,
        name: &str,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Handshake, SyncError> {
        if name.len() > MAX_NAME {
            return Err(SyncError::Protocol(format!(
                "node name longer than {MAX_NAME} bytes"
            )));
        }
        let mut out = Vec::with_capacity(2 * (2 + MAX_MESSAGE));
        let body_len = 1 + 4 + 1 + 1 + NONCE_LEN + 1 + name.len();
        out.extend_from_slice(&(body_len as u16).to_be_bytes());
        out.push(TYPE_HELLO);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(keyring.current.id);
        out.extend_from_slice(&nonce);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        Ok(Handshake {
            role,
            keyring,
            name: name.to_owned(),
            nonce,
            out,
            inbuf: Vec::with_capacity(2 + MAX_MESSAGE),
            peer: None,
            proof_key: None,
            state: State::AwaitHello,
            result: None,
        })
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Bytes to send now, if any.
    pub fn outgoing(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out))
        }
    }

    /// Both proofs exchanged and the peer's verified. (Send what
    /// [`outgoing`](Self::outgoing) still has before using the session.)
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feed received bytes. Returns how many were consumed: once the
    /// handshake is done it stops, and the rest belongs to the frame stream.
    pub fn incoming(&mut self, bytes: &[u8]) -> Result<usize, SyncError> {
        let mut used = 0;
        while used < bytes.len() {
            match self.state {
                State::Done => break,
                State::Failed => return Err(SyncError::Auth("handshake already failed")),
                _ => {}
            }
            // the length prefix first, then exactly one body: never more
            let want = if self.inbuf.len() < 2 {
                2 - self.inbuf.len()
            } else {
                let len = u16::from_be_bytes([self.inbuf[0], self.inbuf[1]]) as usize;
                2 + len - self.inbuf.len()
            };
            let n = want.min(bytes.len() - used);
            self.inbuf.extend_from_slice(&bytes[used..used + n]);
            used += n;
            if self.inbuf.len() == 2 {
                let len = u16::from_be_bytes([self.inbuf[0], self.inbuf[1]]) as usize;
                if len == 0 || len > MAX_MESSAGE {
                    return self.fail(SyncError::Frame(format!("handshake message length {len}")));
                }
                continue;
            }
            if self.inbuf.len() > 2 && n == want {
                let body = std::mem::take(&mut self.inbuf);
                let r = self.message(&body[2..]);
                self.inbuf = body;
                self.inbuf.clear();
                if let Err(e) = r {
                    return self.fail(e);
                }
            }
        }
        Ok(used)
    }

    /// The session, once [`is_done`](Self::is_done).
    pub fn finish(mut self) -> Result<Established, SyncError> {
        self.result
            .take()
            .ok_or(SyncError::Protocol("handshake not finished".into()))
    }

    fn fail(&mut self, e: SyncError) -> Result<usize, SyncError> {
        self.state = State::Failed;
        self.out.clear();
        Err(e)
    }

    fn message(&mut self, body: &[u8]) -> Result<(), SyncError> {
        match (body[0], self.state) {
            (TYPE_HELLO, State::AwaitHello) => self.hello(&body[1..]),
            (TYPE_PROOF, State::AwaitProof) => self.proof(&body[1..]),
            (TYPE_HELLO | TYPE_PROOF, _) => {
                Err(SyncError::Protocol("handshake message out of order".into()))
            }
            (t, _) => Err(SyncError::Frame(format!("handshake message type {t}"))),
        }
    }

    fn hello(&mut self, b: &[u8]) -> Result<(), SyncError> {
        if b.len() < 4 + 1 + 1 + NONCE_LEN + 1 {
            return Err(SyncError::Frame("short Hello".into()));
        }
        if &b[..4] != MAGIC {
            return Err(SyncError::Frame("not a dagw sync Hello".into()));
        }
        if b[4] != VERSION {
            return Err(SyncError::Frame(format!("sync version {}", b[4])));
        }
        let key_id = b[5];
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&b[6..6 + NONCE_LEN]);
        let name_len = b[6 + NONCE_LEN] as usize;
        let name = &b[7 + NONCE_LEN..];
        if name_len > MAX_NAME || name.len() != name_len {
            return Err(SyncError::Frame("bad node name length in Hello".into()));
        }
        let name = std::str::from_utf8(name)
            .map_err(|_| SyncError::Frame("node name is not UTF-8".into()))?
            .to_owned();
        if nonce == self.nonce {
            return Err(SyncError::Auth("our own Hello reflected back"));
        }
        // sign with the key the peer named if we have it, else our current
        let key = [Some(&self.keyring.current), self.keyring.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == key_id)
            .unwrap_or(&self.keyring.current)
            .clone();
        let mac = key.sign(&proof_input(
            self.role,
            &self.nonce,
            &nonce,
            self.name.as_bytes(),
        ));
        self.out
            .extend_from_slice(&((1 + 1 + PROOF_LEN) as u16).to_be_bytes());
        self.out.push(TYPE_PROOF);
        self.out.push(key.id);
        self.out.extend_from_slice(&mac);
        self.proof_key = Some(key);
        self.peer = Some(PeerHello { nonce, name });
        self.state = State::AwaitProof;
        Ok(())
    }

    fn proof(&mut self, b: &[u8]) -> Result<(), SyncError> {
        if b.len() != 1 + PROOF_LEN {
            return Err(SyncError::Frame("bad Proof length".into()));
        }
        let key_id = b[0];
        let mac = &b[1..];
        let peer = self.peer.as_ref().expect("a Proof only after a Hello");
        let signed = proof_input(
            self.role.other(),
            &peer.nonce,
            &self.nonce,
            peer.name.as_bytes(),
        );
        let verified = [Some(&self.keyring.current), self.keyring.previous.as_ref()]
            .into_iter()
            .flatten()
            .filter(|k| k.id == key_id)
            .find(|k| k.verify(&signed, mac))
            .ok_or(SyncError::Auth("the peer's proof does not verify"))?;
        let (key, client_nonce, server_nonce) = match self.role {
            Role::Client => (
                self.proof_key
                    .as_ref()
                    .expect("sent with the Hello's answer"),
                &self.nonce,
                &peer.nonce,
            ),
            Role::Server => (verified, &peer.nonce, &self.nonce),
        };
        let derive = |label: &[u8]| {
            let mut m = Vec::with_capacity(label.len() + 2 * NONCE_LEN);
            m.extend_from_slice(label);
            m.extend_from_slice(client_nonce);
            m.extend_from_slice(server_nonce);
            key.sign(&m)
        };
        let (c2s, s2c) = (derive(C2S_LABEL), derive(S2C_LABEL));
        let (tx, rx) = match self.role {
            Role::Client => (c2s, s2c),
            Role::Server => (s2c, c2s),
        };
        self.result = Some(Established {
            peer_name: peer.name.clone(),
            key_id: key.id,
            tx: tx.into(),
            rx: rx.into(),
        });
        self.state = State::Done;
        Ok(())
    }
}

fn proof_input(role: Role, own: &[u8; NONCE_LEN], their: &[u8; NONCE_LEN], name: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(PROOF_LABEL.len() + 1 + 2 * NONCE_LEN + name.len());
    v.extend_from_slice(PROOF_LABEL);
    v.push(role.byte());
    v.extend_from_slice(own);
    v.extend_from_slice(their);
    v.extend_from_slice(name);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::frame::Frame;

    fn key(s: &str) -> Key {
        Key::new(s.as_bytes().to_vec())
    }
    fn ring(cur: &str, prev: Option<&str>) -> Keyring {
        Keyring {
            current: key(cur),
            previous: prev.map(key),
        }
    }
    const A: &str = "0123456789abcdef-old";
    const B: &str = "fedcba9876543210-new";

    /// Run both sides to completion, moving bytes in small pieces; each
    /// round both send what they have, then both receive.
    fn run(c: &mut Handshake, s: &mut Handshake) -> (Result<(), SyncError>, Result<(), SyncError>) {
        let (mut rc, mut rs) = (Ok(()), Ok(()));
        for _ in 0..4 {
            let (to_s, to_c) = (c.outgoing(), s.outgoing());
            for piece in to_s.iter().flat_map(|b| b.chunks(7)) {
                if rs.is_ok() {
                    rs = s.incoming(piece).map(|n| assert_eq!(n, piece.len()));
                }
            }
            for piece in to_c.iter().flat_map(|b| b.chunks(5)) {
                if rc.is_ok() {
                    rc = c.incoming(piece).map(|n| assert_eq!(n, piece.len()));
                }
            }
        }
        (rc, rs)
    }

    fn pair(cr: Keyring, sr: Keyring) -> (Handshake, Handshake) {
        let c = Handshake::client(cr, "leaf1a", [1; 32]).unwrap();
        let s = Handshake::server(sr, "leaf1b", [2; 32]).unwrap();
        (c, s)
    }

    fn assert_session_works(c: Handshake, s: Handshake) {
        let (c, s) = (c.finish().unwrap(), s.finish().unwrap());
        assert_eq!(c.peer_name, "leaf1b");
        assert_eq!(s.peer_name, "leaf1a");
        assert_eq!(c.key_id, s.key_id);
        for (w, r) in [(&c, &s), (&s, &c)] {
            let mut out = vec![];
            w.frame_writer().keepalive(&mut out);
            let mut rd = r.frame_reader();
            rd.feed(&out);
            assert_eq!(rd.next().unwrap(), Some(Frame::Keepalive));
            // a direction's key does not verify the other direction
            let mut rd = w.frame_reader();
            rd.feed(&out);
            assert!(rd.next().is_err());
        }
    }

    #[test]
    fn success_both_ways() {
        let (mut c, mut s) = pair(ring(A, None), ring(A, None));
        let (rc, rs) = run(&mut c, &mut s);
        rc.unwrap();
        rs.unwrap();
        assert!(c.is_done() && s.is_done());
        assert_session_works(c, s);
    }

    #[test]
    fn wrong_key_fails_on_both_sides() {
        let (mut c, mut s) = pair(ring(A, None), ring(B, None));
        let (rc, rs) = run(&mut c, &mut s);
        assert!(matches!(rc, Err(SyncError::Auth(_))), "{rc:?}");
        assert!(matches!(rs, Err(SyncError::Auth(_))), "{rs:?}");
        assert!(!c.is_done() && !s.is_done());
        assert!(c.finish().is_err());
    }

    #[test]
    fn previous_key_accepted_whichever_side_changed_first() {
        for (cr, sr) in [
            (ring(B, Some(A)), ring(A, None)),
            (ring(A, None), ring(B, Some(A))),
            (ring(B, Some(A)), ring(B, Some(A))),
        ] {
            let (mut c, mut s) = pair(cr, sr);
            let (rc, rs) = run(&mut c, &mut s);
            rc.unwrap();
            rs.unwrap();
            assert_session_works(c, s);
        }
    }

    fn hello_and_proof(h: &mut Handshake, peer_hello: &[u8]) -> Vec<u8> {
        h.incoming(peer_hello).unwrap();
        h.outgoing().unwrap()
    }

    #[test]
    fn reflected_proof_fails() {
        // An attacker mirrors the server's own Hello back: refused.
        let mut s = Handshake::server(ring(A, None), "leaf1b", [2; 32]).unwrap();
        let hello = s.outgoing().unwrap();
        assert!(matches!(s.incoming(&hello), Err(SyncError::Auth(_))));

        // The attacker (no key) opens two connections to the same server
        // "leaf1b": on the first the server's nonce is n1; on the second it
        // says Hello with nonce n1, gets the server's proof over
        // (n2, n1, "leaf1b"), and plays it back on the first as its own proof,
        // claiming nonce n2 and name "leaf1b". Without the role byte the MAC
        // input would be identical.
        let (n1, n2) = ([2; 32], [9; 32]);
        let mut s1 = Handshake::server(ring(A, None), "leaf1b", n1).unwrap();
        s1.outgoing();
        let mut s2 = Handshake::server(ring(A, None), "leaf1b", n2).unwrap();
        s2.outgoing();
        let hello_n1 = Handshake::client(ring(B, None), "leaf1b", n1)
            .unwrap()
            .outgoing()
            .unwrap();
        let proof2 = hello_and_proof(&mut s2, &hello_n1);
        let hello_n2 = Handshake::client(ring(B, None), "leaf1b", n2)
            .unwrap()
            .outgoing()
            .unwrap();
        s1.incoming(&hello_n2).unwrap();
        assert!(matches!(s1.incoming(&proof2), Err(SyncError::Auth(_))));
    }

    #[test]
    fn replayed_proof_fails() {
        // record a genuine client's Hello and Proof, replay them to a server
        // with a fresh nonce
        let (mut c, mut s) = pair(ring(A, None), ring(A, None));
        let c_hello = c.outgoing().unwrap();
        let s_hello = s.outgoing().unwrap();
        let c_proof = hello_and_proof(&mut c, &s_hello);
        s.incoming(&c_hello).unwrap();
        s.incoming(&c_proof).unwrap();
        assert!(s.is_done());

        let mut s2 = Handshake::server(ring(A, None), "leaf1b", [3; 32]).unwrap();
        s2.outgoing();
        s2.incoming(&c_hello).unwrap();
        assert!(matches!(s2.incoming(&c_proof), Err(SyncError::Auth(_))));
        assert!(
            matches!(s2.incoming(&[0]), Err(SyncError::Auth(_))),
            "final"
        );
    }

    #[test]
    fn bounds_and_order() {
        let mut s = Handshake::server(ring(A, None), "n", [2; 32]).unwrap();
        assert!(matches!(
            s.incoming(&[0xff, 0xff]),
            Err(SyncError::Frame(_))
        ));
        let mut s = Handshake::server(ring(A, None), "n", [2; 32]).unwrap();
        assert!(s.incoming(&[0, 0]).is_err());
        // a Proof before the Hello
        let mut s = Handshake::server(ring(A, None), "n", [2; 32]).unwrap();
        let mut p = vec![0, 34, TYPE_PROOF];
        p.extend_from_slice(&[0; 33]);
        assert!(matches!(s.incoming(&p), Err(SyncError::Protocol(_))));
        // a name too long
        assert!(Handshake::client(ring(A, None), &"x".repeat(65), [1; 32]).is_err());
        let long = "x".repeat(64);
        let mut c = Handshake::client(ring(A, None), &long, [1; 32]).unwrap();
        assert_eq!(c.outgoing().unwrap().len(), 2 + MAX_MESSAGE);
    }

    #[test]
    fn stops_consuming_when_done() {
        let (mut c, mut s) = pair(ring(A, None), ring(A, None));
        let c_hello = c.outgoing().unwrap();
        let s_hello = s.outgoing().unwrap();
        let c_proof = hello_and_proof(&mut c, &s_hello);
        let mut stream = c_hello.clone();
        stream.extend_from_slice(&c_proof);
        stream.extend_from_slice(b"frames");
        assert_eq!(s.incoming(&stream).unwrap(), stream.len() - 6);
        assert!(s.is_done());
        assert!(
            s.outgoing().is_some(),
            "the server's proof is still to send"
        );
    }

    #[test]
    fn nonce() {
        let (a, b) = (random_nonce().unwrap(), random_nonce().unwrap());
        assert_ne!(a, b);
    }
}
