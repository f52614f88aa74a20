//! The peer relationship: what a heartbeat round says of this switch, and
//! what the node does with what the peer machine concludes (alerts, roles,
//! strict-mode holds, split-brain and peer-link recovery holds). The
//! heartbeat's socket, keys and anti-replay are the daemon's
//! (`daemon::heartbeat`).

use std::time::{Duration, Instant};

use super::{Effect, Node};
use crate::config::{Gateway, GatewayKind, Peer};
use crate::core::consistency::{self, GwConfig, Mismatch, PeerConfig};
use crate::core::gateway::{GwState, HoldReason};
use crate::core::heartbeat::{FLAG_DRAINED, FLAG_GOODBYE, GwEntry, Heartbeat, MAX_ENTRIES};
use crate::core::member::MemberHoldReason;
use crate::core::peer::{LinkState, PeerChange, PeerMachine, PeerState, Role};
use crate::telemetry::{Kind, Notice, ids};

/// Counts a peer claims are bounded before use: no gateway holds more.
pub const MAX_PEER_COUNT: u32 = 1 << 20;

/// The peer relationship as the node keeps it: the liveness and role
/// machine and the configuration differences found.
pub struct PeerNode {
    pub cfg: Peer,
    pub machine: PeerMachine,
    pub mismatches: Vec<Mismatch>,
}

impl PeerNode {
    pub fn new(cfg: &Peer, node: &str, now: Instant) -> Self {
        PeerNode {
            cfg: cfg.clone(),
            machine: PeerMachine::new(
                cfg.interval,
                cfg.multiplier,
                node,
                cfg.priority.min(255) as u8,
                now,
            ),
            mismatches: Vec::new(),
        }
    }
}

/// A gateway's state as a heartbeat carries it.
fn wire_state(state: GwState) -> u8 {
    match state {
        GwState::Down(_) => 0,
        GwState::Holding { .. } => 1,
        GwState::Up => 2,
    }
}

/// What a configuration comparison depends on: the peer's table (its
/// configuration fields, not its states and counts), its node policy, and
/// the generation of our configuration and of the peer's exact values.
fn comparison_inputs(p: &PeerNode, generation: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    generation.hash(&mut h);
    for (k, e) in &p.machine.table {
        (k, e.mac, e.up_delay_ms, e.ipv4_digest, e.ipv6_digest).hash(&mut h);
    }
    p.machine
        .policy
        .map(|n| (n.member_up_delay_ms, n.dynamic, n.min_ms, n.max_ms))
        .hash(&mut h);
    h.finish()
}

impl Node {
    /// A reload: keys are re-read; a changed address or port starts the
    /// relationship afresh; other settings apply in place.
    /// A reload: a changed address or port starts the relationship afresh
    /// (a new sync channel too); other settings apply in place; new keys
    /// re-key the sync channel.
    pub(super) fn update_peer(
        &mut self,
        new: &crate::config::Config,
        keys_changed: bool,
        now: Instant,
    ) {
        match (&mut self.peer, &new.peer) {
            (None, None) => {}
            (Some(_), None) => {
                self.peer = None;
                self.sync = None;
                self.out.push(Effect::PeerStop);
                self.out.push(Effect::SyncStop);
            }
            (Some(rt), Some(p))
                if rt.cfg.local == p.local
                    && rt.cfg.address == p.address
                    && rt.cfg.port == p.port =>
            {
                rt.machine.interval = p.interval;
                rt.machine.multiplier = p.multiplier;
                rt.machine.local_priority = p.priority.min(255) as u8;
                rt.cfg = p.clone();
                if keys_changed {
                    self.rekey_sync();
                }
            }
            (_, Some(p)) => {
                self.peer = Some(PeerNode::new(p, &new.node.name, now));
                self.out.push(Effect::PeerStart(Box::new(p.clone())));
                // a new peer (or a new address or port): a new sync
                // channel too, not only at start-up
                self.start_sync();
            }
        }
        // a new peer, or a renamed peer_link: its state as the kernel has it
        self.on_peer_link_event(now);
        self.apply_strict_holds(now);
        self.apply_split_brain(now);
    }

    pub fn heartbeat_period(&self) -> Duration {
        self.peer
            .as_ref()
            .map(|p| p.cfg.interval)
            .unwrap_or(Duration::from_secs(3600))
    }

    fn local_entries(&self) -> Vec<GwEntry> {
        self.gateways
            .iter()
            .map(|g| {
                let (arp, nd) = self
                    .view
                    .owned_device(&g.cfg.name, &g.cfg.device)
                    .map(|d| self.view.neigh_counts(d.index))
                    .unwrap_or_default();
                GwEntry {
                    state: wire_state(g.machine.state),
                    arp,
                    nd,
                    ..g.wire_entry
                }
            })
            .collect()
    }

    /// This switch's heartbeat round: as many pages as the gateways need
    /// (the daemon seals and sends each). None without a peer.
    pub fn heartbeat_round(&self) -> Vec<Heartbeat> {
        let Some(p) = self.peer.as_ref() else {
            return Vec::new();
        };
        let entries = self.local_entries();
        let degraded = self.gateways.iter().any(|g| g.last_error.is_some());
        let link_state = self.peer_link_state();
        let policy = consistency::node_policy(&self.cfg);
        let flags = if self.drained { FLAG_DRAINED } else { 0 };
        let pages = entries.len().div_ceil(MAX_ENTRIES).max(1);
        (0..pages)
            .map(|page| {
                let mut hb = Heartbeat {
                    priority: p.machine.local_priority,
                    health: u8::from(degraded),
                    health_reasons: u32::from(degraded),
                    peer_link: link_state.wire(),
                    page: page as u16,
                    pages: pages as u16,
                    policy: Some(policy),
                    flags,
                    ..Default::default()
                };
                for e in entries.iter().skip(page * MAX_ENTRIES).take(MAX_ENTRIES) {
                    let _ = hb.gateways.push(*e);
                }
                hb
            })
            .collect()
    }

    /// A clean stop's last word: the peer reports us down at once
    /// (`peer-shutdown`) instead of after interval × multiplier.
    pub fn goodbye(&self) -> Option<Heartbeat> {
        let p = self.peer.as_ref()?;
        Some(Heartbeat {
            priority: p.machine.local_priority,
            peer_link: self.peer_link_state().wire(),
            page: 0,
            pages: 1,
            flags: FLAG_GOODBYE,
            ..Default::default()
        })
    }

    /// An authenticated, fresh heartbeat page from the peer.
    pub(super) fn on_heartbeat(
        &mut self,
        hb: &Heartbeat,
        rtt: Option<Duration>,
        previous_key_retired: bool,
        now: Instant,
    ) {
        let Some(p) = self.peer.as_mut() else { return };
        if rtt.is_some() {
            p.machine.rtt = rtt;
        }
        let changes = p.machine.on_heartbeat(hb, now);
        if previous_key_retired {
            self.previous_key_retired();
        }
        self.on_peer_changes(changes, now);
    }

    pub(super) fn peer_link_state(&self) -> LinkState {
        let Some(p) = &self.peer else {
            return LinkState::NotConfigured;
        };
        match &p.cfg.peer_link {
            None => LinkState::NotConfigured,
            Some(name) => match self.view.link_by_name(name) {
                Some(l) if l.admin_up && l.oper_up => LinkState::Up,
                _ => LinkState::Down,
            },
        }
    }

    /// The peer authenticated with our current key: `previous_key_file` is
    /// refused from now on (until a reload reads it again), on the sync
    /// channel too, whose live session is re-keyed.
    fn previous_key_retired(&mut self) {
        let Some(p) = self.peer.as_ref() else { return };
        let file = p
            .cfg
            .previous_key_file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        let n = Notice::new(
            Kind::Alert,
            ids::PEER_KEY_RETIRED,
            p.cfg.address.to_string(),
            format!(
                "the peer authenticated with the current key; the previous key ({file}) is refused from now on: remove previous_key_file"
            ),
        )
        .with("previous_key_file", file.clone());
        self.emit(n);
        self.rekey_sync();
    }

    /// Give the sync channel the current keys; a live session (keyed from
    /// the old ones) ends, and the next one runs its handshake on the new
    /// keys.
    fn rekey_sync(&mut self) {
        if let Some(s) = self.sync.as_mut() {
            // the daemon drops the session's sender (docs/sync.md, API)
            s.session_open = false;
            self.out.push(Effect::SyncRekey);
        }
    }

    pub(super) fn on_peer_tick(&mut self, now: Instant) {
        let Some(p) = self.peer.as_mut() else { return };
        let changes = p.machine.tick(now);
        self.on_peer_changes(changes, now);
    }

    /// The peer-link's state may have changed (a kernel event).
    pub(super) fn on_peer_link_event(&mut self, now: Instant) {
        let state = self.peer_link_state();
        let Some(p) = self.peer.as_mut() else { return };
        if p.machine.peer_link == state {
            return;
        }
        let changes = p.machine.on_peer_link(state);
        self.on_peer_changes(changes, now);
    }

    fn is_backup(&self) -> bool {
        self.peer
            .as_ref()
            .is_some_and(|p| p.machine.state == PeerState::Up && p.machine.role == Role::Backup)
    }

    fn on_peer_changes(&mut self, changes: Vec<PeerChange>, now: Instant) {
        let any = !changes.is_empty();
        self.on_peer_changes_inner(changes, now);
        if any {
            self.update_progress(now);
        }
    }

    fn on_peer_changes_inner(&mut self, changes: Vec<PeerChange>, now: Instant) {
        for c in changes {
            let peer_addr = self
                .peer
                .as_ref()
                .map(|p| p.cfg.address.to_string())
                .unwrap_or_default();
            match c {
                PeerChange::State(PeerState::Up) => {
                    self.out.push(Effect::HeartbeatNow);
                    self.emit(
                        Notice::new(
                            Kind::Alert,
                            ids::PEER_UP,
                            peer_addr.clone(),
                            format!("peer {peer_addr} is up"),
                        )
                        .with("state", "up"),
                    );
                }
                PeerChange::State(s) => {
                    let (dead, reason) = self
                        .peer
                        .as_ref()
                        .map(|p| {
                            (
                                p.machine.dead_interval().as_millis() as u64,
                                p.machine.reason,
                            )
                        })
                        .unwrap_or((0, None));
                    let message = match reason {
                        Some(r) => format!(
                            "peer {peer_addr} is {}: it said goodbye ({r}, a clean stop)",
                            s.as_str()
                        ),
                        None => format!(
                            "peer {peer_addr} is {}: no heartbeat for {dead} ms",
                            s.as_str()
                        ),
                    };
                    self.emit(
                        Notice::new(Kind::Alert, ids::PEER_DOWN, peer_addr.clone(), message)
                            .with("state", s.as_str())
                            .with("reason", reason),
                    );
                    if let Some(p) = self.peer.as_mut() {
                        p.mismatches.clear();
                        self.compared = None;
                    }
                    // nothing the peer sent before this may bring it back
                    self.out.push(Effect::HeartbeatRestart);
                    self.apply_strict_holds(now);
                }
                PeerChange::Role(r) => {
                    self.emit(
                        Notice::new(
                            Kind::State,
                            ids::ROLE,
                            self.cfg.node.name.clone(),
                            format!("role is now {}", r.as_str()),
                        )
                        .with("role", r.as_str()),
                    );
                    self.apply_strict_holds(now);
                    self.apply_split_brain(now);
                }
                PeerChange::TableComplete => self.check_consistency(now),
                PeerChange::SplitBrain(on) => {
                    let msg = if on {
                        "split-brain: peer-link down while the peer is alive; the backup holds its members down"
                    } else {
                        "split-brain over"
                    };
                    self.emit(
                        Notice::new(Kind::Alert, ids::SPLIT_BRAIN, peer_addr.clone(), msg)
                            .with("active", on),
                    );
                    self.apply_split_brain(now);
                }
                PeerChange::PeerLinkRecovered => {
                    if self.is_backup() {
                        self.peer_link_recovery(now);
                    }
                }
                PeerChange::Drained(on) => {
                    let msg = if on {
                        format!(
                            "peer {peer_addr} is drained for maintenance: its members are down on purpose"
                        )
                    } else {
                        format!("peer {peer_addr} resumed from its drain")
                    };
                    self.emit(
                        Notice::new(Kind::State, ids::PEER_DRAINED, peer_addr.clone(), msg)
                            .with("drained", on),
                    );
                }
            }
        }
    }

    /// Compare with what we know of the peer's configuration (its last
    /// heartbeat round, its node policy, the exact values from the sync
    /// channel); alert and apply strict mode when the differences change.
    pub(super) fn check_consistency(&mut self, now: Instant) {
        let Some(p) = self.peer.as_ref() else { return };
        let inputs = comparison_inputs(p, self.consistency_gen);
        if self.compared == Some(inputs) {
            // the same round again: nothing new to compare
            return;
        }
        self.compared = Some(inputs);
        // made here, not kept per gateway: compared only when inputs change
        let local: Vec<(String, GwConfig)> = self
            .gateways
            .iter()
            .map(|g| (g.cfg.name.to_string(), GwConfig::of(&g.cfg)))
            .collect();
        let local_node = consistency::node_policy(&self.cfg);
        let no_exact = Default::default();
        let exact = self
            .sync
            .as_ref()
            .map_or(&no_exact, |s| &s.peer_gateways.known);
        let Some(p) = self.peer.as_mut() else { return };
        let found = consistency::compare(
            &local,
            &local_node,
            PeerConfig {
                table: &p.machine.table,
                exact,
                node: p.machine.policy,
            },
        );
        if found != p.mismatches {
            p.mismatches = found.clone();
            let addr = p.cfg.address.to_string();
            if found.is_empty() {
                self.emit(Notice::new(
                    Kind::Alert,
                    ids::PEER_CONSISTENT,
                    addr,
                    "configuration consistent with the peer again",
                ));
            } else {
                let list: Vec<serde_json::Value> = found.iter().map(Mismatch::to_json).collect();
                let text: Vec<String> = found.iter().map(Mismatch::text).collect();
                self.emit(
                    Notice::new(
                        Kind::Alert,
                        ids::PEER_MISMATCH,
                        addr,
                        format!("configuration differs from the peer: {}", text.join("; ")),
                    )
                    .with("mismatches", list),
                );
            }
            self.apply_strict_holds(now);
        }
    }

    /// The peer's exact values arrived (or ours changed): compare again at
    /// once if a complete heartbeat round is there to compare with.
    pub(super) fn recheck_consistency(&mut self, now: Instant) {
        // our configuration or the peer's exact values changed
        self.consistency_gen += 1;
        if self
            .peer
            .as_ref()
            .is_some_and(|p| p.machine.state == PeerState::Up && !p.machine.table.is_empty())
        {
            self.check_consistency(now);
        }
    }

    /// Strict mode: the backup error-downs mismatched gateways until fixed.
    fn apply_strict_holds(&mut self, now: Instant) {
        let strict_backup = self.is_backup() && self.peer.as_ref().is_some_and(|p| p.cfg.strict);
        let mismatched: Vec<String> = self
            .peer
            .as_ref()
            .map(|p| {
                consistency::strict_holds(&p.mismatches)
                    .into_iter()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        for i in 0..self.gateways.len() {
            let hold = strict_backup && mismatched.iter().any(|m| self.gateways[i].cfg.name == *m);
            if self.gateways[i].machine.mismatch_hold != hold {
                self.gateways[i].machine.mismatch_hold = hold;
                self.gateways[i].converged = false;
                let name = self.gateways[i].cfg.name;
                let (state, reason) = self.gateways[i].machine.shown();
                self.emit(
                    Notice::new(
                        Kind::State,
                        ids::GATEWAY_STATE,
                        name,
                        format!(
                            "gateway {name} {} (strict mode)",
                            if hold {
                                "held: differs from the peer"
                            } else {
                                "released: consistent with the peer"
                            }
                        ),
                    )
                    .with("state", state)
                    .with("reason", reason),
                );
                self.reconcile_gateway(i, now);
            }
        }
    }

    fn apply_split_brain(&mut self, now: Instant) {
        let on = self.is_backup() && self.peer.as_ref().is_some_and(|p| p.machine.split_brain);
        let mut changed = false;
        for m in &mut self.members {
            if m.split_brain != on {
                m.split_brain = on;
                changed = true;
            }
        }
        if changed {
            for m in &self.members {
                let n = Notice::new(
                    Kind::State,
                    ids::MEMBER_STATE,
                    m.name.clone(),
                    format!(
                        "member {} {}",
                        m.name,
                        if on {
                            "held: split-brain"
                        } else {
                            "split-brain hold released"
                        }
                    ),
                )
                .with("reason", m.reason());
                self.out.push(Effect::Notice(n));
            }
            self.reconcile_members(now);
        }
    }

    /// The backup after the peer-link came back: gateway and member up-delays again.
    fn peer_link_recovery(&mut self, now: Instant) {
        self.emit(Notice::new(
            Kind::Alert,
            ids::PEER_LINK_RECOVERY,
            self.cfg.node.name.clone(),
            "peer-link recovered: re-applying the gateway and member up-delays",
        ));
        for i in 0..self.gateways.len() {
            let before = self.gateways[i].machine.state;
            if let Some(new) = self.gateways[i]
                .machine
                .rehold(HoldReason::PeerLinkRecovery, now)
            {
                self.gateways[i].converged = false;
                self.note_gateway_state(i, before, new);
                self.reconcile_gateway(i, now);
            }
        }
        let delay = self.cfg.mlag.member_up_delay;
        for m in &mut self.members {
            m.hold_for(delay, MemberHoldReason::PeerLinkRecovery, now);
        }
        for m in self.members.iter().filter(|m| m.hold.is_some()) {
            self.out
                .push(Effect::Notice(super::members::hold_start_notice(m, now)));
        }
        self.reconcile_members(now);
        self.save_member_records(now);
    }

    pub(super) fn peer_deadline(&self) -> Option<Instant> {
        self.peer.as_ref().and_then(|p| p.machine.deadline())
    }

    /// The peer's counts for a gateway, bounded.
    pub(super) fn peer_counts(&self, g: &Gateway) -> Option<(u32, u32)> {
        let p = self.peer.as_ref()?;
        let (kind, id) = match g.kind {
            GatewayKind::Vlanif(v) => (1u8, u32::from(v)),
            GatewayKind::Vbdif(b) => (2u8, b),
        };
        p.machine
            .table
            .get(&(kind, id))
            .map(|e| (e.arp.min(MAX_PEER_COUNT), e.nd.min(MAX_PEER_COUNT)))
    }
}
