//! `[sync]`: IPVS connection sync in dlvs's TOML.
//!
//! ```toml
//! [sync]                          # IPVS connection sync, wire-compatible with the kernel's
//! interface = "lan0"              # messages go from its first address, multicast 224.0.0.81:8848
//! syncid = 1                      # 0..=255; a backup with syncid 0 takes every message
//! version = 1                     # what is sent: 1 (the kernel's default) or 0; both are read
//! vrrp = "VI_1"                   # optional: the instance whose MASTER state makes this director
//!                                 # the sync master (default: the first [[vrrp]]); without
//!                                 # [[vrrp]] it sends and receives always
//! threshold = 3                   # the kernel's sync_threshold and sync_period (defaults 3, 50):
//! period = 50                     # a connection is sent at its packet number threshold (mod
//!                                 # period); period 0: once, at that packet
//! maxlen = 1472                   # optional, ipvsadm's daemon options: the largest message
//! group = "224.0.0.81"            # (default: 1500, or the MTU for receiving, less 28), the
//! port = 8848                     # multicast group, the UDP port, the TTL (defaults: the
//! ttl = 1                         # kernel's)
//! ```

use std::net::Ipv4Addr;

use serde::Deserialize;

use super::interface::Interface;
use super::vrrp::{interface, VrrpConfig};
use super::Invalid;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSync {
    pub(crate) interface: String,
    pub(crate) syncid: Option<u16>,
    pub(crate) version: Option<u8>,
    pub(crate) vrrp: Option<String>,
    pub(crate) threshold: Option<u32>,
    pub(crate) period: Option<u32>,
    pub(crate) maxlen: Option<u32>,
    pub(crate) group: Option<String>,
    pub(crate) port: Option<u32>,
    pub(crate) ttl: Option<u32>,
}

/// A validated `[sync]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    pub port: usize,
    pub syncid: u8,
    pub version: u8,
    /// The `[[vrrp]]` instance (index) whose MASTER state makes this the
    /// sync master; none: master and backup at once.
    pub vrrp: Option<usize>,
    pub threshold: u32,
    pub period: u32,
    /// The messages' source: the interface's first address.
    pub source: Ipv4Addr,
    /// ipvsadm's daemon options (absent: the kernel's defaults).
    pub maxlen: Option<u16>,
    pub group: Option<Ipv4Addr>,
    pub port_udp: Option<u16>,
    pub ttl: Option<u8>,
}

/// Validates `[sync]` against the interfaces and the instances.
pub fn parse(
    raw: RawSync,
    interfaces: &[Interface],
    vrrp: &[VrrpConfig],
) -> Result<SyncConfig, Invalid> {
    let (port, source) =
        interface(&raw.interface, interfaces).map_err(|e| Invalid("sync.interface".into(), e))?;
    let syncid = raw.syncid.unwrap_or(0);
    let syncid = u8::try_from(syncid).map_err(|_| {
        Invalid(
            "sync.syncid".to_string(),
            format!("{syncid} is outside 0..=255"),
        )
    })?;
    let version = raw.version.unwrap_or(1);
    if version > 1 {
        return Err(Invalid("sync.version".into(), format!("{version}: 0 or 1")));
    }
    let instance = match raw.vrrp {
        Some(name) => Some(vrrp.iter().position(|v| v.name == name).ok_or_else(|| {
            Invalid(
                "sync.vrrp".to_string(),
                format!("no [[vrrp]] instance is named {name:?}"),
            )
        })?),
        None if vrrp.is_empty() => None,
        None => Some(0),
    };
    let period = raw.period.unwrap_or(50);
    let threshold = raw.threshold.unwrap_or(3);
    // The kernel's checks (ip_vs_ctl.c `proc_do_sync_threshold`).
    if period > 0 && threshold >= period || period > 65535 || threshold > 65535 {
        return Err(Invalid(
            "sync.threshold".into(),
            format!("threshold {threshold} must be below period {period} (at most 65535)"),
        ));
    }
    let small = |v: Option<u32>, key: &str, range: std::ops::RangeInclusive<u32>| {
        v.map(|n| {
            if range.contains(&n) {
                Ok(n)
            } else {
                Err(Invalid(
                    format!("sync.{key}"),
                    format!("{n} is outside {range:?}"),
                ))
            }
        })
        .transpose()
    };
    let group = match &raw.group {
        None => None,
        Some(g) => match g.parse::<Ipv4Addr>() {
            Ok(a) if a.is_multicast() => Some(a),
            _ => {
                return Err(Invalid(
                    "sync.group".into(),
                    format!("{g:?} is not an IPv4 multicast group"),
                ))
            }
        },
    };
    Ok(SyncConfig {
        port,
        syncid,
        version,
        vrrp: instance,
        threshold,
        period,
        source,
        maxlen: small(raw.maxlen, "maxlen", 1..=65507)?.map(|n| n as u16),
        group,
        port_udp: small(raw.port, "port", 1..=65535)?.map(|n| n as u16),
        ttl: small(raw.ttl, "ttl", 1..=255)?.map(|n| n as u8),
    })
}
