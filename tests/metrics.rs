//! The optional OpenMetrics endpoint (`[metrics] listen`): served inside the
//! daemon's namespace, one family per line, the gateway's state and the
//! corrections counter following the daemon's own state.

mod common;

use common::*;

const CONFIG: &str = r#"
[metrics]
listen = "127.0.0.1:9742"

[mlag]
members = []

[[gateway]]
vlanif = 10
interface = "br10"
mac = "0000-5e00-0101"
ipv4 = ["192.0.2.1/24"]
up_delay = "0s"
"#;

/// GET /metrics from inside the namespace (the listener lives there).
fn scrape(ns: &Netns, path: &str) -> String {
    let script = format!(
        "import socket\ns = socket.create_connection(('127.0.0.1', 9742), timeout=5)\n\
         s.sendall(b'GET {path} HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n')\nd = b''\n\
         while True:\n    c = s.recv(65536)\n    if not c: break\n    d += c\nprint(d.decode())"
    );
    let o = ns.exec(&["python3", "-c", &script]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn metrics_follow_the_daemon_state() {
    if !require_root("metrics_follow_the_daemon_state") {
        return;
    }
    let ns = Netns::new("metrics");
    ns.bridge_up("br10");
    ns.veth_on("br10", "m1", "m1x");
    let d = Daemon::start(&ns, CONFIG);
    d.wait_gateway("vlanif10", "up", None);

    let body = scrape(&ns, "/metrics");
    assert!(body.starts_with("HTTP/1.0 200 OK"), "{body}");
    assert!(body.contains("application/openmetrics-text"), "{body}");
    assert!(
        body.contains("dagw_gateway_state{gateway=\"vlanif10\",kind=\"vlanif\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("dagw_gateway_corrections_total{gateway=\"vlanif10\"} 0"),
        "{body}"
    );
    assert!(
        body.contains("dagw_peer_up{state=\"disabled\"} 0"),
        "{body}"
    );
    // The families from the status document (telemetry::metrics::status_families).
    assert!(
        body.contains("dagw_gateway_up_delay_seconds{gateway=\"vlanif10\"} 0"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE dagw_gateway_hold_reason gauge"),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");

    ns.ip("addr del 192.0.2.1/24 dev gw10");
    wait_for("the correction shows in the metrics", || {
        let b = scrape(&ns, "/metrics");
        if b.contains("dagw_gateway_corrections_total{gateway=\"vlanif10\"} 1") {
            Ok(())
        } else {
            Err(b)
        }
    });
    assert!(
        scrape(&ns, "/nothing").starts_with("HTTP/1.0 404"),
        "unknown paths are refused"
    );
}
