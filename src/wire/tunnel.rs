//! IPVS's tunnel encapsulations (`ipvsadm -i --tun-type ipip|gue|gre`):
//! the outer headers that carry a client's IPv4 packet to a real server.
//!
//! As net/netfilter/ipvs/ip_vs_xmit.c builds them (`ip_vs_tunnel_xmit`,
//! `ipvs_gue_encap`, `ipvs_gre_encap`, `ip_vs_prepare_tunneled_skb`):
//!
//! - outer IPv4 (no options): source the director's address on the egress
//!   port, destination the real server; TTL and DF copied from the inner
//!   header (the kernel copies DF when `pmtu_disc` is on, its default),
//!   DSCP copied and ECN encapsulated as RFC 6040's normal mode
//!   (`INET_ECN_encapsulate`: CE inside becomes ECT(0) outside); protocol
//!   4 (ipip), 17 (GUE) or 47 (GRE);
//! - ipip: nothing more;
//! - GUE: a UDP header to the configured port from a per-flow source port,
//!   then a 4-byte GUE header (version 0, no control, no options,
//!   proto/ctype 4: an IPv4 packet follows). The UDP checksum is zero
//!   unless `--tun-csum` or `--tun-remcsum` asks for one. Remote checksum
//!   offload's private option is only used by the kernel for packets whose
//!   checksum is left to the NIC (CHECKSUM_PARTIAL); every packet the
//!   director forwards has its checksums complete, so `--tun-remcsum`
//!   gives what `--tun-csum` gives;
//! - GRE: a 4-byte header (no key, no sequence; protocol 0x0800), with the
//!   checksum present (C bit, then the checksum over the GRE header and
//!   payload and 2 reserved bytes) for `--tun-csum`.

use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
use super::WireError;

/// The GUE header's proto/ctype for an IPv4 payload.
const GUE_PROTO_IPIP: u8 = 4;
/// GRE's protocol type for IPv4 (an EtherType).
const GRE_PROTO_IPV4: u16 = 0x0800;
/// GRE's checksum-present flag.
const GRE_FLAG_CSUM: u16 = 0x8000;

/// A tunnel's kind and options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tunnel {
    Ipip,
    /// Generic UDP Encapsulation to `port`; `csum`: a UDP checksum.
    Gue {
        port: u16,
        csum: bool,
    },
    /// GRE; `csum`: the GRE checksum present.
    Gre {
        csum: bool,
    },
}

impl Tunnel {
    /// Bytes the outer headers take (outer IPv4 included).
    pub const fn outer_len(self) -> usize {
        Ipv4Repr::HEADER_LEN
            + match self {
                Tunnel::Ipip => 0,
                Tunnel::Gue { .. } => 8 + 4,
                Tunnel::Gre { csum: false } => 4,
                Tunnel::Gre { csum: true } => 8,
            }
    }

    /// Writes the outer headers into `buf[..outer_len()]`; `buf[outer_len()..]`
    /// holds the inner IPv4 packet (its total length says where it ends).
    /// `ident` is the outer header's identification; `sport` the GUE
    /// source port (a hash of the inner flow, so one flow keeps one path).
    pub fn emit(
        self,
        buf: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ident: u16,
        sport: u16,
    ) -> Result<(), WireError> {
        let at = self.outer_len();
        let inner = Ipv4Packet::new_checked(buf.get(at..).ok_or(WireError::Truncated)?)?;
        let inner_len = inner.total_len() as usize;
        let (ttl, dont_frag, tos) = (inner.ttl(), inner.dont_frag(), inner.dscp_ecn());
        let payload_len = at - Ipv4Repr::HEADER_LEN + inner_len;
        Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: match self {
                Tunnel::Ipip => IpProtocol::IPIP,
                Tunnel::Gue { .. } => IpProtocol::UDP,
                Tunnel::Gre { .. } => IpProtocol(47),
            },
            payload_len: u16::try_from(payload_len).map_err(|_| WireError::BadTotalLen)?,
            ttl,
            ident,
            dont_frag,
            dscp_ecn: ecn_encapsulate(tos),
        }
        .emit(buf)?;
        let l4 = Ipv4Repr::HEADER_LEN;
        let end = at + inner_len;
        match self {
            Tunnel::Ipip => {}
            Tunnel::Gue { port, csum } => {
                let udp_len = (end - l4) as u16;
                let b = &mut buf[l4..end];
                b[0..2].copy_from_slice(&sport.to_be_bytes());
                b[2..4].copy_from_slice(&port.to_be_bytes());
                b[4..6].copy_from_slice(&udp_len.to_be_bytes());
                b[6..8].fill(0);
                // GUE: version 0, C 0, hlen 0 | proto/ctype | flags 0.
                b[8..12].copy_from_slice(&[0, GUE_PROTO_IPIP, 0, 0]);
                if csum {
                    let sum = checksum::pseudo_header_sum(src, dst, 17, udp_len)
                        .wrapping_add(checksum::sum(b));
                    // A computed zero goes out as all ones (RFC 768).
                    let c = match !checksum::fold(sum) {
                        0 => 0xffff,
                        c => c,
                    };
                    b[6..8].copy_from_slice(&c.to_be_bytes());
                }
            }
            Tunnel::Gre { csum } => {
                let b = &mut buf[l4..end];
                let flags = if csum { GRE_FLAG_CSUM } else { 0 };
                b[0..2].copy_from_slice(&flags.to_be_bytes());
                b[2..4].copy_from_slice(&GRE_PROTO_IPV4.to_be_bytes());
                if csum {
                    b[4..8].fill(0);
                    let c = checksum::checksum(b);
                    b[4..6].copy_from_slice(&c.to_be_bytes());
                }
            }
        }
        Ok(())
    }
}

/// The outer TOS byte for an inner one (RFC 6040 normal mode, the
/// kernel's `INET_ECN_encapsulate`): DSCP copied; ECN copied, but CE
/// becomes ECT(0).
pub const fn ecn_encapsulate(inner: u8) -> u8 {
    const CE: u8 = 3;
    const ECT0: u8 = 2;
    match inner & 3 {
        CE => (inner & !3) | ECT0,
        _ => inner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixture_frames::{
        TUN_GRE, TUN_GRE_CSUM, TUN_GUE, TUN_GUE_CSUM, TUN_INNER, TUN_IPIP,
    };

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const DIR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const RS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);

    /// Each encapsulation of the scapy-made inner packet, against scapy's
    /// own encapsulation of it (scripts/gen-fixtures).
    #[test]
    fn encapsulations_match_scapy() {
        for (tun, want) in [
            (Tunnel::Ipip, TUN_IPIP),
            (
                Tunnel::Gue {
                    port: 6080,
                    csum: false,
                },
                TUN_GUE,
            ),
            (
                Tunnel::Gue {
                    port: 6080,
                    csum: true,
                },
                TUN_GUE_CSUM,
            ),
            (Tunnel::Gre { csum: false }, TUN_GRE),
            (Tunnel::Gre { csum: true }, TUN_GRE_CSUM),
        ] {
            let inner = hex(TUN_INNER);
            let mut buf = vec![0xa5; tun.outer_len()];
            buf.extend(&inner);
            tun.emit(&mut buf, DIR, RS, 0x1234, 50000).unwrap();
            assert_eq!(buf, hex(want), "{tun:?}");
            assert_eq!(&buf[tun.outer_len()..], &inner[..], "inner untouched");
        }
    }

    #[test]
    fn ecn_is_encapsulated_as_rfc_6040_says() {
        assert_eq!(ecn_encapsulate(0xb8), 0xb8, "EF, not ECT");
        assert_eq!(ecn_encapsulate(0xb9), 0xb9, "ECT(1)");
        assert_eq!(ecn_encapsulate(0xba), 0xba, "ECT(0)");
        assert_eq!(ecn_encapsulate(0xbb), 0xba, "CE becomes ECT(0)");
    }

    #[test]
    fn a_short_buffer_is_an_error() {
        let inner = hex(TUN_INNER);
        let mut buf = vec![0; 10];
        buf.extend(&inner);
        assert!(Tunnel::Ipip.emit(&mut buf, DIR, RS, 1, 1).is_err());
        assert!(Tunnel::Gre { csum: false }
            .emit(&mut [0u8; 30], DIR, RS, 1, 1)
            .is_err());
    }
}
