//! The service table the data path consults: a read-only snapshot built
//! on the control plane from the rules and `[[mark]]`s, shared by every
//! worker behind an `Arc`.
//!
//! - Lookup follows IPVS (net/netfilter/ipvs/ip_vs_ctl.c
//!   `ip_vs_service_find`): a packet with a firewall mark finds its fwmark
//!   service first; then (protocol, address, port); then the port-0
//!   service of (protocol, address), which matches every port.
//! - Each service holds its scheduler, built with the snapshot (Maglev's
//!   table, sh's and dh's buckets are built here, never per packet).
//! - Services and real servers have stable ids that survive a rebuild: the
//!   [`Registry`] (kept by the control plane across snapshots) gives a
//!   service the id it had under the same key and a real server the id it
//!   had under the same service, address and port, with the same shared
//!   [`DestCounters`]. Connections refer to real servers by id, so a
//!   rebuild loses neither them nor the counts the schedulers read.
//! - [`DestCounters`] are shared by every worker: active, inactive and
//!   persistent connection counts (IPVS's activeconns, inactconns,
//!   persistconns) and the OVERLOAD flag, as relaxed atomics. A worker
//!   changes them when it binds, re-states or frees a connection, and the
//!   schedulers read them through [`sched::Dests`]: IPVS's own counters are
//!   atomics read without a lock the same way.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hashbrown::HashMap;

use super::command::Timeouts;
use super::rules::{Method, Persistence, Protocol, Rules, ServiceKey};
use crate::config::MarkRule;
use crate::conn::tcp_state::TcpState;
use crate::sched::{self, Dests, SchedError, Scheduler};

/// Connection counts of one real server, shared by every worker.
#[derive(Debug, Default)]
pub struct DestCounters {
    pub active: AtomicU32,
    pub inactive: AtomicU32,
    pub persist: AtomicU32,
    /// IPVS's OVERLOAD flag: set when the upper threshold is reached,
    /// cleared below the lower one (ip_vs_conn.c `ip_vs_bind_dest`,
    /// `ip_vs_unbind_dest`).
    pub overloaded: AtomicBool,
}

fn decrement(a: &AtomicU32) {
    let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
}

impl DestCounters {
    /// Uncounts a freed connection from the count it was in.
    pub fn uncount(&self, template: bool, inactive: bool) {
        decrement(if template {
            &self.persist
        } else if inactive {
            &self.inactive
        } else {
            &self.active
        });
    }

    /// Moves a connection between the active and inactive counts (a TCP
    /// state change into or out of ESTABLISHED).
    pub fn set_active(&self, active: bool) {
        let (from, to) = if active {
            (&self.inactive, &self.active)
        } else {
            (&self.active, &self.inactive)
        };
        decrement(from);
        to.fetch_add(1, Ordering::Relaxed);
    }

    /// Active plus inactive connections (`ip_vs_dest_totalconns`).
    pub fn total(&self) -> u32 {
        self.active
            .load(Ordering::Relaxed)
            .saturating_add(self.inactive.load(Ordering::Relaxed))
    }
}

/// A real server in a snapshot.
#[derive(Debug, Clone)]
pub struct Dest {
    pub id: u32,
    pub addr: Ipv4Addr,
    /// 0: the port the client asked for (fwmark and port-0 services).
    pub port: u16,
    pub method: Method,
    pub weight: i32,
    /// The last non-zero weight (mh keeps a quiesced server's slots).
    pub last_weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub counters: Arc<DestCounters>,
}

impl Dest {
    /// Counts a new connection bound to this server (`ip_vs_bind_dest`):
    /// templates as persistent, others as inactive until established; and
    /// sets OVERLOAD when the upper threshold is reached.
    pub fn bind(&self, template: bool) {
        let c = &self.counters;
        if template {
            c.persist.fetch_add(1, Ordering::Relaxed);
            return;
        }
        c.inactive.fetch_add(1, Ordering::Relaxed);
        if self.u_threshold != 0 && c.total() >= self.u_threshold {
            c.overloaded.store(true, Ordering::Relaxed);
        }
    }

    /// Uncounts a freed connection, from whichever count it was in
    /// (`ip_vs_unbind_dest`), and clears OVERLOAD as IPVS does: below the
    /// lower threshold if one is set, else below 3/4 of the upper one.
    pub fn unbind(&self, template: bool, inactive: bool) {
        let c = &self.counters;
        c.uncount(template, inactive);
        let total = c.total();
        let clear = if self.l_threshold != 0 {
            total < self.l_threshold
        } else if self.u_threshold != 0 {
            (total as u64) * 4 < (self.u_threshold as u64) * 3
        } else {
            true
        };
        // Read first: a store to the line the other workers read would
        // bounce it between cores on every freed connection.
        if clear && c.overloaded.load(Ordering::Relaxed) {
            c.overloaded.store(false, Ordering::Relaxed);
        }
    }
}

/// A virtual service in a snapshot.
#[derive(Debug)]
pub struct Service {
    pub id: u32,
    pub key: ServiceKey,
    pub sched: Box<dyn Scheduler>,
    pub persistence: Option<Persistence>,
    pub one_packet: bool,
    pub dests: Vec<Dest>,
    /// The rules file line of its `-A`.
    pub line: usize,
}

impl Service {
    /// The service's port, 0 for fwmark and port-0 services.
    pub fn port(&self) -> u16 {
        match self.key {
            ServiceKey::Addr { port, .. } => port,
            ServiceKey::Fwmark(_) => 0,
        }
    }
}

/// The destinations as the schedulers read them.
impl Dests for Vec<Dest> {
    fn len(&self) -> usize {
        <[Dest]>::len(self)
    }
    fn addr(&self, i: usize) -> Ipv4Addr {
        self[i].addr
    }
    fn port(&self, i: usize) -> u16 {
        self[i].port
    }
    fn weight(&self, i: usize) -> i32 {
        self[i].weight
    }
    fn last_weight(&self, i: usize) -> i32 {
        self[i].last_weight
    }
    fn overloaded(&self, i: usize) -> bool {
        self[i].counters.overloaded.load(Ordering::Relaxed)
    }
    fn available(&self, _i: usize) -> bool {
        // A snapshot holds only configured servers; a removed one is not
        // in it (its connections keep their id until they expire).
        true
    }
    fn active(&self, i: usize) -> u32 {
        self[i].counters.active.load(Ordering::Relaxed)
    }
    fn inactive(&self, i: usize) -> u32 {
        self[i].counters.inactive.load(Ordering::Relaxed)
    }
}

/// What the registry keeps of a real server: its id, its counters, its
/// last non-zero weight and its upper threshold.
#[derive(Debug, Clone)]
struct DestEntry {
    id: u32,
    counters: Arc<DestCounters>,
    last_weight: i32,
    u_threshold: u32,
}

/// Stable ids and shared counters, kept by the control plane across
/// snapshots. (A clone shares the counters.)
#[derive(Debug, Default, Clone)]
pub struct Registry {
    next_service: u32,
    next_dest: u32,
    services: HashMap<ServiceKey, u32>,
    /// By (service, address, port).
    dests: HashMap<(ServiceKey, Ipv4Addr, u16), DestEntry>,
    /// Every virtual address any snapshot had: steering keeps treating a
    /// departed one as virtual, so its lingering connections stay put.
    vaddrs: hashbrown::HashSet<Ipv4Addr>,
    /// The steering mask, fixed by the first snapshot: a later one may not
    /// move clients (and their connections) to other workers.
    owner_mask: Option<Ipv4Addr>,
}

impl Registry {
    fn service_id(&mut self, key: ServiceKey) -> u32 {
        let next = &mut self.next_service;
        *self.services.entry(key).or_insert_with(|| {
            *next += 1;
            *next
        })
    }

    /// The id and counters of a real server, and its last non-zero weight
    /// (updated with `weight`).
    fn dest(
        &mut self,
        key: ServiceKey,
        addr: Ipv4Addr,
        port: u16,
        weight: i32,
        u_threshold: u32,
    ) -> DestEntry {
        let next = &mut self.next_dest;
        let e = self.dests.entry((key, addr, port)).or_insert_with(|| {
            *next += 1;
            DestEntry {
                id: *next,
                counters: Arc::default(),
                last_weight: weight,
                u_threshold,
            }
        });
        if weight > 0 {
            e.last_weight = weight;
        }
        // An upper threshold removed or raised lifts OVERLOAD at once, as
        // an edit does in the kernel (ip_vs_ctl.c `__ip_vs_update_dest`).
        if u_threshold == 0 || u_threshold > e.u_threshold {
            e.counters.overloaded.store(false, Ordering::Relaxed);
        }
        e.u_threshold = u_threshold;
        e.clone()
    }

    /// The ids of every real server a service has had, in any snapshot
    /// (a service's statistics are the sum of its servers', departed ones
    /// included, as IPVS keeps them in the service's own counters).
    pub fn dest_ids(&self, key: ServiceKey) -> impl Iterator<Item = u32> + '_ {
        self.dests
            .iter()
            .filter(move |((k, _, _), _)| *k == key)
            .map(|(_, e)| e.id)
    }

    /// The id a real server has (or had) under a service.
    pub fn dest_id(&self, key: ServiceKey, addr: Ipv4Addr, port: u16) -> Option<u32> {
        self.dests.get(&(key, addr, port)).map(|e| e.id)
    }

    /// The counters of a real server by id, also of one no longer in the
    /// current snapshot (its connections still uncount themselves).
    pub fn counters(&self, id: u32) -> Option<&Arc<DestCounters>> {
        self.dests
            .values()
            .find(|e| e.id == id)
            .map(|e| &e.counters)
    }
}

/// The current snapshot, published by the control plane and picked up by
/// each worker between bursts: a worker compares the generation (one
/// atomic load) and takes the new table (a lock, only then) when it moved.
/// A table is swapped whole, so no packet ever sees half a change.
#[derive(Debug)]
pub struct Published {
    generation: AtomicU64,
    table: Mutex<Arc<ServiceTable>>,
}

impl Published {
    pub fn new(table: Arc<ServiceTable>) -> Published {
        Published {
            generation: AtomicU64::new(0),
            table: Mutex::new(table),
        }
    }

    /// Replaces the table; workers take it at their next check.
    pub fn publish(&self, table: Arc<ServiceTable>) {
        *self.table.lock().unwrap_or_else(|p| p.into_inner()) = table;
        self.generation.fetch_add(1, Ordering::Release);
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current table and its generation.
    pub fn current(&self) -> (u64, Arc<ServiceTable>) {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        (self.generation(), Arc::clone(&t))
    }
}

/// Why a snapshot could not be built.
#[derive(Debug, thiserror::Error)]
#[error("rules line {line}: {err}")]
pub struct BuildError {
    pub line: usize,
    #[source]
    pub err: SchedError,
}

/// The virtual services, ready for lookup.
#[derive(Debug)]
pub struct ServiceTable {
    services: Vec<Service>,
    by_addr: HashMap<(u8, Ipv4Addr, u16), usize, foldhash::fast::RandomState>,
    by_mark: HashMap<u32, usize, foldhash::fast::RandomState>,
    marks: Vec<MarkRule>,
    /// Real servers by id (ids are dense): (service index, destination
    /// index). Every freed connection looks its server up here: an array,
    /// not a hash map.
    dest_index: Vec<Option<(usize, usize)>>,
    /// Counters of real servers no longer configured, whose connections
    /// may still be alive (IPVS's trash).
    departed: HashMap<u32, Arc<DestCounters>, foldhash::fast::RandomState>,
    /// The addresses of the TCP/UDP services, and of those of earlier
    /// snapshots (see [`Registry`]).
    vaddrs: hashbrown::HashSet<Ipv4Addr, foldhash::fast::RandomState>,
    /// The coarsest persistence netmask of the first snapshot (steering
    /// keeps a template's clients on one worker; fixed for the run).
    owner_mask: Ipv4Addr,
    /// Connection timeouts by state (`ipvsadm --set`).
    timeouts: StateTimeouts,
    /// `[conn]`'s switches, which a reload may change.
    conn_flags: ConnFlags,
}

/// How connections are kept: `[conn] sloppy` and `expire_nodest_conn`
/// (IPVS's sysctls of those names). They travel with the table so that a
/// reload of the configuration reaches every worker at its next swap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnFlags {
    pub sloppy: bool,
    pub expire_nodest_conn: bool,
}

impl From<&crate::config::ConnConfig> for ConnFlags {
    fn from(c: &crate::config::ConnConfig) -> Self {
        ConnFlags {
            sloppy: c.sloppy,
            expire_nodest_conn: c.expire_nodest_conn,
        }
    }
}

/// The timeout of each connection state, in µs: IPVS's defaults
/// (ip_vs_proto_tcp.c `tcp_timeouts`, ip_vs_proto_udp.c), of which
/// `ipvsadm --set tcp tcpfin udp` changes ESTABLISHED, FIN_WAIT and UDP's
/// (ip_vs_ctl.c `ip_vs_set_timeout`; 0 keeps one as it is). A new value
/// applies from a connection's next state change or packet, as in the
/// kernel, where it applies when the timer is next armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTimeouts {
    tcp_us: [u64; TcpState::ALL.len()],
    udp_us: u64,
}

impl Default for StateTimeouts {
    fn default() -> Self {
        StateTimeouts {
            tcp_us: TcpState::ALL.map(|s| u64::from(s.timeout_s()) * 1_000_000),
            // ip_vs_proto_udp.c: 5 minutes.
            udp_us: 300_000_000,
        }
    }
}

impl StateTimeouts {
    #[inline(always)]
    pub fn tcp_us(&self, state: TcpState) -> u64 {
        self.tcp_us[state as usize]
    }

    #[inline(always)]
    pub fn udp_us(&self) -> u64 {
        self.udp_us
    }

    /// `--set`: each value in seconds, 0 for unchanged.
    pub fn set(&mut self, t: &Timeouts) {
        let us = |s: u32| u64::from(s) * 1_000_000;
        if t.tcp != 0 {
            self.tcp_us[TcpState::Established as usize] = us(t.tcp);
        }
        if t.tcp_fin != 0 {
            self.tcp_us[TcpState::FinWait as usize] = us(t.tcp_fin);
        }
        if t.udp != 0 {
            self.udp_us = us(t.udp);
        }
    }

    /// What `ipvsadm -L --timeout` shows: tcp, tcpfin, udp in seconds.
    pub fn shown(&self) -> Timeouts {
        let s = |us: u64| (us / 1_000_000) as u32;
        Timeouts {
            tcp: s(self.tcp_us(TcpState::Established)),
            tcp_fin: s(self.tcp_us(TcpState::FinWait)),
            udp: s(self.udp_us),
        }
    }
}

impl Default for ServiceTable {
    /// No services.
    fn default() -> Self {
        ServiceTable {
            services: Vec::new(),
            by_addr: HashMap::default(),
            by_mark: HashMap::default(),
            marks: Vec::new(),
            dest_index: Vec::new(),
            departed: HashMap::default(),
            vaddrs: hashbrown::HashSet::default(),
            owner_mask: Ipv4Addr::BROADCAST,
            timeouts: StateTimeouts::default(),
            conn_flags: ConnFlags::default(),
        }
    }
}

fn proto_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    }
}

impl ServiceTable {
    /// The connection timeouts.
    #[inline(always)]
    pub fn timeouts(&self) -> &StateTimeouts {
        &self.timeouts
    }

    /// Replaces the connection timeouts (before it is published).
    pub fn set_timeouts(&mut self, t: StateTimeouts) {
        self.timeouts = t;
    }

    /// `[conn]`'s switches.
    #[inline(always)]
    pub fn conn_flags(&self) -> ConnFlags {
        self.conn_flags
    }

    /// Replaces `[conn]`'s switches (before it is published).
    pub fn set_conn_flags(&mut self, f: ConnFlags) {
        self.conn_flags = f;
    }

    /// Builds the snapshot of `rules` with the director's `marks`.
    pub fn build(
        rules: &Rules,
        marks: &[MarkRule],
        reg: &mut Registry,
    ) -> Result<ServiceTable, BuildError> {
        let mut t = ServiceTable {
            marks: marks.to_vec(),
            ..ServiceTable::default()
        };
        for r in &rules.services {
            let dests: Vec<Dest> = r
                .dests
                .iter()
                .map(|d| {
                    let weight = d.weight.min(i32::MAX as u32) as i32;
                    let e = reg.dest(r.key, d.addr, d.port, weight, d.u_threshold);
                    Dest {
                        id: e.id,
                        addr: d.addr,
                        port: d.port,
                        method: d.method,
                        weight,
                        last_weight: e.last_weight,
                        u_threshold: d.u_threshold,
                        l_threshold: d.l_threshold,
                        counters: e.counters,
                    }
                })
                .collect();
            // The kernel gives the -b flags a meaning in sh and mh only and
            // ignores them elsewhere (the rules parser already refused
            // sh-*/mh-* names on other schedulers).
            let flags = match r.scheduler.as_str() {
                "sh" | "mh" => sched::SchedFlags {
                    fallback: r.flags.fallback,
                    port: r.flags.port,
                },
                _ => sched::SchedFlags::default(),
            };
            let scheduler = sched::build(&r.scheduler, flags, &dests)
                .map_err(|err| BuildError { line: r.line, err })?;
            let i = t.services.len();
            for (j, d) in dests.iter().enumerate() {
                let id = d.id as usize;
                if t.dest_index.len() <= id {
                    t.dest_index.resize(id + 1, None);
                }
                t.dest_index[id] = Some((i, j));
            }
            match r.key {
                ServiceKey::Addr {
                    protocol,
                    addr,
                    port,
                } => {
                    t.by_addr.insert((proto_number(protocol), addr, port), i);
                    reg.vaddrs.insert(addr);
                }
                ServiceKey::Fwmark(m) => {
                    t.by_mark.insert(m, i);
                }
            }
            if let Some(p) = r.persistence {
                t.owner_mask = Ipv4Addr::from(u32::from(t.owner_mask) & u32::from(p.netmask));
            }
            t.services.push(Service {
                id: reg.service_id(r.key),
                key: r.key,
                sched: scheduler,
                persistence: r.persistence,
                one_packet: r.one_packet,
                dests,
                line: r.line,
            });
        }
        // Departed servers that still have connections (or templates):
        // those connections uncount themselves here, and the data path
        // checks a client packet's server only while there are some.
        for e in reg.dests.values() {
            let c = &e.counters;
            let held = c.total() > 0 || c.persist.load(Ordering::Relaxed) > 0;
            if t.dest(e.id).is_none() && held {
                t.departed.insert(e.id, Arc::clone(&e.counters));
            }
        }
        t.vaddrs.extend(reg.vaddrs.iter().copied());
        t.owner_mask = *reg.owner_mask.get_or_insert(t.owner_mask);
        Ok(t)
    }

    /// Whether a real server of an earlier snapshot is no longer
    /// configured (its connections may linger).
    #[inline(always)]
    pub fn has_departed(&self) -> bool {
        !self.departed.is_empty()
    }

    /// A configured real server by id: its service and itself.
    #[inline]
    pub fn dest(&self, id: u32) -> Option<(&Service, &Dest)> {
        let (s, d) = (*self.dest_index.get(id as usize)?)?;
        let svc = &self.services[s];
        Some((svc, &svc.dests[d]))
    }

    /// Uncounts a freed connection of real server `id`, configured or
    /// departed (see [`Dest::unbind`]).
    pub fn unbind(&self, id: u32, template: bool, inactive: bool) {
        if let Some((_, d)) = self.dest(id) {
            d.unbind(template, inactive);
        } else if let Some(c) = self.departed.get(&id) {
            c.uncount(template, inactive);
        }
    }

    /// Moves a connection of real server `id` between its active and
    /// inactive counts.
    pub fn set_active(&self, id: u32, active: bool) {
        let c = match self.dest(id) {
            Some((_, d)) => &d.counters,
            None => match self.departed.get(&id) {
                Some(c) => c,
                None => return,
            },
        };
        c.set_active(active);
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// One more than the highest real server id, configured or departed
    /// (the size of a per-id counter array).
    pub fn dest_id_bound(&self) -> usize {
        let departed = self.departed.keys().max().map_or(0, |&m| m as usize + 1);
        // The array ends at the highest configured id.
        self.dest_index.len().max(departed)
    }

    /// The mask steering applies to client addresses (see
    /// `datapath::steer`): the AND of every persistence netmask.
    pub fn owner_mask(&self) -> Ipv4Addr {
        self.owner_mask
    }

    /// The mark the director's `[[mark]]` rules give a packet (the first
    /// matching rule's), if any.
    #[inline]
    pub fn mark(&self, proto: u8, daddr: Ipv4Addr, dport: u16) -> Option<u32> {
        self.marks
            .iter()
            .find(|m| m.matches(proto, daddr, dport))
            .map(|m| m.mark)
    }

    /// The service a packet of `proto` to `daddr:dport` belongs to, and
    /// its index (ip_vs_ctl.c `ip_vs_service_find`: fwmark, then exact,
    /// then port 0).
    #[inline]
    pub fn lookup(&self, proto: u8, daddr: Ipv4Addr, dport: u16) -> Option<(usize, &Service)> {
        if !self.by_mark.is_empty() {
            if let Some(&i) = self
                .mark(proto, daddr, dport)
                .and_then(|m| self.by_mark.get(&m))
            {
                return Some((i, &self.services[i]));
            }
        }
        let i = *self
            .by_addr
            .get(&(proto, daddr, dport))
            .or_else(|| self.by_addr.get(&(proto, daddr, 0)))?;
        Some((i, &self.services[i]))
    }

    /// Whether some service listens on `daddr` (any protocol, port or
    /// mark): traffic to it that matches no service is the director's to
    /// count and drop, not to forward.
    #[inline]
    pub fn is_virtual(&self, daddr: Ipv4Addr) -> bool {
        self.vaddrs.contains(&daddr)
            || !self.by_mark.is_empty()
                && self
                    .marks
                    .iter()
                    .any(|m| m.destination.contains(daddr) && self.by_mark.contains_key(&m.mark))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{L4Proto, Prefix};
    use std::path::Path;

    const RULES: &str = "\
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m -w 1
-a -t 10.0.0.100:80 -r 10.0.0.12:80 -m -w 2 -x 2 -y 1
-A -u 10.0.0.100:0 -s sh -b sh-port -p 60
-a -u 10.0.0.100:0 -r 10.0.0.11:0 -g
-A -f 7 -s mh -p
-a -f 7 -r 10.0.0.13:0 -i
";

    fn table(reg: &mut Registry, text: &str) -> ServiceTable {
        let rules = Rules::parse(text, Path::new("t.rules")).unwrap();
        let marks = [MarkRule {
            mark: 7,
            destination: "10.0.0.200/32".parse::<Prefix>().unwrap(),
            protocol: Some(L4Proto::Tcp),
            ports: vec![80, 443],
        }];
        ServiceTable::build(&rules, &marks, reg).unwrap()
    }

    #[test]
    fn lookup_follows_ipvs_order() {
        let t = table(&mut Registry::default(), RULES);
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        assert_eq!(t.lookup(6, vip, 80).unwrap().0, 0);
        assert!(t.lookup(6, vip, 81).is_none(), "no TCP port-0 service");
        assert_eq!(
            t.lookup(17, vip, 53).unwrap().0,
            1,
            "UDP port 0 matches every port"
        );
        let marked = Ipv4Addr::new(10, 0, 0, 200);
        assert_eq!(t.lookup(6, marked, 443).unwrap().0, 2, "fwmark");
        assert!(t.lookup(6, marked, 22).is_none(), "not a marked port");
        assert!(
            t.lookup(17, marked, 443).is_none(),
            "not the marked protocol"
        );
        assert!(t.is_virtual(vip) && t.is_virtual(marked));
        assert!(!t.is_virtual(Ipv4Addr::new(10, 0, 0, 2)));
    }

    #[test]
    fn ids_and_counters_survive_a_rebuild() {
        let mut reg = Registry::default();
        let a = table(&mut reg, RULES);
        let d = &a.services()[0].dests[1];
        d.bind(false);
        let id = d.id;
        // The same server, reweighted, in a rebuilt table with a new server
        // in front of it.
        let edited = RULES.replace(
            "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m -w 1",
            "-a -t 10.0.0.100:80 -r 10.0.0.10:80 -m\n-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m -w 0",
        );
        let b = table(&mut reg, &edited);
        let s = &b.services()[0];
        assert_eq!(s.id, a.services()[0].id);
        let d2 = s
            .dests
            .iter()
            .find(|d| d.addr == Ipv4Addr::new(10, 0, 0, 12))
            .unwrap();
        assert_eq!(d2.id, id);
        assert_eq!(
            d2.counters.inactive.load(Ordering::Relaxed),
            1,
            "counts kept"
        );
        let q = s
            .dests
            .iter()
            .find(|d| d.addr == Ipv4Addr::new(10, 0, 0, 11))
            .unwrap();
        assert_eq!(
            (q.weight, q.last_weight),
            (0, 1),
            "quiesced keeps its last weight"
        );
        assert!(reg.counters(id).is_some());
    }

    #[test]
    fn thresholds_set_and_clear_overload_as_ipvs() {
        let t = table(&mut Registry::default(), RULES);
        let d = &t.services()[0].dests[1]; // -x 2 -y 1
        let over = || d.counters.overloaded.load(Ordering::Relaxed);
        d.bind(false);
        assert!(!over());
        d.bind(false);
        assert!(over(), "2 >= u_threshold 2");
        d.unbind(false, true);
        assert!(over(), "1 is not below l_threshold 1");
        d.unbind(false, true);
        assert!(!over(), "0 < 1");
        // Active/inactive moves.
        d.bind(false);
        d.counters.set_active(true);
        assert_eq!(d.counters.active.load(Ordering::Relaxed), 1);
        assert_eq!(d.counters.inactive.load(Ordering::Relaxed), 0);
        d.unbind(false, false);
        assert_eq!(d.counters.total(), 0);
        // Templates count as persistent only.
        d.bind(true);
        assert_eq!(
            (
                d.counters.persist.load(Ordering::Relaxed),
                d.counters.total()
            ),
            (1, 0)
        );
    }

    #[test]
    fn steering_is_stable_across_snapshots() {
        let mut reg = Registry::default();
        let a = table(&mut reg, RULES);
        let mask = a.owner_mask();
        let b = table(
            &mut reg,
            "-A -t 10.0.0.101:80 -s rr -p 60 -M 255.255.0.0\n-a -t 10.0.0.101:80 -r 10.0.0.11 -g\n",
        );
        assert_eq!(b.owner_mask(), mask, "fixed by the first snapshot");
        assert!(
            b.is_virtual(Ipv4Addr::new(10, 0, 0, 100)),
            "a departed VIP stays virtual"
        );
        assert!(
            b.lookup(6, Ipv4Addr::new(10, 0, 0, 100), 80).is_none(),
            "but has no service"
        );
    }

    #[test]
    fn raising_or_removing_a_threshold_lifts_overload() {
        let mut reg = Registry::default();
        let a = table(&mut reg, RULES);
        let d = &a.services()[0].dests[1]; // -x 2 -y 1
        d.bind(false);
        d.bind(false);
        assert!(d.counters.overloaded.load(Ordering::Relaxed));
        let b = table(&mut reg, &RULES.replace("-w 2 -x 2 -y 1", "-w 2 -x 10"));
        let d2 = &b.services()[0].dests[1];
        assert!(!d2.counters.overloaded.load(Ordering::Relaxed), "-x raised");
        assert_eq!(d2.counters.total(), 2, "counts kept");
    }

    #[test]
    fn departed_servers_keep_their_counters() {
        let mut reg = Registry::default();
        let a = table(&mut reg, RULES);
        let d = &a.services()[0].dests[0];
        let id = d.id;
        d.bind(false);
        let counters = Arc::clone(&d.counters);
        let b = table(
            &mut reg,
            &RULES.replace("-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m -w 1\n", ""),
        );
        assert!(b.dest(id).is_none());
        b.set_active(id, true);
        assert_eq!(counters.active.load(Ordering::Relaxed), 1);
        b.unbind(id, false, false);
        assert_eq!(counters.total(), 0, "its last connection uncounted");
    }

    #[test]
    fn the_schedulers_read_the_snapshot() {
        let t = table(&mut Registry::default(), RULES);
        let s = &t.services()[0];
        let mut st = s.sched.new_state(1);
        let input = sched::Input {
            saddr: Ipv4Addr::new(198, 51, 100, 7),
            sport: 40000,
            daddr: Ipv4Addr::new(10, 0, 0, 100),
            dport: 80,
            protocol: 6,
            now_us: 0,
        };
        let picks: Vec<usize> = (0..4)
            .map(|_| s.sched.schedule(&mut st, &s.dests, &input).unwrap())
            .collect();
        assert_eq!(picks, vec![0, 1, 0, 1], "rr");
    }
}
