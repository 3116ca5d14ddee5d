//! Fixture table through [`pipeline::process`](super::pipeline::process):
//! description, input bytes, expected verdict, expected output bytes.
//!
//! The bytes come from `scripts/gen-fixtures`, which builds every frame
//! with scapy (an implementation independent of `wire`) and writes them to
//! [`fixture_frames`](crate::wire::fixture_frames); `scripts/gen-fixtures
//! --check` verifies that file. The runt, truncated, IHL 4 and bad
//! checksum inputs are `PING` with one edit each (a cut, the IHL nibble,
//! the checksum plus one), applied by the script. The frames are for a
//! director with MAC 02:00:00:00:00:01, address 10.0.0.2/24 and VIP
//! 10.0.0.100, and a client 10.0.0.50 at 02:00:00:00:00:aa.
//!
//! Cases run in order on one context, so earlier frames (an ARP request)
//! teach later ones (the echo reply's next hop).

use std::path::Path;
use std::sync::Arc;

use super::packet::{Csum, PacketBuf, RxMeta};
use super::pipeline::{process, Ctx};
use super::test_buf::TestBuf;
use super::verdict::Verdict;
use super::{DropReason, Host};
use crate::config::Config;
use crate::wire::fixture_frames::{
    ARP_REP, ARP_REQ, IPV6_CUT, PING, PING_BAD_IP_CHECKSUM, PING_IHL4, PING_IP_CUT, PING_RUNT, PONG,
};
use crate::wire::MacAddr;

struct Case {
    what: &'static str,
    input: &'static str,
    verdict: Verdict,
    /// Expected frame after processing (for Transmit/Hold), as hex.
    output: Option<&'static str>,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ctx() -> Ctx {
    let cfg = Config::from_toml(
        r#"
[[interface]]
name = "lan0"
device = "net_null0"
addresses = ["10.0.0.2/24", "10.0.0.100/32"]
"#,
        Path::new("fixture.toml"),
    )
    .unwrap();
    let host = Host::new(&cfg, &[MacAddr([2, 0, 0, 0, 0, 1])]);
    Ctx::new(Arc::new(host))
}

fn drop(what: &'static str, input: &'static str, r: DropReason) -> Case {
    Case {
        what,
        input,
        verdict: Verdict::Drop(r),
        output: None,
    }
}

#[test]
fn fixture_table() {
    let cases = [
        Case {
            what: "ARP request for the VIP is answered in place",
            input: ARP_REQ,
            verdict: Verdict::Transmit { port: 0 },
            output: Some(ARP_REP),
        },
        Case {
            what: "echo request from the now-known client is answered",
            input: PING,
            verdict: Verdict::Transmit { port: 0 },
            output: Some(PONG),
        },
        drop(
            "our own ARP reply coming back is not for us",
            ARP_REP,
            DropReason::EthNotForUs,
        ),
        drop("runt", PING_RUNT, DropReason::EthTruncated),
        drop("IPv6", IPV6_CUT, DropReason::EthUnsupported),
        drop(
            "IPv4 header cut at 10 bytes",
            PING_IP_CUT,
            DropReason::Ipv4Truncated,
        ),
        drop("IHL 4", PING_IHL4, DropReason::Ipv4BadHeaderLen),
        drop(
            "checksum off by one",
            PING_BAD_IP_CHECKSUM,
            DropReason::Ipv4BadChecksum,
        ),
    ];
    let mut c = ctx();
    for case in &cases {
        let (v, frame) = run(&mut c, case.input, RxMeta::default());
        assert_eq!(v, case.verdict, "{}", case.what);
        if let Some(out) = case.output {
            assert_eq!(frame, hex(out), "{}", case.what);
        }
    }
}

/// Runs one frame through the pipeline in a poisoned test buffer;
/// returns the verdict and the frame as the packet's bounds now say.
fn run(c: &mut Ctx, input: &str, meta: RxMeta) -> (Verdict, Vec<u8>) {
    let mut buf = TestBuf::with_frame(&hex(input));
    let mut pkt = buf.packet(meta);
    let v = process(&mut pkt, 0, c);
    let (head, len) = pkt.bounds();
    assert!(buf.set_bounds(head, len));
    (v, buf.to_vec())
}

/// The driver's checksum verdict is taken: a header it found bad is
/// dropped without a look, one it found good is not verified again.
#[test]
fn the_drivers_ip_checksum_verdict_is_used() {
    let mut c = ctx();
    run(&mut c, ARP_REQ, RxMeta::default());
    let bad = RxMeta {
        ip_csum: Csum::Bad,
        ..RxMeta::default()
    };
    let (v, _) = run(&mut c, PING, bad);
    assert_eq!(v, Verdict::Drop(DropReason::Ipv4BadChecksum));
    let good = RxMeta {
        ip_csum: Csum::Good,
        ..RxMeta::default()
    };
    // The header checksum is off by one, but the device vouched for it.
    let (v, _) = run(&mut c, PING_BAD_IP_CHECKSUM, good);
    assert_eq!(v, Verdict::Transmit { port: 0 });
}

#[test]
fn unknown_client_is_held_and_solicited() {
    let mut c = ctx();
    let (v, frame) = run(&mut c, PING, RxMeta::default());
    assert_eq!(
        v,
        Verdict::Hold {
            port: 0,
            next_hop: "10.0.0.50".parse().unwrap(),
        }
    );
    assert_eq!(frame.len(), hex(PONG).len());
    assert_eq!(c.take_solicit(), Some((0, "10.0.0.50".parse().unwrap())));
    assert_eq!(c.take_solicit(), None);
    // The held frame is complete but for the destination MAC.
    assert_eq!(frame[6..], hex(PONG)[6..]);
}
