//! lblcr: locality-based least connection with replication
//! (net/netfilter/ipvs/ip_vs_lblcr.c).
//!
//! Like lblc, but a destination address maps to a *set* of servers, so a
//! hot address can be served by several caches. On a hit the set's
//! weighted-least member (AVAILABLE, not OVERLOAD, weight > 0) is used
//! unless lblc-"overloaded", in which case wlc picks a server of the whole
//! service and it joins the set. A set of more than one member that has not
//! changed for the expiration (sysctl lblcr_expiration, default 24 h) loses
//! its weighted-most-loaded member, one per expiration period. Members join
//! at the head of the set. Entries are collected as `cache` describes.
//!
//! Members come from a preallocated pool per worker; a full pool, like the
//! kernel's failed GFP_ATOMIC allocation, leaves the set unchanged and the
//! server is still used. A member whose server left the service stays in
//! the set as the kernel's trashed destination does (it returns to use if
//! the server is added back): it is never the least loaded (not AVAILABLE)
//! and, unlike in the kernel, where its last weight and counters still
//! count, never the most loaded either, since a snapshot no longer knows
//! them.

use super::cache::{Cache, DEFAULT_CAPACITY, DEFAULT_EXPIRATION_US};
use super::common::{
    lblc_overloaded, overhead, usable, weighted_least, wmul, DestIndex, DestRef, NONE,
};
use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

/// A set: its member list (indices into the member pool) and when it last
/// changed.
#[derive(Clone, Copy, Debug)]
struct Set {
    head: u32,
    size: u32,
    lastmod: u64,
}

#[derive(Debug)]
struct Member {
    dest: DestRef,
    next: u32,
}

/// Set members for all entries: a free list over a preallocated Vec.
#[derive(Debug)]
struct Pool {
    members: Vec<Member>,
    cap: usize,
    free: u32,
}

impl Pool {
    fn alloc(&mut self, dest: DestRef, next: u32) -> Option<u32> {
        let m = Member { dest, next };
        if self.free != NONE {
            let i = self.free;
            self.free = self.members[i as usize].next;
            self.members[i as usize] = m;
            Some(i)
        } else if self.members.len() < self.cap {
            self.members.push(m);
            Some(self.members.len() as u32 - 1)
        } else {
            None
        }
    }

    fn release(&mut self, i: u32) {
        self.members[i as usize].next = self.free;
        self.free = i;
    }

    /// `ip_vs_dest_set_eraseall`: the entry is going.
    fn release_set(&mut self, set: Set) {
        let mut m = set.head;
        while m != NONE {
            let next = self.members[m as usize].next;
            self.release(m);
            m = next;
        }
    }

    /// Members of a set with their pool index, in set order.
    fn iter(&self, set: Set) -> impl Iterator<Item = (u32, &Member)> + '_ {
        let mut m = set.head;
        std::iter::from_fn(move || {
            (m != NONE).then(|| {
                let i = m;
                m = self.members[i as usize].next;
                (i, &self.members[i as usize])
            })
        })
    }

    /// `ip_vs_dest_set_insert`: at the head; with `check`, a server already
    /// in the set is not added twice (and the set is then unchanged).
    fn insert(&mut self, set: &mut Set, dest: DestRef, check: bool, now: u64) {
        if check && self.iter(*set).any(|(_, m)| m.dest.same_dest(&dest)) {
            return;
        }
        if let Some(i) = self.alloc(dest, set.head) {
            set.head = i;
            set.size += 1;
            set.lastmod = now;
        }
    }

    /// `ip_vs_dest_set_erase` of pool member `target`.
    fn erase(&mut self, set: &mut Set, target: u32, now: u64) {
        let mut prev = NONE;
        let mut m = set.head;
        while m != NONE {
            let next = self.members[m as usize].next;
            if m == target {
                if prev == NONE {
                    set.head = next;
                } else {
                    self.members[prev as usize].next = next;
                }
                self.release(m);
                set.size -= 1;
                set.lastmod = now;
                return;
            }
            prev = m;
            m = next;
        }
    }

    /// `ip_vs_dest_set_min`: the wlc rule over the members, requiring
    /// AVAILABLE (a member may be a server that left the service).
    fn min(&self, set: Set, d: &dyn Dests) -> Option<usize> {
        let mut members = self.iter(set).filter_map(|(_, m)| m.dest.resolve(d));
        let mut least = members.find(|&i| usable(d, i) && d.available(i))?;
        let mut loh = overhead(d, least);
        for i in members.filter(|&i| !d.overloaded(i)) {
            let doh = overhead(d, i);
            if wmul(loh, d.weight(i)) > wmul(doh, d.weight(least)) && d.available(i) {
                least = i;
                loh = doh;
            }
        }
        Some(least)
    }

    /// `ip_vs_dest_set_max`: the weighted most-loaded member with weight
    /// > 0 (strict `<`, so the first wins a tie), as a pool index.
    fn max(&self, set: Set, d: &dyn Dests) -> Option<u32> {
        let mut members = self
            .iter(set)
            .filter_map(|(m, mem)| mem.dest.resolve(d).map(|i| (m, i)));
        let (mut most_m, mut most) = members.find(|&(_, i)| d.weight(i) > 0)?;
        let mut moh = overhead(d, most);
        for (m, i) in members {
            let doh = overhead(d, i);
            if wmul(moh, d.weight(i)) < wmul(doh, d.weight(most)) && d.weight(i) > 0 {
                (most_m, most, moh) = (m, i, doh);
            }
        }
        Some(most_m)
    }
}

/// One worker's address-to-set cache of this service.
#[derive(Debug)]
pub struct LblcrState {
    cache: Cache<Set>,
    pool: Pool,
    insert_failures: u64,
}

impl LblcrState {
    fn new(capacity: usize) -> Self {
        LblcrState {
            cache: Cache::new(capacity),
            // Two members per entry on average before the pool runs dry.
            pool: Pool {
                members: Vec::with_capacity(2 * capacity),
                cap: 2 * capacity,
                free: NONE,
            },
            insert_failures: 0,
        }
    }

    /// Cached destination addresses.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Picks not cached because the preallocated cache was full.
    pub fn insert_failures(&self) -> u64 {
        self.insert_failures
    }

    /// The servers (address, port) cached for `daddr`, in set order.
    pub fn set_of(&self, daddr: std::net::Ipv4Addr) -> Vec<(std::net::Ipv4Addr, u16)> {
        let Some(slot) = self.cache.find(u32::from(daddr)) else {
            return vec![];
        };
        let set = self.cache.slot(slot).val;
        self.pool
            .iter(set)
            .map(|(_, m)| (m.dest.addr.into(), m.dest.port))
            .collect()
    }
}

#[derive(Debug)]
pub struct Lblcr {
    index: DestIndex,
    expiration_us: u64,
    capacity: usize,
}

pub fn build(_: SchedFlags, dests: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Lblcr::new(
        dests,
        DEFAULT_EXPIRATION_US,
        DEFAULT_CAPACITY,
    )))
}

impl Lblcr {
    /// `expiration_us` is sysctl lblcr_expiration; `capacity` the cache
    /// entries preallocated per worker (members: twice that).
    pub fn new(dests: &dyn Dests, expiration_us: u64, capacity: usize) -> Self {
        Lblcr {
            index: DestIndex::new(dests),
            expiration_us,
            capacity,
        }
    }

    fn state<'a>(&self, st: &'a mut SchedState) -> &'a mut LblcrState {
        if !matches!(st, SchedState::Lblcr(_)) {
            *st = SchedState::Lblcr(Box::new(LblcrState::new(self.capacity)));
        }
        match st {
            SchedState::Lblcr(s) => s,
            _ => unreachable!("just set"),
        }
    }
}

impl Scheduler for Lblcr {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    fn new_state(&self, _seed: u64) -> SchedState {
        SchedState::Lblcr(Box::new(LblcrState::new(self.capacity)))
    }

    fn refresh_state(&self, st: &mut SchedState, _: &dyn Dests) {
        let s = self.state(st);
        let pool = &mut s.pool;
        s.cache.for_each_val_mut(|set| {
            let mut m = set.head;
            while m != NONE {
                let mem = &mut pool.members[m as usize];
                self.index.reresolve(&mut mem.dest);
                m = mem.next;
            }
        });
    }

    fn schedule(&self, st: &mut SchedState, dests: &dyn Dests, input: &Input) -> Option<usize> {
        let s = self.state(st);
        let (key, now) = (u32::from(input.daddr), input.now_us);
        let Some(slot) = s.cache.find(key) else {
            let d = weighted_least(dests, overhead)?;
            let empty = Set {
                head: NONE,
                size: 0,
                lastmod: now,
            };
            match s.cache.insert(key, empty, now) {
                Some(slot) => {
                    let mut set = empty;
                    s.pool.insert(&mut set, DestRef::of(dests, d), false, now);
                    s.cache.slot_mut(slot).val = set;
                }
                None => s.insert_failures += 1,
            }
            return Some(d);
        };
        s.cache.slot_mut(slot).lastuse = now;
        let mut set = s.cache.slot(slot).val;
        let dest = s.pool.min(set, dests);
        // Shrink a set that has been stable for the expiration: it was
        // grown for a peak that is over.
        if set.size > 1 && now > set.lastmod.saturating_add(self.expiration_us) {
            if let Some(m) = s.pool.max(set, dests) {
                s.pool.erase(&mut set, m, now);
            }
        }
        let pick = match dest {
            Some(d) if !lblc_overloaded(dests, d) => Some(d),
            _ => weighted_least(dests, overhead).inspect(|&d| {
                s.pool.insert(&mut set, DestRef::of(dests, d), true, now);
            }),
        };
        s.cache.slot_mut(slot).val = set;
        pick
    }

    fn tick(&self, st: &mut SchedState, now_us: u64) {
        let s = self.state(st);
        let pool = &mut s.pool;
        s.cache
            .tick(now_us, self.expiration_us, |set| pool.release_set(set));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{d, input_from, VecDests};
    use super::*;
    use std::net::Ipv4Addr;

    const X: [u8; 4] = [172, 16, 0, 1];

    fn to(now_us: u64) -> Input {
        input_from([1, 1, 1, 1], 1000, X, now_us)
    }

    fn set(st: &SchedState) -> Vec<u8> {
        let SchedState::Lblcr(s) = st else { panic!() };
        s.set_of(Ipv4Addr::from(X))
            .iter()
            .map(|(a, _)| a.octets()[3])
            .collect()
    }

    #[test]
    fn spec_example() {
        // IPVS-SPEC.md: set {A}; A w1 act2, B w2 act0 -> B is added and returned.
        let mut ds = VecDests(vec![d(1, 1), d(2, 2).act(1)]);
        let l = Lblcr::new(&ds, DEFAULT_EXPIRATION_US, 64);
        let mut st = l.new_state(0);
        assert_eq!(l.schedule(&mut st, &ds, &to(0)), Some(0));
        assert_eq!(set(&st), [1]);
        ds.0[0].active = 2;
        ds.0[1].active = 0;
        assert_eq!(l.schedule(&mut st, &ds, &to(1)), Some(1));
        assert_eq!(set(&st), [2, 1], "new members go to the head");
        // Both members now: the weighted least of the set is used.
        ds.0[1].active = 3;
        ds.0[0].active = 1;
        assert_eq!(l.schedule(&mut st, &ds, &to(2)), Some(0));
        assert_eq!(set(&st), [2, 1]);
    }

    #[test]
    fn stable_set_sheds_most_loaded_member_after_expiration() {
        let exp = 1_000_000;
        let mut ds = VecDests(vec![d(1, 1), d(2, 2)]);
        let l = Lblcr::new(&ds, exp, 64);
        let mut st = l.new_state(0);
        assert_eq!(l.schedule(&mut st, &ds, &to(0)), Some(0));
        ds.0[0].active = 2;
        assert_eq!(l.schedule(&mut st, &ds, &to(10)), Some(1));
        assert_eq!(set(&st), [2, 1]);
        // Within the expiration nothing goes; after it, A (2/1 > 0/2) goes,
        // while this pick still uses the set's least, B.
        assert_eq!(l.schedule(&mut st, &ds, &to(10 + exp)), Some(1));
        assert_eq!(set(&st), [2, 1]);
        assert_eq!(l.schedule(&mut st, &ds, &to(11 + exp)), Some(1));
        assert_eq!(set(&st), [2]);
        // A single member is never removed.
        assert_eq!(l.schedule(&mut st, &ds, &to(10 * exp)), Some(1));
        assert_eq!(set(&st), [2]);
    }

    #[test]
    fn unavailable_members_are_skipped_and_kept() {
        let a = VecDests(vec![d(1, 1), d(2, 1).act(1)]);
        let l = Lblcr::new(&a, DEFAULT_EXPIRATION_US, 64);
        let mut st = l.new_state(0);
        assert_eq!(l.schedule(&mut st, &a, &to(0)), Some(0));
        // 10.0.0.1 leaves: the set has no usable member, wlc adds B.
        let b = VecDests(vec![d(2, 1).act(1)]);
        let l2 = Lblcr::new(&b, DEFAULT_EXPIRATION_US, 64);
        l2.refresh_state(&mut st, &b);
        assert_eq!(l2.schedule(&mut st, &b, &to(1)), Some(0));
        assert_eq!(set(&st), [2, 1]);
        // It comes back idle: its membership is live again and it is least.
        let c = VecDests(vec![d(2, 1).act(1), d(1, 1)]);
        let l3 = Lblcr::new(&c, DEFAULT_EXPIRATION_US, 64);
        l3.refresh_state(&mut st, &c);
        assert_eq!(l3.schedule(&mut st, &c, &to(2)), Some(1));
        assert_eq!(set(&st), [2, 1]);
    }

    #[test]
    fn gc_frees_sets_and_members_are_reused() {
        let ds = VecDests(vec![d(1, 1), d(2, 1)]);
        let l = Lblcr::new(&ds, 60 * 1_000_000, 1);
        let mut st = l.new_state(0);
        l.tick(&mut st, 0);
        assert_eq!(l.schedule(&mut st, &ds, &to(0)), Some(0));
        let other = input_from([1, 1, 1, 1], 1000, [172, 16, 0, 2], 0);
        assert_eq!(l.schedule(&mut st, &ds, &other), Some(0));
        {
            let SchedState::Lblcr(s) = &st else { panic!() };
            assert_eq!((s.len(), s.insert_failures()), (1, 1));
        }
        let mut t = 0;
        while t <= 31 * 60 * 1_000_000 {
            l.tick(&mut st, t);
            t += 1_000_000;
        }
        let SchedState::Lblcr(s) = &st else { panic!() };
        assert!(s.is_empty());
        assert_eq!(s.pool.free, 0, "the member went back to the pool");
        assert_eq!(l.schedule(&mut st, &ds, &other), Some(0));
        assert_eq!(set(&st), Vec::<u8>::new(), "X is gone");
    }
}
