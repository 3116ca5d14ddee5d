//! Scheduling a new connection: the service's scheduler, through a
//! persistence template when the service has persistence
//! (net/netfilter/ipvs/ip_vs_core.c `ip_vs_sched_persist`,
//! `ip_vs_schedule`), and the connection entry made and counted.

use super::*;
use crate::service::rules::Persistence;

/// The FTP control port: IPVS keeps the port out of templates for it.
const FTP_PORT: u16 = 21;

pub(super) enum Scheduled {
    Conn(Slot),
    /// `-o`: forward this datagram to `dests[dest]` and keep nothing.
    OnePacket {
        dest: usize,
        port: u16,
    },
}

/// Picks a real server for a new connection (through a persistence
/// template if the service has persistence) and makes the connection.
pub(super) fn schedule(
    si: usize,
    svc: &Service,
    flow: &Flow,
    services: &ServiceTable,
    st: &mut L4State<'_>,
) -> Result<Scheduled, DropReason> {
    let now = st.egress.now;
    let input = sched::Input {
        saddr: flow.src,
        sport: flow.sport,
        daddr: flow.dst,
        dport: flow.dport,
        protocol: flow.proto,
        now_us: now,
    };
    let mut control = NO_SLOT;
    let dest = match svc.persistence {
        None => {
            let state = st.l4.sched.get_mut(si).ok_or(DropReason::NoDest)?;
            svc.sched
                .schedule(state, &svc.dests, &input)
                .ok_or(DropReason::NoDest)?
        }
        Some(p) => {
            let (j, slot) = persistent(si, svc, p, flow, services, st, &input)?;
            control = slot;
            j
        }
    };
    let d = &svc.dests[dest];
    let dport = if d.port == 0 { flow.dport } else { d.port };
    if let Some(s) = st.l4.stats.get_mut(d.id as usize) {
        s.conns += 1;
    }
    if svc.one_packet && flow.proto == UDP {
        // Counted while it is forwarded, as IPVS's ONE_PACKET connection
        // is bound and freed around its one datagram.
        d.bind(false);
        return Ok(Scheduled::OnePacket { dest, port: dport });
    }
    let conn = Conn {
        proto: flow.proto,
        fwd: Fwd::of(d.method),
        state: if flow.proto == TCP {
            ConnState::Tcp(TcpState::None)
        } else {
            ConnState::Normal
        },
        template: false,
        inactive: true,
        no_output: d.method != Method::Nat,
        caddr: flow.src,
        cport: flow.sport,
        vaddr: flow.dst,
        vport: flow.dport,
        daddr: d.addr,
        dport,
        dest: d.id,
        service: svc.id,
        control,
        n_control: 0,
        // Until the first packet moves it on: TCP's NONE, UDP's only state.
        timeout_us: if flow.proto == TCP {
            services.timeouts().tcp_us(TcpState::None)
        } else {
            services.timeouts().udp_us()
        },
        expires: 0,
        ctl_next: NO_SLOT,
        ctl_prev: NO_SLOT,
        in_pkts: 0,
        sync_state: 0,
    };
    let slot = st
        .l4
        .conns
        .insert(conn, now)
        .map_err(|_| DropReason::ConnTableFull)?;
    d.bind(false);
    Ok(Scheduled::Conn(slot))
}

/// A persistent service's choice (ip_vs_core.c `ip_vs_sched_persist`):
/// the client's template's real server while the template is valid, else
/// the scheduler's, with a new template. Returns the real server's index
/// in the service and the template's slot.
fn persistent(
    si: usize,
    svc: &Service,
    p: Persistence,
    flow: &Flow,
    services: &ServiceTable,
    st: &mut L4State<'_>,
    input: &sched::Input,
) -> Result<(usize, Slot), DropReason> {
    let now = st.egress.now;
    let svc_port = svc.port();
    // The template key (ip_vs_core.c `ip_vs_sched_persist`): the
    // client's network, the service's address (or mark) and port
    // (0 for port-0, fwmark and FTP services).
    let caddr = Ipv4Addr::from(u32::from(flow.src) & u32::from(p.netmask));
    let (tproto, vaddr) = match svc.key {
        ServiceKey::Fwmark(m) => (0, Ipv4Addr::from(m)),
        ServiceKey::Addr { .. } => (flow.proto, flow.dst),
    };
    let keep_port = flow.dport == svc_port && svc_port != FTP_PORT && svc_port != 0;
    let vport = if keep_port { flow.dport } else { 0 };
    let tkey = ConnKey::new(KeyKind::Template, tproto, caddr, 0, vaddr, vport);
    let timeout = p.timeout_s as u64 * 1_000_000;
    let found = st.l4.conns.lookup(&tkey, now, |c| {
        services.unbind(c.dest, c.template, c.inactive)
    });
    // A template is valid while its real server is still one of
    // this service's (ip_vs_conn.c `ip_vs_check_template`; a
    // quiesced one still is: expire_quiescent_template = 0).
    let valid = found.and_then(|f| {
        let t = st.l4.conns.get(f.slot)?;
        let (s, _) = services.dest(t.dest)?;
        let j = s.dests.iter().position(|d| d.id == t.dest)?;
        (s.id == svc.id).then_some((f.slot, j))
    });
    match valid {
        Some((slot, j)) => {
            st.l4.conns.touch(slot, timeout, now);
            Ok((j, slot))
        }
        None => {
            // An invalid template (its server gone) is shadowed
            // by the new one and freed after its connections.
            let state = st.l4.sched.get_mut(si).ok_or(DropReason::NoDest)?;
            let j = svc
                .sched
                .schedule(state, &svc.dests, input)
                .ok_or(DropReason::NoDest)?;
            let d = &svc.dests[j];
            let template = Conn {
                proto: tproto,
                fwd: Fwd::of(d.method),
                state: ConnState::Normal,
                template: true,
                inactive: false,
                no_output: false,
                caddr,
                cport: 0,
                vaddr,
                vport,
                daddr: d.addr,
                dport: if keep_port { d.port } else { 0 },
                dest: d.id,
                service: svc.id,
                control: NO_SLOT,
                n_control: 0,
                timeout_us: timeout,
                expires: 0,
                ctl_next: NO_SLOT,
                ctl_prev: NO_SLOT,
                in_pkts: 0,
                sync_state: 0,
            };
            let slot = st
                .l4
                .conns
                .insert(template, now)
                .map_err(|_| DropReason::ConnTableFull)?;
            d.bind(true);
            Ok((j, slot))
        }
    }
}
