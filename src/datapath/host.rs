//! The director's own identity on the wire: per port its MAC, addresses
//! and MTU; which addresses are local; where replies go.
//!
//! A `Host` is a read-only snapshot built by the control plane from the
//! configuration and the ports' MACs; workers hold it in an `Arc` and
//! pick up a new one between bursts. One part of it moves: which VRRP
//! instances are MASTER ([`MasterBits`], written by the worker that runs
//! them), which decides whether the instances' virtual addresses are the
//! director's.

use std::net::Ipv4Addr;
use std::sync::Arc;

use hashbrown::HashMap;

use super::sync::{Daemon, Role, Roles, SyncDaemons};
use super::vrrp::MasterBits;
use crate::config::VrrpConfig;
use crate::conn::sync::SyncThreshold;

use super::drop_reason::DropReason;
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
    /// The `[[vrrp]]` instances, by index.
    pub vrrp: Vec<VrrpConfig>,
    /// Every instance's virtual addresses: (address, port, instance).
    virtuals: Vec<(Ipv4Addr, usize, usize)>,
    /// The connected subnets' directed broadcasts (a few: a scan is
    /// cheaper than the hash lookup on the fast path).
    directed: Box<[Ipv4Addr]>,
    /// Which instances are MASTER.
    pub master: Arc<MasterBits>,
    /// All instances' bits: every one MASTER.
    all_master: u64,
    /// The sync daemons (`[sync]`, then dlvsadm's commands).
    pub daemons: Arc<SyncDaemons>,
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
        let mut directed: Vec<Ipv4Addr> = Vec::new();
        for p in &ports {
            for b in p.addresses.iter().filter_map(|a| a.broadcast()) {
                addrs.insert(b, AddrKind::Broadcast);
                directed.push(b);
            }
        }
        // Own addresses last: an address is never both (validated config
        // keeps them apart), but if it were, "mine" wins.
        for (port, p) in ports.iter().enumerate() {
            for a in &p.addresses {
                addrs.insert(a.addr, AddrKind::Local(port));
            }
        }
        let virtuals = cfg
            .vrrp
            .iter()
            .enumerate()
            .flat_map(|(i, v)| v.addresses.iter().map(move |&a| (a, v.port, i)))
            .collect();
        Host {
            ports,
            addrs,
            routes: RouteTable::new(&cfg.routes),
            static_neighbors: cfg.neighbors.clone(),
            arp: cfg.arp,
            vrrp: cfg.vrrp.clone(),
            virtuals,
            directed: directed.into_boxed_slice(),
            master: Arc::default(),
            all_master: (0..cfg.vrrp.len()).fold(0, |m, i| m | 1 << i),
            daemons: Arc::new(SyncDaemons::new(roles(cfg))),
        }
    }

    /// Whether `ip` is a virtual address whose instance is not MASTER: its
    /// traffic is not the director's to answer or forward. One load when
    /// every instance is MASTER (or there is none).
    #[inline]
    pub fn standby(&self, ip: Ipv4Addr) -> bool {
        if self.virtuals.is_empty() {
            return false;
        }
        let bits = self.master.get();
        bits != self.all_master && self.standby_slow(ip, bits)
    }

    #[cold]
    fn standby_slow(&self, ip: Ipv4Addr, bits: u64) -> bool {
        self.virtuals
            .iter()
            .any(|&(a, _, i)| a == ip && bits & (1 << i) == 0)
    }

    /// The port of a virtual address whose instance is MASTER.
    #[inline]
    pub fn virtual_port(&self, ip: Ipv4Addr) -> Option<usize> {
        if self.virtuals.is_empty() {
            return None;
        }
        let bits = self.master.get();
        self.virtuals
            .iter()
            .find(|&&(a, _, i)| a == ip && bits & (1 << i) != 0)
            .map(|&(_, p, _)| p)
    }

    /// A copy with VRRP states and sync daemons of its own (a clone shares
    /// them: they are the running director's, not configuration).
    #[cfg(any(test, feature = "testing"))]
    pub fn with_own_ha(&self) -> Host {
        Host {
            master: Arc::default(),
            daemons: Arc::new(SyncDaemons::new(self.daemons.roles())),
            ..self.clone()
        }
    }

    /// The port of a VRRP instance's virtual address, whatever its state.
    pub fn virtual_of(&self, ip: Ipv4Addr) -> Option<usize> {
        self.virtuals
            .iter()
            .find(|&&(a, _, _)| a == ip)
            .map(|&(_, p, _)| p)
    }

    /// Whether `port` has a VRRP instance (its adverts are multicast).
    #[inline]
    pub fn has_vrrp(&self, port: usize) -> bool {
        self.vrrp.iter().any(|v| v.port == port)
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

    /// True for a connected subnet's directed broadcast that is no own
    /// address (own addresses win, as in [`Host::local_port`]).
    #[inline]
    pub fn is_directed_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.directed.contains(&ip) && self.local_port(ip).is_none()
    }

    /// A source address no real peer may use.
    #[inline]
    pub fn is_martian_source(&self, ip: Ipv4Addr) -> bool {
        ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || self.addrs.contains_key(&ip)
    }

    /// Why an IPv4 datagram that layer 4 left alone is not the host's:
    /// not addressed to the director, or from a martian source; else
    /// `HostUnhandled`, its fate unless the host has a duty for it (ICMP
    /// echo to the director).
    #[inline]
    pub fn unswitched(&self, src: Ipv4Addr, dst: Ipv4Addr) -> DropReason {
        if self.local_port(dst).is_none() && self.virtual_port(dst).is_none() {
            if self.is_broadcast(dst) {
                DropReason::Ipv4Broadcast
            } else {
                DropReason::Ipv4NotLocal
            }
        } else if self.is_martian_source(src) {
            DropReason::Ipv4MartianSource
        } else {
            DropReason::HostUnhandled
        }
    }

    /// Every own address with its port, for gratuitous ARP.
    pub fn addresses(&self) -> impl Iterator<Item = (usize, Ipv4Addr)> + '_ {
        self.ports
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.addresses.iter().map(move |a| (i, a.addr)))
    }
}

/// The sync daemons `[sync]` starts: both following its VRRP instance
/// (both always without one); none without `[sync]`.
fn roles(cfg: &Config) -> Roles {
    match &cfg.sync {
        Some(s) => {
            let itf = &cfg.interfaces[s.port];
            let d = |master| {
                Daemon::new(
                    master, s.port, &itf.name, itf.mtu, s.syncid, s.maxlen, s.group, s.port_udp,
                    s.ttl,
                )
            };
            Roles {
                master: Role::Auto(d(true)),
                backup: Role::Auto(d(false)),
                version: s.version,
                vrrp: s.vrrp,
                rules: SyncThreshold {
                    threshold: s.threshold as u16,
                    period: s.period as u16,
                },
            }
        }
        None => Roles {
            master: Role::Stopped,
            backup: Role::Stopped,
            version: 1,
            vrrp: None,
            rules: SyncThreshold {
                threshold: 3,
                period: 50,
            },
        },
    }
}
