//! Two-daemon harness of the peer tests: two namespaces ("switches") A and B
//! joined by an underlay veth `ul` (203.0.113.1/30 on A, .2/30 on B) that
//! carries the heartbeat, and a peer-link veth `peerlink` between A and B.
//!
//! In each switch, bridge `br10` is the SVI of VLAN 10 and holds three ports:
//! `peerlink`, the M-LAG member `bond1` (a veth whose other end `srv` stays
//! in the same namespace, up) and an orphan port `orph` (other end `orphq`).
//! The orphan port keeps `br10` carrier-up while the peer-link is down and the
//! members are held (split-brain), as any other VLAN port of a real switch
//! would; without it the SVI would go down and a gateway would come back from
//! `svi-down` with an ordinary `up-delay` instead of a peer-link-recovery hold.
//!
//! Node A is `leafa`, priority 110 (master); B is `leafb`, priority 100.

#![allow(dead_code)]

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{DAGW, Daemon, LineTap, Netns, WAIT, Workdir, wait_for, wait_until};

pub const A_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const B_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
pub const PORT: u16 = 8742;

/// The `[peer]` settings a test varies.
#[derive(Debug, Clone)]
pub struct PeerOpts {
    pub interval: String,
    pub multiplier: u32,
    pub strict: bool,
    /// Name `peerlink` as `peer_link`.
    pub peer_link: bool,
}

impl Default for PeerOpts {
    fn default() -> Self {
        PeerOpts {
            interval: "200ms".into(),
            multiplier: 3,
            strict: false,
            peer_link: true,
        }
    }
}

/// One `[[gateway]]` (a VLANIF on `br<id>`).
#[derive(Debug, Clone)]
pub struct Gw {
    pub id: u32,
    pub mac: String,
    pub ipv4: Vec<String>,
    pub ipv6: Vec<String>,
    pub up_delay: String,
}

impl Gw {
    /// The standard gateway of the peer tests: vlanif 10 on br10.
    pub fn vlanif10() -> Gw {
        Gw {
            id: 10,
            mac: "0000-5e00-0101".into(),
            ipv4: vec!["192.0.2.1/24".into()],
            ipv6: vec!["2001:db8:10::1/64".into()],
            up_delay: "1s".into(),
        }
    }

    pub fn toml(&self) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "[[gateway]]\nvlanif = {id}\ninterface = \"br{id}\"\nmac = \"{mac}\"\nipv4 = [{v4}]\nipv6 = [{v6}]\nup_delay = \"{ud}\"\n\n",
            id = self.id,
            mac = self.mac,
            v4 = list(&self.ipv4),
            v6 = list(&self.ipv6),
            ud = self.up_delay,
        )
    }
}

/// One switch of the pair: its namespace, work directory and identity.
pub struct Side {
    pub ns: Netns,
    pub work: Arc<Workdir>,
    pub node: &'static str,
    pub local: Ipv4Addr,
    pub peer: Ipv4Addr,
    pub priority: u32,
}

impl Side {
    pub fn key_path(&self) -> PathBuf {
        self.work.path().join("peer.key")
    }

    /// Write the peer key (mode 0600, as dagw demands).
    pub fn write_key(&self, secret: &str) {
        let p = self.key_path();
        let _ = std::fs::remove_file(&p);
        let mut f = File::options()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&p)
            .expect("create key file");
        std::io::Write::write_all(&mut f, format!("{secret}\n").as_bytes()).expect("write key");
    }

    /// The whole config file of this side.
    pub fn config(&self, opts: &PeerOpts, gateways: &[Gw]) -> String {
        let w = &self.work;
        let mut s = format!(
            "[node]\nname = \"{node}\"\nplatform = \"generic\"\nsocket = \"{sock}\"\nstate_dir = \"{state}\"\n\n",
            node = self.node,
            sock = w.socket().display(),
            state = w.state_dir().display(),
        );
        s += &format!(
            "[peer]\nlocal = \"{local}\"\naddress = \"{peer}\"\nport = {PORT}\ninterval = \"{iv}\"\nmultiplier = {mul}\nkey_file = \"{key}\"\npriority = {prio}\nstrict = {strict}\n",
            local = self.local,
            peer = self.peer,
            iv = opts.interval,
            mul = opts.multiplier,
            key = self.key_path().display(),
            prio = self.priority,
            strict = opts.strict,
        );
        if opts.peer_link {
            s += "peer_link = \"peerlink\"\n";
        }
        s += "\n[mlag]\nmembers = [\"bond1\"]\nmember_up_delay = \"2s\"\n\n";
        for g in gateways {
            s += &g.toml();
        }
        s
    }

    pub fn write_config(&self, opts: &PeerOpts, gateways: &[Gw]) {
        std::fs::write(self.work.config(), self.config(opts, gateways)).expect("write config");
    }

    /// Start the daemon on the config as written; returns once status answers.
    pub fn start(&self) -> Daemon {
        Daemon::spawn(&self.ns, self.work.clone())
    }

    /// Rewrite the config and `dagw reload`, asserting it was accepted.
    pub fn reload(&self, opts: &PeerOpts, gateways: &[Gw]) {
        self.write_config(opts, gateways);
        let o = self.work.client(&["reload"]);
        assert!(
            o.status.success(),
            "reload on {}: {}{}",
            self.node,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The two switches, wired; namespaces deleted on drop.
pub struct Pair {
    pub a: Side,
    pub b: Side,
}

impl Pair {
    /// Build the topology (see the module doc) and write the same key on both sides.
    pub fn new(test: &str) -> Pair {
        let na = Netns::new(&format!("{test}-a"));
        let nb = Netns::new(&format!("{test}-b"));
        na.ip(&format!(
            "link add ul type veth peer name ul netns {}",
            nb.name
        ));
        na.ip(&format!(
            "link add peerlink type veth peer name peerlink netns {}",
            nb.name
        ));
        for (ns, addr) in [(&na, A_ADDR), (&nb, B_ADDR)] {
            ns.ip(&format!("addr add {addr}/30 dev ul"));
            ns.ip("link set ul up");
            ns.ip("link add br10 type bridge");
            ns.ip("link set peerlink master br10");
            ns.ip("link set peerlink up");
            ns.veth_on("br10", "bond1", "srv");
            ns.veth_on("br10", "orph", "orphq");
            ns.ip("link set br10 up");
        }
        for ns in [&na, &nb] {
            let ok = wait_until(WAIT, || {
                ns.link_flags("br10").iter().any(|f| f == "LOWER_UP")
            });
            assert!(ok, "br10 in {} never got carrier", ns.name);
            let ok = wait_until(WAIT, || ns.link_flags("ul").iter().any(|f| f == "LOWER_UP"));
            assert!(ok, "ul in {} never got carrier", ns.name);
        }
        let pair = Pair {
            a: Side {
                ns: na,
                work: Arc::new(Workdir::new()),
                node: "leafa",
                local: A_ADDR,
                peer: B_ADDR,
                priority: 110,
            },
            b: Side {
                ns: nb,
                work: Arc::new(Workdir::new()),
                node: "leafb",
                local: B_ADDR,
                peer: A_ADDR,
                priority: 100,
            },
        };
        pair.a.write_key("dagw-peer-test-key-0123456789");
        pair.b.write_key("dagw-peer-test-key-0123456789");
        pair
    }

    /// Write both configs (same options and gateways) and start A, then B.
    pub fn start(&self, opts: &PeerOpts, gateways: &[Gw]) -> (Daemon, Daemon) {
        self.a.write_config(opts, gateways);
        self.b.write_config(opts, gateways);
        let da = self.a.start();
        let db = self.b.start();
        (da, db)
    }
}

/// `peer` object of a status document.
pub fn peer_of(d: &Daemon) -> Value {
    d.status()["peer"].clone()
}

/// Wait until the daemon's `peer.state` is `state`.
pub fn wait_peer(d: &Daemon, state: &str) {
    wait_for(&format!("peer state {state}"), || {
        let p = peer_of(d);
        if p["state"] == state {
            Ok(())
        } else {
            Err(p.to_string())
        }
    });
}

/// Wait until member `name` has `state` (and `reason` unless None).
pub fn wait_member(d: &Daemon, name: &str, state: &str, reason: Option<&str>) {
    wait_for(&format!("member {name} {state} {reason:?}"), || {
        let m = d.member(name);
        let r_ok = reason.is_none_or(|r| m["reason"] == r);
        if m["state"] == state && r_ok {
            Ok(())
        } else {
            Err(m.to_string())
        }
    });
}

/// `(gateway, field)` of each entry of `peer.mismatches`, sorted.
pub fn mismatch_fields(peer: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = peer["mismatches"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["gateway"].as_str().unwrap_or("?").to_string(),
                m["field"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Wait until `peer.mismatches` is exactly `want` (as `(gateway, field)` pairs).
pub fn wait_mismatches(d: &Daemon, want: &[(&str, &str)]) -> Value {
    let mut want: Vec<(String, String)> = want
        .iter()
        .map(|(g, f)| (g.to_string(), f.to_string()))
        .collect();
    want.sort();
    let mut got = Value::Null;
    wait_for(&format!("mismatches {want:?}"), || {
        let p = peer_of(d);
        if mismatch_fields(&p) == want {
            got = p;
            Ok(())
        } else {
            Err(p.to_string())
        }
    });
    got
}

/// `dagw monitor --json` on `d`, returned once it is known to be subscribed:
/// a `dagw reload` of the unchanged config is repeated until its
/// `config-reloaded` line shows up on the monitor.
pub fn synced_monitor(d: &Daemon) -> LineTap {
    let tap = LineTap::spawn(
        Command::new(DAGW)
            .arg("-s")
            .arg(d.work.socket())
            .args(["monitor", "--json"]),
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let o = d.client(&["reload"]);
        assert!(o.status.success(), "reload: {o:?}");
        let seen = wait_until(Duration::from_millis(300), || {
            tap.lines()
                .iter()
                .any(|l| l.contains("\"config-reloaded\""))
        });
        if seen {
            return tap;
        }
        assert!(Instant::now() < deadline, "monitor never subscribed");
    }
}

/// Monitor objects with this `id`.
pub fn alerts(tap: &LineTap, id: &str) -> Vec<Value> {
    tap.json_lines()
        .into_iter()
        .filter(|v| v["id"] == id)
        .collect()
}

/// Run `f` on a new thread that has entered the network namespace `ns`.
pub fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in_netns(ns, f)
        .join()
        .expect("namespace thread panicked")
}

/// Start `f` on a new thread that has entered the network namespace `ns`.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &Netns,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns(2) on a valid namespace fd; it changes only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// An AF_PACKET tap on the IPv4 datagrams of the calling thread's namespace
/// (the receiving sockets get them too); `recv` gives up after 200 ms.
pub fn ipv4_tap() -> std::os::fd::OwnedFd {
    let proto = (libc::ETH_P_IP as u16).to_be() as i32;
    // SAFETY: plain socket(2); the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, proto) };
    assert!(fd >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a fresh socket we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 200_000,
    };
    // SAFETY: setsockopt with a timeval of the right size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    fd
}

/// One packet of an [`ipv4_tap`] into `buf`: its length, or None on timeout.
pub fn tap_recv(tap: &std::os::fd::OwnedFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: recv into our buffer of the given length.
    let n = unsafe { libc::recv(tap.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    usize::try_from(n).ok().filter(|&n| n > 0)
}

/// The UDP payload of IPv4 packet `p` if it comes from `src` to port `dport`.
pub fn udp_payload(p: &[u8], src: Ipv4Addr, dport: u16) -> Option<&[u8]> {
    if p.len() < 28 || p[0] >> 4 != 4 || p[9] != 17 {
        return None;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    if p[12..16] != src.octets() || p.len() < ihl + 8 {
        return None;
    }
    let udp = &p[ihl..];
    let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
    let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if dst_port != dport || len < 8 || udp.len() < len {
        return None;
    }
    Some(&udp[8..len])
}

/// Capture the UDP payloads of the first `count` IPv4 datagrams that arrive in
/// `ns` from `src` to port `dport` (an AF_PACKET tap: the receiving socket gets
/// them too). Panics when they do not arrive within [`WAIT`].
pub fn capture_udp(ns: &Netns, src: Ipv4Addr, dport: u16, count: usize) -> Vec<Vec<u8>> {
    in_netns(ns, move || {
        let tap = ipv4_tap();
        let deadline = Instant::now() + WAIT;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while out.len() < count {
            assert!(
                Instant::now() < deadline,
                "captured {} of {count} datagrams from {src}",
                out.len()
            );
            let Some(n) = tap_recv(&tap, &mut buf) else {
                continue;
            };
            if let Some(payload) = udp_payload(&buf[..n], src, dport) {
                out.push(payload.to_vec());
            }
        }
        out
    })
}

/// Send one datagram from inside `ns`, from `src` (any port) to `dst`.
pub fn send_udp(ns: &Netns, src: Ipv4Addr, dst: SocketAddrV4, payload: Vec<u8>) -> SocketAddr {
    in_netns(ns, move || {
        let s = UdpSocket::bind(SocketAddrV4::new(src, 0)).expect("bind sender");
        s.send_to(&payload, dst).expect("send");
        s.local_addr().expect("local addr")
    })
}

// ---------------------------------------------------------------------------
// ARP/ND sync channel and dynamic up-delay (tests/sync.rs)
// ---------------------------------------------------------------------------

impl Side {
    /// This side's config in dynamic up-delay mode: `[up_delay] mode =
    /// "dynamic"` with `min` / `max`, and `member_up_delay` (which must exceed
    /// `max`) instead of the usual 2 s.
    pub fn config_dynamic(
        &self,
        opts: &PeerOpts,
        gateways: &[Gw],
        min: &str,
        max: &str,
        member_up_delay: &str,
    ) -> String {
        let base = self.config(opts, gateways).replace(
            "member_up_delay = \"2s\"",
            &format!("member_up_delay = \"{member_up_delay}\""),
        );
        base + &format!("[up_delay]\nmode = \"dynamic\"\nmin = \"{min}\"\nmax = \"{max}\"\n")
    }

    pub fn write_config_dynamic(
        &self,
        opts: &PeerOpts,
        gateways: &[Gw],
        min: &str,
        max: &str,
        member_up_delay: &str,
    ) {
        let c = self.config_dynamic(opts, gateways, min, max, member_up_delay);
        std::fs::write(self.work.config(), c).expect("write config");
    }
}

/// One usable neighbour entry as `ip -j neigh` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighRow {
    pub mac: String,
    pub extern_learn: bool,
    pub state: Vec<String>,
}

/// The usable neighbour entries of `dev` in any NUD state (`nud all`: NOARP
/// and PERMANENT included) that have a link-layer address and are not
/// FAILED / INCOMPLETE / NONE, by IP as `ip` prints it. Empty if `dev` is absent.
pub fn neigh_rows(ns: &Netns, dev: &str) -> std::collections::BTreeMap<String, NeighRow> {
    let mut m = std::collections::BTreeMap::new();
    let Ok(out) = ns.try_ip(&format!("-j neigh show dev {dev} nud all")) else {
        return m;
    };
    if out.trim().is_empty() {
        return m;
    }
    let v: Value = serde_json::from_str(&out).expect("ip -j neigh json");
    for n in v.as_array().into_iter().flatten() {
        let (Some(ip), Some(mac)) = (n["dst"].as_str(), n["lladdr"].as_str()) else {
            continue;
        };
        let state: Vec<String> = n["state"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        if state
            .iter()
            .any(|s| s == "FAILED" || s == "INCOMPLETE" || s == "NONE")
        {
            continue;
        }
        m.insert(
            ip.to_string(),
            NeighRow {
                mac: mac.to_string(),
                extern_learn: n.get("extern_learn").is_some(),
                state,
            },
        );
    }
    m
}

/// `ip -n NS -batch -` with these lines (e.g. `neigh replace ...`), asserting success.
pub fn ip_batch(ns: &Netns, lines: &[String]) {
    use std::io::Write;
    if lines.is_empty() {
        return;
    }
    let mut child = Command::new("ip")
        .args(["-n", &ns.name, "-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ip -batch");
    let mut stdin = child.stdin.take().expect("stdin");
    let text = lines.join("\n") + "\n";
    stdin.write_all(text.as_bytes()).expect("write ip -batch");
    drop(stdin);
    let o = child.wait_with_output().expect("ip -batch");
    assert!(
        o.status.success(),
        "ip -n {} -batch: {}",
        ns.name,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The `peer.sync` object of a status document.
pub fn sync_of(d: &Daemon) -> Value {
    d.status()["peer"]["sync"].clone()
}

/// Wait until the sync session is established and the peer's bulk is in.
pub fn wait_sync_established(d: &Daemon) {
    wait_for("sync established with bulk complete", || {
        let s = sync_of(d);
        if s["state"] == "established" && s["bulk_complete"] == true {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });
}

/// Milliseconds since the epoch of a `dagw monitor --json` line's `ts`
/// (RFC 3339 UTC with milliseconds, `YYYY-MM-DDTHH:MM:SS.mmmZ`).
pub fn ts_ms(v: &Value) -> i64 {
    let ts = v["ts"].as_str().unwrap_or_else(|| panic!("no ts in {v}"));
    let num = |r: std::ops::Range<usize>| -> i64 {
        ts.get(r.clone())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad ts {ts} at {r:?}"))
    };
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm, ss, ms) = (num(11..13), num(14..16), num(17..19), num(20..23));
    // days from civil (Howard Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    ((days * 86400 + hh * 3600 + mm * 60 + ss) * 1000) + ms
}
