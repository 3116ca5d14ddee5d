//! IPVS sync messages (`wire::ipvs_sync`) over arbitrary bytes.
//!
//! Input: 1 byte, the receiver's syncid; then the message (a UDP
//! payload). Checks: `parse` never panics, yields exactly the entries it
//! counts, and nothing at all when it refuses the message; a syncid of 0
//! takes what another syncid takes; the yielded entries, written again by
//! `Writer` (version 1), parse back to themselves.
#![no_main]

use dlvs::wire::ipvs_sync::{parse, SyncConn, SyncError, Writer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&syncid, msg)) = data.split_first() else {
        return;
    };
    let mut got: Vec<SyncConn> = Vec::new();
    let r = parse(msg, syncid, |c| got.push(*c));
    match r {
        Ok(p) => {
            assert_eq!(p.entries, got.len(), "entries counted vs yielded");
            // Syncid 0 takes every message another syncid takes.
            let mut any = Vec::new();
            let p0 = parse(msg, 0, |c| any.push(*c)).expect("syncid 0 takes it too");
            assert_eq!((p0, &any), (p, &got));
        }
        Err(_) => assert!(got.is_empty(), "a refused message yielded entries"),
    }
    if r == Err(SyncError::ForeignSyncid) {
        // Its header held: only the syncid differs.
        assert!(msg.len() >= 4 && msg[1] != syncid && syncid != 0);
    }
    if got.is_empty() {
        return;
    }
    // Written again (IPv4 entries, version 1: room for 255 of them with
    // their options), they read back the same.
    let mut w = Writer::new(1, syncid, 65535);
    for c in &got {
        assert!(w.push(c), "an entry did not fit an empty-enough message");
    }
    let mut again: Vec<SyncConn> = Vec::new();
    let p = parse(w.bytes(), syncid, |c| again.push(*c)).expect("a written message parses");
    assert_eq!(p.skipped, 0);
    let norm = |c: &SyncConn| SyncConn {
        seq: if c.flags & 0x0600 != 0 { c.seq } else { None },
        ..*c
    };
    assert_eq!(again, got.iter().map(norm).collect::<Vec<_>>());
});
