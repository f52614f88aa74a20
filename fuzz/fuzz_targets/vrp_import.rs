//! Fuzz target: `dagw::vrp::import` (the `import-vrp` mapper) on arbitrary
//! text must never panic; what it prints must be TOML that dagw's own config
//! parser reads without a panic, and every finding renders to one line.
//!
//! Run with `RUSTC_BOOTSTRAP=1 cargo fuzz run vrp_import fuzz/seeds/vrp_import`
//! from the crate root; the seed is a displayed VRP config.
#![no_main]

use dagw::config::{LoadContext, parse_str};
use dagw::vrp::{Options, import};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let imported = import(&text, &Options::default());
    for f in &imported.findings {
        assert!(!f.render("f").contains('\n'));
    }
    let ctx = LoadContext {
        hostname: "fuzz".into(),
    };
    let _ = parse_str(&imported.toml, &ctx);
});
