//! TCP segment headers (RFC 793, flags from RFC 3168).
//!
//! # Contract
//!
//! - Callers pass exactly the IPv4 payload (`Ipv4Packet::payload`): TCP has
//!   no length field, and the checksum covers the whole segment plus the
//!   IPv4 pseudo header.
//! - [`TcpPacket::new_checked`]: shorter than [`MIN_HEADER_LEN`] →
//!   [`WireError::Truncated`]; data offset < 5 → [`WireError::BadHeaderLen`];
//!   data offset × 4 past the buffer → [`WireError::Truncated`].
//! - Options are exposed as raw bytes; [`TcpRepr`] drops them on parse and
//!   emits a 20-byte header with data offset 5 and a zero checksum: fill the
//!   checksum afterwards with [`TcpPacket::fill_checksum`], once the payload
//!   is in place.
//! - The `rewrite_*` setters patch the checksum incrementally (RFC 1624), the
//!   way a NAT rewrites ports and addresses without touching the payload.

use core::fmt;
use core::ops;
use std::net::Ipv4Addr;

use super::checksum;
use super::{clamped, clamped_mut, read_u16, read_u32, write_u16, write_u32, WireError};

/// Length of a TCP header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// IP protocol number of TCP, as used in the pseudo header.
const PROTOCOL: u8 = 6;

mod field {
    pub(super) const SRC_PORT: usize = 0;
    pub(super) const DST_PORT: usize = 2;
    pub(super) const SEQ: usize = 4;
    pub(super) const ACK: usize = 8;
    pub(super) const DATA_OFF: usize = 12;
    pub(super) const FLAGS: usize = 13;
    pub(super) const WINDOW: usize = 14;
    pub(super) const CHECKSUM: usize = 16;
    pub(super) const URGENT: usize = 18;
}

/// The eight flag bits of header byte 13 (RFC 793 section 3.1; ECE and CWR
/// from RFC 3168 section 23.2). The NS bit (RFC 3540, historic) in byte 12
/// is not included.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion Window Reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    const NAMES: [(TcpFlags, &'static str); 8] = [
        (Self::FIN, "FIN"),
        (Self::SYN, "SYN"),
        (Self::RST, "RST"),
        (Self::PSH, "PSH"),
        (Self::ACK, "ACK"),
        (Self::URG, "URG"),
        (Self::ECE, "ECE"),
        (Self::CWR, "CWR"),
    ];

    /// No flag set.
    #[inline]
    pub const fn empty() -> Self {
        TcpFlags(0)
    }

    /// The raw byte.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// No flag set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Every flag of `other` is set in `self`.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// At least one flag of `other` is set in `self`.
    #[inline]
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
}

impl ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl ops::BitOrAssign for TcpFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl ops::BitAnd for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl ops::Not for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn not(self) -> TcpFlags {
        TcpFlags(!self.0)
    }
}

impl fmt::Debug for TcpFlags {
    /// `TcpFlags(SYN | ACK)`, `TcpFlags(empty)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TcpFlags(")?;
        if self.is_empty() {
            f.write_str("empty")?;
        }
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// A view of a TCP segment (header, options and payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = MIN_HEADER_LEN;

    /// Wrap `buffer` (exactly the IPv4 payload).
    ///
    /// # Errors
    /// See the module docs.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = usize::from(b[field::DATA_OFF] >> 4) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(WireError::BadHeaderLen);
        }
        if header_len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(TcpPacket { buffer })
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole segment.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ)
    }

    /// Acknowledgment number (meaningful when ACK is set).
    #[inline]
    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK)
    }

    /// Header length in bytes (data offset × 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The flags of byte 13.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Receive window (unscaled).
    #[inline]
    pub fn window(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// Raw options (`20..header_len`).
    #[inline]
    pub fn options(&self) -> &[u8] {
        clamped(self.buffer.as_ref(), MIN_HEADER_LEN, self.header_len())
    }

    /// Payload (`header_len..`).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        clamped(b, self.header_len(), b.len())
    }

    /// Checksum over the IPv4 pseudo header and the whole buffer is
    /// ones'-complement -0 (RFC 793 section 3.1).
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        // An IPv4 payload is below 64 KiB, so the length fits the u16.
        let ph = checksum::pseudo_header_sum(src, dst, PROTOCOL, b.len() as u16);
        checksum::fold(ph + checksum::sum(b)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// The whole segment, mutable.
    #[inline]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Set the source port (checksum not updated).
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    /// Set the destination port (checksum not updated).
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    /// Set the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ, value);
    }

    /// Set the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::ACK, value);
    }

    /// Set the header length in bytes; it is stored as `bytes / 4` in the
    /// 4-bit data offset (values above 60 are truncated to the field).
    /// Accessors stay panic-free whatever the value.
    #[inline]
    pub fn set_header_len(&mut self, bytes: usize) {
        let b = self.buffer.as_mut();
        let off = ((bytes / 4) as u8 & 0x0f) << 4;
        b[field::DATA_OFF] = off | (b[field::DATA_OFF] & 0x0f);
    }

    /// Set the flags of byte 13.
    #[inline]
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Set the receive window.
    #[inline]
    pub fn set_window(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, value);
    }

    /// Store a checksum.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Set the urgent pointer.
    #[inline]
    pub fn set_urgent(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::URGENT, value);
    }

    /// Raw options, mutable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        clamped_mut(self.buffer.as_mut(), MIN_HEADER_LEN, hl)
    }

    /// Payload, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        let len = b.len();
        clamped_mut(b, hl, len)
    }

    /// Compute and store the checksum over the pseudo header and the whole
    /// buffer (RFC 793 section 3.1).
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header_sum(src, dst, PROTOCOL, b.len() as u16);
        let c = !checksum::fold(ph + checksum::sum(b));
        self.set_checksum(c);
    }

    /// Set the source port, patching the checksum (RFC 1624).
    #[inline]
    pub fn rewrite_src_port(&mut self, port: u16) {
        let c = checksum::update16(self.checksum(), self.src_port(), port);
        self.set_src_port(port);
        self.set_checksum(c);
    }

    /// Set the destination port, patching the checksum (RFC 1624).
    #[inline]
    pub fn rewrite_dst_port(&mut self, port: u16) {
        let c = checksum::update16(self.checksum(), self.dst_port(), port);
        self.set_dst_port(port);
        self.set_checksum(c);
    }

    /// Patch the checksum for a pseudo-header address change (the IPv4
    /// source or destination rewritten by NAT), RFC 1624.
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let c = checksum::update32(self.checksum(), old.into(), new.into());
        self.set_checksum(c);
    }
}

/// The fixed part of a TCP header as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Receive window.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
}

impl TcpRepr {
    /// Bytes [`TcpRepr::emit`] writes.
    pub const HEADER_LEN: usize = MIN_HEADER_LEN;

    /// Read a checked packet; options are dropped and the checksum is not
    /// verified. Never fails today; the `Result` keeps signatures uniform.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(packet: &TcpPacket<T>) -> Result<Self, WireError> {
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq_number(),
            ack: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window(),
            urgent: packet.urgent(),
        })
    }

    /// Bytes [`TcpRepr::emit`] writes: the 20-byte header.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        MIN_HEADER_LEN
    }

    /// Write a 20-byte header (data offset 5, checksum 0) at the start of
    /// `buf`; then place the payload and call [`TcpPacket::fill_checksum`].
    ///
    /// # Errors
    /// [`WireError::Truncated`] if `buf` is shorter than 20 bytes.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let b = buf.get_mut(..MIN_HEADER_LEN).ok_or(WireError::Truncated)?;
        write_u16(b, field::SRC_PORT, self.src_port);
        write_u16(b, field::DST_PORT, self.dst_port);
        write_u32(b, field::SEQ, self.seq);
        write_u32(b, field::ACK, self.ack);
        b[field::DATA_OFF] = ((MIN_HEADER_LEN / 4) as u8) << 4;
        b[field::FLAGS] = self.flags.0;
        write_u16(b, field::WINDOW, self.window);
        write_u16(b, field::CHECKSUM, 0);
        write_u16(b, field::URGENT, self.urgent);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, l4_segment};
    use super::*;
    use proptest::prelude::*;
    use smoltcp::wire::IpAddress;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn syn() -> &'static [u8] {
        l4_segment(&fixtures::TCP_SYN_FRAME)
    }

    fn ack() -> &'static [u8] {
        l4_segment(&fixtures::TCP_ACK_PADDED_FRAME)
    }

    const SYN_OPTIONS: [u8; 20] = [
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, // SACK permitted
        0x08, 0x0a, 0x0a, 0x1b, 0x2c, 0x3d, 0x00, 0x00, 0x00, 0x00, // timestamps
        0x01, // NOP
        0x03, 0x03, 0x07, // window scale 7
    ];

    fn syn_repr() -> TcpRepr {
        TcpRepr {
            src_port: 43210,
            dst_port: 80,
            seq: 0x6f5e_4d3c,
            ack: 0,
            flags: TcpFlags::SYN,
            window: 64240,
            urgent: 0,
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = TcpPacket::new_checked(syn()).unwrap();
        assert_eq!(p.src_port(), 43210);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x6f5e_4d3c);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert_eq!(p.window(), 64240);
        assert_eq!(p.checksum(), 0x9cff);
        assert_eq!(p.urgent(), 0);
        assert_eq!(p.options(), &SYN_OPTIONS);
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(CLIENT, SERVER));
        assert!(!p.verify_checksum(SERVER, Ipv4Addr::new(10, 0, 0, 3)));

        let p = TcpPacket::new_checked(ack()).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.flags(), TcpFlags::ACK);
        assert_eq!(p.ack_number(), 0x1122_3345);
        assert_eq!(p.window(), 502);
        assert!(p.options().is_empty() && p.payload().is_empty());
        assert!(p.verify_checksum(CLIENT, SERVER));
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 40];
        syn_repr().emit(&mut buf).unwrap();
        let mut p = TcpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_header_len(40);
        p.options_mut().copy_from_slice(&SYN_OPTIONS);
        p.fill_checksum(CLIENT, SERVER);
        assert_eq!(&buf[..], syn());

        let mut buf = [0u8; 20];
        buf[12] = 0x50; // a zeroed buffer has data offset 0: not a header yet
        let mut p = TcpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_header_len(20);
        p.set_src_port(43210);
        p.set_dst_port(80);
        p.set_seq_number(0x6f5e_4d3d);
        p.set_ack_number(0x1122_3345);
        p.set_flags(TcpFlags::ACK);
        p.set_window(502);
        p.set_urgent(0);
        p.fill_checksum(CLIENT, SERVER);
        assert_eq!(&buf[..], ack());
    }

    #[test]
    fn test_parse_then_emit_roundtrip() {
        let repr = TcpRepr::parse(&TcpPacket::new_checked(syn()).unwrap()).unwrap();
        assert_eq!(repr, syn_repr());
        assert_eq!(repr.buffer_len(), 20);
        let mut buf = [0u8; 20];
        repr.emit(&mut buf).unwrap();
        // Same fixed header except data offset (options dropped) and checksum.
        assert_eq!(buf[..12], syn()[..12]);
        assert_eq!(buf[12], 0x50);
        assert_eq!(buf[13..16], syn()[13..16]);
        assert_eq!(buf[16..18], [0, 0]);
        assert_eq!(buf[18..20], syn()[18..20]);

        // Without options the roundtrip is byte-exact once the checksum is
        // filled.
        let repr = TcpRepr::parse(&TcpPacket::new_checked(ack()).unwrap()).unwrap();
        repr.emit(&mut buf).unwrap();
        TcpPacket::new_checked(&mut buf[..])
            .unwrap()
            .fill_checksum(CLIENT, SERVER);
        assert_eq!(&buf[..], ack());
    }

    #[test]
    fn test_payload() {
        let mut seg = ack().to_vec();
        seg.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
        let mut p = TcpPacket::new_checked(&mut seg[..]).unwrap();
        p.fill_checksum(CLIENT, SERVER);
        assert_eq!(p.payload(), b"GET / HTTP/1.0\r\n\r\n");
        assert!(p.verify_checksum(CLIENT, SERVER));
        p.payload_mut()[0] = b'P';
        assert!(!p.verify_checksum(CLIENT, SERVER));
        let theirs = smoltcp::wire::TcpPacket::new_checked(&seg[..]).unwrap();
        assert_eq!(theirs.payload(), b"PET / HTTP/1.0\r\n\r\n");
    }

    #[test]
    fn test_truncated_prefixes() {
        let seg = syn();
        for n in 0..MIN_HEADER_LEN {
            assert_eq!(
                TcpPacket::new_checked(&seg[..n]),
                Err(WireError::Truncated),
                "{n}"
            );
            let mut buf = vec![0u8; n];
            assert_eq!(syn_repr().emit(&mut buf), Err(WireError::Truncated));
        }
        // The options are announced by the data offset but cut off.
        for n in MIN_HEADER_LEN..40 {
            assert_eq!(
                TcpPacket::new_checked(&seg[..n]),
                Err(WireError::Truncated),
                "{n}"
            );
        }
        assert!(TcpPacket::new_checked(seg).is_ok());
    }

    #[test]
    fn test_bad_header_len() {
        for off in 0..5u8 {
            let mut seg = syn().to_vec();
            seg[12] = off << 4;
            assert_eq!(
                TcpPacket::new_checked(&seg[..]),
                Err(WireError::BadHeaderLen)
            );
        }
        // Data offset 15 (60 bytes) in a 40-byte segment.
        let mut seg = syn().to_vec();
        seg[12] = 0xf0;
        assert_eq!(TcpPacket::new_checked(&seg[..]), Err(WireError::Truncated));
    }

    #[test]
    fn test_set_header_len_cannot_cause_panics() {
        let mut seg = ack().to_vec();
        let mut p = TcpPacket::new_checked(&mut seg[..]).unwrap();
        for len in [0usize, 4, 19, 20, 40, 60, 64, 1000] {
            p.set_header_len(len);
            let _ = (p.options().len(), p.payload().len());
            let _ = (p.options_mut().len(), p.payload_mut().len());
            p.fill_checksum(CLIENT, SERVER);
        }
    }

    #[test]
    fn test_nat_rewrites_match_full_recompute() {
        // DNAT: VIP:80 -> RIP:8080 on the way in.
        let vip = SERVER;
        let rip = Ipv4Addr::new(192, 168, 10, 5);
        let mut seg = syn().to_vec();
        let mut p = TcpPacket::new_checked(&mut seg[..]).unwrap();
        p.rewrite_dst_port(8080);
        p.update_checksum_for_addr(vip, rip);
        assert!(p.verify_checksum(CLIENT, rip));
        let incremental = p.checksum();
        p.fill_checksum(CLIENT, rip);
        assert_eq!(p.checksum(), incremental);
        // SNAT back on the reply path.
        p.rewrite_src_port(1024);
        p.update_checksum_for_addr(CLIENT, Ipv4Addr::new(172, 16, 0, 9));
        assert!(p.verify_checksum(Ipv4Addr::new(172, 16, 0, 9), rip));
    }

    #[test]
    fn test_flags() {
        let sa = TcpFlags::SYN | TcpFlags::ACK;
        assert_eq!(sa.bits(), 0x12);
        assert!(sa.contains(TcpFlags::SYN) && sa.contains(TcpFlags::ACK));
        assert!(!sa.contains(TcpFlags::SYN | TcpFlags::FIN));
        assert!(sa.intersects(TcpFlags::SYN | TcpFlags::FIN));
        assert!(!sa.intersects(TcpFlags::RST));
        assert_eq!(sa & TcpFlags::ACK, TcpFlags::ACK);
        assert_eq!(sa & !TcpFlags::ACK, TcpFlags::SYN);
        let mut f = TcpFlags::empty();
        assert!(f.is_empty() && f.contains(TcpFlags::empty()));
        f |= TcpFlags::FIN;
        assert_eq!(f, TcpFlags::FIN);
        assert_eq!(format!("{sa:?}"), "TcpFlags(SYN | ACK)");
        assert_eq!(format!("{:?}", TcpFlags::empty()), "TcpFlags(empty)");
        assert_eq!(
            format!("{:?}", TcpFlags(0xff)),
            "TcpFlags(FIN | SYN | RST | PSH | ACK | URG | ECE | CWR)"
        );
    }

    #[test]
    fn test_smoltcp_oracle() {
        let (c, s) = (IpAddress::Ipv4(CLIENT), IpAddress::Ipv4(SERVER));
        for seg in [syn(), ack()] {
            let ours = TcpPacket::new_checked(seg).unwrap();
            let theirs = smoltcp::wire::TcpPacket::new_checked(seg).unwrap();
            assert_eq!(ours.src_port(), theirs.src_port());
            assert_eq!(ours.dst_port(), theirs.dst_port());
            assert_eq!(ours.seq_number() as i32, theirs.seq_number().0);
            assert_eq!(ours.ack_number() as i32, theirs.ack_number().0);
            assert_eq!(ours.header_len(), usize::from(theirs.header_len()));
            let f = ours.flags();
            assert_eq!(f.contains(TcpFlags::FIN), theirs.fin());
            assert_eq!(f.contains(TcpFlags::SYN), theirs.syn());
            assert_eq!(f.contains(TcpFlags::RST), theirs.rst());
            assert_eq!(f.contains(TcpFlags::PSH), theirs.psh());
            assert_eq!(f.contains(TcpFlags::ACK), theirs.ack());
            assert_eq!(f.contains(TcpFlags::URG), theirs.urg());
            assert_eq!(f.contains(TcpFlags::ECE), theirs.ece());
            assert_eq!(f.contains(TcpFlags::CWR), theirs.cwr());
            assert_eq!(ours.window(), theirs.window_len());
            assert_eq!(ours.checksum(), theirs.checksum());
            assert_eq!(ours.urgent(), theirs.urgent_at());
            assert_eq!(ours.options(), theirs.options());
            assert_eq!(ours.payload(), theirs.payload());
            assert!(theirs.verify_checksum(&c, &s));
            assert_eq!(
                ours.verify_checksum(CLIENT, SERVER),
                theirs.verify_checksum(&c, &s)
            );
        }
    }

    proptest! {
        #[test]
        fn prop_new_checked_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(p) = TcpPacket::new_checked(&data[..]) {
                prop_assert!(p.header_len() >= 20 && p.header_len() <= data.len());
                prop_assert_eq!(p.options().len() + p.payload().len() + 20, data.len());
                let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.flags());
                let _ = (p.window(), p.checksum(), p.urgent(), p.verify_checksum(CLIENT, SERVER));
                let _ = TcpRepr::parse(&p).unwrap();
            } else {
                prop_assert!(data.len() < 20 || usize::from(data[12] >> 4) * 4 > data.len()
                    || data[12] >> 4 < 5);
            }
        }

        #[test]
        fn prop_checksum_matches_smoltcp(
            repr in (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>(), any::<u8>(), any::<u16>(), any::<u16>()),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            src in any::<u32>(), dst in any::<u32>(),
        ) {
            let repr = TcpRepr {
                src_port: repr.0, dst_port: repr.1, seq: repr.2, ack: repr.3,
                flags: TcpFlags(repr.4), window: repr.5, urgent: repr.6,
            };
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let mut buf = vec![0u8; 20];
            buf.extend_from_slice(&payload);
            repr.emit(&mut buf).unwrap();
            let mut p = TcpPacket::new_checked(&mut buf[..]).unwrap();
            p.fill_checksum(src, dst);
            prop_assert!(p.verify_checksum(src, dst));
            prop_assert_eq!(TcpRepr::parse(&p).unwrap(), repr);
            prop_assert_eq!(p.payload(), &payload[..]);
            let theirs = smoltcp::wire::TcpPacket::new_checked(&buf[..]).unwrap();
            prop_assert!(theirs.verify_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst)));
        }

        #[test]
        fn prop_rewrites_keep_checksum_valid(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            sport in any::<u16>(), dport in any::<u16>(), new_dst in any::<u32>(),
        ) {
            let mut buf = syn().to_vec();
            buf.extend_from_slice(&payload);
            let mut p = TcpPacket::new_checked(&mut buf[..]).unwrap();
            p.fill_checksum(CLIENT, SERVER);
            p.rewrite_src_port(sport);
            p.rewrite_dst_port(dport);
            let new_dst = Ipv4Addr::from(new_dst);
            p.update_checksum_for_addr(SERVER, new_dst);
            prop_assert!(p.verify_checksum(CLIENT, new_dst));
        }
    }
}
