//! A hostile (or buggy) peer on the ARP/ND sync channel (issue 11 item 3;
//! DESIGN.md §4 `max_synced`, `max_synced_per_gateway`; §5
//! `peer.sync.refused`): it holds the key and speaks the protocol, and
//! announces entries for addresses outside the gateways' prefixes, for
//! gateways this switch does not have, and far more than the caps. dagw
//! must install only what is inside its gateways' prefixes and within the
//! caps, count the rest by reason, and keep its memory bounded.
//!
//! The peer is this test process, in B's namespace, speaking through
//! `dagw::sync` (the real codec and handshake) as the accepting side; the
//! real daemon runs as A (203.0.113.1 connects).

mod common;

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use common::pair::*;
use common::*;
use dagw::peer::auth::{Key, Keyring};
use dagw::sync::{self, Inbound, NeighEntry, Outbound, Role};
use serde_json::Value;

const KEY: &str = "dagw-peer-test-key-0123456789";

/// Run a fake sync peer in `ns` at B's address: accept A's connection,
/// complete the handshake, send `entries` as one bulk, then keep the
/// session open until `done` fires.
fn fake_peer(
    ns: &Netns,
    entries: Vec<NeighEntry>,
    done: std_mpsc::Receiver<()>,
) -> std::thread::JoinHandle<()> {
    let path = format!("/var/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns(2) on a valid namespace fd; it changes only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(SocketAddr::new(B_ADDR.into(), PORT))
                .await
                .expect("bind the sync port");
            let stream = sync::accept_from(&listener, IpAddr::V4(A_ADDR))
                .await
                .expect("accept A");
            let keyring = Keyring {
                current: Key::new(KEY.as_bytes().to_vec()),
                previous: None,
            };
            let (out_tx, out_rx) = tokio::sync::mpsc::channel(4);
            let (in_tx, mut in_rx) = tokio::sync::mpsc::channel(64);
            let session = tokio::spawn(sync::run_session(
                stream,
                Role::Server,
                keyring,
                "leafb".into(),
                out_rx,
                in_tx,
            ));
            // wait for the handshake, then flood
            while let Some(m) = in_rx.recv().await {
                if matches!(m, Inbound::Established { .. }) {
                    break;
                }
            }
            out_tx.send(Outbound::Bulk(entries)).await.expect("bulk");
            tokio::spawn(async move { while in_rx.recv().await.is_some() {} });
            let _ = tokio::task::spawn_blocking(move || done.recv()).await;
            drop(out_tx);
            let _ = session.await;
        });
    })
}

fn entry(id: u32, ip: IpAddr, i: u32) -> NeighEntry {
    NeighEntry {
        gw_kind: sync::GW_VLANIF,
        gw_id: id,
        ip,
        mac: [2, 0xee, (i >> 16) as u8, (i >> 8) as u8, i as u8, 1],
    }
}

fn config(side: &Side, gateway: &str, caps: &str) -> String {
    let w = &side.work;
    format!(
        "[node]\nname = \"leafa\"\nsocket = \"{sock}\"\nstate_dir = \"{state}\"\n\n\
         [peer]\nlocal = \"203.0.113.1\"\naddress = \"203.0.113.2\"\nport = {PORT}\n\
         key_file = \"{key}\"\n{caps}\n\n\
         [mlag]\nmembers = [\"bond1\"]\nmember_up_delay = \"2s\"\n\n{gateway}",
        sock = w.socket().display(),
        state = w.state_dir().display(),
        key = side.key_path().display(),
    )
}

fn refused(d: &Daemon) -> (u64, u64, u64) {
    let s = d.status()["peer"]["sync"].clone();
    (
        s["peer_entries"].as_u64().unwrap_or(0),
        s["refused"]["outside-prefix"].as_u64().unwrap_or(0),
        s["refused"]["over-limit"].as_u64().unwrap_or(0),
    )
}

/// gw10's peer entries in the kernel (extern_learn), by IP.
fn installed(ns: &Netns) -> Vec<IpAddr> {
    neigh_rows(ns, "gw10")
        .into_iter()
        .filter(|(_, r)| r.extern_learn)
        .map(|(ip, _)| ip.parse().expect("ip"))
        .collect()
}

/// The global neighbour gc thresholds, raised for one test and restored.
struct GcThresholds(Vec<(String, String)>);

impl GcThresholds {
    fn raise() -> GcThresholds {
        let mut saved = Vec::new();
        for fam in ["ipv4", "ipv6"] {
            for (k, v) in [
                ("gc_thresh3", "300000"),
                ("gc_thresh2", "200000"),
                ("gc_thresh1", "100000"),
            ] {
                let p = format!("/proc/sys/net/{fam}/neigh/default/{k}");
                if let Ok(old) = std::fs::read_to_string(&p) {
                    saved.push((p.clone(), old.trim().to_string()));
                }
                let _ = std::fs::write(&p, v);
            }
        }
        GcThresholds(saved)
    }
}

impl Drop for GcThresholds {
    fn drop(&mut self) {
        for (p, v) in self.0.iter().rev() {
            let _ = std::fs::write(p, v);
        }
    }
}

fn rss_kb(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[test]
fn entries_outside_prefixes_or_over_the_caps_are_refused_and_counted() {
    if !require_root("entries_outside_prefixes_or_over_the_caps_are_refused_and_counted") {
        return;
    }
    let pair = Pair::new("hsync");
    let gw = Gw::vlanif10().toml();
    let cfg = config(
        &pair.a,
        &gw,
        "max_synced = 150\nmax_synced_per_gateway = 100",
    );
    std::fs::write(pair.a.work.config(), cfg).expect("config");
    let da = pair.a.start();
    da.wait_gateway("vlanif10", "up", None);

    let mut entries = Vec::new();
    // 10 outside the prefixes (IPv4 and IPv6), 5 for a gateway A does not have
    for i in 0..5 {
        entries.push(entry(
            10,
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10 + i as u8)),
            i,
        ));
        let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 1 + i as u16);
        entries.push(entry(10, IpAddr::V6(v6), 100 + i));
        entries.push(entry(
            11,
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + i as u8)),
            200 + i,
        ));
    }
    // 200 inside 2001:db8:10::/64 and 2 link-local: 100 fit the per-gateway cap
    for i in 0..200u32 {
        let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 1, i as u16);
        entries.push(entry(10, IpAddr::V6(v6), 1000 + i));
    }
    let (tx, rx) = std_mpsc::channel();
    let peer = fake_peer(&pair.b.ns, entries, rx);

    wait_for("the bulk processed", || {
        let r = refused(&da);
        if r.0 + r.1 + r.2 == 215 {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    });
    assert_eq!(
        refused(&da),
        (100, 15, 100),
        "(admitted, outside-prefix, over-limit)"
    );
    wait_for("100 entries installed", || {
        let n = installed(&pair.a.ns).len();
        if n == 100 {
            Ok(())
        } else {
            Err(format!("{n}"))
        }
    });
    let prefix = |ip: &IpAddr| matches!(ip, IpAddr::V6(v6) if v6.segments()[..4] == [0x2001, 0xdb8, 0x10, 0]);
    let all = installed(&pair.a.ns);
    assert!(all.iter().all(prefix), "outside the prefix: {all:?}");
    // the refusal is alerted once
    wait_for("sync-refused alert", || {
        if da.log().contains("sync-refused") {
            Ok(())
        } else {
            Err(da.log())
        }
    });
    let _ = tx.send(());
    let _ = peer.join();
}

#[test]
fn a_million_entries_get_at_most_the_cap_and_bounded_memory() {
    if !require_root("a_million_entries_get_at_most_the_cap_and_bounded_memory") {
        return;
    }
    // the kernel's neighbour table is global: let it hold the cap (restored
    // on drop, also on a failure)
    let _gc = GcThresholds::raise();
    let pair = Pair::new("hmillion");
    let gw = Gw {
        ipv4: vec!["198.18.0.1/15".into()],
        ..Gw::vlanif10()
    }
    .toml();
    // the defaults: max_synced 262144, max_synced_per_gateway 65536
    let cfg = config(&pair.a, &gw, "");
    std::fs::write(pair.a.work.config(), cfg).expect("config");
    let da = pair.a.start();
    da.wait_gateway("vlanif10", "up", None);

    // 1 000 000 entries: half inside 198.18.0.0/15 and 2001:db8:10::/64,
    // half outside (2001:db8:77::/64)
    let entries: Vec<NeighEntry> = (0..1_000_000u32)
        .map(|i| {
            let ip = if i % 8 == 0 {
                IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i / 8 + 2))
            } else if i % 2 == 0 {
                IpAddr::V6(Ipv6Addr::from(
                    (0x2001_0db8_0010_0000_u128 << 64) | u128::from(i),
                ))
            } else {
                IpAddr::V6(Ipv6Addr::from(
                    (0x2001_0db8_0077_0000_u128 << 64) | u128::from(i),
                ))
            };
            entry(10, ip, i)
        })
        .collect();
    let (tx, rx) = std_mpsc::channel();
    let peer = fake_peer(&pair.b.ns, entries, rx);

    let mut peak = 0;
    let ok = wait_until(Duration::from_secs(300), || {
        peak = peak.max(rss_kb(da.pid()));
        let r = refused(&da);
        r.0 + r.1 + r.2 >= 1_000_000
    });
    assert!(ok, "the bulk was never processed: {:?}", refused(&da));
    let (admitted, outside, over) = refused(&da);
    assert_eq!(admitted, 65_536, "at most max_synced_per_gateway");
    assert_eq!(outside, 500_000);
    assert_eq!(over, 1_000_000 - 500_000 - 65_536);
    wait_for("the cap installed", || {
        let n = installed(&pair.a.ns).len();
        if n == 65_536 {
            Ok(())
        } else {
            Err(format!("{n}"))
        }
    });
    peak = peak.max(rss_kb(da.pid()));
    let all = installed(&pair.a.ns);
    let inside = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => (u32::from(*v4) & 0xfffe_0000) == 0xc612_0000,
        IpAddr::V6(v6) => v6.segments()[..4] == [0x2001, 0xdb8, 0x10, 0],
    };
    assert!(
        all.iter().all(inside),
        "entries outside the prefixes installed"
    );
    eprintln!(
        "1M announced: {admitted} admitted, {outside} outside-prefix, {over} over-limit; peak RSS {peak} kB"
    );
    assert!(peak < 32 * 1024, "dagw's RSS reached {peak} kB");
    let status: Value = da.status();
    assert_eq!(status["peer"]["sync"]["refused"]["over-limit"], over);
    let _ = tx.send(());
    let _ = peer.join();
}
