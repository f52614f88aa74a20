//! The receiver's view of the peer's neighbour entries, kept from the
//! [`Inbound`] messages of successive sessions.
//!
//! A bulk (BulkStart .. BulkEnd) replaces the view: its entries are applied
//! as they arrive, and at BulkEnd every entry the bulk did not carry is
//! removed. So a reconnect leaves neither duplicates nor leftovers, and the
//! entries stay in place (no flap) while the new bulk streams in. Outside a
//! bulk, Entries add or change and Deletes remove. A session that ends in
//! the middle of a bulk leaves the view as it was plus what arrived; the next
//! session's bulk corrects it.
//!
//! The peer is not trusted with this switch's memory or kernel (issue 11):
//! an entry is admitted only for a gateway this switch has, for an address
//! inside that gateway's own prefixes (and fe80::/64 for ND), and within the
//! caps `[peer] max_synced_per_gateway` and `max_synced`. What is refused is
//! counted by reason, never stored.

use std::collections::HashMap;
use std::net::IpAddr;

use super::session::Inbound;
use super::{NeighEntry, NeighKey};

/// What to do to the local copy of the peer's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new entry, or a known one with a new MAC.
    Upsert(NeighEntry),
    Remove(NeighKey),
}

/// An IP prefix of a gateway (address and length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(p), IpAddr::V4(a)) if self.len <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(p) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(p), IpAddr::V6(a)) if self.len <= 128 => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(p) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// fe80::/64: ND entries of link-local neighbours are on every gateway.
const LINK_LOCAL: Prefix = Prefix {
    addr: IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
    len: 64,
};

/// What the peer may install here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// (gateway kind, id) → its prefixes (and whether it has IPv6).
    pub gateways: HashMap<(u8, u32), (Vec<Prefix>, bool)>,
    pub max_total: u32,
    pub max_per_gateway: u32,
}

impl Admission {
    /// Whether `key`'s address belongs to one of our gateways' prefixes.
    fn in_prefix(&self, key: &NeighKey) -> bool {
        self.gateways
            .get(&(key.gw_kind, key.gw_id))
            .is_some_and(|(prefixes, ipv6)| {
                prefixes.iter().any(|p| p.contains(key.ip)) || *ipv6 && LINK_LOCAL.contains(key.ip)
            })
    }
}

/// Entries refused, by reason (status `peer.sync.refused`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused {
    /// Not inside a prefix of one of our gateways (or for a gateway this
    /// switch does not have).
    pub outside_prefix: u64,
    /// Over `max_synced_per_gateway` or `max_synced`.
    pub over_limit: u64,
}

impl Refused {
    pub fn total(&self) -> u64 {
        self.outside_prefix + self.over_limit
    }
}

#[derive(Debug, Default)]
pub struct PeerTable {
    /// MAC and the bulk generation that last carried the entry (marking the
    /// entries in place costs 4 bytes each; a set of seen keys would double
    /// the memory at 100k entries).
    entries: HashMap<NeighKey, ([u8; 6], u32)>,
    generation: u32,
    in_bulk: bool,
    /// With no admission set (`max_total` 0) nothing is admitted.
    admission: Admission,
    per_gateway: HashMap<(u8, u32), u32>,
    pub refused: Refused,
}

impl PeerTable {
    pub fn new(admission: Admission) -> PeerTable {
        PeerTable {
            admission,
            ..PeerTable::default()
        }
    }

    /// New rules (a reload): entries they no longer admit go (appended to
    /// `changes` as removals). Counters are kept.
    pub fn set_admission(&mut self, admission: Admission, changes: &mut Vec<Change>) {
        self.admission = admission;
        let keys: Vec<NeighKey> = self.entries.keys().copied().collect();
        let mut kept: HashMap<(u8, u32), u32> = HashMap::new();
        let mut total = 0u32;
        for k in keys {
            let gw = (k.gw_kind, k.gw_id);
            let n = kept.entry(gw).or_default();
            let ok = self.admission.in_prefix(&k)
                && *n < self.admission.max_per_gateway
                && total < self.admission.max_total;
            if ok {
                *n += 1;
                total += 1;
            } else {
                self.entries.remove(&k);
                changes.push(Change::Remove(k));
            }
        }
        kept.retain(|_, n| *n > 0);
        self.per_gateway = kept;
    }

    /// Admit a new key, counting it; or count the refusal.
    fn admit(&mut self, key: &NeighKey) -> bool {
        if !self.admission.in_prefix(key) {
            self.refused.outside_prefix += 1;
            return false;
        }
        let gw = (key.gw_kind, key.gw_id);
        let n = self.per_gateway.get(&gw).copied().unwrap_or(0);
        if n >= self.admission.max_per_gateway
            || self.entries.len() as u64 >= u64::from(self.admission.max_total)
        {
            self.refused.over_limit += 1;
            return false;
        }
        self.per_gateway.insert(gw, n + 1);
        true
    }

    fn forget(&mut self, key: &NeighKey) {
        let gw = (key.gw_kind, key.gw_id);
        if let Some(n) = self.per_gateway.get_mut(&gw) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_gateway.remove(&gw);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &NeighKey) -> Option<[u8; 6]> {
        self.entries.get(key).map(|(mac, _)| *mac)
    }

    pub fn in_bulk(&self) -> bool {
        self.in_bulk
    }

    pub fn iter(&self) -> impl Iterator<Item = NeighEntry> + '_ {
        self.entries.iter().map(|(k, (mac, _))| NeighEntry {
            gw_kind: k.gw_kind,
            gw_id: k.gw_id,
            ip: k.ip,
            mac: *mac,
        })
    }

    /// Apply one message; the resulting changes are appended to `changes`
    /// (nothing for an entry that is already known as it is).
    pub fn apply(&mut self, msg: &Inbound, changes: &mut Vec<Change>) {
        match msg {
            Inbound::Established { .. } | Inbound::Closed(_) => self.in_bulk = false,
            // the gateways' exact values are the daemon's (core::consistency)
            Inbound::Gateways { .. } => {}
            Inbound::BulkStart { .. } => {
                self.in_bulk = true;
                self.generation = self.generation.wrapping_add(1);
            }
            Inbound::Entries(v) => {
                let generation = self.generation;
                for e in v {
                    let key = e.key();
                    // a known entry (a new MAC) was admitted already
                    if !self.entries.contains_key(&key) && !self.admit(&key) {
                        continue;
                    }
                    let old = self.entries.insert(key, (e.mac, generation));
                    if old.map(|(mac, _)| mac) != Some(e.mac) {
                        changes.push(Change::Upsert(*e));
                    }
                }
            }
            Inbound::Deletes(v) => {
                for k in v {
                    if self.entries.remove(k).is_some() {
                        self.forget(k);
                        changes.push(Change::Remove(*k));
                    }
                }
            }
            Inbound::BulkEnd { .. } => {
                if std::mem::take(&mut self.in_bulk) {
                    let current = self.generation;
                    let mut gone = Vec::new();
                    self.entries.retain(|k, (_, g)| {
                        let keep = *g == current;
                        if !keep {
                            gone.push(*k);
                        }
                        keep
                    });
                    for k in gone {
                        self.forget(&k);
                        changes.push(Change::Remove(k));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn e(i: u8, mac: u8) -> NeighEntry {
        NeighEntry {
            gw_kind: 1,
            gw_id: 10,
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)),
            mac: [2, 0, 0, 0, 0, mac],
        }
    }

    fn admission(max_total: u32, max_per_gateway: u32) -> Admission {
        let mut gateways = HashMap::new();
        gateways.insert(
            (1, 10),
            (
                vec![Prefix {
                    addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                    len: 24,
                }],
                true,
            ),
        );
        Admission {
            gateways,
            max_total,
            max_per_gateway,
        }
    }

    #[test]
    fn bulk_replaces_incrementals_apply() {
        let mut t = PeerTable::new(admission(100, 100));
        let mut ch = vec![];
        for m in [
            Inbound::Established {
                peer_name: "b".into(),
            },
            Inbound::BulkStart { epoch: 1 },
            Inbound::Entries(vec![e(1, 1), e(2, 2), e(3, 3)]),
            Inbound::BulkEnd { total: 3 },
            Inbound::Entries(vec![e(4, 4), e(1, 9)]),
            Inbound::Deletes(vec![e(2, 0).key()]),
        ] {
            t.apply(&m, &mut ch);
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(&e(1, 0).key()), Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(ch.len(), 6);

        // reconnect: a bulk without 3 and 4, with 1 unchanged, 5 new
        ch.clear();
        t.apply(&Inbound::Closed("reset".into()), &mut ch);
        t.apply(&Inbound::BulkStart { epoch: 1 }, &mut ch);
        t.apply(&Inbound::Entries(vec![e(1, 9), e(5, 5)]), &mut ch);
        assert_eq!(t.len(), 4, "old entries stay during the bulk");
        t.apply(&Inbound::BulkEnd { total: 2 }, &mut ch);
        assert_eq!(t.len(), 2);
        let mut removed: Vec<_> = ch
            .iter()
            .filter_map(|c| match c {
                Change::Remove(k) => Some(*k),
                _ => None,
            })
            .collect();
        removed.sort();
        assert_eq!(removed, vec![e(3, 0).key(), e(4, 0).key()]);
        assert!(ch.contains(&Change::Upsert(e(5, 5))));
        assert!(!ch.contains(&Change::Upsert(e(1, 9))), "no duplicate");
    }

    #[test]
    fn only_our_gateways_prefixes_are_admitted() {
        let mut t = PeerTable::new(admission(100, 100));
        let mut ch = vec![];
        let mut other_gw = e(5, 5);
        other_gw.gw_id = 11;
        let outside = NeighEntry {
            ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            ..e(0, 1)
        };
        let ll = NeighEntry {
            ip: "fe80::1".parse().unwrap(),
            ..e(0, 2)
        };
        let v6_outside = NeighEntry {
            ip: "2001:db8::7".parse().unwrap(),
            ..e(0, 3)
        };
        t.apply(
            &Inbound::Entries(vec![e(1, 1), other_gw, outside, ll, v6_outside]),
            &mut ch,
        );
        assert_eq!(t.len(), 2, "192.0.2.1 and fe80::1 only");
        assert_eq!(t.refused.outside_prefix, 3);
        assert_eq!(ch.len(), 2);
    }

    #[test]
    fn caps_per_gateway_and_in_all_hold() {
        let mut t = PeerTable::new(admission(100, 3));
        let mut ch = vec![];
        t.apply(
            &Inbound::Entries((1..=10).map(|i| e(i, i)).collect()),
            &mut ch,
        );
        assert_eq!(t.len(), 3);
        assert_eq!(t.refused.over_limit, 7);
        // a MAC change of an admitted entry is not a new entry
        t.apply(&Inbound::Entries(vec![e(1, 99)]), &mut ch);
        assert_eq!(t.refused.over_limit, 7);
        // a delete frees a slot
        t.apply(&Inbound::Deletes(vec![e(1, 0).key()]), &mut ch);
        t.apply(&Inbound::Entries(vec![e(4, 4)]), &mut ch);
        assert_eq!(t.len(), 3);
        assert_eq!(t.refused.over_limit, 7);
        let mut t = PeerTable::new(admission(2, 3));
        t.apply(
            &Inbound::Entries((1..=10).map(|i| e(i, i)).collect()),
            &mut ch,
        );
        assert_eq!(t.len(), 2, "the total cap");
        // tighter rules on reload drop what they no longer admit
        let mut removed = vec![];
        t.set_admission(admission(1, 1), &mut removed);
        assert_eq!(t.len(), 1);
        assert_eq!(removed.len(), 1);
        t.set_admission(Admission::default(), &mut removed);
        assert_eq!(t.len(), 0, "a gateway this switch no longer has");
    }
}
