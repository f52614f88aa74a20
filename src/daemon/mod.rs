//! The daemon: one event loop that alone owns the state. It selects over
//! kernel events, timers, control requests and signals; each turn feeds the
//! pure machines in `core`, plans, and applies the plan through the executor.
//!
//! Start-up: subscribe, dump, adopt what is already right (no netlink change
//! to a serving gateway), remove stale dagw devices, reconcile, write the
//! boot marker, then tell systemd READY.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

mod names;
mod peering;
mod syncing;

use crate::config::{self, Config, DelayMode, Diagnostic, Gateway};
use crate::control::{self, Request};
use crate::core::action::Action;
use crate::core::bypass::{self, BypassState};
use crate::core::drift::{DriftGuard, Verdict};
use crate::core::gateway::{self, DelayPolicy, GatewayMachine, GwState, Svi, SyncProgress};
use crate::core::ifname::IfName;
use crate::core::kernel::{DAGW_PROTODOWN_REASON, KernelEvent, KernelView, Link};
use crate::core::member::{self, MemberHoldReason, MemberMachine, MemberRecord};
use crate::core::uplinks::{UplinkState, UplinkTracker};
use crate::netlink::executor::{Report, Southbound, Work};
use crate::netlink::observer::{Observed, Observer};
use crate::netlink::socket::RequestSocket;
use crate::netlink::{NetlinkError, bulk};
use crate::status::{Counts, GatewayStatus, MemberStatus, PeerStatus, Status};
use crate::telemetry::{Kind, Notice, Telemetry, ids};
use names::{NameIndex, Named};

/// Sysctls have no change events: audit them this often.
const AUDIT_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed apply, retry a gateway this much later.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Rounds of one gateway's plan without converging before it waits
/// `RETRY_AFTER`.
const MAX_ROUNDS: u8 = 8;
/// A reload that leaves this many gateways to plan is planned in phases
/// (the kernel's fastest order), like start-up.
const PHASED_FROM: usize = 64;
/// At a stop, how long plans in flight may take to report.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
const BOOT_MARKER: &str = "booted";
const MEMBERS_FILE: &str = "members.json";
/// Present while `dagw drain` is in force.
const DRAINED_FILE: &str = "drained";
/// While kernel events are still queued, planning waits for the queue to
/// drain, but no longer than this: a flood of events must not starve the
/// gateways. (The echoes of creating 4094 gateways drain in well under it.)
const MAX_BEHIND: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Netlink(#[from] NetlinkError),
    #[error("state directory {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {}: {source}", path.display())]
    Control {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
    #[error("{0}")]
    Peer(#[from] peering::PeerSetupError),
    #[error("metrics endpoint {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// What a job handed to the executor was for: its report is routed by it.
pub enum Purpose {
    /// One round of a gateway's plan.
    Gateway(IfName),
    /// A member's hold or release.
    Member(String),
    /// A device or entry no gateway needs any more: a barrier (plans wait
    /// for it, so nothing new is made beside what is being removed).
    Stale { name: String, what: String },
    /// What a reload's old settings left behind: a barrier too.
    Cleanup { what: String },
    /// The periodic sysctl audit of one gateway.
    Audit(IfName),
    /// Nothing to do with the result (an SVI's sysctls, a former member's
    /// release).
    Quiet,
}

struct GwRuntime {
    cfg: Gateway,
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

pub struct Daemon {
    cfg: Config,
    cfg_path: PathBuf,
    view: KernelView,
    south: Southbound<Purpose>,
    reports: Option<mpsc::UnboundedReceiver<Report<Purpose>>>,
    /// Barrier jobs (stale removals, reload clean-up) in flight: plans wait.
    barrier: usize,
    /// Plans in the kernel's fastest order (start-up, a big reload): a
    /// gateway's next round waits until every job of this round reported, so
    /// all links are made first, then all addresses and FDB entries.
    phased: bool,
    /// The plans of a whole phase are being made (they do not wait for
    /// each other).
    planning_phase: bool,
    /// Members whose plan is with the executor.
    members_busy: BTreeSet<String>,
    /// SIGTERM came: nothing new is planned.
    stopping: bool,
    /// While a re-dump runs, events are kept for after it.
    redump: Option<Vec<KernelEvent>>,
    gateways: Vec<GwRuntime>,
    members: Vec<MemberMachine>,
    telemetry: Telemetry,
    version: String,
    /// Interface/device and gateway names → gateways that depend on them.
    names: NameIndex,
    peer: Option<peering::PeerRuntime>,
    /// Answer a peer that just appeared at once rather than at the next tick.
    heartbeat_now: bool,
    sync: Option<syncing::SyncRuntime>,
    /// Gateways whose SVI came back: the peer's entries are re-installed once
    /// their device is up again (the kernel flushed them with the carrier).
    reinstall_pending: BTreeSet<usize>,
    /// A (re)started sync runtime's event stream, for the event loop to take.
    sync_rx_pending: Option<mpsc::Receiver<syncing::SyncEvent>>,
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

impl Daemon {
    pub fn new(mut cfg: Config, cfg_path: PathBuf, version: String) -> Result<Self, DaemonError> {
        let (south, reports) = Southbound::start()?;
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
        let mut d = Daemon {
            cfg,
            cfg_path,
            view: KernelView::default(),
            south,
            reports: Some(reports),
            barrier: 0,
            phased: false,
            planning_phase: false,
            members_busy: BTreeSet::new(),
            redump: None,
            stopping: false,
            gateways,
            members,
            telemetry: Telemetry::new(),
            version,
            names: NameIndex::default(),
            peer: None,
            heartbeat_now: false,
            sync: None,
            sync_rx_pending: None,
            reinstall_pending: BTreeSet::new(),
            behind_since: None,
            deferred: BTreeSet::new(),
            members_deferred: false,
            member_macs: HashMap::new(),
            started: Instant::now(),
            uplinks: None,
            drained: false,
        };
        if let Some(p) = &d.cfg.peer {
            d.peer = Some(peering::PeerRuntime::new(
                p,
                &d.cfg.node.name,
                Instant::now(),
            )?);
        }
        d.index_names();
        Ok(d)
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

    /// Full dump of what dagw mirrors, into a fresh view (start-up only: the
    /// loop asks the bulk worker).
    fn dump(&mut self) -> Result<(), NetlinkError> {
        let mut sock = RequestSocket::open()?;
        let d = bulk::dump(&mut sock, self.clock_s(Instant::now()))?;
        self.view = d.view;
        self.reset_learned_macs(&d.learned);
        Ok(())
    }

    /// Seconds since the daemon started: the neighbour confirmation clock.
    fn clock_s(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.started).as_secs()).unwrap_or(u32::MAX)
    }

    fn state_dir(&self) -> &Path {
        &self.cfg.node.state_dir
    }

    fn ensure_state_dir(&self) -> Result<(), DaemonError> {
        let p = self.state_dir().to_path_buf();
        std::fs::create_dir_all(&p).map_err(|source| DaemonError::StateDir { path: p, source })
    }

    /// Seed: "After an M-LAG member device restarts ... an M-LAG member interface
    /// reports the up state after a delay". The first start after boot is the
    /// restart; a daemon restart (marker present) is not.
    fn start_members(&mut self, first_start: bool, now: Instant) {
        let saved = self.load_member_records();
        for m in &mut self.members {
            m.ifindex = self.view.link_by_name(&m.name).map(|l| l.index);
            m.drained = self.drained;
            if let Some((rec, until_unix_ms)) = saved.get(&m.name) {
                m.record = *rec;
                if let Some(ms) = until_unix_ms {
                    let left = ms.saturating_sub(unix_ms());
                    m.hold_for(
                        Duration::from_millis(left),
                        MemberHoldReason::MemberUpDelay,
                        now,
                    );
                }
            }
            if first_start {
                m.hold_for(
                    self.cfg.mlag.member_up_delay,
                    MemberHoldReason::MemberUpDelay,
                    now,
                );
            }
        }
        for m in self.members.iter().filter(|m| m.hold.is_some()) {
            self.emit(hold_start_notice(m, now));
        }
    }

    /// A member interface seen in a link event: held if it came back under
    /// a new index (board reset).
    fn member_link_seen(&mut self, l: &Link, now: Instant) {
        let delay = self.cfg.mlag.member_up_delay;
        let Some(k) = self.members.iter().position(|m| l.name == *m.name) else {
            return;
        };
        if self.members[k].link_seen(l.index, delay, now) {
            let n = hold_start_notice(&self.members[k], now);
            self.emit(n);
        }
    }

    fn load_member_records(&self) -> HashMap<String, (MemberRecord, Option<u64>)> {
        let path = self.state_dir().join(MEMBERS_FILE);
        std::fs::read(&path)
            .ok()
            .filter(|b| b.len() < 1 << 20)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_member_records(&self) {
        let now = Instant::now();
        let recs: HashMap<&str, (MemberRecord, Option<u64>)> = self
            .members
            .iter()
            .map(|m| {
                let until = m
                    .deadline()
                    .map(|d| unix_ms() + d.saturating_duration_since(now).as_millis() as u64);
                (m.name.as_str(), (m.record, until))
            })
            .collect();
        let path = self.state_dir().join(MEMBERS_FILE);
        let tmp = path.with_extension("tmp");
        if let Ok(bytes) = serde_json::to_vec(&recs)
            && std::fs::write(&tmp, bytes).is_ok()
        {
            let _ = std::fs::rename(&tmp, &path);
        }
    }

    /// A restart finds gateway devices already serving: they are `up` at once.
    fn adopt(&mut self) {
        for g in &mut self.gateways {
            let svi_up = Svi::of(&self.view, &g.cfg.interface) == Svi::Up;
            if let Some(dev) = self.view.owned_device(&g.cfg.name, &g.cfg.device)
                && svi_up
                && dev.admin_up
                && dev.protodown_reason & DAGW_PROTODOWN_REASON == 0
                && !dev.protodown
            {
                g.machine.adopt_up();
            }
        }
    }

    fn emit(&self, n: Notice) {
        self.telemetry.emit(n);
    }

    /// Dagw's own devices and entries that no configured gateway needs go
    /// first: plans wait for them (a barrier).
    fn remove_stale(&mut self) {
        let configured: Vec<&Gateway> = self.gateways.iter().map(|g| &g.cfg).collect();
        let stale = gateway::plan_stale(&configured, &self.view);
        for a in stale {
            let name = a
                .target()
                .and_then(|i| self.view.link(i))
                .map(|l| l.name.to_string())
                .unwrap_or_default();
            let what = a.describe(&self.view);
            self.barrier += 1;
            self.south
                .submit(Purpose::Stale { name, what }, Work::Actions(vec![a]));
        }
    }

    /// Whether plans may be made now: not while the event queue may still
    /// hold echoes of dagw's own changes, nor while a barrier job runs, nor
    /// in the middle of a phase of the fastest order.
    fn may_plan(&self) -> bool {
        !self.stopping
            && self.behind_since.is_none()
            && self.barrier == 0
            && !(self.phased && self.south.in_flight > 0)
    }

    /// Plans that waited (for the queue, a barrier or a phase) are made now.
    fn flush_deferred(&mut self, now: Instant) {
        if !self.may_plan() {
            return;
        }
        self.planning_phase = true;
        for i in std::mem::take(&mut self.deferred) {
            self.reconcile_gateway(i, now);
        }
        self.planning_phase = false;
        if std::mem::take(&mut self.members_deferred) {
            self.reconcile_members(now);
        }
        if self.phased && self.south.in_flight == 0 {
            // nothing more to do in phases
            self.phased = false;
        }
    }

    /// Plan one gateway and hand the plan to the executor; its report
    /// brings the next round, until the plan is empty (converged).
    fn reconcile_gateway(&mut self, i: usize, now: Instant) {
        if self.stopping {
            return;
        }
        if self.behind_since.is_some() || self.barrier > 0 {
            self.deferred.insert(i);
            return;
        }
        let svi = Svi::of(&self.view, &self.gateways[i].cfg.interface);
        let before = self.gateways[i].machine.state;
        if let Some(new) = self.gateways[i].machine.observe(svi, now) {
            self.gateways[i].converged = false;
            self.note_gateway_state(i, before, new);
            if matches!(before, GwState::Down(_)) && !matches!(new, GwState::Down(_)) {
                self.reinstall_pending.insert(i);
            }
        }
        let g = &self.gateways[i];
        if g.busy || self.phased && self.south.in_flight > 0 && !self.planning_phase {
            // the report of the plan in flight (or the phase's end) re-plans
            self.deferred.insert(i);
            return;
        }
        if g.retry_at.is_some_and(|t| now < t) {
            return;
        }
        let plan = gateway::plan(&g.cfg, g.machine.wants_protodown(), &self.view);
        if plan.is_empty() {
            if self.reinstall_pending.remove(&i) {
                self.reinstall_peer_entries(i);
            }
            let g = &mut self.gateways[i];
            g.rounds = 0;
            if !g.converged {
                g.converged = true;
                g.last_error = None;
                let device = format!("svi:{}", g.cfg.interface);
                self.south.submit(
                    Purpose::Quiet,
                    Work::Actions(vec![Action::Sysctls { device }]),
                );
            }
            return;
        }
        if self.gateways[i].rounds >= MAX_ROUNDS {
            // the kernel keeps not matching the plan: look again later
            let g = &mut self.gateways[i];
            g.rounds = 0;
            g.retry_at = Some(now + RETRY_AFTER);
            return;
        }
        if self.gateways[i].converged {
            let what: Vec<String> = plan.iter().map(|a| a.describe(&self.view)).collect();
            if !self.admit_drift(i, what, now) {
                return;
            }
        }
        for a in &plan {
            if matches!(a, Action::CreateDevice { .. }) {
                self.reinstall_pending.insert(i);
            }
        }
        let g = &mut self.gateways[i];
        g.converged = false;
        g.busy = true;
        g.rounds += 1;
        self.south
            .submit(Purpose::Gateway(g.cfg.name), Work::Actions(plan));
    }

    /// A converged gateway needs changes again: something outside undid
    /// dagw's work. Returns whether to correct it now (the drift guard backs
    /// off from a fight).
    fn admit_drift(&mut self, i: usize, what: Vec<String>, now: Instant) -> bool {
        let g = &mut self.gateways[i];
        match g.drift.admit(now) {
            Verdict::Correct => {}
            Verdict::CorrectAndBackOff(d) => {
                let n = Notice::new(
                    Kind::Alert,
                    ids::DRIFT_FIGHT,
                    g.cfg.name,
                    format!(
                        "something keeps undoing gateway {}; backing off {} ms between corrections",
                        g.cfg.name,
                        d.as_millis()
                    ),
                )
                .with("backoff_ms", d.as_millis() as u64);
                self.emit(n);
            }
            Verdict::Wait(t) => {
                g.retry_at = Some(t);
                return false;
            }
        }
        let g = &self.gateways[i];
        let n = Notice::new(
            Kind::Correction,
            ids::DRIFT_CORRECTED,
            g.cfg.name,
            format!(
                "restored gateway {} after an outside change: {}",
                g.cfg.name,
                what.join(", ")
            ),
        )
        .with("corrections", g.drift.corrections)
        .with("actions", what);
        self.emit(n);
        true
    }

    /// One round of a gateway's plan was carried out (or stopped at an error).
    fn gateway_done(&mut self, name: IfName, error: Option<NetlinkError>, now: Instant) {
        let Some(i) = self
            .names
            .get(Named::Gateway(name.as_str()))
            .find(|&i| self.gateways.get(i).is_some_and(|g| g.cfg.name == name))
        else {
            return; // removed by a reload meanwhile
        };
        self.gateways[i].busy = false;
        self.deferred.remove(&i);
        match error {
            None => self.gateways[i].retry_at = None,
            Some(e) if e.errno() == Some(libc::ENODEV) => {
                // A device vanished under the plan; its removal event is on
                // the way and will re-plan. Look again soon in any case.
                self.gateways[i].retry_at = Some(now + Duration::from_millis(100));
                return;
            }
            Some(e) => {
                let g = &mut self.gateways[i];
                let msg = format!("gateway {}: {e}", g.cfg.name);
                if g.last_error.as_deref() != Some(msg.as_str()) {
                    self.emit(Notice::new(
                        Kind::Alert,
                        ids::APPLY_FAILED,
                        self.gateways[i].cfg.name,
                        msg.clone(),
                    ));
                }
                let g = &mut self.gateways[i];
                g.last_error = Some(msg);
                g.retry_at = Some(now + RETRY_AFTER);
                return;
            }
        }
        if self.may_plan() {
            self.reconcile_gateway(i, now);
        } else {
            self.deferred.insert(i);
        }
    }

    fn note_gateway_state(&self, i: usize, before: GwState, new: GwState) {
        let g = &self.gateways[i];
        let mut n = Notice::new(
            Kind::State,
            ids::GATEWAY_STATE,
            g.cfg.name,
            format!(
                "gateway {} {} -> {}",
                g.cfg.name,
                describe(before),
                describe(new)
            ),
        )
        .with("from", before.name())
        .with("state", new.name())
        .with("reason", new.reason());
        if let GwState::Holding { .. } = new {
            n = n.with("hold_ms", g.machine.up_delay.as_millis() as u64);
        }
        let p = g.machine.progress;
        if g.machine.policy != DelayPolicy::Static {
            n = n
                .with(
                    "arp",
                    serde_json::json!({"local": p.local.0, "peer": p.peer.map(|c| c.0)}),
                )
                .with(
                    "nd",
                    serde_json::json!({"local": p.local.1, "peer": p.peer.map(|c| c.1)}),
                );
        }
        self.emit(n);
        if matches!(new, GwState::Holding { .. }) && !matches!(before, GwState::Holding { .. }) {
            self.emit(
                Notice::new(
                    Kind::State,
                    ids::HOLD_START,
                    g.cfg.name,
                    format!("gateway {} held ({})", g.cfg.name, describe(new)),
                )
                .with("state", "holding")
                .with("reason", new.reason())
                .with("hold_ms", g.machine.up_delay.as_millis() as u64),
            );
        }
        if new == GwState::Up && g.machine.released_at_max {
            self.emit(
                Notice::new(
                    Kind::Alert,
                    ids::SYNC_INCOMPLETE,
                    g.cfg.name,
                    format!(
                        "gateway {} released at the dynamic max with ARP/ND sync incomplete (arp {}/{:?}, nd {}/{:?})",
                        g.cfg.name, p.local.0, p.peer.map(|c| c.0), p.local.1, p.peer.map(|c| c.1)
                    ),
                )
                .with("bulk_complete", p.bulk_complete),
            );
        }
    }

    fn reconcile_members(&mut self, now: Instant) {
        if self.stopping {
            return;
        }
        if self.behind_since.is_some() {
            self.members_deferred = true;
            return;
        }
        let mut changed = false;
        let dynamic = self.cfg.up_delay.mode == DelayMode::Dynamic;
        let gateways_up = self.gateways.iter().all(|g| g.machine.state == GwState::Up);
        let min = self.cfg.mlag.member_min_delay;
        for k in 0..self.members.len() {
            let why = if dynamic && self.members[k].release_early(now, min, gateways_up) {
                Some("every gateway is up")
            } else if self.members[k].tick(now) {
                Some("member up-delay over")
            } else {
                None
            };
            if let Some(why) = why {
                let name = self.members[k].name.clone();
                self.emit(
                    Notice::new(
                        Kind::State,
                        ids::HOLD_END,
                        name.clone(),
                        format!("member {name} released: {why}"),
                    )
                    .with("state", "up"),
                );
                changed = true;
            }
            if self.members_busy.contains(&self.members[k].name) {
                // its report re-plans
                continue;
            }
            let before = self.members[k].record;
            let plan = self.members[k].plan(&self.view);
            changed |= before != self.members[k].record;
            if !plan.is_empty() {
                let name = self.members[k].name.clone();
                self.members_busy.insert(name.clone());
                self.south
                    .submit(Purpose::Member(name), Work::Actions(plan));
            }
        }
        if changed {
            self.save_member_records();
        }
    }

    /// A member's plan was carried out, or stopped at an error.
    fn member_done(&mut self, name: String, failed: Option<(&Action, NetlinkError)>, now: Instant) {
        self.members_busy.remove(&name);
        let Some(k) = self.members.iter().position(|m| m.name == name) else {
            return; // no longer a member
        };
        match failed {
            None => self.reconcile_members(now),
            Some((Action::Protodown { ours: true, .. }, _)) => {
                // The driver cannot protodown (veth, bridge...): hold by
                // admin state.
                self.members[k].fall_back_to_admin_down();
                self.save_member_records();
                self.reconcile_members(now);
            }
            // not re-planned at once: the next event or timer tries again
            Some((_, e)) => self.emit(Notice::new(
                Kind::Alert,
                ids::APPLY_FAILED,
                name,
                e.to_string(),
            )),
        }
    }

    fn reconcile_all(&mut self, now: Instant) {
        for i in 0..self.gateways.len() {
            self.reconcile_gateway(i, now);
        }
        self.reconcile_members(now);
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
        for i in dirty {
            self.reconcile_gateway(i, now);
        }
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

    /// `dagw drain` / `dagw resume`: hold every member (reason `drain`) so
    /// servers move to the peer, or release them at once; kept in
    /// `state_dir` across restarts of dagw; the peer is told in the next
    /// heartbeat, sent at once.
    fn set_drained(&mut self, on: bool, now: Instant) -> Result<(), String> {
        let marker = self.state_dir().join(DRAINED_FILE);
        let io = if on {
            std::fs::write(&marker, b"drained\n")
        } else {
            match std::fs::remove_file(&marker) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                r => r,
            }
        };
        io.map_err(|e| format!("cannot record the drain in {}: {e}", marker.display()))?;
        let changed = self.drained != on;
        self.drained = on;
        for m in &mut self.members {
            m.drained = on;
        }
        if changed {
            let msg = if on {
                "drained for maintenance: every member held so servers use the peer"
            } else {
                "resumed: members released"
            };
            self.emit(
                Notice::new(Kind::State, ids::DRAIN, self.cfg.node.name.clone(), msg)
                    .with("drained", on),
            );
            if on {
                for m in self.members.iter() {
                    self.emit(hold_start_notice(m, now));
                }
            }
        }
        self.reconcile_members(now);
        self.heartbeat_now = true;
        Ok(())
    }

    /// Oper-up uplinks of `[uplinks]` in the kernel now.
    fn uplinks_up(&self) -> u32 {
        self.cfg.uplinks.as_ref().map_or(0, |u| {
            u.interfaces
                .iter()
                .filter(|n| self.view.link_by_name(n).is_some_and(|l| l.oper_up))
                .count() as u32
        })
    }

    /// (Re)build the tracker for the configured `[uplinks]`, keeping the
    /// state a reload finds (a recovery in progress is not cut short).
    fn setup_uplinks(&mut self, now: Instant) {
        let up = self.uplinks_up();
        self.uplinks = match (&self.cfg.uplinks, self.uplinks.take()) {
            (None, _) => None,
            (Some(c), Some(mut t)) => {
                t.min_up = c.min_up;
                t.recover_delay = c.recover_delay;
                t.update(up, now);
                Some(t)
            }
            (Some(c), None) => Some(UplinkTracker::new(c.min_up, c.recover_delay, up)),
        };
        self.apply_uplinks(now, None);
    }

    /// Uplink events or time: recount, and hold or release the members.
    fn on_uplinks(&mut self, now: Instant, recount: bool) {
        let up = self.uplinks_up();
        let Some(t) = self.uplinks.as_mut() else {
            return;
        };
        let changed = if recount { t.update(up, now) } else { None }.or_else(|| t.tick(now));
        if changed.is_some() {
            self.apply_uplinks(now, changed);
        }
    }

    fn apply_uplinks(&mut self, now: Instant, changed: Option<UplinkState>) {
        let hold = self
            .uplinks
            .as_ref()
            .is_some_and(UplinkTracker::holds_members);
        let mut flipped = false;
        for m in &mut self.members {
            flipped |= m.uplinks_down != hold;
            m.uplinks_down = hold;
        }
        if let (Some(state), Some(t)) = (changed, &self.uplinks) {
            let (kind, msg) = match state {
                UplinkState::Down => (
                    Kind::Alert,
                    format!(
                        "uplinks down: {} of {} needed are up; members held so servers use the peer",
                        t.up, t.min_up
                    ),
                ),
                UplinkState::Recovering { .. } => (
                    Kind::State,
                    format!(
                        "uplinks recovering: {} up; members released after {} s",
                        t.up,
                        t.recover_delay.as_secs()
                    ),
                ),
                UplinkState::Up => (
                    Kind::State,
                    format!("uplinks up: {} up; members released", t.up),
                ),
            };
            let n = Notice::new(kind, ids::UPLINKS, "uplinks", msg)
                .with("state", state.as_str())
                .with("up", t.up)
                .with("min_up", t.min_up);
            self.emit(n);
        }
        if flipped {
            if hold {
                for m in self.members.iter().filter(|m| m.held()) {
                    self.emit(hold_start_notice(m, now));
                }
            }
            self.reconcile_members(now);
        }
    }

    /// VBDIF bypass tunnels: report each change of health (an alert when it
    /// breaks, a notice when it recovers). The gateways keep serving.
    fn check_bypass(&mut self) {
        for i in 0..self.gateways.len() {
            let g = &self.gateways[i];
            let Some(vx) = g.cfg.vxlan.as_deref() else {
                continue;
            };
            let now = bypass::bypass_state(vx, &g.cfg.interface, &self.view);
            let before = g.bypass;
            if before == Some(now) {
                continue;
            }
            self.gateways[i].bypass = Some(now);
            let g = &self.gateways[i];
            let Some(vx) = g.cfg.vxlan.as_deref() else {
                continue;
            };
            // the first look at a healthy tunnel is no news
            if before.is_none() && now == BypassState::Ok {
                continue;
            }
            let (kind, message) = if now == BypassState::Ok {
                (
                    Kind::State,
                    format!("bypass tunnel of {} on {} recovered", g.cfg.name, vx.device),
                )
            } else {
                (
                    Kind::Alert,
                    format!(
                        "bypass tunnel of {} on {} is {}: traffic for a failed server link cannot cross to the peer",
                        g.cfg.name,
                        vx.device,
                        now.as_str()
                    ),
                )
            };
            let n = Notice::new(kind, ids::BYPASS_TUNNEL, g.cfg.name, message)
                .with("device", vx.device.clone())
                .with("state", now.as_str());
            self.emit(n);
        }
    }

    /// Feed every gateway's dynamic up-delay with what is known of the sync.
    fn update_progress(&mut self, now: Instant) {
        let peer_up = self
            .peer
            .as_ref()
            .is_some_and(|p| p.machine.state == crate::core::peer::PeerState::Up);
        let bulk = self.sync_bulk_complete();
        let mut released = false;
        for i in 0..self.gateways.len() {
            let g = &self.gateways[i];
            let local = self
                .view
                .owned_device(&g.cfg.name, &g.cfg.device)
                .map(|d| self.view.neigh_counts(d.index))
                .unwrap_or_default();
            let p = SyncProgress {
                peer_up,
                bulk_complete: bulk,
                local,
                peer: self.peer_counts(&g.cfg),
            };
            if p == self.gateways[i].machine.progress {
                continue;
            }
            let before = self.gateways[i].machine.state;
            if let Some(new) = self.gateways[i].machine.set_progress(p, now) {
                self.gateways[i].converged = false;
                self.note_gateway_state(i, before, new);
                self.reconcile_gateway(i, now);
                released |= new == GwState::Up;
            }
        }
        if released && self.cfg.up_delay.mode == DelayMode::Dynamic {
            self.reconcile_members(now);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
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

    /// Hand memory freed by bursts (start-up, a bulk sync, a reload) back to
    /// the system, and pack the kernel mirror's trees.
    fn settle_memory(&mut self) {
        self.view.compact();
        crate::sys::release_free_memory();
    }

    /// Sysctls have no events; check them slowly. Also settle memory after
    /// whatever burst came since the last audit.
    fn audit(&mut self) {
        self.settle_memory();
        self.view.clock_s = self.clock_s(Instant::now());
        self.probe_aged_neighbours();
        let audits: Vec<(IfName, Vec<Action>)> = self
            .gateways
            .iter()
            .filter(|g| self.view.owned_device(&g.cfg.name, &g.cfg.device).is_some())
            .map(|g| {
                let dev = g.cfg.device.to_string();
                let svi = format!("svi:{}", g.cfg.interface);
                let plan = [dev, svi].map(|device| Action::Sysctls { device });
                (g.cfg.name, plan.into())
            })
            .collect();
        for (name, plan) in audits {
            self.south.submit(Purpose::Audit(name), Work::Actions(plan));
        }
    }

    /// The audit of a gateway's sysctls reported.
    fn audit_done(
        &mut self,
        name: IfName,
        changed: u32,
        error: Option<NetlinkError>,
        now: Instant,
    ) {
        let Some(g) = self.gateways.iter_mut().find(|g| g.cfg.name == name) else {
            return;
        };
        if let Some(e) = error {
            self.emit(Notice::new(
                Kind::Alert,
                ids::APPLY_FAILED,
                name,
                e.to_string(),
            ));
            return;
        }
        if changed > 0 {
            let _ = g.drift.admit(now);
            let n = Notice::new(
                Kind::Correction,
                ids::DRIFT_CORRECTED,
                g.cfg.name,
                format!("restored {changed} sysctl(s) of gateway {}", g.cfg.name),
            )
            .with("corrections", g.drift.corrections);
            self.emit(n);
        }
    }

    /// The executor reported on a job.
    fn on_report(&mut self, report: Report<Purpose>, now: Instant) {
        self.south.reported();
        match report {
            Report::Actions {
                purpose,
                actions,
                outcomes,
                error,
            } => {
                for (a, o) in actions.iter().zip(&outcomes) {
                    a.assume_done(&mut self.view);
                    if let Some(l) = &o.link {
                        self.view.apply(KernelEvent::Link(l.clone()));
                    }
                }
                let failed = error.map(|e| (&actions[outcomes.len().min(actions.len() - 1)], e));
                match purpose {
                    Purpose::Gateway(name) => self.gateway_done(name, failed.map(|f| f.1), now),
                    Purpose::Member(name) => self.member_done(name, failed, now),
                    Purpose::Audit(name) => {
                        let changed = outcomes.iter().map(|o| o.sysctls_changed).sum();
                        self.audit_done(name, changed, failed.map(|f| f.1), now);
                    }
                    Purpose::Stale { name, what } => {
                        self.barrier -= 1;
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
                        self.barrier -= 1;
                        if let Some((_, e)) = failed {
                            tracing::warn!("reload: {what}: {e}");
                        }
                    }
                    Purpose::Quiet => {}
                }
            }
            Report::Neighbours { refused } => {
                if refused > 0 {
                    tracing::warn!("sync: {refused} neighbour changes refused by the kernel");
                }
            }
            Report::Dumped(Ok(d)) => {
                self.view = d.view;
                self.reset_learned_macs(&d.learned);
                // what happened while the dump ran comes after it
                let queued = self.redump.take().unwrap_or_default();
                self.on_events(queued, true, now);
                self.reconcile_all(now);
            }
            Report::Dumped(Err(e)) => {
                self.emit(Notice::new(
                    Kind::Alert,
                    ids::NETLINK_OVERRUN,
                    "netlink",
                    format!("re-reading the kernel state failed ({e}); trying again"),
                ));
                let clock_s = self.clock_s(now);
                self.south.submit(Purpose::Quiet, Work::Dump { clock_s });
            }
        }
        self.flush_deferred(now);
    }

    /// The kernel's event queue overran: re-read the whole state (on the
    /// bulk worker); events meanwhile wait for the fresh view.
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
            self.south.submit(Purpose::Quiet, Work::Dump { clock_s });
        }
    }

    /// Start-up: run until every plan of the first reconcile reported and
    /// the kernel's echoes of them were read (nothing left to plan).
    async fn settle(&mut self, observer: &mut Observer) -> Result<(), DaemonError> {
        let mut reports = self.reports.take().expect("reports taken once");
        while self.south.in_flight > 0
            || self.barrier > 0
            || !self.deferred.is_empty()
            || self.members_deferred
        {
            tokio::select! {
                Some(r) = reports.recv() => self.on_report(r, Instant::now()),
                obs = observer.next() => match obs? {
                    Observed::Events { events, drained } => self.on_events(events, drained, Instant::now()),
                    Observed::Overrun => self.redump(Instant::now()),
                },
            }
        }
        self.reports = Some(reports);
        Ok(())
    }

    /// Stopping: no new plans; what the kernel is doing now is seen through
    /// (its reports keep the member records right), for a bounded time.
    async fn finish_in_flight(&mut self, reports: &mut mpsc::UnboundedReceiver<Report<Purpose>>) {
        self.stopping = true;
        let give_up = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.south.in_flight > 0 {
            tokio::select! {
                Some(r) = reports.recv() => self.on_report(r, Instant::now()),
                _ = tokio::time::sleep_until(give_up) => break,
            }
        }
    }

    /// Apply a new configuration whole. Validation happened already.
    fn apply_config(&mut self, mut new: Config, now: Instant) {
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
            self.south
                .submit(Purpose::Cleanup { what }, Work::Actions(vec![a]));
        }
        // Members no longer configured are released; new ones are not held (no restart happened).
        let mut kept = Vec::new();
        for mut m in self.members.drain(..) {
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
                    self.south.submit(Purpose::Quiet, Work::Actions(plan));
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
        self.update_peer(&new, now);
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
        self.save_member_records();
        // the peer learns our new values; we compare with its at once
        self.announce_gateways(now);
    }

    fn reload(&mut self, now: Instant) -> Result<Vec<Diagnostic>, Vec<String>> {
        let file = self.cfg_path.display().to_string();
        let loaded = config::load(&self.cfg_path);
        crate::sys::release_free_memory();
        match loaded {
            Ok((new, warnings)) => {
                if new.node.socket != self.cfg.node.socket
                    || new.node.state_dir != self.cfg.node.state_dir
                {
                    tracing::warn!("[node] socket and state_dir take effect at the next start");
                }
                self.apply_config(new, now);
                self.emit(Notice::new(
                    Kind::State,
                    ids::CONFIG_RELOADED,
                    "config",
                    format!("configuration {file} applied"),
                ));
                Ok(warnings)
            }
            Err(config::LoadFailure::Io { path, source }) => {
                let msg = format!("{}: error: cannot read: {source}", path.display());
                self.emit(Notice::new(
                    Kind::Alert,
                    ids::CONFIG_REJECTED,
                    "config",
                    msg.clone(),
                ));
                Err(vec![msg])
            }
            Err(config::LoadFailure::Invalid(diags)) => {
                let lines: Vec<String> = diags.iter().map(|d| d.render(&file)).collect();
                self.emit(
                    Notice::new(
                        Kind::Alert,
                        ids::CONFIG_REJECTED,
                        "config",
                        format!("configuration {file} refused; running configuration kept"),
                    )
                    .with("errors", lines.clone()),
                );
                Err(lines)
            }
        }
    }

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
                            "rejected": crate::sync::session::REJECTED
                                .all()
                                .into_iter()
                                .map(|(r, n)| (r.to_string(), serde_json::Value::from(n)))
                                .collect::<serde_json::Map<_, _>>(),
                        })
                    }),
                    heartbeats: Some(serde_json::json!({
                        "tx": p.link.counters.tx,
                        "rx": p.link.counters.rx,
                        "dropped": crate::peer::link::DropReason::ALL
                            .iter()
                            .map(|r| (r.as_str().to_string(), serde_json::Value::from(p.link.counters.dropped(*r))))
                            .collect::<serde_json::Map<_, _>>(),
                    })),
                },
            },
            gateways,
            members,
            drained: self.drained,
            uplinks,
        }
    }

    /// The OpenMetrics exposition of `[metrics] listen`.
    pub fn metrics(&self, now: Instant) -> String {
        use crate::telemetry::metrics::Exposition;
        let st = self.status(now);
        let mut e = Exposition::default();
        e.family(
            "dagw_gateway_state",
            "gauge",
            "Gateway state: 0 down, 1 holding, 2 up",
        );
        for g in &st.gateways {
            let v = match g.state.as_str() {
                "up" => 2.0,
                "holding" => 1.0,
                _ => 0.0,
            };
            e.sample(
                "dagw_gateway_state",
                &[("gateway", &g.name), ("kind", &g.kind)],
                v,
            );
        }
        e.family(
            "dagw_gateway_hold_remaining_seconds",
            "gauge",
            "Time left in the gateway's current hold",
        );
        for g in &st.gateways {
            e.sample(
                "dagw_gateway_hold_remaining_seconds",
                &[("gateway", &g.name)],
                g.hold_remaining_ms.unwrap_or(0) as f64 / 1000.0,
            );
        }
        e.family(
            "dagw_gateway_corrections",
            "counter",
            "Outside changes to the gateway that dagw restored",
        );
        for g in &st.gateways {
            e.sample(
                "dagw_gateway_corrections_total",
                &[("gateway", &g.name)],
                g.corrections as f64,
            );
        }
        e.family(
            "dagw_gateway_neighbours",
            "gauge",
            "Usable ARP/ND entries on the gateway device, local and as the peer reports",
        );
        for g in &st.gateways {
            for (family, c) in [("arp", &g.arp), ("nd", &g.nd)] {
                e.sample(
                    "dagw_gateway_neighbours",
                    &[("gateway", &g.name), ("family", family), ("side", "local")],
                    c.local as f64,
                );
                if let Some(p) = c.peer {
                    e.sample(
                        "dagw_gateway_neighbours",
                        &[("gateway", &g.name), ("family", family), ("side", "peer")],
                        p as f64,
                    );
                }
            }
        }
        e.family(
            "dagw_member_held",
            "gauge",
            "1 while dagw holds the M-LAG member down",
        );
        for m in &st.members {
            e.sample(
                "dagw_member_held",
                &[("member", &m.name), ("method", &m.method)],
                f64::from(u8::from(m.state == "holding")),
            );
        }
        e.family(
            "dagw_peer_up",
            "gauge",
            "1 while the peer's heartbeat is heard",
        );
        e.sample(
            "dagw_peer_up",
            &[("state", &st.peer.state)],
            f64::from(u8::from(st.peer.state == "up")),
        );
        if let Some(p) = &self.peer {
            e.family(
                "dagw_peer_rtt_seconds",
                "gauge",
                "Heartbeat round-trip time",
            );
            e.sample(
                "dagw_peer_rtt_seconds",
                &[],
                p.machine.rtt.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN),
            );
            e.family("dagw_heartbeat_tx", "counter", "Heartbeat packets sent");
            e.sample("dagw_heartbeat_tx_total", &[], p.link.counters.tx as f64);
            e.family("dagw_heartbeat_rx", "counter", "Heartbeat packets accepted");
            e.sample("dagw_heartbeat_rx_total", &[], p.link.counters.rx as f64);
            e.family(
                "dagw_heartbeat_dropped",
                "counter",
                "Heartbeat packets dropped, by reason",
            );
            for r in crate::peer::link::DropReason::ALL {
                e.sample(
                    "dagw_heartbeat_dropped_total",
                    &[("reason", r.as_str())],
                    p.link.counters.dropped(r) as f64,
                );
            }
            e.family(
                "dagw_sync_rejected",
                "counter",
                "Sync connections or sessions refused, by reason",
            );
            for (r, n) in crate::sync::session::REJECTED.all() {
                e.sample("dagw_sync_rejected_total", &[("reason", r)], n as f64);
            }
        }
        if let Some(s) = &self.sync {
            e.family(
                "dagw_sync_peer_entries",
                "gauge",
                "Neighbour entries the peer advertised and this switch admitted",
            );
            e.sample("dagw_sync_peer_entries", &[], s.table.len() as f64);
            e.family(
                "dagw_sync_refused",
                "counter",
                "Neighbour entries from the peer refused, by reason",
            );
            let r = s.table.refused;
            for (reason, n) in [
                ("outside-prefix", r.outside_prefix),
                ("over-limit", r.over_limit),
            ] {
                e.sample("dagw_sync_refused_total", &[("reason", reason)], n as f64);
            }
        }
        crate::telemetry::metrics::status_families(&mut e, &st);
        e.finish()
    }

    /// Run until SIGTERM / SIGINT.
    pub async fn run(mut self, socket_path: PathBuf) -> Result<(), DaemonError> {
        use tokio::signal::unix::{SignalKind, signal};
        self.ensure_state_dir()?;
        let mut observer = Observer::open()?;
        self.dump()?;
        let now = Instant::now();
        let marker = self.state_dir().join(BOOT_MARKER);
        let recorded = std::fs::read_to_string(&marker).ok();
        let boot_id = read_boot_id();
        let first_start = member::first_start_after_boot(recorded.as_deref(), boot_id.as_deref());
        self.adopt();
        self.drained = self.state_dir().join(DRAINED_FILE).exists();
        self.start_members(first_start, now);
        self.setup_uplinks(now);
        self.remove_stale();
        self.phased = true;
        self.reconcile_all(now);
        self.settle(&mut observer).await?;
        self.check_bypass();
        let record = boot_id.unwrap_or_else(|| unix_ms().to_string());
        std::fs::write(&marker, format!("{}\n", record.trim())).map_err(|source| {
            DaemonError::StateDir {
                path: marker.clone(),
                source,
            }
        })?;
        self.save_member_records();

        let (req_tx, mut req_rx) = mpsc::channel::<(Request, oneshot::Sender<control::Reply>)>(64);
        let listener = control::bind(&socket_path).map_err(|source| DaemonError::Control {
            path: socket_path.clone(),
            source,
        })?;
        let monitor_feed = self.telemetry.sender();
        // one signal every task watches: set when the daemon stops
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        if let Some(m) = &self.cfg.metrics {
            let l = crate::telemetry::metrics::bind(m.listen)
                .await
                .map_err(|source| DaemonError::Metrics {
                    addr: m.listen,
                    source,
                })?;
            tokio::spawn(crate::telemetry::metrics::serve(
                l,
                req_tx.clone(),
                shutdown.clone(),
            ));
        }
        tokio::spawn(control::serve(listener, req_tx, monitor_feed, shutdown));

        let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
        let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
        let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
        let watchdog = watchdog_period();
        let mut watchdog_tick =
            tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        let mut audit_tick = tokio::time::interval(AUDIT_INTERVAL);
        audit_tick.tick().await;
        self.bind_peer()?;
        self.start_sync();
        let mut sync_rx: Option<mpsc::Receiver<syncing::SyncEvent>> = None;
        let mut hb_period = self.heartbeat_period();
        let mut hb_tick = tokio::time::interval(hb_period);
        hb_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // one byte more than the largest valid packet: an oversized one is seen as such
        let mut rx_buf = [0u8; crate::peer::codec::MAX_PACKET + 1];
        let mut reports = self.reports.take().expect("reports taken once");
        watchdog_tick.tick().await;
        self.settle_memory();
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        self.emit(
            Notice::new(
                Kind::State,
                ids::STARTED,
                self.cfg.node.name.clone(),
                format!(
                    "dagw {} serving {} gateways",
                    self.version,
                    self.gateways.len()
                ),
            )
            .with("first_start", first_start),
        );

        loop {
            if self.heartbeat_period() != hb_period {
                hb_period = self.heartbeat_period();
                hb_tick = tokio::time::interval(hb_period);
                hb_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
            let hb_sock = self.peer.as_ref().and_then(|p| p.socket.clone());
            if let Some(rx) = self.sync_rx_pending.take() {
                sync_rx = Some(rx);
            }
            if self.sync.is_none() {
                sync_rx = None;
            }
            let deadline = self.next_deadline();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                obs = observer.next() => {
                    let now = Instant::now();
                    match obs? {
                        Observed::Events { events, drained } => self.on_events(events, drained, now),
                        Observed::Overrun => self.redump(now),
                    }
                }
                Some(r) = reports.recv() => self.on_report(r, Instant::now()),
                _ = sleep => self.on_timer(Instant::now()),
                _ = hb_tick.tick(), if hb_sock.is_some() => self.send_heartbeat().await,
                r = peering::recv(hb_sock.as_deref(), &mut rx_buf) => {
                    if let Ok((n, from)) = r {
                        self.on_datagram(&rx_buf[..n], from, Instant::now());
                        if std::mem::take(&mut self.heartbeat_now) {
                            hb_tick.reset_immediately();
                        }
                    }
                }
                Some((req, reply)) = req_rx.recv() => {
                    let now = Instant::now();
                    let r = match req {
                        Request::Status => control::Reply::Status(Box::new(self.status(now))),
                        Request::Metrics => control::Reply::Metrics { text: self.metrics(now) },
                        Request::Reload => match self.reload(now) {
                            Ok(w) => control::Reply::Reloaded { warnings: w.iter().map(|d| d.render(&self.cfg_path.display().to_string())).collect() },
                            Err(errors) => control::Reply::Refused { errors },
                        },
                        Request::Drain | Request::Resume => {
                            match self.set_drained(matches!(req, Request::Drain), now) {
                                Ok(()) => control::Reply::Drained { drained: self.drained },
                                Err(error) => control::Reply::Error { error },
                            }
                        }
                    };
                    let _ = reply.send(r);
                    if std::mem::take(&mut self.heartbeat_now) {
                        hb_tick.reset_immediately();
                    }
                }
                Some(ev) = recv_sync(&mut sync_rx) => self.on_sync_event(ev, Instant::now()),
                _ = hup.recv() => { let _ = self.reload(Instant::now()); }
                _ = audit_tick.tick() => self.audit(),
                _ = watchdog_tick.tick(), if watchdog.is_some() => { let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]); }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        let _ = stop.send(true);
        self.send_goodbye().await;
        self.finish_in_flight(&mut reports).await;
        self.save_member_records();
        let _ = std::fs::remove_file(&socket_path);
        Ok(())
    }
}

fn describe(s: GwState) -> String {
    match s.reason() {
        Some(r) => format!("{} ({r})", s.name()),
        None => s.name().to_string(),
    }
}

async fn recv_sync(
    rx: &mut Option<mpsc::Receiver<syncing::SyncEvent>>,
) -> Option<syncing::SyncEvent> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Half the systemd watchdog period, when systemd asked for pings.
/// The kernel's boot id; `DAGW_BOOT_ID_FILE` names another file to read
/// (tests simulate a reboot with it).
fn read_boot_id() -> Option<String> {
    let path = std::env::var_os("DAGW_BOOT_ID_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/sys/kernel/random/boot_id"));
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 64)
}

/// `hold-start`: a member's hold began (first start after boot, board reset,
/// peer-link recovery).
pub(super) fn hold_start_notice(m: &MemberMachine, now: Instant) -> Notice {
    let (until, reason) = m.hold.unwrap_or((now, MemberHoldReason::MemberUpDelay));
    let ms = until.saturating_duration_since(now).as_millis() as u64;
    Notice::new(
        Kind::State,
        ids::HOLD_START,
        m.name.clone(),
        format!("member {} held for {} ms ({})", m.name, ms, reason.as_str()),
    )
    .with("state", "holding")
    .with("reason", reason.as_str())
    .with("hold_ms", ms)
}

fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|d| !d.is_zero())
        .map(|d| d / 2)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
