//! How many packet buffers the director needs, checked before the pool is
//! made, so that too small a `[dpdk] mbufs` is one clear line at start-up
//! instead of an RX queue that runs dry under load.
//!
//! Every buffer that can be out of the pool at once is counted, as DPDK's
//! l3fwd sizes its pool:
//!
//! - each RX descriptor holds a buffer waiting for a packet;
//! - each TX descriptor can hold a sent buffer until the device recycles it;
//! - each worker's mempool cache may keep up to 1.5 × the cache size
//!   (DPDK's flush threshold);
//! - each worker holds up to `[arp] queue` frames awaiting resolution, a
//!   receive burst, and a transmit burst per port;
//! - with several workers, each one's steering ring can fill up.

use dpdk::BURST;

/// The inputs of the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Ports, and the RX and TX descriptors per queue as the devices will
    /// use them (the largest across ports).
    pub ports: usize,
    pub rx_desc: usize,
    pub tx_desc: usize,
    /// Workers, each with one RX and one TX queue on every port.
    pub workers: usize,
    pub cache: usize,
    pub hold_queue: usize,
    /// Mbufs each worker's steering ring holds at most (0: one worker).
    pub steer_ring: usize,
    /// Exception paths (kernel taps), each with [`KERNEL_DESC`] RX and TX
    /// descriptors per worker queue.
    pub kernel_ports: usize,
}

/// RX and TX descriptors of an exception path's queue: the director's own
/// traffic is light.
pub const KERNEL_DESC: u16 = 128;

impl Budget {
    /// Buffers the director may have out of the pool at once.
    pub fn needed(&self) -> u64 {
        let (p, w) = (self.ports as u64, self.workers as u64);
        let k = self.kernel_ports as u64;
        let rings = p * w * (self.rx_desc as u64 + self.tx_desc as u64)
            + k * w * 2 * u64::from(KERNEL_DESC);
        let caches = w * (self.cache as u64 * 3).div_ceil(2);
        let in_flight = w * (self.hold_queue as u64 + BURST as u64 * (1 + p + k));
        let steering = w * self.steer_ring as u64;
        rings + caches + in_flight + steering
    }

    /// The breakdown, for the error message.
    pub fn explain(&self) -> String {
        format!(
            "{} port(s) x {} queue(s) x ({} RX + {} TX descriptors){}, {} per-worker cache(s) of {}, \
             {} x ({} held for ARP + bursts{})",
            self.ports,
            self.workers,
            self.rx_desc,
            self.tx_desc,
            if self.kernel_ports > 0 {
                format!(
                    " + {} exception path(s) x {} queue(s) x ({KERNEL_DESC} RX + {KERNEL_DESC} TX)",
                    self.kernel_ports, self.workers
                )
            } else {
                String::new()
            },
            self.workers,
            self.cache,
            self.workers,
            self.hold_queue,
            if self.steer_ring > 0 {
                format!(" + a steering ring of {}", self.steer_ring)
            } else {
                String::new()
            }
        )
    }
}

/// The per-lcore mempool cache for a pool of `mbufs`: DPDK wants it at
/// most 512 and at most `mbufs / 1.5`; a quarter of the pool keeps
/// small pools useful.
pub fn cache_size(mbufs: u32) -> u32 {
    256.min(mbufs / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration checks `mbuf_size` with DPDK's figures without
    /// linking DPDK: its copies must be DPDK's.
    #[test]
    fn the_configuration_knows_dpdk_s_buffer_figures() {
        assert_eq!(crate::config::dpdk::MBUF_HEADROOM, dpdk::HEADROOM);
        assert_eq!(crate::config::dpdk::FRAME_OVERHEAD, dpdk::FRAME_OVERHEAD);
    }

    #[test]
    fn counts_every_holder() {
        let b = Budget {
            ports: 2,
            rx_desc: 1024,
            tx_desc: 512,
            workers: 2,
            cache: 256,
            hold_queue: 100,
            steer_ring: 0,
            kernel_ports: 0,
        };
        // rings 2*2*1536, caches 2*384, held and bursts 2*(100+32*3)
        assert_eq!(b.needed(), 6144 + 768 + 392);
        assert!(b.explain().contains("1024 RX + 512 TX"));
    }

    #[test]
    fn the_default_pool_fits_the_demo() {
        // One tap port, two workers, the default 1024/1024 descriptors.
        let b = Budget {
            ports: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            workers: 2,
            cache: cache_size(crate::config::DEFAULT_MBUFS) as usize,
            hold_queue: 256,
            steer_ring: 1023,
            kernel_ports: 0,
        };
        assert!(
            b.needed() <= crate::config::DEFAULT_MBUFS as u64,
            "{}",
            b.needed()
        );
    }
}
