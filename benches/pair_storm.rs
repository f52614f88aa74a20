//! Issue 10's storm, measured (the scenario of `tests/storm.rs`, built by
//! `tests/common/storm.rs`): a pair at 100 ms × 3; A reloads a config adding
//! 1500 gateways while 200 of their SVIs flap.
//!
//! `cargo bench --bench pair_storm` (root) prints:
//! - the longest gap between two heartbeat datagrams A sent, as B's side of
//!   the underlay received them (kernel receive times of an AF_PACKET tap in
//!   B's namespace), from before the reload until A converged; the same for
//!   B's heartbeats reaching A, and how stale A's view of B got
//!   (`peer.last_heard_ms`, sampled by the status calls);
//! - `dagw status --json` answer times on A (and B) during the reload and
//!   storm: p50 / p99 / max;
//! - the reload's own duration and the time until A converged (status and
//!   kernel show all 1501 gateways as configured);
//! - the peer-down and role notices either side gave.
//!
//! Targets (issue 10): heartbeat gap < 2 × interval = 200 ms; status < 1 s.

#[path = "../tests/common/mod.rs"]
mod harness;

use std::time::Duration;

use harness::pair::{A_ADDR, B_ADDR, ts_ms};
use harness::storm::{HeartbeatTap, StatusCall, StormLab};

/// The longest gap between consecutive times (with the time it began), and
/// the number of gaps over `limit`.
fn gaps(times: &[Duration], limit: Duration) -> (Duration, Duration, usize) {
    let g: Vec<(Duration, Duration)> = times
        .windows(2)
        .map(|w| (w[1].saturating_sub(w[0]), w[0]))
        .collect();
    let (max, from) = g.iter().copied().max().unwrap_or_default();
    (max, from, g.iter().filter(|(d, _)| *d >= limit).count())
}

/// Seconds from `origin` to `t` (both since the epoch), signed.
fn rel(t: Duration, origin: Duration) -> f64 {
    t.as_secs_f64() - origin.as_secs_f64()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// "p50 / p99 / max" of the calls' answer times, in ms.
fn answer_times(calls: &[StatusCall]) -> String {
    let mut t: Vec<Duration> = calls.iter().map(|c| c.took).collect();
    t.sort();
    if t.is_empty() {
        return "no calls".into();
    }
    let at = |p: f64| t[((t.len() - 1) as f64 * p).round() as usize];
    format!(
        "p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} calls, {} over 1 s)",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0)),
        t.len(),
        calls.iter().filter(|c| !c.answered_in_time()).count()
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("pair_storm: run with `cargo bench --bench pair_storm` (needs root)");
        return;
    }
    if !harness::require_root("pair_storm") {
        return;
    }
    let target = Duration::from_millis(200);
    let lab = StormLab::new("pstorm");
    let a_to_b = HeartbeatTap::start(&lab.pair.b.ns, A_ADDR);
    let b_to_a = HeartbeatTap::start(&lab.pair.a.ns, B_ADDR);
    // both directions flowing before the reload: a silence from its first
    // moment is a gap between two captured datagrams
    a_to_b.wait_seen(3);
    b_to_a.wait_seen(3);
    let run = lab.storm();
    let sent_by_a = a_to_b.finish();
    let sent_by_b = b_to_a.finish();

    println!(
        "pair at 100 ms x 3; A reloads +1500 gateways while 200 SVIs flap ({})",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let origin = run
        .reload_started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    for (what, c, note) in [
        ("A (received on B's side)", &sent_by_a, "   target < 200 ms"),
        ("B (received on A's side)", &sent_by_b, ""),
    ] {
        let (max, from, over) = gaps(&c.times, target);
        println!(
            "heartbeats sent by {what}: {} datagrams, longest gap {:.1} ms (from {:+.3} s after the reload began), {over} gaps >= 200 ms{note}{}",
            c.times.len(),
            ms(max),
            rel(from, origin),
            if c.unstamped > 0 {
                format!(" ({} without a kernel stamp: read time used)", c.unstamped)
            } else {
                String::new()
            }
        );
    }
    let stale = |calls: &[StatusCall]| calls.iter().filter_map(|c| c.last_heard_ms).max();
    println!(
        "peer.last_heard_ms, largest sampled: A's view of B {:?} ms, B's view of A {:?} ms",
        stale(&run.status_a),
        stale(&run.status_b)
    );
    println!(
        "status --json on A: {}   target < 1 s",
        answer_times(&run.status_a)
    );
    println!("status --json on B: {}", answer_times(&run.status_b));
    println!(
        "dagw reload on A returned after {:.3} s; A converged (1501 gateways up in status and kernel) after {}",
        run.reload_took.as_secs_f64(),
        run.converged_after
            .map_or("never (gave up)".to_string(), |d| format!(
                "{:.3} s",
                d.as_secs_f64()
            ))
    );
    println!(
        "notices: A peer-down {} role {}; B peer-down {} role {}",
        run.notices_a.peer_downs(),
        run.notices_a.role_changes(),
        run.notices_b.peer_downs(),
        run.notices_b.role_changes()
    );
    // when each side lost the peer or changed role, on the same clock
    for (side, n) in [("A", &run.notices_a), ("B", &run.notices_b)] {
        for line in n.log_peer_down.iter().chain(&n.log_role) {
            let ts = line.split_whitespace().next().unwrap_or("");
            let at = Duration::from_millis(ts_ms(&serde_json::json!({ "ts": ts })) as u64);
            let text = line.split_once("  ").map_or(line.as_str(), |(_, t)| t);
            println!("  {:+.3} s {side}: {text}", rel(at, origin));
        }
    }
    print!("{}", run.summary());
    // what each side made of the other's heartbeats (tx / rx / dropped by reason)
    for (side, d) in [("A", &lab.da), ("B", &lab.db)] {
        println!(
            "{side} peer.heartbeats after the storm: {}",
            d.status()["peer"]["heartbeats"]
        );
    }
}
