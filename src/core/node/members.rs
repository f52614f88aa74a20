//! The M-LAG members: holds (first start after boot, board reset, peer-link
//! recovery, split-brain, uplinks, drain) and their release, by protodown or
//! by admin state where the driver cannot protodown.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Effect, Node, Purpose};
use crate::config::DelayMode;
use crate::core::action::{Action, KernelError, Work};
use crate::core::gateway::GwState;
use crate::core::kernel::Link;
use crate::core::member::{MemberHoldReason, MemberMachine, MemberRecord};
use crate::core::uplinks::{UplinkState, UplinkTracker};
use crate::telemetry::{Kind, Notice, ids};

impl Node {
    /// Seed: "After an M-LAG member device restarts ... an M-LAG member interface
    /// reports the up state after a delay". The first start after boot is the
    /// restart; a daemon restart (marker present) is not.
    pub(super) fn start_members(
        &mut self,
        first_start: bool,
        saved: &HashMap<String, (MemberRecord, Option<Duration>)>,
        now: Instant,
    ) {
        for m in &mut self.members {
            m.ifindex = self.view.link_by_name(&m.name).map(|l| l.index);
            m.drained = self.drained;
            if let Some((rec, left)) = saved.get(&m.name) {
                m.record = *rec;
                if let Some(left) = left {
                    m.hold_for(*left, MemberHoldReason::MemberUpDelay, now);
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
            self.out.push(Effect::Notice(hold_start_notice(m, now)));
        }
    }

    /// A member interface seen in a link event: held if it came back under
    /// a new index (board reset).
    pub(super) fn member_link_seen(&mut self, l: &Link, now: Instant) {
        let delay = self.cfg.mlag.member_up_delay;
        let Some(k) = self.members.iter().position(|m| l.name == *m.name) else {
            return;
        };
        if self.members[k].link_seen(l.index, delay, now) {
            let n = hold_start_notice(&self.members[k], now);
            self.emit(n);
        }
    }

    /// Members' records (and what is left of their holds) to keep across
    /// restarts of dagw.
    pub(super) fn save_member_records(&mut self, now: Instant) {
        let recs = self
            .members
            .iter()
            .map(|m| {
                let left = m.deadline().map(|d| d.saturating_duration_since(now));
                (m.name.clone(), m.record, left)
            })
            .collect();
        self.out.push(Effect::SaveMembers(recs));
    }

    pub(super) fn reconcile_members(&mut self, now: Instant) {
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
                self.submit(Purpose::Member(name), Work::Actions(plan));
            }
        }
        if changed {
            self.save_member_records(now);
        }
    }

    /// A member's plan was carried out, or stopped at an error.
    pub(super) fn member_done(
        &mut self,
        name: String,
        failed: Option<(&Action, KernelError)>,
        now: Instant,
    ) {
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
                self.save_member_records(now);
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

    /// `dagw drain` / `dagw resume`: hold every member (reason `drain`) so
    /// servers move to the peer, or release them at once; kept in
    /// `state_dir` across restarts of dagw; the peer is told in the next
    /// heartbeat, sent at once.
    pub(super) fn drain(&mut self, on: bool, now: Instant) {
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
                    self.out.push(Effect::Notice(hold_start_notice(m, now)));
                }
            }
        }
        self.reconcile_members(now);
        self.out.push(Effect::HeartbeatNow);
    }

    /// Oper-up uplinks of `[uplinks]` in the kernel now.
    pub(super) fn uplinks_up(&self) -> u32 {
        self.cfg.uplinks.as_ref().map_or(0, |u| {
            u.interfaces
                .iter()
                .filter(|n| self.view.link_by_name(n).is_some_and(|l| l.oper_up))
                .count() as u32
        })
    }

    /// (Re)build the tracker for the configured `[uplinks]`, keeping the
    /// state a reload finds (a recovery in progress is not cut short).
    pub(super) fn setup_uplinks(&mut self, now: Instant) {
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
    pub(super) fn on_uplinks(&mut self, now: Instant, recount: bool) {
        let up = self.uplinks_up();
        let Some(t) = self.uplinks.as_mut() else {
            return;
        };
        let changed = if recount { t.update(up, now) } else { None }.or_else(|| t.tick(now));
        if changed.is_some() {
            self.apply_uplinks(now, changed);
        }
    }

    pub(super) fn apply_uplinks(&mut self, now: Instant, changed: Option<UplinkState>) {
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
                    self.out.push(Effect::Notice(hold_start_notice(m, now)));
                }
            }
            self.reconcile_members(now);
        }
    }
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
