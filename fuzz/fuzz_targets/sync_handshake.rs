//! Fuzz target: the sync channel's handshake (`Handshake`, docs/sync.md).
//! Nothing may panic, and:
//!
//! 1. arbitrary bytes as the peer's messages, to a client and to a server
//!    holding the fuzz keys: the handshake never completes (the peer's proof
//!    cannot verify without the key), and a failed handshake stays failed;
//! 2. a genuine client and server (same key) exchange their messages, one
//!    byte of the client-to-server stream changed as the input says (or none):
//!    unchanged, both complete with matching session keys (a frame one side
//!    writes, the other reads); changed, the server never completes with
//!    keys that differ from the client's (a tampered handshake either fails
//!    or, when the change is to a byte nothing depends on, still agrees).
//!
//! Run from the crate root (cargo-fuzz; on stable with RUSTC_BOOTSTRAP=1):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run sync_handshake fuzz/seeds/sync_handshake`
#![no_main]

use dagw::peer::auth::{Key, Keyring};
use dagw::sync::{Frame, Handshake, Role};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"dagw-fuzz-key-0123456789abcdef";
const OLD_KEY: &[u8] = b"dagw-fuzz-old-key-0123456789ab";

fn ring() -> Keyring {
    Keyring {
        current: Key::new(KEY.to_vec()),
        previous: Some(Key::new(OLD_KEY.to_vec())),
    }
}

fn nonce(b: u8) -> [u8; 32] {
    [b; 32]
}

fuzz_target!(|data: &[u8]| {
    // 1. the peer's bytes are the input
    for role in [Role::Client, Role::Server] {
        let mut hs = Handshake::new(role, ring(), "leaf1a", nonce(1)).unwrap();
        let _ = hs.outgoing();
        let r = hs.incoming(data);
        assert!(!hs.is_done(), "completed without the peer knowing the key");
        if r.is_err() {
            assert!(hs.incoming(b"x").is_err(), "a failed handshake stays failed");
        }
    }

    // 2. a genuine exchange, one byte of client -> server changed
    let flip = if data.len() >= 3 {
        Some((usize::from(u16::from_be_bytes([data[0], data[1]])), data[2] | 1))
    } else {
        None
    };
    let mut c = Handshake::client(ring(), "leaf1a", nonce(2)).unwrap();
    let mut s = Handshake::server(ring(), "leaf1b", nonce(3)).unwrap();
    let mut c2s_pos = 0usize;
    let (mut c_err, mut s_err) = (false, false);
    for _ in 0..4 {
        if let Some(mut b) = c.outgoing() {
            if let Some((at, x)) = flip
                && (c2s_pos..c2s_pos + b.len()).contains(&at)
            {
                b[at - c2s_pos] ^= x;
            }
            c2s_pos += b.len();
            if !s_err && s.incoming(&b).is_err() {
                s_err = true;
            }
        }
        if let Some(b) = s.outgoing()
            && !c_err
            && c.incoming(&b).is_err()
        {
            c_err = true;
        }
    }
    if flip.is_none() {
        assert!(c.is_done() && s.is_done(), "a clean handshake completes");
    }
    if c.is_done() && s.is_done() {
        let (ce, se) = (c.finish().unwrap(), s.finish().unwrap());
        let mut w = ce.frame_writer();
        let mut out = Vec::new();
        w.keepalive(&mut out);
        let mut r = se.frame_reader();
        r.feed(&out);
        assert_eq!(
            r.next().expect("same keys").expect("a whole frame"),
            Frame::Keepalive
        );
    }
});
