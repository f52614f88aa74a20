//! Unit tests of the whole pipeline: one test per rule of DESIGN.md §4 and the
//! seed, asserting the dotted key (and, where it matters, the position) of the
//! diagnostic an operator would see.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn ctx() -> LoadContext {
    LoadContext {
        hostname: "leafhost".into(),
    }
}

/// DESIGN.md §4's example, with the vxlan line moved to a VBDIF gateway (on a
/// VLANIF it is an error by the same section's rules).
pub(super) const EXAMPLE: &str = r#"[node]
name = "leaf1a"
platform = "generic"
socket = "/run/dagw/dagw.sock"
state_dir = "/run/dagw"

[peer]
local = "203.0.113.1"
address = "203.0.113.2"
port = 8742
interval = "1s"
multiplier = 3
key_file = "/etc/dagw/peer.key"
priority = 100
peer_link = "peerlink"

[mlag]
members = ["bond1", "bond2"]
member_up_delay = "240s"
member_min_delay = "30s"

[up_delay]
mode = "static"
min = "1s"
max = "120s"

[[gateway]]
name = "vlanif10"
vlanif = 10
interface = "br10"
mac = "0000-5e00-0101"
ipv4 = ["192.0.2.1/24", "192.0.2.129 255.255.255.128"]
ipv6 = ["2001:db8:10::1/64", "2001:db8:11::/64 eui-64"]
up_delay = "1s"
device = "gw10"

[[gateway]]
vbdif = 5010
interface = "vbdif5010"
mac = "0000-5e00-0101"
ipv4 = ["198.51.100.1/24"]
vxlan = { device = "vxlan5010", bypass_vtep = "203.0.113.2" }
"#;

const GW: &str = "[[gateway]]\nvlanif = 10\ninterface = \"br10\"\nmac = \"0000-5e00-0101\"\n";

fn ok(text: &str) -> (Config, Vec<Diagnostic>) {
    match parse_str(text, &ctx()) {
        Ok(r) => r,
        Err(d) => panic!("expected valid, got:\n{}", render_all(&d, "t.toml")),
    }
}

fn errs(text: &str) -> Vec<Diagnostic> {
    match parse_str(text, &ctx()) {
        Ok((c, w)) => panic!("expected errors, got {c:?} {w:?}"),
        Err(d) => d,
    }
}

/// The one error with `key`; fails if it is missing.
fn err_at(text: &str, key: &str) -> Diagnostic {
    let d = errs(text);
    d.iter()
        .find(|d| d.is_error() && d.key == key)
        .cloned()
        .unwrap_or_else(|| panic!("no error on {key}; got:\n{}", render_all(&d, "t.toml")))
}

fn warn_at(text: &str, key: &str) -> Diagnostic {
    let (_, w) = ok(text);
    w.iter()
        .find(|d| d.severity == Severity::Warning && d.key == key)
        .cloned()
        .unwrap_or_else(|| panic!("no warning on {key}; got:\n{}", render_all(&w, "t.toml")))
}

fn pos(d: &Diagnostic) -> (usize, usize) {
    (d.line, d.col)
}

fn gw(extra: &str) -> String {
    format!("{GW}{extra}")
}

#[test]
fn design_example_is_valid_and_typed() {
    let (c, w) = ok(EXAMPLE);
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.node.name, "leaf1a");
    let p = c.peer.as_ref().unwrap();
    assert_eq!(p.local, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)));
    assert_eq!(p.interval, Duration::from_secs(1));
    assert_eq!(p.peer_link.as_deref(), Some("peerlink"));
    assert!(!p.strict);
    let g = &c.gateways[0];
    assert_eq!(g.kind, GatewayKind::Vlanif(10));
    let v4: Vec<String> = g.ipv4.iter().map(ToString::to_string).collect();
    assert_eq!(v4, ["192.0.2.1/24", "192.0.2.129/25"]);
    let v6: Vec<String> = g.ipv6.iter().map(ToString::to_string).collect();
    assert_eq!(
        v6,
        ["2001:db8:10::1/64", "2001:db8:11:0:200:5eff:fe00:101/64"]
    );
    assert!(g.ipv6_enabled);
    assert_eq!(
        g.link_local().unwrap().to_string(),
        "fe80::200:5eff:fe00:101/64"
    );
    let b = &c.gateways[1];
    assert_eq!(b.name, "vbdif5010");
    assert_eq!(b.device, "gwb5010");
    assert_eq!(b.up_delay, Duration::ZERO);
    assert!(!b.ipv6_enabled);
    assert_eq!(b.vxlan.as_ref().unwrap().device, "vxlan5010");
}

#[test]
fn defaults_fill_an_almost_empty_file() {
    let (c, w) = ok(GW);
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.node.name, "leafhost");
    assert_eq!(c.node.platform, Platform::Generic);
    assert_eq!(c.node.socket, std::path::Path::new("/run/dagw/dagw.sock"));
    assert_eq!(c.node.state_dir, std::path::Path::new("/run/dagw"));
    assert!(c.peer.is_none());
    assert!(c.metrics.is_none());
    assert!(c.mlag.members.is_empty());
    assert_eq!(c.mlag.member_up_delay, Duration::from_secs(240));
    assert_eq!(c.mlag.member_min_delay, Duration::from_secs(30));
    assert_eq!(c.up_delay.mode, DelayMode::Static);
    assert_eq!(c.up_delay.min, Duration::from_secs(1));
    assert_eq!(c.up_delay.max, Duration::from_secs(120));
    let g = &c.gateways[0];
    assert_eq!(g.name, "vlanif10");
    assert_eq!(g.device, "gw10");
    assert_eq!(g.up_delay, Duration::from_secs(1));
    assert!(g.ipv4.is_empty() && !g.ipv6_enabled);
}

#[test]
fn peer_defaults_and_metrics() {
    let text = gw(
        "[peer]\nlocal = \"203.0.113.1\"\naddress = \"203.0.113.2\"\nstrict = true\n[metrics]\n",
    );
    let (c, _) = ok(&text);
    let p = c.peer.unwrap();
    assert_eq!(p.port, 8742);
    assert_eq!(p.interval, Duration::from_secs(1));
    assert_eq!(p.multiplier, 3);
    assert_eq!(p.priority, 100);
    assert_eq!(p.key_file, std::path::Path::new("/etc/dagw/peer.key"));
    assert!(p.strict);
    assert_eq!(c.metrics.unwrap().listen.to_string(), "127.0.0.1:9742");
    let (c, _) = ok(&gw("[metrics]\nlisten = \"[::1]:9100\"\n"));
    assert_eq!(c.metrics.unwrap().listen.to_string(), "[::1]:9100");
    err_at(&gw("[metrics]\nlisten = \"127.0.0.1\"\n"), "metrics.listen");
    err_at(
        &gw("[metrics]\nlisten = \"127.0.0.1:0\"\n"),
        "metrics.listen",
    );
}

#[test]
fn durations_in_all_forms() {
    for (v, ms) in [
        ("3", 3000),
        ("\"3\"", 3000),
        ("\"250ms\"", 250),
        ("\"2m\"", 120_000),
    ] {
        let (c, _) = ok(&gw(&format!("up_delay = {v}\n")));
        assert_eq!(c.gateways[0].up_delay, Duration::from_millis(ms), "{v}");
    }
    for v in [
        "-1",
        "\"-1s\"",
        "\"\"",
        "\"soon\"",
        "1.5",
        "\"99999999999999999999\"",
    ] {
        err_at(&gw(&format!("up_delay = {v}\n")), "gateway[0].up_delay");
    }
}

#[test]
fn unknown_keys_and_sections_are_reported_at_the_key() {
    let d = err_at(&gw("colour = \"red\"\n"), "gateway[0].colour");
    assert_eq!(pos(&d), (5, 1));
    assert!(d.allowed.as_deref().unwrap().contains("interface"));
    let d = err_at(&format!("[nodes]\nname = \"x\"\n{GW}"), "nodes");
    assert_eq!(pos(&d), (1, 2));
    assert!(d.allowed.as_deref().unwrap().contains("node"));
    err_at(
        &format!("[peer]\nlocal = \"203.0.113.1\"\naddress = \"203.0.113.2\"\ntimeout = 3\n{GW}"),
        "peer.timeout",
    );
    err_at(
        &gw("vxlan.device = \"v\"\nvxlan.bypass_vtep = \"203.0.113.2\"\nvxlan.x = 1\n"),
        "gateway[0].vxlan",
    );
    err_at(
        &format!("[mlag]\nmember = [\"bond1\"]\n{GW}"),
        "mlag.member",
    );
    err_at(
        &format!("[up_delay]\nmode = \"static\"\nmaximum = 3\n{GW}"),
        "up_delay.maximum",
    );
    err_at(&format!("top = 1\n{GW}"), "top");
    // A key that is not a bare word is quoted, so the line stays one line.
    let d = err_at(&gw("\"a\\nb\" = 1\n"), "gateway[0].\"a\\nb\"");
    assert!(!d.render("f").contains('\n'));
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let text = "[node]\nplatform = \"CE9999\"\n[peer]\nport = 0\n[[gateway]]\nvlanif = 0\nmac = \"01:00:5e:00:00:01\"\n";
    let d = errs(text);
    for key in [
        "node.platform",
        "peer.port",
        "peer.local",
        "peer.address",
        "gateway[0].vlanif",
        "gateway[0].mac",
        "gateway[0].interface",
    ] {
        assert!(d.iter().any(|x| x.key == key), "{key} missing in {d:?}");
    }
    // Sorted by position.
    let lines: Vec<usize> = d.iter().map(|x| x.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
}

#[test]
fn wrong_types() {
    let d = err_at(&gw("up_delay = true\n"), "gateway[0].up_delay");
    assert!(d.message.contains("found boolean"), "{d:?}");
    err_at(
        &GW.replace("vlanif = 10", "vlanif = \"10\""),
        "gateway[0].vlanif",
    );
    err_at(&gw("ipv4 = \"192.0.2.1/24\"\n"), "gateway[0].ipv4");
    err_at(&gw("ipv4 = [1]\n"), "gateway[0].ipv4[0]");
    err_at(&format!("node = 3\n{GW}"), "node");
    err_at(
        &format!("[mlag]\nmembers = \"bond1\"\n{GW}"),
        "mlag.members",
    );
    let text = gw(
        "[peer]\nlocal = \"203.0.113.1\"\naddress = \"203.0.113.2\"\nstrict = 1\nport = \"x\"\n",
    );
    err_at(&text, "peer.strict");
    err_at(&text, "peer.port");
    let d = err_at("[gateway]\nvlanif = 10\n", "gateway");
    assert!(d.message.contains("[[gateway]]"), "{d:?}");
}

#[test]
fn gateway_array_of_inline_tables_is_accepted() {
    let (c, _) = ok(
        "gateway = [{ vlanif = 10, interface = \"br10\", mac = \"0000-5e00-0101\" }, { vlanif = 11, interface = \"br11\", mac = \"0000-5e00-0101\" }]\n",
    );
    assert_eq!(c.gateways.len(), 2);
    err_at("gateway = [1]\n", "gateway[0]");
}

#[test]
fn missing_required_keys_point_at_the_header() {
    let text = "[node]\nname = \"a\"\n\n[[gateway]]\nvlanif = 10\n";
    let d = err_at(text, "gateway[0].interface");
    assert_eq!(pos(&d), (4, 1));
    let d = err_at(text, "gateway[0].mac");
    assert_eq!(pos(&d), (4, 1));
    let d = err_at(
        "[[gateway]]\ninterface = \"br10\"\nmac = \"0000-5e00-0101\"\n",
        "gateway[0].vlanif",
    );
    assert!(d.allowed.as_deref().unwrap().contains("vbdif"));
    let d = err_at(&gw("vbdif = 20\n"), "gateway[0].vbdif");
    assert_eq!(pos(&d), (5, 9));
    let d = err_at(
        &format!("{GW}\n[peer]\naddress = \"203.0.113.2\"\n"),
        "peer.local",
    );
    assert_eq!(pos(&d), (6, 1));
    err_at(
        &format!("{GW}[peer]\nlocal = \"203.0.113.1\"\n"),
        "peer.address",
    );
}

#[test]
fn id_ranges() {
    for (v, ok_) in [
        ("0", false),
        ("1", true),
        ("4094", true),
        ("4095", false),
        ("-3", false),
    ] {
        let text = GW.replace("vlanif = 10", &format!("vlanif = {v}"));
        if ok_ {
            ok(&text);
        } else {
            let d = err_at(&text, "gateway[0].vlanif");
            assert_eq!(d.allowed.as_deref(), Some("1-4094"));
        }
    }
    let vb = |id: &str| {
        format!(
            "[[gateway]]\nvbdif = {id}\ninterface = \"br10\"\nmac = \"0000-5e00-0101\"\nvxlan = {{ device = \"vx\", bypass_vtep = \"203.0.113.2\" }}\n"
        )
    };
    ok(&vb("16777215"));
    let d = err_at(&vb("16777216"), "gateway[0].vbdif");
    assert_eq!(d.allowed.as_deref(), Some("1-16777215"));
    err_at(&vb("0"), "gateway[0].vbdif");
}

fn two(second: &str) -> String {
    format!("{GW}{second}")
}

#[test]
fn duplicate_gateway_ids_names_devices() {
    let d = err_at(
        &two(
            "[[gateway]]\nvlanif = 10\ninterface = \"br11\"\nmac = \"0000-5e00-0101\"\nname = \"x\"\ndevice = \"gwx\"\n",
        ),
        "gateway[1].vlanif",
    );
    assert_eq!(pos(&d), (6, 10));
    assert!(d.message.contains("gateway[0] (line 2)"), "{d:?}");
    // The same number as vlanif and vbdif is not a duplicate: different kinds.
    ok(&two(
        "[[gateway]]\nvbdif = 10\ninterface = \"br11\"\nmac = \"0000-5e00-0101\"\nvxlan = { device = \"vx\", bypass_vtep = \"203.0.113.2\" }\n",
    ));
    // Explicit name equal to another's default name.
    let d = err_at(
        &two(
            "[[gateway]]\nvlanif = 11\nname = \"vlanif10\"\ninterface = \"br11\"\nmac = \"0000-5e00-0101\"\n",
        ),
        "gateway[1].name",
    );
    assert_eq!(pos(&d), (7, 8));
    let d = err_at(
        &two(
            "[[gateway]]\nvlanif = 11\ndevice = \"gw10\"\ninterface = \"br11\"\nmac = \"0000-5e00-0101\"\n",
        ),
        "gateway[1].device",
    );
    assert!(d.message.contains("\"gw10\""), "{d:?}");
    // A default name colliding with an explicit one is reported at the header.
    let d = err_at(
        "[[gateway]]\nvlanif = 11\nname = \"vlanif10\"\ninterface = \"br11\"\nmac = \"0000-5e00-0101\"\n[[gateway]]\nvlanif = 10\ninterface = \"br10\"\nmac = \"0000-5e00-0101\"\n",
        "gateway[1].name",
    );
    assert_eq!(pos(&d), (6, 1));
    assert!(d.message.contains("default"), "{d:?}");
}

#[test]
fn device_names() {
    let d = err_at(
        &gw("device = \"a-very-long-name16\"\n"),
        "gateway[0].device",
    );
    assert!(d.message.contains("at most 15"), "{d:?}");
    for bad in ["", ".", "..", "a/b", "a b", "a:b"] {
        err_at(&gw(&format!("device = \"{bad}\"\n")), "gateway[0].device");
    }
    err_at(&GW.replace("br10", "br 10"), "gateway[0].interface");
    err_at(
        &format!("{GW}[mlag]\nmembers = [\"ok\", \"bad/x\"]\n"),
        "mlag.members[1]",
    );
    ok(&gw("device = \"fifteen_chars_x\"\n"));
}

#[test]
fn duplicate_addresses_but_shared_vmac_is_fine() {
    let second = |v4: &str| {
        format!(
            "[[gateway]]\nvlanif = 11\ninterface = \"br11\"\nmac = \"0000-5e00-0101\"\nipv4 = [\"{v4}\"]\n"
        )
    };
    let first = gw("ipv4 = [\"192.0.2.1/24\"]\nipv6 = [\"2001:db8::1/64\"]\n");
    ok(&format!("{first}{}", second("198.51.100.1/24")));
    let d = err_at(
        &format!("{first}{}", second("192.0.2.1/25")),
        "gateway[1].ipv4[0]",
    );
    assert!(d.message.contains("gateway[0].ipv4[0]"), "{d:?}");
    assert_eq!(pos(&d), (11, 9));
    err_at(
        &gw("ipv4 = [\"192.0.2.1/24\", \"192.0.2.1 255.255.255.0 sub\"]\n"),
        "gateway[0].ipv4[1]",
    );
    err_at(
        &gw("ipv6 = [\"2001:db8::1/64\", \"2001:db8::1 64\"]\n"),
        "gateway[0].ipv6[1]",
    );
    // Two gateways sharing a vMAC both using eui-64 in one prefix collide.
    let e = "ipv6 = [\"2001:db8::/64 eui-64\"]\n";
    err_at(
        &format!(
            "{}[[gateway]]\nvlanif = 11\ninterface = \"br11\"\nmac = \"0000-5e00-0101\"\n{e}",
            gw(e)
        ),
        "gateway[1].ipv6[0]",
    );
}

#[test]
fn mac_rules() {
    let d = err_at(
        &GW.replace("0000-5e00-0101", "0100-5e00-0001"),
        "gateway[0].mac",
    );
    assert_eq!(
        d.render("f"),
        "f:4:7: error: gateway[0].mac: 0100-5e00-0001 is a multicast MAC; a gateway needs a unicast MAC (allowed: unicast, advised 0000-5e00-01XX or 0000-5e00-02XX)"
    );
    err_at(
        &GW.replace("0000-5e00-0101", "ff:ff:ff:ff:ff:ff"),
        "gateway[0].mac",
    );
    err_at(
        &GW.replace("0000-5e00-0101", "0000-0000-0000"),
        "gateway[0].mac",
    );
    err_at(
        &GW.replace("0000-5e00-0101", "0000-5e00-01"),
        "gateway[0].mac",
    );
    let (c, _) = ok(&GW.replace("0000-5e00-0101", "00:00:5E:00:02:0a"));
    assert_eq!(c.gateways[0].mac.to_string(), "00:00:5e:00:02:0a");
}

#[test]
fn prefix_and_mask_rules() {
    for bad in [
        "192.0.2.1/33",
        "192.0.2.1 255.0.255.0",
        "192.0.2.1",
        "192.0.2.0/24",
        "127.0.0.1/8",
        "224.0.0.5/24",
        "0.0.0.0/0",
    ] {
        err_at(&gw(&format!("ipv4 = [\"{bad}\"]\n")), "gateway[0].ipv4[0]");
    }
    let d = err_at(
        &gw("ipv4 = [\"192.0.2.1 255.0.255.0\"]\n"),
        "gateway[0].ipv4[0]",
    );
    assert!(d.message.contains("not contiguous"), "{d:?}");
    // `sub` on the primary is refused; on the others it is optional.
    err_at(&gw("ipv4 = [\"192.0.2.1/24 sub\"]\n"), "gateway[0].ipv4[0]");
    ok(&gw(
        "ipv4 = [\"192.0.2.1/24\", \"198.51.100.1 24 sub\", \"203.0.113.9/24\"]\n",
    ));
    for bad in [
        "2001:db8::1/129",
        "fe80::1/64",
        "ff02::1/64",
        "::/64",
        "2001:db8::/80 eui-64",
    ] {
        err_at(&gw(&format!("ipv6 = [\"{bad}\"]\n")), "gateway[0].ipv6[0]");
    }
    // An empty ipv6 list does not enable IPv6.
    let (c, _) = ok(&gw("ipv6 = []\n"));
    assert!(!c.gateways[0].ipv6_enabled);
}

#[test]
fn platform_gates() {
    let six = format!(
        "[node]\nplatform = \"CE6885-LL\"\n{}",
        gw("ipv6 = [\"2001:db8::1/64\"]\n")
    );
    let d = err_at(&six, "gateway[0].ipv6");
    assert!(d.message.contains("CE6885-LL"), "{d:?}");
    let vb = "[[gateway]]\nvbdif = 5010\ninterface = \"br10\"\nmac = \"0000-5e00-0101\"\nvxlan = { device = \"vx\", bypass_vtep = \"203.0.113.2\" }\n";
    for p in ["CE6820H", "CE6820H-K", "CE6820S", "CE6885-LL", "ce6820s"] {
        err_at(
            &format!("[node]\nplatform = \"{p}\"\n{vb}"),
            "gateway[0].vbdif",
        );
    }
    ok(&format!("[node]\nplatform = \"generic\"\n{vb}"));
    ok(&format!(
        "[node]\nplatform = \"CE6820H\"\n{}",
        gw("ipv6 = [\"2001:db8::1/64\"]\n")
    ));
    let d = err_at(
        &format!("[node]\nplatform = \"CE12800\"\n{GW}"),
        "node.platform",
    );
    assert_eq!(d.allowed.as_deref(), Some(Platform::ALLOWED));
}

#[test]
fn vxlan_rules() {
    let vb = "[[gateway]]\nvbdif = 5010\ninterface = \"br10\"\nmac = \"0000-5e00-0101\"\n";
    let d = err_at(vb, "gateway[0].vxlan");
    assert_eq!(pos(&d), (1, 1));
    err_at(
        &gw("vxlan = { device = \"vx\", bypass_vtep = \"203.0.113.2\" }\n"),
        "gateway[0].vxlan",
    );
    err_at(
        &format!("{vb}vxlan = {{ device = \"vx\" }}\n"),
        "gateway[0].vxlan.bypass_vtep",
    );
    err_at(
        &format!("{vb}vxlan = {{ bypass_vtep = \"203.0.113.2\" }}\n"),
        "gateway[0].vxlan.device",
    );
    err_at(
        &format!("{vb}vxlan = {{ device = \"vx\", bypass_vtep = \"nope\" }}\n"),
        "gateway[0].vxlan.bypass_vtep",
    );
    err_at(&format!("{vb}vxlan = \"vx\"\n"), "gateway[0].vxlan");
    // The sub-table form.
    let (c, _) = ok(&format!(
        "{vb}[gateway.vxlan]\ndevice = \"vxlan5010\"\nbypass_vtep = \"2001:db8::2\"\n"
    ));
    assert_eq!(c.gateways[0].vxlan.as_ref().unwrap().device, "vxlan5010");
}

#[test]
fn up_delay_range() {
    ok(&format!(
        "[mlag]\nmember_up_delay = \"7201\"\n{}",
        gw("up_delay = \"7200s\"\n")
    ));
    let d = err_at(&gw("up_delay = \"7201s\"\n"), "gateway[0].up_delay");
    assert_eq!(d.allowed.as_deref(), Some("0s to 2h"));
    ok(&gw("up_delay = 0\n"));
}

const PEER: &str = "[peer]\nlocal = \"203.0.113.1\"\naddress = \"203.0.113.2\"\n";

#[test]
fn peer_ranges() {
    let p = |extra: &str| format!("{GW}{PEER}{extra}\n");
    for (extra, key) in [
        ("interval = \"50ms\"", "peer.interval"),
        ("interval = \"11s\"", "peer.interval"),
        ("interval = 0", "peer.interval"),
        ("multiplier = 1", "peer.multiplier"),
        ("multiplier = 21", "peer.multiplier"),
        ("port = 0", "peer.port"),
        ("port = 65536", "peer.port"),
        ("priority = 256", "peer.priority"),
        ("priority = -1", "peer.priority"),
        ("local = \"x\"", "peer.local"),
        ("peer_link = \"a/b\"", "peer.peer_link"),
        ("key_file = \"\"", "peer.key_file"),
    ] {
        let text = if extra.starts_with("local") {
            format!("{GW}[peer]\naddress = \"203.0.113.2\"\n{extra}\n")
        } else {
            p(extra)
        };
        err_at(&text, key);
    }
    for extra in [
        "interval = \"100ms\"",
        "interval = \"10s\"",
        "multiplier = 2",
        "multiplier = 20",
        "priority = 0",
        "priority = 255",
        "port = 65535",
    ] {
        ok(&p(extra));
    }
    let d = err_at(&p("interval = \"50ms\""), "peer.interval");
    assert_eq!(d.allowed.as_deref(), Some("100ms to 10s"));
    let d = err_at(&p("port = 0"), "peer.port");
    assert_eq!(d.allowed.as_deref(), Some("1-65535"));
}

#[test]
fn peer_local_and_address_differ() {
    let text = format!("{GW}[peer]\nlocal = \"203.0.113.1\"\naddress = \"203.0.113.1\"\n");
    let d = err_at(&text, "peer.address");
    assert_eq!(pos(&d), (7, 11));
    err_at(
        &format!("{GW}[peer]\nlocal = \"203.0.113.1\"\naddress = \"2001:db8::2\"\n"),
        "peer.address",
    );
}

#[test]
fn member_up_delay_must_exceed_every_gateway_up_delay() {
    let text = format!(
        "[mlag]\nmember_up_delay = \"60s\"\n{}",
        gw("up_delay = \"60s\"\n")
    );
    let d = err_at(&text, "mlag.member_up_delay");
    assert_eq!(pos(&d), (2, 19));
    assert!(d.message.contains("gateway[0].up_delay 1m"), "{d:?}");
    assert_eq!(d.allowed.as_deref(), Some("longer than 1m"));
    ok(&format!(
        "[mlag]\nmember_up_delay = \"61s\"\n{}",
        gw("up_delay = \"60s\"\n")
    ));
    // The default member delay (240 s) against a long gateway delay: reported
    // at the [mlag] header, or line 1 without one.
    let d = err_at(&gw("up_delay = \"300s\"\n"), "mlag.member_up_delay");
    assert_eq!(pos(&d), (1, 1));
    assert!(d.message.contains("(default)"), "{d:?}");
    // Dynamic mode compares with up_delay.max, not the per-gateway delays.
    let dynamic = |mud: &str, max: &str| {
        format!("[mlag]\nmember_up_delay = \"{mud}\"\n[up_delay]\nmode = \"dynamic\"\n{max}{GW}")
    };
    err_at(&dynamic("100s", ""), "mlag.member_up_delay");
    err_at(&dynamic("100s", "max = \"100s\"\n"), "mlag.member_up_delay");
    ok(&dynamic("100s", "max = \"99s\"\n"));
    ok(&dynamic("121s", ""));
    // Static mode ignores up_delay.max.
    ok(&format!("[mlag]\nmember_up_delay = \"100s\"\n{GW}"));
}

#[test]
fn delay_ordering() {
    let d = err_at(
        &format!("[up_delay]\nmode = \"dynamic\"\nmin = \"200s\"\n{GW}"),
        "up_delay.min",
    );
    assert!(d.message.contains("max 2m (default)"), "{d:?}");
    err_at(
        &format!("[up_delay]\nmin = \"10s\"\nmax = \"5s\"\n{GW}"),
        "up_delay.min",
    );
    // Only max written: the default min shrinks to fit.
    let (c, _) = ok(&format!(
        "[up_delay]\nmode = \"dynamic\"\nmax = \"0s\"\n{GW}"
    ));
    assert_eq!(c.up_delay.min, Duration::ZERO);
    err_at(
        &format!("[up_delay]\nmax = \"7201s\"\n{GW}"),
        "up_delay.max",
    );
    err_at(
        &format!("[up_delay]\nmode = \"fast\"\n{GW}"),
        "up_delay.mode",
    );
    let d = err_at(
        &format!("[mlag]\nmember_up_delay = \"60s\"\nmember_min_delay = \"61s\"\n{GW}"),
        "mlag.member_min_delay",
    );
    assert_eq!(pos(&d), (3, 20));
    // Only member_up_delay written: the default floor shrinks to fit.
    let (c, _) = ok(&format!("[mlag]\nmember_up_delay = \"20s\"\n{GW}"));
    assert_eq!(c.mlag.member_min_delay, Duration::from_secs(20));
}

#[test]
fn member_names() {
    let d = err_at(
        &format!("[mlag]\nmembers = [\"bond1\", \"bond2\", \"bond1\"]\n{GW}"),
        "mlag.members[2]",
    );
    assert_eq!(pos(&d), (2, 30));
    err_at(
        &format!("[mlag]\nmembers = [\"br10\"]\n{GW}"),
        "gateway[0].interface",
    );
    err_at(
        &format!("[mlag]\nmembers = [\"gw10\"]\n{GW}"),
        "gateway[0].device",
    );
    err_at(&gw("device = \"br10\"\n"), "gateway[0].device");
    err_at(
        &format!("[mlag]\nmembers = [\"peerlink\"]\n{GW}{PEER}peer_link = \"peerlink\"\n"),
        "peer.peer_link",
    );
}

#[test]
fn warnings_do_not_fail() {
    let d = warn_at(
        &format!("[mlag]\nmember_up_delay = \"20s\"\n{GW}"),
        "mlag.member_up_delay",
    );
    assert_eq!(pos(&d), (2, 19));
    let d = warn_at(
        &GW.replace("0000-5e00-0101", "0200-0000-0001"),
        "gateway[0].mac",
    );
    assert!(d.message.contains("0200-0000-0001"), "{d:?}");
    let d = warn_at("[node]\nname = \"a\"\n", "gateway");
    assert_eq!(pos(&d), (1, 1));
    // One warning per distinct vMAC, not per gateway.
    let m = "0200-0000-0001";
    let text = format!(
        "{}[[gateway]]\nvlanif = 11\ninterface = \"br11\"\nmac = \"{m}\"\n",
        GW.replace("0000-5e00-0101", m)
    );
    let (_, w) = ok(&text);
    assert_eq!(w.len(), 1, "{w:?}");
    // Errors elsewhere: warnings still come back with them.
    let d = errs(&format!(
        "[mlag]\nmember_up_delay = \"20s\"\n{}",
        gw("up_delay = \"30s\"\n")
    ));
    assert!(d.iter().any(|x| x.severity == Severity::Warning));
    assert!(
        d.iter()
            .any(|x| x.is_error() && x.key == "mlag.member_up_delay")
    );
}

#[test]
fn node_section() {
    err_at(&format!("[node]\nname = \"\"\n{GW}"), "node.name");
    err_at(&format!("[node]\nname = \"a b\"\n{GW}"), "node.name");
    err_at(
        &format!("[node]\nsocket = \"dagw.sock\"\n{GW}"),
        "node.socket",
    );
    err_at(
        &format!("[node]\nsocket = \"/{}\"\n{GW}", "x".repeat(120)),
        "node.socket",
    );
    err_at(
        &format!("[node]\nstate_dir = \"run\"\n{GW}"),
        "node.state_dir",
    );
    let bad_host = LoadContext {
        hostname: String::new(),
    };
    let d = parse_str(GW, &bad_host).unwrap_err();
    assert!(d.iter().any(|d| d.key == "node.name"));
    assert!(parse_str(&format!("[node]\nname = \"x\"\n{GW}"), &bad_host).is_ok());
}

#[test]
fn syntax_errors_have_a_position() {
    let d = err_at("[node]\nname = \"x\n", "syntax");
    assert_eq!(pos(&d), (2, 10));
    let d = err_at("[node]\nname = \"a\"\nname = \"b\"\n", "syntax");
    assert_eq!(pos(&d), (3, 1));
    assert!(d.message.contains("name"), "{d:?}");
    err_at(&"a = [".repeat(200), "syntax");
}

#[test]
fn input_bounds() {
    let big = format!("{GW}# {}\n", "x".repeat(MAX_FILE_BYTES));
    let d = err_at(&big, "file");
    assert_eq!(pos(&d), (1, 1));
    let many = "[[gateway]]\n".repeat(MAX_GATEWAYS + 1);
    let d = err_at(&many, &format!("gateway[{MAX_GATEWAYS}]"));
    assert!(d.message.contains("too many"), "{d:?}");
    let addrs: Vec<String> = (0..300)
        .map(|i| format!("\"198.18.{}.{}/15\"", i / 200, i % 200 + 1))
        .collect();
    err_at(
        &gw(&format!("ipv4 = [{}]\n", addrs.join(","))),
        "gateway[0].ipv4",
    );
}

#[test]
fn scale_4094_vlanifs_sharing_one_vmac() {
    let mut text = String::from("[mlag]\nmembers = [\"bond1\"]\n");
    for v in 1..=4094u32 {
        text.push_str(&format!(
            "[[gateway]]\nvlanif = {v}\ninterface = \"br{v}\"\nmac = \"0000-5e00-0101\"\nipv4 = [\"198.18.{}.{}/30\"]\nipv6 = [\"2001:db8:{v:x}::/64 eui-64\"]\n",
            v / 64,
            (v % 64) * 4 + 1
        ));
    }
    let (c, w) = ok(&text);
    assert!(w.is_empty());
    assert_eq!(c.gateways.len(), 4094);
    assert_eq!(c.gateways[4093].device, "gw4094");
}

#[test]
fn render_all_is_one_line_per_diagnostic() {
    let d = errs("[[gateway]]\n");
    let out = render_all(&d, "x.toml");
    assert_eq!(out.lines().count(), d.len());
    assert!(
        out.lines()
            .all(|l| l.starts_with("x.toml:1:1: error: gateway[0].")),
        "{out}"
    );
}

fn write_key(dir: &std::path::Path, name: &str, body: &[u8], mode: u32) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn write_conf(dir: &std::path::Path, key_line: &str) -> std::path::PathBuf {
    let p = dir.join("dagw.toml");
    std::fs::write(
        &p,
        format!("{GW}\n[peer]\nlocal = \"203.0.113.1\"\naddress = \"203.0.113.2\"\n{key_line}\n"),
    )
    .unwrap();
    p
}

#[test]
fn key_file_rules() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_key(dir.path(), "good.key", b"0123456789abcdef\n", 0o600);
    assert_eq!(
        read_key_file(&good).unwrap().as_slice(),
        b"0123456789abcdef"
    );
    let crlf = write_key(dir.path(), "crlf.key", b"0123456789abcdef\r\n", 0o400);
    assert_eq!(read_key_file(&crlf).unwrap().len(), 16);
    // Only one newline is stripped.
    let two = write_key(dir.path(), "two.key", b"0123456789abcde\n\n", 0o600);
    assert_eq!(read_key_file(&two).unwrap().len(), 16);
    let short = write_key(dir.path(), "short.key", b"0123456789abcde\n", 0o600);
    assert!(matches!(
        read_key_file(&short),
        Err(KeyFileError::TooShort { len: 15, .. })
    ));
    let open = write_key(dir.path(), "open.key", b"0123456789abcdef", 0o644);
    assert!(matches!(
        read_key_file(&open),
        Err(KeyFileError::Permissive { mode: 0o644, .. })
    ));
    let g = write_key(dir.path(), "g.key", b"0123456789abcdef", 0o640);
    assert!(matches!(
        read_key_file(&g),
        Err(KeyFileError::Permissive { .. })
    ));
    assert!(matches!(
        read_key_file(&dir.path().join("none")),
        Err(KeyFileError::Io { .. })
    ));
    assert!(matches!(
        read_key_file(dir.path()),
        Err(KeyFileError::NotAFile {
            kind: "a directory",
            ..
        })
    ));
}

/// A FIFO at the key path is refused at once (opening it for reading would
/// block until a writer came: the load, or a reload on the event loop, hung).
#[test]
fn a_fifo_or_device_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.key");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = read_key_file(&fifo).unwrap_err();
    assert!(
        matches!(e, KeyFileError::NotAFile { kind: "a FIFO", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("it is a FIFO"), "{e}");
    let e = read_key_file(std::path::Path::new("/dev/zero")).unwrap_err();
    assert!(
        matches!(
            e,
            KeyFileError::NotAFile {
                kind: "a character device",
                ..
            }
        ),
        "{e}"
    );
}

/// A key file owned by another user (who could replace the secret) is refused.
#[test]
fn a_key_file_owned_by_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root to chown");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = write_key(dir.path(), "k.key", b"0123456789abcdef", 0o600);
    std::os::unix::fs::chown(&k, Some(4242), None).unwrap();
    let e = read_key_file(&k).unwrap_err();
    assert!(matches!(e, KeyFileError::Owner { uid: 4242, .. }), "{e}");
    assert!(e.to_string().contains("chown root"), "{e}");
    std::os::unix::fs::chown(&k, Some(0), None).unwrap();
    assert!(read_key_file(&k).is_ok());
}

#[test]
fn load_checks_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let c = LoadContext {
        hostname: "h".into(),
    };
    let key = write_key(dir.path(), "peer.key", b"0123456789abcdef0123\n", 0o600);
    let conf = write_conf(dir.path(), &format!("key_file = \"{}\"", key.display()));
    let (cfg, w) = load_with(&conf, &c).unwrap();
    assert!(w.is_empty());
    assert_eq!(cfg.peer.unwrap().key_file, key);

    // Relative paths are relative to the config file.
    let conf = write_conf(dir.path(), "key_file = \"peer.key\"");
    let (cfg, _) = load_with(&conf, &c).unwrap();
    assert_eq!(cfg.peer.unwrap().key_file, key);

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let Err(LoadFailure::Invalid(d)) = load_with(&conf, &c) else {
        panic!("0644 key accepted")
    };
    let d = d.iter().find(|d| d.key == "peer.key_file").unwrap();
    assert_eq!((d.line, d.col), (9, 12));
    assert!(d.message.contains("chmod 600"), "{d:?}");

    // Defaulted key_file: reported at the [peer] header.
    let conf = write_conf(dir.path(), "");
    if std::path::Path::new("/etc/dagw/peer.key").exists() {
        return;
    }
    let Err(LoadFailure::Invalid(d)) = load_with(&conf, &c) else {
        panic!("missing key accepted")
    };
    let d = d.iter().find(|d| d.key == "peer.key_file").unwrap();
    assert_eq!((d.line, d.col), (6, 1));
}

#[test]
fn load_io_and_encoding_failures() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        load_with(&dir.path().join("missing.toml"), &ctx()),
        Err(LoadFailure::Io { .. })
    ));
    let p = dir.path().join("bin.toml");
    std::fs::write(&p, b"[node]\nname = \"\xff\"\n").unwrap();
    let Err(LoadFailure::Invalid(d)) = load_with(&p, &ctx()) else {
        panic!("non-UTF-8 accepted")
    };
    assert_eq!((d[0].line, d[0].col, d[0].key.as_str()), (2, 9, "file"));
    // No [peer]: no key file needed.
    let p = dir.path().join("ok.toml");
    std::fs::write(&p, GW).unwrap();
    assert!(load_with(&p, &ctx()).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = parse_str(&s, &ctx());
    }

    #[test]
    fn toml_shaped_text_never_panics(
        s in "(\\[{1,2}(node|peer|mlag|up_delay|gateway|metrics|gateway\\.vxlan)\\]{1,2}\n|[a-z_]{1,10} = (\"[ -~]{0,20}\"|-?[0-9]{1,20}|true|\\[\"[0-9a-f:./ ]{0,20}\"\\]|\\{ device = \"x\" \\})\n){0,20}"
    ) {
        if let Err(d) = parse_str(&s, &ctx()) {
            prop_assert!(d.iter().any(Diagnostic::is_error));
            for x in &d {
                prop_assert!(x.line >= 1 && x.col >= 1);
                prop_assert!(!x.render("f").contains('\n'));
            }
        }
    }

    #[test]
    fn mutated_example_never_panics(cut in 0usize..2000, len in 0usize..40, ins in "[\\[\\]{}=\",.\n a-z0-9]{0,5}") {
        let mut t = EXAMPLE.to_string();
        let mut start = cut.min(t.len());
        while !t.is_char_boundary(start) { start -= 1; }
        let mut end = (start + len).min(t.len());
        while !t.is_char_boundary(end) { end -= 1; }
        t.replace_range(start..end, &ins);
        let _ = parse_str(&t, &ctx());
    }

    #[test]
    fn valid_vlanif_ids_round_trip(id in 1u16..=4094, mac in any::<[u8; 6]>()) {
        let mut mac = mac;
        mac[0] &= 0xfe;
        prop_assume!(mac != [0; 6]);
        let text = format!(
            "[[gateway]]\nvlanif = {id}\ninterface = \"br\"\nmac = \"{}\"\n",
            crate::core::mac::Mac(mac)
        );
        let (c, _) = parse_str(&text, &ctx()).map_err(|d| TestCaseError::fail(format!("{d:?}")))?;
        prop_assert_eq!(c.gateways[0].kind, GatewayKind::Vlanif(id));
        prop_assert_eq!(c.gateways[0].mac.0, mac);
        let expected_device = format!("gw{id}");
        prop_assert_eq!(&c.gateways[0].device, &expected_device);
    }
}

#[test]
fn a_bad_key_file_value_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), "key_file = 3");
    let Err(LoadFailure::Invalid(d)) = load_with(&conf, &ctx()) else {
        panic!("key_file = 3 accepted")
    };
    let on_key: Vec<_> = d.iter().filter(|d| d.key == "peer.key_file").collect();
    assert_eq!(on_key.len(), 1, "{d:?}");
    assert!(on_key[0].message.contains("expected a string"), "{d:?}");
}

#[test]
fn load_refuses_oversized_files_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.toml");
    let mut body = GW.as_bytes().to_vec();
    body.extend(std::iter::repeat_n(0xe2u8, MAX_FILE_BYTES));
    std::fs::write(&p, body).unwrap();
    let Err(LoadFailure::Invalid(d)) = load_with(&p, &ctx()) else {
        panic!("oversized file accepted")
    };
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].key, "file");
    assert!(d[0].message.contains("larger than"), "{d:?}");
}

#[test]
fn an_empty_ipv6_list_is_fine_on_a_platform_without_ipv6() {
    ok(&format!(
        "[node]\nplatform = \"CE6885-LL\"\n{}",
        gw("ipv6 = []\n")
    ));
}

#[test]
fn previous_key_file_is_optional_and_must_differ_from_key_file() {
    let p = |extra: &str| format!("{GW}{PEER}{extra}\n");
    let (c, _) = ok(&p(""));
    assert_eq!(c.peer.unwrap().previous_key_file, None);
    let (c, _) = ok(&p("previous_key_file = \"/etc/dagw/peer.key.old\""));
    assert_eq!(
        c.peer.unwrap().previous_key_file.as_deref(),
        Some(std::path::Path::new("/etc/dagw/peer.key.old"))
    );
    err_at(&p("previous_key_file = \"\""), "peer.previous_key_file");
    err_at(&p("previous_key_file = 3"), "peer.previous_key_file");
    // Same as the written key_file, or as the defaulted one.
    let d = err_at(
        &p("key_file = \"/k\"\nprevious_key_file = \"/k\""),
        "peer.previous_key_file",
    );
    assert_eq!(pos(&d), (9, 21));
    let d = err_at(
        &p("previous_key_file = \"/etc/dagw/peer.key\""),
        "peer.previous_key_file",
    );
    assert!(d.message.contains("(default)"), "{d:?}");
}

#[test]
fn load_checks_the_previous_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let key = write_key(dir.path(), "peer.key", b"0123456789abcdef0123\n", 0o600);
    let old = write_key(dir.path(), "peer.key.old", b"fedcba9876543210\n", 0o400);
    let conf = write_conf(
        dir.path(),
        "key_file = \"peer.key\"\nprevious_key_file = \"peer.key.old\"",
    );
    let (cfg, w) = load_with(&conf, &c).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let peer = cfg.peer.unwrap();
    assert_eq!(peer.key_file, key);
    // Relative to the config file, like key_file.
    assert_eq!(peer.previous_key_file.as_deref(), Some(old.as_path()));

    // Checked like key_file, reported on its own key and position.
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let Err(LoadFailure::Invalid(d)) = load_with(&conf, &c) else {
        panic!("0644 previous key accepted")
    };
    assert!(!d.iter().any(|d| d.key == "peer.key_file"), "{d:?}");
    let e = d
        .iter()
        .find(|d| d.key == "peer.previous_key_file")
        .unwrap();
    assert_eq!((e.line, e.col), (10, 21));
    assert!(e.message.contains("chmod 600"), "{e:?}");
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600)).unwrap();
    for (body, what) in [
        (&b"short\n"[..], "too short"),
        (&[b'x'; 70_000][..], "too large"),
    ] {
        std::fs::write(&old, body).unwrap();
        let Err(LoadFailure::Invalid(d)) = load_with(&conf, &c) else {
            panic!("{what} previous key accepted")
        };
        assert!(d.iter().any(|d| d.key == "peer.previous_key_file"), "{d:?}");
    }
    std::fs::remove_file(&old).unwrap();
    let Err(LoadFailure::Invalid(d)) = load_with(&conf, &c) else {
        panic!("missing previous key accepted")
    };
    assert!(d.iter().any(|d| d.key == "peer.previous_key_file"), "{d:?}");
    let conf_dir = write_conf(
        dir.path(),
        "key_file = \"peer.key\"\nprevious_key_file = \".\"",
    );
    let Err(LoadFailure::Invalid(d)) = load_with(&conf_dir, &c) else {
        panic!("directory as previous key accepted")
    };
    assert!(d.iter().any(|d| d.key == "peer.previous_key_file"), "{d:?}");

    // The same file as key_file, spelt the same or differently: one error.
    for line in [
        "key_file = \"peer.key\"\nprevious_key_file = \"peer.key\"".to_string(),
        format!(
            "key_file = \"peer.key\"\nprevious_key_file = \"{}\"",
            key.display()
        ),
        "key_file = \"peer.key\"\nprevious_key_file = \"./peer.key\"".to_string(),
    ] {
        let conf = write_conf(dir.path(), &line);
        let Err(LoadFailure::Invalid(d)) = load_with(&conf, &c) else {
            panic!("previous key = key accepted: {line}")
        };
        let on_key: Vec<_> = d
            .iter()
            .filter(|d| d.key == "peer.previous_key_file")
            .collect();
        assert_eq!(on_key.len(), 1, "{line}: {d:?}");
        assert_eq!((on_key[0].line, on_key[0].col), (10, 21), "{line}");
        assert!(on_key[0].message.contains("key_file"), "{d:?}");
    }
}
