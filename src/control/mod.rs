//! The control socket: a Unix stream socket speaking one JSON object per line.
//! `status` and `monitor` are open to the socket's group; `reload` changes
//! state and is accepted only from uid 0 (checked with SO_PEERCRED).
//!
//! Requests are untrusted: a line longer than [`MAX_REQUEST`] or that is not
//! a known request gets an error reply, never a panic.
//!
//! Connections are bounded so that `status` and `reload` always get an
//! answer: a client must send its request within [`REQUEST_TIMEOUT`]; at most
//! [`MAX_CLIENTS`] connections of other users than root wait for or get an
//! answer at a time (more are told the daemon is busy, at once), while root's
//! connections (`systemctl reload`, an operator's `dagw status`) are never
//! refused; `monitor` streams are counted apart ([`MAX_MONITORS`]) and one that
//! does not take its lines for [`WRITE_TIMEOUT`] is closed. When accept fails
//! (out of file descriptors), the loop backs off instead of spinning.

pub mod client;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot};
use tokio::time::timeout;

use crate::status::Status;

pub const MAX_REQUEST: usize = 4096;
/// Concurrent control connections of users other than root.
pub const MAX_CLIENTS: usize = 64;
/// Concurrent `monitor` streams.
pub const MAX_MONITORS: usize = 64;
/// The request line must arrive within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// A reply or a monitor line must be taken by the client within this.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Accept failures (EMFILE, ENFILE, ENOBUFS): wait this long, doubling up to
/// [`ACCEPT_BACKOFF_MAX`], before accepting again.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(50);
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum WireRequest {
    Status,
    Reload,
    Monitor,
    /// Maintenance: hold every member (reason `drain`), tell the peer.
    Drain,
    /// End a drain: members released at once.
    Resume,
}

#[derive(Debug)]
pub enum Request {
    Status,
    Reload,
    Drain,
    Resume,
    /// The OpenMetrics exposition (from the metrics endpoint, not the socket).
    Metrics,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "lowercase")]
pub enum Reply {
    Status(Box<Status>),
    Reloaded {
        warnings: Vec<String>,
    },
    /// After drain / resume: whether a drain is now in force.
    Drained {
        drained: bool,
    },
    Refused {
        errors: Vec<String>,
    },
    Metrics {
        text: String,
    },
    Error {
        error: String,
    },
}

pub type RequestTx = mpsc::Sender<(Request, oneshot::Sender<Reply>)>;

/// Bind the socket (replacing a stale one), mode 0660.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another dagw is serving this socket",
            ));
        }
        Err(_) => {
            let _ = std::fs::remove_file(path);
        }
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(l)
}

/// Back-off after failed accepts, with a log line at most every 10 s.
#[derive(Default)]
pub struct AcceptBackoff {
    delay: Duration,
    logged: Option<std::time::Instant>,
    suppressed: u64,
}

impl AcceptBackoff {
    /// An accept failed: log (rate-limited) and wait before the next one.
    pub async fn failed(&mut self, what: &str, e: &io::Error) {
        self.delay = (self.delay * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
        let now = std::time::Instant::now();
        if self
            .logged
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            tracing::warn!(
                "{what}: accept failed: {e}; backing off {} ms ({} more failures not logged)",
                self.delay.as_millis(),
                std::mem::take(&mut self.suppressed)
            );
            self.logged = Some(now);
        } else {
            self.suppressed += 1;
        }
        tokio::time::sleep(self.delay).await;
    }

    pub fn succeeded(&mut self) {
        self.delay = Duration::ZERO;
    }
}

/// The daemon is stopping: every task watches this and ends its work.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;

/// Resolves once the daemon began to stop.
pub async fn stopping(shutdown: &mut Shutdown) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

pub async fn serve(
    listener: UnixListener,
    tx: RequestTx,
    feed: broadcast::Sender<String>,
    mut shutdown: Shutdown,
) {
    let clients = Arc::new(Semaphore::new(MAX_CLIENTS));
    let monitors = Arc::new(Semaphore::new(MAX_MONITORS));
    let mut backoff = AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopping(&mut shutdown) => return,
        };
        let stream = match accepted {
            Ok((s, _)) => {
                backoff.succeeded();
                s
            }
            Err(e) => {
                backoff.failed("control socket", &e).await;
                continue;
            }
        };
        let uid = stream.peer_cred().map(|c| c.uid()).ok();
        // root is never turned away: it is who reloads and who is paged
        let permit = match uid {
            Some(0) => None,
            _ => match clients.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    tokio::spawn(async move {
                        let (_, mut w) = stream.into_split();
                        let busy = Reply::Error {
                            error: format!(
                                "the daemon is busy: {MAX_CLIENTS} control connections open; try again"
                            ),
                        };
                        let _ = write_line(&mut w, &busy).await;
                    });
                    continue;
                }
            },
        };
        let tx = tx.clone();
        let feed = feed.clone();
        let monitors = monitors.clone();
        tokio::spawn(async move {
            let _ = handle(stream, uid, permit, tx, feed, monitors).await;
        });
    }
}

/// A reply at least this long: hand the freed heap back once it is written.
/// The status of 4094 gateways is about 1.8 MB of JSON, built from some
/// 60 000 small strings; glibc keeps what they and the growing buffer
/// occupied, and RSS stayed 4 MB above READY's until the next audit.
pub const LARGE_REPLY: usize = 256 * 1024;

async fn write_line(
    w: &mut (impl AsyncWriteExt + Unpin),
    value: &impl Serialize,
) -> io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
    line.push(b'\n');
    write_timed(w, &line).await
}

/// Write a reply the daemon built; the reply is freed as soon as it is
/// serialised, and the memory of a large one handed back after the write.
async fn write_reply(w: &mut (impl AsyncWriteExt + Unpin), reply: Reply) -> io::Result<()> {
    let line = serde_json::to_vec(&reply);
    drop(reply);
    let mut line = line.map_err(io::Error::other)?;
    line.push(b'\n');
    let large = line.len() >= LARGE_REPLY;
    let written = write_timed(w, &line).await;
    drop(line);
    if large {
        crate::sys::release_free_memory();
    }
    written
}

/// A write the client must take within [`WRITE_TIMEOUT`].
async fn write_timed(w: &mut (impl AsyncWriteExt + Unpin), bytes: &[u8]) -> io::Result<()> {
    timeout(WRITE_TIMEOUT, w.write_all(bytes))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client takes no data"))?
}

async fn handle(
    stream: UnixStream,
    uid: Option<u32>,
    permit: Option<OwnedSemaphorePermit>,
    tx: RequestTx,
    feed: broadcast::Sender<String>,
    monitors: Arc<Semaphore>,
) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r).take(MAX_REQUEST as u64 + 1);
    let mut raw = Vec::new();
    if timeout(REQUEST_TIMEOUT, r.read_until(b'\n', &mut raw))
        .await
        .is_err()
    {
        return write_line(
            &mut w,
            &Reply::Error {
                error: format!(
                    "no request within {} ms; closing",
                    REQUEST_TIMEOUT.as_millis()
                ),
            },
        )
        .await;
    }
    // not UTF-8: answered like any other request that is not a known one
    let line = String::from_utf8(raw)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    if line.len() > MAX_REQUEST {
        return write_line(
            &mut w,
            &Reply::Error {
                error: format!("request longer than {MAX_REQUEST} bytes"),
            },
        )
        .await;
    }
    let req = match serde_json::from_str::<WireRequest>(line.trim()) {
        Ok(r) => r,
        Err(e) => {
            return write_line(
                &mut w,
                &Reply::Error {
                    error: format!(
                        "bad request ({e}); allowed: {{\"cmd\": \"status\"|\"reload\"|\"monitor\"}}"
                    ),
                },
            )
            .await;
        }
    };
    let req = match req {
        WireRequest::Monitor => {
            // a monitor is counted apart: it does not hold a request slot
            drop(permit);
            let Ok(_slot) = monitors.try_acquire_owned() else {
                return write_line(
                    &mut w,
                    &Reply::Error {
                        error: format!("{MAX_MONITORS} monitors already connected"),
                    },
                )
                .await;
            };
            let mut rx = feed.subscribe();
            loop {
                match rx.recv().await {
                    Ok(mut line) => {
                        line.push('\n');
                        write_timed(&mut w, line.as_bytes()).await?;
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let note = serde_json::json!({"ts": crate::telemetry::rfc3339_now(), "kind": "alert", "id": "monitor-lagged", "object": "monitor", "message": format!("this monitor fell behind; {n} lines lost")});
                        write_line(&mut w, &note).await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        }
        WireRequest::Status => Request::Status,
        WireRequest::Reload if uid != Some(0) => {
            return write_line(
                &mut w,
                &Reply::Error {
                    error: "reload changes state: only root may ask for it".into(),
                },
            )
            .await;
        }
        WireRequest::Reload => Request::Reload,
        WireRequest::Drain | WireRequest::Resume if uid != Some(0) => {
            return write_line(
                &mut w,
                &Reply::Error {
                    error: "drain and resume change state: only root may ask for them".into(),
                },
            )
            .await;
        }
        WireRequest::Drain => Request::Drain,
        WireRequest::Resume => Request::Resume,
    };
    let (otx, orx) = oneshot::channel();
    if tx.send((req, otx)).await.is_err() {
        return write_line(
            &mut w,
            &Reply::Error {
                error: "the daemon is shutting down".into(),
            },
        )
        .await;
    }
    match orx.await {
        Ok(reply) => write_reply(&mut w, reply).await,
        Err(_) => {
            write_line(
                &mut w,
                &Reply::Error {
                    error: "the daemon dropped the request".into(),
                },
            )
            .await
        }
    }
}
