//! `dagw` command line (DESIGN.md §3): run | check | status | reload | monitor.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
        #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Validate a configuration file offline.
    Check {
        #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Show the running daemon's state.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Apply the configuration file again (whole or not at all).
    Reload,
    /// Stream state changes and alerts.
    Monitor {
        #[arg(long)]
        json: bool,
    },
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
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { config } => check(&config),
        Cmd::Run { config } => run(&config, cli.socket),
        Cmd::Status { json } => status(&client_socket(&cli.socket), json),
        Cmd::Reload => reload(&client_socket(&cli.socket)),
        Cmd::Monitor { json } => monitor(&client_socket(&cli.socket), json),
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
