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

use std::collections::HashMap;

use super::session::Inbound;
use super::{NeighEntry, NeighKey};

/// What to do to the local copy of the peer's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new entry, or a known one with a new MAC.
    Upsert(NeighEntry),
    Remove(NeighKey),
}

#[derive(Debug, Default)]
pub struct PeerTable {
    /// MAC and the bulk generation that last carried the entry (marking the
    /// entries in place costs 4 bytes each; a set of seen keys would double
    /// the memory at 100k entries).
    entries: HashMap<NeighKey, ([u8; 6], u32)>,
    generation: u32,
    in_bulk: bool,
}

impl PeerTable {
    pub fn new() -> PeerTable {
        PeerTable::default()
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
            Inbound::BulkStart { .. } => {
                self.in_bulk = true;
                self.generation = self.generation.wrapping_add(1);
            }
            Inbound::Entries(v) => {
                let generation = self.generation;
                for e in v {
                    let old = self.entries.insert(e.key(), (e.mac, generation));
                    if old.map(|(mac, _)| mac) != Some(e.mac) {
                        changes.push(Change::Upsert(*e));
                    }
                }
            }
            Inbound::Deletes(v) => {
                for k in v {
                    if self.entries.remove(k).is_some() {
                        changes.push(Change::Remove(*k));
                    }
                }
            }
            Inbound::BulkEnd { .. } => {
                if std::mem::take(&mut self.in_bulk) {
                    let current = self.generation;
                    self.entries.retain(|k, (_, g)| {
                        let keep = *g == current;
                        if !keep {
                            changes.push(Change::Remove(*k));
                        }
                        keep
                    });
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

    #[test]
    fn bulk_replaces_incrementals_apply() {
        let mut t = PeerTable::new();
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
}
