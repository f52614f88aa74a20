//! The control socket and its clients (DESIGN.md §3, §5): `status` as a table
//! and as JSON, `monitor --json` lines, robustness against garbage requests,
//! the socket's mode, and `reload` refused to non-root callers.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::process::Command;

const CONFIG: &str = r#"
[mlag]
members = ["m1"]
member_up_delay = "5s"

[[gateway]]
vlanif = 10
interface = "br10"
mac = "0000-5e00-0101"
ipv4 = ["192.0.2.1/24", "192.0.2.129 255.255.255.128"]
ipv6 = ["2001:db8:10::1/64"]
up_delay = "0s"
"#;

fn lab(test: &str) -> (Netns, Daemon) {
    let ns = Netns::new(test);
    ns.bridge_up("br10");
    ns.ip("link add m1 type veth peer name m1x");
    ns.ip("link set m1 up");
    ns.ip("link set m1x up");
    let d = Daemon::start(&ns, CONFIG);
    d.wait_gateway("vlanif10", "up", None);
    (ns, d)
}

/// `2026-11-25T16:14:37.782Z` or with a `+hh:mm` offset.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
        && s[..4].chars().all(|c| c.is_ascii_digit())
}

#[test]
fn status_json_has_contract_fields() {
    if !require_root("status_json_has_contract_fields") {
        return;
    }
    let (_ns, d) = lab("ctl-json");
    let s = d.status();
    assert!(
        s["version"].as_str().is_some_and(|v| v.contains("0.1.0")),
        "{s}"
    );
    assert_eq!(s["node"], "t");
    assert_eq!(s["role"], "standalone");
    // standalone: state "disabled", every other peer field present and null
    // (DESIGN.md §5: every field always present, null when unknown)
    assert_eq!(s["peer"]["state"], "disabled");
    for (k, v) in s["peer"].as_object().expect("peer object") {
        assert!(
            k == "state" || v.is_null(),
            "peer.{k} = {v} while standalone"
        );
    }
    assert!(s["peer"].get("address").is_some(), "peer.address present");

    let g = gateway_of(&s, "vlanif10");
    assert_eq!(g["kind"], "vlanif");
    assert_eq!(g["id"], 10);
    assert_eq!(g["interface"], "br10");
    assert_eq!(g["device"], "gw10");
    assert_eq!(g["mac"], "00:00:5e:00:01:01");
    assert_eq!(
        g["ipv4"],
        serde_json::json!(["192.0.2.1/24", "192.0.2.129/25"])
    );
    assert_eq!(g["ipv6"], serde_json::json!(["2001:db8:10::1/64"]));
    assert_eq!(g["link_local"], "fe80::200:5eff:fe00:101/64");
    assert_eq!(g["state"], "up");
    assert_eq!(g["reason"], Value::Null);
    assert_eq!(g["hold_remaining_ms"], Value::Null);
    assert_eq!(g["up_delay_ms"], 0);
    for t in ["arp", "nd"] {
        assert!(g[t]["local"].is_u64(), "{t}.local: {g}");
        assert_eq!(g[t]["peer"], Value::Null, "{t}.peer without a peer: {g}");
    }
    assert_eq!(g["corrections"], 0);

    let members = s["members"].as_array().expect("members list");
    assert_eq!(members.len(), 1, "{s}");
    let m = &members[0];
    assert_eq!(m["name"], "m1");
    assert!(
        ["down", "holding", "up"].contains(&m["state"].as_str().unwrap_or("")),
        "{m}"
    );
    assert!(
        ["protodown", "admin-down"].contains(&m["method"].as_str().unwrap_or("")),
        "{m}"
    );
    assert!(m.get("hold_remaining_ms").is_some(), "{m}");
    assert!(m.get("reason").is_some(), "{m}");
}

#[test]
fn status_table_names_gateways_and_members() {
    if !require_root("status_table_names_gateways_and_members") {
        return;
    }
    let (_ns, d) = lab("ctl-table");
    let o = d.client(&["status"]);
    assert!(o.status.success());
    let t = String::from_utf8_lossy(&o.stdout);
    for want in [
        "GATEWAY",
        "vlanif10",
        "br10",
        "gw10",
        "00:00:5e:00:01:01",
        "192.0.2.129/25",
        "standalone",
        "MEMBER",
        "m1",
    ] {
        assert!(t.contains(want), "table lacks {want}:\n{t}");
    }
    assert!(
        serde_json::from_str::<Value>(&t).is_err(),
        "the default is a table, not JSON"
    );
    let row = t
        .lines()
        .find(|l| l.starts_with("vlanif10"))
        .unwrap_or_else(|| panic!("no vlanif10 row:\n{t}"));
    assert!(row.split_whitespace().any(|w| w == "up"), "{row}");

    // `dagw status | head -0`: the reader has gone before dagw writes
    for args in [&["status"][..], &["status", "--json"]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let o = std::process::Command::new(DAGW)
            .arg("-s")
            .arg(d.work.socket())
            .args(args)
            .stdout(writer)
            .output()
            .expect("run dagw status");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && err.is_empty(),
            "{args:?} into a closed pipe: {:?} {err}",
            o.status
        );
    }
}

#[test]
fn monitor_streams_state_and_correction_lines() {
    if !require_root("monitor_streams_state_and_correction_lines") {
        return;
    }
    let ns = Netns::new("ctl-mon");
    let d = Daemon::start(&ns, CONFIG.replace("\"m1\"", "").as_str());
    d.wait_gateway("vlanif10", "down", Some("no-interface"));
    let mon = LineTap::dagw_monitor(&d.work);

    ns.bridge_up("br10");
    let up = mon.wait_json("gateway-state up", |v| {
        v["id"] == "gateway-state" && v["object"] == "vlanif10" && v["state"] == "up"
    });
    assert_eq!(up["kind"], "state", "{up}");
    assert!(up["ts"].as_str().is_some_and(is_rfc3339), "ts: {up}");
    assert!(
        up["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{up}"
    );

    ns.ip("addr del 192.0.2.129/25 dev gw10");
    let c = mon.wait_json("drift-corrected", |v| {
        v["id"] == "drift-corrected" && v["object"] == "vlanif10"
    });
    assert_eq!(c["kind"], "correction", "{c}");
    assert!(c["ts"].as_str().is_some_and(is_rfc3339), "ts: {c}");
    for v in mon.json_lines() {
        for k in ["ts", "kind", "id", "object", "message"] {
            assert!(v.get(k).is_some(), "monitor line lacks {k}: {v}");
        }
        assert!(
            ["state", "alert", "correction"].contains(&v["kind"].as_str().unwrap_or("")),
            "{v}"
        );
    }
}

fn raw_request(sock: &std::path::Path, req: &[u8]) -> String {
    let mut s = UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(req).expect("write");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("read reply");
    line
}

#[test]
fn garbage_requests_get_error_replies() {
    if !require_root("garbage_requests_get_error_replies") {
        return;
    }
    let (_ns, mut d) = lab("ctl-garb");
    let sock = d.work.socket();
    let long = vec![b'x'; 10_000];
    for req in [
        &b"hello\n"[..],
        &b"{\"cmd\": \"shutdown\"}\n"[..],
        &b"{\"cmd\": 7}\n"[..],
        &long[..],
    ] {
        let reply = raw_request(&sock, req);
        let v: Value = serde_json::from_str(&reply).unwrap_or_else(|e| {
            panic!(
                "reply to {:?} is not JSON ({e}): {reply:?}",
                String::from_utf8_lossy(&req[..req.len().min(40)])
            )
        });
        assert_eq!(v["reply"], "error", "{v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    // A client that connects and goes away without a word.
    drop(UnixStream::connect(&sock).expect("connect"));
    // A well-formed raw request still works.
    let v: Value = serde_json::from_str(&raw_request(&sock, b"{\"cmd\": \"status\"}\n")).unwrap();
    assert_eq!(v["reply"], "status", "{v}");
    assert!(d.alive(), "daemon survives garbage");
    assert_eq!(d.gateway("vlanif10")["state"], "up");
}

#[test]
fn socket_is_mode_0660() {
    if !require_root("socket_is_mode_0660") {
        return;
    }
    let (_ns, d) = lab("ctl-mode");
    let md = std::fs::metadata(d.work.socket()).expect("socket exists");
    assert!(md.file_type().is_socket());
    assert_eq!(md.permissions().mode() & 0o7777, 0o660);
}

#[test]
fn reload_refused_to_non_root() {
    if !require_root("reload_refused_to_non_root") {
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        println!("SKIPPED: reload_refused_to_non_root needs setpriv");
        return;
    }
    let (ns, d) = lab("ctl-uid");
    // Let uid 65534 (group root, which the 0660 socket admits) reach the socket.
    std::fs::set_permissions(d.work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A file that would add a gateway if it were applied.
    d.work.write_config(&format!(
        "{CONFIG}\n[[gateway]]\nvlanif = 20\ninterface = \"br10\"\nmac = \"0000-5e00-0120\"\nipv4 = [\"198.51.100.1/24\"]\ndevice = \"gw20\"\nup_delay = 0\n"
    ));
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=0", "--clear-groups", DAGW, "-s"])
            .arg(d.work.socket())
            .args(args)
            .output()
            .expect("setpriv")
    };
    let st = as_nobody(&["status", "--json"]);
    assert!(
        st.status.success(),
        "status is open to the socket's group: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let o = as_nobody(&["reload"]);
    assert!(!o.status.success(), "reload from uid 65534 must be refused");
    let names: Vec<Value> = d.status()["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].clone())
        .collect();
    assert_eq!(names, [Value::from("vlanif10")], "config not reloaded");
    assert!(!ns.has_link("gw20"));
}

#[test]
fn non_utf8_request_gets_error_reply() {
    if !require_root("non_utf8_request_gets_error_reply") {
        return;
    }
    let (_ns, mut d) = lab("ctl-utf8");
    let reply = raw_request(&d.work.socket(), b"\xff\xfe\x00garbage\n");
    assert!(d.alive(), "daemon survives a non-UTF-8 request");
    assert_eq!(d.gateway("vlanif10")["state"], "up");
    let v: Value = serde_json::from_str(&reply)
        .unwrap_or_else(|e| panic!("no JSON error reply to a non-UTF-8 line ({e}): {reply:?}"));
    assert_eq!(v["reply"], "error", "{v}");
}
