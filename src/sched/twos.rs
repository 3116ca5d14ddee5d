//! twos: power of two choices (net/netfilter/ipvs/ip_vs_twos.c).
//!
//! Two servers are drawn at random with probability proportional to weight,
//! and the less loaded of the two (overhead per weight) gets the connection.
//! OVERLOAD and weight-0 servers take no part. Each worker draws from its own
//! generator, seeded by `new_state`.

use super::common::{overhead, usable, wmul, Prng};
use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

#[derive(Debug)]
pub struct Twos;

pub fn build(_: SchedFlags, _: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Twos))
}

/// The pick for given random draws `r1`, `r2` in `0..=total weight`.
/// Walking the eligible servers in list order, each weight is subtracted
/// from both; a choice is the first server where its draw is <= 0, so a
/// draw of 0 takes the first server and the total weight the last. The
/// second choice wins only if strictly less loaded: `w2*oh1 > w1*oh2`.
fn pick(d: &dyn Dests, mut r1: i64, mut r2: i64) -> Option<usize> {
    let (mut c1, mut c2) = (None, None);
    for i in (0..d.len()).filter(|&i| usable(d, i)) {
        let w = i64::from(d.weight(i));
        r1 -= w;
        r2 -= w;
        if r1 <= 0 && c1.is_none() {
            c1 = Some(i);
        }
        if r2 <= 0 && c2.is_none() {
            c2 = Some(i);
        }
        if c1.is_some() && c2.is_some() {
            break;
        }
    }
    let (c1, c2) = (c1?, c2?);
    let less_loaded = wmul(overhead(d, c1), d.weight(c2)) > wmul(overhead(d, c2), d.weight(c1));
    Some(if less_loaded { c2 } else { c1 })
}

impl Scheduler for Twos {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn new_state(&self, seed: u64) -> SchedState {
        SchedState::Rng(Prng::new(seed))
    }

    fn refresh_state(&self, _: &mut SchedState, _: &dyn Dests) {}

    fn schedule(&self, st: &mut SchedState, dests: &dyn Dests, _: &Input) -> Option<usize> {
        let total: i64 = (0..dests.len())
            .filter(|&i| usable(dests, i))
            .map(|i| i64::from(dests.weight(i)))
            .sum();
        if total == 0 {
            return None;
        }
        if !matches!(st, SchedState::Rng(_)) {
            *st = SchedState::Rng(Prng::new(0));
        }
        let SchedState::Rng(rng) = st else {
            unreachable!("just set")
        };
        // +1 so the draws are inclusive from 0 to the total weight, as the
        // kernel does; the modulo is on u64 so no weight sum can overflow it.
        let t = (total + 1) as u64;
        let r1 = u64::from(rng.next_u32()) % t;
        let r2 = u64::from(rng.next_u32()) % t;
        pick(dests, r1 as i64, r2 as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{d, picks, VecDests};
    use super::*;

    #[test]
    fn spec_example() {
        // IPVS-SPEC.md: A w1 act1, B w1 idle; T = 3, r1 = 0 -> A, r2 = 2 -> B;
        // 1*256 > 1*0 -> B.
        let ds = VecDests(vec![d(1, 1).act(1), d(2, 1)]);
        assert_eq!(pick(&ds, 0, 2), Some(1));
        // Equal load: the first choice stays.
        let ds = VecDests(vec![d(1, 1), d(2, 1)]);
        assert_eq!(pick(&ds, 0, 2), Some(0));
    }

    #[test]
    fn draws_map_by_weight() {
        let ds = VecDests(vec![d(1, 2), d(2, 0), d(3, 1).over(), d(4, 3)]);
        // Eligible: A (2), D (3). Draws 0..=2 -> A, 3..=5 -> D.
        for r in 0..=5 {
            let want = if r <= 2 { 0 } else { 3 };
            assert_eq!(pick(&ds, r, r), Some(want), "r = {r}");
        }
    }

    #[test]
    fn distribution_follows_weight_and_load() {
        let ds = VecDests(vec![d(1, 1), d(2, 3)]);
        let mut count = [0; 2];
        for p in picks(&Twos, &ds, 4000) {
            count[p.unwrap()] += 1;
        }
        // Idle servers: the first choice always stays. Draws 0 and 1 of 0..=4
        // map to A (the +1 in the total favours the first server): A ~ 2/5.
        assert!(count[0] > 1200 && count[0] < 2000, "{count:?}");
        let ds = VecDests(vec![d(1, 1).over(), d(2, 0)]);
        assert_eq!(picks(&Twos, &ds, 1), [None]);
    }
}
