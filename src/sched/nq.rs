//! nq: never queue (net/netfilter/ipvs/ip_vs_nq.c).
//!
//! An idle server (no active connection) is taken at once, the first in list
//! order, so nothing waits behind another connection; when none is idle,
//! sed's rule (overhead active + 1, weighted, strict compare).

use super::common::{usable, wmul};
use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

#[derive(Debug)]
pub struct Nq;

pub fn build(_: SchedFlags, _: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Nq))
}

impl Scheduler for Nq {
    fn name(&self) -> &'static str {
        "nq"
    }

    fn schedule(&self, _: &mut SchedState, dests: &dyn Dests, _: &Input) -> Option<usize> {
        let mut least: Option<(usize, i64)> = None;
        for i in (0..dests.len()).filter(|&i| usable(dests, i)) {
            if dests.active(i) == 0 {
                return Some(i);
            }
            let doh = i64::from(dests.active(i)) + 1;
            let better = least.map_or(true, |(l, loh)| {
                wmul(loh, dests.weight(i)) > wmul(doh, dests.weight(l))
            });
            if better {
                least = Some((i, doh));
            }
        }
        least.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{d, picks, VecDests};
    use super::*;

    #[test]
    fn spec_example() {
        // IPVS-SPEC.md: A w10 act5, B w1 act0 -> B.
        let ds = VecDests(vec![d(1, 10).act(5), d(2, 1)]);
        assert_eq!(picks(&Nq, &ds, 1), [Some(1)]);
    }

    #[test]
    fn busy_servers_use_sed_rule() {
        // A: 3/1, B: 5/3 -> B (3*3 > 5*1).
        let ds = VecDests(vec![d(1, 1).act(2), d(2, 3).act(4), d(3, 0)]);
        assert_eq!(picks(&Nq, &ds, 1), [Some(1)]);
        // Idle but quiesced or overloaded servers are not taken.
        let ds = VecDests(vec![d(1, 0), d(2, 1).over(), d(3, 1).act(1)]);
        assert_eq!(picks(&Nq, &ds, 1), [Some(2)]);
    }
}
