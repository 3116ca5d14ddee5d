//! The packet pipeline: one frame in, one verdict out, bytes only.
//!
//! `process` sees a frame as a [`Packet`] (the frame inside its whole
//! buffer: it may grow in front or at the end) and never a DPDK type, so
//! unit tests, fixture tables and fuzzers drive it without an EAL. It
//! rewrites the frame in place (an ARP or echo reply is the request,
//! turned round) and says what to do with it. Work it cannot do on the frame itself, such
//! as sending an ARP request for an unresolved next hop, is noted in the
//! [`Ctx`] for the caller (`engine`) to carry out after the frame.
//!
//! Host duties at this stage: ARP for the director's own addresses
//! (RFC 826), ICMP echo to them (RFC 792, RFC 1122 §3.2.2.6), and the
//! neighbour and route tables that replies go through. Any other traffic
//! addressed to the director, and anything not addressed to it, is dropped
//! with a reason.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::egress::{to_next_hop, Egress, Notes};
use super::host::Host;
use super::l4::{self, L4State, L4};
use super::neighbor::{Learn, NeighborTable};
use super::packet::{Csum, Packet};
use super::stats::Conflict;
use super::verdict::Verdict;
use super::vrrp::Advert;
use super::DropReason;
use crate::config::ConnConfig;
use crate::service::table::ServiceTable;
use crate::wire::ethernet::HEADER_LEN as ETH_LEN;
use crate::wire::icmp::msg;
use crate::wire::vrrp::{self, VrrpPacket};
use crate::wire::{
    ArpOp, ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr, IcmpPacket, IpProtocol,
    Ipv4Packet, MacAddr, UdpPacket, WireError,
};

/// A neighbour fact learned on this lcore, to share with the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    pub port: usize,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
}

/// Per-lcore pipeline state: the read-only configuration snapshot and
/// what the lcore learns and owes.
#[derive(Debug)]
pub struct Ctx {
    host: Arc<Host>,
    services: Arc<ServiceTable>,
    st: State,
}

/// The mutable half of [`Ctx`], borrowed apart from the snapshot so the
/// packet path never touches the `Arc`'s counter.
#[derive(Debug)]
pub(super) struct State {
    pub(super) l4: L4,
    /// The neighbour table, the clock and the ARP requests owed.
    egress: Egress,
    resolved: Notes<(usize, Ipv4Addr, MacAddr)>,
    learned: Notes<Learned>,
    conflict: Option<Conflict>,
    /// ARP senders not learned because they are not on a connected subnet
    /// of the port they came in on.
    arp_off_subnet: u64,
    /// Whole TCP and UDP datagrams take the fast path (`l4::fast`); off
    /// only to test it against the general path.
    fast: bool,
    /// The VRRP advert the last frame was (its verdict `vrrp_advert`),
    /// for the engine's instances.
    advert: Option<Advert>,
    /// Where a backup sync daemon listens now: (port, group, UDP port).
    sync_rx: Option<(usize, Ipv4Addr, u16)>,
}

impl Ctx {
    /// Before a burst: see `L4::prepare`.
    #[inline]
    pub fn prepare<'f>(&mut self, frames: impl Iterator<Item = &'f [u8]>) {
        self.st.l4.prepare(frames);
    }

    /// Passes over a frame of the prepared burst (see `L4::next_frame`).
    #[inline]
    pub fn skip_frame(&mut self) {
        self.st.l4.next_frame();
    }

    /// A context with no virtual services (host duties only).
    pub fn new(host: Arc<Host>) -> Ctx {
        let conn = ConnConfig {
            capacity: 1024,
            ..ConnConfig::default()
        };
        Ctx::with_services(host, Arc::default(), &conn, 0)
    }

    /// A context serving `services`, with a connection table of
    /// `conn.capacity` entries; `seed` seeds the schedulers' randomness.
    pub fn with_services(
        host: Arc<Host>,
        services: Arc<ServiceTable>,
        conn: &ConnConfig,
        seed: u64,
    ) -> Ctx {
        let mut neighbors = NeighborTable::new(host.arp);
        for n in &host.static_neighbors {
            neighbors.add_static(n.port, n.ip, n.mac);
        }
        let l4 = L4::new(conn, &services, seed);
        Ctx {
            host,
            services,
            st: State {
                l4,
                egress: Egress {
                    neighbors,
                    now: 0,
                    solicit: Notes::new(),
                },
                resolved: Notes::new(),
                learned: Notes::new(),
                conflict: None,
                arp_off_subnet: 0,
                fast: true,
                advert: None,
                sync_rx: None,
            },
        }
    }

    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    pub fn services(&self) -> &Arc<ServiceTable> {
        &self.services
    }

    /// Takes a new snapshot of the services (between bursts).
    pub fn set_services(&mut self, services: Arc<ServiceTable>) {
        let seed = self.st.egress.now;
        self.st.l4.set_services(&self.services, &services, seed);
        self.services = services;
    }

    /// Layer-4 timer work: connection expiry (bounded), scheduler
    /// housekeeping.
    pub fn l4_timer(&mut self) {
        let now = self.st.egress.now;
        self.st.l4.tick(&self.services, now);
    }

    /// Traffic by real server id.
    pub fn dest_stats(&self) -> &[super::stats::DestStats] {
        &self.st.l4.stats
    }

    /// This lcore's connection table (for listings).
    pub fn conn_table(&self) -> &crate::conn::table::ConnTable {
        &self.st.l4.conns
    }

    /// Connections (and persistence templates) this lcore holds.
    pub fn connections(&self) -> usize {
        self.st.l4.conns.len()
    }

    /// The data plane's clock, microseconds.
    pub fn now(&self) -> u64 {
        self.st.egress.now
    }

    pub fn set_now(&mut self, now: u64) {
        self.st.egress.now = now;
    }

    /// Runs the neighbour timer (see [`NeighborTable::on_timer`]).
    pub fn neighbor_timer(&mut self, f: impl FnMut(super::neighbor::TimerEvent)) {
        let now = self.st.egress.now;
        self.st.egress.neighbors.on_timer(now, f);
    }

    /// Turns the fast path (`l4::fast`) on (the default) or off: the
    /// general path alone must give the same results, which the harness
    /// checks.
    #[cfg(any(test, feature = "testing"))]
    pub fn set_fast_path(&mut self, on: bool) {
        self.st.fast = on;
    }

    /// Whether ARP requests or resolved next hops wait for the caller
    /// ([`Ctx::take_solicit`], [`Ctx::take_resolved`]).
    #[inline]
    pub fn owes_follow_up(&self) -> bool {
        self.st.egress.solicit.len != 0 || self.st.resolved.len != 0 || self.st.l4.sync_full
    }

    /// Next ARP request to send: (port, target).
    pub fn take_solicit(&mut self) -> Option<(usize, Ipv4Addr)> {
        self.st.egress.solicit.take()
    }

    /// Next next-hop that resolved: release what is held for it.
    pub fn take_resolved(&mut self) -> Option<(usize, Ipv4Addr, MacAddr)> {
        self.st.resolved.take()
    }

    /// The sending side of sync, taken out while the engine sends (and
    /// put back with [`Ctx::put_sync_tx`]).
    pub fn take_sync_tx(&mut self) -> Option<crate::datapath::sync::SyncTx> {
        self.st.l4.sync_full = false;
        self.st.l4.sync_on = false;
        self.st.l4.sync.take()
    }

    pub fn put_sync_tx(&mut self, tx: crate::datapath::sync::SyncTx) {
        self.st.l4.sync_on = tx.active;
        self.st.l4.sync = Some(tx);
    }

    /// Where sync messages are taken in now (a backup daemon runs).
    pub fn set_sync_rx(&mut self, rx: Option<(usize, Ipv4Addr, u16)>) {
        self.st.sync_rx = rx;
    }

    /// Whether a full sync message waits to be sent.
    #[inline]
    pub fn sync_full(&self) -> bool {
        self.st.l4.sync_full
    }

    /// Installs a received sync entry in this lcore's table.
    pub fn install_synced(
        &mut self,
        e: &crate::wire::ipvs_sync::SyncConn,
        rules: crate::conn::sync::SyncThreshold,
    ) -> super::sync_install::Installed {
        let now = self.st.egress.now;
        super::sync_install::install(&mut self.st.l4.conns, &self.services, e, rules, now)
    }

    /// The VRRP advert the last frame was, if it was one.
    pub fn take_advert(&mut self) -> Option<Advert> {
        self.st.advert.take()
    }

    /// The address conflict the last frame revealed, if any.
    pub fn take_conflict(&mut self) -> Option<Conflict> {
        self.st.conflict.take()
    }

    /// ARP senders not learned so far because they were off-subnet.
    pub fn arp_off_subnet(&self) -> u64 {
        self.st.arp_off_subnet
    }

    /// Learned neighbours evicted so far to make room for new ones.
    pub fn neighbors_evicted(&self) -> u64 {
        self.st.egress.neighbors.evicted()
    }

    /// Next neighbour fact to share with other lcores.
    pub fn take_learned(&mut self) -> Option<Learned> {
        self.st.learned.take()
    }

    /// Applies a neighbour fact another lcore learned.
    pub fn learn_remote(&mut self, l: Learned) {
        let st = &mut self.st;
        if st
            .egress
            .neighbors
            .learn(l.port, l.ip, l.mac, st.egress.now, false)
            == Learn::Resolved
        {
            st.resolved.push((l.port, l.ip, l.mac));
        }
    }
}

impl State {
    /// What layer 4 works on, borrowed apart from the host duties' notes.
    #[inline(always)]
    fn l4_state(&mut self) -> L4State<'_> {
        L4State {
            l4: &mut self.l4,
            egress: &mut self.egress,
        }
    }

    fn learn(&mut self, port: usize, ip: Ipv4Addr, mac: MacAddr, create: bool) -> Learn {
        let r = self
            .egress
            .neighbors
            .learn(port, ip, mac, self.egress.now, create);
        if r == Learn::Resolved {
            self.resolved.push((port, ip, mac));
        }
        if r != Learn::Ignored {
            self.learned.push(Learned { port, ip, mac });
        }
        r
    }
}

/// Processes one frame received on `port`.
pub fn process(pkt: &mut Packet<'_>, port: usize, ctx: &mut Ctx) -> Verdict {
    ctx.st.l4.next_frame();
    let fast = if ctx.st.fast {
        l4::fast::forward(pkt, port, &ctx.host, &ctx.services, &mut ctx.st.l4_state())
    } else {
        None
    };
    match fast.unwrap_or_else(|| process_inner(pkt, port, &ctx.host, &ctx.services, &mut ctx.st)) {
        Ok(v) => v,
        Err(r) if r.is_the_kernels() && ctx.host.ports.get(port).is_some_and(|p| p.kernel) => {
            Verdict::Kernel { port: port as u16 }
        }
        Err(r) => Verdict::Drop(r),
    }
}

/// The general path.
fn process_inner(
    pkt: &mut Packet<'_>,
    port: usize,
    host: &Host,
    services: &ServiceTable,
    st: &mut State,
) -> Result<Verdict, DropReason> {
    let frame = pkt.data();
    let Some(me) = host.ports.get(port) else {
        return Err(DropReason::EthNotForUs);
    };
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::EthTruncated)?;
    if frame.len() > ETH_LEN + me.mtu as usize {
        return Err(DropReason::Oversize);
    }
    let dst = eth.dst();
    let group = || host.has_vrrp(port) || st.sync_rx.is_some_and(|r| r.0 == port);
    if dst != me.mac && !dst.is_broadcast() && !(is_ipv4_multicast(dst) && group()) {
        return Err(DropReason::EthNotForUs);
    }
    match eth.ethertype() {
        EtherType::ARP => arp(pkt.data_mut(), port, st, host),
        EtherType::IPV4 => ipv4(pkt, port, st, host, services),
        _ => Err(DropReason::EthUnsupported),
    }
}

fn arp(frame: &mut [u8], port: usize, st: &mut State, host: &Host) -> Result<Verdict, DropReason> {
    let me = &host.ports[port];
    let pkt = ArpPacket::new_checked(&frame[ETH_LEN..]).map_err(|e| match e {
        WireError::Truncated => DropReason::ArpTruncated,
        _ => DropReason::ArpUnsupported,
    })?;
    let req = ArpRepr::parse(&pkt).map_err(|_| DropReason::ArpUnsupported)?;
    let sender_ip = req.sender_ip;
    if !req.sender_mac.is_unicast() || req.sender_mac == MacAddr::ZERO {
        return Err(DropReason::ArpBadSender);
    }
    if let Some(owner) = host.local_port(sender_ip) {
        // Our own announcement coming back carries our MAC; any other MAC
        // is a host claiming our address.
        if req.sender_mac == host.ports[owner].mac {
            return Err(DropReason::ArpBadSender);
        }
        st.conflict = Some(Conflict {
            port,
            ip: sender_ip,
            mac: req.sender_mac,
        });
        return Err(DropReason::ArpConflict);
    }
    if !sender_ip.is_unspecified() && host.is_martian_source(sender_ip) {
        return Err(DropReason::ArpBadSender);
    }
    let ours = host.local_port(req.target_ip) == Some(port)
        || host.virtual_port(req.target_ip) == Some(port);
    // Only neighbours on a connected subnet of this port are learned, as a
    // next hop can only be one of those: a sender elsewhere (a host with
    // the wrong address, or one flooding the table) is answered if it asks
    // for our address, but never takes an entry.
    let on_link = me
        .addresses
        .iter()
        .any(|a| a.len < 32 && a.contains(sender_ip));
    if !on_link && !sender_ip.is_unspecified() {
        st.arp_off_subnet += 1;
    }
    match req.op {
        ArpOp::Request => {
            // RFC 826: merge the sender first; create only when we are the
            // target. A probe (sender 0.0.0.0, RFC 5227) teaches nothing.
            let learned = if sender_ip.is_unspecified() || !on_link {
                Learn::Ignored
            } else {
                st.learn(port, sender_ip, req.sender_mac, ours)
            };
            if !ours {
                return Err(if learned == Learn::Ignored {
                    DropReason::ArpNotForUs
                } else {
                    DropReason::ArpLearned
                });
            }
            let reply = ArpRepr {
                op: ArpOp::Reply,
                sender_mac: me.mac,
                sender_ip: req.target_ip,
                target_mac: req.sender_mac,
                target_ip: sender_ip,
            };
            EthernetRepr {
                src: me.mac,
                dst: req.sender_mac,
                ethertype: EtherType::ARP,
            }
            .emit(frame)
            .map_err(|_| DropReason::EthTruncated)?;
            reply
                .emit(&mut frame[ETH_LEN..])
                .map_err(|_| DropReason::ArpTruncated)?;
            Ok(Verdict::transmit(port))
        }
        ArpOp::Reply => {
            if sender_ip.is_unspecified() {
                return Err(DropReason::ArpBadSender);
            }
            if !on_link {
                return Err(DropReason::ArpNotForUs);
            }
            match st.learn(port, sender_ip, req.sender_mac, ours) {
                Learn::Ignored => Err(DropReason::ArpNotForUs),
                // The kernel learns its neighbours from the replies to its
                // own requests (the data plane answers requests itself).
                _ if me.kernel => Ok(Verdict::Kernel { port: port as u16 }),
                _ => Err(DropReason::ArpLearned),
            }
        }
        ArpOp::Unknown(_) => Err(DropReason::ArpOtherOp),
    }
}

fn ipv4(
    pkt: &mut Packet<'_>,
    port: usize,
    st: &mut State,
    host: &Host,
    services: &ServiceTable,
) -> Result<Verdict, DropReason> {
    let meta = *pkt.meta();
    let (src, dst, hlen, total, fragment, protocol, ttl) = {
        let ip = Ipv4Packet::new_checked(&pkt.data()[ETH_LEN..]).map_err(|e| match e {
            WireError::Truncated => DropReason::Ipv4Truncated,
            WireError::BadVersion => DropReason::Ipv4BadVersion,
            WireError::BadHeaderLen => DropReason::Ipv4BadHeaderLen,
            _ => DropReason::Ipv4BadTotalLen,
        })?;
        // A device that checked the header says so; else verify it here.
        let bad = match meta.ip_csum {
            Csum::Good => false,
            Csum::Bad => true,
            Csum::Unknown => !ip.verify_checksum(),
        };
        if bad {
            return Err(DropReason::Ipv4BadChecksum);
        }
        (
            ip.src_addr(),
            ip.dst_addr(),
            ip.header_len(),
            ip.total_len() as usize,
            ip.is_fragment(),
            ip.protocol(),
            ip.ttl(),
        )
    };
    if host.standby(dst) {
        return Err(DropReason::VrrpBackup);
    }
    // Layer 4 first: a connection (either direction), then a virtual
    // service; what is neither is the host's.
    if let Some(r) = l4::forward(pkt, hlen, total, host, services, &mut st.l4_state()) {
        return r;
    }
    if protocol.0 == vrrp::PROTOCOL && dst == vrrp::GROUP && !host.vrrp.is_empty() {
        let ip = &pkt.data()[ETH_LEN..ETH_LEN + total];
        return advert(ip, hlen, src, ttl, fragment, port, st, host);
    }
    if let Some((_, group, udp_port)) = st.sync_rx.filter(|r| r.0 == port && r.1 == dst) {
        if protocol == IpProtocol::UDP {
            let ip = &pkt.data()[ETH_LEN..ETH_LEN + total];
            if let Some(r) = sync_message(ip, hlen, src, group, udp_port, fragment) {
                return Err(r);
            }
        }
    }
    let why = host.unswitched(src, dst);
    if why != DropReason::HostUnhandled {
        return Err(why);
    }
    if fragment {
        return Err(DropReason::Ipv4Fragment);
    }
    match protocol {
        IpProtocol::ICMP => icmp_echo(pkt.data_mut(), hlen, total, src, st, host),
        _ => Err(why),
    }
}

/// Checks a VRRP datagram received on `port` and notes it for its
/// instance (RFC 3768 §7.1, RFC 5798 §7.1): TTL 255, the checksum, the
/// instance of its router id on this port, and the version, interval
/// (version 2) and authentication (none) the instance has.
#[allow(clippy::too_many_arguments)]
#[cold]
fn advert(
    ip: &[u8],
    hlen: usize,
    src: Ipv4Addr,
    ttl: u8,
    fragment: bool,
    port: usize,
    st: &mut State,
    host: &Host,
) -> Result<Verdict, DropReason> {
    if fragment || ttl != vrrp::TTL {
        return Err(DropReason::VrrpMalformed);
    }
    let p = VrrpPacket::new_checked(&ip[hlen..]).map_err(|_| DropReason::VrrpMalformed)?;
    if !p.verify_checksum(src, vrrp::GROUP) {
        return Err(DropReason::VrrpMalformed);
    }
    let Some(instance) = host
        .vrrp
        .iter()
        .position(|v| v.port == port && v.vrid == p.vrid())
    else {
        return Err(DropReason::VrrpOtherRouter);
    };
    let cfg = &host.vrrp[instance];
    if p.version() != cfg.version
        || p.auth_type() != 0
        || cfg.version == 2 && p.interval_cs() != cfg.advert_int_cs
    {
        return Err(DropReason::VrrpMismatch);
    }
    st.advert = Some(Advert {
        instance: instance as u8,
        src,
        priority: p.priority(),
        interval_cs: p.interval_cs(),
    });
    Err(DropReason::VrrpAdvert)
}

/// A UDP datagram to a backup daemon's group on its interface: to its
/// port (the kernel's 8848 by default), whole, its checksum right; the engine then
/// takes its message in (`DropReason::SyncMessage`). `None`: another
/// port, not sync's.
#[cold]
fn sync_message(
    ip: &[u8],
    hlen: usize,
    src: Ipv4Addr,
    group: Ipv4Addr,
    udp_port: u16,
    fragment: bool,
) -> Option<DropReason> {
    if fragment {
        return Some(DropReason::SyncMalformed);
    }
    let Ok(u) = UdpPacket::new_checked(&ip[hlen..]) else {
        return Some(DropReason::SyncMalformed);
    };
    if u.dst_port() != udp_port {
        return None;
    }
    if !u.verify_checksum(src, group) {
        return Some(DropReason::SyncMalformed);
    }
    Some(DropReason::SyncMessage)
}

/// An IPv4 multicast MAC (RFC 1112 §6.4: 01:00:5e and 23 bits of the group).
#[inline]
fn is_ipv4_multicast(mac: MacAddr) -> bool {
    mac.0[..3] == [0x01, 0x00, 0x5e] && mac.0[3] & 0x80 == 0
}

fn icmp_echo(
    frame: &mut [u8],
    hlen: usize,
    total: usize,
    client: Ipv4Addr,
    st: &mut State,
    host: &Host,
) -> Result<Verdict, DropReason> {
    let l3 = ETH_LEN;
    let l4 = l3 + hlen;
    let end = l3 + total;
    {
        let icmp =
            IcmpPacket::new_checked(&frame[l4..end]).map_err(|_| DropReason::IcmpTruncated)?;
        if !icmp.verify_checksum() {
            return Err(DropReason::IcmpBadChecksum);
        }
        if icmp.msg_type() != msg::ECHO_REQUEST {
            return Err(DropReason::IcmpUnhandled);
        }
    }
    let nh = host.routes.lookup(client).ok_or(DropReason::NoRoute)?;
    let out = &host.ports[nh.port];
    if total > out.mtu as usize {
        return Err(DropReason::Oversize);
    }

    // Turn the request round (RFC 792): the reply's checksum is patched
    // incrementally for the one changed word (RFC 1624).
    IcmpPacket::new_checked(&mut frame[l4..end])
        .map_err(|_| DropReason::IcmpTruncated)?
        .make_echo_reply();
    {
        let mut ip =
            Ipv4Packet::new_checked(&mut frame[l3..]).map_err(|_| DropReason::Ipv4Truncated)?;
        ip.swap_addrs();
        ip.rewrite_ttl(64);
    }
    to_next_hop(frame, nh.port, out.mac, nh.ip, &mut st.egress)
}

/// Writes an ARP frame (padded to the Ethernet minimum) into `buf`, which
/// must be at least `MIN_FRAME_LEN` long. Used for requests and
/// gratuitous announcements (RFC 5227 §3: sender = target = own address).
pub fn build_arp(buf: &mut [u8], eth_dst: MacAddr, repr: &ArpRepr) -> usize {
    use crate::wire::ethernet::MIN_FRAME_LEN;
    let len = MIN_FRAME_LEN;
    buf[..len].fill(0);
    let _ = EthernetRepr {
        src: repr.sender_mac,
        dst: eth_dst,
        ethertype: EtherType::ARP,
    }
    .emit(&mut buf[..len]);
    let _ = repr.emit(&mut buf[ETH_LEN..len]);
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::packet::RxMeta;

    /// What passes between the worker, the engine and the pipeline per
    /// packet stays small enough for registers (see their docs).
    #[test]
    fn per_packet_values_fit_registers() {
        assert_eq!(std::mem::size_of::<Verdict>(), 8);
        assert!(std::mem::size_of::<Option<Result<Verdict, DropReason>>>() <= 8);
        assert!(std::mem::size_of::<RxMeta>() <= 8);
    }
}
