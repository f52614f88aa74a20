//! The listen-only rtnetlink socket: subscribed to links, addresses and
//! neighbours before the initial dump, with a large receive buffer. When the
//! kernel still overruns it (ENOBUFS), events were lost and the caller must
//! re-dump: [`Observed::Overrun`].

use std::io;
use std::os::fd::AsRawFd;

use netlink_packet_core::NetlinkPayload;
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};
use tokio::io::unix::AsyncFd;

use super::socket::split;
use super::{NetlinkError, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_LINK, RTNLGRP_NEIGH};
use crate::core::kernel::KernelEvent;

/// Kernel memory for queued events: a burst of 4094 gateways' creation or
/// 100k neighbour updates fits without an overrun in the common case.
const EVENT_RCVBUF: usize = 64 * 1024 * 1024;

pub enum Observed {
    /// `drained`: the queue was empty after these. Until it is, the events
    /// may be echoes of changes dagw already made (a device without its
    /// ownership alias yet, say): planning on them would undo dagw's own work.
    Events {
        events: Vec<KernelEvent>,
        drained: bool,
    },
    Overrun,
}

pub struct Observer {
    fd: AsyncFd<Socket>,
    buf: Vec<u8>,
    pub malformed: u64,
}

impl Observer {
    pub fn open() -> Result<Self, NetlinkError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        sock.bind_auto().map_err(NetlinkError::Socket)?;
        for g in [
            RTNLGRP_LINK,
            RTNLGRP_NEIGH,
            RTNLGRP_IPV4_IFADDR,
            RTNLGRP_IPV6_IFADDR,
        ] {
            sock.add_membership(g).map_err(NetlinkError::Socket)?;
        }
        // As root the buffer may exceed rmem_max; otherwise take what we get.
        if nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::RcvBufForce,
            &EVENT_RCVBUF,
        )
        .is_err()
        {
            let _ = sock.set_rx_buf_sz(EVENT_RCVBUF);
        }
        sock.set_non_blocking(true).map_err(NetlinkError::Socket)?;
        debug_assert!(sock.as_raw_fd() >= 0);
        // `AsyncFd::new` is deprecated for types that may not own their fd; a
        // netlink_sys::Socket owns it and closes it on drop, so it is sound here.
        #[allow(deprecated)]
        let fd = AsyncFd::new(sock);
        Ok(Observer {
            fd: fd.map_err(NetlinkError::Socket)?,
            buf: Vec::with_capacity(256 * 1024),
            malformed: 0,
        })
    }

    /// Wait for events, then drain what is queued (bounded per call so the
    /// event loop stays fair to timers and the control socket).
    pub async fn next(&mut self) -> Result<Observed, NetlinkError> {
        let mut events = Vec::new();
        loop {
            let mut drained = false;
            let mut guard = self.fd.readable().await.map_err(NetlinkError::Socket)?;
            for _ in 0..256 {
                self.buf.clear();
                match guard.get_inner().recv(&mut self.buf, libc::MSG_DONTWAIT) {
                    Ok(_) => {
                        for m in split(&self.buf) {
                            match m {
                                Ok(m) => {
                                    if let NetlinkPayload::InnerMessage(inner) = &m.payload
                                        && let Some(ev) = super::decode::decode(inner)
                                    {
                                        events.push(ev);
                                    }
                                }
                                Err(_) => self.malformed += 1,
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        drained = true;
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        return Ok(Observed::Overrun);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(NetlinkError::Socket(e)),
                }
            }
            if !events.is_empty() {
                return Ok(Observed::Events { events, drained });
            }
        }
    }
}
