//! MAC addresses: Huawei (`0000-5e00-0101`) and colon (`00:00:5e:00:01:01`) forms,
//! and the EUI-64 interface identifier derived from them.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a MAC address (allowed: HHHH-HHHH-HHHH or HH:HH:HH:HH:HH:HH)")]
pub struct MacParseError;

impl Mac {
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
    /// The seed's advised range: 0000-5E00-01XX or 0000-5E00-02XX.
    pub fn is_vrrp_range(&self) -> bool {
        self.0[..4] == [0, 0, 0x5e, 0] && (self.0[4] == 1 || self.0[4] == 2)
    }
    /// Modified EUI-64 interface identifier (RFC 4291 appendix A).
    pub fn eui64(&self) -> [u8; 8] {
        let m = self.0;
        [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]
    }
    pub fn link_local(&self) -> Ipv6Addr {
        let mut o = [0u8; 16];
        o[0] = 0xfe;
        o[1] = 0x80;
        o[8..].copy_from_slice(&self.eui64());
        Ipv6Addr::from(o)
    }
    /// `prefix` with its low 64 bits replaced by the EUI-64 id.
    pub fn eui64_address(&self, prefix: Ipv6Addr) -> Ipv6Addr {
        let mut o = prefix.octets();
        o[8..].copy_from_slice(&self.eui64());
        Ipv6Addr::from(o)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl FromStr for Mac {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex: String;
        let digits = if s.len() == 14 && s.as_bytes()[4] == b'-' && s.as_bytes()[9] == b'-' {
            hex = s.split('-').collect();
            hex.as_str()
        } else if s.len() == 17 && s.split(':').all(|p| p.len() == 2) {
            hex = s.split(':').collect();
            hex.as_str()
        } else {
            return Err(MacParseError);
        };
        if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(MacParseError);
        }
        let mut out = [0u8; 6];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| MacParseError)?;
        }
        Ok(Mac(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_to_the_same_mac() {
        let a: Mac = "0000-5e00-0101".parse().unwrap();
        let b: Mac = "00:00:5E:00:01:01".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "00:00:5e:00:01:01");
        assert!(a.is_vrrp_range());
    }

    #[test]
    fn malformed_macs_are_refused() {
        for s in [
            "",
            "0000-5e00-010",
            "0000:5e00:0101",
            "00-00-5e-00-01-01",
            "gggg-5e00-0101",
            "00:00:5e:00:01:1",
        ] {
            assert!(s.parse::<Mac>().is_err(), "{s}");
        }
    }

    #[test]
    fn link_local_flips_the_universal_bit() {
        let m: Mac = "0000-5e00-0101".parse().unwrap();
        assert_eq!(m.link_local().to_string(), "fe80::200:5eff:fe00:101");
    }
}
