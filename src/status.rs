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
        let _ = writeln!(
            s,
            "dagw {}  node {}  role {}  peer {}",
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
