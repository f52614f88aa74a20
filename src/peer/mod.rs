//! The peer side: heartbeat wire format, authentication, and the UDP link.

pub mod auth;
pub mod codec;
pub mod link;
pub mod net;
