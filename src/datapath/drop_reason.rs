//! Why a received frame was not transmitted.
//!
//! Every received frame ends in exactly one place: transmitted, held while
//! its next hop resolves, or dropped with one of these reasons. A reason is
//! `Copy` and indexes the per-lcore drop counters; its `as_str` name is the
//! key in the replay summary and the `reason` label in metrics. Some reasons
//! are not faults (an ARP reply is consumed once learned), but they still
//! account for a frame that did not leave.

macro_rules! reasons {
    ($($variant:ident => $name:literal: $doc:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $(#[doc = $doc] $variant,)*
        }

        impl DropReason {
            /// All reasons, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons (the length of a counter array).
            pub const COUNT: usize = DropReason::ALL.len();

            /// The snake_case name used in summaries and metric labels.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }

            /// What the reason means (its doc; the README's table).
            pub const fn doc(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $doc,)*
                }
            }
        }
    };
}

reasons! {
    EthTruncated => "eth_truncated": "Shorter than an Ethernet header.",
    EthNotForUs => "eth_not_for_us": "Destination MAC is neither the port's nor broadcast.",
    EthUnsupported => "eth_unsupported": "An EtherType other than IPv4 and ARP (IPv6, VLAN, ...).",
    Oversize => "oversize": "Longer than the port's MTU allows.",
    ArpTruncated => "arp_truncated": "ARP payload shorter than 28 bytes.",
    ArpUnsupported => "arp_unsupported": "ARP for a hardware or protocol other than Ethernet/IPv4.",
    ArpNotForUs => "arp_not_for_us": "ARP request for an address this port does not own.",
    ArpLearned => "arp_learned": "ARP reply or announcement consumed after updating the neighbour table.",
    ArpBadSender => "arp_bad_sender": "ARP from a zero, broadcast or multicast sender, or the director's own coming back.",
    ArpConflict => "arp_conflict": "ARP from another host claiming one of the director's addresses.",
    ArpOtherOp => "arp_other_op": "ARP operation other than request or reply.",
    Ipv4Truncated => "ipv4_truncated": "Shorter than its IPv4 header.",
    Ipv4BadVersion => "ipv4_bad_version": "IP version field is not 4.",
    Ipv4BadHeaderLen => "ipv4_bad_header_len": "IHL below 5.",
    Ipv4BadTotalLen => "ipv4_bad_total_len": "Total length below the header or past the frame.",
    Ipv4BadChecksum => "ipv4_bad_checksum": "IPv4 header checksum does not verify.",
    Ipv4MartianSource => "ipv4_martian_source": "Source is unspecified, broadcast, multicast, loopback or own.",
    Ipv4Fragment => "ipv4_fragment": "A fragment addressed to the director (no reassembly).",
    Ipv4NotLocal => "ipv4_not_local": "Not addressed to the director and nothing forwards it.",
    Ipv4Broadcast => "ipv4_broadcast": "Addressed to a broadcast or multicast address.",
    IcmpTruncated => "icmp_truncated": "ICMP message shorter than 8 bytes.",
    IcmpBadChecksum => "icmp_bad_checksum": "ICMP checksum does not verify.",
    IcmpUnhandled => "icmp_unhandled": "ICMP to the director other than echo request.",
    HostUnhandled => "host_unhandled": "TCP, UDP or other protocol addressed to the director.",
    NoRoute => "no_route": "No route to the destination of a reply or forwarded packet.",
    NoService => "no_service": "TCP or UDP to a virtual address on a protocol and port no service has.",
    L4Fragment => "l4_fragment": "A later fragment to a virtual address whose datagram's first fragment was not seen (no reassembly).",
    L4Truncated => "l4_truncated": "A TCP or UDP header to a virtual address cut short or malformed.",
    TcpNoConn => "tcp_no_conn": "A TCP segment other than SYN that matches no connection (IPVS without sloppy_tcp).",
    NoDest => "no_dest": "No available real server, and the ICMP port unreachable could not be sent.",
    ConnTableFull => "conn_table_full": "A new connection did not fit the connection table.",
    DestUnavailable => "dest_unavailable": "A client's packet of a connection whose real server was removed: the connection stays until it expires (and goes on if the server is added back), unless [conn] expire_nodest_conn ends it.",
    VrrpBackup => "vrrp_backup": "Traffic to a virtual address of a VRRP instance that is not MASTER: not the director's to answer or forward.",
    VrrpAdvert => "vrrp_advert": "A VRRP advertisement consumed by its instance.",
    VrrpMalformed => "vrrp_malformed": "A VRRP packet truncated, fragmented, other than a version 2 or 3 advertisement, with a bad checksum, or with a TTL other than 255.",
    VrrpOtherRouter => "vrrp_other_router": "A VRRP advertisement for a virtual router id no instance of this port has.",
    VrrpMismatch => "vrrp_mismatch": "A VRRP advertisement for an instance's router id whose version, interval or authentication differ from the instance's (RFC 3768 section 7.1: dropped).",
    SyncMessage => "sync_message": "An IPVS sync message taken in: its connections installed in the workers' tables.",
    SyncMalformed => "sync_malformed": "An IPVS sync message truncated, fragmented, with a bad UDP checksum, a size other than its length, or an entry the kernel would drop the message for (nothing of it is installed).",
    SyncIgnored => "sync_ignored": "An IPVS sync message of another syncid, from the director itself, or received while the director is the sync master.",
    SteerRingFull => "steer_ring_full": "The worker that owns the frame had no room in its ring.",
    TunTooBig => "tun_too_big": "TUN: the tunnelled packet would exceed the egress MTU (no fragmentation).",
    NoSuchPort => "no_such_port": "The frame was bound for a port with no transmit queue (counted, never sent).",
    NeighborTableFull => "neighbor_table_full": "The next hop is unknown and the neighbour table is full.",
    NeighborQueueFull => "neighbor_queue_full": "The queue of packets awaiting resolution is full.",
    NeighborUnresolved => "neighbor_unresolved": "The next hop did not answer ARP in time.",
}

impl DropReason {
    /// The director's own traffic that the data plane leaves alone (TCP,
    /// UDP and ICMP other than echo to its addresses, fragments of it, a
    /// virtual address's ports without a service): with an exception path
    /// it goes to the kernel instead, as IPVS leaves it to the local stack.
    pub const fn is_the_kernels(self) -> bool {
        matches!(
            self,
            DropReason::HostUnhandled
                | DropReason::IcmpUnhandled
                | DropReason::Ipv4Fragment
                | DropReason::NoService
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in DropReason::ALL {
            let n = r.as_str();
            assert!(n
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()));
            assert!(seen.insert(n), "{n} twice");
        }
        assert_eq!(
            DropReason::ALL[DropReason::NoRoute as usize],
            DropReason::NoRoute
        );
    }
}
