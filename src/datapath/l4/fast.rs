//! The established-connection fast path.
//!
//! Nearly every frame a director forwards belongs to a connection it
//! already holds, and has one shape: addressed to the receiving port's
//! MAC, IPv4 without options, not a fragment, TCP or UDP. [`classify`]
//! recognises that shape with one read of each header, looks the
//! connection up, and hands the packet to the same `established` step
//! (state, timer, counters, rewrite, next hop) as the general path. The
//! general path is the same work spread over the Ethernet, IPv4 and
//! layer-4 stages, each re-reading what the one before had read, for the
//! many shapes a frame can have.
//!
//! Contract: the fast path answers
//! - [`Fast::Done`] with exactly what the general path would answer for
//!   the frame, after the same changes to tables and counters;
//! - [`Fast::NoConn`] when the frame has the fast shape, passes every
//!   check of the general path up to its connection lookup, and belongs
//!   to no connection: the general path then skips that lookup (which
//!   would find nothing again, with the same effects: an expired entry
//!   the lookup met is already freed, a finished connection a new SYN
//!   reuses already removed);
//! - [`Fast::Other`] having changed nothing, for everything else.
//!
//! The harness (`datapath::harness`) holds the contract to account on
//! every frame it runs: a second engine with the fast path off sees the
//! same frames, and their outputs and counters must agree; the property
//! tests and the fuzzer run the harness.

use super::*;
use crate::wire::checksum::ipv4_header_verifies;

/// What the fast path made of a frame (see the module's contract).
pub(in crate::datapath) enum Fast {
    Done(Result<Verdict, DropReason>),
    NoConn,
    Other,
}

/// The fast path for a frame received on `port`.
#[inline]
pub(in crate::datapath) fn classify(
    pkt: &mut Packet<'_>,
    port: usize,
    host: &Host,
    services: &ServiceTable,
    st: &mut State,
) -> Fast {
    let Some(me) = host.ports.get(port) else {
        return Fast::Other;
    };
    let f = pkt.data();
    // What the general path's Ethernet stage would pass on to IPv4 (not
    // broadcast, not oversize), with a 20-byte IPv4 header.
    if f.len() < ETH_LEN + 20
        || f.len() > ETH_LEN + me.mtu as usize
        || f[0..6] != me.mac.0
        || f[12..14] != [0x08, 0x00]
        || f[14] != 0x45
    {
        return Fast::Other;
    }
    let ip = &f[ETH_LEN..];
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    let proto = ip[9];
    // Whole datagrams (no MF, offset 0) of TCP or UDP.
    if total < 20 || total > ip.len() || frag & 0x3fff != 0 || (proto != TCP && proto != UDP) {
        return Fast::Other;
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
        return Fast::Other;
    }
    // The layer-4 header as `forward` checks it (`TcpPacket`/`UdpPacket`
    // `new_checked` on the segment the total length bounds).
    let seg = &ip[20..total];
    let flags = if proto == TCP {
        let doff = seg.get(12).map_or(0, |b| usize::from(b >> 4) * 4);
        if seg.len() < 20 || doff < 20 || doff > seg.len() {
            return Fast::Other;
        }
        seg[13]
    } else {
        let len = seg
            .get(4..6)
            .map_or(0, |l| usize::from(u16::from_be_bytes([l[0], l[1]])));
        if seg.len() < 8 || len < 8 || len > seg.len() {
            return Fast::Other;
        }
        0
    };
    if st.l4.conns.is_empty() && services.is_empty() {
        // The general path leaves such frames to the host duties.
        return Fast::Other;
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
    match find(&flow, services, st) {
        Some(f) => Fast::Done(established(
            pkt, f.slot, f.reply, &flow, total, host, services, st,
        )),
        None => Fast::NoConn,
    }
}
