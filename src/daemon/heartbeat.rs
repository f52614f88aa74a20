//! The heartbeat's I/O: the UDP socket, the keys read from their files, and
//! the link layer (`peer::link`: sealing, the sender binding, anti-replay,
//! freshness). What an authenticated page says goes to the node as an event;
//! what the node wants said it gives as heartbeat pages to seal and send.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::config::{self, Peer};
use crate::core::heartbeat::Heartbeat;
use crate::core::node::Event;
use crate::peer::auth::{Key, Keyring};
use crate::peer::codec::MAX_PACKET;
use crate::peer::link::{DropReason, PeerLink, random_epoch};
use crate::telemetry::{Kind, Notice, ids};

/// At most one log line per drop reason in this period.
const DROP_LOG_PERIOD: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PeerSetupError {
    #[error("peer key: {0}")]
    Key(#[from] config::KeyFileError),
    #[error("random epoch from /dev/urandom: {0}")]
    Random(std::io::Error),
    #[error("heartbeat socket {addr}: {source}")]
    Socket {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The keys in the peer's key files now.
pub fn keyring(cfg: &Peer) -> Result<Keyring, PeerSetupError> {
    let current = Key::new(config::read_key_file(&cfg.key_file)?);
    let previous = match &cfg.previous_key_file {
        Some(p) => Some(Key::new(config::read_key_file(p)?)),
        None => None,
    };
    Ok(Keyring { current, previous })
}

pub struct HeartbeatIo {
    pub cfg: Peer,
    pub link: PeerLink,
    /// The keys as last read from the key files (the link may have dropped
    /// the previous one since): a reload re-keys only when these change.
    configured_keys: Keyring,
    pub socket: Arc<UdpSocket>,
    drop_logged: [Option<Instant>; DropReason::ALL.len()],
    drop_suppressed: [u64; DropReason::ALL.len()],
    /// When we last answered a `stale` packet at once (at most once an interval).
    prompt_answered: Option<Instant>,
}

/// What came of a datagram.
pub enum Received {
    /// An authenticated, fresh page: for the node.
    Heartbeat(Event),
    /// Dropped; a notice when this reason was not logged lately, and
    /// whether to answer at once (the peer restarted: our answer carries its
    /// proof of freshness).
    Dropped {
        notice: Option<Notice>,
        answer_now: bool,
    },
}

impl HeartbeatIo {
    /// A relationship with a random epoch of ours (docs/protocol.md,
    /// "Freshness"), its socket bound.
    pub fn start(cfg: &Peer, node: &str) -> Result<Self, PeerSetupError> {
        let keys = keyring(cfg)?;
        let peer = SocketAddr::new(cfg.address, cfg.port);
        let epoch = random_epoch().map_err(PeerSetupError::Random)?;
        let addr = SocketAddr::new(cfg.local, cfg.port);
        let socket = Arc::new(
            crate::peer::net::udp(addr)
                .map_err(|source| PeerSetupError::Socket { addr, source })?,
        );
        Ok(HeartbeatIo {
            cfg: cfg.clone(),
            configured_keys: keys.clone(),
            link: PeerLink::new(keys, cfg.local, peer, node, epoch),
            socket,
            drop_logged: [None; DropReason::ALL.len()],
            drop_suppressed: [0; DropReason::ALL.len()],
            prompt_answered: None,
        })
    }

    /// A reload: read the key files again; returns the new keys when they
    /// differ from the running ones (the link takes them at once).
    pub fn reread_keys(&mut self, cfg: &Peer) -> Option<Keyring> {
        self.cfg = cfg.clone();
        match keyring(cfg) {
            Ok(k) if !k.same_as(&self.configured_keys) => {
                self.configured_keys = k.clone();
                self.link.keys = k.clone();
                Some(k)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("peer keys not re-read: {e}");
                None
            }
        }
    }

    /// The peer went down: nothing it sent before may bring it back.
    pub fn restart(&mut self) {
        let next = random_epoch().unwrap_or(self.link.epoch().wrapping_add(1));
        self.link.restart(next);
    }

    /// Seal and send pages; a lost heartbeat is what the dead interval is for.
    pub async fn send(&mut self, pages: Vec<Heartbeat>) {
        let mut buf = [0u8; MAX_PACKET];
        for mut hb in pages {
            if let Some(n) = self.link.seal(&mut hb, Instant::now(), &mut buf) {
                let _ = self.socket.send_to(&buf[..n], self.link.peer).await;
            }
        }
    }

    /// A clean stop: one authenticated goodbye, sent twice, a few ms apart,
    /// against a lost datagram; the second is refused as a replay if the
    /// first arrived.
    pub async fn goodbye(&mut self, hb: Heartbeat) {
        for _ in 0..2 {
            self.send(vec![hb.clone()]).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn on_datagram(&mut self, pkt: &[u8], from: SocketAddr, now: Instant) -> Received {
        match self.link.admit(pkt, from, now) {
            Ok((hb, rtt)) => Received::Heartbeat(Event::Heartbeat {
                heartbeat: Box::new(hb),
                rtt,
                previous_key_retired: self.link.take_previous_retired(),
            }),
            Err(reason) => {
                let answer_now = reason == DropReason::Stale
                    && self
                        .prompt_answered
                        .is_none_or(|t| now.duration_since(t) >= self.cfg.interval);
                if answer_now {
                    self.prompt_answered = Some(now);
                }
                let notice = self.should_log_drop(reason, now).map(|suppressed| {
                    let total = self.link.counters.dropped(reason);
                    let id = if reason == DropReason::BadMac {
                        ids::PEER_AUTH_FAILED
                    } else {
                        ids::PEER_PACKET_DROPPED
                    };
                    Notice::new(
                        Kind::Alert,
                        id,
                        from.to_string(),
                        format!("dropped a heartbeat from {from}: {}", reason.as_str()),
                    )
                    .with("reason", reason.as_str())
                    .with("total", total)
                    .with("suppressed", suppressed)
                });
                Received::Dropped { notice, answer_now }
            }
        }
    }

    /// Rate-limited log of a dropped packet: Some(suppressed since the last
    /// line) when this one should be logged.
    fn should_log_drop(&mut self, r: DropReason, now: Instant) -> Option<u64> {
        let i = DropReason::ALL.iter().position(|x| *x == r).unwrap_or(0);
        match self.drop_logged[i] {
            Some(t) if now.duration_since(t) < DROP_LOG_PERIOD => {
                self.drop_suppressed[i] += 1;
                None
            }
            _ => {
                self.drop_logged[i] = Some(now);
                Some(std::mem::take(&mut self.drop_suppressed[i]))
            }
        }
    }

    /// The heartbeat counters for `dagw status`.
    pub fn counters_json(&self) -> serde_json::Value {
        let c = &self.link.counters;
        serde_json::json!({
            "tx": c.tx,
            "rx": c.rx,
            "dropped": DropReason::ALL
                .iter()
                .map(|r| (r.as_str().to_string(), serde_json::Value::from(c.dropped(*r))))
                .collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// Wait for a datagram; never ready without a socket.
pub async fn recv(
    sock: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}
