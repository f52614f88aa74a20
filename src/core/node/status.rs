//! `dagw status`: what the node shows of itself (DESIGN.md §5).

use std::time::Instant;

use super::Node;
use crate::core::bypass;
use crate::status::{Counts, GatewayStatus, MemberStatus, PeerStatus, Status};

impl Node {
    pub fn status(&self, now: Instant) -> Status {
        let gateways = self
            .gateways
            .iter()
            .map(|g| {
                let dev = self.view.owned_device(&g.cfg.name, &g.cfg.device);
                let (arp, nd) = dev
                    .map(|d| self.view.neigh_counts(d.index))
                    .unwrap_or_default();
                let peer_counts = self.peer_counts(&g.cfg);
                GatewayStatus {
                    name: g.cfg.name.to_string(),
                    kind: g.cfg.kind.kind_str().into(),
                    id: g.cfg.kind.id(),
                    interface: g.cfg.interface.to_string(),
                    device: g.cfg.device.to_string(),
                    mac: g.cfg.mac.to_string(),
                    ipv4: g.cfg.ipv4.iter().map(|p| p.to_string()).collect(),
                    ipv6: g.cfg.ipv6.iter().map(|p| p.to_string()).collect(),
                    link_local: g.cfg.link_local().map(|p| p.to_string()),
                    state: g.machine.shown().0.into(),
                    reason: g.machine.shown().1.map(String::from),
                    hold_remaining_ms: g.machine.hold_remaining(now).map(|d| d.as_millis() as u64),
                    up_delay_ms: g.cfg.up_delay.as_millis() as u64,
                    arp: Counts {
                        local: arp,
                        peer: peer_counts.map(|c| c.0),
                    },
                    nd: Counts {
                        local: nd,
                        peer: peer_counts.map(|c| c.1),
                    },
                    corrections: g.drift.corrections,
                    error: g.last_error.clone(),
                    bypass: g.cfg.vxlan.as_deref().map(|vx| {
                        let state = bypass::bypass_state(vx, &g.cfg.interface, &self.view);
                        serde_json::json!({"device": vx.device, "state": state.as_str()})
                    }),
                }
            })
            .collect();
        let uplinks = match (&self.cfg.uplinks, &self.uplinks) {
            (Some(c), Some(t)) => serde_json::json!({
                "state": t.state.as_str(),
                "up": t.up,
                "min_up": t.min_up,
                "recover_remaining_ms": t.recover_remaining(now).map(|d| d.as_millis() as u64),
                "interfaces": c.interfaces.iter().map(|n| {
                    let state = match self.view.link_by_name(n) {
                        Some(l) if l.oper_up => "up",
                        Some(_) => "down",
                        None => "missing",
                    };
                    serde_json::json!({"name": n, "state": state})
                }).collect::<Vec<_>>(),
            }),
            _ => serde_json::json!({
                "state": "disabled", "up": null, "min_up": null,
                "recover_remaining_ms": null, "interfaces": [],
            }),
        };
        let members = self
            .members
            .iter()
            .map(|m| MemberStatus {
                name: m.name.clone(),
                state: m.state(&self.view).into(),
                reason: m.reason().map(String::from),
                method: m.record.method.as_str().into(),
                hold_remaining_ms: m
                    .deadline()
                    .map(|d| d.saturating_duration_since(now).as_millis() as u64),
            })
            .collect();
        Status {
            version: self.version.clone(),
            node: self.cfg.node.name.clone(),
            role: self.peer.as_ref().map(|p| p.machine.role_str()).unwrap_or("standalone").into(),
            peer: match &self.peer {
                None => PeerStatus {
                    state: "disabled".into(),
                    address: None,
                    last_heard_ms: None,
                    rtt_us: None,
                    consistent: None,
                    mismatches: None,
                    heartbeats: None,
                    sync: None,
                    reason: None,
                    drained: None,
                },
                Some(p) => PeerStatus {
                    reason: p.machine.reason.map(String::from),
                    drained: Some(p.machine.peer_drained),
                    state: p.machine.state.as_str().into(),
                    address: Some(p.cfg.address.to_string()),
                    last_heard_ms: p.machine.last_heard.map(|t| now.saturating_duration_since(t).as_millis() as u64),
                    rtt_us: p.machine.rtt.map(|d| d.as_micros() as u64),
                    consistent: Some(p.mismatches.is_empty()),
                    mismatches: Some(
                        p.mismatches
                            .iter()
                            .map(|m| serde_json::json!({"gateway": m.gateway, "field": m.field, "local": m.local, "peer": m.peer}))
                            .collect(),
                    ),
                    sync: self.sync.as_ref().map(|s| {
                        serde_json::json!({
                            "state": if s.established { "established" } else { "connecting" },
                            "sessions": s.sessions,
                            "peer_entries": s.table.len(),
                            "bulk_complete": s.bulk_complete,
                            "refused": {
                                "outside-prefix": s.table.refused.outside_prefix,
                                "over-limit": s.table.refused.over_limit,
                            },
                            // the sync sessions' count: the daemon's to fill
                            "rejected": {},
                        })
                    }),
                    // the heartbeat link's counters: the daemon's to fill
                    heartbeats: None,
                },
            },
            gateways,
            members,
            drained: self.drained,
            uplinks,
        }
    }
}
