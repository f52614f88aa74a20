//! Fuzz target: `dagw::config::parse_str` on arbitrary UTF-8 must never panic,
//! and its result must be coherent: an `Err` always holds at least one error,
//! an `Ok` never does, and every diagnostic renders to exactly one line.
//!
//! Run with `cargo fuzz run config_parse fuzz/seeds/config_parse` from the crate
//! root (needs nightly and cargo-fuzz); the seed is DESIGN.md §4's example.
#![no_main]

use dagw::config::{Diagnostic, LoadContext, parse_str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = LoadContext {
        hostname: "fuzz".into(),
    };
    let diags = match parse_str(text, &ctx) {
        Ok((_, warnings)) => {
            assert!(!warnings.iter().any(Diagnostic::is_error));
            warnings
        }
        Err(diags) => {
            assert!(diags.iter().any(Diagnostic::is_error));
            diags
        }
    };
    for d in &diags {
        assert!(d.line >= 1 && d.col >= 1);
        assert!(!d.render("f").contains('\n'));
    }
});
