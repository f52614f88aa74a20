//! TOML text → [`Draft`]: every section and key of DESIGN.md §4 read by hand from a
//! spanned `toml_edit` document, so that each problem can be reported at its own
//! line and column and the whole file is examined in one pass (all problems, not
//! the first).
//!
//! This stage checks what can be checked on one value alone (types, formats,
//! ranges, required keys, unknown keys, platform gates) and fills in defaults.
//! Rules that relate several values (duplicates, delay ordering, the member
//! up-delay rule) live in `validate.rs`, which also builds the final `Config`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use toml_edit::{Document, Item, TableLike, Value};

use super::diag::{Diagnostic, LineIndex, Severity};
use super::huawei::{self, ValueError, format_duration};
use super::model::{
    DelayMode, GatewayKind, Ipv4Prefix, Ipv6Prefix, Metrics, Platform, Uplinks, Vxlan,
};
use crate::core::mac::Mac;
use crate::core::rules;

/// Refuse larger files outright: a real config for 4094 VLANIFs plus VBDIFs is
/// well under this, and it bounds the parser's time and memory on hostile input.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// More gateways than any platform supports (4094 VLANIFs plus a generous number
/// of VBDIFs); beyond this the file is refused rather than half-applied.
pub const MAX_GATEWAYS: usize = 20_000;
/// Per gateway: one primary plus subs. Far above what the vendor allows per
/// interface; it only bounds work.
pub const MAX_ADDRESSES: usize = 256;
pub const MAX_MEMBERS: usize = 4096;
/// A bound on member delays so that `Instant + delay` can never overflow later.
pub const MAX_MEMBER_UP_DELAY: Duration = Duration::from_secs(24 * 3600);
pub const MIN_PEER_INTERVAL: Duration = Duration::from_millis(100);
/// Neighbour entries accepted from the peer, in all and per gateway.
pub const DEFAULT_MAX_SYNCED: u32 = 262_144;
pub const MAX_MAX_SYNCED: u32 = 1_048_576;
pub const DEFAULT_MAX_SYNCED_PER_GATEWAY: u32 = 65_536;
/// Huawei's ARP aging time: an entry nobody confirmed this long is probed.
pub const DEFAULT_NEIGHBOUR_AGING: Duration = Duration::from_secs(20 * 60);
pub const MIN_NEIGHBOUR_AGING: Duration = Duration::from_secs(60);
pub const MAX_NEIGHBOUR_AGING: Duration = Duration::from_secs(24 * 3600);
pub const MAX_PEER_INTERVAL: Duration = Duration::from_secs(10);
/// `sun_path` is 108 bytes including the terminating NUL.
pub const MAX_SOCKET_PATH: usize = 107;
/// Node names travel in the heartbeat; a hostname is at most 64 bytes.
pub const MAX_NODE_NAME: usize = 64;
pub const MAX_GATEWAY_NAME: usize = 64;

pub const DEFAULT_SOCKET: &str = "/run/dagw/dagw.sock";
pub const DEFAULT_STATE_DIR: &str = "/run/dagw";
pub const DEFAULT_PEER_PORT: u16 = 8742;
pub const DEFAULT_PEER_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_MULTIPLIER: u32 = 3;
pub const DEFAULT_PRIORITY: u32 = 100;
pub const DEFAULT_KEY_FILE: &str = "/etc/dagw/peer.key";
pub const DEFAULT_MEMBER_MIN_DELAY: Duration = Duration::from_secs(30);
pub const DEFAULT_DYNAMIC_MIN: Duration = Duration::from_secs(1);
pub const DEFAULT_DYNAMIC_MAX: Duration = Duration::from_secs(120);
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9742";

const ROOT_KEYS: &[&str] = &[
    "node", "peer", "mlag", "up_delay", "gateway", "metrics", "uplinks",
];
const UPLINKS_KEYS: &[&str] = &["interfaces", "min_up", "recover_delay"];
/// `[uplinks]`: at most this many interfaces.
pub const MAX_UPLINKS: usize = 64;
pub const DEFAULT_UPLINK_RECOVER_DELAY: Duration = Duration::from_secs(60);
pub const MAX_UPLINK_RECOVER_DELAY: Duration = Duration::from_secs(3600);
const NODE_KEYS: &[&str] = &["name", "platform", "socket", "state_dir"];
const PEER_KEYS: &[&str] = &[
    "local",
    "address",
    "port",
    "interval",
    "multiplier",
    "key_file",
    "previous_key_file",
    "priority",
    "peer_link",
    "strict",
    "max_synced",
    "max_synced_per_gateway",
    "neighbour_aging",
];
const MLAG_KEYS: &[&str] = &["members", "member_up_delay", "member_min_delay"];
const UP_DELAY_KEYS: &[&str] = &["mode", "min", "max"];
const METRICS_KEYS: &[&str] = &["listen"];
const GATEWAY_KEYS: &[&str] = &[
    "name",
    "vlanif",
    "vbdif",
    "interface",
    "mac",
    "ipv4",
    "ipv6",
    "up_delay",
    "device",
    "vxlan",
];
const VXLAN_KEYS: &[&str] = &["device", "bypass_vtep"];

/// A value together with where it came from: byte offset (of the value, or of
/// the table header when defaulted), its dotted key, and whether the operator
/// wrote it. Cross-checks need all three to report at the right place.
#[derive(Debug, Clone)]
pub(crate) struct At<T> {
    pub v: T,
    pub at: usize,
    pub key: String,
    pub explicit: bool,
}

impl<T> At<T> {
    fn given(v: T, f: &Field<'_>) -> Self {
        At {
            v,
            at: f.at,
            key: f.key.clone(),
            explicit: true,
        }
    }
    fn default(v: T, at: usize, key: String) -> Self {
        At {
            v,
            at,
            key,
            explicit: false,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Draft {
    pub node: NodeDraft,
    pub peer: Option<PeerDraft>,
    pub mlag: MlagDraft,
    pub up_delay: UpDelayDraft,
    pub metrics: Option<Metrics>,
    pub uplinks: Option<Uplinks>,
    pub gateways: Vec<GatewayDraft>,
    /// Where to report "no gateways at all".
    pub gateways_at: usize,
}

#[derive(Debug)]
pub(crate) struct NodeDraft {
    pub name: String,
    pub platform: Platform,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
}

#[derive(Debug)]
pub(crate) struct PeerDraft {
    pub local: Option<At<IpAddr>>,
    pub address: Option<At<IpAddr>>,
    pub port: u16,
    pub interval: Duration,
    pub multiplier: u32,
    /// None when the written value was unusable (already reported), so that
    /// `load` does not go on to complain about the default file.
    pub key_file: Option<At<PathBuf>>,
    /// The old key accepted during a key changeover; None when not written
    /// or unusable (already reported).
    pub previous_key_file: Option<At<PathBuf>>,
    pub priority: u32,
    pub peer_link: Option<At<String>>,
    pub strict: bool,
    pub max_synced: u32,
    pub max_synced_per_gateway: u32,
    pub neighbour_aging: Duration,
}

#[derive(Debug)]
pub(crate) struct MlagDraft {
    pub header: usize,
    pub members: Vec<At<String>>,
    /// None when the written value was invalid (already reported).
    pub member_up_delay: Option<At<Duration>>,
    /// None when not written (the default depends on member_up_delay) or invalid.
    pub member_min_delay: Option<At<Duration>>,
}

#[derive(Debug)]
pub(crate) struct UpDelayDraft {
    pub header: usize,
    pub mode: DelayMode,
    /// None when not written (the default is clamped to max) or invalid.
    pub min: Option<At<Duration>>,
    pub max: Option<At<Duration>>,
}

#[derive(Debug)]
pub(crate) struct GatewayDraft {
    pub index: usize,
    pub name: Option<At<String>>,
    pub kind: Option<At<GatewayKind>>,
    pub interface: Option<At<String>>,
    pub mac: Option<At<Mac>>,
    /// The `mac` text as written, for messages.
    pub mac_text: String,
    pub ipv4: Vec<At<Ipv4Prefix>>,
    pub ipv6: Vec<At<Ipv6Prefix>>,
    pub ipv6_enabled: bool,
    pub up_delay: Option<At<Duration>>,
    pub device: Option<At<String>>,
    pub vxlan: Option<At<Vxlan>>,
}

/// Collects diagnostics and turns byte offsets into line/column.
pub(crate) struct Sink<'a> {
    idx: LineIndex<'a>,
    pub diags: Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Sink {
            idx: LineIndex::new(text),
            diags: Vec::new(),
        }
    }

    pub(crate) fn push(
        &mut self,
        severity: Severity,
        at: usize,
        key: &str,
        message: impl Into<String>,
        allowed: Option<String>,
    ) {
        let (line, col) = self.idx.position(at);
        self.diags.push(Diagnostic {
            severity,
            line,
            col,
            key: key.to_string(),
            message: message.into(),
            allowed,
        });
    }

    pub(crate) fn error(&mut self, at: usize, key: &str, e: ValueError) {
        self.push(Severity::Error, at, key, e.message, e.allowed);
    }

    pub(crate) fn err(
        &mut self,
        at: usize,
        key: &str,
        msg: impl Into<String>,
        allowed: Option<&str>,
    ) {
        self.push(Severity::Error, at, key, msg, allowed.map(str::to_string));
    }

    pub(crate) fn warn(
        &mut self,
        at: usize,
        key: &str,
        msg: impl Into<String>,
        allowed: Option<&str>,
    ) {
        self.push(Severity::Warning, at, key, msg, allowed.map(str::to_string));
    }

    pub(crate) fn pos(&self, at: usize) -> (usize, usize) {
        self.idx.position(at)
    }

    pub(crate) fn line(&self, at: usize) -> usize {
        self.idx.position(at).0
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }
}

/// A TOML node: table entries are `Item`s, array elements are `Value`s.
#[derive(Clone, Copy)]
enum Node<'t> {
    Item(&'t Item),
    Value(&'t Value),
}

impl<'t> Node<'t> {
    fn type_name(self) -> &'static str {
        match self {
            Node::Item(i) => i.type_name(),
            Node::Value(v) => v.type_name(),
        }
    }
    fn value(self) -> Option<&'t Value> {
        match self {
            Node::Item(i) => i.as_value(),
            Node::Value(v) => Some(v),
        }
    }
    fn table_like(self) -> Option<&'t dyn TableLike> {
        match self {
            Node::Item(i) => i.as_table_like(),
            Node::Value(Value::InlineTable(t)) => Some(t),
            Node::Value(_) => None,
        }
    }
}

/// One key (or array element) with its dotted path and positions.
struct Field<'t> {
    key: String,
    /// Offset of the value.
    at: usize,
    node: Node<'t>,
}

/// A table's recognised entries; unknown ones were reported on opening.
struct Section<'t> {
    path: String,
    header: usize,
    fields: Vec<(&'t str, Field<'t>)>,
}

impl<'t> Section<'t> {
    fn get(&self, name: &str) -> Option<&Field<'t>> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, f)| f)
    }
    fn key(&self, name: &str) -> String {
        join(&self.path, name)
    }
}

/// Dotted path; keys that are not bare words are quoted so a rendered line
/// stays one line and unambiguous.
fn join(path: &str, name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let name = if bare {
        name.to_string()
    } else {
        format!("{name:?}")
    };
    if path.is_empty() {
        name
    } else {
        format!("{path}.{name}")
    }
}

fn span_start(span: Option<std::ops::Range<usize>>, fallback: usize) -> usize {
    span.map(|r| r.start).unwrap_or(fallback)
}

fn open<'t>(
    sink: &mut Sink<'_>,
    table: &'t dyn TableLike,
    path: String,
    header: usize,
    known: &[&str],
) -> Section<'t> {
    let mut fields = Vec::new();
    for (name, item) in table.iter() {
        let key_at = span_start(
            table.get_key_value(name).and_then(|(k, _)| k.span()),
            header,
        );
        let key = join(&path, name);
        if !known.contains(&name) {
            let what = if path.is_empty() { "section" } else { "key" };
            sink.err(
                key_at,
                &key,
                format!("unknown {what} {name:?}"),
                Some(&known.join(", ")),
            );
            continue;
        }
        let at = span_start(item.span(), key_at);
        fields.push((
            name,
            Field {
                key,
                at,
                node: Node::Item(item),
            },
        ));
    }
    Section {
        path,
        header,
        fields,
    }
}

fn type_error(sink: &mut Sink<'_>, f: &Field<'_>, expected: &str) {
    sink.err(
        f.at,
        &f.key,
        format!("expected {expected}, found {}", f.node.type_name()),
        None,
    );
}

fn get_str<'t>(sink: &mut Sink<'_>, f: &Field<'t>) -> Option<&'t str> {
    let s = f.node.value().and_then(Value::as_str);
    if s.is_none() {
        type_error(sink, f, "a string");
    }
    s
}

fn get_int(sink: &mut Sink<'_>, f: &Field<'_>) -> Option<i64> {
    let i = f.node.value().and_then(Value::as_integer);
    if i.is_none() {
        type_error(sink, f, "an integer");
    }
    i
}

fn get_bool(sink: &mut Sink<'_>, f: &Field<'_>) -> Option<bool> {
    let b = f.node.value().and_then(Value::as_bool);
    if b.is_none() {
        type_error(sink, f, "true or false");
    }
    b
}

/// An integer within `lo..=hi`, with the range in the message.
fn get_ranged(sink: &mut Sink<'_>, f: &Field<'_>, lo: i64, hi: i64, what: &str) -> Option<i64> {
    let i = get_int(sink, f)?;
    if (lo..=hi).contains(&i) {
        Some(i)
    } else {
        sink.err(
            f.at,
            &f.key,
            format!("{what} {i} is out of range"),
            Some(&format!("{lo}-{hi}")),
        );
        None
    }
}

fn get_duration(sink: &mut Sink<'_>, f: &Field<'_>) -> Option<Duration> {
    let r = match f.node.value() {
        Some(Value::Integer(i)) => huawei::duration_from_secs(*i.value()),
        Some(Value::String(s)) => huawei::parse_duration(s.value()),
        _ => {
            sink.err(
                f.at,
                &f.key,
                format!("expected a duration, found {}", f.node.type_name()),
                Some(huawei::DURATION_ALLOWED),
            );
            return None;
        }
    };
    r.map_err(|e| sink.error(f.at, &f.key, e)).ok()
}

/// A duration within `lo..=hi`.
fn get_duration_in(
    sink: &mut Sink<'_>,
    f: &Field<'_>,
    lo: Duration,
    hi: Duration,
    why: &str,
) -> Option<Duration> {
    let d = get_duration(sink, f)?;
    if d < lo || d > hi {
        sink.err(
            f.at,
            &f.key,
            format!("{} is out of range{why}", format_duration(d)),
            Some(&format!(
                "{} to {}",
                format_duration(lo),
                format_duration(hi)
            )),
        );
        return None;
    }
    Some(d)
}

fn get_array<'t>(sink: &mut Sink<'_>, f: &Field<'t>, expected: &str) -> Option<Vec<Field<'t>>> {
    let Some(arr) = f.node.value().and_then(Value::as_array) else {
        type_error(sink, f, expected);
        return None;
    };
    Some(
        arr.iter()
            .enumerate()
            .map(|(i, v)| Field {
                key: format!("{}[{i}]", f.key),
                at: span_start(v.span(), f.at),
                node: Node::Value(v),
            })
            .collect(),
    )
}

fn get_netdev(sink: &mut Sink<'_>, f: &Field<'_>) -> Option<String> {
    let s = get_str(sink, f)?;
    huawei::check_netdev_name(s)
        .map_err(|e| sink.error(f.at, &f.key, e))
        .ok()?;
    Some(s.to_string())
}

fn get_ip(sink: &mut Sink<'_>, f: &Field<'_>) -> Option<IpAddr> {
    let s = get_str(sink, f)?;
    let allowed = Some("a unicast IPv4 or IPv6 address, e.g. \"203.0.113.2\"");
    let Ok(ip) = s.parse::<IpAddr>() else {
        sink.err(f.at, &f.key, format!("{s:?} is not an IP address"), allowed);
        return None;
    };
    let bad = match ip {
        IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast(),
    };
    if bad {
        sink.err(
            f.at,
            &f.key,
            format!("{ip} is not a unicast address"),
            allowed,
        );
        return None;
    }
    Some(ip)
}

/// An absolute path; `max` bounds its length in bytes.
fn get_abs_path(sink: &mut Sink<'_>, f: &Field<'_>, max: Option<usize>) -> Option<PathBuf> {
    let s = get_str(sink, f)?;
    if !s.starts_with('/') {
        sink.err(
            f.at,
            &f.key,
            format!("{s:?} is not an absolute path"),
            Some("an absolute path, starting with '/'"),
        );
        return None;
    }
    if s.contains('\0') {
        sink.err(f.at, &f.key, "a path cannot contain NUL", None);
        return None;
    }
    if let Some(max) = max
        && s.len() > max
    {
        sink.err(
            f.at,
            &f.key,
            format!(
                "path is {} bytes; a Unix socket path is at most {max}",
                s.len()
            ),
            None,
        );
        return None;
    }
    Some(PathBuf::from(s))
}

/// A name that travels in messages and logs: non-empty, bounded, no whitespace
/// or control characters.
fn check_label(s: &str, max: usize) -> Result<(), ValueError> {
    let allowed = format!("1-{max} characters without whitespace or control characters");
    if s.is_empty() {
        Err(ValueError::new("a name cannot be empty", allowed))
    } else if s.len() > max {
        Err(ValueError::new(
            format!("{s:?} is {} bytes long", s.len()),
            allowed,
        ))
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(ValueError::new(
            format!("{s:?} contains whitespace or control characters"),
            allowed,
        ))
    } else {
        Ok(())
    }
}

/// A table-valued key (`[x]`, `x = {…}`, or dotted `x.y = …`).
fn sub_table<'t>(sink: &mut Sink<'_>, f: &Field<'t>) -> Option<&'t dyn TableLike> {
    let t = f.node.table_like();
    if t.is_none() {
        type_error(sink, f, "a table");
    }
    t
}

/// Where to report missing keys of a table: its header, else its first key.
fn table_header(f: &Field<'_>) -> usize {
    f.at
}

/// Parses the whole document. Never fails: problems go to `sink`, and the draft
/// carries defaults or `None` where a value was unusable.
pub(crate) fn parse(text: &str, hostname: &str, sink: &mut Sink<'_>) -> Option<Draft> {
    if text.len() > MAX_FILE_BYTES {
        sink.err(
            0,
            "file",
            format!(
                "the file is {} bytes; dagw refuses configurations over {} bytes",
                text.len(),
                MAX_FILE_BYTES
            ),
            None,
        );
        return None;
    }
    let doc = match Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let at = span_start(e.span(), 0);
            let msg = e.message().trim().to_string();
            // toml_edit says only "duplicate key"; name it, as the operator
            // needs to know which one.
            let msg = match e.span() {
                Some(r) if msg == "duplicate key" => match text.get(r) {
                    Some(k) if !k.is_empty() => {
                        format!("duplicate key {k}; each key may appear once per table")
                    }
                    _ => msg,
                },
                _ => msg,
            };
            sink.err(at, "syntax", msg, None);
            return None;
        }
    };
    let root = open(sink, doc.as_table(), String::new(), 0, ROOT_KEYS);

    let node = parse_node(sink, &root, hostname);
    let peer = root.get("peer").and_then(|f| parse_peer(sink, f));
    let mlag = parse_mlag(sink, root.get("mlag"));
    let up_delay = parse_up_delay(sink, root.get("up_delay"));
    let metrics = root.get("metrics").and_then(|f| parse_metrics(sink, f));
    let uplinks = root.get("uplinks").and_then(|f| parse_uplinks(sink, f));
    let (gateways, gateways_at) = match root.get("gateway") {
        Some(f) => (parse_gateways(sink, f, node.platform), f.at),
        None => (Vec::new(), 0),
    };
    Some(Draft {
        node,
        peer,
        mlag,
        up_delay,
        metrics,
        uplinks,
        gateways,
        gateways_at,
    })
}

fn parse_node(sink: &mut Sink<'_>, root: &Section<'_>, hostname: &str) -> NodeDraft {
    let mut node = NodeDraft {
        name: hostname.to_string(),
        platform: Platform::Generic,
        socket: PathBuf::from(DEFAULT_SOCKET),
        state_dir: PathBuf::from(DEFAULT_STATE_DIR),
    };
    let Some(nf) = root.get("node") else {
        if let Err(e) = check_label(hostname, MAX_NODE_NAME) {
            sink.err(
                0,
                "node.name",
                format!(
                    "the default node name (the hostname) is unusable: {}",
                    e.message
                ),
                Some("set [node] name explicitly"),
            );
        }
        return node;
    };
    let Some(t) = sub_table(sink, nf) else {
        return node;
    };
    let s = open(sink, t, "node".into(), table_header(nf), NODE_KEYS);
    match s.get("name") {
        Some(f) => {
            if let Some(v) = get_str(sink, f) {
                match check_label(v, MAX_NODE_NAME) {
                    Ok(()) => node.name = v.to_string(),
                    Err(e) => sink.error(f.at, &f.key, e),
                }
            }
        }
        None => {
            if let Err(e) = check_label(hostname, MAX_NODE_NAME) {
                sink.err(
                    s.header,
                    &s.key("name"),
                    format!(
                        "the default node name (the hostname) is unusable: {}",
                        e.message
                    ),
                    Some("set name explicitly"),
                );
            }
        }
    }
    if let Some(f) = s.get("platform")
        && let Some(v) = get_str(sink, f)
    {
        let all = [
            Platform::Generic,
            Platform::Ce6820h,
            Platform::Ce6820hK,
            Platform::Ce6820s,
            Platform::Ce6885Ll,
        ];
        match all.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(v)) {
            Some(p) => node.platform = p,
            None => sink.err(
                f.at,
                &f.key,
                format!("unknown platform {v:?}"),
                Some(Platform::ALLOWED),
            ),
        }
    }
    if let Some(f) = s.get("socket")
        && let Some(p) = get_abs_path(sink, f, Some(MAX_SOCKET_PATH))
    {
        node.socket = p;
    }
    if let Some(f) = s.get("state_dir")
        && let Some(p) = get_abs_path(sink, f, None)
    {
        node.state_dir = p;
    }
    node
}

fn parse_peer(sink: &mut Sink<'_>, pf: &Field<'_>) -> Option<PeerDraft> {
    let t = sub_table(sink, pf)?;
    let s = open(sink, t, "peer".into(), table_header(pf), PEER_KEYS);
    let mut peer = PeerDraft {
        local: None,
        address: None,
        port: DEFAULT_PEER_PORT,
        interval: DEFAULT_PEER_INTERVAL,
        multiplier: DEFAULT_MULTIPLIER,
        key_file: Some(At::default(
            PathBuf::from(DEFAULT_KEY_FILE),
            s.header,
            s.key("key_file"),
        )),
        previous_key_file: None,
        priority: DEFAULT_PRIORITY,
        peer_link: None,
        strict: false,
        max_synced: DEFAULT_MAX_SYNCED,
        max_synced_per_gateway: DEFAULT_MAX_SYNCED_PER_GATEWAY,
        neighbour_aging: DEFAULT_NEIGHBOUR_AGING,
    };
    for (name, example) in [("local", "203.0.113.1"), ("address", "203.0.113.2")] {
        match s.get(name) {
            Some(f) => {
                let ip = get_ip(sink, f).map(|ip| At::given(ip, f));
                if name == "local" {
                    peer.local = ip;
                } else {
                    peer.address = ip;
                }
            }
            None => {
                let what = if name == "local" {
                    "the heartbeat source address"
                } else {
                    "the peer's address"
                };
                sink.err(
                    s.header,
                    &s.key(name),
                    format!("missing required key {name} ({what}) in [peer]"),
                    Some(&format!("an IP address, e.g. {name} = \"{example}\"")),
                );
            }
        }
    }
    if let Some(f) = s.get("port")
        && let Some(p) = get_ranged(sink, f, 1, 65535, "port")
    {
        peer.port = p as u16;
    }
    if let Some(f) = s.get("interval")
        && let Some(d) = get_duration_in(sink, f, MIN_PEER_INTERVAL, MAX_PEER_INTERVAL, "")
    {
        peer.interval = d;
    }
    if let Some(f) = s.get("multiplier")
        && let Some(m) = get_ranged(sink, f, 2, 20, "multiplier")
    {
        peer.multiplier = m as u32;
    }
    if let Some(f) = s.get("priority")
        && let Some(p) = get_ranged(sink, f, 0, 255, "priority")
    {
        peer.priority = p as u32;
    }
    if let Some(f) = s.get("key_file") {
        peer.key_file = get_key_path(sink, f, "key_file", "/etc/dagw/peer.key");
    }
    if let Some(f) = s.get("previous_key_file") {
        peer.previous_key_file =
            get_key_path(sink, f, "previous_key_file", "/etc/dagw/peer.key.old");
    }
    if let Some(f) = s.get("peer_link") {
        peer.peer_link = get_netdev(sink, f).map(|n| At::given(n, f));
    }
    if let Some(f) = s.get("max_synced")
        && let Some(n) = get_ranged(sink, f, 1, i64::from(MAX_MAX_SYNCED), "max_synced")
    {
        peer.max_synced = n as u32;
    }
    if let Some(f) = s.get("max_synced_per_gateway") {
        // per gateway: never more than in all
        let hi = i64::from(peer.max_synced);
        if let Some(n) = get_ranged(
            sink,
            f,
            1,
            hi,
            "max_synced_per_gateway (at most max_synced)",
        ) {
            peer.max_synced_per_gateway = n as u32;
        }
    } else {
        peer.max_synced_per_gateway = peer.max_synced_per_gateway.min(peer.max_synced);
    }
    if let Some(f) = s.get("neighbour_aging")
        && let Some(d) = get_duration_in(sink, f, MIN_NEIGHBOUR_AGING, MAX_NEIGHBOUR_AGING, "")
    {
        peer.neighbour_aging = d;
    }
    if let Some(f) = s.get("strict")
        && let Some(b) = get_bool(sink, f)
    {
        peer.strict = b;
    }
    Some(peer)
}

/// A key file path: a non-empty string without NUL; None (reported) otherwise.
fn get_key_path(
    sink: &mut Sink<'_>,
    f: &Field<'_>,
    name: &str,
    example: &str,
) -> Option<At<PathBuf>> {
    match get_str(sink, f) {
        Some(v) if !v.is_empty() && !v.contains('\0') => Some(At::given(PathBuf::from(v), f)),
        Some(_) => {
            sink.err(
                f.at,
                &f.key,
                format!("{name} must name a file"),
                Some(&format!("a path, e.g. \"{example}\"")),
            );
            None
        }
        None => None,
    }
}

fn parse_mlag(sink: &mut Sink<'_>, mf: Option<&Field<'_>>) -> MlagDraft {
    let mut mlag = MlagDraft {
        header: 0,
        members: Vec::new(),
        member_up_delay: Some(At::default(
            rules::DEFAULT_MEMBER_UP_DELAY,
            0,
            "mlag.member_up_delay".into(),
        )),
        member_min_delay: None,
    };
    let Some(mf) = mf else { return mlag };
    let Some(t) = sub_table(sink, mf) else {
        return mlag;
    };
    let s = open(sink, t, "mlag".into(), table_header(mf), MLAG_KEYS);
    mlag.header = s.header;
    if let Some(d) = &mut mlag.member_up_delay {
        d.at = s.header;
    }
    if let Some(f) = s.get("members")
        && let Some(items) = get_array(sink, f, "an array of interface names")
    {
        if items.len() > MAX_MEMBERS {
            sink.err(
                f.at,
                &f.key,
                format!("{} members is too many", items.len()),
                Some(&format!("at most {MAX_MEMBERS}")),
            );
        } else {
            for item in &items {
                if let Some(n) = get_netdev(sink, item) {
                    mlag.members.push(At::given(n, item));
                }
            }
        }
    }
    if let Some(f) = s.get("member_up_delay") {
        mlag.member_up_delay = get_duration_in(sink, f, Duration::ZERO, MAX_MEMBER_UP_DELAY, "")
            .map(|d| At::given(d, f));
    }
    if let Some(f) = s.get("member_min_delay") {
        mlag.member_min_delay = get_duration_in(sink, f, Duration::ZERO, MAX_MEMBER_UP_DELAY, "")
            .map(|d| At::given(d, f));
    }
    mlag
}

fn parse_up_delay(sink: &mut Sink<'_>, uf: Option<&Field<'_>>) -> UpDelayDraft {
    let mut ud = UpDelayDraft {
        header: 0,
        mode: DelayMode::Static,
        min: None,
        max: Some(At::default(DEFAULT_DYNAMIC_MAX, 0, "up_delay.max".into())),
    };
    let Some(uf) = uf else { return ud };
    let Some(t) = sub_table(sink, uf) else {
        return ud;
    };
    let s = open(sink, t, "up_delay".into(), table_header(uf), UP_DELAY_KEYS);
    ud.header = s.header;
    if let Some(m) = &mut ud.max {
        m.at = s.header;
    }
    if let Some(f) = s.get("mode")
        && let Some(v) = get_str(sink, f)
    {
        match v {
            "static" => ud.mode = DelayMode::Static,
            "dynamic" => ud.mode = DelayMode::Dynamic,
            _ => sink.err(
                f.at,
                &f.key,
                format!("unknown up-delay mode {v:?}"),
                Some("static, dynamic"),
            ),
        }
    }
    let range = " (the vendor's protocol up-delay-time range)";
    if let Some(f) = s.get("min") {
        ud.min = get_duration_in(sink, f, Duration::ZERO, rules::MAX_UP_DELAY, range)
            .map(|d| At::given(d, f));
    }
    if let Some(f) = s.get("max") {
        ud.max = get_duration_in(sink, f, Duration::ZERO, rules::MAX_UP_DELAY, range)
            .map(|d| At::given(d, f));
    }
    ud
}

fn parse_metrics(sink: &mut Sink<'_>, mf: &Field<'_>) -> Option<Metrics> {
    let t = sub_table(sink, mf)?;
    let s = open(sink, t, "metrics".into(), table_header(mf), METRICS_KEYS);
    let mut listen: SocketAddr = DEFAULT_METRICS_LISTEN.parse().ok()?;
    if let Some(f) = s.get("listen")
        && let Some(v) = get_str(sink, f)
    {
        let allowed = Some("ADDRESS:PORT, e.g. \"127.0.0.1:9742\" or \"[::1]:9742\"");
        match v.parse::<SocketAddr>() {
            Ok(a) if a.port() != 0 => listen = a,
            Ok(_) => sink.err(f.at, &f.key, "port 0 is not a listening port", allowed),
            Err(_) => sink.err(
                f.at,
                &f.key,
                format!("{v:?} is not an address and port"),
                allowed,
            ),
        }
    }
    Some(Metrics { listen })
}

/// `[uplinks]` (Huawei monitor-link): the interfaces whose loss takes the
/// members down.
fn parse_uplinks(sink: &mut Sink<'_>, uf: &Field<'_>) -> Option<Uplinks> {
    let t = sub_table(sink, uf)?;
    let s = open(sink, t, "uplinks".into(), table_header(uf), UPLINKS_KEYS);
    let mut interfaces: Vec<String> = Vec::new();
    let mut ok = true;
    match s.get("interfaces") {
        None => {
            sink.err(
                s.header,
                &s.key("interfaces"),
                "missing required key interfaces (the uplinks to track) in [uplinks]",
                Some("1 to 64 interface names, e.g. interfaces = [\"uplink1\", \"uplink2\"]"),
            );
            ok = false;
        }
        Some(f) => match get_array(sink, f, "an array of interface names") {
            Some(items) if items.is_empty() || items.len() > MAX_UPLINKS => {
                sink.err(
                    f.at,
                    &f.key,
                    format!("{} uplinks", items.len()),
                    Some(&format!("1 to {MAX_UPLINKS} interface names")),
                );
                ok = false;
            }
            Some(items) => {
                for item in &items {
                    match get_netdev(sink, item) {
                        Some(n) if interfaces.contains(&n) => {
                            sink.err(
                                item.at,
                                &item.key,
                                format!("uplink {n} is listed twice"),
                                None,
                            );
                            ok = false;
                        }
                        Some(n) => interfaces.push(n),
                        None => ok = false,
                    }
                }
            }
            None => ok = false,
        },
    }
    let mut min_up = 1u32;
    if let Some(f) = s.get("min_up") {
        let hi = interfaces.len().max(1) as i64;
        match get_ranged(sink, f, 1, hi, "min_up (at most the number of uplinks)") {
            Some(n) => min_up = n as u32,
            None => ok = false,
        }
    }
    let mut recover_delay = DEFAULT_UPLINK_RECOVER_DELAY;
    if let Some(f) = s.get("recover_delay") {
        match get_duration_in(sink, f, Duration::ZERO, MAX_UPLINK_RECOVER_DELAY, "") {
            Some(d) => recover_delay = d,
            None => ok = false,
        }
    }
    ok.then_some(Uplinks {
        interfaces,
        min_up,
        recover_delay,
    })
}

fn parse_gateways(sink: &mut Sink<'_>, gf: &Field<'_>, platform: Platform) -> Vec<GatewayDraft> {
    // `[[gateway]]` tables, or the equivalent `gateway = [{…}, …]`.
    let tables: Vec<(usize, &dyn TableLike)> = match gf.node {
        Node::Item(Item::ArrayOfTables(a)) => a
            .iter()
            .map(|t| (span_start(t.span(), gf.at), t as &dyn TableLike))
            .collect(),
        Node::Item(Item::Value(Value::Array(a))) => {
            let mut v = Vec::new();
            for (i, e) in a.iter().enumerate() {
                match e.as_inline_table() {
                    Some(t) => v.push((span_start(e.span(), gf.at), t as &dyn TableLike)),
                    None => sink.err(
                        span_start(e.span(), gf.at),
                        &format!("gateway[{i}]"),
                        format!("expected a table, found {}", e.type_name()),
                        Some("[[gateway]] tables"),
                    ),
                }
            }
            v
        }
        _ => {
            let hint = if gf.node.table_like().is_some() {
                "; write [[gateway]] (double brackets), one per gateway"
            } else {
                ""
            };
            sink.err(
                gf.at,
                &gf.key,
                format!(
                    "expected an array of tables, found {}{hint}",
                    gf.node.type_name()
                ),
                Some("[[gateway]] tables"),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(tables.len().min(MAX_GATEWAYS));
    for (i, (header, t)) in tables.into_iter().enumerate() {
        if i == MAX_GATEWAYS {
            sink.err(
                header,
                &format!("gateway[{i}]"),
                "too many gateways; the rest of the file is not examined",
                Some(&format!("at most {MAX_GATEWAYS} gateways")),
            );
            break;
        }
        out.push(parse_gateway(sink, i, header, t, platform));
    }
    out
}

fn parse_gateway(
    sink: &mut Sink<'_>,
    index: usize,
    header: usize,
    t: &dyn TableLike,
    platform: Platform,
) -> GatewayDraft {
    let s = open(sink, t, format!("gateway[{index}]"), header, GATEWAY_KEYS);
    let mut g = GatewayDraft {
        index,
        name: None,
        kind: None,
        interface: None,
        mac: None,
        mac_text: String::new(),
        ipv4: Vec::new(),
        ipv6: Vec::new(),
        ipv6_enabled: false,
        up_delay: None,
        device: None,
        vxlan: None,
    };

    // Kind: exactly one of vlanif / vbdif.
    let vlanif = s.get("vlanif");
    let vbdif = s.get("vbdif");
    match (vlanif, vbdif) {
        (Some(_), Some(f)) => sink.err(
            f.at,
            &f.key,
            "a gateway is either a VLANIF or a VBDIF; give exactly one of vlanif and vbdif",
            None,
        ),
        (None, None) => sink.err(
            header,
            &s.key("vlanif"),
            format!(
                "missing vlanif or vbdif in {}: which VLAN or bridge domain is this gateway for?",
                s.path
            ),
            Some("vlanif = 1-4094 or vbdif = 1-16777215"),
        ),
        (Some(f), None) => {
            if let Some(id) = get_ranged(sink, f, 1, 4094, "VLAN id") {
                g.kind = Some(At::given(GatewayKind::Vlanif(id as u16), f));
            }
        }
        (None, Some(f)) => {
            if let Some(id) = get_ranged(sink, f, 1, 16_777_215, "bridge-domain id") {
                if platform.supports_vxlan() {
                    g.kind = Some(At::given(GatewayKind::Vbdif(id as u32), f));
                } else {
                    sink.err(
                        f.at,
                        &f.key,
                        format!(
                            "platform {} does not support VXLAN, so it has no VBDIF gateways",
                            platform.as_str()
                        ),
                        Some("vlanif gateways on this platform"),
                    );
                }
            }
        }
    }
    let kind = g.kind.as_ref().map(|k| k.v);

    if let Some(f) = s.get("name") {
        if let Some(v) = get_str(sink, f) {
            match check_label(v, MAX_GATEWAY_NAME) {
                Ok(()) => g.name = Some(At::given(v.to_string(), f)),
                Err(e) => sink.error(f.at, &f.key, e),
            }
        }
    } else if let Some(k) = kind {
        g.name = Some(At::default(
            format!("{}{}", k.kind_str(), k.id()),
            header,
            s.key("name"),
        ));
    }

    match s.get("interface") {
        Some(f) => g.interface = get_netdev(sink, f).map(|n| At::given(n, f)),
        None => sink.err(
            header,
            &s.key("interface"),
            format!(
                "missing required key interface in {}: the SVI device of the VLAN / BD",
                s.path
            ),
            Some("an interface name, e.g. interface = \"br10\""),
        ),
    }

    match s.get("mac") {
        Some(f) => {
            if let Some(v) = get_str(sink, f) {
                g.mac_text = v.to_string();
                match v.parse::<Mac>() {
                    Ok(mac) => match huawei::check_gateway_mac(v, mac) {
                        Ok(()) => g.mac = Some(At::given(mac, f)),
                        Err(e) => sink.error(f.at, &f.key, e),
                    },
                    Err(_) => sink.err(
                        f.at,
                        &f.key,
                        format!("{v:?} is not a MAC address"),
                        Some("HHHH-HHHH-HHHH or HH:HH:HH:HH:HH:HH, e.g. \"0000-5e00-0101\""),
                    ),
                }
            }
        }
        None => sink.err(
            header,
            &s.key("mac"),
            format!(
                "missing required key mac in {}: both peers must carry the same virtual MAC",
                s.path
            ),
            Some("e.g. mac = \"0000-5e00-0101\" (advised 0000-5e00-01XX or 0000-5e00-02XX)"),
        ),
    }

    if let Some(f) = s.get("ipv4")
        && let Some(items) = get_array(sink, f, "an array of strings")
    {
        if items.len() > MAX_ADDRESSES {
            sink.err(
                f.at,
                &f.key,
                format!("{} addresses is too many", items.len()),
                Some(&format!("at most {MAX_ADDRESSES}")),
            );
        } else {
            for (i, item) in items.iter().enumerate() {
                let Some(v) = get_str(sink, item) else {
                    continue;
                };
                match huawei::parse_ipv4_entry(v) {
                    Ok(e) if e.sub && i == 0 => sink.err(
                        item.at,
                        &item.key,
                        format!(
                            "{v:?}: the first entry is the primary address and cannot be `sub`"
                        ),
                        Some("put the primary address first, then the sub addresses"),
                    ),
                    Ok(e) => g.ipv4.push(At::given(e.prefix, item)),
                    Err(e) => sink.error(item.at, &item.key, e),
                }
            }
        }
    }

    if let Some(f) = s.get("ipv6")
        && let Some(items) = get_array(sink, f, "an array of strings")
    {
        if !platform.supports_ipv6() && !items.is_empty() {
            sink.err(
                f.at,
                &f.key,
                format!("platform {} does not support IPv6", platform.as_str()),
                Some("ipv4 only on this platform"),
            );
        } else if items.len() > MAX_ADDRESSES {
            sink.err(
                f.at,
                &f.key,
                format!("{} addresses is too many", items.len()),
                Some(&format!("at most {MAX_ADDRESSES}")),
            );
        } else {
            g.ipv6_enabled = !items.is_empty();
            for item in &items {
                let Some(v) = get_str(sink, item) else {
                    continue;
                };
                match huawei::parse_ipv6_entry(v) {
                    // Without a valid vMAC an eui-64 address cannot be
                    // derived; the MAC's own error has been reported.
                    Ok(e) => {
                        if let Some(mac) = &g.mac {
                            g.ipv6.push(At::given(e.resolve(mac.v), item));
                        } else if !e.eui64 {
                            g.ipv6.push(At::given(e.prefix, item));
                        }
                    }
                    Err(e) => sink.error(item.at, &item.key, e),
                }
            }
        }
    }

    let default_delay = match kind {
        Some(GatewayKind::Vbdif(_)) => rules::VBDIF_DEFAULT_UP_DELAY,
        _ => rules::VLANIF_DEFAULT_UP_DELAY,
    };
    match s.get("up_delay") {
        Some(f) => {
            g.up_delay = get_duration_in(
                sink,
                f,
                Duration::ZERO,
                rules::MAX_UP_DELAY,
                " (the vendor's protocol up-delay-time range)",
            )
            .map(|d| At::given(d, f));
        }
        None => g.up_delay = Some(At::default(default_delay, header, s.key("up_delay"))),
    }

    match s.get("device") {
        Some(f) => g.device = get_netdev(sink, f).map(|n| At::given(n, f)),
        None => {
            if let Some(k) = kind {
                let prefix = match k {
                    GatewayKind::Vlanif(_) => "gw",
                    GatewayKind::Vbdif(_) => "gwb",
                };
                g.device = Some(At::default(
                    format!("{prefix}{}", k.id()),
                    header,
                    s.key("device"),
                ));
            }
        }
    }

    match (s.get("vxlan"), kind) {
        (Some(f), Some(GatewayKind::Vlanif(_))) => sink.err(
            f.at,
            &f.key,
            "vxlan is for VBDIF gateways only; a VLANIF has no bypass VXLAN tunnel",
            Some("remove vxlan, or use vbdif"),
        ),
        (Some(f), _) => g.vxlan = parse_vxlan(sink, f),
        (None, Some(GatewayKind::Vbdif(_))) => sink.err(
            header,
            &s.key("vxlan"),
            format!(
                "missing vxlan in {}: a VBDIF gateway needs the static bypass VXLAN tunnel to the peer",
                s.path
            ),
            Some("vxlan = { device = \"vxlan5010\", bypass_vtep = \"203.0.113.2\" }"),
        ),
        (None, _) => {}
    }
    g
}

fn parse_vxlan(sink: &mut Sink<'_>, f: &Field<'_>) -> Option<At<Vxlan>> {
    let t = sub_table(sink, f)?;
    let s = open(sink, t, f.key.clone(), f.at, VXLAN_KEYS);
    let device = match s.get("device") {
        Some(df) => get_netdev(sink, df),
        None => {
            sink.err(
                s.header,
                &s.key("device"),
                format!(
                    "missing required key device in {}: the BD's vxlan device",
                    s.path
                ),
                Some("an interface name, e.g. device = \"vxlan5010\""),
            );
            None
        }
    };
    let bypass_vtep = match s.get("bypass_vtep") {
        Some(bf) => get_ip(sink, bf),
        None => {
            sink.err(
                s.header,
                &s.key("bypass_vtep"),
                format!(
                    "missing required key bypass_vtep in {}: the peer's VTEP address",
                    s.path
                ),
                Some("an IP address, e.g. bypass_vtep = \"203.0.113.2\""),
            );
            None
        }
    };
    Some(At::given(
        Vxlan {
            device: device?,
            bypass_vtep: bypass_vtep?,
        },
        f,
    ))
}

/// Known keys per section, for tools and docs that want to list them.
pub fn known_keys() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("", ROOT_KEYS),
        ("node", NODE_KEYS),
        ("peer", PEER_KEYS),
        ("mlag", MLAG_KEYS),
        ("up_delay", UP_DELAY_KEYS),
        ("metrics", METRICS_KEYS),
        ("uplinks", UPLINKS_KEYS),
        ("gateway", GATEWAY_KEYS),
        ("gateway.vxlan", VXLAN_KEYS),
    ]
}
