//! ARP for IPv4 over Ethernet (RFC 826).
//!
//! # Contract
//!
//! - Only the Ethernet/IPv4 flavour exists here: [`ArpPacket::new_checked`]
//!   rejects a buffer shorter than [`LEN`] with [`WireError::Truncated`],
//!   then any other hardware type, protocol type, or address lengths with
//!   [`WireError::Unsupported`]. Bytes after [`LEN`] (Ethernet padding) are
//!   ignored.
//! - Accessors on an accepted packet are infallible.
//! - [`ArpRepr::emit`] writes all 28 bytes, including the fixed
//!   htype/ptype/hlen/plen fields.
//! - The operation is not validated: unknown opcodes come back as
//!   [`ArpOp::Unknown`], so the caller decides what to count and drop.

use std::net::Ipv4Addr;

use super::{read_ipv4, read_u16, write_ipv4, write_u16, MacAddr, WireError};

/// Length of an Ethernet/IPv4 ARP packet: 8 fixed bytes + 2 * (6 + 4).
pub const LEN: usize = 28;

/// RFC 826 `ar$hrd` for Ethernet (IANA hardware type 1).
pub const HTYPE_ETHERNET: u16 = 1;
/// RFC 826 `ar$pro` for IPv4: the IPv4 EtherType.
pub const PTYPE_IPV4: u16 = 0x0800;

mod field {
    pub(super) const HTYPE: usize = 0;
    pub(super) const PTYPE: usize = 2;
    pub(super) const HLEN: usize = 4;
    pub(super) const PLEN: usize = 5;
    pub(super) const OPER: usize = 6;
    pub(super) const SHA: core::ops::Range<usize> = 8..14;
    pub(super) const SPA: usize = 14;
    pub(super) const THA: core::ops::Range<usize> = 18..24;
    pub(super) const TPA: usize = 24;
}

/// The ARP operation (`ar$op`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArpOp {
    /// 1: who has `target_ip`?
    Request,
    /// 2: `sender_ip` is at `sender_mac`.
    Reply,
    /// Anything else (RARP, InARP, ...), kept verbatim.
    Unknown(u16),
}

impl From<u16> for ArpOp {
    #[inline]
    fn from(value: u16) -> Self {
        match value {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            other => ArpOp::Unknown(other),
        }
    }
}

impl From<ArpOp> for u16 {
    #[inline]
    fn from(op: ArpOp) -> Self {
        match op {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
            ArpOp::Unknown(other) => other,
        }
    }
}

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = LEN;

    /// Wrap `buffer`, checking length and the fixed Ethernet/IPv4 fields.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if shorter than [`LEN`];
    /// [`WireError::Unsupported`] if not Ethernet (1) / IPv4 (0x0800) with
    /// address lengths 6 and 4.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < LEN {
            return Err(WireError::Truncated);
        }
        if read_u16(b, field::HTYPE) != HTYPE_ETHERNET
            || read_u16(b, field::PTYPE) != PTYPE_IPV4
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(WireError::Unsupported);
        }
        Ok(ArpPacket { buffer })
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (always 1 on an accepted packet).
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    /// Protocol type (always 0x0800 on an accepted packet).
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PTYPE)
    }

    /// Operation.
    #[inline]
    pub fn operation(&self) -> ArpOp {
        ArpOp::from(read_u16(self.buffer.as_ref(), field::OPER))
    }

    /// Sender hardware address (`ar$sha`).
    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        let b = &self.buffer.as_ref()[field::SHA];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Sender protocol address (`ar$spa`).
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        read_ipv4(self.buffer.as_ref(), field::SPA)
    }

    /// Target hardware address (`ar$tha`); zero in a request.
    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        let b = &self.buffer.as_ref()[field::THA];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Target protocol address (`ar$tpa`).
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        read_ipv4(self.buffer.as_ref(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Set the operation.
    #[inline]
    pub fn set_operation(&mut self, op: ArpOp) {
        write_u16(self.buffer.as_mut(), field::OPER, op.into());
    }

    /// Set the sender hardware address.
    #[inline]
    pub fn set_sender_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&mac.0);
    }

    /// Set the sender protocol address.
    #[inline]
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        write_ipv4(self.buffer.as_mut(), field::SPA, ip);
    }

    /// Set the target hardware address.
    #[inline]
    pub fn set_target_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&mac.0);
    }

    /// Set the target protocol address.
    #[inline]
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        write_ipv4(self.buffer.as_mut(), field::TPA, ip);
    }
}

/// An Ethernet/IPv4 ARP packet as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Operation.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Bytes [`ArpRepr::emit`] writes.
    pub const LEN: usize = LEN;

    /// Read a checked packet. Never fails today (the view already rejected
    /// non-Ethernet/IPv4 packets); the `Result` keeps signatures uniform.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<Self, WireError> {
        Ok(ArpRepr {
            op: packet.operation(),
            sender_mac: packet.sender_mac(),
            sender_ip: packet.sender_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        })
    }

    /// Bytes [`ArpRepr::emit`] writes.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        LEN
    }

    /// The reply RFC 826 prescribes to this request when we own
    /// `target_ip`: swap sender and target, and answer with `our_mac`.
    #[inline]
    pub fn reply_to(&self, our_mac: MacAddr) -> ArpRepr {
        ArpRepr {
            op: ArpOp::Reply,
            sender_mac: our_mac,
            sender_ip: self.target_ip,
            target_mac: self.sender_mac,
            target_ip: self.sender_ip,
        }
    }

    /// Write the 28-byte packet at the start of `buf`.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if `buf` is shorter than [`LEN`].
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let b = buf.get_mut(..LEN).ok_or(WireError::Truncated)?;
        write_u16(b, field::HTYPE, HTYPE_ETHERNET);
        write_u16(b, field::PTYPE, PTYPE_IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        write_u16(b, field::OPER, self.op.into());
        b[field::SHA].copy_from_slice(&self.sender_mac.0);
        write_ipv4(b, field::SPA, self.sender_ip);
        b[field::THA].copy_from_slice(&self.target_mac.0);
        write_ipv4(b, field::TPA, self.target_ip);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EtherType, EthernetFrame};
    use super::*;
    use proptest::prelude::*;

    /// Linux `arping`-style request as captured: 42-byte frame,
    /// "who-has 192.168.1.1 tell 192.168.1.100" from 52:54:00:12:34:56.
    #[rustfmt::skip]
    static REQUEST_FRAME: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06, // eth
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen op=1
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0xc0, 0xa8, 0x01, 0x64, // sha spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xa8, 0x01, 0x01, // tha tpa
    ];

    /// The router's reply, as received from a switch: padded to 60 bytes.
    #[rustfmt::skip]
    static REPLY_FRAME: [u8; 60] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x08, 0x06, // eth
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // op=2
        0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0xc0, 0xa8, 0x01, 0x01, // sha spa
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0xc0, 0xa8, 0x01, 0x64, // tha tpa
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    const HOST: MacAddr = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const ROUTER: MacAddr = MacAddr([0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e]);
    const HOST_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);
    const ROUTER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);

    fn arp_of(frame: &[u8]) -> &[u8] {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        assert_eq!(eth.ethertype(), EtherType::ARP);
        &frame[14..]
    }

    fn request_repr() -> ArpRepr {
        ArpRepr {
            op: ArpOp::Request,
            sender_mac: HOST,
            sender_ip: HOST_IP,
            target_mac: MacAddr::ZERO,
            target_ip: ROUTER_IP,
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = ArpPacket::new_checked(arp_of(&REQUEST_FRAME)).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!(p.operation(), ArpOp::Request);
        assert_eq!(p.sender_mac(), HOST);
        assert_eq!(p.sender_ip(), HOST_IP);
        assert_eq!(p.target_mac(), MacAddr::ZERO);
        assert_eq!(p.target_ip(), ROUTER_IP);

        // Padding after the 28 bytes is accepted and ignored.
        let p = ArpPacket::new_checked(arp_of(&REPLY_FRAME)).unwrap();
        assert_eq!(p.operation(), ArpOp::Reply);
        assert_eq!(p.sender_mac(), ROUTER);
        assert_eq!(p.sender_ip(), ROUTER_IP);
        assert_eq!(p.target_mac(), HOST);
        assert_eq!(p.target_ip(), HOST_IP);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; LEN];
        request_repr().emit(&mut buf).unwrap();
        let mut p = ArpPacket::new_checked(&mut buf[..]).unwrap();
        // Turn it into the reply with the setters.
        p.set_operation(ArpOp::Reply);
        p.set_sender_mac(ROUTER);
        p.set_sender_ip(ROUTER_IP);
        p.set_target_mac(HOST);
        p.set_target_ip(HOST_IP);
        assert_eq!(buf, REPLY_FRAME[14..14 + LEN]);
    }

    #[test]
    fn test_parse_then_emit_roundtrip() {
        for frame in [&REQUEST_FRAME[..], &REPLY_FRAME[..]] {
            let arp = arp_of(frame);
            let repr = ArpRepr::parse(&ArpPacket::new_checked(arp).unwrap()).unwrap();
            let mut buf = [0u8; LEN];
            repr.emit(&mut buf).unwrap();
            assert_eq!(buf, arp[..LEN]);
            assert_eq!(repr.buffer_len(), LEN);
        }
    }

    #[test]
    fn test_reply_to() {
        let req = ArpRepr::parse(&ArpPacket::new_checked(arp_of(&REQUEST_FRAME)).unwrap()).unwrap();
        let rep = ArpRepr::parse(&ArpPacket::new_checked(arp_of(&REPLY_FRAME)).unwrap()).unwrap();
        assert_eq!(req.reply_to(ROUTER), rep);
    }

    #[test]
    fn test_truncated_prefixes() {
        let arp = arp_of(&REQUEST_FRAME);
        for n in 0..LEN {
            assert_eq!(
                ArpPacket::new_checked(&arp[..n]),
                Err(WireError::Truncated),
                "{n}"
            );
            let mut buf = vec![0u8; n];
            assert_eq!(request_repr().emit(&mut buf), Err(WireError::Truncated));
        }
    }

    #[test]
    fn test_unsupported() {
        let good = arp_of(&REQUEST_FRAME);
        // (offset, value): htype 6 (IEEE 802), ptype IPv6, hlen 8, plen 16.
        for (at, val) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut bad = [0u8; LEN];
            bad.copy_from_slice(good);
            bad[at] = val;
            assert_eq!(
                ArpPacket::new_checked(&bad[..]),
                Err(WireError::Unsupported),
                "{at}"
            );
        }
    }

    #[test]
    fn test_op_conversions() {
        assert_eq!(ArpOp::from(1), ArpOp::Request);
        assert_eq!(ArpOp::from(2), ArpOp::Reply);
        assert_eq!(ArpOp::from(3), ArpOp::Unknown(3));
        for v in [0u16, 1, 2, 3, 8, 0xffff] {
            assert_eq!(u16::from(ArpOp::from(v)), v);
        }
        let mut bytes = [0u8; LEN];
        bytes.copy_from_slice(arp_of(&REQUEST_FRAME));
        bytes[7] = 4; // RARP reply
        let p = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.operation(), ArpOp::Unknown(4));
    }

    #[test]
    fn test_smoltcp_oracle() {
        use smoltcp::wire::{ArpOperation, ArpPacket as SArp};
        for frame in [&REQUEST_FRAME[..], &REPLY_FRAME[..]] {
            let arp = arp_of(frame);
            let ours = ArpPacket::new_checked(arp).unwrap();
            let theirs = SArp::new_checked(arp).unwrap();
            let op = match theirs.operation() {
                ArpOperation::Request => ArpOp::Request,
                ArpOperation::Reply => ArpOp::Reply,
                ArpOperation::Unknown(x) => ArpOp::Unknown(x),
            };
            assert_eq!(ours.operation(), op);
            assert_eq!(&ours.sender_mac().0[..], theirs.source_hardware_addr());
            assert_eq!(
                &ours.sender_ip().octets()[..],
                theirs.source_protocol_addr()
            );
            assert_eq!(&ours.target_mac().0[..], theirs.target_hardware_addr());
            assert_eq!(
                &ours.target_ip().octets()[..],
                theirs.target_protocol_addr()
            );
        }
    }

    proptest! {
        #[test]
        fn prop_new_checked_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = ArpPacket::new_checked(&data[..]) {
                let _ = (p.operation(), p.sender_mac(), p.sender_ip(), p.target_mac(), p.target_ip());
                let _ = ArpRepr::parse(&p).unwrap();
            }
        }

        #[test]
        fn prop_fixed_fields_then_anything_parses(
            tail in proptest::collection::vec(any::<u8>(), 22..40),
        ) {
            let mut data = vec![0x00, 0x01, 0x08, 0x00, 0x06, 0x04];
            data.extend_from_slice(&tail);
            let p = ArpPacket::new_checked(&data[..]).unwrap();
            let _ = (p.operation(), p.sender_mac(), p.target_ip());
        }

        #[test]
        fn prop_repr_roundtrip(
            op in any::<u16>(),
            sm in any::<[u8; 6]>(), si in any::<u32>(),
            tm in any::<[u8; 6]>(), ti in any::<u32>(),
        ) {
            let repr = ArpRepr {
                op: ArpOp::from(op),
                sender_mac: MacAddr(sm),
                sender_ip: Ipv4Addr::from(si),
                target_mac: MacAddr(tm),
                target_ip: Ipv4Addr::from(ti),
            };
            let mut buf = [0u8; LEN];
            repr.emit(&mut buf).unwrap();
            let p = ArpPacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(ArpRepr::parse(&p).unwrap(), repr);
        }
    }
}
