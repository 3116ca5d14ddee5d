//! Safe wrappers over the system DPDK.
//!
//! This is the only crate of the workspace with FFI. `ffi` holds the
//! bindgen output plus the C shim (`shim/shim.c`) that gives the
//! static-inline DPDK functions (rx/tx burst, mbuf alloc/free, ...) a
//! linkable symbol. Everything else is a safe layer:
//!
//! - [`Eal`]: EAL initialisation and cleanup, checked [`Lcore`] ids, and
//!   [`Eal::scope`] to run jobs on worker lcores.
//! - [`Mempool`]: a packet mbuf pool.
//! - [`Mbuf`]: an owning single-segment packet buffer (no `Clone`; `Drop` frees).
//! - [`Device`] and [`Port`]: an ethdev probed, then configured (queues,
//!   MTU); start/stop; the per-queue [`RxQueue`]/[`TxQueue`] handles
//!   workers poll and the [`PortMonitor`] a control thread reads.
//! - [`MbufRing`]: a lock-free multi-producer, single-consumer ring of
//!   mbufs, to hand packets between lcores.
//! - [`thread`]: the calling thread's CPU affinity.
//!
//! Lifetimes carry the ordering rules: pools, devices and ports borrow the
//! `Eal`; ports borrow their pool; mbufs, queue handles and monitors borrow
//! the port or pool they come from. So nothing outlives what it needs,
//! nothing runs after `rte_eal_cleanup`, and a port cannot be stopped or
//! reconfigured while a worker polls one of its queues. Every unsafe block
//! carries a `// SAFETY:` comment stating why it holds; a duty that only the
//! caller can meet makes the function `unsafe` (`Mbuf::from_raw`).
//!
//! The order, as the compiler enforces it:
//!
//! ```no_run
//! let eal = dpdk::Eal::init(&["--no-huge"]).unwrap();
//! let pool = dpdk::Mempool::new(&eal, "p", 4095, 0, 2048, 0).unwrap();
//! let dev = dpdk::Device::probe(&eal, "net_null0").unwrap();
//! let mut port = dev.configure(&dpdk::PortConfig::default(), &pool, 0).unwrap();
//! port.start().unwrap();
//! let m = pool.alloc().unwrap();
//! let mut tx = port.tx_queue(0).unwrap();
//! let monitor = port.monitor();
//! tx.push(m);
//! let _ = monitor.stats();
//! drop(tx);
//! port.stop();
//! drop(port);
//! drop(pool);
//! drop(eal);
//! ```
//!
//! A pool cannot outlive the EAL:
//!
//! ```compile_fail,E0505
//! let eal = dpdk::Eal::init(&["--no-huge"]).unwrap();
//! let pool = dpdk::Mempool::new(&eal, "p", 4095, 0, 2048, 0).unwrap();
//! drop(eal);
//! drop(pool);
//! ```
//!
//! An mbuf cannot outlive its pool:
//!
//! ```compile_fail,E0505
//! # let eal = dpdk::Eal::init(&["--no-huge"]).unwrap();
//! let pool = dpdk::Mempool::new(&eal, "p", 4095, 0, 2048, 0).unwrap();
//! let m = pool.alloc().unwrap();
//! drop(pool);
//! drop(m);
//! ```
//!
//! A port cannot be stopped while a worker holds one of its queues:
//!
//! ```compile_fail,E0502
//! # let eal = dpdk::Eal::init(&["--no-huge"]).unwrap();
//! # let pool = dpdk::Mempool::new(&eal, "p", 4095, 0, 2048, 0).unwrap();
//! # let dev = dpdk::Device::probe(&eal, "net_null0").unwrap();
//! let mut port = dev.configure(&dpdk::PortConfig::default(), &pool, 0).unwrap();
//! let rx = port.rx_queue(0).unwrap();
//! port.stop();
//! drop(rx);
//! ```
//!
//! A monitor reads; it cannot stop or reconfigure the port:
//!
//! ```compile_fail,E0599
//! # let eal = dpdk::Eal::init(&["--no-huge"]).unwrap();
//! # let pool = dpdk::Mempool::new(&eal, "p", 4095, 0, 2048, 0).unwrap();
//! # let dev = dpdk::Device::probe(&eal, "net_null0").unwrap();
//! let port = dev.configure(&dpdk::PortConfig::default(), &pool, 0).unwrap();
//! port.monitor().stop();
//! ```
//!
//! A job on a worker lcore cannot borrow what ends before the scope joins
//! it:
//!
//! ```compile_fail,E0597
//! # let eal = dpdk::Eal::init(&["--no-huge"]).unwrap();
//! # let lcore = eal.worker_lcores()[0];
//! eal.scope(|s| {
//!     let v = vec![1u8];
//!     s.launch(lcore, || v[0] as i32).unwrap();
//! });
//! ```
//!
//! The EAL handle stays on the thread that started it:
//!
//! ```compile_fail,E0277
//! let eal = dpdk::Eal::init(&["--no-huge"]).unwrap();
//! std::thread::spawn(move || drop(eal));
//! ```

pub mod eal;
pub mod error;
pub mod ffi;
pub mod mbuf;
pub mod mem;
pub mod mempool;
pub mod port;
pub mod ring;
pub mod thread;

pub use eal::{Eal, Lcore, LcoreScope, JOB_PANICKED};
pub use error::{DpdkError, Errno};
pub use mbuf::{CsumStatus, Mbuf, RxInfo, RxTimestamp};
pub use mempool::{Mempool, HEADROOM};
pub use port::{
    Device, DeviceInfo, LinkInfo, Port, PortConfig, PortMonitor, PortStats, RxQueue, TxQueue,
    FRAME_OVERHEAD,
};
pub use ring::{MbufRing, RingReceiver, RingSender};

/// Packets per RX/TX burst: DPDK's customary 32.
pub const BURST: usize = 32;

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no preconditions; the shim only wraps the instruction.
    unsafe { ffi::dlvs_rdtsc() }
}
