//! The packet the pipeline works on: a frame inside its whole buffer.
//!
//! A [`Packet`] sees the buffer's headroom, data and tailroom, so the
//! pipeline can grow a frame in front (a tunnel header), strip a header,
//! or extend it at the end (an ICMP error quoting the packet that caused
//! it), all within the buffer and without a DPDK type: the worker lends
//! it an mbuf's buffer (`Mbuf::buffer_mut`), tests lend it a `TestBuf`.
//! Bytes a packet gains by `prepend` or `set_len` are whatever the buffer
//! held: the pipeline must write every one (a `TestBuf` fills its spare
//! room with poison so that tests catch a byte left unwritten).
//!
//! [`RxMeta`] carries what the driver said about a received frame
//! (checksum verdicts).

/// A device's verdict on a checksum it checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Csum {
    /// Not checked: verify in software.
    #[default]
    Unknown,
    Good,
    Bad,
}

/// What the driver said about a received frame that the pipeline uses:
/// its checksum verdicts. Two bytes, so that it passes in a register:
/// built field by field and copied whole through the stack, the 32-byte
/// one it was (with the RSS hash and the RX timestamp) stalled every
/// packet on store forwarding (measured with perf). The timestamp (the
/// replay's clock) is the worker's business; the RSS hash has no user yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxMeta {
    pub ip_csum: Csum,
    pub l4_csum: Csum,
}

/// A frame at `buf[head..head + len]`.
#[derive(Debug)]
pub struct Packet<'a> {
    buf: &'a mut [u8],
    head: usize,
    len: usize,
    meta: RxMeta,
}

impl<'a> Packet<'a> {
    /// The frame at `buf[head..head + len]`; bounds past the buffer are
    /// cut to it.
    pub fn new(buf: &'a mut [u8], head: usize, len: usize, meta: RxMeta) -> Packet<'a> {
        let head = head.min(buf.len());
        let len = len.min(buf.len() - head);
        Packet {
            buf,
            head,
            len,
            meta,
        }
    }

    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.head..self.head + self.len]
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.head..self.head + self.len]
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes free in front of the frame.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.head
    }

    /// Bytes free after the frame.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.head - self.len
    }

    /// Grows the frame by `n` bytes in front; false (nothing changed) if
    /// the headroom is short. The new bytes must be written.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> bool {
        if n > self.head {
            return false;
        }
        self.head -= n;
        self.len += n;
        true
    }

    /// Removes `n` bytes from the front; false if the frame is shorter.
    #[inline]
    pub fn strip(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.head += n;
        self.len -= n;
        true
    }

    /// Sets the frame's length, growing into the tailroom (the new bytes
    /// must be written) or cutting; false if it does not fit.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        if len > self.buf.len() - self.head {
            return false;
        }
        self.len = len;
        true
    }

    /// Where the frame is now: (head, len), for the buffer's owner.
    #[inline]
    pub fn bounds(&self) -> (usize, usize) {
        (self.head, self.len)
    }

    #[inline]
    pub fn meta(&self) -> &RxMeta {
        &self.meta
    }
}

/// A buffer the engine owns and lends to the pipeline as a [`Packet`]:
/// an mbuf in the worker, a `TestBuf` in tests and fuzzers.
pub trait PacketBuf {
    /// The frame's bytes.
    fn data(&self) -> &[u8];
    /// The frame in its whole buffer, with the driver's `meta`.
    fn packet(&mut self, meta: RxMeta) -> Packet<'_>;
    /// Records where the frame is after the pipeline moved its bounds;
    /// false if they are outside the buffer.
    fn set_bounds(&mut self, head: usize, len: usize) -> bool;
}
