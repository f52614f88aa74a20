//! The sync channel's I/O: one session at a time with the peer (the lower
//! address connects, the other accepts), run by `crate::sync`; what the
//! session delivers goes to the node as events, what the node sends goes
//! to the session. A peer that does not keep up is reset, not buffered for.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::peer::auth::Keyring;
use crate::sync::{self, Inbound, Outbound, Role};

/// Outbound increments queued for the session; a peer that takes none of
/// them for this long is reset (and gets a fresh bulk), not buffered for.
const OUTBOUND_QUEUE: usize = 256;
const INBOUND_QUEUE: usize = 64;
const RECONNECT_MIN: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

pub enum SyncEvent {
    Session(mpsc::Sender<Outbound>),
    Msg(Inbound),
}

/// One session after another, forever: connect (or accept), run, back off.
async fn manage(
    local: IpAddr,
    peer: SocketAddr,
    node: String,
    keys: watch::Receiver<Keyring>,
    events: mpsc::Sender<SyncEvent>,
) {
    let role = if sync::is_client(local, peer.ip()) {
        Role::Client
    } else {
        Role::Server
    };
    let listener = match role {
        Role::Server => match crate::peer::net::tcp_listener(SocketAddr::new(local, peer.port())) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(
                    "sync channel: cannot listen on {local}:{}: {e}",
                    peer.port()
                );
                return;
            }
        },
        Role::Client => None,
    };
    let mut backoff = RECONNECT_MIN;
    loop {
        let stream = match &listener {
            Some(l) => sync::accept_from(l, peer.ip()).await,
            None => sync::connect(peer, local).await,
        };
        let Ok(stream) = stream else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RECONNECT_MAX);
            continue;
        };
        let (out_tx, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let (in_tx, mut in_rx) = mpsc::channel(INBOUND_QUEUE);
        if events.send(SyncEvent::Session(out_tx)).await.is_err() {
            return;
        }
        let keyring = keys.borrow().clone();
        let session = tokio::spawn(sync::run_session(
            stream,
            role,
            keyring,
            node.clone(),
            out_rx,
            in_tx,
        ));
        let started = Instant::now();
        while let Some(m) = in_rx.recv().await {
            // awaiting here is the back-pressure: the session stops reading TCP
            if events.send(SyncEvent::Msg(m)).await.is_err() {
                session.abort();
                return;
            }
        }
        let _ = session.await;
        if started.elapsed() > Duration::from_secs(10) {
            backoff = RECONNECT_MIN;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

pub struct SyncIo {
    outbound: Option<mpsc::Sender<Outbound>>,
    keys: watch::Sender<Keyring>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SyncIo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SyncIo {
    pub fn start(
        local: IpAddr,
        peer: SocketAddr,
        node: String,
        keyring: Keyring,
    ) -> (SyncIo, mpsc::Receiver<SyncEvent>) {
        let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
        let (keys, keys_rx) = watch::channel(keyring);
        let task = tokio::spawn(manage(local, peer, node, keys_rx, tx));
        (
            SyncIo {
                outbound: None,
                keys,
                task,
            },
            rx,
        )
    }

    /// A new session is up: what the node sends goes to it.
    pub fn session(&mut self, tx: mpsc::Sender<Outbound>) {
        self.outbound = Some(tx);
    }

    /// New keys; the live session (keyed from the old ones) ends.
    pub fn rekey(&mut self, k: Keyring) {
        let _ = self.keys.send(k);
        // dropping the sender ends the session (docs/sync.md, API)
        self.outbound = None;
    }

    /// Queue a message for the session; false when the peer does not keep
    /// up (the session is then reset: the next one starts with a full bulk).
    pub fn send(&mut self, msg: Outbound) -> bool {
        let Some(tx) = &self.outbound else {
            return true;
        };
        if tx.try_send(msg).is_err() {
            self.outbound = None;
            tracing::warn!("sync channel: the peer does not keep up; resetting the session");
            return false;
        }
        true
    }
}
