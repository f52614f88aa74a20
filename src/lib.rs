//! dagw — dual-active gateway agent for an M-LAG switch pair.
#![forbid(unsafe_code)]

pub mod config;
pub mod core;
