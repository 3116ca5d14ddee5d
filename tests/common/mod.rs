//! Shared helpers for the replay golden tests: frames built with smoltcp (an
//! implementation independent of dlvs's own `wire` module), captures written
//! and read, and `dlvs replay` run as a real process.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr,
    TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

pub(crate) const DIR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub(crate) const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
pub(crate) const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0e];
pub(crate) const DIR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub(crate) const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
pub(crate) const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);
pub(crate) const GW_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// A client beyond the gateway.
pub(crate) const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

/// The base configuration: one interface, the director's address and a VIP,
/// a default route through 10.0.0.1. `extra` is appended verbatim.
pub(crate) fn config(extra: &str) -> String {
    format!(
        r#"
[dpdk]
eal_args = ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "-l", "0"]
mbufs = 4095

[[interface]]
name = "lan0"
device = "net_null0"
mac = "02:00:00:00:00:01"
addresses = ["10.0.0.2/24", "10.0.0.100/32"]

[[route]]
prefix = "0.0.0.0/0"
via = "10.0.0.1"

[arp]
retry_ms = 1000
retries = 3
{extra}
"#
    )
}

/// The layer-4 tests' configuration: `config` with static neighbours for
/// the real servers 10.0.0.11-13, then `more` (address, MAC) on lan0, so no
/// frame waits for ARP; a connection table of 1024; `extra` appended.
pub(crate) fn l4_config(more: &[(&str, &str)], extra: &str) -> String {
    let mut neighbors = String::new();
    let servers = [
        ("10.0.0.11", "02:00:00:00:01:11"),
        ("10.0.0.12", "02:00:00:00:01:12"),
        ("10.0.0.13", "02:00:00:00:01:13"),
    ];
    for (ip, mac) in servers.iter().chain(more) {
        neighbors +=
            &format!("[[neighbor]]\ninterface = \"lan0\"\nip = \"{ip}\"\nmac = \"{mac}\"\n\n");
    }
    config(&format!("\n{neighbors}[conn]\ncapacity = 1024\n{extra}\n"))
}

pub(crate) fn mac(m: [u8; 6]) -> EthernetAddress {
    EthernetAddress(m)
}

/// An Ethernet frame around `payload`.
pub(crate) fn eth(src: [u8; 6], dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 14 + payload.len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: mac(src),
        dst_addr: mac(dst),
        ethertype: EthernetProtocol::from(ethertype),
    }
    .emit(&mut f);
    f.payload_mut().copy_from_slice(payload);
    buf
}

fn arp(op: ArpOperation, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let r = ArpRepr::EthernetIpv4 {
        operation: op,
        source_hardware_addr: mac(sha),
        source_protocol_addr: spa,
        target_hardware_addr: mac(tha),
        target_protocol_addr: tpa,
    };
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    buf
}

/// A broadcast ARP request from `sha`/`spa` for `tpa`, padded to 60 bytes
/// as a real NIC would send it.
pub(crate) fn arp_request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = eth(
        sha,
        [0xff; 6],
        0x0806,
        &arp(ArpOperation::Request, sha, spa, [0; 6], tpa),
    );
    f.resize(60, 0);
    f
}

/// A unicast ARP reply to the director.
pub(crate) fn arp_reply(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = eth(
        sha,
        DIR_MAC,
        0x0806,
        &arp(ArpOperation::Reply, sha, spa, DIR_MAC, tpa),
    );
    f.resize(60, 0);
    f
}

/// An IPv4 packet (valid header checksum) around `payload`.
pub(crate) fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let r = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::from(proto),
        payload_len: payload.len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; r.buffer_len() + payload.len()];
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    r.emit(&mut p, &ChecksumCapabilities::default());
    p.payload_mut().copy_from_slice(payload);
    buf
}

/// An ICMP echo request message.
pub(crate) fn icmp_echo(ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let r = Icmpv4Repr::EchoRequest {
        ident,
        seq_no: seq,
        data,
    };
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(
        &mut Icmpv4Packet::new_unchecked(&mut buf[..]),
        &ChecksumCapabilities::default(),
    );
    buf
}

/// A complete echo request frame from the client's MAC to the director.
pub(crate) fn echo_frame(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, seq: u16) -> Vec<u8> {
    let data: Vec<u8> = (0..56u8).collect();
    eth(
        CLIENT_MAC,
        DIR_MAC,
        0x0800,
        &ipv4(src, dst, 1, &icmp_echo(ident, seq, &data)),
    )
}

/// A decoded frame from the director's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Out {
    Arp {
        eth_dst: [u8; 6],
        eth_src: [u8; 6],
        op: u16,
        sha: [u8; 6],
        spa: Ipv4Addr,
        tha: [u8; 6],
        tpa: Ipv4Addr,
    },
    EchoReply {
        eth_dst: [u8; 6],
        eth_src: [u8; 6],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        ident: u16,
        seq: u16,
        data: Vec<u8>,
    },
    /// An ICMP error (checksums verified): type, code, the rest of the
    /// header (next-hop MTU for fragmentation needed), the quoted bytes.
    IcmpError {
        eth_dst: [u8; 6],
        eth_src: [u8; 6],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        msg_type: u8,
        code: u8,
        rest: u32,
        quoted: Vec<u8>,
    },
    /// A TCP segment (checksums verified).
    Tcp {
        eth_dst: [u8; 6],
        eth_src: [u8; 6],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        sport: u16,
        dport: u16,
        syn: bool,
        ack: bool,
        fin: bool,
        rst: bool,
    },
    /// A UDP datagram (checksums verified when present).
    Udp {
        eth_dst: [u8; 6],
        eth_src: [u8; 6],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        sport: u16,
        dport: u16,
        payload: Vec<u8>,
    },
    /// An IPv4 packet inside a tunnel (ipip 4, GRE 47, or UDP to a GUE
    /// port): the outer addresses and protocol, and the inner packet.
    Tunnel {
        eth_dst: [u8; 6],
        eth_src: [u8; 6],
        outer_src: Ipv4Addr,
        outer_dst: Ipv4Addr,
        protocol: u8,
        inner: Vec<u8>,
    },
    Other(Vec<u8>),
}

/// Decodes an output frame with smoltcp, verifying every checksum.
pub(crate) fn decode(frame: &[u8]) -> Out {
    let f = EthernetFrame::new_checked(frame).expect("output frame has an Ethernet header");
    let (eth_dst, eth_src) = (f.dst_addr().0, f.src_addr().0);
    match f.ethertype() {
        EthernetProtocol::Arp => {
            let p = ArpPacket::new_checked(f.payload()).expect("valid ARP");
            let ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_hardware_addr,
                target_protocol_addr,
            } = ArpRepr::parse(&p).expect("Ethernet/IPv4 ARP")
            else {
                unreachable!()
            };
            Out::Arp {
                eth_dst,
                eth_src,
                op: u16::from(operation),
                sha: source_hardware_addr.0,
                spa: source_protocol_addr,
                tha: target_hardware_addr.0,
                tpa: target_protocol_addr,
            }
        }
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(f.payload()).expect("valid IPv4");
            assert!(ip.verify_checksum(), "IPv4 header checksum of output");
            if ip.more_frags() || ip.frag_offset() != 0 {
                // A fragment: its transport is checked once reassembled.
                return Out::Other(frame.to_vec());
            }
            let caps = ChecksumCapabilities::default();
            let ipr = Ipv4Repr::parse(&ip, &caps).expect("IPv4 repr");
            let (src, dst) = (ipr.src_addr, ipr.dst_addr);
            match ipr.next_header {
                IpProtocol::Tcp => {
                    let t = TcpPacket::new_checked(ip.payload()).expect("TCP");
                    assert!(
                        t.verify_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst)),
                        "TCP checksum of output"
                    );
                    return Out::Tcp {
                        eth_dst,
                        eth_src,
                        src,
                        dst,
                        sport: t.src_port(),
                        dport: t.dst_port(),
                        syn: t.syn(),
                        ack: t.ack(),
                        fin: t.fin(),
                        rst: t.rst(),
                    };
                }
                IpProtocol::Udp => {
                    let u = UdpPacket::new_checked(ip.payload()).expect("UDP");
                    if u.checksum() != 0 {
                        assert!(
                            u.verify_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst)),
                            "UDP checksum of output"
                        );
                    }
                    // GUE (the tests' tunnels use port 6080): version 0,
                    // no options, an IPv4 packet inside.
                    if u.dst_port() == GUE_PORT {
                        let g = u.payload();
                        assert_eq!(g[..4], [0, 4, 0, 0], "GUE header");
                        return Out::Tunnel {
                            eth_dst,
                            eth_src,
                            outer_src: src,
                            outer_dst: dst,
                            protocol: 17,
                            inner: g[4..].to_vec(),
                        };
                    }
                    return Out::Udp {
                        eth_dst,
                        eth_src,
                        src,
                        dst,
                        sport: u.src_port(),
                        dport: u.dst_port(),
                        payload: u.payload().to_vec(),
                    };
                }
                IpProtocol::Unknown(4) | IpProtocol::Unknown(47) => {
                    let proto = u8::from(ipr.next_header);
                    let mut inner = ip.payload();
                    if proto == 47 {
                        // GRE: flags/version, protocol IPv4, then the
                        // checksum when the C bit is set (verified).
                        let flags = u16::from_be_bytes([inner[0], inner[1]]);
                        assert_eq!(u16::from_be_bytes([inner[2], inner[3]]), 0x0800);
                        if flags & 0x8000 != 0 {
                            assert_eq!(ones_sum(inner), 0xffff, "GRE checksum");
                            inner = &inner[8..];
                        } else {
                            inner = &inner[4..];
                        }
                    }
                    return Out::Tunnel {
                        eth_dst,
                        eth_src,
                        outer_src: src,
                        outer_dst: dst,
                        protocol: proto,
                        inner: inner.to_vec(),
                    };
                }
                IpProtocol::Icmp => {}
                // VRRP, and anything else this decoder has no words for:
                // the tests that expect it compare its bytes.
                _ => return Out::Other(frame.to_vec()),
            }
            let icmp = Icmpv4Packet::new_checked(ip.payload()).expect("ICMP");
            assert!(icmp.verify_checksum(), "ICMP checksum of output");
            if matches!(u8::from(icmp.msg_type()), 3 | 4 | 11 | 12) {
                let p = ip.payload();
                return Out::IcmpError {
                    eth_dst,
                    eth_src,
                    src: ipr.src_addr,
                    dst: ipr.dst_addr,
                    msg_type: p[0],
                    code: p[1],
                    rest: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                    quoted: p[8..].to_vec(),
                };
            }
            match Icmpv4Repr::parse(&icmp, &caps).expect("ICMP repr") {
                Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                } => Out::EchoReply {
                    eth_dst,
                    eth_src,
                    src: ipr.src_addr,
                    dst: ipr.dst_addr,
                    ttl: ipr.hop_limit,
                    ident,
                    seq: seq_no,
                    data: data.to_vec(),
                },
                _ => Out::Other(frame.to_vec()),
            }
        }
        _ => Out::Other(frame.to_vec()),
    }
}

/// The GUE port the tests' tunnelled real servers use.
pub(crate) const GUE_PORT: u16 = 6080;

/// RFC 1071 one's-complement sum of `b` (0xffff over data with a valid
/// checksum inside).
pub(crate) fn ones_sum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// A TCP segment frame from `src_mac` to the director's MAC.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tcp_frame(
    src_mac: [u8; 6],
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    control: TcpControl,
    ack: bool,
) -> Vec<u8> {
    let r = TcpRepr {
        src_port: sport,
        dst_port: dport,
        control,
        seq_number: TcpSeqNumber(1000),
        ack_number: ack.then_some(TcpSeqNumber(2000)),
        window_len: 8192,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None, None, None],
        timestamp: None,
        payload: &[],
    };
    let mut seg = vec![0u8; r.buffer_len()];
    r.emit(
        &mut TcpPacket::new_unchecked(&mut seg[..]),
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        &ChecksumCapabilities::default(),
    );
    let mut f = eth(src_mac, DIR_MAC, 0x0800, &ipv4(src, dst, 6, &seg));
    f.resize(f.len().max(60), 0);
    f
}

/// A UDP datagram frame from `src_mac` to the director's MAC.
pub(crate) fn udp_frame(
    src_mac: [u8; 6],
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let r = UdpRepr {
        src_port: sport,
        dst_port: dport,
    };
    let mut d = vec![0u8; r.header_len() + payload.len()];
    r.emit(
        &mut UdpPacket::new_unchecked(&mut d[..]),
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    let mut f = eth(src_mac, DIR_MAC, 0x0800, &ipv4(src, dst, 17, &d));
    f.resize(f.len().max(60), 0);
    f
}

/// The result of a replay.
#[derive(Debug)]
pub(crate) struct Replay {
    pub summary: Value,
    pub output: Vec<Out>,
    pub raw: Vec<Vec<u8>>,
    pub stderr: String,
}

impl Replay {
    /// Frames dropped for `reason` (0 if none were); a name that is not
    /// a drop reason fails the test, so a typo cannot pass as "none".
    pub(crate) fn dropped(&self, reason: &str) -> u64 {
        let known = reason == "rx_error"
            || dlvs::datapath::DropReason::ALL
                .iter()
                .any(|r| r.as_str() == reason);
        assert!(known, "{reason:?} is not a drop reason");
        self.summary["dropped"][reason].as_u64().unwrap_or(0)
    }

    pub(crate) fn num(&self, key: &str) -> u64 {
        self.summary[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {}", self.summary))
    }

    /// Frames dropped, all reasons together.
    pub(crate) fn dropped_total(&self) -> u64 {
        self.summary["dropped"]
            .as_object()
            .expect("a dropped object")
            .values()
            .map(|v| v.as_u64().expect("a count"))
            .sum()
    }

    /// Every received frame is accounted for exactly once.
    pub(crate) fn assert_accounted(&self) {
        assert_eq!(
            self.num("received"),
            self.num("replied") + self.num("punted") + self.dropped_total(),
            "summary does not add up: {}",
            self.summary
        );
        assert_eq!(
            self.num("transmitted"),
            self.raw.len() as u64,
            "transmitted vs output capture: {}",
            self.summary
        );
    }

    /// Output frames other than the start-up gratuitous ARPs.
    pub(crate) fn after_announcements(&self) -> Vec<Out> {
        self.output
            .iter()
            .filter(|o| !matches!(o, Out::Arp { spa, tpa, .. } if spa == tpa))
            .cloned()
            .collect()
    }
}

pub(crate) fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dlvs"))
}

/// The dlvsadm binary: the dlvs-admin package's, beside dlvs's (cargo
/// gives a test only its own package's binaries; `cargo build`, which
/// scripts/test runs first, builds both).
pub(crate) fn dlvsadm_bin() -> PathBuf {
    let p = bin().with_file_name("dlvsadm");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build` (dlvs-admin is a default member)",
        p.display()
    );
    p
}

/// Writes the config and capture into a temporary directory, runs
/// `dlvs replay` and decodes what it wrote. Frames are stamped one
/// millisecond apart unless given with times.
pub(crate) fn replay_timed(config_text: &str, frames: &[(u64, Vec<u8>)]) -> Replay {
    replay_rules_timed(config_text, None, frames)
}

/// `replay_timed` with a rules file.
pub(crate) fn replay_rules_timed(
    config_text: &str,
    rules: Option<&str>,
    frames: &[(u64, Vec<u8>)],
) -> Replay {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dlvs.toml");
    std::fs::write(&cfg, config_text).unwrap();
    let rules_path = dir.path().join("dlvs.rules");
    if let Some(r) = rules {
        std::fs::write(&rules_path, r).unwrap();
    }
    let input = dir.path().join("in.pcap");
    let output = dir.path().join("out.pcap");
    dlvs::pcap::write_file(&input, frames.iter().map(|(t, f)| (*t, f.as_slice()))).unwrap();
    let out = run_replay_rules(&cfg, rules.map(|_| rules_path.as_path()), &input, &output);
    assert!(
        out.status.success(),
        "dlvs replay failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().expect("a summary line");
    let summary: Value = serde_json::from_str(last).expect("summary is JSON");
    let raw: Vec<Vec<u8>> = dlvs::pcap::read(&output)
        .unwrap()
        .into_iter()
        .map(|r| r.data)
        .collect();
    Replay {
        summary,
        output: raw.iter().map(|f| decode(f)).collect(),
        raw,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) fn replay(config_text: &str, frames: &[Vec<u8>]) -> Replay {
    replay_rules(config_text, None, frames)
}

/// `replay` with a rules file.
pub(crate) fn replay_rules(config_text: &str, rules: Option<&str>, frames: &[Vec<u8>]) -> Replay {
    let base = 1_700_000_000_000_000u64;
    let timed: Vec<(u64, Vec<u8>)> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (base + i as u64 * 1000, f.clone()))
        .collect();
    replay_rules_timed(config_text, rules, &timed)
}

pub(crate) fn run_replay(cfg: &Path, input: &Path, output: &Path) -> std::process::Output {
    run_replay_rules(cfg, None, input, output)
}

pub(crate) fn run_replay_rules(
    cfg: &Path,
    rules: Option<&Path>,
    input: &Path,
    output: &Path,
) -> std::process::Output {
    let mut cmd = Command::new(bin());
    cmd.arg("replay").arg("--config").arg(cfg);
    if let Some(r) = rules {
        cmd.arg("--rules").arg(r);
    }
    cmd.arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running dlvs")
}
