//! What the core asks the kernel to do. The netlink executor carries these out;
//! after a success the daemon folds [`Action::assume_done`] into its kernel
//! view at once, so a re-plan before the kernel's own event arrives does not
//! repeat the work.

use std::net::IpAddr;

use super::ifname::IfName;
use super::kernel::NeighKey;
use super::kernel::{Addr, AddrInfo, DAGW_PROTODOWN_REASON, Fdb, KernelEvent, KernelView, Link};
use super::mac::Mac;
use super::neigh::NeighAction;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the gateway's macvlan (mode private) on `parent`, mark it
    /// `dagw:<gateway>`, set addr_gen_mode none, then either hold it
    /// (protodown with dagw's reason, admin down) or bring it up: a gateway
    /// that may serve at once costs no carrier flap (and no two requests).
    CreateDevice {
        gateway: String,
        name: String,
        parent: u32,
        mac: Mac,
        held: bool,
    },
    /// Per-device sysctls (arp_ignore, arp_announce, ignore_routes_with_linkdown,
    /// accept_dad, ...): read first, written only where they differ.
    Sysctls {
        device: String,
    },
    Rename {
        index: u32,
        name: String,
    },
    SetMac {
        index: u32,
        mac: Mac,
    },
    SetAddrGenModeNone {
        index: u32,
    },
    /// Set or clear dagw's protodown reason bit; `protodown` is the flag to
    /// leave behind (false only when no other tool's reason remains).
    Protodown {
        index: u32,
        ours: bool,
        protodown: bool,
    },
    AdminUp {
        index: u32,
        up: bool,
    },
    AddAddr {
        index: u32,
        addr: Addr,
        nodad: bool,
    },
    DelAddr {
        index: u32,
        addr: Addr,
    },
    /// `bridge fdb add MAC dev SVI self local`.
    AddFdbLocal {
        bridge: u32,
        mac: Mac,
    },
    DelFdbLocal {
        bridge: u32,
        mac: Mac,
    },
    /// `bridge fdb append 00:00:00:00:00:00 dev VXLAN dst VTEP self permanent`.
    AppendFlood {
        vxlan: u32,
        dst: IpAddr,
    },
    /// `bridge fdb del 00:00:00:00:00:00 dev VXLAN dst VTEP self`: only the
    /// entry towards that VTEP (others on the device are not dagw's).
    DelFlood {
        vxlan: u32,
        dst: IpAddr,
    },
    DeleteLink {
        index: u32,
    },
}

impl Action {
    /// Fold a successful action into the kernel view at once: the kernel has done
    /// it (the ack came back), its event is merely still on the way.
    pub fn assume_done(&self, view: &mut KernelView) {
        let link = |view: &mut KernelView, index: u32, f: &dyn Fn(&mut Link)| {
            if let Some(mut l) = view.link(index).cloned() {
                f(&mut l);
                view.apply(KernelEvent::Link(l));
            }
        };
        match self {
            Action::CreateDevice { .. } | Action::Sysctls { .. } => {}
            Action::Rename { index, name } => link(view, *index, &|l| {
                if let Some(n) = IfName::new(name) {
                    l.name = n;
                }
            }),
            Action::SetMac { index, mac } => link(view, *index, &|l| l.mac = *mac),
            Action::SetAddrGenModeNone { index } => {
                link(view, *index, &|l| l.addr_gen_mode = Some(1))
            }
            Action::Protodown {
                index,
                ours,
                protodown,
            } => link(view, *index, &|l| {
                if *ours {
                    l.protodown_reason |= DAGW_PROTODOWN_REASON;
                } else {
                    l.protodown_reason &= !DAGW_PROTODOWN_REASON;
                }
                l.protodown = *protodown;
            }),
            Action::AdminUp { index, up } => link(view, *index, &|l| l.admin_up = *up),
            Action::AddAddr { index, addr, nodad } => view.apply(KernelEvent::AddrAdded(
                *index,
                *addr,
                AddrInfo { nodad: *nodad },
            )),
            Action::DelAddr { index, addr } => view.apply(KernelEvent::AddrRemoved(*index, *addr)),
            Action::AddFdbLocal { bridge, mac } => view.apply(KernelEvent::FdbAdded(Fdb {
                ifindex: *bridge,
                mac: *mac,
                dst: None,
            })),
            Action::DelFdbLocal { bridge, mac } => view.apply(KernelEvent::FdbRemoved(Fdb {
                ifindex: *bridge,
                mac: *mac,
                dst: None,
            })),
            Action::AppendFlood { vxlan, dst } => view.apply(KernelEvent::FdbAdded(Fdb {
                ifindex: *vxlan,
                mac: Mac::default(),
                dst: Some(*dst),
            })),
            Action::DelFlood { vxlan, dst } => view.apply(KernelEvent::FdbRemoved(Fdb {
                ifindex: *vxlan,
                mac: Mac::default(),
                dst: Some(*dst),
            })),
            Action::DeleteLink { index } => view.apply(KernelEvent::LinkGone(*index)),
        }
    }

    /// Operator-readable text, naming devices as the kernel view knows them.
    pub fn describe(&self, view: &KernelView) -> String {
        let n = |i: &u32| {
            view.link(*i)
                .map(|l| l.name.to_string())
                .unwrap_or_else(|| format!("ifindex {i}"))
        };
        match self {
            Action::CreateDevice {
                name, parent, mac, ..
            } => format!("create {name} on {} with {mac}", n(parent)),
            Action::Sysctls { device } => format!("sysctls of {device}"),
            Action::Rename { index, name } => format!("rename {} back to {name}", n(index)),
            Action::SetMac { index, mac } => format!("set {} MAC {mac}", n(index)),
            Action::SetAddrGenModeNone { index } => format!("set {} addrgenmode none", n(index)),
            Action::Protodown {
                index, ours: true, ..
            } => format!("protodown {}", n(index)),
            Action::Protodown { index, .. } => format!("clear protodown of {}", n(index)),
            Action::AdminUp { index, up } => {
                format!("set {} {}", n(index), if *up { "up" } else { "down" })
            }
            Action::AddAddr { index, addr, .. } => {
                format!("add {}/{} to {}", addr.ip, addr.len, n(index))
            }
            Action::DelAddr { index, addr } => {
                format!("remove {}/{} from {}", addr.ip, addr.len, n(index))
            }
            Action::AddFdbLocal { bridge, mac } => {
                format!("add fdb {mac} self local on {}", n(bridge))
            }
            Action::DelFdbLocal { bridge, mac } => format!("remove fdb {mac} from {}", n(bridge)),
            Action::AppendFlood { vxlan, dst } => {
                format!("append flood entry to {dst} on {}", n(vxlan))
            }
            Action::DelFlood { vxlan, dst } => {
                format!("remove flood entry to {dst} from {}", n(vxlan))
            }
            Action::DeleteLink { index } => format!("delete {}", n(index)),
        }
    }

    /// The interface an action changes, for logs.
    pub fn target(&self) -> Option<u32> {
        match *self {
            Action::CreateDevice { .. } | Action::Sysctls { .. } => None,
            Action::Rename { index, .. }
            | Action::SetMac { index, .. }
            | Action::SetAddrGenModeNone { index }
            | Action::Protodown { index, .. }
            | Action::AdminUp { index, .. }
            | Action::AddAddr { index, .. }
            | Action::DelAddr { index, .. }
            | Action::DeleteLink { index } => Some(index),
            Action::AddFdbLocal { bridge, .. } | Action::DelFdbLocal { bridge, .. } => Some(bridge),
            Action::AppendFlood { vxlan, .. } | Action::DelFlood { vxlan, .. } => Some(vxlan),
        }
    }
}

/// Work for the kernel, as the node hands it to the southbound.
#[derive(Debug)]
pub enum Work {
    /// One plan: in order, stopping at the first failure.
    Actions(Vec<Action>),
    /// Neighbour changes (ENOENT on removal counts as done). Compact until
    /// sent: a big sync may queue tens of thousands.
    Neighbours(Vec<(NeighKey, NeighAction)>),
    /// A full dump of what dagw mirrors, into a fresh view.
    Dump { clock_s: u32 },
}

/// What an action changed, beyond its own effect.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// A created or re-read link, to fold into the view.
    pub link: Option<Link>,
    /// Sysctls that had to be rewritten (drift when the device already existed).
    pub sysctls_changed: u32,
}

/// A fresh view of the kernel, with the bridge-learned MACs it holds.
pub struct Dumped {
    pub view: KernelView,
    pub learned: Vec<KernelEvent>,
}

/// Why the kernel did not carry an action out, as the node sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KernelError {
    /// The errno the kernel answered with, when it refused.
    pub errno: Option<i32>,
    pub message: String,
}
