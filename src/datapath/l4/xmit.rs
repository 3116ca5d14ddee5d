//! Sending a switched packet: NAT's rewrites, DR's MACs, TUN's outer
//! headers (net/netfilter/ipvs/ip_vs_xmit.c), the egress MTU, and the
//! next hop.

use super::*;

/// The source ports of GUE tunnels: Linux's default ephemeral range
/// (`udp_flow_src_port` picks in `ip_local_port_range`), 32768..=60999.
const GUE_SPORT_BASE: u16 = 32768;
const GUE_SPORT_SPAN: u32 = 28232;

/// Rewrites the packet for its method and hands it to the next hop.
#[inline(always)]
pub(super) fn send(
    pkt: &mut Packet<'_>,
    to: &Target,
    flow: &Flow,
    total: usize,
    host: &Host,
    st: &mut L4State<'_>,
) -> Result<Verdict, DropReason> {
    let (l3, l4) = (ETH_LEN, ETH_LEN + ip_header_len(pkt.data()));
    let end = l3 + total;
    // A reply goes to the client; everything else to the real server.
    let toward = if to.reply { flow.dst } else { to.daddr };
    let nh = host.routes.lookup(toward).ok_or(DropReason::NoRoute)?;
    let out = &host.ports[nh.port];
    // What fits the egress MTU (a tunnel's outer headers included);
    // bigger with DF is answered with ICMP fragmentation needed (RFC 1191,
    // ip_vs_xmit.c `ensure_mtu_is_adequate`), bigger without DF dropped:
    // the director does not fragment.
    let overhead = match to.fwd {
        Fwd::Tun(tun) => tun.outer_len(),
        _ => 0,
    };
    if total + overhead > out.mtu as usize {
        // Never an ICMP error about an ICMP message (RFC 1122 3.2.2).
        if flow.dont_frag && !to.reply && flow.proto != ICMP {
            let mtu = out.mtu.saturating_sub(overhead as u16);
            return icmp_error(pkt, flow, IcmpRepr::frag_needed(mtu), host, st);
        }
        return Err(match to.fwd {
            Fwd::Tun(_) => DropReason::TunTooBig,
            _ => DropReason::Oversize,
        });
    }
    match to.fwd {
        Fwd::Nat => {
            let frame = pkt.data_mut();
            let (old, new, port) = if to.reply {
                (flow.src, to.vaddr, to.vport)
            } else {
                (flow.dst, to.daddr, to.dport)
            };
            {
                let mut ip = Ipv4Packet::new_checked(&mut frame[l3..])
                    .map_err(|_| DropReason::Ipv4Truncated)?;
                if to.reply {
                    ip.rewrite_src_addr(new);
                } else {
                    ip.rewrite_dst_addr(new);
                }
            }
            if flow.frag != Frag::Later {
                nat_transport(&mut frame[l4..end], flow.proto, to.reply, old, new, port)?;
            }
        }
        Fwd::Dr => {}
        Fwd::Tun(tun) => {
            let outer = tun.outer_len();
            // Ethernet padding stays out of the tunnel.
            if !pkt.set_len(end) || !pkt.prepend(outer) {
                return Err(DropReason::Oversize);
            }
            st.l4.ident = st.l4.ident.wrapping_add(1);
            let src = out.source_for(to.daddr);
            let sport = gue_source_port(flow);
            tun.emit(
                &mut pkt.data_mut()[ETH_LEN..],
                src,
                to.daddr,
                st.l4.ident,
                sport,
            )
            .map_err(|_| DropReason::Oversize)?;
        }
    }
    if flow.frag == Frag::First {
        // The datagram's later fragments follow this one.
        let key = (
            flow.proto,
            u32::from(flow.src),
            u32::from(flow.dst),
            flow.ident,
        );
        st.l4.remember_fragments(key, *to, st.egress.now);
    }
    let frame = pkt.data_mut();
    to_next_hop(frame, nh.port, out.mac, nh.ip, st.egress)
}

/// NAT's rewrite of a TCP or UDP header (a whole datagram's or a first
/// fragment's): the port, and the checksum patched for the port and the
/// pseudo header's address (RFC 1624); a UDP datagram without a checksum
/// keeps none, and one that sums to zero is sent as all ones (RFC 768).
pub(super) fn nat_transport(
    seg: &mut [u8],
    proto: u8,
    reply: bool,
    old: Ipv4Addr,
    new: Ipv4Addr,
    port: u16,
) -> Result<(), DropReason> {
    let csum_at = if proto == TCP { 16 } else { 6 };
    let port_at = if reply { 0 } else { 2 };
    if seg.len() < csum_at + 2 {
        return Err(DropReason::L4Truncated);
    }
    let old_port = u16::from_be_bytes([seg[port_at], seg[port_at + 1]]);
    seg[port_at..port_at + 2].copy_from_slice(&port.to_be_bytes());
    let c = u16::from_be_bytes([seg[csum_at], seg[csum_at + 1]]);
    if proto == UDP && c == 0 {
        return Ok(());
    }
    let c = checksum::update16(
        checksum::update32(c, old.into(), new.into()),
        old_port,
        port,
    );
    let c = if proto == UDP && c == 0 { 0xffff } else { c };
    seg[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// A GUE tunnel's UDP source port: one per flow, so that routers that
/// hash the outer headers keep a flow on one path (the kernel's
/// `udp_flow_src_port`, in Linux's default ephemeral range).
pub(super) fn gue_source_port(flow: &Flow) -> u16 {
    let mut h = u32::from(flow.src) ^ u32::from(flow.dst).rotate_left(16);
    h ^= (u32::from(flow.sport) << 16) | u32::from(flow.dport);
    h = h.wrapping_mul(0x9e37_79b9);
    GUE_SPORT_BASE + ((h >> 16) % GUE_SPORT_SPAN) as u16
}
