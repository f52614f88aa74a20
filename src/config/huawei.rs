//! Parsers for the value formats operators bring from the vendor CLI: durations,
//! `ip address ip-address { mask | mask-length } [ sub ]`, `ipv6 address
//! { ipv6-address prefix-length | ipv6-address/prefix-length } [ eui-64 ]`, MAC
//! sanity, and Linux netdev names.
//!
//! Everything here is pure and works on one value at a time; where a value sits in
//! the file and how the error is reported is the caller's business (`parse.rs`).
//! Each parser returns a [`ValueError`] whose message names the offending text and
//! says what to write instead.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::model::{Ipv4Prefix, Ipv6Prefix};
use crate::core::mac::Mac;

/// Why one value was refused: a message (without the key) and, when it can be
/// said briefly, what would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    pub message: String,
    pub allowed: Option<String>,
}

impl ValueError {
    pub fn new(message: impl Into<String>, allowed: impl Into<String>) -> Self {
        ValueError {
            message: message.into(),
            allowed: Some(allowed.into()),
        }
    }
    pub fn bare(message: impl Into<String>) -> Self {
        ValueError {
            message: message.into(),
            allowed: None,
        }
    }
}

pub const DURATION_ALLOWED: &str =
    "a duration such as \"250ms\", \"30s\", \"5m\", \"1h\", or whole seconds as 3 or \"3\"";

/// `"250ms"`, `"30s"`, `"5m"`, `"1h"`, or bare whole seconds `"3"`.
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let bad = |what: &str| ValueError::new(format!("{s:?} {what}"), DURATION_ALLOWED);
    if s.is_empty() {
        return Err(ValueError::new("empty duration", DURATION_ALLOWED));
    }
    if s.starts_with('-') {
        return Err(bad("is negative; a delay cannot be"));
    }
    let split = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(bad("is not a duration"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| bad("is too large to be a duration"))?;
    let too_large = || bad("is too large to be a duration");
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => n
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(too_large),
        "h" => n
            .checked_mul(3600)
            .map(Duration::from_secs)
            .ok_or_else(too_large),
        _ => Err(bad("has an unknown unit (use ms, s, m or h)")),
    }
}

/// A TOML integer is whole seconds.
pub fn duration_from_secs(n: i64) -> Result<Duration, ValueError> {
    u64::try_from(n).map(Duration::from_secs).map_err(|_| {
        ValueError::new(
            format!("{n} is negative; a delay cannot be"),
            DURATION_ALLOWED,
        )
    })
}

/// Shortest exact text for a duration, in the config's own syntax, so messages
/// quote values the way the operator wrote them (`1s`, `250ms`, `4m`).
pub fn format_duration(d: Duration) -> String {
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{}ns", d.as_nanos());
    }
    if d.subsec_millis() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs();
    if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// The length of a contiguous dotted mask (`255.255.255.128` → 25), or None
/// when ones and zeros interleave (`255.0.255.0`).
pub fn mask_to_len(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    (m.leading_ones() + m.trailing_zeros() == 32).then_some(m.leading_ones() as u8)
}

pub fn len_to_mask(len: u8) -> Ipv4Addr {
    let m = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(m)
}

/// One `ipv4` list entry: the address and whether the operator marked it `sub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Entry {
    pub prefix: Ipv4Prefix,
    pub sub: bool,
}

pub const IPV4_ALLOWED: &str = "\"A.B.C.D/LEN\", \"A.B.C.D MASK\" or \"A.B.C.D LEN\", optionally followed by \" sub\"; LEN 1-32";

/// Split a Huawei address entry into address, mask/length and whether it ends
/// with the keyword `flag` (`sub`, `eui-64`): `A/L`, `A L` or `A M`, then `flag`.
fn split_entry<'a>(
    s: &'a str,
    flag: &str,
    no_len: &str,
    bad_shape: &str,
    allowed: &'static str,
) -> Result<(&'a str, &'a str, bool), ValueError> {
    let mut words: Vec<&str> = s.split_whitespace().collect();
    let flagged = words.last().is_some_and(|w| w.eq_ignore_ascii_case(flag));
    if flagged {
        words.pop();
    }
    match words.as_slice() {
        [one] => match one.split_once('/') {
            Some((a, l)) => Ok((a, l, flagged)),
            None => Err(ValueError::new(format!("{s:?} {no_len}"), allowed)),
        },
        [a, l] => Ok((a, l, flagged)),
        _ => Err(ValueError::new(format!("{s:?} {bad_shape}"), allowed)),
    }
}

/// `192.0.2.1/24`, `192.0.2.129 255.255.255.128`, `192.0.2.1 24`, each with an
/// optional trailing `sub`.
pub fn parse_ipv4_entry(s: &str) -> Result<Ipv4Entry, ValueError> {
    let (addr_s, len_s, sub) = split_entry(
        s,
        "sub",
        "has no mask or prefix length",
        "is not an IPv4 address with mask",
        IPV4_ALLOWED,
    )?;
    let addr: Ipv4Addr = addr_s
        .parse()
        .map_err(|_| ValueError::new(format!("{addr_s:?} is not an IPv4 address"), IPV4_ALLOWED))?;
    let len = if len_s.contains('.') {
        let mask: Ipv4Addr = len_s.parse().map_err(|_| {
            ValueError::new(format!("{len_s:?} is not a dotted mask"), IPV4_ALLOWED)
        })?;
        mask_to_len(mask).ok_or_else(|| {
            ValueError::new(
                format!("mask {mask} is not contiguous (its ones and zeros interleave)"),
                "contiguous masks such as 255.255.255.0, or a length 1-32",
            )
        })?
    } else {
        parse_len(len_s, 32).ok_or_else(|| {
            ValueError::new(format!("prefix length {len_s:?} is out of range"), "1-32")
        })?
    };
    if len == 0 {
        return Err(ValueError::new(
            format!("{s:?}: a gateway address cannot have prefix length 0"),
            "1-32",
        ));
    }
    check_ipv4_host(addr, len)?;
    Ok(Ipv4Entry {
        prefix: Ipv4Prefix { addr, len },
        sub,
    })
}

/// A plain decimal length in 0..=max; no signs, no hex.
fn parse_len(s: &str, max: u8) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u8>().ok().filter(|&l| l <= max)
}

/// An address a gateway can own: a unicast host address, not the network or
/// broadcast address of its own subnet.
fn check_ipv4_host(addr: Ipv4Addr, len: u8) -> Result<(), ValueError> {
    let unicast = "a unicast host address";
    let why = if addr.is_unspecified() || addr.octets()[0] == 0 {
        Some("is in 0.0.0.0/8 (\"this network\")")
    } else if addr.is_loopback() {
        Some("is a loopback address")
    } else if addr.is_multicast() {
        Some("is a multicast address")
    } else if addr.is_broadcast() {
        Some("is the limited broadcast address")
    } else if addr.octets()[0] >= 240 {
        Some("is in the reserved range 240.0.0.0/4")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(ValueError::new(format!("{addr} {why}"), unicast));
    }
    // /31 (RFC 3021) and /32 have no network or broadcast address.
    if len <= 30 {
        let host_mask = !u32::from(len_to_mask(len));
        let host = u32::from(addr) & host_mask;
        let net = Ipv4Addr::from(u32::from(addr) & !host_mask);
        if host == 0 {
            return Err(ValueError::new(
                format!("{addr} is the network address of {net}/{len}, not a host address"),
                format!("a host address inside {net}/{len}"),
            ));
        }
        if host == host_mask {
            return Err(ValueError::new(
                format!("{addr} is the broadcast address of {net}/{len}, not a host address"),
                format!("a host address inside {net}/{len}"),
            ));
        }
    }
    Ok(())
}

/// One `ipv6` list entry before eui-64 expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Entry {
    pub prefix: Ipv6Prefix,
    pub eui64: bool,
}

impl Ipv6Entry {
    /// The address the gateway will carry: with `eui-64`, the low 64 bits come
    /// from the gateway's vMAC (so both peers derive the same address).
    pub fn resolve(&self, mac: Mac) -> Ipv6Prefix {
        if self.eui64 {
            Ipv6Prefix {
                addr: mac.eui64_address(self.prefix.addr),
                len: self.prefix.len,
            }
        } else {
            self.prefix
        }
    }
}

pub const IPV6_ALLOWED: &str = "\"X:X::X/LEN\" or \"X:X::X LEN\", optionally followed by \" eui-64\"; LEN 1-128 (1-64 with eui-64)";

/// `2001:db8:10::1/64`, `2001:db8:10::1 64`, each with an optional `eui-64`.
pub fn parse_ipv6_entry(s: &str) -> Result<Ipv6Entry, ValueError> {
    let (addr_s, len_s, eui64) = split_entry(
        s,
        "eui-64",
        "has no prefix length",
        "is not an IPv6 address with prefix length",
        IPV6_ALLOWED,
    )?;
    let addr: Ipv6Addr = addr_s
        .parse()
        .map_err(|_| ValueError::new(format!("{addr_s:?} is not an IPv6 address"), IPV6_ALLOWED))?;
    let len = parse_len(len_s, 128).ok_or_else(|| {
        ValueError::new(format!("prefix length {len_s:?} is out of range"), "1-128")
    })?;
    if len == 0 {
        return Err(ValueError::new(
            format!("{s:?}: a gateway address cannot have prefix length 0"),
            "1-128",
        ));
    }
    if eui64 && len > 64 {
        return Err(ValueError::new(
            format!(
                "prefix length {len} is too long for eui-64: the EUI-64 interface id takes the low 64 bits"
            ),
            "1-64 with eui-64",
        ));
    }
    let seg0 = addr.segments()[0];
    let why = if addr.is_unspecified() {
        Some("is the unspecified address")
    } else if addr.is_loopback() {
        Some("is the loopback address")
    } else if addr.is_multicast() {
        Some("is a multicast address")
    } else if seg0 & 0xffc0 == 0xfe80 {
        Some("is link-local; dagw derives the link-local address from the vMAC itself")
    } else if addr.to_ipv4_mapped().is_some() {
        Some("is an IPv4-mapped address")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(ValueError::new(
            format!("{addr} {why}"),
            "a global or unique-local unicast address",
        ));
    }
    Ok(Ipv6Entry {
        prefix: Ipv6Prefix { addr, len },
        eui64,
    })
}

pub const MAC_ALLOWED: &str = "unicast, advised 0000-5e00-01XX or 0000-5e00-02XX";

/// A gateway's vMAC must be a usable unicast source address.
pub fn check_gateway_mac(text: &str, mac: Mac) -> Result<(), ValueError> {
    let why = if mac.is_broadcast() {
        "is the broadcast MAC"
    } else if mac.is_multicast() {
        "is a multicast MAC"
    } else if mac.is_zero() {
        "is the all-zero MAC"
    } else {
        return Ok(());
    };
    Err(ValueError::new(
        format!("{text} {why}; a gateway needs a unicast MAC"),
        MAC_ALLOWED,
    ))
}

/// Linux `IFNAMSIZ` minus the terminating NUL.
pub const MAX_NETDEV_NAME: usize = 15;
pub const NETDEV_ALLOWED: &str = "1-15 characters, no '/', ':' or whitespace, not \".\" or \"..\"";

/// The kernel's `dev_valid_name()` rules, checked here so that `dagw check`
/// catches what `ip link add` would refuse later.
pub fn check_netdev_name(s: &str) -> Result<(), ValueError> {
    let why = if s.is_empty() {
        "an interface name cannot be empty".to_string()
    } else if s.len() > MAX_NETDEV_NAME {
        format!(
            "{s:?} is {} bytes; Linux interface names are at most {MAX_NETDEV_NAME}",
            s.len()
        )
    } else if s == "." || s == ".." {
        format!("{s:?} is not a valid interface name")
    } else if let Some(c) = s
        .chars()
        .find(|&c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        format!("{s:?} contains {c:?}, which Linux does not allow in interface names")
    } else {
        return Ok(());
    };
    Err(ValueError::new(why, NETDEV_ALLOWED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(d(250)));
        assert_eq!(parse_duration("30s"), Ok(d(30_000)));
        assert_eq!(parse_duration("5m"), Ok(d(300_000)));
        assert_eq!(parse_duration("1h"), Ok(d(3_600_000)));
        assert_eq!(parse_duration("3"), Ok(d(3_000)));
        assert_eq!(parse_duration("0"), Ok(d(0)));
        assert_eq!(duration_from_secs(3), Ok(d(3_000)));
        for bad in [
            "",
            "-1s",
            "s",
            "ms",
            "1.5s",
            "1 s",
            " 1s",
            "3x",
            "1sec",
            "99999999999999999999999s",
            "307445734561825861h",
            "+3",
            "1S",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(duration_from_secs(-1).is_err());
    }

    #[test]
    fn durations_format_in_config_syntax() {
        assert_eq!(format_duration(d(250)), "250ms");
        assert_eq!(format_duration(d(1000)), "1s");
        assert_eq!(format_duration(d(240_000)), "4m");
        assert_eq!(format_duration(d(7_200_000)), "2h");
        assert_eq!(format_duration(d(0)), "0s");
        assert_eq!(format_duration(Duration::from_nanos(5)), "5ns");
    }

    #[test]
    fn ipv4_forms() {
        let p = |s: &str| parse_ipv4_entry(s).map(|e| (e.prefix.to_string(), e.sub));
        assert_eq!(p("192.0.2.1/24"), Ok(("192.0.2.1/24".into(), false)));
        assert_eq!(
            p("192.0.2.129 255.255.255.128"),
            Ok(("192.0.2.129/25".into(), false))
        );
        assert_eq!(p("192.0.2.1 24"), Ok(("192.0.2.1/24".into(), false)));
        assert_eq!(p("192.0.2.1 24 sub"), Ok(("192.0.2.1/24".into(), true)));
        assert_eq!(p("192.0.2.1/24 sub"), Ok(("192.0.2.1/24".into(), true)));
        assert_eq!(p("192.0.2.0/31"), Ok(("192.0.2.0/31".into(), false)));
        assert_eq!(p("192.0.2.7/32"), Ok(("192.0.2.7/32".into(), false)));
    }

    #[test]
    fn ipv4_refusals() {
        for bad in [
            "192.0.2.1",
            "192.0.2.1/33",
            "192.0.2.1/0",
            "192.0.2.1/-1",
            "192.0.2.1/+24",
            "192.0.2.1 255.0.255.0",
            "192.0.2.1 0.0.0.0",
            "192.0.2.1/24 sub extra",
            "192.0.2.0/24",
            "192.0.2.255/24",
            "0.0.0.0/8",
            "0.1.2.3/8",
            "127.0.0.1/8",
            "224.0.0.1/24",
            "255.255.255.255/32",
            "240.0.0.1/24",
            "192.0.2/24",
            "",
            "sub",
            "/24",
        ] {
            assert!(parse_ipv4_entry(bad).is_err(), "{bad:?}");
        }
        let e = parse_ipv4_entry("192.0.2.1 255.0.255.0").unwrap_err();
        assert!(e.message.contains("not contiguous"), "{e:?}");
        let e = parse_ipv4_entry("192.0.2.1/33").unwrap_err();
        assert_eq!(e.allowed.as_deref(), Some("1-32"));
    }

    #[test]
    fn ipv6_forms_and_eui64() {
        let mac: Mac = "0000-5e00-0101".parse().unwrap();
        let p = |s: &str| parse_ipv6_entry(s).map(|e| e.resolve(mac).to_string());
        assert_eq!(p("2001:db8:10::1/64"), Ok("2001:db8:10::1/64".into()));
        assert_eq!(p("2001:db8:10::1 64"), Ok("2001:db8:10::1/64".into()));
        assert_eq!(
            p("2001:db8:11::/64 eui-64"),
            Ok("2001:db8:11:0:200:5eff:fe00:101/64".into())
        );
        assert_eq!(
            p("2001:db8:11:: 48 EUI-64"),
            Ok("2001:db8:11:0:200:5eff:fe00:101/48".into())
        );
        for bad in [
            "2001:db8::1",
            "2001:db8::1/129",
            "2001:db8::1/0",
            "2001:db8::/96 eui-64",
            "fe80::1/64",
            "ff02::1/64",
            "::/64",
            "::1/128",
            "::ffff:192.0.2.1/128",
            "192.0.2.1/24",
            "2001:db8::1/64 eui-64 x",
        ] {
            assert!(parse_ipv6_entry(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn masks() {
        assert_eq!(mask_to_len("255.255.255.128".parse().unwrap()), Some(25));
        assert_eq!(mask_to_len("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(mask_to_len("255.255.255.255".parse().unwrap()), Some(32));
        assert_eq!(mask_to_len("255.0.255.0".parse().unwrap()), None);
        assert_eq!(mask_to_len("0.0.0.255".parse().unwrap()), None);
        assert_eq!(len_to_mask(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(len_to_mask(25), Ipv4Addr::new(255, 255, 255, 128));
    }

    #[test]
    fn macs() {
        let m = |s: &str| check_gateway_mac(s, s.parse().unwrap());
        assert!(m("0000-5e00-0101").is_ok());
        assert!(m("0200-0000-0001").is_ok());
        let e = m("0100-5e00-0001").unwrap_err();
        assert_eq!(
            e.message,
            "0100-5e00-0001 is a multicast MAC; a gateway needs a unicast MAC"
        );
        assert!(
            m("ffff-ffff-ffff")
                .unwrap_err()
                .message
                .contains("broadcast")
        );
        assert!(
            m("0000-0000-0000")
                .unwrap_err()
                .message
                .contains("all-zero")
        );
    }

    #[test]
    fn netdev_names() {
        for ok in ["br10", "gw10", "a", "vxlan16777215", "bond1.100", "x-y_z@"] {
            assert!(check_netdev_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "sixteen_chars_xx",
            "a\0b",
        ] {
            assert!(check_netdev_name(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn duration_round_trips(ms in 0u64..=1_000_000_000_000) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn whole_seconds_round_trip(s in 0u64..=u64::MAX / 3600) {
            prop_assert_eq!(parse_duration(&s.to_string()), Ok(Duration::from_secs(s)));
            prop_assert_eq!(parse_duration(&format!("{s}s")), Ok(Duration::from_secs(s)));
        }

        #[test]
        fn ipv4_prefix_round_trips(addr in any::<u32>(), len in 1u8..=32) {
            let addr = Ipv4Addr::from(addr);
            let text = format!("{addr}/{len}");
            // The mask form and the length form name the same prefix.
            let masked = format!("{addr} {}", len_to_mask(len));
            match parse_ipv4_entry(&text) {
                Ok(e) => {
                    prop_assert_eq!(e.prefix, Ipv4Prefix { addr, len });
                    prop_assert_eq!(e.prefix.to_string(), text);
                    prop_assert_eq!(parse_ipv4_entry(&masked), Ok(e));
                }
                Err(_) => prop_assert!(parse_ipv4_entry(&masked).is_err()),
            }
        }

        #[test]
        fn ipv4_mask_round_trips(len in 0u8..=32) {
            prop_assert_eq!(mask_to_len(len_to_mask(len)), Some(len));
        }

        #[test]
        fn ipv6_prefix_round_trips(addr in any::<u128>(), len in 1u8..=128) {
            let addr = Ipv6Addr::from(addr);
            let text = format!("{addr}/{len}");
            if let Ok(e) = parse_ipv6_entry(&text) {
                prop_assert_eq!(e.prefix, Ipv6Prefix { addr, len });
                prop_assert_eq!(e.prefix.to_string(), text);
                prop_assert!(!e.eui64);
            }
        }

        #[test]
        fn mac_round_trips(bytes in any::<[u8; 6]>()) {
            let mac = Mac(bytes);
            let colon = mac.to_string();
            let b = bytes;
            let huawei = format!(
                "{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}",
                b[0], b[1], b[2], b[3], b[4], b[5]
            );
            prop_assert_eq!(colon.parse::<Mac>(), Ok(mac));
            prop_assert_eq!(huawei.parse::<Mac>(), Ok(mac));
            prop_assert_eq!(huawei.to_uppercase().parse::<Mac>(), Ok(mac));
            // The vMAC rule: exactly the unicast, non-zero MACs are accepted.
            prop_assert_eq!(
                check_gateway_mac(&huawei, mac).is_ok(),
                !mac.is_multicast() && !mac.is_zero()
            );
        }

        #[test]
        fn value_parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_duration(&s);
            let _ = parse_ipv4_entry(&s);
            let _ = parse_ipv6_entry(&s);
            let _ = check_netdev_name(&s);
            let _ = s.parse::<Mac>();
        }

        #[test]
        fn value_parsers_never_panic_on_near_misses(
            s in "[0-9a-fA-F:./ -]{0,24}( sub| eui-64|ms|s|m|h)?"
        ) {
            let _ = parse_duration(&s);
            let _ = parse_ipv4_entry(&s);
            let _ = parse_ipv6_entry(&s);
            let _ = s.parse::<Mac>();
        }
    }
}
