//! Packet mbuf pools.

use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{last_error, DpdkError};
use crate::ffi;
use crate::Mbuf;

/// A pool of packet mbufs (`rte_pktmbuf_pool_create`). Free it only after
/// every port using it is closed and every mbuf from it is freed.
#[derive(Debug)]
pub struct Mempool {
    ptr: NonNull<ffi::rte_mempool>,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe; the handle is
// a plain pointer to shared memory valid until Drop.
unsafe impl Send for Mempool {}
// SAFETY: as above, every operation through &Mempool is thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `n` mbufs with `cache` per-lcore cache entries and
    /// the default data room (2048 bytes + headroom).
    pub fn new(name: &str, n: u32, cache: u32, socket: i32) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::NulInArgument(name.to_owned()))?;
        // SAFETY: cname is a valid C string for the call; the other
        // arguments are plain integers. A null return is handled.
        let p = unsafe {
            ffi::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                n,
                cache,
                0,
                ffi::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
                socket,
            )
        };
        NonNull::new(p)
            .map(|ptr| Mempool { ptr })
            .ok_or_else(|| DpdkError::Mempool {
                name: name.to_owned(),
                reason: last_error(),
            })
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.ptr.as_ptr()
    }

    /// Allocates one mbuf with an empty data area, or None if the pool is dry.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid for the life of self.
        let m = unsafe { ffi::dlvs_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: a non-null result is a fresh mbuf we now own exclusively.
        NonNull::new(m).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// Free mbufs in the pool (approximate while other lcores allocate).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool pointer is valid.
        unsafe { ffi::dlvs_mempool_avail_count(self.ptr.as_ptr()) }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: by contract no port or mbuf uses the pool any more.
        unsafe { ffi::rte_mempool_free(self.ptr.as_ptr()) }
    }
}
