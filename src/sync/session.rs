//! One sync session over TCP (docs/sync.md): the handshake, then a reader
//! (frames → [`Inbound`]) and a writer ([`Outbound`] → frames, keepalives)
//! running concurrently until either ends. Every error ends the session;
//! the caller reconnects with a backoff and starts a new one (which begins
//! with a fresh bulk both ways).
//!
//! Back-pressure: both channels are the caller's bounded `mpsc` channels.
//! The reader awaits room on `inbound` before it reads more from the socket,
//! so a slow consumer fills the TCP window and stalls the peer's writer; the
//! writer takes one [`Outbound`] at a time and awaits the socket, so a slow
//! peer fills `outbound` and the caller's `send` waits.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::frame::{Frame, MAX_ITEMS, READ_CHUNK};
use super::handshake::{Handshake, random_nonce};
use super::{NeighEntry, NeighKey, SyncError};
use crate::config::MAX_GATEWAYS;
use crate::core::consistency::GwConfig;
use crate::peer::auth::Keyring;

pub use super::handshake::Role;

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A keepalive goes out after this long without any other frame.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// The session ends after this long without any frame from the peer.
pub const READ_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// The session ends when the peer takes no bytes for this long.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The writer hands its buffer to the socket once it holds this much.
const FLUSH_AT: usize = 64 * 1024;

/// What the caller asks the session to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// The full local table: BulkStart, Entries in frames of at most 1000,
    /// BulkEnd. Send one first in every session; another may follow at any
    /// time (e.g. after a netlink resync) and replaces the peer's view again.
    Bulk(Vec<NeighEntry>),
    /// New or changed entries.
    Add(Vec<NeighEntry>),
    Delete(Vec<NeighKey>),
    /// The exact values of every configured gateway (frame type 6, as many
    /// frames as they need): at the start of each session, and again after
    /// a reload changed them.
    Gateways(Vec<GwConfig>),
}

/// What the session delivers from the peer (authenticated, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// The handshake succeeded: time to send our [`Outbound::Bulk`].
    Established {
        peer_name: String,
    },
    /// A bulk begins: the Entries up to BulkEnd replace the peer's view.
    BulkStart {
        epoch: u64,
    },
    /// Part of a bulk, or (outside one) new or changed entries.
    Entries(Vec<NeighEntry>),
    Deletes(Vec<NeighKey>),
    /// The bulk is complete (`total` entries, checked): the peer's entries
    /// that it did not carry are gone.
    BulkEnd {
        total: u32,
    },
    /// Part of the peer's announcement of its gateways' exact values, in
    /// order (`first` begins a set, `last` completes it; checked: at most
    /// one set at a time, at most `MAX_GATEWAYS` gateways in one).
    Gateways {
        first: bool,
        last: bool,
        gateways: Vec<GwConfig>,
    },
    /// The session ended (always the last message of a session).
    Closed(String),
}

/// Run one session on a connected stream until it ends.
///
/// Returns `Ok(())` when the caller ended it (dropped the `outbound` sender
/// or the `inbound` receiver), else the error; either way `inbound` gets
/// [`Inbound::Closed`] (if it is still open).
pub async fn run_session(
    stream: TcpStream,
    role: Role,
    keyring: Keyring,
    node: String,
    mut outbound: mpsc::Receiver<Outbound>,
    inbound: mpsc::Sender<Inbound>,
) -> Result<(), SyncError> {
    let result = session(stream, role, keyring, &node, &mut outbound, &inbound).await;
    if let Err(e) = &result {
        REJECTED.note(e);
    }
    let reason = match &result {
        Ok(()) => "closed locally".to_owned(),
        Err(e) => e.to_string(),
    };
    let _ = inbound.send(Inbound::Closed(reason)).await;
    result
}

async fn session(
    stream: TcpStream,
    role: Role,
    keyring: Keyring,
    node: &str,
    outbound: &mut mpsc::Receiver<Outbound>,
    inbound: &mpsc::Sender<Inbound>,
) -> Result<(), SyncError> {
    stream.set_nodelay(true)?;
    let mut hs = Handshake::new(role, keyring, node, random_nonce()?)?;
    let (mut rd, mut wr) = stream.into_split();
    let mut chunk = vec![0u8; READ_CHUNK];

    let leftover: Range<usize> = timeout(HANDSHAKE_TIMEOUT, async {
        let mut leftover = 0..0;
        loop {
            if let Some(b) = hs.outgoing() {
                wr.write_all(&b).await?;
            }
            if hs.is_done() {
                return Ok::<_, SyncError>(leftover);
            }
            let n = rd.read(&mut chunk).await?;
            if n == 0 {
                return Err(SyncError::Closed("peer closed during the handshake"));
            }
            let used = hs.incoming(&chunk[..n])?;
            leftover = used..n;
        }
    })
    .await
    .map_err(|_| SyncError::Timeout("handshake"))??;
    let est = hs.finish()?;
    tracing::info!(peer = %est.peer_name, "sync session established");
    if inbound
        .send(Inbound::Established {
            peer_name: est.peer_name.clone(),
        })
        .await
        .is_err()
    {
        return Ok(());
    }

    let mut frames = est.frame_reader();
    frames.feed(&chunk[leftover]);
    let reader = async {
        // entries counted since BulkStart, while a bulk is in progress
        let mut bulk: Option<u64> = None;
        let mut set = GatewaySet::default();
        loop {
            while let Some(frame) = frames.next()? {
                let msg = match frame {
                    Frame::Keepalive => continue,
                    Frame::BulkStart { epoch } => {
                        if bulk.replace(0).is_some() {
                            return Err(SyncError::Protocol("BulkStart inside a bulk".into()));
                        }
                        Inbound::BulkStart { epoch }
                    }
                    Frame::Entries(v) => {
                        if let Some(n) = &mut bulk {
                            *n += v.len() as u64;
                        }
                        Inbound::Entries(v)
                    }
                    Frame::Deletes(v) => {
                        if bulk.is_some() {
                            return Err(SyncError::Protocol("Deletes inside a bulk".into()));
                        }
                        Inbound::Deletes(v)
                    }
                    Frame::Gateways {
                        first,
                        last,
                        gateways,
                    } => {
                        set.admit(first, last, gateways.len())?;
                        Inbound::Gateways {
                            first,
                            last,
                            gateways,
                        }
                    }
                    Frame::BulkEnd { total } => match bulk.take() {
                        Some(n) if n == u64::from(total) => Inbound::BulkEnd { total },
                        Some(n) => {
                            return Err(SyncError::Protocol(format!(
                                "BulkEnd says {total} entries, the bulk had {n}"
                            )));
                        }
                        None => {
                            return Err(SyncError::Protocol("BulkEnd without BulkStart".into()));
                        }
                    },
                };
                if inbound.send(msg).await.is_err() {
                    return Ok(()); // the caller is gone
                }
            }
            let n = timeout(READ_IDLE_TIMEOUT, rd.read(&mut chunk))
                .await
                .map_err(|_| SyncError::Timeout("no frame from the peer"))??;
            if n == 0 {
                return Err(SyncError::Closed(if frames.buffered() == 0 {
                    "peer closed the connection"
                } else {
                    "peer closed the connection inside a frame"
                }));
            }
            frames.feed(&chunk[..n]);
        }
    };

    let mut fw = est.frame_writer();
    let writer = async {
        let mut buf: Vec<u8> = Vec::with_capacity(2 * FLUSH_AT);
        let mut epoch = 0u64;
        loop {
            let msg = match timeout(KEEPALIVE_INTERVAL, outbound.recv()).await {
                Err(_) => {
                    fw.keepalive(&mut buf);
                    flush(&mut wr, &mut buf).await?;
                    continue;
                }
                Ok(None) => {
                    let _ = wr.shutdown().await;
                    return Ok(()); // the caller ended the session
                }
                Ok(Some(m)) => m,
            };
            match &msg {
                Outbound::Bulk(v) => {
                    let total = u32::try_from(v.len())
                        .map_err(|_| SyncError::Protocol("bulk too large".into()))?;
                    epoch += 1;
                    fw.bulk_start(epoch, &mut buf);
                    for c in v.chunks(MAX_ITEMS) {
                        fw.entries(c, &mut buf)?;
                        if buf.len() >= FLUSH_AT {
                            flush(&mut wr, &mut buf).await?;
                        }
                    }
                    fw.bulk_end(total, &mut buf);
                }
                Outbound::Add(v) => {
                    for c in v.chunks(MAX_ITEMS) {
                        fw.entries(c, &mut buf)?;
                        if buf.len() >= FLUSH_AT {
                            flush(&mut wr, &mut buf).await?;
                        }
                    }
                }
                Outbound::Delete(v) => {
                    for c in v.chunks(MAX_ITEMS) {
                        fw.deletes(c, &mut buf)?;
                        if buf.len() >= FLUSH_AT {
                            flush(&mut wr, &mut buf).await?;
                        }
                    }
                }
                Outbound::Gateways(v) => fw.gateway_set(v, &mut buf)?,
            }
            flush(&mut wr, &mut buf).await?;
        }
    };

    tokio::select! {
        r = reader => r,
        r = writer => r,
    }
}

/// The order of Gateways frames from the peer: a set opens with a `first`
/// frame and closes with a `last` one, one set at a time, at most
/// [`MAX_GATEWAYS`] gateways in one (the gateways of any valid config).
#[derive(Debug, Default)]
struct GatewaySet {
    /// Gateways received since the set opened; None between sets.
    open: Option<usize>,
}

impl GatewaySet {
    fn admit(&mut self, first: bool, last: bool, count: usize) -> Result<(), SyncError> {
        let before = match (self.open.take(), first) {
            (None, true) => 0,
            (Some(n), false) => n,
            (Some(_), true) => {
                return Err(SyncError::Protocol(
                    "a gateway set begins inside another".into(),
                ));
            }
            (None, false) => return Err(SyncError::Protocol("gateways outside a set".into())),
        };
        let n = before + count;
        if n > MAX_GATEWAYS {
            return Err(SyncError::Protocol(format!(
                "more than {MAX_GATEWAYS} gateways in one set"
            )));
        }
        if !last {
            self.open = Some(n);
        }
        Ok(())
    }
}

async fn flush(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    buf: &mut Vec<u8>,
) -> Result<(), SyncError> {
    if buf.is_empty() {
        return Ok(());
    }
    timeout(WRITE_STALL_TIMEOUT, wr.write_all(buf))
        .await
        .map_err(|_| SyncError::Timeout("the peer takes no data"))??;
    buf.clear();
    Ok(())
}

/// Which side connects: the one whose local address is lower. The other
/// accepts (from the configured peer address only, see [`accept_from`]).
pub fn is_client(local: IpAddr, peer: IpAddr) -> bool {
    local < peer
}

/// Connect to the peer's sync port from `local` (bound first, so the peer
/// sees the configured address), within [`CONNECT_TIMEOUT`].
pub async fn connect(peer: SocketAddr, local: IpAddr) -> io::Result<TcpStream> {
    if peer.is_ipv4() != local.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "local and peer addresses of different families",
        ));
    }
    let sock = if peer.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.bind(SocketAddr::new(local, 0))?;
    let stream = timeout(CONNECT_TIMEOUT, sock.connect(peer))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "sync connect timed out"))??;
    Ok(stream)
}

/// Accept the next connection from `peer`; connections from any other
/// address are closed at once, and logged at most once per
/// [`STRANGER_LOG_PERIOD`] with the number not logged.
///
/// The caller runs one session at a time: the listener serves one handshake
/// (from the one accepted source) at a time, and connections that arrive
/// meanwhile wait in the listen backlog (4) until this is called again.
pub async fn accept_from(listener: &TcpListener, peer: IpAddr) -> io::Result<TcpStream> {
    loop {
        let (stream, from) = listener.accept().await?;
        if from.ip() == peer {
            return Ok(stream);
        }
        drop(stream);
        STRANGERS.note(from);
    }
}

/// What the peer sent that ended a session, counted by reason since start
/// ([`SyncError::rejection`]; `wrong-source` for refused strangers).
pub struct Rejections {
    counts: [std::sync::atomic::AtomicU64; SyncError::REJECTIONS.len()],
}

pub static REJECTED: Rejections = Rejections {
    counts: [const { std::sync::atomic::AtomicU64::new(0) }; SyncError::REJECTIONS.len()],
};

impl Rejections {
    fn note(&self, e: &SyncError) {
        if let Some(i) = e
            .rejection()
            .and_then(|r| SyncError::REJECTIONS.iter().position(|x| *x == r))
        {
            self.counts[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// `(reason, count)` for every reason, `wrong-source` last.
    pub fn all(&self) -> Vec<(&'static str, u64)> {
        SyncError::REJECTIONS
            .iter()
            .zip(&self.counts)
            .map(|(r, c)| (*r, c.load(std::sync::atomic::Ordering::Relaxed)))
            .chain(std::iter::once(("wrong-source", STRANGERS.refused())))
            .collect()
    }
}

/// At most one log line per this period about refused strangers.
pub const STRANGER_LOG_PERIOD: Duration = Duration::from_secs(10);

/// Refused sync connections: counted, logged rate-limited.
pub struct Strangers {
    refused: std::sync::atomic::AtomicU64,
    logged: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

pub static STRANGERS: Strangers = Strangers {
    refused: std::sync::atomic::AtomicU64::new(0),
    logged: std::sync::Mutex::new((None, 0)),
};

impl Strangers {
    fn note(&self, from: SocketAddr) {
        self.refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Ok(mut l) = self.logged.lock() else {
            return;
        };
        let now = std::time::Instant::now();
        if l.0
            .is_none_or(|t| now.duration_since(t) >= STRANGER_LOG_PERIOD)
        {
            let suppressed = std::mem::take(&mut l.1);
            l.0 = Some(now);
            tracing::warn!(%from, suppressed, "sync connection from a stranger refused");
        } else {
            l.1 += 1;
        }
    }

    /// Connections refused since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::auth::Key;
    use crate::sync::table::{Admission, PeerTable, Prefix};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn ring(s: &str) -> Keyring {
        Keyring {
            current: Key::new(s.as_bytes().to_vec()),
            previous: None,
        }
    }

    /// Every address of the gateways `entry` spreads over.
    fn open_admission() -> Admission {
        let all = vec![
            Prefix {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                len: 0,
            },
            Prefix {
                addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                len: 0,
            },
        ];
        Admission {
            gateways: (1..=2u8)
                .flat_map(|k| (10..17u32).map(move |id| (k, id)))
                .map(|gw| (gw, (all.clone(), true)))
                .collect(),
            max_total: 1_000_000,
            max_per_gateway: 1_000_000,
        }
    }

    fn entry(i: u32) -> NeighEntry {
        NeighEntry {
            gw_kind: 1 + (i % 2) as u8,
            gw_id: 10 + i % 7,
            ip: if i.is_multiple_of(4) {
                IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i)))
            } else {
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
            },
            mac: [2, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 1],
        }
    }

    struct Side {
        tx: mpsc::Sender<Outbound>,
        rx: mpsc::Receiver<Inbound>,
        task: tokio::task::JoinHandle<Result<(), SyncError>>,
    }

    fn start(stream: TcpStream, role: Role, key: &str, name: &str) -> Side {
        let (tx, orx) = mpsc::channel(4);
        let (itx, rx) = mpsc::channel(4);
        let task = tokio::spawn(run_session(
            stream,
            role,
            ring(key),
            name.to_owned(),
            orx,
            itx,
        ));
        Side { tx, rx, task }
    }

    async fn recv(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
        timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("in time")
            .expect("open")
    }

    /// Collect a whole bulk (BulkStart ..= BulkEnd) into a table.
    async fn recv_bulk(rx: &mut mpsc::Receiver<Inbound>, t: &mut PeerTable) -> (Vec<usize>, u32) {
        let mut ch = vec![];
        let first = recv(rx).await;
        assert_eq!(first, Inbound::BulkStart { epoch: 1 });
        t.apply(&first, &mut ch);
        let mut sizes = vec![];
        loop {
            let m = recv(rx).await;
            t.apply(&m, &mut ch);
            match m {
                Inbound::Entries(v) => sizes.push(v.len()),
                Inbound::BulkEnd { total } => return (sizes, total),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    async fn pair(ck: &str, sk: &str) -> (Side, Side) {
        let l = TcpListener::bind((LO, 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        let (c, s) = tokio::join!(connect(addr, LO), accept_from(&l, LO));
        (
            start(c.unwrap(), Role::Client, ck, "leaf1a"),
            start(s.unwrap(), Role::Server, sk, "leaf1b"),
        )
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bulk_and_incrementals_both_ways() {
        let (mut c, mut s) = pair("sixteen-byte-key", "sixteen-byte-key").await;
        assert_eq!(
            recv(&mut s.rx).await,
            Inbound::Established {
                peer_name: "leaf1a".into()
            }
        );
        assert_eq!(
            recv(&mut c.rx).await,
            Inbound::Established {
                peer_name: "leaf1b".into()
            }
        );
        let big: Vec<NeighEntry> = (0..10_000).map(entry).collect();
        let small: Vec<NeighEntry> = (20_000..20_005).map(entry).collect();
        let (ctx, stx) = (c.tx.clone(), s.tx.clone());
        let big2 = big.clone();
        let small2 = small.clone();
        tokio::spawn(async move {
            ctx.send(Outbound::Bulk(big2)).await.unwrap();
            ctx.send(Outbound::Add(vec![entry(10_000), entry(10_001)]))
                .await
                .unwrap();
            // a change of MAC, and deletes
            let mut moved = entry(5);
            moved.mac = [2, 9, 9, 9, 9, 9];
            ctx.send(Outbound::Add(vec![moved])).await.unwrap();
            ctx.send(Outbound::Delete(vec![entry(1).key(), entry(2).key()]))
                .await
                .unwrap();
        });
        let gateways = vec![crate::core::consistency::GwConfig::new(
            (1, 10),
            [0, 0, 0x5e, 0, 1, 1],
            1000,
            &[crate::config::Ipv4Prefix {
                addr: Ipv4Addr::new(198, 51, 100, 1),
                len: 25,
            }],
            &[],
        )];
        let gateways2 = gateways.clone();
        tokio::spawn(async move {
            stx.send(Outbound::Bulk(small2)).await.unwrap();
            stx.send(Outbound::Gateways(gateways2)).await.unwrap();
        });

        // the server sees exactly the client's bulk, then the increments
        let mut st = PeerTable::new(open_admission());
        let (sizes, total) = recv_bulk(&mut s.rx, &mut st).await;
        assert_eq!(sizes, vec![1000; 10]);
        assert_eq!(total, 10_000);
        assert_eq!(st.len(), 10_000);
        assert!(big.iter().all(|e| st.get(&e.key()) == Some(e.mac)));
        assert_eq!(
            recv(&mut s.rx).await,
            Inbound::Entries(vec![entry(10_000), entry(10_001)])
        );
        let mut moved = entry(5);
        moved.mac = [2, 9, 9, 9, 9, 9];
        assert_eq!(recv(&mut s.rx).await, Inbound::Entries(vec![moved]));
        assert_eq!(
            recv(&mut s.rx).await,
            Inbound::Deletes(vec![entry(1).key(), entry(2).key()])
        );

        // the client sees the server's bulk
        let mut ct = PeerTable::new(open_admission());
        let (sizes, total) = recv_bulk(&mut c.rx, &mut ct).await;
        assert_eq!((sizes, total), (vec![5], 5));
        let mut got: Vec<_> = ct.iter().collect();
        got.sort_by_key(|e| e.key());
        let mut want = small.clone();
        want.sort_by_key(|e| e.key());
        assert_eq!(got, want);
        // then the server's gateways, in one frame
        assert_eq!(
            recv(&mut c.rx).await,
            Inbound::Gateways {
                first: true,
                last: true,
                gateways
            }
        );

        // the client ends its session: Ok for it, Closed for the server
        drop(c.tx);
        assert!(matches!(recv(&mut c.rx).await, Inbound::Closed(_)));
        c.task.await.unwrap().unwrap();
        match recv(&mut s.rx).await {
            Inbound::Closed(r) => assert!(r.contains("closed"), "{r}"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(s.task.await.unwrap(), Err(SyncError::Closed(_))));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn mismatched_keys_fail() {
        let (mut c, mut s) = pair("sixteen-byte-key", "another-key-here").await;
        let (rc, rs) = (c.task.await.unwrap(), s.task.await.unwrap());
        // the side that checks first reports Auth and closes; the other
        // may see that close first
        assert!(rc.is_err() && rs.is_err(), "{rc:?} {rs:?}");
        assert!(
            matches!(rc, Err(SyncError::Auth(_))) || matches!(rs, Err(SyncError::Auth(_))),
            "{rc:?} {rs:?}"
        );
        // nothing but Closed reached either side
        assert!(matches!(recv(&mut c.rx).await, Inbound::Closed(_)));
        assert!(matches!(recv(&mut s.rx).await, Inbound::Closed(_)));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn corrupted_entries_frame_resets_the_session() {
        // client -> relay (flips one byte of the first Entries frame) -> server
        let server_l = TcpListener::bind((LO, 0)).await.unwrap();
        let relay_l = TcpListener::bind((LO, 0)).await.unwrap();
        let (server_addr, relay_addr) = (
            server_l.local_addr().unwrap(),
            relay_l.local_addr().unwrap(),
        );
        // client's Hello (name "a") + Proof, then BulkStart (37 bytes), then
        // the Entries frame: flip a byte in its first entry
        let flip_at = (2 + 40 + 1) + (2 + 34) + 37 + 20;
        tokio::spawn(async move {
            let (mut from_client, _) = relay_l.accept().await.unwrap();
            let mut to_server = TcpStream::connect(server_addr).await.unwrap();
            let (mut cr, mut cw) = from_client.split();
            let (mut sr, mut sw) = to_server.split();
            let up = async {
                let mut buf = vec![0u8; 4096];
                let mut pos = 0usize;
                loop {
                    let n = cr.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, io::Error>(());
                    }
                    if (pos..pos + n).contains(&flip_at) {
                        buf[flip_at - pos] ^= 0x01;
                    }
                    pos += n;
                    sw.write_all(&buf[..n]).await?;
                }
            };
            let down = tokio::io::copy(&mut sr, &mut cw);
            let _ = tokio::join!(up, down);
        });
        let (c, s) = tokio::join!(connect(relay_addr, LO), server_l.accept());
        let c = start(c.unwrap(), Role::Client, "sixteen-byte-key", "a");
        let mut s = start(s.unwrap().0, Role::Server, "sixteen-byte-key", "b");
        c.tx.send(Outbound::Bulk((0..50).map(entry).collect()))
            .await
            .unwrap();
        assert!(matches!(recv(&mut s.rx).await, Inbound::Established { .. }));
        assert_eq!(recv(&mut s.rx).await, Inbound::BulkStart { epoch: 1 });
        match recv(&mut s.rx).await {
            Inbound::Closed(r) => assert!(r.contains("authentication"), "{r}"),
            other => panic!("the corrupted frame was delivered: {other:?}"),
        }
        assert!(matches!(s.task.await.unwrap(), Err(SyncError::Auth(_))));
        drop(c);
    }

    #[test]
    fn gateway_sets_in_order_and_bounded() {
        let mut s = GatewaySet::default();
        s.admit(true, true, 3).unwrap();
        s.admit(true, false, 3).unwrap();
        s.admit(false, false, 3).unwrap();
        s.admit(false, true, 3).unwrap();
        assert!(
            matches!(s.admit(false, true, 1), Err(SyncError::Protocol(_))),
            "outside a set"
        );
        let mut s = GatewaySet::default();
        s.admit(true, false, 1).unwrap();
        assert!(
            matches!(s.admit(true, true, 1), Err(SyncError::Protocol(_))),
            "nested"
        );
        let mut s = GatewaySet::default();
        s.admit(true, false, MAX_GATEWAYS).unwrap();
        assert!(
            matches!(s.admit(false, true, 1), Err(SyncError::Protocol(_))),
            "too many"
        );
    }

    #[test]
    fn who_connects() {
        let (a, b): (IpAddr, IpAddr) = (
            "203.0.113.1".parse().unwrap(),
            "203.0.113.2".parse().unwrap(),
        );
        assert!(is_client(a, b));
        assert!(!is_client(b, a));
    }
}
