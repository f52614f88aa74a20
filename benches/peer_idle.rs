//! Issue 4: CPU and wake-ups of an idle daemon pair heartbeating every 100 ms.
//!
//! `cargo bench --bench peer_idle` (root): two namespaces joined by a veth
//! underlay (203.0.113.1/30, .2/30), one gateway each, `[peer] interval =
//! "100ms"`; once both see the peer up, CPU time (utime + stime from
//! /proc/PID/stat) and voluntary context switches of each daemon are sampled
//! over 30 s and printed per daemon as CPU % and wake-ups per second.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dagw");
const SECONDS: u64 = 30;

fn ip(args: &[&str]) {
    assert!(
        Command::new("ip")
            .args(args)
            .status()
            .expect("ip")
            .success(),
        "ip {args:?}"
    );
}

struct Lab {
    dir: tempfile::TempDir,
    daemons: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.daemons {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in ["dagwi-a", "dagwi-b"] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn stat(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<u64> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let cpu = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    let mut wakeups = 0;
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            let st = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            wakeups += st
                .lines()
                .filter_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    (cpu, wakeups)
}

fn peer_up(sock: &std::path::Path) -> bool {
    Command::new(BIN)
        .args(["-s", sock.to_str().unwrap(), "status", "--json"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .is_some_and(|v| v["peer"]["state"] == "up")
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("peer_idle: run with `cargo bench --bench peer_idle` (needs root)");
        return;
    }
    if !nix::unistd::Uid::effective().is_root() {
        println!("SKIPPED: peer_idle needs root (network namespaces)");
        return;
    }
    let mut lab = Lab {
        dir: tempfile::tempdir().unwrap(),
        daemons: Vec::new(),
    };
    for ns in ["dagwi-a", "dagwi-b"] {
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", ns]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", ns, "link", "add", "br10", "type", "bridge"]);
        ip(&["-n", ns, "link", "set", "br10", "up"]);
    }
    ip(&[
        "-n", "dagwi-a", "link", "add", "ul", "type", "veth", "peer", "name", "ul", "netns",
        "dagwi-b",
    ]);
    let key = lab.dir.path().join("peer.key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut socks = Vec::new();
    for (ns, me, other, prio) in [("dagwi-a", 1, 2, 110), ("dagwi-b", 2, 1, 100)] {
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("203.0.113.{me}/30"),
            "dev",
            "ul",
        ]);
        ip(&["-n", ns, "link", "set", "ul", "up"]);
        let d = lab.dir.path().join(ns);
        std::fs::create_dir_all(&d).unwrap();
        let cfg = d.join("dagw.toml");
        std::fs::write(
            &cfg,
            format!(
                "[node]\nname = \"{ns}\"\nsocket = \"{0}/s.sock\"\nstate_dir = \"{0}/state\"\n\
                 [peer]\nlocal = \"203.0.113.{me}\"\naddress = \"203.0.113.{other}\"\ninterval = \"100ms\"\n\
                 multiplier = 3\nkey_file = \"{1}\"\npriority = {prio}\n\
                 [mlag]\nmembers = []\n\
                 [[gateway]]\nvlanif = 10\ninterface = \"br10\"\nmac = \"0000-5e00-0101\"\nipv4 = [\"192.0.2.1/24\"]\n",
                d.display(),
                key.display()
            ),
        )
        .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, BIN, "run", "-c", cfg.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        lab.daemons.push(child);
        socks.push(d.join("s.sock"));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socks.iter().all(|s| peer_up(s)) {
        assert!(Instant::now() < deadline, "the peers never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let pids: Vec<u32> = lab.daemons.iter().map(|c| c.id()).collect();
    let before: Vec<(u64, u64)> = pids.iter().map(|p| stat(*p)).collect();
    std::thread::sleep(Duration::from_secs(SECONDS));
    println!("idle daemon pair, heartbeat every 100 ms, over {SECONDS} s:");
    for (i, p) in pids.iter().enumerate() {
        let (c1, w1) = stat(*p);
        let cpu = (c1 - before[i].0) as f64 / tick / SECONDS as f64 * 100.0;
        let wake = (w1 - before[i].1) as f64 / SECONDS as f64;
        println!(
            "  daemon {}: CPU {cpu:.2} %  wake-ups {wake:.1}/s (10/s expected for the heartbeat)",
            ["a", "b"][i]
        );
    }
}
