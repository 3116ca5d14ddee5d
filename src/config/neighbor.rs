//! `[[neighbor]]`: static ARP entries, never aged or replaced.
//!
//! ```toml
//! [[neighbor]]
//! interface = "lan0"
//! ip = "10.0.0.11"
//! mac = "02:00:00:00:01:11"
//! ```

use std::net::Ipv4Addr;

use serde::Deserialize;

use super::interface::{index, Interface};
use super::Invalid;
use crate::wire::MacAddr;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNeighbor {
    pub(super) interface: String,
    pub(super) ip: String,
    pub(super) mac: String,
}

/// A static neighbour.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbor {
    /// Index into `Config::interfaces`.
    pub port: usize,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
}

/// Reads the `[[neighbor]]` tables against the interfaces.
pub(super) fn parse(
    raw: Vec<RawNeighbor>,
    interfaces: &[Interface],
) -> Result<Vec<Neighbor>, Invalid> {
    let port_of = |name: &str| index(interfaces, name);
    let mut neighbors: Vec<Neighbor> = Vec::new();
    for (i, rn) in raw.into_iter().enumerate() {
        let f = |k: &str| format!("neighbor[{i}].{k}");
        let port = port_of(&rn.interface).ok_or_else(|| {
            Invalid(
                f("interface"),
                format!("no [[interface]] is named {:?}", rn.interface),
            )
        })?;
        let ip: Ipv4Addr = rn
            .ip
            .parse()
            .map_err(|_| Invalid(f("ip"), format!("{:?} is not an IPv4 address", rn.ip)))?;
        let mac: MacAddr = rn
            .mac
            .parse()
            .map_err(|_| Invalid(f("mac"), format!("{:?} is not a MAC address", rn.mac)))?;
        if !mac.is_unicast() || mac == MacAddr::ZERO {
            return Err(Invalid(f("mac"), format!("{mac} is not a unicast MAC")));
        }
        if neighbors.iter().any(|n| n.port == port && n.ip == ip) {
            return Err(Invalid(
                f("ip"),
                format!("{ip} on {} is listed twice", rn.interface),
            ));
        }
        neighbors.push(Neighbor { port, ip, mac });
    }

    Ok(neighbors)
}
