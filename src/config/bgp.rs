//! `[bgp]`: the director announces its virtual addresses through a BGP
//! speaker (BIRD 2) it starts on the kernel side of an exception path.
//!
//! ```toml
//! [bgp]
//! interface = "wan0"              # a data port with an exception path (kernel = "..."):
//!                                 # the speaker runs there, from its first address
//! local_as = 65001
//! router_id = "10.1.0.2"
//! peers = [{ address = "10.1.0.1", remote_as = 65000, bfd = true }]
//!                                 # directly connected eBGP, on the interface's subnets;
//!                                 # bfd (default true): single-hop BFD, 3 x 100 ms
//! drain_s = 5                     # on SIGTERM: withdraw at once, forward this long, exit
//!                                 # (default 5, at most 600)
//! ```

use std::net::Ipv4Addr;

use serde::Deserialize;

use super::interface::Interface;
use super::Invalid;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBgp {
    interface: String,
    local_as: u64,
    router_id: String,
    peers: Vec<RawPeer>,
    drain_s: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeer {
    address: String,
    remote_as: u64,
    bfd: Option<bool>,
}

/// A validated `[bgp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpConfig {
    /// The data port's index and its kernel interface (the exception path).
    pub port: usize,
    pub kernel: String,
    /// The interface's first address: the session's local address and
    /// the announced routes' next hop.
    pub local: Ipv4Addr,
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub peers: Vec<Peer>,
    pub drain_s: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub address: Ipv4Addr,
    pub remote_as: u32,
    pub bfd: bool,
}

fn asn(n: u64, key: &str) -> Result<u32, Invalid> {
    u32::try_from(n).ok().filter(|&a| a != 0).ok_or_else(|| {
        Invalid(
            key.to_string(),
            format!("{n} is not an AS number (1..=4294967295)"),
        )
    })
}

/// Validates `[bgp]` against the interfaces.
pub fn parse(raw: RawBgp, interfaces: &[Interface]) -> Result<BgpConfig, Invalid> {
    let port = interfaces
        .iter()
        .position(|i| i.name == raw.interface)
        .ok_or_else(|| {
            Invalid(
                "bgp.interface".to_string(),
                format!("no [[interface]] is named {:?}", raw.interface),
            )
        })?;
    let itf = &interfaces[port];
    let kernel = itf.kernel.clone().ok_or_else(|| {
        Invalid(
            "bgp.interface".to_string(),
            format!(
                "interface {:?} has no exception path (kernel = \"...\"): the BGP speaker runs \
                 on the kernel's side of it",
                itf.name
            ),
        )
    })?;
    let local = itf
        .addresses
        .iter()
        .find(|p| p.len < 32)
        .map(|p| p.addr)
        .ok_or_else(|| {
            Invalid(
                "bgp.interface".to_string(),
                format!(
                    "interface {:?} has no subnet address to peer from",
                    itf.name
                ),
            )
        })?;
    let local_as = asn(raw.local_as, "bgp.local_as")?;
    let router_id: Ipv4Addr = raw.router_id.parse().map_err(|_| {
        Invalid(
            "bgp.router_id".to_string(),
            format!("{:?} is not an IPv4 address", raw.router_id),
        )
    })?;
    if raw.peers.is_empty() {
        return Err(Invalid("bgp.peers".into(), "at least one peer".into()));
    }
    let mut peers: Vec<Peer> = Vec::new();
    for (i, p) in raw.peers.into_iter().enumerate() {
        let k = |f: &str| format!("bgp.peers[{i}].{f}");
        let address: Ipv4Addr = p.address.parse().map_err(|_| {
            Invalid(
                k("address"),
                format!("{:?} is not an IPv4 address", p.address),
            )
        })?;
        if !itf
            .addresses
            .iter()
            .any(|a| a.len < 32 && a.contains(address))
        {
            return Err(Invalid(
                k("address"),
                format!(
                    "{address} is not on a subnet of interface {:?} (directly connected eBGP)",
                    itf.name
                ),
            ));
        }
        if peers.iter().any(|o| o.address == address) {
            return Err(Invalid(k("address"), format!("{address} is listed twice")));
        }
        peers.push(Peer {
            address,
            remote_as: asn(p.remote_as, &k("remote_as"))?,
            bfd: p.bfd.unwrap_or(true),
        });
    }
    let drain_s = raw.drain_s.unwrap_or(5.0);
    if !(0.0..=600.0).contains(&drain_s) {
        return Err(Invalid(
            "bgp.drain_s".into(),
            format!("{drain_s} is outside 0..=600"),
        ));
    }
    Ok(BgpConfig {
        port,
        kernel,
        local,
        local_as,
        router_id,
        peers,
        drain_s,
    })
}
