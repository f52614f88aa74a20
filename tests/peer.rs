//! Peer heartbeat (DESIGN.md §1.3, §4 `[peer]`, §5 `peer`): two real daemons in
//! two namespaces (see tests/common/pair.rs for the topology) — liveness,
//! roles, authentication, replay protection, configuration consistency, strict
//! mode, peer loss, split-brain and peer-link recovery.

mod common;

use std::net::SocketAddrV4;

use serde_json::Value;
use std::time::{Duration, Instant};

use common::pair::*;
use common::*;

fn gw10() -> Vec<Gw> {
    vec![Gw::vlanif10()]
}

/// Acceptance: "peer up within 2 intervals of both starting"; roles by priority;
/// identical configs are consistent; the RTT is measured.
#[test]
fn peer_up_and_roles() {
    if !require_root("peer_up_and_roles") {
        return;
    }
    let pair = Pair::new("pup");
    // A 1 s interval makes "2 intervals" a 2 s bound: large against the
    // expected ~1 interval (B sends at once when it starts, so A is up almost
    // at once; B hears A at A's next tick, at most one interval later) and
    // against the cost of polling `dagw status` on a busy 2-core machine.
    let opts = PeerOpts {
        interval: "1s".into(),
        ..PeerOpts::default()
    };
    pair.a.write_config(&opts, &gw10());
    pair.b.write_config(&opts, &gw10());
    let da = pair.a.start();
    let db = pair.b.start();
    // Both daemons have started (and answer status) from here.
    let t0 = Instant::now();
    let both_up = wait_until(WAIT, || {
        peer_of(&da)["state"] == "up" && peer_of(&db)["state"] == "up"
    });
    let took = t0.elapsed();
    println!("both peers up {took:?} after both started");
    assert!(
        both_up,
        "peers never both up: A {} B {}",
        peer_of(&da),
        peer_of(&db)
    );
    assert!(
        took <= Duration::from_secs(2),
        "both peers up {took:?} after both started; 2 intervals are 2s"
    );

    let sa = da.status();
    let sb = db.status();
    assert_eq!(sa["node"], "leafa");
    assert_eq!(sb["node"], "leafb");
    assert_eq!(sa["role"], "master", "priority 110 is master: {sa}");
    assert_eq!(sb["role"], "backup", "priority 100 is backup: {sb}");
    assert_eq!(sa["peer"]["address"], "203.0.113.2");
    assert_eq!(sb["peer"]["address"], "203.0.113.1");
    for (name, d) in [("A", &da), ("B", &db)] {
        // consistency is judged on the first complete table; RTT needs an echo
        wait_for(&format!("{name}: consistent with rtt_us"), || {
            let p = peer_of(d);
            let ok = p["state"] == "up"
                && p["consistent"] == true
                && p["mismatches"] == serde_json::json!([])
                && p["rtt_us"].is_u64()
                && p["last_heard_ms"].is_u64();
            if ok { Ok(()) } else { Err(p.to_string()) }
        });
        // the peer's counts of the gateway come with its table
        let g = d.gateway("vlanif10");
        assert!(
            g["arp"]["peer"].is_u64() && g["nd"]["peer"].is_u64(),
            "{name}: arp.peer / nd.peer are the peer's counts: {g}"
        );
    }
    // The roles stay as elected.
    assert_eq!(da.status()["role"], "master");
    assert_eq!(db.status()["role"], "backup");
}

/// Different keys: every heartbeat fails authentication; the peers never come up
/// and the failure is alerted (`peer-auth-failed`, with a running `total`).
#[test]
fn wrong_key_never_up() {
    if !require_root("wrong_key_never_up") {
        return;
    }
    let pair = Pair::new("pkey");
    pair.b.write_key("an-entirely-different-key-9876");
    let opts = PeerOpts::default();
    pair.a.write_config(&opts, &gw10());
    pair.b.write_config(&opts, &gw10());
    let da = pair.a.start();
    // A's monitor is subscribed before B sends anything.
    let mon = synced_monitor(&da);
    let db = pair.b.start();

    let alert = mon.wait_json("peer-auth-failed on A", |v| v["id"] == "peer-auth-failed");
    assert_eq!(alert["kind"], "alert", "{alert}");
    assert_eq!(alert["reason"], "auth-failed", "{alert}");
    assert!(
        alert["total"].as_u64().is_some_and(|t| t > 0),
        "the alert counts the drops: {alert}"
    );
    // B goes from init to down after a dead interval (3 x 200 ms) without a
    // valid heartbeat; A too. Then neither comes up during 5 more intervals
    // (an observation window, not a synchronisation).
    wait_peer(&db, "down");
    wait_peer(&da, "down");
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(1) {
        for d in [&da, &db] {
            let p = peer_of(d);
            assert!(
                p["state"] == "init" || p["state"] == "down",
                "a peer with the wrong key came up: {p}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(alerts(&mon, "peer-up").is_empty(), "{:#?}", mon.lines());
    assert_eq!(da.status()["role"], "master");
    assert_eq!(
        db.status()["role"],
        "master",
        "alone, B carries the traffic"
    );
}

/// A captured heartbeat sent again (same source address, another port) is
/// dropped as `replayed`, and the peer relationship is unharmed.
#[test]
fn replayed_packet_rejected() {
    if !require_root("replayed_packet_rejected") {
        return;
    }
    let pair = Pair::new("prpl");
    let (da, db) = pair.start(&PeerOpts::default(), &gw10());
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    let mon = synced_monitor(&db);

    // Two consecutive heartbeats of A as they reach B. Once the second is
    // seen, the first has been queued to B's daemon, ahead of the replay.
    let pkts = capture_udp(&pair.b.ns, A_ADDR, PORT, 2);
    let from = send_udp(
        &pair.a.ns,
        A_ADDR,
        SocketAddrV4::new(B_ADDR, PORT),
        pkts[0].clone(),
    );
    assert_ne!(from.port(), PORT);

    let alert = mon.wait_json("peer-packet-dropped replayed on B", |v| {
        v["id"] == "peer-packet-dropped"
    });
    assert_eq!(alert["reason"], "replayed", "{alert}");
    assert!(alert["total"].as_u64().is_some_and(|t| t >= 1), "{alert}");
    assert!(
        alerts(&mon, "peer-auth-failed").is_empty(),
        "a replay is authentic: {:#?}",
        mon.lines()
    );
    // Still up, still the same roles.
    assert_eq!(peer_of(&db)["state"], "up");
    assert_eq!(db.status()["role"], "backup");
    assert!(alerts(&mon, "peer-down").is_empty(), "{:#?}", mon.lines());
}

/// Every kind of difference is reported on both sides, naming the field.
#[test]
fn mismatch_reported_on_both_sides() {
    if !require_root("mismatch_reported_on_both_sides") {
        return;
    }
    let pair = Pair::new("pmis");
    let opts = PeerOpts::default();
    pair.a.ns.bridge_up("br20");
    let mut b_gw = Gw::vlanif10();
    b_gw.mac = "0000-5e00-0102".into();
    pair.a.write_config(&opts, &gw10());
    pair.b.write_config(&opts, std::slice::from_ref(&b_gw));
    let da = pair.a.start();
    let mon_a = synced_monitor(&da);
    let db = pair.b.start();
    wait_peer(&da, "up");
    wait_peer(&db, "up");

    // vMAC
    let pa = wait_mismatches(&da, &[("vlanif10", "mac")]);
    let pb = wait_mismatches(&db, &[("vlanif10", "mac")]);
    assert_eq!(pa["consistent"], false);
    assert_eq!(pb["consistent"], false);
    assert_eq!(pa["mismatches"][0]["local"], "00:00:5e:00:01:01", "{pa}");
    assert_eq!(pa["mismatches"][0]["peer"], "00:00:5e:00:01:02", "{pa}");
    assert_eq!(pb["mismatches"][0]["local"], "00:00:5e:00:01:02", "{pb}");
    assert_eq!(pb["mismatches"][0]["peer"], "00:00:5e:00:01:01", "{pb}");
    let alert = mon_a.wait_json("peer-mismatch on A", |v| v["id"] == "peer-mismatch");
    assert_eq!(alert["mismatches"][0]["field"], "mac", "{alert}");

    // up_delay (the mac agrees again)
    let mut b_gw = Gw::vlanif10();
    b_gw.up_delay = "1500ms".into();
    pair.b.reload(&opts, std::slice::from_ref(&b_gw));
    let pa = wait_mismatches(&da, &[("vlanif10", "up_delay")]);
    let pb = wait_mismatches(&db, &[("vlanif10", "up_delay")]);
    assert_eq!(pa["mismatches"][0]["local"], "1s", "{pa}");
    assert_eq!(pa["mismatches"][0]["peer"], "1500ms", "{pa}");
    assert_eq!(pb["mismatches"][0]["local"], "1500ms", "{pb}");

    // IPv4
    let mut b_gw = Gw::vlanif10();
    b_gw.ipv4 = vec!["192.0.2.1/24".into(), "198.51.100.1/24".into()];
    pair.b.reload(&opts, std::slice::from_ref(&b_gw));
    wait_mismatches(&da, &[("vlanif10", "ipv4")]);
    wait_mismatches(&db, &[("vlanif10", "ipv4")]);

    // IPv6
    let mut b_gw = Gw::vlanif10();
    b_gw.ipv6 = vec!["2001:db8:10::2/64".into()];
    pair.b.reload(&opts, std::slice::from_ref(&b_gw));
    wait_mismatches(&da, &[("vlanif10", "ipv6")]);
    wait_mismatches(&db, &[("vlanif10", "ipv6")]);

    // Consistent again: both sides say so, and A alerts it.
    pair.b.reload(&opts, &gw10());
    let pa = wait_mismatches(&da, &[]);
    let pb = wait_mismatches(&db, &[]);
    assert_eq!(pa["consistent"], true);
    assert_eq!(pb["consistent"], true);
    mon_a.wait_json("peer-consistent on A", |v| v["id"] == "peer-consistent");

    // A gateway only on A: `missing` on both sides.
    let vlanif20 = Gw {
        id: 20,
        mac: "0000-5e00-0101".into(),
        ipv4: vec!["198.51.100.1/24".into()],
        ipv6: vec![],
        up_delay: "1s".into(),
    };
    pair.a.reload(&opts, &[Gw::vlanif10(), vlanif20]);
    let pa = wait_mismatches(&da, &[("vlanif20", "missing")]);
    let pb = wait_mismatches(&db, &[("vlanif20", "missing")]);
    assert_eq!(pa["mismatches"][0]["local"], "configured", "{pa}");
    assert_eq!(pa["mismatches"][0]["peer"], "absent", "{pa}");
    assert_eq!(pb["mismatches"][0]["local"], "absent", "{pb}");
    assert_eq!(pb["mismatches"][0]["peer"], "configured", "{pb}");
}

/// Rewrite a side's config file with `text` and `dagw reload`, asserting it
/// was accepted.
fn reload_text(side: &Side, text: &str) {
    std::fs::write(side.work.config(), text).expect("write config");
    let o = side.work.client(&["reload"]);
    assert!(
        o.status.success(),
        "reload on {}: {}{}",
        side.node,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `dagw status` as a person reads it.
fn human_status(d: &Daemon) -> String {
    let o = d.client(&["status"]);
    assert!(o.status.success(), "dagw status: {o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Wait until `peer.mismatches` is exactly `want`: (gateway or None for a
/// node-wide field, field, local, peer).
fn wait_exact_mismatches(d: &Daemon, want: &[(Option<&str>, &str, &str, &str)]) -> Value {
    let want: Vec<Value> = want
        .iter()
        .map(|(g, f, l, p)| serde_json::json!({"gateway": g, "field": f, "local": l, "peer": p}))
        .collect();
    let mut got = Value::Null;
    wait_for(&format!("mismatches {want:?}"), || {
        let p = peer_of(d);
        if p["mismatches"] == Value::Array(want.clone()) {
            got = p;
            Ok(())
        } else {
            Err(p.to_string())
        }
    });
    got
}

/// Exact mismatches (issue 12 item 4), strict mode on: the same addresses in
/// another order are consistent (nothing held); a different sub address is
/// a mismatch naming the real addresses of both sides, in the JSON and the
/// human table, and the backup holds the gateway; a different
/// `member_up_delay` is a node-wide mismatch (gateway null) that holds
/// nothing.
#[test]
fn exact_mismatches_order_sub_address_and_member_up_delay() {
    if !require_root("exact_mismatches_order_sub_address_and_member_up_delay") {
        return;
    }
    let pair = Pair::new("pexa");
    let opts = PeerOpts {
        strict: true,
        ..PeerOpts::default()
    };
    let gw = |v4: &[&str], v6: &[&str]| Gw {
        ipv4: v4.iter().map(|s| s.to_string()).collect(),
        ipv6: v6.iter().map(|s| s.to_string()).collect(),
        ..Gw::vlanif10()
    };
    let a_gw = gw(
        &["192.0.2.1/24", "198.51.100.1/25", "198.51.100.129/25"],
        &["2001:db8:10::1/64", "2001:db8:11::1/64"],
    );
    // the same addresses, the sub addresses and IPv6 in another order
    let b_gw = gw(
        &[
            "192.0.2.1/24",
            "198.51.100.129 255.255.255.128",
            "198.51.100.1/25",
        ],
        &["2001:db8:11::1/64", "2001:db8:10::1/64"],
    );
    pair.a.write_config(&opts, std::slice::from_ref(&a_gw));
    pair.b.write_config(&opts, std::slice::from_ref(&b_gw));
    let da = pair.a.start();
    let db = pair.b.start();
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    assert_eq!(db.status()["role"], "backup");
    for (name, d) in [("A", &da), ("B", &db)] {
        // compared: the peer's table is there (its counts come with it)
        wait_for(&format!("{name}: compared with the peer's table"), || {
            let g = d.gateway("vlanif10");
            if g["arp"]["peer"].is_u64() {
                Ok(())
            } else {
                Err(g.to_string())
            }
        });
        let p = peer_of(d);
        assert_eq!(p["mismatches"], serde_json::json!([]), "{name}: {p}");
        assert_eq!(p["consistent"], true, "{name}: {p}");
    }
    // strict mode holds nothing for an order-only difference
    db.wait_gateway("vlanif10", "up", None);
    assert!(!pair.b.ns.protodown("gw10"));
    assert!(human_status(&db).contains("(consistent)"));

    // Another sub address on B: both sides name the real addresses.
    let a_v4 = "192.0.2.1/24, 198.51.100.1/25 sub, 198.51.100.129/25 sub";
    let b_v4 = "192.0.2.1/24, 198.51.100.1/25 sub, 198.51.100.130/25 sub";
    let b_changed = gw(
        &["192.0.2.1/24", "198.51.100.130/25", "198.51.100.1/25"],
        &["2001:db8:10::1/64", "2001:db8:11::1/64"],
    );
    pair.b.reload(&opts, std::slice::from_ref(&b_changed));
    wait_exact_mismatches(&da, &[(Some("vlanif10"), "ipv4", a_v4, b_v4)]);
    wait_exact_mismatches(&db, &[(Some("vlanif10"), "ipv4", b_v4, a_v4)]);
    let table = human_status(&da);
    let lines: Vec<&str> = table.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("vlanif10") && l.contains("ipv4") && l.contains("local"))
        .unwrap_or_else(|| panic!("no mismatch line for vlanif10 in:\n{table}"));
    assert!(lines[at].ends_with(&format!("local {a_v4}")), "{table}");
    assert!(lines[at + 1].ends_with(&format!("peer  {b_v4}")), "{table}");
    assert!(table.contains("(1 mismatch)"), "{table}");
    // a real difference: the backup holds its gateway (strict mode)
    db.wait_gateway("vlanif10", "holding", Some("mismatch"));
    da.wait_gateway("vlanif10", "up", None);

    // The addresses agree again; member_up_delay differs: node-wide.
    let b_text = pair
        .b
        .config(&opts, std::slice::from_ref(&b_gw))
        .replace("member_up_delay = \"2s\"", "member_up_delay = \"3s\"");
    assert!(b_text.contains("member_up_delay = \"3s\""), "{b_text}");
    reload_text(&pair.b, &b_text);
    let pa = wait_exact_mismatches(&da, &[(None, "member_up_delay", "2s", "3s")]);
    assert_eq!(pa["consistent"], false, "{pa}");
    assert!(pa["mismatches"][0]["gateway"].is_null(), "{pa}");
    wait_exact_mismatches(&db, &[(None, "member_up_delay", "3s", "2s")]);
    let table = human_status(&db);
    let lines: Vec<&str> = table.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("(node)") && l.contains("member_up_delay"))
        .unwrap_or_else(|| panic!("no node-wide mismatch line in:\n{table}"));
    assert!(lines[at].ends_with("local 3s"), "{table}");
    assert!(lines[at + 1].ends_with("peer  2s"), "{table}");
    // a node-wide field holds no gateway
    db.wait_gateway("vlanif10", "up", None);

    // A gateway B has and A has not: A keeps none of its exact values...
    for side in [&pair.a, &pair.b] {
        side.ns.bridge_up("br20");
    }
    let vlanif20 = |addr: &str| Gw {
        id: 20,
        ipv4: vec![addr.to_string()],
        ipv6: vec![],
        ..Gw::vlanif10()
    };
    pair.b
        .reload(&opts, &[b_gw.clone(), vlanif20("203.0.113.129/25")]);
    wait_exact_mismatches(
        &da,
        &[(Some("vlanif20"), "missing", "absent", "configured")],
    );
    // ... until A configures it too: B answers A's new set with its own, so
    // A names B's addresses (not "differs (exact values once ...)")
    pair.a
        .reload(&opts, &[a_gw.clone(), vlanif20("203.0.113.130/25")]);
    wait_exact_mismatches(
        &da,
        &[(
            Some("vlanif20"),
            "ipv4",
            "203.0.113.130/25",
            "203.0.113.129/25",
        )],
    );
    wait_exact_mismatches(
        &db,
        &[(
            Some("vlanif20"),
            "ipv4",
            "203.0.113.129/25",
            "203.0.113.130/25",
        )],
    );
}

/// Strict mode: the backup holds a mismatched gateway (protodown) until the
/// configs agree again; the master keeps serving.
#[test]
fn strict_mode_holds_and_releases_backup() {
    if !require_root("strict_mode_holds_and_releases_backup") {
        return;
    }
    let pair = Pair::new("pstr");
    let opts = PeerOpts {
        strict: true,
        ..PeerOpts::default()
    };
    let mut b_gw = Gw::vlanif10();
    b_gw.ipv4 = vec!["192.0.2.2/24".into()];
    pair.a.write_config(&opts, &gw10());
    pair.b.write_config(&opts, std::slice::from_ref(&b_gw));
    let da = pair.a.start();
    let db = pair.b.start();
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    wait_mismatches(&db, &[("vlanif10", "ipv4")]);
    assert_eq!(db.status()["role"], "backup");

    db.wait_gateway("vlanif10", "holding", Some("mismatch"));
    wait_for("B's gw10 protodown", || {
        if pair.b.ns.protodown("gw10") {
            Ok(())
        } else {
            Err(pair.b.ns.ip("-d link show dev gw10"))
        }
    });
    // The master is not held for a mismatch.
    da.wait_gateway("vlanif10", "up", None);
    assert!(!pair.a.ns.protodown("gw10"));
    // (still held a while later: the hold is not a timer)
    wait_mismatches(&db, &[("vlanif10", "ipv4")]);
    let g = db.gateway("vlanif10");
    assert_eq!(g["state"], "holding", "{g}");
    assert_eq!(g["reason"], "mismatch", "{g}");
    assert!(pair.b.ns.protodown("gw10"));
    assert_eq!(da.gateway("vlanif10")["state"], "up");

    // Fixed on B: released.
    pair.b.reload(&opts, &gw10());
    db.wait_gateway("vlanif10", "up", None);
    wait_for("B's gw10 protodown off", || {
        if pair.b.ns.protodown("gw10") {
            Err(pair.b.ns.ip("-d link show dev gw10"))
        } else {
            Ok(())
        }
    });
    let p = peer_of(&db);
    assert_eq!(p["consistent"], true, "{p}");
    assert_eq!(da.gateway("vlanif10")["state"], "up");
}

/// The peer dies: after interval x multiplier of silence the survivor reports
/// the peer `down`, becomes master, and alerts it.
#[test]
fn peer_down_after_dead_interval() {
    if !require_root("peer_down_after_dead_interval") {
        return;
    }
    let pair = Pair::new("pdwn");
    let (da, db) = pair.start(&PeerOpts::default(), &gw10());
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    assert_eq!(db.status()["role"], "backup");
    let mon = synced_monitor(&db);

    da.kill9();
    wait_peer(&db, "down");
    let s = db.status();
    assert_eq!(s["role"], "master", "the survivor is master: {s}");
    let alert = mon.wait_json("peer-down on B", |v| v["id"] == "peer-down");
    assert_eq!(alert["kind"], "alert", "{alert}");
    assert_eq!(alert["state"], "down", "{alert}");
    mon.wait_json("role master on B", |v| {
        v["id"] == "role" && v["role"] == "master"
    });
    // The gateway keeps serving on the survivor.
    db.wait_gateway("vlanif10", "up", None);
}

/// Split-brain: B's peer-link goes down while heartbeats still flow → the
/// backup holds its members (admin down on a veth), the master does not. The
/// peer-link back → the backup re-holds gateways for up_delay and members for
/// member_up_delay (reason `peer-link-recovery`), then releases them.
#[test]
fn split_brain_and_recovery() {
    if !require_root("split_brain_and_recovery") {
        return;
    }
    let pair = Pair::new("pspl");
    let (da, db) = pair.start(&PeerOpts::default(), &gw10());
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    for d in [&da, &db] {
        wait_member(d, "bond1", "up", None);
        d.wait_gateway("vlanif10", "up", None);
    }
    assert!(pair.a.ns.admin_up("bond1") && pair.b.ns.admin_up("bond1"));
    let mon = synced_monitor(&db);

    // Split-brain.
    pair.b.ns.ip("link set peerlink down");
    wait_member(&db, "bond1", "holding", Some("split-brain"));
    assert_eq!(db.member("bond1")["method"], "admin-down");
    wait_for("B's bond1 admin down", || {
        if pair.b.ns.admin_up("bond1") {
            Err(format!("{:?}", pair.b.ns.link_flags("bond1")))
        } else {
            Ok(())
        }
    });
    let sb = mon.wait_json("split-brain alert on B", |v| v["id"] == "split-brain");
    assert_eq!(sb["active"], true, "{sb}");
    // heartbeats still flow; the master's member and gateway are untouched
    assert_eq!(peer_of(&db)["state"], "up");
    assert_eq!(peer_of(&da)["state"], "up");
    let ma = da.member("bond1");
    assert_eq!(ma["state"], "up", "{ma}");
    assert!(pair.a.ns.admin_up("bond1"));
    assert_eq!(da.gateway("vlanif10")["state"], "up");
    // still held (not a timer)
    wait_member(&db, "bond1", "holding", Some("split-brain"));

    // Peer-link recovery.
    pair.b.ns.ip("link set peerlink up");
    db.wait_gateway("vlanif10", "holding", Some("peer-link-recovery"));
    wait_member(&db, "bond1", "holding", Some("peer-link-recovery"));
    assert!(!pair.b.ns.admin_up("bond1"), "held member stays admin down");
    mon.wait_json("peer-link-recovery alert on B", |v| {
        v["id"] == "peer-link-recovery"
    });
    // A is master: nothing re-held there.
    assert_eq!(da.member("bond1")["state"], "up");
    assert_eq!(da.gateway("vlanif10")["state"], "up");

    db.wait_gateway("vlanif10", "up", None);
    wait_member(&db, "bond1", "up", None);
    assert!(pair.b.ns.admin_up("bond1"));
    assert!(!pair.b.ns.protodown("gw10"));
}

/// The backup's members go straight from the split-brain hold into the
/// peer-link-recovery hold: the kernel never sees them let up in between (a
/// member let up for a moment carries traffic before the ARP batch sync the
/// recovery hold is for). Checked on `ip monitor link` of B.
#[test]
fn peer_link_recovery_does_not_flap_members() {
    if !require_root("peer_link_recovery_does_not_flap_members") {
        return;
    }
    let pair = Pair::new("pflp");
    let (da, db) = pair.start(&PeerOpts::default(), &gw10());
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    wait_member(&db, "bond1", "up", None);
    pair.b.ns.ip("link set peerlink down");
    wait_member(&db, "bond1", "holding", Some("split-brain"));
    wait_for("B's bond1 admin down", || {
        if pair.b.ns.admin_up("bond1") {
            Err(format!("{:?}", pair.b.ns.link_flags("bond1")))
        } else {
            Ok(())
        }
    });

    let ip_mon = LineTap::ip_monitor(&pair.b.ns);
    let mark = ip_mon.mark(&pair.b.ns, 1);
    pair.b.ns.ip("link set peerlink up");
    wait_member(&db, "bond1", "holding", Some("peer-link-recovery"));
    wait_member(&db, "bond1", "up", None);
    let end = ip_mon.mark(&pair.b.ns, 2);

    // Once the kernel reported bond1 admin up (the final release), it never
    // reported it admin down again.
    let lines = ip_mon.lines();
    let seq: Vec<&String> = lines[mark..end]
        .iter()
        .filter(|l| link_line_of(l, "bond1"))
        .collect();
    let first_up = seq.iter().position(|l| link_line_admin_up(l));
    assert!(first_up.is_some(), "bond1 never reported up: {seq:#?}");
    assert!(
        seq[first_up.unwrap()..]
            .iter()
            .all(|l| link_line_admin_up(l)),
        "bond1 flapped: let up when the split-brain hold ended and held down again by the peer-link-recovery hold: {seq:#?}"
    );
}

/// Is `line` (of `ip monitor link`) a link message (not a deletion) of `dev`?
fn link_line_of(line: &str, dev: &str) -> bool {
    if line.starts_with("Deleted") {
        return false;
    }
    line.split_once(": ")
        .map(|(_, rest)| rest.split([':', '@']).next() == Some(dev))
        .unwrap_or(false)
}

/// Does a link line of `ip monitor` carry the UP (admin up) flag?
fn link_line_admin_up(line: &str) -> bool {
    line.split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .is_some_and(|(flags, _)| flags.split(',').any(|f| f == "UP"))
}
