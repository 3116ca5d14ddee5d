//! `[[vrrp]]` and `[sync]`: high availability in dlvs's TOML.
//!
//! ```toml
//! [[vrrp]]                        # a VRRP instance, interoperable with keepalived
//! name = "VI_1"                   # optional (default "VI_<virtual_router_id>"): logs, metrics, notify
//! interface = "lan0"              # a dlvs [[interface]]: adverts go out and come in there
//! virtual_router_id = 51          # 1..=255, one instance per id and interface
//! priority = 100                  # 1..=254 (255 is an address owner's: dlvs never owns a VIP)
//! advert_int_ms = 1000            # version 2: whole seconds (1000..=255000); version 3:
//!                                 # centiseconds (10..=40950); default 1000
//! version = 2                     # 2 (RFC 3768, keepalived's default) or 3 (RFC 5798)
//! preempt = true                  # a higher priority takes over from a lower master (default)
//! virtual_addresses = ["10.0.0.100"]   # the director's only while MASTER; not in any
//!                                 # interface's addresses
//! notify_master = "/usr/local/bin/became-master"   # optional, keepalived's notify programs,
//! notify_backup = "..."           # run through /bin/sh -c on each transition to that state
//! notify_stop = "..."
//! notify = "/usr/local/bin/vrrp-event"   # optional: run with keepalived's arguments
//!                                 # INSTANCE <name> <MASTER|BACKUP|STOP> <priority>
//!
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

use crate::config::Interface;

/// At most this many `[[vrrp]]` instances (their MASTER states are bits
/// of one word the workers read).
pub const MAX_INSTANCES: usize = 64;
/// Virtual addresses of one instance (keepalived's adverts carry at most
/// 20 in version 2's practice; the packet field allows 255).
pub const MAX_ADDRESSES: usize = 20;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVrrp {
    pub(crate) name: Option<String>,
    pub(crate) interface: String,
    pub(crate) virtual_router_id: u16,
    pub(crate) priority: Option<u16>,
    pub(crate) advert_int_ms: Option<u32>,
    pub(crate) version: Option<u8>,
    pub(crate) preempt: Option<bool>,
    pub(crate) virtual_addresses: Vec<String>,
    pub(crate) notify_master: Option<String>,
    pub(crate) notify_backup: Option<String>,
    pub(crate) notify_stop: Option<String>,
    pub(crate) notify: Option<String>,
}

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

/// A validated `[[vrrp]]` instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpConfig {
    pub name: String,
    /// The interface's index.
    pub port: usize,
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds (version 2: a multiple of 100).
    pub advert_int_cs: u16,
    pub version: u8,
    pub preempt: bool,
    pub addresses: Vec<Ipv4Addr>,
    /// The adverts' source: the interface's first address.
    pub source: Ipv4Addr,
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_stop: Option<String>,
    pub notify: Option<String>,
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

type Invalid = (String, String);

/// Validates the `[[vrrp]]` tables against the interfaces.
pub fn parse_vrrp(raw: Vec<RawVrrp>, interfaces: &[Interface]) -> Result<Vec<VrrpConfig>, Invalid> {
    if raw.len() > MAX_INSTANCES {
        return Err((
            format!("vrrp[{MAX_INSTANCES}]"),
            format!("at most {MAX_INSTANCES} [[vrrp]] instances"),
        ));
    }
    let mut out: Vec<VrrpConfig> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let v = parse_one(i, r, interfaces, &out)?;
        out.push(v);
    }
    Ok(out)
}

/// Validates instance `i` against the interfaces and the instances
/// before it (`earlier`).
pub fn parse_one(
    i: usize,
    r: RawVrrp,
    interfaces: &[Interface],
    earlier: &[VrrpConfig],
) -> Result<VrrpConfig, Invalid> {
    if i >= MAX_INSTANCES {
        return Err((
            format!("vrrp[{i}]"),
            format!("at most {MAX_INSTANCES} [[vrrp]] instances"),
        ));
    }
    let out = earlier;
    {
        let f = |k: &str| format!("vrrp[{i}].{k}");
        let (port, source) =
            interface(&r.interface, interfaces).map_err(|e| (f("interface"), e))?;
        let vrid = u8::try_from(r.virtual_router_id)
            .ok()
            .filter(|&v| v != 0)
            .ok_or_else(|| {
                (
                    f("virtual_router_id"),
                    format!("{} is outside 1..=255", r.virtual_router_id),
                )
            })?;
        if let Some(o) = out.iter().find(|o| o.port == port && o.vrid == vrid) {
            return Err((
                f("virtual_router_id"),
                format!("{vrid} is instance {:?}'s on {}", o.name, r.interface),
            ));
        }
        let name = r.name.unwrap_or_else(|| format!("VI_{vrid}"));
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
            return Err((f("name"), "must be 1 to 64 printable characters".into()));
        }
        if out.iter().any(|o| o.name == name) {
            return Err((f("name"), format!("{name:?} names another instance")));
        }
        let priority = r.priority.unwrap_or(100);
        if !(1..=254).contains(&priority) {
            return Err((
                f("priority"),
                format!("{priority} is outside 1..=254 (255 is an address owner's)"),
            ));
        }
        let version = r.version.unwrap_or(2);
        if version != 2 && version != 3 {
            return Err((f("version"), format!("{version}: 2 or 3")));
        }
        let ms = r.advert_int_ms.unwrap_or(1000);
        let ok = if version == 2 {
            ms % 1000 == 0 && (1000..=255_000).contains(&ms)
        } else {
            ms % 10 == 0 && (10..=40_950).contains(&ms)
        };
        if !ok {
            return Err((
                f("advert_int_ms"),
                if version == 2 {
                    format!("{ms}: version 2 carries whole seconds, 1000..=255000")
                } else {
                    format!("{ms}: version 3 carries centiseconds, 10..=40950")
                },
            ));
        }
        if r.virtual_addresses.is_empty() || r.virtual_addresses.len() > MAX_ADDRESSES {
            return Err((
                f("virtual_addresses"),
                format!("1 to {MAX_ADDRESSES} addresses"),
            ));
        }
        let mut addresses = Vec::new();
        for (j, a) in r.virtual_addresses.iter().enumerate() {
            let k = format!("vrrp[{i}].virtual_addresses[{j}]");
            // keepalived writes "10.0.0.100/32"; the prefix is the kernel's business.
            let ip: Ipv4Addr = a
                .split_once('/')
                .map_or(a.as_str(), |(ip, _)| ip)
                .parse()
                .map_err(|_| (k.clone(), format!("{a:?} is not an IPv4 address")))?;
            if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || ip.is_loopback() {
                return Err((k, format!("{ip} is not a unicast address")));
            }
            if let Some(o) = interfaces
                .iter()
                .find(|o| o.addresses.iter().any(|p| p.addr == ip))
            {
                return Err((
                    k,
                    format!(
                        "{ip} is an address of interface {:?}: a virtual address is the \
                         director's only while MASTER, so it must not be listed there",
                        o.name
                    ),
                ));
            }
            if addresses.contains(&ip) || out.iter().any(|o| o.addresses.contains(&ip)) {
                return Err((k, format!("{ip} is listed twice")));
            }
            addresses.push(ip);
        }
        Ok(VrrpConfig {
            name,
            port,
            vrid,
            priority: priority as u8,
            advert_int_cs: (ms / 10) as u16,
            version,
            preempt: r.preempt.unwrap_or(true),
            addresses,
            source,
            notify_master: command(r.notify_master, || f("notify_master"))?,
            notify_backup: command(r.notify_backup, || f("notify_backup"))?,
            notify_stop: command(r.notify_stop, || f("notify_stop"))?,
            notify: command(r.notify, || f("notify"))?,
        })
    }
}

/// Validates `[sync]` against the interfaces and the instances.
pub fn parse_sync(
    raw: RawSync,
    interfaces: &[Interface],
    vrrp: &[VrrpConfig],
) -> Result<SyncConfig, Invalid> {
    let (port, source) =
        interface(&raw.interface, interfaces).map_err(|e| ("sync.interface".into(), e))?;
    let syncid = raw.syncid.unwrap_or(0);
    let syncid = u8::try_from(syncid).map_err(|_| {
        (
            "sync.syncid".to_string(),
            format!("{syncid} is outside 0..=255"),
        )
    })?;
    let version = raw.version.unwrap_or(1);
    if version > 1 {
        return Err(("sync.version".into(), format!("{version}: 0 or 1")));
    }
    let instance = match raw.vrrp {
        Some(name) => Some(vrrp.iter().position(|v| v.name == name).ok_or_else(|| {
            (
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
        return Err((
            "sync.threshold".into(),
            format!("threshold {threshold} must be below period {period} (at most 65535)"),
        ));
    }
    let small = |v: Option<u32>, key: &str, range: std::ops::RangeInclusive<u32>| {
        v.map(|n| {
            if range.contains(&n) {
                Ok(n)
            } else {
                Err((format!("sync.{key}"), format!("{n} is outside {range:?}")))
            }
        })
        .transpose()
    };
    let group = match &raw.group {
        None => None,
        Some(g) => match g.parse::<Ipv4Addr>() {
            Ok(a) if a.is_multicast() => Some(a),
            _ => {
                return Err((
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

/// The index and first address of the interface named `name`.
fn interface(name: &str, interfaces: &[Interface]) -> Result<(usize, Ipv4Addr), String> {
    let port = interfaces
        .iter()
        .position(|i| i.name == name)
        .ok_or_else(|| format!("no [[interface]] is named {name:?}"))?;
    let source = interfaces[port]
        .addresses
        .first()
        .map(|p| p.addr)
        .ok_or_else(|| format!("interface {name:?} has no address to send from"))?;
    Ok((port, source))
}

fn command(c: Option<String>, key: impl Fn() -> String) -> Result<Option<String>, Invalid> {
    match c {
        Some(c) if c.trim().is_empty() => Err((key(), "is empty".into())),
        c => Ok(c),
    }
}
