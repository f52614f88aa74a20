//! Drift (DESIGN.md §1.1, §4): outside changes to what dagw enforces are undone
//! from netlink events, and each one counts in the gateway's `corrections`.

mod common;

use common::*;

const VLANIF: &str = r#"
[[gateway]]
vlanif = 10
interface = "br10"
mac = "0000-5e00-0101"
ipv4 = ["192.0.2.1/24", "192.0.2.129/25"]
ipv6 = ["2001:db8:10::1/64"]
up_delay = "0s"
"#;

const ALL_ADDRS: [&str; 4] = [
    "192.0.2.1/24",
    "192.0.2.129/25",
    "2001:db8:10::1/64",
    "fe80::200:5eff:fe00:101/64",
];

fn vlanif_lab(test: &str, body: &str) -> (Netns, Daemon) {
    let ns = Netns::new(test);
    ns.bridge_up("br10");
    let d = Daemon::start(&ns, body);
    d.wait_gateway("vlanif10", "up", None);
    assert_eq!(d.corrections("vlanif10"), 0, "no corrections before drift");
    (ns, d)
}

/// Wait until `restored()` holds and `corrections` of `gw` exceeds `before`.
fn wait_corrected(d: &Daemon, gw: &str, before: u64, what: &str, restored: impl Fn() -> bool) {
    wait_for(what, || {
        let c = d.corrections(gw);
        let ok = restored();
        if ok && c > before {
            Ok(())
        } else {
            Err(format!("restored={ok} corrections={c} (before {before})"))
        }
    });
}

fn has_all_addrs(ns: &Netns, dev: &str) -> bool {
    let have = ns.addr_list(dev);
    ALL_ADDRS.iter().all(|a| have.iter().any(|h| h == a))
}

#[test]
fn deleted_addresses_are_restored() {
    if !require_root("deleted_addresses_are_restored") {
        return;
    }
    let (ns, d) = vlanif_lab("drf-addr", VLANIF);
    for addr in [
        "192.0.2.129/25",
        "2001:db8:10::1/64",
        "fe80::200:5eff:fe00:101/64",
    ] {
        let c0 = d.corrections("vlanif10");
        ns.ip(&format!("addr del {addr} dev gw10"));
        wait_corrected(&d, "vlanif10", c0, &format!("{addr} restored"), || {
            ns.addr_list("gw10").iter().any(|a| a == addr)
        });
        if addr.contains(':') {
            let (_, a) = ns
                .addrs("gw10")
                .into_iter()
                .find(|(c, _)| c == addr)
                .unwrap();
            assert_eq!(a["nodad"], true, "restored {addr} is nodad: {a}");
        }
    }
    assert!(has_all_addrs(&ns, "gw10"));
    assert_eq!(d.gateway("vlanif10")["state"], "up");
}

#[test]
fn extra_address_is_removed() {
    if !require_root("extra_address_is_removed") {
        return;
    }
    let (ns, d) = vlanif_lab("drf-extra", VLANIF);
    let c0 = d.corrections("vlanif10");
    ns.ip("addr add 192.0.2.77/24 dev gw10");
    ns.ip("addr add 2001:db8:10::77/64 dev gw10 nodad");
    wait_corrected(&d, "vlanif10", c0, "extra addresses removed", || {
        let have = ns.addr_list("gw10");
        !have
            .iter()
            .any(|a| a.contains("::77") || a == "192.0.2.77/24")
    });
    assert!(has_all_addrs(&ns, "gw10"), "{:?}", ns.addr_list("gw10"));
}

#[test]
fn changed_mac_is_restored() {
    if !require_root("changed_mac_is_restored") {
        return;
    }
    let (ns, d) = vlanif_lab("drf-mac", VLANIF);
    let c0 = d.corrections("vlanif10");
    ns.ip("link set dev gw10 address 02:00:00:00:00:99");
    wait_corrected(&d, "vlanif10", c0, "vMAC restored", || {
        ns.link_json("gw10")
            .is_some_and(|l| l["address"] == "00:00:5e:00:01:01")
    });
}

#[test]
fn outside_protodown_is_cleared() {
    if !require_root("outside_protodown_is_cleared") {
        return;
    }
    let (ns, d) = vlanif_lab("drf-pd", VLANIF);
    let c0 = d.corrections("vlanif10");
    ns.ip("link set dev gw10 protodown on");
    wait_corrected(&d, "vlanif10", c0, "protodown cleared", || {
        !ns.protodown("gw10")
    });
    assert_eq!(d.gateway("vlanif10")["state"], "up");
}

#[test]
fn removed_vmac_fdb_entry_is_restored() {
    if !require_root("removed_vmac_fdb_entry_is_restored") {
        return;
    }
    let (ns, d) = vlanif_lab("drf-fdb", VLANIF);
    let entry = "00:00:5e:00:01:01 dev br10 self permanent";
    assert!(ns.fdb().iter().any(|l| l == entry));
    let c0 = d.corrections("vlanif10");
    ns.bridge("fdb del 00:00:5e:00:01:01 dev br10 self");
    wait_corrected(&d, "vlanif10", c0, "vMAC FDB entry restored", || {
        ns.fdb().iter().any(|l| l == entry)
    });
}

#[test]
fn renamed_device_is_renamed_back() {
    if !require_root("renamed_device_is_renamed_back") {
        return;
    }
    let (ns, d) = vlanif_lab("drf-ren", VLANIF);
    let idx = ns.ifindex("gw10");
    let c0 = d.corrections("vlanif10");
    ns.ip("link set dev gw10 name gwstolen");
    wait_corrected(&d, "vlanif10", c0, "gw10 renamed back", || {
        ns.has_link("gw10") && !ns.has_link("gwstolen")
    });
    assert_eq!(ns.ifindex("gw10"), idx, "renamed back, not recreated");
    wait_for("addresses after rename", || {
        if has_all_addrs(&ns, "gw10") {
            Ok(())
        } else {
            Err(format!("{:?}", ns.addr_list("gw10")))
        }
    });
}

#[test]
fn deleted_up_device_comes_back_up_without_hold() {
    if !require_root("deleted_up_device_comes_back_up_without_hold") {
        return;
    }
    // A real up_delay, so that a (wrong) new hold would be visible.
    let body = VLANIF.replace(r#"up_delay = "0s""#, r#"up_delay = "2s""#);
    let (ns, d) = vlanif_lab("drf-del", &body);
    let idx = ns.ifindex("gw10");
    let mon = LineTap::dagw_monitor(&d.work);
    let kmon = LineTap::spawn(
        std::process::Command::new("ip").args(["-d", "-n", &ns.name, "monitor", "link", "address"]),
    );
    kmon.mark(&ns, 0);
    let c0 = d.corrections("vlanif10");

    ns.ip("link del dev gw10");
    wait_corrected(&d, "vlanif10", c0, "gw10 recreated", || {
        ns.link_json("gw10")
            .is_some_and(|l| l["ifindex"].as_u64() != Some(idx))
            && has_all_addrs(&ns, "gw10")
            && !ns.protodown("gw10")
    });
    let g = d.gateway("vlanif10");
    assert_eq!(g["state"], "up", "{g}");
    let l = ns.link_json("gw10").unwrap();
    assert_eq!(l["address"], "00:00:5e:00:01:01");
    assert_eq!(l["ifalias"], "dagw:vlanif10");
    assert_eq!(l["linkinfo"]["info_data"]["mode"], "private");
    assert_eq!(l["inet6_addr_gen_mode"], "none");

    // Flush both monitors, then: no state change and no protodown on the way.
    let k1 = kmon.mark(&ns, 1);
    mon.wait_json("drift-corrected for the deletion", |v| {
        v["id"] == "drift-corrected" && v["object"] == "vlanif10"
    });
    let states: Vec<_> = mon
        .json_lines()
        .into_iter()
        .filter(|v| v["id"] == "gateway-state")
        .collect();
    assert!(states.is_empty(), "no state change expected: {states:#?}");
    let lines = kmon.lines();
    let pd: Vec<&String> = lines[..k1]
        .iter()
        .filter(|l| l.contains("protodown on"))
        .collect();
    assert!(pd.is_empty(), "recreated device was held: {pd:#?}");
}

const VBDIF: &str = r#"
[[gateway]]
vbdif = 5010
interface = "br5010"
mac = "0000-5e00-0102"
ipv4 = ["198.51.100.1/24"]
vxlan = { device = "vx5010", bypass_vtep = "203.0.113.2" }
"#;

const FLOOD: &str = "00:00:00:00:00:00 dev vx5010 dst 203.0.113.2 self permanent";
const OTHER_FLOOD: &str = "00:00:00:00:00:00 dev vx5010 dst 203.0.113.9 self permanent";

fn vbdif_lab(test: &str, other_flood: bool) -> (Netns, Daemon) {
    let ns = Netns::new(test);
    ns.vxlan_bd("br5010", "vx5010", 5010);
    if other_flood {
        ns.bridge("fdb append 00:00:00:00:00:00 dev vx5010 dst 203.0.113.9 self permanent");
    }
    let d = Daemon::start(&ns, VBDIF);
    d.wait_gateway("vbdif5010", "up", None);
    assert!(ns.fdb().iter().any(|l| l == FLOOD), "{:#?}", ns.fdb());
    (ns, d)
}

#[test]
fn removed_flood_entry_is_restored() {
    if !require_root("removed_flood_entry_is_restored") {
        return;
    }
    let (ns, d) = vbdif_lab("drf-fl1", false);
    let c0 = d.corrections("vbdif5010");
    ns.bridge("fdb del 00:00:00:00:00:00 dev vx5010 dst 203.0.113.2 self");
    wait_corrected(&d, "vbdif5010", c0, "bypass flood entry restored", || {
        ns.fdb().iter().any(|l| l == FLOOD)
    });
}

#[test]
fn removed_flood_entry_beside_another_is_restored() {
    if !require_root("removed_flood_entry_beside_another_is_restored") {
        return;
    }
    let (ns, d) = vbdif_lab("drf-fl2", true);
    let c0 = d.corrections("vbdif5010");
    ns.bridge("fdb del 00:00:00:00:00:00 dev vx5010 dst 203.0.113.2 self");
    assert!(ns.fdb().iter().any(|l| l == OTHER_FLOOD));
    wait_corrected(&d, "vbdif5010", c0, "bypass flood entry restored", || {
        ns.fdb().iter().any(|l| l == FLOOD)
    });
    assert!(
        ns.fdb().iter().any(|l| l == OTHER_FLOOD),
        "the operator's flood entry stays"
    );
}
