//! Fuzz target: the heartbeat admission path on arbitrary datagrams.
//!
//! Every input is used three ways, none of which may panic:
//! 1. the codec alone: `split_mac` (framing) and `decode` (on the signed part
//!    `split_mac` returns, and on the raw bytes), with checked invariants: the
//!    split is exact, and whatever decodes re-encodes to something that decodes
//!    to the same heartbeat;
//! 2. `PeerLink::admit` of the raw bytes from the configured peer address, with
//!    a fixed keyring (current + previous key): almost always `auth-failed`,
//!    but the framing drops and counters are exercised;
//! 3. `PeerLink::admit` of the bytes as a *signed part*: the total length
//!    (offset 8) and key id (offset 10) are patched and a valid HMAC under the
//!    fuzz key appended, so the input passes authentication and reaches
//!    `decode`, the sender check, the freshness rule and the replay windows.
//!    Nothing was sent on the fuzz link, so nothing can echo it: no input may
//!    be admitted; one refused as `stale` must be `replayed` the second time.
//!
//! Run from the crate root (needs cargo-fuzz; on stable with RUSTC_BOOTSTRAP=1):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run heartbeat_decode fuzz/seeds/heartbeat_decode`
#![no_main]

use std::net::SocketAddr;
use std::time::Instant;

use dagw::peer::auth::{Key, Keyring};
use dagw::peer::codec::{MAC_LEN, MAX_PACKET, decode, encode, split_mac};
use dagw::peer::link::{DropReason, PeerLink};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"dagw-fuzz-key-0123456789abcdef";
const OLD_KEY: &[u8] = b"dagw-fuzz-old-key-0123456789ab";
const PEER: &str = "203.0.113.2:8742";

fn link() -> PeerLink {
    let keys = Keyring {
        current: Key::new(KEY.to_vec()),
        previous: Some(Key::new(OLD_KEY.to_vec())),
    };
    PeerLink::new(
        keys,
        "203.0.113.1".parse().unwrap(),
        PEER.parse().unwrap(),
        "leaf1a",
        0x0123_4567_89ab_cdef,
    )
}

fuzz_target!(|data: &[u8]| {
    // 1. the codec alone
    if let Ok((signed, tag)) = split_mac(data) {
        assert_eq!(tag.len(), MAC_LEN);
        assert_eq!(signed.len() + MAC_LEN, data.len());
        let _ = decode(signed);
    }
    if let Ok(hb) = decode(data) {
        let mut buf = [0u8; MAX_PACKET];
        let n = encode(&hb, &mut buf).expect("a decoded heartbeat fits a packet");
        assert_eq!(decode(&buf[..n]).as_ref(), Ok(&hb));
        assert!(split_mac(&buf[..n + MAC_LEN]).is_ok());
    }

    let from: SocketAddr = PEER.parse().unwrap();
    let now = Instant::now();

    // 2. the raw datagram through admission
    let mut l = link();
    let r = l.admit(data, from, now);
    assert_eq!(l.counters.rx + l.counters.dropped.iter().sum::<u64>(), 1);
    if r.is_ok() {
        assert_eq!(l.admit(data, from, now).err(), Some(DropReason::Replayed));
    }

    // 3. the bytes as a signed part, correctly framed and signed
    if data.len() < 11 || data.len() + MAC_LEN > MAX_PACKET {
        return;
    }
    let key = Key::new(KEY.to_vec());
    let mut pkt = data.to_vec();
    let total = (data.len() + MAC_LEN) as u16;
    pkt[8..10].copy_from_slice(&total.to_be_bytes());
    pkt[10] = key.id;
    let tag = key.sign(&pkt);
    pkt.extend_from_slice(&tag);
    let mut l = link();
    match l.admit(&pkt, from, now) {
        Ok(_) => panic!("admitted without echoing anything of ours"),
        Err(DropReason::Stale) => {
            assert_eq!(l.admit(&pkt, from, now).err(), Some(DropReason::Replayed));
        }
        Err(e) => assert_ne!(e, DropReason::BadMac, "a correctly signed packet"),
    }
});
