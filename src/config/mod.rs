//! Configuration: TOML text → validated [`Config`], or a list of diagnostics in
//! compiler form (`FILE:LINE:COL: error: KEY: what is wrong (allowed: …)`).
//!
//! A config is validated whole: `load` returns either a complete `Config` (plus
//! warnings) or every problem found, never a partial result.
//!
//! Stages: `parse` (text → spanned draft, per-value checks and defaults),
//! `validate` (whole-file rules, then the typed `Config`), and, in [`load`] only,
//! the checks that need the file system (the peer key files). [`parse_str`] is
//! pure: the hostname default comes in through [`LoadContext`].

pub mod diag;
pub mod huawei;
pub mod model;
mod parse;
pub mod reference;
mod validate;

pub use diag::{Diagnostic, Severity, render_all};
pub use model::*;
pub use parse::{DEFAULT_NEIGHBOUR_AGING, MAX_ADDRESSES, MAX_FILE_BYTES, MAX_GATEWAYS, known_keys};

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};

use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

use diag::LineIndex;
use parse::Sink;

/// What parsing needs from the environment, passed in so parsing stays pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadContext {
    /// The default for `[node] name`.
    pub hostname: String,
}

impl LoadContext {
    /// The running system's hostname (`/proc/sys/kernel/hostname`), else "dagw".
    pub fn system() -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "dagw".to_string());
        LoadContext { hostname }
    }
}

/// Why [`load`] produced no config.
#[derive(Debug, thiserror::Error)]
pub enum LoadFailure {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// Every error and warning found, in file order.
    #[error("invalid configuration ({} problems)", .0.iter().filter(|d| d.is_error()).count())]
    Invalid(Vec<Diagnostic>),
}

/// Minimum secret length after stripping one trailing newline.
pub const MIN_KEY_BYTES: usize = 16;
/// A key file is a secret, not a data set; refuse anything bigger.
pub const MAX_KEY_BYTES: u64 = 64 * 1024;

/// Why the peer key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read peer key file {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("peer key file {} is not a regular file (it is {kind})", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error(
        "peer key file {} is owned by uid {uid}, not by root or the user dagw runs as (uid {own}); run: chown root {}",
        path.display(),
        path.display()
    )]
    Owner { path: PathBuf, uid: u32, own: u32 },
    #[error(
        "peer key file {} is readable by group or others (mode {mode:04o}); run: chmod 600 {}",
        path.display(),
        path.display()
    )]
    Permissive { path: PathBuf, mode: u32 },
    #[error(
        "peer key file {} holds {len} bytes; the secret needs at least {MIN_KEY_BYTES} (one trailing newline is not counted)",
        path.display()
    )]
    TooShort { path: PathBuf, len: usize },
    #[error("peer key file {} is {len} bytes; a key is at most {MAX_KEY_BYTES}", path.display())]
    TooLarge { path: PathBuf, len: u64 },
}

impl KeyFileError {
    /// The `(allowed: …)` part of the diagnostic: how to make a good key file.
    pub fn allowed(&self) -> &'static str {
        match self {
            KeyFileError::Permissive { .. } => "mode 0600 or 0400 (owner only)",
            KeyFileError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                "an existing file, e.g. create one with: head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE"
            }
            KeyFileError::TooShort { .. } => {
                "at least 16 bytes, e.g. head -c 32 /dev/urandom | base64 > FILE"
            }
            KeyFileError::TooLarge { .. } => "at most 65536 bytes",
            KeyFileError::Io { .. } | KeyFileError::NotAFile { .. } => {
                "a regular file readable by dagw"
            }
            KeyFileError::Owner { .. } => "a file owned by root or by the user dagw runs as",
        }
    }
}

/// What a file that is not a regular one is, for the message.
fn file_kind(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads the peer secret: the file's bytes with one trailing newline stripped.
/// Refuses files that group or others can read, like ssh does with keys, and
/// files owned by anybody but root or the user dagw runs as (who could
/// replace the secret). Anything but a regular file (a FIFO, a device) is
/// refused before it is opened, and the open is non-blocking anyway, so a FIFO
/// put there in between cannot hang the load (nor a reload, which runs on the
/// event loop); the checks are repeated on the opened file so they describe
/// what is actually read. The secret's buffer is wiped when dropped.
pub fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let io_err = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_a_file = |t| KeyFileError::NotAFile {
        path: path.to_path_buf(),
        kind: file_kind(t),
    };
    let before = std::fs::metadata(path).map_err(io_err)?;
    if !before.is_file() {
        return Err(not_a_file(before.file_type()));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(not_a_file(meta.file_type()));
    }
    let own = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != own {
        return Err(KeyFileError::Owner {
            path: path.to_path_buf(),
            uid: meta.uid(),
            own,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissive {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() > MAX_KEY_BYTES {
        return Err(KeyFileError::TooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
        });
    }
    // sized up front: a reallocation would leave a copy of the secret behind
    let mut key = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    file.take(MAX_KEY_BYTES + 1)
        .read_to_end(&mut key)
        .map_err(io_err)?;
    if key.len() as u64 > MAX_KEY_BYTES {
        return Err(KeyFileError::TooLarge {
            path: path.to_path_buf(),
            len: key.len() as u64,
        });
    }
    if key.ends_with(b"\r\n") {
        let n = key.len() - 2;
        key.truncate(n);
    } else if key.ends_with(b"\n") {
        let n = key.len() - 1;
        key.truncate(n);
    }
    if key.len() < MIN_KEY_BYTES {
        return Err(KeyFileError::TooShort {
            path: path.to_path_buf(),
            len: key.len(),
        });
    }
    Ok(key)
}

/// Result of the pure stages, with what `load` needs for the key-file check.
struct Checked {
    config: Option<Config>,
    diags: Vec<Diagnostic>,
    /// The configured key file and where to report about it (line, col).
    key_file: Option<(PathBuf, (usize, usize))>,
    /// The same for `previous_key_file`, when written.
    previous_key_file: Option<(PathBuf, (usize, usize))>,
}

fn check_text(text: &str, ctx: &LoadContext) -> Checked {
    let mut sink = Sink::new(text);
    let draft = parse::parse(text, &ctx.hostname, &mut sink);
    let peer = draft.as_ref().and_then(|d| d.peer.as_ref());
    let located = |k: &parse::At<PathBuf>| (k.v.clone(), sink.pos(k.at));
    let key_file = peer.and_then(|p| p.key_file.as_ref()).map(located);
    let previous_key_file = peer.and_then(|p| p.previous_key_file.as_ref()).map(located);
    let config = draft.and_then(|d| validate::validate(d, &mut sink));
    Checked {
        config,
        diags: sink.diags,
        key_file,
        previous_key_file,
    }
}

/// File order, errors before warnings on the same spot: what a compiler does.
fn finish(
    config: Option<Config>,
    mut diags: Vec<Diagnostic>,
) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    diags.sort_by_key(|d| (d.line, d.col, d.severity));
    match config {
        Some(c) if !diags.iter().any(Diagnostic::is_error) => Ok((c, diags)),
        _ => {
            if !diags.iter().any(Diagnostic::is_error) {
                // Unreachable by construction (a config is withheld only
                // because of an error); never report "invalid" without a reason.
                diags.insert(
                    0,
                    Diagnostic {
                        severity: Severity::Error,
                        line: 1,
                        col: 1,
                        key: "file".into(),
                        message: "the configuration could not be built (internal error)".into(),
                        allowed: None,
                    },
                );
            }
            Err(diags)
        }
    }
}

/// Parses and validates TOML text. `Ok` carries the config and any warnings;
/// `Err` carries every error and warning, in file order. Pure: no file system
/// access (the key file is checked by [`load`]).
pub fn parse_str(
    text: &str,
    ctx: &LoadContext,
) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    let c = check_text(text, ctx);
    finish(c.config, c.diags)
}

/// Reads, parses and validates the file at `path` with the system hostname as
/// the default node name, and checks the peer key file.
pub fn load(path: &Path) -> Result<(Config, Vec<Diagnostic>), LoadFailure> {
    load_with(path, &LoadContext::system())
}

/// [`load`] with an explicit context. A relative `key_file` is taken relative to
/// the config file's directory, and the config carries the resolved path, so the
/// daemon reads the file that was checked.
pub fn load_with(path: &Path, ctx: &LoadContext) -> Result<(Config, Vec<Diagnostic>), LoadFailure> {
    let io_err = |source| LoadFailure::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut bytes = Vec::new();
    // One byte over the limit is enough for the parser to refuse the file.
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() > MAX_FILE_BYTES {
        // Said before decoding: the cut may have split a UTF-8 sequence.
        return Err(LoadFailure::Invalid(vec![Diagnostic {
            severity: Severity::Error,
            line: 1,
            col: 1,
            key: "file".into(),
            message: format!(
                "the file is larger than {MAX_FILE_BYTES} bytes; dagw refuses such configurations"
            ),
            allowed: None,
        }]));
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let valid = std::str::from_utf8(valid).unwrap_or_default();
            let (line, col) = LineIndex::new(valid).position(valid.len());
            return Err(LoadFailure::Invalid(vec![Diagnostic {
                severity: Severity::Error,
                line,
                col,
                key: "file".into(),
                message: "the file is not UTF-8 text".into(),
                allowed: Some("UTF-8 encoded TOML".into()),
            }]));
        }
    };
    let mut c = check_text(&text, ctx);
    let resolve = |p: &Path| match path.parent() {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_path_buf(),
    };
    let mut key = None;
    if let Some((key_file, (line, col))) = &c.key_file {
        let resolved = resolve(key_file);
        check_key_file(&resolved, "peer.key_file", (*line, *col), &mut c.diags);
        if let Some(peer) = c.config.as_mut().and_then(|cfg| cfg.peer.as_mut()) {
            peer.key_file = resolved.clone();
        }
        key = Some((key_file, resolved));
    }
    if let Some((prev_file, (line, col))) = &c.previous_key_file {
        let resolved = resolve(prev_file);
        let diag = |message: String, allowed: &str| Diagnostic {
            severity: Severity::Error,
            line: *line,
            col: *col,
            key: "peer.previous_key_file".into(),
            message,
            allowed: Some(allowed.into()),
        };
        match &key {
            // Equal as written: already reported by `validate`.
            Some((key_file, _)) if *key_file == prev_file => {}
            Some((_, key_resolved)) if same_file(key_resolved, &resolved) => {
                c.diags.push(diag(
                    format!(
                        "{} is the same file as peer.key_file {}; the previous key must be a different file",
                        resolved.display(),
                        key_resolved.display()
                    ),
                    "the old key's file, different from key_file",
                ));
            }
            _ => check_key_file(
                &resolved,
                "peer.previous_key_file",
                (*line, *col),
                &mut c.diags,
            ),
        }
        if let Some(peer) = c.config.as_mut().and_then(|cfg| cfg.peer.as_mut()) {
            peer.previous_key_file = Some(resolved);
        }
    }
    finish(c.config, c.diags).map_err(LoadFailure::Invalid)
}

/// [`read_key_file`] as a diagnostic on `key` at `(line, col)`.
fn check_key_file(
    path: &Path,
    key: &str,
    (line, col): (usize, usize),
    diags: &mut Vec<Diagnostic>,
) {
    if let Err(e) = read_key_file(path) {
        diags.push(Diagnostic {
            severity: Severity::Error,
            line,
            col,
            key: key.into(),
            message: e.to_string(),
            allowed: Some(e.allowed().into()),
        });
    }
}

/// Whether two paths name one file: equal, or the same inode (links, `./`).
fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
