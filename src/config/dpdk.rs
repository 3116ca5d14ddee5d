//! `[dpdk]`: the EAL's arguments, the packet pool and the ports' queues.
//!
//! ```toml
//! [dpdk]
//! eal_args = ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--no-telemetry"]
//! mbufs = 8191                  # packet buffers in the pool (default 8191); checked at
//!                               # start against what ports, queues, caches and hold queues need
//! mbuf_size = 2048              # packet bytes per mbuf after its headroom (default: 2048,
//!                               # or the largest interface's MTU + 22 if that is more;
//!                               # at least that)
//! rx_desc = 1024                # RX descriptors per queue (default 1024)
//! tx_desc = 1024                # TX descriptors per queue (default 1024)
//! idle_sleep_us = 0             # 0 (default): workers poll without pause (an appliance);
//!                               # > 0: a worker that found nothing for 100 polls sleeps 1 µs,
//!                               # then twice as long each time up to this (at most 100000),
//!                               # until a frame comes (directors sharing cores, tests)
//! control_cpus = "2-3"          # CPUs of the control threads (default: those the process may
//!                               # use that run no worker; all of them if every one does)
//! ```

use serde::Deserialize;

use super::interface::Interface;
use super::Invalid;

/// Default number of mbufs in the packet pool.
pub const DEFAULT_MBUFS: u32 = 8191;
/// Default descriptors per queue.
pub const DEFAULT_DESC: u16 = 1024;

/// Headroom DPDK reserves in front of every packet (`RTE_PKTMBUF_HEADROOM`;
/// a test holds it to the dpdk crate's `HEADROOM`).
pub const MBUF_HEADROOM: u16 = 128;

/// Bytes a frame adds to its MTU in a buffer: Ethernet header, one VLAN
/// tag and the CRC some devices leave in place (the dpdk crate's
/// `FRAME_OVERHEAD`, held to it by a test).
pub const FRAME_OVERHEAD: u16 = 14 + 4 + 4;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDpdk {
    #[serde(default)]
    pub(super) eal_args: Vec<String>,
    pub(super) mbufs: Option<u32>,
    pub(super) mbuf_size: Option<u16>,
    pub(super) rx_desc: Option<u16>,
    pub(super) tx_desc: Option<u16>,
    pub(super) control_cpus: Option<String>,
    pub(super) idle_sleep_us: Option<u64>,
}

/// DPDK settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DpdkConfig {
    pub eal_args: Vec<String>,
    pub mbufs: u32,
    /// Packet bytes per mbuf (after its headroom); `None`: the default,
    /// 2048 or what the largest MTU needs.
    pub mbuf_size: Option<u16>,
    /// Descriptors per RX and per TX queue asked of each device.
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// CPUs for the control threads; `None`: those no worker uses.
    pub control_cpus: Option<Vec<usize>>,
    /// How long an idle worker sleeps at most (0: it never does).
    pub idle_sleep_us: u64,
}

/// Reads `[dpdk]`.
pub(super) fn parse(raw: RawDpdk) -> Result<DpdkConfig, Invalid> {
    let mbufs = raw.mbufs.unwrap_or(DEFAULT_MBUFS);
    if mbufs < 1024 {
        return Err(Invalid(
            "dpdk.mbufs".into(),
            format!("{mbufs} is too few (at least 1024)"),
        ));
    }

    let mut desc = [DEFAULT_DESC; 2];
    for (d, (key, v)) in desc
        .iter_mut()
        .zip([("dpdk.rx_desc", raw.rx_desc), ("dpdk.tx_desc", raw.tx_desc)])
    {
        if let Some(n) = v {
            if !(32..=16384).contains(&n) {
                return Err(Invalid(key.into(), format!("{n} is outside 32..=16384")));
            }
            *d = n;
        }
    }
    let idle_sleep_us = raw.idle_sleep_us.unwrap_or(0);
    if idle_sleep_us > 100_000 {
        return Err(Invalid(
            "dpdk.idle_sleep_us".into(),
            format!("{idle_sleep_us} is above 100000 (0.1 s)"),
        ));
    }
    let control_cpus = match &raw.control_cpus {
        None => None,
        Some(list) => {
            Some(parse_cpu_list(list).map_err(|e| Invalid("dpdk.control_cpus".into(), e))?)
        }
    };

    Ok(DpdkConfig {
        eal_args: raw.eal_args,
        mbufs,
        mbuf_size: raw.mbuf_size,
        rx_desc: desc[0],
        tx_desc: desc[1],
        control_cpus,
        idle_sleep_us,
    })
}

/// Checks `mbuf_size` against the interfaces' MTUs: a frame in one mbuf.
pub(super) fn check_mbuf_size(dpdk: &DpdkConfig, interfaces: &[Interface]) -> Result<(), Invalid> {
    if let Some(size) = dpdk.mbuf_size {
        let max = u16::MAX - MBUF_HEADROOM;
        if size > max {
            return Err(Invalid(
                "dpdk.mbuf_size".into(),
                format!("{size} does not fit an mbuf with its headroom (at most {max})"),
            ));
        }
        // A frame of the MTU (Ethernet header, two VLAN tags) in one mbuf.
        for (i, itf) in interfaces.iter().enumerate() {
            let need = itf.mtu as u32 + FRAME_OVERHEAD as u32;
            if (size as u32) < need {
                return Err(Invalid(
                    "dpdk.mbuf_size".into(),
                    format!(
                        "{size} is too small for interface[{i}] ({}) with mtu {}: at least {need}",
                        itf.name, itf.mtu
                    ),
                ));
            }
        }
    }

    Ok(())
}

/// Parses a CPU list as taskset and the EAL's -l take it: `0,2-3,8`.
/// The result is ascending and without repeats.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    const MAX_CPU: usize = 1023;
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim) {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n <= MAX_CPU)
                .ok_or_else(|| format!("{t:?} in {s:?} is not a CPU number (0 to {MAX_CPU})"))
        };
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if a > b {
            return Err(format!("{part:?} in {s:?} is a backwards range"));
        }
        cpus.extend(a..=b);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Formats CPUs as a list with ranges: `0,2-3`.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}
