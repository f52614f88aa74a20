//! Reload (DESIGN.md §2 commit, §3 reload, §4): a valid file is applied whole,
//! an invalid one is refused whole with compiler-form errors and the running
//! config kept; `dagw reload` and SIGHUP take the same path.

mod common;

use common::*;

fn gw(id: u32, mac: &str, ip: &str) -> String {
    format!(
        "\n[[gateway]]\nvlanif = {id}\ninterface = \"br{id}\"\nmac = \"{mac}\"\nipv4 = [\"{ip}\"]\nup_delay = 0\n"
    )
}

fn names(d: &Daemon) -> Vec<String> {
    let s = d.status();
    let mut v: Vec<String> = s["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn valid_reload_adds_and_removes_gateways() {
    if !require_root("valid_reload_adds_and_removes_gateways") {
        return;
    }
    let ns = Netns::new("rld-ok");
    for br in ["br10", "br20", "br30"] {
        ns.bridge_up(br);
    }
    // 10 and 20 share one vMAC (common practice); 20 will be removed.
    let d = Daemon::start(
        &ns,
        &(gw(10, "0000-5e00-0101", "192.0.2.1/24") + &gw(20, "0000-5e00-0101", "198.51.100.1/24")),
    );
    d.wait_gateway("vlanif10", "up", None);
    d.wait_gateway("vlanif20", "up", None);
    ns.ip("link add opmv link br20 address 02:00:00:00:20:01 type macvlan mode bridge");
    ns.ip("link set opmv up");
    let idx10 = ns.ifindex("gw10");
    let mon = LineTap::dagw_monitor(&d.work);

    d.work.write_config(
        &(gw(10, "0000-5e00-0101", "192.0.2.1/24") + &gw(30, "0000-5e00-0130", "203.0.113.1/24")),
    );
    let o = d.client(&["reload"]);
    assert!(
        o.status.success(),
        "reload of a valid file: {:?} {} {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    d.wait_gateway("vlanif30", "up", None);
    assert_eq!(names(&d), ["vlanif10", "vlanif30"]);
    wait_for("gw20 and its FDB entry removed", || {
        let f = ns.fdb();
        if ns.has_link("gw20") {
            Err("gw20 still there".into())
        } else if f
            .iter()
            .any(|l| l.starts_with("00:00:5e:00:01:01 dev br20 "))
        {
            Err(format!("{f:#?}"))
        } else {
            Ok(())
        }
    });
    let fdb = ns.fdb();
    assert!(
        fdb.iter()
            .any(|l| l == "00:00:5e:00:01:01 dev br10 self permanent"),
        "the shared vMAC stays on br10: {fdb:#?}"
    );
    assert!(
        fdb.iter()
            .any(|l| l == "00:00:5e:00:01:30 dev br30 self permanent"),
        "{fdb:#?}"
    );
    assert!(ns.has_link("opmv"), "a macvlan dagw does not own stays");
    assert!(ns.has_link("br20"), "the SVI stays");
    assert_eq!(ns.ifindex("gw10"), idx10, "the kept gateway is untouched");
    assert_eq!(d.corrections("vlanif10"), 0);
    assert_eq!(ns.addr_list("gw30"), ["203.0.113.1/24"]);
    mon.wait_json("config-reloaded", |v| v["id"] == "config-reloaded");
}

#[test]
fn invalid_reload_is_refused_and_config_kept() {
    if !require_root("invalid_reload_is_refused_and_config_kept") {
        return;
    }
    let ns = Netns::new("rld-bad");
    ns.bridge_up("br10");
    ns.bridge_up("br30");
    let good = gw(10, "0000-5e00-0101", "192.0.2.1/24");
    let d = Daemon::start(&ns, &good);
    d.wait_gateway("vlanif10", "up", None);
    let mon = LineTap::dagw_monitor(&d.work);

    // Two errors, and a valid new gateway that must not be applied.
    let bad =
        gw(10, "0100-5e00-0001", "192.0.2.1/33") + &gw(30, "0000-5e00-0130", "203.0.113.1/24");
    d.work.write_config(&bad);
    let o = d.client(&["reload"]);
    assert_eq!(o.status.code(), Some(1), "invalid reload exits 1");
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    let file = d.work.config().display().to_string();
    let form = |key: &str| {
        out.lines().any(|l| {
            let Some(rest) = l.strip_prefix(&format!("{file}:")) else {
                return false;
            };
            let mut parts = rest.splitn(3, ':');
            let line_ok = parts
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0));
            let col_ok = parts
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0));
            line_ok
                && col_ok
                && parts
                    .next()
                    .is_some_and(|m| m.starts_with(&format!(" error: {key}")))
        })
    };
    assert!(
        form("gateway[0].mac: "),
        "FILE:LINE:COL: error: gateway[0].mac: ... in:\n{out}"
    );
    assert!(
        form("gateway[0].ipv4[0]: "),
        "FILE:LINE:COL: error: gateway[0].ipv4[0]: ... in:\n{out}"
    );

    // Running config kept, nothing of the new file applied.
    assert_eq!(names(&d), ["vlanif10"]);
    assert!(!ns.has_link("gw30"), "nothing of a refused file is applied");
    let l = ns.link_json("gw10").expect("gw10 kept");
    assert_eq!(l["address"], "00:00:5e:00:01:01");
    assert_eq!(ns.addr_list("gw10"), ["192.0.2.1/24"]);
    assert_eq!(d.gateway("vlanif10")["state"], "up");
    let rej = mon.wait_json("config-rejected", |v| v["id"] == "config-rejected");
    assert_eq!(rej["kind"], "alert", "{rej}");

    // The same daemon takes a corrected file.
    d.work
        .write_config(&(good + &gw(30, "0000-5e00-0130", "203.0.113.1/24")));
    let o = d.client(&["reload"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.wait_gateway("vlanif30", "up", None);
}

#[test]
fn sighup_reloads() {
    if !require_root("sighup_reloads") {
        return;
    }
    let ns = Netns::new("rld-hup");
    ns.bridge_up("br10");
    ns.bridge_up("br30");
    let good = gw(10, "0000-5e00-0101", "192.0.2.1/24");
    let mut d = Daemon::start(&ns, &good);
    d.wait_gateway("vlanif10", "up", None);
    let mon = LineTap::dagw_monitor(&d.work);

    d.work
        .write_config(&(good.clone() + &gw(30, "0000-5e00-0130", "203.0.113.1/24")));
    d.signal(libc::SIGHUP);
    d.wait_gateway("vlanif30", "up", None);
    assert!(ns.has_link("gw30"));
    mon.wait_json("config-reloaded", |v| v["id"] == "config-reloaded");

    // An invalid file on SIGHUP: refused, alerted, daemon keeps serving.
    d.work
        .write_config(&gw(10, "ffff-ffff-ffff", "192.0.2.1/24"));
    d.signal(libc::SIGHUP);
    mon.wait_json("config-rejected", |v| v["id"] == "config-rejected");
    assert!(d.alive(), "daemon survives an invalid file on SIGHUP");
    assert_eq!(names(&d), ["vlanif10", "vlanif30"]);
    assert_eq!(
        ns.link_json("gw10").unwrap()["address"],
        "00:00:5e:00:01:01"
    );
}

/// Issue 10's bug: a reload that changes a kept gateway's `interface`, `mac`
/// or `bypass_vtep` must leave nothing of the old settings behind (no old
/// device, vMAC FDB entry or flood entry) and must not retry EEXIST.
#[test]
fn reload_changing_interface_mac_and_bypass_vtep_leaves_nothing_behind() {
    if !require_root("reload_changing_interface_mac_and_bypass_vtep_leaves_nothing_behind") {
        return;
    }
    let ns = Netns::new("rld-chg");
    ns.bridge_up("br10");
    ns.bridge_up("br11");
    ns.vxlan_bd("br5010", "vxlan5010", 5010);
    let vbdif = |vtep: &str| {
        format!(
            "\n[[gateway]]\nvbdif = 5010\ninterface = \"br5010\"\nmac = \"0000-5e00-0101\"\nipv4 = [\"198.51.100.1/24\"]\nvxlan = {{ device = \"vxlan5010\", bypass_vtep = \"{vtep}\" }}\n"
        )
    };
    let vlanif = |svi: &str, mac: &str| {
        format!(
            "\n[[gateway]]\nvlanif = 10\ninterface = \"{svi}\"\nmac = \"{mac}\"\nipv4 = [\"192.0.2.1/24\"]\nup_delay = 0\n"
        )
    };
    let d = Daemon::start(
        &ns,
        &(vlanif("br10", "0000-5e00-0101") + &vbdif("203.0.113.2")),
    );
    d.wait_gateway("vlanif10", "up", None);
    d.wait_gateway("vbdif5010", "up", None);
    let has = |needle: &str| ns.fdb().iter().any(|l| l.contains(needle));
    assert!(
        has("00:00:5e:00:01:01 dev br10 self permanent"),
        "{:#?}",
        ns.fdb()
    );
    assert!(has("dst 203.0.113.2"), "{:#?}", ns.fdb());

    d.work
        .write_config(&(vlanif("br11", "0000-5e00-0102") + &vbdif("203.0.113.3")));
    let o = d.client(&["reload"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_for(
        "gw10 on br11 with the new vMAC, nothing left of the old",
        || {
            let link = ns.link_json("gw10").unwrap_or_default();
            let on_br11 = link["link"] == "br11";
            let mac_ok = link["address"] == "00:00:5e:00:01:02";
            let fdb_ok = has("00:00:5e:00:01:02 dev br11 self permanent")
                && !has("00:00:5e:00:01:01 dev br10 self")
                && !has("00:00:5e:00:01:01 dev br11 self");
            let flood_ok = has("dst 203.0.113.3") && !has("dst 203.0.113.2");
            if on_br11 && mac_ok && fdb_ok && flood_ok {
                Ok(())
            } else {
                Err(format!("link {link}; fdb {:#?}", ns.fdb()))
            }
        },
    );
    d.wait_gateway("vlanif10", "up", None);
    // the vbdif kept its vMAC on br5010; nothing was retried
    assert!(
        has("00:00:5e:00:01:01 dev br5010 self permanent"),
        "{:#?}",
        ns.fdb()
    );
    assert!(!d.log().contains("apply-failed"), "{}", d.log());
    assert_eq!(d.corrections("vlanif10"), 0);
}
