//! Gateway benchmarks of issues 3 and 10, against the real kernel in network
//! namespaces.
//!
//! `cargo bench --bench gateway_scale` (root) prints:
//! (a) start-up reconcile of N gateways (vMAC + one IPv4 + one IPv6 each) —
//!     daemon start to systemd READY, which dagw sends after the first full
//!     reconcile — beside the floor: the same kernel work (macvlan, alias +
//!     addr_gen_mode none, up, IPv4, IPv6 nodad, link-local nodad, vMAC FDB
//!     entry, and the sysctl writes of `GATEWAY_SYSCTLS` / `SVI_SYSCTLS`) by
//!     `ip -batch` + `bridge -batch` + sysctl writes in the kernel's fastest
//!     order (all links, then all addresses, then FDB entries, then sysctls),
//!     in a fresh namespace in the same run, and the ratio; for reference the
//!     same work gateway after gateway (issue 3's floor);
//! (b) drift correction latency: one address deleted on each of 200 distinct
//!     gateways spread over the largest size (IPv4 and IPv6 alternately),
//!     time from the deletion's ack to the kernel's event of the re-add;
//! (c) the daemon's RSS at the largest size: at READY, and after
//!     `dagw status --json` was served 5 times; (d) stripped binary size;
//! (e) idle wake-ups (voluntary context switches) over 30 s.
//!
//! Addresses: 198.18.0.0/15 (benchmarking range) and 2001:db8::/32, inside
//! namespaces only. Set DAGW_BENCH_SIZES=1,100 to run fewer sizes,
//! DAGW_BENCH_INTERLEAVED=0 to skip the interleaved reference,
//! DAGW_BENCH_BIN=PATH to measure another dagw binary.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{
    Ns, batch, cpu_ticks, load1, percentile, proc_kb, sh, wait_quiet_within, wait_rtnl_free,
};
use dagw::core::kernel::{Addr, KernelEvent, OWNER_ALIAS_PREFIX};
use dagw::netlink::socket::{RequestSocket, split};
use dagw::netlink::sysctl::{self, GATEWAY_SYSCTLS, SVI_SYSCTLS};
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as R;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};

/// The daemon under test: this build's, or DAGW_BENCH_BIN (to compare an
/// older build in the same conditions).
fn bin() -> String {
    std::env::var("DAGW_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_dagw").to_string())
}

fn v4(i: usize) -> Ipv4Addr {
    // 198.18.0.0/15 in /28s: 8192 subnets, gateway .1 of each
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (i as u32) * 16 + 1)
}

fn v6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, i as u16, 0, 0, 0, 0, 1)
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

/// The device's alias dagw sets (`dagw:` + the gateway's name).
fn alias(i: usize) -> String {
    format!("{OWNER_ALIAS_PREFIX}vlanif{i}")
}

/// The kernel work dagw does for gateway `i`, as `ip` lines: create the
/// macvlan, alias + addr_gen_mode none (one message, as dagw sends it), up;
/// then the IPv4, IPv6 and link-local addresses.
fn link_lines(i: usize) -> [String; 3] {
    [
        format!("link add gw{i} link br{i} address 00:00:5e:00:01:01 type macvlan mode private"),
        format!("link set gw{i} alias {} addrgenmode none", alias(i)),
        format!("link set gw{i} up"),
    ]
}

fn addr_lines(i: usize) -> [String; 3] {
    [
        format!("addr add {}/28 dev gw{i}", v4(i)),
        format!("addr add 2001:db8:{i:x}::1/64 dev gw{i} nodad"),
        format!("addr add fe80::200:5eff:fe00:101/64 dev gw{i} nodad"),
    ]
}

fn fdb_line(i: usize) -> String {
    format!("fdb add 00:00:5e:00:01:01 dev br{i} self local")
}

/// The kernel's fastest order (issue 10): every link first (create,
/// alias + addr_gen_mode none, up), then every address, then the FDB entries.
fn fastest_scripts(n: usize) -> (String, String) {
    let mut ip = String::new();
    for i in 1..=n {
        for l in link_lines(i) {
            let _ = writeln!(ip, "{l}");
        }
    }
    for i in 1..=n {
        for l in addr_lines(i) {
            let _ = writeln!(ip, "{l}");
        }
    }
    let br: String = (1..=n).map(|i| fdb_line(i) + "\n").collect();
    (ip, br)
}

/// The same work gateway after gateway (the floor of issue 3).
fn interleaved_scripts(n: usize) -> (String, String) {
    let mut ip = String::new();
    for i in 1..=n {
        for l in link_lines(i).into_iter().chain(addr_lines(i)) {
            let _ = writeln!(ip, "{l}");
        }
    }
    let br: String = (1..=n).map(|i| fdb_line(i) + "\n").collect();
    (ip, br)
}

/// The sysctl writes dagw does per gateway: `GATEWAY_SYSCTLS` on the device,
/// `SVI_SYSCTLS` on its bridge, written from a thread inside `ns`.
fn sysctl_writes(ns: &str, n: usize) -> Duration {
    std::thread::scope(|s| {
        s.spawn(|| {
            let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let t = Instant::now();
            for i in 1..=n {
                for (device, set) in [
                    (format!("gw{i}"), GATEWAY_SYSCTLS),
                    (format!("br{i}"), SVI_SYSCTLS),
                ] {
                    for (family, key, value) in set {
                        std::fs::write(sysctl::path(family, &device, key), value).unwrap();
                    }
                }
            }
            t.elapsed()
        })
        .join()
        .unwrap()
    })
}

/// `ip -batch` + `bridge -batch` + sysctl writes in `ns`, timed as one.
fn floor(ns: &str, n: usize, (ip, br): (String, String)) -> Duration {
    batch(ns, "ip", &ip) + batch(ns, "bridge", &br) + sysctl_writes(ns, n)
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
        .args([
            "netns",
            "exec",
            ns,
            &bin(),
            "run",
            "-c",
            cfg.to_str().unwrap(),
        ])
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

/// Voluntary context switches of each thread of the process, by thread id.
fn ctx_switches(pid: u32) -> std::collections::HashMap<String, u64> {
    let mut out = std::collections::HashMap::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            let s = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            for l in s.lines() {
                if let Some(v) = l.strip_prefix("voluntary_ctxt_switches:") {
                    out.insert(
                        t.file_name().to_string_lossy().into_owned(),
                        v.trim().parse::<u64>().unwrap_or(0),
                    );
                }
            }
        }
    }
    out
}

/// Wake-ups between two readings: per thread alive at the second (a thread
/// that exited in between, an idle worker of a pool, is not counted; one
/// born in between counts from zero).
fn wakeups_between(
    before: &std::collections::HashMap<String, u64>,
    after: &std::collections::HashMap<String, u64>,
) -> u64 {
    after
        .iter()
        .map(|(tid, c)| c.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
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

/// How long a drift sample waits for the re-add.
const RESTORE_WAIT_S: i64 = 10;

/// Which address a drift sample deletes.
#[derive(Clone, Copy, PartialEq)]
enum Family {
    V4,
    V6,
}

/// (b): one deletion on each of `gateways` (distinct), alternating the
/// gateway's IPv4 and its global IPv6 address; per deletion, the time from
/// its ack to the kernel's event of the re-add, and from the request (the
/// daemon, woken by the deletion's event on the other core, may re-add
/// before this side has read its ack: then the first figure is only the
/// time to read an event already queued).
///
/// With `readd_self` the bench re-adds the address itself as soon as the
/// deletion is acked (in a namespace without a daemon): the floor of (b), a
/// reactor that takes no time at all, so the kernel's own cost of the re-add
/// and of its event.
fn drift_latency(
    ns: &str,
    gateways: &[usize],
    readd_self: bool,
) -> Vec<(Family, Duration, Duration)> {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let mut events = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE).unwrap();
    events.bind_auto().unwrap();
    for group in [
        dagw::netlink::RTNLGRP_IPV4_IFADDR,
        dagw::netlink::RTNLGRP_IPV6_IFADDR,
    ] {
        events.add_membership(group).unwrap();
    }
    // a daemon that never restores must not hang the bench: such a deletion
    // is reported and the next one measured
    nix::sys::socket::setsockopt(
        &events,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(RESTORE_WAIT_S, 0),
    )
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
    let mut out = Vec::with_capacity(gateways.len());
    let mut buf = Vec::with_capacity(64 * 1024);
    for (k, &i) in gateways.iter().enumerate() {
        let ifindex = index[format!("gw{i}").as_str()];
        let family = if k % 2 == 0 { Family::V4 } else { Family::V6 };
        let mut m = AddressMessage::default();
        m.header.index = ifindex;
        let ip = match family {
            Family::V4 => {
                m.header.family = AddressFamily::Inet;
                m.header.prefix_len = 28;
                let ip = IpAddr::V4(v4(i));
                m.attributes.push(AddressAttribute::Local(ip));
                ip
            }
            Family::V6 => {
                m.header.family = AddressFamily::Inet6;
                m.header.prefix_len = 64;
                let ip = IpAddr::V6(v6(i));
                m.attributes.push(AddressAttribute::Address(ip));
                ip
            }
        };
        let sent = Instant::now();
        req.request(R::DelAddress(m), 0, &|| "delete".into())
            .unwrap();
        let t = Instant::now();
        if readd_self {
            let len = if family == Family::V4 { 28 } else { 64 };
            let again =
                dagw::netlink::messages::addr_msg(ifindex, Addr { ip, len }, family == Family::V6);
            req.request(R::NewAddress(again), 0, &|| "re-add".into())
                .unwrap();
        }
        'wait: loop {
            buf.clear();
            if events.recv(&mut buf, 0).is_err() {
                println!("    gw{i}: {} not restored within {RESTORE_WAIT_S} s", ip);
                break 'wait;
            }
            for msg in split(&buf).into_iter().flatten() {
                if let NetlinkPayload::InnerMessage(inner) = &msg.payload
                    && let Some(KernelEvent::AddrAdded(idx, Addr { ip: got, .. }, _)) =
                        dagw::netlink::decode::decode(inner)
                    && idx == ifindex
                    && got == ip
                {
                    out.push((family, t.elapsed(), sent.elapsed()));
                    break 'wait;
                }
            }
        }
        // let the daemon digest the event of its own re-add before the next
        // deletion: each sample is one drift on an otherwise idle daemon
        std::thread::sleep(Duration::from_millis(5));
    }
    out
}

fn print_latency(label: &str, lat: &mut [Duration]) {
    if lat.is_empty() {
        println!("{label}: none restored");
        return;
    }
    lat.sort();
    println!(
        "{label} ({}): p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        lat.len(),
        percentile(lat, 0.5).as_secs_f64() * 1e3,
        percentile(lat, 0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3
    );
}

/// (b)'s figures: all, per family, and from the deletion's request.
fn report_drift(who: &str, n: usize, lat: &[(Family, Duration, Duration)]) {
    let mut all: Vec<Duration> = lat.iter().map(|(_, d, _)| *d).collect();
    print_latency(
        &format!(
            "(b) drift correction latency, {who}: one deletion on each of 200 of {n} gateways, ack -> re-add event"
        ),
        &mut all,
    );
    for (family, label) in [(Family::V4, "IPv4"), (Family::V6, "IPv6")] {
        let mut d: Vec<Duration> = lat
            .iter()
            .filter(|(f, _, _)| *f == family)
            .map(|(_, d, _)| *d)
            .collect();
        print_latency(&format!("    {label} address deleted"), &mut d);
    }
    let mut from_request: Vec<Duration> = lat.iter().map(|(_, _, d)| *d).collect();
    print_latency(
        "    the same from the deletion request (deletion included)",
        &mut from_request,
    );
}

/// `dagw -s SOCKET status --json`, its output discarded.
fn status_json(socket: &std::path::Path) {
    let out = Command::new(bin())
        .args(["-s", socket.to_str().unwrap(), "status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "dagw status --json failed");
    assert!(out.stdout.len() > 100, "dagw status --json said nothing");
}

/// The namespace whose `lo` probes the RTNL lock (common::wait_rtnl_free).
const PROBE_NS: &str = "dagwb-probe";

/// Before a measurement: RTNL free (at most 60 s), then an idle CPU (at most
/// 10 s: others build on this machine). The load is printed with the figures.
fn settle() {
    if !wait_rtnl_free(PROBE_NS, Duration::from_secs(60)) {
        println!("    (RTNL still busy after 60 s: the next figure includes waits for it)");
    }
    wait_quiet_within(0.05, Duration::from_secs(10));
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
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
    sh(&["date", "-u"]);
    sh(&["uptime"]);
    println!("dagw: {}", bin());
    let _probe = Ns::new(PROBE_NS, 0);
    let sizes: Vec<usize> = std::env::var("DAGW_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 100, 1000, 4094]);
    // the per-gateway order of issue 3, as a second reference (costs the
    // most time of the run at 4094): DAGW_BENCH_INTERLEAVED=0 skips it
    let interleaved = std::env::var("DAGW_BENCH_INTERLEAVED").map_or(true, |v| v != "0");
    println!(
        "(a) start-up reconcile: dagw (start -> READY) vs the same kernel work by ip -batch + bridge -batch + sysctl writes"
    );
    println!(
        "    floor: the kernel's fastest order (all links, then all addresses, then FDB entries, then sysctls)"
    );
    if interleaved {
        println!(
            "    interleaved: the same work gateway after gateway (issue 3's floor), for reference"
        );
    }
    println!(
        "{:>6} {:>12} {:>12} {:>7} {:>14} {:>7}",
        "gws", "dagw", "floor", "ratio", "interleaved", "ratio"
    );
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let mut kept = Vec::new();
    for &n in &sizes {
        // All namespaces are built first and kept until the end: the kernel
        // tears a namespace down in the background, and that work would
        // otherwise land inside the next measurement.
        let floor_ns = Ns::new(&format!("dagwb-floor{n}"), n);
        let ileave_ns = interleaved.then(|| Ns::new(&format!("dagwb-ileave{n}"), n));
        let ns = Ns::new(&format!("dagwb-agent{n}"), n);
        settle();
        let fastest = floor(&floor_ns.0, n, fastest_scripts(n));
        settle();
        let agent = start_agent(&ns.0, n);
        let rss_ready = proc_kb(agent.child.id(), "VmRSS:");
        let ileave = ileave_ns.as_ref().map(|ins| {
            settle();
            floor(&ins.0, n, interleaved_scripts(n))
        });
        let ready = agent.ready_after.as_secs_f64();
        let (il, ilr) = match ileave {
            Some(d) => (
                format!("{:.3} s", d.as_secs_f64()),
                format!("{:.2}x", ready / d.as_secs_f64()),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{n:>6} {ready:>10.3} s {:>10.3} s {:>6.2}x {il:>14} {ilr:>7}   load {:.1}",
            fastest.as_secs_f64(),
            ready / fastest.as_secs_f64(),
            load1()
        );
        kept.push(floor_ns);
        kept.extend(ileave_ns);
        if n == largest {
            let pid = agent.child.id();
            wait_idle(pid);
            // (c) memory: at READY, then after `dagw status --json` 5 times
            let rss_idle = proc_kb(pid, "VmRSS:");
            let socket = agent._dir.path().join("s.sock");
            for _ in 0..5 {
                status_json(&socket);
            }
            let rss_status = proc_kb(pid, "VmRSS:");
            println!(
                "(c) daemon RSS with {n} gateways: {:.1} MB at READY, {:.1} MB idle after it, {:.1} MB after 5 x `dagw status --json` (VmHWM {:.1} MB)",
                mb(rss_ready),
                mb(rss_idle),
                mb(rss_status),
                mb(proc_kb(pid, "VmHWM:"))
            );
            if n >= 200 {
                // (b) on this daemon: 200 distinct gateways, spread over all
                let picks: Vec<usize> = (0..200).map(|k| 1 + k * n / 200).collect();
                for (who, where_, readd_self) in [
                    ("dagw", ns.0.clone(), false),
                    (
                        "floor (the bench re-adds at once, no daemon)",
                        format!("dagwb-floor{n}"),
                        true,
                    ),
                ] {
                    settle();
                    let lat = std::thread::scope(|s| {
                        s.spawn(|| drift_latency(&where_, &picks, readd_self))
                            .join()
                            .unwrap()
                    });
                    report_drift(who, n, &lat);
                }
            }
            // (e) idle: let the event backlog settle, then count wake-ups
            std::thread::sleep(Duration::from_secs(2));
            let c0 = ctx_switches(pid);
            std::thread::sleep(Duration::from_secs(30));
            let c1 = ctx_switches(pid);
            println!(
                "(e) idle wake-ups over 30 s with {n} gateways (no watchdog): {} ({} threads)",
                wakeups_between(&c0, &c1),
                c1.len()
            );
        }
        drop(agent);
        kept.push(ns);
    }
    let stripped = std::env::temp_dir().join("dagw-stripped");
    std::fs::copy(bin(), &stripped).unwrap();
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
