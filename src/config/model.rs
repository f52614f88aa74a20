//! The typed, validated configuration. Nothing stringly-typed survives past
//! `config::load`: every value here has been parsed and checked against the
//! rules of DESIGN.md §4 and the seed document.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::core::ifname::IfName;
use crate::core::mac::Mac;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub node: Node,
    pub peer: Option<Peer>,
    pub mlag: Mlag,
    pub up_delay: UpDelayPolicy,
    pub metrics: Option<Metrics>,
    pub gateways: Vec<Gateway>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub platform: Platform,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Generic,
    Ce6820h,
    Ce6820hK,
    Ce6820s,
    Ce6885Ll,
}

impl Platform {
    pub const ALLOWED: &'static str = "generic, CE6820H, CE6820H-K, CE6820S, CE6885-LL";

    /// Seed: "For the CE6820H, CE6820H-K, and CE6820S: VXLAN-related configurations
    /// are not supported. For the CE6885-LL (low latency mode): VXLAN and
    /// IPv6-related configurations are not supported."
    pub fn supports_vxlan(self) -> bool {
        matches!(self, Platform::Generic)
    }
    pub fn supports_ipv6(self) -> bool {
        !matches!(self, Platform::Ce6885Ll)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Generic => "generic",
            Platform::Ce6820h => "CE6820H",
            Platform::Ce6820hK => "CE6820H-K",
            Platform::Ce6820s => "CE6820S",
            Platform::Ce6885Ll => "CE6885-LL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub local: IpAddr,
    pub address: IpAddr,
    pub port: u16,
    pub interval: Duration,
    pub multiplier: u32,
    pub key_file: PathBuf,
    /// A second key accepted (verify only) during a key changeover.
    pub previous_key_file: Option<PathBuf>,
    pub priority: u32,
    pub peer_link: Option<String>,
    /// Hold the backup's mismatched gateways down (vendor "error-down").
    pub strict: bool,
    /// Neighbour entries accepted from the peer, in all and per gateway.
    pub max_synced: u32,
    pub max_synced_per_gateway: u32,
    /// An entry nobody confirmed this long is probed by its owner.
    pub neighbour_aging: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mlag {
    pub members: Vec<String>,
    pub member_up_delay: Duration,
    pub member_min_delay: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayMode {
    Static,
    Dynamic,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpDelayPolicy {
    pub mode: DelayMode,
    pub min: Duration,
    pub max: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GatewayKind {
    /// VLANIF, VLAN id 1..=4094.
    Vlanif(u16),
    /// VBDIF, bridge-domain id 1..=16777215.
    Vbdif(u32),
}

impl GatewayKind {
    pub fn id(self) -> u32 {
        match self {
            GatewayKind::Vlanif(v) => u32::from(v),
            GatewayKind::Vbdif(b) => b,
        }
    }
    pub fn kind_str(self) -> &'static str {
        match self {
            GatewayKind::Vlanif(_) => "vlanif",
            GatewayKind::Vbdif(_) => "vbdif",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    pub addr: Ipv4Addr,
    pub len: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Prefix {
    pub addr: Ipv6Addr,
    pub len: u8,
}

impl std::fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}
impl std::fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vxlan {
    /// The BD's vxlan device.
    pub device: String,
    /// The peer's VTEP: the static bypass tunnel's flood destination.
    pub bypass_vtep: IpAddr,
}

/// A gateway's addresses of one family, in order. Nearly always one (a
/// primary, no sub address): that one is kept inline, so 4094 gateways cost
/// no allocation each, and no small allocation is left among the parser's
/// freed memory to keep its pages resident.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Prefixes<T> {
    #[default]
    Empty,
    One(T),
    Many(Box<[T]>),
}

impl<T> std::ops::Deref for Prefixes<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Prefixes::Empty => &[],
            Prefixes::One(p) => std::slice::from_ref(p),
            Prefixes::Many(v) => v,
        }
    }
}

impl<T> From<Vec<T>> for Prefixes<T> {
    fn from(mut v: Vec<T>) -> Self {
        match v.len() {
            0 => Prefixes::Empty,
            1 => v.pop().map_or(Prefixes::Empty, Prefixes::One),
            _ => Prefixes::Many(v.into_boxed_slice()),
        }
    }
}

impl<T> FromIterator<T> for Prefixes<T> {
    fn from_iter<I: IntoIterator<Item = T>>(it: I) -> Self {
        it.into_iter().collect::<Vec<T>>().into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// `vlanif<N>` / `vbdif<N>`. Names are inline: 4094 gateways cost no
    /// allocation per name.
    pub name: IfName,
    pub kind: GatewayKind,
    /// The SVI of the VLAN / BD.
    pub interface: IfName,
    pub mac: Mac,
    /// Primary first, then sub addresses.
    pub ipv4: Prefixes<Ipv4Prefix>,
    /// Global addresses, eui-64 already expanded from `mac`.
    pub ipv6: Prefixes<Ipv6Prefix>,
    /// Any IPv6 entry implies `ipv6 enable` (and so a link-local address).
    pub ipv6_enabled: bool,
    pub up_delay: Duration,
    /// dagw's macvlan on the SVI (<= 15 chars).
    pub device: IfName,
    /// Boxed: only VBDIF gateways have one, and every gateway pays for the slot.
    pub vxlan: Option<Box<Vxlan>>,
}

impl Gateway {
    /// fe80::/64 with the EUI-64 interface id of the vMAC.
    pub fn link_local(&self) -> Option<Ipv6Prefix> {
        self.ipv6_enabled.then(|| Ipv6Prefix {
            addr: self.mac.link_local(),
            len: 64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_keep_one_inline_and_their_order() {
        let p = |a: u8| Ipv4Prefix {
            addr: Ipv4Addr::new(192, 0, 2, a),
            len: 24,
        };
        let none: Prefixes<Ipv4Prefix> = Vec::new().into();
        assert_eq!(none, Prefixes::Empty);
        assert!(none.is_empty());
        let one: Prefixes<_> = [p(1)].into_iter().collect();
        assert_eq!(one, Prefixes::One(p(1)));
        assert_eq!(&one[..], &[p(1)]);
        let many: Prefixes<_> = vec![p(1), p(2), p(3)].into();
        assert_eq!(
            many.iter().map(|x| x.addr.octets()[3]).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(many.first(), Some(&p(1)));
    }
}
