//! `[[mark]]`: the director's own packet marking, for fwmark services.
//!
//! ```toml
//! [[mark]]
//! mark = 1                      # 1..=2^32-1, as ipvsadm's -f
//! destination = "10.0.0.100/32" # destination prefix
//! protocol = "tcp"              # tcp or udp; absent: both
//! ports = [80, 443]             # destination ports; absent or empty: every port
//! ```

use std::net::Ipv4Addr;

use serde::Deserialize;

use super::prefix::Prefix;
use super::Invalid;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMark {
    pub(super) mark: u64,
    pub(super) destination: String,
    pub(super) protocol: Option<String>,
    #[serde(default)]
    pub(super) ports: Vec<u16>,
}

/// An L4 protocol a mark rule or service applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4Proto {
    Tcp,
    Udp,
}

impl L4Proto {
    /// As the configuration spells it.
    pub const fn name(self) -> &'static str {
        match self {
            L4Proto::Tcp => "tcp",
            L4Proto::Udp => "udp",
        }
    }

    /// The IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            L4Proto::Tcp => 6,
            L4Proto::Udp => 17,
        }
    }
}

/// `[[mark]]`: packets to `destination` (and `protocol`, `ports`, when
/// given) carry `mark`, which fwmark services match (IPVS's `-f`; there is
/// no iptables in front of a DPDK port to set it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkRule {
    pub mark: u32,
    pub destination: Prefix,
    /// `None`: TCP and UDP.
    pub protocol: Option<L4Proto>,
    /// Empty: every port.
    pub ports: Vec<u16>,
}

impl MarkRule {
    /// Whether a packet of `proto` to `daddr:dport` matches.
    pub fn matches(&self, proto: u8, daddr: Ipv4Addr, dport: u16) -> bool {
        self.destination.contains(daddr)
            && self
                .protocol
                .map_or(proto == 6 || proto == 17, |p| p.number() == proto)
            && (self.ports.is_empty() || self.ports.contains(&dport))
    }
}

/// Reads the `[[mark]]` tables, in file order.
pub(super) fn parse(raw: Vec<RawMark>) -> Result<Vec<MarkRule>, Invalid> {
    let mut marks: Vec<MarkRule> = Vec::new();
    for (i, rm) in raw.into_iter().enumerate() {
        let f = |k: &str| format!("mark[{i}].{k}");
        let mark = u32::try_from(rm.mark)
            .ok()
            .filter(|&m| m != 0)
            .ok_or_else(|| Invalid(f("mark"), format!("{} is outside 1..=4294967295", rm.mark)))?;
        let destination: Prefix = rm
            .destination
            .parse()
            .map_err(|e| Invalid(f("destination"), e))?;
        if destination.network() != destination.addr {
            return Err(Invalid(
                f("destination"),
                format!(
                    "{destination} has host bits set (did you mean {}/{}?)",
                    destination.network(),
                    destination.len
                ),
            ));
        }
        let protocol = match rm.protocol.as_deref() {
            None => None,
            Some("tcp") => Some(L4Proto::Tcp),
            Some("udp") => Some(L4Proto::Udp),
            Some(p) => {
                return Err(Invalid(
                    f("protocol"),
                    format!("{p:?} is not \"tcp\" or \"udp\""),
                ))
            }
        };
        if rm.ports.contains(&0) {
            return Err(Invalid(
                f("ports"),
                "port 0 is not a port (leave `ports` out to match every port)".into(),
            ));
        }
        marks.push(MarkRule {
            mark,
            destination,
            protocol,
            ports: rm.ports,
        });
    }

    Ok(marks)
}
