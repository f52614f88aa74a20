//! The per-device sysctls of gateway devices and SVIs. /proc writes may wait
//! for RTNL (the IPv6 ones do), so the executor runs them off the event loop.

use std::fs;
use std::io;

use super::NetlinkError;

/// (family, key, value) of per-device sysctls.
pub type Sysctls = &'static [(&'static str, &'static str, &'static str)];

/// The per-device sysctls a gateway device needs (DESIGN.md §2):
/// answer ARP only for its own addresses with its own MAC, do not route over
/// it while it is held (linkdown), and never run DAD on the shared addresses.
pub const GATEWAY_SYSCTLS: Sysctls = &[
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
pub const SVI_SYSCTLS: Sysctls = &[("ipv4", "arp_ignore", "1"), ("ipv4", "arp_announce", "2")];

/// The device and the sysctls it needs (`svi:` prefixed: an SVI); None for
/// a name that is no device's (it could walk out of /proc/sys).
fn wanted(device: &str) -> Option<(&str, Sysctls)> {
    let (device, set) = match device.strip_prefix("svi:") {
        Some(d) => (d, SVI_SYSCTLS),
        None => (device, GATEWAY_SYSCTLS),
    };
    let walks_out = device.is_empty() || device.contains('/') || device == "." || device == "..";
    (!walks_out).then_some((device, set))
}

/// Where the kernel shows one per-device sysctl.
pub fn path(family: &str, device: &str, key: &str) -> String {
    format!("/proc/sys/net/{family}/conf/{device}/{key}")
}

/// Every sysctl of `device` already as wanted (or not there), by reads
/// only: reading never waits for RTNL, so the periodic audit of thousands of
/// devices needs no thread hand-off and no turn of its own.
pub fn sysctls_in_place(device: &str) -> bool {
    let Some((device, set)) = wanted(device) else {
        return true;
    };
    set.iter().all(
        |(family, key, value)| match fs::read_to_string(path(family, device, key)) {
            Ok(cur) => cur.trim() == *value,
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        },
    )
}

/// Write `GATEWAY_SYSCTLS` (or `SVI_SYSCTLS` for an `svi:` prefixed device) where they differ;
/// returns how many had drifted.
pub fn write_sysctls(device: &str) -> Result<u32, NetlinkError> {
    let Some((device, set)) = wanted(device) else {
        return Ok(0);
    };
    let mut changed = 0;
    for (family, key, value) in set {
        let path = path(family, device, key);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The audit's read-only check against the real kernel: a thread in a
    /// network namespace of its own (its `lo` stands in for a device).
    #[test]
    fn in_place_sees_drift_and_the_write_restores_it() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("SKIPPED: in_place_sees_drift_and_the_write_restores_it needs root");
            return;
        }
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let arp_ignore = "/proc/sys/net/ipv4/conf/lo/arp_ignore";
            fs::write(arp_ignore, "0").unwrap();
            assert!(
                !sysctls_in_place("lo"),
                "a drifted sysctl was taken as in place"
            );
            let changed = write_sysctls("lo").unwrap();
            assert!(changed >= 1, "nothing written");
            assert!(sysctls_in_place("lo"), "still drifted after the write");
            assert_eq!(fs::read_to_string(arp_ignore).unwrap().trim(), "1");
            assert_eq!(write_sysctls("lo").unwrap(), 0);
            // a name that would walk out of /proc/sys is never read
            assert!(sysctls_in_place("../../kernel"));
        })
        .join()
        .unwrap();
    }
}
