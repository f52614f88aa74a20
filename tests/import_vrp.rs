//! `dagw import-vrp FILE` end to end (DESIGN.md §3, issue 13): the real binary
//! on VRP text built from the seed document's commands; what it prints must be
//! accepted by the real `dagw check`, with each value as in the VRP text, and
//! every line it does not map reported with its line number.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dagw::config::{self, GatewayKind};

/// 3 VLANIFs (Vlanif10 with `sub` and `eui-64`), 1 VBDIF, 2 M-LAG trunks, a
/// peer-link, the DFS group; unknown lines and malformed ones among them.
const VRP: &str = "\
!Software Version V200R021C10SPC600
!Last configuration was updated at 2026-11-30 10:00:00+00:00
#
sysname leaf1a
#
dfs-group 1
 priority 150
 source ip 203.0.113.1 peer 203.0.113.2
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
 description web servers
 ip address 198.51.100.1 25
 mac-address 0000-5e00-0101
 protocol up-delay-time 10
#
interface Vlanif30
 ip address 203.0.113.65 26
 ip address 203.0.113.300 26 sub
 ipv6 enable
 ipv6 address 2001:db8:30::1 64
 mac-address 0000-5e00-0102
#
interface Vbdif5010
 ip address 198.51.100.129 255.255.255.128
 mac-address 0000-5e00-0201
 protocol up-delay-time 0
 protocol up-delay-time later
#
interface Eth-Trunk0
 trunkport 100GE1/0/1 to 1/0/2
 mode lacp-static
 peer-link 1
#
interface Eth-Trunk1
 port link-type trunk
 port trunk allow-pass vlan 10 20 30
 mode lacp-static
 dfs-group 1 m-lag 1
 m-lag up-delay 240
#
interface Eth-Trunk2
 mode lacp-static
 dfs-group 1 m-lag 2
 m-lag up-delay 240
#
interface Eth-Trunk2.100 mode l2
 encapsulation dot1q vid 100
 bridge-domain 5010
#
return
";

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("vrp.cfg"), VRP).unwrap();
        let key = dir.path().join("peer.key");
        std::fs::write(&key, "s3cret-s3cret-s3cret-0123456789\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        Dir { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn dagw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dagw"))
        .args(args)
        .output()
        .expect("run dagw")
}

/// The 1-based line of VRP where `needle` first occurs.
fn line_of(needle: &str) -> usize {
    let at = VRP
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in VRP"));
    VRP[..at].matches('\n').count() + 1
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `dagw check -c FILE` on `toml`; returns its stderr after asserting exit 0.
fn check_accepts(toml: &str, at: &Path) -> String {
    std::fs::write(at, toml).unwrap();
    let out = dagw(&["check", "-c", at.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "dagw check refused the import:\n{}\n--- config ---\n{toml}",
        text(&out.stderr)
    );
    text(&out.stderr)
}

#[test]
fn import_is_accepted_by_check_with_each_value_as_in_the_vrp_text() {
    let d = Dir::new();
    let key = d.path("peer.key");
    let out = dagw(&[
        "import-vrp",
        d.path("vrp.cfg").to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    // Two malformed lines: the import says so with exit 1, and prints the rest.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let toml = text(&out.stdout);
    check_accepts(&toml, &d.path("dagw.toml"));

    let (c, _) = config::load(&d.path("dagw.toml")).expect("loads");
    assert_eq!(c.node.name, "leaf1a");
    let peer = c.peer.as_ref().expect("[peer] is active with --key-file");
    assert_eq!(peer.local.to_string(), "203.0.113.1");
    assert_eq!(peer.address.to_string(), "203.0.113.2");
    assert_eq!(peer.priority, 150);
    assert_eq!(peer.peer_link.as_deref(), Some("bond0"));
    assert_eq!(c.mlag.members, ["bond1", "bond2"]);
    assert_eq!(c.mlag.member_up_delay.as_secs(), 240);

    let kinds: Vec<GatewayKind> = c.gateways.iter().map(|g| g.kind).collect();
    assert_eq!(
        kinds,
        [
            GatewayKind::Vlanif(10),
            GatewayKind::Vlanif(20),
            GatewayKind::Vlanif(30),
            GatewayKind::Vbdif(5010)
        ]
    );
    let g = &c.gateways[0];
    assert_eq!(g.interface.as_str(), "vlan10");
    assert_eq!(g.mac.to_string(), "00:00:5e:00:01:01");
    assert_eq!(
        g.ipv4.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        ["192.0.2.1/24", "192.0.2.129/25"]
    );
    assert_eq!(
        g.ipv6.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        ["2001:db8:10::1/64", "2001:db8:11:0:200:5eff:fe00:101/64"]
    );
    assert_eq!(g.up_delay.as_secs(), 3);
    let g = &c.gateways[1];
    assert_eq!(g.ipv4[0].to_string(), "198.51.100.1/25");
    assert!(g.ipv6.is_empty());
    assert_eq!(g.up_delay.as_secs(), 10);
    let g = &c.gateways[2];
    assert_eq!(g.ipv4.len(), 1, "the malformed sub address is not imported");
    assert_eq!(g.ipv4[0].to_string(), "203.0.113.65/26");
    assert_eq!(g.ipv6[0].to_string(), "2001:db8:30::1/64");
    assert_eq!(g.mac.to_string(), "00:00:5e:00:01:02");
    assert_eq!(g.up_delay.as_secs(), 1, "VRP's VLANIF default, as dagw's");
    let g = &c.gateways[3];
    assert_eq!(g.interface.as_str(), "bd5010");
    assert_eq!(g.mac.to_string(), "00:00:5e:00:02:01");
    assert_eq!(g.ipv4[0].to_string(), "198.51.100.129/25");
    assert_eq!(g.up_delay.as_secs(), 0);
    let vx = g.vxlan.as_ref().expect("vxlan");
    assert_eq!(vx.device, "vxlan5010");
    assert_eq!(vx.bypass_vtep.to_string(), "203.0.113.2");

    // The VRP forms are carried over as written.
    assert!(
        toml.contains(r#""192.0.2.129 255.255.255.128 sub""#),
        "{toml}"
    );
    assert!(toml.contains(r#""2001:db8:11:: 64 eui-64""#), "{toml}");
}

#[test]
fn unknown_and_malformed_lines_are_reported_with_their_line_numbers() {
    let d = Dir::new();
    let file = d.path("vrp.cfg");
    let f = file.to_str().unwrap();
    let out = dagw(&["import-vrp", f]);
    let stderr = text(&out.stderr);
    // Each finding names the line of the VRP text it is about.
    let has = |severity: &str, needle: &str| {
        let line = line_of(needle);
        let prefix = format!("{f}:{line}: {severity}: ");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(needle)),
            "no `{prefix}…{needle}` in:\n{stderr}"
        );
    };
    has("note", "vlan batch 10 20 30");
    has("note", "description web servers");
    has("error", "ip address 203.0.113.300 26 sub");
    has("error", "protocol up-delay-time later");
    has("note", "trunkport 100GE1/0/1 to 1/0/2");
    has("note", "port link-type trunk");
    has("note", "port trunk allow-pass vlan 10 20 30");
    has("note", "interface Eth-Trunk2.100 mode l2");
    has("note", "encapsulation dot1q vid 100");
    has("note", " bridge-domain 5010");
    // Without --key-file, [peer] is printed commented out, and said so at the DFS group.
    let dfs = line_of("dfs-group 1\n");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&format!("{f}:{dfs}: warning: ")) && l.contains("--key-file")),
        "{stderr}"
    );
    // Structure is not reported: `#`, `!` comments, `return`.
    for structure in [1, 2, 3, line_of("return")] {
        let prefix = format!("{f}:{structure}: ");
        assert!(!stderr.lines().any(|l| l.starts_with(&prefix)), "{stderr}");
    }
    // Every line of the input that is neither mapped nor structure is listed:
    // the count of findings here is the count of such lines.
    let listed = stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{f}:")))
        .count();
    assert!(listed >= 12, "{stderr}");

    // The commented-out [peer] still leaves a config `dagw check` accepts.
    let warnings = check_accepts(&text(&out.stdout), &d.path("dagw.toml"));
    assert!(!warnings.contains("error"), "{warnings}");
}

#[test]
fn a_clean_vrp_file_imports_with_exit_zero_and_naming_options() {
    let d = Dir::new();
    let clean: String = VRP
        .lines()
        .filter(|l| !l.contains("203.0.113.300") && !l.contains("later"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(d.path("clean.cfg"), clean).unwrap();
    let out = dagw(&[
        "import-vrp",
        d.path("clean.cfg").to_str().unwrap(),
        "--key-file",
        "peer.key",
        "--vlanif-interface",
        "br{id}",
        "--trunk-interface",
        "po{id}",
        "--rename",
        "Eth-Trunk0=peerlink",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    check_accepts(&text(&out.stdout), &d.path("dagw.toml"));
    let (c, _) = config::load(&d.path("dagw.toml")).expect("loads");
    assert_eq!(c.gateways[0].interface.as_str(), "br10");
    assert_eq!(c.mlag.members, ["po1", "po2"]);
    assert_eq!(c.peer.unwrap().peer_link.as_deref(), Some("peerlink"));

    let bad = dagw(&["import-vrp", "--vlanif-interface", "br", "x.cfg"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "clap refuses a template without {{id}}"
    );
    let missing = dagw(&["import-vrp", d.path("nope.cfg").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("cannot read"));
}
