//! The per-lcore data path (`Engine` through `datapath::harness::Harness`,
//! against the harness's fixed LAN/WAN configuration), over a sequence of
//! frames. The harness checks its invariants after every frame (output
//! lengths vs MTU, source MACs, checksums of the frames the director builds,
//! counters that add up) and at the end (nothing still held); any violation
//! is a crash.
//!
//! Input, repeated until it runs out:
//!
//! | bytes | meaning                                                      |
//! |-------|--------------------------------------------------------------|
//! | 1     | bits 0-3: ingress port (modulo the number of ports); bits    |
//! |       | 4-5: the device's IPv4 checksum word (`device_meta`)         |
//! | 2     | time delta, little-endian, in units of 64 µs (max ~4.2 s)    |
//! | 2     | frame length, little-endian, clamped to what remains, ≤ 9100 |
//! | len   | the frame, from its Ethernet header                          |
//!
//! Time starts at 1 s and never goes backwards, so the 100 ms ARP retry
//! timers of the configuration fire when the deltas add up.
#![no_main]

use dlvs::datapath::harness::{device_meta, Harness};
use libfuzzer_sys::fuzz_target;

const MAX_FRAME: usize = 9100;
const TICK_US: u64 = 64;

fuzz_target!(|data: &[u8]| {
    let mut h = Harness::new();
    let mut now: u64 = 1_000_000;
    let mut rest = data;
    while rest.len() >= 5 {
        let (port, verdict) = (usize::from(rest[0] & 0x0f), rest[0] >> 4);
        let delta = u64::from(u16::from_le_bytes([rest[1], rest[2]]));
        let len = usize::from(u16::from_le_bytes([rest[3], rest[4]]));
        rest = &rest[5..];
        let len = len.min(rest.len()).min(MAX_FRAME);
        let (frame, tail) = rest.split_at(len);
        rest = tail;
        now += delta * TICK_US;
        if let Err(v) = h.feed_with(port, frame, now, device_meta(frame, verdict)) {
            panic!("{v}");
        }
    }
    if let Err(v) = h.finish() {
        panic!("{v}");
    }
});
