use super::*;
use crate::config::{GatewayKind, LoadContext};
use std::time::Duration;

/// `display current-configuration` style, built from the seed's commands.
const DISPLAYED: &str = "\
!Software Version V200R021C10SPC600
#
sysname leaf1a
#
dfs-group 1
 priority 150
 source ip 203.0.113.1 peer 203.0.113.2
 authentication-mode hmac-sha256 password %^%#secret%^%#
#
vlan batch 10 20 30
#
interface Vlanif10
 ip address 192.0.2.1 255.255.255.0
 ip address 192.0.2.129 255.255.255.128 sub
 ipv6 enable
 ipv6 address 2001:db8:10::1/64
 ipv6 address 2001:db8:11:: 64 eui-64
 mac-address 0000-5e00-0101
 protocol up-delay-time 3
#
interface Vlanif20
 description servers
 ip address 198.51.100.1 25
 mac-address 0000-5e00-0101
#
interface Vbdif5010
 ip address 198.51.100.129 255.255.255.128
 mac-address 0000-5e00-0102
 protocol up-delay-time 0
#
interface Eth-Trunk0
 mode lacp-static
 peer-link 1
#
interface Eth-Trunk1
 port link-type trunk
 dfs-group 1 m-lag 1
 m-lag up-delay 120
#
return
";

fn opts() -> Options {
    Options {
        key_file: Some("/etc/dagw/peer.key".into()),
        ..Options::default()
    }
}

fn parsed(toml: &str) -> crate::config::Config {
    let ctx = LoadContext {
        hostname: "h".into(),
    };
    match crate::config::parse_str(toml, &ctx) {
        Ok((c, _)) => c,
        Err(d) => panic!("generated config refused: {d:?}\n{toml}"),
    }
}

fn finding_at(imp: &Import, line: usize) -> &Finding {
    imp.findings
        .iter()
        .find(|f| f.line == line)
        .unwrap_or_else(|| panic!("no finding at line {line}: {:#?}", imp.findings))
}

#[test]
fn maps_every_value_of_the_displayed_config() {
    let imp = import(DISPLAYED, &opts());
    assert!(!imp.has_errors(), "{:#?}", imp.findings);
    let c = parsed(&imp.toml);
    assert_eq!(c.node.name, "leaf1a");
    let peer = c.peer.as_ref().expect("[peer]");
    assert_eq!(peer.local.to_string(), "203.0.113.1");
    assert_eq!(peer.address.to_string(), "203.0.113.2");
    assert_eq!(peer.priority, 150);
    assert_eq!(peer.peer_link.as_deref(), Some("bond0"));
    assert_eq!(c.mlag.members, ["bond1"]);
    assert_eq!(c.mlag.member_up_delay, Duration::from_secs(120));
    assert_eq!(c.gateways.len(), 3);
    let g10 = &c.gateways[0];
    assert_eq!(g10.kind, GatewayKind::Vlanif(10));
    assert_eq!(g10.interface.as_str(), "vlan10");
    assert_eq!(g10.mac.to_string(), "00:00:5e:00:01:01");
    let v4: Vec<String> = g10.ipv4.iter().map(|p| p.to_string()).collect();
    assert_eq!(v4, ["192.0.2.1/24", "192.0.2.129/25"]);
    let v6: Vec<String> = g10.ipv6.iter().map(|p| p.to_string()).collect();
    // eui-64 from 0000-5e00-0101: 0200:5eff:fe00:0101.
    assert_eq!(
        v6,
        ["2001:db8:10::1/64", "2001:db8:11:0:200:5eff:fe00:101/64"]
    );
    assert_eq!(g10.up_delay, Duration::from_secs(3));
    let g20 = &c.gateways[1];
    assert_eq!(g20.ipv4[0].to_string(), "198.51.100.1/25");
    assert_eq!(
        g20.up_delay,
        Duration::from_secs(1),
        "VRP default = dagw default"
    );
    let bd = &c.gateways[2];
    assert_eq!(bd.kind, GatewayKind::Vbdif(5010));
    assert_eq!(bd.interface.as_str(), "bd5010");
    assert_eq!(bd.up_delay, Duration::ZERO);
    let vx = bd.vxlan.as_ref().expect("vxlan");
    assert_eq!(vx.device, "vxlan5010");
    assert_eq!(vx.bypass_vtep.to_string(), "203.0.113.2");
    // The Huawei forms are carried over as written.
    assert!(
        imp.toml.contains("\"192.0.2.129 255.255.255.128 sub\""),
        "{}",
        imp.toml
    );
    assert!(
        imp.toml.contains("\"2001:db8:11:: 64 eui-64\""),
        "{}",
        imp.toml
    );
}

#[test]
fn unmapped_lines_are_reported_with_their_numbers() {
    let imp = import(DISPLAYED, &opts());
    let auth = finding_at(&imp, 8);
    assert_eq!(auth.severity, Severity::Warning);
    assert!(auth.text.starts_with("authentication-mode"));
    assert!(finding_at(&imp, 10).text.starts_with("vlan batch"));
    let desc = finding_at(&imp, 22);
    assert_eq!(desc.severity, Severity::Note);
    assert!(desc.message.contains("Vlanif20"), "{desc:?}");
    assert_eq!(finding_at(&imp, 32).text, "mode lacp-static");
    assert_eq!(finding_at(&imp, 36).text, "port link-type trunk");
    // Structure lines are not findings.
    for structure in [1, 2, 4, 44] {
        assert!(
            imp.findings.iter().all(|f| f.line != structure),
            "line {structure}: {:#?}",
            imp.findings
        );
    }
    assert_eq!(
        auth.render("sw.cfg")
            .split(": ")
            .take(2)
            .collect::<Vec<_>>(),
        ["sw.cfg:8", "warning"]
    );
}

#[test]
fn typed_commands_as_in_the_seed_are_read_too() {
    let typed = "\
system-view
interface vlanif 10
ip address 192.0.2.1 24
ipv6 enable
ipv6 address 2001:db8:10::1 64
mac-address 0000-5e00-0101
protocol up-delay-time 5
quit
interface vbdif 20
ip address 198.51.100.1 255.255.255.0
mac-address 0000-5e00-0101
commit
";
    let o = Options {
        bypass_vtep: Some("203.0.113.9".parse().unwrap()),
        ..opts()
    };
    let imp = import(typed, &o);
    assert!(!imp.has_errors(), "{:#?}", imp.findings);
    assert!(
        imp.findings.iter().all(|f| f.line == 0),
        "{:#?}",
        imp.findings
    );
    let c = parsed(&imp.toml);
    assert_eq!(c.gateways.len(), 2);
    assert_eq!(c.gateways[0].ipv6[0].to_string(), "2001:db8:10::1/64");
    assert_eq!(c.gateways[0].up_delay, Duration::from_secs(5));
    assert_eq!(
        c.gateways[1]
            .vxlan
            .as_ref()
            .unwrap()
            .bypass_vtep
            .to_string(),
        "203.0.113.9"
    );
    assert!(c.peer.is_none());
}

#[test]
fn malformed_lines_are_errors_and_not_imported() {
    let bad = "\
interface Vlanif10
 ip address 192.0.2.300 24
 ip address 192.0.2.1 255.0.255.0
 ipv6 address 2001:db8::1
 mac-address ffff-ffff-ffff
 mac-address 0000-5e00
 protocol up-delay-time 9000
 ip address 192.0.2.1 24
 mac-address 0000-5e00-0101
#
interface Vlanif5000
 ip address 198.51.100.1 24
#
dfs-group 1
 priority 999
 source ip 203.0.113.1 peer 2001:db8::2
#
interface Eth-Trunk1
 dfs-group 1 m-lag x
 m-lag up-delay soon
";
    let imp = import(bad, &opts());
    for line in [2, 3, 4, 5, 6, 7, 11, 15, 16, 19, 20] {
        assert_eq!(
            finding_at(&imp, line).severity,
            Severity::Error,
            "line {line}: {:#?}",
            imp.findings
        );
    }
    assert!(finding_at(&imp, 11).message.contains("1-4094"));
    // What was well-formed is still imported; the bad values are not.
    let c = parsed(&imp.toml);
    assert_eq!(c.gateways.len(), 1);
    assert_eq!(c.gateways[0].ipv4[0].to_string(), "192.0.2.1/24");
    assert_eq!(c.gateways[0].up_delay, Duration::from_secs(1));
}

#[test]
fn without_a_key_file_peer_is_commented_out_and_the_output_still_valid() {
    let imp = import(DISPLAYED, &Options::default());
    let c = parsed(&imp.toml);
    assert!(c.peer.is_none());
    assert!(imp.toml.contains("# [peer]"), "{}", imp.toml);
    assert!(
        imp.toml.contains("# local = \"203.0.113.1\""),
        "{}",
        imp.toml
    );
    assert!(
        imp.findings
            .iter()
            .any(|f| f.line == 5 && f.message.contains("--key-file")),
        "{:#?}",
        imp.findings
    );
}

#[test]
fn naming_options_and_renames() {
    let o = Options {
        vlanif_interface: "br{id}".into(),
        trunk_interface: "po{id}".into(),
        renames: vec![
            parse_rename("Eth-Trunk0=peerlink").unwrap(),
            parse_rename("vlanif20 = svi-twenty").unwrap(),
        ],
        ..opts()
    };
    let c = parsed(&import(DISPLAYED, &o).toml);
    assert_eq!(c.gateways[0].interface.as_str(), "br10");
    assert_eq!(c.gateways[1].interface.as_str(), "svi-twenty");
    assert_eq!(c.mlag.members, ["po1"]);
    assert_eq!(c.peer.unwrap().peer_link.as_deref(), Some("peerlink"));
    assert!(check_template("br").is_err());
    assert!(parse_rename("Eth-Trunk0").is_err());
}

#[test]
fn a_name_too_long_for_linux_is_an_error_and_the_gateway_commented_out() {
    let o = Options {
        vlanif_interface: "a-very-long-svi-name{id}".into(),
        ..opts()
    };
    let imp = import(DISPLAYED, &o);
    assert_eq!(finding_at(&imp, 12).severity, Severity::Error);
    let c = parsed(&imp.toml);
    assert!(
        c.gateways
            .iter()
            .all(|g| g.kind == GatewayKind::Vbdif(5010))
    );
}

#[test]
fn differing_member_delays_keep_the_longest_and_say_so() {
    let text = "\
interface Eth-Trunk1
 dfs-group 1 m-lag 1
 m-lag up-delay 60
#
interface Eth-Trunk2
 dfs-group 1 m-lag 2
 m-lag up-delay 300 auto-recovery interval 10
";
    let imp = import(text, &opts());
    let c = parsed(&imp.toml);
    assert_eq!(c.mlag.members, ["bond1", "bond2"]);
    assert_eq!(c.mlag.member_up_delay, Duration::from_secs(300));
    assert_eq!(finding_at(&imp, 3).severity, Severity::Warning);
    assert!(finding_at(&imp, 7).message.contains("auto-recovery"));
}

#[test]
fn gateway_without_mac_is_commented_out_with_a_warning() {
    let text = "interface Vlanif10\n ip address 192.0.2.1 24\n";
    let imp = import(text, &opts());
    assert!(imp.toml.contains("# vlanif = 10"), "{}", imp.toml);
    assert!(parsed(&imp.toml).gateways.is_empty());
    assert!(finding_at(&imp, 1).message.contains("mac-address"));
}

#[test]
fn a_second_primary_replaces_the_first_as_in_vrp() {
    let text = "interface Vlanif10\n ip address 192.0.2.129 25 sub\n ip address 192.0.2.1 25\n ip address 192.0.2.2 25\n mac-address 0000-5e00-0101\n";
    let imp = import(text, &opts());
    let c = parsed(&imp.toml);
    let v4: Vec<String> = c.gateways[0].ipv4.iter().map(|p| p.to_string()).collect();
    assert_eq!(v4, ["192.0.2.2/25", "192.0.2.129/25"]);
    assert_eq!(finding_at(&imp, 4).severity, Severity::Warning);
}

mod never_panics {
    use super::super::*;
    use proptest::prelude::*;

    /// Words that steer the parser into its views and value parsers.
    fn vrp_line() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            Just("interface".to_string()),
            Just("Vlanif10".to_string()),
            Just("vbdif".to_string()),
            Just("Eth-Trunk1".to_string()),
            Just("dfs-group".to_string()),
            Just("m-lag".to_string()),
            Just("up-delay".to_string()),
            Just("ip".to_string()),
            Just("ipv6".to_string()),
            Just("address".to_string()),
            Just("source".to_string()),
            Just("peer".to_string()),
            Just("sub".to_string()),
            Just("eui-64".to_string()),
            Just("mac-address".to_string()),
            Just("#".to_string()),
            "[0-9]{1,12}",
            "[0-9a-f:./-]{0,20}",
            "\\PC{0,8}",
        ];
        (0usize..3, prop::collection::vec(word, 0..6))
            .prop_map(|(indent, words)| format!("{}{}", " ".repeat(indent), words.join(" ")))
    }

    proptest! {
        #[test]
        fn on_vrp_like_text(lines in prop::collection::vec(vrp_line(), 0..40)) {
            let text = lines.join("\n");
            let imp = import(&text, &Options::default());
            // Whatever it prints, dagw's own parser reads it as TOML.
            prop_assert!(imp.toml.parse::<toml_edit::DocumentMut>().is_ok());
        }

        #[test]
        fn on_arbitrary_text(text in "\\PC{0,400}") {
            let _ = import(&text, &Options::default());
        }
    }
}

#[test]
fn unmapped_commands_at_the_margin_do_not_swallow_the_next_ones() {
    let text = "vlan batch 10\nstp mode rstp\n bpdu-protection\nsysname leaf9\n";
    let imp = import(text, &opts());
    assert_eq!(finding_at(&imp, 2).message, "not mapped");
    assert!(finding_at(&imp, 3).message.contains("stp mode rstp"));
    assert!(parsed(&imp.toml).node.name == "leaf9");
}
