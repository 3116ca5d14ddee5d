//! Health checks: keepalived's checkers (TCP_CHECK, HTTP_GET, MISC_CHECK)
//! for the real servers of the services that `[[health]]` names.
//!
//! The contract:
//!
//! - [`Health`] keeps each checked server's state and schedule; the
//!   control plane asks it for the checks that are due ([`Health::due`]),
//!   runs them off its lock (each in a thread of its own: a check blocks
//!   for up to its connect timeout), and reports each result
//!   ([`Health::report`]), which says whether the server went up or down.
//! - A server starts up (keepalived without `alpha`). A failed check is
//!   repeated `retry` times, `delay_before_retry` apart, before the server
//!   is down; one good check brings it back. Otherwise a server is checked
//!   every `delay_loop`.
//! - [`Health::effective`] turns the configured rules into those the data
//!   path runs: a down server quiesced (weight 0, `inhibit_on_failure`) or
//!   taken out; when the live servers' total weight is below `quorum`,
//!   every server out and the sorry server (if any) in, as keepalived's
//!   `update_quorum_state` does; also when no server is up.

pub mod check;
pub mod md5;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::config::health::{Check, HealthRule};
use crate::service::rules::ServiceKey;
use crate::service::{DestRule, Method, Rules};

/// A checked real server: its service, address and port.
pub type ServerKey = (ServiceKey, Ipv4Addr, u16);

/// One server's state.
#[derive(Debug, Clone)]
struct ServerState {
    up: bool,
    /// Failed attempts in a row (retries included).
    failures: u32,
    next: Instant,
    running: bool,
    changes: u64,
}

/// A check to run now.
#[derive(Debug, Clone)]
pub struct Job {
    pub server: ServerKey,
    pub check: Check,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub timeout: Duration,
}

/// The outcome of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Up,
    Down,
}

/// The checks and the servers' states.
#[derive(Debug, Default)]
pub struct Health {
    rules: Vec<HealthRule>,
    servers: HashMap<ServerKey, ServerState>,
}

impl Health {
    pub fn new(rules: Vec<HealthRule>) -> Health {
        Health {
            rules,
            servers: HashMap::new(),
        }
    }

    /// New rules (a reload); servers checked before keep their state.
    pub fn set_rules(&mut self, rules: Vec<HealthRule>) {
        self.rules = rules;
    }

    fn rule(&self, server: &ServerKey) -> Option<&HealthRule> {
        rule_for(&self.rules, server)
    }

    /// Whether a checked server is up (`None`: not checked).
    pub fn is_up(&self, server: &ServerKey) -> Option<bool> {
        self.servers.get(server).map(|s| s.up)
    }

    /// How many times a server went up or down.
    pub fn changes(&self, server: &ServerKey) -> u64 {
        self.servers.get(server).map_or(0, |s| s.changes)
    }

    /// The checks due at `now` among the configured real servers (those of
    /// `rules`), marked running; servers no longer configured are forgotten.
    pub fn due(&mut self, rules: &Rules, now: Instant) -> Vec<Job> {
        let mut jobs = Vec::new();
        let mut seen: HashSet<ServerKey> = HashSet::new();
        for s in &rules.services {
            for d in &s.dests {
                let key = (s.key, d.addr, d.port);
                let Some(rule) = rule_for(&self.rules, &key) else {
                    continue;
                };
                seen.insert(key);
                let st = self.servers.entry(key).or_insert(ServerState {
                    up: true,
                    failures: 0,
                    next: now,
                    running: false,
                    changes: 0,
                });
                if st.running || st.next > now {
                    continue;
                }
                st.running = true;
                jobs.push(Job {
                    server: key,
                    check: rule.check.clone(),
                    addr: d.addr,
                    // A real server of a fwmark or port-0 service has port 0:
                    // check the configured port then.
                    port: rule.port.unwrap_or(d.port),
                    timeout: rule.connect_timeout,
                });
            }
        }
        self.servers.retain(|k, _| seen.contains(k));
        jobs
    }

    /// The result of a check started by [`Health::due`].
    pub fn report(&mut self, server: &ServerKey, ok: bool, now: Instant) -> Change {
        let Some(rule) = self.rule(server).cloned() else {
            self.servers.remove(server);
            return Change::None;
        };
        let Some(st) = self.servers.get_mut(server) else {
            return Change::None;
        };
        st.running = false;
        if ok {
            st.failures = 0;
            st.next = now + rule.delay_loop;
            if !st.up {
                st.up = true;
                st.changes += 1;
                return Change::Up;
            }
            return Change::None;
        }
        st.failures += 1;
        if st.failures <= rule.retry {
            st.next = now + rule.delay_before_retry;
            return Change::None;
        }
        st.failures = 0;
        st.next = now + rule.delay_loop;
        if st.up {
            st.up = false;
            st.changes += 1;
            return Change::Down;
        }
        Change::None
    }

    /// The rules the data path runs: `rules` with the checks' verdicts.
    pub fn effective(&self, rules: &Rules) -> Rules {
        self.effective_under(&self.rules, rules)
    }

    /// [`Health::effective`] under other health rules (a reload's, before
    /// it is taken).
    pub fn effective_under(&self, health: &[HealthRule], rules: &Rules) -> Rules {
        let mut out = rules.clone();
        for s in &mut out.services {
            // The service's settings (quorum, sorry server) are its first
            // rule's; quiescing is each server's rule's.
            let Some(rule) = health.iter().find(|r| r.service == s.key) else {
                continue;
            };
            let up = |d: &DestRule| self.is_up(&(s.key, d.addr, d.port)).unwrap_or(true);
            let live_weight: u64 = s
                .dests
                .iter()
                .filter(|d| up(d))
                .map(|d| u64::from(d.weight))
                .sum();
            let any_up = s.dests.iter().any(up);
            let quorum = live_weight >= u64::from(rule.quorum) && any_up;
            let method = s.dests.first().map_or(Method::Nat, |d| d.method);
            let key = s.key;
            let inhibit = |d: &DestRule| {
                rule_for(health, &(key, d.addr, d.port))
                    .map_or(rule.inhibit_on_failure, |r| r.inhibit_on_failure)
            };
            let out_of_service =
                |d: &DestRule| !quorum || !self.is_up(&(key, d.addr, d.port)).unwrap_or(true);
            s.dests.retain(|d| !out_of_service(d) || inhibit(d));
            for d in &mut s.dests {
                if out_of_service(d) {
                    d.weight = 0;
                }
            }
            if let (false, Some((addr, port))) = (quorum, rule.sorry_server) {
                if !s.dests.iter().any(|d| (d.addr, d.port) == (addr, port)) {
                    s.dests.push(DestRule {
                        addr,
                        port,
                        method,
                        weight: 1,
                        u_threshold: 0,
                        l_threshold: 0,
                        line: 0,
                    });
                }
            }
        }
        out
    }
}

/// The rule that checks `server`: one naming it, else one for all of its
/// service's servers.
fn rule_for<'r>(rules: &'r [HealthRule], server: &ServerKey) -> Option<&'r HealthRule> {
    let (key, addr, port) = *server;
    let mine = |r: &&HealthRule| r.service == key;
    rules
        .iter()
        .filter(mine)
        .find(|r| {
            r.servers
                .as_ref()
                .is_some_and(|s| s.contains(&(addr, port)))
        })
        .or_else(|| rules.iter().filter(mine).find(|r| r.servers.is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::health::{parse, RawHealth};

    fn rules() -> Rules {
        Rules::parse(
            "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m -w 2\n\
             -a -t 10.0.0.100:80 -r 10.0.0.12:8080 -m -w 1\n-A -t 10.0.0.100:81 -s rr\n\
             -a -t 10.0.0.100:81 -r 10.0.0.11 -g\n",
            std::path::Path::new("t"),
        )
        .unwrap()
    }

    fn health(inhibit: bool, quorum: u32, sorry: Option<&str>) -> Health {
        Health::new(vec![parse(
            0,
            RawHealth {
                service: "tcp/10.0.0.100:80".into(),
                check: "tcp_connect".into(),
                delay_loop_s: Some(6.0),
                retry: Some(2),
                delay_before_retry_s: Some(1.0),
                inhibit_on_failure: Some(inhibit),
                quorum: Some(quorum),
                sorry_server: sorry.map(str::to_owned),
                ..RawHealth::default()
            },
        )
        .unwrap()])
    }

    fn web() -> ServiceKey {
        crate::config::health::service_key("tcp/10.0.0.100:80").unwrap()
    }

    #[test]
    fn retries_before_down_one_success_up() {
        let r = rules();
        let mut h = health(true, 1, None);
        let t0 = Instant::now();
        let jobs = h.due(&r, t0);
        // The checked service's two servers; the other service has no check.
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].port, 8080);
        assert!(
            h.due(&r, t0).is_empty(),
            "running checks are not started again"
        );
        let rs1 = (web(), "10.0.0.11".parse().unwrap(), 8080);
        let s = |n: u64| t0 + Duration::from_secs(n);
        // Two retries, a second apart, then down.
        assert_eq!(h.report(&rs1, false, s(0)), Change::None);
        assert!(h.due(&r, s(0)).is_empty());
        assert_eq!(h.due(&r, s(1)).len(), 1);
        assert_eq!(h.report(&rs1, false, s(1)), Change::None);
        assert_eq!(h.due(&r, s(2)).len(), 1);
        assert_eq!(h.report(&rs1, false, s(2)), Change::Down);
        assert_eq!(h.is_up(&rs1), Some(false));
        // Checked again a delay_loop later; one success: up.
        assert!(h.due(&r, s(7)).iter().all(|j| j.server != rs1));
        assert_eq!(h.due(&r, s(8)).len(), 1);
        assert_eq!(h.report(&rs1, true, s(8)), Change::Up);
        assert_eq!(h.changes(&rs1), 2);
    }

    #[test]
    fn the_effective_rules_quiesce_remove_and_fall_back() {
        let r = rules();
        let t0 = Instant::now();
        let rs1 = (web(), "10.0.0.11".parse().unwrap(), 8080);
        let rs2 = (web(), "10.0.0.12".parse().unwrap(), 8080);
        let down = |h: &mut Health, k: &ServerKey| {
            h.due(&r, t0);
            for _ in 0..3 {
                h.report(k, false, t0);
            }
            assert_eq!(h.is_up(k), Some(false));
        };
        let weights = |h: &Health| -> Vec<(String, u32)> {
            h.effective(&r).services[0]
                .dests
                .iter()
                .map(|d| (format!("{}:{}", d.addr, d.port), d.weight))
                .collect()
        };
        // inhibit_on_failure: weight 0.
        let mut h = health(true, 1, None);
        down(&mut h, &rs1);
        assert_eq!(
            weights(&h),
            [("10.0.0.11:8080".into(), 0), ("10.0.0.12:8080".into(), 1)]
        );
        // Without: taken out; the other service untouched.
        let mut h = health(false, 1, Some("10.0.0.99:80"));
        down(&mut h, &rs1);
        assert_eq!(weights(&h), [("10.0.0.12:8080".into(), 1)]);
        assert_eq!(h.effective(&r).services[1], r.services[1]);
        // Nobody up: the sorry server.
        down(&mut h, &rs2);
        assert_eq!(weights(&h), [("10.0.0.99:80".into(), 1)]);
        // A quorum of 2 with only rs2 (weight 1) up: the service is down.
        let mut h = health(true, 2, Some("10.0.0.99:80"));
        down(&mut h, &rs1);
        assert_eq!(
            weights(&h),
            [
                ("10.0.0.11:8080".into(), 0),
                ("10.0.0.12:8080".into(), 0),
                ("10.0.0.99:80".into(), 1)
            ]
        );
    }
}
