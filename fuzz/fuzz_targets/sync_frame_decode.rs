//! Fuzz target: the sync channel's frame decoder (`FrameReader`, docs/sync.md)
//! on arbitrary input. Nothing may panic, and:
//!
//! 1. raw bytes, fed in chunks whose sizes the input chooses: the reader
//!    never buffers more than `MAX_BUFFERED`, an error is final (asked again,
//!    the reader gives an error again), and, since nothing is signed with the
//!    fuzz key, no frame is ever delivered;
//! 2. the input cut into (type, payload) records, each framed with the right
//!    length, sequence number and tag under the fuzz key, so that it passes
//!    authentication and reaches the payload parser: every frame delivered
//!    re-encodes (`FrameWriter`) into bytes that decode to the same frame
//!    (a Gateways frame's addresses come out in canonical order, so that
//!    order survives the round trip too), and the sequence numbers delivered
//!    are 1, 2, 3, ...
//!
//! Run from the crate root (cargo-fuzz; on stable with RUSTC_BOOTSTRAP=1):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run sync_frame_decode fuzz/seeds/sync_frame_decode`
#![no_main]

use dagw::sync::frame::{MAX_BUFFERED, MAX_FRAME, TAG_LEN};
use dagw::sync::{Frame, FrameReader, FrameWriter};
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const KEY: [u8; 32] = *b"dagw-fuzz-sync-session-key-0123!";

/// One frame as the protocol signs it: len, type, seq, payload, tag.
fn framed(ty: u8, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut signed = vec![ty];
    signed.extend_from_slice(&seq.to_be_bytes());
    signed.extend_from_slice(payload);
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&KEY).unwrap();
    m.update(&signed);
    let tag = m.finalize().into_bytes();
    let len = (signed.len() + TAG_LEN) as u32;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&signed);
    out.extend_from_slice(&tag[..TAG_LEN]);
    out
}

fn reencode(frame: &Frame) -> Frame {
    let mut w = FrameWriter::new(&KEY);
    let mut out = Vec::new();
    w.write(frame, &mut out).expect("a decoded frame encodes");
    let mut r = FrameReader::new(&KEY);
    r.feed(&out);
    r.next().expect("re-encoded decodes").expect("whole")
}

fuzz_target!(|data: &[u8]| {
    // 1. raw bytes, chunked by the first byte
    let chunk = usize::from(data.first().copied().unwrap_or(1)).max(1) * 7;
    let mut r = FrameReader::new(&KEY);
    let mut failed = false;
    for c in data.chunks(chunk) {
        r.feed(c);
        assert!(r.buffered() <= MAX_BUFFERED, "buffered {}", r.buffered());
        loop {
            match r.next() {
                Ok(Some(_)) => panic!("an unsigned frame was delivered"),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            assert!(r.next().is_err(), "an error is final");
            break;
        }
    }

    // 2. records: type u8, payload length u16 (bounded), payload
    let mut stream = Vec::new();
    let mut rest = data;
    let mut seq = 1u64;
    while rest.len() >= 3 {
        let ty = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])) % (MAX_FRAME - 9 - TAG_LEN + 1);
        let len = len.min(rest.len() - 3);
        stream.extend_from_slice(&framed(ty, seq, &rest[3..3 + len]));
        rest = &rest[3 + len..];
        seq += 1;
    }
    let mut r = FrameReader::new(&KEY);
    r.feed(&stream);
    let mut delivered = 0u64;
    while let Ok(Some(frame)) = r.next() {
        delivered += 1;
        assert_eq!(reencode(&frame), frame);
    }
    assert!(delivered < seq);
});
