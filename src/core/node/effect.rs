//! What goes into the node and what comes out of it.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::{Config, Peer};
use crate::core::action::{Action, Dumped, KernelError, Outcome, Work};
use crate::core::heartbeat::Heartbeat;
use crate::core::ifname::IfName;
use crate::core::kernel::{KernelEvent, KernelView};
use crate::core::member::MemberRecord;
use crate::sync::{Inbound, Outbound};
use crate::telemetry::Notice;

/// What the node learns at start-up.
pub struct Start {
    /// The kernel as dumped.
    pub view: KernelView,
    /// Bridge-learned MACs in the dump.
    pub learned: Vec<KernelEvent>,
    /// The first start since the switch booted (its restart, in the seed's
    /// words): members are held for `member_up_delay`.
    pub first_start: bool,
    /// `dagw drain` was in force when dagw stopped.
    pub drained: bool,
    /// Members' records as saved, with what was left of a hold.
    pub members: HashMap<String, (MemberRecord, Option<Duration>)>,
}

/// A member's record to keep across restarts, with what is left of its hold.
pub type MemberSave = (String, MemberRecord, Option<Duration>);

/// What a kernel job was for: its report is routed by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// One round of a gateway's plan.
    Gateway(IfName),
    /// A member's hold or release.
    Member(String),
    /// A device or entry no gateway needs any more: a barrier (plans wait
    /// for it, so nothing new is made beside what is being removed).
    Stale { name: String, what: String },
    /// What a reload's old settings left behind: a barrier too.
    Cleanup { what: String },
    /// The periodic sysctl audit of one gateway.
    Audit(IfName),
    /// Nothing to do with the result (an SVI's sysctls, a former member's
    /// release, neighbour batches, a re-dump).
    Quiet,
}

/// What came of a plan.
pub struct KernelReport {
    pub purpose: Purpose,
    pub actions: Vec<Action>,
    /// The first `outcomes.len()` actions were carried out.
    pub outcomes: Vec<Outcome>,
    /// Why the next one was not.
    pub error: Option<KernelError>,
}

pub enum Event {
    /// Kernel changes; `drained`: the queue is empty after them.
    Kernel {
        events: Vec<KernelEvent>,
        drained: bool,
    },
    /// The kernel's event queue overran: the node asks for a re-dump.
    Overrun,
    /// A plan's result.
    Report(KernelReport),
    /// A neighbour batch's result.
    Neighbours {
        refused: usize,
    },
    /// A re-dump's result.
    Dumped(Result<Box<Dumped>, KernelError>),
    /// A deadline the node gave (`Node::next_deadline`) passed.
    Timer,
    /// The periodic audit (sysctls have no events; aged neighbours).
    Audit,
    /// A validated configuration to apply whole; `keys_changed`: the peer
    /// key files now hold other keys than the running ones.
    Config {
        config: Box<Config>,
        keys_changed: bool,
    },
    /// `dagw drain` (true) / `dagw resume` (false), already recorded.
    Drain(bool),
    /// An authenticated, fresh heartbeat page.
    Heartbeat {
        heartbeat: Box<Heartbeat>,
        rtt: Option<Duration>,
        /// The peer authenticated with the current key for the first time
        /// while a previous key was accepted.
        previous_key_retired: bool,
    },
    /// A sync session with the peer is up (the daemon holds its sender).
    SyncSession,
    SyncMessage(Inbound),
    /// The session could not take what was sent (the peer does not keep
    /// up): the daemon reset it.
    SyncReset,
    /// The daemon stops: nothing new is planned.
    Stop,
}

#[derive(Debug)]
pub enum Effect {
    Kernel(Purpose, Work),
    Notice(Notice),
    SaveMembers(Vec<MemberSave>),
    /// Send a heartbeat round now rather than at the next tick.
    HeartbeatNow,
    /// The peer went down: nothing it sent before may bring it back (a
    /// fresh epoch of ours).
    HeartbeatRestart,
    /// A new peer, or a new address or port: a new relationship (socket,
    /// keys, epoch).
    PeerStart(Box<Peer>),
    PeerStop,
    /// Start (or restart) the sync channel with the configured peer.
    SyncStart,
    SyncStop,
    /// Give the sync channel the current keys; its live session ends.
    SyncRekey,
    SyncSend(Outbound),
}
