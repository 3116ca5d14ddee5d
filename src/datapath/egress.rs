//! Where a frame leaves: the lcore's neighbour table and clock, the next
//! hop's MAC written into a frame (or the frame held until ARP resolves
//! it), and the ARP requests that are owed.

use std::net::Ipv4Addr;

use super::drop_reason::DropReason;
use super::neighbor::{Lookup, NeighborTable};
use super::verdict::Verdict;
use crate::wire::{EtherType, EthernetRepr, MacAddr};

/// Small fixed lists of follow-up work; overflow is dropped silently
/// because the neighbour timer re-sends requests anyway.
const NOTE_MAX: usize = 32;

#[derive(Debug)]
pub(super) struct Notes<T: Copy> {
    items: [Option<T>; NOTE_MAX],
    pub(super) len: usize,
}

impl<T: Copy> Notes<T> {
    pub(super) fn new() -> Self {
        Notes {
            items: [None; NOTE_MAX],
            len: 0,
        }
    }

    pub(super) fn push(&mut self, t: T) {
        if self.len < NOTE_MAX {
            self.items[self.len] = Some(t);
            self.len += 1;
        }
    }

    pub(super) fn take(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        self.items[self.len].take()
    }
}

/// The neighbour side of an lcore's state.
#[derive(Debug)]
pub(super) struct Egress {
    pub(super) neighbors: NeighborTable,
    /// The data plane's clock, microseconds.
    pub(super) now: u64,
    /// Next hops to send ARP requests for.
    pub(super) solicit: Notes<(usize, Ipv4Addr)>,
}

/// Writes the Ethernet header of an IPv4 frame leaving by `port` (`src`,
/// the port's MAC, as its source) and fills in the next hop's MAC, or
/// holds the frame until ARP resolves it.
#[inline(always)]
pub(super) fn to_next_hop(
    frame: &mut [u8],
    port: usize,
    src: MacAddr,
    next_hop: Ipv4Addr,
    st: &mut Egress,
) -> Result<Verdict, DropReason> {
    EthernetRepr {
        src,
        dst: MacAddr::ZERO,
        ethertype: EtherType::IPV4,
    }
    .emit(frame)
    .map_err(|_| DropReason::EthTruncated)?;
    resolve(frame, port, next_hop, st)
}

/// Fills the Ethernet destination for `next_hop` or holds the frame.
#[inline(always)]
pub(super) fn resolve(
    frame: &mut [u8],
    port: usize,
    next_hop: Ipv4Addr,
    st: &mut Egress,
) -> Result<Verdict, DropReason> {
    let set_dst = |frame: &mut [u8], mac: MacAddr| frame[0..6].copy_from_slice(&mac.0);
    match st.neighbors.lookup(port, next_hop, st.now) {
        Lookup::Hit(mac) => {
            set_dst(frame, mac);
            Ok(Verdict::transmit(port))
        }
        Lookup::HitProbe(mac) => {
            st.solicit.push((port, next_hop));
            set_dst(frame, mac);
            Ok(Verdict::transmit(port))
        }
        Lookup::MissSolicit => {
            st.solicit.push((port, next_hop));
            Ok(Verdict::hold(port, next_hop))
        }
        Lookup::MissPending => Ok(Verdict::hold(port, next_hop)),
        Lookup::Full => Err(DropReason::NeighborTableFull),
    }
}
