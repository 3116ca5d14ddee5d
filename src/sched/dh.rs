//! dh: destination hashing (net/netfilter/ipvs/ip_vs_dh.c).
//!
//! 256 buckets; bucket i holds server number i mod N in list order (weights
//! are ignored, unlike sh). A packet goes to the bucket of
//! `hash_32(daddr, 8)`. There is no fallback: an unusable server (not
//! AVAILABLE, weight <= 0 or OVERLOAD) or an empty service gives NULL, so a
//! destination address always maps to the same server or to none.

use super::common::{hash_32, usable, NONE};
use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

const TAB_BITS: u32 = 8;
const TAB_SIZE: usize = 1 << TAB_BITS;

#[derive(Debug)]
pub struct Dh {
    buckets: [u32; TAB_SIZE],
}

pub fn build(_: SchedFlags, dests: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Dh::new(dests)))
}

impl Dh {
    /// `ip_vs_dh_reassign`: cycle through the list, one bucket each.
    pub fn new(dests: &dyn Dests) -> Self {
        let n = dests.len();
        let mut buckets = [NONE; TAB_SIZE];
        if n > 0 {
            for (i, b) in buckets.iter_mut().enumerate() {
                *b = (i % n) as u32;
            }
        }
        Dh { buckets }
    }

    fn bucket_of(daddr: u32) -> usize {
        hash_32(daddr, TAB_BITS) as usize
    }
}

impl Scheduler for Dh {
    fn name(&self) -> &'static str {
        "dh"
    }

    fn schedule(&self, _: &mut SchedState, dests: &dyn Dests, input: &Input) -> Option<usize> {
        let i = self.buckets[Self::bucket_of(u32::from(input.daddr))];
        let i = (i != NONE)
            .then_some(i as usize)
            .filter(|&i| i < dests.len())?;
        (dests.available(i) && usable(dests, i)).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{d, VecDests};
    use super::*;
    use std::net::Ipv4Addr;

    fn to(daddr: [u8; 4]) -> Input {
        super::super::testutil::input_from([1, 2, 3, 4], 5, daddr, 0)
    }

    #[test]
    fn spec_example() {
        // IPVS-SPEC.md: list A, B. 10.0.0.1 -> bucket 39 -> B; 192.168.0.1 -> 192 -> A.
        let ds = VecDests(vec![d(1, 1), d(2, 1)]);
        let dh = Dh::new(&ds);
        assert_eq!(Dh::bucket_of(u32::from(Ipv4Addr::new(10, 0, 0, 1))), 39);
        assert_eq!(Dh::bucket_of(u32::from(Ipv4Addr::new(192, 168, 0, 1))), 192);
        let mut st = SchedState::Stateless;
        assert_eq!(dh.schedule(&mut st, &ds, &to([10, 0, 0, 1])), Some(1));
        assert_eq!(dh.schedule(&mut st, &ds, &to([192, 168, 0, 1])), Some(0));
    }

    #[test]
    fn weight_ignored_and_no_fallback() {
        let ds = VecDests(vec![d(1, 5), d(2, 1), d(3, 1)]);
        let dh = Dh::new(&ds);
        assert!(dh
            .buckets
            .iter()
            .enumerate()
            .all(|(i, &b)| b as usize == i % 3));
        // 192.168.0.1 -> bucket 192 -> 192 % 3 = 0 -> A; A unusable -> NULL.
        let mut st = SchedState::Stateless;
        for down in [d(1, 0), d(1, 5).over(), {
            let mut x = d(1, 5);
            x.available = false;
            x
        }] {
            let ds = VecDests(vec![down, d(2, 1), d(3, 1)]);
            assert_eq!(dh.schedule(&mut st, &ds, &to([192, 168, 0, 1])), None);
        }
        let empty = VecDests(vec![]);
        assert_eq!(
            Dh::new(&empty).schedule(&mut st, &empty, &to([192, 168, 0, 1])),
            None
        );
    }
}
