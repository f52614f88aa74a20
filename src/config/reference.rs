//! Every configuration key with its default, range and meaning: the source of
//! `dagw.toml(5)`, kept beside the parser so a key cannot be added without
//! being documented (a test compares this table with [`super::known_keys`]).

/// Whether this build accepts a key. DESIGN.md §4 is the contract; a key it
/// names that this build does not read yet is listed as such, never hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Accepted,
    /// In the contract (DESIGN.md §4) but refused by this build as unknown.
    NotYet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDoc {
    /// The table: "" (top level), "node", "peer", "gateway", "gateway.vxlan" …
    pub section: &'static str,
    pub key: &'static str,
    pub default: &'static str,
    pub range: &'static str,
    pub doc: &'static str,
    pub status: Status,
}

const fn k(
    section: &'static str,
    key: &'static str,
    default: &'static str,
    range: &'static str,
    doc: &'static str,
) -> KeyDoc {
    KeyDoc {
        section,
        key,
        default,
        range,
        doc,
        status: Status::Accepted,
    }
}

/// For a contract key this build does not read yet (none at present: the
/// man page then lists such keys apart).
#[allow(dead_code)]
const fn not_yet(
    section: &'static str,
    key: &'static str,
    default: &'static str,
    range: &'static str,
    doc: &'static str,
) -> KeyDoc {
    KeyDoc {
        status: Status::NotYet,
        ..k(section, key, default, range, doc)
    }
}

/// What each section is for, in the order the man page lists them.
pub const SECTIONS: &[(&str, &str)] = &[
    ("node", "This switch."),
    (
        "peer",
        "Optional. The M-LAG peer: authenticated UDP heartbeat and TCP ARP/ND sync on the same port. Without it dagw runs standalone with static delays.",
    ),
    (
        "uplinks",
        "Optional. Uplink tracking (Huawei monitor-link): members are held while too few uplinks are up.",
    ),
    (
        "mlag",
        "The M-LAG member interfaces (server-facing) and their up-delay.",
    ),
    (
        "up_delay",
        "How gateways are held after their SVI comes up.",
    ),
    (
        "metrics",
        "Optional. The OpenMetrics endpoint (off without this table).",
    ),
    (
        "gateway",
        "An array of tables, one [[gateway]] per VLANIF or VBDIF: the addresses and virtual MAC dagw keeps on a macvlan of the SVI.",
    ),
    (
        "gateway.vxlan",
        "VBDIF gateways only: an inline table, vxlan = { device, bypass_vtep }.",
    ),
];

pub const KEYS: &[KeyDoc] = &[
    k(
        "",
        "node",
        "every key defaulted",
        "table",
        "This switch ([node]).",
    ),
    k(
        "",
        "peer",
        "absent (standalone)",
        "table",
        "The peer ([peer]).",
    ),
    k("", "mlag", "no members", "table", "M-LAG members ([mlag])."),
    k(
        "",
        "up_delay",
        "mode static",
        "table",
        "Up-delay policy ([up_delay]).",
    ),
    k(
        "",
        "metrics",
        "absent (off)",
        "table",
        "Metrics endpoint ([metrics]).",
    ),
    k(
        "",
        "gateway",
        "none (a warning)",
        "array of tables, at most 20000",
        "The gateways ([[gateway]]).",
    ),
    k(
        "",
        "uplinks",
        "absent (off)",
        "table",
        "Uplink tracking ([uplinks]).",
    ),
    // [node]
    k(
        "node",
        "name",
        "the hostname",
        "1-64 bytes, a DNS label",
        "This switch's name in the heartbeat and in status; a priority tie goes to the lower name.",
    ),
    k(
        "node",
        "platform",
        "\"generic\"",
        "generic, CE6820H, CE6820H-K, CE6820S, CE6885-LL",
        "The switch model's limits from the seed: CE6820H, CE6820H-K and CE6820S have no VXLAN (no vbdif); CE6885-LL has no VXLAN and no IPv6.",
    ),
    k(
        "node",
        "socket",
        "\"/run/dagw/dagw.sock\"",
        "an absolute path, at most 107 bytes",
        "The control socket of status, reload and monitor.",
    ),
    k(
        "node",
        "state_dir",
        "\"/run/dagw\"",
        "an absolute path",
        "Where dagw records the kernel's boot id (any disk): a start under another boot id is a reboot, and members are held for member_up_delay; a restart of the service holds nothing.",
    ),
    // [peer]
    k(
        "peer",
        "local",
        "required",
        "an IPv4 or IPv6 address",
        "The heartbeat source address (Huawei: dfs-group source ip).",
    ),
    k(
        "peer",
        "address",
        "required",
        "an IP address of the same family as local",
        "The peer's address (Huawei: source ip ... peer).",
    ),
    k(
        "peer",
        "port",
        "8742",
        "1-65535",
        "UDP port of the heartbeat; the sync channel uses the same number on TCP.",
    ),
    k(
        "peer",
        "interval",
        "\"1s\"",
        "100ms-10s",
        "Heartbeat period.",
    ),
    k(
        "peer",
        "multiplier",
        "3",
        "2-20",
        "The peer is down after interval x multiplier of silence.",
    ),
    k(
        "peer",
        "key_file",
        "\"/etc/dagw/peer.key\"",
        "a regular file, at least 16 bytes (one trailing newline not counted), at most 64 KiB, not readable by group or others",
        "The shared secret, the same bytes on both switches; relative paths are relative to the config file; re-read on reload.",
    ),
    k(
        "peer",
        "previous_key_file",
        "absent",
        "like key_file, a different file",
        "A second key accepted during a key changeover.",
    ),
    k(
        "peer",
        "priority",
        "100",
        "0-255",
        "Higher is master; a tie goes to the lower node name (Huawei: dfs-group priority).",
    ),
    k(
        "peer",
        "peer_link",
        "absent",
        "a Linux interface name, 1-15 bytes",
        "The peer-link, for split-brain handling: peer-link down while the peer is heard makes the backup hold its members.",
    ),
    k(
        "peer",
        "strict",
        "false",
        "true or false",
        "Hold the backup's gateways that differ from the peer's until they agree.",
    ),
    k(
        "peer",
        "max_synced",
        "262144",
        "1-1048576",
        "Neighbour entries accepted from the peer in all.",
    ),
    k(
        "peer",
        "max_synced_per_gateway",
        "65536 (at most max_synced)",
        "1-max_synced",
        "Neighbour entries accepted from the peer per gateway; only addresses inside the gateway's own prefixes (and fe80::/64 for ND).",
    ),
    k(
        "peer",
        "neighbour_aging",
        "\"20m\"",
        "1m-24h",
        "An entry nobody confirmed this long is probed by its owner or removed.",
    ),
    // [uplinks]
    k(
        "uplinks",
        "interfaces",
        "required",
        "1-64 interface names",
        "The uplinks; with fewer than min_up of them oper-up, members are held.",
    ),
    k(
        "uplinks",
        "min_up",
        "1",
        "1-len(interfaces)",
        "How many uplinks must be up.",
    ),
    k(
        "uplinks",
        "recover_delay",
        "\"60s\"",
        "0s-3600s",
        "How long enough uplinks must be up before members are released.",
    ),
    // [mlag]
    k(
        "mlag",
        "members",
        "[]",
        "at most 4096 Linux interface names",
        "The M-LAG member interfaces (server-facing bonds).",
    ),
    k(
        "mlag",
        "member_up_delay",
        "\"240s\"",
        "0s-24h; longer than every gateway's up_delay (dynamic mode: than max too); 30s or more advised (a warning below)",
        "Static hold of members after a restart or peer-link recovery; in dynamic mode the cap.",
    ),
    k(
        "mlag",
        "member_min_delay",
        "\"30s\"",
        "0s-24h, at most member_up_delay",
        "Dynamic mode: members are never released sooner than this.",
    ),
    // [up_delay]
    k(
        "up_delay",
        "mode",
        "\"static\"",
        "static, dynamic",
        "static: each gateway is held for its up_delay. dynamic: held until its ARP/ND table has caught up with the peer's, between min and max.",
    ),
    k(
        "up_delay",
        "min",
        "\"1s\"",
        "0s-7200s, at most max",
        "Dynamic: never release a gateway sooner.",
    ),
    k(
        "up_delay",
        "max",
        "\"120s\"",
        "0s-7200s, shorter than member_up_delay",
        "Dynamic: never hold a gateway longer (alert sync-incomplete).",
    ),
    // [metrics]
    k(
        "metrics",
        "listen",
        "\"127.0.0.1:9742\" when [metrics] is present",
        "ADDRESS:PORT, port not 0",
        "Where GET /metrics serves OpenMetrics text.",
    ),
    // [[gateway]]
    k(
        "gateway",
        "name",
        "vlanif<ID> / vbdif<ID>",
        "1-64 bytes, unique",
        "The gateway's name in status, alerts and metrics.",
    ),
    k(
        "gateway",
        "vlanif",
        "exactly one of vlanif, vbdif",
        "1-4094",
        "The VLAN id: a VLANIF gateway.",
    ),
    k(
        "gateway",
        "vbdif",
        "exactly one of vlanif, vbdif",
        "1-16777215; not on CE6820H, CE6820H-K, CE6820S, CE6885-LL",
        "The bridge-domain id: a VBDIF gateway (needs vxlan).",
    ),
    k(
        "gateway",
        "interface",
        "required",
        "a Linux interface name, 1-15 bytes",
        "The SVI of the VLAN / BD; dagw never creates it.",
    ),
    k(
        "gateway",
        "mac",
        "required",
        "unicast, not zero; 0000-5e00-01XX or 0000-5e00-02XX advised (a warning otherwise); 0000-5e00-0101 or 00:00:5e:00:01:01",
        "The virtual MAC, the same on both switches; several gateways may share one.",
    ),
    k(
        "gateway",
        "ipv4",
        "[]",
        "at most 256 entries: \"A.B.C.D/LEN\", \"A.B.C.D MASK\" or \"A.B.C.D LEN\", optionally \" sub\"; LEN 1-32, contiguous masks, host addresses, unique",
        "The first is the primary address, the others sub addresses.",
    ),
    k(
        "gateway",
        "ipv6",
        "[]",
        "at most 256 entries: \"X/LEN\" or \"X LEN\", optionally \" eui-64\" (LEN 1-64); not on CE6885-LL",
        "Global addresses; eui-64 takes the interface id from mac. Any entry enables IPv6 and a link-local address from the vMAC.",
    ),
    k(
        "gateway",
        "up_delay",
        "\"1s\" (vlanif), \"0s\" (vbdif)",
        "0s-7200s",
        "How long the gateway's L3 side stays down after its SVI comes up (Huawei: protocol up-delay-time).",
    ),
    k(
        "gateway",
        "device",
        "gw<ID> (vlanif), gwb<ID> (vbdif)",
        "a Linux interface name, 1-15 bytes, unique",
        "dagw's macvlan on the SVI, carrying the vMAC and addresses.",
    ),
    k(
        "gateway",
        "vxlan",
        "required for vbdif, refused for vlanif",
        "inline table { device, bypass_vtep }",
        "The BD's vxlan device and the static bypass tunnel towards the peer.",
    ),
    k(
        "gateway.vxlan",
        "device",
        "required",
        "a Linux interface name, 1-15 bytes",
        "The BD's vxlan device.",
    ),
    k(
        "gateway.vxlan",
        "bypass_vtep",
        "required",
        "an IP address",
        "The peer's VTEP: the bypass tunnel's flood destination.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_parser_reads_is_documented_and_nothing_else_is_called_accepted() {
        let known: Vec<(String, String)> = crate::config::known_keys()
            .into_iter()
            .flat_map(|(s, keys)| keys.iter().map(move |k| (s.to_string(), k.to_string())))
            .collect();
        for (s, key) in &known {
            let doc = KEYS.iter().find(|d| d.section == s && d.key == key);
            assert!(
                doc.is_some_and(|d| d.status == Status::Accepted),
                "{s}.{key} is read by the parser but not documented as accepted in config/reference.rs"
            );
        }
        for d in KEYS.iter().filter(|d| d.status == Status::Accepted) {
            assert!(
                known.iter().any(|(s, k)| s == d.section && k == d.key),
                "{}.{} is documented as accepted but the parser does not read it",
                d.section,
                d.key
            );
        }
    }

    #[test]
    fn every_section_has_a_description() {
        for d in KEYS.iter().filter(|d| !d.section.is_empty()) {
            assert!(
                SECTIONS.iter().any(|(s, _)| *s == d.section),
                "{}",
                d.section
            );
        }
    }
}
