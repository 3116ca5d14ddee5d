//! sed: shortest expected delay (net/netfilter/ipvs/ip_vs_sed.c).
//!
//! wlc's procedure with overhead = active + 1: the expected delay if the new
//! connection were added. Inactive connections are ignored.

use super::common::weighted_least;
use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

/// `ip_vs_sed_dest_overhead`: active connections plus the new one.
pub(crate) fn sed_overhead(d: &dyn Dests, i: usize) -> i64 {
    i64::from(d.active(i)) + 1
}

#[derive(Debug)]
pub struct Sed;

pub fn build(_: SchedFlags, _: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Sed))
}

impl Scheduler for Sed {
    fn name(&self) -> &'static str {
        "sed"
    }

    fn schedule(&self, _: &mut SchedState, dests: &dyn Dests, _: &Input) -> Option<usize> {
        weighted_least(dests, sed_overhead)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{d, picks, VecDests};
    use super::super::wlc::Wlc;
    use super::*;

    #[test]
    fn spec_example() {
        // IPVS-SPEC.md: A w1 act0 (1), B w3 act1 (2): 1*3 > 2*1 -> B; wlc picks A.
        let ds = VecDests(vec![d(1, 1), d(2, 3).act(1)]);
        assert_eq!(picks(&Sed, &ds, 1), [Some(1)]);
        assert_eq!(picks(&Wlc, &ds, 1), [Some(0)]);
    }

    #[test]
    fn inactive_ignored() {
        let ds = VecDests(vec![d(1, 1).inact(1000), d(2, 1).act(1)]);
        assert_eq!(picks(&Sed, &ds, 1), [Some(0)]);
    }
}
