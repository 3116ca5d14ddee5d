//! VRRP instances' state machines (RFC 3768 §6.4, RFC 5798 §6.4), on the
//! data plane's clock.
//!
//! The instances run in the first worker's engine: their adverts leave
//! from the data plane that forwards the virtual addresses' traffic, so a
//! director whose data plane stalls stops advertising and its backup takes
//! over, as a keepalived director's adverts stop with its kernel. Nothing
//! here blocks or allocates after start; time is the engine's (capture
//! time in replay), in microseconds.
//!
//! - An instance starts as BACKUP (dlvs never owns an address, priority
//!   255) with the master-down timer armed: 3 × the advert interval plus
//!   the skew time, (256 − priority) / 256 s for version 2 and that share
//!   of the interval for version 3.
//! - BACKUP: an advert of priority 0 (a master leaving) sets the timer to
//!   the skew time; one from a master of higher or equal priority, or any
//!   when preemption is off, re-arms it; a lower one is ignored, so that
//!   a preempting backup takes over when its timer runs out. Version 3
//!   takes the master's interval as its own Master_Adver_Interval.
//! - MASTER: adverts every interval; an advert of priority 0 is answered
//!   with one at once; a higher priority (or an equal one from a higher
//!   primary address) makes it BACKUP.
//! - On becoming MASTER: an advert at once and gratuitous ARP for every
//!   virtual address, 5 at once and 5 more 5 s later (keepalived's
//!   vrrp_garp_master_repeat and vrrp_garp_master_delay).
//! - On stop, a MASTER sends an advert of priority 0 so that a backup takes
//!   over after its skew time, not its whole master-down interval.
//!
//! Which instances are MASTER is one word of bits shared with every worker
//! ([`MasterBits`]): a worker answers ARP and ICMP echo for a virtual
//! address and forwards its traffic only while its instance's bit is set
//! (`Host::standby`).

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::VrrpConfig;

/// Gratuitous ARPs per virtual address on becoming MASTER, and again after
/// [`GARP_DELAY_US`] (keepalived's defaults).
pub const GARP_REPEAT: usize = 5;
pub const GARP_DELAY_US: u64 = 5_000_000;

/// Bit `i`: instance `i` is MASTER. Written by the worker that runs the
/// instances, read by all (relaxed: a worker seeing a change one burst
/// late answers or drops one burst's frames as before, as a kernel whose
/// address is being added or removed does).
#[derive(Debug, Default)]
pub struct MasterBits(AtomicU64);

impl MasterBits {
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, i: usize, master: bool) {
        let bit = 1u64 << i;
        if master {
            self.0.fetch_or(bit, Ordering::Relaxed);
        } else {
            self.0.fetch_and(!bit, Ordering::Relaxed);
        }
    }
}

/// An instance's state, as keepalived names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpState {
    Backup,
    Master,
    /// Stopped (the director is leaving).
    Stop,
}

impl VrrpState {
    pub fn as_str(self) -> &'static str {
        match self {
            VrrpState::Backup => "BACKUP",
            VrrpState::Master => "MASTER",
            VrrpState::Stop => "STOP",
        }
    }
}

/// A received advert, checked by the pipeline (TTL, checksum, version,
/// interval, authentication) and matched to its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    pub instance: u8,
    pub src: Ipv4Addr,
    pub priority: u8,
    pub interval_cs: u16,
}

/// A change of state, for the control side (logs, metrics, notify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub instance: u8,
    pub from: VrrpState,
    pub to: VrrpState,
    /// The data plane's clock, µs.
    pub at: u64,
    /// Why, for the log.
    pub why: Why,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No advert from a master for the master-down interval.
    MasterDown,
    /// A master left (its advert of priority 0).
    MasterLeft,
    /// An advert of a higher priority (or an equal one from a higher address).
    Preempted { by: Ipv4Addr, priority: u8 },
    /// The director stops.
    Shutdown,
}

/// What an instance asks its engine to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// An advert of this priority.
    Advert { priority: u8 },
    /// Gratuitous ARP for every virtual address, this many times each.
    Garp { times: usize },
}

/// One instance.
#[derive(Debug)]
pub struct Instance {
    pub cfg: VrrpConfig,
    index: usize,
    state: VrrpState,
    /// Master_Adver_Interval, µs (version 3 learns the master's).
    master_adver_us: u64,
    /// When the master-down timer (BACKUP) or the advert timer (MASTER) runs out.
    deadline: u64,
    /// When the second round of gratuitous ARP is due (MASTER).
    garp_at: Option<u64>,
    /// BACKUP: the master said it leaves (an advert of priority 0).
    left: bool,
    pub transitions: u64,
}

impl Instance {
    fn adver_us(&self) -> u64 {
        u64::from(self.cfg.advert_int_cs) * 10_000
    }

    fn skew_us(&self) -> u64 {
        let share = 256 - u64::from(self.cfg.priority);
        if self.cfg.version == 2 {
            share * 1_000_000 / 256
        } else {
            share * self.master_adver_us / 256
        }
    }

    fn master_down_us(&self) -> u64 {
        3 * self.master_adver_us + self.skew_us()
    }

    pub fn state(&self) -> VrrpState {
        self.state
    }
}

/// The instances of one director, run by one engine.
#[derive(Debug)]
pub struct Vrrp {
    instances: Vec<Instance>,
    /// The timers are armed at the first call that brings the time (a
    /// replay's clock starts at its first frame's capture time).
    started: bool,
    bits: Arc<MasterBits>,
    transitions: VecDeque<Transition>,
    actions: VecDeque<(usize, Action)>,
}

impl Vrrp {
    /// The instances of `cfgs`, BACKUP from the first time they are given
    /// on; `bits` is the word the workers read (cleared here).
    pub fn new(cfgs: &[VrrpConfig], bits: Arc<MasterBits>) -> Vrrp {
        bits.0.store(0, Ordering::Relaxed);
        let instances = cfgs
            .iter()
            .enumerate()
            .map(|(index, cfg)| Instance {
                cfg: cfg.clone(),
                index,
                state: VrrpState::Backup,
                master_adver_us: u64::from(cfg.advert_int_cs) * 10_000,
                deadline: 0,
                garp_at: None,
                left: false,
                transitions: 0,
            })
            .collect();
        Vrrp {
            instances,
            started: false,
            bits,
            transitions: VecDeque::with_capacity(2 * cfgs.len()),
            actions: VecDeque::with_capacity(4 * cfgs.len()),
        }
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    fn start(&mut self, now: u64) {
        if !self.started {
            self.started = true;
            for i in &mut self.instances {
                i.deadline = now.saturating_add(i.master_down_us());
            }
        }
    }

    /// An advert for one of the instances.
    pub fn on_advert(&mut self, a: &Advert, now: u64) {
        self.start(now);
        let Some(i) = self.instances.get_mut(usize::from(a.instance)) else {
            return;
        };
        match i.state {
            VrrpState::Backup => {
                if a.priority == 0 {
                    i.deadline = now.saturating_add(i.skew_us());
                    i.left = true;
                } else if !i.cfg.preempt || a.priority >= i.cfg.priority {
                    i.left = false;
                    if i.cfg.version == 3 {
                        i.master_adver_us = u64::from(a.interval_cs.max(1)) * 10_000;
                    }
                    i.deadline = now.saturating_add(i.master_down_us());
                }
            }
            VrrpState::Master => {
                if a.priority == 0 {
                    self.actions.push_back((
                        i.index,
                        Action::Advert {
                            priority: i.cfg.priority,
                        },
                    ));
                    i.deadline = now.saturating_add(i.adver_us());
                } else if a.priority > i.cfg.priority
                    || a.priority == i.cfg.priority && u32::from(a.src) > u32::from(i.cfg.source)
                {
                    if i.cfg.version == 3 {
                        i.master_adver_us = u64::from(a.interval_cs.max(1)) * 10_000;
                    }
                    i.deadline = now.saturating_add(i.master_down_us());
                    let why = Why::Preempted {
                        by: a.src,
                        priority: a.priority,
                    };
                    Self::change(
                        i,
                        VrrpState::Backup,
                        now,
                        why,
                        &self.bits,
                        &mut self.transitions,
                    );
                }
            }
            VrrpState::Stop => {}
        }
    }

    /// Timer work: a BACKUP whose master is down takes over; a MASTER
    /// advertises and repeats its gratuitous ARP.
    pub fn on_timer(&mut self, now: u64) {
        self.start(now);
        for i in &mut self.instances {
            match i.state {
                VrrpState::Backup if now >= i.deadline => {
                    let why = if i.left {
                        Why::MasterLeft
                    } else {
                        Why::MasterDown
                    };
                    Self::become_master(
                        i,
                        now,
                        why,
                        &self.bits,
                        &mut self.transitions,
                        &mut self.actions,
                    );
                }
                VrrpState::Master => {
                    if now >= i.deadline {
                        self.actions.push_back((
                            i.index,
                            Action::Advert {
                                priority: i.cfg.priority,
                            },
                        ));
                        // Steady steps, not drifting with late timer runs.
                        i.deadline = i.deadline.saturating_add(i.adver_us()).max(now + 1);
                    }
                    if i.garp_at.is_some_and(|t| now >= t) {
                        i.garp_at = None;
                        self.actions
                            .push_back((i.index, Action::Garp { times: GARP_REPEAT }));
                    }
                }
                _ => {}
            }
        }
    }

    /// The director stops: every MASTER advertises priority 0; all stop.
    pub fn shutdown(&mut self, now: u64) {
        for i in &mut self.instances {
            if i.state == VrrpState::Master {
                self.actions
                    .push_back((i.index, Action::Advert { priority: 0 }));
            }
            if i.state != VrrpState::Stop {
                Self::change(
                    i,
                    VrrpState::Stop,
                    now,
                    Why::Shutdown,
                    &self.bits,
                    &mut self.transitions,
                );
            }
        }
    }

    /// The next thing to send: (instance, action).
    pub fn take_action(&mut self) -> Option<(usize, Action)> {
        self.actions.pop_front()
    }

    /// The next change of state, oldest first.
    pub fn take_transition(&mut self) -> Option<Transition> {
        self.transitions.pop_front()
    }

    fn become_master(
        i: &mut Instance,
        now: u64,
        why: Why,
        bits: &MasterBits,
        transitions: &mut VecDeque<Transition>,
        actions: &mut VecDeque<(usize, Action)>,
    ) {
        actions.push_back((
            i.index,
            Action::Advert {
                priority: i.cfg.priority,
            },
        ));
        actions.push_back((i.index, Action::Garp { times: GARP_REPEAT }));
        i.garp_at = Some(now.saturating_add(GARP_DELAY_US));
        i.deadline = now.saturating_add(i.adver_us());
        Self::change(i, VrrpState::Master, now, why, bits, transitions);
    }

    fn change(
        i: &mut Instance,
        to: VrrpState,
        now: u64,
        why: Why,
        bits: &MasterBits,
        transitions: &mut VecDeque<Transition>,
    ) {
        let from = i.state;
        i.state = to;
        if to != VrrpState::Master {
            i.garp_at = None;
        }
        bits.set(i.index, to == VrrpState::Master);
        i.transitions += 1;
        transitions.push_back(Transition {
            instance: i.index as u8,
            from,
            to,
            at: now,
            why,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
    const S: u64 = 1_000_000;

    fn cfg(priority: u8, version: u8, preempt: bool) -> VrrpConfig {
        VrrpConfig {
            name: "VI_1".into(),
            port: 0,
            vrid: 51,
            priority,
            advert_int_cs: 100,
            version,
            preempt,
            addresses: vec![Ipv4Addr::new(10, 0, 0, 100)],
            source: ME,
            notify_master: None,
            notify_backup: None,
            notify_stop: None,
            notify: None,
        }
    }

    fn vrrp(c: VrrpConfig) -> (Vrrp, Arc<MasterBits>) {
        let bits = Arc::new(MasterBits::default());
        (Vrrp::new(&[c], Arc::clone(&bits)), bits)
    }

    fn advert(priority: u8, src: Ipv4Addr) -> Advert {
        Advert {
            instance: 0,
            src,
            priority,
            interval_cs: 100,
        }
    }

    fn actions(v: &mut Vrrp) -> Vec<Action> {
        std::iter::from_fn(|| v.take_action())
            .map(|(_, a)| a)
            .collect()
    }

    const ADVERT_100: Action = Action::Advert { priority: 100 };
    const GARP: Action = Action::Garp { times: GARP_REPEAT };

    /// RFC 3768 §6.4.2: with no master, a backup of priority 100 takes
    /// over after 3 intervals and (256 - 100) / 256 s of skew; it then
    /// advertises every interval and repeats its gratuitous ARP after 5 s.
    #[test]
    fn a_backup_without_master_takes_over_after_the_master_down_interval() {
        let (mut v, bits) = vrrp(cfg(100, 2, true));
        let t0 = 1_700_000_000 * S;
        v.on_timer(t0);
        let down = 3 * S + 156 * S / 256;
        v.on_timer(t0 + down - 1);
        assert_eq!(v.instances()[0].state(), VrrpState::Backup);
        assert!(actions(&mut v).is_empty());
        assert_eq!(bits.get(), 0);
        v.on_timer(t0 + down);
        assert_eq!(v.instances()[0].state(), VrrpState::Master);
        assert_eq!(actions(&mut v), [ADVERT_100, GARP]);
        assert_eq!(bits.get(), 1);
        let t = v.take_transition().unwrap();
        assert_eq!(
            (t.from, t.to, t.why),
            (VrrpState::Backup, VrrpState::Master, Why::MasterDown)
        );
        assert_eq!(t.at, t0 + down);
        // One advert per second, on steady steps.
        let mut sent = 0;
        for ms in (0..=4_000).step_by(100) {
            v.on_timer(t0 + down + ms * 1000);
            sent += actions(&mut v).len();
        }
        assert_eq!(sent, 4);
        v.on_timer(t0 + down + 5 * S);
        assert_eq!(actions(&mut v), [ADVERT_100, GARP]);
        v.on_timer(t0 + down + 10 * S);
        assert_eq!(actions(&mut v), [ADVERT_100], "the second round only once");
    }

    #[test]
    fn a_master_hears_its_betters_and_ignores_the_rest() {
        for (priority, src, yields) in [
            (101, PEER, true),
            (100, Ipv4Addr::new(10, 0, 0, 3), true),
            (100, Ipv4Addr::new(10, 0, 0, 1), false),
            (99, PEER, false),
        ] {
            let (mut v, bits) = vrrp(cfg(100, 2, true));
            v.on_timer(0);
            v.on_timer(4 * S);
            assert_eq!(bits.get(), 1);
            actions(&mut v);
            v.on_advert(&advert(priority, src), 4 * S + 10);
            let state = v.instances()[0].state();
            assert_eq!(state == VrrpState::Backup, yields, "{priority} from {src}");
            assert_eq!(bits.get(), u64::from(!yields));
            assert!(actions(&mut v).is_empty());
        }
    }

    /// A master's advert of priority 0 is answered at once.
    #[test]
    fn a_master_answers_a_leaving_master() {
        let (mut v, _) = vrrp(cfg(100, 2, true));
        v.on_timer(0);
        v.on_timer(4 * S);
        actions(&mut v);
        v.on_advert(&advert(0, PEER), 4 * S + 10);
        assert_eq!(actions(&mut v), [ADVERT_100]);
        assert_eq!(v.instances()[0].state(), VrrpState::Master);
    }

    /// A backup re-arms its timer on a master's adverts; with preemption
    /// it ignores a lower master's, and takes over when its timer runs out.
    #[test]
    fn preemption_decides_whether_a_lower_master_is_heard() {
        for (preempt, takes_over) in [(true, true), (false, false)] {
            let (mut v, _) = vrrp(cfg(150, 2, preempt));
            v.on_timer(0);
            for s in 1..=10 {
                v.on_advert(&advert(100, PEER), s * S);
                v.on_timer(s * S);
            }
            assert_eq!(
                v.instances()[0].state() == VrrpState::Master,
                takes_over,
                "preempt {preempt}"
            );
        }
        // A higher master is heard either way.
        let (mut v, _) = vrrp(cfg(150, 2, true));
        v.on_timer(0);
        for s in 1..=10 {
            v.on_advert(&advert(200, PEER), s * S);
            v.on_timer(s * S);
        }
        assert_eq!(v.instances()[0].state(), VrrpState::Backup);
    }

    /// A master leaving (priority 0) hands over after the skew time alone.
    #[test]
    fn a_leaving_master_is_replaced_after_the_skew_time() {
        let (mut v, _) = vrrp(cfg(100, 2, true));
        v.on_timer(0);
        v.on_advert(&advert(200, PEER), S);
        v.on_advert(&advert(0, PEER), 2 * S);
        let skew = 156 * S / 256;
        v.on_timer(2 * S + skew - 1);
        assert_eq!(v.instances()[0].state(), VrrpState::Backup);
        v.on_timer(2 * S + skew);
        assert_eq!(v.instances()[0].state(), VrrpState::Master);
        assert_eq!(v.take_transition().unwrap().why, Why::MasterLeft);
    }

    /// Stopping, a master advertises priority 0; every instance stops.
    #[test]
    fn shutdown_hands_over() {
        let (mut v, bits) = vrrp(cfg(100, 2, true));
        v.on_timer(0);
        v.on_timer(4 * S);
        actions(&mut v);
        v.shutdown(5 * S);
        assert_eq!(actions(&mut v), [Action::Advert { priority: 0 }]);
        assert_eq!(v.instances()[0].state(), VrrpState::Stop);
        assert_eq!(bits.get(), 0);
        let ts: Vec<_> = std::iter::from_fn(|| v.take_transition())
            .map(|t| t.to)
            .collect();
        assert_eq!(ts, [VrrpState::Master, VrrpState::Stop]);
        // A backup stops without a word.
        let (mut v, _) = vrrp(cfg(100, 2, true));
        v.on_timer(0);
        v.shutdown(S);
        assert!(actions(&mut v).is_empty());
    }

    /// Version 3 takes the master's interval as Master_Adver_Interval, and
    /// scales the skew time with it (RFC 5798 §6.1).
    #[test]
    fn version_3_learns_the_masters_interval() {
        let (mut v, _) = vrrp(cfg(100, 3, true));
        v.on_timer(0);
        let mut a = advert(200, PEER);
        a.interval_cs = 50;
        v.on_advert(&a, S);
        // 3 × 0.5 s + 156/256 × 0.5 s after the advert.
        let down = 3 * S / 2 + 156 * (S / 2) / 256;
        v.on_timer(S + down - 1);
        assert_eq!(v.instances()[0].state(), VrrpState::Backup);
        v.on_timer(S + down);
        assert_eq!(v.instances()[0].state(), VrrpState::Master);
    }
}
