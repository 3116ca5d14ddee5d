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
//!
//! The decoding is `harness::run_encoded`'s, which the regression test of
//! this target's findings (fuzz/regressions/pipeline) runs too.
#![no_main]

use dlvs::datapath::harness::run_encoded;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(v) = run_encoded(data) {
        panic!("{v}");
    }
});
