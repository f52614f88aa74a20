//! Gateway benchmarks of issue 3, against the real kernel in network namespaces.
//!
//! `cargo bench --bench gateway_scale` (root) prints:
//! (a) start-up reconcile of N gateways (vMAC + one IPv4 + one IPv6 each) —
//!     daemon start to systemd READY, which dagw sends after the first full
//!     reconcile — beside `ip -batch` + `bridge -batch` doing the same kernel work
//!     (macvlan, addrgenmode none, up, IPv4, IPv6 nodad, link-local nodad, vMAC
//!     FDB entry) in a fresh namespace in the same run, and the ratio;
//! (b) drift correction latency: an address deleted from 1000 gateways one by
//!     one, time from the deletion's ack to the kernel's event of the re-add;
//! (c) the daemon's RSS with 4094 gateways; (d) stripped binary size;
//! (e) idle wake-ups (voluntary context switches) over 30 s.
//!
//! Addresses: 198.18.0.0/15 (benchmarking range) and 2001:db8::/32, inside
//! namespaces only. Set DAGW_BENCH_SIZES=1,100 to run fewer sizes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{Ns, batch, cpu_ticks, percentile, proc_kb, sh, wait_quiet};
use dagw::core::kernel::{Addr, KernelEvent};
use dagw::netlink::socket::{RequestSocket, split};
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as R;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};

const BIN: &str = env!("CARGO_BIN_EXE_dagw");

fn v4(i: usize) -> Ipv4Addr {
    // 198.18.0.0/15 in /28s: 8192 subnets, gateway .1 of each
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (i as u32) * 16 + 1)
}

fn config(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let mut c = format!(
        "[node]\nname = \"bench\"\nsocket = \"{0}/s.sock\"\nstate_dir = \"{0}/state\"\n[mlag]\nmembers = []\nmember_up_delay = \"240s\"\n",
        dir.display()
    );
    for i in 1..=n {
        let _ = write!(
            c,
            "[[gateway]]\nvlanif = {i}\ninterface = \"br{i}\"\nmac = \"0000-5e00-0101\"\nipv4 = [\"{}/28\"]\nipv6 = [\"2001:db8:{i:x}::1/64\"]\nup_delay = \"0s\"\n",
            v4(i)
        );
    }
    let p = dir.join("dagw.toml");
    std::fs::write(&p, c).unwrap();
    p
}

fn floor_script(n: usize) -> (String, String) {
    let mut ip = String::new();
    let mut br = String::new();
    for i in 1..=n {
        let _ = writeln!(
            ip,
            "link add gw{i} link br{i} address 00:00:5e:00:01:01 type macvlan mode private"
        );
        let _ = writeln!(ip, "link set gw{i} addrgenmode none");
        let _ = writeln!(ip, "link set gw{i} up");
        let _ = writeln!(ip, "addr add {}/28 dev gw{i}", v4(i));
        let _ = writeln!(ip, "addr add 2001:db8:{i:x}::1/64 dev gw{i} nodad");
        let _ = writeln!(ip, "addr add fe80::200:5eff:fe00:101/64 dev gw{i} nodad");
        let _ = writeln!(br, "fdb add 00:00:5e:00:01:01 dev br{i} self local");
    }
    (ip, br)
}

struct Agent {
    child: Child,
    _dir: tempfile::TempDir,
    ready_after: Duration,
}
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start dagw in `ns` and wait for READY on our own NOTIFY_SOCKET.
fn start_agent(ns: &str, n: usize) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), n);
    let notify = dir.path().join("notify.sock");
    let rx = UnixDatagram::bind(&notify).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let t = Instant::now();
    let child = Command::new("ip")
        .args(["netns", "exec", ns, BIN, "run", "-c", cfg.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &notify)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    loop {
        let k = rx.recv(&mut buf).expect("dagw never said READY");
        if buf[..k].windows(7).any(|w| w == b"READY=1") {
            break;
        }
    }
    Agent {
        child,
        _dir: dir,
        ready_after: t.elapsed(),
    }
}

fn ctx_switches(pid: u32) -> u64 {
    // all threads of the process
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            let s = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            for l in s.lines() {
                if let Some(v) = l.strip_prefix("voluntary_ctxt_switches:") {
                    total += v.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    total
}

/// After READY the daemon still digests the kernel's events of its own start-up
/// work; measure latency only once it is idle (CPU time flat for 1 s, bounded).
fn wait_idle(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = cpu_ticks(pid);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let now = cpu_ticks(pid);
        if now == last {
            return;
        }
        last = now;
    }
}

/// (b): delete each gateway's IPv4 address once and time the re-add.
fn drift_latency(ns: &str, n: usize) -> Vec<Duration> {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let mut events = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE).unwrap();
    events.bind_auto().unwrap();
    events
        .add_membership(dagw::netlink::RTNLGRP_IPV4_IFADDR)
        .unwrap();
    let mut req = RequestSocket::open().unwrap();
    let links = req
        .dump(R::GetLink(Default::default()), &|| "links".into())
        .unwrap();
    let mut index = std::collections::HashMap::new();
    for m in &links {
        if let Some(KernelEvent::Link(l)) = dagw::netlink::decode::decode(m) {
            index.insert(l.name, l.index);
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut buf = Vec::with_capacity(64 * 1024);
    for i in 1..=n {
        let ifindex = index[format!("gw{i}").as_str()];
        let ip = IpAddr::V4(v4(i));
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.index = ifindex;
        m.header.prefix_len = 28;
        m.attributes.push(AddressAttribute::Local(ip));
        req.request(R::DelAddress(m), 0, &|| "delete".into())
            .unwrap();
        let t = Instant::now();
        'wait: loop {
            buf.clear();
            events.recv(&mut buf, 0).unwrap();
            for msg in split(&buf).into_iter().flatten() {
                if let NetlinkPayload::InnerMessage(inner) = &msg.payload
                    && let Some(KernelEvent::AddrAdded(idx, Addr { ip: got, .. }, _)) =
                        dagw::netlink::decode::decode(inner)
                    && idx == ifindex
                    && got == ip
                {
                    out.push(t.elapsed());
                    break 'wait;
                }
            }
        }
    }
    out
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("gateway_scale: run with `cargo bench --bench gateway_scale` (needs root)");
        return;
    }
    if !nix::unistd::Uid::effective().is_root() {
        println!("SKIPPED: gateway_scale needs root (network namespaces)");
        return;
    }
    // more neighbours/routes than the defaults in the init namespace are not needed here
    let sizes: Vec<usize> = std::env::var("DAGW_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 100, 1000, 4094]);
    println!(
        "(a) start-up reconcile: dagw (start -> READY) vs ip -batch + bridge -batch, same kernel work"
    );
    println!(
        "{:>6} {:>12} {:>12} {:>7}",
        "gws", "dagw", "ip -batch", "ratio"
    );
    let mut rss_4094 = None;
    let mut kept = Vec::new();
    for &n in &sizes {
        // Both namespaces are built first and kept until the end: the kernel
        // tears a namespace down in the background, and that work would
        // otherwise land inside the next measurement.
        let floor_ns = Ns::new(&format!("dagwb-floor{n}"), n);
        let ns = Ns::new(&format!("dagwb-agent{n}"), n);
        wait_quiet(0.05);
        let floor = {
            let (ip, br) = floor_script(n);
            batch(&floor_ns.0, "ip", &ip) + batch(&floor_ns.0, "bridge", &br)
        };
        wait_quiet(0.05);
        let agent = start_agent(&ns.0, n);
        kept.push(floor_ns);
        if n == 4094 {
            rss_4094 = Some(proc_kb(agent.child.id(), "VmRSS:"));
        }
        let ratio = agent.ready_after.as_secs_f64() / floor.as_secs_f64();
        println!(
            "{n:>6} {:>10.3} s {:>10.3} s {ratio:>6.2}x",
            agent.ready_after.as_secs_f64(),
            floor.as_secs_f64()
        );
        if n == *sizes.iter().max().unwrap() {
            wait_idle(agent.child.id());
            if n >= 1000 {
                // (b) on this daemon: 1000 deletions, one per gateway
                let mut lat =
                    std::thread::scope(|s| s.spawn(|| drift_latency(&ns.0, 1000)).join().unwrap());
                lat.sort();
                println!(
                    "(b) drift correction latency over {} address deletions: p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
                    lat.len(),
                    percentile(&lat, 0.5).as_secs_f64() * 1e3,
                    percentile(&lat, 0.99).as_secs_f64() * 1e3,
                    lat.last().unwrap().as_secs_f64() * 1e3
                );
            }
            let pid = agent.child.id();
            // (e) idle: let the event backlog settle, then count wake-ups
            std::thread::sleep(Duration::from_secs(2));
            let c0 = ctx_switches(pid);
            std::thread::sleep(Duration::from_secs(30));
            let c1 = ctx_switches(pid);
            println!(
                "(e) idle wake-ups over 30 s with {n} gateways (no watchdog): {}",
                c1 - c0
            );
        }
        drop(agent);
        kept.push(ns);
    }
    if let Some(kb) = rss_4094 {
        println!(
            "(c) daemon RSS with 4094 gateways: {:.1} MB",
            kb as f64 / 1024.0
        );
    }
    let stripped = std::env::temp_dir().join("dagw-stripped");
    std::fs::copy(BIN, &stripped).unwrap();
    sh(&["strip", stripped.to_str().unwrap()]);
    let size = std::fs::metadata(&stripped).unwrap().len();
    println!(
        "(d) stripped binary ({}): {:.2} MB",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        size as f64 / 1048576.0
    );
    let _ = std::fs::remove_file(stripped);
    let _ = std::io::stdout().flush();
}
