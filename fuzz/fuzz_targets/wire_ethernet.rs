//! `EthernetFrame` / `EthernetRepr` / `MacAddr` over arbitrary bytes (a whole
//! frame). Checks: `new_checked` accepts exactly the buffers of at least 14
//! bytes; every accessor is total; parse → emit → parse is the identity and
//! emit reproduces the 14 header bytes; emit into a short buffer reports
//! `Truncated`; setters read back; MAC text round-trips.
#![no_main]

use dlvs::wire::{EtherType, EthernetFrame, EthernetRepr, MacAddr, WireError};
use dlvs_fuzz::Values;
use libfuzzer_sys::fuzz_target;

fn check_mac(mac: MacAddr) {
    let _ = (mac.is_local(), mac.octets(), <[u8; 6]>::from(mac));
    assert_eq!(mac.is_unicast(), !mac.is_multicast());
    if mac.is_broadcast() {
        assert!(mac.is_multicast());
    }
    let text = mac.to_string();
    assert_eq!(text.len(), 17);
    assert_eq!(format!("{mac:?}"), text);
    assert_eq!(text.parse::<MacAddr>(), Ok(mac));
    assert_eq!(text.to_uppercase().parse::<MacAddr>(), Ok(mac));
    assert_eq!(MacAddr::from_bytes(&mac.0), Some(mac));
}

fuzz_target!(|data: &[u8]| {
    // MAC parsing from arbitrary text never panics and round-trips.
    if let Ok(s) = std::str::from_utf8(&data[..data.len().min(32)]) {
        if let Ok(mac) = s.parse::<MacAddr>() {
            assert_eq!(mac.to_string(), s.to_ascii_lowercase());
        }
    }
    assert_eq!(
        MacAddr::from_bytes(&data[..data.len().min(6)]).is_some(),
        data.len() >= 6
    );

    let frame = match EthernetFrame::new_checked(data) {
        Ok(f) => f,
        Err(e) => {
            assert_eq!(e, WireError::Truncated);
            assert!(data.len() < EthernetFrame::<&[u8]>::HEADER_LEN);
            return;
        }
    };
    assert!(data.len() >= 14);
    let (dst, src, ethertype) = (frame.dst(), frame.src(), frame.ethertype());
    assert_eq!(&dst.0, &data[0..6]);
    assert_eq!(&src.0, &data[6..12]);
    assert_eq!(
        u16::from(ethertype),
        u16::from_be_bytes([data[12], data[13]])
    );
    assert_eq!(EtherType::from(ethertype.0), ethertype);
    assert_eq!(frame.payload(), &data[14..]);
    assert_eq!(frame.as_bytes(), data);
    check_mac(dst);
    check_mac(src);

    // parse → emit → parse.
    let repr = EthernetRepr::parse(&frame).expect("parse of a checked frame");
    assert_eq!(repr.buffer_len(), EthernetRepr::HEADER_LEN);
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut buf).expect("emit into buffer_len bytes");
    assert_eq!(&buf[..], &data[..14]);
    let again = EthernetRepr::parse(&EthernetFrame::new_checked(&buf[..]).unwrap()).unwrap();
    assert_eq!(again, repr);
    let short = data.len() % repr.buffer_len();
    assert_eq!(repr.emit(&mut vec![0u8; short]), Err(WireError::Truncated));

    // Setters on a copy.
    let mut v = Values::new(data);
    let mut copy = data.to_vec();
    let mut f = EthernetFrame::new_checked(&mut copy[..]).unwrap();
    let (d, s, t) = (v.mac(), v.mac(), EtherType(v.u16()));
    f.set_dst(d);
    f.set_src(s);
    f.set_ethertype(t);
    assert_eq!((f.dst(), f.src(), f.ethertype()), (d, s, t));
    assert_eq!(f.payload(), &data[14..]);
    if let Some(b) = f.payload_mut().first_mut() {
        *b ^= 0xff;
    }
    assert_eq!(f.as_bytes_mut().len(), data.len());
    let inner = f.into_inner();
    if data.len() > 14 {
        assert_eq!(inner[14], !data[14]);
    }
});
