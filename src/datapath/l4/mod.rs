//! Layer-4 switching: IPVS's part of the pipeline. This file classifies
//! and keeps connections moving; `schedule` makes new ones, `xmit` sends,
//! `icmp` relays and builds ICMP errors; `fast` takes the common shape of
//! frame (a whole TCP or UDP datagram to the port's MAC, no IP options)
//! through the same steps after one read of its headers.
//!
//! For a TCP or UDP packet the pipeline asks [`forward`] first; it answers
//! `None` when the packet is neither a known connection's nor a virtual
//! service's (the host duties then take it). Otherwise, in IPVS's order
//! (net/netfilter/ipvs/ip_vs_core.c `ip_vs_in`, `ip_vs_out`):
//!
//! 1. A connection found by the packet's tuple, inbound (client to virtual
//!    service) or outbound (a NAT real server's reply), is forwarded with
//!    the connection's method after its state moves (TCP: IPVS's table,
//!    `conn::tcp_state`) and its timer restarts.
//! 2. Else the virtual service of (protocol, address, port) or mark
//!    (`ServiceTable::lookup`) schedules it: TCP only on a SYN without RST
//!    unless `[conn] sloppy` (ip_vs_proto_tcp.c `tcp_conn_schedule`);
//!    persistence through a template (ip_vs_core.c `ip_vs_sched_persist`);
//!    the new connection counted inactive at its real server
//!    (ip_vs_conn.c `ip_vs_bind_dest`). UDP services with `-o` keep no
//!    connection: each datagram is scheduled on its own.
//! 3. Forwarding: NAT rewrites the destination to the real server (and a
//!    reply's source back to the virtual service) with incremental
//!    checksums; DR changes only the Ethernet header; TUN puts the packet
//!    in an ipip, GUE or GRE tunnel from the director's address on the
//!    egress port. The next hop comes from the route table and the
//!    neighbour table, as for the director's own replies.
//!
//! Fragments are not reassembled: a datagram's first fragment (it has the
//! ports) is switched like a whole packet, and its later fragments follow
//! it to the same place for 30 s (NAT rewrites their addresses only); a
//! later fragment whose first has not been seen is dropped
//! (`l4_fragment`). Packets to a virtual address that match no service,
//! TCP segments without a connection, and a full table are counted under
//! their own drop reasons; when no real server is available the client
//! gets ICMP port unreachable.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use hashbrown::HashMap;

use super::egress::{to_next_hop, Egress};
use super::host::Host;
use super::packet::Packet;
use super::stats::DestStats;
use super::verdict::Verdict;
use super::DropReason;
use crate::config::ConnConfig;
use crate::conn::sync;
use crate::conn::table::{Conn, ConnKey, ConnState, ConnTable, Found, Fwd, KeyKind, Slot, NO_SLOT};
use crate::conn::tcp_state::{self, Direction, TcpState};
use crate::datapath::sync::SyncTx;
use crate::sched::{self, SchedState};
use crate::service::rules::{Method, ServiceKey};
use crate::service::table::{Service, ServiceTable};
use crate::wire::checksum;
use crate::wire::ethernet::HEADER_LEN as ETH_LEN;
use crate::wire::{IcmpRepr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket, UdpPacket};

pub(super) mod fast;
mod icmp;
mod schedule;
mod xmit;

use icmp::{icmp_error, icmp_relay};
use schedule::{schedule, Scheduled};
use xmit::send;

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
/// Connection slots checked per timer run: a full turn of a 1M-entry
/// table every 4096 runs (~0.4 s at one run per 100 µs).
const EXPIRE_BUDGET: usize = 256;

/// One lcore's layer-4 state.
#[derive(Debug)]
pub struct L4 {
    pub(crate) conns: ConnTable,
    /// Each service's scheduler state, by index in the snapshot.
    sched: Vec<SchedState>,
    /// The next outer IPv4 identification for tunnels.
    ident: u16,
    /// Traffic by real server id.
    pub(crate) stats: Vec<DestStats>,
    /// Where the first fragment of each recent datagram went, so that its
    /// later fragments follow (no reassembly: each fragment is forwarded
    /// as it comes); bounded, oldest first out.
    frags: HashMap<FragKey, FragEntry, foldhash::fast::RandomState>,
    frag_order: VecDeque<FragKey>,
    /// The inbound key and its hash of each frame of the burst being
    /// processed, in order (see [`L4::prepare`]); read in place (copied
    /// out per frame, the copy stalled on store forwarding).
    hints: [Option<(ConnKey, u64)>; HINTS],
    hints_len: usize,
    /// The frame after the current one, in `hints`.
    hint_next: usize,
    /// Sync sending (`datapath::sync`), and whether it is on now (the
    /// director is the sync master): one flag read per inbound packet.
    pub(crate) sync: Option<SyncTx>,
    pub(crate) sync_on: bool,
    /// A sync message is full and waits for the engine to send it.
    pub(crate) sync_full: bool,
}

/// What layer 4 works on for one frame: its own state, and the neighbour
/// side its frames leave through (borrowed apart from the pipeline's
/// other state, which layer 4 never touches).
pub(in crate::datapath) struct L4State<'a> {
    pub(in crate::datapath) l4: &'a mut L4,
    pub(in crate::datapath) egress: &'a mut Egress,
}

/// Frames of a burst whose keys are hashed ahead (DPDK's burst size).
const HINTS: usize = 32;

/// How many frames ahead of the one processed its entry is prefetched.
const ENTRY_AHEAD: usize = 4;

/// (protocol, source, destination, identification): one datagram's
/// fragments (RFC 791).
type FragKey = (u8, u32, u32, u16);

#[derive(Debug, Clone, Copy)]
struct FragEntry {
    to: Target,
    expires: u64,
}

/// Datagrams whose fragments are followed at once, per lcore.
const FRAG_MAX: usize = 4096;
/// How long a datagram's fragments are followed: Linux's ipfrag_time.
const FRAG_TIMEOUT_US: u64 = 30_000_000;

impl L4 {
    pub fn new(conn: &ConnConfig, services: &ServiceTable, seed: u64) -> L4 {
        L4 {
            conns: ConnTable::new(conn.capacity),
            sched: services
                .services()
                .iter()
                .enumerate()
                .map(|(i, s)| s.sched.new_state(seed.wrapping_add(i as u64)))
                .collect(),
            ident: (seed as u16) | 1,
            stats: vec![DestStats::default(); services.dest_id_bound()],
            frags: HashMap::with_capacity_and_hasher(FRAG_MAX, Default::default()),
            frag_order: VecDeque::with_capacity(FRAG_MAX),
            hints: [None; HINTS],
            hints_len: 0,
            hint_next: 0,
            sync: None,
            sync_on: false,
            sync_full: false,
        }
    }

    /// Before a burst is processed: hashes each frame's inbound key and
    /// starts loading its index bucket, then (the buckets arriving) the
    /// entry it most likely leads to, so that the burst's lookups wait on
    /// memory together rather than one after another. `frames` come in
    /// the order they will be processed; [`L4::next_frame`] then steps
    /// through them. Only hints: `forward` uses a hash only for the very
    /// key it was computed from.
    pub(crate) fn prepare<'f>(&mut self, frames: impl Iterator<Item = &'f [u8]>) {
        self.hints_len = 0;
        self.hint_next = 0;
        for f in frames.take(HINTS) {
            self.hints[self.hints_len] = inbound_key(f).map(|k| {
                let h = self.conns.hash(&k);
                self.conns.prefetch_index(h);
                (k, h)
            });
            self.hints_len += 1;
        }
        for &(_, h) in self.hints[..self.hints_len.min(ENTRY_AHEAD)]
            .iter()
            .flatten()
        {
            self.conns.prefetch_entry(h);
        }
    }

    /// Moves to the next frame of the prepared burst (every frame, whatever
    /// becomes of it); past the burst there is no hint.
    #[inline]
    pub(crate) fn next_frame(&mut self) {
        // The entry of the frame ENTRY_AHEAD on: its bucket came in long
        // ago, and it has that many frames' time to arrive.
        if let Some(Some((_, h))) = self.hints[..self.hints_len].get(self.hint_next + ENTRY_AHEAD) {
            self.conns.prefetch_entry(*h);
        }
        self.hint_next += 1;
    }

    /// The current frame's hint: its inbound key and that key's hash.
    #[inline(always)]
    fn hint(&self) -> Option<&(ConnKey, u64)> {
        self.hints[..self.hints_len]
            .get(self.hint_next.wrapping_sub(1))?
            .as_ref()
    }

    /// Notes where a datagram's first fragment went. The map and the
    /// order hold the same keys: only this, oldest first, removes them.
    fn remember_fragments(&mut self, key: FragKey, to: Target, now: u64) {
        let e = FragEntry {
            to,
            expires: now.saturating_add(FRAG_TIMEOUT_US),
        };
        if let Some(old) = self.frags.get_mut(&key) {
            *old = e;
            return;
        }
        if self.frags.len() >= FRAG_MAX {
            if let Some(oldest) = self.frag_order.pop_front() {
                self.frags.remove(&oldest);
            }
        }
        self.frags.insert(key, e);
        self.frag_order.push_back(key);
    }

    /// Where a later fragment goes, and its real server's id (an expired
    /// entry answers nothing and waits for its turn to go).
    fn frag_target(&self, key: &FragKey, now: u64) -> Option<(Target, u32)> {
        let e = self.frags.get(key)?;
        (e.expires > now).then_some((e.to, e.to.dest))
    }

    /// Moves to a new snapshot of the services: each service keeps its
    /// scheduler state if it is still there under the same id and
    /// scheduler (adapted to its new servers, the kernel's add/del/upd
    /// hooks), else starts afresh; connections keep their real servers'
    /// ids, whose counters the new snapshot still holds (departed ones
    /// too).
    pub fn set_services(&mut self, old: &ServiceTable, new: &ServiceTable, seed: u64) {
        let mut kept: Vec<Option<SchedState>> = std::mem::take(&mut self.sched)
            .into_iter()
            .map(Some)
            .collect();
        self.sched = new
            .services()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let same = old
                    .services()
                    .iter()
                    .position(|o| o.id == s.id && o.sched.name() == s.sched.name());
                match same.and_then(|j| kept.get_mut(j)?.take()) {
                    Some(mut st) => {
                        s.sched.refresh_state(&mut st, &s.dests);
                        st
                    }
                    None => s.sched.new_state(seed.wrapping_add(i as u64)),
                }
            })
            .collect();
        let bound = new.dest_id_bound();
        if self.stats.len() < bound {
            self.stats.resize(bound, DestStats::default());
        }
    }

    /// Timer work: a bounded sweep for expired connections (uncounted at
    /// their real servers) and the schedulers' housekeeping.
    pub fn tick(&mut self, services: &ServiceTable, now: u64) {
        self.conns.expire(now, EXPIRE_BUDGET, |c| {
            services.unbind(c.dest, c.template, c.inactive)
        });
        for (s, st) in services.services().iter().zip(self.sched.iter_mut()) {
            s.sched.tick(st, now);
        }
    }
}

/// What the packet says, read once.
#[derive(Debug, Clone, Copy)]
struct Flow {
    proto: u8,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    /// TCP flags (0 for UDP).
    flags: u8,
    dont_frag: bool,
    /// The IPv4 identification (fragments of one datagram share it).
    ident: u16,
    frag: Frag,
}

/// Where a packet stands in fragmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frag {
    /// A whole datagram.
    Whole,
    /// The first fragment: it has the transport header.
    First,
    /// A later fragment: no transport header.
    Later,
}

/// The inbound key `forward` looks up first for a frame (an untagged IPv4
/// TCP or UDP datagram or first fragment), read with no checks but bounds:
/// a hint for [`L4::prepare`], compared with the real key before use.
fn inbound_key(f: &[u8]) -> Option<ConnKey> {
    let ip = f.get(ETH_LEN..ETH_LEN + 20)?;
    if f[12..14] != [0x08, 0x00] || u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0 {
        return None;
    }
    let proto = ip[9];
    if proto != TCP && proto != UDP {
        return None;
    }
    let l4 = ETH_LEN + usize::from(ip[0] & 0x0f) * 4;
    let ports = f.get(l4..l4 + 4)?;
    Some(ConnKey::new(
        KeyKind::In,
        proto,
        Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        u16::from_be_bytes([ports[0], ports[1]]),
        Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        u16::from_be_bytes([ports[2], ports[3]]),
    ))
}

/// Handles a TCP or UDP packet that is a connection's or a virtual
/// service's; `None` leaves it to the host duties.
pub(super) fn forward(
    pkt: &mut Packet<'_>,
    hlen: usize,
    total: usize,
    host: &Host,
    services: &ServiceTable,
    st: &mut L4State<'_>,
) -> Option<Result<Verdict, DropReason>> {
    let (l3, l4) = (ETH_LEN, ETH_LEN + hlen);
    let end = l3 + total;
    let frame = pkt.data();
    let ip = Ipv4Packet::new_checked(&frame[l3..]).ok()?;
    let proto = ip.protocol().0;
    if proto == ICMP {
        return icmp_relay(pkt, hlen, total, host, services, st);
    }
    if proto != TCP && proto != UDP {
        return None;
    }
    let (src, dst, dont_frag) = (ip.src_addr(), ip.dst_addr(), ip.dont_frag());
    let ours = |r: DropReason| services.is_virtual(dst).then_some(Err(r));
    if st.l4.conns.is_empty() && services.is_empty() {
        return None;
    }
    let frag = match (ip.frag_offset(), ip.more_frags()) {
        (0, false) => Frag::Whole,
        (0, true) => Frag::First,
        _ => Frag::Later,
    };
    let ident = ip.ident();
    if frag == Frag::Later {
        // Where its datagram's first fragment went, if it went.
        let key = (proto, u32::from(src), u32::from(dst), ident);
        return match st.l4.frag_target(&key, st.egress.now) {
            Some((to, dest)) => {
                let flow = Flow {
                    proto,
                    src,
                    sport: 0,
                    dst,
                    dport: 0,
                    flags: 0,
                    dont_frag: false,
                    ident,
                    frag,
                };
                count(st, dest, to.reply, total);
                Some(send(pkt, &to, &flow, total, host, st))
            }
            None => ours(DropReason::L4Fragment),
        };
    }
    let seg = &frame[l4..end];
    // A first fragment holds at least the ports and, for TCP, the flags
    // (RFC 791 lets it be as short as 8 bytes; fragments smaller than a
    // TCP header are a known attack and refused).
    let (sport, dport, flags) = match (proto, frag) {
        (TCP, Frag::Whole) => match TcpPacket::new_checked(seg) {
            Ok(t) => (t.src_port(), t.dst_port(), t.flags().0),
            Err(_) => return ours(DropReason::L4Truncated),
        },
        (UDP, Frag::Whole) => match UdpPacket::new_checked(seg) {
            Ok(u) => (u.src_port(), u.dst_port(), 0),
            Err(_) => return ours(DropReason::L4Truncated),
        },
        _ if seg.len() >= if proto == TCP { 20 } else { 8 } => (
            u16::from_be_bytes([seg[0], seg[1]]),
            u16::from_be_bytes([seg[2], seg[3]]),
            if proto == TCP { seg[13] } else { 0 },
        ),
        _ => return ours(DropReason::L4Truncated),
    };
    let flow = Flow {
        proto,
        src,
        sport,
        dst,
        dport,
        flags,
        dont_frag,
        ident,
        frag,
    };

    // 1. A connection, either direction.
    if let Some(r) = connection(pkt, &flow, total, host, services, st) {
        return Some(r);
    }
    new_flow(pkt, &flow, total, host, services, st)
}

/// Steps 2 and 3 for a packet of no connection: a virtual service's is
/// scheduled and forwarded; `None` leaves any other to the host duties.
fn new_flow(
    pkt: &mut Packet<'_>,
    flow: &Flow,
    total: usize,
    host: &Host,
    services: &ServiceTable,
    st: &mut L4State<'_>,
) -> Option<Result<Verdict, DropReason>> {
    let &Flow {
        proto,
        src,
        dst,
        dport,
        flags,
        ..
    } = flow;
    let ours = |r: DropReason| services.is_virtual(dst).then_some(Err(r));
    // 2. A virtual service.
    let Some((si, svc)) = services.lookup(proto, dst, dport) else {
        return ours(DropReason::NoService);
    };
    if host.is_martian_source(src) {
        return Some(Err(DropReason::Ipv4MartianSource));
    }
    if proto == TCP && (flags & 0x02 == 0 || flags & 0x04 != 0) && !services.conn_flags().sloppy {
        return Some(Err(DropReason::TcpNoConn));
    }
    let slot = match schedule(si, svc, flow, services, st) {
        Ok(s) => s,
        // No real server: IPVS answers ICMP port unreachable from the
        // virtual address (ip_vs_core.c `ip_vs_leave`); counted as a
        // reply, or dropped as no_dest if the answer cannot go.
        Err(DropReason::NoDest) => {
            return Some(
                icmp_error(pkt, flow, IcmpRepr::port_unreachable(), host, st)
                    .or(Err(DropReason::NoDest)),
            )
        }
        Err(r) => return Some(Err(r)),
    };
    match slot {
        Scheduled::Conn(slot) => Some(established(
            pkt, slot, false, flow, total, host, services, st,
        )),
        Scheduled::OnePacket { dest, port } => {
            let d = &svc.dests[dest];
            let (fwd, daddr) = (Fwd::of(d.method), d.addr);
            let to = Target {
                dest: d.id,
                fwd,
                reply: false,
                vaddr: dst,
                vport: dport,
                daddr,
                dport: if port == 0 { dport } else { port },
            };
            let id = d.id;
            count(st, id, false, total);
            let r = send(pkt, &to, flow, total, host, st);
            services.unbind(id, false, true);
            Some(r)
        }
    }
}

/// Step 1 of both paths: a packet of a connection (either direction),
/// forwarded, or dropped as `find` says; `None` for a packet of none.
#[inline(always)]
fn connection(
    pkt: &mut Packet<'_>,
    flow: &Flow,
    total: usize,
    host: &Host,
    services: &ServiceTable,
    st: &mut L4State<'_>,
) -> Option<Result<Verdict, DropReason>> {
    match find(flow, services, st) {
        Ok(Some(f)) => Some(established(
            pkt, f.slot, f.reply, flow, total, host, services, st,
        )),
        Ok(None) => None,
        Err(r) => Some(Err(r)),
    }
}

/// The connection a packet belongs to, either direction. A new SYN on a
/// finished connection's tuple (a client reusing its port) finds none:
/// the old entry goes now and the SYN is scheduled afresh, as IPVS does
/// with its default conn_reuse_mode (ip_vs_core.c `is_new_conn_expected`).
/// `Ok(None)` for a packet to schedule as new; an error for one to drop.
// Always inlined: its callers build `flow` field by field just before,
// and reading it back through memory as whole words stalled on store
// forwarding (perf: half of this function's time on the first load).
#[inline(always)]
fn find(
    flow: &Flow,
    services: &ServiceTable,
    st: &mut L4State<'_>,
) -> Result<Option<Found>, DropReason> {
    let now = st.egress.now;
    for kind in [KeyKind::In, KeyKind::Out] {
        let key = ConnKey::new(kind, flow.proto, flow.src, flow.sport, flow.dst, flow.dport);
        let h = match st.l4.hint() {
            Some(&(k, h)) if k == key => h,
            _ => st.l4.conns.hash(&key),
        };
        let found = st.l4.conns.lookup_hashed(&key, h, now, |c| {
            services.unbind(c.dest, c.template, c.inactive)
        });
        if let Some(f) = found {
            if !f.reply && reuses(st.l4.conns.get(f.slot), flow) {
                if let Some(c) = st.l4.conns.remove(f.slot) {
                    services.unbind(c.dest, false, c.inactive);
                }
                return Ok(None);
            }
            if !f.reply && services.has_departed() {
                return unavailable(f, services, st);
            }
            return Ok(Some(f));
        }
    }
    Ok(None)
}

/// A client's packet of a connection whose real server may have been
/// removed (the table has departed servers). As ip_vs_core.c
/// `ip_vs_in_hook` does for a dest no longer AVAILABLE: the packet is
/// dropped and the connection left to expire on its timer (it goes on if
/// the server is added back, under the same id); with
/// `expire_nodest_conn` the connection ends now and the packet is taken
/// as a new one (a SYN is scheduled afresh). A NAT reply is not checked,
/// as the kernel's `ip_vs_out_hook` does not.
#[cold]
fn unavailable(
    f: Found,
    services: &ServiceTable,
    st: &mut L4State<'_>,
) -> Result<Option<Found>, DropReason> {
    let gone = st
        .l4
        .conns
        .get(f.slot)
        .is_some_and(|c| services.dest(c.dest).is_none());
    if !gone {
        return Ok(Some(f));
    }
    if !services.conn_flags().expire_nodest_conn {
        return Err(DropReason::DestUnavailable);
    }
    if let Some(c) = st.l4.conns.remove(f.slot) {
        services.unbind(c.dest, false, c.inactive);
    }
    Ok(None)
}

/// Whether a packet is a new connection's SYN that the finished
/// connection `c` (TIME_WAIT or CLOSE, not held by a persistence template)
/// should give way to.
fn reuses(c: Option<&Conn>, flow: &Flow) -> bool {
    const SYN_ACK_FIN_RST: u8 = 0x02 | 0x10 | 0x01 | 0x04;
    let new_syn = flow.proto == TCP && flow.flags & SYN_ACK_FIN_RST == 0x02;
    new_syn
        && c.is_some_and(|c| {
            c.control == NO_SLOT
                && matches!(
                    c.state,
                    ConnState::Tcp(TcpState::TimeWait | TcpState::Close)
                )
        })
}

/// Counts a packet of real server `dest` (a reply: out).
#[inline]
fn count(st: &mut L4State<'_>, dest: u32, reply: bool, bytes: usize) {
    if let Some(d) = st.l4.stats.get_mut(dest as usize) {
        if reply {
            d.out_packets += 1;
            d.out_bytes += bytes as u64;
        } else {
            d.in_packets += 1;
            d.in_bytes += bytes as u64;
        }
    }
}

/// Where and how a packet goes.
#[derive(Debug, Clone, Copy)]
struct Target {
    /// The real server's id (for its counters).
    dest: u32,
    fwd: Fwd,
    /// A NAT reply (real server to client).
    reply: bool,
    vaddr: Ipv4Addr,
    vport: u16,
    daddr: Ipv4Addr,
    dport: u16,
}

/// Moves a connection's state on for this packet, restarts its timer, and
/// forwards the packet.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn established(
    pkt: &mut Packet<'_>,
    slot: Slot,
    reply: bool,
    flow: &Flow,
    total: usize,
    host: &Host,
    services: &ServiceTable,
    st: &mut L4State<'_>,
) -> Result<Verdict, DropReason> {
    let now = st.egress.now;
    let Some(c) = st.l4.conns.get_mut(slot) else {
        return Err(DropReason::NoDest);
    };
    if reply {
        c.no_output = false;
    }
    let timeout = match c.state {
        ConnState::Tcp(old) => {
            let dir = if reply {
                Direction::Output
            } else if c.no_output {
                Direction::InputOnly
            } else {
                Direction::Input
            };
            let new = tcp_state::next(old, dir, flow.flags);
            if new.is_active() != old.is_active() {
                services.set_active(c.dest, new.is_active());
                c.inactive = !new.is_active();
            }
            c.state = ConnState::Tcp(new);
            services.timeouts().tcp_us(new)
        }
        ConnState::Normal => services.timeouts().udp_us(),
    };
    let to = Target {
        dest: c.dest,
        fwd: c.fwd,
        reply,
        vaddr: c.vaddr,
        vport: c.vport,
        daddr: c.daddr,
        dport: c.dport,
    };
    let client = (c.caddr, c.cport);
    let dest = c.dest;
    st.l4.conns.touch(slot, timeout, now);
    if !reply && st.l4.sync_on {
        sync_out(st, slot, services);
    }
    count(st, dest, reply, total);
    if reply {
        debug_assert_eq!((flow.dst, flow.dport), client);
    }
    send(pkt, &to, flow, total, host, st)
}

/// A sync master's inbound packet of a connection: counted, and the
/// connection (and its template) queued for the backups when due
/// (`conn::sync`).
#[inline(never)]
fn sync_out(st: &mut L4State<'_>, slot: Slot, services: &ServiceTable) {
    let now = st.egress.now;
    let (Some(tx), Some(c)) = (st.l4.sync.as_mut(), st.l4.conns.get_mut(slot)) else {
        return;
    };
    let fwmark = match services.dest(c.dest) {
        Some((s, _)) => match s.key {
            ServiceKey::Fwmark(m) => m,
            ServiceKey::Addr { .. } => 0,
        },
        None => 0,
    };
    if sync::on_inbound(c, tx.rules) {
        tx.push(&sync::to_wire(c, fwmark), now);
    }
    let control = c.control;
    if let Some(t) = st.l4.conns.get_mut(control) {
        if sync::template_needed(t, tx.rules) {
            tx.push(&sync::to_wire(t, fwmark), now);
        }
    }
    st.l4.sync_full = tx.has_full();
}

fn ip_header_len(frame: &[u8]) -> usize {
    frame.get(ETH_LEN).map_or(20, |b| usize::from(b & 0x0f) * 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 frame: `ihl` words of header, then `l4`.
    fn frame(ethertype: [u8; 2], proto: u8, ihl: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype);
        let mut ip = vec![0u8; usize::from(ihl) * 4];
        ip[0] = 0x40 | ihl;
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[9] = proto;
        ip[12..16].copy_from_slice(&[198, 51, 100, 7]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 100]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        f
    }

    const PORTS: [u8; 4] = [0x9c, 0x40, 0x00, 0x50]; // 40000 -> 80
    const IPV4: [u8; 2] = [0x08, 0x00];

    fn key(proto: u8) -> ConnKey {
        ConnKey::new(
            KeyKind::In,
            proto,
            Ipv4Addr::new(198, 51, 100, 7),
            40000,
            Ipv4Addr::new(10, 0, 0, 100),
            80,
        )
    }

    /// The hint's key is the one `forward` builds first, or none.
    #[test]
    fn inbound_keys_are_read_as_forward_reads_them() {
        let tcp = frame(IPV4, TCP, 5, 0, &PORTS);
        assert_eq!(inbound_key(&tcp), Some(key(TCP)));
        assert_eq!(inbound_key(&frame(IPV4, UDP, 5, 0, &PORTS)), Some(key(UDP)));
        // IP options: the ports come after them.
        assert_eq!(inbound_key(&frame(IPV4, TCP, 7, 0, &PORTS)), Some(key(TCP)));
        // A first fragment (MF, offset 0) has ports; a later one has none.
        assert_eq!(
            inbound_key(&frame(IPV4, TCP, 5, 0x2000, &PORTS)),
            Some(key(TCP))
        );
        assert_eq!(inbound_key(&frame(IPV4, TCP, 5, 0x0001, &PORTS)), None);
        assert_eq!(inbound_key(&frame(IPV4, ICMP, 5, 0, &PORTS)), None);
        assert_eq!(inbound_key(&frame([0x08, 0x06], TCP, 5, 0, &PORTS)), None);
        assert_eq!(inbound_key(&tcp[..tcp.len() - 1]), None, "truncated ports");
        assert_eq!(inbound_key(&tcp[..20]), None, "truncated header");
    }

    /// `next_frame` steps through the prepared burst in order, each hint
    /// carrying its key's table hash, and gives none past its end.
    #[test]
    fn hints_follow_the_burst() {
        let conn = ConnConfig {
            capacity: 64,
            ..ConnConfig::default()
        };
        let mut l4 = L4::new(&conn, &ServiceTable::default(), 1);
        let (tcp, arp, udp) = (
            frame(IPV4, TCP, 5, 0, &PORTS),
            frame([0x08, 0x06], TCP, 5, 0, &PORTS),
            frame(IPV4, UDP, 5, 0, &PORTS),
        );
        l4.prepare([&tcp[..], &arp[..], &udp[..]].into_iter());
        let mut seen = Vec::new();
        for _ in 0..4 {
            l4.next_frame();
            seen.push(l4.hint().copied());
        }
        let with_hash = |k: ConnKey| Some((k, l4.conns.hash(&k)));
        assert_eq!(
            seen,
            vec![with_hash(key(TCP)), None, with_hash(key(UDP)), None]
        );
        // A burst bigger than the hints: the rest go without.
        let many = vec![&tcp[..]; HINTS + 3];
        l4.prepare(many.into_iter());
        for i in 0..HINTS + 3 {
            l4.next_frame();
            assert_eq!(l4.hint().is_some(), i < HINTS, "frame {i}");
        }
    }
}
