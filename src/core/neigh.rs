//! ARP/ND follows the host (DESIGN.md §4, the ARP/ND rule; docs/sync.md
//! "Ownership"). Pure: the daemon asks, for one host (a gateway and an IP),
//! what the kernel should hold, and carries the answer out.
//!
//! Why it is needed: in a dual-active pair a host's ARP replies and neighbour
//! advertisements go to the virtual MAC, which whichever switch the host sits
//! behind consumes. The other switch can never resolve that host by itself;
//! only its peer's table can give it the entry. And a peer's entry installed
//! as an ordinary (REACHABLE) one is probed away by the kernel within half a
//! minute of use, because the host answers those probes to the vMAC too.
//!
//! The rule, in the seed's spirit ("ARP/ND entries are synchronised between
//! the M-LAG peers so that either can forward to the server"):
//!
//! 1. **The switch the host last answered is its owner.** The owner holds the
//!    kernel's own entry (the kernel keeps verifying it) and advertises it to
//!    the peer over the sync channel.
//! 2. **A host whose MAC the bridge learns on a local member port is local:**
//!    the kernel gets its own entry back (a pinned copy of the peer's is
//!    replaced by an ordinary STALE entry, which the kernel then verifies),
//!    and we advertise it.
//! 3. **A switch never holds an address as INCOMPLETE, FAILED or absent while
//!    its peer holds it usable:** the peer's entry is installed *pinned*
//!    (`noarp extern_learn`: the kernel neither probes nor ages it; dagw alone
//!    ends its life) as soon as our own is unusable, and it replaces our own
//!    entry when the peer's is the more recent confirmation — the peer
//!    advertised the host while its MAC is not behind one of our members.
//! 4. **No ghosts:** a pinned copy goes as soon as its owner withdraws it
//!    (the owner's entry failed, or the owner lost it); an owned entry nobody
//!    confirmed for `neighbour_aging` is probed by the kernel ([`aged`]) and,
//!    if the host does not answer, fails — and is withdrawn from the peer.

use super::mac::Mac;

/// What the kernel holds usable for one host on one gateway device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Nothing usable: absent, INCOMPLETE or FAILED.
    Nothing,
    /// The kernel's own entry (learned here, verified by the kernel).
    Own(Mac),
    /// A pinned copy of the peer's entry (`noarp extern_learn`).
    Pinned(Mac),
}

/// What to make the kernel hold instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighAction {
    /// Install the peer's entry pinned (`noarp extern_learn`), replacing
    /// whatever is there.
    Pin(Mac),
    /// Give the kernel its own entry with this MAC (`stale`, no
    /// `extern_learn`): the kernel verifies it on first use.
    Own(Mac),
    /// Remove the pinned copy.
    Unpin,
    /// Make the kernel ask the host now (`nud probe`): an answer makes the
    /// entry REACHABLE, silence FAILED (rule 4).
    Probe,
}

/// News for the peer over the sync channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncNews {
    /// The host is ours (rule 1): tell the peer its MAC.
    Advertise(Mac),
    /// We no longer hold the host as ours.
    Withdraw,
}

/// One host (a gateway and an IP) as the rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// What the kernel holds usable.
    pub held: Held,
    /// The peer's advertised entry.
    pub peer: Option<Mac>,
    /// Whether the peer's table is complete (a bulk of the peer's has been
    /// received since dagw started): only then does a missing entry mean
    /// the peer does not hold the host. A restarted dagw keeps its pinned
    /// copies until the peer's first bulk says otherwise (no flap).
    pub peer_complete: bool,
    /// When the host last confirmed our own entry (seconds, daemon clock).
    pub confirmed_s: u32,
}

/// What happened to one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEvent {
    /// The kernel's entry changed; `reachable`: the host just confirmed it.
    Kernel { held: Held, reachable: bool },
    /// The peer advertised the host (`Some`) or withdrew it (`None`).
    Peer(Option<Mac>),
    /// The bridge learned the host's MAC on another port, or forgot it;
    /// `on_member`: it is now behind one of our members (a move to us).
    Learned { on_member: bool },
    /// Look again at the current state (the daemon, after a batch of
    /// kernel events or of the peer's changes: the decision of each host's
    /// last event).
    Settle,
    /// The periodic aging sweep (rule 4).
    Sweep,
}

/// What to do about one event: news for the peer, a change to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostEffects {
    pub sync: Option<SyncNews>,
    pub kernel: Option<NeighAction>,
}

impl Host {
    pub fn new(held: Held, peer: Option<Mac>, peer_complete: bool, confirmed_s: u32) -> Host {
        Host {
            held,
            peer,
            peer_complete,
            confirmed_s,
        }
    }

    /// One event in, its effects out. `behind_member` as for [`decide`];
    /// `now_s` and `aging_s` (`neighbour_aging`) in seconds.
    pub fn handle(
        &mut self,
        ev: HostEvent,
        now_s: u32,
        aging_s: u32,
        behind_member: impl Fn(Mac) -> bool,
    ) -> HostEffects {
        let mut out = HostEffects::default();
        match ev {
            HostEvent::Kernel { held, reachable } => {
                out.sync = match held {
                    Held::Own(mac) if advertise(self.held, held) => Some(SyncNews::Advertise(mac)),
                    _ if withdraw(self.held, held) => Some(SyncNews::Withdraw),
                    _ => None,
                };
                if reachable || held != self.held {
                    self.confirmed_s = now_s;
                }
                self.held = held;
            }
            HostEvent::Peer(p) => self.peer = p,
            HostEvent::Learned { on_member } => {
                out.kernel = self.decide(behind_member, on_member);
                return out;
            }
            HostEvent::Settle => {}
            HostEvent::Sweep => {
                if aged(self.held, self.confirmed_s, now_s, aging_s) {
                    out.kernel = Some(NeighAction::Probe);
                    return out;
                }
            }
        }
        out.kernel = self.decide(behind_member, false);
        out
    }

    fn decide(
        &self,
        behind_member: impl Fn(Mac) -> bool,
        just_learned: bool,
    ) -> Option<NeighAction> {
        match decide(self.held, self.peer, behind_member, just_learned) {
            // the peer's silence means nothing before its first bulk
            Some(NeighAction::Unpin) if !self.peer_complete => None,
            d => d,
        }
    }
}

/// The decision for one host. `peer`: the peer's advertised entry, if any.
/// `behind_member`: whether the bridge has learned this MAC on one of our
/// M-LAG member ports of the gateway's bridge. `just_learned`: the decision
/// is for the bridge having just learned the host's MAC on such a port (a
/// move to us: rule 2 acts on that moment only — a host seen on our members
/// all along whose own resolution fails, as with a LACP bond whose replies
/// hash to the other switch, keeps the peer's pinned entry instead of
/// being re-resolved in a loop).
///
/// Idempotent: when the kernel already holds what the rule asks for, the
/// answer is `None`, so the kernel's echo of an action settles.
pub fn decide(
    held: Held,
    peer: Option<Mac>,
    behind_member: impl Fn(Mac) -> bool,
    just_learned: bool,
) -> Option<NeighAction> {
    if just_learned {
        // Rule 2: the host moved to us; the kernel gets its own entry (a
        // pinned copy, or nothing, gives way), which the kernel verifies.
        let local = match held {
            Held::Own(m) if behind_member(m) => return None,
            Held::Pinned(m) if behind_member(m) => Some(m),
            _ => peer.filter(|p| behind_member(*p)),
        };
        if let Some(mac) = local {
            return Some(NeighAction::Own(mac));
        }
    }
    match (held, peer) {
        // Rule 1: our own entry of a host behind our members stays,
        // whatever the peer says.
        (Held::Own(m), _) if behind_member(m) => None,
        (Held::Nothing, None) | (Held::Own(_), None) => None,
        // Rule 3: our own attempt failed or never was, or the peer confirmed
        // the host more recently (its advertisement is news, and the host is
        // not behind our members): the peer's entry, pinned.
        (Held::Nothing | Held::Own(_), Some(p)) => Some(NeighAction::Pin(p)),
        (Held::Pinned(m), Some(p)) if m == p => None,
        // the owner's entry moved to another MAC
        (Held::Pinned(_), Some(p)) => Some(NeighAction::Pin(p)),
        // Rule 4: the owner withdrew it; no one vouches for it any more.
        (Held::Pinned(_), None) => Some(NeighAction::Unpin),
    }
}

/// Rule 4: an owned entry nobody confirmed for `aging_s` seconds is to be
/// probed (the kernel asks the host; no answer makes it FAILED, which
/// withdraws it from the peer). `confirmed_s` and `now_s` are seconds on the
/// daemon's monotonic clock.
pub fn aged(held: Held, confirmed_s: u32, now_s: u32, aging_s: u32) -> bool {
    matches!(held, Held::Own(_)) && now_s.saturating_sub(confirmed_s) >= aging_s
}

/// Whether a local entry's change is news for the peer (rule 1: the owner
/// advertises; state ageing, REACHABLE → STALE, is not news): an entry of
/// ours that is new, newly ours (was pinned) or has a new MAC.
pub fn advertise(before: Held, after: Held) -> bool {
    match after {
        Held::Own(mac) => before != Held::Own(mac),
        _ => false,
    }
}

/// Whether the peer must be told we no longer hold the host as ours: our own
/// entry failed, vanished or gave way to the peer's pinned copy.
pub fn withdraw(before: Held, after: Held) -> bool {
    matches!(before, Held::Own(_)) && !matches!(after, Held::Own(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M1: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const M2: Mac = Mac([2, 0, 0, 0, 0, 2]);
    fn local(_: Mac) -> bool {
        true
    }
    fn remote(_: Mac) -> bool {
        false
    }

    fn decide(held: Held, peer: Option<Mac>, behind: fn(Mac) -> bool) -> Option<NeighAction> {
        // rule 2 acts on a move to us; everything else on any event
        super::decide(held, peer, behind, behind(Mac::default()))
    }

    #[test]
    fn owner_keeps_its_entry_of_a_local_host() {
        assert_eq!(decide(Held::Own(M1), Some(M1), local), None);
        assert_eq!(decide(Held::Own(M1), Some(M2), local), None);
        assert_eq!(decide(Held::Own(M1), None, remote), None);
    }

    #[test]
    fn failed_or_absent_entry_takes_the_peers_pinned() {
        assert_eq!(
            decide(Held::Nothing, Some(M1), remote),
            Some(NeighAction::Pin(M1))
        );
        assert_eq!(decide(Held::Nothing, None, remote), None);
    }

    #[test]
    fn peers_newer_confirmation_replaces_our_entry() {
        assert_eq!(
            decide(Held::Own(M1), Some(M1), remote),
            Some(NeighAction::Pin(M1))
        );
        assert_eq!(
            decide(Held::Own(M1), Some(M2), remote),
            Some(NeighAction::Pin(M2))
        );
    }

    #[test]
    fn host_learned_on_a_member_gets_its_own_entry_back() {
        assert_eq!(
            decide(Held::Pinned(M1), Some(M1), local),
            Some(NeighAction::Own(M1))
        );
        assert_eq!(
            decide(Held::Pinned(M1), None, local),
            Some(NeighAction::Own(M1))
        );
        assert_eq!(
            decide(Held::Nothing, Some(M1), local),
            Some(NeighAction::Own(M1))
        );
    }

    #[test]
    fn pinned_copy_follows_the_owner_and_dies_with_it() {
        assert_eq!(decide(Held::Pinned(M1), Some(M1), remote), None);
        assert_eq!(
            decide(Held::Pinned(M1), Some(M2), remote),
            Some(NeighAction::Pin(M2))
        );
        assert_eq!(
            decide(Held::Pinned(M1), None, remote),
            Some(NeighAction::Unpin)
        );
    }

    #[test]
    fn decisions_settle_on_their_own_echo() {
        // whatever the inputs, applying the action reaches a fixed point
        for held in [
            Held::Nothing,
            Held::Own(M1),
            Held::Pinned(M1),
            Held::Pinned(M2),
        ] {
            for peer in [None, Some(M1), Some(M2)] {
                for behind in [local as fn(Mac) -> bool, remote] {
                    let mut h = held;
                    // the move, then the kernel's echoes as ordinary events
                    let mut just_learned = behind(M1);
                    for _ in 0..3 {
                        match super::decide(h, peer, behind, just_learned) {
                            None => break,
                            Some(NeighAction::Pin(m)) => h = Held::Pinned(m),
                            Some(NeighAction::Own(m)) => h = Held::Own(m),
                            Some(NeighAction::Unpin) => h = Held::Nothing,
                            Some(NeighAction::Probe) => unreachable!("decide never probes"),
                        }
                        just_learned = false;
                    }
                    assert_eq!(
                        super::decide(h, peer, behind, false),
                        None,
                        "{held:?} {peer:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_local_host_whose_resolution_fails_keeps_the_peers_entry() {
        // LACP: the host sits behind both switches' members, its replies
        // reach the peer only. No re-resolve loop: pinned stays pinned.
        assert_eq!(
            super::decide(Held::Nothing, Some(M1), local, false),
            Some(NeighAction::Pin(M1))
        );
        assert_eq!(
            super::decide(Held::Pinned(M1), Some(M1), local, false),
            None
        );
        // the owner withdrew it: unpinned, the kernel resolves it itself
        assert_eq!(
            super::decide(Held::Pinned(M1), None, local, false),
            Some(NeighAction::Unpin)
        );
    }

    #[test]
    fn only_owned_entries_age() {
        assert!(aged(Held::Own(M1), 10, 10 + 1200, 1200));
        assert!(!aged(Held::Own(M1), 10, 10 + 1199, 1200));
        assert!(!aged(Held::Pinned(M1), 0, 5000, 1200));
        assert!(!aged(Held::Nothing, 0, 5000, 1200));
    }

    #[test]
    fn news_for_the_peer() {
        assert!(advertise(Held::Nothing, Held::Own(M1)));
        assert!(advertise(Held::Pinned(M1), Held::Own(M1)));
        assert!(advertise(Held::Own(M1), Held::Own(M2)));
        assert!(!advertise(Held::Own(M1), Held::Own(M1)));
        assert!(!advertise(Held::Nothing, Held::Pinned(M1)));
        assert!(withdraw(Held::Own(M1), Held::Pinned(M1)));
        assert!(withdraw(Held::Own(M1), Held::Nothing));
        assert!(!withdraw(Held::Pinned(M1), Held::Nothing));
    }
}
