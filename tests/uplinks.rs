//! Uplink tracking (issue 12 item 6; DESIGN.md §4 `[uplinks]`, §5
//! `uplinks`): when fewer than `min_up` uplinks are oper-up, every member is
//! held (`uplinks-down`) at once, driven by the link events; members are
//! released once enough uplinks have been up for `recover_delay`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const CONFIG: &str = r#"
[mlag]
members = ["m1"]
member_up_delay = "1s"

[uplinks]
interfaces = ["up1", "up2"]
min_up = 1
recover_delay = "2s"

[[gateway]]
vlanif = 10
interface = "br10"
mac = "0000-5e00-0101"
ipv4 = ["192.0.2.1/24"]
up_delay = "0s"
"#;

fn uplinks(d: &Daemon) -> Value {
    d.status()["uplinks"].clone()
}

fn wait_uplinks(d: &Daemon, state: &str) -> Value {
    let mut last = Value::Null;
    let ok = wait_until(WAIT, || {
        last = uplinks(d);
        last["state"] == state
    });
    assert!(ok, "uplinks never {state}: {last}");
    last
}

#[test]
fn members_follow_the_uplinks() {
    if !require_root("members_follow_the_uplinks") {
        return;
    }
    let ns = Netns::new("uplinks");
    ns.bridge_up("br10");
    ns.ip("link add m1 type veth peer name m1x");
    ns.ip("link set m1 up");
    ns.ip("link set m1x up");
    // the uplinks' far ends live in a namespace of their own
    let far = Netns::new("uplinks-far");
    for u in ["up1", "up2"] {
        ns.ip(&format!(
            "link add {u} type veth peer name {u}x netns {}",
            far.name
        ));
        ns.ip(&format!("link set {u} up"));
        far.ip(&format!("link set {u}x up"));
    }
    let d = Daemon::start(&ns, CONFIG);
    wait_for("m1 released", || {
        let m = d.member("m1");
        if m["state"] == "up" {
            Ok(())
        } else {
            Err(m.to_string())
        }
    });
    let u = wait_uplinks(&d, "up");
    assert_eq!(
        (u["up"].as_u64(), u["min_up"].as_u64()),
        (Some(2), Some(1)),
        "{u}"
    );
    assert_eq!(u["interfaces"][0]["name"], "up1");
    assert!(u["recover_remaining_ms"].is_null(), "{u}");

    // one uplink lost: one of two is enough
    far.ip("link set up1x down");
    let ok = wait_until(WAIT, || uplinks(&d)["up"] == 1);
    assert!(ok, "{}", uplinks(&d));
    assert_eq!(uplinks(&d)["state"], "up");
    assert_eq!(d.member("m1")["state"], "up");

    // the last uplink lost: the member goes down at once
    let t = Instant::now();
    far.ip("link set up2x down");
    let held = wait_until(Duration::from_secs(1), || !ns.admin_up("m1"));
    assert!(
        held,
        "m1 not held within 1 s of losing the uplinks: {}",
        d.member("m1")
    );
    eprintln!(
        "member held {} ms after the last uplink went down",
        t.elapsed().as_millis()
    );
    let m = d.member("m1");
    assert_eq!(
        (m["state"].as_str(), m["reason"].as_str()),
        (Some("holding"), Some("uplinks-down")),
        "{m}"
    );
    wait_uplinks(&d, "down");
    assert!(d.log().contains("uplinks down"), "alert: {}", d.log());

    // an uplink back: recovering, still held, released after recover_delay
    far.ip("link set up1x up");
    let u = wait_uplinks(&d, "recovering");
    assert!(
        u["recover_remaining_ms"]
            .as_u64()
            .is_some_and(|ms| ms <= 2000),
        "{u}"
    );
    assert_eq!(d.member("m1")["reason"], "uplinks-down");
    assert!(!ns.admin_up("m1"));
    wait_uplinks(&d, "up");
    wait_for("m1 released after recover_delay", || {
        let m = d.member("m1");
        if m["state"] == "up" && ns.admin_up("m1") {
            Ok(())
        } else {
            Err(m.to_string())
        }
    });
}

#[test]
fn without_the_section_uplinks_are_disabled() {
    if !require_root("without_the_section_uplinks_are_disabled") {
        return;
    }
    let ns = Netns::new("uplinks-off");
    ns.bridge_up("br10");
    let d = Daemon::start(
        &ns,
        "[[gateway]]\nvlanif = 10\ninterface = \"br10\"\nmac = \"0000-5e00-0101\"\nipv4 = [\"192.0.2.1/24\"]\n",
    );
    let u = uplinks(&d);
    assert_eq!(u["state"], "disabled", "{u}");
    for k in ["up", "min_up", "recover_remaining_ms"] {
        assert!(
            u.get(k).is_some_and(Value::is_null),
            "{k} present and null: {u}"
        );
    }
    // DESIGN.md §5: every field always present, null when unknown
    let st = d.status();
    assert_eq!(st["drained"], false);
    for k in [
        "state",
        "address",
        "last_heard_ms",
        "rtt_us",
        "consistent",
        "mismatches",
        "heartbeats",
        "sync",
        "reason",
        "drained",
    ] {
        assert!(
            st["peer"].get(k).is_some(),
            "peer.{k} absent: {}",
            st["peer"]
        );
    }
    let g = &st["gateways"][0];
    for k in [
        "name",
        "kind",
        "id",
        "interface",
        "device",
        "mac",
        "ipv4",
        "ipv6",
        "link_local",
        "state",
        "reason",
        "hold_remaining_ms",
        "up_delay_ms",
        "arp",
        "nd",
        "corrections",
        "bypass",
    ] {
        assert!(g.get(k).is_some(), "gateway.{k} absent: {g}");
    }
    assert!(g["bypass"].is_null(), "a VLANIF's bypass is null");
}
