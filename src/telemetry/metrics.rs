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

pub async fn serve(listener: TcpListener, tx: RequestTx, mut shutdown: crate::control::Shutdown) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    let mut backoff = crate::control::AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = crate::control::stopping(&mut shutdown) => return,
        };
        let mut stream = match accepted {
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
                let head = format!(
                    "HTTP/1.0 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                // the body is not copied behind the head: with thousands of
                // gateways it is megabytes, and glibc keeps what it freed
                // (no Nagle: the body must not wait for the head's ack)
                let _ = stream.set_nodelay(true);
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(body.as_bytes()).await?;
                let large = body.len() >= crate::control::LARGE_REPLY;
                drop(body);
                if large {
                    crate::sys::release_free_memory();
                }
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

/// The families an alert needs that the status document already holds: why
/// a gateway or member is held, each gateway's configured delay, whether the
/// peers agree, and the ARP/ND sync's progress. Called by the daemon's
/// exposition after its own families.
pub fn status_families(e: &mut Exposition, st: &crate::status::Status) {
    e.family(
        "dagw_gateway_up_delay_seconds",
        "gauge",
        "The gateway's configured up-delay (protocol up-delay-time)",
    );
    for g in &st.gateways {
        e.sample(
            "dagw_gateway_up_delay_seconds",
            &[("gateway", &g.name)],
            g.up_delay_ms as f64 / 1000.0,
        );
    }
    e.family(
        "dagw_gateway_hold_reason",
        "gauge",
        "1 for the reason a gateway is not up (no-interface, svi-down, up-delay, min-delay, arp-sync, mismatch, peer-link-recovery)",
    );
    for g in st.gateways.iter().filter(|g| g.state != "up") {
        if let Some(r) = &g.reason {
            e.sample(
                "dagw_gateway_hold_reason",
                &[("gateway", &g.name), ("reason", r)],
                1.0,
            );
        }
    }
    e.family(
        "dagw_member_hold_reason",
        "gauge",
        "1 for the reason a member is held (member-up-delay, split-brain, peer-link-recovery, waiting-gateways, ...)",
    );
    for m in st.members.iter().filter(|m| m.state != "up") {
        if let Some(r) = &m.reason {
            e.sample(
                "dagw_member_hold_reason",
                &[("member", &m.name), ("reason", r)],
                1.0,
            );
        }
    }
    let peer = &st.peer;
    if let Some(c) = peer.consistent {
        e.family(
            "dagw_peer_consistent",
            "gauge",
            "1 while the peer's gateway configuration agrees with ours",
        );
        e.sample("dagw_peer_consistent", &[], f64::from(u8::from(c)));
    }
    if let Some(m) = &peer.mismatches {
        e.family(
            "dagw_peer_mismatches",
            "gauge",
            "Differences between the peers' gateway configurations",
        );
        e.sample("dagw_peer_mismatches", &[], m.len() as f64);
    }
    if let Some(sync) = peer.sync.as_ref().filter(|s| s.is_object()) {
        let number = |k: &str| sync.get(k).and_then(serde_json::Value::as_f64);
        if let Some(b) = sync
            .get("bulk_complete")
            .and_then(serde_json::Value::as_bool)
        {
            e.family(
                "dagw_sync_bulk_complete",
                "gauge",
                "1 once the peer's full ARP/ND table has arrived in this session",
            );
            e.sample("dagw_sync_bulk_complete", &[], f64::from(u8::from(b)));
        }
        if let Some(n) = number("sessions") {
            e.family(
                "dagw_sync_sessions",
                "counter",
                "ARP/ND sync sessions established",
            );
            e.sample("dagw_sync_sessions_total", &[], n);
        }
    }
    e.family(
        "dagw_drained",
        "gauge",
        "1 while dagw drain holds every member for maintenance",
    );
    e.sample("dagw_drained", &[], f64::from(u8::from(st.drained)));
    if let Some(d) = peer.drained {
        e.family(
            "dagw_peer_drained",
            "gauge",
            "1 while the peer is drained for maintenance",
        );
        e.sample("dagw_peer_drained", &[], f64::from(u8::from(d)));
    }
    if let Some(state) = st.uplinks["state"].as_str().filter(|s| *s != "disabled") {
        e.family(
            "dagw_uplinks_up",
            "gauge",
            "Tracked uplinks oper-up ([uplinks])",
        );
        e.sample(
            "dagw_uplinks_up",
            &[],
            st.uplinks["up"].as_f64().unwrap_or(0.0),
        );
        e.family(
            "dagw_uplinks_holding",
            "gauge",
            "1 while too few uplinks are up (or recovering) and the members are held",
        );
        e.sample(
            "dagw_uplinks_holding",
            &[],
            f64::from(u8::from(state != "up")),
        );
    }
    let bypass: Vec<_> = st
        .gateways
        .iter()
        .filter_map(|g| Some((g, g.bypass.as_ref()?["state"].as_str()?)))
        .collect();
    if !bypass.is_empty() {
        e.family(
            "dagw_gateway_bypass_ok",
            "gauge",
            "1 while a VBDIF gateway's bypass VXLAN tunnel is healthy",
        );
        for (g, state) in bypass {
            e.sample(
                "dagw_gateway_bypass_ok",
                &[("gateway", &g.name), ("state", state)],
                f64::from(u8::from(state == "ok")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_families_from_a_status_document() {
        let st: crate::status::Status = serde_json::from_str(
            r#"{ "version": "0.1.0", "node": "leaf1a", "role": "backup",
              "peer": { "state": "up", "address": "203.0.113.2", "last_heard_ms": 120,
                        "rtt_us": 85, "consistent": false,
                        "mismatches": [{"gateway": "vlanif10", "field": "mac", "local": "a", "peer": "b"}],
                        "sync": {"state": "established", "sessions": 2, "bulk_complete": false, "peer_entries": 10} },
              "gateways": [ { "name": "vlanif10", "kind": "vlanif", "id": 10, "interface": "br10",
                  "device": "gw10", "mac": "00:00:5e:00:01:01", "ipv4": [], "ipv6": [],
                  "link_local": null, "state": "holding", "reason": "arp-sync", "hold_remaining_ms": 800,
                  "up_delay_ms": 1500, "arp": { "local": 1, "peer": 2 }, "nd": { "local": 0, "peer": 0 },
                  "corrections": 0, "error": null } ],
              "members": [ { "name": "bond1", "state": "holding", "reason": "split-brain",
                             "method": "protodown", "hold_remaining_ms": null } ] }"#,
        )
        .expect("status JSON");
        let mut e = Exposition::default();
        status_families(&mut e, &st);
        let text = e.finish();
        for line in [
            "dagw_gateway_up_delay_seconds{gateway=\"vlanif10\"} 1.5",
            "dagw_gateway_hold_reason{gateway=\"vlanif10\",reason=\"arp-sync\"} 1",
            "dagw_member_hold_reason{member=\"bond1\",reason=\"split-brain\"} 1",
            "dagw_peer_consistent 0",
            "dagw_peer_mismatches 1",
            "dagw_sync_bulk_complete 0",
            "dagw_sync_sessions_total 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
    }
}
