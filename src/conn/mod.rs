//! Connections: what the director remembers of each client flow.
//!
//! - [`tcp_state`]: IPVS's TCP state table and timeouts.
//! - [`table`]: one lcore's connection table: both directions of a NAT
//!   connection, persistence templates, bounded expiry.
//!
pub mod table;
pub mod tcp_state;
