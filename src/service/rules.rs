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
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::command::{self, Command, Lookup};
use super::names;
pub use crate::config::service::{Protocol, ServiceKey};

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
    pub(crate) fn names(self, scheduler: &str, with_flag3: bool) -> String {
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

    /// Applies one command that changes the services (see
    /// [`Command::changes_rules`]), or changes nothing and says why.
    /// `-E` keeps the service's real servers; `-a` appends; `-C` empties.
    pub fn apply(&mut self, command: &Command) -> Result<(), ApplyError> {
        let service =
            |rules: &mut Rules, key: &ServiceKey| rules.services.iter().position(|s| s.key == *key);
        match command {
            Command::AddService(new) => {
                if let Some(i) = service(self, &new.key) {
                    let line = self.services[i].line;
                    return Err(ApplyError::ServiceExists { line });
                }
                self.services.push(new.clone());
            }
            Command::EditService(new) => {
                let i = service(self, &new.key).ok_or(ApplyError::NoService)?;
                let dests = std::mem::take(&mut self.services[i].dests);
                self.services[i] = ServiceRule {
                    dests,
                    ..new.clone()
                };
            }
            Command::DeleteService(key) => {
                let i = service(self, key).ok_or(ApplyError::NoService)?;
                self.services.remove(i);
            }
            Command::AddDest(key, new) => {
                let i = service(self, key).ok_or(ApplyError::ServiceNotDefined)?;
                let dests = &mut self.services[i].dests;
                if let Some(d) = dests
                    .iter()
                    .find(|d| (d.addr, d.port) == (new.addr, new.port))
                {
                    return Err(ApplyError::DestExists { line: d.line });
                }
                dests.push(new.clone());
            }
            Command::EditDest(key, new) => {
                let i = service(self, key).ok_or(ApplyError::ServiceNotDefined)?;
                let d = self.services[i]
                    .dests
                    .iter_mut()
                    .find(|d| (d.addr, d.port) == (new.addr, new.port))
                    .ok_or(ApplyError::NoDest)?;
                *d = new.clone();
            }
            Command::DeleteDest(key, addr, port) => {
                let i = service(self, key).ok_or(ApplyError::ServiceNotDefined)?;
                let dests = &mut self.services[i].dests;
                let j = dests
                    .iter()
                    .position(|d| (d.addr, d.port) == (*addr, *port))
                    .ok_or(ApplyError::NoDest)?;
                dests.remove(j);
            }
            Command::Clear => self.services.clear(),
            _ => return Err(ApplyError::NotAChange),
        }
        Ok(())
    }

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
pub(crate) fn write_service(
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

/// The words of one command line of a rules file or a restore: up to a
/// `#` comment, a leading `ipvsadm` dropped (pasted commands load too).
pub(crate) fn command_words(raw: &str) -> Vec<&str> {
    let mut words: Vec<&str> = raw
        .split_whitespace()
        .take_while(|w| !w.starts_with('#'))
        .collect();
    if words.first() == Some(&"ipvsadm") {
        words.remove(0);
    }
    words
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

/// One line of a rules file: blank, or an `-A` or `-a` command.
fn parse_line(
    raw: &str,
    line: usize,
    rules: &mut Rules,
    lookup: &Lookup<'_>,
) -> Result<(), String> {
    let words = command_words(raw);
    if words.is_empty() {
        return Ok(());
    }
    let cmd = command::parse(&words, line, lookup)?;
    let (flag, key) = match &cmd {
        Command::AddService(s) => ("-A", s.key),
        Command::AddDest(key, _) => ("-a", *key),
        _ => {
            return Err(format!(
                "{} is not allowed in a rules file: it holds only -A (add a virtual service) \
                 and -a (add a real server) lines",
                cmd.describe()
            ))
        }
    };
    rules.apply(&cmd).map_err(|e| match (e, &cmd) {
        (ApplyError::ServiceExists { line }, _) => {
            format!("-A {key}: virtual service already defined on line {line}")
        }
        (ApplyError::ServiceNotDefined, _) => {
            format!("-a {key}: no such virtual service (add it with -A first)")
        }
        (ApplyError::DestExists { line }, Command::AddDest(_, d)) => format!(
            "-a {key} -r {}:{}: real server already in this service (line {line})",
            d.addr, d.port
        ),
        (e, _) => format!("{flag} {key}: {e}"),
    })
}

#[cfg(test)]
mod tests;
