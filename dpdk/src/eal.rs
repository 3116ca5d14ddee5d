//! EAL initialisation, lcores and worker launch.
//!
//! [`Eal::init`] may succeed once per process. The returned handle owns the
//! EAL: dropping it calls `rte_eal_cleanup`, so it must outlive every port,
//! mempool and mbuf (keep it in `main` and drop it last).

use std::ffi::{c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{last_error, DpdkError};
use crate::ffi;

/// An lcore id as DPDK numbers them.
pub type LcoreId = u32;

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The initialised EAL.
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> leaked by `Eal::launch` for exactly this
    // call; DPDK passes it back once, so ownership is taken back once.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    // A panic must not unwind into C: report it as a failed job.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}

impl Eal {
    /// Initialises the EAL with `args` (without a program name; one is
    /// prepended). Fails with DPDK's own reason, e.g. an unknown vdev.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal, DpdkError> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::EalAlreadyInit);
        }
        let mut owned = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("dlvs").expect("no NUL"));
        for a in args {
            let a = a.as_ref();
            owned.push(CString::new(a).map_err(|_| DpdkError::NulInArgument(a.to_owned()))?);
        }
        // rte_eal_init may permute argv; give it a private array of pointers.
        let mut argv: Vec<*mut std::ffi::c_char> =
            owned.iter().map(|s| s.as_ptr() as *mut _).collect();
        // SAFETY: argv holds argc valid NUL-terminated strings that outlive
        // the call (`owned` is alive until the end of this function, and the
        // EAL copies what it keeps).
        let rc = unsafe { ffi::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::EalInit(last_error()));
        }
        Ok(Eal { _private: () })
    }

    /// The lcore the calling thread runs on (`u32::MAX` outside EAL threads).
    pub fn current_lcore() -> LcoreId {
        // SAFETY: reads a thread-local; no preconditions.
        unsafe { ffi::dlvs_lcore_id() }
    }

    /// The main lcore (the thread that called `init`).
    pub fn main_lcore(&self) -> LcoreId {
        // SAFETY: valid after a successful rte_eal_init, which `self` proves.
        unsafe { ffi::rte_get_main_lcore() }
    }

    /// The worker lcores (all enabled lcores but the main one), ascending.
    pub fn worker_lcores(&self) -> Vec<LcoreId> {
        let mut v = Vec::new();
        // SAFETY: iteration over the enabled lcore set after init; skip_main=1,
        // wrap=0 walks each worker once and returns RTE_MAX_LCORE at the end.
        let mut id = unsafe { ffi::rte_get_next_lcore(u32::MAX, 1, 0) };
        while id < ffi::RTE_MAX_LCORE {
            v.push(id);
            // SAFETY: as above.
            id = unsafe { ffi::rte_get_next_lcore(id, 1, 0) };
        }
        v
    }

    /// The NUMA socket of an lcore.
    pub fn lcore_socket(&self, lcore: LcoreId) -> u32 {
        // SAFETY: any lcore id is accepted; out-of-range ids give SOCKET_ID_ANY-like values.
        unsafe { ffi::rte_lcore_to_socket_id(lcore) }
    }

    /// Time-stamp counter ticks per second.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: valid after init.
        unsafe { ffi::rte_get_tsc_hz() }
    }

    /// Runs `job` on the worker lcore `lcore`. Join with [`Eal::wait`].
    pub fn launch<F>(&self, lcore: LcoreId, job: F) -> Result<(), DpdkError>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        let boxed: Box<Job> = Box::new(Box::new(job));
        let arg = Box::into_raw(boxed) as *mut c_void;
        // SAFETY: `trampoline` has the lcore_function_t signature and takes
        // ownership of `arg` when it runs; if the launch fails it never runs
        // and we take ownership back below.
        let rc = unsafe { ffi::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if rc != 0 {
            // SAFETY: the launch failed, so `arg` was not handed to the lcore.
            drop(unsafe { Box::from_raw(arg as *mut Job) });
            return Err(DpdkError::Lcore {
                lcore,
                reason: crate::error::strerror(rc),
            });
        }
        Ok(())
    }

    /// Waits for the job on `lcore` and returns its exit code.
    pub fn wait(&self, lcore: LcoreId) -> i32 {
        // SAFETY: waiting on any lcore id is allowed from the main lcore.
        unsafe { ffi::rte_eal_wait_lcore(lcore) }
    }

    /// Registers (or looks up) the mbuf RX timestamp dynamic field that
    /// PMDs such as net_pcap fill, returning its byte offset.
    pub fn rx_timestamp_field(&self) -> Result<crate::RxTimestamp, DpdkError> {
        let mut offset: c_int = -1;
        let mut flag: u64 = 0;
        // SAFETY: both out-pointers are valid for writes.
        let rc = unsafe { ffi::rte_mbuf_dyn_rx_timestamp_register(&mut offset, &mut flag) };
        if rc < 0 || offset < 0 {
            return Err(DpdkError::Call {
                call: "rte_mbuf_dyn_rx_timestamp_register",
                reason: last_error(),
            });
        }
        Ok(crate::RxTimestamp { offset, flag })
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: the EAL was initialised (self exists); the owner drops
        // ports, mempools and mbufs before the Eal (documented contract).
        unsafe {
            ffi::rte_eal_cleanup();
        }
    }
}
