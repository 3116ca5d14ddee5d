//! wrr: weighted round robin (net/netfilter/ipvs/ip_vs_wrr.c).
//!
//! Passes over the list with a falling threshold `cw`: the first pass takes
//! servers with weight >= mw, each later one lowers cw by di (the gcd of the
//! positive weights) down to 1, then it starts again from mw. mw is the
//! maximum weight minus (di - 1), so that the last pass is at cw = 1 and
//! still finds a server whose weight dropped below di during an edit.
//! OVERLOAD servers are skipped; weight-0 servers never reach cw >= 1.

use super::common::gcd;
use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

/// Per-worker cursor (`cl`, None = list head) and current weight `cw`.
#[derive(Clone, Debug)]
pub struct WrrState {
    cl: Option<usize>,
    cw: i32,
}

/// The snapshot's weight step `di` and starting threshold `mw`.
#[derive(Debug)]
pub struct Wrr {
    di: i32,
    mw: i32,
}

pub fn build(_: SchedFlags, dests: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Wrr::new(dests)))
}

impl Wrr {
    pub fn new(dests: &dyn Dests) -> Self {
        let weights = (0..dests.len()).map(|i| dests.weight(i));
        // gcd of the positive weights, 1 if there are none.
        let di = weights.clone().filter(|&w| w > 0).reduce(gcd).unwrap_or(1);
        let max = weights.fold(0, i32::max);
        Wrr {
            di,
            mw: max - (di - 1),
        }
    }
}

fn state(st: &mut SchedState, mw: i32) -> &mut WrrState {
    if !matches!(st, SchedState::Wrr(_)) {
        *st = SchedState::Wrr(WrrState { cl: None, cw: mw });
    }
    match st {
        SchedState::Wrr(s) => s,
        _ => unreachable!("just set"),
    }
}

impl Scheduler for Wrr {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn new_state(&self, _seed: u64) -> SchedState {
        SchedState::Wrr(WrrState {
            cl: None,
            cw: self.mw,
        })
    }

    /// `ip_vs_wrr_dest_changed`: back to the head; keep cw if it is still
    /// in range, rounded to the new step (plus one, so that the pass at the
    /// old cw is not repeated), else restart from mw.
    fn refresh_state(&self, st: &mut SchedState, _: &dyn Dests) {
        let s = state(st, self.mw);
        s.cl = None;
        if s.cw > self.mw || s.cw == 0 {
            s.cw = self.mw;
        } else if self.di > 1 {
            s.cw = (s.cw / self.di) * self.di + 1;
        }
    }

    fn schedule(&self, st: &mut SchedState, dests: &dyn Dests, _: &Input) -> Option<usize> {
        let s = state(st, self.mw);
        if self.mw == 0 {
            return None;
        }
        let n = dests.len();
        let last = s.cl.filter(|&i| i < n);
        // `stop` is set only on the final pass after a restart, so that the
        // scan ends once every server was checked at cw = 1.
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        let mut from = last.map_or(0, |i| i + 1);
        loop {
            for i in from..n {
                if !dests.overloaded(i) && dests.weight(i) >= s.cw {
                    s.cl = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    s.cl = Some(i);
                    return None;
                }
            }
            // The scan reached the end of the list: next threshold.
            from = 0;
            s.cw -= self.di;
            if s.cw <= 0 {
                s.cw = self.mw;
                // Already checked everything at cw = 1: give up at the head.
                if last_pass || last.is_none() {
                    s.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = s.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The first pass at cw = 1 only covered the servers after
                // `last`; this one covers those up to it.
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{d, from_ip, picks, VecDests};
    use super::*;

    fn names(p: &[Option<usize>]) -> String {
        p.iter()
            .map(|x| x.map_or('-', |i| (b'A' + i as u8) as char))
            .collect()
    }

    #[test]
    fn spec_example() {
        // IPVS-SPEC.md: A4, B3, C2 -> A A B A B C A B C, then repeats.
        let ds = VecDests(vec![d(1, 4), d(2, 3), d(3, 2)]);
        let w = Wrr::new(&ds);
        assert_eq!(names(&picks(&w, &ds, 18)), "AABABCABCAABABCABC");
    }

    #[test]
    fn three_to_one() {
        let ds = VecDests(vec![d(1, 3), d(2, 1)]);
        let w = Wrr::new(&ds);
        let mut count = [0; 2];
        for p in picks(&w, &ds, 40) {
            count[p.unwrap()] += 1;
        }
        assert_eq!(count, [30, 10]);
    }

    #[test]
    fn gcd_step() {
        // Weights 4 and 2: di = 2, mw = 3; passes at cw 3 and 1.
        let ds = VecDests(vec![d(1, 4), d(2, 2)]);
        let w = Wrr::new(&ds);
        assert_eq!((w.di, w.mw), (2, 3));
        assert_eq!(names(&picks(&w, &ds, 6)), "AABAAB");
    }

    #[test]
    fn no_weight_or_all_overloaded() {
        let ds = VecDests(vec![d(1, 0), d(2, 0)]);
        assert_eq!(picks(&Wrr::new(&ds), &ds, 1), [None]);
        let ds = VecDests(vec![d(1, 2).over(), d(2, 1).over()]);
        let w = Wrr::new(&ds);
        assert_eq!(picks(&w, &ds, 3), [None, None, None]);
        // From a cursor in the middle the scan also terminates.
        let ok = VecDests(vec![d(1, 2), d(2, 1)]);
        let mut st = w.new_state(0);
        let i = from_ip([1, 1, 1, 1].into());
        assert_eq!(w.schedule(&mut st, &ok, &i), Some(0));
        assert_eq!(w.schedule(&mut st, &ds, &i), None);
        assert_eq!(w.schedule(&mut st, &ok, &i), Some(0));
    }

    #[test]
    fn weight_below_step_is_still_found() {
        // A weight edited below di between builds: the cw = 1 pass finds it.
        let built = VecDests(vec![d(1, 4), d(2, 2)]);
        let w = Wrr::new(&built);
        let now = VecDests(vec![d(1, 4).over(), d(2, 1)]);
        assert_eq!(picks(&w, &now, 2), [Some(1), Some(1)]);
    }

    #[test]
    fn edit_resets_cursor_and_rounds_cw() {
        let a = VecDests(vec![d(1, 4), d(2, 3), d(3, 2)]);
        let w = Wrr::new(&a);
        let mut st = w.new_state(0);
        let i = from_ip([1, 1, 1, 1].into());
        for _ in 0..3 {
            w.schedule(&mut st, &a, &i);
        }
        // After A A B: cw = 3. New weights 6, 4: di 2, mw 5; cw -> 3/2*2+1 = 3.
        let b = VecDests(vec![d(1, 6), d(2, 4)]);
        let w2 = Wrr::new(&b);
        w2.refresh_state(&mut st, &b);
        let SchedState::Wrr(s) = &st else { panic!() };
        assert_eq!((s.cl, s.cw), (None, 3));
        // cw 3 > mw 1: back to mw.
        let c = VecDests(vec![d(1, 1)]);
        let w3 = Wrr::new(&c);
        w3.refresh_state(&mut st, &c);
        let SchedState::Wrr(s) = &st else { panic!() };
        assert_eq!(s.cw, 1);
    }
}
