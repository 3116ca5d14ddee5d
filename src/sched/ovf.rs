//! ovf: weighted overflow (net/netfilter/ipvs/ip_vs_ovf.c).
//!
//! Like fo, but a server also drops out while its active connections exceed
//! its weight (the weight is a connection budget), so traffic overflows to
//! the next highest weight. active == weight is still allowed.

use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

#[derive(Debug)]
pub struct Ovf;

pub fn build(_: SchedFlags, _: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Ovf))
}

impl Scheduler for Ovf {
    fn name(&self) -> &'static str {
        "ovf"
    }

    fn schedule(&self, _: &mut SchedState, dests: &dyn Dests, _: &Input) -> Option<usize> {
        let mut best: Option<usize> = None;
        for i in 0..dests.len() {
            let w = dests.weight(i);
            if dests.overloaded(i) || i64::from(dests.active(i)) > i64::from(w) || w == 0 {
                continue;
            }
            if best.map_or(true, |b| w > dests.weight(b)) {
                best = Some(i);
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
        // IPVS-SPEC.md: A w2 act3 (skipped), B w1 act0 -> B.
        let ds = VecDests(vec![d(1, 2).act(3), d(2, 1)]);
        assert_eq!(picks(&Ovf, &ds, 1), [Some(1)]);
    }

    #[test]
    fn at_budget_still_allowed_first_wins_tie() {
        let ds = VecDests(vec![d(1, 1), d(2, 2).act(2), d(3, 2)]);
        assert_eq!(picks(&Ovf, &ds, 1), [Some(1)]);
        let ds = VecDests(vec![d(1, 0), d(2, 1).act(2), d(3, 3).over()]);
        assert_eq!(picks(&Ovf, &ds, 1), [None]);
    }
}
