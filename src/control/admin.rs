//! The director's admin socket: what `dlvsadm` asks, and the rules it
//! changes.
//!
//! The contract:
//!
//! - One request per connection on a Unix stream socket (`[control]
//!   socket`, mode 0600): the client writes a JSON [`Request`] (ipvsadm's
//!   argument words, and standard input for `-R`) and closes its side;
//!   the director answers one JSON [`Response`] (exit status, standard
//!   output, standard error) and closes.
//! - A request is parsed and checked whole, then applied whole or not at
//!   all: the new rules build a new service table, which is published to
//!   the workers in one swap (they take it between bursts). `-R` of a whole
//!   file is one change.
//! - [`Admin`] is the control plane's one copy of the rules. SIGHUP
//!   reloads them from the rules file through the same path, so a request
//!   and a reload never interleave (one mutex, never taken by a worker).
//! - Exit statuses are ipvsadm's: 2 for a command it would refuse before
//!   asking the kernel, 255 for one the kernel would refuse (`Service
//!   already exists`, `No such destination`, ...), 1 for a listing error.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::estimator::{Estimator, PERIOD};
use super::feedback::Feedback;
use super::health::{Change, Health, Job};
use super::listing::{self, DestView, Names, ServerHealth, ServiceView, View};
use crate::config::Config;
use crate::conn::dump::{ConnRecord, DumpSlot};
use crate::datapath::stats::{DestStats, Stats};
use crate::datapath::sync::{Daemon, SyncDaemonError};
use crate::datapath::Host;
use crate::service::command::DaemonArgs;
use crate::service::names::ServiceNames;
use crate::service::table::{ConnFlags, Published, Registry, ServiceTable, StateTimeouts};
use crate::service::{Command, Rules, ServiceKey, ServiceRule};

/// The largest request read (a `-R` of some hundred thousand rules).
const MAX_REQUEST: u64 = 64 << 20;

pub use dlvs_admin::protocol::{Request, Response};

/// Why the admin socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("control socket {path}: another director answers on it (stop it, or give this one its own [control] socket)")]
    InUse { path: PathBuf },
    #[error("control socket {path}: {err}")]
    Io {
        path: PathBuf,
        #[source]
        err: std::io::Error,
    },
}

/// What the workers share with the control plane: the published table and
/// each lcore's counters.
pub struct Live<'a> {
    pub published: &'a Published,
    pub stats: &'a [Arc<Mutex<Stats>>],
    /// Each worker's connection listing.
    pub dumps: &'a [DumpSlot],
}

/// Where the director's configuration and rules came from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The configuration with the keepalived.conf's checks merged in.
    pub config: Config,
    /// The configuration as its file says.
    pub base_config: Config,
    /// `None`: the built-in demo configuration (never reloaded).
    pub config_path: Option<PathBuf>,
    /// The rules file's services and the keepalived.conf's.
    pub rules: Rules,
    /// `None`: started without `--rules`.
    pub rules_path: Option<PathBuf>,
    /// `--keepalived`: reloaded on SIGHUP too.
    pub keepalived_path: Option<PathBuf>,
}

/// The rules, and what a new table is built with.
pub struct Admin {
    rules: Rules,
    /// The rules file SIGHUP reads again.
    rules_path: Option<PathBuf>,
    /// The configuration (its marks and `[conn]` switches go into every
    /// table); SIGHUP reads the file again.
    config: Config,
    /// The configuration as its file says (without the keepalived.conf's
    /// checks).
    base_config: Config,
    config_path: Option<PathBuf>,
    keepalived_path: Option<PathBuf>,
    /// The health checks' states, and the rules they leave the data path.
    health: Health,
    /// Dynamic feedback's live weights, with `[feedback]`.
    feedback: Option<Feedback>,
    effective: Rules,
    registry: Registry,
    /// Connection entries of all workers, for the listing's version line.
    capacity: u64,
    /// `--set`'s timeouts, published with every table.
    timeouts: StateTimeouts,
    /// `-Z`: the counters at the last zeroing, by real server id.
    zeroed: HashMap<u32, DestStats>,
    /// `--rate`: by real server id, and by service.
    dest_rates: HashMap<u32, Estimator>,
    service_rates: HashMap<ServiceKey, Estimator>,
    last_tick: Instant,
    /// The director's host view: its interfaces, VRRP states and sync
    /// daemons (a run's; none in tests without a data plane).
    host: Option<Arc<Host>>,
    /// With `[bgp]` in a run: set while draining (the routes withdrawn).
    drain: Option<Arc<AtomicBool>>,
}

impl Admin {
    pub fn new(sources: Sources, registry: Registry, capacity: u64) -> Admin {
        let health = Health::new(sources.config.health.clone());
        Admin {
            effective: health.effective(&sources.rules),
            health,
            feedback: sources.config.feedback.clone().map(Feedback::new),
            rules: sources.rules,
            rules_path: sources.rules_path,
            config: sources.config,
            base_config: sources.base_config,
            config_path: sources.config_path,
            keepalived_path: sources.keepalived_path,
            registry,
            capacity,
            timeouts: StateTimeouts::default(),
            zeroed: HashMap::new(),
            dest_rates: HashMap::new(),
            service_rates: HashMap::new(),
            last_tick: Instant::now(),
            host: None,
            drain: None,
        }
    }

    /// Gives the admin the `[bgp]` draining flag (`dlvsadm --drain`).
    pub fn set_drain(&mut self, flag: Arc<AtomicBool>) {
        self.drain = Some(flag);
    }

    /// `--drain` / `--undrain`: the routes withdrawn or announced again;
    /// forwarding goes on either way. Says what and how many connections
    /// the workers still hold.
    fn drain(&mut self, on: bool, live: &Live<'_>) -> Response {
        let Some(flag) = &self.drain else {
            return Response::fail(
                255,
                "no [bgp]: this director announces no route to withdraw",
            );
        };
        let was = flag.swap(on, Ordering::AcqRel);
        let conns: u64 = live
            .stats
            .iter()
            .map(|s| s.lock().map(|s| s.connections).unwrap_or(0))
            .sum();
        let vips = self
            .announced_vips()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let what = match (on, was) {
            (true, true) => "already draining",
            (true, false) => "draining: routes withdrawn",
            (false, false) => "not draining",
            (false, true) => "announcing again",
        };
        log::info!("dlvsadm --{}drain: {what}", if on { "" } else { "un" });
        Response::out(format!(
            "{what} ({}); {conns} connection(s) and template(s) in the workers' tables\n",
            if vips.is_empty() {
                "no address".to_string()
            } else {
                vips
            }
        ))
    }

    /// The virtual addresses `[bgp]` announces: those of the services
    /// (by address, or the /32 destinations of a mark's `[[mark]]` rules)
    /// that have a real server taking new connections (weight above 0 in
    /// the rules as health checks and feedback leave them).
    pub fn announced_vips(&self) -> Vec<Ipv4Addr> {
        let mut out = Vec::new();
        for s in &self.effective.services {
            if !s.dests.iter().any(|d| d.weight > 0) {
                continue;
            }
            match s.key {
                ServiceKey::Addr { addr, .. } => out.push(addr),
                ServiceKey::Fwmark(m) => out.extend(
                    self.config
                        .marks
                        .iter()
                        .filter(|r| r.mark == m && r.destination.len == 32)
                        .map(|r| r.destination.addr),
                ),
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Gives the admin the data plane's host view (the sync daemons).
    pub fn set_host(&mut self, host: Arc<Host>) {
        self.host = Some(host);
    }

    /// `--start-daemon`: the interface must be one of the director's
    /// (the kernel's ENODEV otherwise).
    fn start_daemon(&mut self, a: &DaemonArgs) -> Response {
        let Some(host) = &self.host else {
            return Response::fail(255, "No such device");
        };
        let Some(port) = host.ports.iter().position(|p| p.name == a.mcast_ifn) else {
            return Response::fail(255, "No such device");
        };
        let p = &host.ports[port];
        let d = Daemon::new(
            a.master, port, &p.name, p.mtu, a.syncid, a.maxlen, a.group, a.port, a.ttl,
        );
        let line = d.line(a.master);
        match host.daemons.start(a.master, d, host.master.get()) {
            Ok(()) => {
                log::info!("dlvsadm --start-daemon: {}", line.trim_end());
                Response::default()
            }
            Err(e) => Response::fail(255, e),
        }
    }

    fn stop_daemon(&mut self, master: bool) -> Response {
        let Some(host) = &self.host else {
            return Response::fail(255, SyncDaemonError::NotRunning);
        };
        match host.daemons.stop(master, host.master.get()) {
            Ok(()) => {
                log::info!(
                    "dlvsadm --stop-daemon: the {} sync daemon stopped",
                    if master { "master" } else { "backup" }
                );
                Response::default()
            }
            Err(e) => Response::fail(255, e),
        }
    }

    /// Runs the rate estimators when a period has passed (the control
    /// thread calls this on every round).
    pub fn tick(&mut self, stats: &[Arc<Mutex<Stats>>]) {
        if self.last_tick.elapsed() < PERIOD {
            return;
        }
        self.last_tick += PERIOD;
        if self.last_tick.elapsed() >= PERIOD {
            // Late by a whole period (a stalled control thread): restart
            // the schedule rather than tick twice at once.
            self.last_tick = Instant::now();
        }
        let totals = dest_totals(stats);
        let mut services = HashMap::new();
        for s in &self.rules.services {
            let mut sum = DestStats::default();
            for id in self.registry.dest_ids(s.key) {
                let now = total_of(&totals, id);
                sum.add(&now);
                self.dest_rates
                    .entry(id)
                    .or_insert_with(|| Estimator::new(&now))
                    .tick(&now);
            }
            let mut e = self
                .service_rates
                .remove(&s.key)
                .unwrap_or_else(|| Estimator::new(&sum));
            e.tick(&sum);
            services.insert(s.key, e);
        }
        // A deleted service's estimator goes with it (a new one under the
        // same key starts from nothing, as in the kernel).
        self.service_rates = services;
    }

    /// SIGHUP: reads the configuration and the rules files again and
    /// publishes them, all or nothing. What the configuration may change
    /// while running is what travels in the service table (`[[mark]]`,
    /// `[conn] sloppy` and `expire_nodest_conn`) and `[[health]]`; a change
    /// to anything else
    /// (ports, addresses, DPDK, table sizes) needs a restart and refuses
    /// the whole reload. Logs what changed, or why nothing did.
    pub fn reload(&mut self, published: &Published) {
        let base = match &self.config_path {
            None => self.base_config.clone(),
            Some(path) => match Config::load(path) {
                Ok(c) => c,
                Err(e) => {
                    log::error!(
                        "SIGHUP: configuration not reloaded (nor the rules), everything stays as it was: {e}"
                    );
                    return;
                }
            },
        };
        if let Some(path) = &self.config_path {
            if let Some(section) = needs_restart(&self.base_config, &base) {
                log::error!(
                    "SIGHUP: configuration not reloaded (nor the rules), everything stays as it was: \
                     {section} changed in {}, which applies only at a restart \
                     (live: [[mark]], [[health]], [conn] sloppy and expire_nodest_conn)",
                    path.display()
                );
                return;
            }
        }
        let mut rules = match (&self.rules_path, &self.keepalived_path) {
            (None, None) => self.rules.clone(),
            (None, Some(_)) => Rules::default(),
            (Some(path), _) => match Rules::load(path) {
                Ok(r) => r,
                Err(e) => {
                    log::error!("SIGHUP: rules not reloaded, the services stay as they were: {e}");
                    return;
                }
            },
        };
        let mut config = base.clone();
        if let Some(path) = &self.keepalived_path {
            match super::keepalived_import::merge(path, &mut rules, &mut config) {
                Ok(warnings) => {
                    for w in warnings {
                        log::warn!("{w}");
                    }
                }
                Err(e) => {
                    log::error!("SIGHUP: rules not reloaded, the services stay as they were: {e}");
                    return;
                }
            }
            // Its VRRP instances and sync daemon are the host's, built at start.
            if config.vrrp != self.config.vrrp || config.sync != self.config.sync {
                log::error!(
                    "SIGHUP: configuration not reloaded (nor the rules), everything stays as it was: \
                     a vrrp_instance or lvs_sync_daemon changed in {}, which applies only at a restart",
                    path.display()
                );
                return;
            }
        }
        let mut from = match &self.rules_path {
            Some(p) => format!("rules reloaded from {}", p.display()),
            None => "configuration reloaded (no rules file)".to_owned(),
        };
        if let Some(k) = &self.keepalived_path {
            from.push_str(&format!(" and {}", k.display()));
        }
        match self.install(rules, Some(config), published) {
            Ok(summary) => {
                self.base_config = base;
                log::info!("SIGHUP: {from}: {summary}")
            }
            Err(e) => {
                log::error!("SIGHUP: rules not reloaded, the services stay as they were: {e}")
            }
        }
    }

    /// Builds and publishes `rules`; they become the current ones only if
    /// the table builds. Says what changed.
    fn commit(&mut self, rules: Rules, published: &Published) -> Result<String, String> {
        self.install(rules, None, published)
    }

    /// [`Admin::commit`] with a new configuration, if given.
    fn install(
        &mut self,
        rules: Rules,
        config: Option<Config>,
        published: &Published,
    ) -> Result<String, String> {
        let cfg = config.as_ref().unwrap_or(&self.config);
        let mut effective = self.health.effective_under(&cfg.health, &rules);
        if let Some(f) = &self.feedback {
            f.apply(&mut effective);
        }
        // Against a copy: a table that fails to build leaves no new ids,
        // virtual addresses or weights behind.
        let mut registry = self.registry.clone();
        let mut table = ServiceTable::build(&effective, &cfg.marks, &mut registry)
            .map_err(|e| e.to_string())?;
        self.registry = registry;
        // The workers steer by a mask fixed at start: a coarser persistence
        // mask added later spreads one client network over several workers.
        let steering = table.owner_mask();
        for s in &effective.services {
            if let Some(p) = s.persistence {
                if u32::from(p.netmask).count_ones() < u32::from(steering).count_ones() {
                    log::warn!(
                        "{}: persistence netmask {} is coarser than the {steering} the workers \
                         steer clients by since the start: with several workers its clients' \
                         templates may be per worker until a restart",
                        s.key,
                        p.netmask
                    );
                }
            }
        }
        table.set_timeouts(self.timeouts);
        table.set_conn_flags(ConnFlags::from(&cfg.conn));
        let mut summary = describe_change(&self.rules, &rules);
        if let Some(c) = config {
            for what in config_changes(&self.config, &c) {
                summary.push_str("; ");
                summary.push_str(&what);
            }
            self.health.set_rules(c.health.clone());
            self.config = c;
        }
        published.publish(Arc::new(table));
        self.rules = rules;
        self.effective = effective;
        Ok(summary)
    }

    /// A load report from `from` (dynamic feedback).
    pub fn feedback_report(&mut self, from: Ipv4Addr, load: f64) {
        let Some(f) = &mut self.feedback else {
            return;
        };
        // Only a configured real server's word counts (a datagram's source
        // is easily forged; this bounds what others can do).
        if self
            .rules
            .services
            .iter()
            .any(|s| s.dests.iter().any(|d| d.addr == from))
        {
            f.report(from, load, Instant::now());
        } else {
            log::debug!("feedback: a report from {from}, not a real server: ignored");
        }
    }

    /// Dynamic feedback's step (every `[feedback] interval_s`): the
    /// services are republished when a weight moved.
    pub fn feedback_tick(&mut self, published: &Published) {
        let Some(f) = &mut self.feedback else {
            return;
        };
        if !f.step(&self.rules, Instant::now()) {
            return;
        }
        let rules = self.rules.clone();
        if let Err(e) = self.install(rules, None, published) {
            log::error!("feedback: the services could not be rebuilt: {e}");
        }
    }

    /// The health checks due now (see [`Health::due`]).
    pub fn health_due(&mut self, now: Instant) -> Vec<Job> {
        self.health.due(&self.rules, now)
    }

    /// A health check's result: a server that goes up or down is logged
    /// and the services republished.
    pub fn health_report(&mut self, job: &Job, result: Result<(), String>, published: &Published) {
        let (key, addr, port) = job.server;
        let change = self
            .health
            .report(&job.server, result.is_ok(), Instant::now());
        let what = match (change, &result) {
            (Change::None, _) => return,
            (Change::Down, Err(why)) => format!("down: {why}"),
            (Change::Down, Ok(())) => "down".to_owned(),
            (Change::Up, _) => "up".to_owned(),
        };
        let service = super::metrics::service_label(&key);
        let rules = self.rules.clone();
        match self.install(rules, None, published) {
            Ok(_) => log::warn!("health: real server {addr}:{port} of {service} is {what}"),
            Err(e) => log::error!(
                "health: real server {addr}:{port} of {service} is {what}, but the services could not be rebuilt: {e}"
            ),
        }
    }

    /// Answers one request.
    /// Answers one request, parsed (name lookups done) before the lock is
    /// taken; `-R`'s lines come parsed too.
    fn handle(&mut self, parsed: Parsed, live: &Live<'_>) -> Response {
        let Parsed {
            shown,
            command: cmd,
            restore,
        } = parsed;
        if cmd.changes_rules() {
            let mut new = self.rules.clone();
            if let Err(e) = new.apply(&cmd) {
                return Response::fail(255, e);
            }
            return match self.commit(new, live.published) {
                Ok(summary) => {
                    log::info!("dlvsadm {shown}: {summary}");
                    Response::default()
                }
                Err(e) => Response::fail(255, e),
            };
        }
        match cmd {
            Command::Restore => self.restore(restore, live),
            // Answered before the lock (see `answer`).
            Command::List(o) if o.connections => Response::fail(1, "internal: -c under the lock"),
            Command::List(o) if o.timeout => {
                let t = self.timeouts.shown();
                Response::out(format!(
                    "Timeout (tcp tcpfin udp): {} {} {}\n",
                    t.tcp, t.tcp_fin, t.udp
                ))
            }
            Command::List(o) if o.daemon => Response::out(
                self.host
                    .as_ref()
                    .map(|h| h.daemons.listing(h.master.get()))
                    .unwrap_or_default(),
            ),
            Command::List(o) => {
                let ports = names_for(o.numeric);
                match listing::list(&self.view(live), &o, &names(&ports)) {
                    Ok(text) => Response::out(text),
                    Err(e) => Response::fail(1, e),
                }
            }
            Command::Save(numeric) => {
                let ports = names_for(numeric);
                Response::out(listing::save(&self.view(live), numeric, &names(&ports)))
            }
            Command::Zero(key) => self.zero(key, live),
            Command::SetTimeouts(t) => {
                let before = self.timeouts;
                self.timeouts.set(&t);
                let rules = self.rules.clone();
                match self.commit(rules, live.published) {
                    Ok(_) => {
                        let t = self.timeouts.shown();
                        log::info!(
                            "dlvsadm {shown}: timeouts now tcp {} s, tcpfin {} s, udp {} s",
                            t.tcp,
                            t.tcp_fin,
                            t.udp
                        );
                        Response::default()
                    }
                    Err(e) => {
                        self.timeouts = before;
                        Response::fail(255, e)
                    }
                }
            }
            Command::Drain(on) => self.drain(on, live),
            Command::StartDaemon(a) => self.start_daemon(&a),
            Command::StopDaemon(master) => self.stop_daemon(master),
            Command::Help | Command::Version => {
                Response::fail(2, "-h and -v are answered by dlvsadm itself")
            }
            _ => Response::fail(2, "not a command"),
        }
    }

    /// `-R`: every line a command that changes the services (parsed
    /// before the lock), all applied to a copy, published once. Blank
    /// lines and `#` comments are skipped (ipvsadm-restore filters them
    /// before ipvsadm sees the text).
    fn restore(&mut self, lines: Vec<RestoreLine>, live: &Live<'_>) -> Response {
        let mut new = self.rules.clone();
        let applied = lines.len();
        for l in lines {
            let result = l.command.and_then(|cmd| {
                if cmd.changes_rules() {
                    new.apply(&cmd).map_err(|e| e.to_string())
                } else {
                    Err(format!(
                        "{} has no place in a restore: only -A, -E, -D, -a, -e, -d and -C",
                        cmd.describe()
                    ))
                }
            });
            if let Err(e) = result {
                return Response::fail(
                    255,
                    format!("-R: line {}: {}: {e}; nothing was changed", l.line, l.text),
                );
            }
        }
        match self.commit(new, live.published) {
            Ok(summary) => {
                log::info!("dlvsadm -R: {applied} command(s): {summary}");
                Response::default()
            }
            Err(e) => Response::fail(255, format!("-R: {e}; nothing was changed")),
        }
    }

    /// `-Z`: the counters of one service's real servers, or of all, start
    /// again from 0 (the workers' own counters run on; listings subtract).
    fn zero(&mut self, key: Option<ServiceKey>, live: &Live<'_>) -> Response {
        if let Some(k) = key {
            if !self.rules.services.iter().any(|s| s.key == k) {
                return Response::fail(255, "No such service");
            }
        }
        let totals = dest_totals(live.stats);
        let ids: Vec<u32> = match key {
            Some(k) => self.registry.dest_ids(k).collect(),
            None => self
                .rules
                .services
                .iter()
                .flat_map(|s| self.registry.dest_ids(s.key))
                .collect(),
        };
        // The kernel zeroes the estimators too (`ip_vs_zero_estimator`).
        for id in &ids {
            let now = total_of(&totals, *id);
            self.zeroed.insert(*id, now);
            self.dest_rates.insert(*id, Estimator::new(&now));
        }
        for s in &self.rules.services {
            if key.map_or(true, |k| k == s.key) {
                let sum = self.service_stats(s.key, |id| total_of(&totals, id));
                self.service_rates.insert(s.key, Estimator::new(&sum));
            }
        }
        Response::default()
    }

    /// A service's traffic: the sum of its real servers' (`of` each, by
    /// id), departed ones included, as IPVS keeps it in the service.
    fn service_stats(&self, key: ServiceKey, of: impl Fn(u32) -> DestStats) -> DestStats {
        let mut sum = DestStats::default();
        for id in self.registry.dest_ids(key) {
            sum.add(&of(id));
        }
        sum
    }

    /// The rules with their live counts and counters, as listings show
    /// them (`-Z` subtracted).
    pub fn view(&self, live: &Live<'_>) -> View {
        self.view_with(live, true)
    }

    /// [`Admin::view`] with the counters whole, for Prometheus: its
    /// counters never go back (`-Z` is a listing's affair).
    pub fn metrics_view(&self, live: &Live<'_>) -> View {
        self.view_with(live, false)
    }

    fn view_with(&self, live: &Live<'_>, zeroed: bool) -> View {
        let (_, table) = live.published.current();
        let totals = dest_totals(live.stats);
        let stats_of = |id: u32| {
            let now = total_of(&totals, id);
            match self.zeroed.get(&id).filter(|_| zeroed) {
                Some(base) => now.since(base),
                None => now,
            }
        };
        let services = self
            .effective
            .services
            .iter()
            .map(|rule| {
                let running = table.services().iter().find(|s| s.key == rule.key);
                let dests = rule
                    .dests
                    .iter()
                    .map(|d| {
                        let id = self.registry.dest_id(rule.key, d.addr, d.port);
                        let counters = running
                            .and_then(|s| s.dests.iter().find(|t| Some(t.id) == id))
                            .map(|t| &t.counters);
                        let load = |f: fn(&crate::service::table::DestCounters) -> u32| {
                            counters.map(|c| f(c)).unwrap_or(0)
                        };
                        DestView {
                            rule: d.clone(),
                            active: load(|c| c.active.load(Ordering::Relaxed)),
                            inactive: load(|c| c.inactive.load(Ordering::Relaxed)),
                            persistent: load(|c| c.persist.load(Ordering::Relaxed)),
                            stats: id.map(stats_of).unwrap_or_default(),
                            rates: id
                                .and_then(|i| self.dest_rates.get(&i))
                                .map(Estimator::rates)
                                .unwrap_or_default(),
                        }
                    })
                    .collect();
                let stats = self.service_stats(rule.key, stats_of);
                ServiceView {
                    rule: ServiceRule {
                        dests: Vec::new(),
                        ..rule.clone()
                    },
                    dests,
                    stats,
                    rates: self
                        .service_rates
                        .get(&rule.key)
                        .map(Estimator::rates)
                        .unwrap_or_default(),
                }
            })
            .collect();
        let health = self
            .rules
            .services
            .iter()
            .flat_map(|s| s.dests.iter().map(move |d| (s.key, d.addr, d.port)))
            .filter_map(|k| {
                self.health.is_up(&k).map(|up| ServerHealth {
                    service: k.0,
                    addr: k.1,
                    port: k.2,
                    up,
                    state_changes: self.health.changes(&k),
                })
            })
            .collect();
        View {
            capacity: self.capacity,
            services,
            health,
        }
    }
}

/// Every worker's connections, asked of each at once (a worker answers a
/// chunk of its table per flush round); `None` if one has not answered
/// within 10 s (a stopped worker).
fn connections(live: &Live<'_>) -> Option<Vec<ConnRecord>> {
    let asked: Vec<u64> = live.dumps.iter().map(DumpSlot::ask).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut all = Vec::new();
    for (slot, gen) in live.dumps.iter().zip(asked) {
        loop {
            if let Some(mut records) = slot.take(gen) {
                all.append(&mut records);
                break;
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Some(all)
}

/// A real server's traffic in `totals` (nothing yet if it has no slot).
fn total_of(totals: &[DestStats], id: u32) -> DestStats {
    totals.get(id as usize).copied().unwrap_or_default()
}

/// Each real server's traffic summed over the lcores, by id.
fn dest_totals(stats: &[Arc<Mutex<Stats>>]) -> Vec<DestStats> {
    let mut sum: Vec<DestStats> = Vec::new();
    for s in stats {
        let s = s.lock().unwrap_or_else(|p| p.into_inner());
        if sum.len() < s.dests.len() {
            sum.resize(s.dests.len(), DestStats::default());
        }
        for (a, b) in sum.iter_mut().zip(&s.dests) {
            a.add(b);
        }
    }
    sum
}

/// Port names for a listing: none are read with `-n`.
fn names_for(numeric: bool) -> ServiceNames {
    if numeric {
        ServiceNames::default()
    } else {
        ServiceNames::system()
    }
}

fn names(ports: &ServiceNames) -> Names<'_> {
    Names {
        ports,
        host: &crate::service::names::host_name,
    }
}

/// The first part of the configuration that differs and cannot change
/// while the director runs.
fn needs_restart(old: &Config, new: &Config) -> Option<&'static str> {
    let checks: [(&str, bool); 12] = [
        ("[dpdk]", old.dpdk != new.dpdk),
        ("[[interface]]", old.interfaces != new.interfaces),
        ("[[neighbor]]", old.neighbors != new.neighbors),
        ("[[route]]", old.routes != new.routes),
        ("[arp]", old.arp != new.arp),
        ("[metrics]", old.metrics != new.metrics),
        ("[control]", old.control != new.control),
        ("[conn] capacity", old.conn.capacity != new.conn.capacity),
        ("[feedback]", old.feedback != new.feedback),
        ("[[vrrp]]", old.vrrp != new.vrrp),
        ("[sync]", old.sync != new.sync),
        ("[bgp]", old.bgp != new.bgp),
    ];
    checks.iter().find(|(_, changed)| *changed).map(|(s, _)| *s)
}

/// What a reload changes of the live part of the configuration.
fn config_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if old.marks != new.marks {
        out.push(format!(
            "[[mark]]: {} rule(s), was {}",
            new.marks.len(),
            old.marks.len()
        ));
    }
    if old.health != new.health {
        out.push(format!(
            "[[health]]: {} service(s) checked, was {}",
            new.health.len(),
            old.health.len()
        ));
    }
    if old.conn.sloppy != new.conn.sloppy {
        out.push(format!("[conn] sloppy = {}", new.conn.sloppy));
    }
    if old.conn.expire_nodest_conn != new.conn.expire_nodest_conn {
        out.push(format!(
            "[conn] expire_nodest_conn = {}",
            new.conn.expire_nodest_conn
        ));
    }
    out
}

/// "2 virtual service(s), 5 real server(s) (was 1, 3)".
fn describe_change(old: &Rules, new: &Rules) -> String {
    let count = |r: &Rules| {
        (
            r.services.len(),
            r.services.iter().map(|s| s.dests.len()).sum::<usize>(),
        )
    };
    let ((s0, d0), (s1, d1)) = (count(old), count(new));
    format!("{s1} virtual service(s), {d1} real server(s) (was {s0}, {d0})")
}

/// The open control socket; its file goes when this is dropped.
pub struct Bound {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for Bound {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Opens the socket at `path`: its directory is made if missing, a stale
/// socket file (no one answers on it) is replaced, one a live director
/// answers on is refused. Mode 0600.
pub fn bind(path: &Path) -> Result<Bound, AdminError> {
    let io = |err| AdminError::Io {
        path: path.to_owned(),
        err,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if UnixStream::connect(path).is_ok() {
            return Err(AdminError::InUse {
                path: path.to_owned(),
            });
        }
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(io(std::io::Error::other(
                "exists and is not a socket (not removed)",
            )));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    // Bound in a directory only this user may enter, made 0600 there, then
    // moved into place: nobody can connect while the mode is the umask's.
    let private = dir.join(format!(".dlvs-socket.{}", std::process::id()));
    {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::remove_dir_all(&private);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&private)
            .map_err(io)?;
    }
    let staged = private.join("socket");
    let bound = UnixListener::bind(&staged)
        .and_then(|l| {
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&staged, path)?;
            Ok(l)
        })
        .map_err(io);
    let _ = std::fs::remove_dir_all(&private);
    let listener = bound?;
    let bound = Bound {
        listener,
        path: path.to_owned(),
    };
    bound.listener.set_nonblocking(true).map_err(io)?;
    Ok(bound)
}

/// Answers requests until `stop`, then removes the socket file.
pub fn serve(bound: Bound, admin: &Mutex<Admin>, live: &Live<'_>, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match bound.listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = answer(stream, admin, live) {
                    log::warn!("control socket: a request failed: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                log::warn!("control socket: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// A request parsed before the admin lock is taken (parsing may ask the
/// resolver for host names).
struct Parsed {
    /// The words, for the log.
    shown: String,
    command: Command,
    /// `-R`'s lines.
    restore: Vec<RestoreLine>,
}

/// One command line of a `-R`.
struct RestoreLine {
    line: usize,
    text: String,
    command: Result<Command, String>,
}

/// Parses a request's words, and for `-R` each line of its input.
fn parse_request(req: &Request) -> Result<Parsed, String> {
    let words: Vec<&str> = req.args.iter().map(String::as_str).collect();
    let command = Command::parse(&words)?;
    let restore = match command {
        Command::Restore => req
            .stdin
            .lines()
            .enumerate()
            .filter_map(|(i, raw)| {
                let words = crate::service::rules_file::command_words(raw);
                (!words.is_empty()).then(|| RestoreLine {
                    line: i + 1,
                    text: raw.trim().to_owned(),
                    command: Command::parse(&words),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Parsed {
        shown: words.join(" "),
        command,
        restore,
    })
}

fn answer(mut stream: UnixStream, admin: &Mutex<Admin>, live: &Live<'_>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    // A client that stalls cannot hold the socket (and the rules) long:
    // the whole request within 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request not complete within 10 s",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut buf) {
            // A signal (SIGHUP, a check's child): read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r?,
        };
        if n == 0 {
            break;
        }
        if bytes.len() + n > MAX_REQUEST as usize {
            return Err(std::io::Error::other("request larger than 64 MiB"));
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&bytes);
    let response = match serde_json::from_str::<Request>(&text).map_err(|e| e.to_string()) {
        Err(e) => Response::fail(2, format!("malformed request: {e}")),
        Ok(req) => match parse_request(&req) {
            Err(e) => Response::fail(2, e),
            // -c waits on the workers: without the lock, which it does not need.
            Ok(Parsed {
                command: Command::List(o),
                ..
            }) if o.connections => match connections(live) {
                Some(records) => {
                    let ports = names_for(o.numeric);
                    Response::out(listing::connections(&records, &o, &names(&ports)))
                }
                None => Response::fail(1, "the workers did not list their connections in time"),
            },
            Ok(parsed) => admin
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .handle(parsed, live),
        },
    };
    let mut out = serde_json::to_string(&response).map_err(std::io::Error::other)?;
    out.push('\n');
    stream.write_all(out.as_bytes())
}
