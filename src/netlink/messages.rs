//! The netlink messages of dagw's kernel changes, built from core values.
//! Shared by the executor (gateway and member work) and the bulk worker
//! (neighbour batches).

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as R;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};

use crate::core::kernel::Addr;
use crate::core::mac::Mac;

pub fn link_msg(index: u32) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m
}

pub fn addr_gen_mode_none() -> LinkAttribute {
    LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(
        In6AddrGenMode::None,
    )])])
}

pub fn addr_msg(index: u32, addr: Addr, nodad: bool) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.index = index;
    m.header.prefix_len = addr.len;
    match addr.ip {
        IpAddr::V4(_) => {
            m.header.family = AddressFamily::Inet;
            m.attributes.push(AddressAttribute::Local(addr.ip));
            m.attributes.push(AddressAttribute::Address(addr.ip));
        }
        IpAddr::V6(v6) => {
            m.header.family = AddressFamily::Inet6;
            if v6.is_unicast_link_local() {
                m.header.scope = AddressScope::Link;
            }
            m.attributes.push(AddressAttribute::Address(addr.ip));
        }
    }
    if nodad {
        m.header.flags = AddressHeaderFlags::Nodad;
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    m
}

pub fn fdb_msg(ifindex: u32, mac: Mac, dst: Option<IpAddr>) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = ifindex;
    m.header.state = NeighbourState::Permanent;
    m.header.flags = NeighbourFlags::Own;
    m.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
    match dst {
        Some(IpAddr::V4(ip)) => m
            .attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip))),
        Some(IpAddr::V6(ip)) => m
            .attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip))),
        None => {}
    }
    m
}

/// The peer's entry, pinned on a gateway device (`noarp extern_learn`): the
/// kernel neither probes nor ages a NOARP entry (a REACHABLE one would be
/// probed away, the host answering to the vMAC the other switch consumes),
/// NTF_EXT_LEARNED keeps it out of garbage collection and marks it as not
/// ours, so it is never sent back (no loops). dagw alone ends its life.
pub fn synced_neigh_install(ifindex: u32, ip: IpAddr, mac: Mac) -> (R, u16) {
    neigh_set(
        ifindex,
        ip,
        mac,
        NeighbourState::Noarp,
        NeighbourFlags::ExtLearned,
    )
}

/// The kernel's own entry for a host behind us (`stale`, no
/// `extern_learn`): replacing a pinned copy clears its NTF_EXT_LEARNED, and
/// the kernel verifies the entry on first use.
pub fn own_neigh_install(ifindex: u32, ip: IpAddr, mac: Mac) -> (R, u16) {
    neigh_set(
        ifindex,
        ip,
        mac,
        NeighbourState::Stale,
        NeighbourFlags::empty(),
    )
}

/// Make the kernel probe an entry now (`nud probe`): an answer makes it
/// REACHABLE, silence FAILED.
pub fn neigh_probe(ifindex: u32, ip: IpAddr) -> (R, u16) {
    let mut m = neigh_msg(ifindex, ip);
    m.header.state = NeighbourState::Probe;
    (R::NewNeighbour(m), NLM_F_REPLACE)
}

fn neigh_set(
    ifindex: u32,
    ip: IpAddr,
    mac: Mac,
    state: NeighbourState,
    flags: NeighbourFlags,
) -> (R, u16) {
    let mut m = neigh_msg(ifindex, ip);
    m.header.state = state;
    m.header.flags = flags;
    m.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
    (R::NewNeighbour(m), NLM_F_CREATE | NLM_F_REPLACE)
}

pub fn synced_neigh_remove(ifindex: u32, ip: IpAddr) -> (R, u16) {
    (R::DelNeighbour(neigh_msg(ifindex, ip)), 0)
}

fn neigh_msg(ifindex: u32, ip: IpAddr) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.ifindex = ifindex;
    match ip {
        IpAddr::V4(v4) => {
            m.header.family = AddressFamily::Inet;
            m.attributes
                .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)));
        }
        IpAddr::V6(v6) => {
            m.header.family = AddressFamily::Inet6;
            m.attributes
                .push(NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)));
        }
    }
    m
}
