//! Restart (DESIGN.md §2 ownership, §3 run): after `kill -9` a new daemon adopts
//! its devices without a flap (no netlink change to an up gateway), does not
//! hold members again, reports `up` at once, and deletes stale devices of
//! gateways no longer configured.

mod common;

use common::*;
use std::sync::Arc;

const CONFIG: &str = r#"
[mlag]
members = ["m1"]
member_up_delay = "3s"

[[gateway]]
vlanif = 10
interface = "br10"
mac = "0000-5e00-0101"
ipv4 = ["192.0.2.1/24", "192.0.2.129/25"]
ipv6 = ["2001:db8:10::1/64", "2001:db8:11::/64 eui-64"]
up_delay = "1s"

[[gateway]]
vbdif = 5010
interface = "br5010"
mac = "0000-5e00-0102"
ipv4 = ["198.51.100.1/24"]
vxlan = { device = "vx5010", bypass_vtep = "203.0.113.2" }
"#;

/// Strings whose appearance in `ip monitor` output means dagw touched a gateway.
const GATEWAY_TRACES: [&str; 11] = [
    "gw10",
    "gwb5010",
    "00:00:5e:00:01:01",
    "00:00:5e:00:01:02",
    "192.0.2.1/",
    "192.0.2.129/",
    "198.51.100.1/",
    "2001:db8:10::1/",
    "2001:db8:11:0:200:5eff:fe00:101/",
    "fe80::200:5eff:fe00:10",
    "vx5010",
];

#[test]
fn kill9_restart_adopts_without_changes() {
    if !require_root("kill9_restart_adopts_without_changes") {
        return;
    }
    let ns = Netns::new("rst-adopt");
    ns.bridge_up("br10");
    ns.vxlan_bd("br5010", "vx5010", 5010);
    ns.ip("link add m1 type veth peer name m1x");
    ns.ip("link set m1 up");
    ns.ip("link set m1x up");

    let work = Arc::new(Workdir::new());
    work.write_config(CONFIG);
    let d = Daemon::spawn(&ns, work.clone());
    d.wait_gateway("vlanif10", "up", None);
    d.wait_gateway("vbdif5010", "up", None);
    wait_for("m1 released after the first-start hold", || {
        let m = d.member("m1");
        if m["state"] == "up" {
            Ok(())
        } else {
            Err(m.to_string())
        }
    });
    assert!(ns.admin_up("m1"));
    let idx10 = ns.ifindex("gw10");
    let idx5010 = ns.ifindex("gwb5010");
    let fdb_before = ns.fdb();

    let mon = LineTap::ip_monitor(&ns);
    let k0 = mon.mark(&ns, 0);
    d.kill9();
    let d = Daemon::spawn(&ns, work.clone());

    // The first answer already shows everything up, nothing held.
    let s = d.status();
    for name in ["vlanif10", "vbdif5010"] {
        let g = gateway_of(&s, name);
        assert_eq!(g["state"], "up", "{name} up at once after restart: {g}");
        assert_eq!(g["corrections"], 0, "adoption is no correction: {g}");
    }
    let m = s["members"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["name"] == "m1"))
        .cloned()
        .unwrap_or_else(|| panic!("no member m1 in {s}"));
    assert_eq!(m["state"], "up", "member not held on restart: {m}");

    // One more round trip, then flush the kernel monitor.
    let _ = d.status();
    let k1 = mon.mark(&ns, 1);
    let lines = mon.lines();
    let changes: Vec<&String> = lines[k0 + 1..k1]
        .iter()
        .filter(|l| GATEWAY_TRACES.iter().any(|t| l.contains(t)) || l.contains(" m1"))
        .collect();
    assert!(
        changes.is_empty(),
        "netlink changes during restart: {changes:#?}"
    );
    assert_eq!(ns.ifindex("gw10"), idx10, "gw10 adopted, not recreated");
    assert_eq!(ns.ifindex("gwb5010"), idx5010, "gwb5010 adopted");
    assert!(ns.admin_up("m1"));
    assert!(!ns.protodown("gw10"));
    let mut a = fdb_before;
    let mut b = ns.fdb();
    a.retain(|l| !l.contains(" master "));
    b.retain(|l| !l.contains(" master "));
    a.sort();
    b.sort();
    assert_eq!(a, b, "static FDB entries unchanged");
}

#[test]
fn restart_deletes_stale_gateway_device() {
    if !require_root("restart_deletes_stale_gateway_device") {
        return;
    }
    let ns = Netns::new("rst-stale");
    ns.bridge_up("br10");
    ns.bridge_up("br20");
    let gw = |id: u32, mac: &str, ip: &str| {
        format!(
            "\n[[gateway]]\nvlanif = {id}\ninterface = \"br{id}\"\nmac = \"{mac}\"\nipv4 = [\"{ip}\"]\nup_delay = 0\n"
        )
    };
    let work = Arc::new(Workdir::new());
    work.write_config(
        &(gw(10, "0000-5e00-0101", "192.0.2.1/24") + &gw(20, "0000-5e00-0120", "198.51.100.1/24")),
    );
    let d = Daemon::spawn(&ns, work.clone());
    d.wait_gateway("vlanif20", "up", None);
    d.wait_gateway("vlanif10", "up", None);
    // An operator's macvlan on the same SVI, not dagw's.
    ns.ip("link add opmv link br20 address 02:00:00:00:20:01 type macvlan mode bridge");
    ns.ip("link set opmv up");
    let idx10 = ns.ifindex("gw10");
    d.kill9();

    work.write_config(&gw(10, "0000-5e00-0101", "192.0.2.1/24"));
    let d = Daemon::spawn(&ns, work.clone());
    wait_for("stale gw20 deleted", || {
        if ns.has_link("gw20") {
            Err("gw20 still there".into())
        } else {
            Ok(())
        }
    });
    wait_for("stale vMAC FDB entry on br20 deleted", || {
        let f = ns.fdb();
        if f.iter()
            .any(|l| l == "00:00:5e:00:01:20 dev br20 self permanent")
        {
            Err(format!("{f:#?}"))
        } else {
            Ok(())
        }
    });
    assert!(ns.has_link("opmv"), "the operator's macvlan stays");
    assert_eq!(ns.ifindex("gw10"), idx10, "the kept gateway is adopted");
    assert!(
        ns.fdb()
            .iter()
            .any(|l| l == "00:00:5e:00:01:01 dev br10 self permanent")
    );
    assert_eq!(d.gateway("vlanif10")["state"], "up");
}
