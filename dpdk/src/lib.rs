//! Safe wrappers over the system DPDK.
//!
//! This is the only crate of the workspace with FFI. `ffi` holds the
//! bindgen output plus the C shim (`shim/shim.c`) that gives the
//! static-inline DPDK functions (rx/tx burst, mbuf alloc/free, ...) a
//! linkable symbol. Everything else is a safe layer:
//!
//! - [`Eal`]: EAL initialisation and cleanup, lcores, launching workers.
//! - [`Mempool`]: a packet mbuf pool.
//! - [`Mbuf`]: an owning single-segment packet buffer (no `Clone`; `Drop` frees).
//! - [`Port`]: an ethdev port: configure, queues, start/stop, stats, MAC, link,
//!   and the per-queue [`RxQueue`]/[`TxQueue`] handles workers poll.
//!
//! Every unsafe block carries a `// SAFETY:` comment.

pub mod eal;
pub mod error;
pub mod ffi;
pub mod mbuf;
pub mod mempool;
pub mod port;

pub use eal::{Eal, LcoreId};
pub use error::DpdkError;
pub use mbuf::{Mbuf, RxTimestamp};
pub use mempool::Mempool;
pub use port::{LinkInfo, Port, PortConfig, PortStats, RxQueue, TxQueue};

/// Packets per RX/TX burst: DPDK's customary 32.
pub const BURST: usize = 32;

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no preconditions; the shim only wraps the instruction.
    unsafe { ffi::dlvs_rdtsc() }
}
