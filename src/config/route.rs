//! `[[route]]`: static routes, and the connected subnets every interface
//! address shorter than /32 adds.
//!
//! ```toml
//! [[route]]
//! prefix = "0.0.0.0/0"
//! via = "10.0.0.1"              # must lie in a connected subnet
//! interface = "lan0"            # optional; default: the interface of that subnet
//! ```

use std::net::Ipv4Addr;

use serde::Deserialize;

use super::interface::{index, Interface};
use super::prefix::Prefix;
use super::Invalid;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) prefix: String,
    pub(super) via: Option<String>,
    pub(super) interface: Option<String>,
}

/// A route: packets to `prefix` leave through `port`, to `via` if given,
/// else directly to their destination (a connected subnet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub prefix: Prefix,
    pub port: usize,
    pub via: Option<Ipv4Addr>,
}

/// Reads the `[[route]]` tables against the interfaces; the connected
/// subnets follow the configured routes.
pub(super) fn parse(raw: Vec<RawRoute>, interfaces: &[Interface]) -> Result<Vec<Route>, Invalid> {
    let port_of = |name: &str| index(interfaces, name);
    // Connected subnets: every address shorter than /32 reaches its subnet
    // directly through its interface.
    let connected: Vec<Route> = interfaces
        .iter()
        .enumerate()
        .flat_map(|(port, itf)| {
            itf.addresses
                .iter()
                .filter(|p| p.len < 32)
                .map(move |p| Route {
                    prefix: Prefix {
                        addr: p.network(),
                        len: p.len,
                    },
                    port,
                    via: None,
                })
        })
        .collect();

    let mut routes = Vec::new();
    for (i, rr) in raw.into_iter().enumerate() {
        let f = |k: &str| format!("route[{i}].{k}");
        let prefix: Prefix = rr.prefix.parse().map_err(|e| Invalid(f("prefix"), e))?;
        if prefix.network() != prefix.addr {
            return Err(Invalid(
                f("prefix"),
                format!(
                    "{prefix} has host bits set (did you mean {}/{}?)",
                    prefix.network(),
                    prefix.len
                ),
            ));
        }
        let via = match &rr.via {
            None => None,
            Some(v) => Some(
                v.parse::<Ipv4Addr>()
                    .map_err(|_| Invalid(f("via"), format!("{v:?} is not an IPv4 address")))?,
            ),
        };
        let port = match (&rr.interface, via) {
            (Some(name), _) => port_of(name).ok_or_else(|| {
                Invalid(
                    f("interface"),
                    format!("no [[interface]] is named {name:?}"),
                )
            })?,
            (None, Some(gw)) => connected
                .iter()
                .filter(|c| c.prefix.contains(gw))
                .max_by_key(|c| c.prefix.len)
                .map(|c| c.port)
                .ok_or_else(|| {
                    Invalid(
                        f("via"),
                        format!("{gw} is not in a connected subnet of any interface"),
                    )
                })?,
            (None, None) => {
                return Err(Invalid(
                    f("via"),
                    "a route needs `via`, `interface`, or both".into(),
                ))
            }
        };
        if let Some(gw) = via {
            if interfaces
                .iter()
                .flat_map(|i| i.addresses.iter())
                .any(|a| a.addr == gw)
            {
                return Err(Invalid(
                    f("via"),
                    format!("{gw} is the director's own address"),
                ));
            }
        }
        if routes
            .iter()
            .any(|r: &Route| r.prefix.addr == prefix.addr && r.prefix.len == prefix.len)
        {
            return Err(Invalid(f("prefix"), format!("{prefix} is routed twice")));
        }
        routes.push(Route { prefix, port, via });
    }
    routes.extend(connected);

    Ok(routes)
}
