//! `dagw` command line (DESIGN.md §3): run | check | status | reload | monitor | import-vrp.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[cfg(feature = "assets")]
use clap::CommandFactory;
use clap::{Parser, Subcommand};

use dagw::config::{self, LoadFailure};
use dagw::control::client::{self, ClientError};
use dagw::control::{Reply, WireRequest};

const DEFAULT_CONFIG: &str = "/etc/dagw/dagw.toml";
const DEFAULT_SOCKET: &str = "/run/dagw/dagw.sock";

#[derive(Parser)]
#[command(name = "dagw", version = version(), about = "Dual-active gateway agent for an M-LAG switch pair")]
struct Cli {
    /// Control socket (default: [node] socket of the config, else /run/dagw/dagw.sock).
    #[arg(short = 's', long = "socket", global = true)]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon in the foreground.
    Run {
        /// Configuration file.
        #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Validate a configuration file offline.
    Check {
        /// Configuration file.
        #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Show the running daemon's state.
    Status {
        /// Print JSON (the format of DESIGN.md section 5) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Apply the configuration file again (whole or not at all).
    Reload,
    /// Maintenance: hold every M-LAG member (reason drain) so servers move
    /// to the peer, and tell the peer; kept across a restart of dagw.
    Drain,
    /// End a drain: the members are released at once.
    Resume,
    /// Stream state changes and alerts.
    Monitor {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print a dagw configuration made from Huawei VRP configuration text.
    ///
    /// Reads `display current-configuration` output or a saved / typed VRP
    /// config. Maps interface Vlanif/Vbdif (ip address, ipv6 enable, ipv6
    /// address, mac-address, protocol up-delay-time), Eth-Trunk M-LAG members
    /// (dfs-group N m-lag M, m-lag up-delay), the peer-link and the DFS group
    /// (source ip A peer B, priority). Every line it does not map is listed on
    /// stderr as FILE:LINE: note|warning|error: ... ; exit 1 when a line it
    /// maps is malformed or the file cannot be read.
    #[command(name = "import-vrp")]
    ImportVrp(ImportVrpArgs),
    /// Write the man pages and shell completions into DIR (for packaging).
    #[cfg(feature = "assets")]
    #[command(name = "generate-assets", hide = true)]
    GenerateAssets { dir: PathBuf },
}

#[derive(clap::Args)]
struct ImportVrpArgs {
    /// VRP configuration text ("-" for standard input).
    file: PathBuf,
    /// Linux SVI of VLAN N ({id} = N).
    #[arg(long, value_name = "TEMPLATE", default_value = dagw::vrp::DEFAULT_VLANIF_INTERFACE, value_parser = dagw::vrp::check_template)]
    vlanif_interface: String,
    /// Linux SVI of bridge domain N ({id} = N).
    #[arg(long, value_name = "TEMPLATE", default_value = dagw::vrp::DEFAULT_VBDIF_INTERFACE, value_parser = dagw::vrp::check_template)]
    vbdif_interface: String,
    /// vxlan device of bridge domain N ({id} = N).
    #[arg(long, value_name = "TEMPLATE", default_value = dagw::vrp::DEFAULT_VXLAN_DEVICE, value_parser = dagw::vrp::check_template)]
    vxlan_device: String,
    /// Linux interface (bond) of Eth-Trunk N ({id} = N).
    #[arg(long, value_name = "TEMPLATE", default_value = dagw::vrp::DEFAULT_TRUNK_INTERFACE, value_parser = dagw::vrp::check_template)]
    trunk_interface: String,
    /// Name one interface explicitly, e.g. Eth-Trunk0=peerlink (repeatable).
    #[arg(long = "rename", value_name = "VRP=LINUX", value_parser = dagw::vrp::parse_rename)]
    renames: Vec<(String, String)>,
    /// [peer] key_file; without it [peer] is printed commented out (a key file must exist for `dagw check`).
    #[arg(long, value_name = "PATH")]
    key_file: Option<String>,
    /// The peer's VTEP for VBDIF bypass tunnels (default: the DFS peer address).
    #[arg(long, value_name = "ADDRESS")]
    bypass_vtep: Option<std::net::IpAddr>,
}

fn version() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (g",
        env!("DAGW_GIT_DESCRIBE"),
        ")"
    )
}

/// The socket a client talks to: -s, else the default config's [node] socket, else the default.
fn client_socket(cli: &Option<PathBuf>) -> PathBuf {
    if let Some(s) = cli {
        return s.clone();
    }
    config::load(Path::new(DEFAULT_CONFIG))
        .map(|(c, _)| c.node.socket)
        .unwrap_or_else(|_| PathBuf::from(DEFAULT_SOCKET))
}

fn main() -> ExitCode {
    dagw::sys::single_malloc_arena();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { config } => check(&config),
        Cmd::Run { config } => run(&config, cli.socket),
        Cmd::Status { json } => status(&client_socket(&cli.socket), json),
        Cmd::Reload => reload(&client_socket(&cli.socket)),
        Cmd::Drain => drain(&client_socket(&cli.socket), WireRequest::Drain),
        Cmd::Resume => drain(&client_socket(&cli.socket), WireRequest::Resume),
        Cmd::Monitor { json } => monitor(&client_socket(&cli.socket), json),
        Cmd::ImportVrp(args) => import_vrp(args),
        #[cfg(feature = "assets")]
        Cmd::GenerateAssets { dir } => generate_assets(&dir),
    }
}

fn print_load_failure(path: &Path, f: &LoadFailure) {
    match f {
        LoadFailure::Io { source, .. } => {
            eprintln!("{}: error: cannot read the file: {source}", path.display())
        }
        LoadFailure::Invalid(diags) => {
            for d in diags {
                eprintln!("{}", d.render(&path.display().to_string()));
            }
        }
    }
}

fn check(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok((cfg, warnings)) => {
            for w in &warnings {
                eprintln!("{}", w.render(&path.display().to_string()));
            }
            println!(
                "{}: ok ({} gateways, {} members)",
                path.display(),
                cfg.gateways.len(),
                cfg.mlag.members.len()
            );
            ExitCode::SUCCESS
        }
        Err(f) => {
            print_load_failure(path, &f);
            ExitCode::from(1)
        }
    }
}

fn run(path: &Path, socket: Option<PathBuf>) -> ExitCode {
    dagw::telemetry::init_logging();
    let (cfg, warnings) = match config::load(path) {
        Ok(x) => x,
        Err(f) => {
            print_load_failure(path, &f);
            return ExitCode::from(1);
        }
    };
    for w in &warnings {
        tracing::warn!("{}", w.render(&path.display().to_string()));
    }
    dagw::sys::release_free_memory();
    let socket = socket.unwrap_or_else(|| cfg.node.socket.clone());
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dagw: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async {
        let d = dagw::daemon::Daemon::new(cfg, path.to_path_buf(), version().to_string())?;
        d.run(socket).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("dagw stopped: {e}");
            eprintln!("dagw: {e}");
            ExitCode::from(1)
        }
    }
}

fn fail(e: ClientError) -> ExitCode {
    eprintln!("dagw: {e}");
    ExitCode::from(1)
}

fn status(sock: &Path, json: bool) -> ExitCode {
    match client::call(sock, WireRequest::Status) {
        Ok(Reply::Status(s)) => {
            let text = if json {
                match serde_json::to_string_pretty(&s) {
                    Ok(t) => t + "\n",
                    Err(e) => return fail(ClientError::Protocol(e.to_string())),
                }
            } else {
                s.table()
            };
            print_out(&text)
        }
        Ok(Reply::Error { error }) => {
            eprintln!("dagw: {error}");
            ExitCode::from(1)
        }
        Ok(other) => fail(ClientError::Protocol(format!("{other:?}"))),
        Err(e) => fail(e),
    }
}

/// Standard output that may be a pipe closed early (`dagw status | head`):
/// that is the reader's choice, not an error.
fn print_out(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dagw: cannot write the output: {e}");
            ExitCode::from(1)
        }
    }
}

fn reload(sock: &Path) -> ExitCode {
    match client::call(sock, WireRequest::Reload) {
        Ok(Reply::Reloaded { warnings }) => {
            for w in warnings {
                eprintln!("{w}");
            }
            println!("configuration applied");
            ExitCode::SUCCESS
        }
        Ok(Reply::Refused { errors }) => {
            for e in errors {
                eprintln!("{e}");
            }
            eprintln!("dagw: configuration refused; the running configuration is kept");
            ExitCode::from(1)
        }
        Ok(Reply::Error { error }) => {
            eprintln!("dagw: {error}");
            ExitCode::from(1)
        }
        Ok(other) => fail(ClientError::Protocol(format!("{other:?}"))),
        Err(e) => fail(e),
    }
}

fn drain(sock: &Path, req: WireRequest) -> ExitCode {
    match client::call(sock, req) {
        Ok(Reply::Drained { drained }) => {
            println!(
                "{}",
                if drained {
                    "drained: every member held (reason drain); the peer is told"
                } else {
                    "resumed: members released"
                }
            );
            ExitCode::SUCCESS
        }
        Ok(Reply::Error { error }) => {
            eprintln!("dagw: {error}");
            ExitCode::from(1)
        }
        Ok(other) => fail(ClientError::Protocol(format!("{other:?}"))),
        Err(e) => fail(e),
    }
}

fn monitor(sock: &Path, json: bool) -> ExitCode {
    use std::io::Write;
    let out = std::io::stdout();
    let r = client::monitor(sock, |line| {
        let mut o = out.lock();
        if json {
            writeln!(o, "{line}")?;
        } else {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            writeln!(
                o,
                "{} {:<10} {:<16} {:<12} {}",
                s("ts"),
                s("kind"),
                s("id"),
                s("object"),
                s("message")
            )?;
        }
        o.flush()
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn import_vrp(args: ImportVrpArgs) -> ExitCode {
    use std::io::Read;
    let shown = args.file.display().to_string();
    let limit = dagw::vrp::MAX_INPUT_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    let read = if shown == "-" {
        std::io::stdin().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(&args.file).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    if let Err(e) = read {
        eprintln!("{shown}: error: cannot read the file: {e}");
        return ExitCode::from(1);
    }
    // VRP text is ASCII; a stray byte should not cost the whole import.
    let text = String::from_utf8_lossy(&bytes);
    let opts = dagw::vrp::Options {
        vlanif_interface: args.vlanif_interface,
        vbdif_interface: args.vbdif_interface,
        vxlan_device: args.vxlan_device,
        trunk_interface: args.trunk_interface,
        renames: args.renames,
        key_file: args.key_file,
        bypass_vtep: args.bypass_vtep,
        source: shown.clone(),
    };
    let imported = dagw::vrp::import(&text, &opts);
    for f in &imported.findings {
        eprintln!("{}", f.render(&shown));
    }
    let printed = print_out(&imported.toml);
    if imported.has_errors() {
        ExitCode::from(1)
    } else {
        printed
    }
}

#[cfg(feature = "assets")]
fn generate_assets(dir: &Path) -> ExitCode {
    match dagw::assets::write_all(dir, Cli::command(), version()) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dagw: cannot write the assets to {}: {e}", dir.display());
            ExitCode::from(1)
        }
    }
}
