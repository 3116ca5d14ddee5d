#!/usr/bin/python3
"""tests/e2e/tun_decap.py: a userspace tunnel endpoint for a real server.

Usage: tun_decap.py --type ipip|gue|gre [--port 6080] --dev NAME [--peer ADDR]

dlvs's TUN forwarding method (`ipvsadm -i --tun-type ipip|gue|gre`) sends
the client's IPv4 packet to the real server inside an outer IPv4 header. A
real server normally takes those apart in its kernel (the ipip, ip_gre and
fou modules, e.g. `ip link add tunl0 type ipip`), but the kernels the tests
run on have none of them. This script does their job in userspace:

  - ipip (IP protocol 4) and GRE (47): a raw socket for the protocol, which
    gets every such packet addressed to this host, outer IPv4 header
    included (stripped by its IHL);
  - GUE: a UDP socket bound to the GUE port (--port), which gets the UDP
    payload: the GUE header, then the inner packet;

and writes each inner IPv4 packet to a TUN device (IFF_TUN|IFF_NO_PI, --dev;
created if it does not exist, attached to if it does, e.g. one made with
`ip tuntap add dev NAME mode tun`), so that the host's own stack receives
it as if it had arrived on that interface, as it would from a kernel
tunnel device.

What it strips it checks, and counts and skips what is wrong: the outer
header (IPv4, the tunnel's protocol, with --peer from that address only);
GUE's header (version 0, a data message, proto/ctype 4, i.e. IPv4; options
skipped by hlen); GRE's (version 0, no routing or reserved flags, protocol
0x0800, the checksum verified when the C bit is set, key and sequence
number skipped); and the inner packet (IPv4, a sane header and total
length; bytes past its total length dropped).

For the host to accept the inner packets (destination the VIP, source the
client), the caller must: bring the device up (`ip link set dev NAME up`);
put the VIP on the host, e.g. on lo with arp_ignore=1 and arp_announce=2 as
for DR; and turn off reverse-path filtering for the device and `all`
(net.ipv4.conf.{all,NAME}.rp_filter=0), as the host routes the client by
another interface. Replies then go straight to the client, as with DR.

It runs until SIGTERM or SIGINT, then prints its counters on stderr, one
line:  tun_decap TYPE DEV: received N forwarded N bad N (reason N ...)
(for GUE also `source_ports N`: how many UDP source ports the tunnel
came from, one per flow from dlvs)
and exits 0. After setting up it prints `tun_decap TYPE DEV: ready` on
stdout. Standard library only.
"""

import argparse
import fcntl
import os
import select
import signal
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

IPPROTO = {"ipip": 4, "gre": 47}
GUE_PROTO_IPIP = 4
GRE_PROTO_IPV4 = 0x0800
GRE_C, GRE_R, GRE_K, GRE_S = 0x8000, 0x4000, 0x2000, 0x1000
# Bits a receiver of RFC 2784/2890 GRE must find zero: routing (R), strict
# source route, recursion control, the other flags and the version.
GRE_MUST_BE_ZERO = 0xFFFF & ~(GRE_C | GRE_K | GRE_S)


class Bad(Exception):
    """A packet skipped; the message is the counter's name."""


def csum_ok(data):
    """The Internet checksum over data (which holds its own checksum) is
    right: the ones' complement sum is all ones."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def strip_outer(pkt, proto, peer):
    """The IP payload of a packet from a raw socket (outer header first)."""
    if len(pkt) < 20 or pkt[0] >> 4 != 4:
        raise Bad("outer_not_ipv4")
    ihl = (pkt[0] & 0x0F) * 4
    total = struct.unpack_from("!H", pkt, 2)[0]
    if ihl < 20 or total < ihl or total > len(pkt):
        raise Bad("outer_bad_length")
    if pkt[9] != proto:
        raise Bad("outer_wrong_protocol")
    if peer is not None and pkt[12:16] != peer:
        raise Bad("outer_wrong_source")
    return pkt[ihl:total]


def strip_gue(payload):
    if len(payload) < 4:
        raise Bad("gue_truncated")
    b0, proto = payload[0], payload[1]
    if b0 >> 6 != 0:
        raise Bad("gue_bad_version")
    if b0 & 0x20:
        raise Bad("gue_control_message")
    if proto != GUE_PROTO_IPIP:
        raise Bad("gue_not_ipv4")
    hlen = 4 + (b0 & 0x1F) * 4
    if len(payload) < hlen:
        raise Bad("gue_truncated")
    return payload[hlen:]


def strip_gre(payload):
    if len(payload) < 4:
        raise Bad("gre_truncated")
    flags, proto = struct.unpack_from("!HH", payload, 0)
    if flags & GRE_MUST_BE_ZERO:
        raise Bad("gre_bad_flags")
    if proto != GRE_PROTO_IPV4:
        raise Bad("gre_not_ipv4")
    hlen = 4 + 4 * sum(1 for f in (GRE_C, GRE_K, GRE_S) if flags & f)
    if len(payload) < hlen:
        raise Bad("gre_truncated")
    if flags & GRE_C and not csum_ok(bytes(payload)):
        raise Bad("gre_bad_checksum")
    return payload[hlen:]


def check_inner(inner):
    if len(inner) < 20 or inner[0] >> 4 != 4:
        raise Bad("inner_not_ipv4")
    ihl = (inner[0] & 0x0F) * 4
    total = struct.unpack_from("!H", inner, 2)[0]
    if ihl < 20 or total < ihl or total > len(inner):
        raise Bad("inner_bad_length")
    return inner[:total]


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    ifr = struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    return fd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--type", required=True, choices=["ipip", "gue", "gre"])
    ap.add_argument("--port", type=int, default=6080, help="GUE's UDP port")
    ap.add_argument("--dev", required=True, help="the TUN device's name")
    ap.add_argument("--peer", help="accept tunnels from this address only")
    args = ap.parse_args()
    if len(args.dev.encode()) > 15:
        ap.error("--dev: at most 15 bytes")
    peer = socket.inet_aton(args.peer) if args.peer else None

    if args.type == "gue":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", args.port))
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO[args.type])
    sock.setblocking(False)
    tun = open_tun(args.dev)

    # SIGTERM/SIGINT wake the select() through a socket pair.
    stop = []
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))

    counts = {"received": 0, "forwarded": 0, "bad": 0}
    reasons = {}
    gue_sports = set()
    print(f"tun_decap {args.type} {args.dev}: ready", flush=True)
    while not stop:
        ready, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in ready:
            try:
                wake_r.recv(64)
            except BlockingIOError:
                pass
        if sock not in ready:
            continue
        while True:
            try:
                data, src = sock.recvfrom(65535)
            except BlockingIOError:
                break
            counts["received"] += 1
            try:
                if args.type == "gue":
                    if peer is not None and socket.inet_aton(src[0]) != peer:
                        raise Bad("outer_wrong_source")
                    gue_sports.add(src[1])
                    inner = strip_gue(memoryview(data))
                else:
                    payload = strip_outer(memoryview(data), IPPROTO[args.type], peer)
                    inner = strip_gre(payload) if args.type == "gre" else payload
                inner = check_inner(inner)
            except Bad as e:
                counts["bad"] += 1
                reasons[str(e)] = reasons.get(str(e), 0) + 1
                continue
            try:
                os.write(tun, inner)
                counts["forwarded"] += 1
            except OSError as e:
                # E.g. EIO while the device is down.
                counts["bad"] += 1
                key = f"tun_write_{e.errno}"
                reasons[key] = reasons.get(key, 0) + 1

    detail = " ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    line = " ".join(f"{k} {v}" for k, v in counts.items())
    if args.type == "gue":
        line += f" source_ports {len(gue_sports)}"
    print(
        f"tun_decap {args.type} {args.dev}: {line}" + (f" ({detail})" if detail else ""),
        file=sys.stderr,
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
