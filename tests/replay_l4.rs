//! Layer-4 switching through the real binary: `dlvs replay --rules` over
//! captures built with smoltcp, outputs decoded (and every checksum
//! verified) with smoltcp, never with dlvs's own views.

mod common;

use std::net::Ipv4Addr;

use common::*;
use smoltcp::wire::TcpControl;

const RS1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
const RS2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 12);
const RS3: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 13);
const RS1_MAC: [u8; 6] = [2, 0, 0, 0, 1, 0x11];
const RS2_MAC: [u8; 6] = [2, 0, 0, 0, 1, 0x12];

/// The base config with static neighbours for the real servers and the
/// client, so no frame waits for ARP.
fn cfg(extra: &str) -> String {
    l4_config(&[("10.0.0.50", "02:00:00:00:00:aa")], extra)
}

fn syn(sport: u16) -> Vec<u8> {
    syn_from(CLIENT_IP, sport)
}

fn syn_from(src: Ipv4Addr, sport: u16) -> Vec<u8> {
    tcp_frame(CLIENT_MAC, src, sport, VIP, 80, TcpControl::Syn, false)
}

/// (destination address, destination MAC) of each TCP output.
fn tcp_targets(r: &Replay) -> Vec<(Ipv4Addr, [u8; 6])> {
    r.output
        .iter()
        .filter_map(|o| match o {
            Out::Tcp { dst, eth_dst, .. } => Some((*dst, *eth_dst)),
            _ => None,
        })
        .collect()
}

#[test]
fn nat_both_directions() {
    let rules = "\
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m
-a -t 10.0.0.100:80 -r 10.0.0.12:8080 -m
";
    let frames = [
        syn(40000),
        // RS1's SYN-ACK to the client, through the director.
        tcp_frame(RS1_MAC, RS1, 8080, CLIENT_IP, 40000, TcpControl::Syn, true),
        // The client's ACK: the same connection, the same server.
        tcp_frame(
            CLIENT_MAC,
            CLIENT_IP,
            40000,
            VIP,
            80,
            TcpControl::None,
            true,
        ),
        // A second client port: rr's next server.
        syn(40001),
    ];
    let r = replay_rules(&cfg(""), Some(rules), &frames);
    r.assert_accounted();
    let out = r.after_announcements();
    assert_eq!(
        out,
        vec![
            Out::Tcp {
                eth_dst: RS1_MAC,
                eth_src: DIR_MAC,
                src: CLIENT_IP,
                dst: RS1,
                sport: 40000,
                dport: 8080,
                syn: true,
                ack: false,
                fin: false,
                rst: false,
            },
            Out::Tcp {
                eth_dst: CLIENT_MAC,
                eth_src: DIR_MAC,
                src: VIP,
                dst: CLIENT_IP,
                sport: 80,
                dport: 40000,
                syn: true,
                ack: true,
                fin: false,
                rst: false,
            },
            Out::Tcp {
                eth_dst: RS1_MAC,
                eth_src: DIR_MAC,
                src: CLIENT_IP,
                dst: RS1,
                sport: 40000,
                dport: 8080,
                syn: false,
                ack: true,
                fin: false,
                rst: false,
            },
            Out::Tcp {
                eth_dst: RS2_MAC,
                eth_src: DIR_MAC,
                src: CLIENT_IP,
                dst: RS2,
                sport: 40001,
                dport: 8080,
                syn: true,
                ack: false,
                fin: false,
                rst: false,
            },
        ],
        "{}",
        r.summary
    );
    assert_eq!(r.num("connections"), 2, "{}", r.summary);
    // Per real server: connections, packets and IP bytes each way.
    let stats: Vec<(String, u64, u64, u64, u64, u64)> = r.summary["real_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let n = |k: &str| d[k].as_u64().unwrap();
            (
                d["server"].as_str().unwrap().to_string(),
                n("conns"),
                n("in_packets"),
                n("out_packets"),
                n("in_bytes"),
                n("out_bytes"),
            )
        })
        .collect();
    assert_eq!(
        stats,
        vec![
            ("10.0.0.11:8080".into(), 1, 2, 1, 80, 40),
            ("10.0.0.12:8080".into(), 1, 1, 0, 40, 0),
        ],
        "{}",
        r.summary
    );
    assert_eq!(r.summary["real_servers"][0]["service"], "-t 10.0.0.100:80");
}

#[test]
fn dr_changes_only_the_ethernet_header() {
    let rules = "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11 -g\n";
    let input = syn(40000);
    let r = replay_rules(&cfg(""), Some(rules), std::slice::from_ref(&input));
    r.assert_accounted();
    let sent = r.raw.last().unwrap();
    assert_eq!(sent[0..6], RS1_MAC, "to the real server's MAC");
    assert_eq!(sent[6..12], DIR_MAC);
    assert_eq!(sent[12..], input[12..], "the IP packet untouched");
    assert!(matches!(r.output.last(), Some(Out::Tcp { dst, .. }) if *dst == VIP));
}

#[test]
fn tun_ipip_gue_and_gre() {
    for (opts, proto) in [
        ("-i", 4),
        ("-i --tun-type ipip", 4),
        ("-i --tun-type gue --tun-port 6080", 17),
        ("-i --tun-type gue --tun-port 6080 --tun-csum", 17),
        ("-i --tun-type gre", 47),
        ("-i --tun-type gre --tun-csum", 47),
    ] {
        let rules = format!("-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11 {opts}\n");
        let input = syn(40000);
        let r = replay_rules(&cfg(""), Some(&rules), std::slice::from_ref(&input));
        r.assert_accounted();
        let Some(Out::Tunnel {
            eth_dst,
            outer_src,
            outer_dst,
            protocol,
            inner,
            ..
        }) = r.output.last()
        else {
            panic!("{opts}: {:?}", r.output.last());
        };
        assert_eq!(*eth_dst, RS1_MAC, "{opts}");
        assert_eq!(
            (*outer_src, *outer_dst, *protocol),
            (DIR_IP, RS1, proto),
            "{opts}"
        );
        let ip_len = u16::from_be_bytes([input[16], input[17]]) as usize;
        assert_eq!(
            inner[..],
            input[14..14 + ip_len],
            "{opts}: the inner packet untouched"
        );
    }
}

#[test]
fn beyond_the_mtu_df_gets_fragmentation_needed_else_a_drop() {
    let rules = "-A -u 10.0.0.100:80 -s rr\n-a -u 10.0.0.100:80 -r 10.0.0.11 -i\n";
    // A 1500-byte UDP datagram fills the MTU; with 20 more bytes of
    // tunnel it does not fit. smoltcp sets DF: the client is told the MTU
    // that fits (RFC 1191), from the VIP, quoting its header and 8 bytes.
    let mut big = udp_frame(CLIENT_MAC, CLIENT_IP, 5000, VIP, 80, &vec![7u8; 1500 - 28]);
    assert_eq!(big[20] & 0x40, 0x40, "DF");
    let r = replay_rules(&cfg(""), Some(rules), std::slice::from_ref(&big));
    r.assert_accounted();
    assert_eq!(
        r.output.last(),
        Some(&Out::IcmpError {
            eth_dst: CLIENT_MAC,
            eth_src: DIR_MAC,
            src: VIP,
            dst: CLIENT_IP,
            msg_type: 3,
            code: 4,
            rest: 1480,
            quoted: big[14..14 + 28].to_vec(),
        }),
        "{}",
        r.summary
    );
    // Without DF: too big (the director does not fragment).
    big[20] &= !0x40;
    let c = ones_sum(&{
        let mut h = big[14..34].to_vec();
        h[10] = 0;
        h[11] = 0;
        h
    });
    big[24..26].copy_from_slice(&(!c).to_be_bytes());
    let r = replay_rules(&cfg(""), Some(rules), &[big]);
    assert_eq!(r.dropped("tun_too_big"), 1, "{}", r.summary);
}

#[test]
fn no_available_server_is_answered_with_port_unreachable() {
    // Every server quiesced: rr finds none.
    let rules = "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11 -g -w 0\n";
    let s = syn(40000);
    let r = replay_rules(&cfg(""), Some(rules), std::slice::from_ref(&s));
    r.assert_accounted();
    assert_eq!(
        r.output.last(),
        Some(&Out::IcmpError {
            eth_dst: CLIENT_MAC,
            eth_src: DIR_MAC,
            src: VIP,
            dst: CLIENT_IP,
            msg_type: 3,
            code: 3,
            rest: 0,
            quoted: s[14..14 + 28].to_vec(),
        }),
        "{}",
        r.summary
    );
}

#[test]
fn segments_without_a_connection_and_ports_without_a_service() {
    let rules = "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m\n";
    let frames = [
        tcp_frame(
            CLIENT_MAC,
            CLIENT_IP,
            40000,
            VIP,
            80,
            TcpControl::None,
            true,
        ),
        tcp_frame(
            CLIENT_MAC,
            CLIENT_IP,
            40000,
            VIP,
            443,
            TcpControl::Syn,
            false,
        ),
        udp_frame(CLIENT_MAC, CLIENT_IP, 40000, VIP, 80, b"x"),
        // To the director's own address: host duties, as before.
        tcp_frame(
            CLIENT_MAC,
            CLIENT_IP,
            40000,
            DIR_IP,
            80,
            TcpControl::Syn,
            false,
        ),
    ];
    let r = replay_rules(&cfg(""), Some(rules), &frames);
    r.assert_accounted();
    assert_eq!(r.dropped("tcp_no_conn"), 1, "{}", r.summary);
    assert_eq!(r.dropped("no_service"), 2, "{}", r.summary);
    assert_eq!(r.dropped("host_unhandled"), 1, "{}", r.summary);
    // sloppy: the mid-connection segment is scheduled.
    let r = replay_rules(&cfg("sloppy = true"), Some(rules), &frames[..1]);
    assert_eq!(tcp_targets(&r), vec![(RS1, RS1_MAC)], "{}", r.summary);
}

/// Counts the TCP outputs per real server.
fn shares(r: &Replay) -> Vec<usize> {
    let t = tcp_targets(r);
    [RS1, RS2, RS3]
        .iter()
        .map(|rs| t.iter().filter(|(d, _)| d == rs).count())
        .collect()
}

#[test]
fn rr_and_wrr_distributions() {
    let three = |sched: &str, weights: [u32; 3]| {
        format!(
            "-A -t 10.0.0.100:80 -s {sched}\n\
             -a -t 10.0.0.100:80 -r 10.0.0.11:80 -m -w {}\n\
             -a -t 10.0.0.100:80 -r 10.0.0.12:80 -m -w {}\n\
             -a -t 10.0.0.100:80 -r 10.0.0.13:80 -m -w {}\n",
            weights[0], weights[1], weights[2]
        )
    };
    let syns = |n: u16| (0..n).map(|i| syn(30000 + i)).collect::<Vec<_>>();
    let r = replay_rules(&cfg(""), Some(&three("rr", [1, 1, 1])), &syns(30));
    assert_eq!(shares(&r), vec![10, 10, 10], "rr: {}", r.summary);
    let r = replay_rules(&cfg(""), Some(&three("wrr", [3, 1, 0])), &syns(40));
    assert_eq!(shares(&r), vec![30, 10, 0], "wrr 3:1:0: {}", r.summary);
    // Quiesced: weight 0 takes no new connection under rr either.
    let r = replay_rules(&cfg(""), Some(&three("rr", [1, 0, 1])), &syns(10));
    assert_eq!(
        shares(&r),
        vec![5, 0, 5],
        "rr with a quiesced server: {}",
        r.summary
    );
}

#[test]
fn persistence_keeps_a_client_on_one_server_until_the_timeout() {
    let rules = "\
-A -t 10.0.0.100:80 -s rr -p 60
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m
-a -t 10.0.0.100:80 -r 10.0.0.12:80 -m
-a -t 10.0.0.100:80 -r 10.0.0.13:80 -m
";
    let other = Ipv4Addr::new(10, 0, 0, 60);
    let base = 1_700_000_000_000_000u64;
    let s = 1_000_000u64;
    let frames = vec![
        (base, syn(40000)),
        (base + s, syn(40001)),
        (base + 2 * s, syn_from(other, 40000)),
        (base + 3 * s, syn(40002)),
        // The client's connections (SYN_RECV, 60 s) ended at 63 s; its
        // template 60 s after that. At 122 s it still holds ...
        (base + 122 * s, syn(40003)),
        // ... and 60 s after that connection (SYN_RECV until 182 s), at
        // 243 s, it is gone: rr's next server.
        (base + 243 * s, syn(40004)),
    ];
    let r = replay_rules_timed(&cfg(""), Some(rules), &frames);
    let t: Vec<Ipv4Addr> = tcp_targets(&r).into_iter().map(|(d, _)| d).collect();
    assert_eq!(t, [RS1, RS1, RS2, RS1, RS1, RS3], "{}", r.summary);
}

#[test]
fn udp_with_and_without_one_packet_scheduling() {
    let rules = |o: &str| {
        format!(
            "-A -u 10.0.0.100:53 -s rr {o}\n-a -u 10.0.0.100:53 -r 10.0.0.11:53 -m\n-a -u 10.0.0.100:53 -r 10.0.0.12:53 -m\n"
        )
    };
    let q = || udp_frame(CLIENT_MAC, CLIENT_IP, 5353, VIP, 53, b"query");
    let dsts = |r: &Replay| -> Vec<Ipv4Addr> {
        r.output
            .iter()
            .filter_map(|o| match o {
                Out::Udp { dst, .. } => Some(*dst),
                _ => None,
            })
            .collect()
    };
    let r = replay_rules(&cfg(""), Some(&rules("")), &[q(), q(), q()]);
    assert_eq!(
        dsts(&r),
        vec![RS1, RS1, RS1],
        "one connection: {}",
        r.summary
    );
    assert_eq!(r.num("connections"), 1);
    let r = replay_rules(&cfg(""), Some(&rules("-o")), &[q(), q(), q()]);
    assert_eq!(
        dsts(&r),
        vec![RS1, RS2, RS1],
        "each datagram scheduled: {}",
        r.summary
    );
    assert_eq!(r.num("connections"), 0);
}

#[test]
fn fwmark_service_spans_ports() {
    let extra = "[[mark]]\nmark = 7\ndestination = \"10.0.0.100/32\"\nprotocol = \"tcp\"\nports = [80, 443]\n";
    let rules = "-A -f 7 -s rr -p\n-a -f 7 -r 10.0.0.11 -g\n-a -f 7 -r 10.0.0.12 -g\n";
    let frames = [
        syn(40000),
        tcp_frame(
            CLIENT_MAC,
            CLIENT_IP,
            40001,
            VIP,
            443,
            TcpControl::Syn,
            false,
        ),
        tcp_frame(
            CLIENT_MAC,
            CLIENT_IP,
            40002,
            VIP,
            22,
            TcpControl::Syn,
            false,
        ),
    ];
    let config = cfg("").replace("[conn]", &format!("{extra}\n[conn]"));
    let r = replay_rules(&config, Some(rules), &frames);
    assert_eq!(
        tcp_targets(&r),
        vec![(VIP, RS1_MAC), (VIP, RS1_MAC)],
        "HTTP and HTTPS of one client on one server: {}",
        r.summary
    );
    assert_eq!(r.dropped("no_service"), 1, "port 22 is not marked");
}

#[test]
fn a_full_table_drops_new_connections_and_keeps_old_ones() {
    let rules = "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m\n";
    let mut frames: Vec<Vec<u8>> = (0..1025u16).map(|i| syn(20000 + i)).collect();
    // The first connection still flows.
    frames.push(tcp_frame(
        CLIENT_MAC,
        CLIENT_IP,
        20000,
        VIP,
        80,
        TcpControl::None,
        true,
    ));
    let r = replay_rules(&cfg(""), Some(rules), &frames);
    r.assert_accounted();
    assert_eq!(r.dropped("conn_table_full"), 1, "{}", r.summary);
    assert_eq!(tcp_targets(&r).len(), 1025);
}

#[test]
fn bad_rules_are_refused_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("c.toml");
    std::fs::write(&c, cfg("")).unwrap();
    let rules = dir.path().join("bad.rules");
    std::fs::write(
        &rules,
        "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:81 -r 10.0.0.11 -g\n",
    )
    .unwrap();
    let input = dir.path().join("in.pcap");
    dlvs::pcap::write_file(&input, std::iter::empty()).unwrap();
    let out = run_replay_rules(&c, Some(&rules), &input, &dir.path().join("out.pcap"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.rules") && err.contains("line 2"), "{err}");
}

/// An ICMP error quoting `quoted` (its IP header and first 8 bytes),
/// from `src` to `dst`, sent by `mac`.
fn icmp_error_frame(
    mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    code: u8,
    quoted: &[u8],
) -> Vec<u8> {
    let mut m = vec![3, code, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&quoted[..28]);
    let c = !ones_sum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = eth(mac, DIR_MAC, 0x0800, &ipv4(src, dst, 1, &m));
    f.resize(f.len().max(60), 0);
    f
}

#[test]
fn icmp_errors_reach_the_other_side_of_a_nat_connection() {
    let rules = "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m\n";
    // What the real server got (the client's SYN, rewritten) and what the
    // client got from the VIP (a reply), as the ICMP errors quote them.
    let to_rs = tcp_frame(
        CLIENT_MAC,
        CLIENT_IP,
        40000,
        RS1,
        8080,
        TcpControl::Syn,
        false,
    );
    let to_client = tcp_frame(DIR_MAC, VIP, 80, CLIENT_IP, 40000, TcpControl::Syn, true);
    let frames = [
        syn(40000),
        // The real server: port unreachable, to the client.
        icmp_error_frame(RS1_MAC, RS1, CLIENT_IP, 3, &to_rs[14..]),
        // A router on the client's side: fragmentation needed, to the VIP.
        icmp_error_frame(GW_MAC, GW_IP, VIP, 4, &to_client[14..]),
    ];
    let r = replay_rules(&cfg(""), Some(rules), &frames);
    r.assert_accounted();
    let errors: Vec<&Out> = r
        .output
        .iter()
        .filter(|o| matches!(o, Out::IcmpError { .. }))
        .collect();
    assert_eq!(errors.len(), 2, "{}", r.summary);
    let quoted_addrs = |q: &[u8]| -> (Ipv4Addr, u16, Ipv4Addr, u16) {
        assert_eq!(ones_sum(&q[..20]), 0xffff, "quoted IP checksum");
        (
            Ipv4Addr::new(q[12], q[13], q[14], q[15]),
            u16::from_be_bytes([q[20], q[21]]),
            Ipv4Addr::new(q[16], q[17], q[18], q[19]),
            u16::from_be_bytes([q[22], q[23]]),
        )
    };
    let expected = [
        (
            (CLIENT_MAC, VIP, CLIENT_IP, 3),
            (CLIENT_IP, 40000, VIP, 80),
            "to the client, from the VIP, about its own packet to the VIP",
        ),
        (
            (RS1_MAC, GW_IP, RS1, 4),
            (RS1, 8080, CLIENT_IP, 40000),
            "to the real server, about its own reply",
        ),
    ];
    for (e, (head, quote, what)) in errors.iter().zip(expected) {
        let Out::IcmpError {
            eth_dst,
            src,
            dst,
            code,
            quoted,
            ..
        } = e
        else {
            unreachable!()
        };
        assert_eq!((*eth_dst, *src, *dst, *code), head, "{what}");
        assert_eq!(quoted_addrs(quoted), quote, "{what}");
    }
}

#[test]
fn icmp_errors_about_dr_replies_go_to_the_real_server() {
    let rules = "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11 -g\n";
    let to_client = tcp_frame(RS1_MAC, VIP, 80, CLIENT_IP, 40000, TcpControl::Syn, true);
    let err = icmp_error_frame(GW_MAC, GW_IP, VIP, 4, &to_client[14..]);
    let r = replay_rules(&cfg(""), Some(rules), &[syn(40000), err.clone()]);
    r.assert_accounted();
    let sent = r.raw.last().unwrap();
    assert_eq!(sent[0..6], RS1_MAC, "to the real server's MAC");
    assert_eq!(sent[12..], err[12..], "untouched, as DR forwards");
    // Without a connection it is the host's (and not for it).
    let r = replay_rules(&cfg(""), Some(rules), &[err]);
    assert_eq!(r.dropped("icmp_unhandled"), 1, "{}", r.summary);
}

/// A client reusing a port after its connection finished (TIME_WAIT) gets
/// a fresh choice, as IPVS's conn_reuse_mode does; a SYN on an open
/// connection stays on it.
#[test]
fn a_new_syn_on_a_finished_connection_is_scheduled_afresh() {
    let rules = "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m\n-a -t 10.0.0.100:80 -r 10.0.0.12:80 -m\n";
    let c = |control, ack| tcp_frame(CLIENT_MAC, CLIENT_IP, 40000, VIP, 80, control, ack);
    let rs = |control, ack| tcp_frame(RS1_MAC, RS1, 80, CLIENT_IP, 40000, control, ack);
    let frames = [
        c(TcpControl::Syn, false),
        rs(TcpControl::Syn, true),
        c(TcpControl::None, true),
        // Closed from both sides: TIME_WAIT.
        c(TcpControl::Fin, true),
        rs(TcpControl::Fin, true),
        c(TcpControl::None, true),
        // The same port again: rr's next server.
        c(TcpControl::Syn, false),
    ];
    let r = replay_rules(&cfg(""), Some(rules), &frames);
    r.assert_accounted();
    let to_servers: Vec<Ipv4Addr> = tcp_targets(&r)
        .iter()
        .map(|(d, _)| *d)
        .filter(|d| *d != CLIENT_IP)
        .collect();
    assert_eq!(to_servers, vec![RS1, RS1, RS1, RS1, RS2], "{}", r.summary);
    // While the connection is open, a repeated SYN stays on it.
    let r = replay_rules(
        &cfg(""),
        Some(rules),
        &[c(TcpControl::Syn, false), c(TcpControl::Syn, false)],
    );
    let to_servers: Vec<Ipv4Addr> = tcp_targets(&r).iter().map(|(d, _)| *d).collect();
    assert_eq!(to_servers, vec![RS1, RS1], "{}", r.summary);
}

/// Splits an IPv4 packet (no Ethernet header) into fragments of at most
/// `mtu` bytes, as a router does (RFC 791), each with a valid header.
fn fragment(ip: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let hl = usize::from(ip[0] & 0x0f) * 4;
    let payload = &ip[hl..];
    let step = (mtu - hl) / 8 * 8;
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + step).min(payload.len());
        let mut f = ip[..hl].to_vec();
        f.extend_from_slice(&payload[off..end]);
        let total = f.len() as u16;
        f[2..4].copy_from_slice(&total.to_be_bytes());
        let mf = if end < payload.len() { 0x2000 } else { 0 };
        f[6..8].copy_from_slice(&(mf | (off / 8) as u16).to_be_bytes());
        f[10..12].fill(0);
        let c = !ones_sum(&f[..hl]);
        f[10..12].copy_from_slice(&c.to_be_bytes());
        out.push(f);
        off = end;
    }
    out
}

/// A datagram's fragments follow its first one through NAT, and put back
/// together at the real server they make a valid datagram; a later
/// fragment whose first was never seen is dropped.
#[test]
fn fragments_follow_their_first_fragment() {
    let rules = "-A -u 10.0.0.100:53 -s rr\n-a -u 10.0.0.100:53 -r 10.0.0.11:5353 -m\n";
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let whole = udp_frame(CLIENT_MAC, CLIENT_IP, 40000, VIP, 53, &payload);
    let mut ip = whole[14..].to_vec();
    ip[6] = 0; // no DF: it is to be fragmented
    ip[10..12].fill(0);
    let c = !ones_sum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let frags = fragment(&ip, 1500);
    assert_eq!(frags.len(), 3);
    let mut frames: Vec<Vec<u8>> = frags
        .iter()
        .map(|f| eth(CLIENT_MAC, DIR_MAC, 0x0800, f))
        .collect();
    // An orphan: a later fragment of a datagram never started.
    let mut orphan = frags[1].clone();
    orphan[4..6].copy_from_slice(&0x7777u16.to_be_bytes());
    orphan[10..12].fill(0);
    let c = !ones_sum(&orphan[..20]);
    orphan[10..12].copy_from_slice(&c.to_be_bytes());
    frames.push(eth(CLIENT_MAC, DIR_MAC, 0x0800, &orphan));
    let r = replay_rules(&cfg(""), Some(rules), &frames);
    r.assert_accounted();
    assert_eq!(r.dropped("l4_fragment"), 1, "{}", r.summary);
    // Three fragments to the real server, each with a valid header.
    let sent: Vec<&Vec<u8>> = r.raw.iter().filter(|f| f[30..34] == RS1.octets()).collect();
    assert_eq!(sent.len(), 3, "{}", r.summary);
    let mut data = Vec::new();
    for f in &sent {
        assert_eq!(f[0..6], RS1_MAC);
        assert_eq!(ones_sum(&f[14..34]), 0xffff, "fragment header checksum");
        data.extend_from_slice(&f[34..14 + u16::from_be_bytes([f[16], f[17]]) as usize]);
    }
    // Reassembled: the UDP datagram to 10.0.0.11:5353, its checksum valid.
    let udp = smoltcp::wire::UdpPacket::new_checked(&data[..]).unwrap();
    assert_eq!(udp.dst_port(), 5353);
    assert!(udp.verify_checksum(
        &smoltcp::wire::IpAddress::Ipv4(CLIENT_IP),
        &smoltcp::wire::IpAddress::Ipv4(RS1)
    ));
    assert_eq!(udp.payload(), &payload[..]);
}
