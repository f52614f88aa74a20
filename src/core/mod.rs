//! Pure product logic: no I/O, no tokio, time is injected. The seed's rules live here.

pub mod mac;
pub mod rules;
