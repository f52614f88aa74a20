//! Maintenance drain and the goodbye (issue 12 items 7 and 8; DESIGN.md §3
//! `drain` / `resume`, §5 `drained`, `peer.drained`, `peer.reason`): two real
//! daemons (tests/common/pair.rs).
//!
//! - `dagw drain` holds every member (reason `drain`), survives a restart of
//!   dagw, tells the peer (`peer.drained`), which treats it neither as
//!   split-brain nor as a mismatch; `dagw resume` releases at once.
//! - SIGTERM sends an authenticated goodbye: the peer reports `down` with
//!   `reason: "peer-shutdown"` at once, not after interval × multiplier; a
//!   kill -9 still takes the dead interval.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::pair::*;
use common::*;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn wait_member_reason(d: &Daemon, reason: Option<&str>) {
    wait_for(&format!("bond1 reason {reason:?}"), || {
        let m = d.member("bond1");
        if m["reason"].as_str() == reason {
            Ok(())
        } else {
            Err(m.to_string())
        }
    });
}

#[test]
fn drain_holds_members_tells_the_peer_and_survives_a_restart() {
    if !require_root("drain_holds_members_tells_the_peer_and_survives_a_restart") {
        return;
    }
    let pair = Pair::new("drain");
    let (da, db) = pair.start(&PeerOpts::default(), &[Gw::vlanif10()]);
    for d in [&da, &db] {
        wait_peer(d, "up");
        wait_member(d, "bond1", "up", None);
    }
    assert_eq!(da.status()["drained"], false);
    assert_eq!(db.status()["peer"]["drained"], false);

    let o = da.client(&["drain"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_member(&da, "bond1", "holding", Some("drain"));
    assert!(!pair.a.ns.admin_up("bond1"), "a drained member is down");
    assert_eq!(da.status()["drained"], true);
    wait_for("B sees A drained", || {
        let p = db.status()["peer"].clone();
        if p["drained"] == true {
            Ok(())
        } else {
            Err(p.to_string())
        }
    });
    let p = db.status()["peer"].clone();
    assert_eq!(p["consistent"], true, "a drain is no mismatch: {p}");
    assert_eq!(db.member("bond1")["state"], "up", "B keeps serving");

    // a drain survives a restart of dagw
    da.stop();
    let da = pair.a.start();
    let m = da.member("bond1");
    assert_eq!(
        (m["state"].as_str(), m["reason"].as_str()),
        (Some("holding"), Some("drain")),
        "{m}"
    );
    assert_eq!(da.status()["drained"], true);

    // with the peer-link down while A is drained, B holds nothing
    pair.a.ns.ip("link set peerlink down");
    wait_for("A sees its peer-link down", || {
        let s = da.status();
        if s["peer"]["state"] == "up" {
            Ok(())
        } else {
            Err(s["peer"].to_string())
        }
    });
    std::thread::sleep(Duration::from_millis(600)); // three heartbeats of B's view
    assert_ne!(
        db.member("bond1")["reason"],
        "split-brain",
        "{}",
        db.member("bond1")
    );
    pair.a.ns.ip("link set peerlink up");

    // resume: released at once (no member_up_delay)
    let o = da.client(&["resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_member_reason(&da, None);
    assert_eq!(da.status()["drained"], false);
    wait_for("B sees A resumed", || {
        let p = db.status()["peer"].clone();
        if p["drained"] == false {
            Ok(())
        } else {
            Err(p.to_string())
        }
    });
}

#[test]
fn a_clean_stop_says_goodbye_a_kill_does_not() {
    if !require_root("a_clean_stop_says_goodbye_a_kill_does_not") {
        return;
    }
    let pair = Pair::new("goodbye");
    let opts = PeerOpts {
        interval: "1s".into(),
        multiplier: 3,
        ..PeerOpts::default()
    };
    let (da, db) = pair.start(&opts, &[Gw::vlanif10()]);
    for d in [&da, &db] {
        wait_peer(d, "up");
    }
    assert!(da.status()["peer"]["reason"].is_null());
    let mon = LineTap::dagw_monitor(&da.work);

    let t0 = now_ms();
    db.stop();
    let down = mon.wait_json("peer-down", |v| v["id"] == "peer-down");
    let after = ts_ms(&down) - t0;
    eprintln!(
        "goodbye: A reported the peer down {after} ms after B's SIGTERM (dead interval 3000 ms)"
    );
    assert_eq!(down["reason"], "peer-shutdown", "{down}");
    assert!(
        after < 1000,
        "down {after} ms after the stop: the goodbye was not taken"
    );
    let p = da.status()["peer"].clone();
    assert_eq!(
        (p["state"].as_str(), p["reason"].as_str()),
        (Some("down"), Some("peer-shutdown")),
        "{p}"
    );

    // B back: up again, reason cleared; then a kill -9: no goodbye
    let db = pair.b.start();
    wait_peer(&da, "up");
    assert!(da.status()["peer"]["reason"].is_null());
    let t1 = now_ms();
    db.kill9();
    let down = mon.wait_json("peer-down after kill -9", |v| {
        v["id"] == "peer-down" && ts_ms(v) > t1
    });
    let after = ts_ms(&down) - t1;
    eprintln!("kill -9: A reported the peer down {after} ms after (dead interval 3000 ms)");
    assert!(down["reason"].is_null(), "{down}");
    assert!(
        after >= 2000,
        "down only {after} ms after a kill -9: taken for a goodbye?"
    );
}
