//! Replay golden tests of high availability, through the real binary:
//! each scenario of tests/golden/ha.json (written by scripts/gen-ha-golden
//! with scapy, from the RFCs' and the kernel's formats and timing) is
//! replayed, and the director must send exactly the frames listed, in
//! order, and end with the listed counters.

mod common;

use common::*;
use serde_json::Value;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/ha.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn scenario(name: &str) -> Value {
    golden()["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no scenario {name} in ha.json"))
        .clone()
}

/// Replays a scenario and checks every frame sent and the counters.
fn check(name: &str) -> Replay {
    let s = scenario(name);
    let input: Vec<(u64, Vec<u8>)> = s["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f[0].as_u64().unwrap(), hex(f[1].as_str().unwrap())))
        .collect();
    let r = replay_rules_timed(s["config"].as_str().unwrap(), s["rules"].as_str(), &input);
    let want: Vec<String> = s["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let got: Vec<String> = r
        .raw
        .iter()
        .map(|f| f.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g,
            w,
            "{name}: frame {i} sent differs\n{:?}",
            decode(&hex(g))
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: frames sent: {:#?}",
        r.output
    );
    let sum = &s["summary"];
    for key in ["replied", "generated"] {
        assert_eq!(r.summary[key], sum[key], "{name}: {key} in {}", r.summary);
    }
    let want_drops = sum["dropped"].as_object().unwrap();
    for (reason, n) in want_drops {
        assert_eq!(
            r.dropped(reason),
            n.as_u64().unwrap(),
            "{name}: {reason} in {}",
            r.summary
        );
    }
    assert_eq!(
        r.dropped_total(),
        want_drops
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        "{name}: other drops in {}",
        r.summary
    );
    if let Some(want) = sum.get("sync").and_then(|v| v.as_object()) {
        let got = r.summary["sync"].as_object().cloned().unwrap_or_default();
        for (k, v) in &got {
            let w = want.get(k).and_then(|w| w.as_u64()).unwrap_or(0);
            assert_eq!(v.as_u64(), Some(w), "{name}: sync.{k} in {}", r.summary);
        }
        for k in want.keys() {
            assert!(
                got.contains_key(k),
                "{name}: sync.{k} missing in {}",
                r.summary
            );
        }
    }
    if let Some(v) = sum.get("vrrp") {
        assert_eq!(&r.summary["vrrp"], v, "{name}: vrrp in {}", r.summary);
    }
    r.assert_accounted();
    r
}

/// VRRP through a replay: a backup keeps off the virtual address, takes
/// over when the master falls silent and when it leaves, yields to a
/// better one, drops malformed and foreign adverts, and leaves with an
/// advert of priority 0.
#[test]
fn vrrp_takeover() {
    check("vrrp_takeover");
}

/// A backup takes in a kernel master's sync messages (version 1 and 0):
/// the connections and the template they carry are used by later packets
/// (forwarded, not dropped as mid-connection; a new SYN follows the
/// template), broken and foreign messages install nothing, and updates
/// follow the kernel's rules (`ip_vs_proc_conn`).
#[test]
fn sync_backup() {
    check("sync_backup");
}

/// A master sends its connections and templates when the kernel would,
/// in one message the kernel's decoder (the generator's, from its struct
/// layout) reads back exactly.
#[test]
fn sync_master() {
    check("sync_master");
}
