//! Names in rules files: service (port) names and host names.
//!
//! `ipvsadm -S` without `-n` writes `www.example.com:http`; ipvsadm reads
//! them back with `getservbyname(3)` and `gethostbyname(3)`. dlvs does the
//! same without libc's NSS: port names come from `/etc/services` when the
//! file exists, and from a built-in table of common names otherwise (or when
//! the file lacks the name), so that a rules file saved on a full system
//! still loads on a minimal one without netbase. Host names go through
//! [`std::net::ToSocketAddrs`] (the system resolver) and must yield an IPv4
//! address; like ipvsadm, the first one is taken.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;

use crate::service_key::Protocol;

/// Where port names are looked up first.
pub const ETC_SERVICES: &str = "/etc/services";

/// Common IANA names with their port, for machines without `/etc/services`.
/// Each is the same number for TCP and UDP (IANA assigns both).
const BUILTIN: &[(&str, u16)] = &[
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("mail", 25),
    ("domain", 53),
    ("bootps", 67),
    ("bootpc", 68),
    ("tftp", 69),
    ("gopher", 70),
    ("finger", 79),
    ("http", 80),
    ("www", 80),
    ("kerberos", 88),
    ("pop3", 110),
    ("sunrpc", 111),
    ("auth", 113),
    ("nntp", 119),
    ("ntp", 123),
    ("imap", 143),
    ("imap2", 143),
    ("snmp", 161),
    ("snmp-trap", 162),
    ("bgp", 179),
    ("irc", 194),
    ("ldap", 389),
    ("https", 443),
    ("microsoft-ds", 445),
    ("isakmp", 500),
    ("syslog", 514),
    ("submission", 587),
    ("ldaps", 636),
    ("rsync", 873),
    ("ftps", 990),
    ("imaps", 993),
    ("pop3s", 995),
    ("socks", 1080),
    ("openvpn", 1194),
    ("ms-sql-s", 1433),
    ("radius", 1812),
    ("radius-acct", 1813),
    ("nfs", 2049),
    ("mysql", 3306),
    ("ms-wbt-server", 3389),
    ("sip", 5060),
    ("sip-tls", 5061),
    ("postgresql", 5432),
    ("amqp", 5672),
    ("x11", 6000),
    ("http-alt", 8080),
];

/// Port names for TCP and UDP.
#[derive(Debug, Clone, Default)]
pub struct ServiceNames {
    tcp: HashMap<String, u16>,
    udp: HashMap<String, u16>,
    /// A port's first name in the file, as getservbyport(3) answers.
    tcp_ports: HashMap<u16, String>,
    udp_ports: HashMap<u16, String>,
}

impl ServiceNames {
    /// `/etc/services` if it can be read, else nothing (the built-in table
    /// still answers).
    pub fn system() -> ServiceNames {
        Self::from_file(Path::new(ETC_SERVICES))
    }

    /// The names in a services(5) file; an unreadable file gives none.
    pub fn from_file(path: &Path) -> ServiceNames {
        std::fs::read_to_string(path)
            .map(|text| Self::from_services_text(&text))
            .unwrap_or_default()
    }

    /// Parses services(5) text: `name port/protocol [aliases ...] [# comment]`.
    /// Malformed lines are skipped, as libc does.
    pub fn from_services_text(text: &str) -> ServiceNames {
        let mut names = ServiceNames::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let (table, ports) = match proto {
                "tcp" => (&mut names.tcp, &mut names.tcp_ports),
                "udp" => (&mut names.udp, &mut names.udp_ports),
                _ => continue,
            };
            ports.entry(port).or_insert_with(|| name.to_owned());
            // The first entry for a name wins, as with getservbyname(3).
            for n in std::iter::once(name).chain(words) {
                table.entry(n.to_owned()).or_insert(port);
            }
        }
        names
    }

    /// The port of `name` for `protocol`: the services file first, then
    /// the built-in table.
    pub fn port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        let table = match protocol {
            Protocol::Tcp => &self.tcp,
            Protocol::Udp => &self.udp,
        };
        table.get(name).copied().or_else(|| builtin_port(name))
    }
}

impl ServiceNames {
    /// The name of `port` for `protocol` in the services file, if any
    /// (listings without `-n`; the built-in table is not asked, as
    /// getservbyport(3) would not know it).
    pub fn name(&self, port: u16, protocol: Protocol) -> Option<&str> {
        let ports = match protocol {
            Protocol::Tcp => &self.tcp_ports,
            Protocol::Udp => &self.udp_ports,
        };
        ports.get(&port).map(String::as_str)
    }
}

/// The built-in port of `name`, if it is a common one.
pub fn builtin_port(name: &str) -> Option<u16> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|&(_, p)| p)
}

/// Resolves a host name to its first IPv4 address with the system resolver.
pub fn resolve_host(name: &str) -> Result<Ipv4Addr, String> {
    let addrs = (name, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host name {name:?}: {e}"))?;
    let mut any = false;
    for addr in addrs {
        any = true;
        if let SocketAddr::V4(v4) = addr {
            return Ok(*v4.ip());
        }
    }
    Err(if any {
        format!("host name {name:?} has no IPv4 address (IPv6 is not supported yet)")
    } else {
        format!("cannot resolve host name {name:?}")
    })
}

/// The host name of `addr` in `/etc/hosts` (the first name of its first
/// line), for listings without `-n`. DNS is not asked: ipvsadm's
/// gethostbyaddr(3) would, but a director's listing must not wait on a
/// resolver; an address without an entry is printed as a number, as
/// ipvsadm prints one without a name.
pub fn host_name(addr: Ipv4Addr) -> Option<String> {
    let text = std::fs::read_to_string("/etc/hosts").ok()?;
    host_in(&text, addr)
}

/// The first name of `addr`'s first line in hosts(5) text.
fn host_in(text: &str, addr: Ipv4Addr) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let a = words.next()?.parse::<Ipv4Addr>().ok()?;
        (a == addr)
            .then(|| words.next().map(str::to_owned))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_file_names_aliases_and_protocols() {
        let names = ServiceNames::from_services_text(
            "# comment\n\
             http\t\t80/tcp\t\twww\t# WorldWideWeb HTTP\n\
             domain\t\t53/tcp\n\
             domain\t\t53/udp\n\
             custom\t\t7000/udp\n\
             broken\t\tx/tcp\n\
             other 7001/sctp\n",
        );
        assert_eq!(names.port("http", Protocol::Tcp), Some(80));
        assert_eq!(names.port("www", Protocol::Tcp), Some(80));
        assert_eq!(names.port("domain", Protocol::Udp), Some(53));
        assert_eq!(names.port("custom", Protocol::Udp), Some(7000));
        // Only the file's UDP entry: TCP falls back to the table, which lacks it.
        assert_eq!(names.port("custom", Protocol::Tcp), None);
        assert_eq!(names.port("broken", Protocol::Tcp), None);
        assert_eq!(names.port("other", Protocol::Tcp), None);
    }

    #[test]
    fn builtin_table_without_a_services_file() {
        let names = ServiceNames::from_file(Path::new("/nonexistent/services"));
        assert_eq!(names.port("http", Protocol::Tcp), Some(80));
        assert_eq!(names.port("https", Protocol::Udp), Some(443));
        assert_eq!(names.port("ftp", Protocol::Tcp), Some(21));
        assert_eq!(names.port("ssh", Protocol::Tcp), Some(22));
        assert_eq!(names.port("smtp", Protocol::Tcp), Some(25));
        assert_eq!(names.port("domain", Protocol::Udp), Some(53));
        assert_eq!(names.port("no-such-service", Protocol::Tcp), None);
    }

    #[test]
    fn first_file_entry_wins() {
        let names = ServiceNames::from_services_text("a 1/tcp\na 2/tcp\n");
        assert_eq!(names.port("a", Protocol::Tcp), Some(1));
    }

    #[test]
    fn localhost_resolves_to_ipv4() {
        // /etc/hosts answers this without DNS.
        assert_eq!(resolve_host("localhost"), Ok(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn reverse_lookups_take_the_first_entry() {
        let n =
            ServiceNames::from_services_text("http 80/tcp www\nwww-alt 80/tcp\ndomain 53/udp\n");
        assert_eq!(n.name(80, Protocol::Tcp), Some("http"));
        assert_eq!(n.name(53, Protocol::Udp), Some("domain"));
        assert_eq!(n.name(53, Protocol::Tcp), None);
        let hosts =
            "127.0.0.1 localhost\n# 10.0.0.11 old\n10.0.0.11 web1 web1.lab\n10.0.0.11 other\n";
        assert_eq!(
            host_in(hosts, Ipv4Addr::new(10, 0, 0, 11)).as_deref(),
            Some("web1")
        );
        assert_eq!(host_in(hosts, Ipv4Addr::new(10, 0, 0, 12)), None);
    }
}
