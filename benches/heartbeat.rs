//! Heartbeat per-packet cost (issue 4): encode + authenticate
//! ([`PeerLink::seal`]) and decode + verify ([`PeerLink::admit`]: source,
//! framing, HMAC-SHA256, decode, replay window, RTT echo) for packets carrying
//! 1, 16 and 32 (a full page, `MAX_ENTRIES`) gateway entries. Target: < 2 µs per packet, seal + admit.
//!
//! `cargo bench --bench heartbeat` prints ns per packet for seal, admit and
//! both. `admit` rejects replays, so every admitted packet is freshly sealed:
//! the bench times seal+admit pairs and seal alone, and admit is the
//! difference. Set DAGW_BENCH_ITERS to change the iteration cap (200000).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dagw::peer::auth::{Key, Keyring};
use dagw::peer::codec::{GwEntry, Heartbeat, MAX_PACKET};
use dagw::peer::link::PeerLink;

const TARGET_NS: f64 = 2000.0;
/// Per measurement, after calibration: iterations stop at the cap or here.
const BUDGET: Duration = Duration::from_secs(3);
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn ring() -> Keyring {
    Keyring {
        current: Key::new(SECRET.to_vec()),
        previous: None,
    }
}

fn heartbeat(entries: usize) -> Heartbeat {
    let mut hb = Heartbeat {
        priority: 100,
        peer_link: 1,
        page: 0,
        pages: 1,
        ..Default::default()
    };
    hb.node.push_str("leaf1a").unwrap();
    for i in 0..entries {
        hb.gateways
            .push(GwEntry {
                kind: 1,
                state: 2,
                id: 10 + i as u32,
                mac: [0, 0, 0x5e, 0, 1, 1],
                up_delay_ms: 1000,
                ipv4_digest: 0x0102_0304 ^ i as u32,
                ipv6_digest: 0x0506_0708 ^ i as u32,
                arp: 120,
                nd: 40,
            })
            .unwrap();
    }
    hb
}

struct Pair {
    a: PeerLink,
    b: PeerLink,
    a_addr: SocketAddr,
    hb: Heartbeat,
    buf: Vec<u8>,
    now: Instant,
}

impl Pair {
    fn new(entries: usize) -> Pair {
        let a_addr: SocketAddr = "203.0.113.1:8742".parse().unwrap();
        let b_addr: SocketAddr = "203.0.113.2:8742".parse().unwrap();
        let mut p = Pair {
            a: PeerLink::new(ring(), a_addr.ip(), b_addr, "leaf1a", 0x1111),
            b: PeerLink::new(ring(), b_addr.ip(), a_addr, "leaf1b", 0x2222),
            a_addr,
            hb: heartbeat(entries),
            buf: vec![0u8; MAX_PACKET],
            now: Instant::now(),
        };
        // the freshness exchange (docs/protocol.md): A's packets then echo
        // B's epoch, and B admits them as live
        let mut hb = heartbeat(0);
        let n = p.b.seal(&mut hb, p.now, &mut p.buf).expect("fits");
        let _ = p.a.admit(&p.buf[..n], b_addr, p.now);
        let n = p.seal();
        let _ = p.b.admit(&p.buf[..n], a_addr, p.now);
        let n = p.b.seal(&mut hb, p.now, &mut p.buf).expect("fits");
        p.a.admit(&p.buf[..n], b_addr, p.now)
            .expect("B proven fresh");
        p.b.counters = Default::default();
        p
    }

    fn seal(&mut self) -> usize {
        self.a
            .seal(black_box(&mut self.hb), self.now, &mut self.buf)
            .expect("fits")
    }

    /// `iters` packets sealed; ns per packet.
    fn time_seal(&mut self, iters: u64) -> f64 {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(self.seal());
            black_box(&self.buf);
        }
        t.elapsed().as_nanos() as f64 / iters as f64
    }

    /// `iters` packets sealed and admitted; ns per packet.
    fn time_pair(&mut self, iters: u64) -> f64 {
        let t = Instant::now();
        for _ in 0..iters {
            let n = self.seal();
            let r = self
                .b
                .admit(black_box(&self.buf[..n]), self.a_addr, self.now);
            let (hb, _) = r.expect("a fresh packet is admitted");
            black_box(hb);
        }
        t.elapsed().as_nanos() as f64 / iters as f64
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("heartbeat: run with `cargo bench --bench heartbeat`");
        return;
    }
    let cap: u64 = std::env::var("DAGW_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000)
        .max(1);
    println!(
        "heartbeat per-packet cost (issue 4 target: seal + admit < {} ns)",
        TARGET_NS
    );
    println!(
        "{:>8} {:>7} {:>8} {:>10} {:>10} {:>10}  target",
        "entries", "bytes", "iters", "seal ns", "admit ns", "both ns"
    );
    for entries in [1usize, 16, dagw::peer::codec::MAX_ENTRIES] {
        let mut p = Pair::new(entries);
        let bytes = p.seal();
        // warm up and calibrate on 1000 pairs
        let per = p.time_pair(1000).max(1.0);
        let iters = cap.min((BUDGET.as_nanos() as f64 / per) as u64).max(1000);
        let seal = p.time_seal(iters);
        let both = p.time_pair(iters);
        let admit = (both - seal).max(0.0);
        assert_eq!(p.b.counters.dropped.iter().sum::<u64>(), 0);
        println!(
            "{entries:>8} {bytes:>7} {iters:>8} {seal:>10.0} {admit:>10.0} {both:>10.0}  {}",
            if both < TARGET_NS { "met" } else { "MISSED" }
        );
    }
}
