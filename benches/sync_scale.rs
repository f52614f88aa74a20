//! ARP/ND sync benchmarks of issue 5, against the real kernel in network
//! namespaces, with two real daemons.
//!
//! `cargo bench --bench sync_scale` (root) prints, per size N:
//! (1) bulk sync, end to end: N locally learned entries (half ARP, half ND)
//!     are in A's kernel (put there by `ip -batch`, no `extern_learn`) while
//!     A's daemon runs; then B's daemon starts, and the time is taken from B's
//!     start and from B's READY until B's kernel holds all N entries as
//!     `extern_learn` on the right gateway devices (B's netlink events,
//!     checked by a full dump at the end); beside it the floor, `ip -batch`
//!     installing the same N entries with `extern_learn` in a fresh namespace
//!     C with the same gateway devices, and the ratio;
//! (2) B's daemon RSS (VmHWM, VmRSS) during and after the bulk;
//! (3) latency of an increment: 1000 entries added one by one on A (netlink),
//!     from the request to B's kernel event of the `extern_learn` install.
//!
//! Topology: namespaces A and B joined by an underlay veth `ul`; B is
//! 203.0.113.1 (the lower address: it connects, so its start is not delayed
//! by A's reconnect backoff) and A 203.0.113.2 — set DAGW_SYNC_B_ROLE=server
//! to swap them. Per gateway K a port-less bridge `brK` (up; such a bridge has
//! carrier) and dagw's macvlan `gwK` on it. Neighbour addresses: 198.18.0.0/15
//! and 2001:db8::/32, inside namespaces only. The neighbour gc thresholds
//! (global, init namespace) are raised for the run and restored after it.
//!
//! Env: DAGW_SYNC_SIZES=10000,100000 (entries), DAGW_SYNC_GATEWAYS=256 (up
//! to 4094; on the 2-core lab machine 4094 gateways take over a minute per
//! side to set up — bridges, then the daemon's start — and the kernel's
//! teardown of such namespaces runs long after they are deleted, so the
//! default is 256).

mod common;

use common::{Ns, Sysctls, batch, cpu_ticks, percentile, proc_kb, sh, wait_quiet};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dagw::core::kernel::KernelEvent;
use dagw::netlink::socket::{RequestSocket, split};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE, NetlinkPayload};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as R;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};

const BIN: &str = env!("CARGO_BIN_EXE_dagw");
const PORT: u16 = 8742;
const LOW: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const HIGH: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const LATENCY_ENTRIES: usize = 1000;
const TARGET_RATIO: f64 = 1.5;
const TARGET_RSS_MB: f64 = 16.0;

/// 198.18.0.0/15 shared by g gateways: each gets the largest power-of-two
/// block that fits (a /23 each for 256, a /27 each for 4094), so that the
/// peer's entries are inside their gateway's prefix (dagw admits no other).
fn v4_block(g: usize) -> u32 {
    let per = 131_072 / g.max(1) as u32;
    1 << (31 - per.leading_zeros())
}

fn v4_len(g: usize) -> u32 {
    32 - v4_block(g).trailing_zeros()
}

/// Gateway i's own address: .1 of its block.
fn v4_gateway(i: usize, g: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (i as u32 - 1) * v4_block(g) + 1)
}

/// Entry k of a table over g gateways: (gateway 1..=g, ip, mac). Even k are
/// IPv4 (inside the gateway's block of 198.18.0.0/15), odd k IPv6 (inside
/// the gateway's 2001:db8:K::/64).
fn entry(k: usize, g: usize) -> (usize, IpAddr, [u8; 6]) {
    let gw = k % g + 1;
    let ip = if k.is_multiple_of(2) {
        // hosts .2 .. block-2 of the gateway's block
        let hosts = v4_block(g) - 3;
        let m = (k / g) as u32 % hosts;
        IpAddr::V4(Ipv4Addr::from(u32::from(v4_gateway(gw, g)) + 1 + m))
    } else {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            gw as u16,
            0,
            0,
            1,
            (k >> 16) as u16,
            k as u16,
        ))
    };
    let b = (k as u32 + 1).to_be_bytes();
    (gw, ip, [0x02, 0x42, b[0], b[1], b[2], b[3]])
}

fn mac_str(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn neigh_script(n: usize, g: usize, ext: bool) -> String {
    let mut s = String::with_capacity(n * 80);
    for k in 0..n {
        let (gw, ip, mac) = entry(k, g);
        let _ = writeln!(
            s,
            "neigh replace {ip} lladdr {} dev gw{gw} nud reachable{}",
            mac_str(&mac),
            if ext { " extern_learn" } else { "" }
        );
    }
    s
}

/// The gateway devices as dagw makes them (gateway_scale's floor order).
fn gateway_script(g: usize) -> String {
    let mut ip = String::new();
    for i in 1..=g {
        let _ = writeln!(
            ip,
            "link add gw{i} link br{i} address 00:00:5e:00:01:01 type macvlan mode private"
        );
        let _ = writeln!(ip, "link set gw{i} addrgenmode none");
        let _ = writeln!(ip, "link set gw{i} up");
        let _ = writeln!(ip, "addr add {}/{} dev gw{i}", v4_gateway(i, g), v4_len(g));
        let _ = writeln!(ip, "addr add 2001:db8:{i:x}::1/64 dev gw{i} nodad");
        let _ = writeln!(ip, "addr add fe80::200:5eff:fe00:101/64 dev gw{i} nodad");
    }
    ip
}

fn config(dir: &Path, node: &str, local: Ipv4Addr, peer: Ipv4Addr, g: usize) -> PathBuf {
    let key = dir.join("peer.key");
    let mut f = std::fs::File::options()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&key)
        .unwrap();
    f.write_all(b"sync-bench-key-0123456789abcdef\n").unwrap();
    let mut c = format!(
        "[node]\nname = \"{node}\"\nsocket = \"{0}/s.sock\"\nstate_dir = \"{0}/state\"\n\
         [peer]\nlocal = \"{local}\"\naddress = \"{peer}\"\nport = {PORT}\ninterval = \"1s\"\nkey_file = \"{1}\"\n\
         [up_delay]\nmode = \"static\"\n\
         [mlag]\nmembers = []\nmember_up_delay = \"240s\"\n",
        dir.display(),
        key.display()
    );
    for i in 1..=g {
        let _ = write!(
            c,
            "[[gateway]]\nvlanif = {i}\ninterface = \"br{i}\"\nmac = \"0000-5e00-0101\"\nipv4 = [\"{}/{}\"]\nipv6 = [\"2001:db8:{i:x}::1/64\"]\nup_delay = \"0s\"\n",
            v4_gateway(i, g),
            v4_len(g)
        );
    }
    let p = dir.join("dagw.toml");
    std::fs::write(&p, c).unwrap();
    p
}

type Log = Arc<Mutex<VecDeque<(Instant, String)>>>;

struct Agent {
    child: Child,
    dir: tempfile::TempDir,
    started: Instant,
    ready_at: Instant,
    log: Log,
}
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    /// Start dagw in `ns` and wait for READY on our own NOTIFY_SOCKET.
    fn start(ns: &str, node: &str, local: Ipv4Addr, peer: Ipv4Addr, g: usize) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), node, local, peer, g);
        let notify = dir.path().join("notify.sock");
        let rx = UnixDatagram::bind(&notify).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
        let started = Instant::now();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, BIN, "run", "-c", cfg.to_str().unwrap()])
            .env("NOTIFY_SOCKET", &notify)
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // the daemon's log lines, timestamped as they arrive (the last 2000)
        let log: Log = Arc::default();
        let err = child.stderr.take().unwrap();
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut q = l2.lock().unwrap();
                if q.len() >= 2000 {
                    q.pop_front();
                }
                q.push_back((Instant::now(), line));
            }
        });
        let mut agent = Agent {
            child,
            dir,
            started,
            ready_at: started,
            log,
        };
        let mut buf = [0u8; 512];
        loop {
            let k = match rx.recv(&mut buf) {
                Ok(k) => k,
                Err(e) => {
                    agent.dump_log(20);
                    panic!("{node}: dagw never said READY: {e}");
                }
            };
            if buf[..k].windows(7).any(|w| w == b"READY=1") {
                break;
            }
        }
        agent.ready_at = Instant::now();
        agent
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn status(&self) -> serde_json::Value {
        let sock = self.dir.path().join("s.sock");
        let o = Command::new(BIN)
            .args(["-s", sock.to_str().unwrap(), "status", "--json"])
            .output()
            .unwrap();
        serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// The first log line containing `what`, with its arrival time.
    fn log_line(&self, what: &str) -> Option<(Instant, String)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .find(|(_, l)| l.contains(what))
            .cloned()
    }

    fn dump_log(&self, last: usize) {
        let q = self.log.lock().unwrap();
        for (t, l) in q.iter().skip(q.len().saturating_sub(last)) {
            println!(
                "    [{:>8.3} s] {l}",
                t.saturating_duration_since(self.started).as_secs_f64()
            );
        }
    }
}

/// Wait (bounded) until the daemons' CPU time is flat for 1 s.
fn wait_idle(pids: &[u32], max: Duration) {
    let deadline = Instant::now() + max;
    let sum = || pids.iter().map(|p| cpu_ticks(*p)).sum::<u64>();
    let mut last = sum();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let now = sum();
        if now == last {
            return;
        }
        last = now;
    }
}

fn enter(ns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
}

/// One neighbour event of B's kernel.
enum Ev {
    Neigh {
        ifindex: u32,
        ip: IpAddr,
        ext: bool,
        present: bool,
        at: Instant,
    },
    Overrun,
}

/// A thread in a namespace subscribed to RTNLGRP_NEIGH; stopped on drop.
struct Listener {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    rx: Option<Receiver<Ev>>,
}

impl Listener {
    fn start(ns: &str) -> Listener {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        let (ready_tx, ready_rx) = sync_channel(1);
        let ns = ns.to_string();
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            enter(&ns);
            let mut sock = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE).unwrap();
            sock.bind_auto().unwrap();
            let _ = nix::sys::socket::setsockopt(
                &sock,
                nix::sys::socket::sockopt::RcvBufForce,
                &(256 * 1024 * 1024),
            );
            nix::sys::socket::setsockopt(
                &sock,
                nix::sys::socket::sockopt::ReceiveTimeout,
                &nix::sys::time::TimeVal::new(0, 200_000),
            )
            .unwrap();
            sock.add_membership(dagw::netlink::RTNLGRP_NEIGH).unwrap();
            let _ = ready_tx.send(());
            let mut buf = Vec::with_capacity(256 * 1024);
            while !stop2.load(Ordering::Relaxed) {
                buf.clear();
                match sock.recv(&mut buf, 0) {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        let _ = tx.send(Ev::Overrun);
                        continue;
                    }
                    Err(_) => continue,
                }
                let at = Instant::now();
                for msg in split(&buf).into_iter().flatten() {
                    let NetlinkPayload::InnerMessage(inner) = &msg.payload else {
                        continue;
                    };
                    let ev = match dagw::netlink::decode::decode(inner) {
                        Some(KernelEvent::NeighUsable(k, info)) => Ev::Neigh {
                            ifindex: k.ifindex,
                            ip: k.ip,
                            ext: info.synced,
                            present: true,
                            at,
                        },
                        Some(KernelEvent::NeighGone(k)) => Ev::Neigh {
                            ifindex: k.ifindex,
                            ip: k.ip,
                            ext: false,
                            present: false,
                            at,
                        },
                        _ => continue,
                    };
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("listener never subscribed");
        Listener {
            stop,
            handle: Some(handle),
            rx: Some(rx),
        }
    }
}
impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// In `ns`: gateway device name → ifindex.
fn links(ns: &str) -> HashMap<String, u32> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns);
        let mut req = RequestSocket::open().unwrap();
        let mut out = HashMap::new();
        req.dump_each(
            R::GetLink(Default::default()),
            &|| "links".into(),
            &mut |m| {
                if let Some(KernelEvent::Link(l)) = dagw::netlink::decode::decode(&m) {
                    out.insert(l.name.to_string(), l.index);
                }
            },
        )
        .unwrap();
        out
    })
    .join()
    .unwrap()
}

/// In `ns`: (extern_learn entries matching the expected table exactly,
/// extern_learn entries in all, neighbour entries in all).
fn count_synced(ns: &str, n: usize, g: usize) -> (usize, usize, usize) {
    let names = links(ns);
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns);
        let mut expect: HashMap<(u32, IpAddr), [u8; 6]> = HashMap::with_capacity(n);
        for k in 0..n {
            let (gw, ip, mac) = entry(k, g);
            if let Some(i) = names.get(&format!("gw{gw}")) {
                expect.insert((*i, ip), mac);
            }
        }
        let mut req = RequestSocket::open().unwrap();
        let (mut right, mut ext, mut all) = (0, 0, 0);
        req.dump_each(
            R::GetNeighbour(NeighbourMessage::default()),
            &|| "neighbours".into(),
            &mut |m| match dagw::netlink::decode::decode(&m) {
                Some(KernelEvent::NeighUsable(k, info)) => {
                    all += 1;
                    if info.synced {
                        ext += 1;
                        if expect.get(&(k.ifindex, k.ip)) == Some(&info.mac.0) {
                            right += 1;
                        }
                    }
                }
                Some(KernelEvent::NeighGone(_)) => all += 1,
                _ => {}
            },
        )
        .unwrap();
        (right, ext, all)
    })
    .join()
    .unwrap()
}

struct BulkResult {
    /// B's kernel held all N (per its events), measured from B's start.
    done_at: Option<Instant>,
    /// (seconds since B's READY, extern_learn entries seen) once a second
    progress: Vec<(f64, usize)>,
    hwm_kb: u64,
    overrun: bool,
}

/// Follow B's kernel events until N distinct extern_learn entries exist.
fn follow_bulk(rx: &Receiver<Ev>, b: &Agent, ns: &str, n: usize, g: usize) -> BulkResult {
    let deadline = Instant::now() + Duration::from_secs(120 + (n / 1000) as u64);
    let mut seen: HashSet<(u32, IpAddr)> = HashSet::with_capacity(n);
    let mut progress = Vec::new();
    let mut next_sample = Instant::now();
    let mut hwm_kb = 0;
    let mut overrun = false;
    let mut done_at = None;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Ev::Neigh {
                ifindex,
                ip,
                ext,
                present,
                at,
            }) => {
                if present && ext {
                    seen.insert((ifindex, ip));
                    if seen.len() >= n && !overrun {
                        done_at = Some(at);
                        break;
                    }
                } else {
                    seen.remove(&(ifindex, ip));
                }
            }
            Ok(Ev::Overrun) => {
                overrun = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(1);
            hwm_kb = hwm_kb.max(proc_kb(b.pid(), "VmHWM:"));
            let count = if overrun {
                // events were lost: count from a dump instead
                let (right, _, _) = count_synced(ns, n, g);
                if right >= n {
                    done_at = Some(Instant::now());
                    break;
                }
                right
            } else {
                seen.len()
            };
            progress.push((
                Instant::now()
                    .saturating_duration_since(b.ready_at)
                    .as_secs_f64(),
                count,
            ));
        }
    }
    hwm_kb = hwm_kb.max(proc_kb(b.pid(), "VmHWM:"));
    BulkResult {
        done_at,
        progress,
        hwm_kb,
        overrun,
    }
}

/// (3): entries N.. added one by one on A; time to B's extern_learn event.
fn latency(a_ns: &str, rx: Receiver<Ev>, n: usize, g: usize) -> (Vec<Duration>, usize) {
    let index = links(a_ns);
    let a_ns = a_ns.to_string();
    std::thread::spawn(move || {
        enter(&a_ns);
        let mut req = RequestSocket::open().unwrap();
        while rx.try_recv().is_ok() {}
        let mut out = Vec::with_capacity(LATENCY_ENTRIES);
        let mut missed = 0;
        for k in n..n + LATENCY_ENTRIES {
            let (gw, ip, mac) = entry(k, g);
            let mut m = NeighbourMessage::default();
            m.header.ifindex = index[&format!("gw{gw}")];
            m.header.state = NeighbourState::Reachable;
            let dst = match ip {
                IpAddr::V4(v) => {
                    m.header.family = AddressFamily::Inet;
                    NeighbourAddress::Inet(v)
                }
                IpAddr::V6(v) => {
                    m.header.family = AddressFamily::Inet6;
                    NeighbourAddress::Inet6(v)
                }
            };
            m.attributes.push(NeighbourAttribute::Destination(dst));
            m.attributes
                .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
            let t = Instant::now();
            req.request(R::NewNeighbour(m), NLM_F_CREATE | NLM_F_REPLACE, &|| {
                "add".into()
            })
            .unwrap();
            let deadline = t + Duration::from_secs(2);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(Ev::Neigh {
                        ip: got,
                        ext: true,
                        present: true,
                        at,
                        ..
                    }) if got == ip => {
                        out.push(at - t);
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        missed += 1;
                        break;
                    }
                }
            }
        }
        (out, missed)
    })
    .join()
    .unwrap()
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn run_size(n: usize, g: usize, b_client: bool) {
    let (b_addr, a_addr) = if b_client { (LOW, HIGH) } else { (HIGH, LOW) };
    println!("--- N = {n} entries (ARP + ND, 1:1) over {g} gateways ---");
    wait_quiet(0.10);

    // Floor first, in a namespace of its own, deleted before the daemons run.
    let (gw_setup, floor) = {
        let c = Ns::new("dagws-c", g);
        let gw_setup = batch(&c.0, "ip", &gateway_script(g));
        let floor = batch(&c.0, "ip", &neigh_script(n, g, true));
        let (right, _, _) = count_synced(&c.0, n, g);
        assert_eq!(right, n, "floor: C holds {right} of {n} entries");
        (gw_setup, floor)
    };
    wait_quiet(0.10);

    let t_setup = Instant::now();
    let a = Ns::new("dagws-a", g);
    let b = Ns::new("dagws-b", g);
    sh(&[
        "ip", "-n", &a.0, "link", "add", "ul", "type", "veth", "peer", "name", "ul", "netns", &b.0,
    ]);
    for (ns, addr) in [(&a, a_addr), (&b, b_addr)] {
        sh(&[
            "ip",
            "-n",
            &ns.0,
            "addr",
            "add",
            &format!("{addr}/30"),
            "dev",
            "ul",
        ]);
        sh(&["ip", "-n", &ns.0, "link", "set", "ul", "up"]);
    }
    let bridges = t_setup.elapsed();
    let da = Agent::start(&a.0, "synca", a_addr, b_addr, g);
    let a_ready = da.ready_at - da.started;
    let fill = batch(&a.0, "ip", &neigh_script(n, g, false));
    wait_idle(&[da.pid()], Duration::from_secs(60));
    let a_local: u64 = da.status()["gateways"]
        .as_array()
        .map(|gws| {
            gws.iter()
                .map(|g| {
                    g["arp"]["local"].as_u64().unwrap_or(0) + g["nd"]["local"].as_u64().unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0);
    println!(
        "setup: bridges {:.1} s/side, A's daemon READY {:.1} s, A filled by ip -batch in {:.2} s, A's status counts {a_local} local entries",
        bridges.as_secs_f64() / 2.0,
        a_ready.as_secs_f64(),
        fill.as_secs_f64()
    );
    println!(
        "floor: C's gateway devices by ip -batch {:.1} s",
        gw_setup.as_secs_f64()
    );

    let mut listener = Listener::start(&b.0);
    let rx = listener.rx.take().unwrap();
    let db = Agent::start(&b.0, "syncb", b_addr, a_addr, g);
    let b_ready = db.ready_at - db.started;
    let rss_ready_kb = proc_kb(db.pid(), "VmRSS:");
    let r = follow_bulk(&rx, &db, &b.0, n, g);
    let rss_kb = proc_kb(db.pid(), "VmRSS:");
    // BulkEnd follows the last Entries frame: its log line may come later
    let mut bulk_line = None;
    let until = Instant::now() + Duration::from_secs(10);
    while bulk_line.is_none() && Instant::now() < until {
        bulk_line = db.log_line("bulk sync from the peer complete");
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = db.status();
    let sync = &st["peer"]["sync"];
    let (right, ext, all) = count_synced(&b.0, n, g);

    println!(
        "B's daemon READY {:.2} s after its start ({g} gateways); sync session: {sync}",
        b_ready.as_secs_f64()
    );
    match &bulk_line {
        Some((t, _)) => println!(
            "B logged \"bulk sync from the peer complete\" {:.3} s after READY",
            t.saturating_duration_since(db.ready_at).as_secs_f64()
        ),
        None => println!("B logged no \"bulk sync from the peer complete\" within 10 s"),
    }
    println!(
        "B's kernel (dump): {right} of {n} extern_learn entries on the right device with the right MAC ({ext} extern_learn, {all} neighbours in all){}",
        if r.overrun {
            "; the bench's event socket overran, counted by dumps"
        } else {
            ""
        }
    );
    match r.done_at {
        Some(done) if right >= n => {
            let from_ready = done.saturating_duration_since(db.ready_at);
            let from_start = done.saturating_duration_since(db.started);
            let ratio = from_ready.as_secs_f64() / floor.as_secs_f64();
            println!(
                "(1) bulk sync {n}: READY -> all in B's kernel {:.3} s ({:.0} entries/s); start -> all {:.3} s",
                from_ready.as_secs_f64(),
                n as f64 / from_ready.as_secs_f64(),
                from_start.as_secs_f64()
            );
            println!(
                "    floor ip -batch {n} x neigh replace extern_learn {:.3} s ({:.0} entries/s); ratio {ratio:.2}x (target <= {TARGET_RATIO}x) {}",
                floor.as_secs_f64(),
                n as f64 / floor.as_secs_f64(),
                if ratio <= TARGET_RATIO {
                    "OK"
                } else {
                    "MISSED"
                }
            );
        }
        _ => {
            println!(
                "(1) bulk sync {n}: NOT COMPLETE — B never held all {n} entries; floor {:.3} s",
                floor.as_secs_f64()
            );
            println!("    extern_learn entries over time (s after READY, count):");
            for (t, c) in &r.progress {
                println!("      {t:>7.1} {c}");
            }
            println!("    B's last log lines:");
            db.dump_log(30);
            println!("    A's last log lines:");
            da.dump_log(15);
        }
    }
    println!(
        "(2) B's RSS: VmHWM {:.1} MB, VmRSS {:.1} MB after the bulk (target < {TARGET_RSS_MB} MB; VmRSS at READY, before any entry: {:.1} MB); A's VmHWM {:.1} MB",
        r.hwm_kb as f64 / 1024.0,
        rss_kb as f64 / 1024.0,
        rss_ready_kb as f64 / 1024.0,
        proc_kb(da.pid(), "VmHWM:") as f64 / 1024.0
    );
    // what B keeps once the burst is over (its freed memory handed back)
    wait_idle(&[db.pid()], Duration::from_secs(20));
    println!(
        "    B's VmRSS once idle after the bulk: {:.1} MB",
        proc_kb(db.pid(), "VmRSS:") as f64 / 1024.0
    );

    if right >= n {
        wait_idle(&[da.pid(), db.pid()], Duration::from_secs(20));
        let (mut lat, missed) = latency(&a.0, rx, n, g);
        lat.sort();
        if lat.is_empty() {
            println!("(3) increment latency: no entry arrived on B ({missed} missed)");
        } else {
            println!(
                "(3) increment latency A -> B over {} entries (with {n} synced): p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms{}",
                lat.len(),
                percentile(&lat, 0.5).as_secs_f64() * 1e3,
                percentile(&lat, 0.99).as_secs_f64() * 1e3,
                lat.last().unwrap().as_secs_f64() * 1e3,
                if missed > 0 {
                    format!("; {missed} not seen on B within 2 s")
                } else {
                    String::new()
                }
            );
        }
    }
    let _ = std::io::stdout().flush();
    drop(listener);
    drop(db);
    drop(da);
    drop(b);
    drop(a);
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("sync_scale: run with `cargo bench --bench sync_scale` (needs root)");
        return;
    }
    if !nix::unistd::Uid::effective().is_root() {
        println!("SKIPPED: sync_scale needs root (network namespaces)");
        return;
    }
    let sizes = env_list("DAGW_SYNC_SIZES", &[10_000, 100_000]);
    let g = env_list("DAGW_SYNC_GATEWAYS", &[256])
        .first()
        .copied()
        .unwrap_or(256)
        .clamp(1, 4094);
    let b_client = std::env::var("DAGW_SYNC_B_ROLE").as_deref() != Ok("server");
    let max = sizes.iter().copied().max().unwrap_or(0);
    assert!(max <= 200_000, "sizes up to 200000 (address plan)");
    // A's ordinary entries count against gc_thresh3; thresh1 above the total
    // keeps the periodic gc away from them during the run
    let _gc = Sysctls::raise_gc(4 * max + 16384);
    println!(
        "ARP/ND sync: B ({}) is the {} of the sync channel; dagw {}",
        if b_client { LOW } else { HIGH },
        if b_client {
            "client (connects at start)"
        } else {
            "server (A reconnects with backoff)"
        },
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    for &n in &sizes {
        run_size(n, g, b_client);
    }
}
