#!/usr/bin/python3
"""Writes the seed corpora in fuzz/seeds/<target>/, so they are
reproducible: run `fuzz/make_seeds.py` from anywhere. Two sources:

- frames made with scapy for the cases real traffic rarely shows (VLAN,
  IPv6, fragments, unknown ARP operations, odd lengths);
- real traffic: tests/corpus/lab.pcap, captured from the Linux kernels of
  the lab's client and servers around a running director by
  scripts/capture-corpus (ARP, ping, a curl run, UDP). Its frames become
  `real_*` seeds of every target, each cut at the target's layer, and the
  whole capture, in order and with its timing, becomes pipeline sequences.

Each target's input format (see the header of fuzz/fuzz_targets/<target>.rs):

- wire_ethernet: a whole Ethernet frame (padded to 60 bytes, no FCS).
- wire_arp:      an ARP packet (the Ethernet payload, padding included).
- wire_ipv4:     an IPv4 packet (no Ethernet header; may carry padding).
- wire_icmp:     an ICMP message (the IPv4 payload).
- wire_tcp:      4 bytes IPv4 source + 4 bytes IPv4 destination (the pseudo
                 header's addresses), then the TCP segment, no IP header.
- wire_udp:      the same address prefix, then the UDP datagram.
- wire_ipvs_sync: the receiver's syncid (1 byte), then an IPVS sync message.
- pipeline:      records of 1 byte port, 2 bytes time delta (LE, x64 us),
                 2 bytes frame length (LE), then the frame.

The pipeline frames speak to the configuration in
src/datapath/harness.rs (lan0 02:00:00:00:00:01 with 10.0.0.2/24 and the
VIP 10.0.0.100; wan0 02:00:00:00:00:02 with 192.0.2.2/24, MTU 1400, and the
gateway 192.0.2.1 at 02:00:00:00:00:0f).
"""

import logging
import os
import shutil
import struct
import sys

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

from scapy.layers.vrrp import VRRP  # noqa: E402
from scapy.all import (  # noqa: E402
    rdpcap,
    ARP,
    DNS,
    DNSQR,
    ICMP,
    IP,
    TCP,
    UDP,
    Dot1Q,
    Ether,
    ICMPv6EchoRequest,
    IPOption_Router_Alert,
    IPv6,
    Raw,
    raw,
)

SEEDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
MAX_SEED = 2048

BCAST = "ff:ff:ff:ff:ff:ff"
LAN_MAC = "02:00:00:00:00:01"
WAN_MAC = "02:00:00:00:00:02"
GW_MAC = "02:00:00:00:00:0f"
CLIENT_MAC = "02:00:00:00:00:aa"
CLIENT = "10.0.0.50"
VIP = "10.0.0.100"
LAN_IP = "10.0.0.2"
WAN_IP = "192.0.2.2"
REMOTE = "198.51.100.7"

PING_DATA = bytes(range(56))
# Linux's SYN options: MSS, SACK permitted, timestamps, NOP, window scale.
SYN_OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1299108, 0)), ("NOP", None), ("WScale", 7)]


def pad60(frame: bytes) -> bytes:
    """Ethernet minimum frame size (without FCS), as a NIC delivers it."""
    return frame + bytes(max(0, 60 - len(frame)))


def eth(pkt) -> bytes:
    return pad60(raw(pkt))


# The pipeline's frames.
ARP_REQUEST = eth(
    Ether(dst=BCAST, src=CLIENT_MAC)
    / ARP(op=1, hwsrc=CLIENT_MAC, psrc=CLIENT, hwdst="00:00:00:00:00:00", pdst=VIP)
)
ECHO_LAN = eth(
    Ether(dst=LAN_MAC, src=CLIENT_MAC)
    / IP(src=CLIENT, dst=VIP, id=0x1c46, flags="DF", ttl=64)
    / ICMP(type=8, id=0x0a1b, seq=3)
    / Raw(PING_DATA)
)
ARP_REPLY = eth(
    Ether(dst=LAN_MAC, src=CLIENT_MAC)
    / ARP(op=2, hwsrc=CLIENT_MAC, psrc=CLIENT, hwdst=LAN_MAC, pdst=LAN_IP)
)
ECHO_WAN = eth(
    Ether(dst=WAN_MAC, src=GW_MAC)
    / IP(src=REMOTE, dst=WAN_IP, id=1, ttl=64)
    / ICMP(type=8, id=2, seq=1)
    / Raw(bytes(18))
)
ECHO_WAN_BIG = eth(
    Ether(dst=WAN_MAC, src=GW_MAC)
    / IP(src=REMOTE, dst=WAN_IP, id=2, ttl=64)
    / ICMP(type=8, id=2, seq=2)
    / Raw(bytes(i & 0xff for i in range(1472)))
)
TCP_SYN = eth(
    Ether(dst=LAN_MAC, src=CLIENT_MAC)
    / IP(src=CLIENT, dst=VIP, id=1, flags="DF", ttl=64)
    / TCP(sport=46074, dport=80, seq=0xB62C1F2E, flags="S", window=64240, options=SYN_OPTS)
)
DNS_QUERY = eth(
    Ether(dst=LAN_MAC, src=CLIENT_MAC)
    / IP(src=CLIENT, dst=VIP, id=1, ttl=64)
    / UDP(sport=54321, dport=53)
    / DNS(id=1, rd=1, qd=DNSQR(qname="example.com"))
)

# Time deltas for the pipeline, in the target's 64 us units.
MS = 1000 // 64  # ~1 ms


def record(port: int, delta: int, frame: bytes) -> bytes:
    return struct.pack("<BHH", port, delta, len(frame)) + frame


def sequence(*records) -> bytes:
    return b"".join(record(*r) for r in records)


def ip_payload(pkt) -> bytes:
    """The transport bytes of a fully built IP packet (checksums filled)."""
    b = raw(pkt)
    ihl = (b[0] & 0x0F) * 4
    return b[ihl:]


def addr_prefix(src: str, dst: str) -> bytes:
    return bytes(int(x) for x in src.split(".")) + bytes(int(x) for x in dst.split("."))


def tcp_seed(src, dst, tcp) -> bytes:
    return addr_prefix(src, dst) + ip_payload(IP(src=src, dst=dst) / tcp)


def udp_seed(src, dst, udp) -> bytes:
    return addr_prefix(src, dst) + ip_payload(IP(src=src, dst=dst) / udp)


def vrrp_advert(priority):
    return pad60(raw(Ether(src="02:00:00:00:00:03", dst="01:00:5e:00:00:12")
                     / IP(src="10.0.0.3", dst="224.0.0.18", ttl=255, tos=0xC0, proto=112)
                     / VRRP(vrid=51, priority=priority, ipcount=1, addrlist=["10.0.0.200"], adv=1)))


def sync_frame():
    """A kernel master's version 1 message: one established DR connection
    of the harness's TCP 10.0.0.100:443 service (ip_vs_sync.c's layouts)."""
    entry = struct.pack("!BBHIHHHHII4s4s4s", 0, 6, 36, 0x83, 1, 40443, 443, 443, 0, 900,
                        bytes([10, 0, 0, 50]), bytes([10, 0, 0, 100]), bytes([10, 0, 0, 11]))
    msg = struct.pack("!BBHBbH", 0, 7, 8 + len(entry), 1, 1, 0) + entry
    return pad60(raw(Ether(src="02:00:00:00:00:03", dst="01:00:5e:00:00:51")
                     / IP(src="10.0.0.3", dst="224.0.0.81", ttl=1) / UDP(sport=8848, dport=8848) / Raw(msg)))


TCP_ACK_SYNCED = raw(Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:aa") / IP(src="10.0.0.50", dst="10.0.0.100")
                     / TCP(sport=40443, dport=443, flags="A", seq=1, ack=1))


def seeds():
    s = {}

    s["wire_ethernet"] = {
        "arp_request": ARP_REQUEST,
        "arp_reply": ARP_REPLY,
        "icmp_echo": ECHO_LAN,
        "wan_echo": ECHO_WAN,
        "tcp_syn": TCP_SYN,
        "dns_query": DNS_QUERY,
        "vlan_udp": eth(Ether(dst=LAN_MAC, src=CLIENT_MAC) / Dot1Q(vlan=10) / IP(src=CLIENT, dst=VIP) / UDP(sport=1, dport=2)),
        "ipv6_echo": eth(Ether(dst="33:33:00:00:00:01", src=CLIENT_MAC) / IPv6(src="fe80::1", dst="ff02::1") / ICMPv6EchoRequest()),
        "header_only": raw(Ether(dst=LAN_MAC, src=CLIENT_MAC, type=0x0800)),
    }

    s["wire_arp"] = {
        "request": raw(ARP(op=1, hwsrc=CLIENT_MAC, psrc=CLIENT, hwdst="00:00:00:00:00:00", pdst=VIP)),
        "reply": raw(ARP(op=2, hwsrc=CLIENT_MAC, psrc=CLIENT, hwdst=LAN_MAC, pdst=LAN_IP)),
        "gratuitous": raw(ARP(op=1, hwsrc=CLIENT_MAC, psrc=CLIENT, hwdst=BCAST, pdst=CLIENT)),
        "request_padded": ARP_REQUEST[14:],  # 18 bytes of Ethernet padding behind
        "unknown_op": raw(ARP(op=9, hwsrc=GW_MAC, psrc="192.0.2.1", hwdst=WAN_MAC, pdst=WAN_IP)),
    }

    s["wire_ipv4"] = {
        "icmp_echo": raw(IP(src=CLIENT, dst=VIP, id=0x1c46, flags="DF") / ICMP(id=0x0a1b, seq=3) / Raw(PING_DATA)),
        "tcp_syn": raw(IP(src=CLIENT, dst=VIP, flags="DF") / TCP(sport=46074, dport=80, flags="S", options=SYN_OPTS)),
        "udp_dns": raw(IP(src=CLIENT, dst=VIP) / UDP(sport=54321, dport=53) / DNS(rd=1, qd=DNSQR(qname="example.com"))),
        "router_alert": raw(IP(src=LAN_IP, dst="224.0.0.22", ttl=1, options=[IPOption_Router_Alert()]) / Raw(bytes(8))),
        "fragment_mf": raw(IP(src=REMOTE, dst=WAN_IP, id=7, flags="MF", frag=0) / Raw(bytes(range(64)))),
        "fragment_tail": raw(IP(src=REMOTE, dst=WAN_IP, id=7, frag=8, proto=17) / Raw(bytes(range(20)))),
        # A short packet in a padded frame: buffer longer than total length.
        "padded": raw(IP(src=REMOTE, dst=WAN_IP) / ICMP(id=5, seq=5)) + bytes(18),
    }

    icmp = lambda m: ip_payload(IP(src=CLIENT, dst=VIP) / m)  # noqa: E731
    quoted = raw(IP(src=CLIENT, dst=REMOTE, flags="DF", len=1500) / UDP(sport=5000, dport=6000, len=1480))[:28]
    s["wire_icmp"] = {
        "echo_request": icmp(ICMP(type=8, id=0x0a1b, seq=3) / Raw(PING_DATA)),
        "echo_reply": icmp(ICMP(type=0, id=0x0a1b, seq=3) / Raw(PING_DATA)),
        "frag_needed": icmp(ICMP(type=3, code=4, nexthopmtu=1400) / Raw(quoted)),
        "time_exceeded": icmp(ICMP(type=11, code=0) / Raw(quoted)),
        "port_unreachable": icmp(ICMP(type=3, code=3) / Raw(quoted)),
        "echo_odd_length": icmp(ICMP(type=8, id=1, seq=1) / Raw(b"abcdefg")),
        "echo_empty_zero": icmp(ICMP(type=8, id=0, seq=0)),
    }

    s["wire_tcp"] = {
        "syn_options": tcp_seed(CLIENT, VIP, TCP(sport=46074, dport=80, seq=0xB62C1F2E, flags="S", window=64240, options=SYN_OPTS)),
        "syn_ack": tcp_seed(VIP, CLIENT, TCP(sport=80, dport=46074, seq=1, ack=0xB62C1F2F, flags="SA", options=[("MSS", 1400), ("NOP", None), ("WScale", 7)])),
        "ack_payload": tcp_seed(CLIENT, VIP, TCP(sport=46074, dport=80, seq=0xB62C1F2F, ack=2, flags="PA", options=[("NOP", None), ("NOP", None), ("Timestamp", (1299200, 77))]) / Raw(b"GET / HTTP/1.1\r\nHost: 10.0.0.100\r\n\r\n")),
        "fin_ack": tcp_seed(REMOTE, WAN_IP, TCP(sport=443, dport=33000, seq=5, ack=9, flags="FA")),
        "rst_odd": tcp_seed(REMOTE, WAN_IP, TCP(sport=443, dport=33000, seq=5, flags="R") / Raw(b"x")),
    }

    s["wire_udp"] = {
        "dns_query": udp_seed(CLIENT, VIP, UDP(sport=54321, dport=53) / DNS(id=1, rd=1, qd=DNSQR(qname="example.com"))),
        "no_checksum": addr_prefix(CLIENT, VIP) + struct.pack(">HHHH", 5000, 6000, 12, 0) + b"abcd",
        "padded": udp_seed(CLIENT, VIP, UDP(sport=123, dport=123) / Raw(b"ntp?")) + bytes(14),
        "empty": udp_seed(REMOTE, WAN_IP, UDP(sport=9, dport=9)),
        "odd_length": udp_seed(REMOTE, WAN_IP, UDP(sport=7, dport=7) / Raw(b"odd")),
    }

    s["pipeline"] = {
        "arp_request": sequence((0, 0, ARP_REQUEST)),
        "echo_lan": sequence((0, 0, ECHO_LAN)),
        "echo_then_arp_reply": sequence((0, 0, ECHO_LAN), (0, 10 * MS, ARP_REPLY)),
        "arp_request_then_echo": sequence((0, 0, ARP_REQUEST), (0, MS, ECHO_LAN)),
        # The held echo reply's ARP request is retried every 100 ms, then
        # given up: the WAN echoes move time along.
        "echo_arp_retries": sequence((0, 0, ECHO_LAN), (1, 120 * MS, ECHO_WAN), (1, 120 * MS, ECHO_WAN), (1, 120 * MS, ECHO_WAN)),
        "wan_echo": sequence((1, 0, ECHO_WAN)),
        "wan_echo_big": sequence((1, 0, ECHO_WAN_BIG)),
        "tcp_syn": sequence((0, 0, TCP_SYN)),
        "dns_query": sequence((0, 0, DNS_QUERY)),
        "all": sequence((0, 0, ARP_REQUEST), (0, MS, ECHO_LAN), (0, 2 * MS, ARP_REPLY), (1, MS, ECHO_WAN), (0, MS, TCP_SYN)),
        # The harness's VRRP instance (router 51 on lan0) hears a better
        # master, then the master leaves; a sync message (syncid 0 takes
        # all) installs a connection its next packet uses.
        "vrrp_adverts": sequence(
            (0, 0, vrrp_advert(150)), (0, 1000 * MS, vrrp_advert(150)), (0, 1000 * MS, vrrp_advert(0)),
            (0, 1000 * MS, ARP_REQUEST)),
        "sync_message": sequence((0, 0, sync_frame()), (0, MS, TCP_ACK_SYNCED)),
    }

    # IPVS sync messages (ip_vs_sync.c's layouts), after a syncid byte.
    def v1_entry(flags, state, cport, opts=b""):
        e = struct.pack("!BBHIHHHHII4s4s4s", 0, 6, 36 + len(opts), flags, state, cport, 80, 80, 0, 900,
                        bytes([10, 0, 0, 50]), bytes([10, 0, 0, 100]), bytes([10, 0, 0, 11]))
        return e + opts

    def v1(syncid, entries):
        body = b""
        for e in entries:
            body += bytes((4 - (8 + len(body)) % 4) % 4) + e
        return struct.pack("!BBHBbH", 0, syncid, 8 + len(body), len(entries), 1, 0) + body

    seq = bytes([1, 24]) + struct.pack("!6I", 1, 2, 3, 4, 5, 6)
    v0 = struct.pack("!BBHHH4s4s4sHH", 0, 6, 40000, 80, 80, bytes([10, 0, 0, 50]), bytes([10, 0, 0, 100]),
                     bytes([10, 0, 0, 11]), 0x83, 1)
    s["wire_ipvs_sync"] = {
        "v1_two": b"\x07" + v1(7, [v1_entry(0x83, 1, 40000), v1_entry(0x1183, 0, 0)]),
        "v1_seq": b"\x00" + v1(3, [v1_entry(0x483, 1, 40001, seq)]),
        "v1_optional_option": b"\x00" + v1(3, [v1_entry(0x83, 1, 40002, bytes([0x45, 2, 0, 0]))]),
        "v0_one": b"\x07" + struct.pack("!BBH", 1, 7, 28) + v0,
        "foreign": b"\x08" + v1(7, [v1_entry(0x83, 1, 40000)]),
    }
    return s


CAPTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "corpus", "lab.pcap")


def real_seeds(s):
    """Adds seeds cut from the real capture (one per distinct kind of frame
    and layer; the lab's director is the harness's lan0: same MAC and
    addresses, so the frames speak to port 0 as they are)."""
    frames = rdpcap(CAPTURE)
    seen = set()

    def add(target, kind, data):
        if (target, kind) in seen or len(data) > MAX_SEED:
            return
        seen.add((target, kind))
        s[target]["real_%02d_%s" % (len(seen), kind)] = data

    for f in frames:
        b = raw(f)
        kind = f.summary().split(" / ")[-1].split(" ")[0].lower().replace(":", "")
        add("wire_ethernet", f.lastlayer().name.lower().replace(" ", "_") + "_" + kind[:12], b)
        if ARP in f:
            add("wire_arp", "op%d" % f[ARP].op, raw(f[ARP]))
        if IP in f:
            ip = raw(f[IP])
            add("wire_ipv4", "proto%d_%d" % (f[IP].proto, min(len(ip), 1500) // 500), ip)
            prefix = addr_prefix(f[IP].src, f[IP].dst)
            if ICMP in f:
                add("wire_icmp", "type%d_%d" % (f[ICMP].type, len(ip) // 500), raw(f[ICMP]))
            if TCP in f:
                add("wire_tcp", "flags%s_%d" % (f[TCP].flags, len(f[TCP].payload) > 0), prefix + raw(f[TCP]))
            if UDP in f:
                add("wire_udp", "port%d" % f[UDP].dport, prefix + raw(f[UDP]))

    # The whole capture, in order, as pipeline sequences of at most
    # MAX_PIPELINE bytes; deltas follow the capture's clock.
    chunk, last, n = b"", None, 0
    for f in frames:
        t = int(f.time * 1_000_000)
        delta = 0 if last is None else min((t - last) // 64, 0xFFFF)
        last = t
        rec = record(0, delta, raw(f))
        if len(chunk) + len(rec) > MAX_PIPELINE and chunk:
            s["pipeline"]["real_capture_%02d" % n] = chunk
            chunk, n = b"", n + 1
        chunk += rec
    if chunk:
        s["pipeline"]["real_capture_%02d" % n] = chunk


# A pipeline seed may hold a run of real frames.
MAX_PIPELINE = 8192


def main():
    out = seeds()
    real_seeds(out)
    for target, files in out.items():
        d = os.path.join(SEEDS, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in files.items():
            assert len(data) <= (MAX_PIPELINE if target == "pipeline" else MAX_SEED), (target, name, len(data))
            with open(os.path.join(d, name + ".bin"), "wb") as f:
                f.write(data)
        print(f"{target}: {len(files)} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
