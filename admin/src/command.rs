//! ipvsadm's command line (ipvsadm 1.31 `parse_options` and
//! `process_options`): one command and its options, parsed and checked on
//! their own, before any table is consulted.
//!
//! The contract: [`Command::parse`] takes the words of one ipvsadm command
//! (`-A -t 10.0.0.100:80 -s rr`, `-L -n --stats`, `--set 900 120 300`) and
//! returns a [`Command`] or a one-line message naming what is wrong. What
//! ipvsadm checks before it talks to the kernel is checked here:
//!
//! - the command comes first (popt's first option must be one);
//! - options are split as popt does (`--name value`, `--name=value`,
//!   bundled `-gw5`), each at most once, with one service (`-t|-u|-f`) and
//!   one forwarding method (`-g|-m|-i`);
//! - each option must be allowed with the command (ipvsadm's
//!   `commands_v_options` table: required, illegal, or one of an exclusive
//!   set, checked in the table's order as `generic_opt_check` does);
//! - then the per-command checks of `process_options` and, for `-A`, `-E`,
//!   `-a` and `-e`, those of the rules files (see `rules`): the values of
//!   every option, ports, thresholds, tunnel options.
//!
//! What a command does to a table is [`Rules::apply`](super::Rules::apply);
//! what it shows is the control plane's.
//!
//! As in ipvsadm, `-E` and `-e` replace the whole service or real server:
//! an option left out takes its default (`-E` without `-s` sets wlc and
//! without `-p` ends persistence; `-e` without `-w` sets weight 1).

use std::cell::OnceCell;
use std::net::Ipv4Addr;

use super::names::{self, ServiceNames};
use super::rules::{
    ApplyError, DestRule, Method, Persistence, Protocol, Rules, SchedFlags, ServiceKey,
    ServiceRule, TunConfig, TunCsum, TunKind, DEFAULT_NETMASK, DEFAULT_PERSISTENT_TIMEOUT_S,
    DEFAULT_SCHEDULER, MAX_PERSISTENT_TIMEOUT_S, MAX_THRESHOLD, MAX_WEIGHT, SCHEDULERS,
};

/// What `-L` lists, and how (ipvsadm's `FMT_*` flags and list options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListOptions {
    /// `-n`: addresses and ports as numbers.
    pub numeric: bool,
    /// `-c`: the connections instead of the services.
    pub connections: bool,
    /// `-t|-u|-f`: this service only.
    pub service: Option<ServiceKey>,
    /// `--timeout`: the TCP, TCP FIN and UDP timeouts.
    pub timeout: bool,
    /// `--daemon`: the sync daemons.
    pub daemon: bool,
    pub stats: bool,
    pub rate: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    /// `--nosort`: the table's order instead of ipvsadm's sorted one.
    pub nosort: bool,
    /// `-X`: counters in full instead of K, M, G, T.
    pub exact: bool,
    pub tun_info: bool,
}

/// The timeouts of `--set tcp tcpfin udp`, in seconds; 0 leaves one as
/// it is (ipvsadm's `ipvs_set_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// One ipvsadm command, its values checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-A`
    AddService(ServiceRule),
    /// `-E`: the whole service replaced but its real servers (which the
    /// value's `dests` leaves empty).
    EditService(ServiceRule),
    /// `-D`
    DeleteService(ServiceKey),
    /// `-a`
    AddDest(ServiceKey, DestRule),
    /// `-e`
    EditDest(ServiceKey, DestRule),
    /// `-d`: the real server with this address and port.
    DeleteDest(ServiceKey, Ipv4Addr, u16),
    /// `-C`
    Clear,
    /// `-Z`: one service's counters, or all.
    Zero(Option<ServiceKey>),
    /// `-L`, `-l`, or no command at all.
    List(ListOptions),
    /// `-S`; `true` with `-n`.
    Save(bool),
    /// `-R`: the commands follow on standard input.
    Restore,
    /// `--set`
    SetTimeouts(Timeouts),
    /// `--start-daemon master|backup [--mcast-interface IF] [--syncid N]
    /// [--sync-maxlen N] [--mcast-group A] [--mcast-port N] [--mcast-ttl N]`
    StartDaemon(DaemonArgs),
    /// `--stop-daemon master|backup`: true for master.
    StopDaemon(bool),
    /// `-h`
    Help,
    /// `-v`
    Version,
    /// dlvsadm's `--drain` (true) and `--undrain` (false), no ipvsadm
    /// command: `[bgp]` withdraws (announces again) the director's
    /// virtual addresses; forwarding goes on.
    Drain(bool),
}

/// `--start-daemon`'s values, as ipvsadm takes them (the interface
/// defaults to ipvsadm's "eth0", the syncid to 0; the rest to the
/// kernel's defaults when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonArgs {
    pub master: bool,
    pub mcast_ifn: String,
    pub syncid: u8,
    pub maxlen: Option<u16>,
    pub group: Option<Ipv4Addr>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
}

impl Command {
    /// Parses one command's words (without the program name); port names
    /// come from `/etc/services`, host names from the system resolver.
    /// No words at all is `-L`, as for ipvsadm.
    pub fn parse(words: &[&str]) -> Result<Command, String> {
        let services = OnceCell::new();
        let lookup = Lookup {
            services: &services,
            host: &names::resolve_host,
        };
        parse(words, 0, &lookup)
    }

    /// The command's option as ipvsadm spells it, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Command::AddService(_) => "-A (--add-service)",
            Command::EditService(_) => "-E (--edit-service)",
            Command::DeleteService(_) => "-D (--delete-service)",
            Command::AddDest(..) => "-a (--add-server)",
            Command::EditDest(..) => "-e (--edit-server)",
            Command::DeleteDest(..) => "-d (--delete-server)",
            Command::Clear => "-C (--clear)",
            Command::Zero(_) => "-Z (--zero)",
            Command::List(_) => "-L (--list)",
            Command::Save(_) => "-S (--save)",
            Command::Restore => "-R (--restore)",
            Command::SetTimeouts(_) => "--set",
            Command::StartDaemon(_) => "--start-daemon",
            Command::StopDaemon(_) => "--stop-daemon",
            Command::Drain(true) => "--drain",
            Command::Drain(false) => "--undrain",
            Command::Help => "-h (--help)",
            Command::Version => "-v (--version)",
        }
    }

    /// Whether it changes the services (and so is refused by a read-only
    /// caller, and wrapped in one change by `-R`).
    pub fn changes_rules(&self) -> bool {
        matches!(
            self,
            Command::AddService(_)
                | Command::EditService(_)
                | Command::DeleteService(_)
                | Command::AddDest(..)
                | Command::EditDest(..)
                | Command::DeleteDest(..)
                | Command::Clear
        )
    }
}

/// Name lookups, replaceable in tests (no DNS there).
pub(crate) struct Lookup<'a> {
    /// Loaded on the first port name: `-n` files never read /etc/services.
    pub(crate) services: &'a OnceCell<ServiceNames>,
    pub(crate) host: &'a dyn Fn(&str) -> Result<Ipv4Addr, String>,
}

impl Lookup<'_> {
    fn port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.services
            .get_or_init(ServiceNames::system)
            .port(name, protocol)
    }
}

// ---------------------------------------------------------------------------
// Options: ipvsadm 1.31's popt table.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    /// `-p [TIMEOUT]`: popt's POPT_ARGFLAG_OPTIONAL takes the next word
    /// unless it starts with '-'.
    Optional,
}

/// The commands, in the order of ipvsadm's `commands_v_options` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
    Help,
    Version,
    /// dlvsadm's own (no ipvsadm row): `--drain`, `--undrain`.
    Drain,
    Undrain,
}

/// ipvsadm's option classes (`OPTC_*`), in the order of the table's
/// columns; one class may have several options (`-t|-u|-f`, `-g|-m|-i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Mcast,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    SyncId,
    Exact,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

/// ipvsadm's `commands_v_options`, a row per command in [`Kind`] order and
/// a column per [`Class`]: `+` required, `x` illegal, `1` at most one of
/// the row's `1`s, ` ` optional.
const ALLOWED: [&[u8; 34]; 14] = [
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // -A
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // -E
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // -D
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // -C
    b" 11xxxxxxxxx11       xxxxxxx xxxxx", // -L
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // -a
    b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx", // -d
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // -e
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // --set
    b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx", // --start-daemon
    b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx", // --stop-daemon
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // -R
    b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // -S
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // -Z
];

const CLASS_NAMES: [&str; 34] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

const COMMAND_NAMES: [&str; 14] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Command(Kind),
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
    /// A flag of listing or of the sync daemon, with its class.
    Flag(Class),
    /// A valued option of the sync daemon, with its class.
    Value(Class),
    /// `--sort`: the default, accepted and ignored as ipvsadm does.
    Sort,
}

impl Opt {
    fn class(self) -> Option<Class> {
        Some(match self {
            Opt::Command(_) | Opt::Sort | Opt::Ipv6 | Opt::Sctp => return None,
            Opt::Tcp | Opt::Udp | Opt::Fwmark => Class::Service,
            Opt::Scheduler => Class::Scheduler,
            Opt::SchedFlags => Class::SchedFlags,
            Opt::Persistent => Class::Persistent,
            Opt::Netmask => Class::Netmask,
            Opt::Ops => Class::Ops,
            Opt::Pe => Class::Pe,
            Opt::RealServer => Class::Server,
            Opt::Gatewaying | Opt::Masquerading | Opt::Ipip => Class::Forward,
            Opt::Weight => Class::Weight,
            Opt::UThreshold => Class::UThreshold,
            Opt::LThreshold => Class::LThreshold,
            Opt::TunType => Class::TunType,
            Opt::TunPort => Class::TunPort,
            Opt::TunNocsum => Class::TunNocsum,
            Opt::TunCsum => Class::TunCsum,
            Opt::TunRemcsum => Class::TunRemcsum,
            Opt::Flag(c) | Opt::Value(c) => c,
        })
    }
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

/// ipvsadm 1.31's options (`parse_options`).
const OPTIONS: &[OptSpec] = &[
    spec(Some('A'), "add-service", Arg::None, Opt::Command(Kind::Add)),
    spec(
        Some('E'),
        "edit-service",
        Arg::None,
        Opt::Command(Kind::Edit),
    ),
    spec(
        Some('D'),
        "delete-service",
        Arg::None,
        Opt::Command(Kind::Del),
    ),
    spec(Some('C'), "clear", Arg::None, Opt::Command(Kind::Flush)),
    spec(Some('L'), "list", Arg::None, Opt::Command(Kind::List)),
    spec(Some('l'), "list", Arg::None, Opt::Command(Kind::List)),
    spec(Some('Z'), "zero", Arg::None, Opt::Command(Kind::Zero)),
    spec(
        Some('a'),
        "add-server",
        Arg::None,
        Opt::Command(Kind::AddDest),
    ),
    spec(
        Some('e'),
        "edit-server",
        Arg::None,
        Opt::Command(Kind::EditDest),
    ),
    spec(
        Some('d'),
        "delete-server",
        Arg::None,
        Opt::Command(Kind::DelDest),
    ),
    spec(None, "set", Arg::None, Opt::Command(Kind::Timeout)),
    spec(Some('h'), "help", Arg::None, Opt::Command(Kind::Help)),
    spec(Some('v'), "version", Arg::None, Opt::Command(Kind::Version)),
    spec(None, "drain", Arg::None, Opt::Command(Kind::Drain)),
    spec(None, "undrain", Arg::None, Opt::Command(Kind::Undrain)),
    spec(Some('R'), "restore", Arg::None, Opt::Command(Kind::Restore)),
    spec(Some('S'), "save", Arg::None, Opt::Command(Kind::Save)),
    spec(
        None,
        "start-daemon",
        Arg::Required,
        Opt::Command(Kind::StartDaemon),
    ),
    spec(
        None,
        "stop-daemon",
        Arg::Required,
        Opt::Command(Kind::StopDaemon),
    ),
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
    spec(Some('n'), "numeric", Arg::None, Opt::Flag(Class::Numeric)),
    spec(
        Some('c'),
        "connection",
        Arg::None,
        Opt::Flag(Class::Connection),
    ),
    spec(
        None,
        "mcast-interface",
        Arg::Required,
        Opt::Value(Class::Mcast),
    ),
    spec(None, "syncid", Arg::Required, Opt::Value(Class::SyncId)),
    spec(None, "timeout", Arg::None, Opt::Flag(Class::Timeout)),
    spec(None, "daemon", Arg::None, Opt::Flag(Class::Daemon)),
    spec(None, "stats", Arg::None, Opt::Flag(Class::Stats)),
    spec(None, "rate", Arg::None, Opt::Flag(Class::Rate)),
    spec(None, "thresholds", Arg::None, Opt::Flag(Class::Thresholds)),
    spec(
        None,
        "persistent-conn",
        Arg::None,
        Opt::Flag(Class::PersistentConn),
    ),
    spec(None, "nosort", Arg::None, Opt::Flag(Class::NoSort)),
    spec(None, "sort", Arg::None, Opt::Sort),
    spec(Some('X'), "exact", Arg::None, Opt::Flag(Class::Exact)),
    spec(Some('6'), "ipv6", Arg::None, Opt::Ipv6),
    spec(Some('o'), "ops", Arg::None, Opt::Ops),
    spec(None, "pe", Arg::Required, Opt::Pe),
    spec(Some('b'), "sched-flags", Arg::Required, Opt::SchedFlags),
    spec(
        None,
        "mcast-group",
        Arg::Required,
        Opt::Value(Class::McastGroup),
    ),
    spec(
        None,
        "mcast-port",
        Arg::Required,
        Opt::Value(Class::McastPort),
    ),
    spec(
        None,
        "mcast-ttl",
        Arg::Required,
        Opt::Value(Class::McastTtl),
    ),
    spec(
        None,
        "sync-maxlen",
        Arg::Required,
        Opt::Value(Class::SyncMaxlen),
    ),
    spec(None, "tun-info", Arg::None, Opt::Flag(Class::TunInfo)),
    spec(None, "tun-type", Arg::Required, Opt::TunType),
    spec(None, "tun-port", Arg::Required, Opt::TunPort),
    spec(None, "tun-nocsum", Arg::None, Opt::TunNocsum),
    spec(None, "tun-csum", Arg::None, Opt::TunCsum),
    spec(None, "tun-remcsum", Arg::None, Opt::TunRemcsum),
];

/// Every option the command line takes: its short letter, if it has one,
/// and its long name (`dlvsadm --help` lists them all).
pub fn options() -> impl Iterator<Item = (Option<char>, &'static str)> {
    OPTIONS.iter().map(|o| (o.short, o.long))
}

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
/// with an attached value (`-w5`). Words that are no option's value are
/// popt's leftover arguments (only `--set` takes them).
fn tokenize<'w>(words: &[&'w str]) -> Result<(Vec<Item>, Vec<&'w str>), String> {
    let mut items = Vec::new();
    let mut rest = Vec::new();
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
            rest.push(word);
        }
    }
    Ok((items, rest))
}

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
// Words to a command.

/// The options of one command, each at most once.
#[derive(Default)]
struct LineOpts {
    /// The classes given, a bit each.
    present: u64,
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
    /// The sync daemon's values.
    daemon: Vec<(Class, String)>,
}

impl LineOpts {
    fn has(&self, class: Class) -> bool {
        self.present & (1 << class as u32) != 0
    }
}

/// Parses one command's words; `line` (1-based; 0 on a command line) is
/// kept in the rules it builds.
pub(crate) fn parse(words: &[&str], line: usize, lookup: &Lookup<'_>) -> Result<Command, String> {
    if words.is_empty() {
        return Ok(Command::List(ListOptions::default()));
    }
    let (items, rest) = tokenize(words)?;
    let Some((first, options)) = items.split_first() else {
        return Err(format!("unexpected argument `{}`", rest[0]));
    };
    let Opt::Command(kind) = first.spec.opt else {
        return Err(format!(
            "a command comes first (-A, -E, -D, -a, -e, -d, -C, -L, -Z, -S, -R, --set), not {}",
            first.spec.describe()
        ));
    };
    match kind {
        Kind::Help => return Ok(Command::Help),
        Kind::Version => return Ok(Command::Version),
        Kind::Drain | Kind::Undrain => {
            if let Some(o) = options.first() {
                return Err(format!(
                    "{} takes no option, not {}",
                    first.spec.describe(),
                    o.spec.describe()
                ));
            }
            if let Some(w) = rest.first() {
                return Err(format!("unexpected argument `{w}`"));
            }
            return Ok(Command::Drain(kind == Kind::Drain));
        }
        _ => {}
    }
    let o = collect(options)?;
    check_allowed(kind, &o)?;
    let timeouts = match (kind, rest.as_slice()) {
        (Kind::Timeout, [tcp, fin, udp]) => Some(Timeouts {
            tcp: number(tcp, 0, MAX_PERSISTENT_TIMEOUT_S, "TCP timeout")?,
            tcp_fin: number(fin, 0, MAX_PERSISTENT_TIMEOUT_S, "TCP FIN timeout")?,
            udp: number(udp, 0, MAX_PERSISTENT_TIMEOUT_S, "UDP timeout")?,
        }),
        (Kind::Timeout, _) => return Err("--set option requires 3 timeout values".into()),
        (_, [word, ..]) => return Err(format!("unexpected argument `{word}`")),
        (_, []) => None,
    };
    let key = |o: &mut LineOpts| o.service.take().map(|s| service_key(s, lookup)).transpose();
    let mut o = o;
    Ok(match kind {
        Kind::Add => Command::AddService(build_service(o, line, lookup)?),
        Kind::Edit => Command::EditService(build_service(o, line, lookup)?),
        Kind::Del => Command::DeleteService(required(key(&mut o)?)?),
        Kind::Flush => Command::Clear,
        Kind::List
            if (o.has(Class::Connection) || o.has(Class::Timeout) || o.has(Class::Daemon))
                && (o.has(Class::Stats) || o.has(Class::Rate) || o.has(Class::Thresholds))
                || (o.has(Class::Timeout) || o.has(Class::Daemon))
                    && o.has(Class::PersistentConn) =>
        {
            // ipvsadm's own check after the table's (process_options).
            return Err("options conflicts in the list command".into());
        }
        Kind::List => Command::List(ListOptions {
            numeric: o.has(Class::Numeric),
            connections: o.has(Class::Connection),
            service: key(&mut o)?,
            timeout: o.has(Class::Timeout),
            daemon: o.has(Class::Daemon),
            stats: o.has(Class::Stats),
            rate: o.has(Class::Rate),
            thresholds: o.has(Class::Thresholds),
            persistent_conn: o.has(Class::PersistentConn),
            nosort: o.has(Class::NoSort),
            exact: o.has(Class::Exact),
            tun_info: o.has(Class::TunInfo),
        }),
        Kind::AddDest | Kind::EditDest => {
            let key = required(key(&mut o)?)?;
            let dest = dest_rule(o, key, line, lookup)?;
            if kind == Kind::AddDest {
                Command::AddDest(key, dest)
            } else {
                Command::EditDest(key, dest)
            }
        }
        Kind::DelDest => {
            let key = required(key(&mut o)?)?;
            let real = o.real_server.unwrap_or_default();
            let (addr, port) = endpoint(&real, key.names_protocol(), lookup)?;
            let port = port.unwrap_or(match key {
                ServiceKey::Addr { port, .. } => port,
                ServiceKey::Fwmark(_) => 0,
            });
            Command::DeleteDest(key, addr, port)
        }
        Kind::Timeout => Command::SetTimeouts(timeouts.unwrap_or_default()),
        Kind::StartDaemon | Kind::StopDaemon => {
            let state = first.value.clone().unwrap_or_default();
            if state != "master" && state != "backup" {
                return Err(format!(
                    "illegal {} parameter `{state}`: master or backup",
                    COMMAND_NAMES[kind as usize]
                ));
            }
            let master = state == "master";
            if kind == Kind::StartDaemon {
                Command::StartDaemon(daemon_args(master, &o.daemon)?)
            } else {
                Command::StopDaemon(master)
            }
        }
        Kind::Restore => Command::Restore,
        Kind::Save => Command::Save(o.has(Class::Numeric)),
        Kind::Zero => Command::Zero(key(&mut o)?),
        Kind::Help => Command::Help,
        Kind::Version => Command::Version,
        Kind::Drain | Kind::Undrain => Command::Drain(kind == Kind::Drain),
    })
}

/// `--start-daemon`'s values, with ipvsadm's checks and messages.
fn daemon_args(master: bool, values: &[(Class, String)]) -> Result<DaemonArgs, String> {
    let mut d = DaemonArgs {
        master,
        mcast_ifn: "eth0".into(),
        syncid: 0,
        maxlen: None,
        group: None,
        port: None,
        ttl: None,
    };
    let num = |v: &str, max: u32, what: &str| -> Result<u32, String> {
        v.parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| format!("illegal {what} specified"))
    };
    for (class, v) in values {
        match class {
            Class::Mcast => d.mcast_ifn = v.chars().take(15).collect(),
            Class::SyncId => {
                d.syncid = v
                    .parse::<u8>()
                    .map_err(|_| "illegal syncid specified".to_string())?
            }
            Class::SyncMaxlen => d.maxlen = Some(num(v, 65535 - 20 - 8, "sync-maxlen")? as u16),
            Class::McastPort => d.port = Some(num(v, 65535, "mcast-port")? as u16),
            Class::McastTtl => d.ttl = Some(num(v, 255, "mcast-ttl")? as u8),
            Class::McastGroup => {
                if v.contains(':') {
                    return Err(format!(
                        "IPv6 mcast-group `{v}': dlvs's connection sync is IPv4 only"
                    ));
                }
                match v.parse::<Ipv4Addr>() {
                    Ok(a) if a.is_multicast() => d.group = Some(a),
                    _ => return Err(format!("invalid IPv4 mcast-group `{v}'")),
                }
            }
            _ => {}
        }
    }
    Ok(d)
}

/// The service of a command whose table row requires one (so the table
/// check has already refused its absence).
fn required(key: Option<ServiceKey>) -> Result<ServiceKey, String> {
    key.ok_or_else(|| {
        "the virtual service is missing: give -t ADDR:PORT, -u ADDR:PORT or -f MARK".into()
    })
}

/// ipvsadm's `generic_opt_check`: the command's row of
/// `commands_v_options`, column by column in the table's order (so the
/// same mistake gets the same message as from ipvsadm).
fn check_allowed(kind: Kind, o: &LineOpts) -> Result<(), String> {
    let row = ALLOWED[kind as usize];
    let command = COMMAND_NAMES[kind as usize];
    let mut exclusive: Option<usize> = None;
    for (j, cell) in row.iter().enumerate() {
        let given = o.present & (1 << j) != 0;
        match (cell, given) {
            (b'+', false) => {
                return Err(format!(
                    "You need to supply the '{}' option for the '{command}' command",
                    CLASS_NAMES[j]
                ))
            }
            (b'x', true) => {
                return Err(format!(
                    "Illegal '{}' option with the '{command}' command",
                    CLASS_NAMES[j]
                ))
            }
            (b'1', true) => {
                if let Some(first) = exclusive {
                    return Err(format!(
                        "The option '{}' conflicts with the '{}' option in the '{command}' command",
                        CLASS_NAMES[j], CLASS_NAMES[first]
                    ));
                }
                exclusive = Some(j);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Gathers a command's options, refusing repeats (ipvsadm's `set_option`)
/// and what dlvs does not support.
fn collect(items: &[Item]) -> Result<LineOpts, String> {
    let mut o = LineOpts::default();
    let mut seen: Vec<(Class, String)> = Vec::new();
    for item in items {
        let spec = item.spec;
        let value = item.value.clone();
        match spec.opt {
            Opt::Command(_) => {
                return Err(format!(
                    "a second command {}: one command at a time",
                    spec.describe()
                ));
            }
            Opt::Sctp => return Err("SCTP services are not supported".into()),
            Opt::Ipv6 => return Err("IPv6 is not supported yet (-6)".into()),
            Opt::Pe => {
                return Err("persistence engines (--pe) are not supported".into());
            }
            _ => {}
        }
        let Some(class) = spec.opt.class() else {
            continue;
        };
        // Options that are one class in ipvsadm (-t/-u/-f, -g/-m/-i) are
        // one slot; so are the three tunnel checksum options (ipvsadm's
        // tunnel table refuses two of them).
        let slot = match class {
            Class::TunCsum | Class::TunRemcsum => Class::TunNocsum,
            c => c,
        };
        if let Some((_, first)) = seen.iter().find(|(c, _)| *c == slot) {
            return Err(if *first == spec.describe() {
                format!("option {first} given twice")
            } else {
                let what = match slot {
                    Class::Service => "virtual service",
                    Class::Forward => "forwarding method",
                    _ => "tunnel checksum option",
                };
                format!(
                    "option {} conflicts with {first}: only one {what}",
                    spec.describe()
                )
            });
        }
        seen.push((slot, spec.describe()));
        o.present |= 1 << class as u32;
        match spec.opt {
            Opt::Tcp | Opt::Udp | Opt::Fwmark => {
                o.service = Some((spec.opt, value.unwrap_or_default()));
            }
            Opt::Scheduler => o.scheduler = value,
            Opt::SchedFlags => o.sched_flags = value,
            Opt::Persistent => o.persistent = Some(value),
            Opt::Netmask => o.netmask = value,
            Opt::Ops => o.ops = true,
            Opt::RealServer => o.real_server = value,
            Opt::Gatewaying | Opt::Masquerading | Opt::Ipip => o.forward = Some(spec.opt),
            Opt::Weight => o.weight = value,
            Opt::UThreshold => o.u_threshold = value,
            Opt::LThreshold => o.l_threshold = value,
            Opt::TunType | Opt::TunPort | Opt::TunNocsum | Opt::TunCsum | Opt::TunRemcsum => {
                o.first_tun_option.get_or_insert(spec.long);
                match spec.opt {
                    Opt::TunType => o.tun_type = value,
                    Opt::TunPort => o.tun_port = value,
                    Opt::TunNocsum => o.tun_csum = Some((TunCsum::NoCsum, spec.long)),
                    Opt::TunCsum => o.tun_csum = Some((TunCsum::Csum, spec.long)),
                    _ => o.tun_csum = Some((TunCsum::RemCsum, spec.long)),
                }
            }
            Opt::Value(c) => o.daemon.push((c, value.unwrap_or_default())),
            // Flags: their class says it all.
            _ => {}
        }
    }
    Ok(o)
}

/// The service key of `-t|-u ADDR[:PORT]` or `-f MARK`; a missing port is 0.
fn service_key((opt, value): (Opt, String), lookup: &Lookup<'_>) -> Result<ServiceKey, String> {
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
    let key = required(o.service.map(|s| service_key(s, lookup)).transpose()?)?;
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

/// The real server of `-a` or `-e` (a whole one: what is not given takes
/// ipvsadm's default).
fn dest_rule(
    o: LineOpts,
    key: ServiceKey,
    line: usize,
    lookup: &Lookup<'_>,
) -> Result<DestRule, String> {
    let real = o.real_server.clone().unwrap_or_default();
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
    Ok(DestRule {
        addr,
        port,
        method,
        weight,
        u_threshold,
        l_threshold,
        line,
    })
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

impl Rules {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{ApplyError, Rules};

    fn cmd(line: &str) -> Result<Command, String> {
        let services = OnceCell::new();
        let _ = services.set(ServiceNames::from_services_text("http 80/tcp\n"));
        let lookup = Lookup {
            services: &services,
            host: &|h: &str| Err(format!("no DNS here: {h}")),
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        parse(&words, 0, &lookup)
    }

    fn ok(line: &str) -> Command {
        cmd(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    const WEB: ServiceKey = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: Ipv4Addr::new(10, 0, 0, 100),
        port: 80,
    };

    #[test]
    fn no_words_list_and_list_options_are_read() {
        assert_eq!(ok(""), Command::List(ListOptions::default()));
        let Command::List(l) = ok("-L -n --stats -X --nosort -t 10.0.0.100:http") else {
            panic!()
        };
        assert!(l.numeric && l.stats && l.exact && l.nosort && !l.rate);
        assert_eq!(l.service, Some(WEB));
        assert_eq!(ok("-l --sort"), Command::List(ListOptions::default()));
        let Command::List(l) = ok("-Ln -c --persistent-conn") else {
            panic!()
        };
        assert!(l.connections && l.persistent_conn && l.numeric);
    }

    #[test]
    fn the_table_refuses_as_ipvsadm_does() {
        assert_eq!(
            cmd("-L -t 10.0.0.100:80 -c").unwrap_err(),
            "The option 'service-address' conflicts with the 'connection' option in the 'list' command"
        );
        assert_eq!(
            cmd("-L -c --stats").unwrap_err(),
            "options conflicts in the list command"
        );
        assert_eq!(
            cmd("-L --timeout --persistent-conn").unwrap_err(),
            "options conflicts in the list command"
        );
        assert_eq!(
            cmd("-L --daemon --timeout").unwrap_err(),
            "The option 'daemon' conflicts with the 'timeout' option in the 'list' command"
        );
        assert_eq!(
            cmd("-d -t 10.0.0.100:80").unwrap_err(),
            "You need to supply the 'real-server' option for the 'delete-server' command"
        );
        assert_eq!(
            cmd("-D -t 10.0.0.100:80 -s rr").unwrap_err(),
            "Illegal 'scheduler' option with the 'delete-service' command"
        );
        assert_eq!(
            cmd("-C -n").unwrap_err(),
            "Illegal 'numeric' option with the 'flush' command"
        );
        assert_eq!(
            cmd("-S -c").unwrap_err(),
            "Illegal 'connection' option with the 'save' command"
        );
        assert_eq!(cmd("-Z x").unwrap_err(), "unexpected argument `x`");
        assert_eq!(
            cmd("-t 10.0.0.100:80").unwrap_err(),
            "a command comes first (-A, -E, -D, -a, -e, -d, -C, -L, -Z, -S, -R, --set), not -t \
             (--tcp-service)"
        );
    }

    #[test]
    fn edits_are_whole_with_ipvsadm_defaults() {
        let Command::EditService(s) = ok("-E -t 10.0.0.100:80") else {
            panic!()
        };
        assert_eq!((s.scheduler.as_str(), s.persistence), ("wlc", None));
        let Command::EditDest(k, d) = ok("-e -t 10.0.0.100:80 -r 10.0.0.11:8080") else {
            panic!()
        };
        // DR (the default method) takes the service's port.
        assert_eq!(
            (k, d.addr, d.port, d.weight),
            (WEB, Ipv4Addr::new(10, 0, 0, 11), 80, 1)
        );
        assert_eq!(d.method, Method::Dr);
    }

    #[test]
    fn delete_server_keeps_the_port_given() {
        assert_eq!(
            ok("-d -t 10.0.0.100:80 -r 10.0.0.11:8080"),
            Command::DeleteDest(WEB, Ipv4Addr::new(10, 0, 0, 11), 8080)
        );
        assert_eq!(
            ok("-d -t 10.0.0.100:80 -r 10.0.0.11"),
            Command::DeleteDest(WEB, Ipv4Addr::new(10, 0, 0, 11), 80)
        );
        assert_eq!(
            ok("-d -f 7 -r 10.0.0.11"),
            Command::DeleteDest(ServiceKey::Fwmark(7), Ipv4Addr::new(10, 0, 0, 11), 0)
        );
    }

    #[test]
    fn other_commands() {
        assert_eq!(
            ok("--set 900 120 300"),
            Command::SetTimeouts(Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300
            })
        );
        assert_eq!(
            cmd("--set 900 120").unwrap_err(),
            "--set option requires 3 timeout values"
        );
        assert_eq!(ok("-Z"), Command::Zero(None));
        assert_eq!(ok("-Z -t 10.0.0.100:80"), Command::Zero(Some(WEB)));
        assert_eq!(ok("-S -n"), Command::Save(true));
        assert_eq!(ok("-R"), Command::Restore);
        assert_eq!(ok("-C"), Command::Clear);
        assert_eq!(ok("-h"), Command::Help);
        assert_eq!(ok("--version"), Command::Version);
        assert_eq!(
            ok("--start-daemon master --syncid 3"),
            Command::StartDaemon(DaemonArgs {
                master: true,
                mcast_ifn: "eth0".into(),
                syncid: 3,
                maxlen: None,
                group: None,
                port: None,
                ttl: None,
            })
        );
        assert_eq!(
            cmd("--start-daemon boss").unwrap_err(),
            "illegal start-daemon parameter `boss`: master or backup"
        );
        assert!(ok("-A -t 10.0.0.100:80").changes_rules());
        assert!(!ok("-Z").changes_rules());
    }

    #[test]
    fn apply_changes_a_table_or_names_the_mistake() {
        let mut r = Rules::default();
        let apply = |r: &mut Rules, line: &str| r.apply(&ok(line));
        apply(&mut r, "-A -t 10.0.0.100:80 -s rr").unwrap();
        assert_eq!(
            apply(&mut r, "-A -t 10.0.0.100:80"),
            Err(ApplyError::ServiceExists { line: 0 })
        );
        apply(&mut r, "-a -t 10.0.0.100:80 -r 10.0.0.11 -w 3").unwrap();
        assert_eq!(
            apply(&mut r, "-a -t 10.0.0.100:80 -r 10.0.0.11"),
            Err(ApplyError::DestExists { line: 0 })
        );
        assert_eq!(
            apply(&mut r, "-a -t 10.0.0.100:81 -r 10.0.0.11"),
            Err(ApplyError::ServiceNotDefined)
        );
        // An edit replaces the service and keeps its real servers.
        apply(&mut r, "-E -t 10.0.0.100:80 -s sh -p 60").unwrap();
        assert_eq!(r.services[0].scheduler, "sh");
        assert_eq!(r.services[0].dests.len(), 1);
        apply(&mut r, "-e -t 10.0.0.100:80 -r 10.0.0.11 -w 7").unwrap();
        assert_eq!(r.services[0].dests[0].weight, 7);
        assert_eq!(
            apply(&mut r, "-e -t 10.0.0.100:80 -r 10.0.0.12"),
            Err(ApplyError::NoDest)
        );
        assert_eq!(
            apply(&mut r, "-d -t 10.0.0.100:80 -r 10.0.0.12"),
            Err(ApplyError::NoDest)
        );
        apply(&mut r, "-d -t 10.0.0.100:80 -r 10.0.0.11").unwrap();
        assert!(r.services[0].dests.is_empty());
        assert_eq!(
            apply(&mut r, "-D -t 10.0.0.100:81"),
            Err(ApplyError::NoService)
        );
        assert_eq!(apply(&mut r, "-L"), Err(ApplyError::NotAChange));
        apply(&mut r, "-A -u 10.0.0.100:53").unwrap();
        apply(&mut r, "-D -t 10.0.0.100:80").unwrap();
        assert_eq!(r.services.len(), 1);
        apply(&mut r, "-C").unwrap();
        assert!(r.services.is_empty());
    }
}
