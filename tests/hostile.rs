//! A hostile path and a hostile peer (issue 11): two real daemons in two
//! namespaces (tests/common/pair.rs), attacked with heartbeats that are
//! reflected, replayed across restarts, forged, bit-flipped, truncated,
//! oversized, of the wrong version or from the wrong source, and with sync
//! connections that break the handshake or the framing.
//!
//! Each attack must be refused, counted under its reason (status JSON
//! `peer.heartbeats.dropped` and the metrics endpoint), and change no state:
//! the peer never comes `up` on it, no `peer-up` alert, no role change.
//!
//! On main before issue 11 the two measured attacks (reflection, replay to a
//! restarted node) made the peer `up`; the other cases were refused there too
//! but without the `reflected` and `stale` reasons these tests look for.

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Instant;

use common::pair::*;
use common::*;
use dagw::peer::auth::{Key, Keyring};
use dagw::peer::codec::{Heartbeat, MAC_LEN, MAX_PACKET};
use dagw::peer::link::PeerLink;
use serde_json::Value;

const KEY: &str = "dagw-peer-test-key-0123456789";
const METRICS_PORT: u16 = 9743;

fn gw10() -> Vec<Gw> {
    vec![Gw::vlanif10()]
}

/// The pair's config, with the metrics endpoint on each side's underlay address.
fn write_configs(pair: &Pair) {
    for side in [&pair.a, &pair.b] {
        let c = side.config(&PeerOpts::default(), &gw10())
            + &format!("[metrics]\nlisten = \"{}:{METRICS_PORT}\"\n", side.local);
        std::fs::write(side.work.config(), c).expect("write config");
    }
}

/// `peer.heartbeats.dropped.<reason>` of a status document.
fn dropped(d: &Daemon, reason: &str) -> u64 {
    let s = d.status();
    let hb = &s["peer"]["heartbeats"];
    for r in [
        "wrong-source",
        "truncated",
        "oversized",
        "malformed",
        "unsupported-version",
        "auth-failed",
        "reflected",
        "replayed",
        "stale",
    ] {
        assert!(hb["dropped"][r].is_u64(), "reason {r} always present: {hb}");
    }
    hb["dropped"][reason].as_u64().unwrap_or(0)
}

fn rx(d: &Daemon) -> u64 {
    d.status()["peer"]["heartbeats"]["rx"].as_u64().expect("rx")
}

/// Wait until at least `n` heartbeats were dropped as `reason`.
fn wait_dropped(d: &Daemon, reason: &str, n: u64) {
    wait_for(&format!("{n} dropped as {reason}"), || {
        let got = dropped(d, reason);
        if got >= n {
            Ok(())
        } else {
            Err(d.status()["peer"]["heartbeats"].to_string())
        }
    });
}

/// The metrics exposition of the daemon of `side` (scraped inside its namespace).
fn scrape(side: &Side) -> String {
    let script = format!(
        "import socket\ns = socket.create_connection(('{}', {METRICS_PORT}), timeout=5)\n\
         s.sendall(b'GET /metrics HTTP/1.0\\r\\n\\r\\n')\nd = b''\n\
         while True:\n    c = s.recv(65536)\n    if not c: break\n    d += c\nprint(d.decode())",
        side.local
    );
    let o = side.ns.exec(&["python3", "-c", &script]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn metric_dropped(side: &Side, reason: &str) -> u64 {
    let body = scrape(side);
    let prefix = format!("dagw_heartbeat_dropped_total{{reason=\"{reason}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {prefix} in {body}")) as u64
}

fn a_sock() -> SocketAddrV4 {
    SocketAddrV4::new(A_ADDR, PORT)
}

/// Send captured (or crafted) datagrams to A from B's address.
fn send_to_a(pair: &Pair, pkts: &[Vec<u8>]) {
    for p in pkts {
        send_udp(&pair.b.ns, B_ADDR, a_sock(), p.clone());
    }
}

/// A well-formed heartbeat "from B" under `secret`, made by the library
/// without hearing A (so it echoes nothing of A's).
fn crafted_from_b(secret: &str) -> Vec<u8> {
    let keys = Keyring {
        current: Key::new(secret.as_bytes().to_vec()),
        previous: None,
    };
    let mut b = PeerLink::new(
        keys,
        B_ADDR.into(),
        SocketAddr::V4(a_sock()),
        "leafb",
        0x5eed,
    );
    let mut hb = Heartbeat {
        priority: 100,
        pages: 1,
        ..Default::default()
    };
    let mut buf = [0u8; MAX_PACKET];
    let n = b.seal(&mut hb, Instant::now(), &mut buf).expect("fits");
    buf[..n].to_vec()
}

/// Re-sign a modified signed part with the pair's key (a peer that has the key).
fn resign(mut pkt: Vec<u8>) -> Vec<u8> {
    let n = pkt.len() - MAC_LEN;
    let tag = Key::new(KEY.as_bytes().to_vec()).sign(&pkt[..n]);
    pkt[n..].copy_from_slice(&tag);
    pkt
}

fn assert_never_up(d: &Daemon, tap: &LineTap, what: &str) {
    let p = peer_of(d);
    assert_ne!(p["state"], "up", "{what}: the peer came up: {p}");
    assert!(
        alerts(tap, "peer-up").is_empty(),
        "{what}: a peer-up alert: {:?}",
        alerts(tap, "peer-up")
    );
    assert_eq!(rx(d), 0, "{what}: nothing is admitted");
    assert_eq!(d.status()["role"], "master", "{what}: alone, master");
}

/// The measured attack: B not running; A's own heartbeats, captured and sent
/// back to A from B's address, must not make A's peer `up` (on main they did).
#[test]
fn reflected_heartbeats_never_make_the_peer_up() {
    if !require_root("reflected_heartbeats_never_make_the_peer_up") {
        return;
    }
    let pair = Pair::new("hrefl");
    write_configs(&pair);
    let da = pair.a.start();
    let mon = synced_monitor(&da);
    // A's heartbeats to B, as they arrive in B's namespace (B not running)
    let own = capture_udp(&pair.b.ns, A_ADDR, PORT, 8);
    send_to_a(&pair, &own);
    wait_dropped(&da, "reflected", 8);
    wait_peer(&da, "down");
    // and once more now that the peer is down
    let own = capture_udp(&pair.b.ns, A_ADDR, PORT, 4);
    send_to_a(&pair, &own);
    wait_dropped(&da, "reflected", 12);
    assert_never_up(&da, &mon, "reflection");
    assert_eq!(metric_dropped(&pair.a, "reflected"), 12);
}

/// The measured attack: B's genuine heartbeats, captured while B ran, are
/// replayed after B is gone: to A once its peer is down, and to a freshly
/// restarted A. The peer must stay down (on main the restarted A saw it up).
#[test]
fn replayed_heartbeats_after_a_restart_never_make_the_peer_up() {
    if !require_root("replayed_heartbeats_after_a_restart_never_make_the_peer_up") {
        return;
    }
    let pair = Pair::new("hrepl");
    write_configs(&pair);
    let da = pair.a.start();
    let db = pair.b.start();
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    let captured = capture_udp(&pair.a.ns, B_ADDR, PORT, 12);
    db.stop();
    wait_peer(&da, "down");

    // 1. A still running, its peer down: A renewed its epoch
    let mon = synced_monitor(&da);
    let before = rx(&da);
    send_to_a(&pair, &captured[..6]);
    wait_for("six replays refused", || {
        let n = dropped(&da, "stale") + dropped(&da, "replayed");
        if n >= 6 { Ok(()) } else { Err(n.to_string()) }
    });
    assert_eq!(rx(&da), before, "no replay admitted");
    assert_eq!(peer_of(&da)["state"], "down");
    assert!(alerts(&mon, "peer-up").is_empty(), "no peer-up alert");
    drop(mon);

    // 2. A restarted, B gone
    da.stop();
    let da = pair.a.start();
    let mon = synced_monitor(&da);
    send_to_a(&pair, &captured[6..]);
    wait_for("six replays refused after the restart", || {
        let n = dropped(&da, "stale") + dropped(&da, "replayed");
        if n >= 6 { Ok(()) } else { Err(n.to_string()) }
    });
    assert!(dropped(&da, "stale") >= 1, "counted as stale");
    wait_peer(&da, "down");
    assert_never_up(&da, &mon, "replay to a restarted node");
    assert!(metric_dropped(&pair.a, "stale") >= 1);
}

/// B restarts; B's heartbeats from its earlier life, replayed to A, are
/// refused as `replayed` and change nothing on A (the peer stays up, on B's
/// new life, with the same role).
#[test]
fn heartbeats_of_an_earlier_life_of_the_peer_are_refused() {
    if !require_root("heartbeats_of_an_earlier_life_of_the_peer_are_refused") {
        return;
    }
    let pair = Pair::new("hlife");
    write_configs(&pair);
    let da = pair.a.start();
    let db = pair.b.start();
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    let old = capture_udp(&pair.a.ns, B_ADDR, PORT, 6);
    db.stop();
    let db = pair.b.start();
    wait_peer(&db, "up");
    wait_peer(&da, "up");
    let mon = synced_monitor(&da);
    let replayed = dropped(&da, "replayed");
    send_to_a(&pair, &old);
    wait_dropped(&da, "replayed", replayed + 6);
    let s = da.status();
    assert_eq!(s["peer"]["state"], "up", "{s}");
    assert_eq!(s["role"], "master", "{s}");
    assert!(alerts(&mon, "peer-down").is_empty(), "no flap");
    assert!(alerts(&mon, "role").is_empty(), "no role change");
    drop(db);
}

/// Forged, bit-flipped, truncated, oversized, malformed, wrong-version,
/// wrong-source and not-fresh heartbeats, to A alone: each counted under its
/// reason, none admitted, the peer never up.
#[test]
fn broken_heartbeats_are_counted_by_reason_and_ignored() {
    if !require_root("broken_heartbeats_are_counted_by_reason_and_ignored") {
        return;
    }
    let pair = Pair::new("hbad");
    write_configs(&pair);
    // a second address on B's side, routed on A's: the wrong source
    let stranger = Ipv4Addr::new(198, 51, 100, 9);
    pair.b.ns.ip(&format!("addr add {stranger}/32 dev ul"));
    pair.a.ns.ip(&format!("route add {stranger}/32 dev ul"));
    let da = pair.a.start();
    let mon = synced_monitor(&da);

    let good = crafted_from_b(KEY);
    let mut flipped = good.clone();
    flipped[60] ^= 0x10;
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    let mut v1 = good.clone();
    v1[4] = 1;
    let v1 = resign(v1);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "auth-failed",
            crafted_from_b("a-forger-s-own-key-0123456789"),
        ),
        ("auth-failed", flipped),
        ("truncated", good[..60].to_vec()),
        ("oversized", vec![0x44; 1500]),
        ("malformed", bad_magic),
        ("unsupported-version", v1),
        // signed with the key, but made without hearing A: no proof of freshness
        ("stale", good.clone()),
        ("replayed", good.clone()),
    ];
    for (reason, pkt) in &cases {
        let before = dropped(&da, reason);
        send_to_a(&pair, std::slice::from_ref(pkt));
        wait_dropped(&da, reason, before + 1);
    }
    let before = dropped(&da, "wrong-source");
    send_udp(&pair.b.ns, stranger, a_sock(), resign(good.clone()));
    wait_dropped(&da, "wrong-source", before + 1);

    assert_never_up(&da, &mon, "broken heartbeats");
    for reason in [
        "auth-failed",
        "truncated",
        "oversized",
        "malformed",
        "unsupported-version",
        "stale",
        "replayed",
        "wrong-source",
    ] {
        let want = dropped(&da, reason);
        assert!(want >= 1, "{reason}");
        assert_eq!(metric_dropped(&pair.a, reason), want, "metrics {reason}");
    }
    let status: Value = da.status();
    assert_eq!(status["peer"]["heartbeats"]["dropped"]["reflected"], 0);
}

/// No local process can take the peer's heartbeats: the heartbeat socket is
/// bound without SO_REUSEADDR, so a second socket cannot bind its address and
/// port, even with SO_REUSEADDR or SO_REUSEPORT set (on main it could).
#[test]
fn the_heartbeat_port_cannot_be_bound_twice() {
    if !require_root("the_heartbeat_port_cannot_be_bound_twice") {
        return;
    }
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, setsockopt, socket, sockopt,
    };
    let pair = Pair::new("hbind");
    write_configs(&pair);
    let _da = pair.a.start();
    for reuse_port in [false, true] {
        let r = in_netns(&pair.a.ns, move || {
            let fd = socket(
                AddressFamily::Inet,
                SockType::Datagram,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .expect("socket");
            setsockopt(&fd, sockopt::ReuseAddr, &true).expect("SO_REUSEADDR");
            if reuse_port {
                setsockopt(&fd, sockopt::ReusePort, &true).expect("SO_REUSEPORT");
            }
            let addr = SockaddrIn::from(a_sock());
            bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)
        });
        assert_eq!(
            r,
            Err(nix::errno::Errno::EADDRINUSE),
            "a second socket (SO_REUSEPORT {reuse_port}) bound the heartbeat port"
        );
    }
}

/// With 64 idle connections and 64 `monitor` streams open, `status` and
/// `reload` are still answered (on main, 64 idle connections took every slot
/// and both hung); an idle connection is told off and closed.
#[test]
fn the_control_socket_answers_with_idle_and_monitor_clients_connected() {
    if !require_root("the_control_socket_answers_with_idle_and_monitor_clients_connected") {
        return;
    }
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let ns = Netns::new("hctl");
    let d = Daemon::start(&ns, "[mlag]\nmembers = []\n");
    let sock = d.work.socket();
    let idle: Vec<UnixStream> = (0..64)
        .map(|_| UnixStream::connect(&sock).expect("idle connect"))
        .collect();
    let monitors: Vec<UnixStream> = (0..64)
        .map(|_| {
            let mut s = UnixStream::connect(&sock).expect("monitor connect");
            s.write_all(b"{\"cmd\": \"monitor\"}\n").expect("monitor");
            s
        })
        .collect();
    // `dagw status` / `dagw reload` as child processes, each awaited with a deadline
    for args in [&["status", "--json"][..], &["reload"][..]] {
        let mut child = std::process::Command::new(DAGW)
            .arg("-s")
            .arg(&sock)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn client");
        let mut status = None;
        let done = wait_until(WAIT, || {
            status = child.try_wait().expect("try_wait");
            status.is_some()
        });
        if !done {
            let _ = child.kill();
        }
        assert!(
            done,
            "dagw {args:?} got no answer with 128 clients connected"
        );
        assert!(
            status.is_some_and(|s| s.success()),
            "dagw {args:?}: {status:?}"
        );
    }
    // an idle connection is answered with an error and closed
    let mut s = idle.into_iter().next().expect("one");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("closed by the daemon");
    assert!(text.contains("no request within"), "{text}");
    drop(monitors);
}

/// The unit's restrictions that apply outside systemd (systemd/dagw.service):
/// CAP_NET_ADMIN as the only capability (no CAP_NET_RAW, no
/// CAP_DAC_OVERRIDE), no new privileges, umask 0077. A pair run that way
/// comes up, serves its gateway and syncs (so the hardened unit leaves dagw
/// all it uses), and the control socket is still 0660.
#[test]
fn a_pair_runs_with_only_cap_net_admin_and_umask_0077() {
    if !require_root("a_pair_runs_with_only_cap_net_admin_and_umask_0077") {
        return;
    }
    let pair = Pair::new("hcaps");
    write_configs(&pair);
    let unit = [
        "sh",
        "-c",
        "umask 0077; exec \"$@\"",
        "sh",
        "setpriv",
        "--nnp",
        "--bounding-set=-all,+net_admin",
        "--inh-caps=-all,+net_admin",
        "--ambient-caps=-all,+net_admin",
    ];
    let da = Daemon::spawn_wrapped(&pair.a.ns, pair.a.work.clone(), &unit);
    let db = Daemon::spawn_wrapped(&pair.b.ns, pair.b.work.clone(), &unit);
    // what the process really holds: CAP_NET_ADMIN (bit 12) and nothing else
    let status = std::fs::read_to_string(format!("/proc/{}/status", da.pid())).expect("status");
    for field in ["CapEff:", "CapBnd:"] {
        let v = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .unwrap_or_else(|| panic!("no {field} in {status}"));
        assert_eq!(v.trim(), "0000000000001000", "{field} {v}");
    }
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    da.wait_gateway("vlanif10", "up", None);
    db.wait_gateway("vlanif10", "up", None);
    wait_sync_established(&da);
    wait_sync_established(&db);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(pair.a.work.socket())
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660, "control socket mode {mode:o}");
    // the per-device sysctls were written without CAP_DAC_OVERRIDE
    assert_eq!(
        pair.a.ns.sysctl("net.ipv4.conf.gw10.arp_ignore").trim(),
        "1"
    );
}

// ---------------------------------------------------------------------------
// The sync channel (docs/sync.md): B's daemon (.2, the accepting side) alone;
// the test plays A (or an attacker) from A's namespace with the library.
// ---------------------------------------------------------------------------

/// `peer.sync.rejected.<reason>` of B.
fn rejected(d: &Daemon, reason: &str) -> u64 {
    let s = sync_of(d);
    for r in [
        "auth-failed",
        "malformed",
        "oversized",
        "out-of-order",
        "protocol",
        "handshake-timeout",
        "wrong-source",
    ] {
        assert!(s["rejected"][r].is_u64(), "reason {r} always present: {s}");
    }
    s["rejected"][reason].as_u64().unwrap_or(0)
}

fn wait_rejected(d: &Daemon, reason: &str, n: u64) {
    wait_for(&format!("sync: {n} rejected as {reason}"), || {
        let got = rejected(d, reason);
        if got >= n {
            Ok(())
        } else {
            Err(sync_of(d).to_string())
        }
    });
}

fn metric_sync_rejected(side: &Side, reason: &str) -> u64 {
    let body = scrape(side);
    let prefix = format!("dagw_sync_rejected_total{{reason=\"{reason}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {prefix} in {body}")) as u64
}

/// A TCP connection to B's sync port from `src` (bound first), in A's namespace,
/// handed to `f` there.
fn sync_conn<T: Send + 'static>(
    pair: &Pair,
    src: Ipv4Addr,
    f: impl FnOnce(std::net::TcpStream) -> T + Send + 'static,
) -> T {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    in_netns(&pair.a.ns, move || {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("socket");
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        bind(raw, &SockaddrIn::from(SocketAddrV4::new(src, 0))).expect("bind");
        connect(raw, &SockaddrIn::from(SocketAddrV4::new(B_ADDR, PORT))).expect("connect");
        let s = std::net::TcpStream::from(fd);
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        f(s)
    })
}

/// Run the client handshake under `key`, one received byte at a time so that
/// our Proof goes out even when B's does not verify. Returns the session and
/// every byte we sent.
fn client_handshake(
    s: &mut std::net::TcpStream,
    key: &str,
) -> (Result<dagw::sync::Established, String>, Vec<u8>) {
    use std::io::{Read, Write};
    let ring = Keyring {
        current: Key::new(key.as_bytes().to_vec()),
        previous: None,
    };
    let mut hs = dagw::sync::Handshake::client(ring, "leafa", dagw::sync::random_nonce().unwrap())
        .expect("handshake");
    let mut sent = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if let Some(b) = hs.outgoing() {
            let _ = s.write_all(&b);
            sent.extend_from_slice(&b);
        }
        if hs.is_done() {
            return (hs.finish().map_err(|e| e.to_string()), sent);
        }
        match s.read(&mut byte) {
            Ok(1) => {}
            other => return (Err(format!("read: {other:?}")), sent),
        }
        if let Err(e) = hs.incoming(&byte) {
            if let Some(b) = hs.outgoing() {
                let _ = s.write_all(&b);
            }
            return (Err(e.to_string()), sent);
        }
    }
}

/// Close our side once B's bulk is in (a close with unread data would be
/// a reset), then read until B closes too.
fn until_closed_after_bulk(s: &mut std::net::TcpStream) {
    let _ = s.shutdown(std::net::Shutdown::Write);
    until_closed(s);
}

/// Read until B closes the connection (it refused what we sent).
fn until_closed(s: &mut std::net::TcpStream) {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

/// Bad handshake, wrong key, a replayed session, frames out of order, an
/// oversized frame, a stranger: B refuses each, counts it under its reason
/// (status and metrics), and installs nothing.
#[test]
fn hostile_sync_connections_are_refused_and_counted() {
    if !require_root("hostile_sync_connections_are_refused_and_counted") {
        return;
    }
    use std::io::Write;
    let pair = Pair::new("hsync");
    write_configs(&pair);
    let stranger = Ipv4Addr::new(198, 51, 100, 9);
    pair.a.ns.ip(&format!("addr add {stranger}/32 dev ul"));
    pair.b.ns.ip(&format!("route add {stranger}/32 dev ul"));
    let db = pair.b.start();
    db.wait_gateway("vlanif10", "up", None);
    // every session B starts and ends shows here (counted: the events of a
    // session may reach the monitor after the counters moved)
    let mon = synced_monitor(&db);
    let sync_notices = |state: &str| {
        alerts(&mon, "sync-session")
            .into_iter()
            .filter(|v| v["state"] == state)
            .count()
    };

    // 1. not a handshake
    sync_conn(&pair, A_ADDR, |mut s| {
        let _ = s.write_all(&[0, 5, 9, 9, 9, 9, 9]);
        until_closed(&mut s);
    });
    wait_rejected(&db, "malformed", 1);

    // 2. the wrong key
    let (r, _) = sync_conn(&pair, A_ADDR, |mut s| {
        let r = client_handshake(&mut s, "not-the-pair-s-key-0123456789");
        until_closed(&mut s);
        r
    });
    assert!(r.is_err(), "a wrong key completed the handshake");
    wait_rejected(&db, "auth-failed", 1);

    // 3. a session recorded (a genuine client, the key's holder) and replayed;
    // sessions 1 and 2 closed too
    let recorded = sync_conn(&pair, A_ADDR, |mut s| {
        let (r, sent) = client_handshake(&mut s, KEY);
        r.expect("the genuine handshake");
        until_closed_after_bulk(&mut s);
        sent
    });
    // the genuine session, seen through: established, then closed
    wait_for("the genuine session established and closed", || {
        let (e, c) = (sync_notices("established"), sync_notices("closed"));
        if e == 1 && c == 3 {
            Ok(())
        } else {
            Err(format!("{e} established, {c} closed"))
        }
    });
    let auth = rejected(&db, "auth-failed");
    sync_conn(&pair, A_ADDR, move |mut s| {
        let _ = s.write_all(&recorded);
        until_closed(&mut s);
    });
    wait_rejected(&db, "auth-failed", auth + 1);
    wait_for("the replayed session closed", || {
        let c = sync_notices("closed");
        if c == 4 {
            Ok(())
        } else {
            Err(format!("{c} closed"))
        }
    });
    assert_eq!(sync_notices("established"), 1, "the replay made a session");

    // 4. frames out of order, 5. an oversized frame: after a genuine handshake
    sync_conn(&pair, A_ADDR, |mut s| {
        let (r, _) = client_handshake(&mut s, KEY);
        let est = r.expect("handshake");
        let mut w = est.frame_writer();
        let (mut first, mut second) = (Vec::new(), Vec::new());
        w.keepalive(&mut first);
        w.keepalive(&mut second);
        let _ = s.write_all(&second);
        let _ = s.write_all(&first);
        until_closed(&mut s);
    });
    wait_rejected(&db, "out-of-order", 1);
    sync_conn(&pair, A_ADDR, |mut s| {
        let (r, _) = client_handshake(&mut s, KEY);
        r.expect("handshake");
        let mut big = (65_537u32).to_be_bytes().to_vec();
        big.extend_from_slice(&[0u8; 1024]);
        let _ = s.write_all(&big);
        until_closed(&mut s);
    });
    wait_rejected(&db, "oversized", 1);

    // 6. a stranger
    sync_conn(&pair, stranger, |mut s| until_closed(&mut s));
    wait_rejected(&db, "wrong-source", 1);

    for reason in [
        "malformed",
        "auth-failed",
        "out-of-order",
        "oversized",
        "wrong-source",
    ] {
        assert_eq!(
            metric_sync_rejected(&pair.b, reason),
            rejected(&db, reason),
            "metrics {reason}"
        );
    }
    // nothing installed, the peer never up
    let s = db.status();
    assert_eq!(s["peer"]["sync"]["peer_entries"], 0, "{s}");
    assert_ne!(s["peer"]["state"], "up", "{s}");
    let synced: Vec<_> = neigh_rows(&pair.b.ns, "gw10")
        .into_iter()
        .filter(|(_, r)| r.extern_learn)
        .collect();
    assert!(synced.is_empty(), "{synced:?}");
    drop(mon);
}

/// Key changeover on a live pair: a reload that changes the keys ends the live
/// sync session, and the next one authenticates with the new keys; once each
/// side hears the other on the new key, the previous key is retired (alert
/// `peer-key-retired`); removing `previous_key_file` re-keys again. The peer
/// stays up at the end and the sync channel is re-established each time.
#[test]
fn a_key_change_rekeys_the_sync_session_and_retires_the_old_key() {
    if !require_root("a_key_change_rekeys_the_sync_session_and_retires_the_old_key") {
        return;
    }
    let pair = Pair::new("hkey");
    write_configs(&pair);
    let da = pair.a.start();
    let db = pair.b.start();
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    wait_sync_established(&da);
    wait_sync_established(&db);
    let mons = [synced_monitor(&da), synced_monitor(&db)];
    let sessions = |d: &Daemon| sync_of(d)["sessions"].as_u64().unwrap_or(0);
    let before = [sessions(&da), sessions(&db)];

    // NEW in key_file, OLD in previous_key_file, on both
    for side in [&pair.a, &pair.b] {
        let old = side.work.path().join("old.key");
        std::fs::copy(side.key_path(), &old).expect("keep the old key");
        side.write_key("the-new-pair-key-0123456789abcdef");
        let c = std::fs::read_to_string(side.work.config())
            .expect("config")
            .replace(
                "priority =",
                &format!("previous_key_file = \"{}\"\npriority =", old.display()),
            );
        std::fs::write(side.work.config(), c).expect("config");
        let o = side.work.client(&["reload"]);
        assert!(o.status.success(), "reload: {o:?}");
    }
    for (i, d) in [&da, &db].into_iter().enumerate() {
        wait_for("a new sync session", || {
            if sessions(d) > before[i] {
                Ok(())
            } else {
                Err(sync_of(d).to_string())
            }
        });
        wait_peer(d, "up");
        wait_sync_established(d);
        mons[i].wait_json("peer-key-retired", |v| v["id"] == "peer-key-retired");
    }

    // previous_key_file removed: a key change again
    let before = [sessions(&da), sessions(&db)];
    for side in [&pair.a, &pair.b] {
        let c = std::fs::read_to_string(side.work.config()).expect("config");
        let c: String = c
            .lines()
            .filter(|l| !l.starts_with("previous_key_file"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(side.work.config(), c).expect("config");
        let o = side.work.client(&["reload"]);
        assert!(o.status.success(), "reload: {o:?}");
    }
    for (i, d) in [&da, &db].into_iter().enumerate() {
        wait_for("a new sync session", || {
            if sessions(d) > before[i] {
                Ok(())
            } else {
                Err(sync_of(d).to_string())
            }
        });
        wait_sync_established(d);
        wait_peer(d, "up");
    }
}
