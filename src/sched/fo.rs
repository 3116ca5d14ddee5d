//! fo: weighted failover (net/netfilter/ipvs/ip_vs_fo.c).
//!
//! Always the highest-weight server that is not OVERLOAD: the others are
//! standbys. Strict `>` from 0, so weight 0 never wins and the first in list
//! order wins a tie.

use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

#[derive(Debug)]
pub struct Fo;

pub fn build(_: SchedFlags, _: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Fo))
}

impl Scheduler for Fo {
    fn name(&self) -> &'static str {
        "fo"
    }

    fn schedule(&self, _: &mut SchedState, dests: &dyn Dests, _: &Input) -> Option<usize> {
        let mut best = None;
        let mut hw = 0;
        for i in (0..dests.len()).filter(|&i| !dests.overloaded(i)) {
            if dests.weight(i) > hw {
                best = Some(i);
                hw = dests.weight(i);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{d, picks, VecDests};
    use super::*;

    #[test]
    fn spec_example() {
        // IPVS-SPEC.md: A5, B10, C10 -> B.
        let ds = VecDests(vec![d(1, 5), d(2, 10), d(3, 10)]);
        assert_eq!(picks(&Fo, &ds, 1), [Some(1)]);
    }

    #[test]
    fn failover_when_overloaded() {
        let ds = VecDests(vec![d(1, 5), d(2, 10).over(), d(3, 0)]);
        assert_eq!(picks(&Fo, &ds, 1), [Some(0)]);
        let ds = VecDests(vec![d(1, 0), d(2, 10).over()]);
        assert_eq!(picks(&Fo, &ds, 1), [None]);
    }
}
