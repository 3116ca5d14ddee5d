#!/usr/bin/python3
"""Decodes the IPVS sync messages of a capture, independently of dlvs:
the UDP payloads to port 8848 (or PORT), read with the kernel's struct
layouts (net/netfilter/ipvs/ip_vs_sync.c: struct ip_vs_sync_mesg and
ip_vs_sync_v4 for version 1, ip_vs_sync_mesg_v0 and ip_vs_sync_conn_v0
for version 0). Prints one line per message and per entry:

    message SRC version V syncid N conns C size S
    conn PROTO STATE CADDR:CPORT VADDR:VPORT DADDR:DPORT flags 0xF timeout T fwmark M

PROTO is TCP/UDP/IP (templates: IP or their protocol), STATE the kernel's
TCP state name (NONE for UDP and templates). Exits 1 on a message it
cannot decode (its size field, an entry past the end, a bad version).

Usage: ipvs_sync_decode.py CAPTURE [PORT]
"""

import logging
import socket
import struct
import sys

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import IP, UDP, rdpcap  # noqa: E402

STATES = ["NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE",
          "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK"]
PROTOS = {6: "TCP", 17: "UDP", 0: "IP"}
F_TEMPLATE = 0x1000


def addr(b):
    return socket.inet_ntoa(b)


def conn_line(proto, flags, state, cport, vport, dport, fwmark, timeout, caddr, vaddr, daddr):
    name = "NONE" if proto != 6 or flags & F_TEMPLATE else STATES[state]
    return "conn %s %s %s:%d %s:%d %s:%d flags 0x%x timeout %d fwmark %d" % (
        PROTOS.get(proto, str(proto)), name, addr(caddr), cport, addr(vaddr), vport,
        addr(daddr), dport, flags, timeout, fwmark)


def decode(src, msg):
    if len(msg) < 4 or struct.unpack("!H", msg[2:4])[0] != len(msg):
        raise ValueError("size field %d, length %d" % (struct.unpack("!H", msg[2:4])[0], len(msg)))
    out = []
    if len(msg) >= 8 and msg[0] == 0 and msg[5] == 1 and msg[6:8] == b"\0\0":
        _, syncid, size, count, _, _ = struct.unpack("!BBHBbH", msg[:8])
        out.append("message %s version 1 syncid %d conns %d size %d" % (src, syncid, count, size))
        at = 8
        for _ in range(count):
            if at + 36 > len(msg):
                raise ValueError("entry past the end")
            (typ, proto, ver_size, flags, state, cport, vport, dport, fwmark, timeout,
             caddr, vaddr, daddr) = struct.unpack("!BBHIHHHHII4s4s4s", msg[at:at + 36])
            if typ != 0 or ver_size >> 12:
                raise ValueError("type %d, version %d" % (typ, ver_size >> 12))
            n = ver_size & 0x0FFF
            out.append(conn_line(proto, flags, state, cport, vport, dport, fwmark, timeout, caddr, vaddr, daddr))
            at += (n + 3) & ~3
    else:
        count, syncid, size = struct.unpack("!BBH", msg[:4])
        out.append("message %s version 0 syncid %d conns %d size %d" % (src, syncid, count, size))
        at = 4
        for _ in range(count):
            if at + 24 > len(msg):
                raise ValueError("entry past the end")
            (_, proto, cport, vport, dport, caddr, vaddr, daddr, flags,
             state) = struct.unpack("!BBHHH4s4s4sHH", msg[at:at + 24])
            out.append(conn_line(proto, flags, state, cport, vport, dport, 0, 0, caddr, vaddr, daddr))
            at += 48 if flags & 0x0600 else 24
    return out


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 8848
    for p in rdpcap(sys.argv[1]):
        if IP in p and UDP in p and p[UDP].dport == port:
            try:
                u = bytes(p[UDP])
                # The UDP length bounds it (not the Ethernet padding).
                for line in decode(p[IP].src, u[8:p[UDP].len]):
                    print(line)
            except ValueError as e:
                print("undecodable message from %s: %s" % (p[IP].src, e), file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
