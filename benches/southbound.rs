//! Southbound request paths of issue 10, against the real kernel: which way of
//! sending netlink changes is fastest, measured in one run (docs/southbound.md).
//!
//! `cargo bench --bench southbound` (root) prints:
//! (1) 100k neighbour entries (`noarp extern_learn`, 198.18.0.0/15, on a
//!     macvlan over a bridge, each way in a fresh namespace) installed by
//!     (a) `ip -batch` (the floor: one acked request at a time),
//!     (b) the crate's `RequestSocket`: one acked request at a time, and
//!         pipelined (`batch`, up to 256 requests per `sendmsg`),
//!     (c) `rtnetlink` `Handle::request` with 64 / 256 / 1024 requests in flight;
//! (2) 1000 gateway-style jobs (create macvlan, read it back, alias +
//!     addr_gen_mode none, up, IPv4 + IPv6 + link-local address — the requests
//!     dagw's executor sends per new gateway, sysctls aside) four ways:
//!     `RequestSocket` one acked request at a time job after job (today's
//!     executor) and phase after phase (all creates, then all reads, ...),
//!     `RequestSocket::batch` phase after phase (indices from one link dump),
//!     and `rtnetlink` with every job in flight at once; each in a fresh
//!     namespace of 1000 bridges. Order of the ways reversed every other round.
//!
//! Before the runs, 100k entries are installed and removed once (the
//! neighbour hash table is global and only grows: the first run would pay for
//! its growth). Namespaces are kept until the end (their teardown would hold
//! RTNL during a later run); a run's entries are removed with its device
//! right after it. Before each run the bench waits until the RTNL lock is
//! free and briefly for an idle CPU, and marks a run that started without
//! either. Each
//! way's min and median over the rounds are printed at the end.
//! DAGW_SB_NEIGHS sets the entry count, DAGW_SB_GATEWAYS the job count,
//! DAGW_SB_ROUNDS (default 3) the rounds (order reversed every other round).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

mod common;

use common::{Ns, Sysctls, batch, load1, sh, wait_quiet_within, wait_rtnl_free};
use dagw::core::mac::Mac;
use dagw::netlink::messages::synced_neigh_install;
use dagw::netlink::socket::RequestSocket;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as R;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoMacVlan, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};

const DEVICE: &str = "gw0";

fn neigh_ip(i: usize) -> Ipv4Addr {
    // 198.18.0.0/15 past the device's own .1
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i as u32 + 2)
}

fn neigh_mac(i: usize) -> Mac {
    let b = (i as u32).to_be_bytes();
    Mac([0x02, 0x00, b[0], b[1], b[2], b[3]])
}

/// A namespace with one bridge and a macvlan `gw0` on it, as a gateway device.
fn neigh_ns(name: &str) -> Ns {
    let ns = Ns::new(name, 1);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "link add {DEVICE} link br1 address 00:00:5e:00:01:01 type macvlan mode private"
    );
    let _ = writeln!(s, "link set {DEVICE} addrgenmode none");
    let _ = writeln!(s, "link set {DEVICE} up");
    let _ = writeln!(s, "addr add 198.18.0.1/15 dev {DEVICE}");
    batch(name, "ip", &s);
    ns
}

/// Run `f` on a thread that lives in namespace `ns` (sockets opened there
/// belong to it).
fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

fn ifindex(sock: &mut RequestSocket, name: &str) -> u32 {
    let mut q = LinkMessage::default();
    q.attributes.push(LinkAttribute::IfName(name.to_string()));
    let r = sock
        .request(R::GetLink(q), 0, &|| "get link".into())
        .unwrap();
    match r.first() {
        Some(R::NewLink(l)) => l.header.index,
        _ => panic!("{name}: no link"),
    }
}

fn count_extern_learn(ns: &str) -> usize {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "-4", "neigh", "show", "dev", DEVICE])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("extern_learn") && l.contains("NOARP"))
        .count()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum NeighWay {
    IpBatch,
    OneAtATime,
    Pipelined,
    Rtnetlink(usize),
}

impl NeighWay {
    fn label(self) -> String {
        match self {
            NeighWay::IpBatch => "(a) ip -batch (floor)".into(),
            NeighWay::OneAtATime => "(b) RequestSocket::request, 1 in flight".into(),
            NeighWay::Pipelined => "(b) RequestSocket::batch, 256 per sendmsg".into(),
            NeighWay::Rtnetlink(k) => format!("(c) rtnetlink Handle::request, {k} in flight"),
        }
    }
}

fn neigh_script(n: usize) -> String {
    let mut s = String::with_capacity(n * 80);
    for i in 0..n {
        let _ = writeln!(
            s,
            "neigh replace {} lladdr {} dev {DEVICE} nud noarp extern_learn",
            neigh_ip(i),
            neigh_mac(i)
        );
    }
    s
}

fn nl(msg: R, flags: u16) -> NetlinkMessage<R> {
    let mut header = NetlinkHeader::default();
    header.flags = flags | NLM_F_REQUEST | NLM_F_ACK;
    let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    m.finalize();
    m
}

/// Send one request through rtnetlink and wait for its answer; the messages
/// before the ack (a GetLink's reply) are returned. netlink-proto does not
/// forward a plain ack: the stream ending without an error is success.
async fn rt_request(mut handle: rtnetlink::Handle, msg: R, flags: u16) -> Result<Vec<R>, String> {
    let mut answers = handle.request(nl(msg, flags)).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(m) = answers.next().await {
        match m.payload {
            NetlinkPayload::Error(e) => match e.code {
                None => return Ok(out),
                Some(code) => return Err(format!("errno {}", -code.get())),
            },
            NetlinkPayload::InnerMessage(inner) => out.push(inner),
            _ => {}
        }
    }
    Ok(out)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Install `n` entries in the fresh namespace `ns` one way; the time of the
/// install alone (messages built inside it; sockets opened outside).
fn install(ns: &str, n: usize, way: NeighWay) -> Duration {
    if way == NeighWay::IpBatch {
        return batch(ns, "ip", &neigh_script(n));
    }
    in_ns(ns, || {
        let mut sock = RequestSocket::open().unwrap();
        let index = ifindex(&mut sock, DEVICE);
        let msgs = |range: std::ops::Range<usize>| {
            range.map(move |i| synced_neigh_install(index, IpAddr::V4(neigh_ip(i)), neigh_mac(i)))
        };
        match way {
            NeighWay::IpBatch => unreachable!(),
            NeighWay::OneAtATime => {
                let t = Instant::now();
                for (m, flags) in msgs(0..n) {
                    sock.request(m, flags, &|| "neigh".into()).unwrap();
                }
                t.elapsed()
            }
            NeighWay::Pipelined => {
                let t = Instant::now();
                let results = sock.batch(msgs(0..n).collect::<Vec<_>>());
                let d = t.elapsed();
                assert!(
                    results.iter().all(|r| r.is_ok()),
                    "a batched install failed"
                );
                d
            }
            NeighWay::Rtnetlink(in_flight) => {
                let rt = runtime();
                let _guard = rt.enter();
                let (conn, handle, _) = rtnetlink::new_connection().unwrap();
                rt.spawn(conn);
                rt.block_on(async {
                    let t = Instant::now();
                    let mut pending = FuturesUnordered::new();
                    let mut todo = msgs(0..n);
                    loop {
                        while pending.len() < in_flight {
                            let Some((m, flags)) = todo.next() else { break };
                            pending.push(rt_request(handle.clone(), m, flags));
                        }
                        match pending.next().await {
                            Some(r) => {
                                r.unwrap();
                            }
                            None => break,
                        }
                    }
                    t.elapsed()
                })
            }
        }
    })
}

// ---- (2) gateway-style jobs ----

fn gw_v4(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (i as u32) * 16 + 1)
}

fn gw_v6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, i as u16, 0, 0, 0, 0, 1)
}

const LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x200, 0x5eff, 0xfe00, 0x101);

fn create_msg(i: usize, parent: u32) -> R {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(format!("gw{i}")));
    m.attributes.push(LinkAttribute::Link(parent));
    m.attributes
        .push(LinkAttribute::Address(vec![0, 0, 0x5e, 0, 1, 1]));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::MacVlan),
        LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
            MacVlanMode::Private,
        )])),
    ]));
    R::NewLink(m)
}

fn get_msg(i: usize) -> R {
    let mut q = LinkMessage::default();
    q.attributes.push(LinkAttribute::IfName(format!("gw{i}")));
    R::GetLink(q)
}

fn mark_msg(index: u32, i: usize) -> R {
    let mut s = LinkMessage::default();
    s.header.index = index;
    s.attributes
        .push(LinkAttribute::IfAlias(format!("dagw:vlanif{i}")));
    s.attributes
        .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
            vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
        )]));
    R::SetLink(s)
}

fn up_msg(index: u32) -> R {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.change_mask = LinkFlags::Up;
    m.header.flags = LinkFlags::Up;
    R::SetLink(m)
}

fn addr_msgs(index: u32, i: usize) -> [R; 3] {
    let v4 = {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = 28;
        m.attributes
            .push(AddressAttribute::Local(IpAddr::V4(gw_v4(i))));
        m.attributes
            .push(AddressAttribute::Address(IpAddr::V4(gw_v4(i))));
        R::NewAddress(m)
    };
    let v6 = |ip: Ipv6Addr| {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.header.family = AddressFamily::Inet6;
        m.header.prefix_len = 64;
        if ip.is_unicast_link_local() {
            m.header.scope = AddressScope::Link;
        }
        m.header.flags = AddressHeaderFlags::Nodad;
        m.attributes.push(AddressAttribute::Address(IpAddr::V6(ip)));
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        R::NewAddress(m)
    };
    [v4, v6(gw_v6(i)), v6(LINK_LOCAL)]
}

fn index_of(answers: &[R]) -> u32 {
    match answers.first() {
        Some(R::NewLink(l)) => l.header.index,
        _ => panic!("no link in the answer"),
    }
}

const NEW: u16 = NLM_F_CREATE | NLM_F_EXCL;

const JOB_WAYS: [JobWay; 4] = [
    JobWay::JobAfterJob,
    JobWay::PhaseAfterPhase,
    JobWay::PhasesPipelined,
    JobWay::Rtnetlink,
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum JobWay {
    /// dagw's executor today: gateway after gateway, one acked request at a time.
    JobAfterJob,
    /// The same requests, one at a time, phase after phase (all creates,
    /// all reads, all marks, all ups, all addresses).
    PhaseAfterPhase,
    /// Phase after phase, each phase pipelined (`RequestSocket::batch`);
    /// the indices from one link dump instead of 1000 reads.
    PhasesPipelined,
    /// `rtnetlink`, every job in flight at once.
    Rtnetlink,
}

impl JobWay {
    fn label(self) -> &'static str {
        match self {
            JobWay::JobAfterJob => "RequestSocket, job after job, 1 in flight",
            JobWay::PhaseAfterPhase => "RequestSocket, phase after phase, 1 in flight",
            JobWay::PhasesPipelined => "RequestSocket::batch per phase (+1 dump)",
            JobWay::Rtnetlink => "rtnetlink, every job in flight",
        }
    }
}

fn jobs(ns: &str, n: usize, way: JobWay) -> Duration {
    if way == JobWay::Rtnetlink {
        return jobs_rtnetlink(ns, n);
    }
    in_ns(ns, || {
        let mut sock = RequestSocket::open().unwrap();
        let parents: Vec<u32> = (1..=n)
            .map(|i| ifindex(&mut sock, &format!("br{i}")))
            .collect();
        let what = || "job".to_string();
        let t = Instant::now();
        match way {
            JobWay::JobAfterJob => {
                for i in 1..=n {
                    sock.request(create_msg(i, parents[i - 1]), NEW, &what)
                        .unwrap();
                    let index = index_of(&sock.request(get_msg(i), 0, &what).unwrap());
                    sock.request(mark_msg(index, i), 0, &what).unwrap();
                    sock.request(up_msg(index), 0, &what).unwrap();
                    for a in addr_msgs(index, i) {
                        sock.request(a, NEW, &what).unwrap();
                    }
                }
            }
            JobWay::PhaseAfterPhase => {
                for i in 1..=n {
                    sock.request(create_msg(i, parents[i - 1]), NEW, &what)
                        .unwrap();
                }
                let index: Vec<u32> = (1..=n)
                    .map(|i| index_of(&sock.request(get_msg(i), 0, &what).unwrap()))
                    .collect();
                for i in 1..=n {
                    sock.request(mark_msg(index[i - 1], i), 0, &what).unwrap();
                }
                for i in 1..=n {
                    sock.request(up_msg(index[i - 1]), 0, &what).unwrap();
                }
                for i in 1..=n {
                    for a in addr_msgs(index[i - 1], i) {
                        sock.request(a, NEW, &what).unwrap();
                    }
                }
            }
            JobWay::PhasesPipelined => {
                let ok = |r: Vec<Result<(), dagw::netlink::NetlinkError>>| {
                    assert!(
                        r.iter().all(|r| r.is_ok()),
                        "a pipelined job request failed"
                    );
                };
                ok(sock.batch(
                    (1..=n)
                        .map(|i| (create_msg(i, parents[i - 1]), NEW))
                        .collect::<Vec<_>>(),
                ));
                let mut by_name = std::collections::HashMap::new();
                for m in sock
                    .dump(R::GetLink(LinkMessage::default()), &what)
                    .unwrap()
                {
                    if let R::NewLink(l) = m {
                        for a in &l.attributes {
                            if let LinkAttribute::IfName(name) = a {
                                by_name.insert(name.clone(), l.header.index);
                            }
                        }
                    }
                }
                let index: Vec<u32> = (1..=n).map(|i| by_name[&format!("gw{i}")]).collect();
                ok(sock.batch(
                    (1..=n)
                        .map(|i| (mark_msg(index[i - 1], i), 0))
                        .collect::<Vec<_>>(),
                ));
                ok(sock.batch(
                    (1..=n)
                        .map(|i| (up_msg(index[i - 1]), 0))
                        .collect::<Vec<_>>(),
                ));
                ok(sock.batch(
                    (1..=n)
                        .flat_map(|i| addr_msgs(index[i - 1], i))
                        .map(|a| (a, NEW))
                        .collect::<Vec<_>>(),
                ));
            }
            JobWay::Rtnetlink => unreachable!(),
        }
        t.elapsed()
    })
}

async fn job(handle: rtnetlink::Handle, i: usize, parent: u32) -> Result<(), String> {
    rt_request(handle.clone(), create_msg(i, parent), NEW).await?;
    let index = index_of(&rt_request(handle.clone(), get_msg(i), 0).await?);
    rt_request(handle.clone(), mark_msg(index, i), 0).await?;
    rt_request(handle.clone(), up_msg(index), 0).await?;
    for a in addr_msgs(index, i) {
        rt_request(handle.clone(), a, NEW).await?;
    }
    Ok(())
}

fn jobs_rtnetlink(ns: &str, n: usize) -> Duration {
    in_ns(ns, || {
        let mut sock = RequestSocket::open().unwrap();
        let parents: Vec<u32> = (1..=n)
            .map(|i| ifindex(&mut sock, &format!("br{i}")))
            .collect();
        let rt = runtime();
        let _guard = rt.enter();
        let (conn, handle, _) = rtnetlink::new_connection().unwrap();
        rt.spawn(conn);
        rt.block_on(async {
            let t = Instant::now();
            let mut all: FuturesUnordered<_> = (1..=n)
                .map(|i| job(handle.clone(), i, parents[i - 1]))
                .collect();
            while let Some(r) = all.next().await {
                r.unwrap();
            }
            t.elapsed()
        })
    })
}

/// Devices up with their three addresses, as a check that both ways did the work.
fn count_jobs_done(ns: &str) -> usize {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "-o", "addr", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(" gw") && l.contains("fe80::200:5eff:fe00:101/64"))
        .count()
}

/// The namespace whose `lo` probes the RTNL lock (common::wait_rtnl_free).
const PROBE_NS: &str = "dagwb-sb-probe";

/// How the machine was when a run started.
#[derive(Clone, Copy)]
struct Quiet {
    rtnl_free: bool,
    cpu_idle: bool,
}

/// Let the kernel finish earlier work (a namespace's teardown holds RTNL for
/// seconds) before a run: wait until RTNL is free (at most 60 s), then for an
/// idle CPU (at most 5 s: others build on this machine); the run is marked
/// when either never came.
fn settle() -> Quiet {
    let rtnl_free = wait_rtnl_free(PROBE_NS, Duration::from_secs(60));
    let cpu_idle = wait_quiet_within(0.05, Duration::from_secs(5));
    Quiet {
        rtnl_free,
        cpu_idle,
    }
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// min and median of a way's runs.
fn min_median(runs: &[Duration]) -> (f64, f64) {
    let mut v: Vec<f64> = runs.iter().map(Duration::as_secs_f64).collect();
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn flag(q: Quiet) -> &'static str {
    match (q.rtnl_free, q.cpu_idle) {
        (true, true) => "",
        (true, false) => " (CPU busy)",
        (false, true) => " (RTNL busy)",
        (false, false) => " (RTNL and CPU busy)",
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("southbound: run with `cargo bench --bench southbound` (needs root)");
        return;
    }
    if !nix::unistd::Uid::effective().is_root() {
        println!("SKIPPED: southbound needs root (network namespaces)");
        return;
    }
    let n = env_usize("DAGW_SB_NEIGHS", 100_000);
    let gateways = env_usize("DAGW_SB_GATEWAYS", 1000);
    let rounds = env_usize("DAGW_SB_ROUNDS", 3).max(1);
    let _gc = Sysctls::raise_gc(2 * n + 1024);
    sh(&["date", "-u"]);
    sh(&["uptime"]);
    let _probe = Ns::new(PROBE_NS, 0);

    // warm-up: the neighbour hash table grows once, outside any measurement
    let warm = neigh_ns("dagwb-sb-warm");
    batch(&warm.0, "ip", &neigh_script(n));
    sh(&["ip", "-n", &warm.0, "link", "del", DEVICE]);
    settle();

    let mut ways = [
        NeighWay::IpBatch,
        NeighWay::OneAtATime,
        NeighWay::Pipelined,
        NeighWay::Rtnetlink(64),
        NeighWay::Rtnetlink(256),
        NeighWay::Rtnetlink(1024),
    ];
    // every namespace is kept until the end: the kernel tears one down in
    // the background, under RTNL, and that would land in a later run
    let mut kept = Vec::new();
    let mut neigh_runs: Vec<(NeighWay, Vec<Duration>)> =
        ways.iter().map(|w| (*w, Vec::new())).collect();
    let mut job_runs: Vec<(JobWay, Vec<Duration>)> =
        JOB_WAYS.iter().map(|w| (*w, Vec::new())).collect();
    for round in 1..=rounds {
        println!("(1) {n} neighbour entries (noarp extern_learn) on one macvlan, round {round}");
        for (k, &way) in ways.iter().enumerate() {
            let ns = neigh_ns(&format!("dagwb-sb{round}-{k}"));
            let quiet = settle();
            let d = install(&ns.0, n, way);
            let load = load1();
            let got = count_extern_learn(&ns.0);
            assert_eq!(
                got,
                n,
                "{}: {got} of {n} entries in the kernel",
                way.label()
            );
            println!(
                "    {:<46} {:>8.3} s  {:>8.0} /s  load {load:.1}{}",
                way.label(),
                d.as_secs_f64(),
                n as f64 / d.as_secs_f64(),
                flag(quiet)
            );
            neigh_runs
                .iter_mut()
                .find(|r| r.0 == way)
                .unwrap()
                .1
                .push(d);
            drop(ns);
        }
        println!(
            "(2) {gateways} gateway-style jobs (create, get, alias + addrgenmode, up, 3 addresses: 7 requests each), round {round}"
        );
        let job_ways: Vec<JobWay> = if round % 2 == 1 {
            JOB_WAYS.to_vec()
        } else {
            JOB_WAYS.iter().rev().copied().collect()
        };
        for (k, way) in job_ways.into_iter().enumerate() {
            let ns = Ns::new(&format!("dagwb-sb-jobs{round}-{k}"), gateways);
            let quiet = settle();
            let d = jobs(&ns.0, gateways, way);
            let load = load1();
            assert_eq!(
                count_jobs_done(&ns.0),
                gateways,
                "{}: jobs incomplete",
                way.label()
            );
            println!(
                "    {:<46} {:>8.3} s  load {load:.1}{}",
                way.label(),
                d.as_secs_f64(),
                flag(quiet)
            );
            job_runs.iter_mut().find(|r| r.0 == way).unwrap().1.push(d);
            kept.push(ns);
        }
        ways.reverse();
    }

    println!(
        "summary over {rounds} round(s): min / median, and the ratio of each to the reference's"
    );
    let (fmin, fmed) = min_median(&neigh_runs[0].1);
    println!("(1) {n} neighbour entries, reference (a) ip -batch");
    for (way, runs) in &neigh_runs {
        let (min, med) = min_median(runs);
        println!(
            "    {:<46} {min:>7.3} / {med:>7.3} s  {:>5.2}x / {:>5.2}x  ({:.0} /s at the median)",
            way.label(),
            min / fmin,
            med / fmed,
            n as f64 / med
        );
    }
    let (bmin, bmed) = min_median(&job_runs[0].1);
    println!("(2) {gateways} gateway-style jobs, reference: job after job, 1 in flight");
    for (way, runs) in &job_runs {
        let (min, med) = min_median(runs);
        println!(
            "    {:<46} {min:>7.3} / {med:>7.3} s  {:>5.2}x / {:>5.2}x",
            way.label(),
            min / bmin,
            med / bmed
        );
    }
    sh(&["uptime"]);
    let _ = std::io::stdout().flush();
    drop(kept);
    drop(warm);
}
