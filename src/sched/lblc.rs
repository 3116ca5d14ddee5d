//! lblc: locality-based least connection (net/netfilter/ipvs/ip_vs_lblc.c).
//!
//! For cache clusters: packets to the same destination address go to the
//! same server, so its cache stays warm. A per-service cache maps the
//! packet's destination address to a server. A cached server is kept while
//! it is AVAILABLE, has weight > 0 and is not "overloaded" in lblc's sense
//! (more active connections than its weight while some server is below
//! half its weight); the OVERLOAD flag is not looked at on this path.
//! Otherwise wlc picks a server and the entry is created or replaced.
//! Entries are collected as `cache` describes.
//!
//! Here each worker has its own cache (the kernel has one per service), so
//! two workers may map one address to different servers until their loads
//! converge; a snapshot change keeps the caches (`refresh_state`
//! re-resolves each entry's server by address and port, and an entry whose
//! server left the service acts as the kernel's trashed, not-AVAILABLE one).

use super::cache::{Cache, DEFAULT_CAPACITY, DEFAULT_EXPIRATION_US};
use super::common::{lblc_overloaded, overhead, weighted_least, DestIndex, DestRef};
use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

#[derive(Debug)]
pub struct Lblc {
    index: DestIndex,
    expiration_us: u64,
    capacity: usize,
}

/// One worker's cache of this service.
#[derive(Debug)]
pub struct LblcState {
    cache: Cache<DestRef>,
    insert_failures: u64,
}

impl LblcState {
    fn new(capacity: usize) -> Self {
        LblcState {
            cache: Cache::new(capacity),
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
}

pub fn build(_: SchedFlags, dests: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Lblc::new(
        dests,
        DEFAULT_EXPIRATION_US,
        DEFAULT_CAPACITY,
    )))
}

impl Lblc {
    /// `expiration_us` is sysctl lblc_expiration; `capacity` the cache
    /// entries preallocated per worker.
    pub fn new(dests: &dyn Dests, expiration_us: u64, capacity: usize) -> Self {
        Lblc {
            index: DestIndex::new(dests),
            expiration_us,
            capacity,
        }
    }

    fn state<'a>(&self, st: &'a mut SchedState) -> &'a mut LblcState {
        if !matches!(st, SchedState::Lblc(_)) {
            *st = SchedState::Lblc(Box::new(LblcState::new(self.capacity)));
        }
        match st {
            SchedState::Lblc(s) => s,
            _ => unreachable!("just set"),
        }
    }
}

impl Scheduler for Lblc {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn new_state(&self, _seed: u64) -> SchedState {
        SchedState::Lblc(Box::new(LblcState::new(self.capacity)))
    }

    fn refresh_state(&self, st: &mut SchedState, _: &dyn Dests) {
        self.state(st)
            .cache
            .for_each_val_mut(|r| self.index.reresolve(r));
    }

    fn schedule(&self, st: &mut SchedState, dests: &dyn Dests, input: &Input) -> Option<usize> {
        let s = self.state(st);
        let (key, now) = (u32::from(input.daddr), input.now_us);
        let hit = s.cache.find(key);
        if let Some(slot) = hit {
            let e = s.cache.slot_mut(slot);
            e.lastuse = now;
            if let Some(i) = e.val.resolve(dests) {
                if dests.available(i) && dests.weight(i) > 0 && !lblc_overloaded(dests, i) {
                    return Some(i);
                }
            }
        }
        let d = weighted_least(dests, overhead)?;
        let r = DestRef::of(dests, d);
        match hit {
            // `ip_vs_lblc_new` on an existing entry: a new server replaces
            // the entry (a fresh one in the kernel, so lastuse is now, as
            // it already is); the same server leaves it as it is.
            Some(slot) => s.cache.slot_mut(slot).val = r,
            None => {
                if s.cache.insert(key, r, now).is_none() {
                    s.insert_failures += 1;
                }
            }
        }
        Some(d)
    }

    fn tick(&self, st: &mut SchedState, now_us: u64) {
        self.state(st)
            .cache
            .tick(now_us, self.expiration_us, |_| {});
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{d, input_from, VecDests};
    use super::*;

    fn to(daddr: [u8; 4], now_us: u64) -> Input {
        input_from([1, 1, 1, 1], 1000, daddr, now_us)
    }

    #[test]
    fn spec_example() {
        // IPVS-SPEC.md: A w1, B w1, both idle. First packet to X -> A, cached.
        // Then A act=2, B act=0: 2 > 1 and 0*2 < 1 -> B, and the cache is replaced.
        let mut ds = VecDests(vec![d(1, 1), d(2, 1)]);
        let l = Lblc::new(&ds, DEFAULT_EXPIRATION_US, 64);
        let mut st = l.new_state(0);
        let x = [172, 16, 0, 1];
        assert_eq!(l.schedule(&mut st, &ds, &to(x, 0)), Some(0));
        ds.0[0].active = 2;
        assert_eq!(l.schedule(&mut st, &ds, &to(x, 1)), Some(1));
        ds.0[0].active = 0;
        ds.0[1].active = 1;
        assert_eq!(
            l.schedule(&mut st, &ds, &to(x, 2)),
            Some(1),
            "B is now cached"
        );
        let SchedState::Lblc(s) = &st else { panic!() };
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn sticky_despite_load_and_overload_flag() {
        let mut ds = VecDests(vec![d(1, 1), d(2, 1)]);
        let l = Lblc::new(&ds, DEFAULT_EXPIRATION_US, 64);
        let mut st = l.new_state(0);
        let x = [172, 16, 0, 1];
        assert_eq!(l.schedule(&mut st, &ds, &to(x, 0)), Some(0));
        // A more loaded than B but not "overloaded" (no one below half weight
        // ... B has 1 active, 2 < 1 false): A stays. The OVERLOAD flag is
        // not checked on a hit either.
        ds.0[0].active = 5;
        ds.0[1].active = 1;
        ds.0[0].overloaded = true;
        assert_eq!(l.schedule(&mut st, &ds, &to(x, 1)), Some(0));
        // Quiesced: rescheduled, and wlc skips the OVERLOAD A anyway.
        ds.0[0].weight = 0;
        assert_eq!(l.schedule(&mut st, &ds, &to(x, 2)), Some(1));
        // Another address is cached separately.
        ds = VecDests(vec![d(1, 1), d(2, 1).act(1)]);
        assert_eq!(l.schedule(&mut st, &ds, &to([172, 16, 0, 2], 3)), Some(0));
    }

    #[test]
    fn entries_survive_edits_and_removed_server_is_replaced() {
        let a = VecDests(vec![d(1, 1), d(2, 1).act(1), d(3, 1).act(1)]);
        let l = Lblc::new(&a, DEFAULT_EXPIRATION_US, 64);
        let mut st = l.new_state(0);
        let x = [172, 16, 0, 1];
        assert_eq!(l.schedule(&mut st, &a, &to(x, 0)), Some(0));
        // A new server in front: the entry follows 10.0.0.1 to index 1.
        let b = VecDests(vec![
            d(4, 1).act(9),
            d(1, 1).act(3),
            d(2, 1).act(1),
            d(3, 1).act(1),
        ]);
        let l2 = Lblc::new(&b, DEFAULT_EXPIRATION_US, 64);
        l2.refresh_state(&mut st, &b);
        assert_eq!(l2.schedule(&mut st, &b, &to(x, 1)), Some(1));
        // 10.0.0.1 deleted: rescheduled with wlc.
        let c = VecDests(vec![d(4, 1).act(9), d(2, 1).act(2), d(3, 1).act(1)]);
        let l3 = Lblc::new(&c, DEFAULT_EXPIRATION_US, 64);
        l3.refresh_state(&mut st, &c);
        assert_eq!(l3.schedule(&mut st, &c, &to(x, 2)), Some(2));
        // Not AVAILABLE (trashed) is also rescheduled.
        let mut c2 = c.clone();
        c2.0[2].available = false;
        c2.0[1].active = 0;
        assert_eq!(l3.schedule(&mut st, &c2, &to(x, 3)), Some(1));
    }

    #[test]
    fn gc_expires_idle_addresses() {
        let ds = VecDests(vec![d(1, 1)]);
        let l = Lblc::new(&ds, 10 * 60 * 1_000_000, 64);
        let mut st = l.new_state(0);
        l.tick(&mut st, 0);
        assert_eq!(l.schedule(&mut st, &ds, &to([172, 16, 0, 1], 0)), Some(0));
        let mut t = 0;
        while t <= 31 * 60 * 1_000_000 {
            l.tick(&mut st, t);
            t += 1_000_000;
        }
        let SchedState::Lblc(s) = &st else { panic!() };
        assert!(
            s.is_empty(),
            "the 30th run's full check removed the idle entry"
        );
    }

    #[test]
    fn full_cache_still_schedules() {
        let ds = VecDests(vec![d(1, 1), d(2, 1)]);
        let l = Lblc::new(&ds, DEFAULT_EXPIRATION_US, 1);
        let mut st = l.new_state(0);
        assert_eq!(l.schedule(&mut st, &ds, &to([172, 16, 0, 1], 0)), Some(0));
        assert_eq!(l.schedule(&mut st, &ds, &to([172, 16, 0, 2], 0)), Some(0));
        let SchedState::Lblc(s) = &st else { panic!() };
        assert_eq!((s.len(), s.insert_failures()), (1, 1));
    }
}
