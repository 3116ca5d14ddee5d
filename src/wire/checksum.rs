//! The Internet checksum: full computation (RFC 1071) and incremental
//! update (RFC 1624).
//!
//! # Contract
//!
//! - [`sum`] returns a *partial* ones'-complement sum already folded to at
//!   most `0xffff`, so callers may add a handful of partial sums (pseudo
//!   header + segment) in a `u32` without overflow and then [`fold`] them.
//! - [`fold`] folds the carries back in and does not complement; a header
//!   verifies when `fold(sum(header)) == 0xffff` (RFC 1071 section 1, step 3).
//! - [`checksum`] is the value to store in a checksum field: `!fold(sum)`.
//! - [`update16`]/[`update32`] implement RFC 1624 equation 3,
//!   `HC' = ~(~HC + ~m + m')`, which (unlike RFC 1141's equation 2) never
//!   turns a valid checksum into the unrepresentable `-0` case for the
//!   fields this crate rewrites (addresses, ports, TTL).
//!
//! All functions are allocation-free and accept any slice length; the
//! accumulators are wide enough that nothing overflows.

use std::net::Ipv4Addr;

/// Ones'-complement partial sum of `data` as 16-bit big-endian words, an odd
/// trailing byte padded with a zero byte (RFC 1071 section 4.1).
///
/// The result is folded to at most `0xffff`. It is zero only if every byte
/// of `data` is zero.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    // RFC 1071 section 2(C): the sum may be computed over wider words and
    // folded afterwards, because 2^16 = 1 (mod 2^16 - 1). Adding 32-bit
    // words into a u64 cannot overflow below 2^32 words (16 GiB).
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    // The tail, zero-padded to a full word: [a, b, c] is the words ab, c0.
    // Byte by byte: a copy into a padded buffer and a 4-byte read of it
    // stalled on store forwarding (measured with perf on echo replies).
    let mut word = 0u32;
    for (i, &b) in rest.iter().enumerate() {
        word |= u32::from(b) << (24 - 8 * i);
    }
    acc += u64::from(word);
    // Fold 64 -> 32 bits (end-around carry), twice to absorb the last carry.
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    u32::from(fold(acc as u32))
}

/// Whether an IPv4 header without options verifies (`fold(sum(h)) ==
/// 0xffff`), as [`sum`] would say, unrolled for its one length: the fast
/// path checks every packet's header, and the general loop with its tail
/// cost about 60 instructions there (callgrind).
#[inline(always)]
pub fn ipv4_header_verifies(h: &[u8; 20]) -> bool {
    let w = |i: usize| u64::from(u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    let mut acc = w(0) + w(4) + w(8) + w(12) + w(16);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    fold(acc as u32) == 0xffff
}

/// Fold the carries of a 32-bit partial sum into 16 bits (RFC 1071 section
/// 4.1, "fold 32-bit sum to 16 bits"). The result is not complemented.
#[inline]
pub fn fold(sum: u32) -> u16 {
    // Two rounds suffice: after the first, the value is at most 0x1fffe.
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The Internet checksum of `data`, ready to store in a checksum field.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Partial sum of the IPv4 pseudo header used by TCP (RFC 793 section 3.1)
/// and UDP (RFC 768): source, destination, zero + protocol, and the
/// transport length (header plus data). Folded to at most `0xffff`.
#[inline]
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u32 {
    let s = u32::from(src);
    let d = u32::from(dst);
    let total =
        (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + u32::from(protocol) + u32::from(len);
    u32::from(fold(total))
}

/// Update checksum `csum` after a 16-bit word of the covered data changed
/// from `old` to `new` (RFC 1624 section 3, equation 3).
///
/// The result is `0x0000` exactly when the updated data sums to zero (+0 or
/// -0 in ones' complement). That is a valid checksum unless *all* covered
/// data is zero, where only `0xffff` verifies; callers whose data can become
/// all-zero (an ICMP echo with id 0, seq 0 and no data) map `0x0000` to
/// `0xffff`, which is always valid.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    // HC' = ~(~HC + ~m + m')
    let s = u32::from(!csum) + u32::from(!old) + u32::from(new);
    !fold(s)
}

/// Update checksum `csum` after a 32-bit, 16-bit-aligned field (an IPv4
/// address) changed from `old` to `new`: RFC 1624 equation 3 applied to
/// both halves at once.
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let s = u32::from(!csum)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!(old as u16))
        + (new >> 16)
        + (new & 0xffff);
    !fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The naive RFC 1071 definition, one 16-bit word at a time.
    fn naive_sum(data: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        for pair in data.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u64::from);
            acc += hi | lo;
        }
        while acc >> 16 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    /// 0x0000 and 0xffff are both ones'-complement zero.
    fn same_ones_complement(a: u16, b: u16) -> bool {
        a == b || (a | b == 0xffff && (a == 0 || b == 0))
    }

    proptest! {
        /// The unrolled header check says what the general sum says, on
        /// any 20 bytes and on headers whose checksum is right.
        #[test]
        fn ipv4_header_check_matches_sum(mut h in proptest::array::uniform20(any::<u8>())) {
            prop_assert_eq!(ipv4_header_verifies(&h), fold(sum(&h)) == 0xffff);
            h[10] = 0;
            h[11] = 0;
            let c = checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            prop_assert!(ipv4_header_verifies(&h));
            h[3] ^= 1;
            prop_assert!(!ipv4_header_verifies(&h));
        }
    }

    #[test]
    fn test_rfc1071_example() {
        // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2
        // (the partial sum 2ddf0 folds to ddf2).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
        assert_eq!(fold(0x2ddf0), 0xddf2);
    }

    #[test]
    fn test_odd_length_pads() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[]), 0);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn test_ipv4_header_known_checksum() {
        // A classic example header (Wikipedia "IPv4 header checksum"):
        // checksum 0xb861.
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0xb861);
        hdr[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(fold(sum(&hdr)), 0xffff);
    }

    #[test]
    fn test_large_buffers_do_not_overflow() {
        // 128 KiB of 0xff: far more words than a u32 accumulator of u16
        // words could hold; every word is -0, so the sum is -0 = 0xffff.
        let data = vec![0xffu8; 128 * 1024];
        assert_eq!(fold(sum(&data)), naive_sum(&data));
        assert_eq!(sum(&data), 0xffff);
        // An odd tail byte is padded: 0xff becomes the word 0xff00.
        let data = vec![0xffu8; 128 * 1024 + 1];
        assert_eq!(fold(sum(&data)), naive_sum(&data));
        assert_eq!(sum(&data), 0xff00);
        let data = vec![0xfeu8; 70_001];
        assert_eq!(fold(sum(&data)), naive_sum(&data));
    }

    #[test]
    fn test_fold_extremes() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(u32::MAX), 0xffff);
        assert_eq!(fold(0xffff_0000), 0xffff);
    }

    #[test]
    fn test_pseudo_header_sum() {
        let src = Ipv4Addr::new(192, 168, 0, 1);
        let dst = Ipv4Addr::new(192, 168, 0, 199);
        let mut raw = [0u8; 12];
        raw[0..4].copy_from_slice(&src.octets());
        raw[4..8].copy_from_slice(&dst.octets());
        raw[9] = 17;
        raw[10..12].copy_from_slice(&1234u16.to_be_bytes());
        assert_eq!(fold(pseudo_header_sum(src, dst, 17, 1234)), fold(sum(&raw)));
        let max = pseudo_header_sum(Ipv4Addr::BROADCAST, Ipv4Addr::BROADCAST, 255, 0xffff);
        assert!(max <= 0xffff);
    }

    #[test]
    fn test_rfc1624_corner() {
        // RFC 1624 section 4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285.
        // Equation 2 (RFC 1141) gives 0xffff; equation 3 gives 0x0000, and
        // the full recomputation agrees with equation 3 in ones' complement.
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
        // Equation 2 for contrast: HC' = HC - ~m - m' computed in ones'
        // complement arithmetic ends in the -0 representation 0xffff.
        let eqn2 = {
            let hc = 0xdd2fu32;
            let t = hc + 0x5555 + u32::from(!0x3285u16); // HC + m + ~m' (= HC - ~m - m')
            fold(t)
        };
        assert_eq!(eqn2, 0xffff);
    }

    #[test]
    fn test_update_noop_and_identity() {
        for csum in [0x0000u16, 0x0001, 0x1234, 0xfffe, 0xffff] {
            for w in [0x0000u16, 0x0001, 0x8000, 0xffff] {
                // Replacing a word by itself changes nothing except that
                // -0 may be normalised to +0, which are the same number.
                assert!(same_ones_complement(update16(csum, w, w), csum));
            }
        }
    }

    #[test]
    fn test_update32_matches_two_update16() {
        let c = 0x1c46;
        let old = 0xc0a8_0001u32;
        let new = 0x0a00_0002u32;
        let two = update16(
            update16(c, (old >> 16) as u16, (new >> 16) as u16),
            old as u16,
            new as u16,
        );
        assert!(same_ones_complement(update32(c, old, new), two));
    }

    proptest! {
        #[test]
        fn prop_sum_matches_naive(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            prop_assert_eq!(fold(sum(&data)), naive_sum(&data));
            prop_assert!(sum(&data) <= 0xffff);
        }

        #[test]
        fn prop_sum_splits_at_even_offsets(
            data in proptest::collection::vec(any::<u8>(), 0..512),
            cut in 0usize..256,
        ) {
            // The property the transport checksums rely on: pseudo header
            // and segment sums can be computed separately and added.
            let cut = (cut * 2).min(data.len() & !1);
            let (a, b) = data.split_at(cut);
            prop_assert_eq!(fold(sum(a) + sum(b)), fold(sum(&data)));
        }

        #[test]
        fn prop_update16_equals_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 2..256),
            idx in any::<usize>(),
            new in any::<u16>(),
        ) {
            let words = data.len() / 2;
            let at = (idx % words) * 2;
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let incr = update16(before, old, new);
            prop_assert!(same_ones_complement(incr, full), "incr {incr:#06x} full {full:#06x}");
        }

        #[test]
        fn prop_update32_equals_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 4..256),
            idx in any::<usize>(),
            new in any::<u32>(),
        ) {
            let words = (data.len() - 2) / 2;
            let at = (idx % words) * 2;
            let before = checksum(&data);
            let old = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            data[at..at + 4].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let incr = update32(before, old, new);
            prop_assert!(same_ones_complement(incr, full), "incr {incr:#06x} full {full:#06x}");
        }

        #[test]
        fn prop_updated_header_verifies(
            mut data in proptest::collection::vec(any::<u8>(), 6..128),
            new in any::<u16>(),
        ) {
            // Store the checksum in the first word, rewrite the last word
            // incrementally, and the whole still verifies (sums to -0).
            // Like every real header (version, protocol), the data keeps a
            // non-zero word that is never rewritten: all-zero data is the one
            // case where -0 and +0 differ on the wire (RFC 1624 section 3).
            let n = data.len() & !1;
            data.truncate(n);
            data[0] = 0;
            data[1] = 0;
            data[2] |= 1;
            let c = checksum(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            let old = u16::from_be_bytes([data[n - 2], data[n - 1]]);
            data[n - 2..n].copy_from_slice(&new.to_be_bytes());
            let c2 = update16(c, old, new);
            data[0..2].copy_from_slice(&c2.to_be_bytes());
            prop_assert_eq!(fold(sum(&data)), 0xffff);
        }
    }
}
