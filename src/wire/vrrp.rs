//! VRRP advertisements: version 2 (RFC 3768, keepalived's default) and
//! version 3 for IPv4 (RFC 5798).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! v2: |   Auth Type   |   Adver Int   |          Checksum             |
//! v3: |(rsvd) |     Max Adver Int     |          Checksum             |
//! |                         IPv4 Address(es)                      |
//! v2 only:              Authentication Data (8 bytes)
//! ```
//!
//! Version 2's interval is in seconds and its checksum covers the message
//! alone; version 3's is in centiseconds (12 bits) and its checksum adds
//! the IPv4 pseudo-header. The view checks the version, the type, that
//! the addresses (and v2's authentication data) fit, and the checksum
//! ([`VrrpPacket::verify_checksum`], given the IP addresses); the
//! representation keeps the interval in centiseconds for both versions.

use std::net::Ipv4Addr;

use super::checksum;
use super::WireError;

/// IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// The multicast group adverts go to (RFC 3768 §5.2.2, RFC 5798 §5.1.1.2).
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The TTL adverts are sent with, and must arrive with.
pub const TTL: u8 = 255;
/// The only packet type: ADVERTISEMENT.
const TYPE_ADVERT: u8 = 1;
/// Bytes before the addresses.
const HEADER_LEN: usize = 8;
/// Version 2's authentication data after the addresses.
const AUTH_LEN: usize = 8;

/// A VRRP message over a byte buffer (the IP payload).
#[derive(Debug, Clone)]
pub struct VrrpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VrrpPacket<T> {
    /// Checks the version (2 or 3), the type (advertisement) and that the
    /// buffer holds the addresses its count announces (and, for version
    /// 2, the authentication data after them).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let version = b[0] >> 4;
        if !(version == 2 || version == 3) || b[0] & 0x0f != TYPE_ADVERT {
            return Err(WireError::Unsupported);
        }
        let p = VrrpPacket { buffer };
        if p.buffer.as_ref().len() < p.len() {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    /// The message's length as its fields say: the header, the addresses
    /// and (version 2) the authentication data.
    #[inline]
    pub fn len(&self) -> usize {
        let b = self.buffer.as_ref();
        let auth = if self.version() == 2 { AUTH_LEN } else { 0 };
        HEADER_LEN + 4 * usize::from(b[3]) + auth
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    #[inline]
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    #[inline]
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[2]
    }

    #[inline]
    pub fn count(&self) -> u8 {
        self.buffer.as_ref()[3]
    }

    /// Version 2's authentication type (0 for version 3, which has none).
    #[inline]
    pub fn auth_type(&self) -> u8 {
        if self.version() == 2 {
            self.buffer.as_ref()[4]
        } else {
            0
        }
    }

    /// The advertisement interval in centiseconds (version 2 carries
    /// seconds).
    #[inline]
    pub fn interval_cs(&self) -> u16 {
        let b = self.buffer.as_ref();
        if self.version() == 2 {
            u16::from(b[5]) * 100
        } else {
            u16::from_be_bytes([b[4], b[5]]) & 0x0fff
        }
    }

    /// The `i`th address (`i < count`).
    #[inline]
    pub fn address(&self, i: usize) -> Option<Ipv4Addr> {
        if i >= usize::from(self.count()) {
            return None;
        }
        let at = HEADER_LEN + 4 * i;
        let a = self.buffer.as_ref().get(at..at + 4)?;
        Some(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
    }

    /// The addresses, in order.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        (0..usize::from(self.count())).filter_map(|i| self.address(i))
    }

    /// Whether the checksum holds: over the message for version 2, with
    /// the IPv4 pseudo-header of (`src`, `dst`) for version 3.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let m = &self.buffer.as_ref()[..self.len()];
        let mut s = checksum::sum(m);
        if self.version() == 3 {
            s += checksum::pseudo_header_sum(src, dst, PROTOCOL, m.len() as u16);
        }
        checksum::fold(s) == 0xffff
    }
}

/// An advertisement to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VrrpRepr<'a> {
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds; version 2 sends whole seconds (at least one).
    pub interval_cs: u16,
    pub addresses: &'a [Ipv4Addr],
}

impl VrrpRepr<'_> {
    /// Bytes [`VrrpRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + 4 * self.addresses.len() + if self.version == 2 { AUTH_LEN } else { 0 }
    }

    /// Writes the advertisement with its checksum (version 3's over the
    /// pseudo-header of `src` to `dst`) at the start of `buf`.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if `buf` is too short;
    /// [`WireError::BadLength`] for more than 255 addresses.
    pub fn emit(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<usize, WireError> {
        let count = u8::try_from(self.addresses.len()).map_err(|_| WireError::BadLength)?;
        let len = self.buffer_len();
        let b = buf.get_mut(..len).ok_or(WireError::Truncated)?;
        b.fill(0);
        b[0] = self.version << 4 | TYPE_ADVERT;
        b[1] = self.vrid;
        b[2] = self.priority;
        b[3] = count;
        if self.version == 2 {
            // Auth type 0 (none), the interval in seconds.
            b[5] = (self.interval_cs / 100).clamp(1, 255) as u8;
        } else {
            b[4..6].copy_from_slice(&(self.interval_cs & 0x0fff).to_be_bytes());
        }
        for (i, a) in self.addresses.iter().enumerate() {
            b[HEADER_LEN + 4 * i..HEADER_LEN + 4 * i + 4].copy_from_slice(&a.octets());
        }
        let mut s = checksum::sum(b);
        if self.version == 3 {
            s += checksum::pseudo_header_sum(src, dst, PROTOCOL, len as u16);
        }
        let c = !checksum::fold(s);
        b[6..8].copy_from_slice(&c.to_be_bytes());
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const VIPS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 101)];

    // Made with scapy by scripts/gen-fixtures.
    use crate::wire::fixture_frames::{VRRP2_MSG as V2, VRRP3_MSG as V3};

    fn bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn emits_what_scapy_builds() {
        for (version, interval_cs, want) in [(2, 100, V2), (3, 100, V3)] {
            let r = VrrpRepr {
                version,
                vrid: 51,
                priority: 100,
                interval_cs,
                addresses: &VIPS,
            };
            let mut buf = [0u8; 64];
            let n = r.emit(&mut buf, SRC, GROUP).unwrap();
            assert_eq!(buf[..n], bytes(want)[..], "version {version}");
        }
    }

    #[test]
    fn parses_and_verifies_both_versions() {
        for want in [V2, V3] {
            let b = bytes(want);
            let p = VrrpPacket::new_checked(&b[..]).unwrap();
            assert_eq!((p.vrid(), p.priority(), p.count()), (51, 100, 2));
            assert_eq!(p.interval_cs(), 100);
            assert_eq!(p.addresses().collect::<Vec<_>>(), VIPS);
            assert!(p.verify_checksum(SRC, GROUP));
            // Version 3's sum covers the source address; version 2's not.
            let other = Ipv4Addr::new(10, 0, 0, 3);
            assert_eq!(p.verify_checksum(other, GROUP), p.version() == 2);
            let mut bad = b.clone();
            bad[2] ^= 1;
            let p = VrrpPacket::new_checked(&bad[..]).unwrap();
            assert!(!p.verify_checksum(SRC, GROUP));
        }
    }

    #[test]
    fn refuses_what_it_cannot_describe() {
        let b = bytes(V2);
        assert_eq!(
            VrrpPacket::new_checked(&b[..b.len() - 1]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            VrrpPacket::new_checked(&b[..4]).err(),
            Some(WireError::Truncated)
        );
        for (at, v) in [(0, 0x11u8), (0, 0x22), (0, 0x41)] {
            let mut x = b.clone();
            x[at] = v;
            assert_eq!(
                VrrpPacket::new_checked(&x[..]).err(),
                Some(WireError::Unsupported)
            );
        }
        // A count beyond the buffer.
        let mut x = b.clone();
        x[3] = 200;
        assert_eq!(
            VrrpPacket::new_checked(&x[..]).err(),
            Some(WireError::Truncated)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            if let Ok(p) = VrrpPacket::new_checked(&b[..]) {
                let _ = (p.interval_cs(), p.auth_type(), p.addresses().count());
                let _ = p.verify_checksum(SRC, GROUP);
            }
        }
    }
}
