//! Dynamic feedback: real servers report their load and the director
//! adjusts their weights by LVS's dynamic feedback rule
//! (<http://www.linuxvirtualserver.org/docs/scheduling.html>, "Dynamic
//! Feedback Load Balancing Scheduling"):
//!
//! ```text
//! new_weight = weight + A * cube_root(0.95 - aggregate_load)
//! ```
//!
//! bounded between 1 and `max_weight`, computed every `interval_s` from the
//! current live weight, so a change is applied a step at a time.
//!
//! The protocol: a UDP datagram to `[feedback] listen` holding the line
//! `load VALUE` (VALUE the server's aggregate load, 0 idle, 1 busy, more
//! overloaded; e.g. the load average over the CPU count), from the real
//! server's address: it applies to that address in every service. A shell
//! speaks it: `echo "load 0.42" > /dev/udp/10.0.0.2/8999` (bash), or
//! scripts/dlvs-agent, which sends the load average over the CPU count. A server whose reports stop for three intervals
//! goes back to its configured weight; a quiesced one (weight 0) stays so.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use super::health::ServerKey;
use crate::config::FeedbackConfig;
use crate::service::Rules;

/// A report's load: `load VALUE`.
pub fn parse_report(text: &str) -> Option<f64> {
    let mut words = text.split_whitespace();
    if words.next()? != "load" {
        return None;
    }
    let v: f64 = words.next()?.parse().ok()?;
    (words.next().is_none() && v.is_finite() && v >= 0.0).then_some(v)
}

/// The loads reported and the live weights.
#[derive(Debug)]
pub struct Feedback {
    pub config: FeedbackConfig,
    loads: HashMap<Ipv4Addr, (f64, Instant)>,
    weights: HashMap<ServerKey, f64>,
}

impl Feedback {
    pub fn new(config: FeedbackConfig) -> Feedback {
        Feedback {
            config,
            loads: HashMap::new(),
            weights: HashMap::new(),
        }
    }

    /// A report from `from`.
    pub fn report(&mut self, from: Ipv4Addr, load: f64, now: Instant) {
        self.loads.insert(from, (load, now));
    }

    /// One step of the rule for every real server of `rules` (the
    /// configured ones); true if a weight moved.
    pub fn step(&mut self, rules: &Rules, now: Instant) -> bool {
        let stale = self.config.interval * 3;
        let mut next = HashMap::new();
        for s in &rules.services {
            for d in &s.dests {
                let key = (s.key, d.addr, d.port);
                let Some(&(load, at)) = self.loads.get(&d.addr) else {
                    continue;
                };
                if now.duration_since(at) > stale || d.weight == 0 {
                    continue;
                }
                let current = self
                    .weights
                    .get(&key)
                    .copied()
                    .unwrap_or(f64::from(d.weight));
                let w = current + self.config.alpha * (0.95 - load).cbrt();
                next.insert(key, w.clamp(1.0, f64::from(self.config.max_weight)));
            }
        }
        let moved = next.len() != self.weights.len()
            || next
                .iter()
                .any(|(k, w)| self.weights.get(k).map(|o| o.round()) != Some(w.round()));
        self.weights = next;
        moved
    }

    /// The live weights into `rules` (the ones the data path runs): a
    /// server at weight 0 (quiesced, or down by its checks) stays there.
    pub fn apply(&self, rules: &mut Rules) {
        for s in &mut rules.services {
            for d in &mut s.dests {
                if d.weight == 0 {
                    continue;
                }
                if let Some(w) = self.weights.get(&(s.key, d.addr, d.port)) {
                    d.weight = w.round() as u32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn cfg() -> FeedbackConfig {
        FeedbackConfig {
            listen: "10.0.0.2:8999".parse().unwrap(),
            interval: Duration::from_secs(1),
            alpha: 5.0,
            max_weight: 20,
        }
    }

    #[test]
    fn reports_are_read() {
        assert_eq!(parse_report("load 0.42\n"), Some(0.42));
        assert_eq!(parse_report("load 3"), Some(3.0));
        assert_eq!(parse_report("load -1"), None);
        assert_eq!(parse_report("load NaN"), None);
        assert_eq!(parse_report("cpu 0.5"), None);
        assert_eq!(parse_report("load 0.5 0.6"), None);
    }

    #[test]
    fn the_rule_moves_weights_a_step_at_a_time_within_bounds() {
        let rules = Rules::parse(
            "-A -t 10.0.0.100:80 -s wrr\n-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m -w 5\n\
             -a -t 10.0.0.100:80 -r 10.0.0.12:8080 -m -w 5\n-a -t 10.0.0.100:80 -r 10.0.0.13:8080 -m -w 0\n",
            std::path::Path::new("t"),
        )
        .unwrap();
        let mut f = Feedback::new(cfg());
        let t0 = Instant::now();
        f.report("10.0.0.11".parse().unwrap(), 0.95 - 0.125, t0);
        f.report("10.0.0.12".parse().unwrap(), 0.95 + 1.0, t0);
        f.report("10.0.0.13".parse().unwrap(), 0.0, t0);
        assert!(f.step(&rules, t0));
        let weights = |f: &Feedback| {
            let mut r = rules.clone();
            f.apply(&mut r);
            r.services[0]
                .dests
                .iter()
                .map(|d| d.weight)
                .collect::<Vec<_>>()
        };
        // 5 + 5 * cbrt(0.125) = 7.5 -> 8; 5 + 5 * cbrt(-1) = 0 -> at least 1;
        // a quiesced server stays at 0.
        assert_eq!(weights(&f), [8, 1, 0]);
        // From the live weight: 7.5 + 2.5 = 10, then 12.5, ... at most 20.
        f.step(&rules, t0);
        assert_eq!(weights(&f)[0], 10);
        for _ in 0..10 {
            f.step(&rules, t0);
        }
        assert_eq!(weights(&f)[0], 20);
        // Reports stop: after three intervals the configured weights return.
        f.step(&rules, t0 + Duration::from_secs(4));
        assert_eq!(weights(&f), [5, 5, 0]);
    }
}
