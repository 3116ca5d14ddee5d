//! EAL initialisation, lcores and worker launch.
//!
//! [`Eal::init`] may succeed once per process. The returned handle owns the
//! EAL: dropping it calls `rte_eal_cleanup`. Everything else the crate
//! hands out ([`Mempool`](crate::Mempool), [`Device`](crate::Device),
//! [`Port`](crate::Port), [`Mbuf`](crate::Mbuf), queues) borrows from it,
//! so the borrow checker proves that nothing uses DPDK after cleanup.
//!
//! The handle is neither `Send` nor `Sync`: EAL control calls (launching
//! lcores, cleanup) belong to the thread that initialised it, the main
//! lcore.
//!
//! Lcore ids come as [`Lcore`] values, made only by checking the id
//! against the enabled set (below `RTE_MAX_LCORE`), so no function that
//! indexes EAL's lcore tables ever sees a bad id.
//!
//! Jobs run on worker lcores inside [`Eal::scope`], which waits for every
//! job it launched before it returns (as `std::thread::scope` does for
//! threads): a job may borrow ports, queues and pools, and a failure
//! part-way through launching still joins what was launched.

use std::cell::RefCell;
use std::ffi::{c_int, c_void, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{last_error, DpdkError, Errno};
use crate::ffi;

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The exit code a launched job reports when it panicked.
pub const JOB_PANICKED: i32 = i32::MIN;

/// The initialised EAL (main thread only).
#[derive(Debug)]
pub struct Eal {
    // Neither Send nor Sync: see the module doc.
    _main_thread: PhantomData<*const ()>,
}

/// An enabled lcore id, checked against the EAL's lcore set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lcore(u32);

impl Lcore {
    /// The lcore id as DPDK numbers them.
    pub fn id(self) -> u32 {
        self.0
    }
}

impl std::fmt::Display for Lcore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

type Job<'env> = Box<dyn FnOnce() -> i32 + Send + 'env>;

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> leaked by `LcoreScope::launch` for
    // exactly this call; DPDK passes it back once, so ownership is taken
    // back once. The job's borrows outlive it: they outlive 'env (the
    // scope is invariant in it, and 'env outlives the `Eal::scope` call),
    // and that call waits for this function to return.
    let job: Box<Job<'static>> = unsafe { Box::from_raw(arg as *mut Job<'static>) };
    // A panic must not unwind into C (the workspace builds with
    // panic = "unwind" in every profile, so this is live): report it as
    // the job's exit code.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(JOB_PANICKED)
}

impl Eal {
    /// Initialises the EAL with `args` (without a program name; one is
    /// prepended). Fails with DPDK's own reason, e.g. an unknown vdev.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal, DpdkError> {
        let mut owned = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("dlvs").expect("no NUL"));
        for a in args {
            let a = a.as_ref();
            owned.push(CString::new(a).map_err(|_| DpdkError::NulInArgument(a.to_owned()))?);
        }
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::EalAlreadyInit);
        }
        // rte_eal_init may permute argv; give it a private array of pointers.
        let mut argv: Vec<*mut std::ffi::c_char> =
            owned.iter().map(|s| s.as_ptr() as *mut _).collect();
        // SAFETY: argv holds argc valid NUL-terminated strings that outlive
        // the call (`owned` lives until the end of this function, and the
        // EAL copies what it keeps); INITIALISED makes this the only call.
        let rc = unsafe { ffi::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::EalInit(last_error()));
        }
        Ok(Eal {
            _main_thread: PhantomData,
        })
    }

    /// Checks that `id` is an enabled lcore.
    pub fn lcore(&self, id: u32) -> Result<Lcore, DpdkError> {
        if id >= ffi::RTE_MAX_LCORE {
            return Err(DpdkError::Lcore {
                lcore: id,
                reason: format!("above the highest lcore id {}", ffi::RTE_MAX_LCORE - 1),
            });
        }
        // SAFETY: the EAL is initialised (self exists) and id is below
        // RTE_MAX_LCORE (checked above), the bound of the table it reads.
        if unsafe { ffi::rte_lcore_is_enabled(id) } == 0 {
            return Err(DpdkError::Lcore {
                lcore: id,
                reason: "not enabled (see the EAL's -l/--lcores)".into(),
            });
        }
        Ok(Lcore(id))
    }

    /// The main lcore (the thread that called `init`).
    pub fn main_lcore(&self) -> Lcore {
        // SAFETY: valid after a successful rte_eal_init, which `self` proves;
        // the main lcore is always enabled and below RTE_MAX_LCORE.
        Lcore(unsafe { ffi::rte_get_main_lcore() })
    }

    /// The worker lcores (all enabled lcores but the main one), ascending.
    pub fn worker_lcores(&self) -> Vec<Lcore> {
        let mut v = Vec::new();
        // SAFETY: iteration over the enabled lcore set after init; skip_main=1,
        // wrap=0 walks each worker once and returns RTE_MAX_LCORE at the end
        // (it accepts any start id: u32::MAX starts from the first).
        let mut id = unsafe { ffi::rte_get_next_lcore(u32::MAX, 1, 0) };
        while id < ffi::RTE_MAX_LCORE {
            v.push(Lcore(id));
            // SAFETY: as above.
            id = unsafe { ffi::rte_get_next_lcore(id, 1, 0) };
        }
        v
    }

    /// The NUMA socket of an lcore.
    pub fn lcore_socket(&self, lcore: Lcore) -> u32 {
        // SAFETY: `Lcore` ids are enabled and below RTE_MAX_LCORE, the
        // bound of the lcore table this indexes.
        unsafe { ffi::rte_lcore_to_socket_id(lcore.0) }
    }

    /// The CPUs an lcore's thread may run on.
    pub fn lcore_cpus(&self, lcore: Lcore) -> Vec<usize> {
        // SAFETY: as for `lcore_socket`: a checked lcore id.
        let set = unsafe { ffi::rte_lcore_cpuset(lcore.0) };
        crate::thread::cpus_of(&set)
    }

    /// Time-stamp counter ticks per second.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: valid after init, which `self` proves.
        unsafe { ffi::rte_get_tsc_hz() }
    }

    /// Registers (or looks up) the mbuf RX timestamp dynamic field that
    /// PMDs such as net_pcap fill, returning its byte offset.
    pub fn rx_timestamp_field(&self) -> Result<crate::RxTimestamp, DpdkError> {
        let mut offset: c_int = -1;
        let mut flag: u64 = 0;
        // SAFETY: both out-pointers are valid for writes; the EAL is up.
        let rc = unsafe { ffi::rte_mbuf_dyn_rx_timestamp_register(&mut offset, &mut flag) };
        if rc < 0 || offset < 0 {
            return Err(DpdkError::Failed {
                call: "rte_mbuf_dyn_rx_timestamp_register",
                subject: None,
                errno: last_error(),
            });
        }
        Ok(crate::RxTimestamp { offset, flag })
    }

    /// Runs `f` with a scope in which jobs can be launched on worker
    /// lcores. Every job launched in the scope has returned when `scope`
    /// returns (it waits for those `f` did not wait for), so jobs may
    /// borrow anything that outlives the call. If `f` panics, the scope
    /// still waits for the jobs before the panic goes on: jobs must be
    /// able to end on their own (a stop flag the caller sets).
    pub fn scope<'env, T>(&'env self, f: impl for<'s> FnOnce(&'s LcoreScope<'env>) -> T) -> T {
        let scope = LcoreScope {
            eal: self,
            running: RefCell::new(Vec::new()),
            _invariant: PhantomData,
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&scope)));
        let left: Vec<Lcore> = scope.running.borrow_mut().drain(..).collect();
        for l in left {
            scope.join(l);
        }
        match r {
            Ok(t) => t,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

/// Launches jobs on worker lcores; see [`Eal::scope`].
///
/// Invariant in `'env` (as `std::thread::Scope` is): a covariant scope
/// could be shrunk at a `launch` call to a lifetime that ends inside the
/// scope's closure, and a job could then borrow the closure's locals.
#[derive(Debug)]
pub struct LcoreScope<'env> {
    eal: &'env Eal,
    running: RefCell<Vec<Lcore>>,
    _invariant: PhantomData<&'env mut &'env ()>,
}

impl<'env> LcoreScope<'env> {
    /// Runs `job` on the worker lcore `lcore`; its return value is the
    /// lcore's exit code ([`JOB_PANICKED`] if it panicked).
    pub fn launch<F>(&self, lcore: Lcore, job: F) -> Result<(), DpdkError>
    where
        F: FnOnce() -> i32 + Send + 'env,
    {
        if lcore == self.eal.main_lcore() {
            return Err(DpdkError::Lcore {
                lcore: lcore.0,
                reason: "the main lcore runs the caller, not launched jobs".into(),
            });
        }
        if self.running.borrow().contains(&lcore) {
            return Err(DpdkError::Lcore {
                lcore: lcore.0,
                reason: "already runs a job of this scope".into(),
            });
        }
        let boxed: Box<Job<'env>> = Box::new(Box::new(job));
        let arg = Box::into_raw(boxed) as *mut c_void;
        // SAFETY: `trampoline` has the lcore_function_t signature and takes
        // ownership of `arg` when it runs; if the launch fails it never
        // runs and ownership comes back below. `lcore` is an enabled worker
        // lcore (checked type, not the main one). The scope joins the lcore
        // before 'env ends, so the job's borrows stay valid while it runs.
        let rc = unsafe { ffi::rte_eal_remote_launch(Some(trampoline), arg, lcore.0) };
        if rc != 0 {
            // SAFETY: the launch failed, so `arg` was not handed to the lcore.
            drop(unsafe { Box::from_raw(arg as *mut Job<'env>) });
            return Err(DpdkError::Launch {
                lcore: lcore.0,
                errno: Errno(rc.abs()),
            });
        }
        self.running.borrow_mut().push(lcore);
        Ok(())
    }

    /// Waits for the job on `lcore` and returns its exit code; `None` if
    /// this scope runs no job there.
    pub fn wait(&self, lcore: Lcore) -> Option<i32> {
        let mut running = self.running.borrow_mut();
        let i = running.iter().position(|&l| l == lcore)?;
        running.swap_remove(i);
        drop(running);
        Some(self.join(lcore))
    }

    fn join(&self, lcore: Lcore) -> i32 {
        // SAFETY: called on the main lcore (the scope borrows the !Send
        // Eal), for an lcore id checked at launch.
        unsafe { ffi::rte_eal_wait_lcore(lcore.0) }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: the EAL was initialised (self exists); everything that
        // uses it borrows it, so nothing is left to use it after this.
        unsafe {
            ffi::rte_eal_cleanup();
        }
    }
}
