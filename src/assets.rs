//! Man pages and shell completions, generated — never kept by hand: `dagw(8)`
//! and the completions from the clap definitions, `dagw.toml(5)` from the key
//! table beside the config parser ([`crate::config::reference`]).
//! `dagw generate-assets DIR` (hidden) writes them; packaging calls it.

use std::io;
use std::path::{Path, PathBuf};

use clap_complete::Shell;
use roff::{Roff, bold, italic, roman};

use crate::config::reference::{KEYS, KeyDoc, SECTIONS, Status};

const MANUAL: &str = "dagw manual";

/// Writes `man/dagw.8`, `man/dagw.toml.5` and `completions/{dagw.bash,_dagw,dagw.fish}`
/// under `dir`; returns the files written.
pub fn write_all(dir: &Path, cmd: clap::Command, version: &str) -> io::Result<Vec<PathBuf>> {
    let man = dir.join("man");
    let comp = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let mut written = Vec::new();
    let mut put = |path: PathBuf, bytes: &[u8]| -> io::Result<()> {
        std::fs::write(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    put(man.join("dagw.8"), &command_man_page(cmd.clone(), version)?)?;
    put(man.join("dagw.toml.5"), config_man_page(version).as_bytes())?;
    for (shell, name) in [
        (Shell::Bash, "dagw.bash"),
        (Shell::Zsh, "_dagw"),
        (Shell::Fish, "dagw.fish"),
    ] {
        let mut buf = Vec::new();
        let mut c = cmd.clone();
        clap_complete::generate(shell, &mut c, "dagw", &mut buf);
        put(comp.join(name), &buf)?;
    }
    Ok(written)
}

/// `dagw(8)`: clap_mangen's page of the top level, then each subcommand's
/// synopsis, description and options, then FILES and SEE ALSO.
pub fn command_man_page(cmd: clap::Command, version: &str) -> io::Result<Vec<u8>> {
    let mut cmd = cmd;
    cmd.build();
    let mut out = Vec::new();
    let top = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual(MANUAL)
        .source(format!("dagw {version}"));
    top.render_title(&mut out)?;
    top.render_name_section(&mut out)?;
    top.render_synopsis_section(&mut out)?;
    top.render_description_section(&mut out)?;
    top.render_options_section(&mut out)?;
    // clap_mangen's own subcommand list points at dagw-SUB(8) pages that do
    // not exist: each subcommand is described here instead.
    let mut r = Roff::new();
    r.control("SH", ["COMMANDS"]);
    out.extend_from_slice(r.render().as_bytes());
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let full = format!("dagw {}", sub.get_name());
        let mut r = Roff::new();
        r.control("SS", [full.as_str()]);
        out.extend_from_slice(r.render().as_bytes());
        let page = clap_mangen::Man::new(sub.clone().display_name(full.clone()).bin_name(full));
        let mut part = Vec::new();
        page.render_synopsis_section(&mut part)?;
        page.render_description_section(&mut part)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            page.render_options_section(&mut part)?;
        }
        // Inside a subsection the parts' headings become plain paragraphs.
        let part = String::from_utf8_lossy(&part)
            .replace(".SH SYNOPSIS\n", ".P\n")
            .replace(".SH DESCRIPTION\n", ".P\n")
            .replace(".SH OPTIONS\n", ".P\n.I Options:\n");
        out.extend_from_slice(part.as_bytes());
    }
    top.render_version_section(&mut out)?;
    let mut r = Roff::new();
    r.control("SH", ["FILES"])
        .control("TP", [])
        .text([bold("/etc/dagw/dagw.toml")])
        .text([roman("The configuration; see "), bold("dagw.toml"), roman("(5).")])
        .control("TP", [])
        .text([bold("/etc/dagw/peer.key")])
        .text([roman("The peer heartbeat secret (mode 0600), the same on both switches.")])
        .control("TP", [])
        .text([bold("/run/dagw/dagw.sock")])
        .text([roman("The control socket of status, reload and monitor.")])
        .control("SH", ["EXIT STATUS"])
        .text([roman(
            "0 on success (check: valid, warnings allowed); 1 on an invalid configuration, a refused reload or a failed request; 2 on a usage error.",
        )])
        .control("SH", ["SEE ALSO"])
        .text([
            bold("dagw.toml"),
            roman("(5), "),
            bold("systemctl"),
            roman("(1), "),
            bold("journalctl"),
            roman("(1)"),
        ]);
    out.extend_from_slice(r.render().as_bytes());
    Ok(out)
}

fn key_entry(r: &mut Roff, d: &KeyDoc) {
    r.control("TP", [])
        .text([bold(d.key)])
        .text([roman(d.doc)])
        .control("br", [])
        .text([italic("Default:"), roman(format!(" {}", d.default))])
        .control("br", [])
        .text([italic("Range:"), roman(format!(" {}", d.range))]);
}

/// `dagw.toml(5)`: every key of DESIGN.md §4 with its default and range.
pub fn config_man_page(version: &str) -> String {
    let source = format!("dagw {version}");
    let mut r = Roff::new();
    r.control("TH", ["DAGW.TOML", "5", "", source.as_str(), MANUAL])
        .control("SH", ["NAME"])
        .text([roman("dagw.toml - configuration of the dagw dual-active gateway agent")])
        .control("SH", ["SYNOPSIS"])
        .text([bold("/etc/dagw/dagw.toml")])
        .control("SH", ["DESCRIPTION"])
        .text([roman(
            "A TOML file read by dagw run, check and reload. It is validated whole: dagw check reports every problem as FILE:LINE:COL: error: KEY: what is wrong (allowed: ...), and a reload applies the whole file or nothing. Unknown keys are refused.",
        )])
        .control("P", [])
        .text([roman(
            "Durations are written \"250ms\", \"30s\", \"5m\", \"1h\", or as whole seconds (3 or \"3\"). MAC addresses in the Huawei form 0000-5e00-0101 or as 00:00:5e:00:01:01. Validation also refuses: duplicate gateway ids, names, devices or IP addresses (gateways may share one vMAC); multicast, broadcast or zero MACs; IPv6 or VBDIF where the platform forbids them; vbdif without vxlan, vxlan on a vlanif; member_up_delay not longer than every gateway's up_delay (dynamic mode: than max as well); min greater than max. It warns (dagw check still exits 0) for member_up_delay under 30s, a vMAC outside 0000-5e00-01XX / 0000-5e00-02XX, and no gateways at all.",
        )]);
    r.control("SH", ["TOP LEVEL"]);
    for d in KEYS
        .iter()
        .filter(|d| d.section.is_empty() && d.status == Status::Accepted)
    {
        key_entry(&mut r, d);
    }
    for (section, about) in SECTIONS {
        let keys: Vec<&KeyDoc> = KEYS
            .iter()
            .filter(|d| d.section == *section && d.status == Status::Accepted)
            .collect();
        if keys.is_empty() {
            continue;
        }
        let title = match *section {
            "gateway" => "[[gateway]]".to_string(),
            "gateway.vxlan" => "[[gateway]] vxlan = { ... }".to_string(),
            s => format!("[{s}]"),
        };
        r.control("SH", [title.as_str()]).text([roman(*about)]);
        for d in keys {
            key_entry(&mut r, d);
        }
    }
    // Grouped by table: a table's own entry, then its keys, in SECTIONS order.
    let table_of = |d: &KeyDoc| {
        if d.section.is_empty() {
            d.key
        } else {
            d.section
        }
    };
    let order = |d: &KeyDoc| {
        let table = SECTIONS.iter().position(|(s, _)| *s == table_of(d));
        (table.unwrap_or(usize::MAX), !d.section.is_empty())
    };
    let mut pending: Vec<&KeyDoc> = KEYS.iter().filter(|d| d.status == Status::NotYet).collect();
    pending.sort_by_key(|d| order(d));
    if !pending.is_empty() {
        r.control("SH", ["CONTRACT KEYS NOT YET ACCEPTED BY THIS BUILD"])
            .text([roman(
                "The design contract names these keys; this version of dagw refuses them as unknown.",
            )]);
        for d in pending {
            let full = if d.section.is_empty() {
                format!("[{}]", d.key)
            } else {
                format!("[{}] {}", d.section, d.key)
            };
            r.control("TP", []).text([bold(full)]);
            r.text([roman(d.doc)])
                .control("br", [])
                .text([italic("Default:"), roman(format!(" {}", d.default))])
                .control("br", [])
                .text([italic("Range:"), roman(format!(" {}", d.range))]);
        }
    }
    r.control("SH", ["EXAMPLE"]).control("nf", []);
    for line in EXAMPLE.lines() {
        r.text([roman(line)]);
    }
    r.control("fi", [])
        .control("SH", ["SEE ALSO"])
        .text([bold("dagw"), roman("(8)")]);
    r.render()
}

const EXAMPLE: &str = r#"[node]
name = "leaf1a"

[peer]
local = "203.0.113.1"
address = "203.0.113.2"
key_file = "/etc/dagw/peer.key"
priority = 110
peer_link = "peerlink"

[mlag]
members = ["bond1", "bond2"]
member_up_delay = "240s"

[[gateway]]
vlanif = 10
interface = "br10"
mac = "0000-5e00-0101"
ipv4 = ["192.0.2.1/24", "192.0.2.129 255.255.255.128 sub"]
ipv6 = ["2001:db8:10::1/64", "2001:db8:11::/64 eui-64"]
up_delay = "1s"

[[gateway]]
vbdif = 5010
interface = "br5010"
mac = "0000-5e00-0101"
ipv4 = ["198.51.100.1/24"]
vxlan = { device = "vxlan5010", bypass_vtep = "203.0.113.2" }"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_page_names_every_documented_key_with_default_and_range() {
        let page = config_man_page("0.0.0");
        for d in KEYS {
            assert!(page.contains(d.key), "{}", d.key);
            assert!(
                page.contains(d.default) || d.default.is_empty(),
                "{}",
                d.key
            );
        }
        assert_eq!(
            page.matches("Range:").count(),
            KEYS.len(),
            "one Range line per key"
        );
    }

    #[test]
    fn the_example_is_a_valid_config() {
        let ctx = crate::config::LoadContext {
            hostname: "h".into(),
        };
        let r = crate::config::parse_str(EXAMPLE, &ctx);
        assert!(r.is_ok(), "{r:?}");
    }
}
