//! The connection table's index: from a key's hash to the slab slot that
//! holds it, in 8 bytes per key.
//!
//! A fixed array of 64-byte buckets (one cache line each), allocated at
//! start and never resized: each bucket holds seven (tag, slot) pairs and
//! an overflow count. A key's home bucket is its hash's low bits, its tag
//! the high 32 bits. The keys themselves are not stored: the caller
//! compares a candidate slot's entry (`eq`), which it reads anyway, so a
//! hit costs one bucket line and the entry's own lines.
//!
//! A key that finds its home bucket full goes to the next bucket with
//! room (linear probing), and every full bucket it passes counts it in
//! its overflow count; a lookup stops at the first bucket whose count is
//! zero. Removal walks the same path down again, so nothing is left
//! behind: no tombstones, no clean-up pause, no rehash, whatever the
//! churn (the scheme of folly's F14 tables). With at most six keys per
//! bucket on average (the sizing below), probes beyond the home bucket
//! are rare.
//!
//! The caller's hash must be keyed (random per start): chosen addresses
//! then cannot pile keys into one bucket.

/// A slot number in the connection table (what the index maps keys to);
/// stable while the entry lives.
pub type Slot = u32;

/// Pairs per bucket: 7 × 8 bytes and the overflow count fit a cache line.
const WAYS: usize = 7;

/// No slot: the pair is free.
const EMPTY: Slot = Slot::MAX;

#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    /// Keys stored beyond this bucket whose probe passed it full.
    overflow: u32,
    tags: [u32; WAYS],
    slots: [Slot; WAYS],
}

const FREE: Bucket = Bucket {
    overflow: 0,
    tags: [0; WAYS],
    slots: [EMPTY; WAYS],
};

/// The index is full (only when more keys are inserted than it was sized
/// for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexFull;

#[derive(Debug)]
pub struct Index {
    buckets: Vec<Bucket>,
    mask: usize,
    len: usize,
}

#[inline]
fn split(hash: u64) -> (usize, u32) {
    (hash as usize, (hash >> 32) as u32)
}

impl Index {
    /// An index for up to `keys` keys, at most six per bucket on average
    /// (a power of two of buckets, so the load is between 3/7 and 6/7).
    pub fn with_keys(keys: usize) -> Index {
        let buckets = keys.div_ceil(WAYS - 1).max(1).next_power_of_two();
        Index {
            buckets: dpdk::mem::huge_vec(buckets, FREE),
            mask: buckets - 1,
            len: 0,
        }
    }

    /// Bytes the index holds (constant).
    pub fn bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Starts loading the bucket a lookup of `hash` reads first.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        dpdk::mem::prefetch(&self.buckets[split(hash).0 & self.mask]);
    }

    /// The first slot in the home bucket of `hash` whose tag matches: the
    /// entry a lookup will most likely compare (to prefetch it).
    #[inline]
    pub fn likely(&self, hash: u64) -> Option<Slot> {
        let (h, tag) = split(hash);
        let bucket = &self.buckets[h & self.mask];
        (0..WAYS)
            .find(|&i| bucket.tags[i] == tag && bucket.slots[i] != EMPTY)
            .map(|i| bucket.slots[i])
    }

    /// Where the key of `hash` that `eq` recognises (by its slot) is.
    #[inline(always)]
    fn find(&self, hash: u64, mut eq: impl FnMut(Slot) -> bool) -> Option<(usize, usize)> {
        let (h, tag) = split(hash);
        let mut b = h & self.mask;
        // At most every bucket once (a full table with every count set).
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[b];
            for i in 0..WAYS {
                if bucket.tags[i] == tag && bucket.slots[i] != EMPTY && eq(bucket.slots[i]) {
                    return Some((b, i));
                }
            }
            if bucket.overflow == 0 {
                return None;
            }
            b = (b + 1) & self.mask;
        }
        None
    }

    /// The slot of the key of `hash` that `eq` recognises.
    #[inline(always)]
    pub fn get(&self, hash: u64, eq: impl FnMut(Slot) -> bool) -> Option<Slot> {
        self.find(hash, eq).map(|(b, i)| self.buckets[b].slots[i])
    }

    /// Points the key of `hash` at `slot`: the key `eq` recognises is
    /// repointed (shadowed), or a new pair is added.
    pub fn insert(
        &mut self,
        hash: u64,
        slot: Slot,
        eq: impl FnMut(Slot) -> bool,
    ) -> Result<(), IndexFull> {
        if let Some((b, i)) = self.find(hash, eq) {
            self.buckets[b].slots[i] = slot;
            return Ok(());
        }
        if self.len == self.buckets.len() * WAYS {
            return Err(IndexFull);
        }
        let (h, tag) = split(hash);
        let mut b = h & self.mask;
        // A free pair exists (len is below the pairs), so this ends.
        loop {
            let bucket = &mut self.buckets[b];
            if let Some(i) = bucket.slots.iter().position(|&s| s == EMPTY) {
                bucket.tags[i] = tag;
                bucket.slots[i] = slot;
                self.len += 1;
                return Ok(());
            }
            bucket.overflow += 1;
            b = (b + 1) & self.mask;
        }
    }

    /// Buckets a lookup of the key of `hash` that `eq` recognises reads
    /// (for a missing key: up to the first bucket that never overflowed).
    pub fn probes(&self, hash: u64, eq: impl FnMut(Slot) -> bool) -> usize {
        let home = split(hash).0 & self.mask;
        if let Some((at, _)) = self.find(hash, eq) {
            return (at.wrapping_sub(home) & self.mask) + 1;
        }
        let mut b = home;
        for n in 1..=self.buckets.len() {
            if self.buckets[b].overflow == 0 {
                return n;
            }
            b = (b + 1) & self.mask;
        }
        self.buckets.len()
    }

    /// Removes the pair of `hash` that points at `slot`; false if there is
    /// none (the key was repointed to another slot, or never added).
    pub fn remove(&mut self, hash: u64, slot: Slot) -> bool {
        let tag = split(hash).1;
        let Some((b, i)) = self.find(hash, |s| s == slot) else {
            return false;
        };
        debug_assert_eq!(self.buckets[b].tags[i], tag);
        self.buckets[b].slots[i] = EMPTY;
        self.len -= 1;
        // Down the path the insert went up.
        let mut p = split(hash).0 & self.mask;
        while p != b {
            self.buckets[p].overflow -= 1;
            p = (p + 1) & self.mask;
        }
        true
    }

    /// Whether every overflow count is zero (an empty index must say yes).
    #[cfg(test)]
    fn counts_clear(&self) -> bool {
        self.buckets.iter().all(|b| b.overflow == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
        assert_eq!(Index::with_keys(2_000_000).bytes(), 524_288 * 64);
        assert_eq!(Index::with_keys(1).bytes(), 64);
    }

    /// Keys that all share one home bucket overflow into the next ones
    /// and are still found; removing them clears every count.
    #[test]
    fn overflow_chains_are_found_and_unwound() {
        let mut ix = Index::with_keys(64); // 16 buckets
                                           // Key k: home bucket 3, tag k; slot k (the "entry" is the slot).
        let hash = |k: u32| (k as u64) << 32 | 3;
        for k in 0..40 {
            ix.insert(hash(k), k, |s| s == k).unwrap();
        }
        assert_eq!(ix.len(), 40);
        for k in 0..40 {
            assert_eq!(ix.get(hash(k), |s| s == k), Some(k));
        }
        assert_eq!(ix.get(hash(99), |s| s == 99), None);
        // Removing from the home bucket first leaves later keys reachable.
        for k in 0..40 {
            assert!(ix.remove(hash(k), k));
            for j in k + 1..40 {
                assert_eq!(ix.get(hash(j), |s| s == j), Some(j), "after {k}");
            }
        }
        assert!(ix.counts_clear());
        assert_eq!(ix.len(), 0);
    }

    #[test]
    fn a_key_inserted_again_is_repointed_and_removal_respects_that() {
        let mut ix = Index::with_keys(8);
        // Slots 1 and 2 hold the same key (slot 2 shadows slot 1).
        let same = |s: Slot| s == 1 || s == 2;
        ix.insert(7, 1, same).unwrap();
        ix.insert(7, 2, same).unwrap();
        assert_eq!(ix.len(), 1);
        assert_eq!(ix.get(7, same), Some(2));
        assert!(!ix.remove(7, 1), "the key no longer leads to slot 1");
        assert_eq!(ix.get(7, same), Some(2));
        assert!(ix.remove(7, 2));
        assert_eq!(ix.get(7, same), None);
    }

    #[test]
    fn a_full_index_refuses_and_stays_consistent() {
        let mut ix = Index::with_keys(1); // one bucket, seven pairs
        for k in 0..7 {
            ix.insert(k << 32, k as Slot, |s| s == k as Slot).unwrap();
        }
        assert_eq!(ix.insert(7 << 32, 7, |s| s == 7), Err(IndexFull));
        assert_eq!(ix.get(7 << 32, |s| s == 7), None);
        for k in 0..7 {
            assert_eq!(ix.get(k << 32, |s| s == k as Slot), Some(k as Slot));
        }
    }

    proptest! {
        /// Against a HashMap model: random inserts (new keys and shadowing),
        /// removals of current and stale slots, and lookups, on a small
        /// index with few distinct home buckets so that chains form and
        /// wrap around the end.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((0u8..3, 0u32..48, 0u32..40), 1..600)) {
            let mut ix = Index::with_keys(48); // 8 buckets
            // What each slot holds (its key), as the slab would.
            let mut slab: HashMap<Slot, u32> = HashMap::new();
            let mut model: HashMap<u32, Slot> = HashMap::new();
            // Keys 0..48: home bucket key % 8, biased to 5..8 to wrap.
            let hash = |k: u32| ((k as u64 * 0x9E37_79B9) << 32) | (5 + k as u64 % 3);
            for (op, key, slot) in ops {
                match op {
                    0 => {
                        if slab.contains_key(&slot) || ix.len() == 56 {
                            continue;
                        }
                        slab.insert(slot, key);
                        ix.insert(hash(key), slot, |s| slab.get(&s) == Some(&key)).unwrap();
                        model.insert(key, slot);
                    }
                    1 => {
                        // Free `slot`: drop its key if it still leads here.
                        if let Some(k) = slab.remove(&slot) {
                            let leads = model.get(&k) == Some(&slot);
                            prop_assert_eq!(ix.remove(hash(k), slot), leads);
                            if leads {
                                model.remove(&k);
                            }
                        }
                    }
                    _ => {}
                }
                prop_assert_eq!(ix.get(hash(key), |s| slab.get(&s) == Some(&key)), model.get(&key).copied());
                prop_assert_eq!(ix.len(), model.len());
            }
            for (k, s) in model.clone() {
                prop_assert!(ix.remove(hash(k), s));
            }
            prop_assert!(ix.counts_clear());
        }
    }
}
