//! `[[vrrp]]`: VRRP instances (RFC 3768, RFC 5798) in dlvs's TOML,
//! interoperable with keepalived.
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
//! ```

use std::net::Ipv4Addr;

use serde::Deserialize;

use super::interface::Interface;
use super::Invalid;

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

/// Validates the `[[vrrp]]` tables against the interfaces.
pub fn parse_vrrp(raw: Vec<RawVrrp>, interfaces: &[Interface]) -> Result<Vec<VrrpConfig>, Invalid> {
    if raw.len() > MAX_INSTANCES {
        return Err(Invalid(
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
        return Err(Invalid(
            format!("vrrp[{i}]"),
            format!("at most {MAX_INSTANCES} [[vrrp]] instances"),
        ));
    }
    let f = |k: &str| format!("vrrp[{i}].{k}");
    let (port, source) =
        interface(&r.interface, interfaces).map_err(|e| Invalid(f("interface"), e))?;
    let vrid = u8::try_from(r.virtual_router_id)
        .ok()
        .filter(|&v| v != 0)
        .ok_or_else(|| {
            Invalid(
                f("virtual_router_id"),
                format!("{} is outside 1..=255", r.virtual_router_id),
            )
        })?;
    if let Some(o) = earlier.iter().find(|o| o.port == port && o.vrid == vrid) {
        return Err(Invalid(
            f("virtual_router_id"),
            format!("{vrid} is instance {:?}'s on {}", o.name, r.interface),
        ));
    }
    let name = r.name.unwrap_or_else(|| format!("VI_{vrid}"));
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
        return Err(Invalid(
            f("name"),
            "must be 1 to 64 printable characters".into(),
        ));
    }
    if earlier.iter().any(|o| o.name == name) {
        return Err(Invalid(
            f("name"),
            format!("{name:?} names another instance"),
        ));
    }
    let priority = r.priority.unwrap_or(100);
    if !(1..=254).contains(&priority) {
        return Err(Invalid(
            f("priority"),
            format!("{priority} is outside 1..=254 (255 is an address owner's)"),
        ));
    }
    let version = r.version.unwrap_or(2);
    if version != 2 && version != 3 {
        return Err(Invalid(f("version"), format!("{version}: 2 or 3")));
    }
    let ms = r.advert_int_ms.unwrap_or(1000);
    let ok = if version == 2 {
        ms % 1000 == 0 && (1000..=255_000).contains(&ms)
    } else {
        ms % 10 == 0 && (10..=40_950).contains(&ms)
    };
    if !ok {
        return Err(Invalid(
            f("advert_int_ms"),
            if version == 2 {
                format!("{ms}: version 2 carries whole seconds, 1000..=255000")
            } else {
                format!("{ms}: version 3 carries centiseconds, 10..=40950")
            },
        ));
    }
    let addresses = virtual_addresses(i, &r.virtual_addresses, interfaces, earlier)?;
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

/// Instance `i`'s virtual addresses: unicast, none an interface's, none
/// listed twice (by it or an instance before it, `earlier`).
fn virtual_addresses(
    i: usize,
    raw: &[String],
    interfaces: &[Interface],
    earlier: &[VrrpConfig],
) -> Result<Vec<Ipv4Addr>, Invalid> {
    if raw.is_empty() || raw.len() > MAX_ADDRESSES {
        return Err(Invalid(
            format!("vrrp[{i}].virtual_addresses"),
            format!("1 to {MAX_ADDRESSES} addresses"),
        ));
    }
    let mut addresses = Vec::new();
    for (j, a) in raw.iter().enumerate() {
        let k = format!("vrrp[{i}].virtual_addresses[{j}]");
        // keepalived writes "10.0.0.100/32"; the prefix is the kernel's business.
        let ip: Ipv4Addr = a
            .split_once('/')
            .map_or(a.as_str(), |(ip, _)| ip)
            .parse()
            .map_err(|_| Invalid(k.clone(), format!("{a:?} is not an IPv4 address")))?;
        if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || ip.is_loopback() {
            return Err(Invalid(k, format!("{ip} is not a unicast address")));
        }
        if let Some(o) = interfaces
            .iter()
            .find(|o| o.addresses.iter().any(|p| p.addr == ip))
        {
            return Err(Invalid(
                k,
                format!(
                    "{ip} is an address of interface {:?}: a virtual address is the \
                     director's only while MASTER, so it must not be listed there",
                    o.name
                ),
            ));
        }
        if addresses.contains(&ip) || earlier.iter().any(|o| o.addresses.contains(&ip)) {
            return Err(Invalid(k, format!("{ip} is listed twice")));
        }
        addresses.push(ip);
    }
    Ok(addresses)
}

/// The index and first address of the interface named `name`.
pub(super) fn interface(name: &str, interfaces: &[Interface]) -> Result<(usize, Ipv4Addr), String> {
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
        Some(c) if c.trim().is_empty() => Err(Invalid(key(), "is empty".into())),
        c => Ok(c),
    }
}
