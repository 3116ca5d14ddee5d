//! The fast path for whole TCP and UDP datagrams.
//!
//! Nearly every frame a director forwards belongs to a connection it
//! already holds, and has one shape: addressed to the receiving port's
//! MAC, IPv4 without options, not a fragment, TCP or UDP. [`forward`]
//! recognises that shape with one read of each header, looks the
//! connection up, and hands the packet to the same `established` step
//! (state, timer, counters, rewrite, next hop) as the general path. The
//! general path is the same work spread over the Ethernet, IPv4 and
//! layer-4 stages, each re-reading what the one before had read, for the
//! many shapes a frame can have.
//!
//! A frame of that shape that belongs to no connection goes on to the
//! general path's later steps from here (`new_flow`: a virtual service's
//! is scheduled; then the host duties' verdict on a TCP or UDP datagram,
//! `Host::unswitched`), without being read again.
//!
//! Contract: the fast path answers
//! - `Some` with exactly what the general path would answer for the
//!   frame, after the same changes to tables and counters;
//! - `None` having changed nothing, for every frame of another shape.
//!
//! The harness (`datapath::harness`) holds the contract to account on
//! every frame it runs: a second engine with the fast path off sees the
//! same frames, and their outputs and counters must agree; the property
//! tests and the fuzzer run the harness.

use super::*;
use crate::datapath::packet::Csum;
use crate::wire::checksum::ipv4_header_verifies;

/// The fast path for a frame received on `port`.
#[inline]
pub(in crate::datapath) fn forward(
    pkt: &mut Packet<'_>,
    port: usize,
    host: &Host,
    services: &ServiceTable,
    st: &mut L4State<'_>,
) -> Option<Result<Verdict, DropReason>> {
    let me = host.ports.get(port)?;
    let f = pkt.data();
    // What the general path's Ethernet stage would pass on to IPv4 (not
    // broadcast, not oversize), with a 20-byte IPv4 header.
    if f.len() < ETH_LEN + 20
        || f.len() > ETH_LEN + me.mtu as usize
        || f[0..6] != me.mac.0
        || f[12..14] != [0x08, 0x00]
        || f[14] != 0x45
    {
        return None;
    }
    let ip = &f[ETH_LEN..];
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    let proto = ip[9];
    // Whole datagrams (no MF, offset 0) of TCP or UDP, to a unicast
    // address: multicast (VRRP's and sync's groups), the reserved class E
    // and the limited broadcast (224.0.0.0 and above) are the general
    // path's (a directed broadcast is, below, once no connection has it).
    if total < 20
        || total > ip.len()
        || frag & 0x3fff != 0
        || (proto != TCP && proto != UDP)
        || ip[16] >= 224
    {
        return None;
    }
    let bad = match pkt.meta().ip_csum {
        Csum::Good => false,
        Csum::Bad => true,
        Csum::Unknown => match ip.first_chunk::<20>() {
            Some(h) => !ipv4_header_verifies(h),
            None => true,
        },
    };
    if bad {
        return None;
    }
    // The layer-4 header as the general path's `l4::forward` checks it
    // (`TcpPacket`/`UdpPacket` `new_checked` on the segment the total
    // length bounds).
    let seg = &ip[20..total];
    let flags = if proto == TCP {
        let doff = seg.get(12).map_or(0, |b| usize::from(b >> 4) * 4);
        if seg.len() < 20 || doff < 20 || doff > seg.len() {
            return None;
        }
        seg[13]
    } else {
        let len = seg
            .get(4..6)
            .map_or(0, |l| usize::from(u16::from_be_bytes([l[0], l[1]])));
        if seg.len() < 8 || len < 8 || len > seg.len() {
            return None;
        }
        0
    };
    if st.l4.conns.is_empty() && services.is_empty() {
        // The general path leaves such frames to the host duties.
        return None;
    }
    let flow = Flow {
        proto,
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        sport: u16::from_be_bytes([seg[0], seg[1]]),
        dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        dport: u16::from_be_bytes([seg[2], seg[3]]),
        flags,
        dont_frag: frag & 0x4000 != 0,
        ident: u16::from_be_bytes([ip[4], ip[5]]),
        frag: Frag::Whole,
    };
    if host.standby(flow.dst) {
        return Some(Err(DropReason::VrrpBackup));
    }
    if let Some(r) = connection(pkt, &flow, total, host, services, st) {
        return Some(r);
    }
    // A connected subnet's directed broadcast is the general path's too.
    // Checked only once no connection holds the frame: a connection found
    // is handled by both paths alike (the general path looks it up first
    // too), and established traffic is spared the check.
    if host.is_directed_broadcast(flow.dst) {
        return None;
    }
    Some(match new_flow(pkt, &flow, total, host, services, st) {
        Some(r) => r,
        None => Err(host.unswitched(flow.src, flow.dst)),
    })
}
