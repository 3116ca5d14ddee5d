//! wlc: weighted least connection (net/netfilter/ipvs/ip_vs_wlc.c).
//!
//! The least overhead per unit of weight, compared by cross-multiplying in
//! i64 so no division is needed: see `common::weighted_least`.

use super::common::{overhead, weighted_least};
use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

#[derive(Debug)]
pub struct Wlc;

pub fn build(_: SchedFlags, _: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Wlc))
}

impl Scheduler for Wlc {
    fn name(&self) -> &'static str {
        "wlc"
    }

    fn schedule(&self, _: &mut SchedState, dests: &dyn Dests, _: &Input) -> Option<usize> {
        weighted_least(dests, overhead)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{d, picks, VecDests};
    use super::*;

    #[test]
    fn spec_example() {
        // IPVS-SPEC.md: A w1 act1 (256); B w2 act1+inact100 (356): 256*2 > 356*1 -> B.
        let ds = VecDests(vec![d(1, 1).act(1), d(2, 2).act(1).inact(100)]);
        assert_eq!(picks(&Wlc, &ds, 1), [Some(1)]);
    }

    #[test]
    fn ties_go_to_the_first_and_weight_zero_never_wins() {
        let ds = VecDests(vec![d(1, 2).act(2), d(2, 1).act(1), d(3, 0)]);
        assert_eq!(picks(&Wlc, &ds, 1), [Some(0)]);
        let ds = VecDests(vec![d(1, 0), d(2, 1).over(), d(3, 1).act(9)]);
        assert_eq!(picks(&Wlc, &ds, 1), [Some(2)]);
    }

    #[test]
    fn no_overflow_with_large_counts() {
        // The largest counters with ipvsadm's largest weight fit in i64.
        let ds = VecDests(vec![
            d(1, 65535).act(u32::MAX),
            d(2, 65535).act(u32::MAX - 1),
        ]);
        assert_eq!(picks(&Wlc, &ds, 1), [Some(1)]);
        // Beyond that the compare saturates instead of wrapping or panicking.
        let ds = VecDests(vec![
            d(1, i32::MAX).act(u32::MAX),
            d(2, i32::MAX).act(u32::MAX),
        ]);
        assert_eq!(picks(&Wlc, &ds, 1), [Some(0)]);
    }
}
