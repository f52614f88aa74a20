//! Configuration: TOML text → validated [`Config`], or a list of diagnostics in
//! compiler form (`FILE:LINE:COL: error: KEY: what is wrong (allowed: …)`).
//!
//! A config is validated whole: `load` returns either a complete `Config` (plus
//! warnings) or every problem found, never a partial result.

pub mod model;
pub use model::*;
