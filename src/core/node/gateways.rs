//! The gateways: plans handed to the kernel round by round, drift, the
//! sysctl audit, the bypass tunnel's health and the dynamic up-delay's
//! progress.

use std::time::{Duration, Instant};

use super::names::Named;
use super::{Effect, MAX_ROUNDS, Node, Purpose, RETRY_AFTER, describe};
use crate::config::{DelayMode, Gateway};
use crate::core::action::{Action, KernelError, Work};
use crate::core::bypass::{self, BypassState};
use crate::core::drift::Verdict;
use crate::core::gateway::{self, DelayPolicy, GwState, Svi, SyncProgress};
use crate::core::ifname::IfName;
use crate::core::kernel::DAGW_PROTODOWN_REASON;
use crate::telemetry::{Kind, Notice, ids};

impl Node {
    /// Dagw's own devices and entries that no configured gateway needs go
    /// first: plans wait for them (a barrier).
    pub(super) fn remove_stale(&mut self) {
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
            self.submit(Purpose::Stale { name, what }, Work::Actions(vec![a]));
        }
    }

    /// Whether plans may be made now: not while the event queue may still
    /// hold echoes of dagw's own changes, nor while a barrier job runs, nor
    /// in the middle of a phase of the fastest order.
    pub(super) fn may_plan(&self) -> bool {
        !self.stopping
            && self.behind_since.is_none()
            && self.barrier == 0
            && !(self.phased && self.in_flight > 0)
    }

    /// Plans that waited (for the queue, a barrier or a phase) are made now.
    pub(super) fn flush_deferred(&mut self, now: Instant) {
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
        if self.phased && self.in_flight == 0 {
            // nothing more to do in phases
            self.phased = false;
        }
    }

    /// Plan one gateway and hand the plan to the executor; its report
    /// brings the next round, until the plan is empty (converged).
    pub(super) fn reconcile_gateway(&mut self, i: usize, now: Instant) {
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
        if g.busy || self.phased && self.in_flight > 0 && !self.planning_phase {
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
                self.submit(
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
        let name = g.cfg.name;
        self.submit(Purpose::Gateway(name), Work::Actions(plan));
    }

    /// A converged gateway needs changes again: something outside undid
    /// dagw's work. Returns whether to correct it now (the drift guard backs
    /// off from a fight).
    pub(super) fn admit_drift(&mut self, i: usize, what: Vec<String>, now: Instant) -> bool {
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
    pub(super) fn gateway_done(&mut self, name: IfName, error: Option<KernelError>, now: Instant) {
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
            Some(e) if e.errno == Some(libc::ENODEV) => {
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

    pub(super) fn note_gateway_state(&mut self, i: usize, before: GwState, new: GwState) {
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
        self.out.push(Effect::Notice(n));
        if matches!(new, GwState::Holding { .. }) && !matches!(before, GwState::Holding { .. }) {
            self.out.push(Effect::Notice(
                Notice::new(
                    Kind::State,
                    ids::HOLD_START,
                    g.cfg.name,
                    format!("gateway {} held ({})", g.cfg.name, describe(new)),
                )
                .with("state", "holding")
                .with("reason", new.reason())
                .with("hold_ms", g.machine.up_delay.as_millis() as u64),
            ));
        }
        if new == GwState::Up && g.machine.released_at_max {
            self.out.push(Effect::Notice(
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
            ));
        }
    }

    /// A restart finds gateway devices already serving: they are `up` at once.
    pub(super) fn adopt(&mut self) {
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

    /// VBDIF bypass tunnels: report each change of health (an alert when it
    /// breaks, a notice when it recovers). The gateways keep serving.
    pub(super) fn check_bypass(&mut self) {
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
    pub(super) fn update_progress(&mut self, now: Instant) {
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

    /// Sysctls have no events; check them slowly. Also settle memory after
    /// whatever burst came since the last audit.
    pub(super) fn audit(&mut self, now: Instant) {
        self.view.clock_s = self.clock_s(now);
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
            self.submit(Purpose::Audit(name), Work::Actions(plan));
        }
    }

    /// The audit of a gateway's sysctls reported.
    pub(super) fn audit_done(
        &mut self,
        name: IfName,
        changed: u32,
        error: Option<KernelError>,
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
}
