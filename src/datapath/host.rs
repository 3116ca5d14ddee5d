//! The director's own identity on the wire: per port its MAC, addresses
//! and MTU; which addresses are local; where replies go.
//!
//! A `Host` is a read-only snapshot built by the control plane from the
//! configuration and the ports' MACs; workers hold it in an `Arc` and
//! pick up a new one between bursts.

use std::net::Ipv4Addr;

use hashbrown::HashMap;

use super::route::RouteTable;
use crate::config::{ArpConfig, Config, Neighbor, Prefix};
use crate::wire::MacAddr;

/// One port as the data path sees it.
#[derive(Debug, Clone)]
pub struct PortHost {
    pub name: String,
    pub mac: MacAddr,
    pub addresses: Vec<Prefix>,
    pub mtu: u16,
    /// Has an exception path: what is the kernel's goes to it.
    pub kernel: bool,
}

impl PortHost {
    /// The source address for an ARP request to `target`: the address
    /// whose subnet holds it, else the first subnet address, else any.
    pub fn source_for(&self, target: Ipv4Addr) -> Ipv4Addr {
        self.addresses
            .iter()
            .find(|p| p.len < 32 && p.contains(target))
            .or_else(|| self.addresses.iter().find(|p| p.len < 32))
            .or(self.addresses.first())
            .map_or(Ipv4Addr::UNSPECIFIED, |p| p.addr)
    }
}

/// What an address is to the director (one hash lookup answers both
/// "is it mine" and "is it a broadcast").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddrKind {
    /// An own address, configured on this port.
    Local(usize),
    /// The limited broadcast or a connected subnet's directed broadcast.
    Broadcast,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub ports: Vec<PortHost>,
    addrs: HashMap<Ipv4Addr, AddrKind, foldhash::fast::RandomState>,
    pub routes: RouteTable,
    pub static_neighbors: Vec<Neighbor>,
    pub arp: ArpConfig,
}

impl Host {
    /// Builds the snapshot; `macs[i]` is the MAC port `i` uses.
    pub fn new(cfg: &Config, macs: &[MacAddr]) -> Host {
        assert_eq!(macs.len(), cfg.interfaces.len(), "one MAC per interface");
        let ports: Vec<PortHost> = cfg
            .interfaces
            .iter()
            .zip(macs)
            .map(|(i, &mac)| PortHost {
                name: i.name.clone(),
                mac,
                addresses: i.addresses.clone(),
                mtu: i.mtu,
                kernel: i.kernel.is_some(),
            })
            .collect();
        let mut addrs = HashMap::default();
        addrs.insert(Ipv4Addr::BROADCAST, AddrKind::Broadcast);
        for p in &ports {
            for b in p.addresses.iter().filter_map(|a| a.broadcast()) {
                addrs.insert(b, AddrKind::Broadcast);
            }
        }
        // Own addresses last: an address is never both (validated config
        // keeps them apart), but if it were, "mine" wins.
        for (port, p) in ports.iter().enumerate() {
            for a in &p.addresses {
                addrs.insert(a.addr, AddrKind::Local(port));
            }
        }
        Host {
            ports,
            addrs,
            routes: RouteTable::new(&cfg.routes),
            static_neighbors: cfg.neighbors.clone(),
            arp: cfg.arp,
        }
    }

    /// The port an own address is configured on.
    #[inline]
    pub fn local_port(&self, ip: Ipv4Addr) -> Option<usize> {
        match self.addrs.get(&ip) {
            Some(AddrKind::Local(p)) => Some(*p),
            _ => None,
        }
    }

    /// True for the limited broadcast, a connected subnet's directed
    /// broadcast, and multicast.
    #[inline]
    pub fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        ip.is_multicast() || self.addrs.get(&ip) == Some(&AddrKind::Broadcast)
    }

    /// A source address no real peer may use.
    #[inline]
    pub fn is_martian_source(&self, ip: Ipv4Addr) -> bool {
        ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || self.addrs.contains_key(&ip)
    }

    /// Every own address with its port, for gratuitous ARP.
    pub fn addresses(&self) -> impl Iterator<Item = (usize, Ipv4Addr)> + '_ {
        self.ports
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.addresses.iter().map(move |a| (i, a.addr)))
    }
}
