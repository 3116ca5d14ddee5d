//! Listing a worker's connections for `dlvsadm -L -c` without stopping it.
//!
//! The contract: the control plane asks through a [`DumpSlot`] (one per
//! worker: a generation counter to ask, a mutex the answer is left in);
//! the worker notices the request between bursts (one atomic load per
//! flush round) and walks its table [`CHUNK`] slots per round, so a table
//! of millions costs it no more than a few microseconds at a time; when
//! the walk is done it leaves the records and the generation it answered.
//! The records are what the kernel's /proc/net/ip_vs_conn shows of an
//! entry (ip_vs_conn.c `ip_vs_conn_seq_show`): protocol, the three
//! endpoints, the state's name and the seconds left.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::table::{ConnState, ConnTable, Slot};

/// Slots a worker looks at per flush round while it answers.
pub const CHUNK: usize = 4096;

/// One connection or persistence template as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRecord {
    /// IP protocol number; 0 for a fwmark service's template (whose
    /// "virtual address" is the mark, as in the kernel).
    pub proto: u8,
    pub template: bool,
    /// IPVS's name of the state (`ip_vs_state_name`): a TCP state, `UDP`,
    /// or `NONE` for a template.
    pub state: &'static str,
    pub caddr: Ipv4Addr,
    pub cport: u16,
    pub vaddr: Ipv4Addr,
    pub vport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    /// Whole seconds until it expires.
    pub expires_s: u64,
}

/// Appends the live entries of slots `from..` (at most [`CHUNK`] slots
/// looked at) to `out`; the next slot to look at, or `None` at the end.
/// Entries whose time is up are skipped (the sweep has not reaped them
/// yet), but for a template that still controls connections: the kernel
/// re-arms its timer then, so it is listed with its whole timeout.
pub fn walk(table: &ConnTable, from: Slot, now: u64, out: &mut Vec<ConnRecord>) -> Option<Slot> {
    let end = (from as usize + CHUNK).min(table.capacity());
    for slot in from as usize..end {
        let Some(c) = table.get(slot as Slot) else {
            continue;
        };
        let left_us = if c.expires > now {
            c.expires - now
        } else if c.template && c.n_control > 0 {
            c.timeout_us
        } else {
            continue;
        };
        let state = if c.template {
            "NONE"
        } else {
            match c.state {
                ConnState::Tcp(s) => s.name(),
                ConnState::Normal => "UDP",
            }
        };
        out.push(ConnRecord {
            proto: c.proto,
            template: c.template,
            state,
            caddr: c.caddr,
            cport: c.cport,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
            expires_s: left_us / 1_000_000,
        });
    }
    (end < table.capacity()).then_some(end as Slot)
}

/// Where the control plane asks one worker for its connections and finds
/// the answer.
#[derive(Debug, Default)]
pub struct DumpSlot {
    asked: AtomicU64,
    answered: AtomicU64,
    records: Mutex<Vec<ConnRecord>>,
}

impl DumpSlot {
    /// Asks for a listing; the generation to wait for.
    pub fn ask(&self) -> u64 {
        self.asked.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The worker's side: the generation asked, if it has not answered it.
    #[inline]
    pub fn pending(&self) -> Option<u64> {
        let asked = self.asked.load(Ordering::Acquire);
        (asked != self.answered.load(Ordering::Relaxed)).then_some(asked)
    }

    /// The worker's side: the records for generation `gen`.
    pub fn answer(&self, gen: u64, records: Vec<ConnRecord>) {
        *self.records.lock().unwrap_or_else(|p| p.into_inner()) = records;
        self.answered.store(gen, Ordering::Release);
    }

    /// The records, once generation `gen` (or a later one) is answered.
    pub fn take(&self, gen: u64) -> Option<Vec<ConnRecord>> {
        if self.answered.load(Ordering::Acquire) < gen {
            return None;
        }
        Some(std::mem::take(
            &mut *self.records.lock().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

/// A worker's walk in progress: the generation it answers, where it is,
/// what it has.
#[derive(Debug, Default)]
pub struct Walk {
    gen: u64,
    next: Option<Slot>,
    records: Vec<ConnRecord>,
}

impl Walk {
    /// One flush round's share: starts a walk when one is asked, goes on
    /// with it, and answers at its end.
    pub fn step(&mut self, slot: &DumpSlot, table: &ConnTable, now: u64) {
        if self.next.is_none() {
            let Some(gen) = slot.pending() else {
                return;
            };
            self.gen = gen;
            self.next = Some(0);
            self.records = Vec::with_capacity(table.len());
        }
        let from = self.next.unwrap_or(0);
        self.next = walk(table, from, now, &mut self.records);
        if self.next.is_none() {
            slot.answer(self.gen, std::mem::take(&mut self.records));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::table::{Conn, Fwd, NO_SLOT};
    use crate::conn::tcp_state::TcpState;

    fn conn(i: u8) -> Conn {
        Conn {
            proto: 6,
            fwd: Fwd::Dr,
            state: ConnState::Tcp(TcpState::Established),
            template: false,
            inactive: false,
            no_output: true,
            caddr: Ipv4Addr::new(198, 51, 100, i),
            cport: 40000,
            vaddr: Ipv4Addr::new(10, 0, 0, 100),
            vport: 80,
            daddr: Ipv4Addr::new(10, 0, 0, 11),
            dport: 80,
            dest: 1,
            service: 1,
            control: NO_SLOT,
            n_control: 0,
            timeout_us: 0,
            expires: 0,
            ctl_next: NO_SLOT,
            ctl_prev: NO_SLOT,
            in_pkts: 0,
            sync_state: 0,
        }
    }

    #[test]
    fn a_walk_lists_live_entries_in_chunks_and_answers_once() {
        let mut t = ConnTable::new(CHUNK * 2 + 10);
        let mut slots = Vec::new();
        for i in 0..3u8 {
            let mut c = conn(i);
            c.timeout_us = 61_500_000;
            slots.push(t.insert(c, 1_000_000).unwrap());
        }
        let slot = DumpSlot::default();
        let mut w = Walk::default();
        w.step(&slot, &t, 2_000_000);
        assert_eq!(slot.take(1), None, "nothing asked, nothing answered");
        let gen = slot.ask();
        w.step(&slot, &t, 2_000_000);
        w.step(&slot, &t, 2_000_000);
        assert_eq!(slot.take(gen), None, "three chunks: not done after two");
        w.step(&slot, &t, 2_000_000);
        let got = slot.take(gen).expect("answered");
        assert_eq!(got.len(), 3);
        // 61.5 s from 1 s, listed at 2 s: 60.5 s left, 60 whole.
        assert!(got.iter().all(|r| r.expires_s == 60), "{got:?}");
        assert_eq!(got[0].state, "ESTABLISHED");
        assert_eq!(slot.pending(), None);
    }
}
