//! The daemon's side of the peer relationship: the UDP heartbeat socket, and
//! what the daemon does with what the peer machine concludes (alerts, roles,
//! strict-mode holds, split-brain and peer-link recovery holds).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Daemon;
use crate::config::{self, Gateway, GatewayKind, Peer};
use crate::core::consistency::{self, GwConfig, Mismatch, PeerConfig};
use crate::core::gateway::{GwState, HoldReason};
use crate::core::member::MemberHoldReason;
use crate::core::peer::{LinkState, PeerChange, PeerMachine, PeerState, Role};
use crate::peer::auth::{Key, Keyring};
use crate::peer::codec::{FLAG_DRAINED, FLAG_GOODBYE, GwEntry, Heartbeat, MAX_ENTRIES, MAX_PACKET};
use crate::peer::link::{DropReason, PeerLink, random_epoch};
use crate::telemetry::{Kind, Notice, ids};

/// Counts a peer claims are bounded before use: no gateway holds more.
pub const MAX_PEER_COUNT: u32 = 1 << 20;
/// At most one log line per drop reason in this period.
const DROP_LOG_PERIOD: Duration = Duration::from_secs(10);

pub struct PeerRuntime {
    pub cfg: Peer,
    pub machine: PeerMachine,
    pub link: PeerLink,
    /// The keys as last read from the key files (the link may have dropped
    /// the previous one since): a reload re-keys only when these change.
    configured_keys: Keyring,
    pub socket: Option<std::sync::Arc<tokio::net::UdpSocket>>,
    pub mismatches: Vec<Mismatch>,
    drop_logged: [Option<Instant>; DropReason::ALL.len()],
    drop_suppressed: [u64; DropReason::ALL.len()],
    /// When we last answered a `stale` packet at once (at most once an interval).
    prompt_answered: Option<Instant>,
}

#[derive(Debug, thiserror::Error)]
pub enum PeerSetupError {
    #[error("peer key: {0}")]
    Key(#[from] config::KeyFileError),
    #[error("random epoch from /dev/urandom: {0}")]
    Random(std::io::Error),
    #[error("heartbeat socket {addr}: {source}")]
    Socket {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub fn keyring(cfg: &Peer) -> Result<Keyring, PeerSetupError> {
    let current = Key::new(config::read_key_file(&cfg.key_file)?);
    let previous = match &cfg.previous_key_file {
        Some(p) => Some(Key::new(config::read_key_file(p)?)),
        None => None,
    };
    Ok(Keyring { current, previous })
}

impl PeerRuntime {
    /// A relationship with a random epoch of ours (docs/protocol.md, "Freshness").
    pub fn new(cfg: &Peer, node: &str, now: Instant) -> Result<Self, PeerSetupError> {
        let keys = keyring(cfg)?;
        let peer = SocketAddr::new(cfg.address, cfg.port);
        let epoch = random_epoch().map_err(PeerSetupError::Random)?;
        Ok(PeerRuntime {
            cfg: cfg.clone(),
            machine: PeerMachine::new(
                cfg.interval,
                cfg.multiplier,
                node,
                cfg.priority.min(255) as u8,
                now,
            ),
            configured_keys: keys.clone(),
            link: PeerLink::new(keys, cfg.local, peer, node, epoch),
            socket: None,
            mismatches: Vec::new(),
            drop_logged: [None; DropReason::ALL.len()],
            drop_suppressed: [0; DropReason::ALL.len()],
            prompt_answered: None,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::new(self.cfg.local, self.cfg.port)
    }

    /// Rate-limited log of a dropped packet; true when this one should be logged.
    fn should_log_drop(&mut self, r: DropReason, now: Instant) -> Option<u64> {
        let i = DropReason::ALL.iter().position(|x| *x == r).unwrap_or(0);
        match self.drop_logged[i] {
            Some(t) if now.duration_since(t) < DROP_LOG_PERIOD => {
                self.drop_suppressed[i] += 1;
                None
            }
            _ => {
                self.drop_logged[i] = Some(now);
                Some(std::mem::take(&mut self.drop_suppressed[i]))
            }
        }
    }
}

/// What the peer must agree on (in the canonical form of
/// `core::consistency`), plus state and counts, for one gateway.
pub fn entry(g: &Gateway, state: GwState, arp: u32, nd: u32) -> GwEntry {
    let state = match state {
        GwState::Down(_) => 0,
        GwState::Holding { .. } => 1,
        GwState::Up => 2,
    };
    GwConfig::of(g).entry(state, arp, nd)
}

/// Wait for a datagram; never ready without a socket.
pub async fn recv(
    sock: Option<&tokio::net::UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Bind the heartbeat socket; returns a handle for receiving.
    pub(super) fn bind_peer(
        &mut self,
    ) -> Result<Option<std::sync::Arc<tokio::net::UdpSocket>>, PeerSetupError> {
        let Some(p) = self.peer.as_mut() else {
            return Ok(None);
        };
        let addr = p.local_addr();
        let s = std::sync::Arc::new(
            crate::peer::net::udp(addr)
                .map_err(|source| PeerSetupError::Socket { addr, source })?,
        );
        p.socket = Some(s.clone());
        Ok(Some(s))
    }

    /// A reload: keys are re-read; a changed address or port starts the
    /// relationship afresh; other settings apply in place.
    pub(super) fn update_peer(&mut self, new: &crate::config::Config, now: Instant) {
        let fresh = |p: &Peer, node: &str| PeerRuntime::new(p, node, now);
        match (&mut self.peer, &new.peer) {
            (_, None) => {
                self.peer = None;
                self.sync = None;
            }
            (Some(rt), Some(p))
                if rt.cfg.local == p.local
                    && rt.cfg.address == p.address
                    && rt.cfg.port == p.port =>
            {
                let mut rekey = None;
                match keyring(p) {
                    Ok(k) => {
                        if !k.same_as(&rt.configured_keys) {
                            rt.configured_keys = k.clone();
                            rt.link.keys = k.clone();
                            rekey = Some(k);
                        }
                    }
                    Err(e) => tracing::warn!("peer keys not re-read: {e}"),
                }
                rt.machine.interval = p.interval;
                rt.machine.multiplier = p.multiplier;
                rt.machine.local_priority = p.priority.min(255) as u8;
                rt.cfg = p.clone();
                if let Some(k) = rekey {
                    self.rekey_sync(k);
                }
            }
            (_, Some(p)) => match fresh(p, &new.node.name) {
                Ok(rt) => {
                    self.peer = Some(rt);
                    if let Err(e) = self.bind_peer() {
                        self.emit(Notice::new(
                            Kind::Alert,
                            ids::APPLY_FAILED,
                            "peer",
                            e.to_string(),
                        ));
                    }
                    // a new peer (or a new address or port): a new sync
                    // channel too, not only at start-up
                    self.start_sync();
                }
                Err(e) => self.emit(Notice::new(
                    Kind::Alert,
                    ids::APPLY_FAILED,
                    "peer",
                    e.to_string(),
                )),
            },
        }
        self.apply_strict_holds(now);
        self.apply_split_brain(now);
    }

    pub(super) fn heartbeat_period(&self) -> Duration {
        self.peer
            .as_ref()
            .map(|p| p.cfg.interval)
            .unwrap_or(Duration::from_secs(3600))
    }

    fn local_entries(&self) -> Vec<(String, GwEntry)> {
        self.gateways
            .iter()
            .map(|g| {
                let (arp, nd) = self
                    .view
                    .owned_device(&g.cfg.name, &g.cfg.device)
                    .map(|d| self.view.neigh_counts(d.index))
                    .unwrap_or_default();
                (
                    g.cfg.name.to_string(),
                    entry(&g.cfg, g.machine.state, arp, nd),
                )
            })
            .collect()
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

    /// Send one heartbeat round: as many pages as the gateways need.
    pub(super) async fn send_heartbeat(&mut self) {
        let entries = self.local_entries();
        let degraded = self.gateways.iter().any(|g| g.last_error.is_some());
        let link_state = self.peer_link_state();
        let policy = consistency::node_policy(&self.cfg);
        let flags = if self.drained { FLAG_DRAINED } else { 0 };
        let Some(p) = self.peer.as_mut() else { return };
        let Some(sock) = p.socket.as_ref() else {
            return;
        };
        let pages = entries.len().div_ceil(MAX_ENTRIES).max(1);
        let mut buf = [0u8; MAX_PACKET];
        for page in 0..pages {
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
            for (_, e) in entries.iter().skip(page * MAX_ENTRIES).take(MAX_ENTRIES) {
                let _ = hb.gateways.push(*e);
            }
            if let Some(n) = p.link.seal(&mut hb, Instant::now(), &mut buf) {
                // a lost heartbeat is what the dead interval is for
                let _ = sock.send_to(&buf[..n], p.link.peer).await;
            }
        }
    }

    /// A clean stop: one authenticated goodbye, so the peer reports us down
    /// at once (`peer-shutdown`) instead of after interval × multiplier.
    /// Sent twice, a few ms apart, against a lost datagram; the second is
    /// refused as a replay if the first arrived.
    pub(super) async fn send_goodbye(&mut self) {
        let link_state = self.peer_link_state();
        let Some(p) = self.peer.as_mut() else { return };
        let Some(sock) = p.socket.as_ref() else {
            return;
        };
        let mut buf = [0u8; MAX_PACKET];
        for _ in 0..2 {
            let mut hb = Heartbeat {
                priority: p.machine.local_priority,
                peer_link: link_state.wire(),
                page: 0,
                pages: 1,
                flags: FLAG_GOODBYE,
                ..Default::default()
            };
            hb.gateways.clear();
            if let Some(n) = p.link.seal(&mut hb, Instant::now(), &mut buf) {
                let _ = sock.send_to(&buf[..n], p.link.peer).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    pub(super) fn on_datagram(&mut self, pkt: &[u8], from: SocketAddr, now: Instant) {
        let Some(p) = self.peer.as_mut() else { return };
        match p.link.admit(pkt, from, now) {
            Ok((hb, rtt)) => {
                if rtt.is_some() {
                    p.machine.rtt = rtt;
                }
                let retired = p.link.take_previous_retired();
                let changes = p.machine.on_heartbeat(&hb, now);
                if retired {
                    self.previous_key_retired();
                }
                self.on_peer_changes(changes, now);
            }
            Err(reason) => {
                if reason == DropReason::Stale
                    && p.prompt_answered
                        .is_none_or(|t| now.duration_since(t) >= p.cfg.interval)
                {
                    // the peer (re)started: our answer carries its proof
                    p.prompt_answered = Some(now);
                    self.heartbeat_now = true;
                }
                if let Some(suppressed) = p.should_log_drop(reason, now) {
                    let total = p.link.counters.dropped(reason);
                    let id = if reason == DropReason::BadMac {
                        ids::PEER_AUTH_FAILED
                    } else {
                        ids::PEER_PACKET_DROPPED
                    };
                    self.emit(
                        Notice::new(
                            Kind::Alert,
                            id,
                            from.to_string(),
                            format!("dropped a heartbeat from {from}: {}", reason.as_str()),
                        )
                        .with("reason", reason.as_str())
                        .with("total", total)
                        .with("suppressed", suppressed),
                    );
                }
            }
        }
    }

    /// The peer authenticated with our current key: `previous_key_file` is
    /// refused from now on (until a reload reads it again), on the sync
    /// channel too, whose live session is re-keyed.
    fn previous_key_retired(&mut self) {
        let Some(p) = self.peer.as_ref() else { return };
        let keys = p.link.keys.clone();
        let file = p
            .cfg
            .previous_key_file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        self.emit(
            Notice::new(
                Kind::Alert,
                ids::PEER_KEY_RETIRED,
                p.cfg.address.to_string(),
                format!(
                    "the peer authenticated with the current key; the previous key ({file}) is refused from now on: remove previous_key_file"
                ),
            )
            .with("previous_key_file", file.clone()),
        );
        self.rekey_sync(keys);
    }

    /// Give the sync channel new keys; a live session (keyed from the old
    /// ones) ends, and the next one runs its handshake on the new keys.
    fn rekey_sync(&mut self, keys: Keyring) {
        if let Some(s) = self.sync.as_mut() {
            s.set_keys(keys);
            // dropping the sender ends the session (docs/sync.md, API)
            s.outbound = None;
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
                    self.heartbeat_now = true;
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
                        // nothing the peer sent before this may bring it back
                        let next = random_epoch().unwrap_or(p.link.epoch().wrapping_add(1));
                        p.link.restart(next);
                    }
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
                self.telemetry.emit(n);
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
            self.emit(super::hold_start_notice(m, now));
        }
        self.reconcile_members(now);
        self.save_member_records();
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
