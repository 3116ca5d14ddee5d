//! lc: least connection (net/netfilter/ipvs/ip_vs_lc.c).
//!
//! The smallest overhead (active*256 + inactive) among servers that are not
//! OVERLOAD and have a non-zero weight; weights do not scale the load. A
//! strict `<` keeps the first in list order on a tie.

use super::common::{overhead, usable};
use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

#[derive(Debug)]
pub struct Lc;

pub fn build(_: SchedFlags, _: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Lc))
}

impl Scheduler for Lc {
    fn name(&self) -> &'static str {
        "lc"
    }

    fn schedule(&self, _: &mut SchedState, dests: &dyn Dests, _: &Input) -> Option<usize> {
        let mut least: Option<(usize, i64)> = None;
        for i in (0..dests.len()).filter(|&i| usable(dests, i)) {
            let doh = overhead(dests, i);
            if least.map_or(true, |(_, loh)| doh < loh) {
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
        // IPVS-SPEC.md: A(act1)=256, B(inact10)=10, C(inact10)=10 -> B.
        let ds = VecDests(vec![d(1, 1).act(1), d(2, 1).inact(10), d(3, 1).inact(10)]);
        assert_eq!(picks(&Lc, &ds, 1), [Some(1)]);
    }

    #[test]
    fn skips_quiesced_and_overloaded_ignores_weight() {
        let ds = VecDests(vec![
            d(1, 0),
            d(2, 1).over(),
            d(3, 100).inact(5),
            d(4, 1).inact(4),
        ]);
        assert_eq!(picks(&Lc, &ds, 1), [Some(3)]);
        let ds = VecDests(vec![d(1, 0), d(2, 1).over()]);
        assert_eq!(picks(&Lc, &ds, 1), [None]);
    }
}
