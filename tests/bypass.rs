//! VBDIF bypass tunnel health (issue 12 item 1; DESIGN.md §5 `bypass`): the
//! BD's vxlan device must exist, be a vxlan device, be a port of the BD's
//! bridge and carry the flood entry towards the peer's VTEP. Each fault is
//! shown in status and alerted (`bypass-tunnel`), its recovery too, and the
//! gateway keeps serving throughout. A VLANIF's `bypass` is null.

mod common;

use common::*;
use serde_json::Value;

const CONFIG: &str = r#"
[[gateway]]
vbdif = 5010
interface = "br5010"
mac = "0000-5e00-0101"
ipv4 = ["198.51.100.1/24"]
vxlan = { device = "vxlan5010", bypass_vtep = "203.0.113.2" }

[[gateway]]
vlanif = 10
interface = "br10"
mac = "0000-5e00-0101"
ipv4 = ["192.0.2.1/24"]
up_delay = "0s"
"#;

fn bypass(d: &Daemon) -> Value {
    d.gateway("vbdif5010")["bypass"].clone()
}

fn wait_bypass(d: &Daemon, state: &str) {
    wait_for(&format!("bypass {state}"), || {
        let b = bypass(d);
        if b["state"] == state {
            Ok(())
        } else {
            Err(b.to_string())
        }
    });
}

fn wait_alert(mon: &LineTap, state: &str) -> Value {
    mon.wait_json(&format!("bypass-tunnel {state}"), |v| {
        v["id"] == "bypass-tunnel" && v["state"] == state
    })
}

#[test]
fn bypass_tunnel_faults_are_reported_and_the_gateway_keeps_serving() {
    if !require_root("bypass_tunnel_faults_are_reported_and_the_gateway_keeps_serving") {
        return;
    }
    let ns = Netns::new("bypass");
    ns.bridge_up("br10");
    ns.vxlan_bd("br5010", "vxlan5010", 5010);
    // another BD port keeps the bridge's carrier while the vxlan device goes
    ns.veth_on("br5010", "bdp", "bdq");
    let d = Daemon::start(&ns, CONFIG);
    d.wait_gateway("vbdif5010", "up", None);
    wait_bypass(&d, "ok");
    assert_eq!(bypass(&d)["device"], "vxlan5010");
    assert!(
        d.gateway("vlanif10")["bypass"].is_null(),
        "a VLANIF has no bypass tunnel"
    );
    let mon = LineTap::dagw_monitor(&d.work);

    // taken out of the BD
    ns.ip("link set vxlan5010 nomaster");
    wait_bypass(&d, "not-in-bd");
    let a = wait_alert(&mon, "not-in-bd");
    assert_eq!(a["kind"], "alert", "{a}");
    assert_eq!(
        d.gateway("vbdif5010")["state"],
        "up",
        "the gateway keeps serving"
    );

    // back: recovered
    ns.ip("link set vxlan5010 master br5010");
    wait_bypass(&d, "ok");
    let r = wait_alert(&mon, "ok");
    assert_eq!(r["kind"], "state", "{r}");

    // deleted
    ns.ip("link del vxlan5010");
    wait_bypass(&d, "missing");
    wait_alert(&mon, "missing");

    // a device of that name that is no vxlan device
    ns.ip("link add vxlan5010 type veth peer name vxq");
    ns.ip("link set vxlan5010 master br5010");
    ns.ip("link set vxlan5010 up");
    wait_bypass(&d, "not-vxlan");
    wait_alert(&mon, "not-vxlan");
    assert_eq!(
        d.gateway("vbdif5010")["state"],
        "up",
        "the gateway keeps serving"
    );
}
