//! `TcpPacket` / `TcpRepr` over arbitrary bytes.
//!
//! Input: 4 bytes IPv4 source, 4 bytes IPv4 destination (the pseudo
//! header's addresses), then the TCP segment (an IPv4 payload, no IP
//! header). Checks: `new_checked` returns exactly the error its contract
//! lists; accessors, options and payload match the bytes;
//! `verify_checksum` agrees with a reference RFC 793 pseudo-header sum;
//! parse → emit → parse is the identity; `fill_checksum` verifies and the
//! incremental NAT rewrites (ports, addresses) keep it verifying; setters
//! read back; a rewritten data offset never makes a slice accessor panic.
#![no_main]

use std::net::Ipv4Addr;

use dlvs::wire::{TcpFlags, TcpPacket, TcpRepr, WireError};
use dlvs_fuzz::{ip_from, ref_verify_l4, split_prefix, Values};
use libfuzzer_sys::fuzz_target;

fn expected(b: &[u8]) -> Result<(), WireError> {
    if b.len() < 20 {
        return Err(WireError::Truncated);
    }
    let hl = usize::from(b[12] >> 4) * 4;
    if hl < 20 {
        return Err(WireError::BadHeaderLen);
    }
    if hl > b.len() {
        return Err(WireError::Truncated);
    }
    Ok(())
}

fn valid<T: AsRef<[u8]>>(p: &TcpPacket<T>, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
    let b = p.as_bytes();
    let ok = p.verify_checksum(src, dst);
    assert_eq!(
        ok,
        ref_verify_l4(src, dst, 6, b.len() as u16, b),
        "verify_checksum vs reference"
    );
    ok
}

fn check_flags(f: TcpFlags) {
    let all = [
        TcpFlags::FIN,
        TcpFlags::SYN,
        TcpFlags::RST,
        TcpFlags::PSH,
        TcpFlags::ACK,
        TcpFlags::URG,
        TcpFlags::ECE,
        TcpFlags::CWR,
    ];
    let mut acc = TcpFlags::empty();
    for g in all {
        assert_eq!(f.contains(g), f.bits() & g.bits() != 0);
        assert_eq!(f.intersects(g), f.contains(g));
        if f.contains(g) {
            acc |= g;
        }
    }
    assert_eq!(acc, f);
    assert_eq!(f & !f, TcpFlags::empty());
    assert_eq!((f | !f).bits(), 0xff);
    assert_eq!(f.is_empty(), f.bits() == 0);
    let dbg = format!("{f:?}");
    assert!(dbg.starts_with("TcpFlags(") && dbg.ends_with(')'));
    assert_eq!(
        dbg.matches(" | ").count(),
        (f.bits().count_ones() as usize).saturating_sub(1)
    );
}

fuzz_target!(|data: &[u8]| {
    let (addrs, seg) = split_prefix(data, 8);
    // An IPv4 payload is below 64 KiB (the checksum length is a u16).
    if addrs.len() < 8 || seg.len() > 65_515 {
        return;
    }
    let (src, dst) = (ip_from(&addrs[..4]), ip_from(&addrs[4..]));

    assert_eq!(
        TcpPacket::new_checked(seg).map(|_| ()),
        expected(seg),
        "new_checked vs contract"
    );
    let Ok(pkt) = TcpPacket::new_checked(seg) else {
        return;
    };
    let hl = usize::from(seg[12] >> 4) * 4;
    let be16 = |at: usize| u16::from_be_bytes([seg[at], seg[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([seg[at], seg[at + 1], seg[at + 2], seg[at + 3]]);
    assert_eq!((pkt.src_port(), pkt.dst_port()), (be16(0), be16(2)));
    assert_eq!((pkt.seq_number(), pkt.ack_number()), (be32(4), be32(8)));
    assert_eq!(pkt.header_len(), hl);
    assert_eq!(pkt.flags(), TcpFlags(seg[13]));
    assert_eq!(
        (pkt.window(), pkt.checksum(), pkt.urgent()),
        (be16(14), be16(16), be16(18))
    );
    assert_eq!(pkt.options(), &seg[20..hl]);
    assert_eq!(pkt.payload(), &seg[hl..]);
    assert_eq!(pkt.as_bytes(), seg);
    check_flags(pkt.flags());
    let orig_valid = valid(&pkt, src, dst);

    // parse → emit → parse, with the payload behind a bare 20-byte header.
    let repr = TcpRepr::parse(&pkt).expect("parse of a checked segment");
    assert_eq!(repr.buffer_len(), TcpRepr::HEADER_LEN);
    let mut buf = vec![0u8; repr.buffer_len() + pkt.payload().len()];
    repr.emit(&mut buf).expect("emit into buffer_len bytes");
    buf[20..].copy_from_slice(pkt.payload());
    let emitted = TcpPacket::new_checked(&buf[..]).expect("emitted header is accepted");
    assert_eq!(TcpRepr::parse(&emitted), Ok(repr));
    assert_eq!((emitted.header_len(), emitted.checksum()), (20, 0));
    assert!(emitted.options().is_empty());
    assert_eq!(emitted.payload(), pkt.payload());
    let short = seg.len() % 20;
    assert_eq!(repr.emit(&mut vec![0u8; short]), Err(WireError::Truncated));
    let mut filled = buf.clone();
    let mut e = TcpPacket::new_checked(&mut filled[..]).unwrap();
    e.fill_checksum(src, dst);
    assert!(valid(&e, src, dst), "fill_checksum on the emitted segment");

    // NAT rewrites keep a valid checksum valid: the original segment (if it
    // verified, whatever the checksum's form) and a refilled copy.
    let mut v = Values::new(data);
    let mut copies = Vec::new();
    if orig_valid {
        copies.push(seg.to_vec());
    }
    let mut f = seg.to_vec();
    TcpPacket::new_checked(&mut f[..])
        .unwrap()
        .fill_checksum(src, dst);
    copies.push(f);
    for mut copy in copies {
        let mut p = TcpPacket::new_checked(&mut copy[..]).unwrap();
        assert!(valid(&p, src, dst), "fill_checksum");
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
        assert_eq!(p.payload(), &seg[hl..]);
    }

    // Setters on a copy.
    let mut copy = seg.to_vec();
    let mut p = TcpPacket::new_checked(&mut copy[..]).unwrap();
    let (sp, dp, sq, ak) = (v.u16(), v.u16(), v.u32(), v.u32());
    let (fl, win, cs, urg) = (TcpFlags(v.u8()), v.u16(), v.u16(), v.u16());
    p.set_src_port(sp);
    p.set_dst_port(dp);
    p.set_seq_number(sq);
    p.set_ack_number(ak);
    p.set_flags(fl);
    p.set_window(win);
    p.set_checksum(cs);
    p.set_urgent(urg);
    assert_eq!(
        (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number()),
        (sp, dp, sq, ak)
    );
    assert_eq!(
        (p.flags(), p.window(), p.checksum(), p.urgent()),
        (fl, win, cs, urg)
    );
    assert_eq!(p.header_len(), hl);
    assert_eq!(p.options_mut().len(), hl - 20);
    assert_eq!(p.payload_mut().len(), seg.len() - hl);
    assert_eq!(p.as_bytes_mut().len(), seg.len());
    // Reserved bits (low nibble of byte 12) survive set_header_len.
    let reserved = seg[12] & 0x0f;
    let new_hl = 4 * v.below(16);
    p.set_header_len(new_hl);
    assert_eq!(p.header_len(), new_hl);
    assert_eq!(p.as_bytes()[12] & 0x0f, reserved);
    // Past the buffer or below 20: slices clamp, nothing panics.
    assert!(p.options().len() <= seg.len() && p.payload().len() <= seg.len());
    let _ = (
        p.options_mut().len(),
        p.payload_mut().len(),
        TcpRepr::parse(&p),
    );
    p.fill_checksum(src, dst);
    assert!(valid(&p, src, dst));
});
