//! The ARP/ND sync channel (docs/sync.md): a TCP connection between the two
//! M-LAG peers that carries the neighbour entries (ARP for IPv4, ND for IPv6)
//! each side learned on its gateway devices, so that after a restart or a
//! peer-link recovery the peer's table catches up.
//!
//! - [`frame`]: the authenticated, length-bounded frame format and an
//!   incremental decoder (pure, no I/O).
//! - [`handshake`]: mutual challenge–response and per-session keys (pure).
//! - [`table`]: the receiver's view of the peer's entries (bulk replaces).
//! - [`session`]: the tokio glue (handshake, reader, writer, keepalives).

pub mod frame;
pub mod handshake;
pub mod session;
pub mod table;

use std::net::IpAddr;

pub use frame::{Frame, FrameReader, FrameWriter};
pub use handshake::{Established, Handshake, random_nonce};
pub use session::{Inbound, Outbound, Role, accept_from, connect, is_client, run_session};
pub use table::{Admission, Change, PeerTable, Prefix, Refused};

/// Gateway kinds, as in the heartbeat.
pub const GW_VLANIF: u8 = 1;
pub const GW_VBDIF: u8 = 2;

/// A neighbour (ARP or ND) entry learned on a gateway device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighEntry {
    /// 1 vlanif, 2 vbdif.
    pub gw_kind: u8,
    pub gw_id: u32,
    pub ip: IpAddr,
    pub mac: [u8; 6],
}

/// What identifies a neighbour entry (for deletes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeighKey {
    pub gw_kind: u8,
    pub gw_id: u32,
    pub ip: IpAddr,
}

impl NeighEntry {
    pub fn key(&self) -> NeighKey {
        NeighKey {
            gw_kind: self.gw_kind,
            gw_id: self.gw_id,
            ip: self.ip,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sync channel I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("sync channel timeout: {0}")]
    Timeout(&'static str),
    #[error("sync channel authentication failed: {0}")]
    Auth(&'static str),
    #[error("sync channel framing: {0}")]
    Frame(String),
    #[error("sync channel protocol: {0}")]
    Protocol(String),
    #[error("sync channel closed: {0}")]
    Closed(&'static str),
}
