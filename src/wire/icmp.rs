//! ICMP for IPv4 (RFC 792).
//!
//! # Contract
//!
//! - Callers pass exactly the IPv4 payload (`Ipv4Packet::payload`), because
//!   the ICMP checksum covers the whole message and ICMP has no length field
//!   of its own. [`IcmpPacket::new_checked`] only requires the 8-byte header:
//!   shorter → [`WireError::Truncated`].
//! - The second header word means different things per type (echo id/seq,
//!   next-hop MTU, gateway address); [`IcmpPacket::rest_of_header`] returns it
//!   raw and the echo accessors interpret it.
//! - [`IcmpRepr::emit`] writes the header and fills the checksum over the whole
//!   buffer it is given, so write the data first.

use super::checksum;
use super::{read_u16, read_u32, write_u16, write_u32, WireError};

/// Length of the ICMP header: type, code, checksum, rest of header.
pub const HEADER_LEN: usize = 8;

mod field {
    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: usize = 2;
    pub(super) const REST: usize = 4;
    pub(super) const ECHO_IDENT: usize = 4;
    pub(super) const ECHO_SEQ: usize = 6;
}

/// ICMP message types (RFC 792).
pub mod msg {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable; codes in [`super::unreachable`].
    pub const DST_UNREACHABLE: u8 = 3;
    /// Source quench (deprecated by RFC 6633; recognised only).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded; codes in [`super::time_exceeded`].
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Codes of [`msg::DST_UNREACHABLE`] (RFC 792, RFC 1122 section 3.2.2.1).
pub mod unreachable {
    /// Net unreachable.
    pub const NET_UNREACHABLE: u8 = 0;
    /// Host unreachable.
    pub const HOST_UNREACHABLE: u8 = 1;
    /// Protocol unreachable.
    pub const PROTO_UNREACHABLE: u8 = 2;
    /// Port unreachable.
    pub const PORT_UNREACHABLE: u8 = 3;
    /// Fragmentation needed and DF set; the next-hop MTU is in the low 16
    /// bits of the rest of header (RFC 1191 section 4).
    pub const FRAG_NEEDED: u8 = 4;
    /// Source route failed.
    pub const SOURCE_ROUTE_FAILED: u8 = 5;
    /// Communication administratively prohibited (RFC 1812 section 5.2.7.1).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Codes of [`msg::TIME_EXCEEDED`].
pub mod time_exceeded {
    /// Time to live exceeded in transit.
    pub const TTL_EXCEEDED: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY_EXCEEDED: u8 = 1;
}

/// A view of an ICMP message (header and data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Length of the ICMP header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wrap `buffer` (exactly the IPv4 payload).
    ///
    /// # Errors
    /// [`WireError::Truncated`] if shorter than [`HEADER_LEN`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(IcmpPacket { buffer })
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole message.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Message type (see [`msg`]).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Identifier of an echo request/reply.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Sequence number of an echo request/reply.
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ)
    }

    /// Header bytes 4..8, uninterpreted.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::REST)
    }

    /// Next-hop MTU of a "fragmentation needed" message (RFC 1191): the low
    /// 16 bits of the rest of header.
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        self.rest_of_header() as u16
    }

    /// Everything after the 8-byte header: echo data, or the offending IPv4
    /// header plus at least 8 bytes of its payload for error messages.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// The whole message sums to ones'-complement -0 (RFC 792).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Set the message type.
    #[inline]
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Set the code.
    #[inline]
    pub fn set_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Store a checksum.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Set header bytes 4..8.
    #[inline]
    pub fn set_rest_of_header(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::REST, value);
    }

    /// Set the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, value);
    }

    /// Set the echo sequence number.
    #[inline]
    pub fn set_echo_seq(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ, value);
    }

    /// Data after the header, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Recompute the checksum over the whole message (RFC 1071).
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Turn an echo request into its reply in place: type 0, code 0, same
    /// id, seq and data (RFC 792 "Echo or Echo Reply Message"). The
    /// checksum is patched incrementally (RFC 1624): only the type/code
    /// word changes.
    #[inline]
    pub fn make_echo_reply(&mut self) {
        let b = self.buffer.as_mut();
        let old = read_u16(b, field::TYPE);
        b[field::TYPE] = msg::ECHO_REPLY;
        b[field::CODE] = 0;
        let c = checksum::update16(read_u16(b, field::CHECKSUM), old, 0);
        // Equation 3 yields +0 (0x0000) when the rest sums to -0; for an
        // all-zero reply (id 0, seq 0, zero data) only -0 (0xffff)
        // verifies, and -0 verifies in every other case too.
        write_u16(b, field::CHECKSUM, if c == 0 { 0xffff } else { c });
    }
}

/// An ICMP header as plain data; the data after it is the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpRepr {
    /// Message type (see [`msg`]).
    pub msg_type: u8,
    /// Code.
    pub code: u8,
    /// Header bytes 4..8 (echo id/seq, next-hop MTU, ...).
    pub rest_of_header: u32,
}

impl IcmpRepr {
    /// Bytes of header [`IcmpRepr::emit`] writes.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Read a checked packet. The checksum is not verified. Never fails
    /// today; the `Result` keeps the signature uniform with the other
    /// `Repr`s.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(packet: &IcmpPacket<T>) -> Result<Self, WireError> {
        Ok(IcmpRepr {
            msg_type: packet.msg_type(),
            code: packet.code(),
            rest_of_header: packet.rest_of_header(),
        })
    }

    /// Echo request with identifier and sequence number.
    #[inline]
    pub const fn echo_request(ident: u16, seq: u16) -> Self {
        IcmpRepr {
            msg_type: msg::ECHO_REQUEST,
            code: 0,
            rest_of_header: ((ident as u32) << 16) | seq as u32,
        }
    }

    /// Echo reply with identifier and sequence number copied from the
    /// request (RFC 792).
    #[inline]
    pub const fn echo_reply(ident: u16, seq: u16) -> Self {
        IcmpRepr {
            msg_type: msg::ECHO_REPLY,
            code: 0,
            rest_of_header: ((ident as u32) << 16) | seq as u32,
        }
    }

    /// "Fragmentation needed and DF set" carrying the next-hop MTU (RFC 1191
    /// section 4: unused high 16 bits, MTU in the low 16 bits).
    #[inline]
    pub const fn frag_needed(next_hop_mtu: u16) -> Self {
        IcmpRepr {
            msg_type: msg::DST_UNREACHABLE,
            code: unreachable::FRAG_NEEDED,
            rest_of_header: next_hop_mtu as u32,
        }
    }

    /// Destination unreachable, port unreachable (RFC 792).
    #[inline]
    pub const fn port_unreachable() -> Self {
        IcmpRepr {
            msg_type: msg::DST_UNREACHABLE,
            code: unreachable::PORT_UNREACHABLE,
            rest_of_header: 0,
        }
    }

    /// Bytes of header [`IcmpRepr::emit`] writes (the data is extra).
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the 8-byte header at the start of `buf`, then fill the checksum
    /// over all of `buf`: the data must already be in place after the header.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if `buf` is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let mut p = IcmpPacket::new_checked(buf)?;
        p.set_msg_type(self.msg_type);
        p.set_code(self.code);
        p.set_rest_of_header(self.rest_of_header);
        p.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, l4_segment};
    use super::*;
    use proptest::prelude::*;

    fn ping() -> &'static [u8] {
        l4_segment(&fixtures::PING_FRAME)
    }

    #[test]
    fn test_deconstruct() {
        let p = IcmpPacket::new_checked(ping()).unwrap();
        assert_eq!(p.msg_type(), msg::ECHO_REQUEST);
        assert_eq!(p.code(), 0);
        assert_eq!(p.checksum(), 0x71f4);
        assert_eq!(p.echo_ident(), 0x0b3d);
        assert_eq!(p.echo_seq(), 1);
        assert_eq!(p.rest_of_header(), 0x0b3d_0001);
        assert_eq!(p.data().len(), 56);
        // iputils' pattern after the 16-byte timeval.
        assert!(p.data()[16..].iter().copied().eq(0x10..=0x37u8));
        assert!(p.verify_checksum());
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 64];
        buf[8..].copy_from_slice(&ping()[8..]);
        IcmpRepr::echo_request(0x0b3d, 1).emit(&mut buf).unwrap();
        assert_eq!(&buf[..], ping());

        let mut p = IcmpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_msg_type(msg::ECHO_REPLY);
        p.set_code(0);
        p.set_echo_ident(0x0b3d);
        p.set_echo_seq(1);
        p.fill_checksum();
        assert!(p.verify_checksum());
        let mut reply = [0u8; 64];
        reply[8..].copy_from_slice(&ping()[8..]);
        IcmpRepr::echo_reply(0x0b3d, 1).emit(&mut reply).unwrap();
        assert_eq!(buf, reply);
    }

    #[test]
    fn test_parse_then_emit_roundtrip() {
        let repr = IcmpRepr::parse(&IcmpPacket::new_checked(ping()).unwrap()).unwrap();
        assert_eq!(repr, IcmpRepr::echo_request(0x0b3d, 1));
        assert_eq!(repr.buffer_len(), HEADER_LEN);
        let mut buf = ping().to_vec();
        buf[..8].fill(0);
        repr.emit(&mut buf).unwrap();
        assert_eq!(&buf[..], ping());
    }

    #[test]
    fn test_make_echo_reply_matches_full_recompute() {
        let mut buf = ping().to_vec();
        let mut p = IcmpPacket::new_checked(&mut buf[..]).unwrap();
        p.make_echo_reply();
        assert!(p.verify_checksum());
        assert_eq!(p.msg_type(), msg::ECHO_REPLY);
        let incremental = p.checksum();
        p.fill_checksum();
        assert_eq!(p.checksum(), incremental);
        assert_eq!(p.data(), &ping()[8..]);
    }

    #[test]
    fn test_frag_needed() {
        let r = IcmpRepr::frag_needed(1480);
        assert_eq!((r.msg_type, r.code, r.rest_of_header), (3, 4, 1480));
        // An error message quotes the offending IPv4 header + 8 bytes.
        let mut buf = [0u8; 8 + 28];
        buf[8..].copy_from_slice(&fixtures::PING_FRAME[14..42]);
        r.emit(&mut buf).unwrap();
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.next_hop_mtu(), 1480);
        assert!(p.verify_checksum());
        assert_eq!(p.data(), &fixtures::PING_FRAME[14..42]);
    }

    #[test]
    fn test_truncated_prefixes() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                IcmpPacket::new_checked(&ping()[..n]),
                Err(WireError::Truncated)
            );
            let mut buf = vec![0u8; n];
            assert_eq!(
                IcmpRepr::echo_reply(1, 2).emit(&mut buf),
                Err(WireError::Truncated)
            );
        }
        // Header only: no data, still a valid message.
        let mut buf = [0u8; HEADER_LEN];
        IcmpRepr::echo_reply(1, 2).emit(&mut buf).unwrap();
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.data().is_empty() && p.verify_checksum());
    }

    #[test]
    fn test_bad_checksum() {
        let mut buf = ping().to_vec();
        buf[20] ^= 0x01;
        assert!(!IcmpPacket::new_checked(&buf[..]).unwrap().verify_checksum());
    }

    #[test]
    fn test_smoltcp_oracle() {
        use smoltcp::wire::{Icmpv4Message, Icmpv4Packet};
        let ours = IcmpPacket::new_checked(ping()).unwrap();
        let theirs = Icmpv4Packet::new_checked(ping()).unwrap();
        assert_eq!(theirs.msg_type(), Icmpv4Message::EchoRequest);
        assert_eq!(ours.msg_type(), u8::from(theirs.msg_type()));
        assert_eq!(ours.code(), theirs.msg_code());
        assert_eq!(ours.checksum(), theirs.checksum());
        assert_eq!(ours.echo_ident(), theirs.echo_ident());
        assert_eq!(ours.echo_seq(), theirs.echo_seq_no());
        assert_eq!(ours.verify_checksum(), theirs.verify_checksum());
        assert_eq!(ours.data(), theirs.data());

        let mut buf = [0u8; 16];
        IcmpRepr::echo_reply(7, 9).emit(&mut buf).unwrap();
        let theirs = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert!(theirs.verify_checksum());
        assert_eq!(theirs.msg_type(), Icmpv4Message::EchoReply);
        assert_eq!((theirs.echo_ident(), theirs.echo_seq_no()), (7, 9));
    }

    proptest! {
        #[test]
        fn prop_new_checked_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            match IcmpPacket::new_checked(&data[..]) {
                Ok(p) => {
                    let _ = (p.msg_type(), p.code(), p.checksum(), p.echo_ident(), p.echo_seq());
                    let _ = (p.rest_of_header(), p.next_hop_mtu(), p.data(), p.verify_checksum());
                    let _ = IcmpRepr::parse(&p).unwrap();
                }
                Err(e) => prop_assert_eq!(e, WireError::Truncated),
            }
        }

        #[test]
        fn prop_repr_roundtrip(
            t in any::<u8>(), c in any::<u8>(), rest in any::<u32>(),
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let repr = IcmpRepr { msg_type: t, code: c, rest_of_header: rest };
            let mut buf = vec![0u8; HEADER_LEN];
            buf.extend_from_slice(&data);
            repr.emit(&mut buf).unwrap();
            let p = IcmpPacket::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(IcmpRepr::parse(&p).unwrap(), repr);
            prop_assert_eq!(p.data(), &data[..]);
        }

        #[test]
        fn prop_echo_reply_in_place_all_zero_corner(len in 0usize..16) {
            let mut buf = vec![0u8; HEADER_LEN + len];
            IcmpRepr::echo_request(0, 0).emit(&mut buf).unwrap();
            let mut p = IcmpPacket::new_checked(&mut buf[..]).unwrap();
            p.make_echo_reply();
            prop_assert_eq!(p.checksum(), 0xffff);
            prop_assert!(p.verify_checksum());
        }

        #[test]
        fn prop_echo_reply_in_place(ident in any::<u16>(), seq in any::<u16>(),
                                    data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = vec![0u8; HEADER_LEN];
            buf.extend_from_slice(&data);
            IcmpRepr::echo_request(ident, seq).emit(&mut buf).unwrap();
            let mut p = IcmpPacket::new_checked(&mut buf[..]).unwrap();
            p.make_echo_reply();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(IcmpRepr::parse(&p).unwrap(), IcmpRepr::echo_reply(ident, seq));
        }
    }
}
