//! Ethernet II frames (IEEE 802.3 with an EtherType, RFC 894) without FCS.
//!
//! # Contract
//!
//! - [`EthernetFrame::new_checked`] accepts any buffer of at least
//!   [`HEADER_LEN`] bytes; after that every accessor is infallible.
//! - [`EthernetFrame::payload`] is everything after the 14-byte header,
//!   including any padding up to [`MIN_FRAME_LEN`]: the inner protocol's own
//!   length field (IPv4 total length, ARP's fixed size) bounds the real data.
//! - An 802.1Q tag is not parsed here: a tagged frame shows
//!   [`EtherType::VLAN`] and the tag as the first payload bytes.
//! - [`MacAddr`] displays and parses as six lowercase hex pairs joined by
//!   `:` (`02:00:00:00:00:01`); parsing accepts uppercase too.

use core::fmt;
use core::str::FromStr;

use super::WireError;

/// Length of the Ethernet II header: destination, source, EtherType.
pub const HEADER_LEN: usize = 14;

/// Minimum frame length on the wire without the 4-byte FCS (IEEE 802.3
/// clause 4.2.3.3: 64 bytes with FCS). Generated frames shorter than this
/// must be zero-padded; the NIC strips nothing on receive, so received frames
/// may carry such padding after the IP packet.
pub const MIN_FRAME_LEN: usize = 60;

mod field {
    pub(super) const DST: core::ops::Range<usize> = 0..6;
    pub(super) const SRC: core::ops::Range<usize> = 6..12;
    pub(super) const ETHERTYPE: usize = 12;
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00`, e.g. the unknown target of an ARP request.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Build from a slice; `None` unless it is exactly 6 bytes.
    #[inline]
    pub fn from_bytes(bytes: &[u8]) -> Option<MacAddr> {
        <[u8; 6]>::try_from(bytes).ok().map(MacAddr)
    }

    /// The six octets in transmission order.
    #[inline]
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// All ones.
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// The I/G bit (least significant bit of the first octet) is set: a
    /// group address. Broadcast is a multicast address too.
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// An individual address: the I/G bit is clear.
    #[inline]
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The U/L bit (second least significant bit of the first octet) is set.
    #[inline]
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl From<[u8; 6]> for MacAddr {
    #[inline]
    fn from(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }
}

impl From<MacAddr> for [u8; 6] {
    #[inline]
    fn from(mac: MacAddr) -> Self {
        mac.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not six `:`-separated pairs of hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address (expected six hex pairs like 02:00:00:00:00:01)")]
pub struct ParseMacError;

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        fn hex(c: u8) -> Result<u8, ParseMacError> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(ParseMacError),
            }
        }
        // Exactly "xx:xx:xx:xx:xx:xx": 17 bytes, separators at 2, 5, ... 14.
        // Hand-rolled because u8::from_str_radix would accept "+f".
        let s = s.as_bytes();
        if s.len() != 17 {
            return Err(ParseMacError);
        }
        let mut out = [0u8; 6];
        for (i, o) in out.iter_mut().enumerate() {
            let at = i * 3;
            if i > 0 && s[at - 1] != b':' {
                return Err(ParseMacError);
            }
            *o = (hex(s[at])? << 4) | hex(s[at + 1])?;
        }
        Ok(MacAddr(out))
    }
}

/// The EtherType field: which protocol the payload holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EtherType(pub u16);

impl EtherType {
    /// Internet Protocol version 4.
    pub const IPV4: EtherType = EtherType(0x0800);
    /// Address Resolution Protocol (RFC 826).
    pub const ARP: EtherType = EtherType(0x0806);
    /// IEEE 802.1Q VLAN tag.
    pub const VLAN: EtherType = EtherType(0x8100);
    /// Internet Protocol version 6.
    pub const IPV6: EtherType = EtherType(0x86dd);
}

impl From<u16> for EtherType {
    #[inline]
    fn from(value: u16) -> Self {
        EtherType(value)
    }
}

impl From<EtherType> for u16 {
    #[inline]
    fn from(value: EtherType) -> Self {
        value.0
    }
}

/// A read (and, with `T: AsMut<[u8]>`, write) view of an Ethernet II frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Length of the Ethernet II header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wrap `buffer`, checking it holds a whole header.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if it is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(EthernetFrame { buffer })
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole frame, header included.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        let b = self.buffer.as_ref();
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> MacAddr {
        let b = self.buffer.as_ref();
        MacAddr([b[6], b[7], b[8], b[9], b[10], b[11]])
    }

    /// EtherType.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType(super::read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Everything after the header (padding included, see module docs).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// The whole frame, mutable.
    #[inline]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Set the destination address.
    #[inline]
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    /// Set the source address.
    #[inline]
    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }

    /// Set the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        super::write_u16(self.buffer.as_mut(), field::ETHERTYPE, ethertype.0);
    }

    /// Everything after the header, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// The Ethernet II header as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source address.
    pub src: MacAddr,
    /// Destination address.
    pub dst: MacAddr,
    /// Payload protocol.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Bytes [`EthernetRepr::emit`] writes.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Read the header out of a checked frame. Never fails today; the
    /// `Result` keeps the signature uniform with the other `Repr`s.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<Self, WireError> {
        Ok(EthernetRepr {
            src: frame.src(),
            dst: frame.dst(),
            ethertype: frame.ethertype(),
        })
    }

    /// Bytes [`EthernetRepr::emit`] writes (the header only).
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the 14-byte header at the start of `buf`.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if `buf` is shorter than the header.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let mut frame = EthernetFrame::new_checked(buf)?;
        frame.set_dst(self.dst);
        frame.set_src(self.src);
        frame.set_ethertype(self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Broadcast ARP request frame head: dst ff.., src 52:54:00:12:34:56, ARP.
    static FRAME: [u8; 18] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06, 0xaa,
        0xbb, 0xcc, 0xdd,
    ];

    #[test]
    fn test_deconstruct() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst(), MacAddr::BROADCAST);
        assert_eq!(f.src(), MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(f.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 18];
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.set_dst(MacAddr::BROADCAST);
        f.set_src(MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
        f.set_ethertype(EtherType::ARP);
        f.payload_mut().copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(buf, FRAME);
    }

    #[test]
    fn test_parse_then_emit_roundtrip() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        let repr = EthernetRepr::parse(&f).unwrap();
        let mut buf = [0u8; HEADER_LEN];
        repr.emit(&mut buf).unwrap();
        assert_eq!(buf, FRAME[..HEADER_LEN]);
        assert_eq!(repr.buffer_len(), HEADER_LEN);
    }

    #[test]
    fn test_truncated_prefixes() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&FRAME[..n]).unwrap_err(),
                WireError::Truncated
            );
            let repr = EthernetRepr {
                src: MacAddr::ZERO,
                dst: MacAddr::ZERO,
                ethertype: EtherType::IPV4,
            };
            let mut buf = vec![0u8; n];
            assert_eq!(repr.emit(&mut buf), Err(WireError::Truncated));
        }
        let f = EthernetFrame::new_checked(&FRAME[..HEADER_LEN]).unwrap();
        assert!(f.payload().is_empty());
    }

    #[test]
    fn test_smoltcp_oracle() {
        let ours = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        let theirs = smoltcp::wire::EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(ours.dst().0, theirs.dst_addr().0);
        assert_eq!(ours.src().0, theirs.src_addr().0);
        assert_eq!(ours.ethertype().0, u16::from(theirs.ethertype()));
        assert_eq!(ours.payload(), theirs.payload());
    }

    #[test]
    fn test_mac_classes() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!MacAddr::BROADCAST.is_unicast());
        let mcast = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]); // VRRP group
        assert!(mcast.is_multicast() && !mcast.is_broadcast());
        let local = MacAddr([0x02, 0, 0, 0, 0, 1]);
        assert!(local.is_unicast() && local.is_local());
        assert!(MacAddr::ZERO.is_unicast());
        assert_eq!(MacAddr::default(), MacAddr::ZERO);
        assert_eq!(
            MacAddr::from_bytes(&[1, 2, 3, 4, 5, 6]),
            Some(MacAddr([1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(MacAddr::from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn test_mac_display_and_parse() {
        let mac = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
        assert_eq!(mac.to_string(), "02:00:00:00:00:01");
        assert_eq!(format!("{mac:?}"), "02:00:00:00:00:01");
        assert_eq!("02:00:00:00:00:01".parse::<MacAddr>(), Ok(mac));
        let upper: MacAddr = "AA:bb:Cc:0D:e0:FF".parse().unwrap();
        assert_eq!(upper, MacAddr([0xaa, 0xbb, 0xcc, 0x0d, 0xe0, 0xff]));
        assert_eq!(upper.to_string(), "aa:bb:cc:0d:e0:ff");
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:",
            "02-00-00-00-00-01",
            "2:00:00:00:00:001",
            "+2:00:00:00:00:01",
            "g2:00:00:00:00:01",
            "02:00:00:00:00:0é",
            "02:00:00:00:00:01 ",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(ParseMacError), "{bad:?}");
        }
    }

    #[test]
    fn test_ethertype_conversions() {
        assert_eq!(EtherType::from(0x0800), EtherType::IPV4);
        assert_eq!(u16::from(EtherType::IPV6), 0x86dd);
        assert_eq!(EtherType::VLAN.0, 0x8100);
    }

    proptest! {
        #[test]
        fn prop_new_checked_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            match EthernetFrame::new_checked(&data[..]) {
                Ok(f) => {
                    let _ = (f.dst(), f.src(), f.ethertype(), f.payload().len());
                    prop_assert!(data.len() >= HEADER_LEN);
                }
                Err(e) => {
                    prop_assert_eq!(e, WireError::Truncated);
                    prop_assert!(data.len() < HEADER_LEN);
                }
            }
        }

        #[test]
        fn prop_repr_roundtrip(src in any::<[u8; 6]>(), dst in any::<[u8; 6]>(), et in any::<u16>()) {
            let repr = EthernetRepr { src: MacAddr(src), dst: MacAddr(dst), ethertype: EtherType(et) };
            let mut buf = [0u8; MIN_FRAME_LEN];
            repr.emit(&mut buf).unwrap();
            let f = EthernetFrame::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(EthernetRepr::parse(&f).unwrap(), repr);
        }

        #[test]
        fn prop_mac_display_parse_roundtrip(octets in any::<[u8; 6]>()) {
            let mac = MacAddr(octets);
            prop_assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
            prop_assert_eq!(mac.to_string().to_uppercase().parse::<MacAddr>(), Ok(mac));
        }

        #[test]
        fn prop_mac_parse_never_panics(s in "\\PC{0,20}") {
            let _ = s.parse::<MacAddr>();
        }
    }
}
