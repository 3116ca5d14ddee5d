//! Rings of mbufs between lcores (`rte_ring`, lock-free): many producers,
//! one consumer. A worker hands a packet another worker owns to that
//! worker's ring; the owner drains its ring between bursts.
//!
//! A [`MbufRing`] borrows the pool its mbufs come from, so nothing in it
//! outlives the pool; dropping the ring frees what is still in it. Any
//! number of [`RingSender`]s (cloneable) may enqueue from any thread; the
//! one [`RingReceiver`] dequeues.

use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{last_error, DpdkError};
use crate::{ffi, Mbuf, Mempool, BURST};

/// A multi-producer, single-consumer ring of mbufs of one pool.
#[derive(Debug)]
pub struct MbufRing<'p> {
    ptr: NonNull<ffi::rte_ring>,
    receiver_taken: AtomicBool,
    _pool: PhantomData<&'p ()>,
}

// SAFETY: rte_ring's multi-producer enqueue is thread-safe; the single
// consumer is enforced by handing out one RingReceiver; the handle is a
// pointer to shared memory valid until Drop.
unsafe impl Send for MbufRing<'_> {}
// SAFETY: as above: every operation through &MbufRing (sender handles)
// is a multi-producer enqueue, which DPDK makes thread-safe.
unsafe impl Sync for MbufRing<'_> {}

impl<'p> MbufRing<'p> {
    /// A ring of `count` slots (a power of two; one slot stays empty) for
    /// mbufs of `pool`.
    pub fn new(
        _pool: &'p Mempool<'_>,
        name: &str,
        count: u32,
        socket: i32,
    ) -> Result<MbufRing<'p>, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::NulInArgument(name.to_owned()))?;
        // SAFETY: returns a constant.
        let flags = unsafe { ffi::dlvs_ring_sc_deq_flag() };
        // SAFETY: the EAL is up (the pool borrows it); cname is a valid C
        // string for the call; a null return is handled.
        let p = unsafe { ffi::rte_ring_create(cname.as_ptr(), count, socket, flags) };
        NonNull::new(p)
            .map(|ptr| MbufRing {
                ptr,
                receiver_taken: AtomicBool::new(false),
                _pool: PhantomData,
            })
            .ok_or_else(|| DpdkError::Failed {
                call: "rte_ring_create",
                subject: Some(name.to_owned()),
                errno: last_error(),
            })
    }

    /// A handle to enqueue with (any number, any thread).
    pub fn sender(&self) -> RingSender<'_, 'p> {
        RingSender { ring: self }
    }

    /// The one handle to dequeue with; `None` if it was taken already.
    pub fn receiver(&self) -> Option<RingReceiver<'_, 'p>> {
        (!self.receiver_taken.swap(true, Ordering::SeqCst)).then_some(RingReceiver { ring: self })
    }
}

impl Drop for MbufRing<'_> {
    fn drop(&mut self) {
        // No handle is left (they borrow the ring): free what is in it.
        let mut raw = [std::ptr::null_mut::<c_void>(); BURST];
        loop {
            // SAFETY: the ring is valid and nothing else uses it now;
            // raw has room for BURST pointers.
            let n = unsafe {
                ffi::dlvs_ring_sc_dequeue_burst(self.ptr.as_ptr(), raw.as_mut_ptr(), BURST as u32)
            } as usize;
            if n == 0 {
                break;
            }
            for &p in &raw[..n] {
                // SAFETY: the ring holds only mbufs enqueued by RingSender,
                // each owned by the ring until dequeued; its pool outlives
                // the ring ('p).
                unsafe { ffi::dlvs_pktmbuf_free(p as *mut ffi::rte_mbuf) };
            }
        }
        // SAFETY: the ring was created by rte_ring_create and is empty and
        // unused now.
        unsafe { ffi::rte_ring_free(self.ptr.as_ptr()) };
    }
}

/// Enqueues mbufs into a ring.
#[derive(Debug, Clone, Copy)]
pub struct RingSender<'r, 'p> {
    ring: &'r MbufRing<'p>,
}

impl<'p> RingSender<'_, 'p> {
    /// Enqueues as many of `mbufs` as fit (at most [`BURST`] per call
    /// are taken from the front); returns how many. Those not taken stay
    /// in `mbufs`.
    #[inline]
    pub fn send(&self, mbufs: &mut Vec<Mbuf<'p>>) -> usize {
        let n = mbufs.len().min(BURST);
        if n == 0 {
            return 0;
        }
        let mut raw = [std::ptr::null_mut::<c_void>(); BURST];
        for (r, m) in raw.iter_mut().zip(mbufs.iter()) {
            *r = m.as_raw() as *mut c_void;
        }
        // SAFETY: the ring is valid while borrowed; raw[..n] are valid
        // mbufs; multi-producer enqueue is thread-safe.
        let sent = unsafe {
            ffi::dlvs_ring_mp_enqueue_burst(self.ring.ptr.as_ptr(), raw.as_ptr(), n as u32)
        } as usize;
        // The ring owns the first `sent` now: forget them here.
        for m in mbufs.drain(..sent) {
            let _ = m.into_raw();
        }
        sent
    }
}

/// Dequeues mbufs from a ring (one per ring).
#[derive(Debug)]
pub struct RingReceiver<'r, 'p> {
    ring: &'r MbufRing<'p>,
}

impl<'p> RingReceiver<'_, 'p> {
    /// Dequeues up to [`BURST`] mbufs, appending them to `out`.
    #[inline]
    pub fn recv(&mut self, out: &mut Vec<Mbuf<'p>>) -> usize {
        let mut raw = [std::ptr::null_mut::<c_void>(); BURST];
        // SAFETY: the ring is valid while borrowed; this is its only
        // consumer (one receiver per ring, and &mut self); raw has room for
        // BURST pointers.
        let n = unsafe {
            ffi::dlvs_ring_sc_dequeue_burst(self.ring.ptr.as_ptr(), raw.as_mut_ptr(), BURST as u32)
        } as usize;
        for &p in &raw[..n] {
            // SAFETY: a dequeued pointer is an mbuf a sender gave up to the
            // ring, now owned by us; its pool outlives 'p.
            out.push(unsafe { Mbuf::from_raw(NonNull::new_unchecked(p as *mut ffi::rte_mbuf)) });
        }
        n
    }
}
