//! Reboot vs restart, and the board reset (issue 12 item 2; seed: members
//! report up only after `member_up_delay` "after an M-LAG member device
//! restarts"): the first start after boot is told by the kernel's boot id
//! recorded in `state_dir` (here a directory on disk, not tmpfs; the test
//! simulates a reboot with a boot id file of its own), and a member
//! interface that comes back under a new ifindex while dagw runs is held
//! again, reason `member-returned`.

mod common;

use std::sync::Arc;

use common::*;

const CONFIG: &str = r#"
[mlag]
members = ["m1"]
member_up_delay = "3s"

[[gateway]]
vlanif = 10
interface = "br10"
mac = "0000-5e00-0101"
ipv4 = ["192.0.2.1/24"]
up_delay = "0s"
"#;

fn lab(test: &str) -> (Netns, Arc<Workdir>) {
    let ns = Netns::new(test);
    ns.bridge_up("br10");
    ns.ip("link add m1 type veth peer name m1x");
    ns.ip("link set m1 up");
    ns.ip("link set m1x up");
    let work = Arc::new(Workdir::new());
    work.write_config(CONFIG);
    (ns, work)
}

fn set_boot_id(work: &Workdir, id: &str) {
    std::fs::write(work.path().join("boot_id"), format!("{id}\n")).expect("boot id");
}

fn wait_member_state(d: &Daemon, state: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let ok = wait_until(WAIT, || {
        last = d.member("m1");
        last["state"] == state
    });
    assert!(ok, "m1 never {state}: {last}");
    last
}

#[test]
fn reboot_is_told_by_the_boot_id_on_any_state_dir() {
    if !require_root("reboot_is_told_by_the_boot_id_on_any_state_dir") {
        return;
    }
    let (ns, work) = lab("rb-boot");
    set_boot_id(&work, "6f0c1a2e-1111-4000-8000-000000000001");

    // first start of this boot: held
    let d = Daemon::spawn(&ns, work.clone());
    let m = d.member("m1");
    assert_eq!(
        (m["state"].as_str(), m["reason"].as_str()),
        (Some("holding"), Some("member-up-delay")),
        "{m}"
    );
    assert!(
        d.log().contains("hold-start"),
        "hold-start notice: {}",
        d.log()
    );
    wait_member_state(&d, "up");
    d.stop();

    // a restart of dagw in the same boot: not held
    let d = Daemon::spawn(&ns, work.clone());
    let m = d.member("m1");
    assert_ne!(m["state"], "holding", "restart must not hold: {m}");
    d.stop();

    // a reboot (another boot id), the state dir kept on disk: held again
    set_boot_id(&work, "6f0c1a2e-2222-4000-8000-000000000002");
    let d = Daemon::spawn(&ns, work.clone());
    let m = d.member("m1");
    assert_eq!(
        (m["state"].as_str(), m["reason"].as_str()),
        (Some("holding"), Some("member-up-delay")),
        "after a reboot: {m}"
    );
    wait_member_state(&d, "up");
}

#[test]
fn a_member_that_returns_while_running_is_held() {
    if !require_root("a_member_that_returns_while_running_is_held") {
        return;
    }
    let (ns, work) = lab("rb-board");
    set_boot_id(&work, "6f0c1a2e-3333-4000-8000-000000000003");
    let d = Daemon::spawn(&ns, work.clone());
    wait_member_state(&d, "up");

    // the board resets: the member interface disappears and comes back
    ns.ip("link del m1");
    ns.ip("link add m1 type veth peer name m1x");
    ns.ip("link set m1 up");
    ns.ip("link set m1x up");
    let m = wait_member_state(&d, "holding");
    assert_eq!(m["reason"], "member-returned", "{m}");
    assert!(!ns.admin_up("m1"), "the returned member is held down");
    wait_member_state(&d, "up");
    assert!(ns.admin_up("m1"), "released after member_up_delay");
}
