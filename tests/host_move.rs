//! ARP/ND follows the host (DESIGN.md §4, the ARP/ND rule; src/core/neigh.rs;
//! docs/sync.md "Ownership"): a dual-homed server whose active leg moves
//! between the switches, with traffic from each switch towards it. At every
//! sample both switches must hold a usable entry with the server's MAC —
//! the switch the server left can no longer resolve it itself (its replies
//! go to the vMAC, which the other switch consumes).
//!
//! Topology: the pair of tests/common/pair.rs (A = leafa, B = leafb, `br10`
//! with `peerlink` and member `bond1` on each), without the orphan ports,
//! plus a server namespace whose legs `eth1` (to A's `bond1`) and `eth2` (to
//! B's `bond1`) are the ports of its "bond" `bond0`, a bridge that holds only
//! the active leg; the other leg is down, as a failed bond leg would be.
//!
//! `DAGW_MOVE_SECONDS` shortens the 60 s sampling windows for a quick run.

mod common;

use std::fs::File;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::pair::*;
use common::*;

const SERVER_MAC: &str = "02:00:00:00:00:10";
const SERVER_V4: &str = "192.0.2.10";
const SERVER_V6: &str = "2001:db8:10::10";
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// Every sending loop stops by itself after this long, whatever the test does.
const TRAFFIC_LIMIT: Duration = Duration::from_secs(600);

fn window() -> Duration {
    let s = std::env::var("DAGW_MOVE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(s)
}

/// The pair plus a dual-homed server namespace, active leg to A.
struct Lab {
    pair: Pair,
    server: Netns,
}

impl Lab {
    fn new(test: &str) -> Lab {
        let pair = Pair::new(test);
        let server = Netns::new(&format!("{test}-s"));
        for (side, leg) in [(&pair.a, "eth1"), (&pair.b, "eth2")] {
            // weak host model: an orphan far end in the switch's namespace
            // would answer the server's ARP for the gateway with its own MAC
            side.ns.ip("link del orph");
            side.ns
                .ip(&format!("link set srv netns {} name {leg}", server.name));
        }
        server.ip("link add bond0 type bridge");
        server.ip(&format!("link set bond0 address {SERVER_MAC}"));
        server.ip("link set eth1 master bond0");
        server.ip("link set eth1 up");
        server.ip("link set bond0 up");
        server.ip(&format!("addr add {SERVER_V4}/24 dev bond0"));
        server.ip(&format!("addr add {SERVER_V6}/64 dev bond0 nodad"));
        server.ip("route add default via 192.0.2.1");
        Lab { pair, server }
    }

    /// Move the server's active leg to `to` ("eth1" = A, "eth2" = B); the
    /// leg left goes down.
    fn move_to(&self, to: &str) {
        let from = if to == "eth1" { "eth2" } else { "eth1" };
        self.server.ip(&format!("link set {from} nomaster"));
        self.server.ip(&format!("link set {from} down"));
        self.server.ip(&format!("link set {to} master bond0"));
        self.server.ip(&format!("link set {to} up"));
    }
}

/// UDP datagrams to `dsts` every 200 ms from inside `ns`, until stopped
/// (or [`TRAFFIC_LIMIT`]). Errors (no route while a gateway is held,
/// ECONNREFUSED from an ICMP unreachable) are part of the traffic.
fn traffic(ns: &Netns, dsts: Vec<SocketAddr>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let path = format!("/var/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns(2) on a valid namespace fd; it changes only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        let v4 = UdpSocket::bind("0.0.0.0:0").expect("udp v4");
        let v6 = UdpSocket::bind("[::]:0").expect("udp v6");
        let end = Instant::now() + TRAFFIC_LIMIT;
        while !stop.load(Ordering::Relaxed) && Instant::now() < end {
            for d in &dsts {
                let s = if d.is_ipv4() { &v4 } else { &v6 };
                let _ = s.send_to(b"dagw host-move test", d);
            }
            std::thread::sleep(SAMPLE_EVERY);
        }
    })
}

struct Traffic {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Traffic {
    /// The server pings its gateway; each switch sends to the server.
    fn start(lab: &Lab) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let sock = |ip: &str| SocketAddr::new(ip.parse::<IpAddr>().unwrap(), 9);
        let to_server = vec![sock(SERVER_V4), sock(SERVER_V6)];
        let to_gateway = vec![sock("192.0.2.1"), sock("2001:db8:10::1")];
        let threads = vec![
            traffic(&lab.server, to_gateway, stop.clone()),
            traffic(&lab.pair.a.ns, to_server.clone(), stop.clone()),
            traffic(&lab.pair.b.ns, to_server, stop.clone()),
        ];
        Traffic { stop, threads }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// What is wrong with `ns`'s entries for the server: "" when both its IPv4
/// and IPv6 entries are usable with the server's MAC.
fn unusable(ns: &Netns, side: &str) -> String {
    let rows = neigh_rows(ns, "gw10");
    let mut bad = String::new();
    for ip in [SERVER_V4, SERVER_V6] {
        match rows.get(ip) {
            Some(r) if r.mac == SERVER_MAC => {}
            Some(r) => bad += &format!("{side}: {ip} has MAC {} {:?}; ", r.mac, r.state),
            None => {
                let all = ns
                    .try_ip(&format!("neigh show dev gw10 to {ip} nud all"))
                    .unwrap_or_default();
                bad += &format!("{side}: {ip} not usable ({}); ", all.trim());
            }
        }
    }
    bad
}

/// Sample both switches every 200 ms for `how_long`; every failed sample,
/// with its time since `since`.
fn sample(lab: &Lab, how_long: Duration, since: Instant) -> Vec<String> {
    let end = Instant::now() + how_long;
    let mut failures = Vec::new();
    while Instant::now() < end {
        let t = Instant::now();
        let bad = unusable(&lab.pair.a.ns, "A") + &unusable(&lab.pair.b.ns, "B");
        if !bad.is_empty() {
            failures.push(format!("{:.1} s: {bad}", since.elapsed().as_secs_f64()));
        }
        std::thread::sleep(SAMPLE_EVERY.saturating_sub(t.elapsed()));
    }
    failures
}

/// Whether `ns` holds the server's entries as its own (not extern_learn).
fn owns(ns: &Netns) -> bool {
    let rows = neigh_rows(ns, "gw10");
    [SERVER_V4, SERVER_V6].iter().all(|ip| {
        rows.get(*ip)
            .is_some_and(|r| !r.extern_learn && r.mac == SERVER_MAC)
    })
}

fn pinned(ns: &Netns) -> bool {
    let rows = neigh_rows(ns, "gw10");
    [SERVER_V4, SERVER_V6].iter().all(|ip| {
        rows.get(*ip).is_some_and(|r| {
            r.extern_learn && r.mac == SERVER_MAC && r.state.iter().any(|s| s == "NOARP")
        })
    })
}

fn wait_both_usable(lab: &Lab) {
    let (a, b) = (&lab.pair.a.ns, &lab.pair.b.ns);
    wait_for("both switches hold usable entries for the server", || {
        let bad = unusable(a, "A") + &unusable(b, "B");
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    });
}

fn start(lab: &Lab) -> (Daemon, Daemon) {
    let (da, db) = lab.pair.start(&PeerOpts::default(), &[Gw::vlanif10()]);
    for d in [&da, &db] {
        wait_peer(d, "up");
        wait_sync_established(d);
        d.wait_gateway("vlanif10", "up", None);
        // no longer held (B's member has no carrier: the server's leg to B is down)
        wait_for("bond1 not held", || {
            let m = d.member("bond1");
            if m["state"] != "holding" && m["reason"].is_null() {
                Ok(())
            } else {
                Err(m.to_string())
            }
        });
    }
    wait_member(&da, "bond1", "up", None);
    (da, db)
}

#[test]
fn entries_follow_the_host_across_member_failovers() {
    if !require_root("entries_follow_the_host_across_member_failovers") {
        return;
    }
    let lab = Lab::new("hmove");
    let (_da, _db) = start(&lab);
    let _traffic = Traffic::start(&lab);
    let (a, b) = (&lab.pair.a.ns, &lab.pair.b.ns);

    // The server behind A: A resolves it, B forwards through A's entries.
    wait_both_usable(&lab);
    let t0 = Instant::now();
    let failures = sample(&lab, window(), t0);
    assert!(
        failures.is_empty(),
        "server behind A: {} of the samples failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(owns(a), "A should own the server's entries");
    assert!(
        pinned(b),
        "B should hold A's entries pinned (noarp extern_learn)"
    );

    for (leg, owner, other, name) in [("eth2", b, a, "B"), ("eth1", a, b, "A")] {
        lab.move_to(leg);
        let moved = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        let failures = sample(&lab, window(), moved);
        assert!(
            failures.is_empty(),
            "after the move to {name}: {} samples failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        // the rule's ownership followed the host
        assert!(owns(owner), "{name} should own the server's entries now");
        assert!(
            pinned(other),
            "the switch the server left should hold them pinned"
        );
    }
}

#[test]
fn vanished_host_is_removed_from_both_switches() {
    if !require_root("vanished_host_is_removed_from_both_switches") {
        return;
    }
    let lab = Lab::new("hgone");
    let (_da, _db) = start(&lab);
    let _traffic = Traffic::start(&lab);
    let (a, b) = (&lab.pair.a.ns, &lab.pair.b.ns);
    wait_both_usable(&lab);

    // both legs down: the host is gone
    lab.server.ip("link set eth1 down");
    lab.server.ip("link set eth2 down");

    // Per address: the first failed resolution on either side (the
    // kernel's own reachability timers: up to about a minute of
    // REACHABLE/STALE/DELAY/PROBE), then gone from both within 10 s.
    let failed = |ns: &Netns, ip: &str| {
        ns.try_ip(&format!("neigh show dev gw10 to {ip} nud all"))
            .is_ok_and(|o| o.contains("FAILED") || o.contains("INCOMPLETE"))
    };
    let usable = |ns: &Netns, ip: &str| neigh_rows(ns, "gw10").contains_key(ip);
    let mut first_failure: [Option<Instant>; 2] = [None; 2];
    let mut gone_after: [Option<Duration>; 2] = [None; 2];
    let end = Instant::now() + Duration::from_secs(180);
    while gone_after.iter().any(Option::is_none) && Instant::now() < end {
        for (i, ip) in [SERVER_V4, SERVER_V6].into_iter().enumerate() {
            if first_failure[i].is_none() && (failed(a, ip) || failed(b, ip)) {
                first_failure[i] = Some(Instant::now());
            }
            if let Some(t) = first_failure[i]
                && gone_after[i].is_none()
                && !usable(a, ip)
                && !usable(b, ip)
            {
                gone_after[i] = Some(t.elapsed());
            }
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    for (i, ip) in [SERVER_V4, SERVER_V6].into_iter().enumerate() {
        assert!(
            first_failure[i].is_some(),
            "{ip}: no side ever failed to resolve it"
        );
        let after = gone_after[i].unwrap_or_else(|| {
            panic!(
                "{ip}: still usable on A or B: {}{}",
                unusable(a, "A"),
                unusable(b, "B")
            )
        });
        eprintln!(
            "{ip}: gone from both {:.1} s after the first failed resolution",
            after.as_secs_f64()
        );
        assert!(
            after <= Duration::from_secs(10),
            "{ip}: gone from both only {:.1} s after the first failed resolution",
            after.as_secs_f64()
        );
    }
}
