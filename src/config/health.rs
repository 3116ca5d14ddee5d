//! `[[health]]`: keepalived's checkers for a virtual service's real
//! servers, in dlvs's TOML.
//!
//! ```toml
//! [[health]]
//! service = "tcp/10.0.0.100:80"   # the virtual service, as metrics label it (or "fwmark/5")
//! check = "http_get"              # tcp_connect, http_get or misc
//! delay_loop_s = 6.0              # between two checks of a server (keepalived's delay_loop; default 60)
//! connect_timeout_s = 5.0         # default 5
//! retry = 1                       # failed checks repeated before the server is down (default 1)
//! delay_before_retry_s = 1.0      # default 1
//! port = 8080                     # optional: the port checked (default: the real server's)
//! url = "/"                       # http_get: the path (default "/")
//! status = 200                    # http_get: the status a healthy server answers (default 200)
//! digest = "..."                  # http_get: optional MD5 (hex) of the healthy body
//! virtualhost = "www.example.com" # http_get: optional Host header (default: the address)
//! command = "/usr/local/bin/chk"  # misc: a program and its arguments; exit 0 = up
//! inhibit_on_failure = false      # true: a failed server is quiesced (weight 0); false: removed
//! sorry_server = "10.0.0.99:80"   # optional: serves while no real server is up
//! quorum = 1                      # least total weight of live servers (default 1); below it the
//!                                 # service is down: its servers out, the sorry server in
//! servers = ["10.0.0.11:8080"]    # optional: only these real servers (default: all); a service
//!                                 # may have several tables for different servers; its
//!                                 # sorry_server and quorum are its first table's
//! ```
//!
//! Defaults are keepalived's. A misc command gets the real server's
//! address and port in `DLVS_RS_ADDR` and `DLVS_RS_PORT` (keepalived
//! substitutes nothing either; its scripts usually take them as arguments).

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Deserialize;

use super::interface::Interface;
use super::service::{Protocol, ServiceKey};
use super::Invalid;

/// Why health checks cannot run without an exception path: they are the
/// director's kernel's own connections, which reach the real servers only
/// through a data port's kernel interface. (Without one, every check
/// fails and every server is taken out, healthy or not.)
pub const NO_EXCEPTION_PATH: &str = "health checks connect from the director's own kernel, \
     which reaches the real servers only through an exception path: set `kernel = \"NAME\"` \
     on the [[interface]] they are reached by";

/// What a `[[health]]` table says, as read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub(crate) service: String,
    pub(crate) check: String,
    pub(crate) delay_loop_s: Option<f64>,
    pub(crate) connect_timeout_s: Option<f64>,
    pub(crate) retry: Option<u32>,
    pub(crate) delay_before_retry_s: Option<f64>,
    pub(crate) port: Option<u16>,
    pub(crate) url: Option<String>,
    pub(crate) status: Option<u16>,
    pub(crate) digest: Option<String>,
    pub(crate) virtualhost: Option<String>,
    pub(crate) command: Option<String>,
    pub(crate) inhibit_on_failure: Option<bool>,
    pub(crate) sorry_server: Option<String>,
    pub(crate) quorum: Option<u32>,
    pub(crate) servers: Option<Vec<String>>,
}

/// How a server is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A TCP connection that opens (keepalived's TCP_CHECK).
    TcpConnect,
    /// An HTTP/1.0 GET that answers `status` (and, if given, a body whose
    /// MD5 is `digest`) (HTTP_GET).
    HttpGet {
        url: String,
        status: u16,
        digest: Option<String>,
        virtualhost: Option<String>,
    },
    /// A program that exits 0 (MISC_CHECK).
    Misc { argv: Vec<String> },
}

/// The checks of one virtual service's real servers.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthRule {
    pub service: ServiceKey,
    /// The real servers it checks (address, port); `None`: all of the
    /// service's (keepalived's checkers are per real server).
    pub servers: Option<Vec<(Ipv4Addr, u16)>>,
    pub check: Check,
    pub delay_loop: Duration,
    pub connect_timeout: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
    /// The port checked; `None`: the real server's.
    pub port: Option<u16>,
    pub inhibit_on_failure: bool,
    pub sorry_server: Option<(Ipv4Addr, u16)>,
    pub quorum: u32,
}

/// Reads `health[i]`; an error names the key.
pub fn parse(i: usize, raw: RawHealth) -> Result<HealthRule, Invalid> {
    let key = |k: &str| format!("health[{i}].{k}");
    let seconds = |k: &str, v: Option<f64>, default: f64, min: f64| {
        let v = v.unwrap_or(default);
        if !(min..=86_400.0).contains(&v) {
            return Err(Invalid(
                key(k),
                format!("{v} is outside {min}..=86400 seconds"),
            ));
        }
        Ok(Duration::from_secs_f64(v))
    };
    let service = service_key(&raw.service).map_err(|e| Invalid(key("service"), e))?;
    let check = match raw.check.as_str() {
        "tcp_connect" => Check::TcpConnect,
        "http_get" => {
            let url = raw.url.clone().unwrap_or_else(|| "/".into());
            if !url.starts_with('/') || url.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(Invalid(
                    key("url"),
                    format!("{url:?} is not a path such as /health"),
                ));
            }
            let digest = match &raw.digest {
                Some(d) if d.len() != 32 || !d.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    return Err(Invalid(
                        key("digest"),
                        format!("{d:?} is not an MD5 in hex"),
                    ));
                }
                d => d.as_ref().map(|d| d.to_ascii_lowercase()),
            };
            Check::HttpGet {
                url,
                status: raw.status.unwrap_or(200),
                digest,
                virtualhost: raw.virtualhost.clone(),
            }
        }
        "misc" => {
            let argv: Vec<String> = raw
                .command
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if argv.is_empty() {
                return Err(Invalid(
                    key("command"),
                    "a misc check needs a command".into(),
                ));
            }
            Check::Misc { argv }
        }
        other => {
            return Err(Invalid(
                key("check"),
                format!("{other:?}: one of tcp_connect, http_get, misc"),
            ))
        }
    };
    let only = |k: &str, given: bool, for_what: &str| {
        if given {
            Err(Invalid(key(k), format!("only for {for_what} checks")))
        } else {
            Ok(())
        }
    };
    if !matches!(check, Check::HttpGet { .. }) {
        only("url", raw.url.is_some(), "http_get")?;
        only("status", raw.status.is_some(), "http_get")?;
        only("digest", raw.digest.is_some(), "http_get")?;
        only("virtualhost", raw.virtualhost.is_some(), "http_get")?;
    }
    if !matches!(check, Check::Misc { .. }) {
        only("command", raw.command.is_some(), "misc")?;
    }
    let servers = match &raw.servers {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|s| endpoint(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Invalid(key("servers"), e))?,
        ),
    };
    let sorry_server = match &raw.sorry_server {
        None => None,
        Some(s) => Some(endpoint(s).map_err(|e| Invalid(key("sorry_server"), e))?),
    };
    Ok(HealthRule {
        service,
        servers,
        check,
        delay_loop: seconds("delay_loop_s", raw.delay_loop_s, 60.0, 0.1)?,
        connect_timeout: seconds("connect_timeout_s", raw.connect_timeout_s, 5.0, 0.1)?,
        retry: raw.retry.unwrap_or(1),
        delay_before_retry: seconds("delay_before_retry_s", raw.delay_before_retry_s, 1.0, 0.0)?,
        port: raw.port,
        inhibit_on_failure: raw.inhibit_on_failure.unwrap_or(false),
        sorry_server,
        quorum: raw.quorum.unwrap_or(1),
    })
}

/// Reads the `[[health]]` tables: two of one service check different
/// servers, and checks need an exception path to run on.
pub(super) fn parse_all(
    raw: Vec<RawHealth>,
    interfaces: &[Interface],
) -> Result<Vec<HealthRule>, Invalid> {
    let mut health: Vec<HealthRule> = Vec::new();
    for (i, rh) in raw.into_iter().enumerate() {
        let h = parse(i, rh)?;
        // Two tables of one service must check different servers.
        let overlap = health.iter().filter(|o| o.service == h.service).any(|o| {
            match (&o.servers, &h.servers) {
                (None, None) => true,
                (Some(a), Some(b)) => a.iter().any(|x| b.contains(x)),
                _ => false,
            }
        });
        if overlap {
            return Err(Invalid(
                format!("health[{i}].servers"),
                "another [[health]] table of the service checks these servers".into(),
            ));
        }
        health.push(h);
    }
    if !health.is_empty() && interfaces.iter().all(|i| i.kernel.is_none()) {
        return Err(Invalid("health[0]".into(), NO_EXCEPTION_PATH.into()));
    }

    Ok(health)
}

/// `tcp/ADDR:PORT`, `udp/ADDR:PORT` or `fwmark/N`.
pub fn service_key(s: &str) -> Result<ServiceKey, String> {
    let bad = || format!("{s:?} is not tcp/ADDR:PORT, udp/ADDR:PORT or fwmark/MARK");
    let (kind, rest) = s.split_once('/').ok_or_else(bad)?;
    if kind == "fwmark" {
        let m: u32 = rest.parse().map_err(|_| bad())?;
        if m == 0 {
            return Err(bad());
        }
        return Ok(ServiceKey::Fwmark(m));
    }
    let protocol = match kind {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return Err(bad()),
    };
    let (addr, port) = endpoint(rest).map_err(|_| bad())?;
    Ok(ServiceKey::Addr {
        protocol,
        addr,
        port,
    })
}

fn endpoint(s: &str) -> Result<(Ipv4Addr, u16), String> {
    let (a, p) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not ADDRESS:PORT"))?;
    let addr = a
        .parse()
        .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
    let port = p.parse().map_err(|_| format!("{p:?} is not a port"))?;
    Ok((addr, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(check: &str) -> RawHealth {
        RawHealth {
            service: "tcp/10.0.0.100:80".into(),
            check: check.into(),
            ..RawHealth::default()
        }
    }

    #[test]
    fn defaults_are_keepalived_s() {
        let h = parse(0, raw("tcp_connect")).unwrap();
        assert_eq!(h.delay_loop, Duration::from_secs(60));
        assert_eq!(h.connect_timeout, Duration::from_secs(5));
        assert_eq!((h.retry, h.quorum, h.inhibit_on_failure), (1, 1, false));
        assert_eq!(h.delay_before_retry, Duration::from_secs(1));
        let h = parse(
            0,
            RawHealth {
                digest: Some("9B3A0C85A887A256D6939DA88AABD8CD".into()),
                ..raw("http_get")
            },
        )
        .unwrap();
        assert_eq!(
            h.check,
            Check::HttpGet {
                url: "/".into(),
                status: 200,
                digest: Some("9b3a0c85a887a256d6939da88aabd8cd".into()),
                virtualhost: None
            }
        );
    }

    #[test]
    fn mistakes_name_their_key() {
        let err = |r: RawHealth| parse(3, r).unwrap_err().0;
        assert_eq!(err(raw("ping")), "health[3].check");
        assert_eq!(err(raw("misc")), "health[3].command");
        let url = |u: &str, c: &str| RawHealth {
            url: Some(u.into()),
            ..raw(c)
        };
        assert_eq!(err(url("/", "tcp_connect")), "health[3].url");
        assert_eq!(err(url("health", "http_get")), "health[3].url");
        assert_eq!(
            err(RawHealth {
                digest: Some("abc".into()),
                ..raw("http_get")
            }),
            "health[3].digest"
        );
        assert_eq!(
            err(RawHealth {
                delay_loop_s: Some(0.0),
                ..raw("tcp_connect")
            }),
            "health[3].delay_loop_s"
        );
        assert_eq!(
            err(RawHealth {
                sorry_server: Some("10.0.0.99".into()),
                ..raw("tcp_connect")
            }),
            "health[3].sorry_server"
        );
        assert_eq!(
            err(RawHealth {
                service: "sctp/10.0.0.1:80".into(),
                ..raw("tcp_connect")
            }),
            "health[3].service"
        );
        assert_eq!(service_key("fwmark/5"), Ok(ServiceKey::Fwmark(5)));
    }
}
