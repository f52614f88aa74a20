//! Pure product logic: no I/O, no tokio, time is injected. The seed's rules live here.

pub mod action;
pub mod bypass;
pub mod consistency;
pub mod drift;
pub mod gateway;
pub mod heartbeat;
pub mod ifname;
pub mod kernel;
pub mod mac;
pub mod member;
pub mod neigh;
pub mod node;
pub mod peer;
pub mod rules;
pub mod sorted;
pub mod uplinks;
