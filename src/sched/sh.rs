//! sh: source hashing (net/netfilter/ipvs/ip_vs_sh.c).
//!
//! 256 buckets filled by walking the list cyclically, each server taking
//! `max(weight, 1)` consecutive buckets, so the share of clients follows the
//! weights. A client goes to bucket `hash_32(port + saddr, 8)`, the port
//! being the source port only with sh-port (SCHED2) and a TCP, UDP or SCTP
//! packet. A server is unusable with weight <= 0 or OVERLOAD. Without
//! sh-fallback (SCHED1) that gives NULL; with it, a deterministic probe
//! sequence derived from the same hash finds another server, so a client
//! keeps its server whenever that server is up.

use super::common::{hash_32, hashed_pick, hashed_port, NONE};
use super::{Dests, Input, SchedError, SchedFlags, SchedState, Scheduler};

const TAB_BITS: u32 = 8;
const TAB_SIZE: usize = 1 << TAB_BITS;
const TAB_MASK: u32 = TAB_SIZE as u32 - 1;

#[derive(Debug)]
pub struct Sh {
    buckets: [u32; TAB_SIZE],
    flags: SchedFlags,
}

pub fn build(flags: SchedFlags, dests: &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(Box::new(Sh::new(flags, dests)))
}

/// `ip_vs_sh_hashkey`: the offset is added after hashing, so the fallback's
/// probes are the hash plus a rotating offset.
fn hashkey(addr: u32, port: u16, offset: u32) -> usize {
    (offset.wrapping_add(hash_32(u32::from(port).wrapping_add(addr), TAB_BITS)) & TAB_MASK) as usize
}

impl Sh {
    /// `ip_vs_sh_reassign`: the per-server count is incremented before the
    /// compare with the weight, so a weight-0 server still gets one bucket.
    pub fn new(flags: SchedFlags, dests: &dyn Dests) -> Self {
        let n = dests.len();
        let mut buckets = [NONE; TAB_SIZE];
        if n > 0 {
            let (mut p, mut count) = (0, 0);
            for b in buckets.iter_mut() {
                *b = p as u32;
                count += 1;
                if count >= dests.weight(p) {
                    p = (p + 1) % n;
                    count = 0;
                }
            }
        }
        Sh { buckets, flags }
    }
}

impl Scheduler for Sh {
    fn name(&self) -> &'static str {
        "sh"
    }

    fn schedule(&self, _: &mut SchedState, dests: &dyn Dests, input: &Input) -> Option<usize> {
        let addr = u32::from(input.saddr);
        let port = hashed_port(self.flags, input);
        let ihash = hashkey(addr, port, 0);
        // `ip_vs_sh_get_fallback`: probe from the original hash around the
        // table.
        hashed_pick(
            dests,
            self.flags.fallback,
            self.buckets[ihash],
            TAB_SIZE as u32,
            |k| self.buckets[hashkey(addr, port, (k + ihash as u32) & TAB_MASK)],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{d, from_ip, VecDests};
    use super::*;
    use std::net::Ipv4Addr;

    const FALLBACK: SchedFlags = SchedFlags {
        fallback: true,
        port: false,
    };
    const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);

    #[test]
    fn spec_example_weighted_fill() {
        // IPVS-SPEC.md: A w2, B w1 -> A,A,B repeating; 192.168.0.1 -> H = 192 -> A.
        let ds = VecDests(vec![d(1, 2), d(2, 1)]);
        let sh = Sh::new(SchedFlags::default(), &ds);
        for (i, &b) in sh.buckets.iter().enumerate() {
            assert_eq!(b, u32::from(i % 3 == 2), "bucket {i}");
        }
        assert_eq!(hashkey(u32::from(CLIENT), 0, 0), 192);
        let mut st = SchedState::Stateless;
        assert_eq!(sh.schedule(&mut st, &ds, &from_ip(CLIENT)), Some(0));
    }

    #[test]
    fn spec_example_fallback() {
        // IPVS-SPEC.md: A weight 0 -> buckets alternate A,B. 192.168.0.1:
        // without fallback NULL; with fallback probe 128 (A), then 129 -> B.
        let ds = VecDests(vec![d(1, 0), d(2, 1)]);
        let plain = Sh::new(SchedFlags::default(), &ds);
        for (i, &b) in plain.buckets.iter().enumerate() {
            assert_eq!(b as usize, i % 2);
        }
        let mut st = SchedState::Stateless;
        assert_eq!(plain.schedule(&mut st, &ds, &from_ip(CLIENT)), None);
        assert_eq!(hashkey(u32::from(CLIENT), 0, 192), 128);
        assert_eq!(hashkey(u32::from(CLIENT), 0, 193), 129);
        let fb = Sh::new(FALLBACK, &ds);
        assert_eq!(fb.schedule(&mut st, &ds, &from_ip(CLIENT)), Some(1));
    }

    #[test]
    fn fallback_gives_null_when_all_down_and_overload_counts() {
        let ds = VecDests(vec![d(1, 1).over(), d(2, 1).over()]);
        let fb = Sh::new(FALLBACK, &ds);
        let mut st = SchedState::Stateless;
        assert_eq!(fb.schedule(&mut st, &ds, &from_ip(CLIENT)), None);
        let empty = VecDests(vec![]);
        assert_eq!(
            Sh::new(FALLBACK, &empty).schedule(&mut st, &empty, &from_ip(CLIENT)),
            None
        );
    }

    #[test]
    fn port_flag_hashes_source_port_of_tcp_udp_sctp_only() {
        let ds: Vec<_> = (1..=7).map(|n| d(n, 1)).collect();
        let ds = VecDests(ds);
        let with_port = Sh::new(
            SchedFlags {
                fallback: false,
                port: true,
            },
            &ds,
        );
        let without = Sh::new(SchedFlags::default(), &ds);
        let mut st = SchedState::Stateless;
        let addr = u32::from(CLIENT);
        let mut input = from_ip(CLIENT);
        for sport in [1000u16, 1001, 40000] {
            input.sport = sport;
            input.protocol = 17;
            let want = with_port.buckets[hashkey(addr, sport, 0)] as usize;
            assert_eq!(with_port.schedule(&mut st, &ds, &input), Some(want));
            assert_eq!(without.schedule(&mut st, &ds, &input), Some(192 % 7));
            input.protocol = 1;
            assert_eq!(with_port.schedule(&mut st, &ds, &input), Some(192 % 7));
        }
    }
}
