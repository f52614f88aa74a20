//! Issue 10's storm, shared by `tests/storm.rs` (the contract) and
//! `benches/pair_storm.rs` (the figures): a pair at 100 ms × 3; switch A
//! reloads a config that adds 1500 VLANIF gateways, each on an SVI bridge of
//! its own made beforehand, and while that reload runs 200 of those SVIs flap
//! (down, then up, a few rounds). From before the reload until A has
//! converged, `dagw status --json` is polled on both switches (each call held
//! to the 1 s contract) and both daemons' notices are watched for a
//! lost peer or a role change — in the log, which is complete, and on
//! `dagw monitor`, which may lag and say so.
//!
//! Addresses: 198.18.0.0/15 (benchmarking range) and 2001:db8:1::/48, inside
//! the namespaces only.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dagw::telemetry::ids;
use serde_json::Value;

use super::pair::*;
use super::{DAGW, Daemon, LineTap, Netns, WAIT, Workdir, wait_for, wait_until};

pub const INTERVAL: &str = "100ms";
pub const MULTIPLIER: u32 = 3;
/// Gateways A's reload adds (to its one gateway, vlanif10).
pub const ADDED: usize = 1500;
/// VLAN id of the first added gateway; the others follow.
pub const FIRST_ID: u32 = 2001;
/// Added SVIs that flap while the reload runs, and how many times.
pub const FLAPPING: usize = 200;
pub const FLAP_ROUNDS: usize = 3;
/// The contract: `dagw status` answers within this, throughout.
pub const STATUS_LIMIT: Duration = Duration::from_secs(1);
/// A status call that takes longer is killed (it is far past the contract).
const STATUS_GIVE_UP: Duration = Duration::from_secs(30);
/// Give-up limit for A to converge after the reload starts (not a threshold).
pub const CONVERGE_WAIT: Duration = Duration::from_secs(120);

pub fn peer_opts() -> PeerOpts {
    PeerOpts {
        interval: INTERVAL.into(),
        multiplier: MULTIPLIER,
        ..PeerOpts::default()
    }
}

fn added_ids() -> std::ops::Range<u32> {
    FIRST_ID..FIRST_ID + ADDED as u32
}

/// Added gateway `id`: vlanif `id` on SVI `br<id>`, one /28 of 198.18.0.0/15
/// and one /64 of 2001:db8:1::/48, the default 1 s up-delay.
pub fn added_gateway(id: u32) -> Gw {
    let k = id - FIRST_ID;
    let v4 = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + k * 16 + 1);
    Gw {
        id,
        mac: "0000-5e00-0101".into(),
        ipv4: vec![format!("{v4}/28")],
        ipv6: vec![format!("2001:db8:1:{k:x}::1/64")],
        up_delay: "1s".into(),
    }
}

/// Every gateway of A after the reload: vlanif10 and the added ones.
pub fn reloaded_gateways() -> Vec<Gw> {
    std::iter::once(Gw::vlanif10())
        .chain(added_ids().map(added_gateway))
        .collect()
}

/// The SVIs that flap: every 7th added one (200 of 1500, spread out).
pub fn flapping_ids() -> Vec<u32> {
    added_ids().step_by(7).take(FLAPPING).collect()
}

/// The added SVIs in A: bridges `br<id>`, up; returns once every one is
/// LOWER_UP. A kernel that leaves a bridge without ports carrier-down (older
/// ones do; 6.18 does not) gets a veth port `sp<id>` (peer `sq<id>`) in it.
fn make_svis(ns: &Netns) {
    let mut lines = Vec::with_capacity(ADDED * 3);
    for id in added_ids() {
        lines.push(format!("link add br{id} type bridge"));
        lines.push(format!("link set br{id} addrgenmode none"));
        lines.push(format!("link set br{id} up"));
    }
    ip_batch(ns, &lines);
    let mut dark = Vec::new();
    wait_until(Duration::from_secs(2), || {
        dark = svis_without_carrier(ns);
        dark.is_empty()
    });
    let ports: Vec<String> = dark
        .iter()
        .flat_map(|id| {
            [
                format!("link add sp{id} type veth peer name sq{id}"),
                format!("link set sp{id} master br{id} up"),
                format!("link set sq{id} up"),
            ]
        })
        .collect();
    ip_batch(ns, &ports);
    wait_for("every added SVI carrier-up", || {
        let dark = svis_without_carrier(ns);
        match dark.first() {
            None => Ok(()),
            Some(id) => Err(format!("{} not LOWER_UP, e.g. br{id}", dark.len())),
        }
    });
}

/// The ids of the added SVIs that are not LOWER_UP.
fn svis_without_carrier(ns: &Netns) -> Vec<u32> {
    let up = links_lower_up(ns);
    added_ids()
        .filter(|id| !up.contains(&format!("br{id}")))
        .collect()
}

/// Names of the links of `ns` that are LOWER_UP.
fn links_lower_up(ns: &Netns) -> BTreeSet<String> {
    let v: Value = serde_json::from_str(&ns.ip("-j link show")).expect("ip -j link json");
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|l| {
            l["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == "LOWER_UP"))
        })
        .filter_map(|l| l["ifname"].as_str().map(str::to_string))
        .collect()
}

/// One `dagw status --json` call of a poller.
#[derive(Debug, Clone)]
pub struct StatusCall {
    pub took: Duration,
    /// Why it did not answer (exit status, stderr, bad JSON), if it did not.
    pub error: Option<String>,
    pub peer_state: Option<String>,
    pub role: Option<String>,
    pub last_heard_ms: Option<u64>,
}

impl StatusCall {
    pub fn answered_in_time(&self) -> bool {
        self.error.is_none() && self.took <= STATUS_LIMIT
    }
}

/// `dagw -s SOCK status --json`, timed from spawn to exit. Output goes to
/// files, not pipes, so a large answer cannot stall the child while we wait.
fn timed_status(work: &Workdir, scratch: &Path) -> (StatusCall, Option<Value>) {
    let out_path = scratch.join("status.out");
    let err_path = scratch.join("status.err");
    let out = File::create(&out_path).expect("status out file");
    let err = File::create(&err_path).expect("status err file");
    let t = Instant::now();
    let mut child = Command::new(DAGW)
        .arg("-s")
        .arg(work.socket())
        .args(["status", "--json"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn dagw status");
    let exit = loop {
        match child.try_wait().expect("wait for dagw status") {
            Some(st) => break Some(st),
            None if t.elapsed() >= STATUS_GIVE_UP => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    let took = t.elapsed();
    let mut call = StatusCall {
        took,
        error: None,
        peer_state: None,
        role: None,
        last_heard_ms: None,
    };
    let doc = match exit {
        None => {
            call.error = Some(format!("no answer within {STATUS_GIVE_UP:?}"));
            None
        }
        Some(st) if !st.success() => {
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            call.error = Some(format!("exit {:?}: {}", st.code(), stderr.trim()));
            None
        }
        Some(_) => {
            let text = std::fs::read(&out_path).unwrap_or_default();
            match serde_json::from_slice::<Value>(&text) {
                Ok(v) => Some(v),
                Err(e) => {
                    call.error = Some(format!("status is not JSON: {e}"));
                    None
                }
            }
        }
    };
    if let Some(v) = &doc {
        call.peer_state = v["peer"]["state"].as_str().map(str::to_string);
        call.role = v["role"].as_str().map(str::to_string);
        call.last_heard_ms = v["peer"]["last_heard_ms"].as_u64();
    }
    (call, doc)
}

/// A thread calling `dagw status --json` on one daemon, one call after the
/// other (20 ms apart), until stopped; keeps every call's timing and the
/// latest answer.
pub struct StatusPoller {
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<StatusCall>>>,
    latest: Arc<Mutex<Option<(Instant, Value)>>>,
    thread: Option<JoinHandle<()>>,
}

impl StatusPoller {
    pub fn start(work: Arc<Workdir>) -> StatusPoller {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let latest = Arc::new(Mutex::new(None));
        let (s, c, l) = (stop.clone(), calls.clone(), latest.clone());
        let thread = std::thread::spawn(move || {
            let scratch = tempfile::tempdir().expect("poller scratch dir");
            while !s.load(Ordering::Relaxed) {
                let started = Instant::now();
                let (call, doc) = timed_status(&work, scratch.path());
                c.lock().unwrap().push(call);
                if let Some(doc) = doc {
                    *l.lock().unwrap() = Some((started, doc));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        StatusPoller {
            stop,
            calls,
            latest,
            thread: Some(thread),
        }
    }

    pub fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// The latest answer of a call started at or after `since`.
    pub fn latest_since(&self, since: Instant) -> Option<Value> {
        let l = self.latest.lock().unwrap();
        l.as_ref()
            .filter(|(at, _)| *at >= since)
            .map(|(_, v)| v.clone())
    }

    /// Stop after the call in flight; every call's record.
    pub fn finish(mut self) -> Vec<StatusCall> {
        self.halt();
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for StatusPoller {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Log lines of a daemon carrying notice `id` (the stderr log prints a
/// notice's identifier as ` id="<id>"`).
fn log_notices(log: &str, id: &str) -> Vec<String> {
    let field = format!(" id=\"{id}\"");
    log.lines()
        .filter(|l| l.contains(&field))
        .map(str::to_string)
        .collect()
}

/// The peer-loss and role notices one daemon gave during the storm.
#[derive(Debug, Default)]
pub struct Notices {
    /// From the daemon's log (complete).
    pub log_peer_down: Vec<String>,
    pub log_role: Vec<String>,
    /// From `dagw monitor --json` (may have lost lines: see `monitor_lagged`).
    pub monitor_peer_down: usize,
    pub monitor_role: usize,
    pub monitor_lagged: Vec<String>,
}

impl Notices {
    fn collect(d: &Daemon, log_from: usize, tap: &LineTap) -> Notices {
        let log = d.log();
        let since = log.get(log_from..).unwrap_or("");
        let monitor = tap.json_lines();
        let count = |id: &str| monitor.iter().filter(|v| v["id"] == id).count();
        Notices {
            log_peer_down: log_notices(since, ids::PEER_DOWN),
            log_role: log_notices(since, ids::ROLE),
            monitor_peer_down: count(ids::PEER_DOWN),
            monitor_role: count(ids::ROLE),
            monitor_lagged: monitor
                .iter()
                .filter(|v| v["id"] == "monitor-lagged")
                .map(|v| v["message"].to_string())
                .collect(),
        }
    }

    pub fn peer_downs(&self) -> usize {
        self.log_peer_down.len().max(self.monitor_peer_down)
    }

    pub fn role_changes(&self) -> usize {
        self.log_role.len().max(self.monitor_role)
    }
}

/// What one storm measured.
#[derive(Debug)]
pub struct StormRun {
    /// `dagw reload` on A: how long it took and whether it was accepted.
    pub reload_took: Duration,
    pub reload_error: Option<String>,
    /// Wall-clock time the reload was started (to place captured packets).
    pub reload_started: SystemTime,
    /// When the flaps were done (from the reload's start), and whether the
    /// reload was still running then.
    pub flapped_after: Duration,
    pub flapped_during_reload: bool,
    /// From the reload's start until A's status and kernel show every
    /// gateway as configured; None if that did not happen within the wait.
    pub converged_after: Option<Duration>,
    /// The last thing still wrong when convergence was given up on.
    pub not_converged: String,
    pub status_a: Vec<StatusCall>,
    pub status_b: Vec<StatusCall>,
    pub notices_a: Notices,
    pub notices_b: Notices,
}

/// The slowest of `calls` (zero if none).
pub fn longest(calls: &[StatusCall]) -> Duration {
    calls.iter().map(|c| c.took).max().unwrap_or_default()
}

impl StormRun {
    /// Every way the run broke the acceptance item, one line each.
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if let Some(e) = &self.reload_error {
            f.push(format!("dagw reload on A failed: {e}"));
        }
        if self.converged_after.is_none() {
            f.push(format!(
                "A did not converge within {CONVERGE_WAIT:?} of the reload: {}",
                self.not_converged
            ));
        }
        for (side, n) in [("A", &self.notices_a), ("B", &self.notices_b)] {
            if n.peer_downs() > 0 {
                f.push(format!(
                    "{side} reported the peer down {} times (log {}, monitor {}); first: {}",
                    n.peer_downs(),
                    n.log_peer_down.len(),
                    n.monitor_peer_down,
                    n.log_peer_down.first().map_or("-", String::as_str)
                ));
            }
            if n.role_changes() > 0 {
                f.push(format!(
                    "{side} changed its role {} times (log {}, monitor {}); first: {}",
                    n.role_changes(),
                    n.log_role.len(),
                    n.monitor_role,
                    n.log_role.first().map_or("-", String::as_str)
                ));
            }
        }
        for (side, calls) in [("A", &self.status_a), ("B", &self.status_b)] {
            let late: Vec<&StatusCall> = calls.iter().filter(|c| !c.answered_in_time()).collect();
            if !late.is_empty() {
                let errors: Vec<&str> = late.iter().filter_map(|c| c.error.as_deref()).collect();
                f.push(format!(
                    "status on {side}: {} of {} calls not answered within {STATUS_LIMIT:?} (longest {:.3} s){}",
                    late.len(),
                    calls.len(),
                    longest(calls).as_secs_f64(),
                    errors
                        .first()
                        .map_or(String::new(), |e| format!("; e.g. {e}"))
                ));
            }
            let states: BTreeSet<&str> = calls
                .iter()
                .filter_map(|c| c.peer_state.as_deref())
                .collect();
            if states.iter().any(|s| *s != "up") {
                f.push(format!("status on {side} showed peer states {states:?}"));
            }
            let roles: BTreeSet<&str> = calls.iter().filter_map(|c| c.role.as_deref()).collect();
            if roles.len() > 1 {
                f.push(format!("status on {side} showed roles {roles:?}"));
            }
        }
        f
    }

    /// One line per side: calls, longest answer, peer-downs, role changes.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "reload on A: {:.3} s ({}); {FLAP_ROUNDS} rounds of {FLAPPING} SVI flaps done after {:.3} s ({}); A converged after {}\n",
            self.reload_took.as_secs_f64(),
            self.reload_error.as_deref().unwrap_or("accepted"),
            self.flapped_after.as_secs_f64(),
            if self.flapped_during_reload {
                "reload still running"
            } else {
                "reload had returned"
            },
            self.converged_after
                .map_or("never".to_string(), |d| format!("{:.3} s", d.as_secs_f64()))
        );
        for (side, calls, n) in [
            ("A", &self.status_a, &self.notices_a),
            ("B", &self.status_b, &self.notices_b),
        ] {
            s += &format!(
                "{side}: {} status calls, longest answer {:.3} s, {} over {STATUS_LIMIT:?}; max peer.last_heard_ms {}; peer-down notices {}, role notices {}{}\n",
                calls.len(),
                longest(calls).as_secs_f64(),
                calls.iter().filter(|c| !c.answered_in_time()).count(),
                calls
                    .iter()
                    .filter_map(|c| c.last_heard_ms)
                    .max()
                    .unwrap_or(0),
                n.peer_downs(),
                n.role_changes(),
                if n.monitor_lagged.is_empty() {
                    String::new()
                } else {
                    format!("; monitor lagged: {}", n.monitor_lagged.join(", "))
                }
            );
        }
        s
    }
}

/// The pair with A's SVIs in place, both daemons running and peers up.
pub struct StormLab {
    // Fields drop in order: monitors and daemons go before the namespaces.
    pub monitor_a: LineTap,
    pub monitor_b: LineTap,
    pub da: Daemon,
    pub db: Daemon,
    /// Log lengths at the baseline: notices before it are the start-up's.
    log_from: [usize; 2],
    pub pair: Pair,
}

impl StormLab {
    pub fn new(test: &str) -> StormLab {
        let pair = Pair::new(test);
        make_svis(&pair.a.ns);
        let (da, db) = pair.start(&peer_opts(), &[Gw::vlanif10()]);
        wait_peer(&da, "up");
        wait_peer(&db, "up");
        for (d, node, role) in [(&da, "A", "master"), (&db, "B", "backup")] {
            wait_for(&format!("{node} {role}"), || {
                let r = d.status()["role"].clone();
                if r == role {
                    Ok(())
                } else {
                    Err(r.to_string())
                }
            });
        }
        // the log is read the way the storm reads it: the peer-up is there
        for d in [&da, &db] {
            assert!(
                !log_notices(&d.log(), ids::PEER_UP).is_empty(),
                "no {} notice found in the log; its format changed?\n{}",
                ids::PEER_UP,
                d.log()
            );
        }
        let monitor_a = LineTap::dagw_monitor(&pair.a.work);
        let monitor_b = LineTap::dagw_monitor(&pair.b.work);
        let log_from = [da.log().len(), db.log().len()];
        StormLab {
            monitor_a,
            monitor_b,
            da,
            db,
            log_from,
            pair,
        }
    }

    /// Reload A with the added gateways, flap the SVIs while it runs, wait
    /// until A has converged; status polled and notices watched throughout.
    pub fn storm(&self) -> StormRun {
        let poll_a = StatusPoller::start(self.pair.a.work.clone());
        let poll_b = StatusPoller::start(self.pair.b.work.clone());
        // from before the reload: both pollers have an answer in
        let both = wait_until(WAIT, || poll_a.count() > 0 && poll_b.count() > 0);
        assert!(both, "status pollers made no call");

        let gateways = reloaded_gateways();
        self.pair.a.write_config(&peer_opts(), &gateways);
        let t0 = Instant::now();
        let reload_started = SystemTime::now();
        let work = self.pair.a.work.clone();
        let reload = std::thread::spawn(move || {
            let o = work.client(&["reload"]);
            let error = (!o.status.success()).then(|| {
                format!(
                    "exit {:?}: {}{}",
                    o.status.code(),
                    String::from_utf8_lossy(&o.stdout).trim(),
                    String::from_utf8_lossy(&o.stderr).trim()
                )
            });
            (t0.elapsed(), error)
        });
        // the flaps start once the reload is at work in the kernel
        let first = format!("gw{FIRST_ID}");
        wait_until(WAIT, || {
            reload.is_finished() || self.pair.a.ns.has_link(&first)
        });
        self.flap();
        let flapped_after = t0.elapsed();
        let flapped_during_reload = !reload.is_finished();

        let mut not_converged = String::new();
        let mut reload_returned = None;
        let converged = wait_until(CONVERGE_WAIT, || {
            match converged(
                &self.pair.a.ns,
                &reload,
                &mut reload_returned,
                &poll_a,
                &gateways,
            ) {
                Ok(()) => true,
                Err(e) => {
                    not_converged = e;
                    false
                }
            }
        });
        let converged_after = converged.then(|| t0.elapsed());
        let status_a = poll_a.finish();
        let status_b = poll_b.finish();
        let (reload_took, reload_error) = reload.join().expect("reload thread");
        StormRun {
            reload_took,
            reload_error,
            reload_started,
            flapped_after,
            flapped_during_reload,
            converged_after,
            not_converged,
            status_a,
            status_b,
            notices_a: Notices::collect(&self.da, self.log_from[0], &self.monitor_a),
            notices_b: Notices::collect(&self.db, self.log_from[1], &self.monitor_b),
        }
    }

    /// The flapping SVIs down, then up, [`FLAP_ROUNDS`] times.
    fn flap(&self) {
        let ids = flapping_ids();
        for _ in 0..FLAP_ROUNDS {
            for state in ["down", "up"] {
                let lines: Vec<String> = ids
                    .iter()
                    .map(|id| format!("link set br{id} {state}"))
                    .collect();
                ip_batch(&self.pair.a.ns, &lines);
            }
        }
    }
}

/// Ok once the reload has returned, an answer given after that shows every
/// gateway `up`, and the kernel has each device up with its addresses; else
/// what is still missing.
fn converged(
    ns: &Netns,
    reload: &JoinHandle<(Duration, Option<String>)>,
    reload_returned: &mut Option<Instant>,
    poll_a: &StatusPoller,
    gateways: &[Gw],
) -> Result<(), String> {
    if !reload.is_finished() {
        return Err("dagw reload has not returned".into());
    }
    let since = *reload_returned.get_or_insert_with(Instant::now);
    let doc = poll_a
        .latest_since(since)
        .ok_or("no status answer since the reload returned")?;
    status_problems(&doc, gateways)?;
    kernel_problems(ns, gateways)
}

/// Err naming the gateways of `gateways` that a status document does not
/// show `up` (the first few), with their count.
fn status_problems(doc: &Value, gateways: &[Gw]) -> Result<(), String> {
    let shown = doc["gateways"].as_array().cloned().unwrap_or_default();
    let bad: Vec<String> = gateways
        .iter()
        .filter_map(|g| {
            let name = format!("vlanif{}", g.id);
            match shown.iter().find(|s| s["name"] == name.as_str()) {
                None => Some(format!("{name} absent")),
                Some(s) if s["state"] != "up" => {
                    Some(format!("{name} {} {}", s["state"], s["reason"]))
                }
                Some(_) => None,
            }
        })
        .collect();
    few("status", &bad)
}

/// Err naming the gateways whose device is absent, not admin up, or lacks a
/// configured address in the kernel of `ns`.
fn kernel_problems(ns: &Netns, gateways: &[Gw]) -> Result<(), String> {
    let v: Value = serde_json::from_str(&ns.ip("-j addr show")).expect("ip -j addr json");
    let links = v.as_array().cloned().unwrap_or_default();
    let bad: Vec<String> = gateways
        .iter()
        .filter_map(|g| {
            let dev = format!("gw{}", g.id);
            let Some(l) = links.iter().find(|l| l["ifname"] == dev.as_str()) else {
                return Some(format!("{dev} absent"));
            };
            if !l["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == "UP"))
            {
                return Some(format!("{dev} not up"));
            }
            let have: Vec<(IpAddr, u64)> = l["addr_info"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| {
                    let ip = a["local"].as_str()?.parse().ok()?;
                    Some((ip, a["prefixlen"].as_u64()?))
                })
                .collect();
            g.ipv4
                .iter()
                .chain(&g.ipv6)
                .find(|want| !have.contains(&cidr(want)))
                .map(|want| format!("{dev} lacks {want}"))
        })
        .collect();
    few("kernel", &bad)
}

fn cidr(s: &str) -> (IpAddr, u64) {
    let (ip, len) = s.split_once('/').expect("address/length");
    (
        ip.parse().expect("configured address"),
        len.parse().expect("prefix length"),
    )
}

fn few(what: &str, bad: &[String]) -> Result<(), String> {
    if bad.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{what}: {} gateways not as configured, e.g. {}",
        bad.len(),
        bad.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
    ))
}

/// Kernel receive times of the heartbeats one switch sends, captured on the
/// other switch's side of the underlay (an AF_PACKET tap in its namespace;
/// the daemon's socket gets them too). Every datagram counts: a heartbeat of
/// many gateways is several pages sent back to back.
pub struct HeartbeatTap {
    stop: Arc<AtomicBool>,
    seen: Arc<AtomicUsize>,
    thread: Option<JoinHandle<Captured>>,
}

/// What a [`HeartbeatTap`] saw.
#[derive(Debug, Default)]
pub struct Captured {
    /// Receive times (since the epoch), in order.
    pub times: Vec<Duration>,
    /// Datagrams the kernel gave no receive time (read time used instead).
    pub unstamped: usize,
}

impl HeartbeatTap {
    /// Capture in `ns` the datagrams from `src` to the heartbeat port.
    pub fn start(ns: &Netns, src: Ipv4Addr) -> HeartbeatTap {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let (s, n_seen) = (stop.clone(), seen.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = spawn_in_netns(ns, move || {
            let tap = ipv4_tap();
            // turns stamping on; there is no packet to stamp yet
            let _ = packet_time(&tap);
            let _ = ready_tx.send(());
            let mut times = Vec::new();
            let mut unstamped = 0;
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                let Some(n) = tap_recv(&tap, &mut buf) else {
                    continue;
                };
                if udp_payload(&buf[..n], src, PORT).is_some() {
                    times.push(packet_time(&tap).unwrap_or_else(|| {
                        unstamped += 1;
                        SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .unwrap_or_default()
                    }));
                    n_seen.fetch_add(1, Ordering::Relaxed);
                }
            }
            Captured { times, unstamped }
        });
        ready_rx.recv_timeout(WAIT).expect("heartbeat tap ready");
        HeartbeatTap {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Wait until `count` datagrams were captured: a silence that starts
    /// right after this is then measured as a gap, not missed.
    pub fn wait_seen(&self, count: usize) {
        let ok = wait_until(WAIT, || self.seen.load(Ordering::Relaxed) >= count);
        assert!(ok, "heartbeat tap saw fewer than {count} datagrams");
    }

    /// Stop; what was captured.
    pub fn finish(mut self) -> Captured {
        self.halt()
    }

    fn halt(&mut self) -> Captured {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("heartbeat tap thread"))
            .unwrap_or_default()
    }
}

impl Drop for HeartbeatTap {
    fn drop(&mut self) {
        self.halt();
    }
}

const SIOCGSTAMPNS: libc::c_ulong = 0x8907;

/// The kernel's receive time of the packet the tap returned last
/// (SIOCGSTAMPNS), if it has one. The first such call also asks the kernel
/// to stamp the packets that follow. (SO_TIMESTAMPNS would not do: its
/// stamps go to control messages, and this ioctl then finds none.)
fn packet_time(tap: &std::os::fd::OwnedFd) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: SIOCGSTAMPNS writes one timespec into `ts`.
    let rc = unsafe { libc::ioctl(tap.as_raw_fd(), SIOCGSTAMPNS as _, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}
