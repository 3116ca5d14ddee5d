//! Replay golden tests of the director's host duties, through the real
//! binary: `dlvs replay` on captures built with smoltcp, output decoded and
//! checksum-verified with smoltcp.

mod common;

use common::*;

fn announcement(ip: std::net::Ipv4Addr) -> Out {
    Out::Arp {
        eth_dst: [0xff; 6],
        eth_src: DIR_MAC,
        op: 1,
        sha: DIR_MAC,
        spa: ip,
        tha: [0; 6],
        tpa: ip,
    }
}

fn arp_reply_from_director(ip: std::net::Ipv4Addr) -> Out {
    Out::Arp {
        eth_dst: CLIENT_MAC,
        eth_src: DIR_MAC,
        op: 2,
        sha: DIR_MAC,
        spa: ip,
        tha: CLIENT_MAC,
        tpa: CLIENT_IP,
    }
}

fn echo_reply(src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr, eth_dst: [u8; 6], seq: u16) -> Out {
    Out::EchoReply {
        eth_dst,
        eth_src: DIR_MAC,
        src,
        dst,
        ttl: 64,
        ident: 0x4242,
        seq,
        data: (0..56u8).collect(),
    }
}

#[test]
fn announces_every_address_at_start() {
    let r = replay(&config(""), &[]);
    assert_eq!(r.output, vec![announcement(DIR_IP), announcement(VIP)]);
    assert_eq!(r.num("received"), 0);
    assert_eq!(r.num("generated"), 2);
    r.assert_accounted();
}

#[test]
fn arp_request_for_vip_and_own_address_gets_reply() {
    let r = replay(
        &config(""),
        &[
            arp_request(CLIENT_MAC, CLIENT_IP, VIP),
            arp_request(CLIENT_MAC, CLIENT_IP, DIR_IP),
            // Not ours: no answer (the classic LVS ARP problem in reverse).
            arp_request(CLIENT_MAC, CLIENT_IP, std::net::Ipv4Addr::new(10, 0, 0, 99)),
        ],
    );
    assert_eq!(
        r.after_announcements(),
        vec![
            arp_reply_from_director(VIP),
            arp_reply_from_director(DIR_IP)
        ]
    );
    // A reply keeps the request's length (padded to the 60-byte minimum).
    assert!(r.raw.iter().all(|f| f.len() == 60));
    assert_eq!(r.num("replied"), 2);
    assert_eq!(r.dropped("arp_learned"), 1, "{}", r.summary);
    r.assert_accounted();
}

#[test]
fn echo_to_vip_after_arp_gets_valid_reply() {
    let r = replay(
        &config(""),
        &[
            arp_request(CLIENT_MAC, CLIENT_IP, VIP),
            echo_frame(CLIENT_IP, VIP, 0x4242, 1),
            echo_frame(CLIENT_IP, DIR_IP, 0x4242, 2),
        ],
    );
    assert_eq!(
        r.after_announcements(),
        vec![
            arp_reply_from_director(VIP),
            echo_reply(VIP, CLIENT_IP, CLIENT_MAC, 1),
            echo_reply(DIR_IP, CLIENT_IP, CLIENT_MAC, 2),
        ]
    );
    assert_eq!(r.num("replied"), 3);
    r.assert_accounted();
}

#[test]
fn unknown_neighbour_is_resolved_then_reply_released() {
    let r = replay(
        &config(""),
        &[
            echo_frame(CLIENT_IP, VIP, 0x4242, 1),
            echo_frame(CLIENT_IP, VIP, 0x4242, 2),
            arp_reply(CLIENT_MAC, CLIENT_IP, DIR_IP),
        ],
    );
    let who_has = Out::Arp {
        eth_dst: [0xff; 6],
        eth_src: DIR_MAC,
        op: 1,
        sha: DIR_MAC,
        spa: DIR_IP,
        tha: [0; 6],
        tpa: CLIENT_IP,
    };
    // One request for both held replies; they leave in order once the
    // reply arrives.
    assert_eq!(
        r.after_announcements(),
        vec![
            who_has,
            echo_reply(VIP, CLIENT_IP, CLIENT_MAC, 1),
            echo_reply(VIP, CLIENT_IP, CLIENT_MAC, 2),
        ]
    );
    assert_eq!(r.dropped("arp_learned"), 1);
    r.assert_accounted();
}

#[test]
fn unanswered_arp_is_retried_then_held_frames_dropped() {
    let t0 = 1_700_000_000_000_000u64;
    let s = 1_000_000u64;
    // The echo at t0 waits on ARP; later unrelated frames move the clock
    // (capture time drives it): requests at t0, t0+1 s, t0+2 s, failure at t0+3 s.
    let tick = |t: u64| {
        (
            t,
            eth(CLIENT_MAC, [0x02, 0, 0, 0, 0, 0x77], 0x0800, &[0; 46]),
        )
    };
    let r = replay_timed(
        &config(""),
        &[
            (t0, echo_frame(CLIENT_IP, VIP, 0x4242, 1)),
            tick(t0 + s / 2),
            tick(t0 + s + 1000),
            tick(t0 + 2 * s + 1000),
            tick(t0 + 3 * s + 1000),
            tick(t0 + 4 * s + 1000),
        ],
    );
    let requests = r
        .after_announcements()
        .iter()
        .filter(|o| matches!(o, Out::Arp { op: 1, tpa, .. } if *tpa == CLIENT_IP))
        .count();
    assert_eq!(requests, 3, "{:?}", r.output);
    assert!(!r.output.iter().any(|o| matches!(o, Out::EchoReply { .. })));
    assert_eq!(r.dropped("neighbor_unresolved"), 1, "{}", r.summary);
    assert_eq!(r.dropped("eth_not_for_us"), 5);
    r.assert_accounted();
}

#[test]
fn static_neighbour_and_default_route() {
    let cfg = config(
        r#"
[[neighbor]]
interface = "lan0"
ip = "10.0.0.1"
mac = "02:00:00:00:00:0e"
"#,
    );
    // A client beyond the gateway: the reply goes to the gateway's MAC.
    let r = replay(&cfg, &[echo_frame(REMOTE_IP, VIP, 0x4242, 9)]);
    assert_eq!(
        r.after_announcements(),
        vec![echo_reply(VIP, REMOTE_IP, GW_MAC, 9)]
    );
    // A static entry is not replaced by ARP.
    let r = replay(
        &cfg,
        &[
            arp_reply([0x02, 0, 0, 0, 0, 0x66], GW_IP, DIR_IP),
            echo_frame(REMOTE_IP, VIP, 0x4242, 10),
        ],
    );
    assert_eq!(
        r.after_announcements(),
        vec![echo_reply(VIP, REMOTE_IP, GW_MAC, 10)]
    );
    r.assert_accounted();
}

#[test]
fn no_route_is_counted() {
    let text = config("").replace(
        "[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"10.0.0.1\"\n",
        "",
    );
    let r = replay(&text, &[echo_frame(REMOTE_IP, VIP, 1, 1)]);
    assert_eq!(r.dropped("no_route"), 1, "{}", r.summary);
    r.assert_accounted();
}

/// LVS-DR's classic fault: a real server whose arp_ignore/arp_announce are
/// not set announces the VIP. The director does not learn from it, counts
/// the conflict and names the offending MAC in its log.
#[test]
fn another_host_claiming_the_vip_is_reported() {
    let rs_mac = [0x02, 0, 0, 0, 0, 0x11];
    let r = replay(
        &config(""),
        &[
            // Its gratuitous ARP for the VIP, then a request that uses the
            // VIP as its source address.
            arp_request(rs_mac, VIP, VIP),
            arp_request(rs_mac, VIP, CLIENT_IP),
            // The director's service goes on.
            arp_request(CLIENT_MAC, CLIENT_IP, VIP),
        ],
    );
    assert_eq!(r.dropped("arp_conflict"), 2, "{}", r.summary);
    assert_eq!(r.after_announcements(), vec![arp_reply_from_director(VIP)]);
    assert!(
        r.stderr
            .contains("02:00:00:00:00:11 claims the director's address 10.0.0.100"),
        "{}",
        r.stderr
    );
    r.assert_accounted();
}

/// A neighbour-table flood (issue: one LAN host locked the director out of
/// new next hops): 3,000 ARP requests for the VIP from random MACs with
/// senders outside every connected subnet are answered but never learned,
/// and 100 on-subnet senders overflow a 16-entry table by evicting one
/// another; afterwards a client the director has not seen still resolves
/// and gets its echo reply.
#[test]
fn a_flooded_neighbour_table_still_resolves_a_new_neighbour() {
    let mut seed = 0x5eed_u64;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as u8
    };
    let mut frames = Vec::new();
    for _ in 0..3000 {
        let mac = [0x02, rnd(), rnd(), rnd(), rnd(), rnd()];
        let (x, y) = (1 + rnd() % 254, rnd());
        let sender = std::net::Ipv4Addr::new(10, x, y, 9);
        frames.push(arp_request(mac, sender, VIP));
    }
    for n in 0..100u8 {
        let mac = [0x02, 0, 0, 0, 1, n];
        frames.push(arp_request(
            mac,
            std::net::Ipv4Addr::new(10, 0, 0, 150 + n),
            VIP,
        ));
    }
    // The client 10.0.0.50, new to the director: its echo request waits
    // for ARP, its ARP reply releases the answer.
    frames.push(echo_frame(CLIENT_IP, VIP, 0x4242, 1));
    frames.push(arp_reply(CLIENT_MAC, CLIENT_IP, DIR_IP));
    let r = replay(&config("table_size = 16\nqueue = 16"), &frames);
    r.assert_accounted();
    assert_eq!(r.dropped("neighbor_table_full"), 0, "{}", r.summary);
    assert_eq!(r.num("arp_off_subnet"), 3000, "{}", r.summary);
    assert!(r.num("neighbors_evicted") >= 84, "{}", r.summary);
    let out = r.after_announcements();
    let arp_replies = out
        .iter()
        .filter(|o| matches!(o, Out::Arp { op: 2, .. }))
        .count();
    assert_eq!(arp_replies, 3100, "every request for the VIP is answered");
    assert!(
        out.contains(&Out::Arp {
            eth_dst: [0xff; 6],
            eth_src: DIR_MAC,
            op: 1,
            sha: DIR_MAC,
            spa: DIR_IP,
            tha: [0; 6],
            tpa: CLIENT_IP,
        }),
        "the director asks for the new client"
    );
    assert_eq!(
        out.last(),
        Some(&echo_reply(VIP, CLIENT_IP, CLIENT_MAC, 1)),
        "{}",
        r.summary
    );
}

/// The drop-count helper refuses names that are not drop reasons.
#[test]
#[should_panic(expected = "\"arp_lerned\" is not a drop reason")]
fn unknown_drop_reason_names_fail() {
    let r = replay(&config(""), &[]);
    r.dropped("arp_lerned");
}
