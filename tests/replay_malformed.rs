//! Malformed and unwanted frames through the real binary: each is dropped
//! and counted under its reason, the replay exits 0, and a valid echo
//! request after them is still answered.

mod common;

use common::*;

/// A valid IPv4 echo request to the VIP as bytes from the IP header on.
fn echo_ip() -> Vec<u8> {
    ipv4(CLIENT_IP, VIP, 1, &icmp_echo(0x4242, 1, &[7; 32]))
}

fn ip_frame(ip: &[u8]) -> Vec<u8> {
    eth(CLIENT_MAC, DIR_MAC, 0x0800, ip)
}

/// The Internet checksum (RFC 1071) of `data`, written independently of
/// dlvs's own so that a shared mistake cannot hide.
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Recomputes the IPv4 header checksum after a deliberate edit.
fn fix_ip_checksum(ip: &mut [u8]) {
    let hl = ((ip[0] & 0x0f) as usize * 4).min(ip.len());
    ip[10] = 0;
    ip[11] = 0;
    let c = inet_checksum(&ip[..hl]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

fn edited(f: impl FnOnce(&mut Vec<u8>), fix: bool) -> Vec<u8> {
    let mut ip = echo_ip();
    f(&mut ip);
    if fix {
        fix_ip_checksum(&mut ip);
    }
    ip_frame(&ip)
}

#[test]
fn malformed_frames_are_counted_and_dropped() {
    let good_arp = arp_request(CLIENT_MAC, CLIENT_IP, VIP);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("eth_truncated", vec![0xff; 10]),
        ("eth_truncated", vec![]),
        (
            "eth_unsupported",
            eth(CLIENT_MAC, DIR_MAC, 0x86dd, &[0x60; 40]),
        ),
        (
            "eth_unsupported",
            eth(CLIENT_MAC, DIR_MAC, 0x8100, &[0; 46]),
        ),
        (
            "eth_unsupported",
            eth(CLIENT_MAC, DIR_MAC, 0x1234, &[0; 46]),
        ),
        (
            "eth_not_for_us",
            echo_frame(CLIENT_IP, VIP, 1, 1)
                .iter()
                .enumerate()
                .map(|(i, b)| if i == 5 { 0x55 } else { *b })
                .collect(),
        ),
        ("arp_truncated", good_arp[..14 + 20].to_vec()),
        ("arp_unsupported", {
            let mut f = good_arp.clone();
            f[14 + 1] = 0x06; // hardware type 6 (IEEE 802)
            f
        }),
        ("arp_other_op", {
            let mut f = good_arp.clone();
            f[14 + 7] = 9;
            f
        }),
        ("arp_conflict", arp_request(CLIENT_MAC, VIP, VIP)),
        (
            "arp_bad_sender",
            arp_request(CLIENT_MAC, std::net::Ipv4Addr::BROADCAST, VIP),
        ),
        ("arp_bad_sender", arp_request(DIR_MAC, VIP, VIP)),
        ("ipv4_truncated", ip_frame(&echo_ip()[..12])),
        ("ipv4_bad_version", edited(|ip| ip[0] = 0x65, true)),
        ("ipv4_bad_header_len", edited(|ip| ip[0] = 0x43, false)),
        // IHL 15 claims a 60-byte header in a 40-byte packet.
        (
            "ipv4_truncated",
            edited(
                |ip| {
                    ip[0] = 0x4f;
                    ip.truncate(40)
                },
                false,
            ),
        ),
        (
            "ipv4_bad_total_len",
            edited(|ip| ip[2..4].copy_from_slice(&9000u16.to_be_bytes()), true),
        ),
        (
            "ipv4_bad_total_len",
            edited(|ip| ip[2..4].copy_from_slice(&10u16.to_be_bytes()), true),
        ),
        ("ipv4_bad_checksum", edited(|ip| ip[8] = 3, false)),
        ("ipv4_fragment", edited(|ip| ip[6] = 0x20, true)),
        ("ipv4_fragment", edited(|ip| ip[7] = 0x10, true)),
        (
            "ipv4_martian_source",
            edited(|ip| ip[12..16].copy_from_slice(&[127, 0, 0, 1]), true),
        ),
        (
            "ipv4_martian_source",
            edited(|ip| ip[12..16].copy_from_slice(&[10, 0, 0, 100]), true),
        ),
        (
            "ipv4_not_local",
            edited(|ip| ip[16..20].copy_from_slice(&[10, 0, 0, 77]), true),
        ),
        (
            "ipv4_broadcast",
            edited(|ip| ip[16..20].copy_from_slice(&[10, 0, 0, 255]), true),
        ),
        ("icmp_bad_checksum", edited(|ip| ip[20 + 8] ^= 0xff, false)),
        (
            "icmp_truncated",
            ip_frame(&ipv4(CLIENT_IP, VIP, 1, &[8, 0, 0])),
        ),
        (
            "icmp_unhandled",
            ip_frame(&ipv4(CLIENT_IP, VIP, 1, &{
                // An echo reply (type 0) to the director: not answered.
                let mut m = icmp_echo(1, 1, &[1, 2, 3, 4]);
                m[0] = 0;
                m[2] = 0;
                m[3] = 0;
                let c = inet_checksum(&m);
                m[2..4].copy_from_slice(&c.to_be_bytes());
                m
            })),
        ),
        (
            "host_unhandled",
            ip_frame(&ipv4(CLIENT_IP, VIP, 6, &[0; 20])),
        ),
        (
            "host_unhandled",
            ip_frame(&ipv4(CLIENT_IP, VIP, 17, &[0; 8])),
        ),
        (
            "oversize",
            eth(
                CLIENT_MAC,
                DIR_MAC,
                0x0800,
                &ipv4(CLIENT_IP, VIP, 1, &icmp_echo(1, 1, &[0; 1600])),
            ),
        ),
    ];
    let mut frames: Vec<Vec<u8>> = cases.iter().map(|(_, f)| f.clone()).collect();
    // A valid exchange after all of it still works.
    frames.push(good_arp);
    frames.push(echo_frame(CLIENT_IP, VIP, 0x4242, 77));
    let r = replay(&config(""), &frames);

    let mut want = std::collections::BTreeMap::<&str, u64>::new();
    for (reason, _) in &cases {
        *want.entry(reason).or_default() += 1;
    }
    for (reason, n) in &want {
        assert_eq!(r.dropped(reason), *n, "{reason}: {}", r.summary);
    }
    assert_eq!(
        r.dropped_total(),
        cases.len() as u64,
        "unexpected drops: {}",
        r.summary
    );
    assert_eq!(r.num("received"), frames.len() as u64);
    let tail = r.after_announcements();
    assert_eq!(tail.len(), 2, "{tail:?}");
    assert!(
        matches!(tail[1], Out::EchoReply { seq: 77, .. }),
        "{tail:?}"
    );
    r.assert_accounted();
}
