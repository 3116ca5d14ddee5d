//! What `dlvsadm -L` and `-S` print, byte for byte as ipvsadm 1.31 does
//! (ipvsadm.c `list_all`, `print_title`, `print_service_entry`,
//! `print_largenum`, `addrport_to_anyname`; and libipvs.c's sort order).
//!
//! The contract: [`list`] and [`save`] turn a [`View`] (the rules with
//! their live counters, gathered by the control plane) into text; they do
//! no I/O but for name lookups without `-n`, which go through [`Names`].
//!
//! Where ipvsadm's output depends on the kernel, dlvs says what it has:
//! the version line gives IPVS's version (1.2.1, what the kernels of the
//! last decade report) and, as `size`, the connection capacity of all
//! workers (the kernel prints its connection hash table's size).
//!
//! The order is ipvsadm's, quirks included: services and real servers are
//! sorted by glibc's merge sort with libipvs's comparator, whose address
//! comparison subtracts in 32 bits and so puts 10.0.0.1 after 192.168.1.1.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::estimator::Rates;
use crate::conn::dump::ConnRecord;
use crate::datapath::stats::DestStats;
use crate::service::names::ServiceNames;
use crate::service::rules::{write_service, DEFAULT_NETMASK};
use crate::service::{DestRule, ListOptions, Method, Protocol, ServiceKey, ServiceRule, TunKind};

/// IPVS's version as the kernel reports it (`IP_VS_VERSION_CODE`).
pub use dlvs_admin::protocol::IPVS_VERSION;

/// A real server with its live counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestView {
    pub rule: DestRule,
    pub active: u32,
    pub inactive: u32,
    pub persistent: u32,
    pub stats: DestStats,
    pub rates: Rates,
}

/// A virtual service with its real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    /// Its `dests` are not used: see [`ServiceView::dests`].
    pub rule: ServiceRule,
    pub dests: Vec<DestView>,
    pub stats: DestStats,
    pub rates: Rates,
}

/// Everything a listing shows, in the table's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Connection entries of all workers (the version line's `size`).
    pub capacity: u64,
    /// The services as the data path runs them (health checks applied).
    pub services: Vec<ServiceView>,
    /// Every configured real server that has health checks: whether it is
    /// up, and how often it went up or down (a removed one is not in
    /// `services`).
    pub health: Vec<ServerHealth>,
}

/// A checked real server's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHealth {
    pub service: crate::service::ServiceKey,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub up: bool,
    pub state_changes: u64,
}

/// Host and port names for listings without `-n`.
pub struct Names<'a> {
    pub ports: &'a ServiceNames,
    /// An address's host name, if it has one.
    pub host: &'a dyn Fn(Ipv4Addr) -> Option<String>,
}

/// `-L` (without `-c`, `--timeout`, `--daemon`: the caller answers
/// those). Of `--stats`, `--rate`, `--thresholds`, `--persistent-conn` and
/// `--tun-info`, the first in that order is shown, as ipvsadm does. A service asked for that does not exist is ipvsadm's
/// `No such service`.
pub fn list(view: &View, o: &ListOptions, names: &Names<'_>) -> Result<String, String> {
    let mut out = String::new();
    let services: Vec<&ServiceView> = match o.service {
        Some(key) => vec![view
            .services
            .iter()
            .find(|s| s.rule.key == key)
            .ok_or("No such service")?],
        None => {
            let _ = writeln!(
                out,
                "IP Virtual Server version {IPVS_VERSION} (size={})",
                view.capacity
            );
            let mut all: Vec<&ServiceView> = view.services.iter().collect();
            if !o.nosort {
                merge_sort(&mut all, &|a, b| cmp_services(&a.rule.key, &b.rule.key));
            }
            all
        }
    };
    title(&mut out, o);
    for s in services {
        service_line(&mut out, s, o, names);
        let mut dests: Vec<&DestView> = s.dests.iter().collect();
        if !o.nosort {
            merge_sort(&mut dests, &|a, b| cmp_dests(&a.rule, &b.rule));
        }
        for d in dests {
            dest_line(&mut out, s, d, o, names);
        }
    }
    Ok(out)
}

/// `-S`: the rules as ipvsadm-save prints them, always sorted. ipvsadm
/// never saves thresholds; dlvs appends ` -x U -y L` when they are set, so
/// that `-S | -R` gives the same table back.
pub fn save(view: &View, numeric: bool, names: &Names<'_>) -> String {
    let mut out = String::new();
    let mut all: Vec<&ServiceView> = view.services.iter().collect();
    merge_sort(&mut all, &|a, b| cmp_services(&a.rule.key, &b.rule.key));
    for s in all {
        let r = &s.rule;
        let svc = match r.key {
            ServiceKey::Fwmark(m) => format!("-f {m}"),
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => format!(
                "{} {}",
                protocol.flag(),
                addrport(addr, port, Some(protocol), numeric, names)
            ),
        };
        let mut dests: Vec<&DestRule> = s.dests.iter().map(|d| &d.rule).collect();
        merge_sort(&mut dests, &|a, b| cmp_dests(a, b));
        write_service(&mut out, r, &dests, &svc, &|d| {
            addrport(d.addr, d.port, protocol_of(&r.key), numeric, names)
        });
    }
    out
}

/// `-L -c`: the connections and templates as ipvsadm lists
/// /proc/net/ip_vs_conn (`list_conn`): no sorting, no truncation, the
/// expiry as minutes and seconds.
pub fn connections(records: &[ConnRecord], o: &ListOptions, names: &Names<'_>) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if o.persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    for r in records {
        let (proto, protocol) = match r.proto {
            6 => ("TCP", Some(Protocol::Tcp)),
            17 => ("UDP", Some(Protocol::Udp)),
            0 => ("IP", None),
            _ => ("?", None),
        };
        let expire = format!("{:02}:{:02}", r.expires_s / 60, r.expires_s % 60);
        let end = |a, p| addrport(a, p, protocol, o.numeric, names);
        // No persistence engine holds data here, so even with
        // --persistent-conn a line has ipvsadm's six columns.
        let _ = writeln!(
            out,
            "{proto:<3} {expire:<6} {:<11} {:<18} {:<18} {}",
            r.state,
            end(r.caddr, r.cport),
            end(r.vaddr, r.vport),
            end(r.daddr, r.dport)
        );
    }
    out
}

fn title(out: &mut String, o: &ListOptions) {
    let prot = "Prot LocalAddress:Port";
    if o.stats {
        let _ = writeln!(
            out,
            "{prot:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
        out.push_str("  -> RemoteAddress:Port\n");
    } else if o.rate {
        let _ = writeln!(
            out,
            "{prot:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        );
        out.push_str("  -> RemoteAddress:Port\n");
    } else if o.thresholds {
        let _ = writeln!(
            out,
            "{prot:<33} {:<10} {:<10} {:<10} {:<10}",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        );
        out.push_str("  -> RemoteAddress:Port\n");
    } else if o.persistent_conn {
        let _ = writeln!(
            out,
            "{prot:<33} {:<9} {:<11} {:<10} {:<10}",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        );
        out.push_str("  -> RemoteAddress:Port\n");
    } else if o.tun_info {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str(
            "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        );
    } else {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    }
}

fn service_line(out: &mut String, s: &ServiceView, o: &ListOptions, names: &Names<'_>) {
    let r = &s.rule;
    let name: String = match r.key {
        ServiceKey::Fwmark(m) => format!("FWM  {m}"),
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let full = format!(
                "{:<4} {}",
                protocol.name().to_uppercase(),
                addrport(addr, port, Some(protocol), o.numeric, names)
            );
            full.chars().take(33).collect()
        }
    };
    if o.stats {
        let _ = write!(out, "{name:<33}");
        largenums(out, &s.stats, o.exact);
        out.push('\n');
        return;
    }
    if o.rate {
        let _ = write!(out, "{name:<33}");
        let r = &s.rates;
        for v in [r.cps, r.in_pps, r.out_pps, r.in_bps, r.out_bps] {
            largenum(out, v, o.exact);
        }
        out.push('\n');
        return;
    }
    let _ = write!(out, "{name} {}", r.scheduler);
    if !r.flags.is_empty() {
        let _ = write!(out, " ({})", r.flags.names(&r.scheduler, false));
    }
    if let Some(p) = r.persistence {
        let _ = write!(out, " persistent {}", p.timeout_s);
        if p.netmask != DEFAULT_NETMASK {
            let _ = write!(out, " mask {}", p.netmask);
        }
    }
    if r.one_packet {
        out.push_str(" ops");
    }
    out.push('\n');
}

fn dest_line(out: &mut String, s: &ServiceView, d: &DestView, o: &ListOptions, names: &Names<'_>) {
    let r = &d.rule;
    let name: String = addrport(r.addr, r.port, protocol_of(&s.rule.key), o.numeric, names)
        .chars()
        .take(28)
        .collect();
    let fwd = match r.method {
        Method::Dr => "Route",
        Method::Nat => "Masq",
        Method::Tun(_) => "Tunnel",
    };
    if o.stats {
        // ipvsadm reads a real server's connection and packet counters
        // as 32 bits (libipvs's `ipvs_parse_stats`), its byte counters whole.
        let low = |v: u64| u64::from(v as u32);
        let st = DestStats {
            conns: low(d.stats.conns),
            in_packets: low(d.stats.in_packets),
            out_packets: low(d.stats.out_packets),
            ..d.stats
        };
        let _ = write!(out, "  -> {name:<28}");
        largenums(out, &st, o.exact);
        out.push('\n');
    } else if o.rate {
        // The three packet rates unscaled, the byte rates scaled; all read
        // as 32 bits.
        let r = &d.rates;
        let low = |v: u64| v as u32;
        let _ = write!(
            out,
            "  -> {name:<28} {:>8} {:>8} {:>8}",
            low(r.cps),
            low(r.in_pps),
            low(r.out_pps)
        );
        largenum(out, low(r.in_bps).into(), o.exact);
        largenum(out, low(r.out_bps).into(), o.exact);
        out.push('\n');
    } else if o.thresholds {
        let _ = writeln!(
            out,
            "  -> {name:<28} {:<10} {:<10} {:<10} {:<10}",
            r.u_threshold, r.l_threshold, d.active, d.inactive
        );
    } else if o.persistent_conn {
        let _ = writeln!(
            out,
            "  -> {name:<28} {:<9} {:<11} {:<10} {:<10}",
            r.weight, d.persistent, d.active, d.inactive
        );
    } else if o.tun_info {
        let info = match r.method {
            Method::Tun(t) => {
                let csum = match t.csum {
                    crate::service::TunCsum::NoCsum => "-c",
                    crate::service::TunCsum::Csum => "+c",
                    crate::service::TunCsum::RemCsum => "r+c",
                };
                match t.kind {
                    TunKind::Ipip => "ipip".to_owned(),
                    TunKind::Gue => format!("gue:{}:{csum}", t.port),
                    TunKind::Gre => format!("gre:{csum}"),
                }
            }
            _ => "n/a".to_owned(),
        };
        let _ = writeln!(
            out,
            "  -> {name:<28} {fwd:<7} {info:<13} {:<6} {:<10} {:<10}",
            r.weight, d.active, d.inactive
        );
    } else {
        let _ = writeln!(
            out,
            "  -> {name:<28} {fwd:<7} {:<6} {:<10} {:<10}",
            r.weight, d.active, d.inactive
        );
    }
}

/// The five counters, each as ipvsadm's `print_largenum` writes it.
fn largenums(out: &mut String, t: &DestStats, exact: bool) {
    for v in [
        t.conns,
        t.in_packets,
        t.out_packets,
        t.in_bytes,
        t.out_bytes,
    ] {
        largenum(out, v, exact);
    }
}

fn largenum(out: &mut String, i: u64, exact: bool) {
    if exact {
        let len = i.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        let _ = write!(out, "{i:>width$}");
        return;
    }
    let _ = match i {
        0..=99_999_999 => write!(out, "{i:>9}"),
        100_000_000..=999_999_999 => write!(out, "{:>8}K", i / 1_000),
        1_000_000_000..=99_999_999_999 => write!(out, "{:>8}M", i / 1_000_000),
        100_000_000_000..=99_999_999_999_999 => write!(out, "{:>8}G", i / 1_000_000_000),
        _ => write!(out, "{:>8}T", i / 1_000_000_000_000),
    };
}

/// The protocol port names are looked up for: none for fwmark services
/// (the kernel reports protocol 0 for them, so ipvsadm prints numbers).
fn protocol_of(key: &ServiceKey) -> Option<Protocol> {
    match key {
        ServiceKey::Addr { protocol, .. } => Some(*protocol),
        ServiceKey::Fwmark(_) => None,
    }
}

/// `addrport_to_anyname`: `ADDR:PORT`, with names unless `numeric`.
fn addrport(
    addr: Ipv4Addr,
    port: u16,
    protocol: Option<Protocol>,
    numeric: bool,
    names: &Names<'_>,
) -> String {
    if numeric {
        return format!("{addr}:{port}");
    }
    let host = (names.host)(addr).unwrap_or_else(|| addr.to_string());
    let port = protocol
        .and_then(|p| names.ports.name(port, p))
        .map(str::to_owned)
        .unwrap_or_else(|| port.to_string());
    format!("{host}:{port}")
}

/// libipvs's `ipvs_cmp_services`: by fwmark, protocol, address, port, with
/// the address difference taken in 32 bits and read as signed.
fn cmp_services(a: &ServiceKey, b: &ServiceKey) -> i64 {
    let parts = |k: &ServiceKey| match *k {
        ServiceKey::Fwmark(m) => (m, 6i64, 0u32, 0u16),
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => (0, protocol_number(protocol), u32::from(addr), port),
    };
    let (am, ap, aa, aport) = parts(a);
    let (bm, bp, ba, bport) = parts(b);
    let r = am.wrapping_sub(bm) as i32;
    if r != 0 {
        return r.into();
    }
    if ap != bp {
        return ap - bp;
    }
    let r = aa.wrapping_sub(ba) as i32;
    if r != 0 {
        return r.into();
    }
    i64::from(aport) - i64::from(bport)
}

/// libipvs's `ipvs_cmp_dests`: address (32-bit wrapping), then port.
fn cmp_dests(a: &DestRule, b: &DestRule) -> i64 {
    let r = u32::from(a.addr).wrapping_sub(u32::from(b.addr)) as i32;
    if r != 0 {
        return r.into();
    }
    i64::from(a.port) - i64::from(b.port)
}

fn protocol_number(p: Protocol) -> i64 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    }
}

/// glibc's `qsort` (msort): a stable top-down merge sort, left half
/// `n / 2`, taking from the left run while `cmp <= 0`. With libipvs's
/// inconsistent comparator only this algorithm gives ipvsadm's order.
fn merge_sort<T: Copy>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> i64) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let (n1, _) = (n / 2, n - n / 2);
    merge_sort(&mut v[..n1], cmp);
    merge_sort(&mut v[n1..], cmp);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            merged.push(v[i]);
            i += 1;
        } else {
            merged.push(v[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..n]);
    v.copy_from_slice(&merged);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largenum_scales_as_ipvsadm() {
        let cases: [(u64, &str, &str); 9] = [
            (0, "        0", "        0"),
            (99_999_999, " 99999999", " 99999999"),
            (100_000_000, "  100000K", " 100000000"),
            (999_999_999, "  999999K", " 999999999"),
            (1_000_000_000, "    1000M", " 1000000000"),
            (99_999_999_999, "   99999M", " 99999999999"),
            (100_000_000_000, "     100G", " 100000000000"),
            (100_000_000_000_000, "     100T", " 100000000000000"),
            (u64::MAX, "18446744T", " 18446744073709551615"),
        ];
        for (v, scaled, exact) in cases {
            let (mut a, mut b) = (String::new(), String::new());
            largenum(&mut a, v, false);
            largenum(&mut b, v, true);
            assert_eq!((a.as_str(), b.as_str()), (scaled, exact), "{v}");
        }
    }

    #[test]
    fn the_sort_keeps_libipvs_wraparound() {
        let mut v: Vec<Ipv4Addr> = [
            "192.168.1.1",
            "10.0.0.1",
            "172.16.0.1",
            "127.0.0.1",
            "200.1.1.1",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        merge_sort(&mut v, &|a, b| {
            i64::from(u32::from(*a).wrapping_sub(u32::from(*b)) as i32)
        });
        let got: Vec<String> = v.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            got,
            [
                "127.0.0.1",
                "172.16.0.1",
                "192.168.1.1",
                "200.1.1.1",
                "10.0.0.1"
            ]
        );
    }
}
