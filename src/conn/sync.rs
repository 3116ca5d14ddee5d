//! IPVS connection sync, the connection table's side: which connections a
//! sync master sends and when, what an entry of a message says of one,
//! and how a backup installs it (net/netfilter/ipvs/ip_vs_sync.c;
//! ../shared/IPVS-SPEC.md §5).
//!
//! Sending ([`on_inbound`], for each inbound packet of a connection, as
//! `ip_vs_in` calls `ip_vs_sync_conn`; `ip_vs_sync_conn_needed` with the
//! kernel's defaults sync_refresh_period = 0, sync_retries = 0):
//! - TCP is sent only in ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT and
//!   TIME_WAIT; a change to one of those other than ESTABLISHED is sent at
//!   once; otherwise (ESTABLISHED, and UDP) at the packet whose count is
//!   `threshold` modulo `period` (with period 0, only at that count).
//! - A persistence template is sent at every inbound packet of a
//!   connection it controls, whether that connection is sent or not (the
//!   `control:` step of `ip_vs_sync_conn`: with sync_period > 0 nothing
//!   but sync_refresh_period, 0 by default, rate-limits templates; with
//!   period 0, at the template's `threshold`th packet only). This keeps a
//!   backup's template alive as long as its client sends anything.
//!
//!
//! Installing a received entry is `datapath::sync_install`'s: it needs
//! the service table as well.

use super::table::{Conn, ConnState, Fwd};
use super::tcp_state::TcpState;
use crate::wire::ipvs_sync::{flags, SyncConn};

const TCP: u8 = 6;

/// The kernel's sync_threshold and sync_period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncThreshold {
    pub threshold: u16,
    pub period: u16,
}

/// The state as the kernel numbers it (TCP's table; 0 for UDP, NORMAL,
/// and for templates).
pub fn kernel_state(c: &Conn) -> u16 {
    match c.state {
        ConnState::Tcp(s) => s as u16,
        ConnState::Normal => 0,
    }
}

/// Counts an inbound packet of `c` and says whether it is to be sent now.
#[inline]
pub fn on_inbound(c: &mut Conn, r: SyncThreshold) -> bool {
    c.in_pkts = if r.period > 0 {
        ((u32::from(c.in_pkts) + 1) % u32::from(r.period)) as u16
    } else {
        c.in_pkts.saturating_add(1)
    };
    needed(c, r)
}

/// `ip_vs_sync_conn_needed` for a counted packet.
fn needed(c: &mut Conn, r: SyncThreshold) -> bool {
    let state = kernel_state(c);
    if !c.template && c.proto == TCP {
        use TcpState::*;
        let synced = [Established, FinWait, Close, CloseWait, TimeWait];
        if !synced.iter().any(|&s| s as u16 == state) {
            return false;
        }
        let force = state != u16::from(c.sync_state);
        if force && state != Established as u16 {
            c.sync_state = state as u8;
            return true;
        }
    }
    let due = if r.period > 0 {
        c.template || c.in_pkts == r.threshold
    } else {
        c.in_pkts == r.threshold
    };
    if due {
        c.sync_state = state as u8;
    }
    due
}

/// An inbound packet of a connection `t` controls: the template counts
/// it and says whether it is to be sent (see the module docs).
pub fn template_needed(t: &mut Conn, r: SyncThreshold) -> bool {
    on_inbound(t, r)
}

/// A connection as a sync entry; `fwmark` is its service's mark (0 for a
/// service by address).
pub fn to_wire(c: &Conn, fwmark: u32) -> SyncConn {
    let fwd = match c.fwd {
        Fwd::Nat => flags::MASQ,
        Fwd::Dr => flags::DROUTE,
        Fwd::Tun(_) => flags::TUNNEL,
    };
    let mut f = fwd;
    if c.template {
        // A template carries its server's connection flags
        // (`ip_vs_bind_dest`): INACTIVE, and NOOUTPUT when not NAT.
        f |= flags::TEMPLATE | flags::INACTIVE;
        if c.fwd != Fwd::Nat {
            f |= flags::NOOUTPUT;
        }
    } else {
        if c.inactive {
            f |= flags::INACTIVE;
        }
        if c.no_output {
            f |= flags::NOOUTPUT;
        }
    }
    SyncConn {
        protocol: c.proto,
        flags: f,
        state: kernel_state(c),
        cport: c.cport,
        vport: c.vport,
        dport: c.dport,
        fwmark,
        timeout_s: u32::try_from(c.timeout_us / 1_000_000).unwrap_or(u32::MAX),
        caddr: c.caddr,
        vaddr: c.vaddr,
        daddr: c.daddr,
        seq: None,
    }
}
