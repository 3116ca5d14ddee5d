//! ICMP for layer 4: errors about a connection's packets relayed to the
//! other side, and the director's own errors (fragmentation needed, port
//! unreachable) built in place.

use super::*;

/// ICMP errors about a connection's packets (ip_vs_core.c `ip_vs_in_icmp`,
/// `ip_vs_out_icmp`): the quoted header (RFC 792: the IP header and 8
/// bytes) names the connection. An error about a packet that went to the
/// client (its source the virtual service) is the real server's business:
/// it goes there by the connection's method, NAT rewriting the outer
/// destination and the quoted source (address and port). An error about a
/// packet a NAT connection forwarded to its real server goes back to the
/// client with the outer source and the quoted destination turned back
/// into the virtual service's. Quoted IP and ICMP checksums are
/// recomputed; the quoted TCP/UDP checksum is left as quoted, as the
/// kernel does (`ip_vs_nat_icmp`). Other ICMP is the host's.
pub(super) fn icmp_relay(
    pkt: &mut Packet<'_>,
    hlen: usize,
    total: usize,
    host: &Host,
    services: &ServiceTable,
    st: &mut L4State<'_>,
) -> Option<Result<Verdict, DropReason>> {
    let (l4, end) = (ETH_LEN + hlen, ETH_LEN + total);
    let frame = pkt.data();
    let icmp = frame.get(l4..end)?;
    // The errors IPVS relays (ip_vs_core.c `ip_vs_in_icmp`): destination
    // unreachable, source quench, time exceeded.
    if icmp.len() < 8 || !matches!(icmp[0], 3 | 4 | 11) || st.l4.conns.is_empty() {
        return None;
    }
    if checksum::checksum(icmp) != 0 {
        // Corrupt: not to be passed on with a fresh checksum.
        return Some(Err(DropReason::IcmpBadChecksum));
    }
    let q = Ipv4Packet::new_quoted(&icmp[8..]).ok()?;
    let qproto = q.protocol().0;
    let qports = q.payload();
    if !(qproto == TCP || qproto == UDP) || q.is_fragment() || qports.len() < 4 {
        return None;
    }
    let (qsrc, qdst) = (q.src_addr(), q.dst_addr());
    let qsport = u16::from_be_bytes([qports[0], qports[1]]);
    let qdport = u16::from_be_bytes([qports[2], qports[3]]);
    let now = st.egress.now;
    let mut found = None;
    for kind in [KeyKind::In, KeyKind::Out] {
        // The quoted packet went the other way: its destination is the key's source.
        let key = ConnKey::new(kind, qproto, qdst, qdport, qsrc, qsport);
        if let Some(f) = st.l4.conns.lookup(&key, now, |c| {
            services.unbind(c.dest, c.template, c.inactive)
        }) {
            found = Some(f);
            break;
        }
    }
    let f = found?;
    let c = *st.l4.conns.get(f.slot)?;
    let outer = Ipv4Packet::new_checked(&frame[ETH_LEN..]).ok()?;
    let flow = Flow {
        proto: ICMP,
        src: outer.src_addr(),
        sport: 0,
        dst: outer.dst_addr(),
        dport: 0,
        flags: 0,
        dont_frag: outer.dont_frag(),
        ident: outer.ident(),
        frag: Frag::Whole,
    };
    if c.fwd == Fwd::Nat {
        let qh = q.header_len();
        let frame = pkt.data_mut();
        let (outer_ip, rest) = frame[ETH_LEN..].split_at_mut(hlen);
        let msg = &mut rest[..total - hlen];
        let quoted = &mut msg[8..];
        let (at, new) = if f.reply {
            // To the client: from the virtual service.
            quoted[16..20].copy_from_slice(&c.vaddr.octets());
            quoted[qh + 2..qh + 4].copy_from_slice(&c.vport.to_be_bytes());
            (12, c.vaddr)
        } else {
            // To the real server: about its own packet.
            quoted[12..16].copy_from_slice(&c.daddr.octets());
            quoted[qh..qh + 2].copy_from_slice(&c.dport.to_be_bytes());
            (16, c.daddr)
        };
        // The outer address, its header checksum patched (RFC 1624).
        let old = u32::from_be_bytes([
            outer_ip[at],
            outer_ip[at + 1],
            outer_ip[at + 2],
            outer_ip[at + 3],
        ]);
        let sum = checksum::update32(
            u16::from_be_bytes([outer_ip[10], outer_ip[11]]),
            old,
            new.into(),
        );
        outer_ip[at..at + 4].copy_from_slice(&new.octets());
        outer_ip[10..12].copy_from_slice(&sum.to_be_bytes());
        quoted[10..12].fill(0);
        let qsum = checksum::checksum(&quoted[..qh]);
        quoted[10..12].copy_from_slice(&qsum.to_be_bytes());
        msg[2..4].fill(0);
        let isum = checksum::checksum(msg);
        msg[2..4].copy_from_slice(&isum.to_be_bytes());
        let to = Target {
            dest: c.dest,
            fwd: Fwd::Dr,
            reply: f.reply,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
        };
        // Rewritten already: route it as is, toward whoever it is for.
        let flow = Flow {
            dst: if f.reply { c.caddr } else { c.daddr },
            ..flow
        };
        return Some(send(pkt, &to, &flow, total, host, st));
    }
    if f.reply {
        // Only NAT connections have replies through the director.
        return None;
    }
    let to = Target {
        dest: c.dest,
        fwd: c.fwd,
        reply: false,
        vaddr: c.vaddr,
        vport: c.vport,
        daddr: c.daddr,
        dport: c.dport,
    };
    Some(send(pkt, &to, &flow, total, host, st))
}

/// Turns the packet in place into an ICMP error about it, from the
/// address it was sent to (the virtual address) to its sender, quoting
/// its IP header and first 8 payload bytes (RFC 792), and sends it toward
/// the sender.
pub(super) fn icmp_error(
    pkt: &mut Packet<'_>,
    flow: &Flow,
    icmp: IcmpRepr,
    host: &Host,
    st: &mut L4State<'_>,
) -> Result<Verdict, DropReason> {
    let hlen = ip_header_len(pkt.data());
    let total = pkt
        .data()
        .get(ETH_LEN + 2..ETH_LEN + 4)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as usize);
    let quote = hlen + total.saturating_sub(hlen).min(8);
    let at = ETH_LEN + Ipv4Repr::HEADER_LEN + icmp.buffer_len();
    let len = at + quote;
    if pkt.len() < ETH_LEN + quote || !pkt.set_len(len.max(pkt.len())) {
        return Err(DropReason::L4Truncated);
    }
    let nh = host.routes.lookup(flow.src).ok_or(DropReason::NoRoute)?;
    let out = &host.ports[nh.port];
    let frame = pkt.data_mut();
    frame.copy_within(ETH_LEN..ETH_LEN + quote, at);
    icmp.emit(&mut frame[ETH_LEN + Ipv4Repr::HEADER_LEN..len])
        .map_err(|_| DropReason::L4Truncated)?;
    st.l4.ident = st.l4.ident.wrapping_add(1);
    Ipv4Repr {
        src_addr: flow.dst,
        dst_addr: flow.src,
        protocol: IpProtocol::ICMP,
        payload_len: (icmp.buffer_len() + quote) as u16,
        ttl: 64,
        ident: st.l4.ident,
        dont_frag: false,
        dscp_ecn: 0,
    }
    .emit(&mut frame[ETH_LEN..])
    .map_err(|_| DropReason::L4Truncated)?;
    let mac = out.mac;
    if !pkt.set_len(len) {
        return Err(DropReason::L4Truncated);
    }
    to_next_hop(pkt.data_mut(), nh.port, mac, nh.ip, st.egress)
}
