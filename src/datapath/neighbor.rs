//! The per-lcore neighbour (ARP) table.
//!
//! Entries are keyed by (port, IPv4 address) in a hashbrown map with a
//! randomly seeded hasher, reserved to its configured size at start and
//! never grown past it, so the packet path does not allocate.
//!
//! States, after RFC 826 and Linux's neighbour machine, simplified:
//! - `Static`: from `[[neighbor]]`; never aged, never replaced by ARP.
//! - `Reachable`: learned; used as is for `reachable` µs after its last
//!   confirmation. After that it is stale: still used, but each lookup past
//!   `probe_at` sends a fresh ARP request; after `retries` unanswered probes
//!   it is removed and the next packet resolves from scratch.
//! - `Incomplete`: an ARP request is out; packets wait in the hold queue.
//!   The timer re-sends every `retry` µs and gives up after `retries`.
//!
//! Time is the data plane's clock in microseconds. Timer work is bounded
//! by the number of incomplete entries, itself bounded by `MAX_INCOMPLETE`.

use std::net::Ipv4Addr;

use hashbrown::HashMap;

use crate::config::ArpConfig;
use crate::wire::MacAddr;

/// Incomplete entries an lcore tracks at once; more unresolved next hops
/// than this are refused (their packets dropped) until some resolve.
pub const MAX_INCOMPLETE: usize = 256;

type Key = (u16, u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Static,
    Reachable,
    Incomplete,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    mac: MacAddr,
    state: State,
    confirmed: u64,
    probe_at: u64,
    probes: u32,
}

/// The result of a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Use this MAC.
    Hit(MacAddr),
    /// Use this MAC, and send an ARP request to refresh it (stale entry).
    HitProbe(MacAddr),
    /// Unknown; a new incomplete entry was made: send an ARP request and
    /// hold the packet.
    MissSolicit,
    /// Resolution is already under way: hold the packet.
    MissPending,
    /// Unknown, and no room to track it.
    Full,
}

/// What learning an address did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    /// An incomplete entry resolved: release packets held for it.
    Resolved,
    /// A known entry was confirmed or changed, or a new one made.
    Updated,
    /// Nothing changed (static entry, or not to be created, or no room).
    Ignored,
}

/// What the timer asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerEvent {
    /// Send another ARP request for this next hop.
    Solicit { port: usize, ip: Ipv4Addr },
    /// Resolution failed: drop packets held for this next hop.
    Failed { port: usize, ip: Ipv4Addr },
}

#[derive(Debug)]
pub struct NeighborTable {
    map: HashMap<Key, Entry, foldhash::fast::RandomState>,
    capacity: usize,
    incomplete: Vec<Key>,
    cfg: ArpConfig,
}

fn key(port: usize, ip: Ipv4Addr) -> Key {
    (port as u16, u32::from(ip))
}

impl NeighborTable {
    pub fn new(cfg: ArpConfig) -> NeighborTable {
        let capacity = cfg.table_size;
        NeighborTable {
            map: HashMap::with_capacity_and_hasher(capacity, Default::default()),
            capacity,
            incomplete: Vec::with_capacity(MAX_INCOMPLETE),
            cfg,
        }
    }

    /// Adds a static entry (configuration time).
    pub fn add_static(&mut self, port: usize, ip: Ipv4Addr, mac: MacAddr) {
        self.map.insert(
            key(port, ip),
            Entry {
                mac,
                state: State::Static,
                confirmed: 0,
                probe_at: 0,
                probes: 0,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Resolves `ip` on `port` for a packet about to be sent at `now`.
    pub fn lookup(&mut self, port: usize, ip: Ipv4Addr, now: u64) -> Lookup {
        let k = key(port, ip);
        let cfg = self.cfg;
        if let Some(e) = self.map.get_mut(&k) {
            match e.state {
                State::Static => return Lookup::Hit(e.mac),
                State::Incomplete => return Lookup::MissPending,
                State::Reachable => {
                    if now < e.confirmed.saturating_add(cfg.reachable_us) {
                        return Lookup::Hit(e.mac);
                    }
                    if now < e.probe_at {
                        return Lookup::Hit(e.mac);
                    }
                    if e.probes < cfg.retries {
                        e.probes += 1;
                        e.probe_at = now.saturating_add(cfg.retry_us);
                        return Lookup::HitProbe(e.mac);
                    }
                    // Stale and silent through every probe: forget it.
                    self.map.remove(&k);
                }
            }
        }
        if self.map.len() >= self.capacity || self.incomplete.len() >= MAX_INCOMPLETE {
            return Lookup::Full;
        }
        self.map.insert(
            k,
            Entry {
                mac: MacAddr::ZERO,
                state: State::Incomplete,
                confirmed: 0,
                probe_at: now.saturating_add(cfg.retry_us),
                probes: 1,
            },
        );
        self.incomplete.push(k);
        Lookup::MissSolicit
    }

    /// Records that `ip` on `port` is at `mac`. `create` allows a new
    /// entry (we were the ARP target); otherwise only existing entries are
    /// updated, as Linux does with unsolicited ARP (arp_accept=0).
    pub fn learn(
        &mut self,
        port: usize,
        ip: Ipv4Addr,
        mac: MacAddr,
        now: u64,
        create: bool,
    ) -> Learn {
        let k = key(port, ip);
        let room = self.map.len() < self.capacity;
        match self.map.get_mut(&k) {
            Some(e) if e.state == State::Static => Learn::Ignored,
            Some(e) => {
                let was = e.state;
                *e = Entry {
                    mac,
                    state: State::Reachable,
                    confirmed: now,
                    probe_at: 0,
                    probes: 0,
                };
                if was == State::Incomplete {
                    self.incomplete.retain(|&x| x != k);
                    Learn::Resolved
                } else {
                    Learn::Updated
                }
            }
            None if create && room => {
                self.map.insert(
                    k,
                    Entry {
                        mac,
                        state: State::Reachable,
                        confirmed: now,
                        probe_at: 0,
                        probes: 0,
                    },
                );
                Learn::Updated
            }
            None => Learn::Ignored,
        }
    }

    /// Advances retries of incomplete entries; calls `f` for each request
    /// to send and each failure. Work is bounded by the incomplete count.
    pub fn on_timer(&mut self, now: u64, mut f: impl FnMut(TimerEvent)) {
        let cfg = self.cfg;
        let map = &mut self.map;
        self.incomplete.retain(|&k| {
            let Some(e) = map.get_mut(&k) else {
                return false;
            };
            if now < e.probe_at {
                return true;
            }
            let (port, ip) = (k.0 as usize, Ipv4Addr::from(k.1));
            if e.probes >= cfg.retries {
                map.remove(&k);
                f(TimerEvent::Failed { port, ip });
                false
            } else {
                e.probes += 1;
                e.probe_at = now.saturating_add(cfg.retry_us);
                f(TimerEvent::Solicit { port, ip });
                true
            }
        });
    }

    /// The MAC of a resolved entry, if any (no side effects).
    pub fn peek(&self, port: usize, ip: Ipv4Addr) -> Option<MacAddr> {
        self.map
            .get(&key(port, ip))
            .filter(|e| e.state != State::Incomplete)
            .map(|e| e.mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 9]);

    fn cfg() -> ArpConfig {
        ArpConfig {
            reachable_us: 100,
            retry_us: 10,
            retries: 3,
            queue: 8,
            table_size: 16,
        }
    }

    fn ip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }

    #[test]
    fn miss_then_resolve() {
        let mut t = NeighborTable::new(cfg());
        assert_eq!(t.lookup(0, ip(1), 0), Lookup::MissSolicit);
        assert_eq!(t.lookup(0, ip(1), 1), Lookup::MissPending);
        assert_eq!(t.learn(0, ip(1), MAC, 2, false), Learn::Resolved);
        assert_eq!(t.lookup(0, ip(1), 3), Lookup::Hit(MAC));
        // Another port is another entry.
        assert_eq!(t.lookup(1, ip(1), 3), Lookup::MissSolicit);
    }

    #[test]
    fn retries_then_failure() {
        let mut t = NeighborTable::new(cfg());
        assert_eq!(t.lookup(0, ip(1), 0), Lookup::MissSolicit);
        let mut ev = Vec::new();
        t.on_timer(5, |e| ev.push(e));
        assert!(ev.is_empty());
        for now in [10, 20, 30] {
            t.on_timer(now, |e| ev.push(e));
        }
        let s = TimerEvent::Solicit { port: 0, ip: ip(1) };
        assert_eq!(ev, vec![s, s, TimerEvent::Failed { port: 0, ip: ip(1) }]);
        // Gone: the next packet starts over.
        assert_eq!(t.lookup(0, ip(1), 31), Lookup::MissSolicit);
    }

    #[test]
    fn stale_entries_are_probed_then_forgotten() {
        let mut t = NeighborTable::new(cfg());
        t.learn(0, ip(1), MAC, 0, true);
        assert_eq!(t.lookup(0, ip(1), 99), Lookup::Hit(MAC));
        assert_eq!(t.lookup(0, ip(1), 100), Lookup::HitProbe(MAC));
        assert_eq!(t.lookup(0, ip(1), 105), Lookup::Hit(MAC));
        assert_eq!(t.lookup(0, ip(1), 110), Lookup::HitProbe(MAC));
        assert_eq!(t.lookup(0, ip(1), 120), Lookup::HitProbe(MAC));
        assert_eq!(t.lookup(0, ip(1), 130), Lookup::MissSolicit);
        // A reply in time keeps it fresh.
        t.learn(0, ip(2), MAC, 0, true);
        assert_eq!(t.lookup(0, ip(2), 100), Lookup::HitProbe(MAC));
        assert_eq!(t.learn(0, ip(2), MAC, 101, false), Learn::Updated);
        assert_eq!(t.lookup(0, ip(2), 150), Lookup::Hit(MAC));
    }

    #[test]
    fn static_entries_win() {
        let mut t = NeighborTable::new(cfg());
        t.add_static(0, ip(1), MAC);
        assert_eq!(
            t.learn(0, ip(1), MacAddr([2, 0, 0, 0, 0, 7]), 5, true),
            Learn::Ignored
        );
        assert_eq!(t.lookup(0, ip(1), u64::MAX / 2), Lookup::Hit(MAC));
    }

    #[test]
    fn unsolicited_replies_do_not_create() {
        let mut t = NeighborTable::new(cfg());
        assert_eq!(t.learn(0, ip(1), MAC, 0, false), Learn::Ignored);
        assert_eq!(t.peek(0, ip(1)), None);
        assert_eq!(t.learn(0, ip(1), MAC, 0, true), Learn::Updated);
        assert_eq!(t.peek(0, ip(1)), Some(MAC));
    }

    #[test]
    fn bounded() {
        let mut t = NeighborTable::new(cfg());
        for n in 0..16 {
            assert_eq!(t.lookup(0, ip(n), 0), Lookup::MissSolicit);
        }
        assert_eq!(t.lookup(0, ip(200), 0), Lookup::Full);
        assert_eq!(t.learn(0, ip(201), MAC, 0, true), Learn::Ignored);
        assert_eq!(t.len(), 16);
    }
}
