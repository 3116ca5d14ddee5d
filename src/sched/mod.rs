//! IPVS schedulers: which real server gets a new connection.
//!
//! Contract (the kernel's, `net/netfilter/ipvs/ip_vs_sched.c` and one
//! `ip_vs_<name>.c` per scheduler; the rules are in IPVS-SPEC.md section 1):
//!
//! - A [`Scheduler`] is built by [`build`] on the control plane for one
//!   snapshot of a service's destinations, in list (insertion) order. It is
//!   immutable and shared by every worker; whatever takes work to build (sh's
//!   and dh's 256 buckets, mh's 4093-slot Maglev table) is built then.
//! - Each worker owns a [`SchedState`] per service (`new_state`): the kernel's
//!   per-service mutable data (rr/wrr cursors, lblc/lblcr caches, twos's
//!   random generator). The kernel shares one of these between CPUs under a
//!   lock; here every worker has its own, so two workers' rr cursors move
//!   independently (the same as the kernel seen from one CPU).
//! - When the control plane publishes a new snapshot of the same service it
//!   builds a new scheduler, and each worker calls `refresh_state` on it with
//!   its old state, the kernel's `add_dest`/`del_dest`/`upd_dest` hooks.
//!   Caches refer to destinations by address and port, never only by index,
//!   so they survive edits.
//! - `schedule` gets the same destinations the scheduler was built for, with
//!   live counters and flags (active/inactive connections, OVERLOAD), and
//!   returns an index into them or `None`, IPVS's NULL: no destination
//!   available (the packet then gets ICMP port unreachable, `ip_vs_leave`).
//! - `schedule` never allocates for the stateless schedulers, rr, wrr and
//!   twos; lblc and lblcr use caches preallocated in `new_state`.
//! - `tick` is the kernel's per-service timer (lblc/lblcr garbage collection),
//!   driven by the data plane's clock, with bounded work per call.
//!
//! [`SchedState`] is an enum with one variant per kind of state, not per
//! scheduler: no dynamic dispatch or downcast per packet, and a new
//! scheduler adds a variant only if it needs a new kind of state. A
//! scheduler handed another kind's state (a caller bug) replaces it with a
//! fresh state of its own rather than panicking.
//!
//! IPv4 only for now: the kernel folds an IPv6 address into 32 bits (XOR of
//! its words) before the same hashes, which is where IPv6 would plug in.

mod cache;
mod common;
#[cfg(test)]
mod testutil;

pub mod dh;
pub mod fo;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

pub use common::Prng;

use std::net::Ipv4Addr;

/// What a scheduler reads of the service's destinations (real servers), in
/// list (insertion) order. Implemented by the service snapshot; tests
/// implement it with a Vec.
pub trait Dests {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Real server address.
    fn addr(&self, i: usize) -> Ipv4Addr;
    /// Real server port (host order).
    fn port(&self, i: usize) -> u16;
    /// Current weight (0 = quiesced).
    fn weight(&self, i: usize) -> i32;
    /// Last non-zero weight (mh keeps a quiesced server's slots with it).
    fn last_weight(&self, i: usize) -> i32;
    /// IP_VS_DEST_F_OVERLOAD: the upper connection threshold was reached.
    fn overloaded(&self, i: usize) -> bool;
    /// IP_VS_DEST_F_AVAILABLE: cleared when the kernel moves a deleted
    /// destination to its trash while caches still refer to it.
    fn available(&self, i: usize) -> bool;
    /// Active connections.
    fn active(&self, i: usize) -> u32;
    /// Inactive connections.
    fn inactive(&self, i: usize) -> u32;
}

/// What the scheduler may use of the packet: addresses and ports in host
/// order, protocol, and the data plane's clock.
///
/// The kernel's sh and mh hash the destination address and port instead of
/// the source ones for "inverse" lookups (ICMP errors about a packet the
/// client sent); the caller passes the client's address and port as
/// `saddr`/`sport` in that case.
#[derive(Clone, Copy, Debug)]
pub struct Input {
    pub saddr: Ipv4Addr,
    pub sport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    /// IP protocol number: 6 TCP, 17 UDP, 132 SCTP, 1 ICMP.
    pub protocol: u8,
    pub now_us: u64,
}

/// Scheduler flags (`ipvsadm -b`): sh-fallback/mh-fallback = SCHED1,
/// sh-port/mh-port = SCHED2 (IPVS numbering).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedFlags {
    pub fallback: bool,
    pub port: bool,
}

/// A scheduler built for one snapshot of a service's destinations:
/// immutable, shared by every worker.
pub trait Scheduler: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;
    /// Fresh per-worker mutable state; none unless the scheduler keeps
    /// some between packets (then it overrides this and `refresh_state`).
    fn new_state(&self, _seed: u64) -> SchedState {
        SchedState::Stateless
    }
    /// Adapts the state kept from the previous snapshot of the same service
    /// to this one (the kernel's add/del/upd_dest hooks).
    fn refresh_state(&self, _state: &mut SchedState, _dests: &dyn Dests) {}
    /// Picks a destination index into `dests`, or None (IPVS's NULL).
    fn schedule(&self, state: &mut SchedState, dests: &dyn Dests, input: &Input) -> Option<usize>;
    /// Periodic housekeeping with the data plane's clock; bounded work per
    /// call. Call it often (every few milliseconds or every loop): it does
    /// nothing until work is due.
    fn tick(&self, _state: &mut SchedState, _now_us: u64) {}
}

/// Per-worker scheduler state, one variant per kind of state.
#[derive(Debug)]
pub enum SchedState {
    /// lc, wlc, sed, nq, dh, sh, mh, fo, ovf: nothing kept between packets.
    Stateless,
    /// rr's cursor.
    Rr(rr::RrState),
    /// wrr's cursor and current weight.
    Wrr(wrr::WrrState),
    /// lblc's destination-address cache (boxed: it is large).
    Lblc(Box<lblc::LblcState>),
    /// lblcr's destination-address to server-set cache.
    Lblcr(Box<lblcr::LblcrState>),
    /// A random generator (twos).
    Rng(Prng),
}

/// Errors of [`build`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    #[error("unknown scheduler {name:?} (known: {})", NAMES.join(", "))]
    Unknown { name: String },
    #[error("scheduler {sched} does not take the {flag} flag (only sh and mh take flags)")]
    FlagNotApplicable {
        sched: &'static str,
        flag: &'static str,
    },
    #[error("scheduler {sched} supports at most {max} destinations, the service has {count}")]
    TooManyDests {
        sched: &'static str,
        max: usize,
        count: usize,
    },
}

/// Every scheduler name, as `ipvsadm -s` spells it.
pub const NAMES: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh", "mh", "fo", "ovf", "twos",
];

type BuildFn = fn(SchedFlags, &dyn Dests) -> Result<Box<dyn Scheduler>, SchedError>;

/// One row per scheduler: name, whether it takes the -b flags, builder.
/// Adding a scheduler adds a file and a row here.
const REGISTRY: &[(&str, bool, BuildFn)] = &[
    ("rr", false, rr::build),
    ("wrr", false, wrr::build),
    ("lc", false, lc::build),
    ("wlc", false, wlc::build),
    ("sed", false, sed::build),
    ("nq", false, nq::build),
    ("lblc", false, lblc::build),
    ("lblcr", false, lblcr::build),
    ("dh", false, dh::build),
    ("sh", true, sh::build),
    ("mh", true, mh::build),
    ("fo", false, fo::build),
    ("ovf", false, ovf::build),
    ("twos", false, twos::build),
];

/// Builds the scheduler named as `ipvsadm -s` names it for the given
/// destinations and flags. Unknown names, and flags on a scheduler other
/// than sh and mh, are errors (the kernel ignores SCHED flags elsewhere;
/// refusing them catches a misconfiguration early).
pub fn build(
    name: &str,
    flags: SchedFlags,
    dests: &dyn Dests,
) -> Result<Box<dyn Scheduler>, SchedError> {
    let Some(&(sched, takes_flags, build_fn)) = REGISTRY.iter().find(|(n, _, _)| *n == name) else {
        return Err(SchedError::Unknown {
            name: name.to_owned(),
        });
    };
    if !takes_flags {
        if flags.fallback {
            return Err(SchedError::FlagNotApplicable {
                sched,
                flag: "fallback",
            });
        }
        if flags.port {
            return Err(SchedError::FlagNotApplicable {
                sched,
                flag: "port",
            });
        }
    }
    build_fn(flags, dests)
}

#[cfg(test)]
mod tests {
    use super::testutil::{d, VecDests};
    use super::*;

    #[test]
    fn registry_matches_names() {
        let names: Vec<&str> = REGISTRY.iter().map(|r| r.0).collect();
        assert_eq!(names, NAMES);
        let dests = VecDests(vec![d(1, 1), d(2, 1)]);
        for name in NAMES {
            let s = build(name, SchedFlags::default(), &dests).unwrap();
            assert_eq!(s.name(), *name);
            let mut st = s.new_state(1);
            let input = testutil::input_from([10, 1, 1, 1], 1000, [10, 9, 9, 9], 0);
            assert!(s.schedule(&mut st, &dests, &input).is_some(), "{name}");
        }
    }

    #[test]
    fn unknown_and_misplaced_flags() {
        let dests = VecDests(vec![d(1, 1)]);
        let err = build("xx", SchedFlags::default(), &dests).unwrap_err();
        assert_eq!(err, SchedError::Unknown { name: "xx".into() });
        assert!(err.to_string().contains("rr, wrr"));
        let fb = SchedFlags {
            fallback: true,
            port: false,
        };
        let err = build("rr", fb, &dests).unwrap_err();
        assert_eq!(
            err,
            SchedError::FlagNotApplicable {
                sched: "rr",
                flag: "fallback"
            }
        );
        let port = SchedFlags {
            fallback: false,
            port: true,
        };
        assert!(matches!(
            build("wlc", port, &dests),
            Err(SchedError::FlagNotApplicable { .. })
        ));
        assert!(build("sh", fb, &dests).is_ok());
        assert!(build("mh", port, &dests).is_ok());
    }

    #[test]
    fn empty_service_gives_null() {
        let dests = VecDests(vec![]);
        for name in NAMES {
            let s = build(name, SchedFlags::default(), &dests).unwrap();
            let mut st = s.new_state(1);
            let input = testutil::input_from([10, 1, 1, 1], 1000, [10, 9, 9, 9], 0);
            assert_eq!(s.schedule(&mut st, &dests, &input), None, "{name}");
        }
    }

    #[test]
    fn foreign_state_is_replaced() {
        let dests = VecDests(vec![d(1, 1), d(2, 1)]);
        let rr = build("rr", SchedFlags::default(), &dests).unwrap();
        let mut st = SchedState::Stateless;
        let input = testutil::input_from([10, 1, 1, 1], 1000, [10, 9, 9, 9], 0);
        assert_eq!(rr.schedule(&mut st, &dests, &input), Some(0));
        assert!(matches!(st, SchedState::Rr(_)));
    }
}
