//! Typed, zero-copy packet views and builders.
//!
//! # Contract
//!
//! Every protocol module follows the shape of smoltcp's `src/wire/ipv4.rs`:
//!
//! - A view `XxxPacket<T: AsRef<[u8]>>` (or `EthernetFrame<T>`) wraps a byte
//!   buffer without copying. `new_checked(buf)` validates the lengths and the
//!   fields that other fields' positions depend on, exactly once, and returns a
//!   [`WireError`] for anything it cannot describe.
//! - Accessors on a view returned by `new_checked` are infallible: they never
//!   panic and never index out of range, for any input `new_checked` accepted.
//!   Accessors whose range depends on a length field (`payload()`, `options()`)
//!   additionally clamp to the buffer, so even a setter that writes a length
//!   field (`set_total_len`, `set_len`) cannot make a later call panic.
//! - Setters exist when `T: AsMut<[u8]>` too; they never allocate.
//! - A `XxxRepr` is the plain-data form of a header: `parse(&view)` reads one
//!   out of a view, `emit(&self, buf)` writes one into the start of `buf` and
//!   reports [`WireError::Truncated`] (instead of panicking) when `buf` is too
//!   short. Representations are deliberately lossy where the data path does not
//!   need a field (IPv4 options, TCP options): see each module.
//! - Multi-byte fields are network byte order (big-endian) on the wire and host
//!   integers in the API; addresses are [`std::net::Ipv4Addr`] and
//!   [`MacAddr`].
//!
//! Nothing here allocates, and every accessor is `#[inline]`: these run once
//! per packet on the forwarding path. Checksums (RFC 1071 full sums, RFC 1624
//! incremental updates) live in [`checksum`].

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipvs_sync;
pub mod tcp;
pub mod tunnel;
pub mod udp;
pub mod vrrp;

#[cfg(test)]
pub(crate) mod fixture_frames;
#[cfg(test)]
mod fixtures;

pub use arp::{ArpOp, ArpPacket, ArpRepr};
pub use ethernet::{EtherType, EthernetFrame, EthernetRepr, MacAddr};
pub use icmp::{IcmpPacket, IcmpRepr};
pub use ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
pub use tcp::{TcpFlags, TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};

/// Why a buffer was not accepted as a packet of some kind.
///
/// The variants are coarse on purpose: the data path only counts and drops,
/// so each one maps to one drop counter (see [`WireError::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WireError {
    /// The buffer ends before the header (or a length field says) it should.
    #[error("truncated packet")]
    Truncated,
    /// IPv4 version field is not 4.
    #[error("bad IP version")]
    BadVersion,
    /// A header length field (IPv4 IHL, TCP data offset) is below the minimum.
    #[error("bad header length")]
    BadHeaderLen,
    /// IPv4 total length is shorter than the header or longer than the buffer.
    #[error("bad total length")]
    BadTotalLen,
    /// A length field (UDP length) is below the header length.
    #[error("bad length field")]
    BadLength,
    /// Well-formed but outside what this crate handles (e.g. non-IPv4 ARP).
    #[error("unsupported packet")]
    Unsupported,
}

impl WireError {
    /// Every variant, in declaration order (handy for per-reason counters).
    pub const ALL: [WireError; 6] = [
        WireError::Truncated,
        WireError::BadVersion,
        WireError::BadHeaderLen,
        WireError::BadTotalLen,
        WireError::BadLength,
        WireError::Unsupported,
    ];

    /// A stable snake_case name, suitable as a metrics label value.
    #[inline]
    pub fn as_str(self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::BadVersion => "bad_version",
            WireError::BadHeaderLen => "bad_header_len",
            WireError::BadTotalLen => "bad_total_len",
            WireError::BadLength => "bad_length",
            WireError::Unsupported => "unsupported",
        }
    }
}

/// Read a big-endian `u16` at `at`. Callers guarantee `at + 2 <= buf.len()`
/// (every call site uses a constant offset inside a length-checked header).
#[inline]
fn read_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

/// Read a big-endian `u32` at `at`; same precondition as [`read_u16`].
#[inline]
fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Write a big-endian `u16` at `at`; same precondition as [`read_u16`].
#[inline]
fn write_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Write a big-endian `u32` at `at`; same precondition as [`read_u16`].
#[inline]
fn write_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// Read an IPv4 address at `at`; same precondition as [`read_u16`].
#[inline]
fn read_ipv4(buf: &[u8], at: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(read_u32(buf, at))
}

/// Write an IPv4 address at `at`; same precondition as [`read_u16`].
#[inline]
fn write_ipv4(buf: &mut [u8], at: usize, addr: std::net::Ipv4Addr) {
    buf[at..at + 4].copy_from_slice(&addr.octets());
}

/// `buf[start..end]` with both ends clamped into the buffer, so a length
/// field rewritten after `new_checked` can shorten a slice but never panic.
#[inline]
fn clamped(buf: &[u8], start: usize, end: usize) -> &[u8] {
    let end = end.min(buf.len());
    let start = start.min(end);
    &buf[start..end]
}

/// Mutable twin of [`clamped`].
#[inline]
fn clamped_mut(buf: &mut [u8], start: usize, end: usize) -> &mut [u8] {
    let end = end.min(buf.len());
    let start = start.min(end);
    &mut buf[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_error_names() {
        let names: Vec<&str> = WireError::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(
            names,
            [
                "truncated",
                "bad_version",
                "bad_header_len",
                "bad_total_len",
                "bad_length",
                "unsupported"
            ]
        );
        for e in WireError::ALL {
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn test_clamped() {
        let buf = [1u8, 2, 3, 4];
        assert_eq!(clamped(&buf, 1, 3), &[2, 3]);
        assert_eq!(clamped(&buf, 1, 99), &[2, 3, 4]);
        assert_eq!(clamped(&buf, 3, 2), &[] as &[u8]);
        assert_eq!(clamped(&buf, 9, 99), &[] as &[u8]);
    }
}
