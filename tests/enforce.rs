//! Enforcement (DESIGN.md §2, §4): what `dagw run` builds in the kernel for a
//! VLANIF and a VBDIF gateway, checked exactly with `ip -d -j link`, `ip -j addr`,
//! sysctl and `bridge fdb`; and a gateway whose SVI appears later.

mod common;

use common::*;
use std::collections::BTreeSet;

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The macvlan `dev` is exactly dagw's: macvlan mode private on `lower`, the vMAC,
/// alias `dagw:<gateway>`, addrgenmode none.
fn assert_gateway_device(ns: &Netns, dev: &str, lower: &str, mac: &str, gateway: &str) {
    let l = ns
        .link_json(dev)
        .unwrap_or_else(|| panic!("no device {dev}"));
    assert_eq!(l["linkinfo"]["info_kind"], "macvlan", "{dev}: {l}");
    assert_eq!(l["linkinfo"]["info_data"]["mode"], "private", "{dev}: {l}");
    assert_eq!(l["link"], lower, "{dev} lower: {l}");
    assert_eq!(l["address"], mac, "{dev} MAC: {l}");
    assert_eq!(l["ifalias"], format!("dagw:{gateway}"), "{dev} alias: {l}");
    assert_eq!(l["inet6_addr_gen_mode"], "none", "{dev} addrgenmode: {l}");
    assert!(
        l["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{dev} admin up: {l}"
    );
}

fn assert_sysctls(ns: &Netns, dev: &str, svi: &str) {
    for (k, want) in [
        (format!("net.ipv4.conf.{dev}.arp_ignore"), "1"),
        (format!("net.ipv4.conf.{dev}.arp_announce"), "2"),
        (
            format!("net.ipv4.conf.{dev}.ignore_routes_with_linkdown"),
            "1",
        ),
        (format!("net.ipv6.conf.{dev}.accept_dad"), "0"),
        (format!("net.ipv6.conf.{dev}.accept_ra"), "0"),
        (format!("net.ipv6.conf.{dev}.keep_addr_on_down"), "1"),
        (
            format!("net.ipv6.conf.{dev}.ignore_routes_with_linkdown"),
            "1",
        ),
        (format!("net.ipv4.conf.{svi}.arp_ignore"), "1"),
        (format!("net.ipv4.conf.{svi}.arp_announce"), "2"),
    ] {
        assert_eq!(ns.sysctl(&k), want, "sysctl {k}");
    }
}

#[test]
fn vlanif_gateway_is_built_exactly() {
    if !require_root("vlanif_gateway_is_built_exactly") {
        return;
    }
    let ns = Netns::new("enf-vlanif");
    ns.bridge_up("br10");
    ns.bridge_up("br20");
    let d = Daemon::start(
        &ns,
        r#"
[[gateway]]
vlanif = 10
interface = "br10"
mac = "0000-5e00-0101"
ipv4 = ["192.0.2.1/24", "192.0.2.129 255.255.255.128"]
ipv6 = ["2001:db8:10::1/64", "2001:db8:11::/64 eui-64"]
up_delay = "0s"

[[gateway]]
name = "users"
vlanif = 20
interface = "br20"
mac = "00:00:5e:00:01:01"
ipv4 = ["198.51.100.1/24"]
device = "vip20"
up_delay = 0
"#,
    );
    d.wait_gateway("vlanif10", "up", None);
    d.wait_gateway("users", "up", None);

    let g = d.gateway("vlanif10");
    assert_eq!(g["device"], "gw10");
    assert_eq!(g["kind"], "vlanif");
    assert_eq!(g["id"], 10);
    assert_eq!(g["reason"], serde_json::Value::Null);
    assert_eq!(
        g["ipv6"],
        serde_json::json!(["2001:db8:10::1/64", "2001:db8:11:0:200:5eff:fe00:101/64"])
    );
    assert_eq!(g["link_local"], "fe80::200:5eff:fe00:101/64");

    assert_gateway_device(&ns, "gw10", "br10", "00:00:5e:00:01:01", "vlanif10");
    assert!(!ns.protodown("gw10"), "an up gateway has no protodown");
    let want = set(&[
        "192.0.2.1/24",
        "192.0.2.129/25",
        "2001:db8:10::1/64",
        "2001:db8:11:0:200:5eff:fe00:101/64",
        "fe80::200:5eff:fe00:101/64",
    ]);
    let addrs = ns.addrs("gw10");
    let got: BTreeSet<String> = addrs.iter().map(|(c, _)| c.clone()).collect();
    assert_eq!(got, want, "addresses of gw10");
    for (cidr, a) in &addrs {
        if a["family"] == "inet6" {
            assert_eq!(a["nodad"], true, "{cidr} must carry nodad: {a}");
            assert_ne!(a["tentative"], true, "{cidr} must not be tentative: {a}");
        }
    }
    // The primary IPv4 address is the first one.
    let v4: Vec<&String> = addrs
        .iter()
        .filter(|(_, a)| a["family"] == "inet")
        .map(|(c, _)| c)
        .collect();
    assert_eq!(v4.first().map(|s| s.as_str()), Some("192.0.2.1/24"));
    let primary = addrs.iter().find(|(c, _)| c == "192.0.2.129/25").unwrap();
    assert_ne!(
        primary.1["secondary"], true,
        "different subnets: no secondary"
    );

    assert_sysctls(&ns, "gw10", "br10");
    let fdb = ns.fdb();
    assert!(
        fdb.iter()
            .any(|l| l == "00:00:5e:00:01:01 dev br10 self permanent"),
        "vMAC self permanent on br10: {fdb:#?}"
    );

    // The second gateway: own name and device, same vMAC on its own SVI.
    assert_gateway_device(&ns, "vip20", "br20", "00:00:5e:00:01:01", "users");
    assert_eq!(
        ns.addr_list("vip20")
            .into_iter()
            .collect::<BTreeSet<String>>(),
        set(&["198.51.100.1/24"]),
        "no IPv6 configured: no link-local either"
    );
    assert!(
        fdb.iter()
            .any(|l| l == "00:00:5e:00:01:01 dev br20 self permanent"),
        "vMAC self permanent on br20: {fdb:#?}"
    );
    assert_sysctls(&ns, "vip20", "br20");
    // Nothing else got a dagw device.
    assert!(!ns.has_link("gw20"));
}

#[test]
fn vbdif_gateway_appends_bypass_flood_entry() {
    if !require_root("vbdif_gateway_appends_bypass_flood_entry") {
        return;
    }
    let ns = Netns::new("enf-vbdif");
    ns.vxlan_bd("br5010", "vx5010", 5010);
    ns.bridge("fdb append 00:00:00:00:00:00 dev vx5010 dst 203.0.113.9 self permanent");
    let d = Daemon::start(
        &ns,
        r#"
[[gateway]]
vbdif = 5010
interface = "br5010"
mac = "0000-5e00-0102"
ipv4 = ["198.51.100.1/24"]
ipv6 = ["2001:db8:50::1/64"]
vxlan = { device = "vx5010", bypass_vtep = "203.0.113.2" }
"#,
    );
    d.wait_gateway("vbdif5010", "up", None);
    let g = d.gateway("vbdif5010");
    assert_eq!(g["kind"], "vbdif");
    assert_eq!(g["device"], "gwb5010");
    assert_eq!(g["up_delay_ms"], 0, "VBDIF default up_delay is 0 s");

    assert_gateway_device(&ns, "gwb5010", "br5010", "00:00:5e:00:01:02", "vbdif5010");
    assert_eq!(
        ns.addr_list("gwb5010")
            .into_iter()
            .collect::<BTreeSet<String>>(),
        set(&[
            "198.51.100.1/24",
            "2001:db8:50::1/64",
            "fe80::200:5eff:fe00:102/64"
        ])
    );
    assert_sysctls(&ns, "gwb5010", "br5010");
    let fdb = ns.fdb();
    for want in [
        "00:00:00:00:00:00 dev vx5010 dst 203.0.113.9 self permanent",
        "00:00:00:00:00:00 dev vx5010 dst 203.0.113.2 self permanent",
        "00:00:5e:00:01:02 dev br5010 self permanent",
    ] {
        assert!(
            fdb.iter().any(|l| l == want),
            "missing `{want}` in {fdb:#?}"
        );
    }
}

#[test]
fn gateway_waits_for_missing_svi() {
    if !require_root("gateway_waits_for_missing_svi") {
        return;
    }
    let ns = Netns::new("enf-nosvi");
    let d = Daemon::start(
        &ns,
        r#"
[[gateway]]
vlanif = 30
interface = "br30"
mac = "0000-5e00-0103"
ipv4 = ["203.0.113.65/26"]
up_delay = "0s"
"#,
    );
    d.wait_gateway("vlanif30", "down", Some("no-interface"));
    assert!(!ns.has_link("gw30"), "no device without its SVI");
    assert!(!ns.has_link("br30"), "dagw never creates SVIs");

    ns.bridge_up("br30");
    d.wait_gateway("vlanif30", "up", None);
    assert_gateway_device(&ns, "gw30", "br30", "00:00:5e:00:01:03", "vlanif30");
    assert_eq!(ns.addr_list("gw30"), vec!["203.0.113.65/26".to_string()]);
    assert!(
        ns.fdb()
            .iter()
            .any(|l| l == "00:00:5e:00:01:03 dev br30 self permanent")
    );
}

/// At start-up the kernel's queue holds the echoes of every change dagw made
/// while reconciling; a plan made half-way through it once saw a gateway
/// device before its ownership alias and "restored" it (EEXIST). 1000
/// gateways put many batch boundaries into that queue.
#[test]
fn start_up_of_many_gateways_corrects_nothing() {
    if !require_root("start_up_of_many_gateways_corrects_nothing") {
        return;
    }
    const N: u32 = 1000;
    let ns = Netns::new("enf-many");
    let mut bridges = String::new();
    let mut body = String::new();
    for i in 1..=N {
        bridges += &format!("link add br{i} type bridge\nlink set br{i} up\n");
        // 198.18.0.0/15 in /28s, gateway .1 of each
        let v4 = std::net::Ipv4Addr::from(0xC612_0000u32 + i * 16 + 1);
        body += &format!(
            "[[gateway]]\nvlanif = {i}\ninterface = \"br{i}\"\nmac = \"0000-5e00-0101\"\n\
             ipv4 = [\"{v4}/28\"]\nipv6 = [\"2001:db8:{i:x}::1/64\"]\nup_delay = \"0s\"\n"
        );
    }
    let script = std::env::temp_dir().join(format!("{}.batch", ns.name));
    std::fs::write(&script, bridges).expect("batch file");
    let o = ns.exec(&["ip", "-batch", script.to_str().expect("utf-8 path")]);
    let _ = std::fs::remove_file(&script);
    assert!(o.status.success(), "ip -batch: {o:?}");

    let d = Daemon::start(&ns, &body);
    // A marker behind the whole start-up backlog: its correction proves
    // every event before it was handled.
    ns.ip(&format!(
        "addr del 198.18.{}.{}/28 dev gw{N}",
        (N * 16) >> 8,
        (N * 16 + 1) & 255
    ));
    wait_for(&format!("gw{N}'s address restored"), || {
        if d.corrections(&format!("vlanif{N}")) == 1 {
            Ok(())
        } else {
            Err(d.gateway(&format!("vlanif{N}")).to_string())
        }
    });
    let s = d.status();
    let gateways = s["gateways"].as_array().expect("gateways");
    assert_eq!(gateways.len(), N as usize);
    let corrected: Vec<&str> = gateways
        .iter()
        .filter(|g| g["name"] != format!("vlanif{N}") && g["corrections"] != 0)
        .map(|g| g["name"].as_str().unwrap_or("?"))
        .collect();
    assert!(
        corrected.is_empty(),
        "start-up corrected its own work on {corrected:?}\nlog:\n{}",
        d.log()
    );
    assert!(
        gateways.iter().all(|g| g["state"] == "up"),
        "not all gateways up"
    );
    assert!(!d.log().contains("apply-failed"), "log:\n{}", d.log());
    // its 2000 devices go before the tests beside and after it build theirs
    drop(d);
    drop(ns);
    common::wait_kernel_settled();
}

/// A gateway with no up-delay on a serving SVI may serve at once: once up,
/// its carrier never drops (protodown takes the carrier away: `NO-CARRIER`
/// while admin up); one with a delay is held so.
#[test]
fn gateway_without_delay_never_loses_carrier() {
    if !require_root("gateway_without_delay_never_loses_carrier") {
        return;
    }
    let ns = Netns::new("enf-nohold");
    ns.bridge_up("br10");
    ns.bridge_up("br20");
    let mon = LineTap::ip_monitor(&ns);
    let k0 = mon.mark(&ns, 0);
    let d = Daemon::start(
        &ns,
        r#"
[[gateway]]
vlanif = 10
interface = "br10"
mac = "0000-5e00-0101"
ipv4 = ["192.0.2.1/24"]
up_delay = "0s"

[[gateway]]
vlanif = 20
interface = "br20"
mac = "0000-5e00-0102"
ipv4 = ["198.51.100.1/24"]
up_delay = "1s"
"#,
    );
    d.wait_gateway("vlanif10", "up", None);
    d.wait_gateway("vlanif20", "up", None);
    let k1 = mon.mark(&ns, 1);
    let lines = mon.lines();
    let seen = |dev: &str| -> Vec<&String> {
        lines[k0 + 1..k1]
            .iter()
            .filter(|l| l.contains(&format!(" {dev}@")) && l.contains("NO-CARRIER"))
            .collect()
    };
    assert!(
        seen("gw10").is_empty(),
        "gw10 was held: {:#?}",
        seen("gw10")
    );
    assert!(
        !seen("gw20").is_empty(),
        "gw20 (1 s up-delay) was never held; monitor:\n{:#?}",
        &lines[k0 + 1..k1]
    );
    assert!(!ns.protodown("gw10") && ns.admin_up("gw10"));
    assert_eq!(d.corrections("vlanif10"), 0);
}
