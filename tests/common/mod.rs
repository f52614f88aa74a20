//! Harness of the black-box integration tests: the real `dagw` binary run in a
//! private network namespace per test, driven through its CLI and control socket
//! and checked against the kernel with `ip` / `bridge`.
//!
//! Rules the tests keep: every test calls [`require_root`] first; namespaces
//! are named `dagwt-<test>-<pid>` and deleted on drop; synchronisation is by
//! polling with [`wait_until`] against a give-up deadline, never a fixed sleep.
//! Only documentation addresses are used.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const DAGW: &str = env!("CARGO_BIN_EXE_dagw");

/// Give-up limit for waits; not a timing threshold.
pub const WAIT: Duration = Duration::from_secs(15);

/// True when running as root; else prints the skip line and returns false.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        true
    } else {
        println!("SKIPPED: {test} needs root");
        false
    }
}

/// Poll `f` every 20 ms until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`wait_until`] but panics with `what` (and the last observation) on timeout.
pub fn wait_for(what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let mut last = String::new();
    let ok = wait_until(WAIT, || match f() {
        Ok(()) => true,
        Err(e) => {
            last = e;
            false
        }
    });
    assert!(ok, "timed out waiting for {what}; last: {last}");
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A network namespace of one test, with `lo` up; deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(test: &str) -> Netns {
        let name = format!("dagwt-{test}-{}", std::process::id());
        // A leftover of a crashed run with the same pid: remove it.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let o = run(Command::new("ip").args(["netns", "add", &name]));
        assert!(
            o.status.success(),
            "ip netns add {name}: {}",
            text(&o.stderr)
        );
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    /// `ip -n NS ARGS` (split on whitespace); Ok(stdout) or Err(stderr).
    pub fn try_ip(&self, args: &str) -> Result<String, String> {
        let o = run(Command::new("ip")
            .args(["-n", &self.name])
            .args(args.split_whitespace()));
        if o.status.success() {
            Ok(text(&o.stdout))
        } else {
            Err(text(&o.stderr))
        }
    }

    /// `ip -n NS ARGS`, asserting success.
    pub fn ip(&self, args: &str) -> String {
        self.try_ip(args)
            .unwrap_or_else(|e| panic!("ip -n {} {args}: {e}", self.name))
    }

    /// `bridge -n NS ARGS`, asserting success.
    pub fn bridge(&self, args: &str) -> String {
        let o = run(Command::new("bridge")
            .args(["-n", &self.name])
            .args(args.split_whitespace()));
        assert!(
            o.status.success(),
            "bridge -n {} {args}: {}",
            self.name,
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// A command run inside the namespace (`ip netns exec NS ...`).
    pub fn exec(&self, argv: &[&str]) -> Output {
        run(Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv))
    }

    /// A sysctl value inside the namespace, e.g. `net.ipv4.conf.gw10.arp_ignore`.
    pub fn sysctl(&self, key: &str) -> String {
        let o = self.exec(&["sysctl", "-n", key]);
        assert!(o.status.success(), "sysctl {key}: {}", text(&o.stderr));
        text(&o.stdout).trim().to_string()
    }

    /// Does a link of this name exist?
    pub fn has_link(&self, dev: &str) -> bool {
        self.try_ip(&format!("link show dev {dev}")).is_ok()
    }

    /// `ip -d -j link show dev DEV` as JSON (the one object), or None if absent.
    pub fn link_json(&self, dev: &str) -> Option<Value> {
        let out = self.try_ip(&format!("-d -j link show dev {dev}")).ok()?;
        let v: Value = serde_json::from_str(&out).expect("ip -j link json");
        v.as_array().and_then(|a| a.first().cloned())
    }

    /// The `flags` of a link (UP, LOWER_UP, ...).
    pub fn link_flags(&self, dev: &str) -> Vec<String> {
        let l = self
            .link_json(dev)
            .unwrap_or_else(|| panic!("no link {dev}"));
        l["flags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn admin_up(&self, dev: &str) -> bool {
        self.link_flags(dev).iter().any(|f| f == "UP")
    }

    pub fn ifindex(&self, dev: &str) -> u64 {
        self.link_json(dev)
            .unwrap_or_else(|| panic!("no link {dev}"))["ifindex"]
            .as_u64()
            .expect("ifindex")
    }

    /// Is protodown set on the device? (`ip -d link` prints `protodown on`.)
    pub fn protodown(&self, dev: &str) -> bool {
        self.ip(&format!("-d link show dev {dev}"))
            .contains("protodown on")
    }

    /// Addresses of a device: (`local/prefixlen`, flags as printed by `ip -j addr`).
    pub fn addrs(&self, dev: &str) -> Vec<(String, Value)> {
        let Ok(out) = self.try_ip(&format!("-j addr show dev {dev}")) else {
            return Vec::new();
        };
        let v: Value = serde_json::from_str(&out).expect("ip -j addr json");
        let mut r = Vec::new();
        for l in v.as_array().into_iter().flatten() {
            for a in l["addr_info"].as_array().into_iter().flatten() {
                let cidr = format!(
                    "{}/{}",
                    a["local"].as_str().unwrap_or(""),
                    a["prefixlen"].as_u64().unwrap_or(0)
                );
                r.push((cidr, a.clone()));
            }
        }
        r
    }

    /// Just the `addr/len` strings of a device.
    pub fn addr_list(&self, dev: &str) -> Vec<String> {
        self.addrs(dev).into_iter().map(|(c, _)| c).collect()
    }

    /// `bridge fdb show` lines (trimmed).
    pub fn fdb(&self) -> Vec<String> {
        self.bridge("fdb show")
            .lines()
            .map(|l| l.trim().to_string())
            .collect()
    }

    /// A bridge `br` that is oper-up: it gets one veth port `<br>p` (peer `<br>q`),
    /// all admin up. Returns once the bridge is LOWER_UP.
    pub fn bridge_up(&self, br: &str) {
        self.ip(&format!("link add {br} type bridge"));
        self.veth_on(br, &format!("{br}p"), &format!("{br}q"));
        self.ip(&format!("link set {br} up"));
        // Carrier comes from the kernel's linkwatch, which waits for RTNL:
        // another test's namespace being torn down (1000 gateways) holds it
        // for many seconds on a 2-core machine: a lab condition, not dagw's.
        let ok = wait_until(4 * WAIT, || {
            self.link_flags(br).iter().any(|f| f == "LOWER_UP")
        });
        assert!(ok, "bridge {br} never got carrier");
    }

    /// A veth pair `a`<->`b` (both up), `a` enslaved to bridge `br`.
    pub fn veth_on(&self, br: &str, a: &str, b: &str) {
        self.ip(&format!("link add {a} type veth peer name {b}"));
        self.ip(&format!("link set {a} master {br}"));
        self.ip(&format!("link set {a} up"));
        self.ip(&format!("link set {b} up"));
    }

    /// A VXLAN BD: vxlan device `vx` (VNI `vni`, local 203.0.113.1) in bridge `br`, up.
    pub fn vxlan_bd(&self, br: &str, vx: &str, vni: u32) {
        self.ip(&format!("link add {br} type bridge"));
        self.ip(&format!(
            "link add {vx} type vxlan id {vni} dstport 4789 local 203.0.113.1 nolearning"
        ));
        self.ip(&format!("link set {vx} master {br}"));
        self.ip(&format!("link set {vx} up"));
        self.ip(&format!("link set {br} up"));
        // Carrier comes from the kernel's linkwatch, which waits for RTNL:
        // another test's namespace being torn down (1000 gateways) holds it
        // for many seconds on a 2-core machine: a lab condition, not dagw's.
        let ok = wait_until(4 * WAIT, || {
            self.link_flags(br).iter().any(|f| f == "LOWER_UP")
        });
        assert!(ok, "bridge {br} never got carrier");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A scratch directory shared by a daemon and its successors (restart tests):
/// config file, socket, state_dir and stderr logs live here.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn config(&self) -> PathBuf {
        self.path().join("dagw.toml")
    }
    pub fn socket(&self) -> PathBuf {
        self.path().join("dagw.sock")
    }
    pub fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }
    pub fn log(&self) -> PathBuf {
        self.path().join("dagw.log")
    }

    /// The `[node]` section this harness puts in front of every test body.
    pub fn node_section(&self) -> String {
        format!(
            "[node]\nname = \"t\"\nplatform = \"generic\"\nsocket = \"{}\"\nstate_dir = \"{}\"\n\n",
            self.socket().display(),
            self.state_dir().display()
        )
    }

    /// Write the config: `[node]` section + `body`.
    pub fn write_config(&self, body: &str) {
        std::fs::write(self.config(), self.node_section() + body).expect("write config");
    }

    /// `dagw -s SOCK ARGS` from the init namespace (the socket is a file).
    pub fn client(&self, args: &[&str]) -> Output {
        run(Command::new(DAGW).arg("-s").arg(self.socket()).args(args))
    }

    pub fn try_status(&self) -> Result<Value, String> {
        let o = self.client(&["status", "--json"]);
        if !o.status.success() {
            return Err(format!("exit {:?}: {}", o.status.code(), text(&o.stderr)));
        }
        serde_json::from_slice(&o.stdout).map_err(|e| format!("{e}: {}", text(&o.stdout)))
    }
}

/// A running `dagw run` inside a namespace; SIGKILLed on drop.
pub struct Daemon {
    pub child: Child,
    pub work: Arc<Workdir>,
    killed: bool,
}

impl Daemon {
    /// Write `body` (after a harness `[node]` section) and start a daemon in a fresh
    /// work directory; returns once the control socket answers `status`.
    pub fn start(ns: &Netns, body: &str) -> Daemon {
        let work = Arc::new(Workdir::new());
        work.write_config(body);
        Daemon::spawn(ns, work)
    }

    /// Start a daemon on an existing work directory (its config as written).
    pub fn spawn(ns: &Netns, work: Arc<Workdir>) -> Daemon {
        let d = Daemon::spawn_nowait(ns, work);
        d.wait_ready();
        d
    }

    pub fn spawn_nowait(ns: &Netns, work: Arc<Workdir>) -> Daemon {
        Daemon::spawn_wrapped_nowait(ns, work, &[])
    }

    /// Start a daemon on an existing work directory, its command line
    /// prefixed with `wrapper` (e.g. `setpriv ...` to run it under the
    /// unit's restrictions); returns once `status` answers.
    pub fn spawn_wrapped(ns: &Netns, work: Arc<Workdir>, wrapper: &[&str]) -> Daemon {
        let d = Daemon::spawn_wrapped_nowait(ns, work, wrapper);
        d.wait_ready();
        d
    }

    fn spawn_wrapped_nowait(ns: &Netns, work: Arc<Workdir>, wrapper: &[&str]) -> Daemon {
        let log = File::options()
            .create(true)
            .append(true)
            .open(work.log())
            .expect("log file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name])
            .args(wrapper)
            .args([DAGW, "run", "-c"])
            .arg(work.config());
        // a test simulates a reboot with a boot id of its own
        let boot_id = work.path().join("boot_id");
        if boot_id.exists() {
            cmd.env("DAGW_BOOT_ID_FILE", boot_id);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn dagw");
        Daemon {
            child,
            work,
            killed: false,
        }
    }

    /// Wait until `status` answers (panics with the log if the daemon died).
    pub fn wait_ready(&self) {
        let mut last = String::new();
        let ok = wait_until(WAIT, || match self.work.try_status() {
            Ok(_) => true,
            Err(e) => {
                last = e;
                false
            }
        });
        assert!(
            ok,
            "dagw never answered status: {last}\nlog:\n{}",
            self.log()
        );
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.work.log()).unwrap_or_default()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Send `sig` (libc::SIGHUP, ...) to the daemon.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    /// SIGKILL and reap; the work directory stays (shared through `work`).
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.killed = true;
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let ok = wait_until(WAIT, || !matches!(self.child.try_wait(), Ok(None)));
        assert!(ok, "dagw did not exit on SIGTERM");
        self.killed = true;
    }

    /// `status --json`, asserting it answers.
    pub fn status(&self) -> Value {
        self.work
            .try_status()
            .unwrap_or_else(|e| panic!("status: {e}\nlog:\n{}", self.log()))
    }

    /// The status entry of gateway `name`.
    pub fn gateway(&self, name: &str) -> Value {
        gateway_of(&self.status(), name)
    }

    pub fn member(&self, name: &str) -> Value {
        let s = self.status();
        s["members"]
            .as_array()
            .and_then(|a| a.iter().find(|m| m["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no member {name} in {s}"))
    }

    /// Wait until gateway `name` has `state` (and `reason` unless None).
    pub fn wait_gateway(&self, name: &str, state: &str, reason: Option<&str>) {
        wait_for(&format!("gateway {name} {state} {reason:?}"), || {
            // absent (a reload not applied yet) is "not yet", like any other state
            let s = self.status();
            let Some(g) = s["gateways"]
                .as_array()
                .and_then(|a| a.iter().find(|g| g["name"] == name))
            else {
                return Err(format!("no gateway {name} yet"));
            };
            let r_ok = reason.is_none_or(|r| g["reason"] == r);
            if g["state"] == state && r_ok {
                Ok(())
            } else {
                Err(g.to_string())
            }
        });
    }

    pub fn corrections(&self, name: &str) -> u64 {
        self.gateway(name)["corrections"]
            .as_u64()
            .expect("corrections is a number")
    }

    pub fn client(&self, args: &[&str]) -> Output {
        self.work.client(args)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.killed {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn gateway_of(status: &Value, name: &str) -> Value {
    status["gateways"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no gateway {name} in {status}"))
}

/// A child process whose stdout lines are collected by a thread; killed on drop.
/// Used for `dagw monitor --json`, `ip monitor` and `bridge monitor`.
pub struct LineTap {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// Lines before this index are the subscription probe's, not the test's.
    start: usize,
}

impl LineTap {
    pub fn spawn(cmd: &mut Command) -> LineTap {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let out = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                sink.lock().unwrap().push(l);
            }
        });
        LineTap {
            child,
            lines,
            start: 0,
        }
    }

    /// `dagw -s SOCK monitor --json`, returned once it is subscribed: the probe is
    /// a reload of the unchanged config file (a no-op apply), repeated until its
    /// `config-reloaded` line arrives. Only lines after the probe's count.
    pub fn dagw_monitor(work: &Workdir) -> LineTap {
        let mut tap = LineTap::spawn(
            Command::new(DAGW)
                .arg("-s")
                .arg(work.socket())
                .args(["monitor", "--json"]),
        );
        let deadline = Instant::now() + WAIT;
        loop {
            let o = work.client(&["reload"]);
            assert!(
                o.status.success(),
                "probe reload failed: {}",
                text(&o.stderr)
            );
            let mut found = None;
            wait_until(Duration::from_millis(300), || {
                let l = tap.lines.lock().unwrap();
                found = l.iter().position(|x| x.contains("config-reloaded"));
                found.is_some()
            });
            if let Some(i) = found {
                // Later probe replies may still come; take the last one seen.
                let l = tap.lines.lock().unwrap();
                tap.start = l
                    .iter()
                    .rposition(|x| x.contains("config-reloaded"))
                    .map_or(i + 1, |j| j + 1);
                break;
            }
            assert!(Instant::now() < deadline, "dagw monitor never subscribed");
        }
        tap
    }

    /// `ip -n NS monitor link address neigh` (neigh includes bridge FDB entries).
    pub fn ip_monitor(ns: &Netns) -> LineTap {
        LineTap::spawn(
            Command::new("ip").args(["-n", &ns.name, "monitor", "link", "address", "neigh"]),
        )
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Index of the first line (from `from` on) matching `pred`, waiting for it.
    pub fn wait_line(&self, from: usize, what: &str, pred: impl Fn(&str) -> bool) -> usize {
        let mut found = None;
        let ok = wait_until(WAIT, || {
            let l = self.lines.lock().unwrap();
            found = l.iter().skip(from).position(|x| pred(x)).map(|i| i + from);
            found.is_some()
        });
        assert!(ok, "no line for {what}; lines: {:#?}", self.lines());
        found.unwrap()
    }

    /// All lines parsed as JSON objects (of `dagw monitor --json`).
    pub fn json_lines(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .skip(self.start)
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("monitor line not JSON: {e}: {l}"))
            })
            .collect()
    }

    /// Wait for a `dagw monitor --json` object matching `pred`; returns it.
    pub fn wait_json(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let i = self.wait_line(self.start, what, |l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| pred(&v))
        });
        serde_json::from_str(&self.lines()[i]).unwrap()
    }

    /// For `ip monitor`: add marker address 203.0.113.(200+n)/32 to `lo` and wait
    /// for its line; returns that line's index. Everything the kernel notified
    /// before the marker is in `lines()[..index]`. The monitor may not be
    /// subscribed yet when it is spawned, so the marker is re-added until seen.
    pub fn mark(&self, ns: &Netns, n: u8) -> usize {
        let addr = format!("203.0.113.{}/32", 200 + u32::from(n));
        let deadline = Instant::now() + WAIT;
        loop {
            ns.ip(&format!("addr add {addr} dev lo"));
            let mut found = None;
            wait_until(Duration::from_millis(300), || {
                let l = self.lines.lock().unwrap();
                found = l
                    .iter()
                    .position(|x| x.contains(&addr) && !x.starts_with("Deleted"));
                found.is_some()
            });
            if let Some(i) = found {
                return i;
            }
            assert!(Instant::now() < deadline, "monitor never showed {addr}");
            ns.ip(&format!("addr del {addr} dev lo"));
        }
    }
}

impl Drop for LineTap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub mod pair;
pub mod storm;

/// After a test that made thousands of devices: wait until the kernel has
/// torn its namespaces down (it does so in the background, holding RTNL for
/// many seconds on a 2-core machine), so the tests after it do not wait for
/// carrier or for their own changes behind it. The probe is a no-op link
/// change in a scratch namespace, answered quickly once RTNL is free.
/// Bounded; a lab courtesy, it asserts nothing.
pub fn wait_kernel_settled() {
    let probe = Netns::new("settle");
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut quick = 0;
    while Instant::now() < deadline && quick < 10 {
        let t = Instant::now();
        let _ = probe.try_ip("link set lo up");
        if t.elapsed() < Duration::from_millis(20) {
            quick += 1;
        } else {
            quick = 0;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
