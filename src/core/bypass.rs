//! The static bypass VXLAN tunnel of a VBDIF gateway. Seed: "For VBDIF
//! interfaces, a static bypass VXLAN tunnel must be configured between the
//! M-LAG peers": when a server's link to this switch fails, traffic for it
//! crosses to the peer through that tunnel. dagw keeps the flood entry
//! towards the peer's VTEP (`gateway::plan`); this is the health of the rest,
//! which it does not create: the BD's vxlan device must exist, be a vxlan
//! device and be a port of the BD's bridge.
//!
//! A broken tunnel does not stop the gateway from routing (local routing
//! works); what breaks is the path across the peer-link, so it is reported
//! and alerted, and the gateway keeps serving.

use super::kernel::{Fdb, KernelView, LinkKind};
use super::mac::Mac;
use crate::config::Vxlan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BypassState {
    Ok,
    /// No device of that name.
    Missing,
    /// A device of that name, but not a vxlan device.
    NotVxlan,
    /// Not a port of the BD's bridge (the gateway's SVI, or the bridge the
    /// SVI sits on).
    NotInBd,
    /// No all-zeros flood entry towards `bypass_vtep` on it.
    NoFloodEntry,
}

impl BypassState {
    pub fn as_str(self) -> &'static str {
        match self {
            BypassState::Ok => "ok",
            BypassState::Missing => "missing",
            BypassState::NotVxlan => "not-vxlan",
            BypassState::NotInBd => "not-in-bd",
            BypassState::NoFloodEntry => "no-flood-entry",
        }
    }
}

/// The tunnel's state for a VBDIF gateway on SVI `svi`, from the kernel view.
pub fn bypass_state(vx: &Vxlan, svi: &str, view: &KernelView) -> BypassState {
    let Some(dev) = view.link_by_name(&vx.device) else {
        return BypassState::Missing;
    };
    if dev.kind != LinkKind::Vxlan {
        return BypassState::NotVxlan;
    }
    let bridges = view
        .link_by_name(svi)
        .map(|s| [Some(s.index), s.lower])
        .unwrap_or_default();
    if dev.master.is_none() || !bridges.contains(&dev.master) {
        return BypassState::NotInBd;
    }
    let flood = Fdb {
        ifindex: dev.index,
        mac: Mac::default(),
        dst: Some(vx.bypass_vtep),
    };
    if !view.fdb.contains(&flood) {
        return BypassState::NoFloodEntry;
    }
    BypassState::Ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::kernel::{KernelEvent, Link};

    fn link(index: u32, name: &str, kind: LinkKind, master: Option<u32>) -> KernelEvent {
        KernelEvent::Link(Link {
            index,
            name: name.into(),
            kind,
            master,
            ..Default::default()
        })
    }

    #[test]
    fn each_fault_is_named() {
        let vx = Vxlan {
            device: "vxlan5010".into(),
            bypass_vtep: "203.0.113.2".parse().unwrap(),
        };
        let mut v = KernelView::default();
        v.apply(link(2, "br5010", LinkKind::Bridge, None));
        assert_eq!(bypass_state(&vx, "br5010", &v), BypassState::Missing);
        v.apply(link(3, "vxlan5010", LinkKind::Other, Some(2)));
        assert_eq!(bypass_state(&vx, "br5010", &v), BypassState::NotVxlan);
        v.apply(link(3, "vxlan5010", LinkKind::Vxlan, None));
        assert_eq!(bypass_state(&vx, "br5010", &v), BypassState::NotInBd);
        v.apply(link(3, "vxlan5010", LinkKind::Vxlan, Some(2)));
        assert_eq!(bypass_state(&vx, "br5010", &v), BypassState::NoFloodEntry);
        v.apply(KernelEvent::FdbAdded(Fdb {
            ifindex: 3,
            mac: Mac::default(),
            dst: Some(vx.bypass_vtep),
        }));
        assert_eq!(bypass_state(&vx, "br5010", &v), BypassState::Ok);
    }
}
