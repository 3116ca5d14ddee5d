//! An owning packet buffer.
//!
//! [`Mbuf`] owns one `rte_mbuf`: it is not `Clone`, and dropping it returns
//! the buffer to its pool. Multi-segment mbufs are linearised on receipt
//! (see `RxQueue::burst`), so the data is always one contiguous slice.
//! An `Mbuf<'p>` borrows the pool it came from (or, received, the port
//! whose queues that pool feeds), so it cannot outlive the pool.

use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::ffi;

/// An owned, single-segment packet mbuf.
#[derive(Debug)]
pub struct Mbuf<'p> {
    ptr: NonNull<ffi::rte_mbuf>,
    _pool: PhantomData<&'p ()>,
}

// SAFETY: an mbuf is owned by exactly one Mbuf value; DPDK allows freeing an
// mbuf from any thread (mempool put is MT-safe).
unsafe impl Send for Mbuf<'_> {}

/// What a device checked of a packet's checksum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CsumStatus {
    /// Not checked (or not said): verify in software.
    #[default]
    Unknown,
    Good,
    Bad,
}

/// What the driver says about a received packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxInfo {
    /// The RSS hash the device computed, if it did.
    pub rss_hash: Option<u32>,
    pub ip_csum: CsumStatus,
    pub l4_csum: CsumStatus,
    /// The RX timestamp (net_pcap: the capture time in microseconds).
    pub timestamp: Option<u64>,
}

fn csum_status(flags: u64, mask: u64, good: u64, bad: u64) -> CsumStatus {
    match flags & mask {
        f if f == good => CsumStatus::Good,
        f if f == bad => CsumStatus::Bad,
        _ => CsumStatus::Unknown,
    }
}

/// Where PMDs store the RX timestamp (`rte_mbuf_dyn_rx_timestamp_register`).
#[derive(Debug, Clone, Copy)]
pub struct RxTimestamp {
    pub(crate) offset: i32,
    pub(crate) flag: u64,
}

impl<'p> Mbuf<'p> {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `ptr` must be a valid single-owner mbuf that nothing else owns or
    /// frees, from a pool that outlives `'p`.
    #[inline]
    pub unsafe fn from_raw(ptr: NonNull<ffi::rte_mbuf>) -> Mbuf<'p> {
        Mbuf {
            ptr,
            _pool: PhantomData,
        }
    }

    /// Gives up ownership (e.g. to hand the mbuf to `rte_eth_tx_burst`).
    #[inline]
    pub fn into_raw(self) -> *mut ffi::rte_mbuf {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }

    /// The raw pointer, still owned by this Mbuf.
    #[inline]
    pub(crate) fn as_raw(&self) -> *mut ffi::rte_mbuf {
        self.ptr.as_ptr()
    }

    /// The id of the port that received the mbuf (the PMD sets it).
    #[inline]
    pub fn port_id(&self) -> u16 {
        self.raw().port
    }

    /// The mbuf header, read in place: the hot accessors below avoid a
    /// call into the C shim per packet.
    #[inline]
    fn raw(&self) -> &ffi::rte_mbuf {
        // SAFETY: the pointer is a valid mbuf we own for the life of self.
        unsafe { self.ptr.as_ref() }
    }

    #[inline]
    fn data_ptr(&self) -> *mut u8 {
        let m = self.raw();
        // SAFETY: buf_addr + data_off is the start of the packet data,
        // inside the mbuf's buffer (DPDK's rte_pktmbuf_mtod).
        let p = unsafe { (m.buf_addr as *mut u8).add(m.data_off as usize) };
        // The bindgen layout must match the C one; checked against the shim
        // in debug builds (every replay test runs one).
        // SAFETY: the shim only reads the same valid mbuf.
        debug_assert_eq!(p, unsafe { ffi::dlvs_pktmbuf_data(self.ptr.as_ptr()) });
        p
    }

    /// The packet data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: single-segment mbuf: data_len bytes from the data pointer
        // are initialised packet data owned by this mbuf.
        unsafe { std::slice::from_raw_parts(self.data_ptr(), self.raw().data_len as usize) }
    }

    /// The packet data, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = self.raw().data_len as usize;
        // SAFETY: as `data`, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), len) }
    }

    /// The pool the mbuf belongs to (for comparison only).
    #[inline]
    pub(crate) fn pool(&self) -> *const ffi::rte_mempool {
        self.raw().pool
    }

    /// Packet length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes that can still be appended.
    #[inline]
    pub fn tailroom(&self) -> usize {
        // SAFETY: the mbuf is valid.
        unsafe { ffi::dlvs_pktmbuf_tailroom(self.ptr.as_ptr()) as usize }
    }

    /// Bytes that can still be prepended.
    #[inline]
    pub fn headroom(&self) -> usize {
        // SAFETY: the mbuf is valid.
        unsafe { ffi::dlvs_pktmbuf_headroom(self.ptr.as_ptr()) as usize }
    }

    /// Sets the packet length to `len`, growing into the tailroom or
    /// trimming. Returns false (and changes nothing) if it does not fit.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        let cur = self.len();
        let p = self.ptr.as_ptr();
        if len > cur {
            let add = len - cur;
            if add > self.tailroom() {
                return false;
            }
            // SAFETY: add fits in the tailroom (checked), so append succeeds
            // and only extends this mbuf's own data area.
            unsafe { !ffi::dlvs_pktmbuf_append(p, add as u16).is_null() }
        } else if len < cur {
            // SAFETY: trimming fewer bytes than the packet holds is always valid.
            unsafe { ffi::dlvs_pktmbuf_trim(p, (cur - len) as u16) == 0 }
        } else {
            true
        }
    }

    /// Prepends `n` bytes of headroom to the packet; false if there is no room.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> bool {
        if n > self.headroom() {
            return false;
        }
        // SAFETY: n fits in the headroom (checked).
        unsafe { !ffi::dlvs_pktmbuf_prepend(self.ptr.as_ptr(), n as u16).is_null() }
    }

    /// Makes a chained mbuf contiguous; false if it does not fit one segment.
    #[inline]
    pub(crate) fn linearize(&mut self) -> bool {
        // nb_segs is a plain field: read here, not through the shim, as
        // every received packet pays for the check.
        if self.raw().nb_segs == 1 {
            return true;
        }
        // SAFETY: the mbuf is valid and exclusively ours.
        unsafe { ffi::dlvs_pktmbuf_linearize(self.ptr.as_ptr()) == 0 }
    }

    /// The whole buffer (headroom, data, tailroom) and where the packet
    /// is in it: (buffer, data offset, data length).
    #[inline]
    pub fn buffer_mut(&mut self) -> (&mut [u8], usize, usize) {
        let m = self.raw();
        let (addr, buf_len) = (m.buf_addr as *mut u8, m.buf_len as usize);
        let (head, len) = (m.data_off as usize, m.data_len as usize);
        // SAFETY: buf_addr..buf_addr+buf_len is this mbuf's buffer, which
        // we own exclusively (&mut self); its bytes are initialised (the
        // pool's memory came zero-filled from the OS, and packets since
        // only wrote it). The data (data_off, data_len) lies inside it.
        let buf = unsafe { std::slice::from_raw_parts_mut(addr, buf_len) };
        (buf, head, len)
    }

    /// Moves the packet to `buffer[head..head + len]` (after a prepend,
    /// strip or extension); false, and nothing changed, if that is not
    /// inside the buffer. The mbuf is single-segment.
    #[inline]
    pub fn set_bounds(&mut self, head: usize, len: usize) -> bool {
        let buf_len = self.raw().buf_len as usize;
        if head.checked_add(len).map_or(true, |end| end > buf_len) || head > u16::MAX as usize {
            return false;
        }
        // SAFETY: we own the mbuf exclusively; the new bounds lie inside
        // its buffer (checked above), and a single-segment mbuf's packet
        // length equals its data length.
        let m = unsafe { self.ptr.as_mut() };
        m.data_off = head as u16;
        m.data_len = len as u16;
        m.pkt_len = len as u32;
        true
    }

    /// What the driver said about this received packet.
    #[inline]
    pub fn rx_info(&self, timestamp: Option<RxTimestamp>) -> RxInfo {
        let flags = self.raw().ol_flags;
        let rss_hash = (flags & ffi::RTE_MBUF_F_RX_RSS_HASH as u64 != 0).then(|| {
            // SAFETY: the mbuf is valid; the shim reads hash.rss, which the
            // driver set (the RSS flag says so).
            unsafe { ffi::dlvs_mbuf_rss(self.ptr.as_ptr()) }
        });
        let (ip_csum, l4_csum) = self.rx_csum();
        RxInfo {
            rss_hash,
            ip_csum,
            l4_csum,
            timestamp: timestamp.and_then(|f| self.rx_timestamp(f)),
        }
    }

    /// The device's checksum verdicts alone (IPv4 header, layer 4): what
    /// [`Mbuf::rx_info`] says without the RSS hash's and the timestamp's
    /// reads, for the per-packet path.
    #[inline]
    pub fn rx_csum(&self) -> (CsumStatus, CsumStatus) {
        let flags = self.raw().ol_flags;
        (
            csum_status(
                flags,
                ffi::RTE_MBUF_F_RX_IP_CKSUM_MASK as u64,
                ffi::RTE_MBUF_F_RX_IP_CKSUM_GOOD as u64,
                ffi::RTE_MBUF_F_RX_IP_CKSUM_BAD as u64,
            ),
            csum_status(
                flags,
                ffi::RTE_MBUF_F_RX_L4_CKSUM_MASK as u64,
                ffi::RTE_MBUF_F_RX_L4_CKSUM_GOOD as u64,
                ffi::RTE_MBUF_F_RX_L4_CKSUM_BAD as u64,
            ),
        )
    }

    /// The RX timestamp a PMD stored in the dynamic field, if it set the flag.
    #[inline]
    pub fn rx_timestamp(&self, field: RxTimestamp) -> Option<u64> {
        let p = self.ptr.as_ptr();
        // SAFETY: the mbuf is valid; ol_flags is a plain field.
        let flags = unsafe { ffi::dlvs_mbuf_ol_flags(p) };
        if flags & field.flag == 0 {
            return None;
        }
        // SAFETY: `field` came from rte_mbuf_dyn_rx_timestamp_register, so
        // the offset names a registered 8-byte dynamic field in every mbuf.
        Some(unsafe { ffi::dlvs_mbuf_dynfield_u64(p, field.offset) })
    }
}

impl Drop for Mbuf<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf exclusively and free it exactly once.
        unsafe { ffi::dlvs_pktmbuf_free(self.ptr.as_ptr()) }
    }
}
