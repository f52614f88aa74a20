//! Rules that relate several values of a parsed [`Draft`], then construction of
//! the final [`Config`].
//!
//! Per-value checks happened in `parse.rs`; here are the whole-file rules of
//! DESIGN.md §4 and the seed: uniqueness (ids, names, devices, addresses,
//! members), name clashes between what dagw creates and what it only watches,
//! the ordering of delays, and the seed's member up-delay rule (stated once, in
//! `core::rules`, and only called from here). A `Config` is built only when no
//! error was found anywhere in the file.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::time::Duration;

use super::huawei::format_duration;
use super::model::{Config, DelayMode, Gateway, GatewayKind, Mlag, Node, Peer, UpDelayPolicy};
use super::parse::{At, DEFAULT_DYNAMIC_MIN, DEFAULT_MEMBER_MIN_DELAY, Draft, GatewayDraft, Sink};
use crate::core::ifname::IfName;
use crate::core::mac::Mac;
use crate::core::rules;

/// "(default)" marker for messages about values the operator did not write.
fn dflt<T>(a: &At<T>) -> &'static str {
    if a.explicit { "" } else { " (default)" }
}

pub(crate) fn validate(d: Draft, sink: &mut Sink<'_>) -> Option<Config> {
    check_gateway_uniqueness(&d.gateways, sink);
    check_names_do_not_clash(&d, sink);
    check_peer(&d, sink);
    let (min, max) = check_dynamic_bounds(&d, sink);
    let (member_up_delay, member_min_delay) = check_member_delays(&d, max, sink);
    warn(&d, sink);
    if sink.has_errors() {
        return None;
    }
    build(d, min, max, member_up_delay, member_min_delay)
}

fn describe_kind(k: GatewayKind) -> String {
    format!("{} {}", k.kind_str(), k.id())
}

fn check_gateway_uniqueness(gws: &[GatewayDraft], sink: &mut Sink<'_>) {
    let mut kinds: HashMap<GatewayKind, (usize, usize)> = HashMap::new();
    let mut names: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut devices: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut addrs: HashMap<IpAddr, (&str, usize)> = HashMap::new();
    for g in gws {
        if let Some(k) = &g.kind {
            match kinds.entry(k.v) {
                Entry::Occupied(e) => {
                    let (first, at) = *e.get();
                    sink.err(
                        k.at,
                        &k.key,
                        format!(
                            "{} is already configured by gateway[{first}] (line {})",
                            describe_kind(k.v),
                            sink.line(at)
                        ),
                        Some("each VLAN / bridge domain once"),
                    );
                }
                Entry::Vacant(e) => {
                    e.insert((g.index, k.at));
                }
            }
        }
        for (field, map, what) in [
            (&g.name, &mut names, "name"),
            (&g.device, &mut devices, "device"),
        ] {
            let Some(v) = field else { continue };
            match map.entry(v.v.as_str()) {
                Entry::Occupied(e) => {
                    let (first, at) = *e.get();
                    let how = if v.explicit {
                        String::new()
                    } else {
                        match &g.kind {
                            Some(k) => format!(" (the default for {})", describe_kind(k.v)),
                            None => " (default)".into(),
                        }
                    };
                    sink.err(
                        v.at,
                        &v.key,
                        format!(
                            "{what} {:?}{how} is already used by gateway[{first}] (line {})",
                            v.v,
                            sink.line(at)
                        ),
                        Some(&format!("a {what} unique among all gateways")),
                    );
                }
                Entry::Vacant(e) => {
                    e.insert((g.index, v.at));
                }
            }
        }
        let v4 = g.ipv4.iter().map(|a| (IpAddr::V4(a.v.addr), a.at, &a.key));
        let v6 = g.ipv6.iter().map(|a| (IpAddr::V6(a.v.addr), a.at, &a.key));
        for (ip, at, key) in v4.chain(v6) {
            match addrs.entry(ip) {
                Entry::Occupied(e) => {
                    let (first_key, first_at) = *e.get();
                    sink.err(
                        at,
                        key,
                        format!(
                            "address {ip} is already assigned by {first_key} (line {})",
                            sink.line(first_at)
                        ),
                        Some("each address on one gateway, once"),
                    );
                }
                Entry::Vacant(e) => {
                    e.insert((key.as_str(), at));
                }
            }
        }
    }
}

/// dagw creates the gateway devices and only watches interfaces, members, the
/// peer-link and vxlan devices; one name must not play two of these roles.
fn check_names_do_not_clash(d: &Draft, sink: &mut Sink<'_>) {
    let mut members: HashMap<&str, &At<String>> = HashMap::new();
    for m in &d.mlag.members {
        match members.entry(m.v.as_str()) {
            Entry::Occupied(e) => {
                let first = *e.get();
                sink.err(
                    m.at,
                    &m.key,
                    format!(
                        "member {:?} is already listed as {} (line {})",
                        m.v,
                        first.key,
                        sink.line(first.at)
                    ),
                    Some("each member once"),
                );
            }
            Entry::Vacant(e) => {
                e.insert(m);
            }
        }
    }

    // Names dagw must not create a device over, with what they are.
    let mut watched: HashMap<&str, String> = HashMap::new();
    for (name, m) in &members {
        watched.insert(name, format!("an M-LAG member ({})", m.key));
    }
    if let Some(pl) = d.peer.as_ref().and_then(|p| p.peer_link.as_ref()) {
        if let Some(m) = members.get(pl.v.as_str()) {
            sink.err(
                pl.at,
                &pl.key,
                format!(
                    "{:?} is also an M-LAG member ({}); the peer-link must not be held down with the members",
                    pl.v, m.key
                ),
                Some("an interface that is not in mlag.members"),
            );
        }
        watched
            .entry(pl.v.as_str())
            .or_insert_with(|| "the peer-link (peer.peer_link)".into());
    }
    for g in &d.gateways {
        if let Some(i) = &g.interface {
            if let Some(m) = members.get(i.v.as_str()) {
                sink.err(
                    i.at,
                    &i.key,
                    format!(
                        "{:?} is an M-LAG member ({}); a gateway's interface is the SVI of its VLAN / BD, not a member",
                        i.v, m.key
                    ),
                    Some("the SVI, e.g. \"br10\""),
                );
            }
            watched
                .entry(i.v.as_str())
                .or_insert_with(|| format!("the interface of gateway[{}]", g.index));
        }
        if let Some(x) = &g.vxlan {
            watched
                .entry(x.v.device.as_str())
                .or_insert_with(|| format!("the vxlan device of gateway[{}]", g.index));
        }
    }
    for g in &d.gateways {
        let Some(dev) = &g.device else { continue };
        if let Some(what) = watched.get(dev.v.as_str()) {
            let how = if dev.explicit { "" } else { " (default)" };
            sink.err(
                dev.at,
                &dev.key,
                format!(
                    "device {:?}{how} is {what}; dagw creates its own macvlan under this name and must not take over an existing interface",
                    dev.v
                ),
                Some("a name used by no other interface, e.g. \"gw10\""),
            );
        }
    }
}

fn check_peer(d: &Draft, sink: &mut Sink<'_>) {
    let Some(p) = &d.peer else { return };
    if let (Some(key), Some(prev)) = (&p.key_file, &p.previous_key_file)
        && key.v == prev.v
    {
        sink.err(
            prev.at,
            &prev.key,
            format!(
                "{} is also peer.key_file{}; the previous key must be a different file",
                prev.v.display(),
                dflt(key)
            ),
            Some("the old key's file, different from key_file"),
        );
    }
    let (Some(local), Some(address)) = (&p.local, &p.address) else {
        return;
    };
    if local.v == address.v {
        sink.err(
            address.at,
            &address.key,
            format!(
                "{} is also peer.local; address must be the peer's own address",
                address.v
            ),
            Some("the peer's address, different from peer.local"),
        );
    } else if local.v.is_ipv4() != address.v.is_ipv4() {
        sink.err(
            address.at,
            &address.key,
            format!(
                "{} and peer.local {} are of different address families",
                address.v, local.v
            ),
            Some("both IPv4 or both IPv6"),
        );
    }
}

/// Effective dynamic bounds: `(min, max)`, None where unusable. An unwritten
/// min defaults to 1 s but never above max, so that setting only `max = "0s"`
/// is not an error about a value the operator never wrote.
fn check_dynamic_bounds(d: &Draft, sink: &mut Sink<'_>) -> (Option<Duration>, Option<Duration>) {
    let ud = &d.up_delay;
    let max = ud.max.as_ref().map(|m| m.v);
    let min = match (&ud.min, &ud.max) {
        (Some(min), Some(mx)) if min.v > mx.v => {
            sink.err(
                min.at,
                &min.key,
                format!(
                    "min {} is longer than max {}{}",
                    format_duration(min.v),
                    format_duration(mx.v),
                    dflt(mx)
                ),
                Some(&format!("at most {}", format_duration(mx.v))),
            );
            None
        }
        (Some(min), _) => Some(min.v),
        (None, _) => Some(DEFAULT_DYNAMIC_MIN.min(max.unwrap_or(DEFAULT_DYNAMIC_MIN))),
    };
    (min, max)
}

/// The seed's member rule and the dynamic floor; returns the effective
/// `(member_up_delay, member_min_delay)`.
fn check_member_delays(
    d: &Draft,
    dynamic_max: Option<Duration>,
    sink: &mut Sink<'_>,
) -> (Option<Duration>, Option<Duration>) {
    let Some(mud) = &d.mlag.member_up_delay else {
        return (None, None);
    };
    // The L3 holds that members must outlast, and what each is. Static mode:
    // every gateway's up_delay. Dynamic mode: the dynamic max, and every
    // gateway's static up_delay too — without a peer each gateway falls back
    // to it, and members released before it would meet the seed's ND Miss case.
    let longest_gateway = d
        .gateways
        .iter()
        .filter_map(|g| g.up_delay.as_ref().map(|a| (g, a)))
        .max_by_key(|(_, a)| a.v)
        .map(|(g, a)| {
            let name = g.name.as_ref().map_or_else(
                || {
                    g.kind
                        .as_ref()
                        .map(|k| format!("{}{}", k.v.kind_str(), k.v.id()))
                        .unwrap_or_default()
                },
                |n| n.v.clone(),
            );
            (
                a.v,
                format!(
                    "{} {}{} (gateway {name})",
                    a.key,
                    format_duration(a.v),
                    dflt(a)
                ),
            )
        });
    let mut holds: Vec<(Duration, String)> = Vec::new();
    if d.up_delay.mode == DelayMode::Dynamic
        && let Some(hold) = dynamic_max
            .zip(d.up_delay.max.as_ref())
            .map(|(m, a)| (m, format!("up_delay.max {}{}", format_duration(m), dflt(a))))
    {
        holds.push(hold);
    }
    if let Some((l3, what)) = longest_gateway {
        let what = if d.up_delay.mode == DelayMode::Dynamic {
            format!("{what}, the static fallback of dynamic mode without a peer")
        } else {
            what
        };
        holds.push((l3, what));
    }
    for (l3, what) in holds {
        if rules::member_up_delay_exceeds_l3_up_delay(mud.v, l3) {
            continue;
        }
        sink.err(
            mud.at,
            &mud.key,
            format!(
                "member_up_delay {}{} is not longer than {what}; members would carry traffic before the gateway's ARP/ND entries are synchronized",
                format_duration(mud.v),
                dflt(mud)
            ),
            Some(&format!("longer than {}", format_duration(l3))),
        );
    }
    let min = match &d.mlag.member_min_delay {
        Some(m) if m.v > mud.v => {
            sink.err(
                m.at,
                &m.key,
                format!(
                    "member_min_delay {} is longer than member_up_delay {}{}, which caps it",
                    format_duration(m.v),
                    format_duration(mud.v),
                    dflt(mud)
                ),
                Some(&format!("at most {}", format_duration(mud.v))),
            );
            None
        }
        Some(m) => Some(m.v),
        // Unwritten: 30 s, but never above the cap the operator set.
        None => Some(DEFAULT_MEMBER_MIN_DELAY.min(mud.v)),
    };
    (Some(mud.v), min)
}

fn warn(d: &Draft, sink: &mut Sink<'_>) {
    if let Some(mud) = &d.mlag.member_up_delay
        && mud.v < rules::ADVISED_MIN_MEMBER_UP_DELAY
    {
        sink.warn(
            mud.at,
            &mud.key,
            format!(
                "member_up_delay {} is shorter than the advised 30s; a restart or peer-link recovery may cause spanning-tree flapping",
                format_duration(mud.v)
            ),
            Some("30s or longer advised"),
        );
    }
    // Once per distinct vMAC: one MAC shared by all gateways is common and a
    // warning per gateway would bury everything else.
    let mut seen: HashMap<Mac, ()> = HashMap::new();
    for g in &d.gateways {
        let Some(mac) = &g.mac else { continue };
        if mac.v.is_vrrp_range() || seen.insert(mac.v, ()).is_some() {
            continue;
        }
        sink.warn(
            mac.at,
            &mac.key,
            format!("{} is outside the advised virtual MAC range", g.mac_text),
            Some("0000-5e00-01XX or 0000-5e00-02XX advised"),
        );
    }
    if d.gateways.is_empty() {
        sink.warn(
            d.gateways_at,
            "gateway",
            "no [[gateway]] configured; dagw will only hold M-LAG members",
            None,
        );
    }
}

fn build(
    d: Draft,
    min: Option<Duration>,
    max: Option<Duration>,
    member_up_delay: Option<Duration>,
    member_min_delay: Option<Duration>,
) -> Option<Config> {
    let peer = match d.peer {
        Some(p) => Some(Peer {
            local: p.local?.v,
            address: p.address?.v,
            port: p.port,
            interval: p.interval,
            multiplier: p.multiplier,
            key_file: p.key_file?.v,
            previous_key_file: p.previous_key_file.map(|k| k.v),
            priority: p.priority,
            peer_link: p.peer_link.map(|l| l.v),
            strict: p.strict,
            max_synced: p.max_synced,
            max_synced_per_gateway: p.max_synced_per_gateway,
            neighbour_aging: p.neighbour_aging,
        }),
        None => None,
    };
    let mut gateways = Vec::with_capacity(d.gateways.len());
    for g in d.gateways {
        gateways.push(Gateway {
            // every name was checked to fit a Linux interface name
            name: IfName::new(&g.name?.v)?,
            kind: g.kind?.v,
            interface: IfName::new(&g.interface?.v)?,
            mac: g.mac?.v,
            ipv4: g.ipv4.into_iter().map(|a| a.v).collect(),
            ipv6: g.ipv6.into_iter().map(|a| a.v).collect(),
            ipv6_enabled: g.ipv6_enabled,
            up_delay: g.up_delay?.v,
            device: IfName::new(&g.device?.v)?,
            vxlan: g.vxlan.map(|x| Box::new(x.v)),
        });
    }
    Some(Config {
        node: Node {
            name: d.node.name,
            platform: d.node.platform,
            socket: d.node.socket,
            state_dir: d.node.state_dir,
        },
        peer,
        mlag: Mlag {
            members: d.mlag.members.into_iter().map(|m| m.v).collect(),
            member_up_delay: member_up_delay?,
            member_min_delay: member_min_delay?,
        },
        up_delay: UpDelayPolicy {
            mode: d.up_delay.mode,
            min: min?,
            max: max?,
        },
        metrics: d.metrics,
        gateways,
    })
}
