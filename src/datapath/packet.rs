//! The packet the pipeline works on: a frame inside its whole buffer.
//!
//! A [`Packet`] sees the buffer's headroom, data and tailroom, so the
//! pipeline can grow a frame in front (a tunnel header), strip a header,
//! or extend it at the end (an ICMP error quoting the packet that caused
//! it), all within the buffer and without a DPDK type: the worker lends
//! it an mbuf's buffer (`Mbuf::buffer_mut`), tests lend it a [`TestBuf`].
//! Bytes a packet gains by `prepend` or `set_len` are whatever the buffer
//! held: the pipeline must write every one (a [`TestBuf`] fills its spare
//! room with [`POISON`] so that tests catch a byte left unwritten).
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
/// an mbuf in the worker, a [`TestBuf`] in tests and fuzzers.
pub trait PacketBuf {
    /// The frame's bytes.
    fn data(&self) -> &[u8];
    /// The frame in its whole buffer, with the driver's `meta`.
    fn packet(&mut self, meta: RxMeta) -> Packet<'_>;
    /// Records where the frame is after the pipeline moved its bounds;
    /// false if they are outside the buffer.
    fn set_bounds(&mut self, head: usize, len: usize) -> bool;
}

/// The spare-room pattern of a [`TestBuf`]: a byte the pipeline should
/// have written and did not shows as part of it.
pub const POISON: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];

/// Headroom of a [`TestBuf`]: DPDK's default `RTE_PKTMBUF_HEADROOM`.
pub const TEST_HEADROOM: usize = 128;
/// Data room of a [`TestBuf`] after its headroom: DPDK's default 2048,
/// or the frame's length if larger.
pub const TEST_ROOM: usize = 2048;

/// A heap buffer shaped like an mbuf: headroom, data, tailroom; every
/// byte outside the frame is [`POISON`].
#[derive(Clone, PartialEq, Eq)]
pub struct TestBuf {
    bytes: Vec<u8>,
    head: usize,
    len: usize,
}

impl std::fmt::Debug for TestBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestBuf(head {}, len {}: ", self.head, self.len)?;
        for b in self.data() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl Default for TestBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl TestBuf {
    /// An empty buffer.
    pub fn new() -> TestBuf {
        Self::with_frame(&[])
    }

    /// A buffer holding `frame` after the headroom.
    pub fn with_frame(frame: &[u8]) -> TestBuf {
        let size = TEST_HEADROOM + TEST_ROOM.max(frame.len());
        let mut bytes: Vec<u8> = (0..size).map(|i| POISON[i % POISON.len()]).collect();
        bytes[TEST_HEADROOM..TEST_HEADROOM + frame.len()].copy_from_slice(frame);
        TestBuf {
            bytes,
            head: TEST_HEADROOM,
            len: frame.len(),
        }
    }

    /// The frame's bytes, owned.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data().to_vec()
    }
}

impl PacketBuf for TestBuf {
    fn data(&self) -> &[u8] {
        &self.bytes[self.head..self.head + self.len]
    }

    fn packet(&mut self, meta: RxMeta) -> Packet<'_> {
        Packet::new(&mut self.bytes, self.head, self.len, meta)
    }

    fn set_bounds(&mut self, head: usize, len: usize) -> bool {
        if head
            .checked_add(len)
            .map_or(true, |end| end > self.bytes.len())
        {
            return false;
        }
        self.head = head;
        self.len = len;
        true
    }
}

/// True if `frame` holds 8 bytes of [`POISON`] in a row (at any phase):
/// the sign of bytes a frame gained but nobody wrote.
pub fn has_poison(frame: &[u8]) -> bool {
    frame.windows(8).any(|w| {
        (0..POISON.len()).any(|phase| {
            w.iter()
                .enumerate()
                .all(|(i, &b)| b == POISON[(i + phase) % POISON.len()])
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_shrinks_within_the_buffer() {
        let mut b = TestBuf::with_frame(&[1, 2, 3, 4]);
        let mut p = b.packet(RxMeta::default());
        assert_eq!((p.headroom(), p.len()), (TEST_HEADROOM, 4));
        assert_eq!(p.tailroom(), TEST_ROOM - 4);
        assert!(p.prepend(20));
        assert_eq!(p.len(), 24);
        // Unwritten bytes show as poison.
        assert!(has_poison(p.data()));
        p.data_mut()[..20].fill(0);
        assert!(!has_poison(p.data()));
        assert!(p.strip(20));
        assert_eq!(p.data(), &[1, 2, 3, 4]);
        assert!(p.set_len(60));
        assert!(has_poison(&p.data()[4..]));
        assert!(p.set_len(2));
        assert_eq!(p.data(), &[1, 2]);
        assert!(!p.prepend(TEST_HEADROOM + 1));
        assert!(!p.strip(3));
        assert!(!p.set_len(TEST_ROOM + 1));
        let (h, l) = p.bounds();
        assert!(b.set_bounds(h, l));
        assert_eq!(b.data(), &[1, 2]);
        assert!(!b.set_bounds(TEST_HEADROOM, TEST_ROOM + 1));
    }

    #[test]
    fn bounds_past_the_buffer_are_cut() {
        let mut buf = [0u8; 10];
        let p = Packet::new(&mut buf, 8, 5, RxMeta::default());
        assert_eq!((p.headroom(), p.len(), p.tailroom()), (8, 2, 0));
        let p = Packet::new(&mut buf, 20, 5, RxMeta::default());
        assert_eq!((p.headroom(), p.len()), (10, 0));
    }

    #[test]
    fn poison_is_found_at_any_phase() {
        assert!(has_poison(&[
            0, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 1
        ]));
        assert!(!has_poison(&[0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0]));
    }
}
