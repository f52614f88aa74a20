//! Interface names as the kernel keeps them: at most 15 bytes (IFNAMSIZ - 1).
//! Held inline, so that mirroring thousands of links and indexing thousands
//! of gateways costs no allocation per name.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

#[derive(Clone, Copy, Default)]
pub struct IfName {
    len: u8,
    bytes: [u8; IfName::MAX],
}

impl IfName {
    /// IFNAMSIZ less the terminating NUL.
    pub const MAX: usize = 15;

    /// `None` when `name` is longer than the kernel allows.
    pub fn new(name: &str) -> Option<IfName> {
        let b = name.as_bytes();
        if b.len() > Self::MAX {
            return None;
        }
        let mut bytes = [0u8; Self::MAX];
        bytes[..b.len()].copy_from_slice(b);
        Some(IfName {
            len: b.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Built from a whole &str only, so always valid UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl Deref for IfName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for IfName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

// Hash, Eq and Ord are those of the str, as `Borrow<str>` requires.
impl Hash for IfName {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl PartialEq for IfName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for IfName {}

impl PartialOrd for IfName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IfName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialEq<str> for IfName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for IfName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for IfName {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

/// Literal names in unit tests.
#[cfg(test)]
impl From<&str> for IfName {
    fn from(s: &str) -> IfName {
        IfName::new(s).expect("a name of at most 15 bytes")
    }
}

impl From<IfName> for String {
    fn from(n: IfName) -> String {
        n.as_str().to_string()
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn holds_up_to_fifteen_bytes() {
        assert_eq!(IfName::new("").map(|n| n.len()), Some(0));
        assert_eq!(IfName::new("vbdif16777215").unwrap(), "vbdif16777215");
        assert_eq!(IfName::new("abcdefghijklmno").unwrap().len(), 15);
        assert!(IfName::new("abcdefghijklmnop").is_none());
        assert!(IfName::new("é234567890123456").is_none(), "17 bytes");
    }

    #[test]
    fn looks_up_by_str_in_maps() {
        let mut m = HashMap::new();
        m.insert(IfName::new("br10").unwrap(), 7u32);
        assert_eq!(m.get("br10"), Some(&7));
        assert_eq!(m.get("br1"), None);
        let a = IfName::new("br2").unwrap();
        let b = IfName::new("br10").unwrap();
        assert_eq!(a.cmp(&b), "br2".cmp("br10"));
        assert_eq!(format!("{a} {a:?}"), "br2 \"br2\"");
    }
}
