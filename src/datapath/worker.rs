//! The run-to-completion worker loop on one lcore.
//!
//! Each worker owns one RX and one TX queue of every port and an
//! [`Engine`]. A loop iteration polls every port for a burst, runs each
//! frame through the engine and queues what it sends; TX buffers are
//! flushed when full or every `flush` interval (~100 µs), when timer work
//! runs too. Counters are plain fields of the engine, copied to a shared
//! slot every `publish` interval for the control thread.
//!
//! Neighbour facts learned on one lcore reach the others through bounded
//! channels (array-backed, no allocation per message), drained between
//! bursts, so an ARP reply that lands on another queue still releases the
//! frames this lcore holds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use dpdk::{Mbuf, Mempool, RingReceiver, RingSender, RxQueue, RxTimestamp, TxQueue, BURST};

use super::engine::{Engine, Output};
use super::packet::{Csum, Packet, PacketBuf, RxMeta};
use super::pipeline::Learned;
use super::vrrp::Transition;
use super::Stats;
use crate::conn::dump::{DumpSlot, Walk};
use crate::datapath::DropReason;
use crate::service::table::Published;
use crate::wire::ipvs_sync::SyncConn;

impl PacketBuf for Mbuf<'_> {
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline]
    fn packet(&mut self, meta: RxMeta) -> Packet<'_> {
        let (buf, head, len) = self.buffer_mut();
        Packet::new(buf, head, len, meta)
    }
    #[inline]
    fn set_bounds(&mut self, head: usize, len: usize) -> bool {
        Mbuf::set_bounds(self, head, len)
    }
}

fn csum(s: dpdk::CsumStatus) -> Csum {
    match s {
        dpdk::CsumStatus::Unknown => Csum::Unknown,
        dpdk::CsumStatus::Good => Csum::Good,
        dpdk::CsumStatus::Bad => Csum::Bad,
    }
}

/// The driver's word on a received mbuf, as the pipeline takes it.
#[inline]
fn rx_meta(m: &Mbuf<'_>) -> RxMeta {
    let (ip, l4) = m.rx_csum();
    RxMeta {
        ip_csum: csum(ip),
        l4_csum: csum(l4),
    }
}

/// Where the data plane's clock comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The TSC, converted to microseconds.
    Tsc,
    /// The capture timestamp net_pcap stores in each mbuf (replay).
    Capture(RxTimestamp),
}

/// Everything a worker needs besides its engine. It borrows the ports'
/// queues and the pool (`'a`), so the worker runs inside the scope that
/// owns them.
pub struct WorkerSetup<'a> {
    /// Worker 0 sends the start-up announcements.
    pub index: usize,
    pub rx: Vec<RxQueue<'a>>,
    pub tx: Vec<TxQueue<'a>>,
    pub pool: &'a Mempool<'a>,
    pub clock: Clock,
    pub tsc_hz: u64,
    pub flush_us: u64,
    pub publish_us: u64,
    pub stop: &'a AtomicBool,
    /// The virtual services; a new generation is taken between bursts.
    pub services: &'a Published,
    /// Where the counters are published.
    pub shared: Arc<Mutex<Stats>>,
    /// Where the control plane asks for this worker's connections.
    pub dump: &'a DumpSlot,
    pub peers: Vec<SyncSender<Learned>>,
    pub inbox: Receiver<Learned>,
    /// The DPDK port id of each port, in port order (to know which port a
    /// packet another worker hands over came in on).
    pub port_ids: Vec<u16>,
    /// With several workers: the rings packets are handed over through.
    pub steer: Option<Steering<'a>>,
    /// Each port's exception path, if it has one: this worker's queues of
    /// the kernel's tap (polled at flush time: a tap read is a syscall).
    pub kernel_rx: Vec<Option<RxQueue<'a>>>,
    pub kernel_tx: Vec<Option<TxQueue<'a>>>,
    /// Worker 0: runs the VRRP instances and reports their transitions here.
    pub events: Option<SyncSender<Transition>>,
    /// Received sync entries for each worker (by index; none for this
    /// one), and this worker's inbox of them.
    pub sync_to: Vec<Option<SyncSender<SyncConn>>>,
    pub sync_from: Option<Receiver<SyncConn>>,
    /// `[dpdk] idle_sleep_us`: the longest back-off of an idle worker (0: none).
    pub idle_sleep_us: u64,
}

/// A worker's ends of the steering rings (see `datapath::steer`).
pub struct Steering<'a> {
    /// Every worker's ring, by worker index (this worker's own unused).
    pub to: Vec<RingSender<'a, 'a>>,
    /// This worker's ring.
    pub from: RingReceiver<'a, 'a>,
}

struct Out<'o, 'a> {
    pool: &'a Mempool<'a>,
    tx: &'o mut [TxQueue<'a>],
    kernel: &'o mut [Option<TxQueue<'a>>],
}

impl<'a> Output<Mbuf<'a>> for Out<'_, 'a> {
    #[inline]
    fn alloc(&mut self) -> Option<Mbuf<'a>> {
        self.pool.alloc()
    }
    #[inline]
    fn send(&mut self, port: usize, buf: Mbuf<'a>) -> bool {
        match self.tx.get_mut(port) {
            Some(q) => {
                q.push(buf);
                true
            }
            None => false,
        }
    }
    #[inline]
    fn kernel(&mut self, port: usize, buf: Mbuf<'a>) -> bool {
        match self.kernel.get_mut(port) {
            Some(Some(q)) => {
                q.push(buf);
                true
            }
            _ => false,
        }
    }
}

fn micros(tsc: u64, hz: u64) -> u64 {
    (tsc as u128 * 1_000_000 / hz.max(1) as u128) as u64
}

/// The loop's own state: burst arrays, timers, the services' generation.
struct Loop<'a> {
    bufs: Vec<Mbuf<'a>>,
    /// Packets for other workers, by worker; and those handed to us.
    outbox: Vec<Vec<Mbuf<'a>>>,
    handed: Vec<Mbuf<'a>>,
    keep: Vec<Mbuf<'a>>,
    hz: u64,
    flush_ticks: u64,
    publish_ticks: u64,
    last_flush: u64,
    last_publish: u64,
    /// Capture clock only: the capture time of the next timer run.
    next_tick: u64,
    /// The services' generation the engine runs.
    generation: u64,
    walk: Walk,
    idle: Idle,
}

/// Runs until `stop` is set, then flushes, drops what is still held and
/// returns the final counters (also published).
pub fn run<'a>(mut engine: Engine<Mbuf<'a>>, mut w: WorkerSetup<'a>) -> Stats {
    let mut lp = start(&mut engine, &mut w);
    loop {
        // Checked before polling: once it is seen, every frame the ports
        // had counted as received has already been through the engine.
        let stopping = w.stop.load(Ordering::Acquire);
        let mut busy = false;
        for port in 0..w.rx.len() {
            busy |= poll_port(&mut engine, &mut w, &mut lp, port);
        }
        busy |= take_handed(&mut engine, &mut w, &mut lp);
        {
            let s = engine.stats_mut();
            s.loops += 1;
            s.busy_loops += busy as u64;
        }
        let tsc = dpdk::rdtsc();
        if tsc.wrapping_sub(lp.last_flush) >= lp.flush_ticks || stopping {
            lp.last_flush = tsc;
            between_bursts(&mut engine, &mut w, &mut lp, tsc);
        }
        if tsc.wrapping_sub(lp.last_publish) >= lp.publish_ticks || stopping {
            lp.last_publish = tsc;
            publish(&mut engine, &w);
        }
        if stopping {
            break;
        }
        if w.idle_sleep_us > 0 {
            lp.idle.after_loop(busy, w.idle_sleep_us);
        }
    }
    finish(engine, w)
}

/// Before the first burst: the clock, the current services (whatever
/// the engine was built with: dlvsadm may have changed them between the
/// control socket's start and this worker's), sync, and worker 0's
/// announcements and VRRP instances.
fn start<'a>(engine: &mut Engine<Mbuf<'a>>, w: &mut WorkerSetup<'a>) -> Loop<'a> {
    let workers = w.steer.as_ref().map_or(1, |s| s.to.len());
    let hz = w.tsc_hz.max(1);
    let ticks = |us: u64| (hz as u128 * us as u128 / 1_000_000).max(1) as u64;
    let start = dpdk::rdtsc();
    let (generation, table) = w.services.current();
    if let Clock::Tsc = w.clock {
        engine.set_now(micros(start, hz));
    }
    engine.set_services(table);
    engine.run_sync(w.index, workers);
    if w.index == 0 {
        let mut out = Out {
            pool: w.pool,
            tx: &mut w.tx,
            kernel: &mut w.kernel_tx,
        };
        engine.announce(&mut out);
        engine.run_vrrp();
    }
    Loop {
        bufs: Vec::with_capacity(BURST),
        outbox: (0..workers).map(|_| Vec::with_capacity(BURST)).collect(),
        handed: Vec::with_capacity(BURST),
        keep: Vec::with_capacity(BURST),
        hz,
        flush_ticks: ticks(w.flush_us),
        publish_ticks: ticks(w.publish_us),
        last_flush: start,
        last_publish: start,
        next_tick: 0,
        generation,
        walk: Walk::default(),
        idle: Idle::default(),
    }
}

/// One RX burst of `port`: frames of other workers' clients handed over,
/// the rest processed. True if the port had frames.
#[inline]
fn poll_port<'a>(
    engine: &mut Engine<Mbuf<'a>>,
    w: &mut WorkerSetup<'a>,
    lp: &mut Loop<'a>,
    port: usize,
) -> bool {
    let (n, bad) = w.rx[port].burst(&mut lp.bufs);
    if n == 0 {
        return false;
    }
    if bad > 0 {
        count_dropped(engine, port, bad, DropReason::Oversize);
    }
    if let Some(steer) = &w.steer {
        hand_over(
            engine,
            port,
            &mut lp.bufs,
            &mut lp.keep,
            &mut lp.outbox,
            steer,
            w.index,
        );
    }
    engine.prepare(&lp.bufs);
    let mut out = Out {
        pool: w.pool,
        tx: &mut w.tx,
        kernel: &mut w.kernel_tx,
    };
    match w.clock {
        Clock::Tsc => {
            engine.set_now(micros(dpdk::rdtsc(), lp.hz));
            for m in lp.bufs.drain(..) {
                let meta = rx_meta(&m);
                engine.process(port, m, meta, &mut out);
            }
        }
        Clock::Capture(field) => {
            // Capture time moves per frame, and timers fire as it
            // passes them, so a replay is deterministic however
            // the frames are batched into bursts.
            for m in lp.bufs.drain(..) {
                let meta = rx_meta(&m);
                if let Some(ts) = m.rx_timestamp(field) {
                    engine.set_now(ts);
                    if engine.now() >= lp.next_tick {
                        engine.tick(&mut out);
                        lp.next_tick = engine.now().saturating_add(w.flush_us);
                    }
                }
                engine.process(port, m, meta, &mut out);
            }
        }
    }
    true
}

/// What other workers handed over (their RX queues, our flows). True if
/// there was any.
#[inline]
fn take_handed<'a>(
    engine: &mut Engine<Mbuf<'a>>,
    w: &mut WorkerSetup<'a>,
    lp: &mut Loop<'a>,
) -> bool {
    let Some(steer) = &mut w.steer else {
        return false;
    };
    if steer.from.recv(&mut lp.handed) == 0 {
        return false;
    }
    if let Clock::Tsc = w.clock {
        engine.set_now(micros(dpdk::rdtsc(), lp.hz));
    }
    engine.prepare(&lp.handed);
    let mut out = Out {
        pool: w.pool,
        tx: &mut w.tx,
        kernel: &mut w.kernel_tx,
    };
    for m in lp.handed.drain(..) {
        match w.port_ids.iter().position(|&id| id == m.port_id()) {
            Some(port) => {
                let meta = rx_meta(&m);
                if let Clock::Capture(f) = w.clock {
                    if let Some(ts) = m.rx_timestamp(f) {
                        engine.set_now(ts);
                    }
                }
                engine.process(port, m, meta, &mut out);
            }
            None => {
                // Keeps the burst's hints in step.
                engine.skip_frame();
                count_dropped(engine, 0, 1, DropReason::NoSuchPort);
            }
        }
    }
    true
}

/// The work of each flush interval, between bursts: a new snapshot of the
/// services, what the other workers learned and synced, the timers, the
/// exception paths' frames, a listing's next chunk, the TX flush.
fn between_bursts<'a>(
    engine: &mut Engine<Mbuf<'a>>,
    w: &mut WorkerSetup<'a>,
    lp: &mut Loop<'a>,
    tsc: u64,
) {
    if let Clock::Tsc = w.clock {
        engine.set_now(micros(tsc, lp.hz));
    }
    // A new snapshot of the services, if the control plane published
    // one: between bursts, never mid-packet.
    if w.services.generation() != lp.generation {
        let (g, table) = w.services.current();
        lp.generation = g;
        engine.set_services(table);
    }
    let mut out = Out {
        pool: w.pool,
        tx: &mut w.tx,
        kernel: &mut w.kernel_tx,
    };
    while let Ok(l) = w.inbox.try_recv() {
        engine.learn_remote(l, &mut out);
    }
    exchange_synced(engine, w);
    while let Some(l) = engine.take_learned() {
        for p in &w.peers {
            // A full peer inbox loses the fact; that lcore resolves by
            // itself through its own ARP requests.
            let _ = p.try_send(l);
        }
    }
    let mut out = Out {
        pool: w.pool,
        tx: &mut w.tx,
        kernel: &mut w.kernel_tx,
    };
    engine.tick(&mut out);
    report_transitions(engine, w);
    from_kernel(engine, w, lp);
    // A listing asked for: a chunk of the table per round.
    lp.walk
        .step(w.dump, engine.ctx().conn_table(), engine.now());
    flush(w);
}

/// Sync entries: those received here for other workers handed on, and
/// the others' for this one installed.
fn exchange_synced(engine: &mut Engine<Mbuf<'_>>, w: &WorkerSetup<'_>) {
    while let Some((owner, e)) = engine.take_foreign() {
        let sent = matches!(w.sync_to.get(owner), Some(Some(tx)) if tx.try_send(e).is_ok());
        let s = &mut engine.stats_mut().sync;
        if sent {
            s.handed += 1;
        } else {
            s.hand_lost += 1;
        }
    }
    if let Some(rx) = &w.sync_from {
        while let Ok(e) = rx.try_recv() {
            engine.install_synced(&e);
        }
    }
}

/// What the kernel sent through the exception paths leaves by their data
/// ports.
fn from_kernel<'a>(engine: &mut Engine<Mbuf<'a>>, w: &mut WorkerSetup<'a>, lp: &mut Loop<'a>) {
    for port in 0..w.kernel_rx.len() {
        let Some(q) = w.kernel_rx[port].as_mut() else {
            continue;
        };
        let (n, _) = q.burst(&mut lp.bufs);
        if n == 0 {
            continue;
        }
        let mut out = Out {
            pool: w.pool,
            tx: &mut w.tx,
            kernel: &mut w.kernel_tx,
        };
        for m in lp.bufs.drain(..) {
            engine.from_kernel(port, m, &mut out);
        }
    }
}

/// Sends what the TX queues buffered.
fn flush(w: &mut WorkerSetup<'_>) {
    for q in w.tx.iter_mut() {
        q.flush();
    }
    for q in w.kernel_tx.iter_mut().flatten() {
        q.flush();
    }
}

/// After the loop: the VRRP instances leave (a MASTER's priority-0
/// advert), the queues flush, what is held is dropped, the last counters
/// published.
fn finish<'a>(mut engine: Engine<Mbuf<'a>>, mut w: WorkerSetup<'a>) -> Stats {
    {
        let mut out = Out {
            pool: w.pool,
            tx: &mut w.tx,
            kernel: &mut w.kernel_tx,
        };
        engine.goodbye(&mut out);
        report_transitions(&mut engine, &w);
    }
    flush(&mut w);
    engine.shutdown();
    publish(&mut engine, &w);
    engine.stats().clone()
}

/// An idle worker's back-off (`[dpdk] idle_sleep_us`), as DPDK's
/// l3fwd-power does it: polls that find nothing are counted, and past
/// [`IDLE_POLLS`] of them the worker sleeps, 1 µs first and twice as long
/// each time up to the limit; a frame ends it. Timers and flushes run
/// late by one sleep at most.
#[derive(Debug, Default)]
struct Idle {
    polls: u32,
    sleep_us: u64,
}

/// Empty polls before an idle worker starts to sleep.
const IDLE_POLLS: u32 = 100;

impl Idle {
    fn after_loop(&mut self, busy: bool, max_us: u64) {
        if busy {
            self.polls = 0;
            self.sleep_us = 0;
            return;
        }
        self.polls = self.polls.saturating_add(1);
        if self.polls < IDLE_POLLS {
            return;
        }
        self.sleep_us = (self.sleep_us * 2).clamp(1, max_us);
        std::thread::sleep(std::time::Duration::from_micros(self.sleep_us));
    }
}

/// Hands the VRRP instances' transitions to the control side (a full
/// channel loses them from the log, never from the instances).
fn report_transitions(engine: &mut Engine<Mbuf<'_>>, w: &WorkerSetup<'_>) {
    while let Some(t) = engine.take_transition() {
        if let Some(events) = &w.events {
            let _ = events.try_send(t);
        }
    }
}

/// Counts frames received on `port` and dropped before the engine saw
/// them.
fn count_dropped(engine: &mut Engine<Mbuf<'_>>, port: usize, n: usize, r: DropReason) {
    let s = engine.stats_mut();
    s.received += n as u64;
    if let Some(p) = s.ports.get_mut(port) {
        p.rx_packets += n as u64;
    }
    s.drops[r as usize] += n as u64;
}

/// Moves the frames of `bufs` that another worker owns to that worker's
/// ring; those for this worker stay in `bufs`. A full ring drops the rest
/// of its batch (counted here, where they were received).
fn hand_over<'a>(
    engine: &mut Engine<Mbuf<'a>>,
    port: usize,
    bufs: &mut Vec<Mbuf<'a>>,
    keep: &mut Vec<Mbuf<'a>>,
    outbox: &mut [Vec<Mbuf<'a>>],
    steer: &Steering<'a>,
    me: usize,
) {
    let workers = outbox.len();
    let services = engine.ctx().services();
    // A stable partition (a datagram's fragments and a connection's
    // segments keep their order on either side), through `keep`, which
    // has room for a burst: no allocation.
    for m in bufs.drain(..) {
        match super::steer::owner(m.data(), services, workers) {
            Some(o) if o != me => outbox[o].push(m),
            _ => keep.push(m),
        }
    }
    std::mem::swap(bufs, keep);
    for (o, batch) in outbox.iter_mut().enumerate() {
        if batch.is_empty() {
            continue;
        }
        let n = batch.len();
        while !batch.is_empty() && steer.to[o].send(batch) > 0 {}
        engine.stats_mut().steered += (n - batch.len()) as u64;
        let full = batch.len();
        if full > 0 {
            batch.clear();
            count_dropped(engine, port, full, DropReason::SteerRingFull);
        }
    }
}

fn publish(engine: &mut Engine<Mbuf<'_>>, w: &WorkerSetup<'_>) {
    engine.stats_mut().tx_refused = w.tx.iter().map(|q| q.dropped).sum();
    // Not on the packet path: once per publish interval. A control thread
    // holding the lock only delays the copy to the next interval.
    if let Ok(mut g) = w.shared.try_lock() {
        g.clone_from(engine.stats());
    }
}
