//! Per-lcore counters.
//!
//! Plain integers owned by one worker; the control thread reads published
//! copies (see `control::counters`). Invariant, per lcore, whenever the
//! hold queue is empty: `received == replied + punted + dropped`, where
//! replied counts received frames sent back out (echo and ARP replies,
//! forwarded traffic), punted those given to the kernel (the exception
//! path), and `generated` counts frames the director built itself (ARP
//! requests and announcements), which were never received; nor were the
//! kernel's (`from_kernel`).

use std::net::Ipv4Addr;

use super::DropReason;
use crate::wire::MacAddr;

/// Another host claiming one of the director's addresses in ARP: an
/// address conflict (in LVS-DR, typically a real server that announces the
/// VIP because its arp_ignore/arp_announce are not set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict {
    /// The port it was seen on.
    pub port: usize,
    pub ip: Ipv4Addr,
    /// The other host's MAC.
    pub mac: MacAddr,
}

/// Counters of one port as seen by one lcore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

/// Traffic of one real server as one lcore saw it (IPVS's per-destination
/// stats: connections scheduled, packets and bytes in (client to server)
/// and out (server to client, NAT only), bytes counted as IP lengths).
/// A service's are the sum of its real servers'.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestStats {
    pub conns: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

impl DestStats {
    /// These counters less `base` (each at least 0), for `-Z`.
    pub fn since(&self, base: &DestStats) -> DestStats {
        DestStats {
            conns: self.conns.saturating_sub(base.conns),
            in_packets: self.in_packets.saturating_sub(base.in_packets),
            out_packets: self.out_packets.saturating_sub(base.out_packets),
            in_bytes: self.in_bytes.saturating_sub(base.in_bytes),
            out_bytes: self.out_bytes.saturating_sub(base.out_bytes),
        }
    }

    pub fn add(&mut self, o: &DestStats) {
        self.conns += o.conns;
        self.in_packets += o.in_packets;
        self.out_packets += o.out_packets;
        self.in_bytes += o.in_bytes;
        self.out_bytes += o.out_bytes;
    }
}

/// All counters of one lcore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub ports: Vec<PortCounters>,
    pub received: u64,
    /// Received frames transmitted (after rewriting).
    pub replied: u64,
    /// Frames built by the director (ARP requests, gratuitous ARP).
    pub generated: u64,
    /// Frames the device refused at transmit (already counted as sent by
    /// the pipeline; freed by the TX queue).
    pub tx_refused: u64,
    /// Frames the director could not build for want of a buffer.
    pub generate_failed: u64,
    /// Frames currently held awaiting ARP resolution.
    pub held: u64,
    /// ARP senders not learned because they were not on a connected
    /// subnet of the receiving port (as of the last timer run).
    pub arp_off_subnet: u64,
    /// Learned neighbours evicted to make room in a full table (as of the
    /// last timer run).
    pub neighbors_evicted: u64,
    /// Connections and persistence templates in the lcore's table (as of
    /// the last timer run).
    pub connections: u64,
    /// Frames received here and handed to the worker that owns them.
    pub steered: u64,
    /// Received frames given to the kernel (the exception path).
    pub punted: u64,
    /// Frames the kernel sent through the exception path, transmitted on
    /// its data port.
    pub from_kernel: u64,
    /// By real server id (the service table's stable ids; sized when a
    /// snapshot is taken, never on the packet path).
    pub dests: Vec<DestStats>,
    /// The latest address conflict seen (see `DropReason::ArpConflict`).
    pub last_conflict: Option<Conflict>,
    pub drops: [u64; DropReason::COUNT],
    /// Worker loop iterations, and those that received at least one frame.
    pub loops: u64,
    pub busy_loops: u64,
    /// IPVS connection sync.
    pub sync: super::sync::SyncStats,
}

impl Stats {
    pub fn new(ports: usize) -> Stats {
        Stats {
            ports: vec![PortCounters::default(); ports],
            received: 0,
            replied: 0,
            generated: 0,
            tx_refused: 0,
            generate_failed: 0,
            held: 0,
            arp_off_subnet: 0,
            neighbors_evicted: 0,
            connections: 0,
            steered: 0,
            punted: 0,
            from_kernel: 0,
            dests: Vec::new(),
            last_conflict: None,
            drops: [0; DropReason::COUNT],
            loops: 0,
            busy_loops: 0,
            sync: Default::default(),
        }
    }

    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds another lcore's counters into these.
    pub fn merge(&mut self, o: &Stats) {
        for (a, b) in self.ports.iter_mut().zip(&o.ports) {
            a.rx_packets += b.rx_packets;
            a.rx_bytes += b.rx_bytes;
            a.tx_packets += b.tx_packets;
            a.tx_bytes += b.tx_bytes;
        }
        self.received += o.received;
        self.replied += o.replied;
        self.generated += o.generated;
        self.tx_refused += o.tx_refused;
        self.generate_failed += o.generate_failed;
        self.held += o.held;
        self.arp_off_subnet += o.arp_off_subnet;
        self.neighbors_evicted += o.neighbors_evicted;
        self.connections += o.connections;
        self.steered += o.steered;
        self.punted += o.punted;
        self.from_kernel += o.from_kernel;
        if self.dests.len() < o.dests.len() {
            self.dests.resize(o.dests.len(), DestStats::default());
        }
        for (a, b) in self.dests.iter_mut().zip(&o.dests) {
            a.add(b);
        }
        if o.last_conflict.is_some() {
            self.last_conflict = o.last_conflict;
        }
        for (a, b) in self.drops.iter_mut().zip(&o.drops) {
            *a += b;
        }
        self.loops += o.loops;
        self.busy_loops += o.busy_loops;
        self.sync.add(&o.sync);
    }
}
