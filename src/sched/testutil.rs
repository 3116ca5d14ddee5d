//! Test destinations: a Vec of plain structs implementing [`Dests`].

use super::{Dests, Input};
use std::net::Ipv4Addr;

#[derive(Clone, Debug)]
pub(crate) struct D {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub weight: i32,
    pub last_weight: i32,
    pub overloaded: bool,
    pub available: bool,
    pub active: u32,
    pub inactive: u32,
}

/// Server 10.0.0.`n`:80 with weight `w` (last_weight `w`, or 0 if `w` is 0).
pub(crate) fn d(n: u8, w: i32) -> D {
    D {
        addr: Ipv4Addr::new(10, 0, 0, n),
        port: 80,
        weight: w,
        last_weight: w,
        overloaded: false,
        available: true,
        active: 0,
        inactive: 0,
    }
}

impl D {
    pub(super) fn act(mut self, n: u32) -> Self {
        self.active = n;
        self
    }
    pub(super) fn inact(mut self, n: u32) -> Self {
        self.inactive = n;
        self
    }
    pub(super) fn over(mut self) -> Self {
        self.overloaded = true;
        self
    }
    pub(super) fn at(mut self, addr: [u8; 4], port: u16) -> Self {
        self.addr = Ipv4Addr::from(addr);
        self.port = port;
        self
    }
    pub(super) fn last(mut self, lw: i32) -> Self {
        self.last_weight = lw;
        self
    }
}

#[derive(Clone, Debug)]
pub(crate) struct VecDests(pub Vec<D>);

impl Dests for VecDests {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn addr(&self, i: usize) -> Ipv4Addr {
        self.0[i].addr
    }
    fn port(&self, i: usize) -> u16 {
        self.0[i].port
    }
    fn weight(&self, i: usize) -> i32 {
        self.0[i].weight
    }
    fn last_weight(&self, i: usize) -> i32 {
        self.0[i].last_weight
    }
    fn overloaded(&self, i: usize) -> bool {
        self.0[i].overloaded
    }
    fn available(&self, i: usize) -> bool {
        self.0[i].available
    }
    fn active(&self, i: usize) -> u32 {
        self.0[i].active
    }
    fn inactive(&self, i: usize) -> u32 {
        self.0[i].inactive
    }
}

/// A TCP packet from `saddr:sport` to `daddr:80` at `now_us`.
pub(crate) fn input_from(saddr: [u8; 4], sport: u16, daddr: [u8; 4], now_us: u64) -> Input {
    Input {
        saddr: Ipv4Addr::from(saddr),
        sport,
        daddr: Ipv4Addr::from(daddr),
        dport: 80,
        protocol: 6,
        now_us,
    }
}

/// A packet whose only interesting field is the client address.
pub(crate) fn from_ip(saddr: Ipv4Addr) -> Input {
    Input {
        saddr,
        sport: 1234,
        daddr: Ipv4Addr::new(10, 9, 9, 9),
        dport: 80,
        protocol: 6,
        now_us: 0,
    }
}

/// Runs `n` picks with one state and returns the picked indices.
pub(crate) fn picks(s: &dyn super::Scheduler, dests: &dyn Dests, n: usize) -> Vec<Option<usize>> {
    let mut st = s.new_state(7);
    let input = input_from([10, 1, 1, 1], 1000, [10, 9, 9, 9], 0);
    (0..n).map(|_| s.schedule(&mut st, dests, &input)).collect()
}
