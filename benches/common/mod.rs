//! Helpers the namespace benchmarks share: commands, a namespace of bridges
//! (deleted on drop), /proc readings of a daemon, and waiting for a quiet
//! machine so the kernel's background clean-up of earlier runs is not measured.
#![allow(dead_code)] // each bench uses its own subset

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("spawn");
    assert!(st.success(), "{args:?} failed");
}

/// `TOOL -n NS -batch` of `script` (tool: `ip` or `bridge`), timed.
pub fn batch(ns: &str, tool: &str, script: &str) -> Duration {
    let path = std::env::temp_dir().join(format!("dagw-bench-{ns}-{tool}.batch"));
    std::fs::write(&path, script).unwrap();
    let t = Instant::now();
    sh(&[tool, "-n", ns, "-batch", path.to_str().unwrap()]);
    let d = t.elapsed();
    let _ = std::fs::remove_file(path);
    d
}

/// A namespace with lo and bridges br1..=bridges up, deleted on drop.
pub struct Ns(pub String);

impl Ns {
    pub fn new(name: &str, bridges: usize) -> Ns {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        sh(&["ip", "netns", "add", name]);
        let ns = Ns(name.to_string());
        let mut s = String::from("link set lo up\n");
        for i in 1..=bridges {
            let _ = writeln!(s, "link add br{i} type bridge");
            let _ = writeln!(s, "link set br{i} up");
        }
        batch(name, "ip", &s);
        ns
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A `/proc/PID/status` field in kB (VmRSS, VmHWM, ...).
pub fn proc_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
}

/// Wait (at most 120 s) until less than `busy_max` of the machine's CPU time
/// was busy over a second; false if the machine never went quiet.
pub fn wait_quiet(busy_max: f64) -> bool {
    wait_quiet_within(busy_max, Duration::from_secs(120))
}

/// [`wait_quiet`] for at most `max_wait`: on a machine others build on, the
/// quiet may never come, and the figure is then marked instead.
pub fn wait_quiet_within(busy_max: f64, max_wait: Duration) -> bool {
    let sample = || {
        let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let f: Vec<u64> = s
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
        (f.iter().sum::<u64>(), idle)
    };
    let deadline = Instant::now() + max_wait;
    let mut a = sample();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let b = sample();
        let total = (b.0 - a.0).max(1) as f64;
        let busy = 1.0 - (b.1 - a.1) as f64 / total;
        a = b;
        if busy < busy_max {
            return true;
        }
    }
    false
}

/// The 1-minute load average, for the record beside a figure.
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Sysctls changed for the run, restored on drop (also on panic).
pub struct Sysctls(Vec<(PathBuf, String)>);
impl Sysctls {
    pub fn raise_gc(limit: usize) -> Sysctls {
        let mut saved = Vec::new();
        for fam in ["ipv4", "ipv6"] {
            // thresh3 first: the kernel wants 1 <= 2 <= 3 only loosely, but
            // raising from the top keeps every intermediate state sane
            for t in ["gc_thresh3", "gc_thresh2", "gc_thresh1"] {
                let p = PathBuf::from(format!("/proc/sys/net/{fam}/neigh/default/{t}"));
                let old = std::fs::read_to_string(&p).unwrap().trim().to_string();
                std::fs::write(&p, format!("{limit}\n")).unwrap();
                saved.push((p, old));
            }
        }
        Sysctls(saved)
    }
}
impl Drop for Sysctls {
    fn drop(&mut self) {
        for (p, v) in self.0.iter().rev() {
            let _ = std::fs::write(p, format!("{v}\n"));
        }
    }
}

/// Wait (at most `max_wait`) until the RTNL lock is free: a no-op link change
/// (lo up, in the namespace `probe_ns`) answered within 1 ms twenty times in
/// a row, 50 ms apart. The kernel tears a deleted namespace down under RTNL in
/// the background, for seconds with thousands of devices; a measurement
/// started meanwhile waits for it on every request. CPU idleness cannot tell
/// on a machine others use. False if it never went free.
pub fn wait_rtnl_free(probe_ns: &str, max_wait: Duration) -> bool {
    use netlink_packet_route::RouteNetlinkMessage as R;
    use netlink_packet_route::link::{LinkFlags, LinkMessage};
    std::thread::scope(|s| {
        s.spawn(|| {
            let f = std::fs::File::open(format!("/run/netns/{probe_ns}")).unwrap();
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let mut sock = dagw::netlink::socket::RequestSocket::open().unwrap();
            let deadline = Instant::now() + max_wait;
            let mut fast = 0;
            while Instant::now() < deadline {
                let mut m = LinkMessage::default();
                m.header.index = 1; // lo
                m.header.change_mask = LinkFlags::Up;
                m.header.flags = LinkFlags::Up;
                let t = Instant::now();
                let _ = sock.request(R::SetLink(m), 0, &|| "probe".into());
                if t.elapsed() < Duration::from_millis(1) {
                    fast += 1;
                    if fast >= 20 {
                        return true;
                    }
                } else {
                    fast = 0;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        })
        .join()
        .unwrap()
    })
}
