//! How the configuration and the rules name a virtual service: its
//! protocol and address and port, or its firewall mark.

use std::fmt;
use std::net::Ipv4Addr;

/// The transport protocol of a TCP/UDP virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// ipvsadm's option letter for a service of this protocol.
    pub fn flag(self) -> &'static str {
        match self {
            Protocol::Tcp => "-t",
            Protocol::Udp => "-u",
        }
    }

    /// The name services(5) uses.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    /// `-t|-u ADDR:PORT`; port 0 matches every port (persistent services only).
    Addr {
        protocol: Protocol,
        addr: Ipv4Addr,
        port: u16,
    },
    /// `-f MARK`: packets carrying this firewall mark (1 or more), any protocol.
    Fwmark(u32),
}

impl ServiceKey {
    /// The protocol port names of this service are looked up for: a fwmark
    /// service has none of its own, and ipvsadm uses TCP for it.
    pub fn names_protocol(&self) -> Protocol {
        match self {
            ServiceKey::Addr { protocol, .. } => *protocol,
            ServiceKey::Fwmark(_) => Protocol::Tcp,
        }
    }

    /// ipvsadm's listing order: TCP/UDP services (fwmark 0) before fwmark
    /// services, then by protocol (TCP is 6, UDP 17), address and port.
    pub fn ipvsadm_order(&self) -> (u32, Protocol, Ipv4Addr, u16) {
        match *self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => (0, protocol, addr, port),
            ServiceKey::Fwmark(m) => (m, Protocol::Tcp, Ipv4Addr::UNSPECIFIED, 0),
        }
    }
}

/// As ipvsadm writes it in rules: `-t 10.0.0.100:80`, `-f 1`.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => write!(f, "{} {addr}:{port}", protocol.flag()),
            // ipvsadm prints the mark with %d (negative above 2^31, which its
            // own parser then refuses); dlvs prints it unsigned.
            ServiceKey::Fwmark(m) => write!(f, "-f {m}"),
        }
    }
}
