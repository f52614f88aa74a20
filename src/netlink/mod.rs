//! The southbound: the only module that speaks rtnetlink.
//!
//! - [`socket`]: a blocking request socket (one request in flight, acked, with a
//!   timeout) and the framing shared with the observer.
//! - [`decode`]: netlink messages → [`KernelEvent`]s (untrusted input: malformed
//!   messages are skipped and counted, never a panic).
//! - [`observer`]: a listen-only socket with a large receive buffer, subscribed
//!   before the initial dump; an overrun (ENOBUFS) asks for a full re-dump.
//! - [`executor`]: carries out core [`Action`]s.
//!
//! rtnetlink does the kernel work inside `sendmsg`, so a request/ack round trip
//! per change is the same cost model as `ip -batch`, which is the floor dagw's
//! benchmarks compare against.
//!
//! [`KernelEvent`]: crate::core::kernel::KernelEvent
//! [`Action`]: crate::core::action::Action

pub mod decode;
pub mod executor;
pub mod observer;
pub mod socket;

use std::io;

/// A netlink failure an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("the kernel refused {what}: {source}")]
    Refused {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("no answer from the kernel to {what} within {timeout_ms} ms")]
    Timeout { what: String, timeout_ms: u64 },
    #[error("malformed netlink message: {0}")]
    Malformed(String),
    #[error("sysctl {path}: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl NetlinkError {
    /// The errno the kernel answered with, when it refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Refused { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

// rtnetlink multicast groups (linux/rtnetlink.h, enum rtnetlink_groups).
pub const RTNLGRP_LINK: u32 = 1;
pub const RTNLGRP_NEIGH: u32 = 3;
pub const RTNLGRP_IPV4_IFADDR: u32 = 5;
pub const RTNLGRP_IPV6_IFADDR: u32 = 9;
