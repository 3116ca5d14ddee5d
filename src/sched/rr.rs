//! rr: round robin (net/netfilter/ipvs/ip_vs_rr.c).
//!
//! A cursor starts at the list head. A pick walks forward from the server
//! after the cursor, wrapping around once and ending with the cursor's own
//! server, and takes the first that is not OVERLOAD and has weight > 0; the
//! cursor moves to it. Weights other than zero make no difference.

use super::common::usable;
use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

/// The cursor: None is the list head (before the first server). The server
/// under the cursor is remembered by address and port so that an edit can
/// find it again.
#[derive(Clone, Debug, Default)]
pub struct RrState {
    cursor: Option<(usize, u32, u16)>,
}

#[derive(Debug)]
pub struct Rr;

pub fn build(_: SchedFlags, _: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Rr))
}

fn state(st: &mut SchedState) -> &mut RrState {
    if !matches!(st, SchedState::Rr(_)) {
        *st = SchedState::Rr(RrState::default());
    }
    match st {
        SchedState::Rr(s) => s,
        _ => unreachable!("just set"),
    }
}

impl Scheduler for Rr {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn new_state(&self, _seed: u64) -> SchedState {
        SchedState::Rr(RrState::default())
    }

    /// The kernel only hooks deletion (`ip_vs_rr_del_dest`): if the cursor's
    /// server was deleted, the cursor moves to its predecessor so the next
    /// pick continues where it would have. Here the server is looked up by
    /// address and port; if it is gone, the cursor goes to the server now
    /// just before its old position (exactly the predecessor when that one
    /// deletion is the only change), or to the head.
    fn refresh_state(&self, st: &mut SchedState, dests: &dyn Dests) {
        let s = state(st);
        let Some((old, addr, port)) = s.cursor else {
            return;
        };
        let n = dests.len();
        s.cursor = match (0..n).find(|&i| u32::from(dests.addr(i)) == addr && dests.port(i) == port)
        {
            Some(i) => Some((i, addr, port)),
            None if old == 0 || n == 0 => None,
            None => {
                let p = (old - 1).min(n - 1);
                Some((p, u32::from(dests.addr(p)), dests.port(p)))
            }
        };
    }

    fn schedule(&self, st: &mut SchedState, dests: &dyn Dests, _: &Input) -> Option<usize> {
        let s = state(st);
        let n = dests.len();
        // From the head: one pass over the list. From a server: the rest of
        // the list, then from the head up to and including that server.
        let start = match s.cursor {
            Some((i, _, _)) if i < n => i + 1,
            _ => 0,
        };
        let hit = (start..start + n)
            .map(|k| k % n)
            .find(|&i| usable(dests, i))?;
        s.cursor = Some((hit, u32::from(dests.addr(hit)), dests.port(hit)));
        Some(hit)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{d, picks, VecDests};
    use super::*;

    #[test]
    fn spec_example_skips_weight_zero() {
        // IPVS-SPEC.md: A(w1), B(w0), C(w1) -> A, C, A, C.
        let ds = VecDests(vec![d(1, 1), d(2, 0), d(3, 1)]);
        assert_eq!(picks(&Rr, &ds, 4), [Some(0), Some(2), Some(0), Some(2)]);
    }

    #[test]
    fn even_distribution() {
        let ds = VecDests(vec![d(1, 1), d(2, 5), d(3, 1)]);
        let mut count = [0; 3];
        for p in picks(&Rr, &ds, 30) {
            count[p.unwrap()] += 1;
        }
        assert_eq!(count, [10, 10, 10]);
    }

    #[test]
    fn overloaded_and_all_unavailable() {
        let ds = VecDests(vec![d(1, 1).over(), d(2, 1)]);
        assert_eq!(picks(&Rr, &ds, 2), [Some(1), Some(1)]);
        let ds = VecDests(vec![d(1, 0), d(2, 1).over()]);
        assert_eq!(picks(&Rr, &ds, 1), [None]);
    }

    #[test]
    fn deleting_the_cursor_server_continues_after_it() {
        let a = VecDests(vec![d(1, 1), d(2, 1), d(3, 1)]);
        let mut st = Rr.new_state(0);
        let i = super::super::testutil::from_ip([1, 1, 1, 1].into());
        assert_eq!(Rr.schedule(&mut st, &a, &i), Some(0));
        assert_eq!(Rr.schedule(&mut st, &a, &i), Some(1));
        // B deleted: the kernel moves the cursor back to A, next is C.
        let b = VecDests(vec![d(1, 1), d(3, 1)]);
        Rr.refresh_state(&mut st, &b);
        assert_eq!(Rr.schedule(&mut st, &b, &i), Some(1));
        // A server added in front: the cursor stays on C, next is D, then A.
        let c = VecDests(vec![d(4, 1), d(1, 1), d(3, 1)]);
        Rr.refresh_state(&mut st, &c);
        assert_eq!(Rr.schedule(&mut st, &c, &i), Some(0));
        assert_eq!(Rr.schedule(&mut st, &c, &i), Some(1));
    }
}
