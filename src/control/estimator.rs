//! IPVS's rate estimator, for `dlvsadm -L --rate` (net/netfilter/ipvs/
//! ip_vs_est.c `estimation_timer`/`ip_vs_chain_estimation`,
//! `ip_vs_read_estimator`, `ip_vs_zero_estimator`).
//!
//! The contract: [`Estimator::tick`] is called every [`PERIOD`] with the
//! counters' current totals; each rate moves a quarter of the way towards
//! the last period's rate (an exponentially weighted average), kept scaled
//! as the kernel keeps it (connections and packets by 2^10, bytes by 2^5),
//! so that `--rate` shows what the kernel would for the same traffic.

use std::time::Duration;

use crate::datapath::stats::DestStats;

/// How often the kernel's estimator runs.
pub const PERIOD: Duration = Duration::from_secs(2);

/// Per-second rates, as ipvsadm lists them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    pub cps: u64,
    pub in_pps: u64,
    pub out_pps: u64,
    pub in_bps: u64,
    pub out_bps: u64,
}

/// One service's or real server's estimator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimator {
    last: DestStats,
    /// Scaled rates: per second times 2^10 (cps, pps) or 2^5 (bps).
    cps: i64,
    in_pps: i64,
    out_pps: i64,
    in_bps: i64,
    out_bps: i64,
}

/// `e += (rate - e) >> 2`, with the kernel's arithmetic shift.
fn smooth(e: &mut i64, rate: i64) {
    *e += (rate - *e) >> 2;
}

impl Estimator {
    /// An estimator whose counters stand at `now` (traffic before it is not
    /// a rate).
    pub fn new(now: &DestStats) -> Estimator {
        Estimator {
            last: *now,
            ..Estimator::default()
        }
    }

    /// One period: the traffic since the last tick, per second, folded in.
    pub fn tick(&mut self, now: &DestStats) {
        // Scaled by 2^10 (2^5 for bytes), divided by the 2 s period.
        let delta = |n: u64, last: u64, shift: u32| (n.wrapping_sub(last) << shift) as i64;
        smooth(&mut self.cps, delta(now.conns, self.last.conns, 9));
        smooth(
            &mut self.in_pps,
            delta(now.in_packets, self.last.in_packets, 9),
        );
        smooth(
            &mut self.out_pps,
            delta(now.out_packets, self.last.out_packets, 9),
        );
        smooth(&mut self.in_bps, delta(now.in_bytes, self.last.in_bytes, 4));
        smooth(
            &mut self.out_bps,
            delta(now.out_bytes, self.last.out_bytes, 4),
        );
        self.last = *now;
    }

    /// The rates, rounded as `ip_vs_read_estimator` rounds them.
    pub fn rates(&self) -> Rates {
        let pps = |e: i64| ((e + 0x1FF) >> 10).max(0) as u64;
        let bps = |e: i64| ((e + 0xF) >> 5).max(0) as u64;
        Rates {
            cps: pps(self.cps),
            in_pps: pps(self.in_pps),
            out_pps: pps(self.out_pps),
            in_bps: bps(self.in_bps),
            out_bps: bps(self.out_bps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(conns: u64, packets: u64, bytes: u64) -> DestStats {
        DestStats {
            conns,
            in_packets: packets,
            out_packets: 0,
            in_bytes: bytes,
            out_bytes: 0,
        }
    }

    /// Worked by hand from ip_vs_est.c: 3 connections, 4 packets and 160
    /// bytes in the first period, then none.
    #[test]
    fn a_burst_decays_as_the_kernels_does() {
        let mut e = Estimator::new(&at(0, 0, 0));
        e.tick(&at(3, 4, 160));
        // cps: rate 3 << 9 = 1536, e = 1536 >> 2 = 384, read (384 + 511) >> 10 = 0.
        // pps: 2048 >> 2 = 512, read (512 + 511) >> 10 = 0.
        // bps: rate 160 << 4 = 2560, e = 640, read (640 + 15) >> 5 = 20.
        assert_eq!(
            e.rates(),
            Rates {
                cps: 0,
                in_pps: 0,
                out_pps: 0,
                in_bps: 20,
                out_bps: 0
            }
        );
        e.tick(&at(3, 4, 160));
        // bps: 640 + ((0 - 640) >> 2) = 480, read (480 + 15) >> 5 = 15.
        assert_eq!(e.rates().in_bps, 15);
        for _ in 0..40 {
            e.tick(&at(3, 4, 160));
        }
        assert_eq!(e.rates(), Rates::default());
    }

    /// A steady rate is approached from below (after 60 periods the byte
    /// rate still reads 29,999,999) and then held exactly.
    #[test]
    fn a_steady_rate_converges() {
        let mut e = Estimator::new(&DestStats::default());
        let mut total = DestStats::default();
        for _ in 0..100 {
            // 1,000 connections, 50,000 packets, 30 MB per second.
            total.conns += 2_000;
            total.in_packets += 100_000;
            total.in_bytes += 60_000_000;
            e.tick(&total);
        }
        let r = e.rates();
        assert_eq!((r.cps, r.in_pps, r.in_bps), (1_000, 50_000, 30_000_000));
    }
}
