//! Reloads that change the pair (issue 10's bugs, each shown failing first):
//! a reload that adds `[peer]` starts the ARP/ND sync channel, not only the
//! heartbeat; a member removed from the config while a split-brain holds it
//! is released.

mod common;

use common::pair::*;
use common::*;

/// The side's config without its `[peer]` section.
fn standalone(side: &Side) -> String {
    let full = side.config(&PeerOpts::default(), &[Gw::vlanif10()]);
    let start = full.find("[peer]").expect("[peer]");
    let end = full.find("[mlag]").expect("[mlag]");
    format!("{}{}", &full[..start], &full[end..])
}

#[test]
fn reload_adding_peer_starts_the_sync_channel() {
    if !require_root("reload_adding_peer_starts_the_sync_channel") {
        return;
    }
    let pair = Pair::new("rlpeer");
    for side in [&pair.a, &pair.b] {
        std::fs::write(side.work.config(), standalone(side)).expect("config");
    }
    let da = pair.a.start();
    let db = pair.b.start();
    assert_eq!(da.status()["peer"]["state"], "disabled");
    for side in [&pair.a, &pair.b] {
        side.reload(&PeerOpts::default(), &[Gw::vlanif10()]);
    }
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    wait_sync_established(&da);
    wait_sync_established(&db);
}

#[test]
fn member_removed_during_split_brain_is_released() {
    if !require_root("member_removed_during_split_brain_is_released") {
        return;
    }
    let pair = Pair::new("rlsplit");
    let (da, db) = pair.start(&PeerOpts::default(), &[Gw::vlanif10()]);
    wait_peer(&da, "up");
    wait_peer(&db, "up");
    wait_member(&db, "bond1", "up", None);
    pair.b.ns.ip("link set peerlink down");
    wait_member(&db, "bond1", "holding", Some("split-brain"));

    // bond1 is no longer an M-LAG member: dagw lets go of it
    let without = pair
        .b
        .config(&PeerOpts::default(), &[Gw::vlanif10()])
        .replace("members = [\"bond1\"]", "members = []");
    std::fs::write(pair.b.work.config(), without).expect("config");
    let o = pair.b.work.client(&["reload"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_for("B's bond1 admin up again", || {
        if pair.b.ns.admin_up("bond1") {
            Ok(())
        } else {
            Err(format!("{:?}", pair.b.ns.link_flags("bond1")))
        }
    });
    assert!(
        db.status()["members"]
            .as_array()
            .is_some_and(|m| m.is_empty())
    );
}
