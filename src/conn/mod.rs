//! Connections: what the director remembers of each client flow.
//!
//! - [`tcp_state`]: IPVS's TCP state table and timeouts.
//! - [`table`]: one lcore's connection table: both directions of a NAT
//!   connection, persistence templates, bounded expiry.
//! - [`index`]: its compact index, from a key's hash to a slot.
//! - [`dump`]: listing a worker's connections a chunk at a time.
//!
pub mod dump;
pub mod index;
pub mod sync;
pub mod table;
pub mod tcp_state;
