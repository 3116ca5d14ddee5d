//! A heap buffer shaped like an mbuf, for tests, benchmarks and fuzzers
//! (built with `cfg(test)` or the `testing` feature only): its spare room
//! is poison, so a byte the pipeline should have written and did not
//! shows.

use super::packet::{Packet, PacketBuf, RxMeta};

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
