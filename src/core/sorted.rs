//! A map kept as one sorted vector. The kernel mirror's keys (ifindex, and
//! ifindex + address) mostly arrive in ascending order, so inserts append;
//! lookups halve. One contiguous allocation, where a B-tree of the same
//! 8188 links is some 1400 nodes spread over the heap between short-lived
//! allocations, each node keeping its pages resident.

#[derive(Debug, Clone)]
pub struct SortedMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap(Vec::new())
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    fn find(&self, k: &K) -> Result<usize, usize> {
        self.0.binary_search_by(|(x, _)| x.cmp(k))
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        self.find(k).ok().map(|i| &self.0[i].1)
    }

    /// The previous value, if any.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        match self.find(&k) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, v)),
            Err(i) => {
                self.0.insert(i, (k, v));
                None
            }
        }
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        self.find(k).ok().map(|i| self.0.remove(i).1)
    }

    /// The entries from the first key not less than `from`, in order.
    pub fn from<'a>(&'a self, from: &K) -> impl Iterator<Item = (&'a K, &'a V)> + use<'a, K, V> {
        let i = self.0.partition_point(|(x, _)| x < from);
        self.0[i..].iter().map(|(k, v)| (k, v))
    }

    /// Remove the entries for which `keep` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.0.retain(|(k, v)| keep(k, v));
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Give back the spare capacity left by growth.
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// Any sequence of inserts and removes leaves what a BTreeMap would.
        #[test]
        fn behaves_as_an_ordered_map(ops in proptest::collection::vec((any::<bool>(), 0u8..40, any::<u16>()), 0..200)) {
            let mut m = SortedMap::default();
            let mut want = BTreeMap::new();
            for (ins, k, v) in ops {
                if ins {
                    prop_assert_eq!(m.insert(k, v), want.insert(k, v));
                } else {
                    prop_assert_eq!(m.remove(&k), want.remove(&k));
                }
            }
            prop_assert_eq!(m.len(), want.len());
            let got: Vec<_> = m.from(&10).map(|(k, v)| (*k, *v)).collect();
            let exp: Vec<_> = want.range(10..).map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(got, exp);
            for k in 0..40 {
                prop_assert_eq!(m.get(&k), want.get(&k));
            }
        }
    }
}
