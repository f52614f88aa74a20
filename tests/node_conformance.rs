//! Node conformance: the seed's rules replayed through `core::node`, the
//! one pure machine of the whole switch (the holo-vrrp way). Each scenario
//! is a folder `tests/conformance/node-*/`:
//!
//! - `config.toml` — a dagw config (the real parser); other `*.toml` files
//!   are configs a `reload` event names;
//! - `events.jsonl` — one event a line, at `t_ms` milliseconds;
//! - `effects.jsonl` — what the node did, one effect a line, in order;
//! - `status.json` — `dagw status` at the last event's time.
//!
//! Time is an event: before each event the node's own deadlines up to its
//! `t_ms` fire (`Event::Timer` at each). Kernel work the node hands out is
//! carried out by a small kernel model at once (the kernel's answer comes
//! back as the report the real executor would send) unless a `fail` rule
//! says the kernel refuses it.
//!
//! Events:
//!
//! ```text
//! {"t_ms": 0, "start": {"first_start": bool, "drained": bool, "links": [LINK...],
//!                       "members": {"m1": {"method": "protodown", "left_ms": N}}}}
//! {"t_ms": 0, "link": LINK}                 a link appears or changes
//! {"t_ms": 0, "link_gone": "br10"}
//! {"t_ms": 0, "addr_removed": {"device": "gw10", "addr": "192.0.2.1/24"}}
//! {"t_ms": 0, "heartbeat": {"node", "priority", "epoch", "peer_link": "up"|"down"|"none",
//!                           "flags": ["drained"|"goodbye"], "gateways": "mirror" | {"differ": {GW: {"up_delay_ms": N}}}}}
//! {"t_ms": 0, "reload": "FILE.toml", "keys_changed": bool}
//! {"t_ms": 0, "drain": bool}
//! {"t_ms": 0, "sync": "session" | {"established": NAME} | {"bulk_end": N} | {"closed": REASON}}
//! {"t_ms": 0, "fail": {"action": "protodown"|..., "errno": N} | null}
//! {"t_ms": 0, "time": true}                 only let time pass
//! LINK: {"name", "index", "kind": "bridge"|"macvlan"|"vxlan"|"other", "up": bool, "master": NAME}
//! ```
//!
//! Effects: `{"t_ms", "kernel": [TEXT...], "for": PURPOSE}` (a plan, as
//! `Action::describe` words it), `{"t_ms", "refused": TEXT, "errno"}`,
//! `{"t_ms", "notice": ID, "object", "kind", "message", ...details}`,
//! `{"t_ms", "save_members": {NAME: HELD_MS | null}}`, and `{"t_ms", "effect": NAME}`
//! for the rest (`heartbeat-now`, `heartbeat-restart`, `peer-start`,
//! `peer-stop`, `sync-start`, `sync-stop`, `sync-rekey`, `sync-send bulk`...).
//!
//! Add a scenario: a folder with `config.toml` and `events.jsonl`, run
//! `DAGW_BLESS=1 cargo test --test node_conformance`, then read the
//! written `effects.jsonl` and `status.json` against the seed's rule before
//! committing them: a fixture is a statement of the rule.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use dagw::config::{self, Config, LoadContext};
use dagw::core::action::{Action, KernelError, Outcome, Work};
use dagw::core::heartbeat::{FLAG_DRAINED, FLAG_GOODBYE, Heartbeat};
use dagw::core::ifname::IfName;
use dagw::core::kernel::{Addr, KernelEvent, KernelView, Link, LinkKind};
use dagw::core::member::{HoldMethod, MemberRecord};
use dagw::core::node::{Effect, Event, KernelReport, Node, Start};
use dagw::sync::{Inbound, Outbound};
use serde_json::{Value, json};

#[path = "common/fixtures.rs"]
mod fixtures;
use fixtures::scenarios;

fn parse_config(dir: &Path, file: &str) -> Config {
    let text = fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let ctx = LoadContext {
        hostname: "conformance".into(),
    };
    config::parse_str(&text, &ctx)
        .unwrap_or_else(|d| panic!("{}: {file} invalid: {d:?}", dir.display()))
        .0
}

fn link_of(v: &Value, kernel: &Kernel) -> Link {
    let name = v["name"].as_str().expect("link.name");
    let up = v["up"].as_bool().unwrap_or(true);
    Link {
        index: v["index"]
            .as_u64()
            .map(|i| i as u32)
            .or_else(|| kernel.view.link_by_name(name).map(|l| l.index))
            .expect("link.index (a new link needs one)"),
        name: IfName::new(name).expect("link name"),
        kind: match v["kind"].as_str().unwrap_or("bridge") {
            "bridge" => LinkKind::Bridge,
            "macvlan" => LinkKind::Macvlan,
            "vxlan" => LinkKind::Vxlan,
            _ => LinkKind::Other,
        },
        admin_up: up,
        oper_up: up,
        master: v["master"]
            .as_str()
            .and_then(|m| kernel.view.link_by_name(m).map(|l| l.index)),
        ..Link::default()
    }
}

/// What the kernel holds, as far as the scenario goes: actions are carried
/// out on it the way the kernel would (a created device gets the next free
/// index, is oper-up while admin-up and not protodown).
struct Kernel {
    view: KernelView,
    next_index: u32,
    /// (action name, errno): the kernel refuses actions of that name.
    refuse: Option<(String, i32)>,
}

fn action_name(a: &Action) -> String {
    let debug = format!("{a:?}");
    let name = debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or("")
        .to_string();
    name.to_lowercase()
}

impl Kernel {
    fn carry_out(&mut self, actions: &[Action]) -> (Vec<Outcome>, Option<KernelError>) {
        let mut outcomes = Vec::new();
        for a in actions {
            if let Some((name, errno)) = &self.refuse
                && action_name(a) == *name
            {
                return (
                    outcomes,
                    Some(KernelError {
                        errno: Some(*errno),
                        message: format!("the kernel refused {name}: errno {errno}"),
                    }),
                );
            }
            let mut o = Outcome::default();
            if let Action::CreateDevice {
                gateway,
                name,
                parent,
                mac,
                held,
            } = a
            {
                self.next_index += 1;
                let parent_up = self
                    .view
                    .link(*parent)
                    .is_some_and(|l| l.admin_up && l.oper_up);
                let l = Link {
                    index: self.next_index,
                    name: IfName::new(name).expect("device name"),
                    kind: LinkKind::Macvlan,
                    mac: *mac,
                    // up even when held: protodown keeps it from serving
                    admin_up: true,
                    oper_up: !held && parent_up,
                    protodown: *held,
                    protodown_reason: if *held {
                        dagw::core::kernel::DAGW_PROTODOWN_REASON
                    } else {
                        0
                    },
                    lower: Some(*parent),
                    owner_gateway: IfName::new(gateway),
                    macvlan_mode: Some(4),
                    addr_gen_mode: Some(1),
                    ..Link::default()
                };
                self.view.apply(KernelEvent::Link(l.clone()));
                o.link = Some(l);
            } else {
                a.assume_done(&mut self.view);
                // a device's carrier follows admin state and protodown
                if let Some(i) = a.target()
                    && let Some(mut l) = self.view.link(i).cloned()
                    && l.kind == LinkKind::Macvlan
                {
                    l.oper_up = l.admin_up && !l.protodown;
                    self.view.apply(KernelEvent::Link(l));
                }
            }
            outcomes.push(o);
        }
        (outcomes, None)
    }
}

struct Replay<'a> {
    dir: &'a Path,
    node: Node,
    kernel: Kernel,
    t0: Instant,
    t_ms: u64,
    effects: Vec<Value>,
}

impl Replay<'_> {
    fn now(&self) -> Instant {
        self.t0 + Duration::from_millis(self.t_ms)
    }

    fn feed(&mut self, ev: Event) {
        let now = self.now();
        let fx = self.node.handle(ev, now);
        self.carry_out(fx);
        self.finish_planning();
    }

    /// The daemon gives the node free turns while it has gateways to plan.
    fn finish_planning(&mut self) {
        for _ in 0..100_000 {
            if !self.node.has_more() {
                return;
            }
            let now = self.now();
            let fx = self.node.handle(Event::Continue, now);
            self.carry_out(fx);
        }
        panic!("{}: the node never finished planning", self.dir.display());
    }

    /// Record the effects; kernel work is done at once and reported back,
    /// first handed out, first reported.
    fn carry_out(&mut self, fx: Vec<Effect>) {
        let mut queue: VecDeque<Effect> = fx.into();
        let mut reports = VecDeque::new();
        loop {
            while let Some(e) = queue.pop_front() {
                if let Some(r) = self.record(e) {
                    reports.push_back(r);
                }
            }
            let Some(r) = reports.pop_front() else { break };
            let now = self.now();
            queue.extend(self.node.handle(r, now));
        }
    }

    fn record(&mut self, e: Effect) -> Option<Event> {
        let t = self.t_ms;
        let simple = |name: &str| json!({"t_ms": t, "effect": name});
        match e {
            Effect::Kernel(purpose, Work::Actions(actions)) => {
                let text: Vec<String> = actions
                    .iter()
                    .map(|a| a.describe(&self.kernel.view))
                    .collect();
                let (outcomes, error) = self.kernel.carry_out(&actions);
                self.effects
                    .push(json!({"t_ms": t, "kernel": text, "for": format!("{purpose:?}")}));
                if let Some(e) = &error {
                    self.effects.push(
                        json!({"t_ms": t, "refused": text[outcomes.len()], "errno": e.errno}),
                    );
                }
                Some(Event::Report(KernelReport {
                    purpose,
                    actions,
                    outcomes,
                    error,
                }))
            }
            Effect::Kernel(_, Work::Neighbours(changes)) => {
                self.effects
                    .push(json!({"t_ms": t, "effect": format!("neighbours {}", changes.len())}));
                Some(Event::Neighbours { refused: 0 })
            }
            Effect::Kernel(_, Work::Dump { .. }) => panic!("{}: a re-dump", self.dir.display()),
            Effect::Notice(n) => {
                let mut v = json!({"t_ms": t, "notice": n.id, "object": n.object, "kind": n.kind.as_str(), "message": n.message});
                for (k, x) in n.details {
                    v[k] = x;
                }
                self.effects.push(v);
                None
            }
            Effect::SaveMembers(recs) => {
                let m: BTreeMap<String, Value> = recs
                    .into_iter()
                    .map(|(name, rec, left)| {
                        let held = left.map(|d| d.as_millis() as u64);
                        (
                            name,
                            json!({"method": rec.method.as_str(), "held_ms": held}),
                        )
                    })
                    .collect();
                self.effects.push(json!({"t_ms": t, "save_members": m}));
                None
            }
            Effect::HeartbeatNow => {
                self.effects.push(simple("heartbeat-now"));
                None
            }
            Effect::HeartbeatRestart => {
                self.effects.push(simple("heartbeat-restart"));
                None
            }
            Effect::PeerStart(p) => {
                self.effects
                    .push(json!({"t_ms": t, "effect": "peer-start", "address": p.address.to_string(), "port": p.port}));
                None
            }
            Effect::PeerStop => {
                self.effects.push(simple("peer-stop"));
                None
            }
            Effect::SyncStart => {
                self.effects.push(simple("sync-start"));
                None
            }
            Effect::SyncStop => {
                self.effects.push(simple("sync-stop"));
                None
            }
            Effect::SyncRekey => {
                self.effects.push(simple("sync-rekey"));
                None
            }
            Effect::SyncSend(m) => {
                let what = match m {
                    Outbound::Bulk(v) => format!("sync-send bulk {}", v.len()),
                    Outbound::Add(v) => format!("sync-send add {}", v.len()),
                    Outbound::Delete(v) => format!("sync-send delete {}", v.len()),
                    Outbound::Gateways(v) => format!("sync-send gateways {}", v.len()),
                };
                self.effects.push(simple(&what));
                None
            }
        }
    }

    /// Let time pass to `t_ms`: the node's deadlines fire on the way.
    fn advance(&mut self, to_ms: u64) {
        for _ in 0..10_000 {
            let Some(d) = self.node.next_deadline() else {
                break;
            };
            let at = d.saturating_duration_since(self.t0).as_millis() as u64;
            if at > to_ms {
                break;
            }
            self.t_ms = self.t_ms.max(at);
            self.feed(Event::Timer);
        }
        self.t_ms = self.t_ms.max(to_ms);
    }

    fn heartbeat(&self, v: &Value) -> Heartbeat {
        let mut hb = Heartbeat {
            epoch: v["epoch"].as_u64().unwrap_or(1),
            priority: v["priority"].as_u64().unwrap_or(100) as u8,
            peer_link: match v["peer_link"].as_str().unwrap_or("none") {
                "up" => 1,
                "down" => 2,
                _ => 0,
            },
            page: 0,
            pages: 1,
            ..Default::default()
        };
        hb.node
            .push_str(v["node"].as_str().unwrap_or("peer"))
            .expect("node name");
        for f in v["flags"].as_array().into_iter().flatten() {
            hb.flags |= match f.as_str() {
                Some("drained") => FLAG_DRAINED,
                Some("goodbye") => FLAG_GOODBYE,
                other => panic!("flag {other:?}"),
            };
        }
        // the peer's gateways as ours (a consistent pair), with the
        // differences the scenario names
        let ours = self.node.heartbeat_round();
        if let Some(first) = ours.first() {
            hb.policy = first.policy;
        }
        let differ = &v["gateways"]["differ"];
        for page in &ours {
            for g in &page.gateways {
                let mut g = *g;
                let name = match g.kind {
                    1 => format!("vlanif{}", g.id),
                    _ => format!("vbdif{}", g.id),
                };
                if let Some(ms) = differ[&name]["up_delay_ms"].as_u64() {
                    g.up_delay_ms = ms as u32;
                }
                let _ = hb.gateways.push(g);
            }
        }
        hb
    }

    fn event(&mut self, ev: &Value) {
        if let Some(s) = ev.get("start") {
            let mut view = KernelView::default();
            for l in s["links"].as_array().into_iter().flatten() {
                let link = link_of(l, &self.kernel);
                self.kernel.next_index = self.kernel.next_index.max(link.index);
                self.kernel.view.apply(KernelEvent::Link(link.clone()));
                view.apply(KernelEvent::Link(link));
            }
            let members: HashMap<String, (MemberRecord, Option<Duration>)> = s["members"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, m)| {
                    let method = match m["method"].as_str() {
                        Some("admin-down") => HoldMethod::AdminDown,
                        _ => HoldMethod::Protodown,
                    };
                    let rec = MemberRecord {
                        method,
                        downed_by_dagw: false,
                    };
                    let left = m["left_ms"].as_u64().map(Duration::from_millis);
                    (name.clone(), (rec, left))
                })
                .collect();
            let start = Start {
                view,
                learned: Vec::new(),
                first_start: s["first_start"].as_bool().unwrap_or(false),
                drained: s["drained"].as_bool().unwrap_or(false),
                members,
            };
            let now = self.now();
            let fx = self.node.start(start, now);
            self.carry_out(fx);
            self.finish_planning();
        } else if let Some(l) = ev.get("link") {
            let link = link_of(l, &self.kernel);
            self.kernel.next_index = self.kernel.next_index.max(link.index);
            self.kernel.view.apply(KernelEvent::Link(link.clone()));
            self.feed(Event::Kernel {
                events: vec![KernelEvent::Link(link)],
                drained: true,
            });
        } else if let Some(name) = ev.get("link_gone").and_then(Value::as_str) {
            let index = self
                .kernel
                .view
                .link_by_name(name)
                .expect("link_gone")
                .index;
            self.kernel.view.apply(KernelEvent::LinkGone(index));
            self.feed(Event::Kernel {
                events: vec![KernelEvent::LinkGone(index)],
                drained: true,
            });
        } else if let Some(a) = ev.get("addr_removed") {
            let dev = a["device"].as_str().expect("device");
            let index = self.kernel.view.link_by_name(dev).expect("device").index;
            let (ip, len) = a["addr"]
                .as_str()
                .expect("addr")
                .split_once('/')
                .expect("/len");
            let addr = Addr {
                ip: ip.parse().expect("ip"),
                len: len.parse().expect("len"),
            };
            self.kernel
                .view
                .apply(KernelEvent::AddrRemoved(index, addr));
            self.feed(Event::Kernel {
                events: vec![KernelEvent::AddrRemoved(index, addr)],
                drained: true,
            });
        } else if let Some(h) = ev.get("heartbeat") {
            let hb = self.heartbeat(h);
            self.feed(Event::Heartbeat {
                heartbeat: Box::new(hb),
                rtt: None,
                previous_key_retired: false,
            });
        } else if let Some(file) = ev.get("reload").and_then(Value::as_str) {
            let config = Box::new(parse_config(self.dir, file));
            let keys_changed = ev["keys_changed"].as_bool().unwrap_or(false);
            self.feed(Event::Config {
                config,
                keys_changed,
            });
        } else if let Some(on) = ev.get("drain").and_then(Value::as_bool) {
            self.feed(Event::Drain(on));
        } else if let Some(s) = ev.get("sync") {
            let event = match s {
                Value::String(x) if x == "session" => Event::SyncSession,
                _ if s.get("established").is_some() => Event::SyncMessage(Inbound::Established {
                    peer_name: s["established"].as_str().unwrap_or("peer").into(),
                }),
                _ if s.get("bulk_end").is_some() => Event::SyncMessage(Inbound::BulkEnd {
                    total: s["bulk_end"].as_u64().unwrap_or(0) as u32,
                }),
                _ if s.get("closed").is_some() => Event::SyncMessage(Inbound::Closed(
                    s["closed"].as_str().unwrap_or("closed").into(),
                )),
                other => panic!("sync event {other}"),
            };
            self.feed(event);
        } else if let Some(f) = ev.get("fail") {
            self.kernel.refuse = f["action"]
                .as_str()
                .map(|a| (a.to_lowercase(), f["errno"].as_i64().unwrap_or(95) as i32));
        } else if ev.get("time").is_none() {
            panic!("{}: unknown event {ev}", self.dir.display());
        }
    }
}

/// Replay one scenario; (effects, status).
fn replay(dir: &Path) -> (Vec<Value>, Value) {
    let cfg = parse_config(dir, "config.toml");
    let t0 = Instant::now();
    let mut r = Replay {
        dir,
        node: Node::new(cfg, "conformance".into(), t0),
        kernel: Kernel {
            view: KernelView::default(),
            next_index: 0,
            refuse: None,
        },
        t0,
        t_ms: 0,
        effects: Vec::new(),
    };
    let events = fs::read_to_string(dir.join("events.jsonl")).expect("events.jsonl");
    for (n, line) in events.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ev: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}: events.jsonl:{}: {e}", dir.display(), n + 1));
        let t = ev["t_ms"].as_u64().expect("t_ms");
        r.advance(t);
        r.event(&ev);
    }
    let status = serde_json::to_value(r.node.status(r.now())).expect("status");
    (r.effects, status)
}

#[test]
fn node_scenarios_replay_exactly() {
    let all = scenarios("node-");
    let bless = std::env::var_os("DAGW_BLESS").is_some();
    let mut failed = Vec::new();
    for dir in &all {
        let (effects, status) = replay(dir);
        let effects_text: String = effects.iter().map(|v| format!("{v}\n")).collect();
        let status_text = serde_json::to_string_pretty(&status).unwrap() + "\n";
        if bless {
            fs::write(dir.join("effects.jsonl"), &effects_text).unwrap();
            fs::write(dir.join("status.json"), &status_text).unwrap();
            continue;
        }
        let want_effects = fs::read_to_string(dir.join("effects.jsonl")).unwrap_or_default();
        let want_status: Value = fs::read_to_string(dir.join("status.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null);
        if want_effects != effects_text {
            failed.push(format!(
                "{}: effects differ\n--- expected\n{want_effects}--- actual\n{effects_text}",
                dir.display()
            ));
        }
        if want_status != status {
            failed.push(format!(
                "{}: status differs\n--- expected\n{want_status:#}\n--- actual\n{status_text}",
                dir.display()
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    // issue 10: the seed's rules, at least twenty scenarios of them
    assert!(all.len() >= 20, "only {} node scenarios", all.len());
}
