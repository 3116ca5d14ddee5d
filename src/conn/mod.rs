//! Connections: what the director remembers of each client flow.
//!
//! - [`tcp_state`]: IPVS's TCP state table and timeouts.
//!
//! The per-lcore connection table, timers and persistence templates build
//! on these (the layer-4 issue).

pub mod tcp_state;
