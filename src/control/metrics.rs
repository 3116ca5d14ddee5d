//! The Prometheus exporter (`[metrics] listen`).
//!
//! metrics-exporter-prometheus serves the text format over HTTP from its
//! own thread. The control thread calls [`MetricsPublisher::publish`]
//! every publish interval: it reads the ports' device counters and the
//! workers' published per-lcore counters and sets the exported values.
//! Workers never touch the metrics registry.
//!
//! Names follow Prometheus conventions: `_total` for counters, bytes as the
//! base unit, labels `port` (interface name), `lcore` and `reason`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge};
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::config::Interface;
use crate::datapath::{DropReason, Stats};

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
    steered: Counter,
    held: Gauge,
    drops: Vec<Counter>,
}

pub struct MetricsPublisher {
    ports: Vec<PortHandles>,
    lcores: Vec<LcoreHandles>,
}

impl MetricsPublisher {
    /// Starts the HTTP exporter and registers every series.
    pub fn install(listen: SocketAddr, itfs: &[Interface], lcores: &[u32]) -> Result<Self, String> {
        PrometheusBuilder::new()
            .with_http_listener(listen)
            .install()
            .map_err(|e| e.to_string())?;
        describe();
        let ports = itfs
            .iter()
            .map(|i| {
                let l = [("port", i.name.clone())];
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
            .collect();
        let lcores = lcores
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
                    steered: metrics::counter!("dlvs_lcore_steered_packets_total", &l),
                    held: metrics::gauge!("dlvs_lcore_held_packets", &l),
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
            .collect();
        Ok(MetricsPublisher { ports, lcores })
    }

    /// Copies the current counters into the exported series.
    pub fn publish(&mut self, ports: &[dpdk::PortMonitor<'_>], shared: &[Arc<Mutex<Stats>>]) {
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
            h.steered.absolute(s.steered);
            for (c, v) in h.drops.iter().zip(s.drops.iter()) {
                c.absolute(*v);
            }
        }
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, Unit};
    describe_counter!(
        "dlvs_port_rx_packets_total",
        Unit::Count,
        "Packets received by the device."
    );
    describe_counter!(
        "dlvs_port_tx_packets_total",
        Unit::Count,
        "Packets sent by the device."
    );
    describe_counter!(
        "dlvs_port_rx_bytes_total",
        Unit::Bytes,
        "Bytes received by the device."
    );
    describe_counter!(
        "dlvs_port_tx_bytes_total",
        Unit::Bytes,
        "Bytes sent by the device."
    );
    describe_counter!(
        "dlvs_port_rx_missed_total",
        Unit::Count,
        "Packets the device dropped because the RX queue was full."
    );
    describe_counter!(
        "dlvs_port_rx_errors_total",
        Unit::Count,
        "Erroneous packets received."
    );
    describe_counter!(
        "dlvs_port_tx_errors_total",
        Unit::Count,
        "Packets the device failed to send."
    );
    describe_counter!(
        "dlvs_port_rx_nombuf_total",
        Unit::Count,
        "RX mbuf allocation failures."
    );
    describe_gauge!("dlvs_port_link_up", "1 if the link is up.");
    describe_counter!(
        "dlvs_lcore_loops_total",
        Unit::Count,
        "Worker loop iterations."
    );
    describe_counter!(
        "dlvs_lcore_busy_loops_total",
        Unit::Count,
        "Worker loop iterations that received packets."
    );
    describe_counter!(
        "dlvs_lcore_received_packets_total",
        Unit::Count,
        "Frames the worker's pipeline processed."
    );
    describe_counter!(
        "dlvs_lcore_replied_packets_total",
        Unit::Count,
        "Received frames sent back out after rewriting."
    );
    describe_counter!(
        "dlvs_lcore_generated_packets_total",
        Unit::Count,
        "Frames the director built (ARP requests, gratuitous ARP)."
    );
    describe_counter!(
        "dlvs_lcore_tx_refused_packets_total",
        Unit::Count,
        "Frames the device refused at transmit."
    );
    describe_counter!(
        "dlvs_lcore_arp_off_subnet_total",
        Unit::Count,
        "ARP senders not learned: not on a connected subnet of the port."
    );
    describe_counter!(
        "dlvs_lcore_neighbors_evicted_total",
        Unit::Count,
        "Learned neighbours evicted to make room in a full table."
    );
    describe_counter!(
        "dlvs_lcore_steered_packets_total",
        Unit::Count,
        "Frames received by this worker and handed to the worker that owns them."
    );
    describe_gauge!(
        "dlvs_lcore_connections",
        "Connections and persistence templates in the lcore's table."
    );
    describe_gauge!(
        "dlvs_lcore_held_packets",
        "Frames held awaiting ARP resolution."
    );
    describe_counter!(
        "dlvs_lcore_dropped_packets_total",
        Unit::Count,
        "Frames dropped, by reason."
    );
}
