//! `ArpPacket` / `ArpRepr` over arbitrary bytes (an Ethernet payload).
//! Checks: `new_checked` accepts exactly Ethernet/IPv4 ARP of at least 28
//! bytes; accessors match the bytes; parse → emit → parse is the identity and
//! emit reproduces the first 28 bytes; `reply_to` swaps the ends; setters
//! read back and touch nothing else.
#![no_main]

use dlvs::wire::{ArpOp, ArpPacket, ArpRepr, WireError};
use dlvs_fuzz::{ip_from, Values};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pkt = match ArpPacket::new_checked(data) {
        Ok(p) => p,
        Err(WireError::Truncated) => {
            assert!(data.len() < ArpPacket::<&[u8]>::LEN);
            return;
        }
        Err(WireError::Unsupported) => {
            assert!(data.len() >= 28);
            assert_ne!(&data[..6], &[0, 1, 8, 0, 6, 4]);
            return;
        }
        Err(e) => panic!("unexpected ARP error {e:?}"),
    };
    assert!(data.len() >= 28);
    assert_eq!(&data[..6], &[0, 1, 8, 0, 6, 4]);
    assert_eq!(pkt.hardware_type(), 1);
    assert_eq!(pkt.protocol_type(), 0x0800);
    let op = pkt.operation();
    let raw_op = u16::from_be_bytes([data[6], data[7]]);
    assert_eq!(u16::from(op), raw_op);
    assert_eq!(ArpOp::from(raw_op), op);
    match op {
        ArpOp::Request => assert_eq!(raw_op, 1),
        ArpOp::Reply => assert_eq!(raw_op, 2),
        ArpOp::Unknown(n) => assert!(n != 1 && n != 2),
    }
    assert_eq!(&pkt.sender_mac().0, &data[8..14]);
    assert_eq!(pkt.sender_ip(), ip_from(&data[14..18]));
    assert_eq!(&pkt.target_mac().0, &data[18..24]);
    assert_eq!(pkt.target_ip(), ip_from(&data[24..28]));

    // parse → emit → parse.
    let repr = ArpRepr::parse(&pkt).expect("parse of a checked packet");
    assert_eq!(repr.buffer_len(), ArpRepr::LEN);
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut buf).expect("emit into buffer_len bytes");
    assert_eq!(&buf[..], &data[..28]);
    let again = ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap();
    assert_eq!(again, repr);
    let short = data.len() % 28;
    assert_eq!(repr.emit(&mut vec![0u8; short]), Err(WireError::Truncated));

    let mut v = Values::new(data);
    let ours = v.mac();
    let reply = repr.reply_to(ours);
    assert_eq!(reply.op, ArpOp::Reply);
    assert_eq!((reply.sender_mac, reply.sender_ip), (ours, repr.target_ip));
    assert_eq!(
        (reply.target_mac, reply.target_ip),
        (repr.sender_mac, repr.sender_ip)
    );
    let mut rbuf = vec![0u8; 28 + v.below(4)];
    reply.emit(&mut rbuf).unwrap();
    assert_eq!(
        ArpRepr::parse(&ArpPacket::new_checked(&rbuf[..]).unwrap()),
        Ok(reply)
    );

    // Setters on a copy.
    let mut copy = data.to_vec();
    let mut p = ArpPacket::new_checked(&mut copy[..]).unwrap();
    let op = ArpOp::from(v.u16());
    let (sm, si, tm, ti) = (v.mac(), v.ip(), v.mac(), v.ip());
    p.set_operation(op);
    p.set_sender_mac(sm);
    p.set_sender_ip(si);
    p.set_target_mac(tm);
    p.set_target_ip(ti);
    assert_eq!(p.operation(), op);
    assert_eq!((p.sender_mac(), p.sender_ip()), (sm, si));
    assert_eq!((p.target_mac(), p.target_ip()), (tm, ti));
    assert_eq!((p.hardware_type(), p.protocol_type()), (1, 0x0800));
    let copy = p.into_inner();
    assert_eq!(&copy[..6], &data[..6]);
    assert_eq!(&copy[28..], &data[28..]);
});
