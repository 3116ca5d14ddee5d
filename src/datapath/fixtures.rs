//! Fixture table through [`pipeline::process`](super::pipeline::process):
//! description, input bytes, expected verdict, expected output bytes.
//!
//! The byte strings were produced by scapy (an implementation independent
//! of `wire`), for a director with MAC 02:00:00:00:00:01, address
//! 10.0.0.2/24 and VIP 10.0.0.100, and a client 10.0.0.50 at
//! 02:00:00:00:00:aa. Cases run in order on one context, so earlier frames
//! (an ARP request) teach later ones (the echo reply's next hop).

use std::path::Path;
use std::sync::Arc;

use super::pipeline::{process, Ctx, Verdict};
use super::{DropReason, Host};
use crate::config::Config;
use crate::wire::MacAddr;

struct Case {
    what: &'static str,
    input: &'static str,
    verdict: Verdict,
    /// Expected frame after processing (for Transmit/Hold), as hex.
    output: Option<&'static str>,
}

const ARP_REQ: &str = "ffffffffffff0200000000aa080600010800060400010200000000aa0a0000320000000000000a000064000000000000000000000000000000000000";
const ARP_REP: &str = "0200000000aa020000000001080600010800060400020200000000010a0000640200000000aa0a000032000000000000000000000000000000000000";
const PING: &str = "0200000000010200000000aa0800450000541c464000400109ce0a0000320a000064080083680a1b00037b9c5f6500000000c5a40b0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
const PONG: &str = "0200000000aa0200000000010800450000541c464000400109ce0a0000640a00003200008b680a1b00037b9c5f6500000000c5a40b0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";

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
            verdict: Verdict::Transmit { port: 0, len: 60 },
            output: Some(ARP_REP),
        },
        Case {
            what: "echo request from the now-known client is answered",
            input: PING,
            verdict: Verdict::Transmit { port: 0, len: 98 },
            output: Some(PONG),
        },
        drop("our own ARP reply coming back is not for us", ARP_REP, DropReason::EthNotForUs),
        drop("runt", "0200000000010200", DropReason::EthTruncated),
        drop(
            "IPv6",
            "0200000000010200000000aa86dd6000000000003a40",
            DropReason::EthUnsupported,
        ),
        drop(
            "IPv4 header cut at 12 bytes",
            "0200000000010200000000aa0800450000541c4640004001",
            DropReason::Ipv4Truncated,
        ),
        drop(
            "IHL 4",
            "0200000000010200000000aa0800440000541c464000400109ce0a0000320a000064",
            DropReason::Ipv4BadHeaderLen,
        ),
        drop(
            "checksum off by one",
            "0200000000010200000000aa0800450000541c464000400109cf0a0000320a000064080083680a1b00037b9c5f6500000000c5a40b0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
            DropReason::Ipv4BadChecksum,
        ),
    ];
    let mut c = ctx();
    for case in &cases {
        let mut frame = hex(case.input);
        let v = process(&mut frame, 0, &mut c);
        assert_eq!(v, case.verdict, "{}", case.what);
        if let Some(out) = case.output {
            let len = match v {
                Verdict::Transmit { len, .. } | Verdict::Hold { len, .. } => len,
                Verdict::Drop(_) => 0,
            };
            assert_eq!(frame[..len], hex(out)[..], "{}", case.what);
        }
    }
}

#[test]
fn unknown_client_is_held_and_solicited() {
    let mut c = ctx();
    let mut frame = hex(PING);
    let v = process(&mut frame, 0, &mut c);
    assert_eq!(
        v,
        Verdict::Hold {
            port: 0,
            next_hop: "10.0.0.50".parse().unwrap(),
            len: 98
        }
    );
    assert_eq!(c.take_solicit(), Some((0, "10.0.0.50".parse().unwrap())));
    assert_eq!(c.take_solicit(), None);
    // The held frame is complete but for the destination MAC.
    assert_eq!(frame[6..], hex(PONG)[6..]);
}
