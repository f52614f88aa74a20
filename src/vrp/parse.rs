//! VRP configuration text → the parts dagw can map, each with the line it
//! came from, plus a finding for every line it does not map.
//!
//! VRP text comes in two shapes: `display current-configuration` output
//! (views opened by a line at column 0, their commands indented by one space,
//! blocks separated by `#`) and typed command sequences as in the seed document
//! (nothing indented, views left with `quit`). Both are read by one rule: a view
//! opens with its command (`interface …`, `dfs-group …`) and ends at `#`,
//! `quit`, `return`, the next view command, or — once its block has shown
//! indentation — at the next line that is not indented deeper than its opener.

use std::net::IpAddr;

use super::{Finding, Severity};
use crate::config::huawei;
use crate::core::mac::Mac;

/// VRP configs of large switches run to a few MB; anything beyond this is not
/// a configuration, and the bound keeps the parser's work proportional.
pub const MAX_INPUT_BYTES: usize = 32 * 1024 * 1024;
/// VRP lines are short; a longer one is reported and skipped unread.
pub const MAX_LINE_BYTES: usize = 4096;
/// Bounds the findings kept (a hostile or binary file could produce one per
/// line); the rest are counted.
pub const MAX_FINDINGS: usize = 100_000;
/// Matches the config's own limits (`MAX_GATEWAYS`, `MAX_ADDRESSES`).
const MAX_SVIS: usize = crate::config::MAX_GATEWAYS;
const MAX_ADDRESSES: usize = 256;
const MAX_TRUNKS: usize = 4096;

/// A value and the 1-based line it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lined<T> {
    pub v: T,
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SviKind {
    Vlanif,
    Vbdif,
}

impl SviKind {
    pub fn vrp_name(self) -> &'static str {
        match self {
            SviKind::Vlanif => "Vlanif",
            SviKind::Vbdif => "Vbdif",
        }
    }
    pub fn key(self) -> &'static str {
        match self {
            SviKind::Vlanif => "vlanif",
            SviKind::Vbdif => "vbdif",
        }
    }
}

/// One `ip address` entry as written (whitespace normalised): dagw accepts the
/// Huawei form itself, so the value is carried over unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressEntry {
    pub text: String,
    pub sub: bool,
}

/// An `interface Vlanif N` / `interface Vbdif N` view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svi {
    pub kind: SviKind,
    pub id: u32,
    pub line: usize,
    pub ipv4: Vec<Lined<AddressEntry>>,
    pub ipv6_enable: Option<usize>,
    pub ipv6: Vec<Lined<String>>,
    pub mac: Option<Lined<String>>,
    /// `protocol up-delay-time`, seconds.
    pub up_delay: Option<Lined<u32>>,
}

impl Svi {
    pub fn vrp_name(&self) -> String {
        format!("{}{}", self.kind.vrp_name(), self.id)
    }
}

/// An `interface Eth-Trunk N` view, with what M-LAG says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    pub id: u32,
    pub line: usize,
    /// `dfs-group G m-lag M`: (G, M).
    pub mlag: Option<Lined<(u32, u32)>>,
    /// `m-lag up-delay V`, seconds.
    pub up_delay: Option<Lined<u32>>,
    /// `peer-link N`.
    pub peer_link: Option<Lined<u32>>,
}

impl Trunk {
    pub fn vrp_name(&self) -> String {
        format!("Eth-Trunk{}", self.id)
    }
}

/// The `dfs-group N` view: the heartbeat's addresses and the priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dfs {
    pub id: u32,
    pub line: usize,
    pub priority: Option<Lined<u32>>,
    pub source: Option<Lined<IpAddr>>,
    pub peer: Option<Lined<IpAddr>>,
}

/// Everything mapped from one VRP text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vrp {
    pub sysname: Option<Lined<String>>,
    pub svis: Vec<Svi>,
    pub trunks: Vec<Trunk>,
    pub dfs: Option<Dfs>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    None,
    Svi(usize),
    Trunk(usize),
    Dfs,
    /// A view dagw does not map: its commands are reported as inside it.
    Other,
}

struct Findings {
    list: Vec<Finding>,
    dropped: usize,
}

impl Findings {
    fn push(&mut self, line: usize, severity: Severity, message: String, text: &str) {
        if self.list.len() >= MAX_FINDINGS {
            self.dropped += 1;
            return;
        }
        // Quote at most a line's worth of the source, and no control
        // characters: findings go to a terminal.
        let text: String = text
            .chars()
            .take(200)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        self.list.push(Finding {
            line,
            severity,
            message,
            text,
        });
    }
}

struct Parser {
    vrp: Vrp,
    findings: Findings,
    view: View,
    /// The view opener's indentation and whether its block has shown indented lines.
    view_indent: usize,
    block_indented: bool,
    /// What the current unmapped view is, for messages.
    other_name: String,
    /// The unmapped view was opened by an arbitrary command at the margin,
    /// not a view command: only lines indented under it belong to it.
    soft_view: bool,
}

/// Parses VRP text. Never panics; every line that is not structure (`#`,
/// `quit`, `return`, `system-view`, `commit`, `!` comments, blank) and not
/// mapped is reported.
pub fn parse(text: &str) -> (Vrp, Vec<Finding>) {
    let mut p = Parser {
        vrp: Vrp::default(),
        findings: Findings {
            list: Vec::new(),
            dropped: 0,
        },
        view: View::None,
        view_indent: 0,
        block_indented: false,
        other_name: String::new(),
        soft_view: false,
    };
    if text.len() > MAX_INPUT_BYTES {
        p.findings.push(
            1,
            Severity::Error,
            format!("the input is larger than {MAX_INPUT_BYTES} bytes; nothing was read"),
            "",
        );
        return (p.vrp, p.findings.list);
    }
    let mut last = 0;
    for (i, raw) in text.split('\n').enumerate() {
        last = i + 1;
        p.line(i + 1, raw.strip_suffix('\r').unwrap_or(raw));
    }
    if p.findings.dropped > 0 {
        let n = p.findings.dropped;
        p.findings.list.push(Finding {
            line: last.max(1),
            severity: Severity::Warning,
            message: format!("{n} more findings were not listed (limit {MAX_FINDINGS})"),
            text: String::new(),
        });
    }
    (p.vrp, p.findings.list)
}

/// `display current-configuration` prints these views; dagw maps their
/// content elsewhere or not at all, and says so per line.
fn is_structure(t: &str) -> bool {
    t.is_empty()
        || t.starts_with('#')
        || t.starts_with('!')
        || ["quit", "return", "system-view", "commit"]
            .iter()
            .any(|w| t.eq_ignore_ascii_case(w))
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// A decimal number in `lo..=hi`; no signs, no leading `+`.
fn number(s: &str, lo: u32, hi: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>()
        .ok()
        .filter(|&n| n >= u64::from(lo) && n <= u64::from(hi))
        .map(|n| n as u32)
}

/// The interface named after `interface`: `Vlanif10`, `vlanif 10`, `Eth-Trunk1`.
enum IfRef {
    Svi(SviKind, u32),
    Trunk(u32),
    /// A known kind with a bad number: the message says why.
    Bad(String),
    Other(String),
}

fn interface_ref(words: &[&str]) -> IfRef {
    let name: String = words.concat();
    let l = lower(&name);
    let kinds: [(&str, Option<SviKind>, u32, u32); 3] = [
        ("vlanif", Some(SviKind::Vlanif), 1, 4094),
        ("vbdif", Some(SviKind::Vbdif), 1, 16_777_215),
        ("eth-trunk", None, 0, 65_535),
    ];
    for (prefix, kind, lo, hi) in kinds {
        let Some(rest) = l.strip_prefix(prefix) else {
            continue;
        };
        if rest.contains('.') && kind.is_none() {
            // Eth-Trunk1.100: a sub-interface (VBDIF access), not a member.
            return IfRef::Other(name);
        }
        return match (number(rest, lo, hi), kind) {
            (Some(id), Some(k)) => IfRef::Svi(k, id),
            (Some(id), None) => IfRef::Trunk(id),
            (None, _) => IfRef::Bad(format!(
                "interface {name}: {rest:?} is not a valid number for {prefix} (allowed: {lo}-{hi})"
            )),
        };
    }
    IfRef::Other(name)
}

impl Parser {
    fn note(&mut self, line: usize, message: String, text: &str) {
        self.findings.push(line, Severity::Note, message, text);
    }
    fn warn(&mut self, line: usize, message: String, text: &str) {
        self.findings.push(line, Severity::Warning, message, text);
    }
    fn error(&mut self, line: usize, message: String, text: &str) {
        self.findings.push(line, Severity::Error, message, text);
    }

    fn open(&mut self, view: View, indent: usize) {
        self.soft_view = false;
        self.view = view;
        self.view_indent = indent;
        self.block_indented = false;
    }

    fn line(&mut self, no: usize, raw: &str) {
        if raw.len() > MAX_LINE_BYTES {
            self.error(
                no,
                format!("line longer than {MAX_LINE_BYTES} bytes; not read"),
                "",
            );
            return;
        }
        let t = raw.trim();
        let indent = raw.len() - raw.trim_start().len();
        if is_structure(t) {
            if t.starts_with('#') || ["quit", "return"].iter().any(|w| t.eq_ignore_ascii_case(w)) {
                self.view = View::None;
            }
            return;
        }
        if self.view != View::None {
            if indent > self.view_indent {
                self.block_indented = true;
            } else if self.block_indented || self.soft_view {
                self.view = View::None;
            }
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        let first = lower(words[0]);
        if first == "interface" {
            self.interface(no, t, &words[1..], indent);
            return;
        }
        if self.view_opens_dfs(&words) {
            self.dfs_group(no, t, &words, indent);
            return;
        }
        match self.view {
            View::Svi(i) => self.svi_command(i, no, t, &words),
            View::Trunk(i) => self.trunk_command(i, no, t, &words),
            View::Dfs => self.dfs_command(no, t, &words),
            View::Other => {
                let m = format!("not mapped (in {})", self.other_name);
                self.note(no, m, t);
            }
            View::None => self.top_level(no, t, &words, indent),
        }
    }

    /// `dfs-group N` alone opens the DFS view; inside an Eth-Trunk,
    /// `dfs-group N m-lag M` is a member command instead.
    fn view_opens_dfs(&self, words: &[&str]) -> bool {
        words.len() == 2
            && words[0].eq_ignore_ascii_case("dfs-group")
            && !matches!(self.view, View::Trunk(_))
    }

    fn top_level(&mut self, no: usize, t: &str, words: &[&str], indent: usize) {
        if words[0].eq_ignore_ascii_case("sysname") {
            match words {
                [_, name] => {
                    if let Some(prev) = &self.vrp.sysname {
                        let m = format!("sysname again (line {} said {:?})", prev.line, prev.v);
                        self.warn(no, m, t);
                    }
                    self.vrp.sysname = Some(Lined {
                        v: (*name).to_string(),
                        line: no,
                    });
                }
                _ => self.error(no, "sysname takes one name".into(), t),
            }
            return;
        }
        // Any other command at the left margin may open a view (bridge-domain,
        // aaa, stp …): its indented lines are reported as inside it.
        self.note(no, "not mapped".into(), t);
        self.other_name = t.chars().take(60).collect();
        self.open(View::Other, indent);
        self.soft_view = true;
    }

    fn interface(&mut self, no: usize, t: &str, rest: &[&str], indent: usize) {
        match interface_ref(rest) {
            IfRef::Svi(kind, id) => {
                let found = self
                    .vrp
                    .svis
                    .iter()
                    .position(|s| s.kind == kind && s.id == id);
                let i = match found {
                    Some(i) => i,
                    None if self.vrp.svis.len() >= MAX_SVIS => {
                        self.error(
                            no,
                            format!(
                                "more than {MAX_SVIS} VLANIF/VBDIF interfaces; this one is not read"
                            ),
                            t,
                        );
                        self.other_name = t.into();
                        self.open(View::Other, indent);
                        return;
                    }
                    None => {
                        self.vrp.svis.push(Svi {
                            kind,
                            id,
                            line: no,
                            ipv4: Vec::new(),
                            ipv6_enable: None,
                            ipv6: Vec::new(),
                            mac: None,
                            up_delay: None,
                        });
                        self.vrp.svis.len() - 1
                    }
                };
                self.open(View::Svi(i), indent);
            }
            IfRef::Trunk(id) => {
                let found = self.vrp.trunks.iter().position(|x| x.id == id);
                let i = match found {
                    Some(i) => i,
                    None if self.vrp.trunks.len() >= MAX_TRUNKS => {
                        self.error(
                            no,
                            format!("more than {MAX_TRUNKS} Eth-Trunks; this one is not read"),
                            t,
                        );
                        self.other_name = t.into();
                        self.open(View::Other, indent);
                        return;
                    }
                    None => {
                        self.vrp.trunks.push(Trunk {
                            id,
                            line: no,
                            mlag: None,
                            up_delay: None,
                            peer_link: None,
                        });
                        self.vrp.trunks.len() - 1
                    }
                };
                self.open(View::Trunk(i), indent);
            }
            IfRef::Bad(m) => {
                self.error(no, m, t);
                self.other_name = t.chars().take(60).collect();
                self.open(View::Other, indent);
            }
            IfRef::Other(name) => {
                let m = if name.is_empty() {
                    "interface without a name".to_string()
                } else {
                    "not mapped (dagw imports Vlanif, Vbdif and Eth-Trunk interfaces)".to_string()
                };
                self.note(no, m, t);
                self.other_name = t.chars().take(60).collect();
                self.open(View::Other, indent);
            }
        }
    }

    fn svi_command(&mut self, i: usize, no: usize, t: &str, words: &[&str]) {
        let name = self.vrp.svis[i].vrp_name();
        let w: Vec<String> = words.iter().take(3).map(|w| lower(w)).collect();
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["ip", "address", ..] => self.add_ipv4(i, no, t, &words[2..].join(" ")),
            ["ipv6", "enable"] => {
                self.vrp.svis[i].ipv6_enable = Some(no);
            }
            ["ipv6", "address", ..] => {
                let value = words[2..].join(" ");
                let lw = lower(&value);
                if lw.ends_with("link-local") || lw == "auto global" || lw.starts_with("auto") {
                    let m = format!(
                        "{name}: not mapped: dagw derives the link-local address from the virtual MAC (EUI-64) and configures global addresses only as written"
                    );
                    self.warn(no, m, t);
                    return;
                }
                match huawei::parse_ipv6_entry(&value) {
                    Ok(_) => {
                        let svi = &mut self.vrp.svis[i];
                        if svi.ipv6.len() >= MAX_ADDRESSES {
                            let m = format!(
                                "{name}: more than {MAX_ADDRESSES} IPv6 addresses; this one is not imported"
                            );
                            self.error(no, m, t);
                            return;
                        }
                        if let Some(dup) = svi.ipv6.iter().find(|a| a.v == value) {
                            let m = format!(
                                "{name}: the same address as line {}; imported once",
                                dup.line
                            );
                            self.warn(no, m, t);
                            return;
                        }
                        svi.ipv6.push(Lined { v: value, line: no });
                    }
                    Err(e) => {
                        self.error(no, format!("{name}: ipv6 address: {}", value_error(&e)), t)
                    }
                }
            }
            ["mac-address", ..] => match words {
                [_, mac] => match mac.parse::<Mac>() {
                    Ok(m) => match huawei::check_gateway_mac(mac, m) {
                        Ok(()) => {
                            self.vrp.svis[i].mac = Some(Lined {
                                v: (*mac).to_string(),
                                line: no,
                            })
                        }
                        Err(e) => {
                            self.error(no, format!("{name}: mac-address: {}", value_error(&e)), t)
                        }
                    },
                    Err(e) => self.error(no, format!("{name}: mac-address {mac:?}: {e}"), t),
                },
                _ => self.error(no, format!("{name}: mac-address takes one MAC address"), t),
            },
            ["protocol", "up-delay-time", ..] => match words {
                [_, _, v] => match number(v, 0, 7200) {
                    Some(s) => {
                        self.vrp.svis[i].up_delay = Some(Lined { v: s, line: no });
                    }
                    None => {
                        let m = format!(
                            "{name}: protocol up-delay-time {v:?} is not a number of seconds in 0-7200"
                        );
                        self.error(no, m, t)
                    }
                },
                _ => {
                    let m = format!("{name}: protocol up-delay-time takes one value (seconds)");
                    self.error(no, m, t)
                }
            },
            _ => self.note(no, format!("not mapped (in interface {name})"), t),
        }
    }

    fn add_ipv4(&mut self, i: usize, no: usize, t: &str, value: &str) {
        let name = self.vrp.svis[i].vrp_name();
        let e = match huawei::parse_ipv4_entry(value) {
            Ok(e) => e,
            Err(e) => {
                self.error(no, format!("{name}: ip address: {}", value_error(&e)), t);
                return;
            }
        };
        let svi = &self.vrp.svis[i];
        if svi.ipv4.len() >= MAX_ADDRESSES {
            let m = format!(
                "{name}: more than {MAX_ADDRESSES} IPv4 addresses; this one is not imported"
            );
            self.error(no, m, t);
            return;
        }
        if let Some(dup) = svi.ipv4.iter().find(|a| {
            huawei::parse_ipv4_entry(&a.v.text).is_ok_and(|x| x.prefix.addr == e.prefix.addr)
        }) {
            let m = format!(
                "{name}: the same address as line {}; imported once",
                dup.line
            );
            self.warn(no, m, t);
            return;
        }
        if !e.sub
            && let Some(k) = svi.ipv4.iter().position(|a| !a.v.sub)
        {
            // VRP keeps one primary: a second one replaces it.
            let old = self.vrp.svis[i].ipv4.remove(k);
            let m = format!(
                "{name}: a second primary address replaces the one of line {} ({}), as in VRP",
                old.line, old.v.text
            );
            self.warn(no, m, t);
        }
        let entry = Lined {
            v: AddressEntry {
                text: value.to_string(),
                sub: e.sub,
            },
            line: no,
        };
        // The primary goes first: dagw reads the first entry as the primary.
        let list = &mut self.vrp.svis[i].ipv4;
        if e.sub {
            list.push(entry);
        } else {
            list.insert(0, entry);
        }
    }

    fn trunk_command(&mut self, i: usize, no: usize, t: &str, words: &[&str]) {
        let name = self.vrp.trunks[i].vrp_name();
        let w: Vec<String> = words.iter().map(|w| lower(w)).collect();
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["dfs-group", g, "m-lag", m] => match (number(g, 0, 65_535), number(m, 0, 65_535)) {
                (Some(g), Some(m)) => {
                    self.vrp.trunks[i].mlag = Some(Lined {
                        v: (g, m),
                        line: no,
                    })
                }
                _ => self.error(
                    no,
                    format!("{name}: dfs-group {g:?} m-lag {m:?}: not numbers"),
                    t,
                ),
            },
            ["dfs-group", ..] => self.error(
                no,
                format!("{name}: expected `dfs-group GROUP m-lag ID`"),
                t,
            ),
            ["m-lag", "up-delay", rest @ ..] => {
                let Some(v) = rest.first().and_then(|v| number(v, 0, 86_400)) else {
                    let m = format!("{name}: m-lag up-delay needs a number of seconds (0-86400)");
                    self.error(no, m, t);
                    return;
                };
                if rest.len() > 1 {
                    let m = format!(
                        "{name}: the delay is imported; `{}` is not mapped (dagw has no auto-recovery timer)",
                        words[3..].join(" ")
                    );
                    self.warn(no, m, t);
                }
                self.vrp.trunks[i].up_delay = Some(Lined { v, line: no });
            }
            ["peer-link", id] => match number(id, 0, 65_535) {
                Some(v) => self.vrp.trunks[i].peer_link = Some(Lined { v, line: no }),
                None => self.error(no, format!("{name}: peer-link {id:?} is not a number"), t),
            },
            ["peer-link", ..] => self.error(no, format!("{name}: expected `peer-link ID`"), t),
            _ => self.note(no, format!("not mapped (in interface {name})"), t),
        }
    }

    fn dfs_group(&mut self, no: usize, t: &str, words: &[&str], indent: usize) {
        let id = match words {
            [_, id] => number(id, 0, 65_535),
            _ => None,
        };
        let Some(id) = id else {
            self.error(no, "expected `dfs-group ID`".into(), t);
            self.other_name = t.chars().take(60).collect();
            self.open(View::Other, indent);
            return;
        };
        match &self.vrp.dfs {
            Some(d) if d.id != id => {
                let m = format!(
                    "a second DFS group (line {} has dfs-group {}); dagw pairs with one peer, this group is not mapped",
                    d.line, d.id
                );
                self.warn(no, m, t);
                self.other_name = t.into();
                self.open(View::Other, indent);
                return;
            }
            Some(_) => {}
            None => {
                self.vrp.dfs = Some(Dfs {
                    id,
                    line: no,
                    priority: None,
                    source: None,
                    peer: None,
                })
            }
        }
        self.open(View::Dfs, indent);
    }

    fn dfs_command(&mut self, no: usize, t: &str, words: &[&str]) {
        let w: Vec<String> = words.iter().map(|w| lower(w)).collect();
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["priority", p] => match (number(p, 1, 255), self.vrp.dfs.as_mut()) {
                (Some(v), Some(dfs)) => dfs.priority = Some(Lined { v, line: no }),
                (Some(_), None) => {}
                (None, _) => self.error(
                    no,
                    format!("dfs-group priority {p:?} is not a number in 1-255"),
                    t,
                ),
            },
            ["source", family @ ("ip" | "ipv6"), ..] => {
                let v6 = *family == "ipv6";
                self.dfs_source(no, t, words, v6);
            }
            ["authentication-mode", ..] => self.warn(
                no,
                "not mapped: the DFS password is stored encrypted and cannot be carried over; dagw's heartbeat key is a file ([peer] key_file, see --key-file)".into(),
                t,
            ),
            _ => self.note(no, "not mapped (in dfs-group)".into(), t),
        }
    }

    /// `source ip A [vpn-instance V] [peer P [udp-port N]]` (or `source ipv6`).
    fn dfs_source(&mut self, no: usize, t: &str, words: &[&str], v6: bool) {
        let parse_ip = |s: &str| -> Option<IpAddr> {
            let ip: IpAddr = s.parse().ok()?;
            (ip.is_ipv6() == v6).then_some(ip)
        };
        let family = if v6 { "an IPv6" } else { "an IPv4" };
        let Some(src) = words.get(2).and_then(|s| parse_ip(s)) else {
            self.error(
                no,
                format!("dfs-group source: expected {family} address"),
                t,
            );
            return;
        };
        let mut peer = None;
        let mut rest = &words[3..];
        let mut unmapped = Vec::new();
        while let [kw, value, tail @ ..] = rest {
            match lower(kw).as_str() {
                "peer" => match parse_ip(value) {
                    Some(ip) => peer = Some(ip),
                    None => {
                        let m = format!("dfs-group source: peer {value:?} is not {family} address");
                        self.error(no, m, t);
                        return;
                    }
                },
                "vpn-instance" | "udp-port" => unmapped.push(format!("{kw} {value}")),
                _ => {
                    self.error(no, format!("dfs-group source: unexpected {kw:?}"), t);
                    return;
                }
            }
            rest = tail;
        }
        if let [kw] = rest {
            self.error(no, format!("dfs-group source: {kw:?} lacks its value"), t);
            return;
        }
        if !unmapped.is_empty() {
            let m = format!(
                "the addresses are imported; `{}` is not mapped (dagw's heartbeat uses its own port, [peer] port, in the default VRF)",
                unmapped.join(" ")
            );
            self.warn(no, m, t);
        }
        let Some(dfs) = self.vrp.dfs.as_mut() else {
            return;
        };
        dfs.source = Some(Lined { v: src, line: no });
        dfs.peer = peer.map(|v| Lined { v, line: no });
    }
}

fn value_error(e: &huawei::ValueError) -> String {
    match &e.allowed {
        Some(a) => format!("{} (allowed: {a})", e.message),
        None => e.message.clone(),
    }
}
