//! Every metric the director exports: its name, kind, unit, labels and
//! help, in one table. The exporter describes them from it, and the
//! README's metrics reference is generated from it (a test keeps the two,
//! and the names the code publishes, the same).

use metrics::Unit;

/// A counter or a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    /// `None`: a plain number (a state, a flag, a rate).
    pub unit: Option<Unit>,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn counter(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels,
        help,
    }
}

const fn bytes(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        unit: Some(Unit::Bytes),
        labels,
        help,
    }
}

const fn gauge(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        unit: None,
        labels,
        help,
    }
}

const PORT: &[&str] = &["port"];
const LCORE: &[&str] = &["lcore"];
const INSTANCE: &[&str] = &["instance"];
const NONE: &[&str] = &[];
const SERVICE: &[&str] = &["service"];
const SERVER: &[&str] = &["service", "server"];

/// Every metric, in the README's order.
pub const METRICS: &[Metric] = &[
    counter("dlvs_port_rx_packets_total", PORT, "Packets received by the device."),
    counter("dlvs_port_tx_packets_total", PORT, "Packets sent by the device."),
    bytes("dlvs_port_rx_bytes_total", PORT, "Bytes received by the device."),
    bytes("dlvs_port_tx_bytes_total", PORT, "Bytes sent by the device."),
    counter(
        "dlvs_port_rx_missed_total",
        PORT,
        "Packets the device dropped because the RX queue was full.",
    ),
    counter("dlvs_port_rx_errors_total", PORT, "Erroneous packets received."),
    counter("dlvs_port_tx_errors_total", PORT, "Packets the device failed to send."),
    counter("dlvs_port_rx_nombuf_total", PORT, "RX mbuf allocation failures."),
    gauge("dlvs_port_link_up", PORT, "1 if the link is up."),
    counter("dlvs_lcore_loops_total", LCORE, "Worker loop iterations."),
    counter(
        "dlvs_lcore_busy_loops_total",
        LCORE,
        "Worker loop iterations that received packets.",
    ),
    counter(
        "dlvs_lcore_received_packets_total",
        LCORE,
        "Frames the worker's pipeline processed.",
    ),
    counter(
        "dlvs_lcore_replied_packets_total",
        LCORE,
        "Received frames sent back out after rewriting.",
    ),
    counter(
        "dlvs_lcore_generated_packets_total",
        LCORE,
        "Frames the director built (ARP requests, gratuitous ARP).",
    ),
    counter(
        "dlvs_lcore_tx_refused_packets_total",
        LCORE,
        "Frames the device refused at transmit.",
    ),
    gauge("dlvs_lcore_held_packets", LCORE, "Frames held awaiting ARP resolution."),
    counter(
        "dlvs_lcore_dropped_packets_total",
        &["lcore", "reason"],
        "Frames dropped, by reason.",
    ),
    counter(
        "dlvs_lcore_arp_off_subnet_total",
        LCORE,
        "ARP senders not learned: not on a connected subnet of the port.",
    ),
    counter(
        "dlvs_lcore_neighbors_evicted_total",
        LCORE,
        "Learned neighbours evicted to make room in a full table.",
    ),
    counter(
        "dlvs_lcore_steered_packets_total",
        LCORE,
        "Frames received by this worker and handed to the worker that owns them.",
    ),
    counter(
        "dlvs_lcore_punted_packets_total",
        LCORE,
        "Frames for the director given to the kernel through the exception path.",
    ),
    counter(
        "dlvs_lcore_kernel_packets_total",
        LCORE,
        "Frames the kernel sent through the exception path, transmitted on their data port.",
    ),
    gauge(
        "dlvs_lcore_connections",
        LCORE,
        "Connections and persistence templates in the lcore's table.",
    ),
    gauge(
        "dlvs_lcore_connection_capacity",
        LCORE,
        "Entries the lcore's connection table holds at most.",
    ),
    counter(
        "dlvs_service_connections_total",
        SERVICE,
        "Connections scheduled to the virtual service's real servers, departed ones included.",
    ),
    counter(
        "dlvs_service_in_packets_total",
        SERVICE,
        "Packets from clients to the virtual service's real servers, departed ones included.",
    ),
    counter(
        "dlvs_service_out_packets_total",
        SERVICE,
        "Packets from the virtual service's real servers, departed ones included, to clients (NAT only).",
    ),
    bytes(
        "dlvs_service_in_bytes_total",
        SERVICE,
        "IP bytes from clients to the virtual service's real servers, departed ones included.",
    ),
    bytes(
        "dlvs_service_out_bytes_total",
        SERVICE,
        "IP bytes from the virtual service's real servers, departed ones included, to clients (NAT only).",
    ),
    gauge(
        "dlvs_service_connection_rate",
        SERVICE,
        "New connections per second to the virtual service's real servers, departed ones included (IPVS's 2 s estimator, as ipvsadm --rate).",
    ),
    gauge(
        "dlvs_service_active_connections",
        SERVICE,
        "Established connections of the virtual service's real servers, departed ones included (ipvsadm ActiveConn).",
    ),
    gauge(
        "dlvs_service_inactive_connections",
        SERVICE,
        "Other connections of the virtual service's real servers, departed ones included (ipvsadm InActConn).",
    ),
    gauge(
        "dlvs_service_persistent_connections",
        SERVICE,
        "Persistence templates of the virtual service's real servers, departed ones included (ipvsadm PersistConn).",
    ),
    gauge(
        "dlvs_service_real_servers",
        SERVICE,
        "Real servers configured for the virtual service.",
    ),
    gauge(
        "dlvs_service_available_real_servers",
        SERVICE,
        "Real servers of the virtual service that take new connections (weight above 0).",
    ),
    counter(
        "dlvs_real_server_connections_total",
        SERVER,
        "Connections scheduled to the real server.",
    ),
    counter(
        "dlvs_real_server_in_packets_total",
        SERVER,
        "Packets from clients to the real server.",
    ),
    counter(
        "dlvs_real_server_out_packets_total",
        SERVER,
        "Packets from the real server to clients (NAT only).",
    ),
    bytes(
        "dlvs_real_server_in_bytes_total",
        SERVER,
        "IP bytes from clients to the real server.",
    ),
    bytes(
        "dlvs_real_server_out_bytes_total",
        SERVER,
        "IP bytes from the real server to clients (NAT only).",
    ),
    gauge(
        "dlvs_real_server_connection_rate",
        SERVER,
        "New connections per second to the real server (IPVS's 2 s estimator, as ipvsadm --rate).",
    ),
    gauge(
        "dlvs_real_server_active_connections",
        SERVER,
        "Established connections of the real server (ipvsadm ActiveConn).",
    ),
    gauge(
        "dlvs_real_server_inactive_connections",
        SERVER,
        "Other connections of the real server (ipvsadm InActConn).",
    ),
    gauge(
        "dlvs_real_server_persistent_connections",
        SERVER,
        "Persistence templates of the real server (ipvsadm PersistConn).",
    ),
    gauge(
        "dlvs_real_server_weight",
        SERVER,
        "The real server's current weight (0: quiesced).",
    ),
    gauge(
        "dlvs_real_server_up",
        SERVER,
        "1 if the real server passes its health checks, 0 if they find it down (checked servers only).",
    ),
    counter(
        "dlvs_real_server_state_changes_total",
        SERVER,
        "Times the real server's health checks found it go down or come back up.",
    ),
    gauge(
        "dlvs_vrrp_state",
        INSTANCE,
        "A VRRP instance's state: 0 STOP, 1 BACKUP, 2 MASTER.",
    ),
    gauge("dlvs_vrrp_master", INSTANCE, "1 while a VRRP instance is MASTER."),
    counter(
        "dlvs_vrrp_transitions_total",
        INSTANCE,
        "A VRRP instance's changes of state.",
    ),
    counter(
        "dlvs_sync_messages_sent_total",
        LCORE,
        "IPVS sync messages sent by the lcore (as the sync master).",
    ),
    counter(
        "dlvs_sync_conns_sent_total",
        LCORE,
        "Connections and templates the lcore sent in sync messages.",
    ),
    counter(
        "dlvs_sync_conns_received_total",
        &["lcore", "result"],
        "Received sync entries by result: installed, updated, replaced, stale, no_dest, unsupported, table_full, skipped.",
    ),
    counter(
        "dlvs_sync_conns_lost_total",
        LCORE,
        "Sync entries lost: not sent (both messages full) or not handed to their worker (inbox full).",
    ),
    gauge(
        "dlvs_bgp_announced_routes",
        NONE,
        "Virtual addresses [bgp] announces now.",
    ),
    gauge(
        "dlvs_bgp_draining",
        NONE,
        "1 while the director drains (SIGTERM with [bgp], dlvsadm --drain).",
    ),
];
