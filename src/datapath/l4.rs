//! Layer-4 switching: IPVS's part of the pipeline.
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

use super::host::Host;
use super::packet::Packet;
use super::pipeline::{resolve, State, Verdict};
use super::stats::DestStats;
use super::DropReason;
use crate::config::ConnConfig;
use crate::conn::table::{Conn, ConnKey, ConnState, ConnTable, Fwd, KeyKind, Slot, NO_SLOT};
use crate::conn::tcp_state::{self, Direction, TcpState};
use crate::sched::{self, SchedState};
use crate::service::rules::{Method, ServiceKey, TunCsum, TunKind};
use crate::service::table::{Service, ServiceTable};
use crate::wire::checksum;
use crate::wire::ethernet::HEADER_LEN as ETH_LEN;
use crate::wire::tunnel::Tunnel;
use crate::wire::{
    EtherType, EthernetRepr, IcmpRepr, IpProtocol, Ipv4Packet, Ipv4Repr, MacAddr, TcpPacket,
    UdpPacket,
};

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
/// IPVS's UDP timeout (ip_vs_proto_udp.c), in µs.
const UDP_TIMEOUT_US: u64 = 300_000_000;
/// Connection slots checked per timer run: a full turn of a 1M-entry
/// table every 4096 runs (~0.4 s at one run per 100 µs).
const EXPIRE_BUDGET: usize = 256;
/// The FTP control port: IPVS keeps the port out of templates for it.
const FTP_PORT: u16 = 21;
/// The source ports of GUE tunnels: Linux's default ephemeral range
/// (`udp_flow_src_port` picks in `ip_local_port_range`).
const GUE_SPORT_BASE: u16 = 32768;
const GUE_SPORT_SPAN: u32 = 28232;

/// One lcore's layer-4 state.
#[derive(Debug)]
pub struct L4 {
    pub(crate) conns: ConnTable,
    /// Each service's scheduler state, by index in the snapshot.
    sched: Vec<SchedState>,
    /// The next outer IPv4 identification for tunnels.
    ident: u16,
    sloppy: bool,
    /// Traffic by real server id.
    pub(crate) stats: Vec<DestStats>,
    /// Where the first fragment of each recent datagram went, so that its
    /// later fragments follow (no reassembly: each fragment is forwarded
    /// as it comes); bounded, oldest first out.
    frags: HashMap<FragKey, FragEntry, foldhash::fast::RandomState>,
    frag_order: VecDeque<FragKey>,
}

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
            sloppy: conn.sloppy,
            stats: vec![DestStats::default(); services.dest_id_bound()],
            frags: HashMap::with_capacity_and_hasher(FRAG_MAX, Default::default()),
            frag_order: VecDeque::with_capacity(FRAG_MAX),
        }
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

/// The tunnel of a TUN real server.
fn tunnel(method: Method) -> Option<Tunnel> {
    match method {
        Method::Tun(t) => Some(match t.kind {
            TunKind::Ipip => Tunnel::Ipip,
            TunKind::Gue => Tunnel::Gue {
                port: t.port,
                csum: t.csum != TunCsum::NoCsum,
            },
            TunKind::Gre => Tunnel::Gre {
                csum: t.csum == TunCsum::Csum,
            },
        }),
        _ => None,
    }
}

fn fwd(method: Method) -> Fwd {
    match method {
        Method::Nat => Fwd::Nat,
        Method::Dr => Fwd::Dr,
        Method::Tun(_) => Fwd::Tun(tunnel(method).unwrap_or(Tunnel::Ipip)),
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

/// Handles a TCP or UDP packet that is a connection's or a virtual
/// service's; `None` leaves it to the host duties.
pub(super) fn forward(
    pkt: &mut Packet<'_>,
    hlen: usize,
    total: usize,
    host: &Host,
    services: &ServiceTable,
    st: &mut State,
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
        return match st.l4.frag_target(&key, st.now) {
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
    let now = st.now;

    // 1. A connection, either direction.
    for kind in [KeyKind::In, KeyKind::Out] {
        let key = ConnKey::new(kind, proto, src, sport, dst, dport);
        let found = st.l4.conns.lookup(&key, now, |c| {
            services.unbind(c.dest, c.template, c.inactive)
        });
        if let Some(f) = found {
            if !f.reply && reuses(st.l4.conns.get(f.slot), &flow) {
                // A new SYN on a finished connection's tuple (a client
                // reusing its port): the old entry goes now and the SYN is
                // scheduled afresh, as IPVS does with its default
                // conn_reuse_mode (ip_vs_core.c `is_new_conn_expected`).
                if let Some(c) = st.l4.conns.remove(f.slot) {
                    services.unbind(c.dest, false, c.inactive);
                }
                break;
            }
            return Some(established(
                pkt, f.slot, f.reply, &flow, total, host, services, st,
            ));
        }
    }

    // 2. A virtual service.
    let Some((si, svc)) = services.lookup(proto, dst, dport) else {
        return ours(DropReason::NoService);
    };
    if host.is_martian_source(src) {
        return Some(Err(DropReason::Ipv4MartianSource));
    }
    if proto == TCP && (flags & 0x02 == 0 || flags & 0x04 != 0) && !st.l4.sloppy {
        return Some(Err(DropReason::TcpNoConn));
    }
    let slot = match schedule(si, svc, &flow, services, st) {
        Ok(s) => s,
        // No real server: IPVS answers ICMP port unreachable from the
        // virtual address (ip_vs_core.c `ip_vs_leave`); counted as a
        // reply, or dropped as no_dest if the answer cannot go.
        Err(DropReason::NoDest) => {
            return Some(
                icmp_error(pkt, &flow, IcmpRepr::port_unreachable(), host, st)
                    .or(Err(DropReason::NoDest)),
            )
        }
        Err(r) => return Some(Err(r)),
    };
    match slot {
        Scheduled::Conn(slot) => Some(established(
            pkt, slot, false, &flow, total, host, services, st,
        )),
        Scheduled::OnePacket { dest, port } => {
            let d = &svc.dests[dest];
            let (fwd, daddr) = (fwd(d.method), d.addr);
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
            let r = send(pkt, &to, &flow, total, host, st);
            services.unbind(id, false, true);
            Some(r)
        }
    }
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

enum Scheduled {
    Conn(Slot),
    /// `-o`: forward this datagram to `dests[dest]` and keep nothing.
    OnePacket {
        dest: usize,
        port: u16,
    },
}

/// Picks a real server for a new connection (through a persistence
/// template if the service has persistence) and makes the connection.
fn schedule(
    si: usize,
    svc: &Service,
    flow: &Flow,
    services: &ServiceTable,
    st: &mut State,
) -> Result<Scheduled, DropReason> {
    let now = st.now;
    let input = sched::Input {
        saddr: flow.src,
        sport: flow.sport,
        daddr: flow.dst,
        dport: flow.dport,
        protocol: flow.proto,
        now_us: now,
    };
    let svc_port = svc.port();
    let mut control = NO_SLOT;
    let dest = match svc.persistence {
        None => {
            let state = st.l4.sched.get_mut(si).ok_or(DropReason::NoDest)?;
            svc.sched
                .schedule(state, &svc.dests, &input)
                .ok_or(DropReason::NoDest)?
        }
        Some(p) => {
            // The template key (ip_vs_core.c `ip_vs_sched_persist`): the
            // client's network, the service's address (or mark) and port
            // (0 for port-0, fwmark and FTP services).
            let caddr = Ipv4Addr::from(u32::from(flow.src) & u32::from(p.netmask));
            let (tproto, vaddr) = match svc.key {
                ServiceKey::Fwmark(m) => (0, Ipv4Addr::from(m)),
                ServiceKey::Addr { .. } => (flow.proto, flow.dst),
            };
            let keep_port = flow.dport == svc_port && svc_port != FTP_PORT && svc_port != 0;
            let vport = if keep_port { flow.dport } else { 0 };
            let tkey = ConnKey::new(KeyKind::Template, tproto, caddr, 0, vaddr, vport);
            let timeout = p.timeout_s as u64 * 1_000_000;
            let found = st.l4.conns.lookup(&tkey, now, |c| {
                services.unbind(c.dest, c.template, c.inactive)
            });
            // A template is valid while its real server is still one of
            // this service's (ip_vs_conn.c `ip_vs_check_template`; a
            // quiesced one still is: expire_quiescent_template = 0).
            let valid = found.and_then(|f| {
                let t = st.l4.conns.get(f.slot)?;
                let (s, _) = services.dest(t.dest)?;
                let j = s.dests.iter().position(|d| d.id == t.dest)?;
                (s.id == svc.id).then_some((f.slot, j))
            });
            match valid {
                Some((slot, j)) => {
                    st.l4.conns.touch(slot, timeout, now);
                    control = slot;
                    j
                }
                None => {
                    // An invalid template (its server gone) is shadowed
                    // by the new one and freed after its connections.
                    let state = st.l4.sched.get_mut(si).ok_or(DropReason::NoDest)?;
                    let j = svc
                        .sched
                        .schedule(state, &svc.dests, &input)
                        .ok_or(DropReason::NoDest)?;
                    let d = &svc.dests[j];
                    let template = Conn {
                        proto: tproto,
                        fwd: fwd(d.method),
                        state: ConnState::Normal,
                        template: true,
                        inactive: false,
                        no_output: false,
                        caddr,
                        cport: 0,
                        vaddr,
                        vport,
                        daddr: d.addr,
                        dport: if keep_port { d.port } else { 0 },
                        dest: d.id,
                        service: svc.id,
                        control: NO_SLOT,
                        n_control: 0,
                        timeout_us: timeout,
                        expires: 0,
                        ctl_next: NO_SLOT,
                        ctl_prev: NO_SLOT,
                    };
                    control = st
                        .l4
                        .conns
                        .insert(template, now)
                        .map_err(|_| DropReason::ConnTableFull)?;
                    d.bind(true);
                    j
                }
            }
        }
    };
    let d = &svc.dests[dest];
    let dport = if d.port == 0 { flow.dport } else { d.port };
    if let Some(s) = st.l4.stats.get_mut(d.id as usize) {
        s.conns += 1;
    }
    if svc.one_packet && flow.proto == UDP {
        // Counted while it is forwarded, as IPVS's ONE_PACKET connection
        // is bound and freed around its one datagram.
        d.bind(false);
        return Ok(Scheduled::OnePacket { dest, port: dport });
    }
    let conn = Conn {
        proto: flow.proto,
        fwd: fwd(d.method),
        state: if flow.proto == TCP {
            ConnState::Tcp(TcpState::None)
        } else {
            ConnState::Normal
        },
        template: false,
        inactive: true,
        no_output: d.method != Method::Nat,
        caddr: flow.src,
        cport: flow.sport,
        vaddr: flow.dst,
        vport: flow.dport,
        daddr: d.addr,
        dport,
        dest: d.id,
        service: svc.id,
        control,
        n_control: 0,
        // Until the first packet moves it on: TCP's NONE, UDP's only state.
        timeout_us: if flow.proto == TCP {
            TcpState::None.timeout_s() as u64 * 1_000_000
        } else {
            UDP_TIMEOUT_US
        },
        expires: 0,
        ctl_next: NO_SLOT,
        ctl_prev: NO_SLOT,
    };
    let slot = st
        .l4
        .conns
        .insert(conn, now)
        .map_err(|_| DropReason::ConnTableFull)?;
    d.bind(false);
    Ok(Scheduled::Conn(slot))
}

/// Counts a packet of real server `dest` (a reply: out).
#[inline]
fn count(st: &mut State, dest: u32, reply: bool, bytes: usize) {
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
#[allow(clippy::too_many_arguments)]
fn established(
    pkt: &mut Packet<'_>,
    slot: Slot,
    reply: bool,
    flow: &Flow,
    total: usize,
    host: &Host,
    services: &ServiceTable,
    st: &mut State,
) -> Result<Verdict, DropReason> {
    let now = st.now;
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
            new.timeout_s() as u64 * 1_000_000
        }
        ConnState::Normal => UDP_TIMEOUT_US,
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
    count(st, dest, reply, total);
    if reply {
        debug_assert_eq!((flow.dst, flow.dport), client);
    }
    send(pkt, &to, flow, total, host, st)
}

/// Rewrites the packet for its method and hands it to the next hop.
fn send(
    pkt: &mut Packet<'_>,
    to: &Target,
    flow: &Flow,
    total: usize,
    host: &Host,
    st: &mut State,
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
        st.l4.remember_fragments(key, *to, st.now);
    }
    let frame = pkt.data_mut();
    EthernetRepr {
        src: out.mac,
        dst: MacAddr::ZERO,
        ethertype: EtherType::IPV4,
    }
    .emit(frame)
    .map_err(|_| DropReason::EthTruncated)?;
    resolve(frame, nh.port, nh.ip, st)
}

/// NAT's rewrite of a TCP or UDP header (a whole datagram's or a first
/// fragment's): the port, and the checksum patched for the port and the
/// pseudo header's address (RFC 1624); a UDP datagram without a checksum
/// keeps none, and one that sums to zero is sent as all ones (RFC 768).
fn nat_transport(
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
fn icmp_relay(
    pkt: &mut Packet<'_>,
    hlen: usize,
    total: usize,
    host: &Host,
    services: &ServiceTable,
    st: &mut State,
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
    let now = st.now;
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
fn icmp_error(
    pkt: &mut Packet<'_>,
    flow: &Flow,
    icmp: IcmpRepr,
    host: &Host,
    st: &mut State,
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
    EthernetRepr {
        src: out.mac,
        dst: MacAddr::ZERO,
        ethertype: EtherType::IPV4,
    }
    .emit(frame)
    .map_err(|_| DropReason::EthTruncated)?;
    if !pkt.set_len(len) {
        return Err(DropReason::L4Truncated);
    }
    resolve(pkt.data_mut(), nh.port, nh.ip, st)
}

fn ip_header_len(frame: &[u8]) -> usize {
    frame.get(ETH_LEN).map_or(20, |b| usize::from(b & 0x0f) * 4)
}

/// A GUE tunnel's UDP source port: one per flow, so that routers that
/// hash the outer headers keep a flow on one path (the kernel's
/// `udp_flow_src_port`, in Linux's default ephemeral range).
fn gue_source_port(flow: &Flow) -> u16 {
    let mut h = u32::from(flow.src) ^ u32::from(flow.dst).rotate_left(16);
    h ^= (u32::from(flow.sport) << 16) | u32::from(flow.dport);
    h = h.wrapping_mul(0x9e37_79b9);
    GUE_SPORT_BASE + ((h >> 16) % GUE_SPORT_SPAN) as u16
}
