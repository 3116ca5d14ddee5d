//! Installing a received sync entry (`ip_vs_proc_conn`,
//! net/netfilter/ipvs/ip_vs_sync.c; ../shared/IPVS-SPEC.md §5): the
//! connection table of the worker that owns its client takes it, and the
//! real server it names is found in the service table and counted.
//!
//! [`install`]: a connection found under
//! the entry's client and virtual service keeps its entry unless the entry
//! names another real server: an active message then replaces it, an
//! inactive one (the old connection's last words) is ignored. A found
//! entry takes the message's INACTIVE flag (its server's counts moved), a
//! new one its real server's forwarding method whatever the message says
//! (`ip_vs_bind_dest`: "connections inherit forwarding method from
//! dest"); both take the
//! message's state, and its timeout (else the protocol's for that state,
//! 180 s for a template), and count `threshold` packets. A message for a
//! real server this director does not have is not installed (the kernel
//! keeps such a connection unbound; dlvs's counters and removal rules
//! work by server, so it counts the entry `no_dest` instead).

use crate::config::service::ServiceKey;
use crate::conn::sync::SyncThreshold;
use crate::conn::table::{Conn, ConnKey, ConnState, ConnTable, Fwd, KeyKind, NO_SLOT};
use crate::conn::tcp_state::TcpState;
use crate::service::rules::Method;
use crate::service::table::ServiceTable;
use crate::wire::ipvs_sync::{flags, SyncConn};
use crate::wire::IpProtocol;

/// A template's timeout when its message has none (version 0).
const TEMPLATE_TIMEOUT_US: u64 = 180_000_000;
/// The longest timeout a message may set (the kernel caps at
/// MAX_SCHEDULE_TIMEOUT / HZ; a day is more than any IPVS timeout).
const MAX_TIMEOUT_S: u32 = 86_400;

/// What became of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// A new connection or template.
    New,
    /// An existing one updated.
    Updated,
    /// An existing one of another real server, replaced.
    Replaced,
    /// An inactive message for a connection already replaced: ignored.
    Stale,
    /// No virtual service or real server of this director matches.
    NoDest,
    /// A forwarding method dlvs does not have (local node, bypass).
    Unsupported,
    /// The connection table is full.
    Full,
}

/// The real server of a service matching a message (`ip_vs_find_dest`:
/// the service by mark, then by protocol, address and port, as
/// `ip_vs_service_find`; the server by address and port, a port-0 one
/// matching any).
fn find_dest(services: &ServiceTable, m: &SyncConn) -> Option<(u32, u32, Method)> {
    let by_mark = (m.fwmark != 0)
        .then(|| {
            services
                .services()
                .iter()
                .find(|s| s.key == ServiceKey::Fwmark(m.fwmark))
        })
        .flatten();
    let svc = match by_mark {
        Some(s) => s,
        None => services.lookup(m.protocol, m.vaddr, m.vport)?.1,
    };
    let d = svc
        .dests
        .iter()
        .find(|d| d.addr == m.daddr && d.port == m.dport)
        .or_else(|| {
            svc.dests
                .iter()
                .find(|d| d.addr == m.daddr && (d.port == 0 || m.dport == 0))
        })?;
    Some((svc.id, d.id, d.method))
}

/// Installs one entry of a message into `conns` (the table of the worker
/// that owns its client), counting it at its real server.
pub fn install(
    conns: &mut ConnTable,
    services: &ServiceTable,
    m: &SyncConn,
    r: SyncThreshold,
    now: u64,
) -> Installed {
    let template = m.flags & flags::TEMPLATE != 0;
    let inactive = m.flags & flags::INACTIVE != 0;
    let state = if template || m.protocol != IpProtocol::TCP.0 {
        ConnState::Normal
    } else {
        match TcpState::from_index(m.state) {
            Some(s) => ConnState::Tcp(s),
            None => return Installed::Unsupported,
        }
    };
    let kind = if template {
        KeyKind::Template
    } else {
        KeyKind::In
    };
    let key = ConnKey::new(kind, m.protocol, m.caddr, m.cport, m.vaddr, m.vport);
    let unbind = |c: Conn| services.unbind(c.dest, c.template, c.inactive);
    let mut found = conns.lookup(&key, now, unbind).map(|f| f.slot);
    let mut replaced = false;
    if let (Some(slot), false) = (found, template) {
        let other = conns
            .get(slot)
            .is_some_and(|c| c.daddr != m.daddr || c.dport != m.dport);
        if other {
            if inactive {
                return Installed::Stale;
            }
            if let Some(c) = conns.remove(slot) {
                services.unbind(c.dest, c.template, c.inactive);
            }
            found = None;
            replaced = true;
        }
    }
    let timeout_us = if m.timeout_s != 0 {
        u64::from(m.timeout_s.min(MAX_TIMEOUT_S)) * 1_000_000
    } else if template {
        TEMPLATE_TIMEOUT_US
    } else {
        match state {
            ConnState::Tcp(s) => services.timeouts().tcp_us(s),
            ConnState::Normal => services.timeouts().udp_us(),
        }
    };
    let in_pkts = if r.period > 0 {
        r.threshold % r.period
    } else {
        r.threshold
    };
    let sync_state = m.state.min(u16::from(u8::MAX)) as u8;
    let outcome = match found {
        Some(slot) => {
            let Some(c) = conns.get_mut(slot) else {
                return Installed::NoDest;
            };
            if !c.template && c.inactive != inactive {
                services.set_active(c.dest, !inactive);
            }
            c.inactive = inactive;
            c.state = state;
            c.in_pkts = in_pkts;
            c.sync_state = sync_state;
            conns.touch(slot, timeout_us, now);
            Installed::Updated
        }
        None => {
            let Some((service, dest, method)) = find_dest(services, m) else {
                return Installed::NoDest;
            };
            // Whatever the message says, a synced connection inherits its
            // real server's forwarding method (`ip_vs_bind_dest`).
            let fwd = Fwd::of(method);
            let c = Conn {
                proto: m.protocol,
                fwd,
                state,
                template,
                inactive: !template && inactive,
                no_output: !template && fwd != Fwd::Nat && m.flags & flags::NOOUTPUT != 0,
                caddr: m.caddr,
                cport: m.cport,
                vaddr: m.vaddr,
                vport: m.vport,
                daddr: m.daddr,
                dport: m.dport,
                dest,
                service,
                control: NO_SLOT,
                n_control: 0,
                timeout_us,
                expires: 0,
                ctl_next: NO_SLOT,
                ctl_prev: NO_SLOT,
                in_pkts,
                sync_state,
            };
            if conns.insert(c, now).is_err() {
                return Installed::Full;
            }
            if let Some((_, d)) = services.dest(dest) {
                d.bind(template);
                if !template && !inactive {
                    d.counters.set_active(true);
                }
            }
            if replaced {
                Installed::Replaced
            } else {
                Installed::New
            }
        }
    };
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::sync::on_inbound;
    use crate::service::rules::Rules as ServiceRules;
    use crate::service::table::Registry;
    use std::net::Ipv4Addr;
    use std::sync::atomic::Ordering;

    const RULES: &str = "\
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g
-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g
-A -f 5 -s rr -p 60
-a -f 5 -r 10.0.0.13:0 -g
";
    const R: SyncThreshold = SyncThreshold {
        threshold: 3,
        period: 50,
    };

    fn table() -> ServiceTable {
        let rules = ServiceRules::parse(RULES, std::path::Path::new("t.rules")).unwrap();
        ServiceTable::build(&rules, &[], &mut Registry::default()).unwrap()
    }

    fn entry(daddr: [u8; 4], flags: u32, state: u16) -> SyncConn {
        SyncConn {
            protocol: 6,
            flags,
            state,
            cport: 40000,
            vport: 80,
            dport: 80,
            fwmark: 0,
            timeout_s: 900,
            caddr: Ipv4Addr::new(10, 0, 0, 50),
            vaddr: Ipv4Addr::new(10, 0, 0, 100),
            daddr: Ipv4Addr::from(daddr),
            seq: None,
        }
    }

    trait Key {
        fn key(&self) -> ConnKey;
    }
    impl Key for SyncConn {
        fn key(&self) -> ConnKey {
            ConnKey::new(
                KeyKind::In,
                self.protocol,
                self.caddr,
                self.cport,
                self.vaddr,
                self.vport,
            )
        }
    }

    /// (active, inactive, persistent) of the real server at `addr`.
    fn counts(t: &ServiceTable, addr: [u8; 4]) -> (u32, u32, u32) {
        let d = t
            .services()
            .iter()
            .flat_map(|s| s.dests.iter())
            .find(|d| d.addr == Ipv4Addr::from(addr))
            .unwrap();
        let c = &d.counters;
        (
            c.active.load(Ordering::Relaxed),
            c.inactive.load(Ordering::Relaxed),
            c.persist.load(Ordering::Relaxed),
        )
    }

    /// `ip_vs_proc_conn`'s counting: a new entry by its INACTIVE flag, an
    /// update moving one count when the flag flips, a stale inactive
    /// message changing nothing, a replacement uncounting the old server.
    #[test]
    fn installing_keeps_the_servers_counts() {
        let t = table();
        let mut conns = ConnTable::new(1024);
        let es = flags::DROUTE | flags::NOOUTPUT;
        let rs1 = [10, 0, 0, 11];
        let rs2 = [10, 0, 0, 12];
        assert_eq!(
            install(&mut conns, &t, &entry(rs1, es, 1), R, 0),
            Installed::New
        );
        assert_eq!(counts(&t, rs1), (1, 0, 0));
        let fw = es | flags::INACTIVE;
        assert_eq!(
            install(&mut conns, &t, &entry(rs1, fw, 4), R, 1),
            Installed::Updated
        );
        assert_eq!(counts(&t, rs1), (0, 1, 0));
        assert_eq!(
            install(&mut conns, &t, &entry(rs2, fw, 4), R, 2),
            Installed::Stale
        );
        assert_eq!((counts(&t, rs1), counts(&t, rs2)), ((0, 1, 0), (0, 0, 0)));
        assert_eq!(
            install(&mut conns, &t, &entry(rs2, es, 1), R, 3),
            Installed::Replaced
        );
        assert_eq!((counts(&t, rs1), counts(&t, rs2)), ((0, 0, 0), (1, 0, 0)));
        assert_eq!(conns.len(), 1);
        let slot = conns
            .lookup(&entry(rs2, es, 1).key(), 3, |_| {})
            .unwrap()
            .slot;
        let c = conns.get(slot).unwrap();
        assert_eq!(
            (c.fwd, c.state, c.in_pkts),
            (Fwd::Dr, ConnState::Tcp(TcpState::Established), 3)
        );
        assert_eq!(c.timeout_us, 900_000_000);
        // A server this director lacks, an unknown state: nothing installed.
        assert_eq!(
            install(&mut conns, &t, &entry([10, 0, 0, 99], es, 1), R, 4),
            Installed::NoDest
        );
        assert_eq!(
            install(&mut conns, &t, &entry(rs1, es, 11), R, 4),
            Installed::Unsupported
        );
        // A template of the fwmark service: persistent, 180 s without a
        // timeout (version 0).
        let mut tpl = entry(
            [10, 0, 0, 13],
            flags::TEMPLATE | flags::INACTIVE | flags::DROUTE,
            0,
        );
        (
            tpl.protocol,
            tpl.cport,
            tpl.vport,
            tpl.dport,
            tpl.fwmark,
            tpl.timeout_s,
        ) = (0, 0, 0, 0, 5, 0);
        tpl.vaddr = Ipv4Addr::from(5u32);
        assert_eq!(install(&mut conns, &t, &tpl, R, 5), Installed::New);
        assert_eq!(counts(&t, [10, 0, 0, 13]), (0, 0, 1));
    }

    /// `ip_vs_sync_conn_needed`: ESTABLISHED at the threshold's packet,
    /// then every period; other synced states at once; SYN_RECV never.
    #[test]
    fn connections_are_sent_when_the_kernel_sends_them() {
        let t = table();
        let mut conns = ConnTable::new(64);
        install(
            &mut conns,
            &t,
            &entry([10, 0, 0, 11], flags::DROUTE, 3),
            R,
            0,
        );
        let slot = conns
            .lookup(&entry([10, 0, 0, 11], 0, 3).key(), 0, |_| {})
            .unwrap()
            .slot;
        let c = conns.get_mut(slot).unwrap();
        (c.state, c.in_pkts, c.sync_state) = (ConnState::Tcp(TcpState::SynRecv), 0, 0);
        assert!(!on_inbound(c, R), "SYN_RECV is not synced");
        c.state = ConnState::Tcp(TcpState::Established);
        let sent: Vec<u32> = (2..=110).filter(|_| on_inbound(c, R)).collect();
        assert_eq!(sent, [3, 53, 103]);
        c.state = ConnState::Tcp(TcpState::FinWait);
        assert!(on_inbound(c, R), "a change to FIN_WAIT at once");
        assert!(!on_inbound(c, R), "and not again");
    }
}
