//! The director's TOML configuration.
//!
//! Read with the `config` crate into serde structs that deny unknown keys
//! (the error names the key and its table, e.g. `interface[0]`), then
//! validated whole into a [`Config`]: every address parsed, every reference
//! (a neighbour's interface, a route's next hop) resolved. A file either
//! loads completely or not at all, and the error says which file and field.
//!
//! ```toml
//! [dpdk]
//! eal_args = ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--no-telemetry"]
//! mbufs = 8191                  # packet buffers in the pool (default 8191); checked at
//!                               # start against what ports, queues, caches and hold queues need
//! mbuf_size = 2048              # packet bytes per mbuf after its headroom (default: 2048,
//!                               # or the largest interface's MTU + 22 if that is more;
//!                               # at least that)
//! rx_desc = 1024                # RX descriptors per queue (default 1024)
//! tx_desc = 1024                # TX descriptors per queue (default 1024)
//! idle_sleep_us = 0             # 0 (default): workers poll without pause (an appliance);
//!                               # > 0: a worker that found nothing for 100 polls sleeps 1 µs,
//!                               # then twice as long each time up to this (at most 100000),
//!                               # until a frame comes (directors sharing cores, tests)
//! control_cpus = "2-3"          # CPUs of the control threads (default: those the process may
//!                               # use that run no worker; all of them if every one does)
//!
//! [[interface]]
//! name = "lan0"
//! device = "net_tap0,iface=dlvs0"          # PCI address or vdev spec
//! mac = "02:00:00:00:00:01"                # optional; default: the device's own
//! addresses = ["10.0.0.2/24", "10.0.0.100/32"]   # own addresses, VIPs too
//! mtu = 1500                               # optional (default 1500)
//! kernel = "lan0"                          # optional: the exception path, a kernel interface
//!                                          # (net_tap) with this port's MAC and addresses; what
//!                                          # the data plane does not handle for the director's
//!                                          # addresses goes to it, what the kernel sends there
//!                                          # leaves by this port (absent: none; not in replay)
//!
//! [[neighbor]]                  # static ARP entries, never aged or replaced
//! interface = "lan0"
//! ip = "10.0.0.11"
//! mac = "02:00:00:00:01:11"
//!
//! [[route]]
//! prefix = "0.0.0.0/0"
//! via = "10.0.0.1"              # must lie in a connected subnet
//! interface = "lan0"            # optional; default: the interface of that subnet
//!
//! [arp]
//! reachable_s = 300             # learned entries are used this long without refresh (default 300)
//! retry_ms = 1000               # ARP request retry interval (default 1000)
//! retries = 3                   # requests before an unresolved next hop fails (default 3)
//! queue = 256                   # packets held per lcore while resolving (default 256)
//! table_size = 4096             # neighbour entries per lcore (default 4096)
//!
//! [[mark]]                      # the director's own packet marking, for fwmark services
//! mark = 1                      # 1..=2^32-1, as ipvsadm's -f
//! destination = "10.0.0.100/32" # destination prefix
//! protocol = "tcp"              # tcp or udp; absent: both
//! ports = [80, 443]             # destination ports; absent or empty: every port
//!
//! [conn]
//! capacity = 1048576            # connection entries per lcore, allocated at start (default 1048576)
//! sloppy = false                # true: a mid-connection TCP packet with no entry is scheduled
//! expire_nodest_conn = false    # true: a connection whose real server was removed ends at its
//!                               # next client packet, which is taken as new (IPVS's sysctl);
//!                               # false: such packets are dropped until it expires
//!
//! [control]
//! socket = "/run/dlvs/dlvs.sock"  # dlvsadm's Unix socket, mode 0600 (the default; its
//!                               # directory is made when missing)
//!
//! [metrics]
//! listen = "127.0.0.1:9900"     # Prometheus exporter; absent: no exporter
//! publish_ms = 100              # how often workers' counters are published (default 100)
//! ```
//!
//! `[[health]]` is documented in `control::health::config`, `[feedback]` in
//! `control::feedback`, `[[vrrp]]` and `[sync]` in `control::ha::config`,
//! `[bgp]` in `control::bgp::config`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::wire::MacAddr;

/// Why health checks cannot run without an exception path: they are the
/// director's kernel's own connections, which reach the real servers only
/// through a data port's kernel interface. (Without one, every check
/// fails and every server is taken out, healthy or not.)
pub const NO_EXCEPTION_PATH: &str = "health checks connect from the director's own kernel, \
     which reaches the real servers only through an exception path: set `kernel = \"NAME\"` \
     on the [[interface]] they are reached by";

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    dpdk: RawDpdk,
    #[serde(default)]
    interface: Vec<RawInterface>,
    #[serde(default)]
    neighbor: Vec<RawNeighbor>,
    #[serde(default)]
    route: Vec<RawRoute>,
    #[serde(default)]
    arp: RawArp,
    metrics: Option<RawMetrics>,
    #[serde(default)]
    mark: Vec<RawMark>,
    #[serde(default)]
    conn: RawConn,
    #[serde(default)]
    control: RawControl,
    #[serde(default)]
    health: Vec<crate::control::health::config::RawHealth>,
    feedback: Option<crate::control::feedback::RawFeedback>,
    #[serde(default)]
    vrrp: Vec<crate::control::ha::config::RawVrrp>,
    sync: Option<crate::control::ha::config::RawSync>,
    bgp: Option<crate::control::bgp::config::RawBgp>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawControl {
    socket: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMark {
    mark: u64,
    destination: String,
    protocol: Option<String>,
    #[serde(default)]
    ports: Vec<u16>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConn {
    capacity: Option<usize>,
    sloppy: Option<bool>,
    expire_nodest_conn: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDpdk {
    #[serde(default)]
    eal_args: Vec<String>,
    mbufs: Option<u32>,
    mbuf_size: Option<u16>,
    rx_desc: Option<u16>,
    tx_desc: Option<u16>,
    control_cpus: Option<String>,
    idle_sleep_us: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: String,
    device: String,
    mac: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
    mtu: Option<u16>,
    kernel: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeighbor {
    interface: String,
    ip: String,
    mac: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    via: Option<String>,
    interface: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawArp {
    reachable_s: Option<u64>,
    retry_ms: Option<u64>,
    retries: Option<u32>,
    queue: Option<usize>,
    table_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: String,
    publish_ms: Option<u64>,
}

/// An IPv4 prefix (address and length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Prefix {
    /// The network mask as a host-order integer.
    pub fn mask(self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }

    /// The network address (host bits cleared).
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.mask() == 0
    }

    /// The subnet's directed broadcast address (for /31 and /32, none).
    pub fn broadcast(self) -> Option<Ipv4Addr> {
        (self.len < 31).then(|| Ipv4Addr::from(u32::from(self.addr) | !self.mask()))
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl std::str::FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not ADDRESS/LENGTH"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let len: u8 = l
            .parse()
            .ok()
            .filter(|&n| n <= 32)
            .ok_or_else(|| format!("{l:?} is not a prefix length (0 to 32)"))?;
        Ok(Prefix { addr, len })
    }
}

/// DPDK settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DpdkConfig {
    pub eal_args: Vec<String>,
    pub mbufs: u32,
    /// Packet bytes per mbuf (after its headroom); `None`: the default,
    /// 2048 or what the largest MTU needs.
    pub mbuf_size: Option<u16>,
    /// Descriptors per RX and per TX queue asked of each device.
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// CPUs for the control threads; `None`: those no worker uses.
    pub control_cpus: Option<Vec<usize>>,
    /// How long an idle worker sleeps at most (0: it never does).
    pub idle_sleep_us: u64,
}

/// One director interface (a DPDK port).
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    pub name: String,
    pub device: String,
    pub mac: Option<MacAddr>,
    /// Own addresses with their prefix lengths; VIPs are /32 entries.
    pub addresses: Vec<Prefix>,
    pub mtu: u16,
    /// The kernel interface of the exception path (a net_tap with the
    /// port's MAC and addresses), if any.
    pub kernel: Option<String>,
}

/// A static neighbour.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbor {
    /// Index into `Config::interfaces`.
    pub port: usize,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
}

/// A route: packets to `prefix` leave through `port`, to `via` if given,
/// else directly to their destination (a connected subnet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub prefix: Prefix,
    pub port: usize,
    pub via: Option<Ipv4Addr>,
}

/// Neighbour resolution knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpConfig {
    pub reachable_us: u64,
    pub retry_us: u64,
    pub retries: u32,
    pub queue: usize,
    pub table_size: usize,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig {
            reachable_us: 300_000_000,
            retry_us: 1_000_000,
            retries: 3,
            queue: 256,
            table_size: 4096,
        }
    }
}

/// Prometheus exporter settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
    pub publish_ms: u64,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub dpdk: DpdkConfig,
    pub interfaces: Vec<Interface>,
    pub neighbors: Vec<Neighbor>,
    /// Configured routes followed by the connected subnets of every
    /// interface address shorter than /32.
    pub routes: Vec<Route>,
    pub arp: ArpConfig,
    pub metrics: Option<MetricsConfig>,
    /// Mark rules, in file order: the first that matches a packet marks it.
    pub marks: Vec<MarkRule>,
    pub conn: ConnConfig,
    pub control: ControlConfig,
    /// Health checks, by virtual service.
    pub health: Vec<crate::control::health::config::HealthRule>,
    /// Dynamic feedback of the real servers' load.
    pub feedback: Option<crate::control::feedback::FeedbackConfig>,
    /// `[[vrrp]]` instances (see `control::ha::config`).
    pub vrrp: Vec<crate::control::ha::config::VrrpConfig>,
    /// `[sync]`, IPVS connection sync.
    pub sync: Option<crate::control::ha::config::SyncConfig>,
    /// `[bgp]` (see `control::bgp::config`).
    pub bgp: Option<crate::control::bgp::config::BgpConfig>,
}

/// Where `dlvsadm` reaches the director.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    pub socket: std::path::PathBuf,
}

/// The control socket without `[control] socket` (and dlvsadm's without
/// `--socket` or `DLVS_SOCKET`).
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/dlvs/dlvs.sock";

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: DEFAULT_CONTROL_SOCKET.into(),
        }
    }
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

/// `[conn]`: the connection tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnConfig {
    /// Entries per lcore, allocated at start.
    pub capacity: usize,
    /// Schedule a mid-connection TCP packet that has no entry (IPVS's
    /// `sloppy_tcp`).
    pub sloppy: bool,
    /// End a connection whose real server was removed at its next client
    /// packet, and take that packet as new (IPVS's `expire_nodest_conn`);
    /// otherwise such packets are dropped and the connection expires.
    pub expire_nodest_conn: bool,
}

/// Default connection entries per lcore.
pub const DEFAULT_CONN_CAPACITY: usize = 1 << 20;

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            capacity: DEFAULT_CONN_CAPACITY,
            sloppy: false,
            expire_nodest_conn: false,
        }
    }
}

/// Default number of mbufs in the packet pool.
pub const DEFAULT_MBUFS: u32 = 8191;
/// Default descriptors per queue.
pub const DEFAULT_DESC: u16 = 1024;
/// Default MTU of an interface.
pub const DEFAULT_MTU: u16 = 1500;

impl Config {
    /// Loads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
            path: path.to_owned(),
            err,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parses and validates TOML text; `path` only labels errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string().trim_end().to_owned(),
            })?;
        validate(raw, path)
    }

    /// The index of the interface named `name`.
    pub fn interface_index(&self, name: &str) -> Option<usize> {
        self.interfaces.iter().position(|i| i.name == name)
    }
}

fn validate(raw: RawConfig, path: &Path) -> Result<Config, ConfigError> {
    let invalid = |field: String, message: String| ConfigError::Invalid {
        path: path.to_owned(),
        field,
        message,
    };

    if raw.interface.is_empty() {
        return Err(invalid(
            "interface".into(),
            "at least one [[interface]] is required".into(),
        ));
    }
    let mbufs = raw.dpdk.mbufs.unwrap_or(DEFAULT_MBUFS);
    if mbufs < 1024 {
        return Err(invalid(
            "dpdk.mbufs".into(),
            format!("{mbufs} is too few (at least 1024)"),
        ));
    }

    let mut desc = [DEFAULT_DESC; 2];
    for (d, (key, v)) in desc.iter_mut().zip([
        ("dpdk.rx_desc", raw.dpdk.rx_desc),
        ("dpdk.tx_desc", raw.dpdk.tx_desc),
    ]) {
        if let Some(n) = v {
            if !(32..=16384).contains(&n) {
                return Err(invalid(key.into(), format!("{n} is outside 32..=16384")));
            }
            *d = n;
        }
    }
    let idle_sleep_us = raw.dpdk.idle_sleep_us.unwrap_or(0);
    if idle_sleep_us > 100_000 {
        return Err(invalid(
            "dpdk.idle_sleep_us".into(),
            format!("{idle_sleep_us} is above 100000 (0.1 s)"),
        ));
    }
    let control_cpus = match &raw.dpdk.control_cpus {
        None => None,
        Some(list) => {
            Some(parse_cpu_list(list).map_err(|e| invalid("dpdk.control_cpus".into(), e))?)
        }
    };

    let mut interfaces: Vec<Interface> = Vec::new();
    for (i, ri) in raw.interface.into_iter().enumerate() {
        let f = |k: &str| format!("interface[{i}].{k}");
        if ri.name.is_empty() || ri.name.len() > 32 {
            return Err(invalid(f("name"), "must be 1 to 32 characters".into()));
        }
        if interfaces.iter().any(|o| o.name == ri.name) {
            return Err(invalid(
                f("name"),
                format!("{:?} is used by another interface", ri.name),
            ));
        }
        if ri.device.trim().is_empty() {
            return Err(invalid(f("device"), "is empty".into()));
        }
        if interfaces
            .iter()
            .any(|o| dev_name(&o.device) == dev_name(&ri.device))
        {
            return Err(invalid(
                f("device"),
                format!(
                    "device {:?} is used by another interface",
                    dev_name(&ri.device)
                ),
            ));
        }
        let mac = match &ri.mac {
            None => None,
            Some(m) => {
                let mac: MacAddr = m
                    .parse()
                    .map_err(|_| invalid(f("mac"), format!("{m:?} is not a MAC address")))?;
                if !mac.is_unicast() || mac == MacAddr::ZERO {
                    return Err(invalid(f("mac"), format!("{m} is not a unicast MAC")));
                }
                Some(mac)
            }
        };
        let mut addresses = Vec::new();
        for (j, a) in ri.addresses.iter().enumerate() {
            let p: Prefix = a
                .parse()
                .map_err(|e| invalid(format!("interface[{i}].addresses[{j}]"), e))?;
            let ip = p.addr;
            if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
                return Err(invalid(
                    format!("interface[{i}].addresses[{j}]"),
                    format!("{ip} cannot be an interface address"),
                ));
            }
            let dup = interfaces
                .iter()
                .flat_map(|o| o.addresses.iter())
                .chain(addresses.iter())
                .any(|o: &Prefix| o.addr == ip);
            if dup {
                return Err(invalid(
                    format!("interface[{i}].addresses[{j}]"),
                    format!("{ip} is configured twice"),
                ));
            }
            addresses.push(p);
        }
        let mtu = ri.mtu.unwrap_or(DEFAULT_MTU);
        if !(576..=9000).contains(&mtu) {
            return Err(invalid(f("mtu"), format!("{mtu} is outside 576..=9000")));
        }
        let kernel = match ri.kernel {
            None => None,
            Some(k) => {
                // A Linux interface name: IFNAMSIZ less the NUL, and what
                // `ip` takes without quoting.
                let good = (1..=15).contains(&k.len())
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                if !good {
                    return Err(invalid(
                        f("kernel"),
                        format!("{k:?} is not an interface name (1 to 15 of A-Z a-z 0-9 - _ .)"),
                    ));
                }
                if interfaces.iter().any(|o| o.kernel.as_deref() == Some(&k)) {
                    return Err(invalid(
                        f("kernel"),
                        format!("{k:?} is the kernel interface of another interface"),
                    ));
                }
                Some(k)
            }
        };
        interfaces.push(Interface {
            name: ri.name,
            device: ri.device,
            mac,
            addresses,
            mtu,
            kernel,
        });
    }

    if let Some(size) = raw.dpdk.mbuf_size {
        let max = u16::MAX - dpdk::HEADROOM;
        if size > max {
            return Err(invalid(
                "dpdk.mbuf_size".into(),
                format!("{size} does not fit an mbuf with its headroom (at most {max})"),
            ));
        }
        // A frame of the MTU (Ethernet header, two VLAN tags) in one mbuf.
        for (i, itf) in interfaces.iter().enumerate() {
            let need = itf.mtu as u32 + dpdk::FRAME_OVERHEAD as u32;
            if (size as u32) < need {
                return Err(invalid(
                    "dpdk.mbuf_size".into(),
                    format!(
                        "{size} is too small for interface[{i}] ({}) with mtu {}: at least {need}",
                        itf.name, itf.mtu
                    ),
                ));
            }
        }
    }

    let port_of = |name: &str| interfaces.iter().position(|i| i.name == name);

    let mut neighbors: Vec<Neighbor> = Vec::new();
    for (i, rn) in raw.neighbor.into_iter().enumerate() {
        let f = |k: &str| format!("neighbor[{i}].{k}");
        let port = port_of(&rn.interface).ok_or_else(|| {
            invalid(
                f("interface"),
                format!("no [[interface]] is named {:?}", rn.interface),
            )
        })?;
        let ip: Ipv4Addr = rn
            .ip
            .parse()
            .map_err(|_| invalid(f("ip"), format!("{:?} is not an IPv4 address", rn.ip)))?;
        let mac: MacAddr = rn
            .mac
            .parse()
            .map_err(|_| invalid(f("mac"), format!("{:?} is not a MAC address", rn.mac)))?;
        if !mac.is_unicast() || mac == MacAddr::ZERO {
            return Err(invalid(f("mac"), format!("{mac} is not a unicast MAC")));
        }
        if neighbors.iter().any(|n| n.port == port && n.ip == ip) {
            return Err(invalid(
                f("ip"),
                format!("{ip} on {} is listed twice", rn.interface),
            ));
        }
        neighbors.push(Neighbor { port, ip, mac });
    }

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
    for (i, rr) in raw.route.into_iter().enumerate() {
        let f = |k: &str| format!("route[{i}].{k}");
        let prefix: Prefix = rr.prefix.parse().map_err(|e| invalid(f("prefix"), e))?;
        if prefix.network() != prefix.addr {
            return Err(invalid(
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
                    .map_err(|_| invalid(f("via"), format!("{v:?} is not an IPv4 address")))?,
            ),
        };
        let port = match (&rr.interface, via) {
            (Some(name), _) => port_of(name).ok_or_else(|| {
                invalid(
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
                    invalid(
                        f("via"),
                        format!("{gw} is not in a connected subnet of any interface"),
                    )
                })?,
            (None, None) => {
                return Err(invalid(
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
                return Err(invalid(
                    f("via"),
                    format!("{gw} is the director's own address"),
                ));
            }
        }
        if routes
            .iter()
            .any(|r: &Route| r.prefix.addr == prefix.addr && r.prefix.len == prefix.len)
        {
            return Err(invalid(f("prefix"), format!("{prefix} is routed twice")));
        }
        routes.push(Route { prefix, port, via });
    }
    routes.extend(connected);

    let mut arp = ArpConfig::default();
    let ra = raw.arp;
    if let Some(s) = ra.reachable_s {
        if s == 0 {
            return Err(invalid(
                "arp.reachable_s".into(),
                "must be at least 1".into(),
            ));
        }
        arp.reachable_us = s.saturating_mul(1_000_000);
    }
    if let Some(ms) = ra.retry_ms {
        if !(10..=60_000).contains(&ms) {
            return Err(invalid(
                "arp.retry_ms".into(),
                format!("{ms} is outside 10..=60000"),
            ));
        }
        arp.retry_us = ms * 1000;
    }
    if let Some(n) = ra.retries {
        if !(1..=100).contains(&n) {
            return Err(invalid(
                "arp.retries".into(),
                format!("{n} is outside 1..=100"),
            ));
        }
        arp.retries = n;
    }
    if let Some(q) = ra.queue {
        if q > 65_536 {
            return Err(invalid(
                "arp.queue".into(),
                format!("{q} is more than 65536"),
            ));
        }
        arp.queue = q;
    }
    if let Some(t) = ra.table_size {
        if !(16..=1 << 20).contains(&t) {
            return Err(invalid(
                "arp.table_size".into(),
                format!("{t} is outside 16..=1048576"),
            ));
        }
        arp.table_size = t;
    }
    if arp.queue >= mbufs as usize / 2 {
        return Err(invalid(
            "arp.queue".into(),
            format!("{} would hold half of the {mbufs} mbufs", arp.queue),
        ));
    }

    let metrics = match raw.metrics {
        None => None,
        Some(m) => {
            let listen: SocketAddr = m.listen.parse().map_err(|_| {
                invalid(
                    "metrics.listen".into(),
                    format!("{:?} is not ADDRESS:PORT", m.listen),
                )
            })?;
            let publish_ms = m.publish_ms.unwrap_or(100);
            if !(1..=10_000).contains(&publish_ms) {
                return Err(invalid(
                    "metrics.publish_ms".into(),
                    format!("{publish_ms} is outside 1..=10000"),
                ));
            }
            Some(MetricsConfig { listen, publish_ms })
        }
    };

    let mut marks: Vec<MarkRule> = Vec::new();
    for (i, rm) in raw.mark.into_iter().enumerate() {
        let f = |k: &str| format!("mark[{i}].{k}");
        let mark = u32::try_from(rm.mark)
            .ok()
            .filter(|&m| m != 0)
            .ok_or_else(|| invalid(f("mark"), format!("{} is outside 1..=4294967295", rm.mark)))?;
        let destination: Prefix = rm
            .destination
            .parse()
            .map_err(|e| invalid(f("destination"), e))?;
        if destination.network() != destination.addr {
            return Err(invalid(
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
                return Err(invalid(
                    f("protocol"),
                    format!("{p:?} is not \"tcp\" or \"udp\""),
                ))
            }
        };
        if rm.ports.contains(&0) {
            return Err(invalid(
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

    let mut conn = ConnConfig::default();
    if let Some(c) = raw.conn.capacity {
        if !(1024..=1 << 27).contains(&c) {
            return Err(invalid(
                "conn.capacity".into(),
                format!("{c} is outside 1024..=134217728"),
            ));
        }
        conn.capacity = c;
    }
    conn.sloppy = raw.conn.sloppy.unwrap_or(false);
    conn.expire_nodest_conn = raw.conn.expire_nodest_conn.unwrap_or(false);

    let mut health: Vec<crate::control::health::config::HealthRule> = Vec::new();
    for (i, rh) in raw.health.into_iter().enumerate() {
        let h = crate::control::health::config::parse(i, rh).map_err(|(k, e)| invalid(k, e))?;
        // Two tables of one service must check different servers.
        let overlap = health.iter().filter(|o| o.service == h.service).any(|o| {
            match (&o.servers, &h.servers) {
                (None, None) => true,
                (Some(a), Some(b)) => a.iter().any(|x| b.contains(x)),
                _ => false,
            }
        });
        if overlap {
            return Err(invalid(
                format!("health[{i}].servers"),
                "another [[health]] table of the service checks these servers".into(),
            ));
        }
        health.push(h);
    }
    if !health.is_empty() && interfaces.iter().all(|i| i.kernel.is_none()) {
        return Err(invalid("health[0]".into(), NO_EXCEPTION_PATH.into()));
    }

    let feedback = raw
        .feedback
        .map(crate::control::feedback::parse)
        .transpose()
        .map_err(|(k, e)| invalid(k, e))?;

    let vrrp = crate::control::ha::config::parse_vrrp(raw.vrrp, &interfaces)
        .map_err(|(k, e)| invalid(k, e))?;
    let sync = raw
        .sync
        .map(|s| crate::control::ha::config::parse_sync(s, &interfaces, &vrrp))
        .transpose()
        .map_err(|(k, e)| invalid(k, e))?;

    let bgp = raw
        .bgp
        .map(|b| crate::control::bgp::config::parse(b, &interfaces))
        .transpose()
        .map_err(|(k, e)| invalid(k, e))?;

    let control = match raw.control.socket {
        None => ControlConfig::default(),
        Some(s) if s.is_empty() => {
            return Err(invalid(
                "control.socket".into(),
                "empty path (leave the key out for /run/dlvs/dlvs.sock)".into(),
            ))
        }
        Some(s) => ControlConfig { socket: s.into() },
    };

    Ok(Config {
        dpdk: DpdkConfig {
            eal_args: raw.dpdk.eal_args,
            mbufs,
            mbuf_size: raw.dpdk.mbuf_size,
            rx_desc: desc[0],
            tx_desc: desc[1],
            control_cpus,
            idle_sleep_us,
        },
        interfaces,
        neighbors,
        routes,
        arp,
        metrics,
        marks,
        conn,
        control,
        health,
        feedback,
        vrrp,
        sync,
        bgp,
    })
}

/// Parses a CPU list as taskset and the EAL's -l take it: `0,2-3,8`.
/// The result is ascending and without repeats.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    const MAX_CPU: usize = 1023;
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim) {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n <= MAX_CPU)
                .ok_or_else(|| format!("{t:?} in {s:?} is not a CPU number (0 to {MAX_CPU})"))
        };
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if a > b {
            return Err(format!("{part:?} in {s:?} is a backwards range"));
        }
        cpus.extend(a..=b);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Formats CPUs as a list with ranges: `0,2-3`.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// The DPDK device name of a device spec: the part before the first comma
/// (`net_tap0` of `net_tap0,iface=dlvs0`).
pub fn dev_name(spec: &str) -> &str {
    spec.split(',').next().unwrap_or(spec).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[dpdk]
eal_args = ["--no-huge", "-m", "512"]

[[interface]]
name = "lan0"
device = "net_tap0,iface=dlvs0"
mac = "02:00:00:00:00:01"
addresses = ["10.0.0.2/24", "10.0.0.100/32"]

[[interface]]
name = "wan0"
device = "net_null0"
addresses = ["192.0.2.2/30"]

[[neighbor]]
interface = "lan0"
ip = "10.0.0.11"
mac = "02:00:00:00:01:11"

[[route]]
prefix = "0.0.0.0/0"
via = "192.0.2.1"

[metrics]
listen = "127.0.0.1:9900"
"#;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("t.toml"))
    }

    fn err(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    #[test]
    fn good_config_resolves_everything() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.interfaces.len(), 2);
        assert_eq!(c.interfaces[0].mtu, DEFAULT_MTU);
        assert_eq!(c.dpdk.mbufs, DEFAULT_MBUFS);
        assert_eq!(
            c.interfaces[0].mac,
            Some("02:00:00:00:00:01".parse().unwrap())
        );
        assert_eq!(c.neighbors[0].port, 0);
        // The default route leaves through wan0, where its gateway lives;
        // connected subnets follow the configured routes; the /32 VIP has none.
        assert_eq!(c.routes[0].port, 1);
        assert_eq!(c.routes[0].via, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(c.routes.len(), 3);
        assert_eq!(c.routes[1].prefix.to_string(), "10.0.0.0/24");
        assert_eq!(c.routes[2].prefix.to_string(), "192.0.2.0/30");
        assert_eq!(c.metrics.unwrap().listen.port(), 9900);
        assert_eq!(c.arp, ArpConfig::default());
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err(&GOOD
            .replace("mtu", "x")
            .replace("name = \"wan0\"", "name = \"wan0\"\nspeed = 10"));
        assert!(e.contains("speed") && e.contains("interface[1]"), "{e}");
        let e = err(&format!("{GOOD}\n[bogus]\nx = 1\n"));
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let e = err("[[interface]\nname = 'a'\n");
        assert!(e.contains("t.toml") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field() {
        for (from, to, want) in [
            ("10.0.0.2/24", "10.0.0.300/24", "interface[0].addresses[0]"),
            ("10.0.0.2/24", "10.0.0.2/33", "interface[0].addresses[0]"),
            ("10.0.0.2/24", "10.0.0.2", "interface[0].addresses[0]"),
            ("02:00:00:00:00:01", "02:00:00:00:00", "interface[0].mac"),
            ("02:00:00:00:00:01", "01:00:5e:00:00:01", "interface[0].mac"),
            (
                "interface = \"lan0\"",
                "interface = \"nope\"",
                "neighbor[0].interface",
            ),
            ("ip = \"10.0.0.11\"", "ip = \"ten\"", "neighbor[0].ip"),
            (
                "via = \"192.0.2.1\"",
                "via = \"172.16.0.1\"",
                "route[0].via",
            ),
            (
                "prefix = \"0.0.0.0/0\"",
                "prefix = \"10.1.2.3/8\"",
                "route[0].prefix",
            ),
            ("127.0.0.1:9900", "localhost", "metrics.listen"),
            ("\"net_null0\"", "\"net_tap0\"", "interface[1].device"),
            ("\"wan0\"", "\"lan0\"", "interface[1].name"),
            ("192.0.2.2/30", "10.0.0.100/32", "interface[1].addresses[0]"),
        ] {
            assert!(GOOD.contains(from), "{from}");
            let e = err(&GOOD.replacen(from, to, 1));
            assert!(e.contains(want), "{from} -> {to}: {e}");
        }
    }

    #[test]
    fn missing_file_names_it() {
        let e = Config::load(Path::new("/nonexistent/dlvs.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/dlvs.toml") && e.contains("cannot read"),
            "{e}"
        );
    }

    #[test]
    fn no_interface_is_an_error() {
        assert!(err("[dpdk]\neal_args = []\n").contains("[[interface]]"));
    }

    #[test]
    fn dpdk_keys() {
        let c = load(&GOOD.replace(
            "eal_args = [\"--no-huge\", \"-m\", \"512\"]",
            "eal_args = []\nrx_desc = 512\ntx_desc = 256\ncontrol_cpus = \"3, 0-1,1\"",
        ))
        .unwrap();
        assert_eq!((c.dpdk.rx_desc, c.dpdk.tx_desc), (512, 256));
        assert_eq!(c.dpdk.control_cpus, Some(vec![0, 1, 3]));
        assert_eq!(load(GOOD).unwrap().dpdk.control_cpus, None);
        for (k, v, want) in [
            ("rx_desc", "8", "dpdk.rx_desc"),
            ("tx_desc", "20000", "dpdk.tx_desc"),
            ("control_cpus", "\"2-1\"", "backwards"),
            ("control_cpus", "\"a\"", "dpdk.control_cpus"),
            ("control_cpus", "\"\"", "dpdk.control_cpus"),
        ] {
            let e = err(&GOOD.replace("[dpdk]\n", &format!("[dpdk]\n{k} = {v}\n")));
            assert!(e.contains(want), "{k} = {v}: {e}");
        }
    }

    #[test]
    fn marks_and_conn() {
        let c = load(&format!(
            "{GOOD}\n[[mark]]\nmark = 1\ndestination = \"10.0.0.100/32\"\nprotocol = \"tcp\"\nports = [80, 443]\n\n[[mark]]\nmark = 2\ndestination = \"10.0.1.0/24\"\n\n[conn]\ncapacity = 4096\nsloppy = true\nexpire_nodest_conn = true\n"
        ))
        .unwrap();
        assert_eq!(c.marks.len(), 2);
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        assert!(c.marks[0].matches(6, vip, 443));
        assert!(!c.marks[0].matches(17, vip, 443));
        assert!(!c.marks[0].matches(6, vip, 8080));
        assert!(c.marks[1].matches(17, Ipv4Addr::new(10, 0, 1, 9), 53));
        assert!(!c.marks[1].matches(1, Ipv4Addr::new(10, 0, 1, 9), 0));
        assert_eq!(
            c.conn,
            ConnConfig {
                capacity: 4096,
                sloppy: true,
                expire_nodest_conn: true,
            }
        );
        assert_eq!(load(GOOD).unwrap().conn, ConnConfig::default());
        for (extra, want) in [
            (
                "[[mark]]\nmark = 0\ndestination = \"10.0.0.0/8\"",
                "mark[0].mark",
            ),
            (
                "[[mark]]\nmark = 4294967296\ndestination = \"10.0.0.0/8\"",
                "mark[0].mark",
            ),
            (
                "[[mark]]\nmark = 1\ndestination = \"10.0.0.1/8\"",
                "host bits",
            ),
            (
                "[[mark]]\nmark = 1\ndestination = \"10.0.0.0/8\"\nprotocol = \"sctp\"",
                "mark[0].protocol",
            ),
            (
                "[[mark]]\nmark = 1\ndestination = \"10.0.0.0/8\"\nports = [0]",
                "mark[0].ports",
            ),
            (
                "[[mark]]\nmark = 1\ndestination = \"10.0.0.0/8\"\nport = 80",
                "port",
            ),
            ("[conn]\ncapacity = 10", "conn.capacity"),
        ] {
            let e = err(&format!("{GOOD}\n{extra}\n"));
            assert!(e.contains(want), "{extra}: {e}");
        }
        // Sections that GOOD has: the key goes in its own section.
        for (extra, want) in [
            (
                "mbuf_size = 1000",
                "dpdk.mbuf_size: 1000 is too small for interface[0]",
            ),
            ("mbuf_size = 65500", "dpdk.mbuf_size: 65500 does not fit"),
        ] {
            let e = err(&GOOD.replacen("[dpdk]\n", &format!("[dpdk]\n{extra}\n"), 1));
            assert!(e.contains(want), "{extra}: {e}");
        }
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0").unwrap(), vec![0]);
        assert_eq!(parse_cpu_list("4-6,1").unwrap(), vec![1, 4, 5, 6]);
        assert!(parse_cpu_list("1,,2").is_err());
        assert!(parse_cpu_list("5000").is_err());
        assert_eq!(format_cpu_list(&[0, 2, 3, 4, 7]), "0,2-4,7");
        assert_eq!(format_cpu_list(&[]), "");
    }

    #[test]
    fn prefix_arithmetic() {
        let p: Prefix = "10.1.2.3/24".parse().unwrap();
        assert_eq!(p.network(), Ipv4Addr::new(10, 1, 2, 0));
        assert_eq!(p.broadcast(), Some(Ipv4Addr::new(10, 1, 2, 255)));
        assert!(p.contains(Ipv4Addr::new(10, 1, 2, 200)));
        assert!(!p.contains(Ipv4Addr::new(10, 1, 3, 1)));
        let d: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(d.contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(d.mask(), 0);
        let h: Prefix = "10.0.0.1/32".parse().unwrap();
        assert_eq!(h.broadcast(), None);
    }
}
