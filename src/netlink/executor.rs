//! Carries out core actions on the kernel, one acked request each.

use std::fs;
use std::io;
use std::net::IpAddr;

use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as R;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoMacVlan, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage, LinkProtocolDownReason, MacVlanMode,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};

use super::NetlinkError;
use super::decode;
use super::socket::RequestSocket;
use crate::core::action::Action;
use crate::core::ifname::IfName;
use crate::core::kernel::{Addr, DAGW_PROTODOWN_REASON, KernelEvent, Link, OWNER_ALIAS_PREFIX};
use crate::core::mac::Mac;

/// What an action changed, beyond its own effect.
#[derive(Debug, Default)]
pub struct Outcome {
    /// A created or re-read link, to fold into the view.
    pub link: Option<Link>,
    /// Sysctls that had to be rewritten (drift when the device already existed).
    pub sysctls_changed: u32,
}

pub struct Executor {
    sock: RequestSocket,
}

fn link_msg(index: u32) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m
}

fn is(e: &NetlinkError, errno: i32) -> bool {
    e.errno() == Some(errno)
}

impl Executor {
    pub fn open() -> Result<Self, NetlinkError> {
        Ok(Executor {
            sock: RequestSocket::open()?,
        })
    }

    pub fn socket(&mut self) -> &mut RequestSocket {
        &mut self.sock
    }

    pub fn apply(&mut self, action: &Action) -> Result<Outcome, NetlinkError> {
        let what = || format!("{action:?}");
        let mut outcome = Outcome::default();
        match action {
            Action::CreateDevice {
                gateway,
                name,
                parent,
                mac,
                held,
            } => {
                outcome.link = Some(self.create_device(gateway, name, *parent, *mac, *held)?);
            }
            Action::Sysctls { device } => outcome.sysctls_changed = write_sysctls(device)?,
            Action::Rename { index, name } => {
                // the kernel renames only a device that is down
                let was_up = self.get_link(*index)?.is_some_and(|l| l.admin_up);
                if was_up {
                    self.set_admin(*index, false)?;
                }
                let mut m = link_msg(*index);
                m.attributes.push(LinkAttribute::IfName(name.clone()));
                let r = self.sock.request(R::SetLink(m), 0, &what);
                if was_up {
                    self.set_admin(*index, true)?;
                }
                r?;
            }
            Action::SetMac { index, mac } => {
                let mut m = link_msg(*index);
                m.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
                self.sock.request(R::SetLink(m), 0, &what)?;
            }
            Action::SetAddrGenModeNone { index } => {
                let mut m = link_msg(*index);
                m.attributes.push(addr_gen_mode_none());
                self.sock.request(R::SetLink(m), 0, &what)?;
            }
            Action::Protodown {
                index,
                ours,
                protodown,
            } => {
                let mut m = link_msg(*index);
                m.attributes.push(LinkAttribute::ProtoDownReason(vec![
                    LinkProtocolDownReason::Mask(DAGW_PROTODOWN_REASON),
                    LinkProtocolDownReason::Value(if *ours { DAGW_PROTODOWN_REASON } else { 0 }),
                ]));
                m.attributes
                    .push(LinkAttribute::ProtoDown(u8::from(*protodown)));
                self.sock.request(R::SetLink(m), 0, &what)?;
            }
            Action::AdminUp { index, up } => self.set_admin(*index, *up)?,
            Action::AddAddr { index, addr, nodad } => {
                match self.sock.request(
                    R::NewAddress(addr_msg(*index, *addr, *nodad)),
                    NLM_F_CREATE | NLM_F_EXCL,
                    &what,
                ) {
                    Err(e) if is(&e, libc::EEXIST) => {}
                    r => {
                        r?;
                    }
                }
            }
            Action::DelAddr { index, addr } => {
                match self
                    .sock
                    .request(R::DelAddress(addr_msg(*index, *addr, false)), 0, &what)
                {
                    Err(e)
                        if is(&e, libc::EADDRNOTAVAIL)
                            || is(&e, libc::ENOENT)
                            || is(&e, libc::ENODEV) => {}
                    r => {
                        r?;
                    }
                }
            }
            Action::AddFdbLocal { bridge, mac } => {
                match self.sock.request(
                    R::NewNeighbour(fdb_msg(*bridge, *mac, None)),
                    NLM_F_CREATE | NLM_F_EXCL,
                    &what,
                ) {
                    Err(e) if is(&e, libc::EEXIST) => {}
                    r => {
                        r?;
                    }
                }
            }
            Action::DelFdbLocal { bridge, mac } => {
                match self
                    .sock
                    .request(R::DelNeighbour(fdb_msg(*bridge, *mac, None)), 0, &what)
                {
                    Err(e) if is(&e, libc::ENOENT) || is(&e, libc::ENODEV) => {}
                    r => {
                        r?;
                    }
                }
            }
            Action::AppendFlood { vxlan, dst } => {
                let m = fdb_msg(*vxlan, Mac::default(), Some(*dst));
                match self
                    .sock
                    .request(R::NewNeighbour(m), NLM_F_CREATE | NLM_F_APPEND, &what)
                {
                    Err(e) if is(&e, libc::EEXIST) => {}
                    r => {
                        r?;
                    }
                }
            }
            Action::DelFlood { vxlan, dst } => {
                let m = fdb_msg(*vxlan, Mac::default(), Some(*dst));
                match self.sock.request(R::DelNeighbour(m), 0, &what) {
                    Err(e) if is(&e, libc::ENOENT) || is(&e, libc::ENODEV) => {}
                    r => {
                        r?;
                    }
                }
            }
            Action::DeleteLink { index } => {
                match self.sock.request(R::DelLink(link_msg(*index)), 0, &what) {
                    Err(e) if is(&e, libc::ENODEV) => {}
                    r => {
                        r?;
                    }
                }
            }
        }
        Ok(outcome)
    }

    fn set_admin(&mut self, index: u32, up: bool) -> Result<(), NetlinkError> {
        let mut m = link_msg(index);
        m.header.change_mask = LinkFlags::Up;
        if up {
            m.header.flags = LinkFlags::Up;
        }
        self.sock.request(R::SetLink(m), 0, &|| {
            format!("set link {index} {}", if up { "up" } else { "down" })
        })?;
        Ok(())
    }

    pub fn get_link(&mut self, index: u32) -> Result<Option<Link>, NetlinkError> {
        self.get_link_msg(link_msg(index))
    }

    fn get_link_msg(&mut self, m: LinkMessage) -> Result<Option<Link>, NetlinkError> {
        match self.sock.request(R::GetLink(m), 0, &|| "get link".into()) {
            Err(e) if is(&e, libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
            Ok(msgs) => Ok(msgs.iter().find_map(|m| match decode::decode(m) {
                Some(KernelEvent::Link(l)) => Some(l),
                _ => None,
            })),
        }
    }

    /// Create the macvlan admin-down, set its sysctls, then in one message:
    /// ownership alias, addr_gen_mode none and either protodown with dagw's
    /// reason (`held`; the planner brings it up) or admin up.
    fn create_device(
        &mut self,
        gateway: &str,
        name: &str,
        parent: u32,
        mac: Mac,
        held: bool,
    ) -> Result<Link, NetlinkError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes.push(LinkAttribute::Link(parent));
        m.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                MacVlanMode::Private,
            )])),
        ]));
        self.sock
            .request(R::NewLink(m), NLM_F_CREATE | NLM_F_EXCL, &|| {
                format!("create macvlan {name} for gateway {gateway}")
            })?;
        let mut q = LinkMessage::default();
        q.attributes.push(LinkAttribute::IfName(name.to_string()));
        let link = self.get_link_msg(q)?.ok_or_else(|| NetlinkError::Refused {
            what: format!("create macvlan {name}"),
            source: io::Error::from_raw_os_error(libc::ENODEV),
        })?;
        let mut s = link_msg(link.index);
        s.attributes.push(LinkAttribute::IfAlias(format!(
            "{OWNER_ALIAS_PREFIX}{gateway}"
        )));
        s.attributes.push(addr_gen_mode_none());
        if held {
            s.attributes.push(LinkAttribute::ProtoDownReason(vec![
                LinkProtocolDownReason::Mask(DAGW_PROTODOWN_REASON),
                LinkProtocolDownReason::Value(DAGW_PROTODOWN_REASON),
            ]));
            s.attributes.push(LinkAttribute::ProtoDown(1));
        }
        // before it is up: accept_dad 0 and arp_ignore from the first packet
        write_sysctls(name)?;
        self.sock
            .request(R::SetLink(s), 0, &|| format!("mark macvlan {name}"))?;
        if !held {
            // a message of its own: in one with addr_gen_mode, the kernel
            // brings the device up first and makes its own link-local
            self.set_admin(link.index, true)?;
        }
        let mut made = Link {
            owner_gateway: IfName::new(gateway),
            addr_gen_mode: Some(1),
            ..link
        };
        if held {
            made.protodown = true;
            made.protodown_reason |= DAGW_PROTODOWN_REASON;
        } else {
            made.admin_up = true;
        }
        Ok(made)
    }
}

fn addr_gen_mode_none() -> LinkAttribute {
    LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(
        In6AddrGenMode::None,
    )])])
}

fn addr_msg(index: u32, addr: Addr, nodad: bool) -> AddressMessage {
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

fn fdb_msg(ifindex: u32, mac: Mac, dst: Option<IpAddr>) -> NeighbourMessage {
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

/// The per-device sysctls a gateway device needs (DESIGN.md §2):
/// answer ARP only for its own addresses with its own MAC, do not route over
/// it while it is held (linkdown), and never run DAD on the shared addresses.
pub const GATEWAY_SYSCTLS: &[(&str, &str, &str)] = &[
    ("ipv4", "arp_ignore", "1"),
    ("ipv4", "arp_announce", "2"),
    ("ipv4", "ignore_routes_with_linkdown", "1"),
    ("ipv6", "accept_dad", "0"),
    ("ipv6", "accept_ra", "0"),
    // an admin-down (rename, operator) must not flush the shared addresses
    ("ipv6", "keep_addr_on_down", "1"),
    ("ipv6", "ignore_routes_with_linkdown", "1"),
];

/// On the SVI too, or it answers ARP for the gateway IP with its own MAC, even
/// while the gateway device is held.
pub const SVI_SYSCTLS: &[(&str, &str, &str)] =
    &[("ipv4", "arp_ignore", "1"), ("ipv4", "arp_announce", "2")];

/// Write `GATEWAY_SYSCTLS` (or `SVI_SYSCTLS` for an `svi:` prefixed device) where they differ;
/// returns how many had drifted.
pub fn write_sysctls(device: &str) -> Result<u32, NetlinkError> {
    let (device, set) = match device.strip_prefix("svi:") {
        Some(d) => (d, SVI_SYSCTLS),
        None => (device, GATEWAY_SYSCTLS),
    };
    if device.is_empty() || device.contains('/') || device == "." || device == ".." {
        return Ok(0);
    }
    let mut changed = 0;
    for (family, key, value) in set {
        let path = format!("/proc/sys/net/{family}/conf/{device}/{key}");
        match fs::read_to_string(&path) {
            Ok(cur) if cur.trim() == *value => {}
            Ok(_) => {
                fs::write(&path, value).map_err(|source| NetlinkError::Sysctl {
                    path: path.clone(),
                    source,
                })?;
                changed += 1;
            }
            // IPv6 disabled, or the device went away meanwhile: nothing to enforce
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(NetlinkError::Sysctl { path, source }),
        }
    }
    Ok(changed)
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
    (R::NewNeighbour(m), netlink_packet_core::NLM_F_REPLACE)
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
    (
        R::NewNeighbour(m),
        NLM_F_CREATE | netlink_packet_core::NLM_F_REPLACE,
    )
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

impl Executor {
    /// Pipelined neighbour changes; ENOENT on removal counts as done.
    pub fn neigh_batch(&mut self, msgs: Vec<(R, u16)>) -> Vec<Result<(), NetlinkError>> {
        self.sock
            .batch(msgs)
            .into_iter()
            .map(|r| match r {
                Err(e) if is(&e, libc::ENOENT) => Ok(()),
                r => r,
            })
            .collect()
    }
}
