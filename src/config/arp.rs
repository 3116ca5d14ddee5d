//! `[arp]`: neighbour resolution.
//!
//! ```toml
//! [arp]
//! reachable_s = 300             # learned entries are used this long without refresh (default 300)
//! retry_ms = 1000               # ARP request retry interval (default 1000)
//! retries = 3                   # requests before an unresolved next hop fails (default 3)
//! queue = 256                   # packets held per lcore while resolving (default 256)
//! table_size = 4096             # neighbour entries per lcore (default 4096)
//! ```

use serde::Deserialize;

use super::Invalid;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArp {
    pub(super) reachable_s: Option<u64>,
    pub(super) retry_ms: Option<u64>,
    pub(super) retries: Option<u32>,
    pub(super) queue: Option<usize>,
    pub(super) table_size: Option<usize>,
}

/// Neighbour resolution knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpConfig {
    pub reachable_us: u64,
    pub retry_us: u64,
    pub retries: u32,
    pub queue: usize,
    pub table_size: usize,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig {
            reachable_us: 300_000_000,
            retry_us: 1_000_000,
            retries: 3,
            queue: 256,
            table_size: 4096,
        }
    }
}

/// Reads `[arp]`; its hold queue must leave most of the `mbufs` free.
pub(super) fn parse(ra: RawArp, mbufs: u32) -> Result<ArpConfig, Invalid> {
    let mut arp = ArpConfig::default();
    if let Some(s) = ra.reachable_s {
        if s == 0 {
            return Err(Invalid(
                "arp.reachable_s".into(),
                "must be at least 1".into(),
            ));
        }
        arp.reachable_us = s.saturating_mul(1_000_000);
    }
    if let Some(ms) = ra.retry_ms {
        if !(10..=60_000).contains(&ms) {
            return Err(Invalid(
                "arp.retry_ms".into(),
                format!("{ms} is outside 10..=60000"),
            ));
        }
        arp.retry_us = ms * 1000;
    }
    if let Some(n) = ra.retries {
        if !(1..=100).contains(&n) {
            return Err(Invalid(
                "arp.retries".into(),
                format!("{n} is outside 1..=100"),
            ));
        }
        arp.retries = n;
    }
    if let Some(q) = ra.queue {
        if q > 65_536 {
            return Err(Invalid(
                "arp.queue".into(),
                format!("{q} is more than 65536"),
            ));
        }
        arp.queue = q;
    }
    if let Some(t) = ra.table_size {
        if !(16..=1 << 20).contains(&t) {
            return Err(Invalid(
                "arp.table_size".into(),
                format!("{t} is outside 16..=1048576"),
            ));
        }
        arp.table_size = t;
    }
    if arp.queue >= mbufs as usize / 2 {
        return Err(Invalid(
            "arp.queue".into(),
            format!("{} would hold half of the {mbufs} mbufs", arp.queue),
        ));
    }

    Ok(arp)
}
