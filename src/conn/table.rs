//! One lcore's connection table.
//!
//! Entries live in a slab allocated at start (`[conn] capacity` of them)
//! and are found through an [`Index`] of (tag, slot) pairs, sized at
//! start too for two keys per entry, with a randomly seeded keyed hash
//! (foldhash), so the packet path neither allocates nor rehashes, and
//! chosen addresses cannot degrade it. A full table refuses new entries
//! ([`Full`]); established ones keep flowing.
//!
//! Both directions of a NAT connection find the same entry: it is indexed
//! by its inbound tuple (client to virtual service) and, when it has one,
//! its outbound tuple (real server to client). The keys are not stored
//! apart: the index's candidates are checked against the entry's own
//! addresses. Persistence templates (IPVS's TEMPLATE connections) live in
//! the same table under keys of their own kind, so they never collide
//! with a connection's.
//!
//! Expiry follows the data plane's clock (µs; capture time in replay).
//! Work is bounded: [`ConnTable::expire`] checks a fixed number of slots
//! per call, going round the slab (a full turn over `capacity / budget`
//! calls), and a lookup that finds an expired entry treats it as gone and
//! frees it. A template lasts its own timeout after its last use and
//! `timeout` after the last connection it controls ends (IPVS re-arms a
//! template's timer while it controls connections, `ip_vs_conn_expire`;
//! ../shared/IPVS-SPEC.md section 4). Entries are reaped lazily here, so
//! a template keeps its connections in a list (linked through their
//! slots) and, once its own time is up, reads their deadlines instead of
//! re-arming itself blindly; one whose time is up but whose connections
//! the sweep has not reaped yet is no longer found, and is freed after
//! them (a connection's link to its template never dangles). The walk
//! happens only after a template's own timeout, when its client has
//! opened no connection for that long.
//!
//! Cost per entry: one [`Conn`] (72 bytes) in the slab, a 4-byte free
//! list slot, and room for two keys in the index (8 bytes a key, at most
//! 6/7 of the index used): 96 to 120 bytes per connection of capacity,
//! depending on how the index's power-of-two size rounds.

use std::net::Ipv4Addr;

use std::hash::BuildHasher;

use foldhash::fast::SeedableRandomState;

use super::index::Index;
pub use super::index::Slot;
use super::tcp_state::TcpState;
use crate::wire::tunnel::Tunnel;
use dlvs_admin::rules::{Method, TunCsum, TunKind};

/// What a key points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum KeyKind {
    /// A connection's inbound tuple (client to virtual service).
    In = 0,
    /// A NAT connection's outbound tuple (real server to client).
    Out = 1,
    /// A persistence template.
    Template = 2,
}

/// A lookup key: a protocol and a (source, destination) pair as the packet
/// carries them, tagged with what it finds. Held as two words (the
/// addresses; the ports, protocol and kind), which the hasher folds in one
/// multiply and a comparison checks in two: field by field, both showed
/// in perf (7% of a DR packet's time for the hash, 10% for the
/// comparisons, most of it stalled on store forwarding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    addrs: u64,
    rest: u64,
}

impl ConnKey {
    /// The key of a packet going from (saddr, sport) to (daddr, dport).
    #[inline]
    pub fn new(
        kind: KeyKind,
        proto: u8,
        saddr: Ipv4Addr,
        sport: u16,
        daddr: Ipv4Addr,
        dport: u16,
    ) -> ConnKey {
        ConnKey {
            addrs: u64::from(u32::from(saddr)) << 32 | u64::from(u32::from(daddr)),
            rest: u64::from(sport) << 48
                | u64::from(dport) << 32
                | u64::from(proto) << 8
                | kind as u64,
        }
    }

    /// Whether this is a NAT connection's outbound key.
    #[inline]
    pub fn is_out(&self) -> bool {
        self.rest & 0xff == KeyKind::Out as u64
    }

    /// The source address.
    pub fn saddr(&self) -> Ipv4Addr {
        Ipv4Addr::from((self.addrs >> 32) as u32)
    }

    /// The source port.
    pub fn sport(&self) -> u16 {
        (self.rest >> 48) as u16
    }
}

/// How a connection is forwarded (IPVS's IP_VS_CONN_F_FWD_MASK), with
/// the tunnel's parameters for TUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fwd {
    Nat,
    Dr,
    Tun(Tunnel),
}

impl Fwd {
    /// A new connection's method for a real server's.
    pub fn of(method: Method) -> Fwd {
        match method {
            Method::Nat => Fwd::Nat,
            Method::Dr => Fwd::Dr,
            Method::Tun(t) => Fwd::Tun(match t.kind {
                TunKind::Ipip => Tunnel::Ipip,
                TunKind::Gue => Tunnel::Gue {
                    port: t.port,
                    csum: t.csum != TunCsum::NoCsum,
                },
                TunKind::Gre => Tunnel::Gre {
                    csum: t.csum == TunCsum::Csum,
                },
            }),
        }
    }
}

/// The state a connection is in: TCP's, or the single state of UDP and
/// ICMP (IPVS's NORMAL), or a template's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Tcp(TcpState),
    Normal,
}

impl ConnState {
    /// Active as IPVS counts it (TCP ESTABLISHED only).
    pub fn is_active(self) -> bool {
        matches!(self, ConnState::Tcp(s) if s.is_active())
    }
}

/// Connections of a template looked at in one expiry check.
const TEMPLATE_WALK: usize = 64;

/// No slot (a connection without a template).
pub const NO_SLOT: Slot = Slot::MAX;

/// One connection or persistence template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    pub proto: u8,
    pub fwd: Fwd,
    pub state: ConnState,
    /// A persistence template (IPVS's IP_VS_CONN_F_TEMPLATE).
    pub template: bool,
    /// Counted inactive at its real server (IPVS's IP_VS_CONN_F_INACTIVE).
    pub inactive: bool,
    /// No reply seen yet through the director (IPVS's NOOUTPUT; DR, TUN).
    pub no_output: bool,
    pub caddr: Ipv4Addr,
    pub cport: u16,
    pub vaddr: Ipv4Addr,
    pub vport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    /// The real server's stable id.
    pub dest: u32,
    /// The virtual service's stable id.
    pub service: u32,
    /// The template this connection is controlled by, or [`NO_SLOT`].
    pub control: Slot,
    /// Connections this template controls.
    pub n_control: u32,
    /// Timeout in µs, and when it runs out (the data plane's clock).
    pub timeout_us: u64,
    pub expires: u64,
    /// The list of a template's connections: in a template, the first;
    /// in a connection, the next and previous of its template's.
    pub ctl_next: Slot,
    pub ctl_prev: Slot,
    /// Inbound packets counted for sync (IPVS's in_pkts), modulo the
    /// sync period (`conn::sync`).
    pub in_pkts: u16,
    /// The state last synced (IPVS's old_state), as the kernel numbers it.
    pub sync_state: u8,
}

impl Conn {
    /// The inbound key.
    pub fn in_key(&self) -> ConnKey {
        let kind = if self.template {
            KeyKind::Template
        } else {
            KeyKind::In
        };
        ConnKey::new(
            kind, self.proto, self.caddr, self.cport, self.vaddr, self.vport,
        )
    }

    /// The outbound key: NAT connections only (the replies of the others
    /// bypass the director).
    pub fn out_key(&self) -> Option<ConnKey> {
        (self.fwd == Fwd::Nat && !self.template).then(|| {
            ConnKey::new(
                KeyKind::Out,
                self.proto,
                self.daddr,
                self.dport,
                self.caddr,
                self.cport,
            )
        })
    }
}

/// Whether the entry in `slot` has `key` (the kind says which of its keys).
#[inline]
fn holds(slots: &[Option<Conn>], slot: Slot, key: &ConnKey) -> bool {
    match slots.get(slot as usize) {
        Some(Some(c)) if key.is_out() => c.out_key() == Some(*key),
        Some(Some(c)) => c.in_key() == *key,
        _ => false,
    }
}

/// The table is full: the new connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A connection found by a lookup, and which way the packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub slot: Slot,
    /// The key was the outbound one: a reply from the real server.
    pub reply: bool,
}

#[derive(Debug)]
pub struct ConnTable {
    slots: Vec<Option<Conn>>,
    free: Vec<Slot>,
    index: Index,
    /// The index's keyed hash, seeded at random per table.
    hasher: SeedableRandomState,
    len: usize,
    cursor: usize,
}

impl ConnTable {
    /// A table of `capacity` entries, every byte of it allocated now.
    pub fn new(capacity: usize) -> ConnTable {
        ConnTable::with_hasher(capacity, SeedableRandomState::random())
    }

    /// A table whose index hashes with `hasher` (tests: a fixed seed shows
    /// what a random one protects against).
    fn with_hasher(capacity: usize, hasher: SeedableRandomState) -> ConnTable {
        let capacity = capacity.min(Slot::MAX as usize - 1);
        ConnTable {
            slots: dpdk::mem::huge_vec(capacity, None),
            free: (0..capacity as Slot).rev().collect(),
            // Two keys per entry at most (a NAT connection's).
            index: Index::with_keys(2 * capacity),
            hasher,
            len: 0,
            cursor: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The bytes the index holds (constant: it never reallocates).
    pub fn index_bytes(&self) -> usize {
        self.index.bytes()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds an entry (expiring `timeout_us` after `now`); [`Full`] when no
    /// slot is free. Callers look up first; an entry under the same key
    /// is shadowed (its own removal later leaves the new one's keys).
    pub fn insert(&mut self, mut conn: Conn, now: u64) -> Result<Slot, Full> {
        let slot = self.free.pop().ok_or(Full)?;
        conn.expires = now.saturating_add(conn.timeout_us);
        conn.ctl_next = NO_SLOT;
        conn.ctl_prev = NO_SLOT;
        for k in std::iter::once(conn.in_key()).chain(conn.out_key()) {
            let h = self.hash(&k);
            let slots = &self.slots;
            if self.index.insert(h, slot, |s| holds(slots, s, &k)).is_err() {
                // Never: the index has room for two keys per slot.
                self.unindex(&conn, slot);
                self.free.push(slot);
                return Err(Full);
            }
        }
        if conn.control != NO_SLOT {
            // At the head of its template's list.
            match self.slots.get_mut(conn.control as usize) {
                Some(Some(t)) if t.template => {
                    t.n_control += 1;
                    conn.ctl_next = t.ctl_next;
                    t.ctl_next = slot;
                }
                _ => conn.control = NO_SLOT,
            }
            if let Some(next) = self.get_mut(conn.ctl_next) {
                next.ctl_prev = slot;
            }
        }
        self.slots[slot as usize] = Some(conn);
        self.len += 1;
        Ok(slot)
    }

    /// The live entry under `key`, if any. An entry whose time ran out is
    /// removed on the way and handed to `expired` (the caller's
    /// accounting) as if the sweep had found it.
    pub fn lookup(&mut self, key: &ConnKey, now: u64, expired: impl FnMut(Conn)) -> Option<Found> {
        let h = self.hash(key);
        self.lookup_hashed(key, h, now, expired)
    }

    /// The index hash of `key` (keyed: random per table). The lowest bit
    /// of its tag (bit 32) says whether it is an outbound key, so that a
    /// NAT connection's two keys never share a tag: the index tells pairs
    /// of one slot apart by their tags alone.
    #[inline]
    pub fn hash(&self, key: &ConnKey) -> u64 {
        let out = u64::from(key.is_out()) << 32;
        (self.hasher.hash_one(key) & !(1 << 32)) | out
    }

    /// Starts loading the index bucket a lookup of the key of `hash`
    /// reads first: a burst's lookups then wait on memory once, not once
    /// per packet.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Starts loading the entry a lookup of the key of `hash` will most
    /// likely compare (after [`ConnTable::prefetch_index`] had time to
    /// bring the bucket in).
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) {
        if let Some(slot) = self.index.likely(hash) {
            if let Some(e) = self.slots.get(slot as usize) {
                dpdk::mem::prefetch_all(e);
            }
        }
    }

    /// [`ConnTable::lookup`] with the key's hash already computed
    /// ([`ConnTable::hash`] of the same key).
    #[inline(always)]
    pub fn lookup_hashed(
        &mut self,
        key: &ConnKey,
        h: u64,
        now: u64,
        expired: impl FnMut(Conn),
    ) -> Option<Found> {
        debug_assert_eq!(h, self.hash(key));
        let slot = self.index.get(h, |s| holds(&self.slots, s, key))?;
        if self.due(slot, now) {
            // Freed, or (a template waiting for its connections to be
            // reaped) no longer to be found.
            self.expire_slot(slot, expired);
            return None;
        }
        Some(Found {
            slot,
            reply: key.is_out(),
        })
    }

    /// Index buckets a lookup of `key` reads (1 when it is found in its
    /// home bucket or that bucket never overflowed).
    pub fn probes(&self, key: &ConnKey) -> usize {
        let h = self.hash(key);
        self.index.probes(h, |s| holds(&self.slots, s, key))
    }

    pub fn get(&self, slot: Slot) -> Option<&Conn> {
        self.slots.get(slot as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, slot: Slot) -> Option<&mut Conn> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// Restarts an entry's timer with `timeout_us` from `now`.
    pub fn touch(&mut self, slot: Slot, timeout_us: u64, now: u64) {
        if let Some(c) = self.get_mut(slot) {
            c.timeout_us = timeout_us;
            c.expires = now.saturating_add(timeout_us);
        }
    }

    /// Removes an entry now; returns it for the caller's accounting.
    pub fn remove(&mut self, slot: Slot) -> Option<Conn> {
        let conn = self.slots.get_mut(slot as usize)?.take()?;
        self.unindex(&conn, slot);
        if conn.control != NO_SLOT {
            // Out of its template's list.
            if let Some(p) = self.get_mut(conn.ctl_prev) {
                p.ctl_next = conn.ctl_next;
            }
            if let Some(n) = self.get_mut(conn.ctl_next) {
                n.ctl_prev = conn.ctl_prev;
            }
            if let Some(t) = self.get_mut(conn.control) {
                t.n_control = t.n_control.saturating_sub(1);
                if t.ctl_next == slot {
                    t.ctl_next = conn.ctl_next;
                }
                // The template outlives its connection by its timeout.
                t.expires = t.expires.max(conn.expires.saturating_add(t.timeout_us));
            }
        }
        self.free.push(slot);
        self.len -= 1;
        Some(conn)
    }

    /// Drops the keys of `conn` (in `slot`) that still lead there: a later
    /// entry may have taken one over.
    fn unindex(&mut self, conn: &Conn, slot: Slot) {
        for k in std::iter::once(conn.in_key()).chain(conn.out_key()) {
            self.index.remove(self.hash(&k), slot);
        }
    }

    /// Checks the next `budget` slots for entries whose time ran out and
    /// removes them, handing each to `expired`; bounded work.
    pub fn expire(&mut self, now: u64, budget: usize, mut expired: impl FnMut(Conn)) {
        let n = self.slots.len();
        if n == 0 {
            return;
        }
        for _ in 0..budget.min(n) {
            let slot = self.cursor as Slot;
            // Not `% n`: a division per slot costs more than the check.
            self.cursor += 1;
            if self.cursor == n {
                self.cursor = 0;
            }
            if self.due(slot, now) {
                self.expire_slot(slot, &mut expired);
            }
        }
    }

    /// Whether an entry's time has run out: a connection's deadline; a
    /// template's own, and `timeout` after its connections' latest.
    fn due(&self, slot: Slot, now: u64) -> bool {
        let Some(c) = self.slots[slot as usize].as_ref() else {
            return false;
        };
        if c.expires > now {
            return false;
        }
        if !c.template {
            return true;
        }
        // A bounded look: with more connections than that, the template
        // is kept for now (the sweep reaps the overdue ones, and a later
        // look finds fewer).
        let mut next = c.ctl_next;
        for _ in 0..TEMPLATE_WALK {
            let Some(k) = self.get(next) else {
                return true;
            };
            if k.expires.saturating_add(c.timeout_us) > now {
                return false;
            }
            next = k.ctl_next;
        }
        false
    }

    /// Frees an entry whose time ran out; a template still linked to
    /// connections waits for the sweep to reap them first.
    fn expire_slot(&mut self, slot: Slot, mut expired: impl FnMut(Conn)) {
        let Some(c) = self.slots[slot as usize].as_ref() else {
            return;
        };
        if c.template && c.n_control > 0 {
            return;
        }
        if let Some(conn) = self.remove(slot) {
            expired(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);

    fn conn(fwd: Fwd, cport: u16) -> Conn {
        Conn {
            proto: 6,
            fwd,
            state: ConnState::Tcp(TcpState::SynRecv),
            template: false,
            inactive: true,
            no_output: fwd != Fwd::Nat,
            caddr: CIP,
            cport,
            vaddr: VIP,
            vport: 80,
            daddr: RIP,
            dport: 8080,
            dest: 1,
            service: 1,
            control: NO_SLOT,
            n_control: 0,
            timeout_us: 60_000_000,
            expires: 0,
            ctl_next: NO_SLOT,
            ctl_prev: NO_SLOT,
            in_pkts: 0,
            sync_state: 0,
        }
    }

    fn in_key(cport: u16) -> ConnKey {
        ConnKey::new(KeyKind::In, 6, CIP, cport, VIP, 80)
    }

    fn out_key(cport: u16) -> ConnKey {
        ConnKey::new(KeyKind::Out, 6, RIP, 8080, CIP, cport)
    }

    #[test]
    fn both_directions_of_a_nat_connection_find_it() {
        let mut t = ConnTable::new(8);
        let s = t.insert(conn(Fwd::Nat, 40000), 0).unwrap();
        let none = |_| panic!("nothing expires");
        assert_eq!(
            t.lookup(&in_key(40000), 1, none),
            Some(Found {
                slot: s,
                reply: false
            })
        );
        assert_eq!(
            t.lookup(&out_key(40000), 1, none),
            Some(Found {
                slot: s,
                reply: true
            })
        );
        assert_eq!(t.lookup(&in_key(40001), 1, none), None);
        // DR: replies bypass the director, no outbound key.
        let d = t.insert(conn(Fwd::Dr, 40001), 0).unwrap();
        assert_eq!(t.lookup(&in_key(40001), 1, none).unwrap().slot, d);
        assert_eq!(t.lookup(&out_key(40001), 1, none), None);
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(s).unwrap().cport, 40000);
        assert_eq!(t.lookup(&out_key(40000), 1, none), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_full_table_refuses_new_entries_and_keeps_old_ones() {
        let mut t = ConnTable::new(2);
        t.insert(conn(Fwd::Nat, 1), 0).unwrap();
        t.insert(conn(Fwd::Nat, 2), 0).unwrap();
        assert_eq!(t.insert(conn(Fwd::Nat, 3), 0), Err(Full));
        assert!(t.lookup(&in_key(1), 5, |_| ()).is_some());
    }

    #[test]
    fn expiry_is_lazy_on_lookup_and_bounded_in_the_sweep() {
        let mut t = ConnTable::new(100);
        for p in 0..10 {
            t.insert(conn(Fwd::Nat, p), 0).unwrap();
        }
        let mut gone = Vec::new();
        // Not yet.
        t.expire(59_999_999, 100, |c| gone.push(c.cport));
        assert!(gone.is_empty());
        // A lookup after the deadline frees the entry.
        assert_eq!(
            t.lookup(&in_key(3), 60_000_000, |c| gone.push(c.cport)),
            None
        );
        assert_eq!(gone, vec![3]);
        // The sweep checks `budget` slots per call: the 9 left, in slots
        // 0..10, go in two calls of 5.
        t.expire(60_000_000, 5, |c| gone.push(c.cport));
        assert_eq!(gone.len(), 1 + 4, "slots 0..5 minus the one looked up");
        t.expire(60_000_000, 5, |c| gone.push(c.cport));
        assert_eq!(gone.len(), 10);
        assert!(t.is_empty());
        // Freed slots are reused.
        for p in 0..100 {
            t.insert(conn(Fwd::Nat, p), 1).unwrap();
        }
        assert_eq!(t.insert(conn(Fwd::Nat, 100), 1), Err(Full));
    }

    #[test]
    fn a_template_lives_its_timeout_after_its_last_connection() {
        let mut t = ConnTable::new(8);
        let mut tpl = conn(Fwd::Nat, 0);
        tpl.template = true;
        tpl.timeout_us = 300_000_000;
        let ts = t.insert(tpl, 0).unwrap();
        let mut c = conn(Fwd::Nat, 40000);
        c.control = ts;
        c.timeout_us = 900_000_000;
        let cs = t.insert(c, 0).unwrap();
        assert_eq!(t.get(ts).unwrap().n_control, 1);
        // A template key never finds a connection, and back.
        let tkey = ConnKey::new(KeyKind::Template, 6, CIP, 0, VIP, 80);
        assert_eq!(t.lookup(&tkey, 1, |_| ()).unwrap().slot, ts);
        // At 300 s its own time is up, but its connection lives (to 900 s):
        // it stays, until 300 s after the connection's end.
        let mut gone = Vec::new();
        t.expire(300_000_000, 8, |c| gone.push(c.template));
        assert!(gone.is_empty());
        assert!(t.lookup(&tkey, 1_199_999_999, |_| ()).is_some());
        // Past 1200 s: not found; freed once the connection is reaped.
        assert!(t.lookup(&tkey, 1_200_000_000, |_| ()).is_none());
        assert!(t.get(ts).is_some(), "its connection is not reaped yet");
        t.expire(1_200_000_000, 8, |c| gone.push(c.template));
        t.expire(1_200_000_000, 8, |c| gone.push(c.template));
        assert_eq!(gone, vec![false, true], "the connection, then the template");
        assert!(t.get(cs).is_none() && t.get(ts).is_none());
    }

    #[test]
    fn a_template_follows_its_connections_deadlines() {
        let mut t = ConnTable::new(8);
        let mut tpl = conn(Fwd::Nat, 0);
        tpl.template = true;
        tpl.timeout_us = 10;
        let ts = t.insert(tpl, 0).unwrap();
        let mut conns = Vec::new();
        for p in 1..=3 {
            let mut c = conn(Fwd::Nat, p);
            c.control = ts;
            c.timeout_us = 100;
            conns.push(t.insert(c, 0).unwrap());
        }
        assert_eq!(t.get(ts).unwrap().n_control, 3);
        // One connection lives longer; another is closed early.
        t.touch(conns[1], 100, 1000);
        t.touch(conns[2], 1, 500);
        let tkey = ConnKey::new(KeyKind::Template, 6, CIP, 0, VIP, 80);
        assert!(t.lookup(&tkey, 1109, |_| ()).is_some());
        assert!(
            t.lookup(&tkey, 1110, |_| ()).is_none(),
            "10 after the latest (1100)"
        );
        // Unlinking from the middle, the head and the tail keeps the list;
        // a reaped connection's deadline still holds its template.
        t.remove(conns[1]);
        assert_eq!(t.get(ts).unwrap().expires, 1110);
        t.remove(conns[2]);
        t.remove(conns[0]);
        assert!(t.lookup(&tkey, 1109, |_| ()).is_some());
        assert_eq!(t.get(ts).unwrap().n_control, 0);
        assert_eq!(t.get(ts).unwrap().ctl_next, NO_SLOT);
    }

    #[test]
    fn removing_a_shadowed_entry_keeps_the_new_ones_keys() {
        let mut t = ConnTable::new(4);
        let old = t.insert(conn(Fwd::Nat, 1), 0).unwrap();
        let new = t.insert(conn(Fwd::Nat, 1), 0).unwrap();
        t.remove(old);
        assert_eq!(t.lookup(&in_key(1), 1, |_| ()).unwrap().slot, new);
        assert_eq!(t.lookup(&out_key(1), 1, |_| ()).unwrap().slot, new);
    }

    #[test]
    fn touch_restarts_the_timer() {
        let mut t = ConnTable::new(4);
        let s = t.insert(conn(Fwd::Dr, 1), 0).unwrap();
        t.touch(s, 900_000_000, 50_000_000);
        assert!(t.lookup(&in_key(1), 100_000_000, |_| panic!()).is_some());
        assert_eq!(t.get(s).unwrap().expires, 950_000_000);
    }

    /// Heavy churn (every slot filled and freed many times over) never
    /// makes the index reallocate.
    #[test]
    fn churn_never_reallocates_the_index() {
        let mut t = ConnTable::new(1024);
        let bytes = t.index_bytes();
        for round in 0..50u16 {
            let slots: Vec<Slot> = (0..1024u16)
                .map(|p| {
                    t.insert(conn(Fwd::Nat, p.wrapping_mul(31).wrapping_add(round)), 0)
                        .unwrap()
                })
                .collect();
            for s in slots {
                t.remove(s);
            }
        }
        assert_eq!(t.index_bytes(), bytes);
    }

    /// Keys crafted to share one bucket under an unkeyed hash (what a
    /// sender can compute offline: here foldhash with its fixed seed) make
    /// long probes in a table that uses that hash, and none in one with a
    /// random seed, which every `ConnTable::new` has.
    #[test]
    fn keys_crafted_against_a_fixed_hash_do_not_collide_in_a_keyed_table() {
        let fixed = SeedableRandomState::fixed();
        let capacity = 4096;
        let buckets = ConnTable::new(capacity).index_bytes() / 64;
        // Clients (address, port) whose key lands in bucket 0 unkeyed.
        let crafted: Vec<ConnKey> = (0u32..)
            .map(|i| {
                let caddr = Ipv4Addr::from(0xC633_0000 | (i >> 8)); // 198.51.x.x
                ConnKey::new(KeyKind::In, 6, caddr, 1024 + (i & 0xff) as u16, VIP, 80)
            })
            .filter(|k| fixed.hash_one(k) as usize % buckets == 0)
            .take(300)
            .collect();
        let fill = |t: &mut ConnTable| {
            for k in &crafted {
                let mut c = conn(Fwd::Dr, k.sport());
                c.caddr = k.saddr();
                t.insert(c, 0).unwrap();
            }
            crafted.iter().map(|k| t.probes(k)).max().unwrap()
        };
        let unkeyed = fill(&mut ConnTable::with_hasher(capacity, fixed));
        let keyed = fill(&mut ConnTable::new(capacity));
        assert!(unkeyed >= 300 / 7, "the crafted keys chain: {unkeyed}");
        assert!(keyed <= 3, "a random seed spreads them: {keyed} buckets");
    }

    /// A NAT connection's two keys have different tags whatever their
    /// hashes, and a slot shadowed through its outbound key only (one
    /// client port to two VIPs, one real server port) keeps its inbound
    /// key, its removal taking only what still leads to it.
    #[test]
    fn a_slots_two_keys_never_share_a_tag() {
        let t = ConnTable::new(64);
        for p in 0..1000u16 {
            let c = conn(Fwd::Nat, p);
            let (i, o) = (t.hash(&c.in_key()), t.hash(&c.out_key().unwrap()));
            assert_eq!((i >> 32 & 1, o >> 32 & 1), (0, 1));
        }
        let mut t = ConnTable::new(64);
        let a = t.insert(conn(Fwd::Nat, 7), 0).unwrap();
        let mut other_vip = conn(Fwd::Nat, 7);
        other_vip.vaddr = Ipv4Addr::new(10, 0, 0, 101);
        let b = t.insert(other_vip, 0).unwrap();
        assert_eq!(t.lookup(&in_key(7), 1, |_| ()).unwrap().slot, a);
        assert_eq!(t.lookup(&out_key(7), 1, |_| ()).unwrap().slot, b);
        t.remove(a);
        assert_eq!(t.lookup(&out_key(7), 1, |_| ()).unwrap().slot, b);
        t.remove(b);
        assert!(t.is_empty());
        assert_eq!(t.index.len(), 0);
    }

    #[test]
    fn entry_size_is_what_the_docs_say() {
        assert_eq!(std::mem::size_of::<Option<Conn>>(), 72);
        assert_eq!(std::mem::size_of::<ConnKey>(), 16);
    }
}
