//! The data path.
//!
//! - [`packet`]: the [`Packet`] the pipeline sees: a frame in its whole
//!   buffer (headroom, data, tailroom) with the driver's RX metadata.
//! - [`pipeline`]: `process(&mut Packet, port, &mut Ctx) -> Verdict`, bytes
//!   only, no DPDK types: host duties (ARP, ICMP echo), classification.
//! - [`engine`]: one lcore's data path over a generic packet buffer: hold
//!   queue for unresolved next hops, generated ARP frames, counters.
//! - [`worker`]: the DPDK run-to-completion loop around the engine.
//! - [`host`], [`route`], [`neighbor`]: the tables the pipeline consults.
//! - [`stats`], [`drop_reason`]: plain per-lcore counters.
//!
//! Hot-path rules: no allocation, lock or syscall per packet; per-lcore
//! state; configuration as read-only snapshots; errors are `Copy` drop
//! reasons; malformed input is counted and dropped, never a panic.

pub mod drop_reason;
pub mod egress;
pub mod engine;
#[cfg(test)]
mod fixtures;
#[cfg(any(test, feature = "testing"))]
pub mod harness;
pub mod host;
pub mod l4;
pub mod neighbor;
pub mod packet;
pub mod pipeline;
pub mod route;
pub mod stats;
pub mod steer;
pub mod sync;
pub mod sync_install;
#[cfg(any(test, feature = "testing"))]
pub mod test_buf;
pub mod verdict;
pub mod vrrp;
pub mod worker;

pub use drop_reason::DropReason;
pub use engine::{Engine, Output};
pub use host::Host;
pub use packet::{Packet, PacketBuf, RxMeta};
pub use pipeline::{process, Ctx};
pub use stats::Stats;
#[cfg(any(test, feature = "testing"))]
pub use test_buf::TestBuf;
pub use verdict::Verdict;
