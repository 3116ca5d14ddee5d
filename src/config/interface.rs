//! `[[interface]]`: the director's ports, their addresses and their
//! exception paths.
//!
//! ```toml
//! [[interface]]
//! name = "lan0"
//! device = "net_tap0,iface=dlvs0"          # PCI address or vdev spec
//! mac = "02:00:00:00:00:01"                # optional; default: the device's own
//! addresses = ["10.0.0.2/24", "10.0.0.100/32"]   # own addresses, VIPs too
//! mtu = 1500                               # optional (default 1500)
//! kernel = "lan0"                          # optional: the exception path, a kernel interface
//!                                          # (net_tap) with this port's MAC and addresses; what
//!                                          # the data plane does not handle for the director's
//!                                          # addresses goes to it, what the kernel sends there
//!                                          # leaves by this port (absent: none; not in replay)
//! ```

use serde::Deserialize;

use super::prefix::Prefix;
use super::Invalid;
use crate::wire::MacAddr;

/// Default MTU of an interface.
pub const DEFAULT_MTU: u16 = 1500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInterface {
    pub(super) name: String,
    pub(super) device: String,
    pub(super) mac: Option<String>,
    #[serde(default)]
    pub(super) addresses: Vec<String>,
    pub(super) mtu: Option<u16>,
    pub(super) kernel: Option<String>,
}

/// One director interface (a DPDK port).
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    pub name: String,
    pub device: String,
    pub mac: Option<MacAddr>,
    /// Own addresses with their prefix lengths; VIPs are /32 entries.
    pub addresses: Vec<Prefix>,
    pub mtu: u16,
    /// The kernel interface of the exception path (a net_tap with the
    /// port's MAC and addresses), if any.
    pub kernel: Option<String>,
}

/// Reads the `[[interface]]` tables.
pub(super) fn parse(raw: Vec<RawInterface>) -> Result<Vec<Interface>, Invalid> {
    let mut interfaces: Vec<Interface> = Vec::new();
    for (i, ri) in raw.into_iter().enumerate() {
        let f = |k: &str| format!("interface[{i}].{k}");
        if ri.name.is_empty() || ri.name.len() > 32 {
            return Err(Invalid(f("name"), "must be 1 to 32 characters".into()));
        }
        if interfaces.iter().any(|o| o.name == ri.name) {
            return Err(Invalid(
                f("name"),
                format!("{:?} is used by another interface", ri.name),
            ));
        }
        if ri.device.trim().is_empty() {
            return Err(Invalid(f("device"), "is empty".into()));
        }
        if interfaces
            .iter()
            .any(|o| dev_name(&o.device) == dev_name(&ri.device))
        {
            return Err(Invalid(
                f("device"),
                format!(
                    "device {:?} is used by another interface",
                    dev_name(&ri.device)
                ),
            ));
        }
        let mac = match &ri.mac {
            None => None,
            Some(m) => {
                let mac: MacAddr = m
                    .parse()
                    .map_err(|_| Invalid(f("mac"), format!("{m:?} is not a MAC address")))?;
                if !mac.is_unicast() || mac == MacAddr::ZERO {
                    return Err(Invalid(f("mac"), format!("{m} is not a unicast MAC")));
                }
                Some(mac)
            }
        };
        let mut addresses = Vec::new();
        for (j, a) in ri.addresses.iter().enumerate() {
            let p: Prefix = a
                .parse()
                .map_err(|e| Invalid(format!("interface[{i}].addresses[{j}]"), e))?;
            let ip = p.addr;
            if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
                return Err(Invalid(
                    format!("interface[{i}].addresses[{j}]"),
                    format!("{ip} cannot be an interface address"),
                ));
            }
            let dup = interfaces
                .iter()
                .flat_map(|o| o.addresses.iter())
                .chain(addresses.iter())
                .any(|o: &Prefix| o.addr == ip);
            if dup {
                return Err(Invalid(
                    format!("interface[{i}].addresses[{j}]"),
                    format!("{ip} is configured twice"),
                ));
            }
            addresses.push(p);
        }
        let mtu = ri.mtu.unwrap_or(DEFAULT_MTU);
        if !(576..=9000).contains(&mtu) {
            return Err(Invalid(f("mtu"), format!("{mtu} is outside 576..=9000")));
        }
        let kernel = match ri.kernel {
            None => None,
            Some(k) => {
                // A Linux interface name: IFNAMSIZ less the NUL, and what
                // `ip` takes without quoting.
                let good = (1..=15).contains(&k.len())
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                if !good {
                    return Err(Invalid(
                        f("kernel"),
                        format!("{k:?} is not an interface name (1 to 15 of A-Z a-z 0-9 - _ .)"),
                    ));
                }
                if interfaces.iter().any(|o| o.kernel.as_deref() == Some(&k)) {
                    return Err(Invalid(
                        f("kernel"),
                        format!("{k:?} is the kernel interface of another interface"),
                    ));
                }
                Some(k)
            }
        };
        interfaces.push(Interface {
            name: ri.name,
            device: ri.device,
            mac,
            addresses,
            mtu,
            kernel,
        });
    }

    Ok(interfaces)
}

/// The index of the interface named `name`.
pub(super) fn index(interfaces: &[Interface], name: &str) -> Option<usize> {
    interfaces.iter().position(|i| i.name == name)
}

/// The DPDK device name of a device spec: the part before the first comma
/// (`net_tap0` of `net_tap0,iface=dlvs0`).
pub fn dev_name(spec: &str) -> &str {
    spec.split(',').next().unwrap_or(spec).trim()
}
