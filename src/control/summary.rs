//! The end-of-run summary: what `dlvs replay` prints as its last line.
//!
//! `received` counts every frame the first port took from its input: those
//! the pipeline saw plus those the device itself rejected (`rx_error`).
//! Each is accounted for once: `received == replied + punted +
//! sum(dropped)` (punted: given to the kernel by the exception path, never
//! in a replay). `transmitted` counts frames handed to the devices and
//! accepted: replies, frames the director generated (ARP) and the kernel's
//! through the exception path, less refusals.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::datapath::{DropReason, Stats};
use crate::service::table::ServiceTable;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortSummary {
    pub name: String,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub received: u64,
    pub transmitted: u64,
    pub replied: u64,
    pub generated: u64,
    /// Received frames given to the kernel (the exception path).
    pub punted: u64,
    /// Frames from the kernel sent out of their data port.
    pub from_kernel: u64,
    pub dropped: BTreeMap<&'static str, u64>,
    pub tx_refused: u64,
    /// ARP senders not learned: not on a connected subnet.
    pub arp_off_subnet: u64,
    /// Learned neighbours evicted from a full table.
    pub neighbors_evicted: u64,
    /// Connections and templates still in the tables at the end.
    pub connections: u64,
    pub ports: Vec<PortSummary>,
    /// Traffic per real server, in the rules' order.
    pub real_servers: Vec<DestSummary>,
    /// The VRRP instances' states at the end (none: left out).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vrrp: Vec<crate::control::ha::InstanceStatus>,
    /// IPVS connection sync's counters (none: left out).
    #[serde(skip_serializing_if = "crate::datapath::sync::SyncStats::is_zero")]
    pub sync: crate::datapath::sync::SyncStats,
}

/// One real server's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestSummary {
    /// The virtual service, as ipvsadm writes it: `-t 10.0.0.100:80`.
    pub service: String,
    /// `10.0.0.11:8080`.
    pub server: String,
    pub conns: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

impl Summary {
    pub fn new(
        s: &Stats,
        names: &[&str],
        ports: &[dpdk::PortStats],
        services: &ServiceTable,
    ) -> Summary {
        let real_servers = services
            .services()
            .iter()
            .flat_map(|svc| {
                svc.dests.iter().map(move |d| {
                    let st = s.dests.get(d.id as usize).copied().unwrap_or_default();
                    DestSummary {
                        service: svc.key.to_string(),
                        server: format!("{}:{}", d.addr, d.port),
                        conns: st.conns,
                        in_packets: st.in_packets,
                        out_packets: st.out_packets,
                        in_bytes: st.in_bytes,
                        out_bytes: st.out_bytes,
                    }
                })
            })
            .collect();
        let mut dropped: BTreeMap<&'static str, u64> = DropReason::ALL
            .iter()
            .filter(|r| s.drops[**r as usize] > 0)
            .map(|r| (r.as_str(), s.drops[*r as usize]))
            .collect();
        let rx_errors: u64 = ports.iter().map(|p| p.ierrors).sum();
        if rx_errors > 0 {
            dropped.insert("rx_error", rx_errors);
        }
        Summary {
            received: s.received + rx_errors,
            transmitted: (s.replied + s.generated + s.from_kernel).saturating_sub(s.tx_refused),
            replied: s.replied,
            generated: s.generated,
            punted: s.punted,
            from_kernel: s.from_kernel,
            dropped,
            tx_refused: s.tx_refused,
            arp_off_subnet: s.arp_off_subnet,
            neighbors_evicted: s.neighbors_evicted,
            connections: s.connections,
            ports: names
                .iter()
                .zip(s.ports.iter().zip(ports))
                .map(|(n, (c, p))| PortSummary {
                    name: n.to_string(),
                    rx_packets: c.rx_packets,
                    tx_packets: c.tx_packets,
                    rx_errors: p.ierrors,
                    tx_errors: p.oerrors,
                })
                .collect(),
            real_servers,
            vrrp: Vec::new(),
            sync: s.sync,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("summary serialises")
    }
}
