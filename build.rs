//! Build script: version stamp only.
//!
//! Emits `DAGW_GIT_DESCRIBE` (the output of `git describe --always --dirty`, or
//! `unknown` when git is absent or this is not a git checkout, e.g. a crate
//! tarball). `dagw --version` prints it as `dagw 0.1.0 (g<describe>)`.
//! No dependencies on purpose: it must build anywhere, including under cross.

use std::path::Path;
use std::process::Command;

fn main() {
    let describe = git_describe().unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=DAGW_GIT_DESCRIBE={describe}");

    // Re-run when the checked-out commit or any ref moves. Without a .git
    // directory, only a change of this script re-runs it.
    println!("cargo:rerun-if-changed=build.rs");
    for p in [".git/HEAD", ".git/refs", ".git/packed-refs", ".git/index"] {
        if Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rerun-if-env-changed=DAGW_GIT_DESCRIBE");
}

fn git_describe() -> Option<String> {
    // Allow packagers to stamp a version without git.
    if let Ok(v) = std::env::var("DAGW_GIT_DESCRIBE") {
        let v = v.trim().to_owned();
        if !v.is_empty() {
            return Some(v);
        }
    }
    let out = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim();
    // Keep it a single printable token: it ends up in an env var and in JSON.
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    Some(s.to_owned())
}
