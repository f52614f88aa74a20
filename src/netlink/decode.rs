//! rtnetlink messages → kernel events. Only what dagw needs is kept; the rest
//! (learned bridge FDB entries, other address families) is dropped here so the
//! kernel view stays small.

use std::net::IpAddr;

use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as R;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, InfoData, InfoKind, InfoMacVlan, LinkAttribute, LinkFlags, LinkInfo,
    LinkMessage, LinkProtocolDownReason, State,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};

use crate::core::ifname::IfName;
use crate::core::kernel::{
    Addr, AddrInfo, Fdb, KernelEvent, LearnedMac, Link, LinkKind, NeighInfo, NeighKey,
};
use crate::core::mac::Mac;

pub fn decode(msg: &R) -> Option<KernelEvent> {
    match msg {
        R::NewLink(m) if m.header.interface_family != AddressFamily::Bridge => {
            Some(KernelEvent::Link(link(m)?))
        }
        R::DelLink(m) if m.header.interface_family != AddressFamily::Bridge => {
            Some(KernelEvent::LinkGone(m.header.index))
        }
        R::NewAddress(m) => {
            let (a, info) = addr(m)?;
            Some(KernelEvent::AddrAdded(m.header.index, a, info))
        }
        R::DelAddress(m) => Some(KernelEvent::AddrRemoved(m.header.index, addr(m)?.0)),
        R::NewNeighbour(m) => neigh(m, true),
        R::DelNeighbour(m) => neigh(m, false),
        _ => None,
    }
}

fn mac_of(bytes: &[u8]) -> Option<Mac> {
    <[u8; 6]>::try_from(bytes).ok().map(Mac)
}

pub fn link(m: &LinkMessage) -> Option<Link> {
    let mut l = Link {
        index: m.header.index,
        admin_up: m.header.flags.contains(LinkFlags::Up),
        ..Default::default()
    };
    let lower_up = m.header.flags.contains(LinkFlags::LowerUp);
    let mut oper = None;
    for a in &m.attributes {
        match a {
            // the kernel's names fit; anything else is not a link to mirror
            LinkAttribute::IfName(n) => l.name = IfName::new(n)?,
            LinkAttribute::Address(b) => l.mac = mac_of(b).unwrap_or_default(),
            LinkAttribute::ProtoDown(v) => l.protodown = *v != 0,
            LinkAttribute::ProtoDownReason(rs) => {
                for r in rs {
                    if let LinkProtocolDownReason::Value(v) = r {
                        l.protodown_reason = *v;
                    }
                }
            }
            LinkAttribute::Link(i) => l.lower = Some(*i),
            LinkAttribute::IfAlias(s) => l.set_alias(s),
            LinkAttribute::OperState(s) => oper = Some(*s),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => {
                            l.kind = match k {
                                InfoKind::Bridge => LinkKind::Bridge,
                                InfoKind::MacVlan => LinkKind::Macvlan,
                                InfoKind::Vxlan => LinkKind::Vxlan,
                                _ => LinkKind::Other,
                            }
                        }
                        LinkInfo::Data(InfoData::MacVlan(d)) => {
                            for x in d {
                                if let InfoMacVlan::Mode(mode) = x {
                                    l.macvlan_mode = Some(u32::from(*mode));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            LinkAttribute::AfSpecUnspec(specs) => {
                for s in specs {
                    if let AfSpecUnspec::Inet6(v6) = s {
                        for x in v6 {
                            if let AfSpecInet6::AddrGenMode(mode) = x {
                                l.addr_gen_mode = Some(u8::from(mode));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if l.name.is_empty() {
        return None;
    }
    l.oper_up = match oper {
        Some(State::Up) => true,
        Some(State::Unknown) | None => lower_up,
        _ => false,
    };
    Some(l)
}

fn addr(m: &AddressMessage) -> Option<(Addr, AddrInfo)> {
    let mut local = None;
    let mut address = None;
    let mut nodad = m.header.flags.contains(AddressHeaderFlags::Nodad);
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Flags(f) => nodad |= f.contains(AddressFlags::Nodad),
            _ => {}
        }
    }
    // IPv4: IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
    // point-to-point links); IPv6 only sends IFA_ADDRESS (plus IFA_LOCAL for ptp).
    let ip: IpAddr = match m.header.family {
        AddressFamily::Inet => local.or(address)?,
        AddressFamily::Inet6 => address.or(local)?,
        _ => return None,
    };
    if m.header.prefix_len > if ip.is_ipv4() { 32 } else { 128 } {
        return None;
    }
    Some((
        Addr {
            ip,
            len: m.header.prefix_len,
        },
        AddrInfo { nodad },
    ))
}

fn neigh(m: &NeighbourMessage, new: bool) -> Option<KernelEvent> {
    let mut dst = None;
    let mut lladdr = None;
    let mut bridge = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Controller(i) => bridge = Some(*i),
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                dst = Some(IpAddr::V4(*ip))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => {
                dst = Some(IpAddr::V6(*ip))
            }
            // AF_BRIDGE messages (vxlan remotes) carry NDA_DST untyped
            NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                dst = match b.len() {
                    4 => <[u8; 4]>::try_from(&b[..]).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(&b[..]).ok().map(IpAddr::from),
                    _ => None,
                }
            }
            NeighbourAttribute::LinkLayerAddress(b) => lladdr = mac_of(b),
            _ => {}
        }
    }
    let ifindex = m.header.ifindex;
    match m.header.family {
        AddressFamily::Bridge => {
            // Only static entries matter (a vMAC `self local`, a flood entry);
            // learned MACs are the bridge's business and would bloat the view.
            let is_static = matches!(
                m.header.state,
                NeighbourState::Permanent | NeighbourState::Noarp
            ) || u16::from(m.header.state) & 0xc0 != 0;
            let mac = lladdr?;
            if !is_static {
                // A MAC the bridge learned on a port: where a host sits
                // (the ARP/ND rule asks whether it is behind a member).
                // (the bridge names itself in NDA_MASTER; a vxlan device's
                // own remote entries have none)
                let bridge = bridge?;
                if mac.is_multicast() || mac.is_zero() {
                    return None;
                }
                let l = LearnedMac {
                    bridge,
                    port: ifindex,
                    mac,
                };
                return Some(if new {
                    KernelEvent::MacLearned(l)
                } else {
                    KernelEvent::MacForgotten(l)
                });
            }
            // the bridge's multicast entries are never a vMAC nor a flood entry
            if mac.is_multicast() {
                return None;
            }
            let f = Fdb { ifindex, mac, dst };
            Some(if new {
                KernelEvent::FdbAdded(f)
            } else {
                KernelEvent::FdbRemoved(f)
            })
        }
        AddressFamily::Inet | AddressFamily::Inet6 => {
            let ip = dst?;
            // Multicast/broadcast "neighbours" are the kernel's own mappings,
            // not hosts: neither counted nor synced.
            let not_a_host = match ip {
                IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast(),
                IpAddr::V6(v6) => v6.is_multicast(),
            };
            if not_a_host {
                return None;
            }
            let key = NeighKey { ifindex, ip };
            let usable = new
                && lladdr.is_some()
                && matches!(
                    m.header.state,
                    NeighbourState::Reachable
                        | NeighbourState::Stale
                        | NeighbourState::Delay
                        | NeighbourState::Probe
                        | NeighbourState::Permanent
                        | NeighbourState::Noarp
                );
            Some(if usable {
                KernelEvent::NeighUsable(
                    key,
                    NeighInfo {
                        mac: lladdr.unwrap_or_default(),
                        synced: m.header.flags.contains(NeighbourFlags::ExtLearned),
                        reachable: m.header.state == NeighbourState::Reachable,
                        confirmed_s: 0,
                    },
                )
            } else {
                KernelEvent::NeighGone(key)
            })
        }
        _ => None,
    }
}
