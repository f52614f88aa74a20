//! One gateway: its L3 state machine (seed step 5, `protocol up-delay-time`) and
//! the plan that makes the kernel match its configuration.
//!
//! State: `down` while its SVI is missing or not oper-up; `holding` for
//! `up_delay` after the SVI comes up (protodown on the gateway device, so it
//! neither answers ARP/ND nor routes); then `up`. A deleted gateway device is
//! recreated in the state it had: the seed's holds are for restart and
//! peer-link recovery, not for repairs.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::action::Action;
use super::kernel::{Addr, DAGW_PROTODOWN_REASON, Fdb, KernelView, Link, LinkKind};
use super::mac::Mac;
use crate::config::{Gateway, GatewayKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    NoInterface,
    SviDown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldReason {
    /// Static `up_delay` after the SVI came up (also the dynamic mode's
    /// fallback while the peer is not reachable).
    UpDelay,
    /// The peer-link recovered: the backup re-applies its up-delay (seed step 5).
    PeerLinkRecovery,
    /// Dynamic: the hold never ends before `[up_delay] min`.
    MinDelay,
    /// Dynamic: waiting for the ARP/ND table to catch up with the peer's.
    ArpSync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GwState {
    Down(DownReason),
    /// `until`: the latest the hold can last (static delay, or dynamic `max`).
    Holding {
        until: Instant,
        reason: HoldReason,
    },
    Up,
}

impl GwState {
    pub fn name(&self) -> &'static str {
        match self {
            GwState::Down(_) => "down",
            GwState::Holding { .. } => "holding",
            GwState::Up => "up",
        }
    }
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            GwState::Down(DownReason::NoInterface) => Some("no-interface"),
            GwState::Down(DownReason::SviDown) => Some("svi-down"),
            GwState::Holding { reason, .. } => Some(match reason {
                HoldReason::UpDelay => "up-delay",
                HoldReason::PeerLinkRecovery => "peer-link-recovery",
                HoldReason::MinDelay => "min-delay",
                HoldReason::ArpSync => "arp-sync",
            }),
            GwState::Up => None,
        }
    }
}

/// How a hold ends: after the static `up_delay`, or (dynamic) when the
/// neighbour table has caught up with the peer's, within `min` and `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayPolicy {
    Static,
    Dynamic { min: Duration, max: Duration },
}

/// What the dynamic up-delay knows of the sync, fed by the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncProgress {
    /// The peer's heartbeat is heard.
    pub peer_up: bool,
    /// The peer's bulk sync of this session has been received whole.
    pub bulk_complete: bool,
    /// Usable (ARP, ND) entries on our gateway device.
    pub local: (u32, u32),
    /// The same counts as the peer advertises them.
    pub peer: Option<(u32, u32)>,
}

impl SyncProgress {
    /// Our table has caught up: within 1% of the peer's counts (rounded down,
    /// so exact below 100 entries), for ARP and for ND, after the bulk sync.
    pub fn caught_up(&self) -> bool {
        let Some((parp, pnd)) = self.peer else {
            return false;
        };
        let close =
            |local: u32, peer: u32| u64::from(local) + u64::from(peer / 100) >= u64::from(peer);
        self.bulk_complete && close(self.local.0, parp) && close(self.local.1, pnd)
    }
}

/// What the SVI looks like right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Svi {
    Missing,
    Down,
    Up,
}

impl Svi {
    pub fn of(view: &KernelView, name: &str) -> Svi {
        match view.link_by_name(name) {
            None => Svi::Missing,
            Some(l) if l.admin_up && l.oper_up => Svi::Up,
            Some(_) => Svi::Down,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GatewayMachine {
    pub state: GwState,
    pub up_delay: Duration,
    pub policy: DelayPolicy,
    /// Strict consistency: the backup keeps a gateway whose configuration
    /// differs from the peer's down (the vendor's error-down) until fixed.
    pub mismatch_hold: bool,
    /// When the current hold began, and why (static reason shown while the
    /// static delay applies).
    hold_start: Option<(Instant, HoldReason)>,
    pub progress: SyncProgress,
    /// The last hold ended at dynamic `max` with the sync incomplete (alert).
    pub released_at_max: bool,
}

impl GatewayMachine {
    pub fn new(up_delay: Duration) -> Self {
        Self::with_policy(up_delay, DelayPolicy::Static)
    }

    pub fn with_policy(up_delay: Duration, policy: DelayPolicy) -> Self {
        GatewayMachine {
            state: GwState::Down(DownReason::NoInterface),
            up_delay,
            policy,
            mismatch_hold: false,
            hold_start: None,
            progress: SyncProgress::default(),
            released_at_max: false,
        }
    }

    /// A restart found this gateway's device already serving (not held by dagw,
    /// SVI up): take it as `up` with no hold and no netlink change.
    pub fn adopt_up(&mut self) {
        self.state = GwState::Up;
    }

    /// Feed the SVI's state; returns the new state when it changed.
    pub fn observe(&mut self, svi: Svi, now: Instant) -> Option<GwState> {
        let next = match (svi, self.state) {
            (Svi::Missing, GwState::Down(DownReason::NoInterface)) => return None,
            (Svi::Missing, _) => GwState::Down(DownReason::NoInterface),
            (Svi::Down, GwState::Down(DownReason::SviDown)) => return None,
            (Svi::Down, _) => GwState::Down(DownReason::SviDown),
            (Svi::Up, GwState::Down(_)) => return self.start_hold(HoldReason::UpDelay, now),
            (Svi::Up, _) => return self.tick(now),
        };
        self.hold_start = None;
        self.state = next;
        Some(next)
    }

    fn start_hold(&mut self, reason: HoldReason, now: Instant) -> Option<GwState> {
        let before = self.state;
        self.hold_start = Some((now, reason));
        self.state = GwState::Holding { until: now, reason };
        self.evaluate(now);
        (self.state != before).then_some(self.state)
    }

    /// Seed: "When an M-LAG member device or the peer-link recovers from a
    /// fault, a large number of ARP entries need to be synchronized in a
    /// batch": hold a serving gateway again.
    pub fn rehold(&mut self, reason: HoldReason, now: Instant) -> Option<GwState> {
        if matches!(self.state, GwState::Down(_)) {
            return None;
        }
        if self.policy == DelayPolicy::Static && self.up_delay.is_zero() {
            return None;
        }
        self.start_hold(reason, now)
    }

    /// (state, reason) as status shows them, a strict-mode hold included.
    pub fn shown(&self) -> (&'static str, Option<&'static str>) {
        if self.mismatch_hold && self.state == GwState::Up {
            ("holding", Some("mismatch"))
        } else {
            (self.state.name(), self.state.reason())
        }
    }

    /// New sync progress (heartbeat counts, neighbour changes, bulk end).
    pub fn set_progress(&mut self, p: SyncProgress, now: Instant) -> Option<GwState> {
        self.progress = p;
        self.tick(now)
    }

    /// Time passes or progress changed: re-decide a hold.
    pub fn tick(&mut self, now: Instant) -> Option<GwState> {
        let before = self.state;
        self.evaluate(now);
        (self.state != before).then_some(self.state)
    }

    /// The hold rule, in one place. Static: `up_delay` after the hold began.
    /// Dynamic (with the peer heard): never before `min`; then as soon as the
    /// bulk sync is in and the counts have caught up; at the latest at `max`.
    /// Dynamic without the peer: the static `up_delay`.
    fn evaluate(&mut self, now: Instant) {
        let (GwState::Holding { .. }, Some((since, started_as))) = (self.state, self.hold_start)
        else {
            return;
        };
        let static_end = since + self.up_delay;
        let next = match self.policy {
            DelayPolicy::Dynamic { min, max } if self.progress.peer_up => {
                if now >= since + max {
                    self.released_at_max = !self.progress.caught_up();
                    GwState::Up
                } else if now < since + min {
                    GwState::Holding {
                        until: since + max,
                        reason: HoldReason::MinDelay,
                    }
                } else if self.progress.caught_up() {
                    self.released_at_max = false;
                    GwState::Up
                } else {
                    GwState::Holding {
                        until: since + max,
                        reason: HoldReason::ArpSync,
                    }
                }
            }
            _ if now >= static_end => {
                self.released_at_max = false;
                GwState::Up
            }
            _ => GwState::Holding {
                until: static_end,
                reason: started_as,
            },
        };
        if next == GwState::Up {
            self.hold_start = None;
        }
        self.state = next;
    }

    /// The next time the hold may change by time alone.
    pub fn deadline(&self) -> Option<Instant> {
        let (GwState::Holding { until, .. }, Some((since, _))) = (self.state, self.hold_start)
        else {
            return None;
        };
        let GwState::Holding { reason, .. } = self.state else {
            return None;
        };
        match (self.policy, reason) {
            (DelayPolicy::Dynamic { min, .. }, HoldReason::MinDelay) => {
                Some((since + min).min(until))
            }
            // ARP sync ends on progress, or at `max`; static holds at their end
            _ => Some(until),
        }
    }

    pub fn hold_remaining(&self, now: Instant) -> Option<Duration> {
        match self.state {
            GwState::Holding { until, .. } => Some(until.saturating_duration_since(now)),
            _ => None,
        }
    }

    /// Only an `up` gateway may answer ARP/ND and route.
    pub fn wants_protodown(&self) -> bool {
        self.state != GwState::Up || self.mismatch_hold
    }
}

/// The addresses a gateway device must carry, link-local included.
pub fn desired_addrs(gw: &Gateway) -> Vec<(Addr, bool)> {
    let v4 = gw.ipv4.iter().map(|p| {
        (
            Addr {
                ip: p.addr.into(),
                len: p.len,
            },
            false,
        )
    });
    let v6 = gw.ipv6.iter().copied().chain(gw.link_local()).map(|p| {
        (
            Addr {
                ip: p.addr.into(),
                len: p.len,
            },
            true,
        )
    });
    v4.chain(v6).collect()
}

/// The actions that make the kernel match `gw` with the given protodown wish.
/// Empty when the kernel already matches: a restart adopts without any change.
pub fn plan(gw: &Gateway, protodown: bool, view: &KernelView) -> Vec<Action> {
    let mut out = Vec::new();
    let Some(svi) = view.link_by_name(&gw.interface) else {
        return out; // the kernel removes a macvlan with its lower device
    };
    let owned = view.owned_device(&gw.name, &gw.device);
    if let Some(d) = owned.filter(|d| d.lower != Some(svi.index)) {
        // on another SVI (the gateway's `interface` changed): a macvlan
        // cannot move, it is made anew on the right one
        out.push(Action::DeleteLink { index: d.index });
        return out;
    }
    let Some(dev) = owned else {
        out.push(Action::CreateDevice {
            gateway: gw.name.to_string(),
            name: gw.device.to_string(),
            parent: svi.index,
            mac: gw.mac,
            held: protodown,
        });
        return out; // the rest is planned once the device exists
    };
    plan_device(gw, protodown, dev, view, &mut out);
    plan_fdb(gw, svi, view, &mut out);
    out
}

fn plan_device(
    gw: &Gateway,
    protodown: bool,
    dev: &Link,
    view: &KernelView,
    out: &mut Vec<Action>,
) {
    let index = dev.index;
    if dev.name != gw.device {
        out.push(Action::Rename {
            index,
            name: gw.device.to_string(),
        });
    }
    if dev.mac != gw.mac {
        out.push(Action::SetMac { index, mac: gw.mac });
    }
    // addr_gen_mode none before the device is up, or the kernel adds its own
    // link-local with DAD, which the peer's identical address would fail.
    if dev.addr_gen_mode != Some(1) {
        out.push(Action::SetAddrGenModeNone { index });
    }
    let ours = dev.protodown_reason & DAGW_PROTODOWN_REASON != 0;
    let others = dev.protodown_reason & !DAGW_PROTODOWN_REASON != 0;
    if protodown && (!ours || !dev.protodown) {
        out.push(Action::Protodown {
            index,
            ours: true,
            protodown: true,
        });
    } else if !protodown && (ours || (dev.protodown && !others)) {
        out.push(Action::Protodown {
            index,
            ours: false,
            protodown: others,
        });
    }
    if !dev.admin_up {
        out.push(Action::AdminUp { index, up: true });
    }
    let want = desired_addrs(gw);
    let want_set: HashSet<Addr> = want.iter().map(|(a, _)| *a).collect();
    for (addr, info) in view.addrs_of(index) {
        if !want_set.contains(addr) {
            out.push(Action::DelAddr { index, addr: *addr });
        } else if addr.ip.is_ipv6() && !info.nodad {
            // present but without NODAD: re-add so both peers never run DAD on it
            out.push(Action::DelAddr { index, addr: *addr });
            out.push(Action::AddAddr {
                index,
                addr: *addr,
                nodad: true,
            });
        }
    }
    let have: HashSet<Addr> = view.addrs_of(index).map(|(a, _)| *a).collect();
    for (addr, nodad) in want {
        if !have.contains(&addr) {
            out.push(Action::AddAddr { index, addr, nodad });
        }
    }
}

fn plan_fdb(gw: &Gateway, svi: &Link, view: &KernelView, out: &mut Vec<Action>) {
    if svi.kind == LinkKind::Bridge {
        let entry = Fdb {
            ifindex: svi.index,
            mac: gw.mac,
            dst: None,
        };
        if !view.fdb.contains(&entry) {
            out.push(Action::AddFdbLocal {
                bridge: svi.index,
                mac: gw.mac,
            });
        }
    }
    if let (GatewayKind::Vbdif(_), Some(vx)) = (gw.kind, &gw.vxlan)
        && let Some(vxdev) = view.link_by_name(&vx.device)
    {
        let flood = Fdb {
            ifindex: vxdev.index,
            mac: Mac::default(),
            dst: Some(vx.bypass_vtep),
        };
        if !view.fdb.contains(&flood) {
            out.push(Action::AppendFlood {
                vxlan: vxdev.index,
                dst: vx.bypass_vtep,
            });
        }
    }
}

/// A reload changed a kept gateway: what its old settings left in the kernel
/// that the new ones do not want — the vMAC FDB entry of an old MAC or on an
/// old SVI (unless another gateway still needs it), the flood entry towards
/// an old `bypass_vtep` or on an old vxlan device. (A device on an old SVI is
/// replaced by `plan`.)
pub fn plan_changed(
    old: &Gateway,
    new: &Gateway,
    gateways: &[&Gateway],
    view: &KernelView,
) -> Vec<Action> {
    let mut out = Vec::new();
    if (old.interface != new.interface || old.mac != new.mac)
        && let Some(svi) = view.link_by_name(&old.interface)
    {
        let still_needed = gateways
            .iter()
            .any(|g| g.interface == old.interface && g.mac == old.mac);
        let entry = Fdb {
            ifindex: svi.index,
            mac: old.mac,
            dst: None,
        };
        if !still_needed && view.fdb.contains(&entry) {
            out.push(Action::DelFdbLocal {
                bridge: svi.index,
                mac: old.mac,
            });
        }
    }
    if let Some(ov) = old.vxlan.as_deref()
        && new.vxlan.as_deref() != Some(ov)
        && let Some(vx) = view.link_by_name(&ov.device)
    {
        let still_needed = gateways.iter().any(|g| g.vxlan.as_deref() == Some(ov));
        let entry = Fdb {
            ifindex: vx.index,
            mac: Mac::default(),
            dst: Some(ov.bypass_vtep),
        };
        if !still_needed && view.fdb.contains(&entry) {
            out.push(Action::DelFlood {
                vxlan: vx.index,
                dst: ov.bypass_vtep,
            });
        }
    }
    out
}

/// Devices marked as dagw's whose gateway is no longer configured, and the
/// vMAC FDB entries only they needed.
pub fn plan_stale(gateways: &[&Gateway], view: &KernelView) -> Vec<Action> {
    let names: HashSet<&str> = gateways.iter().map(|g| g.name.as_str()).collect();
    let mut out = Vec::new();
    for l in view.links.values() {
        if let Some(owner) = l.owner()
            && !names.contains(owner)
        {
            out.push(Action::DeleteLink { index: l.index });
            if let Some(svi) = l.lower.and_then(|i| view.link(i)) {
                let still_needed = gateways
                    .iter()
                    .any(|g| svi.name == g.interface && g.mac == l.mac);
                if !still_needed
                    && view.fdb.contains(&Fdb {
                        ifindex: svi.index,
                        mac: l.mac,
                        dst: None,
                    })
                {
                    out.push(Action::DelFdbLocal {
                        bridge: svi.index,
                        mac: l.mac,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Ipv4Prefix, Ipv6Prefix};
    use crate::core::kernel::{AddrInfo, KernelEvent};

    fn gw() -> Gateway {
        Gateway {
            name: "vlanif10".into(),
            kind: GatewayKind::Vlanif(10),
            interface: "br10".into(),
            mac: "0000-5e00-0101".parse().unwrap(),
            ipv4: vec![Ipv4Prefix {
                addr: "192.0.2.1".parse().unwrap(),
                len: 24,
            }]
            .into(),
            ipv6: vec![Ipv6Prefix {
                addr: "2001:db8:10::1".parse().unwrap(),
                len: 64,
            }]
            .into(),
            ipv6_enabled: true,
            up_delay: Duration::from_secs(1),
            device: "gw10".into(),
            vxlan: None,
        }
    }

    fn bridge(view: &mut KernelView, up: bool) {
        view.apply(KernelEvent::Link(Link {
            index: 2,
            name: "br10".into(),
            kind: LinkKind::Bridge,
            admin_up: true,
            oper_up: up,
            ..Default::default()
        }));
    }

    /// A kernel in which the gateway is exactly as configured, serving.
    fn converged_view() -> KernelView {
        let g = gw();
        let mut v = KernelView::default();
        bridge(&mut v, true);
        v.apply(KernelEvent::Link(Link {
            index: 3,
            name: "gw10".into(),
            kind: LinkKind::Macvlan,
            mac: g.mac,
            admin_up: true,
            oper_up: true,
            lower: Some(2),
            owner_gateway: Some("vlanif10".into()),
            addr_gen_mode: Some(1),
            ..Default::default()
        }));
        for (a, nodad) in desired_addrs(&g) {
            v.apply(KernelEvent::AddrAdded(3, a, AddrInfo { nodad }));
        }
        v.apply(KernelEvent::FdbAdded(Fdb {
            ifindex: 2,
            mac: g.mac,
            dst: None,
        }));
        v
    }

    #[test]
    fn holds_for_exactly_up_delay_after_the_svi_comes_up() {
        let t0 = Instant::now();
        let mut m = GatewayMachine::new(Duration::from_secs(1));
        assert_eq!(m.observe(Svi::Missing, t0), None);
        assert_eq!(
            m.observe(Svi::Down, t0),
            Some(GwState::Down(DownReason::SviDown))
        );
        let held = m.observe(Svi::Up, t0).unwrap();
        assert_eq!(
            held,
            GwState::Holding {
                until: t0 + Duration::from_secs(1),
                reason: HoldReason::UpDelay
            }
        );
        assert!(m.wants_protodown());
        assert_eq!(m.tick(t0 + Duration::from_millis(999)), None);
        assert_eq!(
            m.hold_remaining(t0 + Duration::from_millis(400)),
            Some(Duration::from_millis(600))
        );
        assert_eq!(m.tick(t0 + Duration::from_secs(1)), Some(GwState::Up));
        assert!(!m.wants_protodown());
    }

    #[test]
    fn dynamic_hold_waits_for_min_then_for_the_sync_then_releases() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut m = GatewayMachine::with_policy(
            s(1),
            DelayPolicy::Dynamic {
                min: s(2),
                max: s(60),
            },
        );
        let peer = |local: (u32, u32), bulk| SyncProgress {
            peer_up: true,
            bulk_complete: bulk,
            local,
            peer: Some((1000, 300)),
        };
        m.set_progress(peer((0, 0), false), t0);
        assert_eq!(
            m.observe(Svi::Up, t0),
            Some(GwState::Holding {
                until: t0 + s(60),
                reason: HoldReason::MinDelay
            })
        );
        assert_eq!(m.deadline(), Some(t0 + s(2)));
        assert_eq!(
            m.tick(t0 + s(2)),
            Some(GwState::Holding {
                until: t0 + s(60),
                reason: HoldReason::ArpSync
            })
        );
        assert_eq!(
            m.set_progress(peer((1000, 300), false), t0 + s(3)),
            None,
            "counts alone are not enough: the bulk must be in"
        );
        assert_eq!(
            m.set_progress(peer((990, 297), true), t0 + s(4)),
            Some(GwState::Up),
            "within 1%"
        );
        assert!(!m.released_at_max);
    }

    #[test]
    fn dynamic_hold_ends_at_max_with_the_sync_incomplete() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut m = GatewayMachine::with_policy(
            s(1),
            DelayPolicy::Dynamic {
                min: s(2),
                max: s(10),
            },
        );
        m.set_progress(
            SyncProgress {
                peer_up: true,
                bulk_complete: true,
                local: (5, 0),
                peer: Some((500, 0)),
            },
            t0,
        );
        m.observe(Svi::Up, t0);
        assert_eq!(
            m.tick(t0 + s(9)),
            Some(GwState::Holding {
                until: t0 + s(10),
                reason: HoldReason::ArpSync
            })
        );
        assert_eq!(m.tick(t0 + s(10)), Some(GwState::Up));
        assert!(m.released_at_max);
    }

    #[test]
    fn dynamic_without_the_peer_falls_back_to_the_static_delay() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut m = GatewayMachine::with_policy(
            s(3),
            DelayPolicy::Dynamic {
                min: s(1),
                max: s(60),
            },
        );
        assert_eq!(
            m.observe(Svi::Up, t0),
            Some(GwState::Holding {
                until: t0 + s(3),
                reason: HoldReason::UpDelay
            })
        );
        assert_eq!(m.tick(t0 + s(3)), Some(GwState::Up));
    }

    #[test]
    fn vbdif_default_zero_delay_is_up_at_once_and_svi_loss_downs_it() {
        let t0 = Instant::now();
        let mut m = GatewayMachine::new(Duration::ZERO);
        assert_eq!(m.observe(Svi::Up, t0), Some(GwState::Up));
        assert_eq!(
            m.observe(Svi::Down, t0),
            Some(GwState::Down(DownReason::SviDown))
        );
        assert_eq!(
            m.observe(Svi::Missing, t0),
            Some(GwState::Down(DownReason::NoInterface))
        );
    }

    #[test]
    fn a_converged_kernel_needs_no_change() {
        assert_eq!(plan(&gw(), false, &converged_view()), vec![]);
    }

    #[test]
    fn a_missing_svi_plans_nothing_and_a_missing_device_is_created() {
        assert!(plan(&gw(), true, &KernelView::default()).is_empty());
        let mut v = KernelView::default();
        bridge(&mut v, true);
        assert!(matches!(
            plan(&gw(), true, &v)[..],
            [Action::CreateDevice { parent: 2, .. }]
        ));
    }

    #[test]
    fn drift_is_planned_back() {
        let mut v = converged_view();
        v.apply(KernelEvent::AddrRemoved(
            3,
            Addr {
                ip: "192.0.2.1".parse().unwrap(),
                len: 24,
            },
        ));
        v.apply(KernelEvent::AddrAdded(
            3,
            Addr {
                ip: "192.0.2.77".parse().unwrap(),
                len: 24,
            },
            AddrInfo { nodad: false },
        ));
        let p = plan(&gw(), false, &v);
        assert!(p.contains(&Action::AddAddr {
            index: 3,
            addr: Addr {
                ip: "192.0.2.1".parse().unwrap(),
                len: 24
            },
            nodad: false
        }));
        assert!(p.contains(&Action::DelAddr {
            index: 3,
            addr: Addr {
                ip: "192.0.2.77".parse().unwrap(),
                len: 24
            }
        }));
    }

    #[test]
    fn another_tools_protodown_reason_is_left_in_place() {
        let mut v = converged_view();
        let mut l = v.link(3).unwrap().clone();
        l.protodown = true;
        l.protodown_reason = 1 | DAGW_PROTODOWN_REASON;
        v.apply(KernelEvent::Link(l));
        assert_eq!(
            plan(&gw(), false, &v),
            vec![Action::Protodown {
                index: 3,
                ours: false,
                protodown: true
            }]
        );
    }

    #[test]
    fn a_renamed_device_is_found_by_its_alias_and_renamed_back() {
        let mut v = converged_view();
        let mut l = v.link(3).unwrap().clone();
        l.name = "foo".into();
        v.apply(KernelEvent::Link(l));
        assert_eq!(
            plan(&gw(), false, &v),
            vec![Action::Rename {
                index: 3,
                name: "gw10".into()
            }]
        );
    }

    #[test]
    fn removed_gateways_leave_only_their_device_and_vmac_entry() {
        let v = converged_view();
        let stale = plan_stale(&[], &v);
        assert_eq!(
            stale,
            vec![
                Action::DeleteLink { index: 3 },
                Action::DelFdbLocal {
                    bridge: 2,
                    mac: gw().mac
                }
            ]
        );
        assert!(plan_stale(&[&gw()], &v).is_empty());
    }
}
