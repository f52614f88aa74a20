//! The status document of `dagw status --json` (DESIGN.md §5, contract: fields
//! may be added, none renamed or dropped) and its human table.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub node: String,
    pub role: String,
    pub peer: PeerStatus,
    pub gateways: Vec<GatewayStatus>,
    pub members: Vec<MemberStatus>,
    /// `dagw drain` in force (members held for maintenance).
    #[serde(default)]
    pub drained: bool,
    /// `{"state": "up"|"down"|"recovering"|"disabled", "up", "min_up",
    /// "recover_remaining_ms", "interfaces": [{"name", "state"}]}`.
    #[serde(default)]
    pub uplinks: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerStatus {
    pub state: String,
    // Every field is always present: null when unknown (DESIGN.md §5).
    pub address: Option<String>,
    pub last_heard_ms: Option<u64>,
    pub rtt_us: Option<u64>,
    pub consistent: Option<bool>,
    pub mismatches: Option<Vec<serde_json::Value>>,
    /// Heartbeat counters: `{"tx", "rx", "dropped": {reason: count}}`.
    pub heartbeats: Option<serde_json::Value>,
    /// ARP/ND sync channel: `{"state", "sessions", "peer_entries",
    /// "bulk_complete", "refused", ...}`.
    pub sync: Option<serde_json::Value>,
    /// Why the peer is down when it said so: `peer-shutdown` after its
    /// goodbye; else null.
    #[serde(default)]
    pub reason: Option<String>,
    /// The peer is drained for maintenance (null without a peer).
    #[serde(default)]
    pub drained: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counts {
    pub local: u32,
    pub peer: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayStatus {
    pub name: String,
    pub kind: String,
    pub id: u32,
    pub interface: String,
    pub device: String,
    pub mac: String,
    pub ipv4: Vec<String>,
    pub ipv6: Vec<String>,
    pub link_local: Option<String>,
    pub state: String,
    pub reason: Option<String>,
    pub hold_remaining_ms: Option<u64>,
    pub up_delay_ms: u64,
    pub arp: Counts,
    pub nd: Counts,
    pub corrections: u64,
    /// The last error applying this gateway, if it is not converged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// VBDIF: `{"device", "state": "ok" | "missing" | "not-vxlan" |
    /// "not-in-bd" | "no-flood-entry"}`; null for a VLANIF.
    #[serde(default)]
    pub bypass: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberStatus {
    pub name: String,
    pub state: String,
    pub reason: Option<String>,
    pub method: String,
    pub hold_remaining_ms: Option<u64>,
}

fn secs(ms: Option<u64>) -> String {
    ms.map(|m| format!("{:.1}s", m as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

impl Status {
    /// The human table of `dagw status`.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        // judged only while the peer is up (its table is gone otherwise)
        let up = self.peer.state == "up";
        let consistency = match (self.peer.consistent, self.peer.mismatches.as_ref()) {
            _ if !up => String::new(),
            (Some(true), _) => " (consistent)".to_string(),
            (Some(false), Some(m)) => format!(
                " ({} mismatch{})",
                m.len(),
                if m.len() == 1 { "" } else { "es" }
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "dagw {}  node {}  role {}  peer {}{consistency}",
            self.version, self.node, self.role, self.peer.state
        );
        if let Some(r) = &self.peer.reason {
            let _ = writeln!(s, "peer down: {r}");
        }
        if self.peer.drained == Some(true) {
            let _ = writeln!(s, "peer drained for maintenance");
        }
        if self.drained {
            let _ = writeln!(
                s,
                "DRAINED: every member held for maintenance (dagw resume ends it)"
            );
        }
        if let Some(state) = self.uplinks["state"].as_str().filter(|s| *s != "disabled") {
            let _ = writeln!(
                s,
                "uplinks {state}: {} up, {} needed{}",
                self.uplinks["up"],
                self.uplinks["min_up"],
                self.uplinks["recover_remaining_ms"]
                    .as_u64()
                    .map(|ms| format!(", members released in {}", secs(Some(ms))))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(
            s,
            "\n{:<14} {:<7} {:<10} {:<10} {:<17} {:<8} {:<18} {:>7} {:>11} {:>11} {:>5}",
            "GATEWAY",
            "KIND",
            "INTERFACE",
            "DEVICE",
            "MAC",
            "STATE",
            "REASON",
            "HOLD",
            "ARP",
            "ND",
            "CORR"
        );
        for g in &self.gateways {
            let pair = |c: &Counts| match c.peer {
                Some(p) => format!("{}/{}", c.local, p),
                None => c.local.to_string(),
            };
            let _ = writeln!(
                s,
                "{:<14} {:<7} {:<10} {:<10} {:<17} {:<8} {:<18} {:>7} {:>11} {:>11} {:>5}",
                g.name,
                format!("{}", g.kind),
                g.interface,
                g.device,
                g.mac,
                g.state,
                g.reason.as_deref().unwrap_or("-"),
                secs(g.hold_remaining_ms),
                pair(&g.arp),
                pair(&g.nd),
                g.corrections
            );
            let addrs: Vec<&str> = g
                .ipv4
                .iter()
                .chain(g.ipv6.iter())
                .map(String::as_str)
                .collect();
            if !addrs.is_empty() {
                let _ = writeln!(s, "{:<14} {}", "", addrs.join(" "));
            }
            if let Some(e) = &g.error {
                let _ = writeln!(s, "{:<14} error: {}", "", e);
            }
            if let Some(b) = g.bypass.as_ref().filter(|b| b["state"] != "ok") {
                let _ = writeln!(
                    s,
                    "{:<14} bypass tunnel {}: {}",
                    "",
                    b["device"].as_str().unwrap_or("?"),
                    b["state"].as_str().unwrap_or("?")
                );
            }
        }
        let mismatches = self.peer.mismatches.as_deref().unwrap_or_default();
        if !mismatches.is_empty() {
            let _ = writeln!(s, "\n{:<14} {:<16} LOCAL / PEER", "MISMATCH", "FIELD");
            for m in mismatches {
                let text = |k: &str| match &m[k] {
                    serde_json::Value::String(v) => v.clone(),
                    serde_json::Value::Null => "-".into(),
                    other => other.to_string(),
                };
                let gateway = m["gateway"].as_str().unwrap_or("(node)");
                let _ = writeln!(
                    s,
                    "{:<14} {:<16} local {}",
                    gateway,
                    text("field"),
                    text("local")
                );
                let _ = writeln!(s, "{:<14} {:<16} peer  {}", "", "", text("peer"));
            }
        }
        if !self.members.is_empty() {
            let _ = writeln!(
                s,
                "\n{:<14} {:<8} {:<18} {:<11} {:>9}",
                "MEMBER", "STATE", "REASON", "METHOD", "HOLD"
            );
            for m in &self.members {
                let _ = writeln!(
                    s,
                    "{:<14} {:<8} {:<18} {:<11} {:>9}",
                    m.name,
                    m.state,
                    m.reason.as_deref().unwrap_or("-"),
                    m.method,
                    secs(m.hold_remaining_ms)
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(mismatches: serde_json::Value) -> Status {
        let consistent = mismatches.as_array().map(|m| m.is_empty());
        serde_json::from_value(serde_json::json!({
            "version": "0.1.0", "node": "leafb", "role": "backup",
            "peer": {"state": "up", "address": "203.0.113.1", "consistent": consistent,
                     "mismatches": mismatches},
            "gateways": [], "members": [],
        }))
        .expect("a status document")
    }

    #[test]
    fn the_table_shows_each_mismatch_with_both_values() {
        let t = status(serde_json::json!([
            {"gateway": "vlanif10", "field": "ipv4",
             "local": "198.51.100.1/25, 198.51.100.129/25 sub",
             "peer": "198.51.100.1/25, 198.51.100.130/25 sub"},
            {"gateway": null, "field": "member_up_delay", "local": "240s", "peer": "300s"},
        ]))
        .table();
        assert!(t.contains("peer up (2 mismatches)"), "{t}");
        assert!(t.contains("MISMATCH"), "{t}");
        let lines: Vec<&str> = t.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("vlanif10") && l.contains("ipv4"))
            .expect("a line for vlanif10 ipv4");
        assert!(
            lines[at].ends_with("local 198.51.100.1/25, 198.51.100.129/25 sub"),
            "{t}"
        );
        assert!(
            lines[at + 1].ends_with("peer  198.51.100.1/25, 198.51.100.130/25 sub"),
            "{t}"
        );
        let node = lines
            .iter()
            .position(|l| l.starts_with("(node)"))
            .expect("a node-wide line");
        assert!(
            lines[node].contains("member_up_delay") && lines[node].ends_with("local 240s"),
            "{t}"
        );
        assert!(lines[node + 1].ends_with("peer  300s"), "{t}");
    }

    #[test]
    fn no_mismatch_section_when_consistent() {
        let t = status(serde_json::json!([])).table();
        assert!(t.contains("peer up (consistent)"), "{t}");
        assert!(!t.contains("MISMATCH"), "{t}");
        let mut down = status(serde_json::json!([]));
        down.peer.state = "down".into();
        let t = down.table();
        assert!(
            t.contains("peer down\n"),
            "nothing judged without the peer: {t}"
        );
    }
}
