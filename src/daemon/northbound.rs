//! The northbound: what the control socket and the metrics endpoint are
//! answered with, and configuration reloads (read, validate, hand over).

use std::path::Path;

use crate::config::{self, Config, Diagnostic};
use crate::daemon::heartbeat::HeartbeatIo;
use crate::peer::link::DropReason;
use crate::status::Status;
use crate::telemetry::metrics::Exposition;
use crate::telemetry::{Kind, Notice, ids};

/// Fill what the node does not know into its status: the heartbeat link's
/// counters and the sync sessions refused.
pub fn complete_status(st: &mut Status, hb: Option<&HeartbeatIo>) {
    if let Some(hb) = hb {
        st.peer.heartbeats = Some(hb.counters_json());
    }
    if let Some(sync) = st.peer.sync.as_mut() {
        sync["rejected"] = crate::sync::session::REJECTED
            .all()
            .into_iter()
            .map(|(r, n)| (r.to_string(), serde_json::Value::from(n)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
}

/// What a reload read: a valid configuration (with warnings) for the node,
/// or the lines that refuse it. Notices go to `emit`.
pub fn load_config(
    path: &Path,
    running: &Config,
    emit: &mut dyn FnMut(Notice),
) -> Result<(Config, Vec<Diagnostic>), Vec<String>> {
    let file = path.display().to_string();
    let loaded = config::load(path);
    crate::sys::release_free_memory();
    match loaded {
        Ok((new, warnings)) => {
            if new.node.socket != running.node.socket
                || new.node.state_dir != running.node.state_dir
            {
                tracing::warn!("[node] socket and state_dir take effect at the next start");
            }
            Ok((new, warnings))
        }
        Err(config::LoadFailure::Io { path, source }) => {
            let msg = format!("{}: error: cannot read: {source}", path.display());
            emit(Notice::new(
                Kind::Alert,
                ids::CONFIG_REJECTED,
                "config",
                msg.clone(),
            ));
            Err(vec![msg])
        }
        Err(config::LoadFailure::Invalid(diags)) => {
            let lines: Vec<String> = diags.iter().map(|d| d.render(&file)).collect();
            emit(
                Notice::new(
                    Kind::Alert,
                    ids::CONFIG_REJECTED,
                    "config",
                    format!("configuration {file} refused; running configuration kept"),
                )
                .with("errors", lines.clone()),
            );
            Err(lines)
        }
    }
}

/// The OpenMetrics exposition of `[metrics] listen`, from the status as
/// `dagw status` shows it and the heartbeat link's counters.
pub fn metrics(st: &Status, hb: Option<&HeartbeatIo>) -> String {
    let mut e = Exposition::default();
    e.family(
        "dagw_gateway_state",
        "gauge",
        "Gateway state: 0 down, 1 holding, 2 up",
    );
    for g in &st.gateways {
        let v = match g.state.as_str() {
            "up" => 2.0,
            "holding" => 1.0,
            _ => 0.0,
        };
        e.sample(
            "dagw_gateway_state",
            &[("gateway", &g.name), ("kind", &g.kind)],
            v,
        );
    }
    e.family(
        "dagw_gateway_hold_remaining_seconds",
        "gauge",
        "Time left in the gateway's current hold",
    );
    for g in &st.gateways {
        e.sample(
            "dagw_gateway_hold_remaining_seconds",
            &[("gateway", &g.name)],
            g.hold_remaining_ms.unwrap_or(0) as f64 / 1000.0,
        );
    }
    e.family(
        "dagw_gateway_corrections",
        "counter",
        "Outside changes to the gateway that dagw restored",
    );
    for g in &st.gateways {
        e.sample(
            "dagw_gateway_corrections_total",
            &[("gateway", &g.name)],
            g.corrections as f64,
        );
    }
    e.family(
        "dagw_gateway_neighbours",
        "gauge",
        "Usable ARP/ND entries on the gateway device, local and as the peer reports",
    );
    for g in &st.gateways {
        for (family, c) in [("arp", &g.arp), ("nd", &g.nd)] {
            e.sample(
                "dagw_gateway_neighbours",
                &[("gateway", &g.name), ("family", family), ("side", "local")],
                c.local as f64,
            );
            if let Some(p) = c.peer {
                e.sample(
                    "dagw_gateway_neighbours",
                    &[("gateway", &g.name), ("family", family), ("side", "peer")],
                    p as f64,
                );
            }
        }
    }
    e.family(
        "dagw_member_held",
        "gauge",
        "1 while dagw holds the M-LAG member down",
    );
    for m in &st.members {
        e.sample(
            "dagw_member_held",
            &[("member", &m.name), ("method", &m.method)],
            f64::from(u8::from(m.state == "holding")),
        );
    }
    e.family(
        "dagw_peer_up",
        "gauge",
        "1 while the peer's heartbeat is heard",
    );
    e.sample(
        "dagw_peer_up",
        &[("state", &st.peer.state)],
        f64::from(u8::from(st.peer.state == "up")),
    );
    if let Some(hb) = hb {
        e.family(
            "dagw_peer_rtt_seconds",
            "gauge",
            "Heartbeat round-trip time",
        );
        e.sample(
            "dagw_peer_rtt_seconds",
            &[],
            st.peer.rtt_us.map(|us| us as f64 / 1e6).unwrap_or(f64::NAN),
        );
        let c = &hb.link.counters;
        e.family("dagw_heartbeat_tx", "counter", "Heartbeat packets sent");
        e.sample("dagw_heartbeat_tx_total", &[], c.tx as f64);
        e.family("dagw_heartbeat_rx", "counter", "Heartbeat packets accepted");
        e.sample("dagw_heartbeat_rx_total", &[], c.rx as f64);
        e.family(
            "dagw_heartbeat_dropped",
            "counter",
            "Heartbeat packets dropped, by reason",
        );
        for r in DropReason::ALL {
            e.sample(
                "dagw_heartbeat_dropped_total",
                &[("reason", r.as_str())],
                c.dropped(r) as f64,
            );
        }
        e.family(
            "dagw_sync_rejected",
            "counter",
            "Sync connections or sessions refused, by reason",
        );
        for (r, n) in crate::sync::session::REJECTED.all() {
            e.sample("dagw_sync_rejected_total", &[("reason", r)], n as f64);
        }
    }
    if let Some(s) = &st.peer.sync {
        let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0) as f64;
        e.family(
            "dagw_sync_peer_entries",
            "gauge",
            "Neighbour entries the peer advertised and this switch admitted",
        );
        e.sample("dagw_sync_peer_entries", &[], n(&s["peer_entries"]));
        e.family(
            "dagw_sync_refused",
            "counter",
            "Neighbour entries from the peer refused, by reason",
        );
        for reason in ["outside-prefix", "over-limit"] {
            e.sample(
                "dagw_sync_refused_total",
                &[("reason", reason)],
                n(&s["refused"][reason]),
            );
        }
    }
    crate::telemetry::metrics::status_families(&mut e, st);
    e.finish()
}
