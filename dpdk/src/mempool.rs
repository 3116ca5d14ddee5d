//! Packet mbuf pools.

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::error::{last_error, DpdkError};
use crate::{ffi, Eal, Mbuf};

/// Headroom DPDK reserves in front of every packet (`RTE_PKTMBUF_HEADROOM`).
pub const HEADROOM: u16 = ffi::RTE_PKTMBUF_HEADROOM as u16;

/// A pool of packet mbufs (`rte_pktmbuf_pool_create`). It borrows the
/// [`Eal`]; ports set up on it and mbufs taken from it borrow the pool, so
/// it is freed only after all of them are gone.
#[derive(Debug)]
pub struct Mempool<'e> {
    ptr: NonNull<ffi::rte_mempool>,
    data_room: u16,
    _eal: PhantomData<&'e ()>,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe; the handle is
// a plain pointer to shared memory valid until Drop.
unsafe impl Send for Mempool<'_> {}
// SAFETY: as above, every operation through &Mempool is thread-safe in DPDK.
unsafe impl Sync for Mempool<'_> {}

impl<'e> Mempool<'e> {
    /// Creates a pool of `n` mbufs with `cache` per-lcore cache entries,
    /// each able to hold `data_room` bytes of packet after the headroom.
    pub fn new(
        _eal: &'e Eal,
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool<'e>, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::NulInArgument(name.to_owned()))?;
        let room = data_room.checked_add(HEADROOM).ok_or(DpdkError::Mempool {
            name: name.to_owned(),
            reason: format!("{data_room}-byte buffers do not fit the 64 KiB an mbuf can hold"),
        })?;
        // SAFETY: the EAL is initialised (`_eal` proves it); cname is a
        // valid C string for the call; the other arguments are plain
        // integers. A null return is handled.
        let p = unsafe { ffi::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, room, socket) };
        NonNull::new(p)
            .map(|ptr| Mempool {
                ptr,
                data_room,
                _eal: PhantomData,
            })
            .ok_or_else(|| DpdkError::MempoolCreate {
                name: name.to_owned(),
                errno: last_error(),
            })
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.ptr.as_ptr()
    }

    /// Bytes of packet one mbuf holds after its headroom.
    pub fn data_room(&self) -> u16 {
        self.data_room
    }

    /// Allocates one mbuf with an empty data area, or None if the pool is dry.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf<'_>> {
        // SAFETY: the pool pointer is valid for the life of self.
        let m = unsafe { ffi::dlvs_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: a non-null result is a fresh mbuf of this pool that we
        // now own exclusively; the Mbuf borrows the pool.
        NonNull::new(m).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// Free mbufs in the pool (approximate while other lcores allocate).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool pointer is valid.
        unsafe { ffi::dlvs_mempool_avail_count(self.ptr.as_ptr()) }
    }
}

impl Drop for Mempool<'_> {
    fn drop(&mut self) {
        // SAFETY: ports set up on this pool and mbufs from it borrow it, so
        // none is left; mbufs a device still holds in a TX ring were
        // accepted only by ports of this pool (`TxQueue::push` checks), and
        // those ports are closed (they borrow the pool); the EAL is still
        // up (the pool borrows it).
        unsafe { ffi::rte_mempool_free(self.ptr.as_ptr()) }
    }
}
