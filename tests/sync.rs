//! ARP/ND sync channel and dynamic up-delay (DESIGN.md §4 `[peer]`,
//! `[up_delay]`, §5 `peer.sync` / `arp` / `nd`; docs/sync.md): two real
//! daemons in two namespaces (tests/common/pair.rs). Locally learned entries
//! are made with `ip neigh replace ... nud reachable` on the gateway device
//! `gw10` (no `extern_learn` flag); the peer's copies carry `extern_learn`.
//!
//! A = 203.0.113.1 connects the sync session, B = 203.0.113.2 listens.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::pair::*;
use common::*;
use serde_json::Value;

/// Give-up deadline of the longer waits (a dynamic hold, a reconnect backoff).
const LONG: Duration = Duration::from_secs(30);

/// ip → mac.
type Entries = BTreeMap<String, String>;

fn gw10() -> Vec<Gw> {
    vec![Gw::vlanif10()]
}

fn v4(i: u32) -> String {
    assert!((2..=254).contains(&i), "192.0.2.{i}");
    format!("192.0.2.{i}")
}

fn v6(i: u32) -> String {
    Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 0x1000 + i as u16).to_string()
}

/// A locally administered MAC: `side` tells A (0x0a) from B (0x0b), `generation`
/// a changed MAC from the first one.
fn mac(side: u8, generation: u8, i: u32) -> String {
    format!(
        "02:{side:02x}:{generation:02x}:00:{:02x}:{:02x}",
        (i >> 8) & 0xff,
        i & 0xff
    )
}

/// Entries of `side` for these IPv4 and IPv6 indices.
fn entries(side: u8, generation: u8, v4s: impl Iterator<Item = u32>, v6s: &[u32]) -> Entries {
    let mut e: Entries = v4s.map(|i| (v4(i), mac(side, generation, i))).collect();
    for &i in v6s {
        e.insert(v6(i), mac(side, generation, 0x100 + i));
    }
    e
}

/// Learn these entries "locally" on `gw10` (no extern_learn).
fn learn(ns: &Netns, e: &Entries) {
    let lines: Vec<String> = e
        .iter()
        .map(|(ip, mac)| format!("neigh replace {ip} lladdr {mac} dev gw10 nud reachable"))
        .collect();
    ip_batch(ns, &lines);
}

fn forget<'a>(ns: &Netns, ips: impl IntoIterator<Item = &'a String>) {
    let lines: Vec<String> = ips
        .into_iter()
        .map(|ip| format!("neigh del {ip} dev gw10"))
        .collect();
    ip_batch(ns, &lines);
}

fn is_multicast(ip: &str) -> bool {
    ip.parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_multicast())
}

/// (locally learned, extern_learn) unicast entries of `gw10`. Multicast
/// entries (the kernel's own NOARP ones, e.g. ff02::16 of MLD reports) are
/// left out here; `multicast_neighbours_not_synced` covers them.
fn tables(ns: &Netns) -> (Entries, Entries) {
    let mut local = Entries::new();
    let mut synced = Entries::new();
    for (ip, r) in neigh_rows(ns, "gw10") {
        if is_multicast(&ip) {
            continue;
        }
        if r.extern_learn {
            synced.insert(ip, r.mac);
        } else {
            local.insert(ip, r.mac);
        }
    }
    (local, synced)
}

fn local_of(ns: &Netns) -> Entries {
    tables(ns).0
}

fn synced_of(ns: &Netns) -> Entries {
    tables(ns).1
}

/// A short description of how `got` differs from `want`.
fn diff(want: &Entries, got: &Entries) -> String {
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let wrong: Vec<String> = want
        .iter()
        .filter_map(|(k, m)| {
            got.get(k)
                .filter(|g| *g != m)
                .map(|g| format!("{k}: {g} (want {m})"))
        })
        .collect();
    format!(
        "{} missing {:?}, {} extra {:?}, {} wrong mac {:?}",
        missing.len(),
        missing.iter().take(8).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(8).collect::<Vec<_>>(),
        wrong.len(),
        wrong.iter().take(8).collect::<Vec<_>>()
    )
}

/// Wait until the extern_learn entries on `dst` are exactly `want`.
fn wait_synced(what: &str, dst: &Netns, want: &Entries) {
    let mut last = String::new();
    let ok = wait_until(LONG, || {
        let got = synced_of(dst);
        if &got == want {
            true
        } else {
            last = diff(want, &got);
            false
        }
    });
    assert!(ok, "{what}: extern_learn entries on {}: {last}", dst.name);
}

/// Both daemons up with the sync session established and both bulks in.
fn start_synced(pair: &Pair) -> (Daemon, Daemon) {
    let (da, db) = pair.start(&PeerOpts::default(), &gw10());
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    da.wait_gateway("vlanif10", "up", None);
    db.wait_gateway("vlanif10", "up", None);
    wait_sync_established(&da);
    wait_sync_established(&db);
    (da, db)
}

/// Monitor objects `id` with `state` (a detail) and, unless None, object.
fn notices(tap: &LineTap, id: &str, state: &str) -> Vec<Value> {
    alerts(tap, id)
        .into_iter()
        .filter(|v| v["state"] == state)
        .collect()
}

/// Does an `ip monitor neigh` line install / show `ip` with extern_learn?
fn monitor_line_extern(line: &str, ip: &str) -> bool {
    let l = line.strip_prefix("Deleted ").unwrap_or(line);
    l.split_whitespace().next() == Some(ip) && line.contains("extern_learn")
}

// ---------------------------------------------------------------------------

/// Entries learned on A show up on B as `extern_learn` with the same MAC (ARP
/// and ND), and the other way round; A's deletes and MAC changes propagate;
/// nothing is echoed back (no entry A learned itself ever becomes
/// `extern_learn` on A).
#[test]
fn entries_sync_both_ways_with_extern_learn_and_no_echo() {
    if !require_root("entries_sync_both_ways_with_extern_learn_and_no_echo") {
        return;
    }
    let pair = Pair::new("syn1");
    let (da, db) = start_synced(&pair);
    let (na, nb) = (&pair.a.ns, &pair.b.ns);
    let mon_a = LineTap::ip_monitor(na);
    mon_a.mark(na, 1);

    // A learns 20 IPv4 + 5 IPv6 entries.
    let mut a = entries(0x0a, 0, 10..30, &[1, 2, 3, 4, 5]);
    learn(na, &a);
    assert_eq!(local_of(na), a, "A's own entries as learned");
    wait_synced("A's entries on B", nb, &a);
    for (ip, r) in neigh_rows(nb, "gw10") {
        assert!(
            r.extern_learn || is_multicast(&ip),
            "B has only synced unicast entries: {ip} {r:?}"
        );
    }

    // B learns 10 IPv4 + 3 IPv6 entries of its own.
    let b = entries(0x0b, 0, 100..110, &[50, 51, 52]);
    learn(nb, &b);
    wait_synced("B's entries on A", na, &b);
    assert_eq!(local_of(na), a, "A's own entries stay locally learned");
    assert_eq!(synced_of(nb), a, "B's synced entries unchanged");

    // A forgets 5 IPv4 and 2 IPv6 entries: gone on B.
    let gone: Vec<String> = [v4(10), v4(11), v4(12), v4(13), v4(14), v6(1), v6(2)].into();
    forget(na, &gone);
    for ip in &gone {
        a.remove(ip);
    }
    wait_synced("A's deletes on B", nb, &a);

    // A's MAC of 3 entries changes: the new MAC on B.
    let changed = entries(0x0a, 1, 20..22, &[3]);
    learn(na, &changed);
    a.extend(changed.clone());
    assert_eq!(local_of(na), a);
    wait_synced("A's MAC changes on B", nb, &a);

    // Both views exact; the counts in the status agree.
    assert_eq!(
        synced_of(na),
        b,
        "B's entries on A: {}",
        diff(&b, &synced_of(na))
    );
    assert_eq!(local_of(nb), b);
    wait_for("peer_entries on both sides", || {
        let (sa, sb) = (sync_of(&da), sync_of(&db));
        if sa["peer_entries"] == b.len() && sb["peer_entries"] == a.len() {
            Ok(())
        } else {
            Err(format!("A {sa} B {sb}"))
        }
    });

    // No echo: none of the IPs A learned itself ever appeared on A with
    // extern_learn (the kernel's own notifications, end to end).
    mon_a.mark(na, 2);
    let mine: Vec<String> = (10..30).map(v4).chain([1, 2, 3, 4, 5].map(v6)).collect();
    let lines = mon_a.lines();
    for ip in &mine {
        let echoed: Vec<&String> = lines
            .iter()
            .filter(|l| monitor_line_extern(l, ip))
            .collect();
        assert!(echoed.is_empty(), "{ip} echoed back to A: {echoed:#?}");
    }
    // (and B never sent A's entries back as B's own: A's synced view is B's)
    assert!(
        synced_of(na).keys().all(|ip| !mine.contains(ip)),
        "{:?}",
        synced_of(na)
    );
}

/// With entries on both sides, B's daemon is killed; meanwhile A's table
/// changes (adds, deletes, MAC changes) and so does B's kernel table. After B
/// restarts (same config and state dir) and the new session's bulks are in,
/// each side's extern_learn entries are exactly the other's local entries: no
/// leftovers, nothing missing, no stale MAC.
#[test]
fn reconnect_leaves_tables_exact() {
    if !require_root("reconnect_leaves_tables_exact") {
        return;
    }
    let pair = Pair::new("syn2");
    let (da, db) = start_synced(&pair);
    let (na, nb) = (&pair.a.ns, &pair.b.ns);

    let mut a = entries(0x0a, 0, 10..40, &[1, 2, 3, 4]);
    let mut b = entries(0x0b, 0, 100..120, &[50, 51, 52]);
    learn(na, &a);
    learn(nb, &b);
    wait_synced("A's entries on B", nb, &a);
    wait_synced("B's entries on A", na, &b);
    let sessions_a = sync_of(&da)["sessions"].as_u64().expect("sessions");

    db.kill9();
    wait_for("A sees the session closed", || {
        let s = sync_of(&da);
        if s["state"] == "connecting" {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });
    // A: 10 IPv4 and 2 IPv6 deleted, 10 IPv4 and 1 IPv6 added, 3 MACs changed.
    let a_gone: Vec<String> = (10..20).map(v4).chain([v6(1), v6(2)]).collect();
    forget(na, &a_gone);
    for ip in &a_gone {
        a.remove(ip);
    }
    let a_new = entries(0x0a, 0, 40..50, &[9]);
    let a_changed = entries(0x0a, 2, 30..33, &[]);
    learn(na, &a_new);
    learn(na, &a_changed);
    a.extend(a_new);
    a.extend(a_changed);
    // B (daemon dead, kernel alive): 5 deleted, 5 added.
    let b_gone: Vec<String> = (100..105).map(v4).collect();
    forget(nb, &b_gone);
    for ip in &b_gone {
        b.remove(ip);
    }
    let b_new = entries(0x0b, 0, 120..125, &[]);
    learn(nb, &b_new);
    b.extend(b_new);
    assert_eq!(local_of(na), a);
    assert_eq!(local_of(nb), b);

    let db = pair.b.start();
    wait_sync_established(&db);
    wait_for("A: a new session with B's bulk in", || {
        let s = sync_of(&da);
        let ok = s["state"] == "established"
            && s["bulk_complete"] == true
            && s["sessions"].as_u64().is_some_and(|n| n > sessions_a);
        if ok { Ok(()) } else { Err(s.to_string()) }
    });

    wait_synced("B's extern_learn entries = A's local ones", nb, &a);
    wait_synced("A's extern_learn entries = B's local ones", na, &b);
    assert_eq!(local_of(na), a, "A's own entries untouched");
    assert_eq!(local_of(nb), b, "B's own entries untouched");
    let (sa, sb) = (sync_of(&da), sync_of(&db));
    assert_eq!(
        sa["peer_entries"],
        b.len(),
        "no duplicates in A's view: {sa}"
    );
    assert_eq!(
        sb["peer_entries"],
        a.len(),
        "no duplicates in B's view: {sb}"
    );
}

/// Dynamic up-delay: B restarts fresh (new state dir, gateway device gone)
/// while A has 200 ARP + 10 ND entries. B's gateway holds (`min-delay` /
/// `arp-sync` once the peer is heard) until A's bulk is in and its counts
/// match A's advertised ones, then goes up: after the bulk-complete notice,
/// with its counts within 1% of the peer's.
#[test]
fn dynamic_hold_until_counts_match() {
    if !require_root("dynamic_hold_until_counts_match") {
        return;
    }
    let pair = Pair::new("syn3");
    let opts = PeerOpts::default();
    // The static up_delay (the fallback without a peer) is long, so B's hold
    // outlasts A's absence below.
    let mut g = Gw::vlanif10();
    g.up_delay = "20s".into();
    let gws = vec![g];
    for s in [&pair.a, &pair.b] {
        s.write_config_dynamic(&opts, &gws, "1s", "60s", "90s");
    }
    let da = pair.a.start();
    let db = pair.b.start();
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    // With the peer heard and empty tables on both sides, min (1 s) and the
    // bulk are all it takes.
    da.wait_gateway("vlanif10", "up", None);
    db.wait_gateway("vlanif10", "up", None);
    let (na, nb) = (&pair.a.ns, &pair.b.ns);
    let a = entries(0x0a, 0, 10..210, &(1..11).collect::<Vec<_>>());
    learn(na, &a);
    wait_synced("A's entries on B", nb, &a);

    // B restarts fresh: no state marker, no gateway device (so no entries);
    // A's daemon is away meanwhile (A's kernel keeps its entries).
    db.kill9();
    da.kill9();
    nb.ip("link del gw10");
    std::fs::remove_dir_all(pair.b.work.state_dir()).expect("remove B's state dir");
    let db = pair.b.start();
    db.wait_gateway("vlanif10", "holding", Some("up-delay"));
    let mon = synced_monitor(&db);
    assert!(synced_of(nb).is_empty(), "B starts with no synced entries");

    let da = pair.a.start();
    // Poll B until its gateway is up; note every hold reason seen.
    let mut reasons = Vec::<String>::new();
    let mut up_status = Value::Null;
    let ok = wait_until(LONG, || {
        let g = db.gateway("vlanif10");
        if let Some(r) = g["reason"].as_str()
            && reasons.last().map(String::as_str) != Some(r)
        {
            reasons.push(r.to_string());
        }
        if g["state"] == "up" {
            up_status = g;
            true
        } else {
            false
        }
    });
    assert!(
        ok,
        "B's gateway never up: {} (reasons {reasons:?}); B's sync {}; {} synced entries on B; monitor {:#?}\nB's log:\n{}",
        db.gateway("vlanif10"),
        sync_of(&db),
        synced_of(nb).len(),
        mon.lines(),
        db.log()
    );
    println!("B's hold reasons polled: {reasons:?}; up: {up_status}");

    // Right after: the counts have caught up with what A advertises.
    let (arp, nd) = (&up_status["arp"], &up_status["nd"]);
    let caught_up = |c: &Value| {
        let (l, p) = (c["local"].as_u64(), c["peer"].as_u64());
        matches!((l, p), (Some(l), Some(p)) if l + p / 100 >= p)
    };
    assert!(caught_up(arp) && caught_up(nd), "{up_status}");
    assert!(
        arp["peer"].as_u64() >= Some(200) && nd["peer"].as_u64() >= Some(10),
        "A advertises its 200 ARP / 10 ND entries: {up_status}"
    );

    // The monitor: holding for the sync (after the peer was heard), the bulk
    // complete, and only then up; no sync-incomplete. Its line of the "up"
    // may reach the tap a moment after the status that showed it.
    mon.wait_json("gateway-state up on B", |v| {
        v["id"] == "gateway-state" && v["object"] == "vlanif10" && v["state"] == "up"
    });
    let lines = mon.json_lines();
    let pos = |pred: &dyn Fn(&Value) -> bool| lines.iter().position(pred);
    let bulk = pos(&|v| v["id"] == "sync-session" && v["state"] == "bulk-complete")
        .unwrap_or_else(|| panic!("no bulk-complete on B: {lines:#?}"));
    let up =
        pos(&|v| v["id"] == "gateway-state" && v["object"] == "vlanif10" && v["state"] == "up")
            .unwrap_or_else(|| panic!("no gateway-state up on B: {lines:#?}"));
    assert!(
        bulk < up,
        "B's gateway went up before the peer's bulk was complete: {lines:#?}"
    );
    let sync_hold = lines.iter().take(up).any(|v| {
        v["id"] == "gateway-state"
            && v["state"] == "holding"
            && (v["reason"] == "min-delay" || v["reason"] == "arp-sync")
    });
    assert!(sync_hold, "no min-delay / arp-sync hold on B: {lines:#?}");
    let up_notice = &lines[up];
    assert!(
        caught_up(&up_notice["arp"]) && caught_up(&up_notice["nd"]),
        "counts when it went up: {up_notice}"
    );
    assert!(
        alerts(&mon, "sync-incomplete").is_empty(),
        "released early, not at max: {lines:#?}"
    );
    assert_eq!(synced_of(nb), a, "{}", diff(&a, &synced_of(nb)));
    drop(da);
}

/// The sync channel is blocked (nft drops TCP port 8742 on B; the UDP
/// heartbeat still flows): B's gateway, held when its SVI comes up, is not up
/// before `min` (2 s), waits in `arp-sync`, and is released at `max` (4 s)
/// with a `sync-incomplete` alert.
#[test]
fn max_bound_releases_with_alert() {
    if !require_root("max_bound_releases_with_alert") {
        return;
    }
    if std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED: max_bound_releases_with_alert needs nft (apt-get install nftables)");
        return;
    }
    let pair = Pair::new("syn4");
    let opts = PeerOpts::default();
    let mut g = Gw::vlanif10();
    g.up_delay = "20s".into();
    let gws = vec![g];
    for s in [&pair.a, &pair.b] {
        s.write_config_dynamic(&opts, &gws, "2s", "4s", "30s");
    }
    let nb = &pair.b.ns;
    let o = nb.exec(&[
        "sh",
        "-c",
        "printf '%s\\n' 'table inet dagwt {' \
         ' chain in { type filter hook input priority 0; tcp dport 8742 drop; tcp sport 8742 drop; }' \
         ' chain out { type filter hook output priority 0; tcp dport 8742 drop; tcp sport 8742 drop; }' \
         '}' | nft -f -",
    ]);
    assert!(
        o.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    nb.ip("link set br10 down");
    let da = pair.a.start();
    let db = pair.b.start();
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    db.wait_gateway("vlanif10", "down", Some("svi-down"));
    let mon = synced_monitor(&db);

    nb.ip("link set br10 up");
    wait_for("B's gateway holding", || {
        let g = db.gateway("vlanif10");
        if g["state"] != "down" {
            Ok(())
        } else {
            Err(g.to_string())
        }
    });
    let mut last = Value::Null;
    let ok = wait_until(LONG, || {
        last = db.gateway("vlanif10");
        last["state"] == "up"
    });
    assert!(ok, "B's gateway never released: {last}");
    let alert = mon.wait_json("sync-incomplete on B", |v| v["id"] == "sync-incomplete");
    assert_eq!(alert["kind"], "alert", "{alert}");
    assert_eq!(alert["object"], "vlanif10", "{alert}");
    assert_eq!(alert["bulk_complete"], false, "{alert}");

    let gs: Vec<Value> = alerts(&mon, "gateway-state")
        .into_iter()
        .filter(|v| v["object"] == "vlanif10")
        .collect();
    let first = |state: &str, reason: Option<&str>| {
        gs.iter()
            .find(|v| v["state"] == state && reason.is_none_or(|r| v["reason"] == r))
            .unwrap_or_else(|| panic!("no gateway-state {state} {reason:?}: {gs:#?}"))
    };
    let hold = first("holding", None);
    assert_eq!(
        hold["reason"], "min-delay",
        "the peer is heard: the hold starts at min: {gs:#?}"
    );
    let arp_sync = first("holding", Some("arp-sync"));
    let up = first("up", None);
    let (t_hold, t_sync, t_up) = (ts_ms(hold), ts_ms(arp_sync), ts_ms(up));
    println!(
        "hold -> arp-sync {} ms, hold -> up {} ms",
        t_sync - t_hold,
        t_up - t_hold
    );
    // (the hold's notice is stamped a little after the hold began: 20 ms slack)
    assert!(t_sync - t_hold >= 2000 - 20, "arp-sync before min: {gs:#?}");
    assert!(t_up - t_hold >= 2000, "up before min: {gs:#?}");
    assert!(t_up - t_hold >= 4000 - 20, "up before max: {gs:#?}");
    let s = sync_of(&db);
    assert_ne!(s["state"], "established", "the channel was blocked: {s}");
    assert_eq!(s["bulk_complete"], false, "{s}");
}

/// Dynamic mode without a reachable peer: the static `up_delay` (reason
/// `up-delay`), then up, with no sync-incomplete alert.
#[test]
fn static_fallback_without_peer() {
    if !require_root("static_fallback_without_peer") {
        return;
    }
    let pair = Pair::new("syn5");
    let opts = PeerOpts::default();
    let mut g = Gw::vlanif10();
    g.up_delay = "2s".into();
    pair.b.write_config_dynamic(&opts, &[g], "1s", "10s", "15s");
    let nb = &pair.b.ns;
    nb.ip("link set br10 down");
    let db = pair.b.start();
    wait_peer(&db, "down");
    db.wait_gateway("vlanif10", "down", Some("svi-down"));
    let mon = synced_monitor(&db);

    nb.ip("link set br10 up");
    db.wait_gateway("vlanif10", "holding", Some("up-delay"));
    db.wait_gateway("vlanif10", "up", None);
    let gs: Vec<Value> = alerts(&mon, "gateway-state")
        .into_iter()
        .filter(|v| v["object"] == "vlanif10")
        .collect();
    let hold = gs
        .iter()
        .find(|v| v["state"] == "holding")
        .unwrap_or_else(|| panic!("no holding notice: {gs:#?}"));
    assert_eq!(hold["reason"], "up-delay", "{gs:#?}");
    assert!(
        gs.iter()
            .all(|v| v["reason"] != "min-delay" && v["reason"] != "arp-sync"),
        "no dynamic hold without a peer: {gs:#?}"
    );
    let up = gs
        .iter()
        .find(|v| v["state"] == "up")
        .unwrap_or_else(|| panic!("no up notice: {gs:#?}"));
    let held = ts_ms(up) - ts_ms(hold);
    println!("held {held} ms");
    assert!(held >= 2000 - 20, "up before the static up_delay: {gs:#?}");
    assert!(
        alerts(&mon, "sync-incomplete").is_empty(),
        "{:#?}",
        mon.lines()
    );
    let p = peer_of(&db);
    assert_ne!(p["state"], "up", "{p}");
}

/// Open a TCP connection from A's namespace (source 203.0.113.1, some port)
/// to B's sync port.
fn fake_connect(pair: &Pair) -> TcpStream {
    let dst = SocketAddr::from((B_ADDR, PORT));
    let s = in_netns(&pair.a.ns, move || {
        TcpStream::connect_timeout(&dst, Duration::from_secs(3)).expect("connect to B's sync port")
    });
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

/// Read one handshake message (`len u16` + body) or None if the stream ended.
fn read_msg(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// Wait until B has closed the connection (EOF or reset).
fn wait_closed(s: &mut TcpStream) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        assert!(Instant::now() < deadline, "B never closed the connection");
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    b
}

/// Wait for the next `sync-session` closed notice on B after `seen` of them;
/// returns it.
fn wait_closed_notice(mon: &LineTap, seen: usize, what: &str) -> Value {
    let mut got = Value::Null;
    let ok = wait_until(WAIT, || {
        let c = notices(mon, "sync-session", "closed");
        if c.len() > seen {
            got = c[seen].clone();
            true
        } else {
            false
        }
    });
    assert!(
        ok,
        "{what}: no sync-session closed on B: {:#?}",
        mon.lines()
    );
    got
}

fn reason_has(n: &Value, what: &str) -> bool {
    n["reason"]
        .as_str()
        .is_some_and(|r| r.to_lowercase().contains(what))
}

/// Connections to B's sync port from the peer's address that do not prove the
/// key are reset (a fake Hello with a bad Proof, B's own Hello reflected,
/// garbage), nothing from them is established; a connection made while the
/// real session runs does not disturb it; the real session comes back and
/// entries still sync.
#[test]
fn unauthenticated_sync_connection_rejected() {
    if !require_root("unauthenticated_sync_connection_rejected") {
        return;
    }
    let pair = Pair::new("syn6");
    let (da, db) = start_synced(&pair);
    let (na, nb) = (&pair.a.ns, &pair.b.ns);
    let mut a = entries(0x0a, 0, 10..15, &[1]);
    learn(na, &a);
    wait_synced("A's entries on B", nb, &a);

    let mon = synced_monitor(&db);

    // 1. While the real session runs: a second connection is not served and
    //    does not disturb it.
    let sessions_b = sync_of(&db)["sessions"].as_u64().expect("sessions");
    let mut intruder = fake_connect(&pair);
    intruder
        .write_all(&random_bytes(200))
        .expect("write garbage");
    let more = entries(0x0a, 0, 15..18, &[]);
    learn(na, &more);
    a.extend(more);
    wait_synced("A's entries on B beside an intruder", nb, &a);
    let s = sync_of(&db);
    assert_eq!(s["state"], "established", "{s}");
    assert_eq!(s["sessions"], sessions_b, "{s}");
    assert!(
        notices(&mon, "sync-session", "closed").is_empty(),
        "{:#?}",
        mon.lines()
    );
    drop(intruder);

    // 2. The real client away: B's listener serves what waits in its backlog
    //    (the intruder above: closed for its garbage), then the fakes below,
    //    one by one.
    da.kill9();
    wait_for("B: A's session and the intruder's closed", || {
        let s = sync_of(&db);
        let closed = notices(&mon, "sync-session", "closed").len();
        if s["state"] == "connecting" && s["sessions"] == sessions_b + 1 && closed >= 2 {
            Ok(())
        } else {
            Err(format!("{s}, {closed} closed notices"))
        }
    });
    let mut closed = notices(&mon, "sync-session", "closed").len();

    // 2a. A well-formed Hello (B's key id, a fresh nonce) and a Proof that is
    //     not an HMAC of the key.
    let mut s = fake_connect(&pair);
    let hello_b = read_msg(&mut s).expect("B's Hello");
    assert!(
        hello_b.len() > 39 && hello_b[0] == 1 && &hello_b[1..5] == b"DSYN",
        "{hello_b:?}"
    );
    let key_id = hello_b[6];
    let name = b"leafa";
    let mut hello = vec![1u8];
    hello.extend_from_slice(b"DSYN");
    hello.push(1);
    hello.push(key_id);
    hello.extend_from_slice(&random_bytes(32));
    hello.push(name.len() as u8);
    hello.extend_from_slice(name);
    let mut msg = (hello.len() as u16).to_be_bytes().to_vec();
    msg.extend_from_slice(&hello);
    s.write_all(&msg).expect("send Hello");
    let proof_b = read_msg(&mut s).expect("B's Proof for our Hello");
    assert_eq!(proof_b.len(), 34, "{proof_b:?}");
    let mut proof = vec![0u8, 34, 2, key_id];
    proof.extend_from_slice(&random_bytes(32));
    s.write_all(&proof).expect("send Proof");
    wait_closed(&mut s);
    let n = wait_closed_notice(&mon, closed, "bad proof");
    closed += 1;
    println!("bad proof: {n}");
    assert_eq!(n["kind"], "alert", "{n}");
    assert!(reason_has(&n, "proof"), "{n}");
    assert_ne!(sync_of(&db)["state"], "established");

    // 2b. B's own Hello reflected back.
    let mut s = fake_connect(&pair);
    let hello_b = read_msg(&mut s).expect("B's Hello");
    let mut msg = (hello_b.len() as u16).to_be_bytes().to_vec();
    msg.extend_from_slice(&hello_b);
    let _ = s.write_all(&msg);
    wait_closed(&mut s);
    let n = wait_closed_notice(&mon, closed, "reflected Hello");
    closed += 1;
    println!("reflected Hello: {n}");
    assert!(reason_has(&n, "reflect"), "{n}");
    assert_ne!(sync_of(&db)["state"], "established");

    // 2c. Garbage (an oversized length prefix, then noise).
    let mut s = fake_connect(&pair);
    let mut junk = vec![0xff, 0xff];
    junk.extend_from_slice(&random_bytes(100));
    let _ = s.write_all(&junk);
    wait_closed(&mut s);
    let n = wait_closed_notice(&mon, closed, "garbage");
    println!("garbage: {n}");
    assert!(reason_has(&n, "length"), "{n}");
    assert_ne!(sync_of(&db)["state"], "established");

    assert!(
        notices(&mon, "sync-session", "established").is_empty(),
        "a fake connection was established: {:#?}",
        mon.lines()
    );
    assert_eq!(
        synced_of(na).len() + local_of(nb).len(),
        0,
        "nothing was exchanged with the fakes"
    );
    // B kept A's entries (within the grace period) and installed nothing else.
    assert_eq!(synced_of(nb), a, "{}", diff(&a, &synced_of(nb)));

    // 3. The real peer is back: established again, entries sync.
    let da = pair.a.start();
    wait_sync_established(&da);
    wait_sync_established(&db);
    mon.wait_json("sync established on B", |v| {
        v["id"] == "sync-session" && v["state"] == "established"
    });
    let later = entries(0x0a, 0, 18..21, &[2]);
    learn(na, &later);
    a.extend(later);
    wait_synced("A's entries on B after recovery", nb, &a);
    let b = entries(0x0b, 0, 100..103, &[]);
    learn(nb, &b);
    wait_synced("B's entries on A after recovery", na, &b);
}

/// Multicast neighbour entries are the kernel's own (NOARP, derived from the
/// address, e.g. `ff02::16` for the MLDv2 reports a gateway device sends):
/// not learned hosts, so not synced. Here A has such an entry, B has none of
/// its own, and a new session starts (A's daemon restarted): B must not get
/// A's multicast entries as `extern_learn`.
#[test]
fn multicast_neighbours_not_synced() {
    if !require_root("multicast_neighbours_not_synced") {
        return;
    }
    let pair = Pair::new("syn7");
    let (da, db) = start_synced(&pair);
    let (na, nb) = (&pair.a.ns, &pair.b.ns);
    let multicast = |ns: &Netns| -> BTreeMap<String, NeighRow> {
        neigh_rows(ns, "gw10")
            .into_iter()
            .filter(|(ip, _)| is_multicast(ip))
            .collect()
    };
    // A's gw10 sends MLD reports (it has IPv6 addresses): the kernel's NOARP
    // entry for ff02::16. Made here if the kernel has not made it (yet).
    let kernel_made = wait_until(Duration::from_secs(3), || {
        multicast(na).values().any(|r| !r.extern_learn)
    });
    if !kernel_made {
        na.ip("neigh replace ff02::16 lladdr 33:33:00:00:00:16 dev gw10 nud noarp");
    }
    let a_mc = multicast(na);
    println!("A's multicast entries (kernel-made: {kernel_made}): {a_mc:?}");
    assert!(a_mc.values().any(|r| !r.extern_learn), "{a_mc:?}");
    // B without multicast entries of its own (the kernel may add them back
    // on its own later: then a local one wins and nothing is to be seen).
    let lines: Vec<String> = multicast(nb)
        .keys()
        .map(|ip| format!("neigh del {ip} dev gw10"))
        .collect();
    ip_batch(nb, &lines);

    // A new session: A's full bulk.
    let sessions = sync_of(&db)["sessions"].as_u64().expect("sessions");
    da.kill9();
    let da = pair.a.start();
    wait_sync_established(&da);
    wait_for("B: a new session with A's bulk in", || {
        let s = sync_of(&db);
        let ok = s["state"] == "established"
            && s["bulk_complete"] == true
            && s["sessions"].as_u64().is_some_and(|n| n > sessions);
        if ok { Ok(()) } else { Err(s.to_string()) }
    });
    // A marker entry learned on A after the bulk: once it is on B, B has
    // processed everything A sent before it.
    let marker = entries(0x0a, 0, 77..78, &[]);
    learn(na, &marker);
    wait_synced("the marker on B", nb, &marker);
    let synced_mc: Vec<(String, NeighRow)> = multicast(nb)
        .into_iter()
        .filter(|(_, r)| r.extern_learn)
        .collect();
    assert!(
        synced_mc.is_empty(),
        "A's multicast neighbour entries were synced to B as extern_learn: {synced_mc:?}"
    );
}

/// B's SVI goes down and up while the session stays: the gateway device's
/// carrier drops (protodown while held), and the kernel flushes the
/// `extern_learn` entries on it. The peer's entries are still in B's view of
/// A's table, so B must put them back: its dynamic hold then ends on the
/// counts (no `sync-incomplete`), with A's entries installed again.
#[test]
fn svi_flap_restores_synced_entries() {
    if !require_root("svi_flap_restores_synced_entries") {
        return;
    }
    let pair = Pair::new("syn8");
    let opts = PeerOpts::default();
    for s in [&pair.a, &pair.b] {
        s.write_config_dynamic(&opts, &gw10(), "1s", "8s", "15s");
    }
    let da = pair.a.start();
    let db = pair.b.start();
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    da.wait_gateway("vlanif10", "up", None);
    db.wait_gateway("vlanif10", "up", None);
    wait_sync_established(&db);
    let (na, nb) = (&pair.a.ns, &pair.b.ns);
    let a = entries(0x0a, 0, 10..60, &[1, 2, 3]);
    learn(na, &a);
    wait_synced("A's entries on B", nb, &a);
    let mon = synced_monitor(&db);

    nb.ip("link set br10 down");
    db.wait_gateway("vlanif10", "down", Some("svi-down"));
    nb.ip("link set br10 up");
    let mut last = Value::Null;
    let ok = wait_until(LONG, || {
        last = db.gateway("vlanif10");
        last["state"] == "up"
    });
    assert!(ok, "B's gateway never up again: {last}");
    let s = sync_of(&db);
    assert_eq!(s["state"], "established", "the session stayed: {s}");
    assert!(
        alerts(&mon, "sync-incomplete").is_empty(),
        "B's hold ran to max although the peer's table was complete ({s}; {} of A's {} entries installed on B): {:#?}",
        synced_of(nb).len(),
        a.len(),
        mon.lines()
    );
    wait_synced("A's entries on B after the SVI flap", nb, &a);
}
