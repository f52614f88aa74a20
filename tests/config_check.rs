//! `dagw check -c FILE` end to end (DESIGN.md §3): the real binary, real files,
//! the compiler-form lines on stderr and the exit status scripts rely on.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Lab {
    dir: tempfile::TempDir,
    key: PathBuf,
}

impl Lab {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("peer.key");
        std::fs::write(&key, "s3cret-s3cret-s3cret-0123456789\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        Lab { dir, key }
    }

    /// DESIGN.md §4's example (vxlan on the VBDIF gateway, where it belongs),
    /// with the key file of this lab.
    fn example(&self) -> String {
        format!(
            r#"[node]
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
key_file = "{key}"
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
vxlan = {{ device = "vxlan5010", bypass_vtep = "203.0.113.2" }}
"#,
            key = self.key.display()
        )
    }

    fn write(&self, name: &str, body: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    fn check(&self, body: &str) -> Outcome {
        check_file(&self.write("dagw.toml", body))
    }
}

struct Outcome {
    code: i32,
    stderr: String,
    file: String,
}

impl Outcome {
    /// The `FILE:L:C: SEVERITY: KEY: …` lines.
    fn lines(&self, severity: &str) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| {
                l.strip_prefix(&self.file)
                    .and_then(|r| r.strip_prefix(':'))
                    .is_some_and(|r| r.contains(&format!(": {severity}: ")))
            })
            .collect()
    }

    /// The line for `key`, checking the compiler form on the way.
    fn line_for(&self, severity: &str, key: &str) -> (usize, usize, String) {
        for l in self.lines(severity) {
            let rest = &l[self.file.len() + 1..];
            let mut parts = rest.splitn(3, ':');
            let line: usize = parts.next().unwrap().parse().expect("line number");
            let col: usize = parts.next().unwrap().parse().expect("column");
            let tail = parts.next().unwrap();
            let prefix = format!(" {severity}: {key}: ");
            if let Some(msg) = tail.strip_prefix(&prefix) {
                assert!(line >= 1 && col >= 1);
                return (line, col, msg.to_string());
            }
        }
        panic!(
            "no `{severity}: {key}:` line; exit {}, stderr:\n{}",
            self.code, self.stderr
        );
    }
}

fn check_file(path: &Path) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_dagw"))
        .arg("check")
        .arg("-c")
        .arg(path)
        .output()
        .expect("run dagw");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        file: path.display().to_string(),
    }
}

#[test]
fn the_design_example_is_valid() {
    let lab = Lab::new();
    let o = lab.check(&lab.example());
    assert_eq!(o.code, 0, "stderr:\n{}", o.stderr);
    assert!(o.lines("error").is_empty(), "{}", o.stderr);
    assert!(o.lines("warning").is_empty(), "{}", o.stderr);
}

/// Each rule of DESIGN.md §4: (edit of the example, key, expected line).
#[test]
fn each_error_kind_exits_1_with_its_key() {
    let lab = Lab::new();
    let base = lab.example();
    let cases: &[(&str, &str, &str, Option<usize>)] = &[
        // unknown key / section
        (
            "device = \"gw10\"",
            "device = \"gw10\"\ncolor = \"red\"",
            "gateway[0].color",
            Some(36),
        ),
        ("[mlag]", "[bogus]\nx = 1\n[mlag]", "bogus", Some(17)),
        // wrong type
        ("port = 8742", "port = \"8742\"", "peer.port", Some(10)),
        // missing required keys
        (
            "interface = \"br10\"\n",
            "",
            "gateway[0].interface",
            Some(27),
        ),
        (
            "mac = \"0000-5e00-0101\"\nipv4",
            "ipv4",
            "gateway[0].mac",
            Some(27),
        ),
        ("vlanif = 10\n", "", "gateway[0].vlanif", Some(27)),
        // ids
        (
            "vlanif = 10",
            "vlanif = 4095",
            "gateway[0].vlanif",
            Some(29),
        ),
        (
            "vbdif = 5010",
            "vbdif = 16777216",
            "gateway[1].vbdif",
            Some(38),
        ),
        ("vbdif = 5010", "vlanif = 10", "gateway[1].vlanif", Some(38)),
        // names and devices
        (
            "interface = \"vbdif5010\"",
            "interface = \"vbdif5010\"\nname = \"vlanif10\"",
            "gateway[1].name",
            Some(40),
        ),
        (
            "interface = \"vbdif5010\"",
            "interface = \"vbdif5010\"\ndevice = \"gw10\"",
            "gateway[1].device",
            Some(40),
        ),
        (
            "device = \"gw10\"",
            "device = \"gateway-device-10\"",
            "gateway[0].device",
            Some(35),
        ),
        (
            "device = \"gw10\"",
            "device = \"gw/10\"",
            "gateway[0].device",
            Some(35),
        ),
        // addresses
        (
            "\"192.0.2.129 255.255.255.128\"",
            "\"192.0.2.1 255.255.255.128 sub\"",
            "gateway[0].ipv4[1]",
            Some(32),
        ),
        (
            "\"192.0.2.129 255.255.255.128\"",
            "\"192.0.2.129/33\"",
            "gateway[0].ipv4[1]",
            Some(32),
        ),
        (
            "\"192.0.2.129 255.255.255.128\"",
            "\"192.0.2.129 255.255.0.255\"",
            "gateway[0].ipv4[1]",
            Some(32),
        ),
        (
            "\"2001:db8:10::1/64\"",
            "\"2001:db8:10::1/129\"",
            "gateway[0].ipv6[0]",
            Some(33),
        ),
        // MAC
        (
            "mac = \"0000-5e00-0101\"\nipv4",
            "mac = \"0100-5e00-0001\"\nipv4",
            "gateway[0].mac",
            Some(31),
        ),
        (
            "mac = \"0000-5e00-0101\"\nipv4",
            "mac = \"ffff-ffff-ffff\"\nipv4",
            "gateway[0].mac",
            Some(31),
        ),
        (
            "mac = \"0000-5e00-0101\"\nipv4",
            "mac = \"0000-0000-0000\"\nipv4",
            "gateway[0].mac",
            Some(31),
        ),
        // platform gates
        (
            "platform = \"generic\"",
            "platform = \"CE6885-LL\"",
            "gateway[0].ipv6",
            Some(33),
        ),
        (
            "platform = \"generic\"",
            "platform = \"CE6820H\"",
            "gateway[1].vbdif",
            Some(38),
        ),
        // vxlan
        (
            "vxlan = { device = \"vxlan5010\", bypass_vtep = \"203.0.113.2\" }",
            "",
            "gateway[1].vxlan",
            Some(37),
        ),
        (
            "device = \"gw10\"",
            "device = \"gw10\"\nvxlan = { device = \"v\", bypass_vtep = \"203.0.113.2\" }",
            "gateway[0].vxlan",
            Some(36),
        ),
        // delays and peer ranges
        (
            "up_delay = \"1s\"",
            "up_delay = \"7201s\"",
            "gateway[0].up_delay",
            Some(34),
        ),
        (
            "interval = \"1s\"",
            "interval = \"50ms\"",
            "peer.interval",
            Some(11),
        ),
        (
            "multiplier = 3",
            "multiplier = 21",
            "peer.multiplier",
            Some(12),
        ),
        ("port = 8742", "port = 0", "peer.port", Some(10)),
        (
            "priority = 100",
            "priority = 256",
            "peer.priority",
            Some(14),
        ),
        (
            "address = \"203.0.113.2\"",
            "address = \"203.0.113.1\"",
            "peer.address",
            Some(9),
        ),
        (
            "up_delay = \"1s\"",
            "up_delay = \"240s\"",
            "mlag.member_up_delay",
            Some(19),
        ),
        (
            "mode = \"static\"\nmin = \"1s\"\nmax = \"120s\"",
            "mode = \"dynamic\"\nmin = \"1s\"\nmax = \"240s\"",
            "mlag.member_up_delay",
            Some(19),
        ),
        ("min = \"1s\"", "min = \"121s\"", "up_delay.min", Some(24)),
        (
            "member_min_delay = \"30s\"",
            "member_min_delay = \"241s\"",
            "mlag.member_min_delay",
            Some(20),
        ),
        (
            "max = \"120s\"",
            "max = \"7201s\"",
            "up_delay.max",
            Some(25),
        ),
        // members
        (
            "[\"bond1\", \"bond2\"]",
            "[\"bond1\", \"bond1\"]",
            "mlag.members[1]",
            Some(18),
        ),
        (
            "[\"bond1\", \"bond2\"]",
            "[\"bond1\", \"br10\"]",
            "gateway[0].interface",
            Some(30),
        ),
        (
            "[\"bond1\", \"bond2\"]",
            "[\"bond1\", \"gw10\"]",
            "gateway[0].device",
            Some(35),
        ),
        // TOML syntax
        ("name = \"leaf1a\"", "name = \"leaf1a", "syntax", Some(2)),
    ];
    for (from, to, key, line) in cases {
        assert!(base.contains(from), "test case does not apply: {from}");
        let body = base.replacen(from, to, 1);
        let o = lab.check(&body);
        assert_eq!(o.code, 1, "{key}: expected exit 1; stderr:\n{}", o.stderr);
        let (l, _, msg) = o.line_for("error", key);
        assert!(!msg.is_empty());
        if let Some(line) = line {
            assert_eq!(l, *line, "{key}: wrong line; stderr:\n{}", o.stderr);
        }
    }
}

#[test]
fn the_multicast_mac_message_is_actionable() {
    let lab = Lab::new();
    let body = lab
        .example()
        .replacen("0000-5e00-0101", "0100-5e00-0001", 1);
    let o = lab.check(&body);
    assert_eq!(o.code, 1);
    let (line, col, msg) = o.line_for("error", "gateway[0].mac");
    assert_eq!((line, col), (31, 7));
    assert_eq!(
        msg,
        "0100-5e00-0001 is a multicast MAC; a gateway needs a unicast MAC (allowed: unicast, advised 0000-5e00-01XX or 0000-5e00-02XX)"
    );
}

#[test]
fn several_errors_are_all_reported() {
    let lab = Lab::new();
    let body = lab
        .example()
        .replacen("port = 8742", "port = 0", 1)
        .replacen("vlanif = 10", "vlanif = 0", 1)
        .replacen("multiplier = 3", "multiplier = 1", 1);
    let o = lab.check(&body);
    assert_eq!(o.code, 1);
    assert_eq!(o.lines("error").len(), 3, "{}", o.stderr);
    o.line_for("error", "peer.port");
    o.line_for("error", "peer.multiplier");
    o.line_for("error", "gateway[0].vlanif");
}

/// Issue 12 item 3: in dynamic mode, members must also outlast every
/// gateway's static up_delay (the fallback without a peer); the seed's
/// "ND Miss" case. The error names the gateway and both values.
#[test]
fn dynamic_mode_member_rule_covers_the_static_fallback() {
    let lab = Lab::new();
    let base = lab.example().replacen(
        "mode = \"static\"\nmin = \"1s\"\nmax = \"120s\"",
        "mode = \"dynamic\"\nmin = \"1s\"\nmax = \"120s\"",
        1,
    );
    assert_eq!(lab.check(&base).code, 0, "the dynamic example is valid");
    let o = lab.check(&base.replacen(
        "up_delay = \"1s\"\ndevice",
        "up_delay = \"300s\"\ndevice",
        1,
    ));
    assert_eq!(o.code, 1, "stderr:\n{}", o.stderr);
    let (line, col, msg) = o.line_for("error", "mlag.member_up_delay");
    assert_eq!((line, col), (19, 19));
    assert!(msg.contains("vlanif10"), "names the gateway: {msg}");
    assert!(
        msg.contains("4m") && msg.contains("5m"),
        "both values: {msg}"
    );
    assert!(msg.contains("fallback"), "says why: {msg}");
}

#[test]
fn warnings_exit_0() {
    let lab = Lab::new();
    let base = lab.example();

    let o = lab.check(
        &base
            .replacen("member_up_delay = \"240s\"", "member_up_delay = \"20s\"", 1)
            .replacen(
                "member_min_delay = \"30s\"",
                "member_min_delay = \"10s\"",
                1,
            ),
    );
    assert_eq!(o.code, 0, "stderr:\n{}", o.stderr);
    let (line, col, _) = o.line_for("warning", "mlag.member_up_delay");
    assert_eq!((line, col), (19, 19));

    let o = lab.check(&base.replace("0000-5e00-0101", "0200-0000-0001"));
    assert_eq!(o.code, 0, "stderr:\n{}", o.stderr);
    o.line_for("warning", "gateway[0].mac");

    let cut = base.find("[[gateway]]").unwrap();
    let o = lab.check(&base[..cut]);
    assert_eq!(o.code, 0, "stderr:\n{}", o.stderr);
    o.line_for("warning", "gateway");
    assert!(o.lines("error").is_empty());
}

#[test]
fn key_file_is_checked() {
    let lab = Lab::new();
    let body = lab.example();

    std::fs::set_permissions(&lab.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = lab.check(&body);
    assert_eq!(o.code, 1, "0644 key accepted; stderr:\n{}", o.stderr);
    let (line, col, msg) = o.line_for("error", "peer.key_file");
    assert_eq!((line, col), (13, 12));
    assert!(msg.contains("group or others"), "{msg}");

    std::fs::set_permissions(&lab.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&lab.key, "short\n").unwrap();
    let o = lab.check(&body);
    assert_eq!(o.code, 1);
    o.line_for("error", "peer.key_file");

    std::fs::remove_file(&lab.key).unwrap();
    let o = lab.check(&body);
    assert_eq!(o.code, 1);
    o.line_for("error", "peer.key_file");
}

#[test]
fn unreadable_config_exits_1() {
    let lab = Lab::new();
    let o = check_file(&lab.dir.path().join("absent.toml"));
    assert_eq!(o.code, 1);
    assert!(!o.stderr.is_empty());
}

#[test]
fn oversized_config_is_refused() {
    let lab = Lab::new();
    let mut body = lab.example();
    body.push_str(&format!("# {}\n", "x".repeat(1024 * 1024)));
    let o = lab.check(&body);
    assert_eq!(o.code, 1);
    o.line_for("error", "file");
}

#[test]
fn previous_key_file_is_checked() {
    let lab = Lab::new();
    let old = lab.dir.path().join("peer.key.old");
    std::fs::write(&old, "old-s3cret-old-s3cret-0123456789\n").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key_line = format!("key_file = \"{}\"\n", lab.key.display());
    let with_prev = |prev: &str| {
        lab.example().replace(
            &key_line,
            &format!("{key_line}previous_key_file = \"{prev}\"\n"),
        )
    };

    // Valid, and relative to the config file's directory.
    for prev in [old.display().to_string(), "peer.key.old".to_string()] {
        let o = lab.check(&with_prev(&prev));
        assert_eq!(o.code, 0, "{prev}: stderr:\n{}", o.stderr);
        assert!(o.lines("error").is_empty(), "{}", o.stderr);
    }

    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = lab.check(&with_prev("peer.key.old"));
    assert_eq!(
        o.code, 1,
        "0644 previous key accepted; stderr:\n{}",
        o.stderr
    );
    let (line, col, msg) = o.line_for("error", "peer.previous_key_file");
    assert_eq!((line, col), (14, 21));
    assert!(msg.contains("group or others"), "{msg}");

    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600)).unwrap();
    for prev in [lab.key.display().to_string(), "peer.key".to_string()] {
        let o = lab.check(&with_prev(&prev));
        assert_eq!(
            o.code, 1,
            "previous key = key accepted; stderr:\n{}",
            o.stderr
        );
        let (line, col, _) = o.line_for("error", "peer.previous_key_file");
        assert_eq!((line, col), (14, 21));
    }
}
