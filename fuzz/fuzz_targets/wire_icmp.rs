//! `IcmpPacket` / `IcmpRepr` over arbitrary bytes (an IPv4 payload).
//! Checks: `new_checked` accepts exactly buffers of at least 8 bytes;
//! accessors match the bytes; `verify_checksum` (and `checksum::sum`)
//! agree with a reference RFC 1071 sum; parse → emit (over the original
//! data) → parse is the identity and the emitted checksum verifies;
//! `make_echo_reply` keeps a valid checksum valid; setters read back.
#![no_main]

use dlvs::wire::checksum;
use dlvs::wire::icmp::msg;
use dlvs::wire::{IcmpPacket, IcmpRepr, WireError};
use dlvs_fuzz::{ref_sum, Values};
use libfuzzer_sys::fuzz_target;

fn valid<T: AsRef<[u8]>>(p: &IcmpPacket<T>) -> bool {
    let ok = p.verify_checksum();
    assert_eq!(
        ok,
        ref_sum(&[p.as_bytes()]) == 0xffff,
        "verify_checksum vs reference"
    );
    ok
}

fuzz_target!(|data: &[u8]| {
    // The checksum primitives against the reference, on the raw input.
    assert_eq!(checksum::fold(checksum::sum(data)), ref_sum(&[data]));
    assert!(checksum::sum(data) <= 0xffff);
    assert_eq!(checksum::checksum(data), !ref_sum(&[data]));

    let pkt = match IcmpPacket::new_checked(data) {
        Ok(p) => p,
        Err(e) => {
            assert_eq!(e, WireError::Truncated);
            assert!(data.len() < IcmpPacket::<&[u8]>::HEADER_LEN);
            return;
        }
    };
    let rest = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    assert_eq!(pkt.msg_type(), data[0]);
    assert_eq!(pkt.code(), data[1]);
    assert_eq!(pkt.checksum(), u16::from_be_bytes([data[2], data[3]]));
    assert_eq!(pkt.rest_of_header(), rest);
    assert_eq!(pkt.echo_ident(), (rest >> 16) as u16);
    assert_eq!(pkt.echo_seq(), rest as u16);
    assert_eq!(pkt.next_hop_mtu(), rest as u16);
    assert_eq!(pkt.data(), &data[8..]);
    assert_eq!(pkt.as_bytes(), data);
    let orig_valid = valid(&pkt);

    // parse → emit over a copy of the whole message (emit checksums the
    // buffer it is given, data included) → parse.
    let repr = IcmpRepr::parse(&pkt).expect("parse of a checked packet");
    assert_eq!(repr.buffer_len(), IcmpRepr::HEADER_LEN);
    let mut buf = data.to_vec();
    repr.emit(&mut buf).expect("emit over the message");
    let emitted = IcmpPacket::new_checked(&buf[..]).unwrap();
    assert_eq!(IcmpRepr::parse(&emitted), Ok(repr));
    assert!(valid(&emitted), "emitted checksum");
    assert_eq!(emitted.data(), pkt.data());
    // Only the checksum field changed.
    assert_eq!((&buf[..2], &buf[4..]), (&data[..2], &data[4..]));
    if orig_valid && buf[2..4] != data[2..4] {
        // Both forms of zero verify only when the rest sums to -0.
        let (a, b) = (pkt.checksum(), emitted.checksum());
        assert!(
            a ^ b == 0xffff,
            "valid checksum {a:#06x} re-emitted as {b:#06x}"
        );
    }
    let short = data.len() % 8;
    assert_eq!(repr.emit(&mut vec![0u8; short]), Err(WireError::Truncated));

    let mut v = Values::new(data);
    let (id, seq, mtu) = (v.u16(), v.u16(), v.u16());
    for (r, t, c) in [
        (IcmpRepr::echo_request(id, seq), msg::ECHO_REQUEST, 0),
        (IcmpRepr::echo_reply(id, seq), msg::ECHO_REPLY, 0),
        (IcmpRepr::frag_needed(mtu), msg::DST_UNREACHABLE, 4),
    ] {
        assert_eq!((r.msg_type, r.code), (t, c));
        let mut b = data.to_vec();
        r.emit(&mut b).unwrap();
        let p = IcmpPacket::new_checked(&b[..]).unwrap();
        assert!(valid(&p));
        assert_eq!(IcmpRepr::parse(&p), Ok(r));
        if t == msg::DST_UNREACHABLE {
            assert_eq!(p.next_hop_mtu(), mtu);
        } else {
            assert_eq!((p.echo_ident(), p.echo_seq()), (id, seq));
        }
    }

    // make_echo_reply keeps a valid checksum valid: on the original message
    // (if it verified) and on a freshly filled one.
    let mut copies = Vec::new();
    if orig_valid {
        copies.push(data.to_vec());
    }
    let mut filled = data.to_vec();
    IcmpPacket::new_checked(&mut filled[..])
        .unwrap()
        .fill_checksum();
    copies.push(filled);
    for mut copy in copies {
        let mut p = IcmpPacket::new_checked(&mut copy[..]).unwrap();
        assert!(valid(&p), "fill_checksum");
        p.make_echo_reply();
        assert_eq!((p.msg_type(), p.code()), (msg::ECHO_REPLY, 0));
        assert_eq!(p.rest_of_header(), rest);
        assert!(valid(&p), "make_echo_reply");
        assert_eq!(p.data(), &data[8..]);
    }

    // Setters on a copy.
    let mut copy = data.to_vec();
    let mut p = IcmpPacket::new_checked(&mut copy[..]).unwrap();
    let (t, c, cs, r) = (v.u8(), v.u8(), v.u16(), v.u32());
    p.set_msg_type(t);
    p.set_code(c);
    p.set_checksum(cs);
    p.set_rest_of_header(r);
    assert_eq!(
        (p.msg_type(), p.code(), p.checksum(), p.rest_of_header()),
        (t, c, cs, r)
    );
    let (id, seq) = (v.u16(), v.u16());
    p.set_echo_ident(id);
    assert_eq!((p.echo_ident(), p.echo_seq()), (id, r as u16));
    p.set_echo_seq(seq);
    assert_eq!((p.echo_ident(), p.echo_seq()), (id, seq));
    assert_eq!(p.rest_of_header(), (u32::from(id) << 16) | u32::from(seq));
    assert_eq!(p.data_mut().len(), data.len() - 8);
    p.fill_checksum();
    assert!(valid(&p));
    assert_eq!(&p.into_inner()[8..], &data[8..]);
});
