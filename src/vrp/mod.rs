//! `dagw import-vrp`: Huawei VRP configuration text (`display
//! current-configuration` output or a saved / typed config) → a dagw TOML
//! config (DESIGN.md §3, §4).
//!
//! Pure: text in, text and findings out; the command line reads the file and
//! prints. What is mapped:
//!
//! | VRP | dagw |
//! | --- | --- |
//! | `sysname` | `[node] name` |
//! | `interface Vlanif N` / `interface Vbdif N` | `[[gateway]] vlanif` / `vbdif`, `interface` by `--vlanif-interface` / `--vbdif-interface` |
//! | `ip address A MASK\|LEN [sub]` | `ipv4` (as written; primary first) |
//! | `ipv6 enable`, `ipv6 address X/LEN\|X LEN [eui-64]` | `ipv6` (as written) |
//! | `mac-address` | `mac` |
//! | `protocol up-delay-time T` | `up_delay` |
//! | `interface Eth-Trunk N` + `dfs-group G m-lag M` | `[mlag] members`, named by `--trunk-interface` |
//! | `m-lag up-delay V` | `[mlag] member_up_delay` (the longest) |
//! | `peer-link N` (under an Eth-Trunk) | `[peer] peer_link` |
//! | `dfs-group N`: `source ip A peer B`, `priority P` | `[peer] local`, `address`, `priority` |
//!
//! Every other line is a finding with its line number; structure (`#`,
//! `quit`, `return`, `system-view`, `commit`, `!` comments, blank lines) is not.

mod parse;
mod render;

use std::net::IpAddr;

pub use parse::{MAX_INPUT_BYTES, Vrp, parse};
pub use render::linux_name;

use crate::config::{self, LoadContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A line outside what dagw maps (most of a switch's config).
    Note,
    /// Mapped with an assumption, or not mapped though it concerns a gateway.
    Warning,
    /// A command dagw maps, malformed or out of range: not imported.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One report about the input. `line` 0: about the whole input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub line: usize,
    pub severity: Severity,
    pub message: String,
    /// The source line (trimmed), when the finding is about one.
    pub text: String,
}

impl Finding {
    /// `FILE:LINE: severity: message: text` (compiler form).
    pub fn render(&self, file: &str) -> String {
        let at = if self.line == 0 {
            file.to_string()
        } else {
            format!("{file}:{}", self.line)
        };
        let mut s = format!("{at}: {}: {}", self.severity.as_str(), self.message);
        if !self.text.is_empty() {
            s.push_str(": ");
            s.push_str(&self.text);
        }
        s
    }
}

/// How VRP names become Linux ones, and what VRP text cannot say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The SVI of VLAN N; `{id}` is replaced by N.
    pub vlanif_interface: String,
    /// The SVI of BD N.
    pub vbdif_interface: String,
    /// The vxlan device of BD N.
    pub vxlan_device: String,
    /// The Linux interface (bond) of Eth-Trunk N.
    pub trunk_interface: String,
    /// Explicit names: (VRP interface, e.g. `Eth-Trunk0`, Linux name).
    pub renames: Vec<(String, String)>,
    /// `[peer] key_file`; without it `[peer]` is written commented out.
    pub key_file: Option<String>,
    /// The peer's VTEP for VBDIF bypass tunnels (default: the DFS peer address).
    pub bypass_vtep: Option<IpAddr>,
    /// Named in the output's header (the input file).
    pub source: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            vlanif_interface: DEFAULT_VLANIF_INTERFACE.into(),
            vbdif_interface: DEFAULT_VBDIF_INTERFACE.into(),
            vxlan_device: DEFAULT_VXLAN_DEVICE.into(),
            trunk_interface: DEFAULT_TRUNK_INTERFACE.into(),
            renames: Vec::new(),
            key_file: None,
            bypass_vtep: None,
            source: "VRP text".into(),
        }
    }
}

pub const DEFAULT_VLANIF_INTERFACE: &str = "vlan{id}";
pub const DEFAULT_VBDIF_INTERFACE: &str = "bd{id}";
pub const DEFAULT_VXLAN_DEVICE: &str = "vxlan{id}";
pub const DEFAULT_TRUNK_INTERFACE: &str = "bond{id}";

/// A naming template must say where the number goes.
pub fn check_template(t: &str) -> Result<String, String> {
    if t.contains("{id}") {
        Ok(t.to_string())
    } else {
        Err(format!(
            "{t:?} has no {{id}}: write where the VLAN / BD / trunk number goes, e.g. \"br{{id}}\""
        ))
    }
}

/// `VRP=LINUX`, e.g. `Eth-Trunk0=peerlink`.
pub fn parse_rename(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
            let from: String = a.split_whitespace().collect();
            Ok((from, b.trim().to_string()))
        }
        _ => Err(format!(
            "{s:?}: expected VRP=LINUX, e.g. Eth-Trunk0=peerlink or Vlanif10=br10"
        )),
    }
}

/// What an import produced: the TOML text and every finding, in line order.
#[derive(Debug, Clone)]
pub struct Import {
    pub toml: String,
    pub findings: Vec<Finding>,
}

impl Import {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Maps VRP text to a dagw config. The output is validated with dagw's own
/// parser (without the key file's presence, which `dagw check` adds): anything
/// it refuses is reported as an error, so a clean import is a config `dagw
/// check` accepts.
pub fn import(text: &str, opts: &Options) -> Import {
    let (vrp, mut findings) = parse(text);
    let (toml, more) = render::render(&vrp, opts);
    findings.extend(more);
    let ctx = LoadContext {
        hostname: "dagw".into(),
    };
    let diags = match config::parse_str(&toml, &ctx) {
        Ok(_) => Vec::new(),
        Err(diags) => diags,
    };
    for d in diags.iter().filter(|d| d.is_error()) {
        findings.push(Finding {
            line: 0,
            severity: Severity::Error,
            message: format!(
                "the generated configuration is not valid: {}",
                d.render("generated")
            ),
            text: String::new(),
        });
    }
    findings.sort_by_key(|f| f.line);
    Import { toml, findings }
}

#[cfg(test)]
mod tests;
