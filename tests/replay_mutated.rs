//! Hostile input through the real binary: `dlvs replay` on a capture of
//! 100,000 frames mutated from real Linux traffic (tests/corpus/lab.pcap,
//! made by scripts/capture-corpus): truncations, bit flips, bad lengths, IP
//! options, fragments, odd EtherTypes. The replay must exit 0, its summary
//! must account for every frame, and a valid echo request placed after
//! them must still get its reply.

mod common;

use std::path::Path;

use common::*;
use dlvs::datapath::harness::{mutate, Rng};

const FRAMES: usize = 100_000;

#[test]
fn hundred_thousand_mutated_frames() {
    let corpus = dlvs::pcap::read(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/lab.pcap"
    )))
    .expect("the seed corpus");
    assert!(corpus.len() >= 20, "corpus too small: {}", corpus.len());

    // The lab's addresses are the test config's (10.0.0.2, VIP 10.0.0.100,
    // client 10.0.0.50); the lab's director MAC is 02:00:00:00:00:01 too.
    let mut rng = Rng::new(0x646c_7673);
    let t0 = 1_700_000_000_000_000u64;
    let mut frames: Vec<(u64, Vec<u8>)> = (0..FRAMES)
        .map(|i| {
            let mut seed = corpus[rng.below(corpus.len())].data.clone();
            // Most of the lab's traffic is between client and servers; aim
            // most frames at the director (or broadcast) so the mutations
            // reach past the Ethernet check.
            if seed.len() >= 6 && rng.chance(85) {
                let dst = if rng.chance(90) { DIR_MAC } else { [0xff; 6] };
                seed[..6].copy_from_slice(&dst);
            }
            // One frame in ten goes through unmutated, so valid traffic is
            // interleaved with the hostile kind, as on a real link.
            let f = if rng.chance(10) {
                seed
            } else {
                mutate(&seed, &mut rng)
            };
            (t0 + i as u64 * 20, f)
        })
        .collect();
    let end = t0 + FRAMES as u64 * 20;
    frames.push((end + 1000, arp_request(CLIENT_MAC, CLIENT_IP, VIP)));
    frames.push((end + 2000, echo_frame(CLIENT_IP, VIP, 0x4242, 4242)));

    let r = replay_timed(&config(""), &frames);
    assert_eq!(r.num("received"), frames.len() as u64, "{}", r.summary);
    r.assert_accounted();
    let last = r.output.last().expect("some output");
    assert!(
        matches!(last, Out::EchoReply { seq: 4242, dst, .. } if *dst == CLIENT_IP),
        "the last frame out is not the reply to the final echo: {last:?}\n{}",
        r.summary
    );
    eprintln!("{}", r.summary);
}
