//! Helpers shared by the fuzz targets in `fuzz_targets/`: a reference
//! (deliberately naive) RFC 1071 checksum to cross-check `dlvs::wire`
//! against, and a deterministic source of setter values derived from the
//! input, so a crash reproduces from its input file alone.

use std::net::Ipv4Addr;

use dlvs::datapath::harness::Rng;
use dlvs::wire::MacAddr;

/// The folded (not complemented) ones'-complement sum of the concatenation
/// of `parts`, computed 16 bits at a time the textbook way (RFC 1071 §4.1):
/// bytes pair up across part boundaries, an odd final byte is padded with
/// zero. Returns 0 only for all-zero input, otherwise `1..=0xffff`.
pub fn ref_sum(parts: &[&[u8]]) -> u16 {
    let mut acc: u64 = 0;
    let mut hi: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match hi.take() {
                None => hi = Some(b),
                Some(h) => acc += u64::from(u16::from_be_bytes([h, b])),
            }
        }
    }
    if let Some(h) = hi {
        acc += u64::from(u16::from_be_bytes([h, 0]));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Reference TCP/UDP verification: the pseudo header (RFC 793 §3.1,
/// RFC 768) plus `segment` must sum to `0xffff`.
pub fn ref_verify_l4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16, segment: &[u8]) -> bool {
    let ph = [
        &src.octets()[..],
        &dst.octets()[..],
        &[0, protocol],
        &len.to_be_bytes(),
    ]
    .concat();
    ref_sum(&[&ph, segment]) == 0xffff
}

/// Splits `n` leading bytes off `data` (all of it if shorter).
pub fn split_prefix(data: &[u8], n: usize) -> (&[u8], &[u8]) {
    data.split_at(n.min(data.len()))
}

/// An IPv4 address from four bytes.
pub fn ip_from(b: &[u8]) -> Ipv4Addr {
    let mut o = [0u8; 4];
    for (d, s) in o.iter_mut().zip(b) {
        *d = *s;
    }
    Ipv4Addr::from(o)
}

/// Setter values, derived from the whole input (FNV-1a seeded SplitMix64),
/// so they vary with the input but a crash still reproduces from its file.
pub struct Values(Rng);

impl Values {
    pub fn new(data: &[u8]) -> Values {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Values(Rng::new(h))
    }

    pub fn u8(&mut self) -> u8 {
        self.0.next_u64() as u8
    }

    pub fn u16(&mut self) -> u16 {
        // Favour the edges, where checksum and length arithmetic breaks.
        match self.0.below(8) {
            0 => 0,
            1 => 0xffff,
            2 => 1,
            _ => self.0.next_u64() as u16,
        }
    }

    pub fn u32(&mut self) -> u32 {
        match self.0.below(8) {
            0 => 0,
            1 => u32::MAX,
            _ => self.0.next_u64() as u32,
        }
    }

    pub fn bool(&mut self) -> bool {
        self.0.next_u64() & 1 == 1
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }

    pub fn ip(&mut self) -> Ipv4Addr {
        Ipv4Addr::from(self.u32())
    }

    pub fn mac(&mut self) -> MacAddr {
        let v = self.0.next_u64().to_be_bytes();
        MacAddr([v[0], v[1], v[2], v[3], v[4], v[5]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_sum_rfc1071_example() {
        // RFC 1071 §3 example: 0001 f203 f4f5 f6f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ref_sum(&[&d]), 0xddf2);
        assert_eq!(ref_sum(&[&d[..3], &d[3..]]), 0xddf2);
        assert_eq!(ref_sum(&[&[]]), 0);
        assert_eq!(ref_sum(&[&[0xff, 0xff, 0xff, 0xff]]), 0xffff);
    }
}
