//! The control socket: a Unix stream socket speaking one JSON object per line.
//! `status` and `monitor` are open to the socket's group; `reload` changes
//! state and is accepted only from uid 0 (checked with SO_PEERCRED).
//!
//! Requests are untrusted: a line longer than [`MAX_REQUEST`] or that is not
//! a known request gets an error reply, never a panic.

pub mod client;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::status::Status;

pub const MAX_REQUEST: usize = 4096;
/// Concurrent control connections; more wait in the listen backlog.
const MAX_CLIENTS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum WireRequest {
    Status,
    Reload,
    Monitor,
}

#[derive(Debug)]
pub enum Request {
    Status,
    Reload,
    /// The OpenMetrics exposition (from the metrics endpoint, not the socket).
    Metrics,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "lowercase")]
pub enum Reply {
    Status(Box<Status>),
    Reloaded { warnings: Vec<String> },
    Refused { errors: Vec<String> },
    Metrics { text: String },
    Error { error: String },
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

pub async fn serve(listener: UnixListener, tx: RequestTx, feed: broadcast::Sender<String>) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let tx = tx.clone();
        let feed = feed.clone();
        tokio::spawn(async move {
            let _ = handle(stream, tx, feed).await;
            drop(permit);
        });
    }
}

async fn write_line(
    w: &mut (impl AsyncWriteExt + Unpin),
    value: &impl Serialize,
) -> io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await
}

async fn handle(
    stream: UnixStream,
    tx: RequestTx,
    feed: broadcast::Sender<String>,
) -> io::Result<()> {
    let uid = stream.peer_cred().map(|c| c.uid()).ok();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r).take(MAX_REQUEST as u64 + 1);
    let mut raw = Vec::new();
    r.read_until(b'\n', &mut raw).await?;
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
            let mut rx = feed.subscribe();
            loop {
                match rx.recv().await {
                    Ok(line) => {
                        w.write_all(line.as_bytes()).await?;
                        w.write_all(b"\n").await?;
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
        Ok(reply) => write_line(&mut w, &reply).await,
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
