//! `--keepalived FILE`: an existing keepalived.conf's `virtual_server`
//! blocks as rules and health checks, its `vrrp_instance` blocks as
//! `[[vrrp]]` instances and its `lvs_sync_daemon` as `[sync]`.
//!
//! The contract: [`load`] reads FILE (and what its `include`s name, glob
//! patterns relative to the including file) and returns the virtual
//! services with their real servers, one health rule per checked real
//! server, the VRRP instances and sync daemon, and one warning per keyword
//! it does not support, each naming the file and line
//! (`keepalived.conf:12: ha_suspend: not supported, ignored`). A malformed
//! file (unbalanced braces, a bad address or number, a checker without
//! what it needs) is refused whole, naming file and line; [`merge`]
//! validates the instances as `[[vrrp]]` tables against the configuration
//! (an instance's `interface` is a dlvs `[[interface]]` name).
//!
//! Supported: `virtual_server IP PORT` and `virtual_server fwmark N` with
//! `delay_loop`, `lb_algo`, `lb_kind` (NAT, DR, TUN), `persistence_timeout`,
//! `persistence_granularity`, `protocol` (TCP, UDP), `sorry_server`,
//! `quorum`, `real_server IP PORT` with `weight`, `inhibit_on_failure` and
//! one checker: `TCP_CHECK`, `HTTP_GET` (`url { path status_code digest }`,
//! `virtualhost`) or `MISC_CHECK` (`misc_path`, `misc_timeout`), each with
//! `connect_port`, `connect_timeout`, `retry` (or `nb_get_retry`) and
//! `delay_before_retry`; `vrrp_instance` (see `vrrp_instance` below);
//! `global_defs`'s `vrrp_version` and `lvs_sync_daemon`. Other blocks and
//! keywords are warned about and skipped.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::health::{Check, HealthRule};
use crate::config::sync::{parse as parse_sync, RawSync};
use crate::config::vrrp::{parse_one, RawVrrp};
use crate::service::rules::{
    Method, Persistence, Protocol, Rules, ServiceKey, ServiceRule, DEFAULT_NETMASK,
};
use crate::service::{DestRule, SchedFlags, TunConfig, TunCsum, TunKind};

/// What a keepalived.conf gives.
#[derive(Debug, Default)]
pub struct Keepalived {
    pub rules: Rules,
    pub health: Vec<HealthRule>,
    /// `vrrp_instance` blocks as `[[vrrp]]` tables, with their places and
    /// names, validated against the configuration by [`merge`].
    pub vrrp: Vec<(String, RawVrrp)>,
    /// `lvs_sync_daemon` (global_defs), or an instance's
    /// `lvs_sync_daemon_interface`, as `[sync]`.
    pub sync: Option<(String, RawSync)>,
    /// One line per keyword or block not supported, with its place.
    pub warnings: Vec<String>,
}

/// Why a keepalived.conf was refused.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {message}")]
pub struct KeepalivedError {
    /// `FILE:LINE`.
    pub place: String,
    pub message: String,
}

/// A word with where it came from.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    file: std::rc::Rc<PathBuf>,
    line: usize,
}

impl Word {
    fn place(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
    fn err(&self, message: impl Into<String>) -> KeepalivedError {
        KeepalivedError {
            place: self.place(),
            message: message.into(),
        }
    }
}

/// A keyword, its arguments and its block, if it has one.
#[derive(Debug, Clone)]
struct Node {
    key: Word,
    args: Vec<Word>,
    block: Option<Vec<Node>>,
}

/// Reads `path` and adds its virtual servers to `rules` and their checks
/// to `cfg`'s; a virtual service in both, or a server checked by both, is
/// refused. Returns the warnings (also to be logged).
pub fn merge(
    path: &Path,
    rules: &mut Rules,
    cfg: &mut crate::config::Config,
) -> Result<Vec<String>, String> {
    let k = load(path).map_err(|e| e.to_string())?;
    for s in k.rules.services {
        if let Some(o) = rules.services.iter().find(|o| o.key == s.key) {
            return Err(format!(
                "{}:{}: virtual_server {}: the rules file has it too (line {})",
                path.display(),
                s.line,
                s.key,
                o.line
            ));
        }
        rules.services.push(s);
    }
    for h in k.health {
        let taken = cfg.health.iter().any(|o| {
            o.service == h.service
                && match (&o.servers, &h.servers) {
                    (None, _) | (_, None) => true,
                    (Some(a), Some(b)) => a.iter().any(|x| b.contains(x)),
                }
        });
        if taken {
            return Err(format!(
                "{}: a real server of {} has checks in the configuration's [[health]] too",
                path.display(),
                crate::control::metrics::service_label(&h.service)
            ));
        }
        if cfg.interfaces.iter().all(|i| i.kernel.is_none()) {
            return Err(format!(
                "{}: virtual_server {}: its checkers cannot run: {}",
                path.display(),
                crate::control::metrics::service_label(&h.service),
                crate::config::NO_EXCEPTION_PATH
            ));
        }
        cfg.health.push(h);
    }
    for (place, raw) in k.vrrp {
        let name = raw.name.clone().unwrap_or_default();
        let v = parse_one(cfg.vrrp.len(), raw, &cfg.interfaces, &cfg.vrrp).map_err(
            |crate::config::Invalid(field, e)| {
                let field = field
                    .split_once('.')
                    .map_or(field.as_str(), |(_, f)| f)
                    .to_string();
                format!("{place}: vrrp_instance {name}: {field}: {e}")
            },
        )?;
        cfg.vrrp.push(v);
    }
    if let Some((place, raw)) = k.sync {
        if cfg.sync.is_some() {
            return Err(format!(
                "{place}: lvs_sync_daemon: the configuration has [sync] too"
            ));
        }
        let s = parse_sync(raw, &cfg.interfaces, &cfg.vrrp).map_err(
            |crate::config::Invalid(field, e)| {
                let field = field.strip_prefix("sync.").unwrap_or(&field).to_string();
                format!("{place}: lvs_sync_daemon: {field}: {e}")
            },
        )?;
        cfg.sync = Some(s);
    }
    Ok(k.warnings)
}

/// Reads `path` and the files it includes.
pub fn load(path: &Path) -> Result<Keepalived, KeepalivedError> {
    let words = read_words(path, 0)?;
    let nodes = parse_nodes(&mut words.into_iter().peekable(), None)?;
    convert(&nodes)
}

/// Parses keepalived.conf text (no includes), for tests.
#[cfg(test)]
pub fn parse_text(text: &str, name: &str) -> Result<Keepalived, KeepalivedError> {
    let file = std::rc::Rc::new(PathBuf::from(name));
    let words = split(text, &file);
    let nodes = parse_nodes(&mut words.into_iter().peekable(), None)?;
    convert(&nodes)
}

fn read_words(path: &Path, depth: usize) -> Result<Vec<Word>, KeepalivedError> {
    let refuse = |message: String| KeepalivedError {
        place: path.display().to_string(),
        message,
    };
    if depth > 8 {
        return Err(refuse("includes nested more than 8 deep".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot read: {e}")))?;
    let file = std::rc::Rc::new(path.to_owned());
    let mut out = Vec::new();
    let mut words = split(&text, &file).into_iter().peekable();
    while let Some(w) = words.next() {
        if w.text != "include" {
            out.push(w);
            continue;
        }
        let pattern = words
            .next()
            .ok_or_else(|| w.err("include needs a file name"))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let full = if Path::new(&pattern.text).is_absolute() {
            PathBuf::from(&pattern.text)
        } else {
            dir.join(&pattern.text)
        };
        let mut found = glob(&full);
        found.sort();
        if found.is_empty() {
            return Err(pattern.err(format!("include {}: no such file", pattern.text)));
        }
        for f in found {
            out.extend(read_words(&f, depth + 1)?);
        }
    }
    Ok(out)
}

/// The files a pattern names: `*` and `?` in its last component.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return if pattern.is_file() {
            vec![pattern.to_owned()]
        } else {
            Vec::new()
        };
    }
    let dir = pattern.parent().unwrap_or(Path::new("."));
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default()
}

fn wildcard(pattern: &str, name: &str) -> bool {
    match (pattern.chars().next(), name.chars().next()) {
        (None, None) => true,
        (Some('*'), _) => {
            wildcard(&pattern[1..], name)
                || name
                    .chars()
                    .next()
                    .is_some_and(|c| wildcard(pattern, &name[c.len_utf8()..]))
        }
        (Some('?'), Some(c)) => wildcard(&pattern[1..], &name[c.len_utf8()..]),
        (Some(p), Some(c)) if p == c => wildcard(&pattern[p.len_utf8()..], &name[c.len_utf8()..]),
        _ => false,
    }
}

/// Words, braces apart, comments (`#`, `!`) dropped, "quoted strings" whole.
fn split(text: &str, file: &std::rc::Rc<PathBuf>) -> Vec<Word> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let mut cur = String::new();
        let mut quoted = false;
        let push = |cur: &mut String, out: &mut Vec<Word>| {
            if !cur.is_empty() {
                out.push(Word {
                    text: std::mem::take(cur),
                    file: std::rc::Rc::clone(file),
                    line: i + 1,
                });
            }
        };
        for c in raw.chars() {
            if quoted {
                if c == '"' {
                    quoted = false;
                    // An empty "" is still a word.
                    out.push(Word {
                        text: std::mem::take(&mut cur),
                        file: std::rc::Rc::clone(file),
                        line: i + 1,
                    });
                } else {
                    cur.push(c);
                }
                continue;
            }
            match c {
                '#' | '!' => break,
                '"' => {
                    push(&mut cur, &mut out);
                    quoted = true;
                }
                '{' | '}' => {
                    push(&mut cur, &mut out);
                    cur.push(c);
                    push(&mut cur, &mut out);
                }
                c if c.is_whitespace() => push(&mut cur, &mut out),
                c => cur.push(c),
            }
        }
        push(&mut cur, &mut out);
    }
    out
}

/// Nodes up to the closing brace of `open` (or the end, at the top).
fn parse_nodes(
    words: &mut std::iter::Peekable<std::vec::IntoIter<Word>>,
    open: Option<&Word>,
) -> Result<Vec<Node>, KeepalivedError> {
    let mut nodes = Vec::new();
    while let Some(key) = words.next() {
        if key.text == "}" {
            return match open {
                Some(_) => Ok(nodes),
                None => Err(key.err("a closing brace without its block")),
            };
        }
        if key.text == "{" {
            return Err(key.err("a block without a keyword"));
        }
        let mut args = Vec::new();
        let mut block = None;
        while let Some(w) = words.peek() {
            if w.line != key.line && w.text != "{" {
                break;
            }
            let w = words.next().expect("peeked");
            match w.text.as_str() {
                "{" => {
                    block = Some(parse_nodes(words, Some(&w))?);
                    break;
                }
                "}" => {
                    // Closes the enclosing block: this keyword ends here.
                    return match open {
                        Some(_) => {
                            nodes.push(Node { key, args, block });
                            Ok(nodes)
                        }
                        None => Err(w.err("a closing brace without its block")),
                    };
                }
                _ => args.push(w),
            }
        }
        nodes.push(Node { key, args, block });
    }
    match open {
        Some(o) => Err(o.err("this block is not closed")),
        None => Ok(nodes),
    }
}

/// The top level: virtual servers, VRRP instances, global_defs.
fn convert(nodes: &[Node]) -> Result<Keepalived, KeepalivedError> {
    let mut out = Keepalived::default();
    // global_defs first: its vrrp_version is every instance's default.
    let mut version = None;
    for n in nodes.iter().filter(|n| n.key.text == "global_defs") {
        global_defs(n, &mut version, &mut out)?;
    }
    for n in nodes {
        match n.key.text.as_str() {
            "virtual_server" => virtual_server(n, &mut out)?,
            "vrrp_instance" => vrrp_instance(n, version, &mut out)?,
            "global_defs" => {}
            other => out.warnings.push(format!(
                "{}: {other}: not supported, skipped",
                n.key.place()
            )),
        }
    }
    Ok(out)
}

/// `global_defs`: `vrrp_version` and `lvs_sync_daemon INTERFACE
/// INSTANCE [id N] [maxlen N] [port N] [ttl N] [group ADDR]`.
fn global_defs(
    n: &Node,
    version: &mut Option<u8>,
    out: &mut Keepalived,
) -> Result<(), KeepalivedError> {
    for k in n.block.as_deref().unwrap_or_default() {
        match k.key.text.as_str() {
            "vrrp_version" => {
                let v = number(arg(k, 0, "2 or 3")?, "vrrp_version")?;
                *version = Some(v.min(255) as u8);
            }
            "lvs_sync_daemon" => {
                let itf = arg(k, 0, "an interface")?;
                let inst = arg(k, 1, "a vrrp_instance")?;
                let mut raw = RawSync {
                    interface: itf.text.clone(),
                    vrrp: Some(inst.text.clone()),
                    ..RawSync::default()
                };
                let mut rest = k.args[2..].iter();
                while let Some(w) = rest.next() {
                    let val = rest.next().ok_or_else(|| {
                        w.err(format!("lvs_sync_daemon {}: needs a value", w.text))
                    })?;
                    let num = || number(val, &w.text);
                    match w.text.as_str() {
                        "id" => raw.syncid = Some(num()?.min(65535) as u16),
                        "maxlen" => raw.maxlen = Some(num()?),
                        "port" => raw.port = Some(num()?),
                        "ttl" => raw.ttl = Some(num()?),
                        "group" => raw.group = Some(val.text.clone()),
                        other => {
                            return Err(w.err(format!("lvs_sync_daemon: {other}: not an option")))
                        }
                    }
                }
                out.sync = Some((k.key.place(), raw));
            }
            other => out.warnings.push(format!(
                "{}: {other}: not supported, ignored",
                k.key.place()
            )),
        }
    }
    Ok(())
}

/// `vrrp_instance NAME { ... }` as a `[[vrrp]]` table: `state` (dlvs
/// starts every instance as BACKUP, RFC 3768's Initialize for a priority
/// below 255), `interface` (a dlvs `[[interface]]` name), `virtual_router_id`,
/// `priority`, `advert_int`, `nopreempt`/`preempt`, `version`,
/// `virtual_ipaddress` (an address per line; `/len`, `dev`, `label` are the
/// kernel's business), `notify_master`, `notify_backup`, `notify_stop`,
/// `notify`, and the old `lvs_sync_daemon_interface`.
fn vrrp_instance(
    n: &Node,
    version: Option<u8>,
    out: &mut Keepalived,
) -> Result<(), KeepalivedError> {
    let name = arg(n, 0, "a name")?.text.clone();
    let mut raw = RawVrrp {
        name: Some(name.clone()),
        version,
        ..RawVrrp::default()
    };
    let mut vrid = None;
    let mut interface = None;
    for k in n.block.as_deref().unwrap_or_default() {
        let v = |i| arg(k, i, "a value");
        match k.key.text.as_str() {
            "state" => {
                let s = v(0)?;
                match s.text.as_str() {
                    "BACKUP" => {}
                    "MASTER" => out.warnings.push(format!(
                        "{}: state MASTER: dlvs starts as BACKUP and becomes MASTER when no \
                         better master advertises for the master-down interval (RFC 3768)",
                        s.place()
                    )),
                    other => return Err(s.err(format!("state {other}: MASTER or BACKUP"))),
                }
            }
            "interface" => interface = Some(v(0)?.text.clone()),
            "virtual_router_id" => {
                let w = v(0)?;
                vrid = Some(number(w, "virtual_router_id")?.min(65535) as u16);
            }
            "priority" => raw.priority = Some(number(v(0)?, "priority")?.min(65535) as u16),
            "advert_int" => {
                let w = v(0)?;
                let secs = w
                    .text
                    .parse::<f64>()
                    .ok()
                    .filter(|s| (0.01..=255.0).contains(s))
                    .ok_or_else(|| {
                        w.err(format!(
                            "advert_int: {:?} is not 0.01 to 255 seconds",
                            w.text
                        ))
                    })?;
                raw.advert_int_ms = Some((secs * 1000.0).round() as u32);
            }
            "nopreempt" => raw.preempt = Some(false),
            "preempt" => raw.preempt = Some(true),
            "version" => raw.version = Some(number(v(0)?, "version")?.min(255) as u8),
            "virtual_ipaddress" => {
                for a in k.block.as_deref().unwrap_or_default() {
                    raw.virtual_addresses.push(a.key.text.clone());
                }
            }
            "notify_master" => raw.notify_master = Some(command_line(k)?),
            "notify_backup" => raw.notify_backup = Some(command_line(k)?),
            "notify_stop" => raw.notify_stop = Some(command_line(k)?),
            "notify" => raw.notify = Some(command_line(k)?),
            // Either would leave each side deaf to the other (both MASTER).
            "authentication" => {
                return Err(k.key.err(
                    "authentication: dlvs speaks VRRP without authentication (keepalived's \
                     default; RFC 5798 dropped it): remove it on every router of the instance",
                ))
            }
            "unicast_peer" => {
                return Err(k.key.err(
                    "unicast_peer: dlvs advertises to 224.0.0.18 only; use multicast on every \
                     router of the instance",
                ))
            }
            "lvs_sync_daemon_interface" => {
                let itf = v(0)?;
                out.sync = Some((
                    k.key.place(),
                    RawSync {
                        interface: itf.text.clone(),
                        vrrp: Some(name.clone()),
                        ..RawSync::default()
                    },
                ));
            }
            other => out.warnings.push(format!(
                "{}: {other}: not supported, ignored",
                k.key.place()
            )),
        }
    }
    raw.interface =
        interface.ok_or_else(|| n.key.err(format!("vrrp_instance {name} needs interface")))?;
    raw.virtual_router_id = vrid.ok_or_else(|| {
        n.key
            .err(format!("vrrp_instance {name} needs virtual_router_id"))
    })?;
    out.vrrp.push((n.key.place(), raw));
    Ok(())
}

/// A notify program: the rest of the line (keepalived's quoting: one
/// quoted word, or several words).
fn command_line(k: &Node) -> Result<String, KeepalivedError> {
    if k.args.is_empty() {
        return Err(k.key.err(format!("{} needs a program", k.key.text)));
    }
    Ok(k.args
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" "))
}

fn arg<'a>(n: &'a Node, i: usize, what: &str) -> Result<&'a Word, KeepalivedError> {
    n.args
        .get(i)
        .ok_or_else(|| n.key.err(format!("{} needs {what}", n.key.text)))
}

fn number(w: &Word, what: &str) -> Result<u32, KeepalivedError> {
    w.text
        .parse()
        .map_err(|_| w.err(format!("{what}: {:?} is not a number", w.text)))
}

/// Seconds; `delay_before_retry` may be 0, the other timings at least
/// 0.1 s (as in dlvs's TOML: a 0 connect timeout fails every check, a 0
/// delay_loop checks without pause).
fn seconds(w: &Word, what: &str) -> Result<Duration, KeepalivedError> {
    let min = if what == "delay_before_retry" {
        0.0
    } else {
        0.1
    };
    w.text
        .parse::<f64>()
        .ok()
        .filter(|s| (min..=86_400.0).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            w.err(format!(
                "{what}: {:?} is not a number of seconds from {min} to 86400",
                w.text
            ))
        })
}

fn address(w: &Word) -> Result<Ipv4Addr, KeepalivedError> {
    w.text
        .parse()
        .map_err(|_| w.err(format!("{:?} is not an IPv4 address", w.text)))
}

fn port(w: &Word) -> Result<u16, KeepalivedError> {
    w.text
        .parse()
        .map_err(|_| w.err(format!("{:?} is not a port", w.text)))
}

/// The service-level settings every real server's health rule shares.
struct VsHealth {
    delay_loop: Duration,
    sorry_server: Option<(Ipv4Addr, u16)>,
    quorum: u32,
}

fn virtual_server(n: &Node, out: &mut Keepalived) -> Result<(), KeepalivedError> {
    let first = arg(n, 0, "an address and port, or fwmark N")?;
    let fwmark = first.text == "fwmark";
    if first.text == "group" {
        return Err(first.err("virtual_server group is not supported"));
    }
    let empty = Vec::new();
    let block = n.block.as_ref().unwrap_or(&empty);
    let mut protocol = Protocol::Tcp;
    let mut scheduler = crate::service::rules::DEFAULT_SCHEDULER.to_owned();
    let mut method = Method::Nat;
    let mut timeout = None;
    let mut netmask = DEFAULT_NETMASK;
    let mut vs = VsHealth {
        delay_loop: Duration::from_secs(60),
        sorry_server: None,
        quorum: 1,
    };
    for k in block {
        let v = |i| arg(k, i, "a value");
        match k.key.text.as_str() {
            "delay_loop" => vs.delay_loop = seconds(v(0)?, "delay_loop")?,
            "lb_algo" => {
                let s = v(0)?;
                if !crate::service::rules::SCHEDULERS.contains(&s.text.as_str()) {
                    return Err(s.err(format!("lb_algo {}: no such scheduler", s.text)));
                }
                scheduler = s.text.clone();
            }
            "lb_kind" => {
                let s = v(0)?;
                method = match s.text.to_ascii_uppercase().as_str() {
                    "NAT" => Method::Nat,
                    "DR" => Method::Dr,
                    "TUN" => Method::Tun(TunConfig {
                        kind: TunKind::Ipip,
                        port: 0,
                        csum: TunCsum::NoCsum,
                    }),
                    _ => return Err(s.err(format!("lb_kind {}: NAT, DR or TUN", s.text))),
                }
            }
            "persistence_timeout" => timeout = Some(number(v(0)?, "persistence_timeout")?),
            "persistence_granularity" => {
                netmask = address(v(0)?)?;
            }
            "protocol" => {
                let s = v(0)?;
                protocol = match s.text.to_ascii_uppercase().as_str() {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    _ => return Err(s.err(format!("protocol {}: TCP or UDP", s.text))),
                }
            }
            "sorry_server" => vs.sorry_server = Some((address(v(0)?)?, port(v(1)?)?)),
            "quorum" => vs.quorum = number(v(0)?, "quorum")?,
            "real_server" => {}
            other => out.warnings.push(format!(
                "{}: {other}: not supported, ignored",
                k.key.place()
            )),
        }
    }
    let key = if fwmark {
        let m = number(arg(n, 1, "a mark")?, "fwmark")?;
        if m == 0 {
            return Err(n.key.err("fwmark 0 is not a mark"));
        }
        ServiceKey::Fwmark(m)
    } else {
        ServiceKey::Addr {
            protocol,
            addr: address(first)?,
            port: port(arg(n, 1, "a port")?)?,
        }
    };
    if out.rules.services.iter().any(|s| s.key == key) {
        return Err(n.key.err(format!("virtual_server {key} is defined twice")));
    }
    let mut service = ServiceRule {
        key,
        scheduler,
        flags: SchedFlags::default(),
        persistence: timeout.map(|timeout_s| Persistence { timeout_s, netmask }),
        one_packet: false,
        line: n.key.line,
        dests: Vec::new(),
    };
    for k in block.iter().filter(|k| k.key.text == "real_server") {
        real_server(k, &mut service, method, &vs, out)?;
    }
    out.rules.services.push(service);
    Ok(())
}

fn real_server(
    n: &Node,
    service: &mut ServiceRule,
    method: Method,
    vs: &VsHealth,
    out: &mut Keepalived,
) -> Result<(), KeepalivedError> {
    let addr = address(arg(n, 0, "an address and a port")?)?;
    let given = port(arg(n, 1, "a port")?)?;
    // As ipvsadm does: DR and TUN keep the service's port.
    let rport = match (service.key, method) {
        (ServiceKey::Addr { port, .. }, Method::Dr | Method::Tun(_)) => port,
        _ => given,
    };
    if service
        .dests
        .iter()
        .any(|d| (d.addr, d.port) == (addr, rport))
    {
        return Err(n.key.err(format!("real_server {addr} {rport} twice")));
    }
    let mut weight = 1;
    let mut inhibit = false;
    let mut check = None;
    let empty = Vec::new();
    for k in n.block.as_ref().unwrap_or(&empty) {
        match k.key.text.as_str() {
            "weight" => weight = number(arg(k, 0, "a weight")?, "weight")?,
            "inhibit_on_failure" => inhibit = true,
            "TCP_CHECK" | "HTTP_GET" | "MISC_CHECK" => {
                if check.is_some() {
                    out.warnings.push(format!(
                        "{}: {}: a second checker of the real server, ignored (dlvs runs one)",
                        k.key.place(),
                        k.key.text
                    ));
                    continue;
                }
                check = Some(checker(k, out)?);
            }
            other => out.warnings.push(format!(
                "{}: {other}: not supported, ignored",
                k.key.place()
            )),
        }
    }
    service.dests.push(DestRule {
        addr,
        port: rport,
        method,
        weight,
        u_threshold: 0,
        l_threshold: 0,
        line: n.key.line,
    });
    if let Some(c) = check {
        out.health.push(HealthRule {
            service: service.key,
            servers: Some(vec![(addr, rport)]),
            check: c.check,
            delay_loop: vs.delay_loop,
            connect_timeout: c.timeout,
            retry: c.retry,
            delay_before_retry: c.delay_before_retry,
            port: c.port,
            inhibit_on_failure: inhibit,
            sorry_server: vs.sorry_server,
            quorum: vs.quorum,
        });
    }
    Ok(())
}

struct Checker {
    check: Check,
    timeout: Duration,
    retry: u32,
    delay_before_retry: Duration,
    port: Option<u16>,
}

fn checker(n: &Node, out: &mut Keepalived) -> Result<Checker, KeepalivedError> {
    let mut c = Checker {
        check: Check::TcpConnect,
        timeout: Duration::from_secs(5),
        retry: 1,
        delay_before_retry: Duration::from_secs(1),
        port: None,
    };
    let (mut path, mut status, mut digest, mut virtualhost, mut misc) =
        (None, None, None, None, None);
    let empty = Vec::new();
    for k in n.block.as_ref().unwrap_or(&empty) {
        let v = |i| arg(k, i, "a value");
        match k.key.text.as_str() {
            "connect_port" => c.port = Some(port(v(0)?)?),
            "connect_timeout" => c.timeout = seconds(v(0)?, "connect_timeout")?,
            "retry" | "nb_get_retry" => c.retry = number(v(0)?, &k.key.text)?,
            "delay_before_retry" => c.delay_before_retry = seconds(v(0)?, "delay_before_retry")?,
            "virtualhost" if n.key.text == "HTTP_GET" => virtualhost = Some(v(0)?.text.clone()),
            "url" if n.key.text == "HTTP_GET" => {
                if path.is_some() {
                    out.warnings.push(format!(
                        "{}: url: a second url, ignored (dlvs checks one)",
                        k.key.place()
                    ));
                    continue;
                }
                for u in k.block.as_ref().unwrap_or(&empty) {
                    match u.key.text.as_str() {
                        "path" => path = Some(arg(u, 0, "a path")?.text.clone()),
                        "status_code" => {
                            status = Some(number(arg(u, 0, "a status")?, "status_code")? as u16)
                        }
                        "digest" => digest = Some(arg(u, 0, "an MD5")?.text.to_ascii_lowercase()),
                        other => out.warnings.push(format!(
                            "{}: {other}: not supported, ignored",
                            u.key.place()
                        )),
                    }
                }
                if path.is_none() {
                    return Err(k.key.err("url needs a path"));
                }
            }
            "misc_path" if n.key.text == "MISC_CHECK" => {
                misc = Some(
                    v(0)?
                        .text
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                )
            }
            "misc_timeout" if n.key.text == "MISC_CHECK" => {
                c.timeout = seconds(v(0)?, "misc_timeout")?
            }
            other => out.warnings.push(format!(
                "{}: {other}: not supported, ignored",
                k.key.place()
            )),
        }
    }
    c.check = match n.key.text.as_str() {
        "HTTP_GET" => Check::HttpGet {
            url: path.ok_or_else(|| n.key.err("HTTP_GET needs a url { path ... }"))?,
            status: status.unwrap_or(200),
            digest,
            virtualhost,
        },
        "MISC_CHECK" => Check::Misc {
            argv: misc
                .filter(|a| !a.is_empty())
                .ok_or_else(|| n.key.err("MISC_CHECK needs misc_path"))?,
        },
        _ => Check::TcpConnect,
    };
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
! Configuration File for keepalived
global_defs {
   router_id LVS_DEVEL
   vrrp_version 3
   lvs_sync_daemon lan0 VI_1 id 7 port 8850
}
vrrp_instance VI_1 {
    state MASTER
    interface lan0
    virtual_router_id 51
    priority 150
    advert_int 0.5
    nopreempt
    track_interface {
        lan0
    }
    virtual_ipaddress {
        10.0.0.200/24 dev lan0 label lan0:1
        10.0.0.201
    }
    notify "/usr/local/bin/vrrp-event --log"
}
virtual_server 10.0.0.100 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 50
    protocol TCP
    sorry_server 10.0.0.99 80
    ha_suspend
    real_server 10.0.0.11 8080 {
        weight 3
        inhibit_on_failure
        HTTP_GET {
            url {
              path /health
              digest 9B3A0C85A887A256D6939DA88AABD8CD
              status_code 200
            }
            connect_timeout 3
            nb_get_retry 3
            delay_before_retry 2
        }
    }
    real_server 10.0.0.12 8080 {
        weight 1
        TCP_CHECK { connect_timeout 2 }
    }
}
virtual_server fwmark 7 {
    lb_algo rr
    lb_kind DR
    real_server 10.0.0.13 0 {
        MISC_CHECK {
            misc_path "/usr/local/bin/check --fast"
            misc_timeout 4
        }
    }
}
"#;

    #[test]
    fn virtual_servers_become_rules_and_checks() {
        let k = parse_text(CONF, "keepalived.conf").unwrap();
        assert_eq!(
            k.rules.to_save_n(),
            "-A -t 10.0.0.100:80 -s wrr -p 50\n\
             -a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m -w 3\n\
             -a -t 10.0.0.100:80 -r 10.0.0.12:8080 -m -w 1\n\
             -A -f 7 -s rr\n\
             -a -f 7 -r 10.0.0.13:0 -g -w 1\n"
        );
        assert_eq!(k.health.len(), 3);
        let h = &k.health[0];
        assert_eq!(h.servers, Some(vec![("10.0.0.11".parse().unwrap(), 8080)]));
        assert_eq!(
            h.check,
            Check::HttpGet {
                url: "/health".into(),
                status: 200,
                digest: Some("9b3a0c85a887a256d6939da88aabd8cd".into()),
                virtualhost: None
            }
        );
        assert_eq!((h.retry, h.inhibit_on_failure), (3, true));
        assert_eq!(h.delay_loop, Duration::from_secs(6));
        assert_eq!(h.connect_timeout, Duration::from_secs(3));
        assert_eq!(h.delay_before_retry, Duration::from_secs(2));
        assert_eq!(h.sorry_server, Some(("10.0.0.99".parse().unwrap(), 80)));
        assert_eq!(k.health[1].check, Check::TcpConnect);
        assert!(!k.health[1].inhibit_on_failure);
        assert_eq!(
            k.health[2].check,
            Check::Misc {
                argv: vec!["/usr/local/bin/check".into(), "--fast".into()]
            }
        );
        assert_eq!(k.health[2].connect_timeout, Duration::from_secs(4));
        assert_eq!(
            k.warnings,
            [
                "keepalived.conf:4: router_id: not supported, ignored",
                "keepalived.conf:9: state MASTER: dlvs starts as BACKUP and becomes MASTER when no \
                 better master advertises for the master-down interval (RFC 3768)",
                "keepalived.conf:15: track_interface: not supported, ignored",
                "keepalived.conf:31: ha_suspend: not supported, ignored",
            ]
        );
        let (place, v) = &k.vrrp[0];
        assert_eq!(place, "keepalived.conf:8");
        assert_eq!(v.name.as_deref(), Some("VI_1"));
        assert_eq!((v.interface.as_str(), v.virtual_router_id), ("lan0", 51));
        assert_eq!(
            (v.priority, v.advert_int_ms, v.version),
            (Some(150), Some(500), Some(3))
        );
        assert_eq!(v.preempt, Some(false));
        assert_eq!(v.virtual_addresses, ["10.0.0.200/24", "10.0.0.201"]);
        assert_eq!(v.notify.as_deref(), Some("/usr/local/bin/vrrp-event --log"));
        let (_, y) = k.sync.as_ref().unwrap();
        assert_eq!(
            (y.interface.as_str(), y.vrrp.as_deref()),
            ("lan0", Some("VI_1"))
        );
        assert_eq!((y.syncid, y.port), (Some(7), Some(8850)));
    }

    /// Merged into a configuration, the instance and the sync daemon are
    /// validated as `[[vrrp]]` and `[sync]` are, errors naming their line.
    #[test]
    fn vrrp_instances_merge_into_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keepalived.conf");
        let cfg_text = "[[interface]]\nname = \"lan0\"\ndevice = \"net_null0\"\naddresses = [\"10.0.0.2/24\"]\nkernel = \"dk0\"\n";
        let load = |conf: &str| {
            std::fs::write(&path, conf).unwrap();
            let mut cfg = crate::config::Config::from_toml(cfg_text, Path::new("d.toml")).unwrap();
            let mut rules = Rules::default();
            merge(&path, &mut rules, &mut cfg).map(|_| cfg)
        };
        let cfg = load(CONF).unwrap();
        assert_eq!(cfg.vrrp.len(), 1);
        let v = &cfg.vrrp[0];
        assert_eq!(
            (v.vrid, v.priority, v.version, v.advert_int_cs),
            (51, 150, 3, 50)
        );
        assert!(!v.preempt);
        let s = cfg.sync.as_ref().unwrap();
        assert_eq!((s.syncid, s.vrrp, s.port_udp), (7, Some(0), Some(8850)));
        let err = load(&CONF.replace("interface lan0", "interface eth0")).unwrap_err();
        assert!(
            err.ends_with(":8: vrrp_instance VI_1: interface: no [[interface]] is named \"eth0\""),
            "{err}"
        );
        let err = load(&CONF.replace("track_interface", "authentication")).unwrap_err();
        assert!(err.ends_with(":15: authentication: dlvs speaks VRRP without authentication (keepalived's default; RFC 5798 dropped it): remove it on every router of the instance"), "{err}");
        let err = load(&CONF.replace("priority 150", "priority 255")).unwrap_err();
        assert!(
            err.contains("vrrp_instance VI_1: priority: 255 is outside 1..=254"),
            "{err}"
        );
        let err = load(&CONF.replace("lan0 VI_1 id 7", "lan0 VI_9 id 7")).unwrap_err();
        assert!(
            err.contains(":6: lvs_sync_daemon: vrrp: no [[vrrp]] instance is named \"VI_9\""),
            "{err}"
        );
    }

    #[test]
    fn mistakes_are_named_with_their_line() {
        let err = |t: &str| parse_text(t, "k.conf").unwrap_err().to_string();
        assert_eq!(
            err("virtual_server 10.0.0.100 80 {\n  lb_algo fastest\n}\n"),
            "k.conf:2: lb_algo fastest: no such scheduler"
        );
        assert_eq!(
            err("virtual_server 10.0.0.100 80 {\n  real_server 10.0.0.11 80 {\n"),
            "k.conf:2: this block is not closed"
        );
        assert_eq!(err("}\n"), "k.conf:1: a closing brace without its block");
        assert_eq!(
            err("virtual_server 10.0.0.100 80 {\n real_server 10.0.0.11 80 {\n  HTTP_GET {\n  }\n }\n}\n"),
            "k.conf:3: HTTP_GET needs a url { path ... }"
        );
        assert_eq!(
            err("virtual_server 10.0.0.1000 80 {\n}\n"),
            "k.conf:1: \"10.0.0.1000\" is not an IPv4 address"
        );
    }

    #[test]
    fn includes_are_read_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(
            dir.path().join("keepalived.conf"),
            "include conf.d/*.conf\n",
        )
        .unwrap();
        for (name, port) in [("b.conf", 81), ("a.conf", 80)] {
            std::fs::write(
                dir.path().join("conf.d").join(name),
                format!("virtual_server 10.0.0.100 {port} {{\n real_server 10.0.0.11 {port}\n}}\n"),
            )
            .unwrap();
        }
        let k = load(&dir.path().join("keepalived.conf")).unwrap();
        let ports: Vec<String> = k.rules.services.iter().map(|s| s.key.to_string()).collect();
        assert_eq!(ports, ["-t 10.0.0.100:80", "-t 10.0.0.100:81"]);
        let e = load(&dir.path().join("conf.d/none.conf")).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
