//! What the two peers must agree on, in one canonical form, and how a
//! difference is told to the operator (status `peer.mismatches`, DESIGN §5).
//!
//! Seed: the VLANIF/VBDIF interfaces of both devices "must be configured with
//! the same IP address" and "the same virtual MAC address"; dagw adds each
//! gateway's up-delay and, node-wide, `member_up_delay` and the `[up_delay]`
//! policy.
//!
//! **Canonical form** (the only place it is defined): IPv4 — the primary
//! address first (it is the source of the gateway's own ARP requests, so
//! another primary is a real difference), then the sub addresses sorted by
//! address, then prefix length; IPv6 — every global address sorted the same
//! way (IPv6 has no primary). So the same addresses configured in another
//! order are the same configuration: the heartbeat digests agree, no mismatch
//! is reported, and strict mode holds nothing.
//!
//! The heartbeat carries only digests of the address lists (4094 gateways
//! would not fit otherwise); the exact values travel over the authenticated
//! sync channel (docs/sync.md, frame type 6) into [`ExactValues`], and are
//! shown only while they still match the peer's heartbeat digests.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::config::{Config, DelayMode, Gateway, GatewayKind, Ipv4Prefix, Ipv6Prefix, Prefixes};
use crate::core::heartbeat::{GwEntry, NodePolicy};
use crate::core::mac::Mac;

/// A gateway as the peers match it: (kind 1 vlanif / 2 vbdif, id).
pub type GwKey = (u8, u32);

/// `peer` of an address mismatch while the peer's exact values are not
/// known (no sync session yet, or its values predate the peer's reload).
pub const EXACT_UNKNOWN: &str = "differs (exact values once the sync channel is up)";

pub fn key_of(kind: GatewayKind) -> GwKey {
    match kind {
        GatewayKind::Vlanif(v) => (1, u32::from(v)),
        GatewayKind::Vbdif(b) => (2, b),
    }
}

/// The name a gateway of the peer's has by default (its own name is not sent).
pub fn default_name((kind, id): GwKey) -> String {
    format!("{}{id}", if kind == 1 { "vlanif" } else { "vbdif" })
}

/// One gateway's values the peers must agree on, always in canonical form
/// (the constructors sort; the lists are read-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GwConfig {
    pub kind: u8,
    pub id: u32,
    pub mac: [u8; 6],
    pub up_delay_ms: u32,
    ipv4: Prefixes<Ipv4Prefix>,
    ipv6: Prefixes<Ipv6Prefix>,
}

fn canonical_ipv4(v: &[Ipv4Prefix]) -> Prefixes<Ipv4Prefix> {
    match v {
        [] => Prefixes::Empty,
        [one] => Prefixes::One(*one),
        [primary, subs @ ..] => {
            let mut subs = subs.to_vec();
            subs.sort_by_key(|p| (u32::from(p.addr), p.len));
            std::iter::once(*primary).chain(subs).collect()
        }
    }
}

fn canonical_ipv6(v: &[Ipv6Prefix]) -> Prefixes<Ipv6Prefix> {
    match v {
        [] => Prefixes::Empty,
        [one] => Prefixes::One(*one),
        _ => {
            let mut all = v.to_vec();
            all.sort_by_key(|p| (u128::from(p.addr), p.len));
            all.into()
        }
    }
}

/// First 4 bytes of SHA-256 over each item followed by `,` (docs/protocol.md).
fn digest(items: impl Iterator<Item = String>) -> u32 {
    let mut h = Sha256::new();
    for i in items {
        h.update(i.as_bytes());
        h.update(b",");
    }
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn list_text(items: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = items.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// A duration as the operator wrote it most likely: `240s`, `1500ms`.
pub fn duration_text(ms: u32) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn millis(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl GwConfig {
    /// From values in any order (the peer's, off the wire): canonicalised.
    pub fn new(
        (kind, id): GwKey,
        mac: [u8; 6],
        up_delay_ms: u32,
        ipv4: &[Ipv4Prefix],
        ipv6: &[Ipv6Prefix],
    ) -> GwConfig {
        GwConfig {
            kind,
            id,
            mac,
            up_delay_ms,
            ipv4: canonical_ipv4(ipv4),
            ipv6: canonical_ipv6(ipv6),
        }
    }

    /// A configured gateway (no allocation for a gateway of one address per
    /// family, the common case).
    pub fn of(g: &Gateway) -> GwConfig {
        GwConfig::new(
            key_of(g.kind),
            g.mac.0,
            millis(g.up_delay),
            &g.ipv4,
            &g.ipv6,
        )
    }

    pub fn key(&self) -> GwKey {
        (self.kind, self.id)
    }

    /// Primary first, then the sub addresses in order.
    pub fn ipv4(&self) -> &[Ipv4Prefix] {
        &self.ipv4
    }

    /// Sorted.
    pub fn ipv6(&self) -> &[Ipv6Prefix] {
        &self.ipv6
    }

    /// The heartbeat's IPv4 digest: over `ADDR/LEN` of the canonical list.
    pub fn ipv4_digest(&self) -> u32 {
        digest(self.ipv4.iter().map(|p| p.to_string()))
    }

    pub fn ipv6_digest(&self) -> u32 {
        digest(self.ipv6.iter().map(|p| p.to_string()))
    }

    /// `198.51.100.1/25, 198.51.100.129/25 sub` (`none` without addresses).
    pub fn ipv4_text(&self) -> String {
        list_text(self.ipv4.iter().enumerate().map(|(i, p)| {
            if i == 0 {
                p.to_string()
            } else {
                format!("{p} sub")
            }
        }))
    }

    /// `2001:db8:10::1/64, 2001:db8:11::1/64` (`none` without addresses).
    pub fn ipv6_text(&self) -> String {
        list_text(self.ipv6.iter().map(|p| p.to_string()))
    }

    /// The heartbeat entry: these values' digests plus state and counts.
    pub fn entry(&self, state: u8, arp: u32, nd: u32) -> GwEntry {
        GwEntry {
            kind: self.kind,
            id: self.id,
            state,
            mac: self.mac,
            up_delay_ms: self.up_delay_ms,
            ipv4_digest: self.ipv4_digest(),
            ipv6_digest: self.ipv6_digest(),
            arp,
            nd,
        }
    }
}

/// This node's `member_up_delay` and `[up_delay]` policy (heartbeat extension 2).
pub fn node_policy(cfg: &Config) -> NodePolicy {
    NodePolicy {
        member_up_delay_ms: millis(cfg.mlag.member_up_delay),
        dynamic: cfg.up_delay.mode == DelayMode::Dynamic,
        min_ms: millis(cfg.up_delay.min),
        max_ms: millis(cfg.up_delay.max),
    }
}

/// `static`, or `dynamic 1s..120s` (min and max only matter in dynamic mode,
/// so in static mode they are neither shown nor compared).
pub fn policy_text(p: &NodePolicy) -> String {
    if p.dynamic {
        format!(
            "dynamic {}..{}",
            duration_text(p.min_ms),
            duration_text(p.max_ms)
        )
    } else {
        "static".into()
    }
}

/// One configuration difference between the peers (status `peer.mismatches`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// None for a node-wide field (`member_up_delay`, `up_delay_policy`).
    pub gateway: Option<String>,
    /// `missing` | `ipv4` | `ipv6` | `mac` | `up_delay` | `member_up_delay`
    /// | `up_delay_policy`.
    pub field: &'static str,
    /// The values themselves, never digests.
    pub local: String,
    pub peer: String,
    /// `gateway` is one of this node's (false for a gateway only the peer
    /// has, named by its default name): strict mode holds only these.
    pub ours: bool,
}

impl Mismatch {
    /// As in the status document and the `peer-mismatch` alert.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "gateway": self.gateway,
            "field": self.field,
            "local": self.local,
            "peer": self.peer,
        })
    }

    /// One line for logs and alerts: `vlanif10 ipv4 (local …, peer …)`.
    pub fn text(&self) -> String {
        format!(
            "{} {} (local {}, peer {})",
            self.gateway.as_deref().unwrap_or("node"),
            self.field,
            self.local,
            self.peer
        )
    }
}

/// What this node knows of the peer's configuration.
#[derive(Debug, Clone, Copy)]
pub struct PeerConfig<'a> {
    /// The gateways of the peer's last complete heartbeat round.
    pub table: &'a BTreeMap<GwKey, GwEntry>,
    /// The peer's exact values from the sync channel (possibly older than
    /// the table: each is used only while its digests match the table's).
    pub exact: &'a BTreeMap<GwKey, GwConfig>,
    /// Heartbeat extension 2; None from a peer that does not send it.
    pub node: Option<NodePolicy>,
}

/// Every difference between this node (`local`: its gateways by name, and
/// its node-wide settings) and the peer: node-wide fields first, then the
/// local gateways in order (fields ipv4, ipv6, mac, up_delay), then the
/// gateways only the peer has.
pub fn compare(
    local: &[(String, GwConfig)],
    local_node: &NodePolicy,
    peer: PeerConfig<'_>,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let node = |field, local: String, peer: String| Mismatch {
        gateway: None,
        field,
        local,
        peer,
        ours: false,
    };
    if let Some(p) = &peer.node {
        if local_node.member_up_delay_ms != p.member_up_delay_ms {
            out.push(node(
                "member_up_delay",
                duration_text(local_node.member_up_delay_ms),
                duration_text(p.member_up_delay_ms),
            ));
        }
        let (l, r) = (policy_text(local_node), policy_text(p));
        if l != r {
            out.push(node("up_delay_policy", l, r));
        }
    }
    for (name, l) in local {
        let gw = |field, local: String, peer: String| Mismatch {
            gateway: Some(name.clone()),
            field,
            local,
            peer,
            ours: true,
        };
        let Some(p) = peer.table.get(&l.key()) else {
            out.push(gw("missing", "configured".into(), "absent".into()));
            continue;
        };
        let exact = peer.exact.get(&l.key());
        if l.ipv4_digest() != p.ipv4_digest {
            let theirs = exact
                .filter(|x| x.ipv4_digest() == p.ipv4_digest)
                .map_or_else(|| EXACT_UNKNOWN.into(), GwConfig::ipv4_text);
            out.push(gw("ipv4", l.ipv4_text(), theirs));
        }
        if l.ipv6_digest() != p.ipv6_digest {
            let theirs = exact
                .filter(|x| x.ipv6_digest() == p.ipv6_digest)
                .map_or_else(|| EXACT_UNKNOWN.into(), GwConfig::ipv6_text);
            out.push(gw("ipv6", l.ipv6_text(), theirs));
        }
        if l.mac != p.mac {
            out.push(gw("mac", Mac(l.mac).to_string(), Mac(p.mac).to_string()));
        }
        if l.up_delay_ms != p.up_delay_ms {
            out.push(gw(
                "up_delay",
                duration_text(l.up_delay_ms),
                duration_text(p.up_delay_ms),
            ));
        }
    }
    for key in peer.table.keys() {
        if !local.iter().any(|(_, l)| l.key() == *key) {
            out.push(Mismatch {
                gateway: Some(default_name(*key)),
                field: "missing",
                local: "absent".into(),
                peer: "configured".into(),
                ours: false,
            });
        }
    }
    out
}

/// Strict mode: the gateways of ours the backup holds for these mismatches,
/// each once, in order (node-wide fields and gateways only the peer has hold
/// nothing).
pub fn strict_holds(mismatches: &[Mismatch]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for m in mismatches.iter().filter(|m| m.ours) {
        if let Some(g) = m.gateway.as_deref()
            && !out.contains(&g)
        {
            out.push(g);
        }
    }
    out
}

/// The peer's exact values as they arrive over the sync channel: a set is
/// announced in one or more frames (the first clears, the last commits), and
/// only the gateways this node has are kept — at most one entry per local
/// gateway, however much the peer sends.
///
/// Because a gateway we did not have was dropped, a set that brings
/// gateways the peer's previous set (in this session) did not have asks for
/// our own set again: the peer may have added a gateway we have, and dropped
/// our values of it before (docs/sync.md, "Gateways").
#[derive(Debug, Default)]
pub struct ExactValues {
    /// The last complete set.
    pub known: BTreeMap<GwKey, GwConfig>,
    staging: Option<BTreeMap<GwKey, GwConfig>>,
    /// Every gateway of the set in progress (kept or not).
    staging_keys: std::collections::BTreeSet<GwKey>,
    /// Every gateway of the last complete set of this session.
    previous_keys: Option<std::collections::BTreeSet<GwKey>>,
}

/// What a frame of a set did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetProgress {
    /// A set is complete: `known` was replaced.
    pub complete: bool,
    /// ... and it has gateways the previous set of this session had not:
    /// send ours again.
    pub answer: bool,
}

impl ExactValues {
    /// One frame of a set. A frame that does not continue a set in progress
    /// is ignored (the session's reader refuses that order already).
    pub fn on_frame(
        &mut self,
        first: bool,
        last: bool,
        entries: Vec<GwConfig>,
        ours: impl Fn(GwKey) -> bool,
    ) -> SetProgress {
        if first {
            self.staging = Some(BTreeMap::new());
            self.staging_keys.clear();
        }
        let Some(staging) = self.staging.as_mut() else {
            return SetProgress::default();
        };
        for e in entries {
            self.staging_keys.insert(e.key());
            if ours(e.key()) {
                staging.insert(e.key(), e);
            }
        }
        if !last {
            return SetProgress::default();
        }
        self.known = self.staging.take().unwrap_or_default();
        let keys = std::mem::take(&mut self.staging_keys);
        let answer = self
            .previous_keys
            .as_ref()
            .is_some_and(|before| !keys.is_subset(before));
        self.previous_keys = Some(keys);
        SetProgress {
            complete: true,
            answer,
        }
    }

    /// A session ended: a set in progress is incomplete (`known` stays; it
    /// is checked against the heartbeat digests before use), and the next
    /// session starts with both sides announcing anyway.
    pub fn abandon(&mut self) {
        self.staging = None;
        self.staging_keys.clear();
        self.previous_keys = None;
    }

    /// Our gateways changed: entries of gateways we no longer have go.
    pub fn retain(&mut self, ours: impl Fn(GwKey) -> bool) {
        self.known.retain(|k, _| ours(*k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(s: &str) -> Ipv4Prefix {
        let (a, l) = s.split_once('/').unwrap();
        Ipv4Prefix {
            addr: a.parse::<Ipv4Addr>().unwrap(),
            len: l.parse().unwrap(),
        }
    }

    fn v6(s: &str) -> Ipv6Prefix {
        let (a, l) = s.split_once('/').unwrap();
        Ipv6Prefix {
            addr: a.parse::<Ipv6Addr>().unwrap(),
            len: l.parse().unwrap(),
        }
    }

    const MAC: [u8; 6] = [0, 0, 0x5e, 0, 1, 1];

    fn gw(v4s: &[&str], v6s: &[&str]) -> GwConfig {
        let a: Vec<_> = v4s.iter().map(|s| v4(s)).collect();
        let b: Vec<_> = v6s.iter().map(|s| v6(s)).collect();
        GwConfig::new((1, 10), MAC, 1000, &a, &b)
    }

    fn policy() -> NodePolicy {
        NodePolicy {
            member_up_delay_ms: 240_000,
            dynamic: false,
            min_ms: 1000,
            max_ms: 120_000,
        }
    }

    #[test]
    fn canonical_form_primary_first_subs_and_ipv6_sorted() {
        let a = gw(
            &["198.51.100.1/25", "198.51.100.129/25", "192.0.2.1/24"],
            &["2001:db8:11::1/64", "2001:db8:10::1/64"],
        );
        let b = gw(
            &["198.51.100.1/25", "192.0.2.1/24", "198.51.100.129/25"],
            &["2001:db8:10::1/64", "2001:db8:11::1/64"],
        );
        assert_eq!(a, b);
        assert_eq!(a.ipv4_digest(), b.ipv4_digest());
        assert_eq!(a.ipv6_digest(), b.ipv6_digest());
        assert_eq!(
            a.ipv4_text(),
            "198.51.100.1/25, 192.0.2.1/24 sub, 198.51.100.129/25 sub"
        );
        assert_eq!(a.ipv6_text(), "2001:db8:10::1/64, 2001:db8:11::1/64");
        // sub addresses sort numerically, not as text
        let c = gw(&["203.0.113.1/24", "10.0.0.9/8", "9.0.0.1/8"], &[]);
        assert_eq!(
            c.ipv4_text(),
            "203.0.113.1/24, 9.0.0.1/8 sub, 10.0.0.9/8 sub"
        );
        // the same address with two lengths: the shorter first
        let d = gw(&["203.0.113.1/24", "9.0.0.1/16", "9.0.0.1/8"], &[]);
        assert_eq!(d.ipv4()[1].len, 8);
        assert_eq!(gw(&[], &[]).ipv4_text(), "none");
        assert_eq!(gw(&[], &[]).ipv6_text(), "none");
    }

    #[test]
    fn another_primary_is_a_difference() {
        let a = gw(&["198.51.100.1/25", "198.51.100.129/25"], &[]);
        let b = gw(&["198.51.100.129/25", "198.51.100.1/25"], &[]);
        assert_ne!(a.ipv4_digest(), b.ipv4_digest());
    }

    #[test]
    fn the_digest_of_one_address_is_the_documented_one() {
        // docs/protocol.md: SHA-256 over "ADDR/LEN," — for one address the
        // canonical form changes nothing
        let one = gw(&["192.0.2.1/24"], &[]);
        let d = Sha256::digest(b"192.0.2.1/24,");
        assert_eq!(
            one.ipv4_digest(),
            u32::from_be_bytes([d[0], d[1], d[2], d[3]])
        );
    }

    fn table(entries: &[GwConfig]) -> BTreeMap<GwKey, GwEntry> {
        entries
            .iter()
            .map(|g| (g.key(), g.entry(2, 0, 0)))
            .collect()
    }

    fn exact(entries: &[GwConfig]) -> BTreeMap<GwKey, GwConfig> {
        entries.iter().map(|g| (g.key(), g.clone())).collect()
    }

    #[test]
    fn order_only_differences_are_no_mismatch() {
        let ours = gw(
            &["198.51.100.1/25", "198.51.100.129/25", "192.0.2.1/24"],
            &["2001:db8:11::1/64", "2001:db8:10::1/64"],
        );
        let theirs = gw(
            &["198.51.100.1/25", "192.0.2.1/24", "198.51.100.129/25"],
            &["2001:db8:10::1/64", "2001:db8:11::1/64"],
        );
        let t = table(&[theirs]);
        let m = compare(
            &[("vlanif10".into(), ours)],
            &policy(),
            PeerConfig {
                table: &t,
                exact: &BTreeMap::new(),
                node: Some(policy()),
            },
        );
        assert!(m.is_empty(), "{m:?}");
        assert!(strict_holds(&m).is_empty());
    }

    #[test]
    fn exact_values_when_known_and_current() {
        let ours = gw(&["198.51.100.1/25", "198.51.100.129/25"], &[]);
        let theirs = gw(&["198.51.100.1/25", "198.51.100.130/25"], &[]);
        let t = table(std::slice::from_ref(&theirs));
        let local = [("vlanif10".to_string(), ours)];
        // not known yet
        let m = compare(
            &local,
            &policy(),
            PeerConfig {
                table: &t,
                exact: &BTreeMap::new(),
                node: None,
            },
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].field, "ipv4");
        assert_eq!(m[0].local, "198.51.100.1/25, 198.51.100.129/25 sub");
        assert_eq!(m[0].peer, EXACT_UNKNOWN);
        // known
        let x = exact(std::slice::from_ref(&theirs));
        let m = compare(
            &local,
            &policy(),
            PeerConfig {
                table: &t,
                exact: &x,
                node: None,
            },
        );
        assert_eq!(m[0].peer, "198.51.100.1/25, 198.51.100.130/25 sub");
        assert_eq!(
            m[0].to_json(),
            serde_json::json!({"gateway": "vlanif10", "field": "ipv4",
                "local": "198.51.100.1/25, 198.51.100.129/25 sub",
                "peer": "198.51.100.1/25, 198.51.100.130/25 sub"})
        );
        // stale: the peer reloaded (its heartbeat says so) and the new
        // values have not arrived — never show the old ones
        let newer = gw(&["198.51.100.1/25", "198.51.100.131/25"], &[]);
        let t2 = table(&[newer]);
        let m = compare(
            &local,
            &policy(),
            PeerConfig {
                table: &t2,
                exact: &x,
                node: None,
            },
        );
        assert_eq!(m[0].peer, EXACT_UNKNOWN);
        assert_eq!(strict_holds(&m), vec!["vlanif10"]);
    }

    #[test]
    fn mismatches_name_the_field() {
        let l = GwConfig::new((1, 10), MAC, 1000, &[v4("192.0.2.1/24")], &[]);
        let mut other = GwConfig::new(
            (1, 10),
            [0, 0, 0x5e, 0, 1, 2],
            1500,
            &[v4("192.0.2.2/24")],
            &[v6("2001:db8::1/64")],
        );
        let t = {
            let mut t = table(std::slice::from_ref(&other));
            other.kind = 2;
            other.id = 5010;
            t.insert(other.key(), other.entry(2, 0, 0));
            t
        };
        let x = exact(&[]);
        let m = compare(
            &[("vlanif10".into(), l)],
            &policy(),
            PeerConfig {
                table: &t,
                exact: &x,
                node: Some(policy()),
            },
        );
        let got: Vec<_> = m
            .iter()
            .map(|m| {
                (
                    m.gateway.as_deref().unwrap_or("-"),
                    m.field,
                    m.local.as_str(),
                    m.peer.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("vlanif10", "ipv4", "192.0.2.1/24", EXACT_UNKNOWN),
                ("vlanif10", "ipv6", "none", EXACT_UNKNOWN),
                ("vlanif10", "mac", "00:00:5e:00:01:01", "00:00:5e:00:01:02"),
                ("vlanif10", "up_delay", "1s", "1500ms"),
                ("vbdif5010", "missing", "absent", "configured"),
            ]
        );
        // each of ours once; never the peer's own
        assert_eq!(strict_holds(&m), vec!["vlanif10"]);
        let empty = BTreeMap::new();
        let m = compare(
            &[("vlanif10".into(), gw(&[], &[]))],
            &policy(),
            PeerConfig {
                table: &empty,
                exact: &x,
                node: None,
            },
        );
        assert_eq!(
            (m[0].field, m[0].local.as_str(), m[0].peer.as_str()),
            ("missing", "configured", "absent")
        );
    }

    #[test]
    fn node_wide_fields_have_no_gateway() {
        let t = BTreeMap::new();
        let x = BTreeMap::new();
        let theirs = NodePolicy {
            member_up_delay_ms: 300_000,
            dynamic: true,
            ..policy()
        };
        let m = compare(
            &[],
            &policy(),
            PeerConfig {
                table: &t,
                exact: &x,
                node: Some(theirs),
            },
        );
        assert_eq!(
            m,
            vec![
                Mismatch {
                    gateway: None,
                    field: "member_up_delay",
                    local: "240s".into(),
                    peer: "300s".into(),
                    ours: false,
                },
                Mismatch {
                    gateway: None,
                    field: "up_delay_policy",
                    local: "static".into(),
                    peer: "dynamic 1s..120s".into(),
                    ours: false,
                },
            ]
        );
        assert_eq!(m[0].to_json()["gateway"], serde_json::Value::Null);
        assert!(strict_holds(&m).is_empty(), "node-wide: nothing held");
        // static mode: min and max do not matter
        let other_bounds = NodePolicy {
            min_ms: 5,
            max_ms: 9,
            ..policy()
        };
        let none = compare(
            &[],
            &policy(),
            PeerConfig {
                table: &t,
                exact: &x,
                node: Some(other_bounds),
            },
        );
        assert!(none.is_empty(), "{none:?}");
        // dynamic on both, other max
        let a = NodePolicy {
            dynamic: true,
            ..policy()
        };
        let b = NodePolicy {
            max_ms: 60_000,
            ..a
        };
        let m = compare(
            &[],
            &a,
            PeerConfig {
                table: &t,
                exact: &x,
                node: Some(b),
            },
        );
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].local.as_str(), m[0].peer.as_str()),
            ("dynamic 1s..120s", "dynamic 1s..60s")
        );
        // a peer that does not send extension 2: nothing compared
        assert!(
            compare(
                &[],
                &a,
                PeerConfig {
                    table: &t,
                    exact: &x,
                    node: None
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn exact_values_keep_only_our_gateways_and_replace_per_set() {
        let mut ev = ExactValues::default();
        let ours = |k: GwKey| k == (1, 10) || k == (1, 20);
        let g = |id| GwConfig::new((1, id), MAC, 0, &[], &[]);
        let done = SetProgress {
            complete: true,
            answer: false,
        };
        assert_eq!(
            ev.on_frame(true, false, vec![g(10), g(30)], ours),
            SetProgress::default()
        );
        assert!(ev.known.is_empty(), "not before the set is complete");
        assert_eq!(ev.on_frame(false, true, vec![g(20), g(20)], ours), done);
        assert_eq!(
            ev.known.keys().copied().collect::<Vec<_>>(),
            vec![(1, 10), (1, 20)]
        );
        // the next set replaces; fewer gateways ask for nothing
        assert_eq!(ev.on_frame(true, true, vec![g(20)], ours), done);
        assert_eq!(ev.known.len(), 1);
        // a continuation without a start, or after a lost session, is dropped
        ev.on_frame(true, false, vec![g(10)], ours);
        ev.abandon();
        assert_eq!(
            ev.on_frame(false, true, vec![g(10)], ours),
            SetProgress::default()
        );
        assert_eq!(ev.known.keys().copied().collect::<Vec<_>>(), vec![(1, 20)]);
        ev.retain(|k| k == (1, 10));
        assert!(ev.known.is_empty());
    }

    #[test]
    fn a_set_with_new_gateways_asks_for_ours_again() {
        let mut ev = ExactValues::default();
        let ours = |k: GwKey| k == (1, 10);
        let g = |id| GwConfig::new((1, id), MAC, 0, &[], &[]);
        // the first set of a session: both sides announce anyway
        assert!(!ev.on_frame(true, true, vec![g(10)], ours).answer);
        // the peer added vlanif20 (not ours: not kept, but it asks for ours,
        // which the peer may have dropped when it had no vlanif20)
        let p = ev.on_frame(true, true, vec![g(10), g(20)], ours);
        assert!(p.complete && p.answer);
        assert_eq!(ev.known.len(), 1);
        // the same again, or fewer: no answer (no ping-pong)
        assert!(!ev.on_frame(true, true, vec![g(20), g(10)], ours).answer);
        assert!(!ev.on_frame(true, true, vec![g(10)], ours).answer);
        // a new session starts afresh
        ev.abandon();
        assert!(!ev.on_frame(true, true, vec![g(10), g(30)], ours).answer);
    }

    #[test]
    fn durations() {
        assert_eq!(duration_text(240_000), "240s");
        assert_eq!(duration_text(1500), "1500ms");
        assert_eq!(duration_text(0), "0s");
    }
}
