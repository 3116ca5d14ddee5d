//! Virtual services and real servers as configured: the data model the
//! rules file, `dlvsadm`'s changes and keepalived.conf's virtual servers
//! all produce ([`Rules`], [`ServiceRule`], [`DestRule`] and the values
//! they hold), its limits and defaults (ipvsadm 1.31's), and
//! `ipvsadm -S -n`'s writer ([`Rules::to_save_n`]). Reading a rules file
//! is `rules_file`'s; applying a command, `command`'s.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

pub use crate::service_key::{Protocol, ServiceKey};

/// The scheduler of a service without `-s` (ipvsadm's `DEF_SCHED`).
pub const DEFAULT_SCHEDULER: &str = "wlc";

/// The schedulers IPVS ships (one kernel module each).
pub const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh", "mh", "fo", "ovf", "twos",
];

/// The persistence timeout of a bare `-p`: 300 s, as ipvsadm(8) and
/// ../shared/IPVS-SPEC.md state (ipvsadm 1.31's libipvs.h defines
/// `IPVS_SVC_PERSISTENT_TIMEOUT` as 6*60; the spec rules here).
pub const DEFAULT_PERSISTENT_TIMEOUT_S: u32 = 300;

/// The longest persistence timeout ipvsadm accepts (`MAX_TIMEOUT`, 31 days).
pub const MAX_PERSISTENT_TIMEOUT_S: u32 = 86_400 * 31;

/// The persistence netmask without `-M`: one template per client address.
pub const DEFAULT_NETMASK: Ipv4Addr = Ipv4Addr::BROADCAST;

/// The largest real server weight.
pub const MAX_WEIGHT: u32 = 65_535;

/// The largest connection threshold (`-x`, `-y`): ipvsadm reads an `int`.
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;

/// Scheduler flags (`-b`). The kernel has three anonymous flags; `sh` and
/// `mh` give the first two a meaning (`sh-fallback`/`mh-fallback` is
/// flag-1, `sh-port`/`mh-port` is flag-2) and other schedulers ignore them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct SchedFlags {
    /// flag-1: sh/mh skip an overloaded or weight-0 server for the next one.
    pub fallback: bool,
    /// flag-2: sh/mh hash the source port too.
    pub port: bool,
    /// flag-3: no scheduler uses it; kept so that rules round-trip.
    pub flag3: bool,
}

impl SchedFlags {
    pub fn is_empty(&self) -> bool {
        !(self.fallback || self.port || self.flag3)
    }

    /// The `-b` argument as ipvsadm's `print_sched_flags` writes it for
    /// `scheduler` (flag-3 included for sh/mh, which ipvsadm drops).
    fn to_arg(self, scheduler: &str) -> String {
        self.names(scheduler, true)
    }

    /// The flags' names for `scheduler`, comma-separated. ipvsadm's
    /// `print_sched_flags` (its listings) names no third flag for sh and mh
    /// (`with_flag3` false); `-b` writes it (so a save loads back).
    pub fn names(self, scheduler: &str, with_flag3: bool) -> String {
        let (fallback, port, flag3) = match scheduler {
            "sh" => ("sh-fallback", "sh-port", with_flag3),
            "mh" => ("mh-fallback", "mh-port", with_flag3),
            _ => ("flag-1", "flag-2", true),
        };
        let names = [
            (self.fallback, fallback),
            (self.port, port),
            (self.flag3 && flag3, "flag-3"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(on, _)| *on)
            .map(|&(_, n)| n)
            .collect();
        set.join(",")
    }
}

/// Persistence (`-p [TIMEOUT]`, `-M NETMASK`): a client network keeps its
/// real server for `timeout_s` after its last connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Persistence {
    pub timeout_s: u32,
    /// Clients whose addresses agree under this mask share a template.
    /// Any dotted quad is accepted, as ipvsadm and the kernel do.
    pub netmask: Ipv4Addr,
}

/// The encapsulation of a tunnelled real server (`--tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunKind {
    /// IP in IP (protocol 4), ipvsadm's default.
    Ipip,
    /// Generic UDP Encapsulation to `TunConfig::port`.
    Gue,
    /// GRE carrying IPv4.
    Gre,
}

impl TunKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TunKind::Ipip => "ipip",
            TunKind::Gue => "gue",
            TunKind::Gre => "gre",
        }
    }
}

/// The outer checksum of GUE/GRE tunnels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunCsum {
    /// `--tun-nocsum`, the default.
    #[default]
    NoCsum,
    /// `--tun-csum`: UDP checksum (GUE) or GRE checksum.
    Csum,
    /// `--tun-remcsum`: remote checksum offload (GUE only).
    RemCsum,
}

impl TunCsum {
    pub(crate) fn option(self) -> &'static str {
        match self {
            TunCsum::NoCsum => "--tun-nocsum",
            TunCsum::Csum => "--tun-csum",
            TunCsum::RemCsum => "--tun-remcsum",
        }
    }
}

/// A tunnel's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TunConfig {
    pub kind: TunKind,
    /// The GUE destination port (1 or more); 0 for IPIP and GRE.
    pub port: u16,
    /// Always `NoCsum` for IPIP.
    pub csum: TunCsum,
}

/// How packets reach a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `-g`, the default: direct routing, only the MAC addresses change.
    Dr,
    /// `-m`: masquerading, destination (and reply source) rewritten.
    Nat,
    /// `-i`: the packet is encapsulated towards the real server.
    Tun(TunConfig),
}

/// A real server of a virtual service (an `-a` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestRule {
    pub addr: Ipv4Addr,
    /// For DR and TUN of a TCP/UDP service, the service's port. 0 (only for
    /// fwmark and port-0 services): the port the client connected to.
    pub port: u16,
    pub method: Method,
    /// 0 to 65535 (default 1); 0 takes no new connections.
    pub weight: u32,
    /// `-x`: no new connections above this many (0: no limit).
    pub u_threshold: u32,
    /// `-y`: an overloaded server takes new connections again below this.
    pub l_threshold: u32,
    /// The line of its `-a` (1-based).
    pub line: usize,
}

/// A virtual service (an `-A` line) with its real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRule {
    pub key: ServiceKey,
    /// One of [`SCHEDULERS`].
    pub scheduler: String,
    pub flags: SchedFlags,
    pub persistence: Option<Persistence>,
    /// `-o`: every UDP packet is scheduled on its own (no connection kept).
    pub one_packet: bool,
    /// The line of its `-A` (1-based).
    pub line: usize,
    /// In file order.
    pub dests: Vec<DestRule>,
}

/// A whole rules file, services in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rules {
    pub services: Vec<ServiceRule>,
}

/// Why a command could not be applied to the rules (ipvsadm's messages,
/// `ipvs_strerror`, for the same mistakes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// `-A` of a service that exists (defined on `line`; 0: by a command).
    #[error("Service already exists")]
    ServiceExists { line: usize },
    /// `-E`, `-D` or `-Z` of a service that does not exist.
    #[error("No such service")]
    NoService,
    /// `-a`, `-e` or `-d` on a service that does not exist.
    #[error("Service not defined")]
    ServiceNotDefined,
    /// `-a` of a real server the service has (defined on `line`).
    #[error("Destination already exists")]
    DestExists { line: usize },
    /// `-e` or `-d` of a real server the service does not have.
    #[error("No such destination")]
    NoDest,
    /// A command that does not change the rules (`-L`, `--set`, ...).
    #[error("not a change to the services")]
    NotAChange,
}

impl Rules {
    /// The rules in `ipvsadm -S -n` form, in this value's order (see
    /// [`Rules::sort`] for ipvsadm's). The layout is ipvsadm 1.31's, with
    /// one addition: ipvsadm never saves thresholds (they are lost on
    /// save/restore), dlvs appends ` -x U` and ` -y L` when they are not 0,
    /// so that `parse(to_save_n(r))` gives `r` back (line numbers aside).
    pub fn to_save_n(&self) -> String {
        let mut out = String::new();
        for s in &self.services {
            let dests: Vec<&DestRule> = s.dests.iter().collect();
            write_service(&mut out, s, &dests, &s.key.to_string(), &|d| {
                format!("{}:{}", d.addr, d.port)
            });
        }
        out
    }

    /// Puts services and real servers in the order `ipvsadm -S` lists them
    /// (libipvs's `ipvs_cmp_services`, `ipvs_cmp_dests`): TCP/UDP services
    /// by protocol, address, port, then fwmark services by mark; real
    /// servers by address and port.
    pub fn sort(&mut self) {
        self.services.sort_by_key(|s| s.key.ipvsadm_order());
        for s in &mut self.services {
            s.dests.sort_by_key(|d| (d.addr, d.port));
        }
    }
}

/// Writes one service and `dests` as `ipvsadm -S` does: `svc` names the
/// service (`-t 10.0.0.100:80`, or with names), `dest` a real server; with
/// dlvs's one addition, thresholds (see [`Rules::to_save_n`]).
pub fn write_service(
    out: &mut String,
    s: &ServiceRule,
    dests: &[&DestRule],
    svc: &str,
    dest: &dyn Fn(&DestRule) -> String,
) {
    // Writing to a String cannot fail.
    let _ = write!(out, "-A {svc} -s {}", s.scheduler);
    if let Some(p) = s.persistence {
        let _ = write!(out, " -p {}", p.timeout_s);
        if p.netmask != DEFAULT_NETMASK {
            let _ = write!(out, " -M {}", p.netmask);
        }
    }
    if s.one_packet {
        out.push_str(" -o");
    }
    if !s.flags.is_empty() {
        let _ = write!(out, " -b {}", s.flags.to_arg(&s.scheduler));
    }
    out.push('\n');
    for d in dests {
        let switch = match d.method {
            Method::Dr => "-g",
            Method::Nat => "-m",
            Method::Tun(_) => "-i",
        };
        let _ = write!(out, "-a {svc} -r {} {switch} -w {}", dest(d), d.weight);
        if let Method::Tun(t) = d.method {
            let _ = write!(out, " --tun-type {}", t.kind.name());
            match t.kind {
                TunKind::Ipip => {}
                TunKind::Gue => {
                    let _ = write!(out, " --tun-port {} {}", t.port, t.csum.option());
                }
                TunKind::Gre => {
                    let _ = write!(out, " {}", t.csum.option());
                }
            }
        }
        if d.u_threshold != 0 {
            let _ = write!(out, " -x {}", d.u_threshold);
        }
        if d.l_threshold != 0 {
            let _ = write!(out, " -y {}", d.l_threshold);
        }
        out.push('\n');
    }
}
