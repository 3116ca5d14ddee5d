//! Pieces several schedulers share: the kernel's hash_32, connection
//! overhead, the weighted-least-connection pick, lblc's "overloaded" test,
//! the usable-server test, sh/mh's pick with fallback and hashed port,
//! destination references that survive edits, and a small PRNG.

use super::{Dests, Input, SchedFlags};

/// A u32 index meaning "no destination" in bucket tables and caches.
pub(crate) const NONE: u32 = u32::MAX;

/// The kernel's multiplicative hash (include/linux/hash.h, GOLDEN_RATIO_32):
/// the top `bits` bits of `v * 0x61C88647` mod 2^32.
pub(crate) fn hash_32(v: u32, bits: u32) -> u32 {
    v.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// `ip_vs_dest_conn_overhead` (include/net/ip_vs.h): active connections
/// weigh 256 times an inactive one. i64 so that the weighted products below
/// cannot overflow.
pub(crate) fn overhead(d: &dyn Dests, i: usize) -> i64 {
    (i64::from(d.active(i)) << 8) + i64::from(d.inactive(i))
}

/// `oh * w` for the cross-multiplied compares, in i64 as the kernel's
/// `(__s64)` casts. Saturating: with u32 counters and weights up to 65535
/// (ipvsadm's limit) it never saturates, and absurd values still order
/// sanely instead of wrapping or panicking.
pub(crate) fn wmul(oh: i64, w: i32) -> i64 {
    oh.saturating_mul(i64::from(w))
}

/// The wlc rule (net/netfilter/ipvs/ip_vs_wlc.c, also inlined in lblc, lblcr
/// and sed with their own overhead): the first destination in list order
/// that is not OVERLOAD and has weight > 0 starts as the least loaded; a
/// later non-OVERLOAD one replaces it only if strictly less loaded by the
/// cross-multiplied compare `oh(least)*w(d) > oh(d)*w(least)` (see [`wmul`]).
/// Earlier destinations win ties, and weight 0
/// can never win (0 > x*w is false for x, w >= 0).
pub(crate) fn weighted_least(d: &dyn Dests, oh: fn(&dyn Dests, usize) -> i64) -> Option<usize> {
    let n = d.len();
    let first = (0..n).find(|&i| usable(d, i))?;
    let mut least = first;
    let mut loh = oh(d, first);
    for i in first + 1..n {
        if d.overloaded(i) {
            continue;
        }
        let doh = oh(d, i);
        if wmul(loh, d.weight(i)) > wmul(doh, d.weight(least)) {
            least = i;
            loh = doh;
        }
    }
    Some(least)
}

/// lblc/lblcr's `is_overloaded` (net/netfilter/ipvs/ip_vs_lblc.c): the
/// cached server has more active connections than its weight while some
/// server of the service is below half its weight, so moving is worth it.
/// Unrelated to the OVERLOAD flag.
pub(crate) fn lblc_overloaded(d: &dyn Dests, i: usize) -> bool {
    i64::from(d.active(i)) > i64::from(d.weight(i))
        && (0..d.len()).any(|j| i64::from(d.active(j)) * 2 < i64::from(d.weight(j)))
}

/// Whether server `i` may take a new connection: not OVERLOAD, weight
/// above 0 (the kernel's schedulers test `weight == 0` or `<= 0`, the
/// same thing: weights are never negative).
pub(crate) fn usable(d: &dyn Dests, i: usize) -> bool {
    !d.overloaded(i) && d.weight(i) > 0
}

/// sh and mh: whether bucket entry `i` names a server that may take the
/// connection (ip_vs_sh.c `is_unavailable`, ip_vs_mh.c `is_unavailable`).
fn hash_usable(dests: &dyn Dests, i: u32) -> bool {
    let i = i as usize;
    i < dests.len() && usable(dests, i)
}

/// sh and mh's pick: the server in the client's slot `first` if it may
/// take the connection; otherwise, with the fallback flag, the first that
/// may along the kernel's probe sequence (`probe(k)` for k in `0..n`:
/// each scheduler's own rehash), an empty slot ending the search.
pub(crate) fn hashed_pick(
    dests: &dyn Dests,
    fallback: bool,
    first: u32,
    n: u32,
    probe: impl Fn(u32) -> u32,
) -> Option<usize> {
    if first == NONE {
        return None;
    }
    if hash_usable(dests, first) {
        return Some(first as usize);
    }
    if !fallback {
        return None;
    }
    (0..n)
        .map(probe)
        .take_while(|&i| i != NONE)
        .find(|&i| hash_usable(dests, i))
        .map(|i| i as usize)
}

/// sh and mh: the source port hashed with the address, with sh-port /
/// mh-port and only for protocols whose ports start their header
/// (`ip_vs_sh_get_port`, `ip_vs_mh_get_port`); 0 otherwise.
pub(crate) fn hashed_port(flags: SchedFlags, input: &Input) -> u16 {
    match input.protocol {
        6 | 17 | 132 if flags.port => input.sport,
        _ => 0,
    }
}

/// Greatest common divisor of two positive numbers (lib/math/gcd.c).
pub(crate) fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A destination as caches hold it: address and port are its identity in
/// the service (what the kernel's pointer to the dest amounts to), `idx` a
/// hint into the current snapshot, re-resolved by `refresh_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DestRef {
    pub addr: u32,
    pub port: u16,
    pub idx: u32,
}

impl DestRef {
    pub(super) fn of(d: &dyn Dests, i: usize) -> Self {
        DestRef {
            addr: u32::from(d.addr(i)),
            port: d.port(i),
            idx: i as u32,
        }
    }

    /// The destination's index in `d`, or None if it is not in this snapshot
    /// (the kernel's "in the trash": treated as not AVAILABLE). The hint is
    /// checked, so a stale one can never name another server.
    pub(super) fn resolve(&self, d: &dyn Dests) -> Option<usize> {
        let i = self.idx as usize;
        (i < d.len() && u32::from(d.addr(i)) == self.addr && d.port(i) == self.port).then_some(i)
    }

    pub(super) fn same_dest(&self, other: &DestRef) -> bool {
        self.addr == other.addr && self.port == other.port
    }
}

/// Address+port to index of one snapshot, sorted for binary search: built
/// with the scheduler so that `refresh_state` re-resolves cache entries
/// without allocating.
#[derive(Debug, Default)]
pub(crate) struct DestIndex(Vec<(u32, u16, u32)>);

impl DestIndex {
    pub(super) fn new(d: &dyn Dests) -> Self {
        let mut v: Vec<_> = (0..d.len())
            .map(|i| (u32::from(d.addr(i)), d.port(i), i as u32))
            .collect();
        v.sort_unstable();
        DestIndex(v)
    }

    /// Points `r.idx` at the destination's index in this snapshot, or NONE.
    pub(super) fn reresolve(&self, r: &mut DestRef) {
        r.idx = match self
            .0
            .binary_search_by(|e| (e.0, e.1).cmp(&(r.addr, r.port)))
        {
            Ok(pos) => self.0[pos].2,
            Err(_) => NONE,
        };
    }
}

/// A small per-worker pseudo-random generator (SplitMix64): twos needs two
/// independent u32s per pick, not cryptographic quality (the kernel uses
/// `get_random_u32`/`prandom_u32`).
#[derive(Clone, Debug)]
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Self {
        Prng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{d, VecDests};
    use super::*;

    #[test]
    fn hash_32_matches_spec_examples() {
        // IPVS-SPEC.md dh example: 10.0.0.1 -> bucket 39, 192.168.0.1 -> 192.
        assert_eq!(hash_32(0x0A00_0001, 8), 39);
        assert_eq!(hash_32(0xC0A8_0001, 8), 192);
    }

    #[test]
    fn gcd_works() {
        assert_eq!(gcd(4, 6), 2);
        assert_eq!(gcd(7, 3), 1);
        assert_eq!(gcd(5, 5), 5);
    }

    #[test]
    fn dest_ref_survives_reorder() {
        let a = VecDests(vec![d(1, 1), d(2, 1), d(3, 1)]);
        let mut r = DestRef::of(&a, 1);
        let b = VecDests(vec![d(3, 1), d(4, 1), d(2, 1)]);
        assert_eq!(r.resolve(&b), None, "stale hint must not name 10.0.0.4");
        DestIndex::new(&b).reresolve(&mut r);
        assert_eq!(r.resolve(&b), Some(2));
        let c = VecDests(vec![d(3, 1)]);
        DestIndex::new(&c).reresolve(&mut r);
        assert_eq!(r.idx, NONE);
        assert_eq!(r.resolve(&c), None);
    }
}
