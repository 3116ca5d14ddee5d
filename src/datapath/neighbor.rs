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
//!
//! Under pressure the table behaves like a kernel's (Linux's neighbour
//! garbage collection): `table_size` bounds the learned and incomplete
//! entries (static ones come on top), and when it is full a new entry
//! takes the place of a learned one that nothing holds: a stale one if the
//! clock hand meets one first, else the least recently used as CLOCK (the
//! second-chance algorithm) approximates it. Static entries are never
//! evicted, nor incomplete ones (frames wait on them), so a legitimate new
//! neighbour always gets an entry while any learned entry exists. The
//! search is bounded by two turns of the hand. Which senders are worth
//! learning at all (only those on a connected subnet) is the pipeline's
//! call.
//!
//! A small direct-mapped cache in front of the map answers the lookups of
//! every forwarded packet (a few next hops: real servers, gateways) for as
//! long as the answer would be the same plain hit: a static entry until it
//! changes, a learned one until it goes stale. Every change to an entry,
//! and the CLOCK hand clearing its reference bit, drops it from the cache,
//! so the next lookup goes to the map again (and marks it used).

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
    /// Index in the CLOCK ring (`NO_SLOT` for static entries).
    slot: u32,
    /// Used since the hand last passed (CLOCK's reference bit).
    referenced: bool,
}

const NO_SLOT: u32 = u32::MAX;

/// Entries in the lookup cache (a power of two).
const HOT: usize = 64;

/// A cached plain hit: `key`'s MAC until `until` (µs, exclusive).
#[derive(Debug, Clone, Copy)]
struct Hot {
    key: Key,
    mac: MacAddr,
    until: u64,
}

/// An empty cache entry (no key has port `u16::MAX`: ports are few).
const COLD: Hot = Hot {
    key: (u16::MAX, 0),
    mac: MacAddr::ZERO,
    until: 0,
};

/// Drops `k` from the lookup cache `hot` (a function of the array, not of
/// the table, so that it can be called while a map entry is borrowed).
#[inline]
fn unhot(hot: &mut [Hot; HOT], k: Key) {
    let h = &mut hot[hot_index(k)];
    if h.key == k {
        *h = COLD;
    }
}

#[inline]
fn hot_index(k: Key) -> usize {
    ((k.1 ^ (k.0 as u32) << 24).wrapping_mul(0x9E37_79B9) >> (32 - HOT.trailing_zeros())) as usize
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
    /// Dynamic (learned and incomplete) entries at most.
    capacity: usize,
    incomplete: Vec<Key>,
    /// The CLOCK ring: the key of each dynamic entry, by slot.
    slots: Vec<Option<Key>>,
    /// Slots no entry uses.
    free: Vec<u32>,
    hand: usize,
    /// Learned entries evicted to make room.
    evicted: u64,
    cfg: ArpConfig,
    /// The lookup cache (see the module docs).
    hot: [Hot; HOT],
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
            slots: vec![None; capacity],
            free: (0..capacity as u32).rev().collect(),
            hand: 0,
            evicted: 0,
            cfg,
            hot: [COLD; HOT],
        }
    }

    /// Adds a static entry (configuration time). Static entries come on
    /// top of `table_size`, which bounds what is learned.
    pub fn add_static(&mut self, port: usize, ip: Ipv4Addr, mac: MacAddr) {
        let k = key(port, ip);
        self.remove(k);
        self.map.reserve(1);
        self.map.insert(
            k,
            Entry {
                mac,
                state: State::Static,
                confirmed: 0,
                probe_at: 0,
                probes: 0,
                slot: NO_SLOT,
                referenced: false,
            },
        );
    }

    /// Learned entries evicted so far to make room for new ones.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Removes an entry, freeing its slot.
    fn remove(&mut self, k: Key) {
        unhot(&mut self.hot, k);
        if let Some(e) = self.map.remove(&k) {
            if e.slot != NO_SLOT {
                self.slots[e.slot as usize] = None;
                self.free.push(e.slot);
            }
        }
    }

    /// A free slot, evicting a learned entry nothing holds if need be.
    fn take_slot(&mut self, now: u64) -> Option<u32> {
        if let Some(s) = self.free.pop() {
            return Some(s);
        }
        let reachable = self.cfg.reachable_us;
        for _ in 0..2 * self.capacity {
            let slot = self.hand;
            self.hand = (self.hand + 1) % self.capacity;
            let Some(k) = self.slots[slot] else {
                continue;
            };
            let Some(e) = self.map.get_mut(&k) else {
                continue;
            };
            if e.state != State::Reachable {
                // Incomplete: frames are waiting on it.
                continue;
            }
            let stale = now >= e.confirmed.saturating_add(reachable);
            if e.referenced && !stale {
                e.referenced = false;
                // Cached hits would not set the bit again.
                unhot(&mut self.hot, k);
                continue;
            }
            self.remove(k);
            self.evicted += 1;
            return self.free.pop();
        }
        None
    }

    /// Inserts a new dynamic entry; false if there is no room.
    fn insert_dynamic(&mut self, k: Key, mut e: Entry, now: u64) -> bool {
        let Some(slot) = self.take_slot(now) else {
            return false;
        };
        e.slot = slot;
        self.slots[slot as usize] = Some(k);
        self.map.insert(k, e);
        true
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Resolves `ip` on `port` for a packet about to be sent at `now`.
    #[inline]
    pub fn lookup(&mut self, port: usize, ip: Ipv4Addr, now: u64) -> Lookup {
        let k = key(port, ip);
        let h = &self.hot[hot_index(k)];
        if h.key == k && now < h.until {
            return Lookup::Hit(h.mac);
        }
        self.lookup_map(k, now)
    }

    fn lookup_map(&mut self, k: Key, now: u64) -> Lookup {
        let cfg = self.cfg;
        if let Some(e) = self.map.get_mut(&k) {
            let hot = &mut self.hot[hot_index(k)];
            match e.state {
                State::Static => {
                    *hot = Hot {
                        key: k,
                        mac: e.mac,
                        until: u64::MAX,
                    };
                    return Lookup::Hit(e.mac);
                }
                State::Incomplete => return Lookup::MissPending,
                State::Reachable => {
                    e.referenced = true;
                    let fresh_until = e.confirmed.saturating_add(cfg.reachable_us);
                    if now < fresh_until {
                        *hot = Hot {
                            key: k,
                            mac: e.mac,
                            until: fresh_until,
                        };
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
                    self.remove(k);
                }
            }
        }
        if self.incomplete.len() >= MAX_INCOMPLETE {
            return Lookup::Full;
        }
        let e = Entry {
            mac: MacAddr::ZERO,
            state: State::Incomplete,
            confirmed: 0,
            probe_at: now.saturating_add(cfg.retry_us),
            probes: 1,
            slot: NO_SLOT,
            referenced: true,
        };
        if !self.insert_dynamic(k, e, now) {
            return Lookup::Full;
        }
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
        match self.map.get_mut(&k) {
            Some(e) if e.state == State::Static => Learn::Ignored,
            Some(e) => {
                unhot(&mut self.hot, k);
                let was = e.state;
                *e = Entry {
                    mac,
                    state: State::Reachable,
                    confirmed: now,
                    probe_at: 0,
                    probes: 0,
                    slot: e.slot,
                    referenced: true,
                };
                if was == State::Incomplete {
                    self.incomplete.retain(|&x| x != k);
                    Learn::Resolved
                } else {
                    Learn::Updated
                }
            }
            None if create => {
                let e = Entry {
                    mac,
                    state: State::Reachable,
                    confirmed: now,
                    probe_at: 0,
                    probes: 0,
                    slot: NO_SLOT,
                    // Not used yet: the first to go if nothing uses it.
                    referenced: false,
                };
                if self.insert_dynamic(k, e, now) {
                    Learn::Updated
                } else {
                    Learn::Ignored
                }
            }
            None => Learn::Ignored,
        }
    }

    /// Advances retries of incomplete entries; calls `f` for each request
    /// to send and each failure. Work is bounded by the incomplete count.
    pub fn on_timer(&mut self, now: u64, mut f: impl FnMut(TimerEvent)) {
        let cfg = self.cfg;
        let map = &mut self.map;
        let (slots, free) = (&mut self.slots, &mut self.free);
        self.incomplete.retain(|&k| {
            let Some(e) = map.get_mut(&k) else {
                return false;
            };
            if now < e.probe_at {
                return true;
            }
            let (port, ip) = (k.0 as usize, Ipv4Addr::from(k.1));
            if e.probes >= cfg.retries {
                if e.slot != NO_SLOT {
                    slots[e.slot as usize] = None;
                    free.push(e.slot);
                }
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
    fn bounded_by_incomplete_entries() {
        let mut t = NeighborTable::new(cfg());
        for n in 0..16 {
            assert_eq!(t.lookup(0, ip(n), 0), Lookup::MissSolicit);
        }
        // Every entry has frames waiting: nothing can be evicted.
        assert_eq!(t.lookup(0, ip(200), 0), Lookup::Full);
        assert_eq!(t.learn(0, ip(201), MAC, 0, true), Learn::Ignored);
        assert_eq!(t.len(), 16);
        assert_eq!(t.evicted(), 0);
    }

    /// The lookup cache never answers with what the map no longer says.
    #[test]
    fn cached_hits_follow_every_change() {
        let mut t = NeighborTable::new(cfg());
        let other = MacAddr([2, 0, 0, 0, 0, 7]);
        t.learn(0, ip(1), MAC, 0, true);
        assert_eq!(t.lookup(0, ip(1), 1), Lookup::Hit(MAC));
        assert_eq!(t.lookup(0, ip(1), 2), Lookup::Hit(MAC), "cached");
        // A new MAC is used at once.
        t.learn(0, ip(1), other, 3, false);
        assert_eq!(t.lookup(0, ip(1), 4), Lookup::Hit(other));
        // Stale (100 µs after the confirmation at 3): probed, not cached.
        assert_eq!(t.lookup(0, ip(1), 103), Lookup::HitProbe(other));
        // A static entry replacing a learned one.
        t.add_static(0, ip(1), MAC);
        assert_eq!(t.lookup(0, ip(1), 104), Lookup::Hit(MAC));
        // Another port, same address: its own entry.
        assert_eq!(t.lookup(1, ip(1), 105), Lookup::MissSolicit);
    }

    /// A full table of learned entries makes room for a new neighbour by
    /// evicting one nothing uses; static entries stay, and so do entries
    /// in use while an unused one exists.
    #[test]
    fn full_tables_evict_unused_learned_entries() {
        let mut t = NeighborTable::new(cfg());
        t.add_static(0, ip(250), MAC);
        for n in 0..16 {
            assert_eq!(t.learn(0, ip(n), MAC, 0, true), Learn::Updated);
        }
        assert_eq!(t.len(), 17);
        // ip(3) is in use all along, while a flood of new senders goes on.
        for n in 100..140 {
            assert_eq!(t.lookup(0, ip(3), 1), Lookup::Hit(MAC));
            assert_eq!(t.learn(0, ip(n), MAC, 2, true), Learn::Updated);
            assert_eq!(t.len(), 17, "bounded");
        }
        assert_eq!(t.evicted(), 40);
        assert_eq!(t.peek(0, ip(250)), Some(MAC), "static entries stay");
        assert_eq!(t.peek(0, ip(3)), Some(MAC), "the used entry stays");
        // A new next hop still resolves.
        assert_eq!(t.lookup(0, ip(200), 3), Lookup::MissSolicit);
        assert_eq!(t.learn(0, ip(200), MAC, 4, false), Learn::Resolved);
        assert_eq!(t.lookup(0, ip(200), 5), Lookup::Hit(MAC));
    }

    /// Stale entries go first, even if they were used.
    #[test]
    fn stale_entries_are_evicted_before_fresh_ones() {
        let mut t = NeighborTable::new(cfg());
        for n in 0..16 {
            t.learn(0, ip(n), MAC, if n == 9 { 0 } else { 500 }, true);
            t.lookup(0, ip(n), 550);
        }
        // ip(9) was confirmed at 0: stale at 550 (reachable 100).
        assert_eq!(t.learn(0, ip(99), MAC, 560, true), Learn::Updated);
        assert_eq!(t.peek(0, ip(9)), None);
        assert_eq!(t.evicted(), 1);
    }

    /// Slots freed by failures and forgotten entries are reused.
    #[test]
    fn freed_slots_are_reused() {
        let mut t = NeighborTable::new(cfg());
        for round in 0..5u64 {
            for n in 0..16 {
                assert_eq!(t.lookup(0, ip(n), round * 100), Lookup::MissSolicit);
            }
            for now in 1..=3 {
                t.on_timer(round * 100 + now * 10, |_| {});
            }
            assert!(t.is_empty(), "round {round}");
        }
        assert_eq!(t.evicted(), 0);
    }
}
