//! What a heartbeat says, as the peer machine reads it. The wire format
//! (`peer::codec`) encodes and decodes these; nothing here knows bytes.

use heapless::{String as HString, Vec as HVec};

/// Longest node name carried.
pub const MAX_NAME: usize = 64;
/// Gateways per packet; more are sent as several pages per interval. 32 keeps
/// a full page (header, name, 32 × 32-byte entries, MAC: ≤ 1186 bytes; 1211
/// with extensions 1 and 2) inside one 1500-byte Ethernet frame with IP and
/// UDP headers (no IP fragments), and its seal + admit cost under 2 µs (benches/heartbeat.rs).
pub const MAX_ENTRIES: usize = 32;
/// `direction`: sent by the side whose `[peer] local` is the lower address.
pub const FROM_LOWER: u8 = 1;
/// `direction`: sent by the side whose `[peer] local` is the higher address.
pub const FROM_HIGHER: u8 = 2;

/// Node flag: `dagw drain` is in force (members held for maintenance).
pub const FLAG_DRAINED: u32 = 1;
/// Node flag: the sender is stopping cleanly (SIGTERM): its last packet.
pub const FLAG_GOODBYE: u32 = 1 << 1;

/// Extension 2: what the peers must agree on beyond the gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodePolicy {
    /// `[mlag] member_up_delay` in milliseconds (saturates at 2³² − 1).
    pub member_up_delay_ms: u32,
    /// `[up_delay] mode = "dynamic"`.
    pub dynamic: bool,
    /// `[up_delay] min` / `max` in milliseconds (saturate).
    pub min_ms: u32,
    pub max_ms: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GwEntry {
    /// 1 vlanif, 2 vbdif.
    pub kind: u8,
    /// 0 down, 1 holding, 2 up.
    pub state: u8,
    pub id: u32,
    pub mac: [u8; 6],
    pub up_delay_ms: u32,
    pub ipv4_digest: u32,
    pub ipv6_digest: u32,
    pub arp: u32,
    pub nd: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heartbeat {
    pub key_id: u8,
    pub epoch: u64,
    pub seq: u64,
    /// The peer's epoch, as heard in the packet echoed; 0 if none yet.
    pub echo_epoch: u64,
    pub echo_seq: u64,
    pub echo_hold_us: u32,
    /// [`FROM_LOWER`] or [`FROM_HIGHER`]: binds the packet to its sender.
    pub direction: u8,
    pub node: HString<MAX_NAME>,
    pub priority: u8,
    /// 0 ok, 1 degraded.
    pub health: u8,
    pub health_reasons: u32,
    /// 0 not configured, 1 up, 2 down.
    pub peer_link: u8,
    pub page: u16,
    pub pages: u16,
    pub gateways: HVec<GwEntry, MAX_ENTRIES>,
    /// [`FLAG_DRAINED`], [`FLAG_GOODBYE`] (extension 1; 0 when absent).
    pub flags: u32,
    /// Extension 2; None when absent (a sender that does not compare them).
    pub policy: Option<NodePolicy>,
}
