//! The route table: longest-prefix match over configured routes and
//! connected subnets.
//!
//! Routes are few on a director (a default route, a handful of subnets), so
//! the table is a list sorted by prefix length, longest first; the first
//! match wins. Built once per configuration snapshot, read-only after.

use std::net::Ipv4Addr;

use crate::config::Route;

/// Where a packet to some destination goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub port: usize,
    /// The neighbour to resolve: the gateway, or the destination itself.
    pub ip: Ipv4Addr,
}

#[derive(Debug, Clone)]
pub struct RouteTable {
    // (network, mask, port, via), longest mask first.
    routes: Vec<(u32, u32, usize, Option<Ipv4Addr>)>,
}

impl RouteTable {
    pub fn new(routes: &[Route]) -> RouteTable {
        let mut v: Vec<_> = routes
            .iter()
            .map(|r| {
                (
                    u32::from(r.prefix.addr) & r.prefix.mask(),
                    r.prefix.mask(),
                    r.port,
                    r.via,
                )
            })
            .collect();
        // Stable: among equal lengths, configured routes (listed first) win
        // over connected ones.
        v.sort_by_key(|&(_, mask, _, _)| std::cmp::Reverse(mask.count_ones()));
        RouteTable { routes: v }
    }

    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<NextHop> {
        let d = u32::from(dst);
        self.routes
            .iter()
            .find(|&&(net, mask, _, _)| d & mask == net)
            .map(|&(_, _, port, via)| NextHop {
                port,
                ip: via.unwrap_or(dst),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Prefix;

    fn r(p: &str, port: usize, via: Option<&str>) -> Route {
        Route {
            prefix: p.parse::<Prefix>().unwrap(),
            port,
            via: via.map(|v| v.parse().unwrap()),
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let t = RouteTable::new(&[
            r("0.0.0.0/0", 1, Some("192.0.2.1")),
            r("10.0.0.0/8", 0, Some("10.0.0.1")),
            r("10.0.0.0/24", 0, None),
        ]);
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            t.lookup(ip("10.0.0.7")),
            Some(NextHop {
                port: 0,
                ip: ip("10.0.0.7")
            })
        );
        assert_eq!(
            t.lookup(ip("10.9.0.7")),
            Some(NextHop {
                port: 0,
                ip: ip("10.0.0.1")
            })
        );
        assert_eq!(
            t.lookup(ip("8.8.8.8")),
            Some(NextHop {
                port: 1,
                ip: ip("192.0.2.1")
            })
        );
        let empty = RouteTable::new(&[r("10.0.0.0/24", 0, None)]);
        assert_eq!(empty.lookup(ip("11.0.0.1")), None);
    }
}
