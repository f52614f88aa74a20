//! The peer relationship, from authenticated heartbeats and time alone:
//! liveness (`init` → `up` → `down` after `interval × multiplier` of silence),
//! the master/backup role, configuration consistency, and the peer-link
//! conditions of the seed: split-brain (peer-link down, peer alive) and
//! peer-link recovery ("a large number of ARP entries need to be synchronized
//! in a batch", so the backup re-applies its up-delays).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use crate::core::consistency::{Mismatch, compare};
use crate::core::heartbeat::{FLAG_DRAINED, FLAG_GOODBYE, GwEntry, Heartbeat, NodePolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Init,
    Up,
    Down,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Init => "init",
            PeerState::Up => "up",
            PeerState::Down => "down",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    Backup,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Backup => "backup",
        }
    }
}

/// Seed: devices are master and backup; dagw: higher priority is master, a
/// tie goes to the lower node name.
pub fn elect(local_prio: u8, local_name: &str, peer_prio: u8, peer_name: &str) -> Role {
    if local_prio != peer_prio {
        if local_prio > peer_prio {
            Role::Master
        } else {
            Role::Backup
        }
    } else if local_name <= peer_name {
        Role::Master
    } else {
        Role::Backup
    }
}

/// Peer-link as the heartbeat reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    NotConfigured,
    Up,
    Down,
}

impl LinkState {
    pub fn wire(self) -> u8 {
        match self {
            LinkState::NotConfigured => 0,
            LinkState::Up => 1,
            LinkState::Down => 2,
        }
    }
}

/// What changed, for alerts and for the daemon to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerChange {
    State(PeerState),
    Role(Role),
    /// The peer's complete gateway table arrived (all pages of one round).
    TableComplete,
    SplitBrain(bool),
    /// The peer-link came back while the peer is up: re-apply up-delays (backup).
    PeerLinkRecovered,
    /// The peer was drained (`dagw drain`) or resumed.
    Drained(bool),
}

/// `peer.reason` after the peer's goodbye.
pub const PEER_SHUTDOWN: &str = "peer-shutdown";

#[derive(Debug, Clone)]
pub struct PeerMachine {
    pub interval: Duration,
    pub multiplier: u32,
    pub local_name: String,
    pub local_priority: u8,
    pub state: PeerState,
    pub role: Role,
    started: Instant,
    pub last_heard: Option<Instant>,
    pub peer_name: String,
    pub peer_priority: u8,
    pub peer_epoch: u64,
    /// The peer's gateways from its last complete round, by (kind, id).
    pub table: BTreeMap<(u8, u32), GwEntry>,
    /// The peer's node-wide settings (heartbeat extension 2), as last heard.
    pub policy: Option<NodePolicy>,
    staging: BTreeMap<(u8, u32), GwEntry>,
    staging_next_page: u16,
    pub peer_link: LinkState,
    pub split_brain: bool,
    pub rtt: Option<Duration>,
    /// The peer is drained for maintenance (`dagw drain` there): its members
    /// are down on purpose, which is neither split-brain nor a mismatch.
    pub peer_drained: bool,
    /// Why the peer is down, when it said so: `peer-shutdown` after its
    /// goodbye (status `peer.reason`).
    pub reason: Option<&'static str>,
}

impl PeerMachine {
    pub fn new(
        interval: Duration,
        multiplier: u32,
        local_name: &str,
        local_priority: u8,
        now: Instant,
    ) -> Self {
        PeerMachine {
            interval,
            multiplier,
            local_name: local_name.to_string(),
            local_priority,
            state: PeerState::Init,
            role: Role::Master,
            started: now,
            last_heard: None,
            peer_name: String::new(),
            peer_priority: 0,
            peer_epoch: 0,
            table: BTreeMap::new(),
            policy: None,
            staging: BTreeMap::new(),
            staging_next_page: 0,
            peer_link: LinkState::NotConfigured,
            split_brain: false,
            rtt: None,
            peer_drained: false,
            reason: None,
        }
    }

    pub fn dead_interval(&self) -> Duration {
        self.interval * self.multiplier
    }

    /// When silence turns the peer `down`.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            PeerState::Up => self.last_heard.map(|t| t + self.dead_interval()),
            PeerState::Init => Some(self.started + self.dead_interval()),
            PeerState::Down => None,
        }
    }

    /// An authenticated, fresh heartbeat.
    pub fn on_heartbeat(&mut self, hb: &Heartbeat, now: Instant) -> Vec<PeerChange> {
        // A goodbye (the peer stops cleanly, authenticated and fresh like any
        // heartbeat): down at once instead of after interval × multiplier.
        if hb.flags & FLAG_GOODBYE != 0 {
            self.last_heard = Some(now);
            self.peer_epoch = hb.epoch;
            return self.go_down(Some(PEER_SHUTDOWN));
        }
        let mut out = Vec::new();
        self.last_heard = Some(now);
        self.reason = None;
        let drained = hb.flags & FLAG_DRAINED != 0;
        if drained != self.peer_drained {
            self.peer_drained = drained;
            out.push(PeerChange::Drained(drained));
        }
        let restarted = hb.epoch != self.peer_epoch;
        self.peer_epoch = hb.epoch;
        let identity_changed =
            self.peer_name != hb.node.as_str() || self.peer_priority != hb.priority;
        self.peer_name = hb.node.as_str().to_string();
        self.peer_priority = hb.priority;
        if self.state != PeerState::Up {
            self.state = PeerState::Up;
            out.push(PeerChange::State(PeerState::Up));
        }
        // The role is decided when the peer appears or changes its identity,
        // never flipped by anything else while it stays up.
        if identity_changed || out.contains(&PeerChange::State(PeerState::Up)) {
            let role = elect(
                self.local_priority,
                &self.local_name,
                self.peer_priority,
                &self.peer_name,
            );
            if role != self.role {
                self.role = role;
                out.push(PeerChange::Role(role));
            }
        }
        self.policy = hb.policy;
        if restarted || hb.page == 0 {
            self.staging.clear();
            self.staging_next_page = 0;
        }
        if hb.page == self.staging_next_page {
            for g in &hb.gateways {
                self.staging.insert((g.kind, g.id), *g);
            }
            self.staging_next_page += 1;
            if self.staging_next_page == hb.pages {
                self.table = std::mem::take(&mut self.staging);
                self.staging_next_page = 0;
                out.push(PeerChange::TableComplete);
            }
        } else {
            // a lost page: wait for the next round
            self.staging.clear();
            self.staging_next_page = u16::MAX;
        }
        out.extend(self.update_split_brain());
        out
    }

    /// Time passes.
    pub fn tick(&mut self, now: Instant) -> Vec<PeerChange> {
        let mut out = Vec::new();
        if let Some(d) = self.deadline()
            && now >= d
        {
            out = self.go_down(None);
        }
        out
    }

    fn go_down(&mut self, reason: Option<&'static str>) -> Vec<PeerChange> {
        let mut out = Vec::new();
        self.reason = reason;
        if self.state == PeerState::Down {
            return out;
        }
        self.state = PeerState::Down;
        self.table.clear();
        self.policy = None;
        self.rtt = None;
        self.peer_drained = false;
        out.push(PeerChange::State(PeerState::Down));
        // alone, this switch carries the traffic
        if self.role != Role::Master {
            self.role = Role::Master;
            out.push(PeerChange::Role(Role::Master));
        }
        out.extend(self.update_split_brain());
        out
    }

    /// The local peer-link's state changed.
    pub fn on_peer_link(&mut self, link: LinkState) -> Vec<PeerChange> {
        let was_down = self.peer_link == LinkState::Down;
        self.peer_link = link;
        // Recovery first: its holds must be in place before the split-brain
        // hold is lifted, or the members would come up for a moment.
        let mut out = Vec::new();
        if was_down && link == LinkState::Up && self.state == PeerState::Up {
            out.push(PeerChange::PeerLinkRecovered);
        }
        out.extend(self.update_split_brain());
        out
    }

    fn update_split_brain(&mut self) -> Option<PeerChange> {
        // a drained peer keeps its members down on purpose: no split-brain
        let sb =
            self.state == PeerState::Up && self.peer_link == LinkState::Down && !self.peer_drained;
        (sb != self.split_brain).then(|| {
            self.split_brain = sb;
            PeerChange::SplitBrain(sb)
        })
    }

    pub fn role_str(&self) -> &'static str {
        self.role.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(name: &str, prio: u8, epoch: u64) -> Heartbeat {
        let mut h = Heartbeat {
            priority: prio,
            epoch,
            pages: 1,
            ..Default::default()
        };
        h.node.push_str(name).unwrap();
        h
    }

    #[test]
    fn up_on_first_heartbeat_down_at_exactly_interval_times_multiplier() {
        let t0 = Instant::now();
        let mut p = PeerMachine::new(Duration::from_millis(100), 3, "leaf1a", 100, t0);
        assert_eq!(p.state, PeerState::Init);
        let c = p.on_heartbeat(&hb("leaf1b", 100, 1), t0 + Duration::from_millis(50));
        assert!(c.contains(&PeerChange::State(PeerState::Up)));
        assert!(p.tick(t0 + Duration::from_millis(349)).is_empty());
        assert_eq!(
            p.tick(t0 + Duration::from_millis(350)),
            vec![PeerChange::State(PeerState::Down)]
        );
        let c = p.on_heartbeat(&hb("leaf1b", 100, 1), t0 + Duration::from_millis(400));
        assert!(c.contains(&PeerChange::State(PeerState::Up)), "recovery");
    }

    #[test]
    fn never_heard_goes_down_after_the_dead_interval() {
        let t0 = Instant::now();
        let mut p = PeerMachine::new(Duration::from_secs(1), 3, "a", 100, t0);
        assert!(p.tick(t0 + Duration::from_millis(2999)).is_empty());
        assert_eq!(
            p.tick(t0 + Duration::from_secs(3)),
            vec![PeerChange::State(PeerState::Down)]
        );
    }

    #[test]
    fn roles_by_priority_then_name_and_stable() {
        assert_eq!(elect(200, "b", 100, "a"), Role::Master);
        assert_eq!(elect(100, "b", 200, "a"), Role::Backup);
        assert_eq!(elect(100, "a", 100, "b"), Role::Master);
        assert_eq!(elect(100, "b", 100, "a"), Role::Backup);
        let t0 = Instant::now();
        let mut p = PeerMachine::new(Duration::from_secs(1), 3, "leaf1b", 100, t0);
        let c = p.on_heartbeat(&hb("leaf1a", 100, 1), t0);
        assert!(c.contains(&PeerChange::Role(Role::Backup)));
        for k in 1..10 {
            let c = p.on_heartbeat(&hb("leaf1a", 100, 1), t0 + Duration::from_millis(500 * k));
            assert!(
                !c.iter().any(|x| matches!(x, PeerChange::Role(_))),
                "no flapping"
            );
        }
        let c = p.tick(t0 + Duration::from_secs(10));
        assert!(c.contains(&PeerChange::Role(Role::Master)), "alone: master");
    }

    #[test]
    fn split_brain_and_recovery() {
        let t0 = Instant::now();
        let mut p = PeerMachine::new(Duration::from_secs(1), 3, "leaf1b", 100, t0);
        p.on_peer_link(LinkState::Up);
        p.on_heartbeat(&hb("leaf1a", 100, 1), t0);
        assert_eq!(
            p.on_peer_link(LinkState::Down),
            vec![PeerChange::SplitBrain(true)]
        );
        assert_eq!(
            p.on_peer_link(LinkState::Up),
            vec![PeerChange::PeerLinkRecovered, PeerChange::SplitBrain(false)]
        );
        // peer lost entirely: no split-brain, both stay active
        p.on_peer_link(LinkState::Down);
        let c = p.tick(t0 + Duration::from_secs(5));
        assert!(c.contains(&PeerChange::SplitBrain(false)));
        assert!(!p.split_brain);
    }

    #[test]
    fn pages_assemble_into_one_table() {
        let t0 = Instant::now();
        let mut p = PeerMachine::new(Duration::from_secs(1), 3, "a", 100, t0);
        let mut h0 = hb("b", 100, 1);
        h0.pages = 2;
        h0.gateways
            .push(GwEntry {
                kind: 1,
                id: 10,
                ..Default::default()
            })
            .unwrap();
        let mut h1 = h0.clone();
        h1.page = 1;
        h1.gateways.clear();
        h1.gateways
            .push(GwEntry {
                kind: 1,
                id: 20,
                ..Default::default()
            })
            .unwrap();
        assert!(!p.on_heartbeat(&h0, t0).contains(&PeerChange::TableComplete));
        assert!(p.on_heartbeat(&h1, t0).contains(&PeerChange::TableComplete));
        assert_eq!(p.table.len(), 2);
        // a lost page 0: page 1 alone completes nothing
        assert!(!p.on_heartbeat(&h1, t0).contains(&PeerChange::TableComplete));
    }
}
