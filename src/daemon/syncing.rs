//! The daemon's side of the ARP/ND sync channel (issue 5): one session at a
//! time with the peer (the lower address connects, the other accepts), a full
//! bulk of our locally learned entries on every new session, then increments
//! as the kernel reports them; the peer's entries are installed on the
//! matching gateway device as `extern_learn` (never sent back) and removed
//! when the peer deletes them, or a grace period after the session ended.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::Daemon;
use crate::config::GatewayKind;
use crate::core::kernel::{KernelEvent, NeighInfo, NeighKey as KKey};
use crate::core::mac::Mac;
use crate::netlink::executor::{synced_neigh_install, synced_neigh_remove};
use crate::peer::auth::Keyring;
use crate::sync::{self, Change, Inbound, NeighEntry, NeighKey, Outbound, PeerTable, Role};
use crate::telemetry::{Kind, Notice, ids};

/// Synced entries outlive a lost session this long (a restart of the peer's
/// agent or a short outage must not flush the table).
pub const GRACE: Duration = Duration::from_secs(30);
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

pub struct SyncRuntime {
    pub outbound: Option<mpsc::Sender<Outbound>>,
    pub table: PeerTable,
    pub bulk_complete: bool,
    pub sessions: u64,
    pub grace_until: Option<Instant>,
    pub established: bool,
    keys: watch::Sender<Keyring>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SyncRuntime {
    fn drop(&mut self) {
        self.task.abort();
    }
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

impl SyncRuntime {
    pub fn start(
        local: IpAddr,
        peer: SocketAddr,
        node: String,
        keyring: Keyring,
    ) -> (SyncRuntime, mpsc::Receiver<SyncEvent>) {
        let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
        let (keys, keys_rx) = watch::channel(keyring);
        let task = tokio::spawn(manage(local, peer, node, keys_rx, tx));
        (
            SyncRuntime {
                outbound: None,
                table: PeerTable::new(),
                bulk_complete: false,
                sessions: 0,
                grace_until: None,
                established: false,
                keys,
                task,
            },
            rx,
        )
    }

    pub fn set_keys(&self, k: Keyring) {
        let _ = self.keys.send(k);
    }
}

fn kind_id(k: GatewayKind) -> (u8, u32) {
    match k {
        GatewayKind::Vlanif(v) => (sync::GW_VLANIF, u32::from(v)),
        GatewayKind::Vbdif(b) => (sync::GW_VBDIF, b),
    }
}

impl Daemon {
    /// Start (or restart) the sync channel for the configured peer.
    pub(super) fn start_sync(&mut self) {
        self.sync = None;
        let Some(p) = &self.peer else { return };
        let (rt, rx) = SyncRuntime::start(
            p.cfg.local,
            SocketAddr::new(p.cfg.address, p.cfg.port),
            self.cfg.node.name.clone(),
            p.link.keys.clone(),
        );
        self.sync = Some(rt);
        self.sync_rx_pending = Some(rx);
    }

    /// The peer's bulk sync of the current session has been received whole.
    pub(super) fn sync_bulk_complete(&self) -> bool {
        self.sync.as_ref().is_some_and(|s| s.bulk_complete)
    }

    /// gateway device ifindex → (kind, id), for the gateways that exist.
    fn device_gateways(&self) -> HashMap<u32, (u8, u32)> {
        self.gateways
            .iter()
            .filter_map(|g| {
                self.view
                    .owned_device(&g.cfg.name, &g.cfg.device)
                    .map(|d| (d.index, kind_id(g.cfg.kind)))
            })
            .collect()
    }

    /// Every locally learned entry on our gateway devices.
    fn local_entries_for_sync(&self) -> Vec<NeighEntry> {
        let devs = self.device_gateways();
        self.view
            .neighs
            .iter()
            .filter(|(_, info)| !info.synced)
            .filter_map(|(k, info)| {
                devs.get(&k.ifindex).map(|(kind, id)| NeighEntry {
                    gw_kind: *kind,
                    gw_id: *id,
                    ip: k.ip,
                    mac: info.mac.0,
                })
            })
            .collect()
    }

    fn send_outbound(&mut self, msg: Outbound) {
        let Some(s) = self.sync.as_mut() else { return };
        let Some(tx) = &s.outbound else { return };
        if tx.try_send(msg).is_err() {
            // The peer does not keep up (or the session ended): reset rather
            // than buffer; the next session starts with a full bulk.
            s.outbound = None;
            tracing::warn!("sync channel: the peer does not keep up; resetting the session");
        }
    }

    /// Local neighbour changes → increments for the peer. Each event comes
    /// with the view's entry before it: only new entries, new MACs and
    /// vanished local entries are news (state ageing, REACHABLE → STALE, is not).
    pub(super) fn sync_local_changes(&mut self, changes: &[(KernelEvent, Option<NeighInfo>)]) {
        if self.sync.as_ref().is_none_or(|s| s.outbound.is_none()) {
            return;
        }
        let devs = self.device_gateways();
        let mut adds = Vec::new();
        let mut dels = Vec::new();
        for (ev, before) in changes {
            match ev {
                KernelEvent::NeighUsable(k, info)
                    if !info.synced && before.is_none_or(|b| b.synced || b.mac != info.mac) =>
                {
                    if let Some((kind, id)) = devs.get(&k.ifindex) {
                        adds.push(NeighEntry {
                            gw_kind: *kind,
                            gw_id: *id,
                            ip: k.ip,
                            mac: info.mac.0,
                        });
                    }
                }
                KernelEvent::NeighGone(k) if before.is_some_and(|b| !b.synced) => {
                    if let Some((kind, id)) = devs.get(&k.ifindex) {
                        dels.push(NeighKey {
                            gw_kind: *kind,
                            gw_id: *id,
                            ip: k.ip,
                        });
                    }
                }
                _ => {}
            }
        }
        for chunk in adds.chunks(1000) {
            self.send_outbound(Outbound::Add(chunk.to_vec()));
        }
        for chunk in dels.chunks(1000) {
            self.send_outbound(Outbound::Delete(chunk.to_vec()));
        }
    }

    pub(super) fn on_sync_event(&mut self, ev: SyncEvent, now: Instant) {
        let Some(s) = self.sync.as_mut() else { return };
        match ev {
            SyncEvent::Session(tx) => {
                s.outbound = Some(tx);
                s.bulk_complete = false;
                s.sessions += 1;
                let bulk = self.local_entries_for_sync();
                self.send_outbound(Outbound::Bulk(bulk));
            }
            SyncEvent::Msg(m) => {
                let mut reconcile_kernel = false;
                let mut changes = Vec::new();
                s.table.apply(&m, &mut changes);
                match &m {
                    Inbound::Established { peer_name } => {
                        s.established = true;
                        s.grace_until = None;
                        let n = Notice::new(
                            Kind::State,
                            ids::SYNC_SESSION,
                            peer_name.clone(),
                            format!("sync channel with {peer_name} established"),
                        )
                        .with("state", "established");
                        self.emit(n);
                    }
                    Inbound::BulkEnd { total } => {
                        s.bulk_complete = true;
                        reconcile_kernel = true;
                        let n = Notice::new(
                            Kind::State,
                            ids::SYNC_SESSION,
                            "sync",
                            format!("bulk sync from the peer complete: {total} entries"),
                        )
                        .with("state", "bulk-complete")
                        .with("entries", *total);
                        self.emit(n);
                    }
                    Inbound::Closed(reason) => {
                        s.outbound = None;
                        s.bulk_complete = false;
                        if s.established {
                            s.grace_until = Some(now + GRACE);
                        }
                        s.established = false;
                        let n = Notice::new(
                            Kind::Alert,
                            ids::SYNC_SESSION,
                            "sync",
                            format!("sync channel closed: {reason}"),
                        )
                        .with("state", "closed")
                        .with("reason", reason.clone());
                        self.emit(n);
                    }
                    _ => {}
                }
                self.apply_peer_changes(changes);
                if reconcile_kernel {
                    self.remove_unknown_synced();
                }
                if matches!(m, Inbound::BulkEnd { .. } | Inbound::Closed(_)) {
                    self.update_progress(now);
                }
            }
        }
    }

    /// Install / remove the peer's entries in the kernel, batched. A locally
    /// learned entry for the same IP wins: it is neither replaced nor removed.
    fn apply_peer_changes(&mut self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let mut msgs = Vec::with_capacity(changes.len());
        // (kind, id) -> device, built once: a frame spreads over many gateways
        let devs: HashMap<(u8, u32), u32> = self
            .device_gateways()
            .into_iter()
            .map(|(dev, gw)| (gw, dev))
            .collect();
        for c in changes {
            let (kind, id, ip) = match c {
                Change::Upsert(e) => (e.gw_kind, e.gw_id, e.ip),
                Change::Remove(k) => (k.gw_kind, k.gw_id, k.ip),
            };
            let Some(&ifindex) = devs.get(&(kind, id)) else {
                continue;
            };
            let existing = self.view.neighs.get(&KKey { ifindex, ip });
            match c {
                Change::Upsert(e) => {
                    // a local entry wins; an identical synced one needs nothing
                    if existing.is_some_and(|i| !i.synced || i.mac.0 == e.mac) {
                        continue;
                    }
                    msgs.push(synced_neigh_install(ifindex, e.ip, Mac(e.mac)));
                }
                Change::Remove(_) => {
                    if existing.is_some_and(|i| i.synced) {
                        msgs.push(synced_neigh_remove(ifindex, ip));
                    }
                }
            }
        }
        let failed = self
            .exec
            .neigh_batch(msgs)
            .into_iter()
            .filter(|r| r.is_err())
            .count();
        if failed > 0 {
            tracing::warn!("sync: {failed} neighbour changes refused by the kernel");
        }
    }

    /// After a complete bulk the peer's table is the truth: synced entries in
    /// the kernel that it does not hold (left from before our restart, or
    /// deleted on the peer while no session was up) go.
    fn remove_unknown_synced(&mut self) {
        let Some(s) = self.sync.as_ref() else { return };
        let devs = self.device_gateways();
        let stale: Vec<(u32, IpAddr)> = self
            .view
            .neighs
            .iter()
            .filter(|(_, i)| i.synced)
            .filter(|(k, _)| {
                devs.get(&k.ifindex).is_some_and(|(kind, id)| {
                    s.table
                        .get(&NeighKey {
                            gw_kind: *kind,
                            gw_id: *id,
                            ip: k.ip,
                        })
                        .is_none()
                })
            })
            .map(|(k, _)| (k.ifindex, k.ip))
            .collect();
        if stale.is_empty() {
            return;
        }
        let msgs = stale
            .iter()
            .map(|(i, ip)| synced_neigh_remove(*i, *ip))
            .collect();
        let _ = self.exec.neigh_batch(msgs);
    }

    /// Synced entries the kernel dropped (a carrier loss flushes a device's
    /// table) while the peer still has them: put them back.
    pub(super) fn restore_synced(&mut self, lost: &[KKey]) {
        let Some(s) = self.sync.as_ref() else { return };
        let devs = self.device_gateways();
        let back: Vec<Change> = lost
            .iter()
            .filter_map(|k| {
                let (kind, id) = devs.get(&k.ifindex)?;
                let key = NeighKey {
                    gw_kind: *kind,
                    gw_id: *id,
                    ip: k.ip,
                };
                s.table.get(&key).map(|mac| {
                    Change::Upsert(NeighEntry {
                        gw_kind: *kind,
                        gw_id: *id,
                        ip: k.ip,
                        mac,
                    })
                })
            })
            .collect();
        self.apply_peer_changes(back);
    }

    /// A gateway device came (back) up: the kernel flushed its neighbours
    /// when it lost carrier, so install the peer's entries for it again.
    pub(super) fn reinstall_peer_entries(&mut self, gw: usize) {
        let Some(s) = self.sync.as_ref() else { return };
        let (kind, id) = kind_id(self.gateways[gw].cfg.kind);
        let entries: Vec<Change> = s
            .table
            .iter()
            .filter(|e| e.gw_kind == kind && e.gw_id == id)
            .map(Change::Upsert)
            .collect();
        self.apply_peer_changes(entries);
    }

    /// The grace period after a lost session ran out: the peer's entries go.
    pub(super) fn sync_grace_expired(&mut self, now: Instant) {
        let Some(s) = self.sync.as_mut() else { return };
        if s.grace_until.is_none_or(|t| now < t) || s.established {
            return;
        }
        s.grace_until = None;
        let stale: Vec<Change> = s.table.iter().map(|e| Change::Remove(e.key())).collect();
        s.table = PeerTable::new();
        let n = stale.len();
        self.apply_peer_changes(stale);
        self.emit(
            Notice::new(
                Kind::Alert,
                ids::SYNC_SESSION,
                "sync",
                format!(
                    "no sync session for {} s: removed {n} entries learned from the peer",
                    GRACE.as_secs()
                ),
            )
            .with("state", "flushed"),
        );
    }

    pub(super) fn sync_deadline(&self) -> Option<Instant> {
        self.sync.as_ref().and_then(|s| s.grace_until)
    }
}
