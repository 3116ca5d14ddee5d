//! The end-of-run summary: what `dlvs replay` prints as its last line.
//!
//! `received` counts every frame the first port took from its input: those
//! the pipeline saw plus those the device itself rejected (`rx_error`).
//! Each is accounted for once: `received == replied + sum(dropped)`.
//! `transmitted` counts frames handed to the devices and accepted:
//! replies plus frames the director generated (ARP), less refusals.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::datapath::{DropReason, Stats};

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
    pub dropped: BTreeMap<&'static str, u64>,
    pub tx_refused: u64,
    /// ARP senders not learned: not on a connected subnet.
    pub arp_off_subnet: u64,
    /// Learned neighbours evicted from a full table.
    pub neighbors_evicted: u64,
    /// Connections and templates still in the tables at the end.
    pub connections: u64,
    pub ports: Vec<PortSummary>,
}

impl Summary {
    pub fn new(s: &Stats, names: &[&str], ports: &[dpdk::PortStats]) -> Summary {
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
            transmitted: (s.replied + s.generated).saturating_sub(s.tx_refused),
            replied: s.replied,
            generated: s.generated,
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
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("summary serialises")
    }
}
