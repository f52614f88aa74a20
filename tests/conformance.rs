//! Conformance fixtures: the product's rules as data, replayed through the
//! pure machines of `core` (the holo-vrrp way). Each scenario is a folder
//! `tests/conformance/<scenario>/`:
//!
//! - `config.toml` — a dagw config (parsed by the real parser);
//! - `events.jsonl` — one event a line, time `t` in seconds;
//! - `effects.jsonl` — the effects expected, one a line, in order;
//! - `status.json` — the state expected at the end.
//!
//! Run with `DAGW_BLESS=1` to write the actual outputs over the expected
//! ones (then read the diff: a fixture is a statement of the rule).
//!
//! Scenarios named `neigh-*` exercise the ARP/ND rule (`core::neigh`). Their
//! events, all for gateway vlanif10:
//!
//! ```text
//! {"t": 0, "kernel": {"ip": IP, "held": "own MAC" | "pinned MAC" | "nothing", "reachable": bool}}
//! {"t": 0, "peer": {"ip": IP, "mac": MAC | null}}          the peer advertised / withdrew
//! {"t": 0, "learned": {"mac": MAC, "port": NAME}}          the bridge learned MAC on a port
//! {"t": 0, "forgotten": {"mac": MAC, "port": NAME}}        ... aged out or was flushed
//! {"t": 0, "sweep": true}                                  the neighbour_aging sweep
//! {"t": 0, "peer_table": "incomplete" | "complete"}        before / after the peer's first bulk
//! ```
//!
//! Scenarios named `check-*` are configuration rules: `config.toml` in, the
//! diagnostics `dagw check` gives out (`effects.jsonl`: one a line, with
//! severity, key, line, column and message; `status.json`: valid or not).
//!
//! Scenarios named `uplinks-*` are uplink tracking (`core::uplinks`), the
//! `[uplinks]` of `config.toml` with events `{"t", "up": N}` (oper-up
//! uplinks counted from link events) and `{"t", "tick": true}` (time), and
//! effects `{"t", "uplinks": STATE, "members_held": bool}`.
//!
//! Scenarios named `peer-*` are the peer's liveness, roles, split-brain,
//! drain and goodbye (`core::peer::PeerMachine`), with `config.toml`'s
//! `[peer]` and node name. Events: `{"t_ms", "heartbeat": {"node", "priority",
//! "flags": ["drained" | "goodbye"], "epoch"}}` (authenticated, fresh: what
//! passed the link's checks), `{"t_ms", "tick": true}`, `{"t_ms",
//! "peer_link": "up" | "down"}`; effects `{"t_ms", "change": ...}`.
//!
//! Scenarios named `mismatch-*` are the configuration comparison between
//! the peers (`core::consistency::compare`): `config.toml` is this node's
//! config, `peer.toml` the peer's, and the events
//!
//! ```text
//! {"t": 0, "heartbeat": true}        the peer's heartbeat round (its gateways'
//!                                    digests, MAC, up-delay, and extension 2),
//!                                    encoded, decoded, assembled by core::peer
//! {"t": 0, "sync": true}             the peer's exact values over the sync
//!                                    channel (Gateways frames, decoded, kept
//!                                    for our gateways only)
//! {"t": 0, "peer_config": "FILE"}    the peer reloads FILE (sends nothing yet)
//! ```
//!
//! Effects: `{"t", "mismatches": [...], "held_if_backup": [...]}` each time
//! the list changes after an event (`held_if_backup`: the gateways strict
//! mode holds on the backup, empty without `[peer] strict`); status: the
//! final list, `consistent`, `held_if_backup` and `exact_known` (the
//! gateways whose exact values this node holds).
//!
//! Effects (neigh): `{"t", "ip", "sync": "advertise MAC" | "withdraw"}` and
//! `{"t", "ip", "kernel": "pin MAC" | "own MAC" | "unpin" | "probe"}`.
//! The kernel's echo of an effect is an event of its own in `events.jsonl`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use dagw::config::{self, LoadContext};
use dagw::core::mac::Mac;
use dagw::core::neigh::{Held, Host, HostEffects, HostEvent, NeighAction, SyncNews};
use serde_json::{Value, json};

#[path = "common/fixtures.rs"]
mod fixtures;
use fixtures::scenarios;

fn mac(s: &str) -> Mac {
    s.parse().unwrap_or_else(|e| panic!("MAC {s}: {e:?}"))
}

fn held_of(s: &str) -> Held {
    match s.split_once(' ') {
        Some(("own", m)) => Held::Own(mac(m)),
        Some(("pinned", m)) => Held::Pinned(mac(m)),
        _ if s == "nothing" => Held::Nothing,
        _ => panic!("held: {s} (own MAC | pinned MAC | nothing)"),
    }
}

fn held_text(h: Held) -> String {
    match h {
        Held::Own(m) => format!("own {m}"),
        Held::Pinned(m) => format!("pinned {m}"),
        Held::Nothing => "nothing".into(),
    }
}

fn effect_lines(t: u64, ip: &str, e: HostEffects, out: &mut Vec<Value>) {
    if let Some(s) = e.sync {
        let text = match s {
            SyncNews::Advertise(m) => format!("advertise {m}"),
            SyncNews::Withdraw => "withdraw".into(),
        };
        out.push(json!({"t": t, "ip": ip, "sync": text}));
    }
    if let Some(k) = e.kernel {
        let text = match k {
            NeighAction::Pin(m) => format!("pin {m}"),
            NeighAction::Own(m) => format!("own {m}"),
            NeighAction::Unpin => "unpin".into(),
            NeighAction::Probe => "probe".into(),
        };
        out.push(json!({"t": t, "ip": ip, "kernel": text}));
    }
}

/// Replay one `neigh-*` scenario; (effects, status).
fn replay_neigh(dir: &Path) -> (Vec<Value>, Value) {
    let text = fs::read_to_string(dir.join("config.toml")).expect("config.toml");
    let ctx = LoadContext {
        hostname: "conformance".into(),
    };
    let (cfg, _) = config::parse_str(&text, &ctx)
        .unwrap_or_else(|d| panic!("{}: config.toml invalid: {d:?}", dir.display()));
    let aging_s = cfg
        .peer
        .as_ref()
        .map_or(config::DEFAULT_NEIGHBOUR_AGING, |p| p.neighbour_aging)
        .as_secs() as u32;
    let members: BTreeSet<String> = cfg.mlag.members.iter().cloned().collect();

    let mut hosts: BTreeMap<String, Host> = BTreeMap::new();
    let mut peer_complete = true;
    let mut behind: BTreeSet<Mac> = BTreeSet::new();
    let mut effects = Vec::new();
    let events = fs::read_to_string(dir.join("events.jsonl")).expect("events.jsonl");
    for (n, line) in events.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ev: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}: events.jsonl:{}: {e}", dir.display(), n + 1));
        let t = ev["t"].as_u64().expect("t");
        let now_s = t as u32;
        let feed = |hosts: &mut BTreeMap<String, Host>,
                    peer_complete: bool,
                    ip: &str,
                    e: HostEvent,
                    behind: &BTreeSet<Mac>,
                    out: &mut Vec<Value>| {
            let h = hosts
                .entry(ip.to_string())
                .or_insert_with(|| Host::new(Held::Nothing, None, peer_complete, now_s));
            let fx = h.handle(e, now_s, aging_s, |m| behind.contains(&m));
            effect_lines(t, ip, fx, out);
        };
        if let Some(k) = ev.get("kernel") {
            let ip = k["ip"].as_str().expect("kernel.ip");
            let held = held_of(k["held"].as_str().expect("kernel.held"));
            let reachable = k["reachable"].as_bool().unwrap_or(false);
            feed(
                &mut hosts,
                peer_complete,
                ip,
                HostEvent::Kernel { held, reachable },
                &behind,
                &mut effects,
            );
        } else if let Some(p) = ev.get("peer") {
            let ip = p["ip"].as_str().expect("peer.ip");
            let m = p["mac"].as_str().map(mac);
            feed(
                &mut hosts,
                peer_complete,
                ip,
                HostEvent::Peer(m),
                &behind,
                &mut effects,
            );
        } else if let Some(l) = ev.get("learned").or(ev.get("forgotten")) {
            let m = mac(l["mac"].as_str().expect("mac"));
            let on_member =
                ev.get("learned").is_some() && members.contains(l["port"].as_str().expect("port"));
            // only a change of place is an event (the daemon's bridge view)
            let changed = if on_member {
                behind.insert(m)
            } else {
                behind.remove(&m)
            };
            if !changed {
                continue;
            }
            let moved: Vec<String> = hosts
                .iter()
                .filter(|(_, h)| {
                    h.peer == Some(m) || matches!(h.held, Held::Own(x) | Held::Pinned(x) if x == m)
                })
                .map(|(ip, _)| ip.clone())
                .collect();
            for ip in moved {
                feed(
                    &mut hosts,
                    peer_complete,
                    &ip,
                    HostEvent::Learned { on_member },
                    &behind,
                    &mut effects,
                );
            }
        } else if let Some(p) = ev.get("peer_table") {
            peer_complete = p == "complete";
            for h in hosts.values_mut() {
                h.peer_complete = peer_complete;
            }
            // the peer's first bulk: look again at every host
            if peer_complete {
                let ips: Vec<String> = hosts.keys().cloned().collect();
                for ip in ips {
                    feed(
                        &mut hosts,
                        peer_complete,
                        &ip,
                        HostEvent::Settle,
                        &behind,
                        &mut effects,
                    );
                }
            }
        } else if ev.get("sweep").is_some() {
            let ips: Vec<String> = hosts.keys().cloned().collect();
            for ip in ips {
                feed(
                    &mut hosts,
                    peer_complete,
                    &ip,
                    HostEvent::Sweep,
                    &behind,
                    &mut effects,
                );
            }
        } else {
            panic!(
                "{}: events.jsonl:{}: unknown event {ev}",
                dir.display(),
                n + 1
            );
        }
    }
    let status: serde_json::Map<String, Value> = hosts
        .iter()
        .map(|(ip, h)| {
            (
                ip.clone(),
                json!({"held": held_text(h.held), "peer": h.peer.map(|m| m.to_string())}),
            )
        })
        .collect();
    (effects, Value::Object(status))
}

fn load(dir: &Path) -> Result<(config::Config, Vec<config::Diagnostic>), Vec<config::Diagnostic>> {
    let text = fs::read_to_string(dir.join("config.toml")).expect("config.toml");
    let ctx = LoadContext {
        hostname: "conformance".into(),
    };
    config::parse_str(&text, &ctx)
}

/// Replay one `check-*` scenario: the diagnostics of its config.
fn replay_check(dir: &Path) -> (Vec<Value>, Value) {
    let (valid, diags) = match load(dir) {
        Ok((_, d)) => (true, d),
        Err(d) => (false, d),
    };
    let effects = diags
        .iter()
        .map(|d| {
            json!({
                "severity": if d.is_error() { "error" } else { "warning" },
                "key": d.key, "line": d.line, "col": d.col,
                "message": d.message, "allowed": d.allowed,
            })
        })
        .collect();
    (effects, json!({"valid": valid}))
}

/// Replay one `uplinks-*` scenario through `core::uplinks`.
fn replay_uplinks(dir: &Path) -> (Vec<Value>, Value) {
    use dagw::core::uplinks::UplinkTracker;
    use std::time::{Duration, Instant};
    let (cfg, _) =
        load(dir).unwrap_or_else(|d| panic!("{}: config.toml invalid: {d:?}", dir.display()));
    let u = cfg.uplinks.expect("an [uplinks] section");
    let t0 = Instant::now();
    let mut tracker: Option<UplinkTracker> = None;
    let mut effects = Vec::new();
    let events = fs::read_to_string(dir.join("events.jsonl")).expect("events.jsonl");
    for line in events.lines().filter(|l| !l.trim().is_empty()) {
        let ev: Value = serde_json::from_str(line).expect("event");
        let t = ev["t"].as_u64().expect("t");
        let now = t0 + Duration::from_secs(t);
        let changed = match (&mut tracker, ev["up"].as_u64()) {
            (None, Some(up)) => {
                let tr = UplinkTracker::new(u.min_up, u.recover_delay, up as u32);
                let s = tr.state;
                tracker = Some(tr);
                Some(s)
            }
            (Some(tr), Some(up)) => tr.update(up as u32, now),
            (Some(tr), None) if ev.get("tick").is_some() => tr.tick(now),
            _ => panic!("{}: bad event {ev}", dir.display()),
        };
        if let (Some(s), Some(tr)) = (changed, &tracker) {
            effects
                .push(json!({"t": t, "uplinks": s.as_str(), "members_held": tr.holds_members()}));
        }
    }
    let status = tracker.map_or(
        Value::Null,
        |t| json!({"state": t.state.as_str(), "up": t.up, "min_up": t.min_up}),
    );
    (effects, status)
}

fn parse_config(dir: &Path, file: &str) -> config::Config {
    let text = fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let ctx = LoadContext {
        hostname: "conformance".into(),
    };
    config::parse_str(&text, &ctx)
        .unwrap_or_else(|d| panic!("{}: {file} invalid: {d:?}", dir.display()))
        .0
}

/// Replay one `mismatch-*` scenario through the heartbeat codec, the peer
/// machine's page assembly, the sync channel's Gateways frames and
/// `core::consistency`.
fn replay_mismatch(dir: &Path) -> (Vec<Value>, Value) {
    use dagw::core::consistency::{self, ExactValues, GwConfig, PeerConfig};
    use dagw::core::peer::PeerMachine;
    use dagw::peer::codec::{self, Heartbeat, MAX_ENTRIES, MAX_PACKET};
    use dagw::sync::{Frame, FrameReader, FrameWriter};
    use std::time::{Duration, Instant};

    let ours = parse_config(dir, "config.toml");
    let strict = ours.peer.as_ref().is_some_and(|p| p.strict);
    let local: Vec<(String, GwConfig)> = ours
        .gateways
        .iter()
        .map(|g| (g.name.to_string(), GwConfig::of(g)))
        .collect();
    let our_keys: BTreeSet<_> = local.iter().map(|(_, g)| g.key()).collect();
    let local_node = consistency::node_policy(&ours);
    let mut theirs = parse_config(dir, "peer.toml");
    let t0 = Instant::now();
    let mut machine = PeerMachine::new(Duration::from_secs(1), 3, "leafa", 100, t0);
    let mut exact = ExactValues::default();
    let mut seq = 0u64;
    let key = [9u8; 32];
    let mut writer = FrameWriter::new(&key);
    let mut reader = FrameReader::new(&key);
    let mut last: Vec<consistency::Mismatch> = Vec::new();
    let mut effects = Vec::new();
    let held = |m: &[consistency::Mismatch]| -> Vec<String> {
        if strict {
            consistency::strict_holds(m)
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            Vec::new()
        }
    };
    let events = fs::read_to_string(dir.join("events.jsonl")).expect("events.jsonl");
    for line in events.lines().filter(|l| !l.trim().is_empty()) {
        let ev: Value = serde_json::from_str(line).expect("event");
        let t = ev["t"].as_u64().expect("t");
        if ev.get("heartbeat").is_some() {
            let entries: Vec<_> = theirs
                .gateways
                .iter()
                .map(|g| GwConfig::of(g).entry(2, 0, 0))
                .collect();
            let pages = entries.len().div_ceil(MAX_ENTRIES).max(1);
            for page in 0..pages {
                seq += 1;
                let mut hb = Heartbeat {
                    epoch: 1,
                    seq,
                    direction: codec::FROM_HIGHER,
                    priority: 100,
                    page: page as u16,
                    pages: pages as u16,
                    policy: Some(consistency::node_policy(&theirs)),
                    ..Default::default()
                };
                hb.node.push_str("leafb").expect("name");
                for e in entries.iter().skip(page * MAX_ENTRIES).take(MAX_ENTRIES) {
                    hb.gateways.push(*e).expect("a page");
                }
                let mut buf = [0u8; MAX_PACKET];
                let n = codec::encode(&hb, &mut buf).expect("encodes");
                let hb = codec::decode(&buf[..n]).expect("decodes");
                machine.on_heartbeat(&hb, t0 + Duration::from_secs(t));
            }
        } else if ev.get("sync").is_some() {
            let values: Vec<GwConfig> = theirs.gateways.iter().map(GwConfig::of).collect();
            let mut out = Vec::new();
            writer.gateway_set(&values, &mut out).expect("a set");
            for chunk in out.chunks(dagw::sync::frame::READ_CHUNK) {
                reader.feed(chunk);
                while let Some(f) = reader.next().expect("a frame") {
                    let Frame::Gateways {
                        first,
                        last,
                        gateways,
                    } = f
                    else {
                        panic!("{f:?}")
                    };
                    exact.on_frame(first, last, gateways, |k| our_keys.contains(&k));
                }
            }
        } else if let Some(f) = ev["peer_config"].as_str() {
            theirs = parse_config(dir, f);
            continue;
        } else {
            panic!("{}: bad event {ev}", dir.display());
        }
        // as the daemon: nothing is compared before the peer's first round
        if machine.table.is_empty() && machine.policy.is_none() {
            continue;
        }
        let found = consistency::compare(
            &local,
            &local_node,
            PeerConfig {
                table: &machine.table,
                exact: &exact.known,
                node: machine.policy,
            },
        );
        if found != last {
            let list: Vec<Value> = found.iter().map(|m| m.to_json()).collect();
            effects.push(json!({"t": t, "mismatches": list, "held_if_backup": held(&found)}));
            last = found;
        }
    }
    let names: BTreeMap<_, _> = local.iter().map(|(n, g)| (g.key(), n.clone())).collect();
    let status = json!({
        "consistent": last.is_empty(),
        "mismatches": last.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
        "held_if_backup": held(&last),
        "exact_known": exact.known.keys().map(|k| names[k].clone()).collect::<Vec<_>>(),
    });
    (effects, status)
}

/// Replay one `peer-*` scenario through `core::peer::PeerMachine`.
fn replay_peer(dir: &Path) -> (Vec<Value>, Value) {
    use dagw::core::peer::{LinkState, PeerChange, PeerMachine};
    use dagw::peer::codec::{FLAG_DRAINED, FLAG_GOODBYE, Heartbeat};
    use std::time::{Duration, Instant};
    let (cfg, _) =
        load(dir).unwrap_or_else(|d| panic!("{}: config.toml invalid: {d:?}", dir.display()));
    let p = cfg.peer.expect("a [peer] section");
    let t0 = Instant::now();
    let mut m = PeerMachine::new(
        p.interval,
        p.multiplier,
        &cfg.node.name,
        p.priority as u8,
        t0,
    );
    let mut effects = Vec::new();
    let events = fs::read_to_string(dir.join("events.jsonl")).expect("events.jsonl");
    for line in events.lines().filter(|l| !l.trim().is_empty()) {
        let ev: Value = serde_json::from_str(line).expect("event");
        let t = ev["t_ms"].as_u64().expect("t_ms");
        let now = t0 + Duration::from_millis(t);
        let changes = if let Some(h) = ev.get("heartbeat") {
            let mut hb = Heartbeat {
                epoch: h["epoch"].as_u64().unwrap_or(1),
                priority: h["priority"].as_u64().unwrap_or(100) as u8,
                page: 0,
                pages: 1,
                ..Default::default()
            };
            let _ = hb.node.push_str(h["node"].as_str().unwrap_or("leafb"));
            for f in h["flags"].as_array().into_iter().flatten() {
                hb.flags |= match f.as_str() {
                    Some("drained") => FLAG_DRAINED,
                    Some("goodbye") => FLAG_GOODBYE,
                    _ => panic!("flag {f}"),
                };
            }
            m.on_heartbeat(&hb, now)
        } else if ev.get("tick").is_some() {
            m.tick(now)
        } else if let Some(l) = ev["peer_link"].as_str() {
            m.on_peer_link(if l == "up" {
                LinkState::Up
            } else {
                LinkState::Down
            })
        } else {
            panic!("{}: bad event {ev}", dir.display())
        };
        for c in changes {
            let text = match c {
                PeerChange::State(s) => format!("state {}", s.as_str()),
                PeerChange::Role(r) => format!("role {}", r.as_str()),
                PeerChange::TableComplete => "table-complete".into(),
                PeerChange::SplitBrain(on) => format!("split-brain {on}"),
                PeerChange::PeerLinkRecovered => "peer-link-recovered".into(),
                PeerChange::Drained(on) => format!("drained {on}"),
            };
            effects.push(json!({"t_ms": t, "change": text}));
        }
    }
    let status = json!({
        "state": m.state.as_str(), "role": m.role_str(), "reason": m.reason,
        "drained": m.peer_drained, "split_brain": m.split_brain,
    });
    (effects, status)
}

fn check(dir: &Path, effects: Vec<Value>, status: Value) -> Result<(), String> {
    let got_effects: String = effects.iter().map(|v| format!("{v}\n")).collect();
    let got_status = serde_json::to_string_pretty(&status).expect("json") + "\n";
    if std::env::var_os("DAGW_BLESS").is_some() {
        fs::write(dir.join("effects.jsonl"), &got_effects).expect("write effects");
        fs::write(dir.join("status.json"), &got_status).expect("write status");
        return Ok(());
    }
    let want_effects: Vec<Value> = fs::read_to_string(dir.join("effects.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("effects.jsonl line"))
        .collect();
    let want_status: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("status.json")).expect("status.json"))
            .expect("status.json");
    let name = dir.file_name().unwrap().to_string_lossy();
    if want_effects != effects {
        return Err(format!(
            "{name}: effects differ\n--- expected\n{}\n--- actual\n{got_effects}",
            want_effects
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    if want_status != status {
        return Err(format!(
            "{name}: status differs\n--- expected\n{want_status:#}\n--- actual\n{got_status}"
        ));
    }
    Ok(())
}

fn run_all(prefix: &str, min: usize, replay: fn(&Path) -> (Vec<Value>, Value)) {
    let dirs = scenarios(prefix);
    assert!(dirs.len() >= min, "{prefix}* scenarios missing: {dirs:?}");
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            let (e, s) = replay(d);
            check(d, e, s).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!("{} {prefix}* scenarios conform", dirs.len());
}

#[test]
fn check_scenarios() {
    run_all("check-", 1, replay_check);
}

#[test]
fn peer_scenarios() {
    run_all("peer-", 2, replay_peer);
}

#[test]
fn mismatch_scenarios() {
    run_all("mismatch-", 6, replay_mismatch);
}

#[test]
fn uplinks_scenarios() {
    run_all("uplinks-", 1, replay_uplinks);
}

#[test]
fn neigh_scenarios() {
    run_all("neigh-", 10, replay_neigh);
}
