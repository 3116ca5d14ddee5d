//! `Ipv4Packet` / `Ipv4Repr` over arbitrary bytes (an IPv4 packet, no
//! Ethernet header). Checks: `new_checked` returns exactly the error its
//! contract lists, in order; accessors and slices match the bytes;
//! `verify_checksum` agrees with a reference RFC 1071 sum; parse → emit →
//! parse is the identity and the emitted header verifies; `fill_checksum`
//! and the incremental rewrites (addresses, TTL) keep the header valid;
//! setters read back; rewriting the total length never makes a slice
//! accessor panic.
#![no_main]

use dlvs::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, WireError};
use dlvs_fuzz::{ip_from, ref_sum, Values};
use libfuzzer_sys::fuzz_target;

/// The contract's checks, in the contract's order.
fn expected(b: &[u8]) -> Result<(), WireError> {
    if b.len() < 20 {
        return Err(WireError::Truncated);
    }
    if b[0] >> 4 != 4 {
        return Err(WireError::BadVersion);
    }
    let hl = usize::from(b[0] & 0xf) * 4;
    if hl < 20 {
        return Err(WireError::BadHeaderLen);
    }
    if hl > b.len() {
        return Err(WireError::Truncated);
    }
    let total = usize::from(u16::from_be_bytes([b[2], b[3]]));
    if total < hl || total > b.len() {
        return Err(WireError::BadTotalLen);
    }
    Ok(())
}

/// `new_quoted`'s contract: as `new_checked`, but the buffer may end
/// before the total length once it holds the header and min(8, total -
/// header) payload bytes (RFC 792's quote).
fn expected_quoted(b: &[u8]) -> Result<(), WireError> {
    if b.len() < 20 {
        return Err(WireError::Truncated);
    }
    if b[0] >> 4 != 4 {
        return Err(WireError::BadVersion);
    }
    let hl = usize::from(b[0] & 0xf) * 4;
    if hl < 20 {
        return Err(WireError::BadHeaderLen);
    }
    let total = usize::from(u16::from_be_bytes([b[2], b[3]]));
    if total < hl {
        return Err(WireError::BadTotalLen);
    }
    if b.len() < hl + (total - hl).min(8) {
        return Err(WireError::Truncated);
    }
    Ok(())
}

/// The header checksum verifies; also checked against the reference sum.
fn valid<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> bool {
    let ok = p.verify_checksum();
    assert_eq!(
        ok,
        ref_sum(&[p.header()]) == 0xffff,
        "verify_checksum vs reference"
    );
    ok
}

/// The slice accessors stay inside the buffer whatever the length fields say.
fn slices_in_bounds<T: AsRef<[u8]>>(p: &Ipv4Packet<T>, len: usize) {
    assert!(p.header().len() <= len && p.packet().len() <= len);
    assert!(p.options().len() <= len && p.payload().len() <= len);
    let _ = (p.verify_checksum(), Ipv4Repr::parse(p));
}

fuzz_target!(|data: &[u8]| {
    let quoted = Ipv4Packet::new_quoted(data).map(|_| ());
    assert_eq!(quoted, expected_quoted(data), "new_quoted vs contract");
    if let Ok(q) = Ipv4Packet::new_quoted(data) {
        // A quote's slices stay inside what was quoted.
        slices_in_bounds(&q, data.len());
        assert!(q.payload().len() >= (usize::from(q.total_len()) - q.header_len()).min(8));
    }
    let res = Ipv4Packet::new_checked(data).map(|_| ());
    assert_eq!(res, expected(data), "new_checked vs contract");
    let Ok(pkt) = Ipv4Packet::new_checked(data) else {
        return;
    };

    // Accessors against the bytes.
    let hl = usize::from(data[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let flg = u16::from_be_bytes([data[6], data[7]]);
    assert_eq!(pkt.version(), 4);
    assert_eq!(pkt.header_len(), hl);
    assert_eq!(pkt.dscp_ecn(), data[1]);
    assert_eq!(usize::from(pkt.total_len()), total);
    assert_eq!(pkt.ident(), u16::from_be_bytes([data[4], data[5]]));
    assert_eq!(pkt.dont_frag(), flg & 0x4000 != 0);
    assert_eq!(pkt.more_frags(), flg & 0x2000 != 0);
    assert_eq!(pkt.frag_offset(), (flg & 0x1fff) << 3);
    assert_eq!(
        pkt.is_fragment(),
        pkt.more_frags() || pkt.frag_offset() != 0
    );
    assert_eq!(pkt.ttl(), data[8]);
    assert_eq!(pkt.protocol(), IpProtocol::from(data[9]));
    assert_eq!(u8::from(pkt.protocol()), data[9]);
    assert_eq!(pkt.checksum(), u16::from_be_bytes([data[10], data[11]]));
    assert_eq!(pkt.src_addr(), ip_from(&data[12..16]));
    assert_eq!(pkt.dst_addr(), ip_from(&data[16..20]));
    assert_eq!(pkt.header(), &data[..hl]);
    assert_eq!(pkt.options(), &data[20..hl]);
    assert_eq!(pkt.payload(), &data[hl..total]);
    assert_eq!(pkt.packet(), &data[..total]);
    assert_eq!(pkt.as_bytes(), data);
    let orig_valid = valid(&pkt);

    // parse → emit → parse, with the original payload behind the header.
    let repr = Ipv4Repr::parse(&pkt).expect("parse of a checked packet");
    assert_eq!(usize::from(repr.payload_len), total - hl);
    assert_eq!(repr.buffer_len(), Ipv4Repr::HEADER_LEN);
    assert_eq!(repr.total_len(), 20 + total - hl);
    let mut buf = vec![0u8; repr.total_len()];
    repr.emit(&mut buf).expect("emit into total_len bytes");
    buf[20..].copy_from_slice(pkt.payload());
    let emitted = Ipv4Packet::new_checked(&buf[..]).expect("emitted header is accepted");
    assert_eq!(Ipv4Repr::parse(&emitted), Ok(repr));
    assert!(valid(&emitted), "emitted header checksum");
    assert_eq!(emitted.header_len(), 20);
    assert_eq!(emitted.payload(), pkt.payload());
    assert!(!emitted.more_frags() && emitted.frag_offset() == 0);
    let short = data.len() % 20;
    assert_eq!(repr.emit(&mut vec![0u8; short]), Err(WireError::Truncated));
    let mut v = Values::new(data);
    let huge = Ipv4Repr {
        payload_len: u16::MAX - 19 + (v.below(20) as u16),
        ..repr
    };
    assert_eq!(huge.emit(&mut [0u8; 20]), Err(WireError::BadTotalLen));

    // Incremental rewrites keep a valid header valid: the original one (if
    // it verified, whatever its checksum's representation) and a refilled one.
    let mut copies = vec![data.to_vec()];
    if !orig_valid {
        copies.clear();
    }
    copies.push(data.to_vec());
    let refill = copies.len() - 1;
    for (i, mut copy) in copies.into_iter().enumerate() {
        let mut p = Ipv4Packet::new_checked(&mut copy[..]).unwrap();
        if i == refill {
            p.fill_checksum();
            assert!(valid(&p), "fill_checksum");
        }
        let (s, d) = (v.ip(), v.ip());
        p.rewrite_src_addr(s);
        assert_eq!(p.src_addr(), s);
        assert!(valid(&p), "rewrite_src_addr");
        p.rewrite_dst_addr(d);
        assert_eq!(p.dst_addr(), d);
        assert!(valid(&p), "rewrite_dst_addr");
        let ttl = p.ttl();
        let left = p.decrement_ttl();
        assert_eq!(left, ttl.saturating_sub(1));
        assert_eq!(p.ttl(), left);
        assert_eq!(p.protocol(), pkt.protocol());
        assert!(valid(&p), "decrement_ttl");
        assert_eq!(p.payload(), pkt.payload());
    }

    // Setters on a copy: each reads back and leaves its neighbours alone.
    let mut copy = data.to_vec();
    let mut p = Ipv4Packet::new_checked(&mut copy[..]).unwrap();
    let (dscp, ident, ttl, proto) = (v.u8(), v.u16(), v.u8(), IpProtocol(v.u8()));
    let (df, mf, off, csum) = (v.bool(), v.bool(), v.u16(), v.u16());
    let (s, d) = (v.ip(), v.ip());
    p.set_dscp_ecn(dscp);
    p.set_ident(ident);
    p.set_ttl(ttl);
    p.set_protocol(proto);
    p.set_frag_offset(off);
    p.set_dont_frag(df);
    p.set_more_frags(mf);
    p.set_checksum(csum);
    p.set_src_addr(s);
    p.set_dst_addr(d);
    assert_eq!(
        (p.dscp_ecn(), p.ident(), p.ttl(), p.protocol()),
        (dscp, ident, ttl, proto)
    );
    assert_eq!((p.dont_frag(), p.more_frags()), (df, mf));
    assert_eq!(p.frag_offset(), off & !7);
    assert_eq!(p.is_fragment(), mf || off & !7 != 0);
    assert_eq!((p.checksum(), p.src_addr(), p.dst_addr()), (csum, s, d));
    assert_eq!((p.version(), p.header_len()), (4, hl));
    assert_eq!(usize::from(p.total_len()), total);
    p.set_dont_frag(!df);
    assert_eq!(
        (p.dont_frag(), p.more_frags(), p.frag_offset()),
        (!df, mf, off & !7)
    );
    assert_eq!(p.options_mut().len(), hl - 20);
    assert_eq!(p.payload_mut().len(), total - hl);
    assert_eq!(p.as_bytes_mut().len(), data.len());

    // A total length rewritten after new_checked shortens slices, never panics.
    let tl = v.u16();
    p.set_total_len(tl);
    assert_eq!(p.total_len(), tl);
    slices_in_bounds(&p, data.len());
    let _ = (p.payload_mut().len(), p.options_mut().len());
    p.fill_checksum();
    assert!(valid(&p));
    let copy = p.into_inner();
    assert_eq!(&copy[hl..], &data[hl..]);
});
