//! Rules files in `ipvsadm-save` syntax (ipvsadm 1.31).
//!
//! A rules file is what `ipvsadm -S` or `ipvsadm -S -n` prints, plus what
//! operators write by hand in the same syntax: one `-A` line per virtual
//! service and one `-a` line per real server, options in any order, short or
//! long (`-s wlc`, `--scheduler wlc`, `--scheduler=wlc`, `-swlc`). Blank
//! lines are skipped, a word starting with `#` comments out the rest of its
//! line, and a leading `ipvsadm` word is ignored (as `ipvsadm -R` does), so
//! pasted commands load too.
//!
//! The contract: [`Rules::parse`] validates the whole file, syntax and
//! meaning, before returning anything; a file either loads completely or not
//! at all. An error names the file, the line and what is wrong, e.g.
//! `rules.txt: line 4: -a -t 10.0.0.100:80: no such virtual service (add it
//! with -A first)`. What ipvsadm or the kernel would refuse is refused here,
//! at load time:
//!
//! - option/command combinations (ipvsadm's `commands_v_options` table), an
//!   option given twice, two forwarding methods (`-g -m`);
//! - a port-0 TCP/UDP service without `-p` (ipvsadm: "Zero port specified
//!   for non-persistent service"; the kernel's `ip_vs_schedule` would drop
//!   every packet of it: "port zero only supported in persistent services");
//! - `-o` on a TCP service (ipvsadm: one-packet scheduling is UDP only; a
//!   fwmark service may have it, the kernel applies it to its UDP packets);
//! - `sh-*` flags without `-s sh`, `mh-*` flags without `-s mh`
//!   (`parse_sched_flags`; the kernel itself does not check);
//! - `-y` above `-x`, including `-y N` without `-x` (the kernel's
//!   `ip_vs_add_dest` compares them as given, 0 included, and returns ERANGE);
//! - tunnel options without `-i`, `--tun-port` missing for GUE or present
//!   for IPIP/GRE, `--tun-remcsum` for GRE, two checksum options
//!   (ipvsadm's `tunnel_types_v_options` table);
//! - an `-a` before its `-A`, a service defined twice, a real server
//!   (address and port) twice in one service (the kernel's EEXIST).
//!
//! Where ipvsadm silently adjusts, so does dlvs: a real server without a port
//! takes the service's port, and for DR (`-g`) and TUN (`-i`) real servers of
//! TCP/UDP services the port is always the service's (ipvsadm overwrites it;
//! only NAT can change ports). `-M` without `-p` is accepted and has no
//! effect (the kernel keeps the mask but only persistence uses it, and
//! `ipvsadm -S` does not print it back).
//!
//! IPv6 (`[::1]:80`, `-6`), SCTP services and persistence engines (`--pe`)
//! are refused with an error naming the line: dlvs does not support them yet.
//!
//! [`Rules::to_save_n`] writes rules back as `ipvsadm -S -n` prints them.

use std::cell::OnceCell;
use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::names::{self, ServiceNames};

/// The scheduler of a service without `-s` (ipvsadm's `DEF_SCHED`).
pub const DEFAULT_SCHEDULER: &str = "wlc";

/// The schedulers IPVS ships (one kernel module each).
pub const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh", "mh", "fo", "ovf", "twos",
];

/// The persistence timeout of a bare `-p` (libipvs's
/// `IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENT_TIMEOUT_S: u32 = 300;

/// The longest persistence timeout ipvsadm accepts (`MAX_TIMEOUT`, 31 days).
pub const MAX_PERSISTENT_TIMEOUT_S: u32 = 86_400 * 31;

/// The persistence netmask without `-M`: one template per client address.
pub const DEFAULT_NETMASK: Ipv4Addr = Ipv4Addr::BROADCAST;

/// The largest real server weight.
pub const MAX_WEIGHT: u32 = 65_535;

/// The largest connection threshold (`-x`, `-y`): ipvsadm reads an `int`.
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;

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
    fn names_protocol(&self) -> Protocol {
        match self {
            ServiceKey::Addr { protocol, .. } => *protocol,
            ServiceKey::Fwmark(_) => Protocol::Tcp,
        }
    }

    /// ipvsadm's listing order: TCP/UDP services (fwmark 0) before fwmark
    /// services, then by protocol (TCP is 6, UDP 17), address and port.
    fn ipvsadm_order(&self) -> (u32, Protocol, Ipv4Addr, u16) {
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
        let (fallback, port) = match scheduler {
            "sh" => ("sh-fallback", "sh-port"),
            "mh" => ("mh-fallback", "mh-port"),
            _ => ("flag-1", "flag-2"),
        };
        let names = [
            (self.fallback, fallback),
            (self.port, port),
            (self.flag3, "flag-3"),
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
    fn name(self) -> &'static str {
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
    fn option(self) -> &'static str {
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

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{path}: cannot read: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path}: line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Rules {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|err| RulesError::Read {
            path: path.to_owned(),
            err,
        })?;
        Rules::parse(&text, path)
    }

    /// Parses and validates rules text; `path` only labels errors. Port
    /// names are looked up in `/etc/services` (then a built-in table), host
    /// names with the system resolver.
    pub fn parse(text: &str, path: &Path) -> Result<Rules, RulesError> {
        let services = OnceCell::new();
        let lookup = Lookup {
            services: &services,
            host: &names::resolve_host,
        };
        parse_with(text, path, &lookup)
    }

    /// The rules in `ipvsadm -S -n` form, in this value's order (see
    /// [`Rules::sort`] for ipvsadm's). The layout is ipvsadm 1.31's, with
    /// one addition: ipvsadm never saves thresholds (they are lost on
    /// save/restore), dlvs appends ` -x U` and ` -y L` when they are not 0,
    /// so that `parse(to_save_n(r))` gives `r` back (line numbers aside).
    pub fn to_save_n(&self) -> String {
        let mut out = String::new();
        for s in &self.services {
            // Writing to a String cannot fail.
            let _ = write!(out, "-A {} -s {}", s.key, s.scheduler);
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
            for d in &s.dests {
                let switch = match d.method {
                    Method::Dr => "-g",
                    Method::Nat => "-m",
                    Method::Tun(_) => "-i",
                };
                let _ = write!(
                    out,
                    "-a {} -r {}:{} {switch} -w {}",
                    s.key, d.addr, d.port, d.weight
                );
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

/// Name lookups, replaceable in tests (no DNS there).
struct Lookup<'a> {
    /// Loaded on the first port name: `-n` files never read /etc/services.
    services: &'a OnceCell<ServiceNames>,
    host: &'a dyn Fn(&str) -> Result<Ipv4Addr, String>,
}

impl Lookup<'_> {
    fn port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.services
            .get_or_init(ServiceNames::system)
            .port(name, protocol)
    }
}

// ---------------------------------------------------------------------------
// Options: ipvsadm's popt table, the part a rules file can meet.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    /// `-p [TIMEOUT]`: popt's POPT_ARGFLAG_OPTIONAL takes the next word
    /// unless it starts with '-'.
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    AddService,
    AddServer,
    /// An ipvsadm command that has no place in a rules file (-E, -D, -C, ...).
    OtherCommand,
    Tcp,
    Udp,
    Fwmark,
    Sctp,
    Ipv6,
    Scheduler,
    SchedFlags,
    Persistent,
    Netmask,
    Ops,
    Pe,
    RealServer,
    Gatewaying,
    Masquerading,
    Ipip,
    Weight,
    UThreshold,
    LThreshold,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    /// An ipvsadm option of listing or the sync daemon (-n, --stats, ...).
    Other,
}

struct OptSpec {
    short: Option<char>,
    long: &'static str,
    arg: Arg,
    opt: Opt,
}

const fn spec(short: Option<char>, long: &'static str, arg: Arg, opt: Opt) -> OptSpec {
    OptSpec {
        short,
        long,
        arg,
        opt,
    }
}

/// ipvsadm 1.31's options (`parse_options`), with what dlvs makes of them.
const OPTIONS: &[OptSpec] = &[
    spec(Some('A'), "add-service", Arg::None, Opt::AddService),
    spec(Some('a'), "add-server", Arg::None, Opt::AddServer),
    spec(Some('E'), "edit-service", Arg::None, Opt::OtherCommand),
    spec(Some('D'), "delete-service", Arg::None, Opt::OtherCommand),
    spec(Some('C'), "clear", Arg::None, Opt::OtherCommand),
    spec(Some('L'), "list", Arg::None, Opt::OtherCommand),
    spec(Some('l'), "list", Arg::None, Opt::OtherCommand),
    spec(Some('Z'), "zero", Arg::None, Opt::OtherCommand),
    spec(Some('e'), "edit-server", Arg::None, Opt::OtherCommand),
    spec(Some('d'), "delete-server", Arg::None, Opt::OtherCommand),
    spec(None, "set", Arg::None, Opt::OtherCommand),
    spec(Some('h'), "help", Arg::None, Opt::OtherCommand),
    spec(Some('v'), "version", Arg::None, Opt::OtherCommand),
    spec(Some('R'), "restore", Arg::None, Opt::OtherCommand),
    spec(Some('S'), "save", Arg::None, Opt::OtherCommand),
    spec(None, "start-daemon", Arg::Required, Opt::OtherCommand),
    spec(None, "stop-daemon", Arg::Required, Opt::OtherCommand),
    spec(Some('t'), "tcp-service", Arg::Required, Opt::Tcp),
    spec(Some('u'), "udp-service", Arg::Required, Opt::Udp),
    spec(None, "sctp-service", Arg::Required, Opt::Sctp),
    spec(Some('f'), "fwmark-service", Arg::Required, Opt::Fwmark),
    spec(Some('s'), "scheduler", Arg::Required, Opt::Scheduler),
    spec(Some('p'), "persistent", Arg::Optional, Opt::Persistent),
    spec(Some('M'), "netmask", Arg::Required, Opt::Netmask),
    spec(Some('r'), "real-server", Arg::Required, Opt::RealServer),
    spec(Some('m'), "masquerading", Arg::None, Opt::Masquerading),
    spec(Some('i'), "ipip", Arg::None, Opt::Ipip),
    spec(Some('g'), "gatewaying", Arg::None, Opt::Gatewaying),
    spec(Some('w'), "weight", Arg::Required, Opt::Weight),
    spec(Some('x'), "u-threshold", Arg::Required, Opt::UThreshold),
    spec(Some('y'), "l-threshold", Arg::Required, Opt::LThreshold),
    spec(Some('n'), "numeric", Arg::None, Opt::Other),
    spec(Some('c'), "connection", Arg::None, Opt::Other),
    spec(None, "mcast-interface", Arg::Required, Opt::Other),
    spec(None, "syncid", Arg::Required, Opt::Other),
    spec(None, "timeout", Arg::None, Opt::Other),
    spec(None, "daemon", Arg::None, Opt::Other),
    spec(None, "stats", Arg::None, Opt::Other),
    spec(None, "rate", Arg::None, Opt::Other),
    spec(None, "thresholds", Arg::None, Opt::Other),
    spec(None, "persistent-conn", Arg::None, Opt::Other),
    spec(None, "nosort", Arg::None, Opt::Other),
    spec(None, "sort", Arg::None, Opt::Other),
    spec(Some('X'), "exact", Arg::None, Opt::Other),
    spec(Some('6'), "ipv6", Arg::None, Opt::Ipv6),
    spec(Some('o'), "ops", Arg::None, Opt::Ops),
    spec(None, "pe", Arg::Required, Opt::Pe),
    spec(Some('b'), "sched-flags", Arg::Required, Opt::SchedFlags),
    spec(None, "mcast-group", Arg::Required, Opt::Other),
    spec(None, "mcast-port", Arg::Required, Opt::Other),
    spec(None, "mcast-ttl", Arg::Required, Opt::Other),
    spec(None, "sync-maxlen", Arg::Required, Opt::Other),
    spec(None, "tun-info", Arg::None, Opt::Other),
    spec(None, "tun-type", Arg::Required, Opt::TunType),
    spec(None, "tun-port", Arg::Required, Opt::TunPort),
    spec(None, "tun-nocsum", Arg::None, Opt::TunNocsum),
    spec(None, "tun-csum", Arg::None, Opt::TunCsum),
    spec(None, "tun-remcsum", Arg::None, Opt::TunRemcsum),
];

impl OptSpec {
    /// `-s (--scheduler)` or `--tun-type`, for messages.
    fn describe(&self) -> String {
        match self.short {
            Some(c) => format!("-{c} (--{})", self.long),
            None => format!("--{}", self.long),
        }
    }
}

/// One option of a line, with its value.
struct Item {
    spec: &'static OptSpec,
    value: Option<String>,
}

/// Splits a line's words into options the way popt does: long options
/// with `--name value` or `--name=value`, short ones bundled (`-gw 5`) or
/// with an attached value (`-w5`).
fn tokenize(words: &[&str]) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        i += 1;
        if let Some(long) = word.strip_prefix("--").filter(|l| !l.is_empty()) {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let spec = OPTIONS
                .iter()
                .find(|s| s.long == name)
                .ok_or_else(|| format!("unknown option --{name}"))?;
            let value = match (spec.arg, inline) {
                (Arg::None, Some(_)) => {
                    return Err(format!("option --{name} takes no value"));
                }
                (Arg::None, None) => None,
                (_, Some(v)) => Some(v.to_owned()),
                (arg, None) => take_value(words, &mut i, arg, spec)?,
            };
            items.push(Item { spec, value });
        } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (at, c) in shorts.char_indices() {
                let spec = OPTIONS
                    .iter()
                    .find(|s| s.short == Some(c))
                    .ok_or_else(|| format!("unknown option -{c}"))?;
                if spec.arg == Arg::None {
                    items.push(Item { spec, value: None });
                    continue;
                }
                let rest = &shorts[at + c.len_utf8()..];
                let value = if rest.is_empty() {
                    take_value(words, &mut i, spec.arg, spec)?
                } else {
                    Some(rest.to_owned())
                };
                items.push(Item { spec, value });
                break;
            }
        } else {
            return Err(format!("unexpected argument `{word}`"));
        }
    }
    Ok(items)
}

/// The value of an option from the next word, if the option takes it.
fn take_value(
    words: &[&str],
    i: &mut usize,
    arg: Arg,
    spec: &OptSpec,
) -> Result<Option<String>, String> {
    match words.get(*i) {
        Some(next) if arg == Arg::Required || !next.starts_with('-') => {
            *i += 1;
            Ok(Some((*next).to_owned()))
        }
        _ if arg == Arg::Optional => Ok(None),
        _ => Err(format!("option {} needs a value", spec.describe())),
    }
}

// ---------------------------------------------------------------------------
// Lines to rules.

/// The options of one line, each at most once.
#[derive(Default)]
struct LineOpts {
    service: Option<(Opt, String)>,
    scheduler: Option<String>,
    sched_flags: Option<String>,
    /// `Some(None)`: `-p` without a timeout.
    persistent: Option<Option<String>>,
    netmask: Option<String>,
    ops: bool,
    real_server: Option<String>,
    forward: Option<Opt>,
    weight: Option<String>,
    u_threshold: Option<String>,
    l_threshold: Option<String>,
    tun_type: Option<String>,
    tun_port: Option<String>,
    /// The checksum option and how it was written.
    tun_csum: Option<(TunCsum, &'static str)>,
    /// The first tunnel option given, for "needs -i" errors.
    first_tun_option: Option<&'static str>,
}

fn parse_with(text: &str, path: &Path, lookup: &Lookup<'_>) -> Result<Rules, RulesError> {
    let mut rules = Rules::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        parse_line(raw, line, &mut rules, lookup).map_err(|message| RulesError::Line {
            path: path.to_owned(),
            line,
            message,
        })?;
    }
    Ok(rules)
}

fn parse_line(
    raw: &str,
    line: usize,
    rules: &mut Rules,
    lookup: &Lookup<'_>,
) -> Result<(), String> {
    let mut words: Vec<&str> = raw
        .split_whitespace()
        .take_while(|w| !w.starts_with('#'))
        .collect();
    if words.first() == Some(&"ipvsadm") {
        words.remove(0);
    }
    if words.is_empty() {
        return Ok(());
    }
    let items = tokenize(&words)?;
    let (command, rest) = items.split_first().ok_or("empty line")?;
    let is_service = match command.spec.opt {
        Opt::AddService => true,
        Opt::AddServer => false,
        Opt::OtherCommand => {
            return Err(format!(
                "{} is not allowed in a rules file: it holds only -A (add a virtual service) \
                 and -a (add a real server) lines",
                command.spec.describe()
            ))
        }
        _ => {
            return Err(format!(
                "a line must start with -A (add a virtual service) or -a (add a real server), \
                 not {}",
                command.spec.describe()
            ))
        }
    };
    let opts = collect(rest, is_service)?;
    if is_service {
        let service = build_service(opts, line, lookup)?;
        if let Some(other) = rules.services.iter().find(|s| s.key == service.key) {
            return Err(format!(
                "-A {}: virtual service already defined on line {}",
                service.key, other.line
            ));
        }
        rules.services.push(service);
    } else {
        add_dest(opts, line, rules, lookup)?;
    }
    Ok(())
}

/// Gathers a line's options, refusing repeats and those that do not belong
/// to its command (ipvsadm's `set_option` and `commands_v_options`).
fn collect(items: &[Item], is_service: bool) -> Result<LineOpts, String> {
    let command = if is_service { "-A" } else { "-a" };
    let mut o = LineOpts::default();
    let mut seen: Vec<(&'static str, String)> = Vec::new();
    // Options that are one "slot" in ipvsadm share a class: -t/-u/-f is the
    // service, -g/-m/-i the forwarding method.
    let mut once = |class: &'static str, spec: &OptSpec| -> Result<(), String> {
        if let Some((_, first)) = seen.iter().find(|(c, _)| *c == class) {
            return Err(if *first == spec.describe() {
                format!("option {first} given twice")
            } else {
                format!(
                    "option {} conflicts with {first}: only one {class}",
                    spec.describe()
                )
            });
        }
        seen.push((class, spec.describe()));
        Ok(())
    };
    for item in items {
        let spec = item.spec;
        let value = item.value.clone();
        let only = |for_service: bool| -> Result<(), String> {
            if for_service == is_service {
                Ok(())
            } else {
                Err(format!(
                    "option {} does not belong on a {command} line (it is for {})",
                    spec.describe(),
                    if for_service {
                        "-A, a virtual service"
                    } else {
                        "-a, a real server"
                    }
                ))
            }
        };
        match spec.opt {
            Opt::AddService | Opt::AddServer | Opt::OtherCommand => {
                return Err(format!(
                    "a second command {} on the line: one command per line",
                    spec.describe()
                ));
            }
            Opt::Tcp | Opt::Udp | Opt::Fwmark => {
                once("virtual service", spec)?;
                o.service = Some((spec.opt, value.unwrap_or_default()));
            }
            Opt::Sctp => return Err("SCTP services are not supported".into()),
            Opt::Ipv6 => return Err("IPv6 is not supported yet (-6)".into()),
            Opt::Pe => {
                return Err("persistence engines (--pe) are not supported".into());
            }
            Opt::Other => {
                return Err(format!(
                    "option {} has no place in a rules file",
                    spec.describe()
                ));
            }
            Opt::Scheduler => {
                only(true)?;
                once("scheduler", spec)?;
                o.scheduler = value;
            }
            Opt::SchedFlags => {
                only(true)?;
                once("set of scheduler flags", spec)?;
                o.sched_flags = value;
            }
            Opt::Persistent => {
                only(true)?;
                once("persistence", spec)?;
                o.persistent = Some(value);
            }
            Opt::Netmask => {
                only(true)?;
                once("netmask", spec)?;
                o.netmask = value;
            }
            Opt::Ops => {
                only(true)?;
                once("one-packet option", spec)?;
                o.ops = true;
            }
            Opt::RealServer => {
                only(false)?;
                once("real server", spec)?;
                o.real_server = value;
            }
            Opt::Gatewaying | Opt::Masquerading | Opt::Ipip => {
                only(false)?;
                once("forwarding method", spec)?;
                o.forward = Some(spec.opt);
            }
            Opt::Weight => {
                only(false)?;
                once("weight", spec)?;
                o.weight = value;
            }
            Opt::UThreshold => {
                only(false)?;
                once("upper threshold", spec)?;
                o.u_threshold = value;
            }
            Opt::LThreshold => {
                only(false)?;
                once("lower threshold", spec)?;
                o.l_threshold = value;
            }
            Opt::TunType | Opt::TunPort | Opt::TunNocsum | Opt::TunCsum | Opt::TunRemcsum => {
                only(false)?;
                o.first_tun_option.get_or_insert(spec.long);
                match spec.opt {
                    Opt::TunType => {
                        once("tunnel type", spec)?;
                        o.tun_type = value;
                    }
                    Opt::TunPort => {
                        once("tunnel port", spec)?;
                        o.tun_port = value;
                    }
                    _ => {
                        once("tunnel checksum option", spec)?;
                        let csum = match spec.opt {
                            Opt::TunNocsum => TunCsum::NoCsum,
                            Opt::TunCsum => TunCsum::Csum,
                            _ => TunCsum::RemCsum,
                        };
                        o.tun_csum = Some((csum, spec.long));
                    }
                }
            }
        }
    }
    Ok(o)
}

/// The service key of `-t|-u ADDR[:PORT]` or `-f MARK`; a missing port is 0.
fn service_key(service: Option<(Opt, String)>, lookup: &Lookup<'_>) -> Result<ServiceKey, String> {
    let (opt, value) = service
        .ok_or("the virtual service is missing: give -t ADDR:PORT, -u ADDR:PORT or -f MARK")?;
    let protocol = match opt {
        Opt::Fwmark => {
            let mark = number(&value, 1, u32::MAX, "firewall mark (-f)")?;
            return Ok(ServiceKey::Fwmark(mark));
        }
        Opt::Udp => Protocol::Udp,
        _ => Protocol::Tcp,
    };
    let (addr, port) = endpoint(&value, protocol, lookup)?;
    Ok(ServiceKey::Addr {
        protocol,
        addr,
        port: port.unwrap_or(0),
    })
}

fn build_service(o: LineOpts, line: usize, lookup: &Lookup<'_>) -> Result<ServiceRule, String> {
    let key = service_key(o.service, lookup)?;
    let scheduler = o.scheduler.unwrap_or_else(|| DEFAULT_SCHEDULER.to_owned());
    if !SCHEDULERS.contains(&scheduler.as_str()) {
        return Err(format!(
            "-A {key}: unknown scheduler `{scheduler}` (one of {})",
            SCHEDULERS.join(", ")
        ));
    }
    let flags = match &o.sched_flags {
        Some(arg) => sched_flags(arg, &scheduler).map_err(|e| format!("-A {key}: {e}"))?,
        None => SchedFlags::default(),
    };
    let persistence = match o.persistent {
        None => None,
        Some(timeout) => Some(Persistence {
            timeout_s: match timeout {
                Some(t) => number(&t, 1, MAX_PERSISTENT_TIMEOUT_S, "persistence timeout (-p)")?,
                None => DEFAULT_PERSISTENT_TIMEOUT_S,
            },
            netmask: DEFAULT_NETMASK,
        }),
    };
    // Parsed even without -p: a bad mask is an error either way.
    let netmask = o
        .netmask
        .map(|m| {
            m.parse::<Ipv4Addr>().map_err(|_| {
                format!("invalid netmask `{m}` (-M): expected a dotted quad such as 255.255.255.0")
            })
        })
        .transpose()?;
    let persistence = persistence.map(|p| Persistence {
        netmask: netmask.unwrap_or(p.netmask),
        ..p
    });
    if let ServiceKey::Addr { protocol, port, .. } = key {
        if port == 0 && persistence.is_none() {
            return Err(format!(
                "-A {key}: port 0 (every port) needs persistence (-p): the kernel schedules \
                 port-0 services only through persistence templates"
            ));
        }
        if o.ops && protocol != Protocol::Udp {
            return Err(format!(
                "-A {key}: one-packet scheduling (-o) is only for UDP (or fwmark) services"
            ));
        }
    }
    Ok(ServiceRule {
        key,
        scheduler,
        flags,
        persistence,
        one_packet: o.ops,
        line,
        dests: Vec::new(),
    })
}

fn add_dest(
    mut o: LineOpts,
    line: usize,
    rules: &mut Rules,
    lookup: &Lookup<'_>,
) -> Result<(), String> {
    let key = service_key(o.service.take(), lookup)?;
    let Some(real) = o.real_server.take() else {
        return Err(format!(
            "-a {key}: the real server is missing: give -r ADDR[:PORT]"
        ));
    };
    let Some(service) = rules.services.iter_mut().find(|s| s.key == key) else {
        return Err(format!(
            "-a {key}: no such virtual service (add it with -A first)"
        ));
    };
    let (addr, port) = endpoint(&real, key.names_protocol(), lookup)?;
    let method = match o.forward {
        Some(Opt::Masquerading) => Method::Nat,
        Some(Opt::Ipip) => Method::Tun(tunnel(&o)?),
        _ => Method::Dr,
    };
    if let (Some(option), false) = (o.first_tun_option, matches!(method, Method::Tun(_))) {
        return Err(format!(
            "option --{option} needs the tunnelling method -i (--ipip)"
        ));
    }
    let port = match key {
        // DR and TUN cannot change the destination port: ipvsadm sets it
        // to the service's whatever was given.
        ServiceKey::Addr { port: vport, .. } if method != Method::Nat => vport,
        ServiceKey::Addr { port: vport, .. } => port.unwrap_or(vport),
        ServiceKey::Fwmark(_) => port.unwrap_or(0),
    };
    let weight = match &o.weight {
        Some(w) => number(w, 0, MAX_WEIGHT, "weight (-w)")?,
        None => 1,
    };
    let u_threshold = match &o.u_threshold {
        Some(x) => number(x, 0, MAX_THRESHOLD, "upper threshold (-x)")?,
        None => 0,
    };
    let l_threshold = match &o.l_threshold {
        Some(y) => number(y, 0, MAX_THRESHOLD, "lower threshold (-y)")?,
        None => 0,
    };
    if l_threshold > u_threshold {
        return Err(format!(
            "lower threshold -y {l_threshold} is above upper threshold -x {u_threshold} \
             (the kernel refuses this, also when -x is not given)"
        ));
    }
    if let Some(other) = service
        .dests
        .iter()
        .find(|d| d.addr == addr && d.port == port)
    {
        return Err(format!(
            "-a {key} -r {addr}:{port}: real server already in this service (line {})",
            other.line
        ));
    }
    service.dests.push(DestRule {
        addr,
        port,
        method,
        weight,
        u_threshold,
        l_threshold,
        line,
    });
    Ok(())
}

/// The tunnel of an `-i` real server, checked as ipvsadm's
/// `tunnel_types_v_options` does: GUE needs `--tun-port`; IPIP takes no
/// tunnel option; GRE takes `--tun-nocsum` or `--tun-csum` only.
fn tunnel(o: &LineOpts) -> Result<TunConfig, String> {
    let kind = match o.tun_type.as_deref() {
        None | Some("ipip") => TunKind::Ipip,
        Some("gue") => TunKind::Gue,
        Some("gre") => TunKind::Gre,
        Some(other) => {
            return Err(format!(
                "unknown tunnel type `{other}` (--tun-type ipip, gue or gre)"
            ))
        }
    };
    let name = kind.name();
    let port = match (kind, &o.tun_port) {
        (TunKind::Gue, Some(p)) => {
            number(p, 1, u32::from(u16::MAX), "tunnel port (--tun-port)")? as u16
        }
        (TunKind::Gue, None) => {
            return Err("--tun-type gue needs --tun-port PORT".into());
        }
        (_, Some(_)) => {
            return Err(format!("--tun-port is not valid with --tun-type {name}"));
        }
        (_, None) => 0,
    };
    let csum = match (kind, o.tun_csum) {
        (_, None) => TunCsum::NoCsum,
        (TunKind::Ipip, Some((_, option))) | (TunKind::Gre, Some((TunCsum::RemCsum, option))) => {
            return Err(format!("--{option} is not valid with --tun-type {name}"));
        }
        (_, Some((csum, _))) => csum,
    };
    Ok(TunConfig { kind, port, csum })
}

/// The flags of `-b`, comma-separated, for `scheduler`
/// (ipvsadm's `parse_sched_flags`).
fn sched_flags(arg: &str, scheduler: &str) -> Result<SchedFlags, String> {
    let mut flags = SchedFlags::default();
    let mut any = false;
    // strtok(3) skips empty fields; so does ipvsadm.
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let (bit, needs) = match flag {
            "flag-1" => (&mut flags.fallback, None),
            "flag-2" => (&mut flags.port, None),
            "flag-3" => (&mut flags.flag3, None),
            "sh-fallback" => (&mut flags.fallback, Some("sh")),
            "sh-port" => (&mut flags.port, Some("sh")),
            "mh-fallback" => (&mut flags.fallback, Some("mh")),
            "mh-port" => (&mut flags.port, Some("mh")),
            other => {
                return Err(format!(
                    "unknown scheduler flag `{other}` (-b takes sh-fallback, sh-port, \
                     mh-fallback, mh-port, flag-1, flag-2, flag-3)"
                ))
            }
        };
        if let Some(needs) = needs.filter(|n| *n != scheduler) {
            return Err(format!(
                "scheduler flag {flag} needs -s {needs}, not -s {scheduler}"
            ));
        }
        *bit = true;
    }
    if !any {
        return Err("-b needs at least one scheduler flag".into());
    }
    Ok(flags)
}

/// `ADDR[:PORT]`: an IPv4 address or host name, then a port number or
/// name. ipvsadm refuses a bare number (`-t 80`) as an address.
fn endpoint(
    text: &str,
    protocol: Protocol,
    lookup: &Lookup<'_>,
) -> Result<(Ipv4Addr, Option<u16>), String> {
    if text.starts_with('[') || text.matches(':').count() > 1 {
        return Err(format!("{text}: IPv6 is not supported yet"));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (text, None),
    };
    if host.is_empty() || text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not ADDRESS[:PORT]"));
    }
    let addr = match host.parse::<Ipv4Addr>() {
        Ok(a) => a,
        // Digits and dots are a mistyped address, not a name to ask DNS for.
        Err(_) if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
            return Err(format!("`{host}` is not an IPv4 address"));
        }
        // Only a plausible host name goes to the resolver: a word such as
        // `-m` is an option that took the place of a missing address.
        Err(_)
            if host.starts_with(['-', '.'])
                || !host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) =>
        {
            return Err(format!("`{text}` is not ADDRESS[:PORT]"));
        }
        Err(_) => (lookup.host)(host)?,
    };
    let port = port.map(|p| port_number(p, protocol, lookup)).transpose()?;
    Ok((addr, port))
}

fn port_number(text: &str, protocol: Protocol, lookup: &Lookup<'_>) -> Result<u16, String> {
    if text.is_empty() {
        return Err("empty port after ':'".into());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u16>()
            .map_err(|_| format!("port {text} is out of range (0 to 65535)"));
    }
    lookup.port(text, protocol).ok_or_else(|| {
        format!(
            "unknown port name `{text}` for {} (neither in {} nor a common name)",
            protocol.name(),
            names::ETC_SERVICES
        )
    })
}

/// A decimal number in `min..=max` (ipvsadm's `string_to_number`).
fn number(text: &str, min: u32, max: u32, what: &str) -> Result<u32, String> {
    text.parse::<u64>()
        .ok()
        .filter(|n| (u64::from(min)..=u64::from(max)).contains(n))
        .map(|n| n as u32)
        .ok_or_else(|| format!("invalid {what} `{text}`: expected {min} to {max}"))
}

#[cfg(test)]
mod tests;
