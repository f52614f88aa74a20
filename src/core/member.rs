//! M-LAG member interfaces and their up-delay (seed step 5, note 2): after a
//! restart (the first start after boot) every member is held down for
//! `member_up_delay`, so servers do not send traffic to a switch whose upper
//! layers are not ready.
//!
//! A member is held with protodown where its driver supports it, else admin
//! down. dagw records which, and whether it was dagw that took the member down,
//! so a release restores exactly what dagw changed and nothing else.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::action::Action;
use super::kernel::{DAGW_PROTODOWN_REASON, KernelView};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldMethod {
    Protodown,
    AdminDown,
}

impl HoldMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldMethod::Protodown => "protodown",
            HoldMethod::AdminDown => "admin-down",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberHoldReason {
    MemberUpDelay,
    PeerLinkRecovery,
    /// The member interface came back (a new ifindex) while dagw ran: the
    /// seed's board reset.
    MemberReturned,
}

impl MemberHoldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberHoldReason::MemberUpDelay => "member-up-delay",
            MemberHoldReason::PeerLinkRecovery => "peer-link-recovery",
            MemberHoldReason::MemberReturned => "member-returned",
        }
    }
}

/// What dagw must remember about a member across its own restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub method: HoldMethod,
    /// dagw set admin-down itself (the member was admin-up before).
    pub downed_by_dagw: bool,
}

#[derive(Debug, Clone)]
pub struct MemberMachine {
    pub name: String,
    pub hold: Option<(Instant, MemberHoldReason)>,
    /// Split-brain (peer-link down, peer alive): the backup keeps its members
    /// down for as long as it lasts, so servers use the master only.
    pub split_brain: bool,
    /// Uplink tracking: this switch lost its uplinks (`core::uplinks`); the
    /// members stay down while it lasts.
    pub uplinks_down: bool,
    /// `dagw drain`: held for maintenance until `dagw resume`.
    pub drained: bool,
    /// When the current hold began (dynamic mode releases early from it).
    pub hold_since: Option<Instant>,
    /// Dynamic mode: past `member_min_delay`, still waiting for gateways.
    pub waiting_gateways: bool,
    pub record: MemberRecord,
    /// The member interface's ifindex as last seen (kept while it is gone,
    /// so that its return under a new index is recognised).
    pub ifindex: Option<u32>,
}

/// Seed: members are held "after an M-LAG member device restarts". A restart
/// of the device is a new boot of its kernel: the first start after boot is
/// the one whose recorded boot id (`state_dir`) differs from the kernel's
/// (`/proc/sys/kernel/random/boot_id`), so any `state_dir` works, on tmpfs or
/// on disk. Without a readable boot id, the record's absence decides. A
/// record from before boot ids were recorded (a number) counts as this
/// boot's: an upgrade of dagw is a restart, not a reboot.
pub fn first_start_after_boot(recorded: Option<&str>, current_boot_id: Option<&str>) -> bool {
    let recorded = recorded.map(str::trim);
    match (recorded, current_boot_id.map(str::trim)) {
        (None, _) => true,
        (Some(r), _) if !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) => false,
        (Some(r), Some(id)) => r != id,
        (Some(_), None) => false,
    }
}

impl MemberMachine {
    pub fn new(name: &str) -> Self {
        MemberMachine {
            name: name.to_string(),
            hold: None,
            split_brain: false,
            uplinks_down: false,
            drained: false,
            hold_since: None,
            waiting_gateways: false,
            record: MemberRecord {
                method: HoldMethod::Protodown,
                downed_by_dagw: false,
            },
            ifindex: None,
        }
    }

    /// The member interface seen with `ifindex` while dagw runs. Seed: after
    /// a board reset a member reports up only after `member_up_delay`: an
    /// interface that appears under a new index (it was deleted and created
    /// again, or appears for the first time) is held, reason
    /// `member-returned`. Returns true when a hold began.
    pub fn link_seen(&mut self, ifindex: u32, member_up_delay: Duration, now: Instant) -> bool {
        if self.ifindex == Some(ifindex) {
            return false;
        }
        self.ifindex = Some(ifindex);
        if member_up_delay.is_zero() {
            return false;
        }
        // a longer hold already running (e.g. the first start's) stays
        let until = now + member_up_delay;
        if self.hold.is_some_and(|(d, _)| d >= until) {
            return false;
        }
        self.hold_for(member_up_delay, MemberHoldReason::MemberReturned, now);
        true
    }

    pub fn hold_for(&mut self, delay: Duration, reason: MemberHoldReason, now: Instant) {
        if !delay.is_zero() {
            self.hold = Some((now + delay, reason));
            self.hold_since = Some(now);
        }
    }

    /// Returns true when a hold ended now.
    pub fn tick(&mut self, now: Instant) -> bool {
        match self.hold {
            Some((until, _)) if now >= until => {
                self.hold = None;
                self.waiting_gateways = false;
                true
            }
            _ => false,
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.hold.map(|(d, _)| d)
    }

    /// Dynamic up-delay (issue 5): members are held until every gateway is up
    /// and at least `min` has passed; `member_up_delay` stays the cap (the
    /// seed's "longer than the L3 up-delay" holds because gateways come first).
    /// Returns true when the hold ended now.
    pub fn release_early(&mut self, now: Instant, min: Duration, gateways_up: bool) -> bool {
        let (Some(_), Some(since)) = (self.hold, self.hold_since) else {
            return false;
        };
        if now < since + min {
            return false;
        }
        self.waiting_gateways = !gateways_up;
        if gateways_up {
            self.hold = None;
            self.waiting_gateways = false;
            return true;
        }
        false
    }

    /// When `release_early` may first act.
    pub fn min_deadline(&self, min: Duration) -> Option<Instant> {
        match (self.hold, self.hold_since) {
            (Some(_), Some(since)) if !self.waiting_gateways => Some(since + min),
            _ => None,
        }
    }

    pub fn held(&self) -> bool {
        self.hold.is_some() || self.split_brain || self.uplinks_down || self.drained
    }

    pub fn reason(&self) -> Option<&'static str> {
        if self.drained {
            Some("drain")
        } else if self.split_brain {
            Some("split-brain")
        } else if self.uplinks_down {
            Some("uplinks-down")
        } else if self.hold.is_some() && self.waiting_gateways {
            Some("waiting-gateways")
        } else {
            self.hold.map(|(_, r)| r.as_str())
        }
    }

    /// down | holding | up, as status shows it.
    pub fn state(&self, view: &KernelView) -> &'static str {
        if self.held() {
            return "holding";
        }
        match view.link_by_name(&self.name) {
            Some(l) if l.admin_up && l.oper_up && !l.protodown => "up",
            _ => "down",
        }
    }

    /// The driver refused protodown: hold by admin state from now on.
    pub fn fall_back_to_admin_down(&mut self) {
        self.record.method = HoldMethod::AdminDown;
    }

    /// Make the kernel match the hold. Updates the record for what it plans.
    pub fn plan(&mut self, view: &KernelView) -> Vec<Action> {
        let Some(link) = view.link_by_name(&self.name) else {
            return Vec::new();
        };
        let index = link.index;
        let ours = link.protodown_reason & DAGW_PROTODOWN_REASON != 0;
        let others = link.protodown_reason & !DAGW_PROTODOWN_REASON != 0;
        let mut out = Vec::new();
        match (self.held(), self.record.method) {
            (true, HoldMethod::Protodown) => {
                if !ours || !link.protodown {
                    out.push(Action::Protodown {
                        index,
                        ours: true,
                        protodown: true,
                    });
                }
            }
            (true, HoldMethod::AdminDown) => {
                if link.admin_up {
                    self.record.downed_by_dagw = true;
                    out.push(Action::AdminUp { index, up: false });
                }
            }
            (false, _) => {
                if ours {
                    out.push(Action::Protodown {
                        index,
                        ours: false,
                        protodown: others,
                    });
                }
                if self.record.downed_by_dagw {
                    self.record.downed_by_dagw = false;
                    if !link.admin_up {
                        out.push(Action::AdminUp { index, up: true });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod boot_tests {
    use super::*;

    #[test]
    fn reboot_is_told_by_the_boot_id() {
        let a = "0f2e6a1c-0000-4000-8000-000000000001";
        let b = "0f2e6a1c-0000-4000-8000-000000000002";
        assert!(first_start_after_boot(None, Some(a)), "no record");
        assert!(!first_start_after_boot(Some(a), Some(a)), "restart");
        assert!(first_start_after_boot(Some(a), Some(b)), "reboot");
        assert!(
            !first_start_after_boot(Some("1764651000123\n"), Some(b)),
            "legacy marker"
        );
        assert!(
            !first_start_after_boot(Some(a), None),
            "no boot id: the record decides"
        );
        assert!(first_start_after_boot(None, None));
    }

    #[test]
    fn a_member_that_returns_is_held() {
        let now = Instant::now();
        let d = Duration::from_secs(240);
        let mut m = MemberMachine::new("bond1");
        m.ifindex = Some(7);
        assert!(!m.link_seen(7, d, now), "same interface: no hold");
        assert!(m.link_seen(9, d, now), "a new ifindex: board reset");
        assert_eq!(
            m.hold.map(|(_, r)| r),
            Some(MemberHoldReason::MemberReturned)
        );
        assert!(!m.link_seen(9, d, now + Duration::from_secs(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::kernel::{KernelEvent, Link, LinkKind};

    fn view_with(admin_up: bool) -> KernelView {
        let mut v = KernelView::default();
        v.apply(KernelEvent::Link(Link {
            index: 7,
            name: "bond1".into(),
            kind: LinkKind::Other,
            admin_up,
            oper_up: admin_up,
            ..Default::default()
        }));
        v
    }

    #[test]
    fn admin_down_hold_restores_only_what_dagw_changed() {
        let t0 = Instant::now();
        let mut m = MemberMachine::new("bond1");
        m.fall_back_to_admin_down();
        m.hold_for(
            Duration::from_secs(240),
            MemberHoldReason::MemberUpDelay,
            t0,
        );
        let mut v = view_with(true);
        assert_eq!(
            m.plan(&v),
            vec![Action::AdminUp {
                index: 7,
                up: false
            }]
        );
        Action::AdminUp {
            index: 7,
            up: false,
        }
        .assume_done(&mut v);
        assert!(!m.tick(t0 + Duration::from_secs(239)));
        assert!(m.tick(t0 + Duration::from_secs(240)));
        assert_eq!(m.plan(&v), vec![Action::AdminUp { index: 7, up: true }]);
    }

    #[test]
    fn dynamic_release_waits_for_min_and_the_gateways() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut m = MemberMachine::new("bond1");
        m.hold_for(s(240), MemberHoldReason::MemberUpDelay, t0);
        assert!(
            !m.release_early(t0 + s(29), s(30), true),
            "never before min"
        );
        assert!(!m.release_early(t0 + s(30), s(30), false));
        assert_eq!(m.reason(), Some("waiting-gateways"));
        assert!(m.release_early(t0 + s(31), s(30), true));
        assert!(!m.held());
    }

    #[test]
    fn a_member_the_operator_left_down_stays_down() {
        let t0 = Instant::now();
        let mut m = MemberMachine::new("bond1");
        m.fall_back_to_admin_down();
        m.hold_for(Duration::from_secs(30), MemberHoldReason::MemberUpDelay, t0);
        let v = view_with(false);
        assert!(m.plan(&v).is_empty());
        assert!(m.tick(t0 + Duration::from_secs(30)));
        assert!(m.plan(&v).is_empty());
    }
}
