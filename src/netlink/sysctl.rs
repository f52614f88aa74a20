//! The per-device sysctls of gateway devices and SVIs. /proc writes may wait
//! for RTNL (the IPv6 ones do), so the executor runs them off the event loop.

use std::fs;
use std::io;

use super::NetlinkError;

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
