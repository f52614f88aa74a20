//! dagw — dual-active gateway agent for an M-LAG switch pair.
// Unsafe code is denied everywhere but in `sys`, which says why it needs it.
#![deny(unsafe_code)]

#[cfg(feature = "assets")]
pub mod assets;
pub mod config;
pub mod control;
pub mod core;
pub mod daemon;
pub mod netlink;
pub mod peer;
pub mod status;
pub mod sync;
pub mod sys;
pub mod telemetry;
pub mod vrp;
