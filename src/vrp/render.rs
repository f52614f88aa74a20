//! The mapped VRP parts → dagw TOML (DESIGN.md §4), with the naming options
//! deciding which Linux interface stands for which VRP one.

use std::fmt::Write;
use std::net::IpAddr;

use super::parse::{Lined, Svi, SviKind, Trunk, Vrp};
use super::{Finding, Options, Severity};
use crate::config::huawei;

/// A TOML basic string.
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// "line 3" / "lines 3, 4".
fn line_list(lines: &[usize]) -> String {
    let l: Vec<String> = lines.iter().map(usize::to_string).collect();
    let word = if l.len() == 1 { "line" } else { "lines" };
    format!("{word} {}", l.join(", "))
}

/// `{id}` in `template` replaced by `id`, unless `renames` names the VRP
/// interface explicitly.
pub fn linux_name(template: &str, renames: &[(String, String)], vrp_name: &str, id: u32) -> String {
    renames
        .iter()
        .find(|(from, _)| from.eq_ignore_ascii_case(vrp_name))
        .map(|(_, to)| to.clone())
        .unwrap_or_else(|| template.replace("{id}", &id.to_string()))
}

struct Out {
    text: String,
    findings: Vec<Finding>,
}

impl Out {
    fn finding(&mut self, line: usize, severity: Severity, message: String) {
        self.findings.push(Finding {
            line,
            severity,
            message,
            text: String::new(),
        });
    }
    /// A block of lines, commented out when `active` is false.
    fn block(&mut self, lines: &[String], active: bool) {
        for l in lines {
            if active || l.is_empty() {
                self.text.push_str(l);
            } else if l.starts_with('#') {
                let _ = write!(self.text, "#{l}");
            } else {
                let _ = write!(self.text, "# {l}");
            }
            self.text.push('\n');
        }
    }
}

/// A Linux interface name from an option, checked where it was derived.
fn checked_name(out: &mut Out, line: usize, what: &str, name: String) -> Option<String> {
    match huawei::check_netdev_name(&name) {
        Ok(()) => Some(name),
        Err(e) => {
            out.finding(
                line,
                Severity::Error,
                format!(
                    "{what}: {} (allowed: {}); change the naming option or add --rename",
                    e.message,
                    e.allowed.unwrap_or_default()
                ),
            );
            None
        }
    }
}

pub fn render(vrp: &Vrp, opts: &Options) -> (String, Vec<Finding>) {
    let mut out = Out {
        text: String::new(),
        findings: Vec::new(),
    };
    let _ = writeln!(
        out.text,
        "# dagw configuration imported by `dagw import-vrp` from {}.",
        opts.source
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect::<String>()
    );
    out.text.push_str(
        "# Review it, then validate with `dagw check -c FILE`. Every VRP line that was\n\
         # not mapped was listed on stderr with its line number. The same gateways\n\
         # (addresses, virtual MAC, delays) must be configured on both switches.\n",
    );

    node(&mut out, vrp);
    let members = mlag_members(&mut out, vrp, opts);
    peer(&mut out, vrp, opts);
    mlag(&mut out, vrp, &members);
    for svi in &vrp.svis {
        gateway(&mut out, vrp, svi, opts);
    }
    if vrp.svis.is_empty() {
        out.finding(
            0,
            Severity::Warning,
            "no interface Vlanif / Vbdif found: the configuration has no gateways".into(),
        );
    }
    (out.text, out.findings)
}

fn node(out: &mut Out, vrp: &Vrp) {
    out.text.push_str("\n[node]\n");
    match &vrp.sysname {
        Some(s) => {
            let _ = writeln!(out.text, "name = {}  # sysname, line {}", q(&s.v), s.line);
        }
        None => out
            .text
            .push_str("# name: the hostname (no sysname in the VRP text)\n"),
    }
    out.text
        .push_str("platform = \"generic\"  # set the CE model if it restricts VXLAN or IPv6\n");
}

/// The M-LAG member trunks' Linux names (VRP order), with their delays.
fn mlag_members<'a>(out: &mut Out, vrp: &'a Vrp, opts: &Options) -> Vec<(&'a Trunk, String)> {
    let mut members = Vec::new();
    for t in &vrp.trunks {
        match &t.mlag {
            Some(m) => {
                if let Some(d) = &vrp.dfs
                    && d.id != m.v.0
                {
                    out.finding(
                        m.line,
                        Severity::Warning,
                        format!(
                            "{} is in dfs-group {}, but the DFS group configured is {} (line {}); imported as a member anyway",
                            t.vrp_name(),
                            m.v.0,
                            d.id,
                            d.line
                        ),
                    );
                }
                let name = linux_name(&opts.trunk_interface, &opts.renames, &t.vrp_name(), t.id);
                if let Some(n) = checked_name(out, t.line, &t.vrp_name(), name) {
                    members.push((t, n));
                }
            }
            None => {
                if let Some(d) = &t.up_delay {
                    out.finding(
                        d.line,
                        Severity::Warning,
                        format!(
                            "{}: m-lag up-delay on a trunk without `dfs-group … m-lag …`: not mapped",
                            t.vrp_name()
                        ),
                    );
                }
            }
        }
    }
    members
}

fn peer(out: &mut Out, vrp: &Vrp, opts: &Options) {
    let peer_links: Vec<&Trunk> = vrp
        .trunks
        .iter()
        .filter(|t| t.peer_link.is_some())
        .collect();
    for extra in peer_links.iter().skip(1) {
        out.finding(
            extra.line,
            Severity::Warning,
            format!(
                "{}: a second peer-link; only {} is imported",
                extra.vrp_name(),
                peer_links[0].vrp_name()
            ),
        );
    }
    let Some(dfs) = &vrp.dfs else {
        out.text
            .push_str("\n# No dfs-group in the VRP text: no [peer], dagw runs standalone.\n");
        if let Some(pl) = peer_links.first() {
            out.finding(
                pl.line,
                Severity::Warning,
                format!(
                    "{}: peer-link without a dfs-group: not mapped ([peer] needs the heartbeat addresses)",
                    pl.vrp_name()
                ),
            );
        }
        return;
    };
    let mut lines = vec![
        String::new(),
        format!("[peer]  # dfs-group {}, line {}", dfs.id, dfs.line),
    ];
    let mut active = true;
    match &dfs.source {
        Some(s) => lines.push(format!(
            "local = {}  # source ip, line {}",
            q(&s.v.to_string()),
            s.line
        )),
        None => {
            active = false;
            lines.push("local = \"\"  # no `source ip` in the dfs-group".into());
            out.finding(
                dfs.line,
                Severity::Warning,
                "dfs-group without `source ip`: [peer] is written commented out; fill in local"
                    .into(),
            );
        }
    }
    match &dfs.peer {
        Some(p) => lines.push(format!(
            "address = {}  # source ip … peer, line {}",
            q(&p.v.to_string()),
            p.line
        )),
        None => {
            active = false;
            lines.push("address = \"\"  # no `peer` in the dfs-group's source ip".into());
            out.finding(
                dfs.source.as_ref().map_or(dfs.line, |s| s.line),
                Severity::Warning,
                "dfs-group without a peer address (`source ip A peer B`): [peer] is written commented out; fill in address".into(),
            );
        }
    }
    if let Some(p) = &dfs.priority {
        lines.push(format!("priority = {}  # line {}", p.v, p.line));
    }
    if let Some(pl) = peer_links.first() {
        let name = linux_name(&opts.trunk_interface, &opts.renames, &pl.vrp_name(), pl.id);
        if let Some(n) = checked_name(out, pl.line, &pl.vrp_name(), name) {
            let line = pl.peer_link.as_ref().map_or(pl.line, |x| x.line);
            lines.push(format!(
                "peer_link = {}  # {} peer-link, line {line}",
                q(&n),
                pl.vrp_name()
            ));
        }
    }
    match &opts.key_file {
        Some(k) => lines.push(format!("key_file = {}", q(k))),
        None => {
            active = false;
            lines.push(
                "key_file = \"/etc/dagw/peer.key\"  # the same secret on both switches, mode 0600"
                    .into(),
            );
            out.finding(
                dfs.line,
                Severity::Warning,
                "[peer] is written commented out: dagw's heartbeat needs a key file (>= 16 bytes, mode 0600, the same on both switches), e.g. head -c 32 /dev/urandom | base64 > /etc/dagw/peer.key; chmod 600 /etc/dagw/peer.key; then import again with --key-file /etc/dagw/peer.key".into(),
            );
        }
    }
    out.block(&lines, active);
}

fn mlag(out: &mut Out, vrp: &Vrp, members: &[(&Trunk, String)]) {
    if members.is_empty() {
        out.text
            .push_str("\n# No Eth-Trunk with `dfs-group … m-lag …`: no M-LAG members.\n");
        if !vrp.trunks.is_empty() || vrp.dfs.is_some() {
            out.finding(
                0,
                Severity::Warning,
                "no M-LAG member interface (Eth-Trunk with `dfs-group N m-lag M`) found".into(),
            );
        }
        return;
    }
    out.text.push_str("\n[mlag]\n");
    let names: Vec<String> = members.iter().map(|(_, n)| n.clone()).collect();
    let origin: Vec<String> = members
        .iter()
        .map(|(t, _)| {
            format!(
                "{} (line {})",
                t.vrp_name(),
                t.mlag.as_ref().map_or(t.line, |m| m.line)
            )
        })
        .collect();
    let _ = writeln!(
        out.text,
        "members = {}  # {}",
        list(&names),
        origin.join(", ")
    );
    // dagw has one member up-delay: the longest one keeps every member's hold.
    let delays: Vec<&Lined<u32>> = members
        .iter()
        .filter_map(|(t, _)| t.up_delay.as_ref())
        .collect();
    if let Some(longest) = delays.iter().max_by_key(|d| d.v) {
        for d in &delays {
            if d.v != longest.v {
                out.finding(
                    d.line,
                    Severity::Warning,
                    format!(
                        "m-lag up-delay {} differs from line {} ({}); dagw has one member_up_delay, the longest ({}s) is imported",
                        d.v, longest.line, longest.v, longest.v
                    ),
                );
            }
        }
        let _ = writeln!(
            out.text,
            "member_up_delay = \"{}s\"  # m-lag up-delay, line {}",
            longest.v, longest.line
        );
        if delays.len() < members.len() {
            out.finding(
                longest.line,
                Severity::Warning,
                format!(
                    "some members have no m-lag up-delay (VRP default 240s); dagw applies {}s to all",
                    longest.v
                ),
            );
        }
    } else {
        out.text
            .push_str("# member_up_delay: 240s, the VRP default (no m-lag up-delay in the text)\n");
    }
}

fn gateway(out: &mut Out, vrp: &Vrp, svi: &Svi, opts: &Options) {
    let name = svi.vrp_name();
    let mut active = true;
    let mut lines = vec![
        String::new(),
        format!("# interface {name}, line {}", svi.line),
        "[[gateway]]".into(),
        format!("{} = {}", svi.kind.key(), svi.id),
    ];
    let template = match svi.kind {
        SviKind::Vlanif => &opts.vlanif_interface,
        SviKind::Vbdif => &opts.vbdif_interface,
    };
    let ifname = linux_name(template, &opts.renames, &name, svi.id);
    match checked_name(out, svi.line, &name, ifname.clone()) {
        Some(n) => lines.push(format!("interface = {}", q(&n))),
        None => {
            active = false;
            lines.push(format!("interface = {}", q(&ifname)));
        }
    }
    match &svi.mac {
        Some(m) => lines.push(format!("mac = {}  # line {}", q(&m.v), m.line)),
        None => {
            active = false;
            lines.push("mac = \"\"  # no mac-address in the VRP text".into());
            out.finding(
                svi.line,
                Severity::Warning,
                format!(
                    "{name} has no mac-address (it uses the system MAC): a dual-active gateway needs the same virtual MAC on both switches; written commented out"
                ),
            );
        }
    }
    let mut v4: Vec<String> = svi.ipv4.iter().map(|a| a.v.text.clone()).collect();
    if let Some(first) = svi.ipv4.first()
        && first.v.sub
    {
        out.finding(
            first.line,
            Severity::Warning,
            format!("{name} has sub addresses but no primary: the first sub address is imported as the primary"),
        );
        let words: Vec<&str> = first.v.text.split_whitespace().collect();
        v4[0] = words[..words.len().saturating_sub(1)].join(" ");
    }
    if !v4.is_empty() {
        let from: Vec<usize> = svi.ipv4.iter().map(|a| a.line).collect();
        lines.push(format!("ipv4 = {}  # {}", list(&v4), line_list(&from)));
    }
    if !svi.ipv6.is_empty() {
        let v6: Vec<String> = svi.ipv6.iter().map(|a| a.v.clone()).collect();
        let from: Vec<usize> = svi.ipv6.iter().map(|a| a.line).collect();
        lines.push(format!("ipv6 = {}  # {}", list(&v6), line_list(&from)));
        if svi.ipv6_enable.is_none() {
            out.finding(
                svi.ipv6[0].line,
                Severity::Warning,
                format!("{name}: ipv6 address without `ipv6 enable` (inactive in VRP); imported, and dagw enables IPv6 on the gateway"),
            );
        }
    } else if let Some(l) = svi.ipv6_enable {
        out.finding(
            l,
            Severity::Warning,
            format!("{name}: `ipv6 enable` without a global address is not mapped: dagw enables IPv6 (and the link-local address) on gateways that have an ipv6 address"),
        );
    }
    if v4.is_empty() && svi.ipv6.is_empty() {
        out.finding(
            svi.line,
            Severity::Warning,
            format!("{name} has no IP address: imported with its MAC only"),
        );
    }
    if let Some(d) = &svi.up_delay {
        lines.push(format!(
            "up_delay = \"{}s\"  # protocol up-delay-time, line {}",
            d.v, d.line
        ));
    }
    if svi.kind == SviKind::Vbdif {
        let device = linux_name(&opts.vxlan_device, &[], &name, svi.id);
        let device = checked_name(
            out,
            svi.line,
            &format!("{name} vxlan device"),
            device.clone(),
        )
        .unwrap_or_else(|| {
            active = false;
            device
        });
        let vtep: Option<(IpAddr, String)> = match (
            opts.bypass_vtep,
            vrp.dfs.as_ref().and_then(|d| d.peer.as_ref()),
        ) {
            (Some(v), _) => Some((v, "--bypass-vtep".into())),
            (None, Some(p)) => Some((
                p.v,
                format!(
                    "the DFS peer address, line {}; set --bypass-vtep if its VTEP differs",
                    p.line
                ),
            )),
            (None, None) => None,
        };
        match vtep {
            Some((v, from)) => lines.push(format!(
                "vxlan = {{ device = {}, bypass_vtep = {} }}  # bypass_vtep: {from}",
                q(&device),
                q(&v.to_string())
            )),
            None => {
                active = false;
                lines.push(format!(
                    "vxlan = {{ device = {}, bypass_vtep = \"\" }}",
                    q(&device)
                ));
                out.finding(
                    svi.line,
                    Severity::Warning,
                    format!("{name}: a VBDIF gateway needs the peer's VTEP for the bypass tunnel; no DFS peer address and no --bypass-vtep: written commented out"),
                );
            }
        }
    }
    out.block(&lines, active);
}
