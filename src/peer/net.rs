//! Sockets on `[peer] local`, bound even before that address is configured
//! (IP_FREEBIND): the heartbeat and the sync channel start as soon as it
//! appears, instead of failing the daemon's start.
//!
//! The heartbeat's UDP socket does not set SO_REUSEADDR: with it, any local
//! process setting it too could bind the same address and port and take the
//! peer's heartbeats. The TCP listener keeps it (on Linux it only allows a
//! restart to bind past connections in TIME_WAIT, never a second listener).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, socket,
    sockopt,
};

fn freebind(addr: SocketAddr, ty: SockType, reuse_addr: bool) -> std::io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd: OwnedFd = socket(
        family,
        ty,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    if reuse_addr {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    // IP_FREEBIND applies to IPv6 sockets too (the flag is on the inet socket)
    setsockopt(&fd, sockopt::IpFreebind, &true)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )?;
    Ok(fd)
}

/// The heartbeat's UDP socket.
pub fn udp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(freebind(
        addr,
        SockType::Datagram,
        false,
    )?))
}

/// The sync channel's listening TCP socket.
pub fn tcp_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let fd = freebind(addr, SockType::Stream, true)?;
    listen(&fd, Backlog::new(4).map_err(std::io::Error::from)?)?;
    tokio::net::TcpListener::from_std(std::net::TcpListener::from(fd))
}
