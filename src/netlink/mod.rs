//! The southbound: the only module that speaks rtnetlink.
//!
//! - [`socket`]: a blocking request socket (one request in flight, acked, with a
//!   timeout) and the framing shared with the observer.
//! - [`decode`]: netlink messages → [`KernelEvent`]s (untrusted input: malformed
//!   messages are skipped and counted, never a panic).
//! - [`observer`]: a listen-only socket with a large receive buffer, subscribed
//!   before the initial dump; an overrun (ENOBUFS) asks for a full re-dump.
//! - [`executor`]: carries out core [`Action`]s as a task of its own on the
//!   `rtnetlink` crate, many plans in flight; results come back as reports.
//! - [`bulk`]: neighbour batches and dumps on a thread with a blocking socket.
//! - [`messages`], [`sysctl`]: what the changes are made of.
//!
//! rtnetlink does the kernel work inside `sendmsg`, so the kernel's cost per
//! change is the same as `ip -batch`'s, which is the floor dagw's benchmarks
//! compare against; keeping many requests in flight removes the round trips.
//!
//! [`KernelEvent`]: crate::core::kernel::KernelEvent
//! [`Action`]: crate::core::action::Action

pub mod bulk;
pub mod decode;
pub mod executor;
pub mod messages;
pub mod observer;
pub mod socket;
pub mod sysctl;

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
