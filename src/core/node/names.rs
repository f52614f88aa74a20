//! Which gateways a kernel object concerns, by name: the SVI, the gateway
//! device and the BD's vxlan device of each gateway, and the gateway's own
//! name (a device's `dagw:` alias names it). Sorted pairs searched by
//! halving: 20 bytes a name and no allocation per name, where a map of
//! strings to vectors cost some 100 bytes at 4094 gateways × 4 names.

use crate::core::ifname::IfName;

#[derive(Debug, Default)]
pub struct NameIndex {
    devices: Vec<(IfName, u32)>,
    gateways: Vec<(IfName, u32)>,
}

/// What a name stands for in the index.
#[derive(Debug, Clone, Copy)]
pub enum Named<'a> {
    /// An interface: SVI, gateway device or vxlan device.
    Device(&'a str),
    /// A gateway, as named by a device's ownership alias.
    Gateway(&'a str),
}

impl NameIndex {
    /// `names(i)` lists gateway `i`'s device names and its own name. Names
    /// the kernel could not have (over 15 bytes) are left out: no event can
    /// carry them.
    pub fn build<'a, I, D>(gateways: I) -> NameIndex
    where
        I: IntoIterator<Item = (&'a str, D)>,
        D: IntoIterator<Item = &'a str>,
    {
        let mut ix = NameIndex::default();
        for (i, (gateway, devices)) in gateways.into_iter().enumerate() {
            let i = i as u32;
            if let Some(n) = IfName::new(gateway) {
                ix.gateways.push((n, i));
            }
            for d in devices {
                if let Some(n) = IfName::new(d) {
                    ix.devices.push((n, i));
                }
            }
        }
        for v in [&mut ix.devices, &mut ix.gateways] {
            v.sort_unstable();
            v.dedup();
            v.shrink_to_fit();
        }
        ix
    }

    /// The gateways `name` concerns, in index order.
    pub fn get<'a>(&'a self, name: Named<'a>) -> impl Iterator<Item = usize> + 'a {
        let (v, name) = match name {
            Named::Device(n) => (&self.devices, n),
            Named::Gateway(n) => (&self.gateways, n),
        };
        let from = v.partition_point(|(n, _)| n.as_str() < name);
        v[from..]
            .iter()
            .take_while(move |(n, _)| n.as_str() == name)
            .map(|(_, i)| *i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_gateway_of_a_name() {
        let ix = NameIndex::build([
            ("vlanif10", vec!["br10", "gw10"]),
            ("vbdif20", vec!["br20", "gw20", "vx20"]),
            ("vbdif21", vec!["br21", "gw21", "vx20"]),
            ("vlanif30", vec!["a-name-longer-than-fifteen", "gw30"]),
        ]);
        let got = |n| ix.get(n).collect::<Vec<_>>();
        assert_eq!(got(Named::Device("br10")), [0]);
        assert_eq!(got(Named::Device("vx20")), [1, 2]);
        assert_eq!(got(Named::Device("br1")), [] as [usize; 0]);
        assert_eq!(got(Named::Device("gw30")), [3]);
        assert_eq!(got(Named::Gateway("vbdif21")), [2]);
        assert_eq!(got(Named::Gateway("br10")), [] as [usize; 0]);
        assert_eq!(got(Named::Device("vlanif10")), [] as [usize; 0]);
    }
}
