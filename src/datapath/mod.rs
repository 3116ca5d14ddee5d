//! The data path: one lcore's work on the frames it receives, over bytes.
//! The contract: every received frame is transmitted, held while its next
//! hop resolves, given to the kernel, or dropped with one [`DropReason`];
//! none of it sees a DPDK type but [`worker`], the thin loop around it.
//!
//! - [`worker`]: the DPDK run-to-completion loop; [`steer`]: each frame to
//!   the worker that owns its client, before any rewrite.
//! - [`engine`]: one lcore's data path over any buffer ([`Packet`] in its
//!   whole buffer, [`packet`]): the hold queue, generated frames, timers,
//!   VRRP ([`vrrp`]) and sync ([`sync`], [`sync_install`]).
//! - [`pipeline`]: `process(&mut Packet, port, &mut Ctx) -> Verdict`
//!   ([`verdict`]): Ethernet, ARP, IPv4 and the host duties; [`l4`] the
//!   connections and services (its fast path for established TCP and UDP
//!   first); [`egress`] the next hop.
//! - [`host`], [`route`], [`neighbor`]: the tables they consult;
//!   [`stats`], [`drop_reason`]: plain per-lcore counters.
//! - The test kit (`cfg(test)` or the `testing` feature): `harness`, the
//!   invariant harness the property tests and fuzzers run; `test_buf`.
//!
//! Hot-path rules: no allocation, lock or syscall per packet; per-lcore
//! state; configuration as read-only snapshots taken between bursts;
//! errors are `Copy` drop reasons; malformed input is counted and dropped,
//! never a panic.

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
