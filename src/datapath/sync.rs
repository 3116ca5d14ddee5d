//! IPVS connection sync in the data plane.
//!
//! Sending: each worker batches its own connections' updates
//! (`conn::sync::on_inbound` decides which) into a message of the
//! kernel's size for the sync interface's MTU, and sends it from that
//! interface's first address to 224.0.0.81:8848 with TTL 1 (as the
//! kernel's sync socket does: `make_send_sock`) when the next entry does
//! not fit, or [`FLUSH_US`] after its first entry. A full message waits
//! for the engine to send it after the frame that filled it; an entry
//! that finds both messages full is counted lost. Workers send only while
//! the director is the sync master: its `[sync] vrrp` instance MASTER, or
//! always without one.
//!
//! Receiving: a message (steered to worker 0, checked whole by
//! `wire::ipvs_sync::parse`) is installed entry by entry in the table of
//! the worker that owns each entry's client (`datapath::steer`): this
//! worker's at once, the others' through their inboxes, drained between
//! bursts. Only while the director is not the sync master (always
//! without `[[vrrp]]`: then every director sends and receives).

use std::net::Ipv4Addr;

use crate::conn::sync::Rules;
use crate::wire::ipvs_sync::{self, SyncConn, Writer};

/// A message leaves at the latest this long after its first entry: within
/// the kernel's 2 s flush time (IPVS_SYNC_FLUSH_TIME) even with a late
/// timer run.
pub const FLUSH_US: u64 = 1_000_000;

/// Sync counters of one lcore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncStats {
    /// Messages and entries sent.
    pub sent_messages: u64,
    pub sent_conns: u64,
    /// Entries not sent: both messages were full.
    pub lost: u64,
    /// Received entries by what became of them (`conn::sync::Installed`).
    pub installed: u64,
    pub updated: u64,
    pub replaced: u64,
    pub stale: u64,
    pub no_dest: u64,
    pub unsupported: u64,
    pub full: u64,
    /// Entries a kernel backup skips too (IPv6, SCTP, a bad state, an
    /// unknown mandatory option, persistence-engine data).
    pub skipped: u64,
    /// Entries handed to the worker that owns their client, and those
    /// lost on the way (its inbox full).
    pub handed: u64,
    pub hand_lost: u64,
}

impl SyncStats {
    pub fn add(&mut self, o: &SyncStats) {
        self.sent_messages += o.sent_messages;
        self.sent_conns += o.sent_conns;
        self.lost += o.lost;
        self.installed += o.installed;
        self.updated += o.updated;
        self.replaced += o.replaced;
        self.stale += o.stale;
        self.no_dest += o.no_dest;
        self.unsupported += o.unsupported;
        self.full += o.full;
        self.skipped += o.skipped;
        self.handed += o.handed;
        self.hand_lost += o.hand_lost;
    }

    pub fn is_zero(&self) -> bool {
        *self == SyncStats::default()
    }

    /// Counts what became of a received entry.
    pub fn count(&mut self, i: crate::conn::sync::Installed) {
        use crate::conn::sync::Installed::*;
        *match i {
            New => &mut self.installed,
            Updated => &mut self.updated,
            Replaced => &mut self.replaced,
            Stale => &mut self.stale,
            NoDest => &mut self.no_dest,
            Unsupported => &mut self.unsupported,
            Full => &mut self.full,
        } += 1;
    }
}

/// One worker's sending side.
#[derive(Debug)]
pub struct SyncTx {
    pub rules: Rules,
    pub syncid: u8,
    pub port: usize,
    pub source: Ipv4Addr,
    current: Writer,
    /// When `current` got its first entry.
    first: u64,
    /// A full message waiting to be sent.
    full: Writer,
    full_pending: bool,
    /// Sending now: the director is the sync master.
    pub active: bool,
    pub lost: u64,
}

impl SyncTx {
    pub fn new(
        version: u8,
        syncid: u8,
        rules: Rules,
        port: usize,
        source: Ipv4Addr,
        mtu: u16,
    ) -> SyncTx {
        let max = ipvs_sync::max_len(mtu);
        SyncTx {
            rules,
            syncid,
            port,
            source,
            current: Writer::new(version, syncid, max),
            first: 0,
            full: Writer::new(version, syncid, max),
            full_pending: false,
            active: false,
            lost: 0,
        }
    }

    /// Adds an entry to the message being built.
    pub fn push(&mut self, c: &SyncConn, now: u64) {
        if self.current.is_empty() {
            self.first = now;
        }
        if self.current.push(c) {
            return;
        }
        if self.full_pending {
            self.lost += 1;
            return;
        }
        std::mem::swap(&mut self.current, &mut self.full);
        self.full_pending = true;
        self.current.reset(self.syncid);
        self.first = now;
        if !self.current.push(c) {
            self.lost += 1;
        }
    }

    /// Whether a full message waits.
    #[inline]
    pub fn has_full(&self) -> bool {
        self.full_pending
    }

    /// The message to send now, if one is due: a full one, or the one
    /// being built once `FLUSH_US` old (or at once with `flush`). Hands it
    /// and its entry count to `send`, then empties it.
    pub fn take_due(&mut self, now: u64, flush: bool, mut send: impl FnMut(&[u8], usize)) {
        if self.full_pending {
            send(self.full.bytes(), self.full.count());
            self.full.reset(self.syncid);
            self.full_pending = false;
        }
        let old = now.saturating_sub(self.first) >= FLUSH_US;
        if !self.current.is_empty() && (old || flush) {
            send(self.current.bytes(), self.current.count());
            self.current.reset(self.syncid);
        }
    }

    /// Entries in the message being built and the one waiting.
    pub fn pending(&self) -> usize {
        self.current.count()
            + if self.full_pending {
                self.full.count()
            } else {
                0
            }
    }
}
