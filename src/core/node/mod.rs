//! The node: one pure machine for the whole switch. It owns the kernel
//! view and every machine of `core` (gateways, members, peer liveness and
//! roles, the delay policy, strict holds, split-brain, peer-link recovery,
//! the drift guard, the ARP/ND sync), and turns [`Event`]s into
//! [`Effect`]s with [`Node::handle`]. Time comes with each event; nothing
//! here does I/O. The daemon (`crate::daemon`) is the glue: it reads
//! sockets and timers into events and carries the effects out.
//!
//! Start-up (`Node::start`): adopt what is already right (no change to a
//! serving gateway), remove stale dagw devices (a barrier), then plan every
//! gateway in the kernel's fastest order (phases: all links, then all
//! addresses and FDB entries).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

mod effect;
mod gateways;
mod members;
mod names;
mod peering;
mod status;
mod syncing;

pub use effect::{Effect, Event, KernelReport, MemberSave, Purpose, Start};
pub use peering::MAX_PEER_COUNT;
pub use syncing::GRACE;

use crate::config::{Config, DelayMode, Gateway};
use crate::core::action::{Action, Dumped, KernelError, Work};
use crate::core::bypass::BypassState;
use crate::core::consistency::GwConfig;
use crate::core::drift::DriftGuard;
use crate::core::gateway::{self, DelayPolicy, GatewayMachine, GwState};
use crate::core::heartbeat::GwEntry;
use crate::core::ifname::IfName;
use crate::core::kernel::{KernelEvent, KernelView, Link};
use crate::core::member::MemberMachine;
use crate::core::uplinks::UplinkTracker;
use crate::telemetry::{Kind, Notice, ids};
use names::{NameIndex, Named};

/// After a failed apply, retry a gateway this much later.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Rounds of one gateway's plan without converging before it waits
/// `RETRY_AFTER`.
const MAX_ROUNDS: u8 = 8;
/// A reload that leaves this many gateways to plan is planned in phases
/// (the kernel's fastest order), like start-up.
const PHASED_FROM: usize = 64;
/// While kernel events are still queued, planning waits for the queue to
/// drain, but no longer than this: a flood of events must not starve the
/// gateways. (The echoes of creating 4094 gateways drain in well under it.)
const MAX_BEHIND: Duration = Duration::from_secs(2);
/// Gateways planned in one turn of the loop.
const PLAN_BATCH: usize = 64;

struct GwRuntime {
    cfg: Gateway,
    /// Its heartbeat entry with the digests made once (every round carries
    /// it; state and counts are filled in per round).
    wire_entry: GwEntry,
    /// A plan of it is with the executor: the next one waits for its report.
    busy: bool,
    /// Plans since it last converged: a plan the kernel keeps undoing is
    /// retried later, not at once forever.
    rounds: u8,
    machine: GatewayMachine,
    drift: DriftGuard,
    /// The kernel matched the plan after the last apply: any new plan from
    /// here on, without a change of intent, is drift.
    converged: bool,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    /// VBDIF: the bypass tunnel's health as last reported.
    bypass: Option<BypassState>,
}

pub struct Node {
    cfg: Config,
    view: KernelView,
    /// Effects of the event being handled.
    out: Vec<Effect>,
    /// Kernel jobs handed out whose report has not come back.
    in_flight: usize,
    /// Barrier jobs (stale removals, reload clean-up) in flight: plans wait.
    barrier: usize,
    /// Gateways to plan, a few per turn of the loop.
    to_plan: VecDeque<usize>,
    /// Plans in the kernel's fastest order (start-up, a big reload): a
    /// gateway's next round waits until every job of this round reported, so
    /// all links are made first, then all addresses and FDB entries.
    phased: bool,
    /// The plans of a whole phase are being made (they do not wait for
    /// each other).
    planning_phase: bool,
    /// Members whose plan is with the executor.
    members_busy: BTreeSet<String>,
    /// Stopping: nothing new is planned.
    stopping: bool,
    /// While a re-dump runs, events are kept for after it.
    redump: Option<Vec<KernelEvent>>,
    gateways: Vec<GwRuntime>,
    members: Vec<MemberMachine>,
    version: String,
    /// Interface/device and gateway names → gateways that depend on them.
    names: NameIndex,
    peer: Option<peering::PeerNode>,
    sync: Option<syncing::SyncNode>,
    /// Gateways whose SVI came back: the peer's entries are re-installed once
    /// their device is up again (the kernel flushed them with the carrier).
    reinstall_pending: BTreeSet<usize>,
    /// Since when kernel events have been read without the queue running
    /// empty. The queue may still hold echoes of dagw's own changes (a device
    /// before its ownership alias, say); a plan made on that half-way view
    /// would undo dagw's own work, so gateways and members wait in `deferred`.
    behind_since: Option<Instant>,
    deferred: BTreeSet<usize>,
    members_deferred: bool,
    /// (bridge, MAC) → member port: hosts the bridge learned behind one of
    /// our M-LAG members (the ARP/ND rule's "the host is local").
    member_macs: HashMap<(u32, crate::core::mac::Mac), u32>,
    started: Instant,
    /// `[uplinks]`: uplink tracking, None without the section.
    uplinks: Option<UplinkTracker>,
    /// `dagw drain` in force (kept in `state_dir` across restarts).
    drained: bool,
    /// What the last configuration comparison with the peer was made on:
    /// a heartbeat round that brings nothing new is not compared again.
    compared: Option<u64>,
    /// Bumped by every change of our configuration or of the peer's exact
    /// values: the comparison is made again.
    consistency_gen: u64,
}

/// The configured way holds end.
fn policy(cfg: &Config) -> DelayPolicy {
    match cfg.up_delay.mode {
        DelayMode::Static => DelayPolicy::Static,
        DelayMode::Dynamic => DelayPolicy::Dynamic {
            min: cfg.up_delay.min,
            max: cfg.up_delay.max,
        },
    }
}

fn runtime(cfg: Gateway, policy: DelayPolicy) -> GwRuntime {
    GwRuntime {
        machine: GatewayMachine::with_policy(cfg.up_delay, policy),
        wire_entry: GwConfig::of(&cfg).entry(0, 0, 0),
        cfg,
        drift: DriftGuard::default(),
        busy: false,
        rounds: 0,
        converged: false,
        retry_at: None,
        last_error: None,
        bypass: None,
    }
}

impl Node {
    /// A node for a validated configuration; `now` is the start of its clock.
    pub fn new(mut cfg: Config, version: String, now: Instant) -> Node {
        let p = policy(&cfg);
        // The gateways live in their runtimes only (4094 of them are a few MB).
        let gateways = std::mem::take(&mut cfg.gateways)
            .into_iter()
            .map(|g| runtime(g, p))
            .collect();
        let members = cfg
            .mlag
            .members
            .iter()
            .map(|m| MemberMachine::new(m))
            .collect();
        let peer = cfg
            .peer
            .as_ref()
            .map(|p| peering::PeerNode::new(p, &cfg.node.name, now));
        let mut n = Node {
            cfg,
            view: KernelView::default(),
            out: Vec::new(),
            in_flight: 0,
            barrier: 0,
            to_plan: VecDeque::new(),
            phased: false,
            planning_phase: false,
            members_busy: BTreeSet::new(),
            redump: None,
            stopping: false,
            gateways,
            members,
            version,
            names: NameIndex::default(),
            peer,
            sync: None,
            reinstall_pending: BTreeSet::new(),
            behind_since: None,
            deferred: BTreeSet::new(),
            members_deferred: false,
            member_macs: HashMap::new(),
            started: now,
            uplinks: None,
            drained: false,
            compared: None,
            consistency_gen: 0,
        };
        n.index_names();
        n
    }

    /// Start-up, on the kernel's state as dumped: adopt, hold members on the
    /// first start after boot, remove what is stale, plan everything (in
    /// phases), start the sync channel.
    pub fn start(&mut self, s: Start, now: Instant) -> Vec<Effect> {
        self.view = s.view;
        self.view.clock_s = self.clock_s(now);
        self.reset_learned_macs(&s.learned);
        self.adopt();
        self.drained = s.drained;
        self.start_members(s.first_start, &s.members, now);
        // the peer-link as the kernel has it now: a backup whose peer-link
        // is already down must see split-brain at the first heartbeat
        self.on_peer_link_event(now);
        self.setup_uplinks(now);
        self.remove_stale();
        self.phased = true;
        self.reconcile_all(now);
        self.start_sync();
        self.save_member_records(now);
        std::mem::take(&mut self.out)
    }

    /// One event in, its effects out.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Effect> {
        match event {
            Event::Kernel { events, drained } => self.on_events(events, drained, now),
            Event::Overrun => self.redump(now),
            Event::Report(r) => self.on_report(r, now),
            Event::Neighbours { refused } => {
                self.in_flight = self.in_flight.saturating_sub(1);
                if refused > 0 {
                    tracing::warn!("sync: {refused} neighbour changes refused by the kernel");
                }
                self.flush_deferred(now);
            }
            Event::Dumped(d) => self.on_dumped(d, now),
            Event::Timer => self.on_timer(now),
            Event::Audit => self.audit(now),
            Event::Config {
                config,
                keys_changed,
            } => self.apply_config(*config, keys_changed, now),
            Event::Drain(on) => self.drain(on, now),
            Event::Heartbeat {
                heartbeat,
                rtt,
                previous_key_retired,
            } => self.on_heartbeat(&heartbeat, rtt, previous_key_retired, now),
            Event::SyncSession => self.on_sync_session(now),
            Event::SyncMessage(m) => self.on_sync_message(m, now),
            Event::SyncReset => self.on_sync_reset(),
            Event::Continue => {
                self.plan_some(now);
                self.flush_deferred(now);
            }
            Event::Stop => {
                self.stopping = true;
                self.save_member_records(now);
            }
        }
        std::mem::take(&mut self.out)
    }

    /// Nothing of the start-up (or of a phase) is still with the kernel or
    /// waiting to be planned.
    pub fn settled(&self) -> bool {
        self.in_flight == 0
            && self.barrier == 0
            && self.to_plan.is_empty()
            && self.deferred.is_empty()
            && !self.members_deferred
    }

    /// Kernel jobs handed out and not reported yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Pack the kernel mirror's trees after a burst.
    pub fn compact(&mut self) {
        self.view.compact();
        // a start-up or a big reload queued every gateway once
        self.to_plan.shrink_to_fit();
        self.out.shrink_to_fit();
        self.member_macs.shrink_to_fit();
    }

    pub fn gateway_count(&self) -> usize {
        self.gateways.len()
    }

    fn submit(&mut self, purpose: Purpose, work: Work) {
        self.in_flight += 1;
        self.out.push(Effect::Kernel(purpose, work));
    }

    fn index_names(&mut self) {
        self.names = NameIndex::build(self.gateways.iter().map(|g| {
            let vx = g.cfg.vxlan.as_ref().map(|v| v.device.as_str());
            (
                g.cfg.name.as_str(),
                [g.cfg.interface.as_str(), g.cfg.device.as_str()]
                    .into_iter()
                    .chain(vx),
            )
        }));
    }

    /// Seconds since the daemon started: the neighbour confirmation clock.
    /// Seconds since the node started: the neighbour confirmation clock.
    pub fn clock_s(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.started).as_secs()).unwrap_or(u32::MAX)
    }

    fn emit(&mut self, n: Notice) {
        self.out.push(Effect::Notice(n));
    }

    /// Every gateway and member: the members at once, the gateways a few
    /// per turn of the loop.
    fn reconcile_all(&mut self, now: Instant) {
        self.to_plan.extend(0..self.gateways.len());
        self.reconcile_members(now);
        self.plan_some(now);
    }

    /// Gateways are still waiting in `to_plan`: the daemon sends
    /// `Event::Continue` at its next free turn.
    pub fn has_more(&self) -> bool {
        !self.to_plan.is_empty()
    }

    /// The gateways an event may concern.
    fn affected(&self, ev: &KernelEvent, out: &mut BTreeSet<usize>) {
        let mut of_link = |l: &Link| {
            out.extend(self.names.get(Named::Device(&l.name)));
            if let Some(o) = l.owner() {
                out.extend(self.names.get(Named::Gateway(o)));
            }
        };
        let mut by_index = |index: u32| {
            if let Some(l) = self.view.link(index) {
                of_link(l);
            }
        };
        match ev {
            KernelEvent::Link(l) => {
                by_index(l.index);
                of_link(l);
            }
            KernelEvent::LinkGone(i) => by_index(*i),
            KernelEvent::AddrAdded(i, ..) | KernelEvent::AddrRemoved(i, _) => by_index(*i),
            KernelEvent::FdbAdded(f) | KernelEvent::FdbRemoved(f) => by_index(f.ifindex),
            KernelEvent::NeighUsable(..)
            | KernelEvent::NeighGone(_)
            | KernelEvent::MacLearned(_)
            | KernelEvent::MacForgotten(_) => {}
        }
    }

    fn on_events(&mut self, events: Vec<KernelEvent>, drained: bool, now: Instant) {
        if let Some(kept) = self.redump.as_mut() {
            kept.extend(events);
            return;
        }
        let mut dirty = BTreeSet::new();
        let mut members_dirty = false;
        let since = *self.behind_since.get_or_insert(now);
        if drained || now.saturating_duration_since(since) >= MAX_BEHIND {
            self.behind_since = None;
        }
        if self.behind_since.is_none() {
            dirty.append(&mut self.deferred);
            members_dirty = std::mem::take(&mut self.members_deferred);
        }
        let peer_link = self.peer.as_ref().and_then(|p| p.cfg.peer_link.clone());
        let mut peer_link_dirty = false;
        let mut neigh_changes: Vec<syncing::NeighChange> = Vec::new();
        let mut uplinks_dirty = false;
        let mut moved_macs = Vec::new();
        self.view.clock_s = self.clock_s(now);
        for ev in events {
            if let KernelEvent::NeighUsable(k, _) | KernelEvent::NeighGone(k) = &ev {
                let (after, reachable) = match &ev {
                    KernelEvent::NeighUsable(_, info) => (info.held(), info.reachable),
                    _ => (crate::core::neigh::Held::Nothing, false),
                };
                neigh_changes.push(syncing::NeighChange {
                    key: *k,
                    before: self.view.held(k.ifindex, k.ip),
                    after,
                    reachable,
                });
            }
            self.note_learned_mac(&ev, &mut moved_macs);
            // before applying: a vanished link's name is known only now
            self.affected(&ev, &mut dirty);
            let is_uplink = |name: &str| {
                self.cfg
                    .uplinks
                    .as_ref()
                    .is_some_and(|u| u.interfaces.iter().any(|i| i == name))
            };
            match &ev {
                KernelEvent::Link(l) => uplinks_dirty |= is_uplink(&l.name),
                KernelEvent::LinkGone(i) => {
                    uplinks_dirty |= self.view.link(*i).is_some_and(|l| is_uplink(&l.name))
                }
                _ => {}
            }
            if let KernelEvent::Link(l) = &ev {
                members_dirty |= self.cfg.mlag.members.iter().any(|m| l.name == *m);
                self.member_link_seen(l, now);
                peer_link_dirty |= peer_link.as_ref().is_some_and(|p| l.name == *p);
            }
            if let KernelEvent::LinkGone(i) = &ev {
                members_dirty |= self
                    .view
                    .link(*i)
                    .is_some_and(|l| self.cfg.mlag.members.iter().any(|m| l.name == *m));
            }
            self.view.apply(ev.clone());
            self.affected(&ev, &mut dirty);
        }
        self.to_plan.extend(dirty);
        self.plan_some(now);
        if uplinks_dirty {
            self.on_uplinks(now, true);
        }
        if members_dirty {
            self.reconcile_members(now);
        }
        // news for the peer and the ARP/ND rule, for every host whose entry
        // or place changed
        if !neigh_changes.is_empty() {
            self.on_neigh_changes(&neigh_changes);
        }
        if !moved_macs.is_empty() {
            self.hosts_moved(&moved_macs);
        }
        if !neigh_changes.is_empty() {
            self.update_progress(now);
        }
        self.check_bypass();
        if peer_link_dirty
            || peer_link.is_some()
                && !self
                    .view
                    .by_name
                    .contains_key(peer_link.as_deref().unwrap_or_default())
        {
            self.on_peer_link_event(now);
        }
    }

    /// When the node next needs `Event::Timer`.
    pub fn next_deadline(&self) -> Option<Instant> {
        let peer = self
            .peer_deadline()
            .into_iter()
            .chain(self.sync_deadline())
            .chain(self.uplinks.as_ref().and_then(UplinkTracker::deadline));
        if self.behind_since.is_some() {
            // gateways and members wait for the rest of the queue; the
            // peer's timers do not
            return peer.min();
        }
        let g = self
            .gateways
            .iter()
            .flat_map(|g| [g.machine.deadline(), g.retry_at])
            .flatten();
        let min = self.cfg.mlag.member_min_delay;
        let dynamic = self.cfg.up_delay.mode == DelayMode::Dynamic;
        let m = self
            .members
            .iter()
            .flat_map(|m| [m.deadline(), m.min_deadline(min).filter(|_| dynamic)])
            .flatten();
        g.chain(m).chain(peer).min()
    }

    fn on_timer(&mut self, now: Instant) {
        self.on_peer_tick(now);
        self.on_uplinks(now, false);
        self.sync_grace_expired(now);
        for i in 0..self.gateways.len() {
            let due = self.gateways[i]
                .machine
                .deadline()
                .is_some_and(|d| d <= now)
                || self.gateways[i].retry_at.is_some_and(|d| d <= now);
            if due {
                let before = self.gateways[i].machine.state;
                if let Some(new) = self.gateways[i].machine.tick(now) {
                    self.gateways[i].converged = false;
                    self.note_gateway_state(i, before, new);
                }
                self.gateways[i].retry_at = None;
                self.reconcile_gateway(i, now);
            }
        }
        let dynamic = self.cfg.up_delay.mode == DelayMode::Dynamic;
        if dynamic
            || self
                .members
                .iter()
                .any(|m| m.deadline().is_some_and(|d| d <= now))
        {
            self.reconcile_members(now);
        }
    }

    /// The kernel carried out a plan (or stopped at an error).
    fn on_report(&mut self, report: KernelReport, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let KernelReport {
            purpose,
            actions,
            outcomes,
            error,
        } = report;
        for (a, o) in actions.iter().zip(&outcomes) {
            a.assume_done(&mut self.view);
            if let Some(l) = &o.link {
                self.view.apply(KernelEvent::Link(l.clone()));
            }
        }
        let failed = error.and_then(|e| actions.get(outcomes.len()).map(|a| (a, e)));
        match purpose {
            Purpose::Gateway(name) => self.gateway_done(name, failed.map(|f| f.1), now),
            Purpose::Member(name) => self.member_done(name, failed, now),
            Purpose::Audit(name) => {
                let changed = outcomes.iter().map(|o| o.sysctls_changed).sum();
                self.audit_done(name, changed, failed.map(|f| f.1), now);
            }
            Purpose::Stale { name, what } => {
                self.barrier = self.barrier.saturating_sub(1);
                let n = match failed {
                    None => Notice::new(
                        Kind::State,
                        ids::STALE_REMOVED,
                        name,
                        format!("removed what no gateway needs any more: {what}"),
                    ),
                    Some((_, e)) => {
                        Notice::new(Kind::Alert, ids::APPLY_FAILED, name, e.to_string())
                    }
                };
                self.emit(n);
            }
            Purpose::Cleanup { what } => {
                self.barrier = self.barrier.saturating_sub(1);
                if let Some((_, e)) = failed {
                    tracing::warn!("reload: {what}: {e}");
                }
            }
            Purpose::Quiet => {}
        }
        self.flush_deferred(now);
        self.check_bypass();
    }

    /// A re-dump came back: the fresh view replaces the mirror, what
    /// happened meanwhile is applied after it, and everything is planned.
    fn on_dumped(&mut self, dumped: Result<Box<Dumped>, KernelError>, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match dumped {
            Ok(d) => {
                let Dumped { view, learned } = *d;
                self.view = view;
                self.reset_learned_macs(&learned);
                let queued = self.redump.take().unwrap_or_default();
                self.on_events(queued, true, now);
                self.reconcile_all(now);
            }
            Err(e) => {
                self.emit(Notice::new(
                    Kind::Alert,
                    ids::NETLINK_OVERRUN,
                    "netlink",
                    format!("re-reading the kernel state failed ({e}); trying again"),
                ));
                let clock_s = self.clock_s(now);
                self.submit(Purpose::Quiet, Work::Dump { clock_s });
            }
        }
        self.flush_deferred(now);
    }

    /// The kernel's event queue overran: re-read the whole state; events
    /// meanwhile wait for the fresh view.
    fn redump(&mut self, now: Instant) {
        self.behind_since = None;
        self.deferred.clear();
        self.members_deferred = false;
        self.emit(Notice::new(
            Kind::Alert,
            ids::NETLINK_OVERRUN,
            "netlink",
            "kernel event queue overran; re-reading the kernel state",
        ));
        if self.redump.is_none() {
            self.redump = Some(Vec::new());
            let clock_s = self.clock_s(now);
            self.submit(Purpose::Quiet, Work::Dump { clock_s });
        }
    }

    /// Apply a new configuration whole. Validation happened already.
    fn apply_config(&mut self, mut new: Config, keys_changed: bool, now: Instant) {
        let mut old: HashMap<IfName, GwRuntime> =
            self.gateways.drain(..).map(|g| (g.cfg.name, g)).collect();
        let p = policy(&new);
        let mut changed: Vec<Gateway> = Vec::new();
        self.gateways = std::mem::take(&mut new.gateways)
            .into_iter()
            .map(|c| match old.remove(&c.name) {
                Some(mut g) => {
                    if g.cfg != c {
                        changed.push(g.cfg.clone());
                    }
                    if g.cfg.interface != c.interface {
                        g.machine = GatewayMachine::with_policy(c.up_delay, p);
                    }
                    g.machine.up_delay = c.up_delay;
                    g.machine.policy = p;
                    g.wire_entry = GwConfig::of(&c).entry(0, 0, 0);
                    g.cfg = c;
                    g.converged = false;
                    g.retry_at = None;
                    g
                }
                None => runtime(c, p),
            })
            .collect();
        // What the old settings of kept gateways left behind (an old vMAC,
        // SVI or bypass VTEP) goes before the new settings are planned.
        let cleanup: Vec<Action> = {
            let all: Vec<&Gateway> = self.gateways.iter().map(|g| &g.cfg).collect();
            changed
                .iter()
                .filter_map(|o| all.iter().find(|g| g.name == o.name).map(|n| (o, *n)))
                .flat_map(|(o, n)| gateway::plan_changed(o, n, &all, &self.view))
                .collect()
        };
        for a in cleanup {
            let what = a.describe(&self.view);
            self.barrier += 1;
            self.submit(Purpose::Cleanup { what }, Work::Actions(vec![a]));
        }
        // Members no longer configured are released; new ones are not held (no restart happened).
        let mut kept = Vec::new();
        let members = std::mem::take(&mut self.members);
        for mut m in members {
            if new.mlag.members.contains(&m.name) {
                kept.push(m);
            } else {
                // no longer a member: released whatever held it
                m.hold = None;
                m.split_brain = false;
                m.uplinks_down = false;
                m.drained = false;
                let plan = m.plan(&self.view);
                if !plan.is_empty() {
                    self.submit(Purpose::Quiet, Work::Actions(plan));
                }
            }
        }
        for name in &new.mlag.members {
            if !kept.iter().any(|m| &m.name == name) {
                kept.push(MemberMachine::new(name));
            }
        }
        for m in &mut kept {
            m.drained = self.drained;
        }
        self.members = kept;
        self.update_peer(&new, keys_changed, now);
        self.cfg = new;
        self.setup_uplinks(now);
        self.readmit_peer_entries();
        self.index_names();
        self.remove_stale();
        // many new gateways: in the kernel's fastest order
        let unplanned = self
            .gateways
            .iter()
            .filter(|g| self.view.owned_device(&g.cfg.name, &g.cfg.device).is_none())
            .count();
        self.phased |= unplanned >= PHASED_FROM;
        self.reconcile_all(now);
        self.check_bypass();
        self.save_member_records(now);
        // the peer learns our new values; we compare with its at once
        self.announce_gateways(now);
    }
}

pub(super) fn describe(s: GwState) -> String {
    match s.reason() {
        Some(r) => format!("{} ({r})", s.name()),
        None => s.name().to_string(),
    }
}
