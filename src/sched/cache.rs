//! The destination-address cache lblc and lblcr share
//! (net/netfilter/ipvs/ip_vs_lblc.c, ip_vs_lblcr.c): 1024 hash buckets keyed
//! by `hash_32(daddr, 10)`, entries stamped with their last use, and the
//! kernel's garbage collector.
//!
//! Memory: the kernel allocates an entry per new destination address
//! (GFP_ATOMIC) and, when that fails, schedules without caching. Here the
//! entries come from a pool of fixed capacity allocated with the state,
//! and a full pool is that allocation failure: the server is still
//! returned, the address is not cached until the collector frees entries.
//! Freed entries are reused.
//!
//! Collection (`ip_vs_lblc_check_expire`), on a timer every 60 s:
//! - every 30th run that found the table small (a counter that only counts
//!   those runs), a full pass deletes entries unused for the expiration
//!   (sysctl lblc_expiration / lblcr_expiration, default 24 h);
//! - otherwise, if there are more than 16384 entries (1024 * 16), a pass
//!   from where the last one stopped deletes entries unused for 6 min until
//!   it has deleted min((entries - 16384) * 4/3, 8192), checking after each
//!   bucket.
//!
//! The kernel walks all 1024 buckets in one timer run. To bound the work
//! per call, [`Cache::tick`] walks at most 64 buckets and resumes the same
//! pass (with the time it started at) on the next call; the next timer is
//! due 60 s after the pass started.

use super::common::{hash_32, NONE};

const TAB_BITS: u32 = 10;
const TAB_SIZE: usize = 1 << TAB_BITS;
const TAB_MASK: usize = TAB_SIZE - 1;
/// `tbl->max_size`: above this many entries the timer collects idle ones.
pub(crate) const MAX_SIZE: usize = TAB_SIZE * 16;
const CHECK_EXPIRE_INTERVAL_US: u64 = 60 * 1_000_000;
/// ENTRY_TIMEOUT: idle time after which an entry may go when the table is
/// over `MAX_SIZE`.
const ENTRY_TIMEOUT_US: u64 = 6 * 60 * 1_000_000;
const COUNT_FOR_FULL_EXPIRATION: u32 = 30;
/// Default sysctl lblc_expiration / lblcr_expiration.
pub(super) const DEFAULT_EXPIRATION_US: u64 = 24 * 60 * 60 * 1_000_000;
/// Entries preallocated per worker and service: twice the collector's
/// threshold, so that the kernel's collection behaviour above it is kept.
pub(super) const DEFAULT_CAPACITY: usize = 2 * MAX_SIZE;
/// Buckets one `tick` walks at most.
const GC_BUCKETS_PER_TICK: usize = 64;

pub(crate) struct Slot<V> {
    pub key: u32,
    pub lastuse: u64,
    next: u32,
    pub val: V,
}

/// A collection pass in progress.
#[derive(Clone, Copy, Debug)]
struct Pass {
    /// Full expiration check, or collection of a full table.
    full: bool,
    /// Entries still to delete (partial pass only).
    goal: i64,
    /// The time the pass started at, as the kernel reads jiffies once.
    now: u64,
    /// Buckets left to walk, and the last bucket walked.
    left: usize,
    j: usize,
}

#[derive(Debug)]
struct Gc {
    next_due: Option<u64>,
    counter: u32,
    rover: usize,
    pass: Option<Pass>,
}

pub(crate) struct Cache<V> {
    heads: Box<[u32]>,
    slots: Vec<Slot<V>>,
    cap: usize,
    free: u32,
    len: usize,
    gc: Gc,
}

impl<V> std::fmt::Debug for Cache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.len)
            .field("cap", &self.cap)
            .field("gc", &self.gc)
            .finish()
    }
}

impl<V: Copy> Cache<V> {
    /// Allocates room for `cap` entries up front: inserts never allocate.
    pub(super) fn new(cap: usize) -> Self {
        Cache {
            heads: vec![NONE; TAB_SIZE].into_boxed_slice(),
            slots: Vec::with_capacity(cap),
            cap,
            free: NONE,
            len: 0,
            gc: Gc {
                next_due: None,
                counter: 1,
                rover: 0,
                pass: None,
            },
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn bucket(key: u32) -> usize {
        hash_32(key, TAB_BITS) as usize
    }

    pub(super) fn find(&self, key: u32) -> Option<usize> {
        let mut s = self.heads[Self::bucket(key)];
        while s != NONE {
            let slot = &self.slots[s as usize];
            if slot.key == key {
                return Some(s as usize);
            }
            s = slot.next;
        }
        None
    }

    pub(super) fn slot(&self, i: usize) -> &Slot<V> {
        &self.slots[i]
    }

    pub(super) fn slot_mut(&mut self, i: usize) -> &mut Slot<V> {
        &mut self.slots[i]
    }

    /// Adds an entry for a key not in the cache, at the head of its bucket
    /// as `hlist_add_head` does. None when the pool is full.
    pub(super) fn insert(&mut self, key: u32, val: V, now: u64) -> Option<usize> {
        let b = Self::bucket(key);
        let slot = Slot {
            key,
            lastuse: now,
            next: self.heads[b],
            val,
        };
        let i = if self.free != NONE {
            let i = self.free as usize;
            self.free = self.slots[i].next;
            self.slots[i] = slot;
            i
        } else if self.slots.len() < self.cap {
            self.slots.push(slot);
            self.slots.len() - 1
        } else {
            return None;
        };
        self.heads[b] = i as u32;
        self.len += 1;
        Some(i)
    }

    /// Calls `f` on every entry's value (to re-resolve destinations).
    pub(super) fn for_each_val_mut(&mut self, mut f: impl FnMut(&mut V)) {
        for b in 0..TAB_SIZE {
            let mut s = self.heads[b];
            while s != NONE {
                let slot = &mut self.slots[s as usize];
                f(&mut slot.val);
                s = slot.next;
            }
        }
    }

    /// Deletes the entries of bucket `b` unused since `now - timeout` (the
    /// kernel's `!time_before(now, lastuse + timeout)`), handing each value
    /// to `on_remove`. Returns how many went.
    fn collect_bucket(
        &mut self,
        b: usize,
        now: u64,
        timeout: u64,
        on_remove: &mut impl FnMut(V),
    ) -> i64 {
        let mut removed = 0;
        let mut prev = NONE;
        let mut s = self.heads[b];
        while s != NONE {
            let slot = &self.slots[s as usize];
            let next = slot.next;
            if now >= slot.lastuse.saturating_add(timeout) {
                on_remove(slot.val);
                if prev == NONE {
                    self.heads[b] = next;
                } else {
                    self.slots[prev as usize].next = next;
                }
                self.slots[s as usize].next = self.free;
                self.free = s;
                self.len -= 1;
                removed += 1;
            } else {
                prev = s;
            }
            s = next;
        }
        removed
    }

    /// The collector (see the module docs); `on_remove` gets every deleted
    /// entry's value (lblcr frees its set).
    pub(super) fn tick(&mut self, now: u64, expiration: u64, mut on_remove: impl FnMut(V)) {
        let mut pass = match self.gc.pass.take() {
            Some(p) => p,
            None => {
                match self.gc.next_due {
                    // The timer is armed when the service starts; here at the
                    // first tick, the first time the worker's clock is known.
                    None => {
                        self.gc.next_due = Some(now.saturating_add(CHECK_EXPIRE_INTERVAL_US));
                        return;
                    }
                    Some(due) if now < due => return,
                    Some(_) => {}
                }
                self.gc.next_due = Some(now.saturating_add(CHECK_EXPIRE_INTERVAL_US));
                let j = self.gc.rover;
                if self.gc.counter % COUNT_FOR_FULL_EXPIRATION == 0 {
                    self.gc.counter = 1;
                    Pass {
                        full: true,
                        goal: 0,
                        now,
                        left: TAB_SIZE,
                        j,
                    }
                } else if self.len <= MAX_SIZE {
                    self.gc.counter += 1;
                    return;
                } else {
                    let goal = ((self.len - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2);
                    Pass {
                        full: false,
                        goal: goal as i64,
                        now,
                        left: TAB_SIZE,
                        j,
                    }
                }
            }
        };
        let timeout = if pass.full {
            expiration
        } else {
            ENTRY_TIMEOUT_US
        };
        for _ in 0..GC_BUCKETS_PER_TICK {
            pass.j = (pass.j + 1) & TAB_MASK;
            let removed = self.collect_bucket(pass.j, pass.now, timeout, &mut on_remove);
            pass.left -= 1;
            pass.goal -= removed;
            if pass.left == 0 || (!pass.full && pass.goal <= 0) {
                self.gc.rover = pass.j;
                return;
            }
        }
        self.gc.pass = Some(pass);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60 * 1_000_000;

    /// Ticks every second from `from` to `to` (inclusive), microseconds.
    fn run(c: &mut Cache<u32>, from: u64, to: u64, removed: &mut Vec<u32>) {
        let mut t = from;
        while t <= to {
            c.tick(t, DEFAULT_EXPIRATION_US, |v| removed.push(v));
            t += 1_000_000;
        }
    }

    #[test]
    fn insert_find_reuse_and_full_pool() {
        let mut c: Cache<u32> = Cache::new(2);
        assert_eq!(c.insert(1, 10, 0), Some(0));
        assert_eq!(c.insert(2, 20, 0), Some(1));
        assert_eq!(c.insert(3, 30, 0), None, "pool full: not cached");
        assert_eq!(c.find(2).map(|i| c.slot(i).val), Some(20));
        assert_eq!(c.find(3), None);
        // Collect everything (a full pass at 30 min with entries older than 24 h).
        let mut gone = vec![];
        let day = DEFAULT_EXPIRATION_US;
        c.tick(day, day, |v| gone.push(v));
        run(&mut c, day + MIN, day + 31 * MIN, &mut gone);
        gone.sort();
        assert_eq!(gone, [10, 20]);
        assert_eq!(c.len(), 0);
        assert_eq!(c.insert(3, 30, 0), Some(1), "freed slots are reused");
    }

    #[test]
    fn full_expiration_on_the_30th_run() {
        let mut c: Cache<u32> = Cache::new(16);
        c.insert(7, 7, 0);
        let mut gone = vec![];
        // Armed at t=0; runs at 1, 2, ... min. The entry is 24 h old only
        // after a day, so the full passes before that keep it.
        run(&mut c, 0, 31 * MIN, &mut gone);
        assert!(gone.is_empty());
        c.slot_mut(0).lastuse = 0;
        let day = DEFAULT_EXPIRATION_US;
        // Jump: runs resume; within 30 more runs a full pass finds it expired.
        run(&mut c, day, day + 30 * MIN, &mut gone);
        assert_eq!(gone, [7]);
    }

    #[test]
    fn crowded_table_loses_idle_entries_down_to_goal() {
        let n = MAX_SIZE + 300;
        let mut c: Cache<u32> = Cache::new(n);
        for k in 0..n as u32 {
            // Every other entry idle since 0, the rest used at 10 min.
            let now = if k % 2 == 0 { 0 } else { 10 * MIN };
            c.insert(k, k, now);
        }
        let mut gone = vec![];
        c.tick(10 * MIN, DEFAULT_EXPIRATION_US, |v| gone.push(v));
        // First run at 11 min: goal 300*4/3 = 400 idle (>= 6 min) entries,
        // checked per bucket, so a few more may go.
        run(&mut c, 11 * MIN, 11 * MIN + 20_000_000, &mut gone);
        assert!(gone.len() >= 400 && gone.len() < 480, "{}", gone.len());
        assert!(gone.iter().all(|k| k % 2 == 0));
        assert_eq!(c.len(), n - gone.len());
    }
}
