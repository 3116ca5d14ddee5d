//! One lcore's data path over some packet buffer type.
//!
//! `Engine<B>` wraps the byte-level [`pipeline`](super::pipeline) with what
//! needs buffers: holding frames while their next hop resolves, building
//! ARP requests and announcements, counting. It is generic over the buffer
//! (`Mbuf` in the DPDK worker, `TestBuf` in tests and fuzzers), so the
//! whole per-lcore behaviour runs without an EAL.
//!
//! Accounting: every frame given to [`Engine::process`] is counted in
//! `received` and ends either transmitted (`replied`), given to the kernel
//! (`punted`), held (`held`, until released or dropped), or dropped with a
//! reason, so that `received == replied + punted + held + sum(drops)` at
//! all times.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;

use super::host::Host;
use super::neighbor::TimerEvent;
use super::packet::{PacketBuf, RxMeta};
use super::pipeline::{self, Ctx, Learned};
use super::sync::{Daemon, SyncTx};
use super::verdict::Verdict;
use super::vrrp::{Action, Transition, Vrrp};
use super::{DropReason, Stats};
use crate::config::ConnConfig;
use crate::config::VrrpConfig;
use crate::conn::sync::SyncThreshold;
use crate::service::table::ServiceTable;
use crate::wire::ethernet::{HEADER_LEN as ETH_LEN, MIN_FRAME_LEN};
use crate::wire::ipvs_sync::{self, SyncConn, SyncError};
use crate::wire::vrrp::{self, VrrpRepr};
use crate::wire::{ArpOp, ArpRepr, EtherType, EthernetRepr, IpProtocol, Ipv4Repr, MacAddr};
use crate::wire::{UdpPacket, UdpRepr};

/// Where the engine gets new buffers and sends frames.
pub trait Output<B> {
    fn alloc(&mut self) -> Option<B>;
    /// Queues `buf` for transmission on `port`; false (and `buf`
    /// dropped) when there is no such port.
    fn send(&mut self, port: usize, buf: B) -> bool;
    /// Queues `buf` for the kernel on `port`'s exception path; false (and
    /// `buf` dropped) when the port has none.
    fn kernel(&mut self, port: usize, buf: B) -> bool {
        let _ = (port, buf);
        false
    }
}

struct Held<B> {
    port: usize,
    next_hop: Ipv4Addr,
    deadline: u64,
    buf: B,
}

pub struct Engine<B> {
    ctx: Ctx,
    held: VecDeque<Held<B>>,
    hold_cap: usize,
    hold_time: u64,
    stats: Stats,
    /// The VRRP instances, in the one engine that runs them.
    vrrp: Option<Vrrp>,
    /// The next IPv4 identification of a generated datagram.
    ident: u16,
    /// This engine's worker, of how many (which sync entries are its).
    index: usize,
    workers: usize,
    /// Received sync entries for other workers: (owner, entry).
    foreign: VecDeque<(usize, SyncConn)>,
    /// The sync daemons' roles as last read: (generation, VRRP bits).
    daemon_seen: Option<(u64, u64)>,
    sync_rules: SyncThreshold,
    /// The backup daemon running now, if one does.
    sync_rx: Option<Daemon>,
}

/// The source of a daemon's messages: its interface's first address.
fn d_source(host: &Host, d: &Daemon) -> Ipv4Addr {
    host.ports
        .get(d.port)
        .and_then(|p| p.addresses.first())
        .map_or(Ipv4Addr::UNSPECIFIED, |a| a.addr)
}

/// Received sync entries held for other workers at most (more are lost,
/// counted): a few messages' worth.
const FOREIGN_MAX: usize = 4096;

impl<B: PacketBuf> Engine<B> {
    /// An engine with no virtual services (host duties only).
    pub fn new(host: Arc<Host>) -> Engine<B> {
        Self::with_ctx(Ctx::new(host))
    }

    /// An engine serving `services` with a connection table sized by
    /// `conn`; `seed` seeds the schedulers' randomness.
    pub fn with_services(
        host: Arc<Host>,
        services: Arc<ServiceTable>,
        conn: &ConnConfig,
        seed: u64,
    ) -> Engine<B> {
        Self::with_ctx(Ctx::with_services(host, services, conn, seed))
    }

    fn with_ctx(ctx: Ctx) -> Engine<B> {
        let host = Arc::clone(ctx.host());
        let arp = host.arp;
        let ports = host.ports.len();
        Engine {
            ctx,
            held: VecDeque::with_capacity(arp.queue),
            hold_cap: arp.queue,
            // One retry interval beyond the last request: the neighbour
            // timer fails the entry first; this bounds a held frame's life
            // even if the entry vanished another way.
            hold_time: arp.retry_us.saturating_mul(arp.retries as u64 + 1),
            stats: Stats::new(ports),
            vrrp: None,
            ident: 1,
            index: 0,
            workers: 1,
            foreign: VecDeque::new(),
            daemon_seen: None,
            sync_rules: SyncThreshold {
                threshold: 3,
                period: 50,
            },
            sync_rx: None,
        }
    }

    /// Makes this engine worker `index` of `workers`: it sends its own
    /// connections' sync updates while a master sync daemon runs, and
    /// (worker 0) takes messages in while a backup one does.
    pub fn run_sync(&mut self, index: usize, workers: usize) {
        self.index = index;
        self.workers = workers.max(1);
        if index == 0 {
            self.foreign = VecDeque::with_capacity(FOREIGN_MAX);
        }
        self.sync_roles();
    }

    /// Follows the sync daemons' roles (dlvsadm's commands, the VRRP
    /// instance `Auto` follows): at timer time, and only when either moved.
    fn sync_roles(&mut self) -> Option<SyncTx> {
        let host = Arc::clone(self.ctx.host());
        let (gen, bits) = (host.daemons.generation(), host.master.get());
        if self.daemon_seen == Some((gen, bits)) {
            return None;
        }
        // Never waits on dlvsadm's command: a busy lock is read next time.
        let roles = host.daemons.try_roles()?;
        self.daemon_seen = Some((gen, bits));
        let (send, recv) = roles.now(bits);
        self.sync_rules = roles.rules;
        self.ctx
            .set_sync_rx(recv.map(|d| (d.port, d.group, d.udp_port)));
        self.sync_rx = recv.cloned();
        let mut tx = self.ctx.take_sync_tx();
        let mut retired = None;
        match send {
            Some(d) => {
                let same = tx
                    .as_ref()
                    .is_some_and(|t| t.version() == roles.version && t.daemon() == d);
                if !same {
                    retired = tx.take();
                    tx = Some(SyncTx::new(
                        roles.version,
                        d.clone(),
                        roles.rules,
                        d_source(&host, d),
                    ));
                }
                if let Some(t) = tx.as_mut() {
                    t.active = true;
                }
            }
            None => retired = tx.take(),
        }
        if let Some(t) = tx {
            self.ctx.put_sync_tx(t);
        }
        // What a master daemon that stops still had is sent.
        retired.filter(|t| t.active)
    }

    /// Sends the sync messages that are due (all of them with `flush`),
    /// after following the daemons' roles.
    fn sync_send<O: Output<B>>(&mut self, flush: bool, out: &mut O) {
        if let Some(mut old) = self.sync_roles() {
            self.send_due(&mut old, true, out);
        }
        let Some(mut tx) = self.ctx.take_sync_tx() else {
            return;
        };
        self.send_due(&mut tx, flush, out);
        self.ctx.put_sync_tx(tx);
    }

    fn send_due<O: Output<B>>(&mut self, tx: &mut SyncTx, flush: bool, out: &mut O) {
        let now = self.ctx.now();
        let d = tx.daemon().clone();
        let src = tx.source;
        tx.take_due(now, flush, |m, n| {
            self.stats.sync.sent_messages += 1;
            self.stats.sync.sent_conns += n as u64;
            self.send_sync_message(&d, src, m, out);
        });
        self.stats.sync.lost += std::mem::take(&mut tx.lost);
    }

    /// A sync message from the daemon's interface (its first address) to
    /// its group and port, from that port, with its TTL, checksummed.
    fn send_sync_message<O: Output<B>>(
        &mut self,
        d: &Daemon,
        src: Ipv4Addr,
        msg: &[u8],
        out: &mut O,
    ) {
        let host = Arc::clone(self.ctx.host());
        let udp = UdpRepr {
            src_port: d.udp_port,
            dst_port: d.udp_port,
            payload_len: msg.len() as u16,
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: d.group,
            protocol: IpProtocol::UDP,
            payload_len: udp.total_len() as u16,
            ttl: d.ttl,
            ident: self.ident,
            dont_frag: false,
            dscp_ecn: 0,
        };
        self.ident = self.ident.wrapping_add(1);
        let Some(p) = host.ports.get(d.port) else {
            return;
        };
        self.generate_ipv4(d.port, p.mac, &ip, out, |payload| {
            if udp.emit(payload).is_err() || payload.len() < udp.total_len() {
                return false;
            }
            payload[UdpRepr::HEADER_LEN..udp.total_len()].copy_from_slice(msg);
            match UdpPacket::new_checked(&mut payload[..udp.total_len()]) {
                Ok(mut u) => {
                    u.fill_checksum(src, d.group);
                    true
                }
                Err(_) => false,
            }
        });
    }

    /// Takes in a sync message the pipeline found whole (`frame`): checks
    /// it, installs this worker's entries and holds the others' for their
    /// workers; says what the frame was.
    #[cold]
    fn sync_in(&mut self, frame: &[u8]) -> DropReason {
        let host = Arc::clone(self.ctx.host());
        let Some(syncid) = self.sync_rx.as_ref().map(|d| d.syncid) else {
            return DropReason::SyncIgnored;
        };
        let ihl = usize::from(frame.get(ETH_LEN).map_or(0, |b| b & 0x0f)) * 4;
        let l4 = ETH_LEN + ihl;
        let src = frame
            .get(ETH_LEN + 12..ETH_LEN + 16)
            .map_or(Ipv4Addr::UNSPECIFIED, |a| {
                Ipv4Addr::new(a[0], a[1], a[2], a[3])
            });
        if host.local_port(src).is_some() {
            return DropReason::SyncIgnored;
        }
        let Some(len) = frame
            .get(l4 + 4..l4 + 6)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            return DropReason::SyncMalformed;
        };
        let Some(msg) = frame.get(l4 + UdpRepr::HEADER_LEN..l4 + len) else {
            return DropReason::SyncMalformed;
        };
        let rules = self.sync_rules;
        let mask = self.ctx.services().owner_mask();
        let (me, workers) = (self.index, self.workers);
        let parsed = ipvs_sync::parse(msg, syncid, |e| {
            let owner = if workers > 1 {
                super::steer::worker_of(e.caddr, mask, workers)
            } else {
                me
            };
            if owner == me {
                let r = self.ctx.install_synced(e, rules);
                self.stats.sync.count(r);
            } else if self.foreign.len() < FOREIGN_MAX {
                self.foreign.push_back((owner, *e));
            } else {
                self.stats.sync.hand_lost += 1;
            }
        });
        match parsed {
            Ok(p) => {
                self.stats.sync.skipped += p.skipped as u64;
                DropReason::SyncMessage
            }
            Err(SyncError::ForeignSyncid) => DropReason::SyncIgnored,
            Err(_) => DropReason::SyncMalformed,
        }
    }

    /// The next received sync entry another worker owns: (worker, entry).
    pub fn take_foreign(&mut self) -> Option<(usize, SyncConn)> {
        self.foreign.pop_front()
    }

    /// Installs a sync entry another worker received for this one.
    pub fn install_synced(&mut self, e: &SyncConn) {
        let r = self.ctx.install_synced(e, self.sync_rules);
        self.stats.sync.count(r);
    }

    /// Makes this engine run the host's VRRP instances (one engine per
    /// director does), BACKUP from now on.
    pub fn run_vrrp(&mut self) {
        let host = Arc::clone(self.ctx.host());
        if !host.vrrp.is_empty() {
            self.vrrp = Some(Vrrp::new(&host.vrrp, Arc::clone(&host.master)));
        }
    }

    /// The VRRP instances this engine runs, if it runs them.
    pub fn vrrp(&self) -> Option<&Vrrp> {
        self.vrrp.as_ref()
    }

    /// The next change of a VRRP instance's state, oldest first.
    pub fn take_transition(&mut self) -> Option<Transition> {
        self.vrrp.as_mut()?.take_transition()
    }

    /// The director stops: its MASTER instances advertise priority 0, so
    /// that their backups take over at once.
    pub fn goodbye<O: Output<B>>(&mut self, out: &mut O) {
        let now = self.ctx.now();
        if let Some(v) = self.vrrp.as_mut() {
            v.shutdown(now);
        }
        self.vrrp_actions(out);
        // What the backups were still owed.
        self.sync_send(true, out);
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// Turns the fast path for whole TCP and UDP datagrams on (the default) or off
    /// (see `pipeline::Ctx::set_fast_path`).
    #[cfg(any(test, feature = "testing"))]
    pub fn set_fast_path(&mut self, on: bool) {
        self.ctx.set_fast_path(on);
    }

    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// Takes a new snapshot of the virtual services (between bursts).
    pub fn set_services(&mut self, services: Arc<ServiceTable>) {
        self.ctx.set_services(services);
    }

    /// Advances the data plane's clock (never backwards: capture
    /// timestamps may be out of order).
    #[inline]
    pub fn set_now(&mut self, now: u64) {
        if now > self.ctx.now() {
            self.ctx.set_now(now);
        }
    }

    pub fn now(&self) -> u64 {
        self.ctx.now()
    }

    /// Before processing a burst of frames (in this order): hashes their
    /// connection keys and starts loading the table lines their lookups
    /// will read. Optional; the frames must then go through
    /// [`Engine::process`] in the same order, every one of them, before
    /// the next call.
    #[inline]
    pub fn prepare(&mut self, bufs: &[B]) {
        self.ctx.prepare(bufs.iter().map(|b| b.data()));
    }

    /// Passes over a frame of the prepared burst that will not be
    /// processed (dropped before the pipeline).
    #[inline]
    pub fn skip_frame(&mut self) {
        self.ctx.skip_frame();
    }

    /// Processes one received frame, with what the driver said of it.
    #[inline]
    pub fn process<O: Output<B>>(&mut self, port: usize, mut buf: B, meta: RxMeta, out: &mut O) {
        self.stats.received += 1;
        if let Some(p) = self.stats.ports.get_mut(port) {
            p.rx_packets += 1;
            p.rx_bytes += buf.data().len() as u64;
        }
        let (verdict, head, len) = {
            let mut pkt = buf.packet(meta);
            let v = pipeline::process(&mut pkt, port, &mut self.ctx);
            let (head, len) = pkt.bounds();
            (v, head, len)
        };
        // The packet only moves its bounds within the buffer it was lent.
        let moved = buf.set_bounds(head, len);
        debug_assert!(moved, "packet bounds outside their buffer");
        match verdict {
            Verdict::Transmit { port } => self.forward(port as usize, buf, out),
            Verdict::Hold { port, next_hop } => {
                let port = port as usize;
                if self.held.len() >= self.hold_cap {
                    self.stats.drop(DropReason::NeighborQueueFull);
                } else {
                    self.stats.held += 1;
                    self.held.push_back(Held {
                        port,
                        next_hop,
                        deadline: self.ctx.now().saturating_add(self.hold_time),
                        buf,
                    });
                }
            }
            Verdict::Kernel { port } => {
                if out.kernel(port as usize, buf) {
                    self.stats.punted += 1;
                } else {
                    self.stats.drop(DropReason::NoSuchPort);
                }
            }
            Verdict::Drop(r) => {
                let r = if r == DropReason::SyncMessage {
                    self.sync_in(buf.data())
                } else {
                    r
                };
                self.stats.drop(r);
                if r == DropReason::ArpConflict {
                    self.stats.last_conflict = self.ctx.take_conflict();
                } else if r == DropReason::VrrpAdvert {
                    self.advert(out);
                }
            }
        }
        // Checked here: the compiler keeps `follow_up` out of line, and a
        // call per frame for nothing showed in callgrind.
        if self.ctx.owes_follow_up() {
            self.follow_up(out);
        }
    }

    /// An advert the pipeline checked, for the instances (if this engine
    /// runs them; another's drops it, counted all the same).
    #[cold]
    fn advert<O: Output<B>>(&mut self, out: &mut O) {
        let (Some(a), Some(v)) = (self.ctx.take_advert(), self.vrrp.as_mut()) else {
            return;
        };
        v.on_advert(&a, self.ctx.now());
        self.vrrp_actions(out);
    }

    /// Sends what the VRRP instances ask for.
    fn vrrp_actions<O: Output<B>>(&mut self, out: &mut O) {
        while let Some((i, action)) = self.vrrp.as_mut().and_then(|v| v.take_action()) {
            let host = Arc::clone(self.ctx.host());
            let Some(cfg) = host.vrrp.get(i) else {
                continue;
            };
            match action {
                Action::Advert { priority } => self.send_advert(cfg, priority, out),
                Action::Garp { times } => {
                    for _ in 0..times {
                        for &ip in &cfg.addresses {
                            self.garp(cfg.port, ip, out);
                        }
                    }
                }
            }
        }
    }

    /// An advert of `cfg`'s instance: from the interface's first address
    /// and MAC (no virtual MAC: keepalived's default) to 224.0.0.18, TTL
    /// 255, precedence "internetwork control" as keepalived sends it.
    fn send_advert<O: Output<B>>(&mut self, cfg: &VrrpConfig, priority: u8, out: &mut O) {
        let host = Arc::clone(self.ctx.host());
        let repr = VrrpRepr {
            version: cfg.version,
            vrid: cfg.vrid,
            priority,
            interval_cs: cfg.advert_int_cs,
            addresses: &cfg.addresses,
        };
        let ip = Ipv4Repr {
            src_addr: cfg.source,
            dst_addr: vrrp::GROUP,
            protocol: IpProtocol(vrrp::PROTOCOL),
            payload_len: repr.buffer_len() as u16,
            ttl: vrrp::TTL,
            ident: self.ident,
            dont_frag: false,
            dscp_ecn: 0xc0,
        };
        self.ident = self.ident.wrapping_add(1);
        let src_mac = host.ports[cfg.port].mac;
        self.generate_ipv4(cfg.port, src_mac, &ip, out, |payload| {
            repr.emit(payload, cfg.source, vrrp::GROUP).is_ok()
        });
    }

    /// Sends an IPv4 datagram to a multicast group: the Ethernet and IP
    /// headers from `ip`, the payload written by `fill` (false: not sent).
    fn generate_ipv4<O: Output<B>>(
        &mut self,
        port: usize,
        src_mac: MacAddr,
        ip: &Ipv4Repr,
        out: &mut O,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) {
        let Some(mut buf) = out.alloc() else {
            self.stats.generate_failed += 1;
            return;
        };
        let len = (ETH_LEN + ip.total_len()).max(MIN_FRAME_LEN);
        let bounds = {
            let mut pkt = buf.packet(RxMeta::default());
            pkt.set_len(len)
                .then(|| {
                    let f = pkt.data_mut();
                    f.fill(0);
                    let g = ip.dst_addr.octets();
                    let dst = MacAddr([0x01, 0x00, 0x5e, g[1] & 0x7f, g[2], g[3]]);
                    let ok = EthernetRepr {
                        src: src_mac,
                        dst,
                        ethertype: EtherType::IPV4,
                    }
                    .emit(f)
                    .is_ok()
                        && ip.emit(&mut f[ETH_LEN..]).is_ok()
                        && fill(&mut f[ETH_LEN + Ipv4Repr::HEADER_LEN..ETH_LEN + ip.total_len()]);
                    ok.then(|| pkt.bounds())
                })
                .flatten()
        };
        if !bounds.is_some_and(|(head, len)| buf.set_bounds(head, len)) {
            self.stats.generate_failed += 1;
            return;
        }
        if self.transmit(port, buf, out) {
            self.stats.generated += 1;
        } else {
            self.stats.generate_failed += 1;
        }
    }

    /// Timer work: ARP retries, failed resolutions, expired holds. Bounded
    /// by the number of incomplete neighbours and held frames.
    pub fn tick<O: Output<B>>(&mut self, out: &mut O) {
        let now = self.ctx.now();
        if let Some(v) = self.vrrp.as_mut() {
            v.on_timer(now);
            self.vrrp_actions(out);
        }
        self.sync_send(false, out);
        self.ctx.l4_timer();
        let mut events = [None; super::neighbor::MAX_INCOMPLETE];
        let mut n = 0;
        self.ctx.neighbor_timer(|e| {
            if n < events.len() {
                events[n] = Some(e);
                n += 1;
            }
        });
        for e in events.iter().flatten() {
            match *e {
                TimerEvent::Solicit { port, ip } => self.solicit(port, ip, out),
                TimerEvent::Failed { port, ip } => {
                    self.release(port, ip, None, out);
                }
            }
        }
        while self.held.front().is_some_and(|h| h.deadline <= now) {
            self.held.pop_front();
            self.stats.held -= 1;
            self.stats.drop(DropReason::NeighborUnresolved);
        }
        self.sync_counters();
        self.follow_up(out);
    }

    /// Copies the counters the pipeline keeps itself into the stats: on
    /// the timer, not per packet.
    fn sync_counters(&mut self) {
        self.stats.arp_off_subnet = self.ctx.arp_off_subnet();
        self.stats.neighbors_evicted = self.ctx.neighbors_evicted();
        self.stats.connections = self.ctx.connections() as u64;
        // Same length every time after the first: the copy reuses the Vec.
        self.stats.dests.clear();
        self.stats.dests.extend_from_slice(self.ctx.dest_stats());
    }

    /// Sends a gratuitous ARP for every own address (RFC 5227 §3).
    pub fn announce<O: Output<B>>(&mut self, out: &mut O) {
        let host = Arc::clone(self.ctx.host());
        for (port, ip) in host.addresses() {
            self.garp(port, ip, out);
        }
    }

    /// A gratuitous ARP for `ip` on `port` (sender = target = `ip`).
    fn garp<O: Output<B>>(&mut self, port: usize, ip: Ipv4Addr, out: &mut O) {
        let Some(mac) = self.ctx.host().ports.get(port).map(|p| p.mac) else {
            return;
        };
        self.generate(
            port,
            MacAddr::BROADCAST,
            &ArpRepr {
                op: ArpOp::Request,
                sender_mac: mac,
                sender_ip: ip,
                target_mac: MacAddr::ZERO,
                target_ip: ip,
            },
            out,
        );
    }

    /// Applies a neighbour fact from another lcore.
    pub fn learn_remote<O: Output<B>>(&mut self, l: Learned, out: &mut O) {
        self.ctx.learn_remote(l);
        self.follow_up(out);
    }

    /// Neighbour facts learned here since the last call, for other lcores.
    pub fn take_learned(&mut self) -> Option<Learned> {
        self.ctx.take_learned()
    }

    /// Drops everything still held (at shutdown), counting it unresolved.
    pub fn shutdown(&mut self) {
        self.sync_counters();
        let n = self.held.len() as u64;
        self.held.clear();
        self.stats.held -= n;
        self.stats.drops[DropReason::NeighborUnresolved as usize] += n;
    }

    fn follow_up<O: Output<B>>(&mut self, out: &mut O) {
        if self.ctx.sync_full() {
            self.sync_send(false, out);
        }
        while let Some((port, ip)) = self.ctx.take_solicit() {
            self.solicit(port, ip, out);
        }
        while let Some((port, ip, mac)) = self.ctx.take_resolved() {
            self.release(port, ip, Some(mac), out);
        }
    }

    fn solicit<O: Output<B>>(&mut self, port: usize, target: Ipv4Addr, out: &mut O) {
        let host = Arc::clone(self.ctx.host());
        let Some(p) = host.ports.get(port) else {
            return;
        };
        self.generate(
            port,
            MacAddr::BROADCAST,
            &ArpRepr {
                op: ArpOp::Request,
                sender_mac: p.mac,
                sender_ip: p.source_for(target),
                target_mac: MacAddr::ZERO,
                target_ip: target,
            },
            out,
        );
    }

    fn generate<O: Output<B>>(&mut self, port: usize, dst: MacAddr, arp: &ArpRepr, out: &mut O) {
        let Some(mut buf) = out.alloc() else {
            self.stats.generate_failed += 1;
            return;
        };
        let bounds = {
            let mut pkt = buf.packet(RxMeta::default());
            pkt.set_len(MIN_FRAME_LEN).then(|| {
                let len = pipeline::build_arp(pkt.data_mut(), dst, arp);
                pkt.set_len(len);
                pkt.bounds()
            })
        };
        if !bounds.is_some_and(|(head, len)| buf.set_bounds(head, len)) {
            self.stats.generate_failed += 1;
            return;
        }
        if self.transmit(port, buf, out) {
            self.stats.generated += 1;
        } else {
            self.stats.generate_failed += 1;
        }
    }

    /// Sends (with `mac`) or drops (without) every frame held for
    /// (port, next_hop), keeping the others in order.
    fn release<O: Output<B>>(
        &mut self,
        port: usize,
        next_hop: Ipv4Addr,
        mac: Option<MacAddr>,
        out: &mut O,
    ) {
        for _ in 0..self.held.len() {
            let Some(mut h) = self.held.pop_front() else {
                break;
            };
            if h.port != port || h.next_hop != next_hop {
                self.held.push_back(h);
                continue;
            }
            self.stats.held -= 1;
            match mac {
                Some(mac) => {
                    h.buf.packet(RxMeta::default()).data_mut()[0..6].copy_from_slice(&mac.0);
                    self.forward(port, h.buf, out);
                }
                None => self.stats.drop(DropReason::NeighborUnresolved),
            }
        }
    }

    /// Sends on `port` a frame the kernel wrote to that port's exception
    /// path, unchanged (the kernel built it whole, with the port's MAC).
    pub fn from_kernel<O: Output<B>>(&mut self, port: usize, buf: B, out: &mut O) {
        if self.transmit(port, buf, out) {
            self.stats.from_kernel += 1;
        }
    }

    /// Sends a received frame: counted as replied, or dropped as
    /// `no_such_port`.
    fn forward<O: Output<B>>(&mut self, port: usize, buf: B, out: &mut O) {
        if self.transmit(port, buf, out) {
            self.stats.replied += 1;
        } else {
            self.stats.drop(DropReason::NoSuchPort);
        }
    }

    /// Hands a frame to `out`, counting it on its port; false if the port
    /// does not exist (on either side: the engine's ports or the output's
    /// queues), and the frame is then gone, never counted as sent.
    fn transmit<O: Output<B>>(&mut self, port: usize, buf: B, out: &mut O) -> bool {
        let len = buf.data().len() as u64;
        if port >= self.stats.ports.len() || !out.send(port, buf) {
            return false;
        }
        let p = &mut self.stats.ports[port];
        p.tx_packets += 1;
        p.tx_bytes += len;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    // Made with scapy by scripts/gen-fixtures: an echo request 10.0.0.50 ->
    // 10.0.0.100, and an ARP request from 10.0.0.50 (02:00:00:00:00:aa) for
    // 10.0.0.100.
    use crate::config::testing::TWO_PORTS as CONFIG;
    use crate::wire::fixture_frames::{ARP_REQ, ECHO_LAN};

    use crate::datapath::test_buf::TestBuf;

    struct Sink(Vec<(usize, Vec<u8>)>, usize);

    impl Default for Sink {
        fn default() -> Self {
            Sink(Vec::new(), 2)
        }
    }

    impl Sink {
        /// A sink with transmit queues on the first `ports` ports only.
        fn with_ports(ports: usize) -> Sink {
            Sink(Vec::new(), ports)
        }
    }

    impl Output<TestBuf> for Sink {
        fn alloc(&mut self) -> Option<TestBuf> {
            Some(TestBuf::new())
        }
        fn send(&mut self, port: usize, buf: TestBuf) -> bool {
            if port >= self.1 {
                return false;
            }
            self.0.push((port, buf.to_vec()));
            true
        }
    }

    fn hex(s: &str) -> TestBuf {
        TestBuf::with_frame(&bytes(s))
    }

    fn bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn engine() -> Engine<TestBuf> {
        let cfg = Config::from_toml(CONFIG, std::path::Path::new("t.toml")).unwrap();
        let host = Host::new(
            &cfg,
            &[MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2])],
        );
        Engine::new(Arc::new(host))
    }

    /// With an exception path on lan0, what the data plane leaves to the
    /// host goes to the kernel unchanged (TCP to the director's address,
    /// an ARP reply, after the data plane learned it), counted as punted;
    /// an echo request it still answers itself. Without one, the same
    /// frames are dropped with their reasons.
    #[test]
    fn the_kernel_gets_what_the_data_plane_leaves_to_the_host() {
        use crate::wire::fixture_frames::{ARP_REP_CLIENT, TCP_SYN};
        struct KSink(Sink, Vec<(usize, Vec<u8>)>);
        impl Output<TestBuf> for KSink {
            fn alloc(&mut self) -> Option<TestBuf> {
                self.0.alloc()
            }
            fn send(&mut self, port: usize, buf: TestBuf) -> bool {
                self.0.send(port, buf)
            }
            fn kernel(&mut self, port: usize, buf: TestBuf) -> bool {
                self.1.push((port, buf.to_vec()));
                true
            }
        }
        let with_kernel = CONFIG.replacen(
            "mac = \"02:00:00:00:00:01\"\n",
            "mac = \"02:00:00:00:00:01\"\nkernel = \"dk0\"\n",
            1,
        );
        assert_ne!(with_kernel, CONFIG);
        for (text, kernel) in [(with_kernel.as_str(), true), (CONFIG, false)] {
            let cfg = Config::from_toml(text, std::path::Path::new("t.toml")).unwrap();
            let host = Host::new(
                &cfg,
                &[MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2])],
            );
            assert_eq!(host.ports[0].kernel, kernel);
            let mut e: Engine<TestBuf> = Engine::new(Arc::new(host));
            let mut out = KSink(Sink::default(), Vec::new());
            e.set_now(1_000);
            // No virtual services here: the SYN to 10.0.0.100:80 is the
            // director's own TCP.
            for f in [TCP_SYN, ARP_REP_CLIENT, ECHO_LAN] {
                e.process(0, hex(f), RxMeta::default(), &mut out);
            }
            let s = e.stats();
            if kernel {
                assert_eq!(out.1, vec![(0, bytes(TCP_SYN)), (0, bytes(ARP_REP_CLIENT))]);
                assert_eq!(s.punted, 2);
                assert_eq!(s.dropped_total(), 0, "{s:?}");
            } else {
                assert!(out.1.is_empty());
                assert_eq!(s.punted, 0);
                assert_eq!(s.drops[DropReason::HostUnhandled as usize], 1);
                assert_eq!(s.drops[DropReason::ArpLearned as usize], 1);
            }
            // The echo is the data plane's either way (replied once the
            // client's MAC is known from its ARP reply).
            assert_eq!(s.replied, 1, "{s:?}");
            assert_eq!(
                s.received,
                s.replied + s.punted + s.held + s.dropped_total()
            );
        }
    }

    /// Worker A holds an echo reply for an unknown client; the client's ARP
    /// request lands on worker B. B's learned fact, handed to A, releases
    /// the held reply (the path the worker loop's channels carry).
    #[test]
    fn a_neighbour_learned_elsewhere_releases_held_frames() {
        let (mut a, mut b) = (engine(), engine());
        let (mut out_a, mut out_b) = (Sink::default(), Sink::default());
        a.set_now(1_000);
        b.set_now(1_000);
        a.process(0, hex(ECHO_LAN), RxMeta::default(), &mut out_a);
        assert_eq!(a.stats().held, 1);
        assert_eq!(out_a.0.len(), 1, "one ARP request from A");
        b.process(0, hex(ARP_REQ), RxMeta::default(), &mut out_b);
        assert_eq!(out_b.0.len(), 1, "B answers the ARP request");
        let mut n = 0;
        while let Some(l) = b.take_learned() {
            a.learn_remote(l, &mut out_a);
            n += 1;
        }
        assert_eq!(n, 1);
        assert_eq!(a.stats().held, 0);
        assert_eq!(a.stats().replied, 1);
        let (port, reply) = out_a.0.last().unwrap();
        assert_eq!(*port, 0);
        assert_eq!(
            reply[0..6],
            [2, 0, 0, 0, 0, 0xaa],
            "sent to the client's MAC"
        );
        assert_eq!(reply[14 + 20], 0, "an echo reply");
    }

    /// A frame bound for a port the output has no queue for is dropped
    /// as `no_such_port`, never counted as transmitted.
    #[test]
    fn frames_for_a_missing_port_are_dropped_not_sent() {
        let mut a = engine();
        // Port 0 (lan0) exists in the engine but not in the output.
        let mut out = Sink::with_ports(0);
        a.set_now(1_000);
        a.process(0, hex(ARP_REQ), RxMeta::default(), &mut out);
        let s = a.stats();
        assert!(out.0.is_empty());
        assert_eq!(s.replied, 0);
        assert_eq!(s.drops[DropReason::NoSuchPort as usize], 1);
        assert_eq!(s.ports[0].tx_packets, 0);
        assert_eq!(s.received, s.replied + s.held + s.dropped_total());
        // Generated frames (the announcement) are counted as failed.
        a.announce(&mut out);
        assert_eq!(a.stats().generated, 0);
        assert_eq!(a.stats().generate_failed, 3, "three own addresses");
    }

    /// A frame held past its resolution deadline is dropped as unresolved.
    #[test]
    fn unresolved_frames_expire() {
        let mut a = engine();
        let mut out = Sink::default();
        a.set_now(1_000);
        a.process(0, hex(ECHO_LAN), RxMeta::default(), &mut out);
        // CONFIG: retry 100 ms, 2 retries.
        for t in [100_000, 200_000, 300_000, 400_000] {
            a.set_now(1_000 + t);
            a.tick(&mut out);
        }
        assert_eq!(a.stats().held, 0);
        assert_eq!(a.stats().drops[DropReason::NeighborUnresolved as usize], 1);
        let requests = out.0.iter().filter(|(_, f)| f[12..14] == [8, 6]).count();
        assert_eq!(requests, 2, "the first request and one retry");
    }
}
