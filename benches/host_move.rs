//! ARP/ND follows the host at scale (issue 9): 1000 hosts, each with an
//! IPv4 (198.18.0.0/15) and an IPv6 (2001:db8:10::/64) address, move at once
//! from switch A to switch B and back, with two real daemons.
//!
//! `cargo bench --bench host_move` (root) prints, per move: the time from the
//! move until every host's two entries are as the rule wants them on both
//! switches (the new switch holds its own entry, the switch the hosts left
//! holds the peer's pinned — `noarp extern_learn` — both with the host's MAC),
//! p50 / p99 / max of that time per address, and how many samples (every
//! 50 ms) saw any address unusable on either switch (target: 0; all
//! converged within 2 s).
//!
//! Topology: the pair of the tests (A, B: `br10` with `peerlink` and member
//! `bond1`; underlay `ul`, A = 203.0.113.1), and a server namespace whose
//! "bond" is a bridge `bondbr` holding the active leg (`eth1` to A or `eth2`
//! to B; the other leg down) and `bondx`, a veth whose other end `bond0`
//! carries the 1000 hosts as macvlans. A move is the bond's failover: the
//! old leg goes down, the new one up, and every host sends one datagram to
//! its gateway (as a bond's gratuitous ARP would), so the new switch's
//! bridge learns each host's MAC on its member port. Each switch also sends
//! to every host address once a second (bounded; stops with the bench).
//!
//! Env: DAGW_HOSTS=1000.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Sysctls, batch, percentile, sh};

const BIN: &str = env!("CARGO_BIN_EXE_dagw");
const NS_A: &str = "dagwb-hm-a";
const NS_B: &str = "dagwb-hm-b";
const NS_S: &str = "dagwb-hm-s";
const TARGET: Duration = Duration::from_secs(2);
const LIMIT: Duration = Duration::from_secs(300);

fn hosts() -> usize {
    std::env::var("DAGW_HOSTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

fn host_mac(i: usize) -> String {
    format!("02:00:00:01:{:02x}:{:02x}", (i >> 8) & 0xff, i & 0xff)
}

fn host_v4(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 1, 0)) + i as u32)
}

fn host_v6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 1, i as u16)
}

struct Lab {
    dir: PathBuf,
    daemons: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
        for ns in [NS_A, NS_B, NS_S] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ip(ns: &str, args: &str) {
    let mut v = vec!["ip", "-n", ns];
    v.extend(args.split_whitespace());
    sh(&v);
}

fn config(dir: &Path, node: &str, local: &str, peer: &str, prio: u32) -> PathBuf {
    let key = dir.join("peer.key");
    if !key.exists() {
        let mut f = std::fs::File::options()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&key)
            .unwrap();
        std::io::Write::write_all(&mut f, b"host-move-bench-key-0123456789\n").unwrap();
    }
    let c = format!(
        "[node]\nname = \"{node}\"\nsocket = \"{d}/{node}.sock\"\nstate_dir = \"{d}/{node}\"\n\n\
         [peer]\nlocal = \"{local}\"\naddress = \"{peer}\"\ninterval = \"200ms\"\n\
         key_file = \"{k}\"\npriority = {prio}\npeer_link = \"peerlink\"\n\n\
         [mlag]\nmembers = [\"bond1\"]\nmember_up_delay = \"2s\"\n\n\
         [[gateway]]\nvlanif = 10\ninterface = \"br10\"\nmac = \"0000-5e00-0101\"\n\
         ipv4 = [\"198.18.0.1/15\"]\nipv6 = [\"2001:db8:10::1/64\"]\nup_delay = \"1s\"\n",
        d = dir.display(),
        k = key.display(),
    );
    let p = dir.join(format!("{node}.toml"));
    std::fs::write(&p, c).unwrap();
    p
}

fn status(dir: &Path, node: &str) -> serde_json::Value {
    let sock = dir.join(format!("{node}.sock"));
    let o = Command::new(BIN)
        .args(["-s", sock.to_str().unwrap(), "status", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null)
}

fn wait(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out: {what}");
}

fn build(n: usize) -> Lab {
    let dir = std::env::temp_dir().join(format!("dagw-bench-hm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for ns in [NS_A, NS_B, NS_S] {
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
        sh(&["ip", "netns", "add", ns]);
        ip(ns, "link set lo up");
    }
    let lab = Lab {
        dir,
        daemons: Vec::new(),
    };
    ip(
        NS_A,
        &format!("link add ul type veth peer name ul netns {NS_B}"),
    );
    ip(
        NS_A,
        &format!("link add peerlink type veth peer name peerlink netns {NS_B}"),
    );
    ip(
        NS_A,
        &format!("link add bond1 type veth peer name eth1 netns {NS_S}"),
    );
    ip(
        NS_B,
        &format!("link add bond1 type veth peer name eth2 netns {NS_S}"),
    );
    for (ns, addr) in [(NS_A, "203.0.113.1"), (NS_B, "203.0.113.2")] {
        batch(
            ns,
            "ip",
            &format!(
                "addr add {addr}/30 dev ul\nlink set ul up\nlink add br10 type bridge\n\
                 link set peerlink master br10\nlink set peerlink up\n\
                 link set bond1 master br10\nlink set bond1 up\nlink set br10 up\n"
            ),
        );
    }
    // the server: bondbr (active leg eth1 + bondx), hosts as macvlans on bond0
    let mut s = String::from(
        "link add bond0 type veth peer name bondx\nlink add bondbr type bridge\n\
         link set bondx master bondbr\nlink set eth1 master bondbr\n\
         link set bondx up\nlink set bond0 up\nlink set eth1 up\nlink set bondbr up\n",
    );
    for i in 0..n {
        let _ = writeln!(
            s,
            "link add h{i} link bond0 address {} type macvlan mode bridge",
            host_mac(i)
        );
        let _ = writeln!(s, "link set h{i} up");
        let _ = writeln!(s, "addr add {}/15 dev h{i}", host_v4(i));
        let _ = writeln!(s, "addr add {}/64 dev h{i} nodad", host_v6(i));
    }
    // one namespace, many hosts: each answers ARP only for its own address
    for k in ["all", "default"] {
        sh(&[
            "ip",
            "netns",
            "exec",
            NS_S,
            "sysctl",
            "-qw",
            &format!("net.ipv4.conf.{k}.arp_ignore=1"),
        ]);
        sh(&[
            "ip",
            "netns",
            "exec",
            NS_S,
            "sysctl",
            "-qw",
            &format!("net.ipv4.conf.{k}.arp_announce=2"),
        ]);
    }
    batch(NS_S, "ip", &s);
    lab
}

fn start(lab: &mut Lab) {
    for (ns, node, local, peer, prio) in [
        (NS_A, "leafa", "203.0.113.1", "203.0.113.2", 110),
        (NS_B, "leafb", "203.0.113.2", "203.0.113.1", 100),
    ] {
        let cfg = config(&lab.dir, node, local, peer, prio);
        let log = std::fs::File::create(lab.dir.join(format!("{node}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, BIN, "run", "-c", cfg.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        lab.daemons.push(child);
    }
    let dir = lab.dir.clone();
    for node in ["leafa", "leafb"] {
        wait(
            "peer up, gateway up, members released",
            Duration::from_secs(60),
            || {
                let s = status(&dir, node);
                s["peer"]["state"] == "up"
                    && s["peer"]["sync"]["bulk_complete"] == true
                    && s["gateways"][0]["state"] == "up"
                    && s["members"][0]["reason"].is_null()
            },
        );
    }
}

/// Datagrams from inside `ns`: `each` is called once per round; stops with
/// `stop` or after [`LIMIT`].
fn sender(
    ns: &'static str,
    every: Duration,
    stop: Arc<AtomicBool>,
    mut each: impl FnMut() + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        enter(ns);
        let end = Instant::now() + LIMIT;
        while !stop.load(Ordering::Relaxed) && Instant::now() < end {
            each();
            std::thread::sleep(every);
        }
    })
}

fn enter(ns: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
}

/// One UDP socket per host, bound to its macvlan (the hosts share a subnet:
/// only the device says which host sends).
fn host_sockets(n: usize) -> Vec<UdpSocket> {
    (0..n)
        .map(|i| {
            let s = UdpSocket::bind(SocketAddr::new(host_v4(i).into(), 0)).unwrap();
            let dev = std::ffi::OsString::from(format!("h{i}"));
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::BindToDevice, &dev)
                .unwrap();
            s
        })
        .collect()
}

/// ip → (MAC, extern_learn, usable) of `gw10` in `ns`.
fn table(ns: &str) -> HashMap<String, (String, bool, bool)> {
    let o = Command::new("ip")
        .args(["-n", ns, "-j", "neigh", "show", "dev", "gw10", "nud", "all"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let ip = n["dst"].as_str()?.to_string();
            let mac = n["lladdr"].as_str().unwrap_or("").to_string();
            let states: Vec<&str> = n["state"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str())
                .collect();
            let usable = !mac.is_empty()
                && !states
                    .iter()
                    .any(|s| matches!(*s, "FAILED" | "INCOMPLETE" | "NONE"));
            Some((ip, (mac, n.get("extern_learn").is_some(), usable)))
        })
        .collect()
}

fn addresses(n: usize) -> Vec<(String, String)> {
    (0..n)
        .flat_map(|i| {
            [
                (host_v4(i).to_string(), host_mac(i)),
                (host_v6(i).to_string(), host_mac(i)),
            ]
        })
        .collect()
}

/// Every address as the rule wants it: `owner` holds its own entry, `other`
/// the pinned copy, both with the host's MAC.
fn converged(
    owner: &HashMap<String, (String, bool, bool)>,
    other: &HashMap<String, (String, bool, bool)>,
    ip: &str,
    mac: &str,
) -> bool {
    owner
        .get(ip)
        .is_some_and(|(m, ext, ok)| m == mac && !ext && *ok)
        && other
            .get(ip)
            .is_some_and(|(m, ext, ok)| m == mac && *ext && *ok)
}

fn usable(t: &HashMap<String, (String, bool, bool)>, ip: &str, mac: &str) -> bool {
    t.get(ip).is_some_and(|(m, _, ok)| m == mac && *ok)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("host_move: run with `cargo bench --bench host_move` (needs root)");
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        println!("host_move: SKIPPED (needs root for network namespaces)");
        return;
    }
    let n = hosts();
    let _gc = Sysctls::raise_gc(16 * n + 4096);
    let mut lab = build(n);
    start(&mut lab);
    let stop = Arc::new(AtomicBool::new(false));
    let addrs = addresses(n);

    // each switch sends to every host address once a second
    let mut senders = Vec::new();
    for ns in [NS_A, NS_B] {
        let dsts: Vec<SocketAddr> = (0..n)
            .flat_map(|i| {
                [
                    SocketAddr::new(host_v4(i).into(), 9),
                    SocketAddr::new(host_v6(i).into(), 9),
                ]
            })
            .collect();
        let mut socks: Option<(UdpSocket, UdpSocket)> = None;
        senders.push(sender(
            ns,
            Duration::from_secs(1),
            stop.clone(),
            move || {
                let (v4, v6) = socks.get_or_insert_with(|| {
                    (
                        UdpSocket::bind("0.0.0.0:0").unwrap(),
                        UdpSocket::bind("[::]:0").unwrap(),
                    )
                });
                for d in &dsts {
                    let s = if d.is_ipv4() { &*v4 } else { &*v6 };
                    let _ = s.send_to(b"dagw host-move bench", d);
                }
            },
        ));
    }
    // the hosts' "gratuitous" datagrams, on demand
    let (kick_tx, kick_rx) = std::sync::mpsc::channel::<()>();
    let gw = SocketAddr::new(Ipv4Addr::new(198, 18, 0, 1).into(), 9);
    let hosts_thread = std::thread::spawn(move || {
        enter(NS_S);
        let socks = host_sockets(n);
        while kick_rx.recv().is_ok() {
            for s in &socks {
                let _ = s.send_to(b"dagw host-move bench: here", gw);
            }
        }
    });
    let _ = kick_tx.send(());

    wait(
        "A owns every host's entries, B holds them pinned",
        Duration::from_secs(120),
        || {
            let (a, b) = (table(NS_A), table(NS_B));
            addrs.iter().all(|(ip, mac)| converged(&a, &b, ip, mac))
        },
    );
    println!(
        "host_move: {n} hosts ({} addresses) behind A, A owns them, B holds them pinned",
        addrs.len()
    );

    let mut all_ok = true;
    for (to, from, owner, other, name) in [
        ("eth2", "eth1", NS_B, NS_A, "A -> B"),
        ("eth1", "eth2", NS_A, NS_B, "B -> A"),
    ] {
        std::thread::sleep(Duration::from_secs(2));
        let t0 = Instant::now();
        batch(
            NS_S,
            "ip",
            &format!(
                "link set {from} nomaster\nlink set {from} down\nlink set {to} master bondbr\nlink set {to} up\n"
            ),
        );
        let _ = kick_tx.send(());
        let mut done: HashMap<&str, Duration> = HashMap::new();
        let mut bad_samples = 0;
        let mut samples = 0;
        while done.len() < addrs.len() && t0.elapsed() < Duration::from_secs(30) {
            let (o, x) = (table(owner), table(other));
            let at = t0.elapsed();
            samples += 1;
            if addrs
                .iter()
                .any(|(ip, mac)| !usable(&o, ip, mac) || !usable(&x, ip, mac))
            {
                bad_samples += 1;
            }
            for (ip, mac) in &addrs {
                if !done.contains_key(ip.as_str()) && converged(&o, &x, ip, mac) {
                    done.insert(ip, at);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut times: Vec<Duration> = done.values().copied().collect();
        times.sort();
        let all = times.last().copied();
        println!(
            "host_move {name}: {}/{} addresses converged; all in {}; per address p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; \
             samples with an unusable entry: {bad_samples} of {samples} (target: all within {} s, none unusable)",
            times.len(),
            addrs.len(),
            all.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64())),
            if times.is_empty() {
                0.0
            } else {
                percentile(&times, 0.5).as_secs_f64() * 1e3
            },
            if times.is_empty() {
                0.0
            } else {
                percentile(&times, 0.99).as_secs_f64() * 1e3
            },
            all.map_or(0.0, |d| d.as_secs_f64() * 1e3),
            TARGET.as_secs(),
        );
        all_ok &=
            times.len() == addrs.len() && all.is_some_and(|d| d <= TARGET) && bad_samples == 0;
    }
    stop.store(true, Ordering::Relaxed);
    drop(kick_tx);
    for s in senders {
        let _ = s.join();
    }
    let _ = hosts_thread.join();
    println!(
        "host_move: {}",
        if all_ok {
            "within target"
        } else {
            "TARGET MISSED"
        }
    );
}
