//! `UdpPacket` / `UdpRepr` over arbitrary bytes.
//!
//! Input: 4 bytes IPv4 source, 4 bytes IPv4 destination (the pseudo
//! header's addresses), then the UDP datagram (an IPv4 payload, no IP
//! header, possibly longer than its length field). Checks: `new_checked`
//! returns exactly the error its contract lists; accessors and slices follow
//! the length field; `verify_checksum` agrees with a reference RFC 768 sum
//! (0 = not computed); parse → emit → parse is the identity;
//! `fill_checksum` verifies and never writes 0; the NAT rewrites keep it
//! verifying and leave a 0 checksum alone; setters read back; a rewritten
//! length field never makes a slice accessor panic.
#![no_main]

use std::net::Ipv4Addr;

use dlvs::wire::{UdpPacket, UdpRepr, WireError};
use dlvs_fuzz::{ip_from, ref_verify_l4, split_prefix, Values};
use libfuzzer_sys::fuzz_target;

fn expected(b: &[u8]) -> Result<(), WireError> {
    if b.len() < 8 {
        return Err(WireError::Truncated);
    }
    let len = usize::from(u16::from_be_bytes([b[4], b[5]]));
    if len < 8 {
        return Err(WireError::BadLength);
    }
    if len > b.len() {
        return Err(WireError::Truncated);
    }
    Ok(())
}

fn valid<T: AsRef<[u8]>>(p: &UdpPacket<T>, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
    let ok = p.verify_checksum(src, dst);
    let reference = p.checksum() == 0 || ref_verify_l4(src, dst, 17, p.len(), p.datagram());
    assert_eq!(ok, reference, "verify_checksum vs reference");
    ok
}

fuzz_target!(|data: &[u8]| {
    let (addrs, dgram) = split_prefix(data, 8);
    if addrs.len() < 8 {
        return;
    }
    let (src, dst) = (ip_from(&addrs[..4]), ip_from(&addrs[4..]));

    assert_eq!(
        UdpPacket::new_checked(dgram).map(|_| ()),
        expected(dgram),
        "new_checked vs contract"
    );
    let Ok(pkt) = UdpPacket::new_checked(dgram) else {
        return;
    };
    let be16 = |at: usize| u16::from_be_bytes([dgram[at], dgram[at + 1]]);
    let len = usize::from(be16(4));
    assert_eq!((pkt.src_port(), pkt.dst_port()), (be16(0), be16(2)));
    assert_eq!((usize::from(pkt.len()), pkt.checksum()), (len, be16(6)));
    assert_eq!(pkt.datagram(), &dgram[..len]);
    assert_eq!(pkt.payload(), &dgram[8..len]);
    assert_eq!(pkt.is_empty(), len == 8);
    assert_eq!(pkt.as_bytes(), dgram);
    let orig_valid = valid(&pkt, src, dst);

    // parse → emit → parse.
    let repr = UdpRepr::parse(&pkt).expect("parse of a checked datagram");
    assert_eq!(usize::from(repr.payload_len), len - 8);
    assert_eq!(repr.buffer_len(), UdpRepr::HEADER_LEN);
    assert_eq!(repr.total_len(), len);
    let mut buf = vec![0u8; repr.total_len()];
    repr.emit(&mut buf).expect("emit into total_len bytes");
    buf[8..].copy_from_slice(pkt.payload());
    assert_eq!(&buf[..6], &dgram[..6]);
    let emitted = UdpPacket::new_checked(&buf[..]).expect("emitted header is accepted");
    assert_eq!(UdpRepr::parse(&emitted), Ok(repr));
    assert_eq!(emitted.checksum(), 0);
    assert_eq!(emitted.payload(), pkt.payload());
    let short = dgram.len() % 8;
    assert_eq!(repr.emit(&mut vec![0u8; short]), Err(WireError::Truncated));
    let mut v = Values::new(data);
    let huge = UdpRepr {
        payload_len: u16::MAX - 7 + (v.below(8) as u16),
        ..repr
    };
    assert_eq!(huge.emit(&mut [0u8; 8]), Err(WireError::BadLength));

    // fill → verify; NAT rewrites keep it verifying (the original too, if
    // it verified with a computed checksum); a zero checksum stays zero.
    let mut copies = Vec::new();
    if orig_valid {
        copies.push(dgram.to_vec());
    }
    let mut f = dgram.to_vec();
    let mut fp = UdpPacket::new_checked(&mut f[..]).unwrap();
    fp.fill_checksum(src, dst);
    assert_ne!(fp.checksum(), 0, "fill_checksum wrote 0");
    copies.push(f);
    for mut copy in copies {
        let mut p = UdpPacket::new_checked(&mut copy[..]).unwrap();
        let zero = p.checksum() == 0;
        assert!(valid(&p, src, dst));
        let (sp, dp, nsrc, ndst) = (v.u16(), v.u16(), v.ip(), v.ip());
        p.rewrite_src_port(sp);
        assert_eq!(p.src_port(), sp);
        assert!(valid(&p, src, dst), "rewrite_src_port");
        p.rewrite_dst_port(dp);
        assert_eq!(p.dst_port(), dp);
        assert!(valid(&p, src, dst), "rewrite_dst_port");
        p.update_checksum_for_addr(src, nsrc);
        assert!(valid(&p, nsrc, dst), "update_checksum_for_addr (source)");
        p.update_checksum_for_addr(dst, ndst);
        assert!(
            valid(&p, nsrc, ndst),
            "update_checksum_for_addr (destination)"
        );
        assert_eq!(
            p.checksum() == 0,
            zero,
            "a rewrite changed whether the checksum is computed"
        );
        assert_eq!(p.payload(), &dgram[8..len]);
    }

    // Setters on a copy.
    let mut copy = dgram.to_vec();
    let mut p = UdpPacket::new_checked(&mut copy[..]).unwrap();
    let (sp, dp, cs) = (v.u16(), v.u16(), v.u16());
    p.set_src_port(sp);
    p.set_dst_port(dp);
    p.set_checksum(cs);
    assert_eq!((p.src_port(), p.dst_port(), p.checksum()), (sp, dp, cs));
    assert_eq!(usize::from(p.len()), len);
    assert_eq!(p.payload_mut().len(), len - 8);
    // A length field rewritten after new_checked: slices clamp, never panic.
    let nl = v.u16();
    p.set_len(nl);
    assert_eq!(p.len(), nl);
    assert!(p.datagram().len() <= dgram.len() && p.payload().len() <= dgram.len());
    let _ = (p.is_empty(), p.payload_mut().len(), UdpRepr::parse(&p));
    let _ = p.verify_checksum(src, dst);
    p.fill_checksum(src, dst);
    assert_ne!(p.checksum(), 0);
    // Verifiable once the length is sane again (the checksum field is inside
    // the datagram, and the datagram inside the buffer).
    if (8..=dgram.len()).contains(&usize::from(nl)) {
        assert!(valid(&p, src, dst));
    }
});
