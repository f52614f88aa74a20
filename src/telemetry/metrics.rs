//! The optional OpenMetrics endpoint (`[metrics] listen`, off by default).
//! A deliberately small HTTP/1.0 responder: every GET gets the current
//! exposition; requests are bounded and anything else gets a 400/404.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::control::{Reply, Request, RequestTx};

const MAX_REQUEST: usize = 8192;
const MAX_CLIENTS: usize = 16;

pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub async fn serve(listener: TcpListener, tx: RequestTx) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    let mut backoff = crate::control::AcceptBackoff::default();
    loop {
        let mut stream = match listener.accept().await {
            Ok((s, _)) => {
                backoff.succeeded();
                s
            }
            Err(e) => {
                backoff.failed("metrics endpoint", &e).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                let mut buf = vec![0u8; MAX_REQUEST];
                let mut n = 0;
                while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    let k = stream.read(&mut buf[n..]).await?;
                    if k == 0 {
                        break;
                    }
                    n += k;
                }
                let head = String::from_utf8_lossy(&buf[..n]);
                let (status, body) = if !head.starts_with("GET ") {
                    ("400 Bad Request", "only GET\n".to_string())
                } else if !(head.starts_with("GET /metrics ") || head.starts_with("GET / ")) {
                    ("404 Not Found", "try /metrics\n".to_string())
                } else {
                    let (otx, orx) = oneshot::channel();
                    match tx.send((Request::Metrics, otx)).await {
                        Ok(()) => match orx.await {
                            Ok(Reply::Metrics { text }) => ("200 OK", text),
                            _ => ("503 Service Unavailable", "daemon busy\n".to_string()),
                        },
                        Err(_) => ("503 Service Unavailable", "daemon stopping\n".to_string()),
                    }
                };
                let resp = format!(
                    "HTTP/1.0 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(resp.as_bytes()).await?;
                stream.shutdown().await
            })
            .await;
            drop(permit);
        });
    }
}

/// Builds one exposition: families declared once, samples after.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Exposition {
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        use std::fmt::Write;
        let _ = writeln!(self.out, "# TYPE {name} {kind}\n# HELP {name} {help}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        use std::fmt::Write;
        let _ = write!(self.out, "{name}");
        if !labels.is_empty() {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.out, "{{{}}}", l.join(","));
        }
        let _ = writeln!(self.out, " {value}");
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("# EOF\n");
        self.out
    }
}
