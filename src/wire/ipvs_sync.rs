//! IPVS connection sync messages, as the kernel's sync daemons exchange
//! them (net/netfilter/ipvs/ip_vs_sync.c; ../shared/IPVS-SPEC.md §5):
//! UDP to 224.0.0.81 port 8848.
//!
//! Version 1 (the kernel's default): an 8-byte header (0, syncid, size,
//! count, version 1, 0) and entries of 36 bytes (IPv4) plus options,
//! each padded to 4 bytes. Version 0: a 4-byte header (count, syncid,
//! size) and entries of 24 bytes, 48 with the sequence option.
//!
//! [`parse`] checks a whole message before any of it is used (the kernel
//! installs the entries before a broken one; dlvs takes all or nothing),
//! and yields the entries a kernel backup would install; entries it would
//! skip (IPv6, an unsupported protocol or state, an unknown mandatory
//! option) are counted and skipped. [`Writer`] builds messages.

use std::net::Ipv4Addr;

/// The multicast group and port (`IP_VS_SYNC_GROUP`, `IP_VS_SYNC_PORT`).
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
pub const PORT: u16 = 8848;

/// Connection flags (include/uapi/linux/ip_vs.h).
pub mod flags {
    pub const FWD_MASK: u32 = 0x0007;
    pub const MASQ: u32 = 0x0000;
    pub const TUNNEL: u32 = 0x0002;
    pub const DROUTE: u32 = 0x0003;
    pub const SYNC: u32 = 0x0020;
    pub const HASHED: u32 = 0x0040;
    pub const NOOUTPUT: u32 = 0x0080;
    pub const INACTIVE: u32 = 0x0100;
    pub const OUT_SEQ: u32 = 0x0200;
    pub const IN_SEQ: u32 = 0x0400;
    pub const SEQ_MASK: u32 = 0x0600;
    pub const NO_CPORT: u32 = 0x0800;
    pub const TEMPLATE: u32 = 0x1000;
    pub const ONE_PACKET: u32 = 0x2000;
    /// What a backup keeps of a message's flags (`IP_VS_CONN_F_BACKUP_MASK`).
    pub const BACKUP_MASK: u32 = FWD_MASK | NOOUTPUT | INACTIVE | SEQ_MASK | NO_CPORT | TEMPLATE;
}

/// Version 1's header.
pub const HEADER_V1: usize = 8;
/// Version 0's header.
pub const HEADER_V0: usize = 4;
/// A version 1 IPv4 entry without options.
pub const ENTRY_V1: usize = 36;
/// A version 1 IPv6 entry without options.
const ENTRY_V1_INET6: usize = 72;
/// A version 0 entry, and its sequence option.
pub const ENTRY_V0: usize = 24;
const SEQ_LEN: usize = 24;
/// Option types (`IPVS_OPT_*`) and the "optional" bit.
const OPT_SEQ_DATA: u8 = 1;
const OPT_PE_DATA: u8 = 2;
const OPT_PE_NAME: u8 = 3;
const OPT_F_PARAM: u8 = 0x40;
const PE_DATA_MAX: usize = 255;
const PE_NAME_MAX: usize = 16;

/// One connection (or persistence template) of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConn {
    pub protocol: u8,
    /// The connection's flags, HASHED cleared.
    pub flags: u32,
    pub state: u16,
    pub cport: u16,
    pub vport: u16,
    pub dport: u16,
    pub fwmark: u32,
    /// Seconds; 0 in version 0 (the backup takes its protocol's).
    pub timeout_s: u32,
    pub caddr: Ipv4Addr,
    pub vaddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    /// The TCP sequence adjustments (in_seq, out_seq: init, delta,
    /// previous delta), when the flags have IN_SEQ or OUT_SEQ.
    pub seq: Option<[u32; 6]>,
}

/// Why a message was dropped whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncError {
    /// Shorter than a header, or its size field is not its length.
    BadSize,
    /// Another syncid than ours (ours not 0).
    ForeignSyncid,
    /// An entry runs past the message, has an unknown version or a bad
    /// option (the kernel drops the rest of the message).
    BadEntry,
}

/// What a message held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// Entries yielded.
    pub entries: usize,
    /// Entries a kernel backup skips: IPv6, an unsupported protocol or
    /// state, an unknown mandatory option, persistence-engine data.
    pub skipped: usize,
    /// The message's version (0 or 1).
    pub version: u8,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn addr(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// The states a kernel backup accepts for a protocol (`pp->num_states`):
/// TCP's 11, UDP's 1; other protocols are not dlvs's (SCTP).
fn valid_state(protocol: u8, state: u16) -> bool {
    match protocol {
        6 => state < 11,
        17 => state < 1,
        _ => false,
    }
}

/// Checks a whole message (the UDP payload) and, if it holds, hands
/// each entry a backup installs to `f`, in order. `syncid` is the
/// receiver's (0 takes every message).
pub fn parse(msg: &[u8], syncid: u8, mut f: impl FnMut(&SyncConn)) -> Result<Parsed, SyncError> {
    // First pass: everything checked, nothing yielded.
    let p = walk(msg, syncid, &mut |_| {})?;
    walk(msg, syncid, &mut f)?;
    Ok(p)
}

fn walk(msg: &[u8], syncid: u8, f: &mut dyn FnMut(&SyncConn)) -> Result<Parsed, SyncError> {
    if msg.len() < HEADER_V0 || usize::from(be16(msg, 2)) != msg.len() {
        return Err(SyncError::BadSize);
    }
    if syncid != 0 && msg[1] != syncid {
        return Err(SyncError::ForeignSyncid);
    }
    let v1 = msg.len() >= HEADER_V1 && msg[0] == 0 && msg[5] == 1 && be16(msg, 6) == 0;
    if v1 {
        walk_v1(msg, f)
    } else {
        walk_v0(msg, f)
    }
}

/// Version 1 (`ip_vs_process_message`, `ip_vs_proc_sync_conn`).
fn walk_v1(msg: &[u8], f: &mut dyn FnMut(&SyncConn)) -> Result<Parsed, SyncError> {
    let mut out = Parsed {
        version: 1,
        ..Parsed::default()
    };
    let mut at = HEADER_V1;
    for _ in 0..msg[4] {
        if at + ENTRY_V1 > msg.len() {
            return Err(SyncError::BadEntry);
        }
        let ver_size = be16(msg, at + 2);
        let size = usize::from(ver_size & 0x0fff);
        let end = at + size;
        if end > msg.len() || ver_size >> 12 != 0 {
            return Err(SyncError::BadEntry);
        }
        // The type byte is read where the kernel reads it, before the
        // entry's own size is trusted (a size below the header's ends the
        // message: `ip_vs_proc_sync_conn`'s -20).
        let ty = msg[at];
        let inet6 = ty & 1 != 0;
        let base = if inet6 { ENTRY_V1_INET6 } else { ENTRY_V1 };
        if ty & !1 != 0 || base > size {
            return Err(SyncError::BadEntry);
        }
        let e = &msg[at..end];
        // Options: type, length, data; a zero or overlong length ends
        // the message, an unknown mandatory type skips the entry at once.
        let (mut p, mut seq, mut pe, mut skip) = (base, None, false, false);
        let (mut seen_seq, mut seen_data, mut seen_name) = (false, false, false);
        while p < e.len() {
            if p + 2 > e.len() {
                return Err(SyncError::BadEntry);
            }
            let (ty, len) = (e[p], usize::from(e[p + 1]));
            p += 2;
            if len == 0 || p + len > e.len() {
                return Err(SyncError::BadEntry);
            }
            match ty & !OPT_F_PARAM {
                OPT_SEQ_DATA => {
                    if len != SEQ_LEN || seen_seq {
                        return Err(SyncError::BadEntry);
                    }
                    seen_seq = true;
                    let mut s = [0u32; 6];
                    for (i, v) in s.iter_mut().enumerate() {
                        *v = be32(e, p + 4 * i);
                    }
                    seq = Some(s);
                }
                OPT_PE_DATA | OPT_PE_NAME => {
                    let (max, seen) = if ty & !OPT_F_PARAM == OPT_PE_DATA {
                        (PE_DATA_MAX, &mut seen_data)
                    } else {
                        (PE_NAME_MAX, &mut seen_name)
                    };
                    if len > max || *seen {
                        return Err(SyncError::BadEntry);
                    }
                    *seen = true;
                    // Persistence-engine data (a name alone is unused).
                    pe |= ty & !OPT_F_PARAM == OPT_PE_DATA;
                }
                _ if ty & OPT_F_PARAM == 0 => {
                    skip = true;
                    break;
                }
                _ => {}
            }
            p += len;
        }
        let flags = be32(e, 4);
        let protocol = e[1];
        let state = be16(e, 8);
        let template = flags & flags::TEMPLATE != 0;
        // dlvs has no persistence engines (SIP): connections with their
        // data are skipped, as a kernel without the engine skips them
        // (`ip_vs_conn_fill_param_sync`).
        if inet6 || skip || pe || !template && !valid_state(protocol, state) {
            out.skipped += 1;
        } else {
            out.entries += 1;
            f(&SyncConn {
                protocol,
                flags: flags & !flags::HASHED,
                state,
                cport: be16(e, 10),
                vport: be16(e, 12),
                dport: be16(e, 14),
                fwmark: be32(e, 16),
                timeout_s: be32(e, 20),
                caddr: addr(e, 24),
                vaddr: addr(e, 28),
                daddr: addr(e, 32),
                seq,
            });
        }
        at += (size + 3) & !3;
    }
    Ok(out)
}

/// Version 0 (`ip_vs_process_message_v0`).
fn walk_v0(msg: &[u8], f: &mut dyn FnMut(&SyncConn)) -> Result<Parsed, SyncError> {
    let mut out = Parsed::default();
    let mut at = HEADER_V0;
    for _ in 0..msg[0] {
        if at + ENTRY_V0 > msg.len() {
            return Err(SyncError::BadEntry);
        }
        let e = &msg[at..];
        let flags = u32::from(be16(e, 20)) & !flags::HASHED;
        let seq = if flags & flags::SEQ_MASK != 0 {
            if at + ENTRY_V0 + SEQ_LEN > msg.len() {
                return Err(SyncError::BadEntry);
            }
            let mut s = [0u32; 6];
            for (i, v) in s.iter_mut().enumerate() {
                *v = be32(e, ENTRY_V0 + 4 * i);
            }
            at += ENTRY_V0 + SEQ_LEN;
            Some(s)
        } else {
            at += ENTRY_V0;
            None
        };
        let protocol = e[1];
        let state = be16(e, 22);
        if flags & flags::TEMPLATE == 0 && !valid_state(protocol, state) {
            out.skipped += 1;
            continue;
        }
        out.entries += 1;
        f(&SyncConn {
            protocol,
            flags,
            state,
            cport: be16(e, 2),
            vport: be16(e, 4),
            dport: be16(e, 6),
            fwmark: 0,
            timeout_s: 0,
            caddr: addr(e, 8),
            vaddr: addr(e, 12),
            daddr: addr(e, 16),
            seq,
        });
    }
    Ok(out)
}

/// Builds a message of `version` (0 or 1) in a buffer of `max` bytes.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
    max: usize,
    version: u8,
    count: u8,
}

impl Writer {
    pub fn new(version: u8, syncid: u8, max: usize) -> Writer {
        let mut w = Writer {
            buf: Vec::with_capacity(max.max(HEADER_V1 + ENTRY_V1 + 2 + SEQ_LEN)),
            max,
            version,
            count: 0,
        };
        w.reset(syncid);
        w
    }

    /// Empties the message.
    pub fn reset(&mut self, syncid: u8) {
        self.buf.clear();
        self.count = 0;
        if self.version == 0 {
            self.buf.extend_from_slice(&[0, syncid, 0, HEADER_V0 as u8]);
        } else {
            self.buf
                .extend_from_slice(&[0, syncid, 0, HEADER_V1 as u8, 0, 1, 0, 0]);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Entries in the message.
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// Adds an entry; false if it does not fit (the message is then full).
    pub fn push(&mut self, c: &SyncConn) -> bool {
        let with_seq = c.flags & flags::SEQ_MASK != 0 && c.seq.is_some();
        if self.count == u8::MAX {
            return false;
        }
        let start = self.buf.len();
        if self.version == 0 {
            let len = ENTRY_V0 + if with_seq { SEQ_LEN } else { 0 };
            // A message keeps room for one entry at least.
            if start + len > self.max && self.count > 0 {
                return false;
            }
            self.buf.push(0);
            self.buf.push(c.protocol);
            for v in [c.cport, c.vport, c.dport] {
                self.buf.extend_from_slice(&v.to_be_bytes());
            }
            for a in [c.caddr, c.vaddr, c.daddr] {
                self.buf.extend_from_slice(&a.octets());
            }
            self.buf
                .extend_from_slice(&((c.flags & !flags::HASHED) as u16).to_be_bytes());
            self.buf.extend_from_slice(&c.state.to_be_bytes());
            if let (true, Some(s)) = (with_seq, c.seq) {
                for v in s {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
            }
        } else {
            let len = ENTRY_V1 + if with_seq { 2 + SEQ_LEN } else { 0 };
            let pad = (4 - start % 4) % 4;
            if start + pad + len > self.max && self.count > 0 {
                return false;
            }
            self.buf.resize(start + pad, 0);
            self.buf.push(0);
            self.buf.push(c.protocol);
            self.buf
                .extend_from_slice(&(len as u16 & 0x0fff).to_be_bytes());
            self.buf
                .extend_from_slice(&(c.flags & !flags::HASHED).to_be_bytes());
            for v in [c.state, c.cport, c.vport, c.dport] {
                self.buf.extend_from_slice(&v.to_be_bytes());
            }
            self.buf.extend_from_slice(&c.fwmark.to_be_bytes());
            self.buf.extend_from_slice(&c.timeout_s.to_be_bytes());
            for a in [c.caddr, c.vaddr, c.daddr] {
                self.buf.extend_from_slice(&a.octets());
            }
            if let (true, Some(s)) = (with_seq, c.seq) {
                self.buf.push(OPT_SEQ_DATA);
                self.buf.push(SEQ_LEN as u8);
                for v in s {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        self.count += 1;
        let size = self.buf.len() as u16;
        self.buf[2..4].copy_from_slice(&size.to_be_bytes());
        if self.version == 0 {
            self.buf[0] = self.count;
        } else {
            self.buf[4] = self.count;
        }
        true
    }

    /// The message as it stands.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(i: u8) -> SyncConn {
        SyncConn {
            protocol: 6,
            flags: flags::DROUTE | flags::NOOUTPUT,
            state: 1,
            cport: 40000 + u16::from(i),
            vport: 80,
            dport: 80,
            fwmark: 0,
            timeout_s: 900,
            caddr: Ipv4Addr::new(10, 0, 0, 50 + i),
            vaddr: Ipv4Addr::new(10, 0, 0, 100),
            daddr: Ipv4Addr::new(10, 0, 0, 11),
            seq: None,
        }
    }

    fn round_trip(version: u8, conns: &[SyncConn]) -> Vec<SyncConn> {
        let mut w = Writer::new(version, 7, 1472);
        for c in conns {
            assert!(w.push(c));
        }
        let mut got = Vec::new();
        let p = parse(w.bytes(), 7, |c| got.push(*c)).unwrap();
        assert_eq!((p.entries, p.version), (conns.len(), version));
        got
    }

    #[test]
    fn written_messages_read_back() {
        let mut seq = conn(2);
        seq.flags |= flags::IN_SEQ;
        seq.seq = Some([1, 2, 3, 4, 5, 6]);
        let conns = [conn(0), conn(1), seq];
        assert_eq!(round_trip(1, &conns), conns);
        // Version 0 carries neither fwmark nor timeout.
        let v0: Vec<_> = conns
            .iter()
            .map(|c| SyncConn { timeout_s: 0, ..*c })
            .collect();
        assert_eq!(round_trip(0, &conns), v0);
    }

    #[test]
    fn a_message_fills_to_its_size() {
        // The kernel's 1472 bytes (1500 less the IP and UDP headers): 40
        // entries of 36 after the header.
        let mut w = Writer::new(1, 1, 1472);
        let mut n = 0;
        while w.push(&conn(0)) {
            n += 1;
        }
        assert_eq!(n, 40);
        assert!(w.bytes().len() <= 1472);
    }

    #[test]
    fn bad_messages_are_refused_whole() {
        let mut w = Writer::new(1, 7, 1472);
        w.push(&conn(0));
        w.push(&conn(1));
        let good = w.bytes().to_vec();
        let never = |_: &SyncConn| panic!("nothing is yielded from a bad message");
        assert_eq!(parse(&good, 8, never), Err(SyncError::ForeignSyncid));
        assert!(parse(&good, 0, |_| {}).is_ok(), "syncid 0 takes all");
        assert_eq!(
            parse(&good[..good.len() - 1], 7, never),
            Err(SyncError::BadSize)
        );
        // The second entry's size runs past the end.
        let mut b = good.clone();
        b[HEADER_V1 + ENTRY_V1 + 3] = 200;
        assert_eq!(parse(&b, 7, never), Err(SyncError::BadEntry));
        // An option of length 0.
        let mut b = good.clone();
        b[HEADER_V1 + 3] = (ENTRY_V1 + 4) as u8;
        b.splice(
            HEADER_V1 + ENTRY_V1..HEADER_V1 + ENTRY_V1,
            [OPT_SEQ_DATA, 0, 0, 0],
        );
        let n = b.len() as u16;
        b[2..4].copy_from_slice(&n.to_be_bytes());
        assert_eq!(parse(&b, 7, never), Err(SyncError::BadEntry));
    }

    /// Found by the fuzzer: an entry whose size field is 0 (or below its
    /// header's) ends the message, and reading it never panics.
    #[test]
    fn an_entry_shorter_than_its_header_is_refused() {
        let mut w = Writer::new(1, 7, 1472);
        w.push(&conn(0));
        for size in [0u16, 1, 35] {
            let mut b = w.bytes().to_vec();
            b[HEADER_V1 + 2..HEADER_V1 + 4].copy_from_slice(&size.to_be_bytes());
            assert_eq!(
                parse(&b, 7, |_| {}),
                Err(SyncError::BadEntry),
                "size {size}"
            );
        }
    }

    #[test]
    fn entries_a_backup_skips_are_counted() {
        let mut bad_state = conn(0);
        bad_state.state = 11;
        let mut sctp = conn(1);
        sctp.protocol = 132;
        let mut w = Writer::new(1, 7, 1472);
        for c in [bad_state, sctp, conn(2)] {
            w.push(&c);
        }
        let mut got = Vec::new();
        let p = parse(w.bytes(), 7, |c| got.push(*c)).unwrap();
        assert_eq!((p.entries, p.skipped), (1, 2));
        assert_eq!(got, [conn(2)]);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse(&b, 0, |_| {});
        }
    }
}
