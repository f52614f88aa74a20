//! Operator-facing output: logs (journald under systemd, stderr otherwise) and
//! the live notice stream behind `dagw monitor`. Every state change, correction
//! and alert is one [`Notice`] with a stable identifier, logged once and
//! broadcast once.

pub mod metrics;

use serde_json::{Map, Value};
use tokio::sync::broadcast;
use tracing_subscriber::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    State,
    Alert,
    Correction,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::State => "state",
            Kind::Alert => "alert",
            Kind::Correction => "correction",
        }
    }
}

/// Stable identifiers (README lists them; scripts match on these).
pub mod ids {
    pub const GATEWAY_STATE: &str = "gateway-state";
    pub const MEMBER_STATE: &str = "member-state";
    pub const HOLD_START: &str = "hold-start";
    pub const HOLD_END: &str = "hold-end";
    pub const DRIFT_CORRECTED: &str = "drift-corrected";
    pub const DRIFT_FIGHT: &str = "drift-fight";
    pub const APPLY_FAILED: &str = "apply-failed";
    pub const NETLINK_OVERRUN: &str = "netlink-overrun";
    pub const CONFIG_RELOADED: &str = "config-reloaded";
    pub const CONFIG_REJECTED: &str = "config-rejected";
    pub const STALE_REMOVED: &str = "stale-removed";
    pub const STARTED: &str = "started";
    pub const PEER_UP: &str = "peer-up";
    pub const PEER_DOWN: &str = "peer-down";
    pub const PEER_AUTH_FAILED: &str = "peer-auth-failed";
    pub const PEER_PACKET_DROPPED: &str = "peer-packet-dropped";
    pub const PEER_KEY_RETIRED: &str = "peer-key-retired";
    pub const PEER_MISMATCH: &str = "peer-mismatch";
    pub const PEER_CONSISTENT: &str = "peer-consistent";
    pub const ROLE: &str = "role";
    pub const SPLIT_BRAIN: &str = "split-brain";
    pub const PEER_LINK_RECOVERY: &str = "peer-link-recovery";
    pub const SYNC_INCOMPLETE: &str = "sync-incomplete";
    pub const SYNC_SESSION: &str = "sync-session";
    pub const SYNC_REFUSED: &str = "sync-refused";
    pub const BYPASS_TUNNEL: &str = "bypass-tunnel";
    pub const UPLINKS: &str = "uplinks";
    pub const DRAIN: &str = "drain";
    pub const PEER_DRAINED: &str = "peer-drained";
}

#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: Kind,
    pub id: &'static str,
    pub object: String,
    pub message: String,
    pub details: Map<String, Value>,
}

impl Notice {
    pub fn new(
        kind: Kind,
        id: &'static str,
        object: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Notice {
            kind,
            id,
            object: object.into(),
            message: message.into(),
            details: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// One line of `dagw monitor --json`.
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        m.insert("ts".into(), rfc3339_now().into());
        m.insert("kind".into(), self.kind.as_str().into());
        m.insert("id".into(), self.id.into());
        m.insert("object".into(), self.object.clone().into());
        m.insert("message".into(), self.message.clone().into());
        for (k, v) in &self.details {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m).to_string()
    }
}

pub struct Telemetry {
    tx: broadcast::Sender<String>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        // Monitors that fall this far behind lose lines (and are told so),
        // rather than making the daemon buffer without bound.
        let (tx, _) = broadcast::channel(1024);
        Telemetry { tx }
    }

    /// The feed `dagw monitor` connections subscribe to.
    pub fn sender(&self) -> broadcast::Sender<String> {
        self.tx.clone()
    }

    pub fn emit(&self, n: Notice) {
        let details = Value::Object(n.details.clone());
        match n.kind {
            Kind::State => {
                tracing::info!(id = n.id, object = %n.object, details = %details, "{}", n.message)
            }
            Kind::Correction | Kind::Alert => {
                tracing::warn!(id = n.id, object = %n.object, details = %details, "{}", n.message)
            }
        }
        let _ = self.tx.send(n.to_json());
    }
}

/// journald when started by systemd (JOURNAL_STREAM is set for its stdio),
/// plain lines on stderr otherwise.
pub fn init_logging() {
    let under_systemd = std::env::var_os("JOURNAL_STREAM").is_some();
    if under_systemd && let Ok(j) = tracing_journald::layer() {
        let _ = tracing_subscriber::registry()
            .with(j.with_syslog_identifier("dagw".into()))
            .try_init();
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// RFC 3339 UTC timestamp with milliseconds, without a date crate.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // civil-from-days (Howard Hinnant)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_has_rfc3339_shape() {
        let t = super::rfc3339_now();
        assert_eq!(t.len(), 24, "{t}");
        assert_eq!(&t[4..5], "-");
        assert_eq!(&t[10..11], "T");
        assert!(t.ends_with('Z'));
    }
}
