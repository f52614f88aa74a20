//! What dagw knows of the kernel: a typed mirror of the links, addresses and
//! bridge FDB entries that matter to it, kept current from netlink events.
//! Pure data; the netlink module fills it, the planner reads it.
//!
//! Compact by design: a switch with 4094 gateways mirrors twice as many links
//! and three times as many addresses, and the daemon's RSS is mostly this.
//! Names are inline ([`IfName`]), one flat ordered map holds every address.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use super::ifname::IfName;
use super::mac::Mac;
use super::neigh::Held;
use super::sorted::SortedMap;

/// The bit dagw owns in IFLA_PROTO_DOWN_REASON. Other tools' bits are left alone:
/// the kernel keeps a device protodown while any bit is set.
pub const DAGW_PROTODOWN_REASON: u32 = 1 << 12;

/// ifalias prefix marking a device as dagw's: `dagw:<gateway name>`.
pub const OWNER_ALIAS_PREFIX: &str = "dagw:";

/// IFLA_INFO_KIND, as far as dagw cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkKind {
    Bridge,
    Macvlan,
    Vxlan,
    #[default]
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    pub index: u32,
    pub name: IfName,
    pub kind: LinkKind,
    pub mac: Mac,
    pub admin_up: bool,
    pub oper_up: bool,
    pub protodown: bool,
    pub protodown_reason: u32,
    /// IFLA_LINK: the lower device (a macvlan's parent).
    pub lower: Option<u32>,
    /// IFLA_MASTER: the bridge this device is a port of.
    pub master: Option<u32>,
    /// The gateway named by a `dagw:<gateway>` ifalias, dagw's ownership
    /// mark. Any other alias is not dagw's business and is not kept.
    pub owner_gateway: Option<IfName>,
    /// macvlan mode, when known (4 = private).
    pub macvlan_mode: Option<u32>,
    /// IPv6 addr_gen_mode, when reported (1 = none).
    pub addr_gen_mode: Option<u8>,
}

impl Link {
    /// The gateway name from a dagw ownership alias.
    pub fn owner(&self) -> Option<&str> {
        self.owner_gateway.as_ref().map(|g| g.as_str())
    }

    /// Take the owner from an ifalias as the kernel reports it.
    pub fn set_alias(&mut self, alias: &str) {
        self.owner_gateway = alias.strip_prefix(OWNER_ALIAS_PREFIX).and_then(IfName::new);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr {
    pub ip: IpAddr,
    pub len: u8,
}

impl Addr {
    /// Sorts before every address (IPv4 sorts before IPv6).
    const MIN: Addr = Addr {
        ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        len: 0,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrInfo {
    pub nodad: bool,
}

/// A bridge FDB entry of interest: a local vMAC on an SVI, or a flood entry
/// (all-zeros MAC) on a vxlan device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fdb {
    pub ifindex: u32,
    pub mac: Mac,
    pub dst: Option<IpAddr>,
}

/// A usable neighbour (ARP / ND) entry on some device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighKey {
    pub ifindex: u32,
    pub ip: IpAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NeighInfo {
    pub mac: Mac,
    /// NTF_EXT_LEARNED: installed by dagw from the peer, never sent back.
    pub synced: bool,
    /// The kernel reported the entry REACHABLE (the host just answered).
    pub reachable: bool,
    /// When the host last confirmed the entry ([`KernelView::clock_s`] of
    /// its last REACHABLE report, or of its appearance): what
    /// `neighbour_aging` is measured from.
    pub confirmed_s: u32,
}

impl NeighInfo {
    /// The entry as the ARP/ND rule sees it (`core::neigh`).
    pub fn held(&self) -> Held {
        if self.synced {
            Held::Pinned(self.mac)
        } else {
            Held::Own(self.mac)
        }
    }
}

/// A MAC the bridge learned on one of its ports (not a static entry):
/// where a host sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LearnedMac {
    pub bridge: u32,
    pub port: u32,
    pub mac: Mac,
}

#[derive(Debug, Default, Clone)]
pub struct KernelView {
    pub links: SortedMap<u32, Link>,
    pub by_name: HashMap<IfName, u32>,
    /// Gateway name (from the `dagw:` alias) → ifindex of its device.
    by_owner: HashMap<IfName, u32>,
    /// The addresses of dagw's gateway devices (no other link's are ever
    /// planned on), ordered by link: one map, no per-link allocation.
    addrs: SortedMap<(u32, Addr), AddrInfo>,
    pub fdb: HashSet<Fdb>,
    /// Usable neighbours on dagw's gateway devices only.
    pub neighs: HashMap<NeighKey, NeighInfo>,
    /// Per device: usable (IPv4, IPv6) neighbour counts, kept with `neighs`.
    neigh_counts: HashMap<u32, (u32, u32)>,
    /// Seconds on the daemon's monotonic clock, set before events are
    /// applied: the time stamp of neighbour confirmations.
    pub clock_s: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelEvent {
    Link(Link),
    LinkGone(u32),
    AddrAdded(u32, Addr, AddrInfo),
    AddrRemoved(u32, Addr),
    FdbAdded(Fdb),
    FdbRemoved(Fdb),
    NeighUsable(NeighKey, NeighInfo),
    NeighGone(NeighKey),
    /// The bridge learned (or moved) a MAC on a port.
    MacLearned(LearnedMac),
    /// A learned MAC aged out or was flushed.
    MacForgotten(LearnedMac),
}

impl KernelView {
    pub fn link_by_name(&self, name: &str) -> Option<&Link> {
        self.by_name.get(name).and_then(|i| self.links.get(i))
    }

    pub fn link(&self, index: u32) -> Option<&Link> {
        self.links.get(&index)
    }

    /// The device dagw made for `gateway`, found by its ownership alias first
    /// (survives renames), else by name when it is marked as dagw's.
    pub fn owned_device(&self, gateway: &str, device: &str) -> Option<&Link> {
        self.by_owner
            .get(gateway)
            .and_then(|i| self.links.get(i))
            .or_else(|| self.link_by_name(device).filter(|l| l.owner().is_some()))
    }

    pub fn addrs_of(&self, index: u32) -> impl Iterator<Item = (&Addr, &AddrInfo)> {
        self.addrs
            .from(&(index, Addr::MIN))
            .take_while(move |((i, _), _)| *i == index)
            .map(|((_, a), info)| (a, info))
    }

    pub fn neigh_counts(&self, index: u32) -> (u32, u32) {
        self.neigh_counts.get(&index).copied().unwrap_or_default()
    }

    fn count_neigh(&mut self, n: NeighKey, delta: i32) {
        let c = self.neigh_counts.entry(n.ifindex).or_default();
        let slot = if n.ip.is_ipv4() { &mut c.0 } else { &mut c.1 };
        *slot = slot.saturating_add_signed(delta);
    }

    pub fn apply(&mut self, ev: KernelEvent) {
        match ev {
            KernelEvent::Link(l) => {
                if let Some(old) = self.links.get(&l.index) {
                    if old.name != l.name && self.by_name.get(&old.name) == Some(&l.index) {
                        self.by_name.remove(&old.name);
                    }
                    if let Some(o) = old.owner_gateway
                        && l.owner_gateway != Some(o)
                        && self.by_owner.get(&o) == Some(&l.index)
                    {
                        self.by_owner.remove(&o);
                    }
                }
                if let Some(o) = l.owner_gateway {
                    self.by_owner.insert(o, l.index);
                }
                self.by_name.insert(l.name, l.index);
                self.links.insert(l.index, l);
            }
            KernelEvent::LinkGone(index) => {
                if let Some(old) = self.links.remove(&index) {
                    if self.by_name.get(&old.name) == Some(&index) {
                        self.by_name.remove(&old.name);
                    }
                    if let Some(o) = old.owner_gateway
                        && self.by_owner.get(&o) == Some(&index)
                    {
                        self.by_owner.remove(&o);
                    }
                }
                self.addrs.retain(|(i, _), _| *i != index);
                self.fdb.retain(|f| f.ifindex != index);
                self.neighs.retain(|n, _| n.ifindex != index);
                self.neigh_counts.remove(&index);
            }
            KernelEvent::AddrAdded(i, a, info) => {
                // A gateway device is marked before it gets any address (and
                // links come before addresses in a dump).
                if self.links.get(&i).is_some_and(|l| l.owner().is_some()) {
                    self.addrs.insert((i, a), info);
                }
            }
            KernelEvent::AddrRemoved(i, a) => {
                self.addrs.remove(&(i, a));
            }
            KernelEvent::FdbAdded(f) => {
                self.fdb.insert(f);
            }
            KernelEvent::FdbRemoved(f) => {
                self.fdb.remove(&f);
            }
            KernelEvent::NeighUsable(n, mut info) => {
                // Only gateway devices' tables matter; the rest of the host's
                // neighbours would only cost memory.
                if self
                    .links
                    .get(&n.ifindex)
                    .is_none_or(|l| l.owner().is_none())
                {
                    return;
                }
                let before = self.neighs.get(&n);
                info.confirmed_s = match before {
                    Some(b) if !info.reachable && b.mac == info.mac && b.synced == info.synced => {
                        b.confirmed_s
                    }
                    _ => self.clock_s,
                };
                if self.neighs.insert(n, info).is_none() {
                    self.count_neigh(n, 1);
                }
            }
            KernelEvent::NeighGone(n) => {
                if self.neighs.remove(&n).is_some() {
                    self.count_neigh(n, -1);
                }
            }
            // where hosts sit is the ARP/ND rule's business (daemon), not
            // the mirror's: a bridge may learn many thousands of MACs
            KernelEvent::MacLearned(_) | KernelEvent::MacForgotten(_) => {}
        }
    }

    /// Give back the spare capacity a burst of links or addresses left.
    pub fn compact(&mut self) {
        self.links.shrink_to_fit();
        self.addrs.shrink_to_fit();
        self.by_name.shrink_to_fit();
        self.by_owner.shrink_to_fit();
        self.fdb.shrink_to_fit();
        self.neighs.shrink_to_fit();
        self.neigh_counts.shrink_to_fit();
    }

    /// Forget everything (before a full re-dump after an overrun).
    pub fn clear(&mut self) {
        *self = KernelView {
            clock_s: self.clock_s,
            ..KernelView::default()
        };
    }

    /// What the kernel holds usable for `ip` on device `ifindex`.
    pub fn held(&self, ifindex: u32, ip: IpAddr) -> Held {
        self.neighs
            .get(&NeighKey { ifindex, ip })
            .map_or(Held::Nothing, NeighInfo::held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, owner: Option<&str>) -> KernelEvent {
        KernelEvent::Link(Link {
            index,
            name: name.into(),
            owner_gateway: owner.map(Into::into),
            ..Default::default()
        })
    }

    fn addr(ip: &str, len: u8) -> Addr {
        Addr {
            ip: ip.parse().unwrap(),
            len,
        }
    }

    #[test]
    fn keeps_addresses_of_gateway_devices_only() {
        let mut v = KernelView::default();
        v.apply(link(2, "br10", None));
        v.apply(link(3, "gw10", Some("vlanif10")));
        v.apply(link(4, "gw11", Some("vlanif11")));
        let info = AddrInfo { nodad: true };
        for (i, a) in [
            (2, addr("fe80::1", 64)),
            (3, addr("2001:db8::1", 64)),
            (3, addr("192.0.2.1", 24)),
            (4, addr("198.51.100.1", 24)),
        ] {
            v.apply(KernelEvent::AddrAdded(i, a, info));
        }
        let of = |v: &KernelView, i| v.addrs_of(i).map(|(a, _)| *a).collect::<Vec<_>>();
        assert_eq!(of(&v, 2), []);
        assert_eq!(of(&v, 3), [addr("192.0.2.1", 24), addr("2001:db8::1", 64)]);
        assert_eq!(of(&v, 4), [addr("198.51.100.1", 24)]);
        v.apply(KernelEvent::AddrRemoved(3, addr("192.0.2.1", 24)));
        assert_eq!(of(&v, 3), [addr("2001:db8::1", 64)]);
        v.apply(KernelEvent::LinkGone(3));
        assert_eq!(of(&v, 3), []);
        assert_eq!(of(&v, 4), [addr("198.51.100.1", 24)]);
        assert_eq!(v.owned_device("vlanif11", "gw11").map(|l| l.index), Some(4));
        assert!(v.owned_device("vlanif10", "gw10").is_none());
    }
}
