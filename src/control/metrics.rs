//! The Prometheus exporter (`[metrics] listen`).
//!
//! metrics-exporter-prometheus serves the text format over HTTP from its
//! own thread. The control thread calls [`MetricsPublisher::publish`]
//! every publish interval: it reads the ports' device counters and the
//! workers' published per-lcore counters and sets the exported values.
//! Workers never touch the metrics registry.
//!
//! Names follow Prometheus conventions: `_total` for counters, bytes as the
//! base unit, labels `port` (interface name), `lcore` and `reason`; and for
//! the virtual services, `service` (`tcp/10.0.0.100:80`, `udp/...`,
//! `fwmark/5`) and `server` (`10.0.0.11:8080`). Services and real servers
//! come and go: a series not set for [`STALE`] disappears from the output.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Counter, Gauge};
use metrics_exporter_prometheus::PrometheusBuilder;
use metrics_util::MetricKindMask;

use super::listing::View;
use crate::config::Interface;
use crate::datapath::{DropReason, Stats};
use crate::service::ServiceKey;

/// How long a series outlives its last update (a removed service's or real
/// server's): several publish intervals, well under a scrape interval's
/// worth of confusion.
pub const STALE: Duration = Duration::from_secs(10);

struct PortHandles {
    rx_packets: Counter,
    tx_packets: Counter,
    rx_bytes: Counter,
    tx_bytes: Counter,
    rx_missed: Counter,
    rx_errors: Counter,
    tx_errors: Counter,
    rx_nombuf: Counter,
    link_up: Gauge,
}

struct LcoreHandles {
    loops: Counter,
    busy_loops: Counter,
    received: Counter,
    replied: Counter,
    generated: Counter,
    tx_refused: Counter,
    arp_off_subnet: Counter,
    neighbors_evicted: Counter,
    connections: Gauge,
    capacity: Gauge,
    steered: Counter,
    punted: Counter,
    from_kernel: Counter,
    held: Gauge,
    drops: Vec<Counter>,
    sync_messages_sent: Counter,
    sync_conns_sent: Counter,
    sync_conns_lost: Counter,
    sync_received: Vec<Counter>,
}

pub struct MetricsPublisher {
    ports: Vec<PortHandles>,
    lcores: Vec<LcoreHandles>,
    /// What the handles are looked up by again on every publish: the
    /// exporter forgets a series idle for [`STALE`] (a stalled control
    /// thread), and a handle kept across that would feed nothing.
    names: Vec<String>,
    lcore_ids: Vec<u32>,
    /// Connection entries per lcore.
    capacity: usize,
}

impl MetricsPublisher {
    /// Starts the HTTP exporter and registers every series.
    pub fn install(
        listen: SocketAddr,
        itfs: &[Interface],
        lcores: &[u32],
        capacity: usize,
    ) -> Result<Self, String> {
        PrometheusBuilder::new()
            .with_http_listener(listen)
            .idle_timeout(MetricKindMask::ALL, Some(STALE))
            .install()
            .map_err(|e| e.to_string())?;
        describe();
        let names: Vec<String> = itfs.iter().map(|i| i.name.clone()).collect();
        Ok(MetricsPublisher {
            ports: port_handles(&names),
            lcores: lcore_handles(lcores),
            names,
            lcore_ids: lcores.to_vec(),
            capacity,
        })
    }

    /// Copies the current counters into the exported series.
    pub fn publish(&mut self, ports: &[dpdk::PortMonitor<'_>], shared: &[Arc<Mutex<Stats>>]) {
        self.ports = port_handles(&self.names);
        self.lcores = lcore_handles(&self.lcore_ids);
        for (h, p) in self.ports.iter().zip(ports) {
            if let Ok(s) = p.stats() {
                h.rx_packets.absolute(s.ipackets);
                h.tx_packets.absolute(s.opackets);
                h.rx_bytes.absolute(s.ibytes);
                h.tx_bytes.absolute(s.obytes);
                h.rx_missed.absolute(s.imissed);
                h.rx_errors.absolute(s.ierrors);
                h.tx_errors.absolute(s.oerrors);
                h.rx_nombuf.absolute(s.rx_nombuf);
            }
            h.link_up.set(if p.link().up { 1.0 } else { 0.0 });
        }
        for (h, s) in self.lcores.iter().zip(shared) {
            let s = match s.lock() {
                Ok(g) => g.clone(),
                Err(_) => continue,
            };
            h.loops.absolute(s.loops);
            h.busy_loops.absolute(s.busy_loops);
            h.received.absolute(s.received);
            h.replied.absolute(s.replied);
            h.generated.absolute(s.generated);
            h.tx_refused.absolute(s.tx_refused);
            h.arp_off_subnet.absolute(s.arp_off_subnet);
            h.neighbors_evicted.absolute(s.neighbors_evicted);
            h.held.set(s.held as f64);
            h.connections.set(s.connections as f64);
            h.capacity.set(self.capacity as f64);
            h.steered.absolute(s.steered);
            h.punted.absolute(s.punted);
            h.from_kernel.absolute(s.from_kernel);
            for (c, v) in h.drops.iter().zip(s.drops.iter()) {
                c.absolute(*v);
            }
            let y = &s.sync;
            h.sync_messages_sent.absolute(y.sent_messages);
            h.sync_conns_sent.absolute(y.sent_conns);
            h.sync_conns_lost.absolute(y.lost + y.hand_lost);
            for (c, v) in h.sync_received.iter().zip([
                y.installed,
                y.updated,
                y.replaced,
                y.stale,
                y.no_dest,
                y.unsupported,
                y.full,
                y.skipped,
            ]) {
                c.absolute(v);
            }
        }
    }
}

impl MetricsPublisher {
    /// The VRRP instances' states: `dlvs_vrrp_state` (0 STOP, 1 BACKUP,
    /// 2 MASTER, keepalived's SNMP numbering less its INIT and FAULT),
    /// `dlvs_vrrp_master` (1 while MASTER) and the transitions counted.
    pub fn publish_vrrp(&mut self, instances: &[crate::control::ha::InstanceStatus]) {
        for i in instances {
            let l = [("instance", i.name.clone())];
            let state = match i.state {
                "MASTER" => 2.0,
                "BACKUP" => 1.0,
                _ => 0.0,
            };
            metrics::gauge!("dlvs_vrrp_state", &l).set(state);
            metrics::gauge!("dlvs_vrrp_master", &l).set(if state == 2.0 { 1.0 } else { 0.0 });
            metrics::counter!("dlvs_vrrp_transitions_total", &l).absolute(i.transitions);
        }
    }
}

fn port_handles(names: &[String]) -> Vec<PortHandles> {
    names
        .iter()
        .map(|name| {
            let l = [("port", name.clone())];
            PortHandles {
                rx_packets: metrics::counter!("dlvs_port_rx_packets_total", &l),
                tx_packets: metrics::counter!("dlvs_port_tx_packets_total", &l),
                rx_bytes: metrics::counter!("dlvs_port_rx_bytes_total", &l),
                tx_bytes: metrics::counter!("dlvs_port_tx_bytes_total", &l),
                rx_missed: metrics::counter!("dlvs_port_rx_missed_total", &l),
                rx_errors: metrics::counter!("dlvs_port_rx_errors_total", &l),
                tx_errors: metrics::counter!("dlvs_port_tx_errors_total", &l),
                rx_nombuf: metrics::counter!("dlvs_port_rx_nombuf_total", &l),
                link_up: metrics::gauge!("dlvs_port_link_up", &l),
            }
        })
        .collect()
}

/// What became of received sync entries, as `dlvs_sync_conns_received_total`
/// labels it (`datapath::sync::SyncStats`).
const SYNC_RESULTS: [&str; 8] = [
    "installed",
    "updated",
    "replaced",
    "stale",
    "no_dest",
    "unsupported",
    "table_full",
    "skipped",
];

fn lcore_handles(lcores: &[u32]) -> Vec<LcoreHandles> {
    lcores
        .iter()
        .map(|id| {
            let l = [("lcore", id.to_string())];
            LcoreHandles {
                loops: metrics::counter!("dlvs_lcore_loops_total", &l),
                busy_loops: metrics::counter!("dlvs_lcore_busy_loops_total", &l),
                received: metrics::counter!("dlvs_lcore_received_packets_total", &l),
                replied: metrics::counter!("dlvs_lcore_replied_packets_total", &l),
                generated: metrics::counter!("dlvs_lcore_generated_packets_total", &l),
                tx_refused: metrics::counter!("dlvs_lcore_tx_refused_packets_total", &l),
                arp_off_subnet: metrics::counter!("dlvs_lcore_arp_off_subnet_total", &l),
                neighbors_evicted: metrics::counter!("dlvs_lcore_neighbors_evicted_total", &l),
                connections: metrics::gauge!("dlvs_lcore_connections", &l),
                capacity: metrics::gauge!("dlvs_lcore_connection_capacity", &l),
                steered: metrics::counter!("dlvs_lcore_steered_packets_total", &l),
                punted: metrics::counter!("dlvs_lcore_punted_packets_total", &l),
                from_kernel: metrics::counter!("dlvs_lcore_kernel_packets_total", &l),
                held: metrics::gauge!("dlvs_lcore_held_packets", &l),
                sync_messages_sent: metrics::counter!("dlvs_sync_messages_sent_total", &l),
                sync_conns_sent: metrics::counter!("dlvs_sync_conns_sent_total", &l),
                sync_conns_lost: metrics::counter!("dlvs_sync_conns_lost_total", &l),
                sync_received: SYNC_RESULTS
                    .iter()
                    .map(|r| {
                        metrics::counter!(
                            "dlvs_sync_conns_received_total",
                            "lcore" => id.to_string(),
                            "result" => *r
                        )
                    })
                    .collect(),
                drops: DropReason::ALL
                    .iter()
                    .map(|r| {
                        metrics::counter!(
                            "dlvs_lcore_dropped_packets_total",
                            "lcore" => id.to_string(),
                            "reason" => r.as_str()
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

/// A service's label value: `tcp/10.0.0.100:80`, `fwmark/5`.
pub fn service_label(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => format!("{}/{addr}:{port}", protocol.name()),
        ServiceKey::Fwmark(m) => format!("fwmark/{m}"),
    }
}

impl MetricsPublisher {
    /// Sets the virtual services' and real servers' series from a view of
    /// the rules with their live counts (what `dlvsadm -L` shows).
    pub fn publish_services(&mut self, view: &View) {
        for s in &view.services {
            let service = service_label(&s.rule.key);
            let l = [("service", service.clone())];
            let st = &s.stats;
            metrics::counter!("dlvs_service_connections_total", &l).absolute(st.conns);
            metrics::counter!("dlvs_service_in_packets_total", &l).absolute(st.in_packets);
            metrics::counter!("dlvs_service_out_packets_total", &l).absolute(st.out_packets);
            metrics::counter!("dlvs_service_in_bytes_total", &l).absolute(st.in_bytes);
            metrics::counter!("dlvs_service_out_bytes_total", &l).absolute(st.out_bytes);
            metrics::gauge!("dlvs_service_connection_rate", &l).set(s.rates.cps as f64);
            let sum = |f: fn(&super::listing::DestView) -> u32| {
                s.dests.iter().map(|d| f64::from(f(d))).sum::<f64>()
            };
            metrics::gauge!("dlvs_service_active_connections", &l).set(sum(|d| d.active));
            metrics::gauge!("dlvs_service_inactive_connections", &l).set(sum(|d| d.inactive));
            metrics::gauge!("dlvs_service_persistent_connections", &l).set(sum(|d| d.persistent));
            metrics::gauge!("dlvs_service_real_servers", &l).set(s.dests.len() as f64);
            metrics::gauge!("dlvs_service_available_real_servers", &l)
                .set(s.dests.iter().filter(|d| d.rule.weight > 0).count() as f64);
            for d in &s.dests {
                let l = [
                    ("service", service.clone()),
                    ("server", format!("{}:{}", d.rule.addr, d.rule.port)),
                ];
                let st = &d.stats;
                metrics::counter!("dlvs_real_server_connections_total", &l).absolute(st.conns);
                metrics::counter!("dlvs_real_server_in_packets_total", &l).absolute(st.in_packets);
                metrics::counter!("dlvs_real_server_out_packets_total", &l)
                    .absolute(st.out_packets);
                metrics::counter!("dlvs_real_server_in_bytes_total", &l).absolute(st.in_bytes);
                metrics::counter!("dlvs_real_server_out_bytes_total", &l).absolute(st.out_bytes);
                metrics::gauge!("dlvs_real_server_connection_rate", &l).set(d.rates.cps as f64);
                metrics::gauge!("dlvs_real_server_active_connections", &l).set(f64::from(d.active));
                metrics::gauge!("dlvs_real_server_inactive_connections", &l)
                    .set(f64::from(d.inactive));
                metrics::gauge!("dlvs_real_server_persistent_connections", &l)
                    .set(f64::from(d.persistent));
                metrics::gauge!("dlvs_real_server_weight", &l).set(f64::from(d.rule.weight));
            }
        }
        for h in &view.health {
            let l = [
                ("service", service_label(&h.service)),
                ("server", format!("{}:{}", h.addr, h.port)),
            ];
            metrics::gauge!("dlvs_real_server_up", &l).set(if h.up { 1.0 } else { 0.0 });
            metrics::counter!("dlvs_real_server_state_changes_total", &l).absolute(h.state_changes);
        }
    }
}

fn describe() {
    use super::metrics_catalogue::{Kind, METRICS};
    for m in METRICS {
        match (m.kind, m.unit) {
            (Kind::Counter, Some(u)) => metrics::describe_counter!(m.name, u, m.help),
            (Kind::Counter, None) => metrics::describe_counter!(m.name, m.help),
            (Kind::Gauge, Some(u)) => metrics::describe_gauge!(m.name, u, m.help),
            (Kind::Gauge, None) => metrics::describe_gauge!(m.name, m.help),
        }
    }
}
