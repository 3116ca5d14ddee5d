//! UDP datagram headers (RFC 768).
//!
//! # Contract
//!
//! - Callers pass the IPv4 payload. [`UdpPacket::new_checked`]: shorter than
//!   [`HEADER_LEN`] → [`WireError::Truncated`]; length field < 8 →
//!   [`WireError::BadLength`]; length field past the buffer →
//!   [`WireError::Truncated`]. A buffer longer than the length field is
//!   accepted and the extra bytes are ignored: [`UdpPacket::payload`] and
//!   the checksum use the length field.
//! - Checksum 0 means "not computed" (RFC 768): [`UdpPacket::verify_checksum`]
//!   accepts it, [`UdpPacket::fill_checksum`] never produces it (a computed
//!   0 is sent as 0xffff), and the `rewrite_*` setters leave it alone.

use std::net::Ipv4Addr;

use super::checksum;
use super::{clamped, clamped_mut, read_u16, write_u16, WireError};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// IP protocol number of UDP, as used in the pseudo header.
const PROTOCOL: u8 = 17;

mod field {
    pub(super) const SRC_PORT: usize = 0;
    pub(super) const DST_PORT: usize = 2;
    pub(super) const LENGTH: usize = 4;
    pub(super) const CHECKSUM: usize = 6;
}

/// A view of a UDP datagram (header and payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Length of the UDP header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wrap `buffer` (the IPv4 payload).
    ///
    /// # Errors
    /// See the module docs.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(read_u16(b, field::LENGTH));
        if len < HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(UdpPacket { buffer })
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole buffer, including any bytes past the length field.
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

    /// Length field: header plus payload, in bytes.
    #[inline]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The payload is empty (length field 8). Named for clippy's
    /// `len_without_is_empty`.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.payload().is_empty()
    }

    /// Checksum as stored; 0 means none.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The datagram as the length field delimits it (`0..len`).
    #[inline]
    pub fn datagram(&self) -> &[u8] {
        clamped(self.buffer.as_ref(), 0, usize::from(self.len()))
    }

    /// Payload (`8..len`).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        clamped(self.buffer.as_ref(), HEADER_LEN, usize::from(self.len()))
    }

    /// No checksum (0), or the pseudo header plus datagram sums to
    /// ones'-complement -0 (RFC 768).
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let ph = checksum::pseudo_header_sum(src, dst, PROTOCOL, self.len());
        checksum::fold(ph + checksum::sum(self.datagram())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
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

    /// Set the length field. Accessors stay panic-free if it disagrees with
    /// the buffer; the slices they return shrink to fit.
    #[inline]
    pub fn set_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Store a checksum (0 = none).
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Payload (`8..len`), mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.len());
        clamped_mut(self.buffer.as_mut(), HEADER_LEN, len)
    }

    /// Compute and store the checksum over the pseudo header and the
    /// datagram; a computed 0 is stored as 0xffff (RFC 768), since 0 would
    /// mean "no checksum".
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let ph = checksum::pseudo_header_sum(src, dst, PROTOCOL, self.len());
        let c = !checksum::fold(ph + checksum::sum(self.datagram()));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Patch a present checksum incrementally (RFC 1624), keeping 0 for
    /// "none" and never producing 0 for a present one.
    #[inline]
    fn patch_checksum(&mut self, update: impl FnOnce(u16) -> u16) {
        let old = self.checksum();
        if old != 0 {
            let c = update(old);
            self.set_checksum(if c == 0 { 0xffff } else { c });
        }
    }

    /// Set the source port, patching a present checksum (RFC 1624).
    #[inline]
    pub fn rewrite_src_port(&mut self, port: u16) {
        let old = self.src_port();
        self.patch_checksum(|c| checksum::update16(c, old, port));
        self.set_src_port(port);
    }

    /// Set the destination port, patching a present checksum (RFC 1624).
    #[inline]
    pub fn rewrite_dst_port(&mut self, port: u16) {
        let old = self.dst_port();
        self.patch_checksum(|c| checksum::update16(c, old, port));
        self.set_dst_port(port);
    }

    /// Patch a present checksum for a pseudo-header address change (NAT of
    /// the IPv4 source or destination), RFC 1624.
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        self.patch_checksum(|c| checksum::update32(c, old.into(), new.into()));
    }
}

/// A UDP header as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length in bytes (the length field minus 8).
    pub payload_len: u16,
}

impl UdpRepr {
    /// Bytes [`UdpRepr::emit`] writes.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Read a checked packet. The checksum is not verified. Never fails
    /// today; the `Result` keeps signatures uniform.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(packet: &UdpPacket<T>) -> Result<Self, WireError> {
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            // new_checked guarantees len >= 8; saturate in case a setter
            // changed it since.
            payload_len: packet.len().saturating_sub(HEADER_LEN as u16),
        })
    }

    /// Bytes [`UdpRepr::emit`] writes: the 8-byte header.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload: the value of the length field.
    #[inline]
    pub const fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len as usize
    }

    /// Write the 8-byte header (length = 8 + `payload_len`, checksum 0) at
    /// the start of `buf`; then place the payload and call
    /// [`UdpPacket::fill_checksum`] (or leave 0 for "none").
    ///
    /// # Errors
    /// [`WireError::Truncated`] if `buf` is shorter than 8 bytes;
    /// [`WireError::BadLength`] if 8 + `payload_len` exceeds 65535.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let b = buf.get_mut(..HEADER_LEN).ok_or(WireError::Truncated)?;
        let len = self
            .payload_len
            .checked_add(HEADER_LEN as u16)
            .ok_or(WireError::BadLength)?;
        write_u16(b, field::SRC_PORT, self.src_port);
        write_u16(b, field::DST_PORT, self.dst_port);
        write_u16(b, field::LENGTH, len);
        write_u16(b, field::CHECKSUM, 0);
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
    const RESOLVER: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);

    fn dns() -> &'static [u8] {
        l4_segment(&fixtures::UDP_DNS_FRAME)
    }

    fn dns_repr() -> UdpRepr {
        UdpRepr {
            src_port: 53412,
            dst_port: 53,
            payload_len: 29,
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = UdpPacket::new_checked(dns()).unwrap();
        assert_eq!(p.src_port(), 53412);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 37);
        assert!(!p.is_empty());
        assert_eq!(p.checksum(), 0x2b21);
        assert_eq!(p.payload().len(), 29);
        assert_eq!(&p.payload()[..2], &[0x1a, 0x2b]); // DNS id
        assert_eq!(&p.payload()[12..20], b"\x07example");
        assert_eq!(p.datagram(), dns());
        assert!(p.verify_checksum(CLIENT, RESOLVER));
        assert!(!p.verify_checksum(CLIENT, Ipv4Addr::new(8, 8, 4, 4)));
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 37];
        dns_repr().emit(&mut buf).unwrap();
        let mut p = UdpPacket::new_checked(&mut buf[..]).unwrap();
        p.payload_mut().copy_from_slice(&dns()[8..]);
        p.fill_checksum(CLIENT, RESOLVER);
        assert_eq!(&buf[..], dns());

        let mut buf = [0u8; 37];
        buf[5] = 8; // a zeroed buffer has length 0: not a header yet
        let mut p = UdpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_src_port(53412);
        p.set_dst_port(53);
        p.set_len(37);
        p.payload_mut().copy_from_slice(&dns()[8..]);
        p.fill_checksum(CLIENT, RESOLVER);
        assert_eq!(&buf[..], dns());
    }

    #[test]
    fn test_parse_then_emit_roundtrip() {
        let repr = UdpRepr::parse(&UdpPacket::new_checked(dns()).unwrap()).unwrap();
        assert_eq!(repr, dns_repr());
        assert_eq!((repr.buffer_len(), repr.total_len()), (8, 37));
        let mut buf = dns().to_vec();
        buf[..8].fill(0);
        repr.emit(&mut buf).unwrap();
        UdpPacket::new_checked(&mut buf[..])
            .unwrap()
            .fill_checksum(CLIENT, RESOLVER);
        assert_eq!(&buf[..], dns());
    }

    #[test]
    fn test_truncated_prefixes() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                UdpPacket::new_checked(&dns()[..n]),
                Err(WireError::Truncated),
                "{n}"
            );
            let mut buf = vec![0u8; n];
            assert_eq!(dns_repr().emit(&mut buf), Err(WireError::Truncated));
        }
        // The header is there but the length field runs past the buffer.
        for n in HEADER_LEN..dns().len() {
            assert_eq!(
                UdpPacket::new_checked(&dns()[..n]),
                Err(WireError::Truncated),
                "{n}"
            );
        }
    }

    #[test]
    fn test_bad_length() {
        for len in 0..8u16 {
            let mut d = dns().to_vec();
            write_u16(&mut d, field::LENGTH, len);
            assert_eq!(UdpPacket::new_checked(&d[..]), Err(WireError::BadLength));
        }
        let repr = UdpRepr {
            payload_len: 65_528,
            ..dns_repr()
        };
        assert_eq!(repr.emit(&mut [0u8; 8]), Err(WireError::BadLength));
        let repr = UdpRepr {
            payload_len: 65_527,
            ..dns_repr()
        };
        assert_eq!(repr.emit(&mut [0u8; 8]), Ok(()));
    }

    #[test]
    fn test_trailing_bytes_ignored() {
        // Bytes past the length field (a sloppy sender, or IPv4 total length
        // larger than UDP's) are neither payload nor checksummed.
        let mut d = dns().to_vec();
        d.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let p = UdpPacket::new_checked(&d[..]).unwrap();
        assert_eq!(p.payload().len(), 29);
        assert!(p.verify_checksum(CLIENT, RESOLVER));
    }

    #[test]
    fn test_zero_checksum_means_none() {
        let mut d = dns().to_vec();
        let mut p = UdpPacket::new_checked(&mut d[..]).unwrap();
        p.set_checksum(0);
        assert!(p.verify_checksum(CLIENT, RESOLVER));
        assert!(p.verify_checksum(RESOLVER, RESOLVER));
        // NAT rewrites keep "none" as none.
        p.rewrite_dst_port(5353);
        p.rewrite_src_port(1);
        p.update_checksum_for_addr(RESOLVER, CLIENT);
        assert_eq!(p.checksum(), 0);
    }

    #[test]
    fn test_computed_zero_is_sent_as_ffff() {
        // Choose the payload word so the datagram sums to -0: then the
        // checksum would compute as 0 and must go out as 0xffff.
        let mut d = [0u8; 10];
        UdpRepr {
            src_port: 1,
            dst_port: 2,
            payload_len: 2,
        }
        .emit(&mut d)
        .unwrap();
        let ph = checksum::pseudo_header_sum(CLIENT, RESOLVER, PROTOCOL, 10);
        let partial = checksum::fold(ph + checksum::sum(&d));
        write_u16(&mut d, 8, !partial);
        let mut p = UdpPacket::new_checked(&mut d[..]).unwrap();
        p.fill_checksum(CLIENT, RESOLVER);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(CLIENT, RESOLVER));
        let theirs = smoltcp::wire::UdpPacket::new_checked(&d[..]).unwrap();
        assert!(theirs.verify_checksum(&IpAddress::Ipv4(CLIENT), &IpAddress::Ipv4(RESOLVER)));
    }

    #[test]
    fn test_set_len_cannot_cause_panics() {
        let mut d = dns().to_vec();
        let mut p = UdpPacket::new_checked(&mut d[..]).unwrap();
        for len in [0u16, 7, 8, 9, 37, 38, 0xffff] {
            p.set_len(len);
            let want = usize::from(len).clamp(8, 37) - 8;
            assert_eq!(p.payload().len(), want);
            assert_eq!(p.payload_mut().len(), want);
            let _ = (
                p.verify_checksum(CLIENT, RESOLVER),
                p.is_empty(),
                p.datagram(),
            );
            p.fill_checksum(CLIENT, RESOLVER);
            let _ = UdpRepr::parse(&p).unwrap();
        }
    }

    #[test]
    fn test_nat_rewrites_match_full_recompute() {
        let mut d = dns().to_vec();
        let mut p = UdpPacket::new_checked(&mut d[..]).unwrap();
        let rip = Ipv4Addr::new(192, 168, 10, 53);
        p.rewrite_dst_port(5353);
        p.update_checksum_for_addr(RESOLVER, rip);
        assert!(p.verify_checksum(CLIENT, rip));
        let incremental = p.checksum();
        p.fill_checksum(CLIENT, rip);
        assert_eq!(p.checksum(), incremental);
    }

    #[test]
    fn test_smoltcp_oracle() {
        let ours = UdpPacket::new_checked(dns()).unwrap();
        let theirs = smoltcp::wire::UdpPacket::new_checked(dns()).unwrap();
        assert_eq!(ours.src_port(), theirs.src_port());
        assert_eq!(ours.dst_port(), theirs.dst_port());
        assert_eq!(ours.len(), theirs.len());
        assert_eq!(ours.checksum(), theirs.checksum());
        assert_eq!(ours.payload(), theirs.payload());
        let (c, r) = (IpAddress::Ipv4(CLIENT), IpAddress::Ipv4(RESOLVER));
        assert!(theirs.verify_checksum(&c, &r));
        assert_eq!(
            ours.verify_checksum(CLIENT, RESOLVER),
            theirs.verify_checksum(&c, &r)
        );
    }

    proptest! {
        #[test]
        fn prop_new_checked_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = UdpPacket::new_checked(&data[..]) {
                prop_assert_eq!(p.payload().len() + 8, usize::from(p.len()));
                let _ = (p.src_port(), p.dst_port(), p.checksum(), p.datagram(), p.is_empty());
                let _ = p.verify_checksum(CLIENT, RESOLVER);
                let _ = UdpRepr::parse(&p).unwrap();
            }
        }

        #[test]
        fn prop_plausible_lengths_never_panic(
            len in any::<u16>(),
            rest in proptest::collection::vec(any::<u8>(), 4..64),
        ) {
            let mut data = vec![0u8; 4];
            data.extend_from_slice(&len.to_be_bytes());
            data.extend_from_slice(&rest);
            match UdpPacket::new_checked(&mut data[..]) {
                Ok(mut p) => {
                    p.fill_checksum(CLIENT, RESOLVER);
                    prop_assert!(p.verify_checksum(CLIENT, RESOLVER));
                    prop_assert!(p.checksum() != 0);
                }
                Err(WireError::BadLength) => prop_assert!(len < 8),
                Err(e) => {
                    prop_assert_eq!(e, WireError::Truncated);
                    prop_assert!(usize::from(len) > data.len());
                }
            }
        }

        #[test]
        fn prop_repr_roundtrip_and_smoltcp_checksum(
            sport in any::<u16>(), dport in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            src in any::<u32>(), dst in any::<u32>(),
        ) {
            let repr = UdpRepr { src_port: sport, dst_port: dport, payload_len: payload.len() as u16 };
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let mut buf = vec![0u8; 8];
            buf.extend_from_slice(&payload);
            repr.emit(&mut buf).unwrap();
            let mut p = UdpPacket::new_checked(&mut buf[..]).unwrap();
            p.fill_checksum(src, dst);
            prop_assert!(p.verify_checksum(src, dst));
            prop_assert_eq!(UdpRepr::parse(&p).unwrap(), repr);
            let theirs = smoltcp::wire::UdpPacket::new_checked(&buf[..]).unwrap();
            prop_assert!(theirs.verify_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst)));
        }

        #[test]
        fn prop_rewrites_keep_checksum_valid(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            sport in any::<u16>(), dport in any::<u16>(), new_src in any::<u32>(),
        ) {
            let mut buf = vec![0u8; 8];
            buf.extend_from_slice(&payload);
            UdpRepr { src_port: 1, dst_port: 2, payload_len: payload.len() as u16 }
                .emit(&mut buf)
                .unwrap();
            let mut p = UdpPacket::new_checked(&mut buf[..]).unwrap();
            p.fill_checksum(CLIENT, RESOLVER);
            p.rewrite_src_port(sport);
            p.rewrite_dst_port(dport);
            let new_src = Ipv4Addr::from(new_src);
            p.update_checksum_for_addr(CLIENT, new_src);
            prop_assert!(p.checksum() != 0);
            prop_assert!(p.verify_checksum(new_src, RESOLVER));
        }
    }
}
