//! What the pipeline says of a frame: send, hold for ARP, give to the
//! kernel, or drop with a reason.

use std::net::Ipv4Addr;

use super::drop_reason::DropReason;

/// What to do with a processed frame. Eight bytes (port indices are
/// small), so that it and the `Option<Result<..>>`s around it pass in a
/// register: copied through the stack field by field they cost a
/// store-forwarding stall per packet (measured with perf).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the frame (as the packet's bounds now say) on `port`; it is
    /// complete.
    Transmit { port: u16 },
    /// The frame is complete but for the Ethernet destination, which waits
    /// on ARP for `next_hop`: hold it and send it on `port` once resolved.
    Hold { port: u16, next_hop: Ipv4Addr },
    /// Give the frame, unchanged, to the kernel through the exception path
    /// of `port` (the port it came in on): it is for the director and the
    /// data plane does not handle it.
    Kernel { port: u16 },
    /// Discard the frame, counting the reason.
    Drop(DropReason),
}

impl Verdict {
    /// Transmit on the port of index `port` (below the host's port count,
    /// which DPDK's RTE_MAX_ETHPORTS bounds far below `u16::MAX`).
    #[inline]
    pub fn transmit(port: usize) -> Verdict {
        Verdict::Transmit { port: port as u16 }
    }

    /// Hold for `next_hop`, then send on the port of index `port`.
    #[inline]
    pub fn hold(port: usize, next_hop: Ipv4Addr) -> Verdict {
        Verdict::Hold {
            port: port as u16,
            next_hop,
        }
    }
}
