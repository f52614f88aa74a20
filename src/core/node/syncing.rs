//! The node's side of the ARP/ND sync channel (issue 5): one session at a
//! time with the peer (the lower address connects, the other accepts), a full
//! bulk of our locally learned entries on every new session, then increments
//! as the kernel reports them. What the kernel holds for each host follows
//! the ARP/ND rule of `core::neigh`: the peer's entries are pinned
//! (`noarp extern_learn`, never sent back) where this switch cannot resolve
//! the host itself, and removed when the peer withdraws them, or a grace
//! period after the session ended.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{Effect, Node};
use crate::config::GatewayKind;
use crate::core::consistency::{ExactValues, GwConfig, GwKey};
use crate::core::kernel::{KernelEvent, NeighKey as KKey};
use crate::core::mac::Mac;
use crate::core::neigh::{self, Held, Host, HostEvent, NeighAction, SyncNews};
use crate::sync::{
    self, Admission, Change, Inbound, NeighEntry, NeighKey, Outbound, PeerTable, Prefix,
};
use crate::telemetry::{Kind, Notice, ids};

/// Synced entries outlive a lost session this long (a restart of the peer's
/// agent or a short outage must not flush the table).
pub const GRACE: Duration = Duration::from_secs(30);
/// Refused peer entries are alerted at most this often.
const REFUSED_ALERT_EVERY: Duration = Duration::from_secs(60);

/// One kernel neighbour event on its way through the ARP/ND rule: what the
/// kernel held before and after it (small: a batch may hold 100k of them).
pub struct NeighChange {
    pub key: KKey,
    pub before: Held,
    pub after: Held,
    pub reachable: bool,
}

/// A MAC as one bridge knows it: (bridge ifindex, MAC).
type BridgeMac = (u32, Mac);

/// The sync channel as the node keeps it: the peer's admitted entries and
/// where the session is.
pub struct SyncNode {
    /// A session is up and takes what we send.
    pub session_open: bool,
    pub table: PeerTable,
    /// Refusals already alerted, and when: the alert is rate-limited.
    refused_alerted: (u64, Option<Instant>),
    pub bulk_complete: bool,
    /// Complete bulks received from the peer since dagw started (or since
    /// the grace period flushed the table): until the first, the table is
    /// not the peer's whole truth.
    pub bulks_received: u64,
    pub sessions: u64,
    pub grace_until: Option<Instant>,
    pub established: bool,
    /// The peer's gateways' exact values (only of gateways we have), for
    /// the mismatch report (`core::consistency`).
    pub peer_gateways: ExactValues,
    /// Our gateways' exact values as sent in this session (None: not yet).
    announced: Option<Vec<GwConfig>>,
}

impl SyncNode {
    fn new(admission: Admission) -> SyncNode {
        SyncNode {
            session_open: false,
            table: PeerTable::new(admission),
            refused_alerted: (0, None),
            bulk_complete: false,
            bulks_received: 0,
            sessions: 0,
            grace_until: None,
            established: false,
            peer_gateways: ExactValues::default(),
            announced: None,
        }
    }
}

fn kind_id(k: GatewayKind) -> (u8, u32) {
    match k {
        GatewayKind::Vlanif(v) => (sync::GW_VLANIF, u32::from(v)),
        GatewayKind::Vbdif(b) => (sync::GW_VBDIF, b),
    }
}

impl Node {
    /// Start (or restart) the sync channel for the configured peer.
    pub(super) fn start_sync(&mut self) {
        self.sync = None;
        if self.peer.is_none() {
            return;
        }
        self.sync = Some(SyncNode::new(self.admission()));
        self.out.push(Effect::SyncStart);
    }

    /// The keys of our configured gateways.
    fn gateway_keys(&self) -> std::collections::BTreeSet<GwKey> {
        self.gateways.iter().map(|g| kind_id(g.cfg.kind)).collect()
    }

    /// Send our gateways' exact values to the peer if this session has not
    /// had them as they are now (a new session, or a reload changed them);
    /// forget the peer's values of gateways we no longer have; compare again.
    pub(super) fn announce_gateways(&mut self, now: Instant) {
        let ours = self.gateway_keys();
        let values: Vec<GwConfig> = self.gateways.iter().map(|g| GwConfig::of(&g.cfg)).collect();
        let Some(s) = self.sync.as_mut() else { return };
        s.peer_gateways.retain(|k| ours.contains(&k));
        if s.session_open && s.announced.as_ref() != Some(&values) {
            s.announced = Some(values.clone());
            self.send_outbound(Outbound::Gateways(values));
        }
        self.recheck_consistency(now);
    }

    /// What the peer may install here: our gateways' prefixes, the caps.
    pub(super) fn admission(&self) -> Admission {
        let (max_total, max_per_gateway) = self
            .cfg
            .peer
            .as_ref()
            .map_or((0, 0), |p| (p.max_synced, p.max_synced_per_gateway));
        let gateways = self
            .gateways
            .iter()
            .map(|g| {
                let prefixes = g
                    .cfg
                    .ipv4
                    .iter()
                    .map(|p| Prefix {
                        addr: IpAddr::V4(p.addr),
                        len: p.len,
                    })
                    .chain(g.cfg.ipv6.iter().map(|p| Prefix {
                        addr: IpAddr::V6(p.addr),
                        len: p.len,
                    }))
                    .collect();
                (kind_id(g.cfg.kind), (prefixes, g.cfg.ipv6_enabled))
            })
            .collect();
        Admission {
            gateways,
            max_total,
            max_per_gateway,
        }
    }

    /// A reload changed the gateways or the caps: entries no longer
    /// admitted leave the table and the kernel.
    pub(super) fn readmit_peer_entries(&mut self) {
        let admission = self.admission();
        let Some(s) = self.sync.as_mut() else { return };
        let mut removed = Vec::new();
        s.table.set_admission(admission, &mut removed);
        if !removed.is_empty() {
            tracing::info!(
                "sync: {} peer entries no longer admitted after the reload",
                removed.len()
            );
            self.settle_pinned();
        }
    }

    /// Alert on refused peer entries: once, then at most once a minute
    /// while more are refused.
    fn alert_refused(&mut self, now: Instant) {
        let Some(s) = self.sync.as_mut() else { return };
        let r = s.table.refused;
        let (seen, at) = s.refused_alerted;
        if r.total() == seen
            || at.is_some_and(|t| now.saturating_duration_since(t) < REFUSED_ALERT_EVERY)
        {
            return;
        }
        s.refused_alerted = (r.total(), Some(now));
        let n = Notice::new(
            Kind::Alert,
            ids::SYNC_REFUSED,
            "sync",
            format!(
                "refused {} neighbour entries from the peer so far: {} outside our gateways' prefixes, {} over max_synced / max_synced_per_gateway",
                r.total(),
                r.outside_prefix,
                r.over_limit
            ),
        )
        .with("outside-prefix", r.outside_prefix)
        .with("over-limit", r.over_limit);
        self.emit(n);
    }

    /// The peer's bulk sync of the current session has been received whole.
    pub(super) fn sync_bulk_complete(&self) -> bool {
        self.sync.as_ref().is_some_and(|s| s.bulk_complete)
    }

    /// gateway device ifindex → (kind, id), for the gateways that exist.
    fn device_gateways(&self) -> HashMap<u32, (u8, u32)> {
        self.gateways
            .iter()
            .filter_map(|g| {
                self.view
                    .owned_device(&g.cfg.name, &g.cfg.device)
                    .map(|d| (d.index, kind_id(g.cfg.kind)))
            })
            .collect()
    }

    /// Every locally learned entry on our gateway devices.
    fn local_entries_for_sync(&self) -> Vec<NeighEntry> {
        let devs = self.device_gateways();
        self.view
            .neighs
            .iter()
            .filter(|(_, info)| !info.synced)
            .filter_map(|(k, info)| {
                devs.get(&k.ifindex).map(|(kind, id)| NeighEntry {
                    gw_kind: *kind,
                    gw_id: *id,
                    ip: k.ip,
                    mac: info.mac.0,
                })
            })
            .collect()
    }

    fn send_outbound(&mut self, msg: Outbound) {
        if self.sync.as_ref().is_some_and(|s| s.session_open) {
            self.out.push(Effect::SyncSend(msg));
        }
    }

    /// The daemon reset a session that could not take what was sent.
    pub(super) fn on_sync_reset(&mut self) {
        if let Some(s) = self.sync.as_mut() {
            s.session_open = false;
        }
    }

    /// Local neighbour changes → increments for the peer. Each event comes
    /// with what the kernel held before it: only what `core::neigh` calls
    /// news is sent (an entry newly ours, or with a new MAC: advertise; ours
    /// no longer: withdraw). State ageing, REACHABLE → STALE, is not news.
    /// A batch of kernel neighbour events: news for the peer, then the
    /// ARP/ND rule for each host, on one map of the gateway devices.
    pub(super) fn on_neigh_changes(&mut self, changes: &[NeighChange]) {
        let devs = self.device_gateways();
        self.sync_local_changes(changes, &devs);
        let msgs = self.plan_hosts(changes.iter().map(|c| c.key), HostEvent::Settle, &devs);
        self.run_neigh_batch(msgs);
    }

    fn sync_local_changes(&mut self, changes: &[NeighChange], devs: &HashMap<u32, (u8, u32)>) {
        if self.sync.as_ref().is_none_or(|s| !s.session_open) {
            return;
        }
        let mut adds = Vec::new();
        let mut dels = Vec::new();
        let now_s = self.view.clock_s;
        for c in changes {
            let (k, before) = (&c.key, c.before);
            let (held, reachable) = (c.after, c.reachable);
            let Some((kind, id)) = devs.get(&k.ifindex) else {
                continue;
            };
            // the kernel part is settled once per batch (`settle_hosts`)
            let news = Host::new(before, None, true, now_s)
                .handle(HostEvent::Kernel { held, reachable }, now_s, 0, |_| false)
                .sync;
            match news {
                Some(SyncNews::Advertise(mac)) => adds.push(NeighEntry {
                    gw_kind: *kind,
                    gw_id: *id,
                    ip: k.ip,
                    mac: mac.0,
                }),
                Some(SyncNews::Withdraw) => dels.push(NeighKey {
                    gw_kind: *kind,
                    gw_id: *id,
                    ip: k.ip,
                }),
                None => {}
            }
        }
        for chunk in adds.chunks(1000) {
            self.send_outbound(Outbound::Add(chunk.to_vec()));
        }
        for chunk in dels.chunks(1000) {
            self.send_outbound(Outbound::Delete(chunk.to_vec()));
        }
    }

    /// A new sync session is up: our whole table goes first, then our
    /// gateways' exact values.
    pub(super) fn on_sync_session(&mut self, now: Instant) {
        let Some(s) = self.sync.as_mut() else { return };
        s.session_open = true;
        s.bulk_complete = false;
        s.sessions += 1;
        s.announced = None;
        let bulk = self.local_entries_for_sync();
        self.send_outbound(Outbound::Bulk(bulk));
        self.announce_gateways(now);
    }

    pub(super) fn on_sync_message(&mut self, m: Inbound, now: Instant) {
        let Some(s) = self.sync.as_mut() else { return };
        {
            {
                let mut reconcile_kernel = false;
                let mut changes = Vec::new();
                s.table.apply(&m, &mut changes);
                match &m {
                    Inbound::Established { peer_name } => {
                        s.established = true;
                        s.grace_until = None;
                        let n = Notice::new(
                            Kind::State,
                            ids::SYNC_SESSION,
                            peer_name.clone(),
                            format!("sync channel with {peer_name} established"),
                        )
                        .with("state", "established");
                        self.emit(n);
                    }
                    Inbound::BulkEnd { total } => {
                        s.bulk_complete = true;
                        s.bulks_received += 1;
                        reconcile_kernel = true;
                        let n = Notice::new(
                            Kind::State,
                            ids::SYNC_SESSION,
                            "sync",
                            format!("bulk sync from the peer complete: {total} entries"),
                        )
                        .with("state", "bulk-complete")
                        .with("entries", *total);
                        self.emit(n);
                    }
                    Inbound::Gateways {
                        first,
                        last,
                        gateways,
                    } => {
                        let ours = self.gateway_keys();
                        let Some(s) = self.sync.as_mut() else { return };
                        let set = s
                            .peer_gateways
                            .on_frame(*first, *last, gateways.clone(), |k| ours.contains(&k));
                        if set.answer {
                            // the peer may have dropped our values of the
                            // gateways it just added: send them again
                            s.announced = None;
                            self.announce_gateways(now);
                        } else if set.complete {
                            self.recheck_consistency(now);
                        }
                    }
                    Inbound::Closed(reason) => {
                        s.session_open = false;
                        s.announced = None;
                        s.peer_gateways.abandon();
                        s.bulk_complete = false;
                        if s.established {
                            s.grace_until = Some(now + GRACE);
                        }
                        s.established = false;
                        let n = Notice::new(
                            Kind::Alert,
                            ids::SYNC_SESSION,
                            "sync",
                            format!("sync channel closed: {reason}"),
                        )
                        .with("state", "closed")
                        .with("reason", reason.clone());
                        self.emit(n);
                    }
                    _ => {}
                }
                self.alert_refused(now);
                let hosts = self.peer_change_hosts(&changes);
                self.settle_hosts(hosts);
                if reconcile_kernel {
                    // After a complete bulk the peer's table is the truth:
                    // pinned copies it does not hold (left from before our
                    // restart, or withdrawn while no session was up) go.
                    self.settle_pinned();
                }
                if matches!(m, Inbound::BulkEnd { .. } | Inbound::Closed(_)) {
                    self.update_progress(now);
                }
            }
        }
    }

    /// Bring the kernel's entries for these hosts (gateway device, IP) in
    /// line with the ARP/ND rule (`core::neigh`), in one batch, on the
    /// current state: after a batch of kernel events that is the decision of
    /// each host's last event. Idempotent: the echoes of its own changes
    /// settle with no change.
    pub(super) fn settle_hosts(&mut self, hosts: impl IntoIterator<Item = KKey>) {
        self.hosts_event(hosts, HostEvent::Settle);
    }

    /// `event` for each of these hosts, the kernel effects in one batch.
    fn hosts_event(&mut self, hosts: impl IntoIterator<Item = KKey>, event: HostEvent) {
        let msgs = self.plan_hosts(hosts, event, &self.device_gateways());
        self.run_neigh_batch(msgs);
    }

    /// Every pinned copy in the kernel, settled (without collecting the
    /// keys first: at 100k synced entries that list alone is megabytes).
    fn settle_pinned(&mut self) {
        let msgs = self.plan_hosts(
            self.view
                .neighs
                .iter()
                .filter(|(_, i)| i.synced)
                .map(|(k, _)| *k),
            HostEvent::Settle,
            &self.device_gateways(),
        );
        self.run_neigh_batch(msgs);
    }

    /// The kernel changes `event` asks for these hosts.
    fn plan_hosts(
        &self,
        hosts: impl IntoIterator<Item = KKey>,
        event: HostEvent,
        devs: &HashMap<u32, (u8, u32)>,
    ) -> Vec<(KKey, NeighAction)> {
        let aging_s = self.aging_s();
        let table = self.sync.as_ref().map(|s| &s.table);
        // without a sync channel at all, pinned copies are leftovers
        let complete = self.sync.as_ref().is_none_or(|s| s.bulks_received > 0);
        let mut msgs = Vec::new();
        for k in hosts {
            let Some((kind, id)) = devs.get(&k.ifindex) else {
                continue;
            };
            let peer = table
                .and_then(|t| {
                    t.get(&NeighKey {
                        gw_kind: *kind,
                        gw_id: *id,
                        ip: k.ip,
                    })
                })
                .map(Mac);
            let info = self.view.neighs.get(&k);
            let mut host = Host::new(
                info.map_or(Held::Nothing, |i| i.held()),
                peer,
                complete,
                info.map_or(0, |i| i.confirmed_s),
            );
            let behind = |mac: Mac| self.behind_member(k.ifindex, mac);
            let now_s = self.view.clock_s;
            let effects = host.handle(event, now_s, aging_s, behind);
            if let Some(a) = effects.kernel {
                msgs.push((k, a));
            }
        }
        msgs
    }

    fn run_neigh_batch(&mut self, msgs: Vec<(KKey, NeighAction)>) {
        if msgs.is_empty() {
            return;
        }
        self.submit(
            super::Purpose::Quiet,
            crate::core::action::Work::Neighbours(msgs),
        );
    }

    /// The peer's changes, as kernel keys of the gateways this switch has.
    fn peer_change_hosts(&self, changes: &[Change]) -> Vec<KKey> {
        if changes.is_empty() {
            return Vec::new();
        }
        // (kind, id) -> device, built once: a frame spreads over many gateways
        let devs: HashMap<(u8, u32), u32> = self
            .device_gateways()
            .into_iter()
            .map(|(dev, gw)| (gw, dev))
            .collect();
        changes
            .iter()
            .filter_map(|c| {
                let k = match c {
                    Change::Upsert(e) => e.key(),
                    Change::Remove(k) => *k,
                };
                devs.get(&(k.gw_kind, k.gw_id))
                    .map(|&ifindex| KKey { ifindex, ip: k.ip })
            })
            .collect()
    }

    /// Whether the bridge of gateway device `dev` has learned `mac` on one
    /// of our M-LAG member ports: the host sits behind us.
    fn behind_member(&self, dev: u32, mac: Mac) -> bool {
        let Some(svi) = self.view.link(dev).and_then(|l| l.lower) else {
            return false;
        };
        // the SVI is the bridge, or a vlan device on it
        let bridge_of_svi = self.view.link(svi).and_then(|l| l.lower);
        [Some(svi), bridge_of_svi]
            .into_iter()
            .flatten()
            .any(|br| self.member_macs.contains_key(&(br, mac)))
    }

    /// Track where the bridge learned MACs: only member ports matter.
    /// Returns the (bridge, MAC) pairs whose member-ness changed.
    pub(super) fn note_learned_mac(&mut self, ev: &KernelEvent, changed: &mut Vec<(u32, Mac)>) {
        match ev {
            KernelEvent::MacLearned(l) => {
                let on_member = self
                    .view
                    .link(l.port)
                    .is_some_and(|p| self.cfg.mlag.members.iter().any(|m| p.name == *m));
                let key = (l.bridge, l.mac);
                let before = if on_member {
                    self.member_macs.insert(key, l.port)
                } else {
                    self.member_macs.remove(&key)
                };
                if before.is_some() != on_member {
                    changed.push(key);
                }
            }
            KernelEvent::MacForgotten(l) => {
                let key = (l.bridge, l.mac);
                if self.member_macs.get(&key) == Some(&l.port) {
                    self.member_macs.remove(&key);
                    changed.push(key);
                }
            }
            _ => {}
        }
    }

    /// MACs that moved onto or off our members: the ARP/ND rule for every
    /// host with that MAC (rule 2 for those now behind a member).
    pub(super) fn hosts_moved(&mut self, moved: &[(u32, Mac)]) {
        let (onto, off): (Vec<BridgeMac>, Vec<BridgeMac>) = moved
            .iter()
            .partition(|key| self.member_macs.contains_key(key));
        for (macs, on_member) in [(off, false), (onto, true)] {
            let hosts = self.hosts_of_macs(&macs);
            if !hosts.is_empty() {
                self.hosts_event(hosts, HostEvent::Learned { on_member });
            }
        }
    }

    /// Every entry with one of these MACs on our gateway devices, in the
    /// kernel or advertised by the peer.
    fn hosts_of_macs(&self, moved: &[(u32, Mac)]) -> Vec<KKey> {
        if moved.is_empty() {
            return Vec::new();
        }
        let macs: std::collections::HashSet<Mac> = moved.iter().map(|(_, m)| *m).collect();
        let mut hosts: Vec<KKey> = self
            .view
            .neighs
            .iter()
            .filter(|(_, i)| macs.contains(&i.mac))
            .map(|(k, _)| *k)
            .collect();
        if let Some(s) = &self.sync {
            let devs: HashMap<(u8, u32), u32> = self
                .device_gateways()
                .into_iter()
                .map(|(dev, gw)| (gw, dev))
                .collect();
            hosts.extend(
                s.table
                    .iter()
                    .filter(|e| macs.contains(&Mac(e.mac)))
                    .filter_map(|e| {
                        devs.get(&(e.gw_kind, e.gw_id))
                            .map(|&ifindex| KKey { ifindex, ip: e.ip })
                    }),
            );
        }
        hosts
    }

    /// Rebuild the member-port MAC table from a full FDB dump.
    pub(super) fn reset_learned_macs(&mut self, learned: &[KernelEvent]) {
        self.member_macs.clear();
        let mut ignored = Vec::new();
        for ev in learned {
            self.note_learned_mac(ev, &mut ignored);
        }
    }

    fn aging_s(&self) -> u32 {
        let aging = self
            .cfg
            .peer
            .as_ref()
            .map_or(crate::config::DEFAULT_NEIGHBOUR_AGING, |p| {
                p.neighbour_aging
            });
        u32::try_from(aging.as_secs()).unwrap_or(u32::MAX)
    }

    /// Rule 4 of `core::neigh`: owned entries nobody confirmed for
    /// `neighbour_aging` are probed (the kernel asks the host; silence makes
    /// them FAILED, which withdraws them from the peer).
    pub(super) fn probe_aged_neighbours(&mut self) {
        if self.cfg.peer.is_none() {
            return;
        }
        let (now_s, aging_s) = (self.view.clock_s, self.aging_s());
        let aged: Vec<KKey> = self
            .view
            .neighs
            .iter()
            .filter(|(_, i)| neigh::aged(i.held(), i.confirmed_s, now_s, aging_s))
            .map(|(k, _)| *k)
            .collect();
        if !aged.is_empty() {
            tracing::info!(
                "probing {} neighbour(s) unconfirmed for {aging_s} s",
                aged.len()
            );
            self.hosts_event(aged, HostEvent::Sweep);
        }
    }

    /// A gateway device came (back) up: the kernel flushed its neighbours
    /// when it lost carrier, so install the peer's entries for it again.
    pub(super) fn reinstall_peer_entries(&mut self, gw: usize) {
        let Some(s) = self.sync.as_ref() else { return };
        let g = &self.gateways[gw].cfg;
        let Some(dev) = self.view.owned_device(&g.name, &g.device).map(|d| d.index) else {
            return;
        };
        let (kind, id) = kind_id(g.kind);
        let hosts: Vec<KKey> = s
            .table
            .iter()
            .filter(|e| e.gw_kind == kind && e.gw_id == id)
            .map(|e| KKey {
                ifindex: dev,
                ip: e.ip,
            })
            .collect();
        self.settle_hosts(hosts);
    }

    /// The grace period after a lost session ran out: the peer's entries go.
    pub(super) fn sync_grace_expired(&mut self, now: Instant) {
        let admission = self.admission();
        let Some(s) = self.sync.as_mut() else { return };
        if s.grace_until.is_none_or(|t| now < t) || s.established {
            return;
        }
        s.grace_until = None;
        let n = s.table.len();
        let refused = s.table.refused;
        s.table = PeerTable::new(admission);
        // the empty table is now the truth: the pinned copies go
        s.bulks_received = s.bulks_received.max(1);
        s.table.refused = refused;
        self.settle_pinned();
        self.emit(
            Notice::new(
                Kind::Alert,
                ids::SYNC_SESSION,
                "sync",
                format!(
                    "no sync session for {} s: removed {n} entries learned from the peer",
                    GRACE.as_secs()
                ),
            )
            .with("state", "flushed"),
        );
    }

    pub(super) fn sync_deadline(&self) -> Option<Instant> {
        self.sync.as_ref().and_then(|s| s.grace_until)
    }
}
