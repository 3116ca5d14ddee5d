//! Which worker owns a packet, when several share a port.
//!
//! Each worker keeps its own connection table and persistence templates,
//! so every packet of a connection, both directions, and every connection
//! of a persistent client, must reach the same worker, whatever RX queue
//! the NIC (or the kernel, for net_tap) put it on. The owner is a function
//! of the one thing both directions carry: the client's address. A packet
//! to a virtual address comes from the client (its source); any other
//! comes from a real server to the client (its destination). The address
//! is masked with the coarsest persistence netmask of the rules
//! ([`ServiceTable::owner_mask`]), so the clients that share a template
//! share a worker too.
//!
//! Steering is decided on the raw frame before any rewrite and costs a
//! multiply; the worker that received a packet another owns hands it over
//! through the owner's ring (`dpdk::MbufRing`), software steering that
//! works with any device. ICMP errors go to the owner of the packet they
//! quote. Multicast datagrams (VRRP adverts, IPVS sync messages) go to
//! worker 0, which runs the VRRP instances and takes sync messages in.
//! Other frames (ARP, ICMP echo, the director's own traffic) stay where
//! they arrived.

use std::net::Ipv4Addr;

use crate::service::table::ServiceTable;

const ETH_LEN: usize = 14;

/// The worker (of `workers`) that owns `frame`, or `None` when any worker
/// may process it.
#[inline]
pub fn owner(frame: &[u8], services: &ServiceTable, workers: usize) -> Option<usize> {
    if workers < 2 || frame.len() < ETH_LEN + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[ETH_LEN..];
    if ip[0] >> 4 != 4 {
        return None;
    }
    if ip[16] & 0xf0 == 0xe0 {
        // Multicast: VRRP adverts and sync messages, for the worker that
        // runs the VRRP instances and takes sync messages in.
        return Some(0);
    }
    if services.is_empty() {
        return None;
    }
    let (src, dst) = match ip[9] {
        6 | 17 => (addr(ip, 12), addr(ip, 16)),
        // An ICMP error goes where the packet it quotes belongs: that
        // packet went the other way (from the virtual service to the
        // client, or from the client to a real server).
        1 => {
            let hl = usize::from(ip[0] & 0x0f) * 4;
            let icmp = ip.get(hl..)?;
            if icmp.len() < 8 + 20 || !matches!(icmp[0], 3 | 4 | 11) {
                return None;
            }
            let q = &icmp[8..];
            (addr(q, 16), addr(q, 12))
        }
        _ => return None,
    };
    let client = if services.is_virtual(dst) { src } else { dst };
    Some(worker_of(client, services.owner_mask(), workers))
}

fn addr(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// The owner of a client address.
#[inline]
pub fn worker_of(client: Ipv4Addr, mask: Ipv4Addr, workers: usize) -> usize {
    let a = u32::from(client) & u32::from(mask);
    // Fibonacci hashing: the high bits mix every address bit.
    let h = a.wrapping_mul(0x9e37_79b9);
    ((h >> 16) as usize * workers) >> 16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::rules::Rules;
    use crate::service::table::Registry;
    use std::path::Path;

    fn table(rules: &str) -> ServiceTable {
        let r = Rules::parse(rules, Path::new("t")).unwrap();
        ServiceTable::build(&r, &[], &mut Registry::default()).unwrap()
    }

    fn frame(src: [u8; 4], dst: [u8; 4], proto: u8) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[12..14].copy_from_slice(&[8, 0]);
        f[14] = 0x45;
        f[23] = proto;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f
    }

    #[test]
    fn both_directions_have_one_owner() {
        let t = table("-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m\n");
        for c in 0..=255u8 {
            let client = [198, 51, 100, c];
            let inbound = owner(&frame(client, [10, 0, 0, 100], 6), &t, 4).unwrap();
            let reply = owner(&frame([10, 0, 0, 11], client, 6), &t, 4).unwrap();
            assert_eq!(inbound, reply, "client {client:?}");
        }
    }

    #[test]
    fn clients_spread_over_workers() {
        let t = table("-A -u 10.0.0.100:53 -s rr\n-a -u 10.0.0.100:53 -r 10.0.0.11 -m\n");
        let mut per = [0usize; 4];
        for c in 0..4096u32 {
            let a = Ipv4Addr::from(0x0a01_0000 + c).octets();
            per[owner(&frame(a, [10, 0, 0, 100], 17), &t, 4).unwrap()] += 1;
        }
        assert!(per.iter().all(|&n| n > 800), "{per:?}");
    }

    #[test]
    fn a_persistent_network_shares_a_worker() {
        let t = table("-A -t 10.0.0.100:80 -s rr -p 60 -M 255.255.255.0\n-a -t 10.0.0.100:80 -r 10.0.0.11 -g\n");
        assert_eq!(t.owner_mask(), Ipv4Addr::new(255, 255, 255, 0));
        let first = owner(&frame([198, 51, 100, 1], [10, 0, 0, 100], 6), &t, 8);
        for c in 2..=254u8 {
            assert_eq!(
                owner(&frame([198, 51, 100, c], [10, 0, 0, 100], 6), &t, 8),
                first
            );
        }
    }

    /// An ICMP error about a packet of a connection has that connection's
    /// owner, from either side.
    #[test]
    fn icmp_errors_follow_the_quoted_packet() {
        let t = table("-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11 -m\n");
        let client = [198, 51, 100, 9];
        let conn_owner = owner(&frame(client, [10, 0, 0, 100], 6), &t, 4);
        let icmp = |outer_src: [u8; 4], outer_dst: [u8; 4], qsrc: [u8; 4], qdst: [u8; 4]| {
            let mut f = frame(outer_src, outer_dst, 1);
            f.truncate(34);
            f.extend([3, 4, 0, 0, 0, 0, 0, 0]);
            let mut q = vec![0u8; 28];
            q[0] = 0x45;
            q[9] = 6;
            q[12..16].copy_from_slice(&qsrc);
            q[16..20].copy_from_slice(&qdst);
            f.extend(q);
            f
        };
        // A router near the client, about the VIP's reply to the client.
        let a = icmp([203, 0, 113, 1], [10, 0, 0, 100], [10, 0, 0, 100], client);
        assert_eq!(owner(&a, &t, 4), conn_owner);
        // The real server, about the client's packet it got.
        let b = icmp([10, 0, 0, 11], client, client, [10, 0, 0, 11]);
        assert_eq!(owner(&b, &t, 4), conn_owner);
    }

    #[test]
    fn other_frames_stay_where_they_arrive() {
        let t = table("-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11 -g\n");
        assert_eq!(
            owner(&frame([1, 2, 3, 4], [10, 0, 0, 100], 1), &t, 2),
            None,
            "ICMP"
        );
        let mut arp = frame([1, 2, 3, 4], [10, 0, 0, 100], 6);
        arp[12..14].copy_from_slice(&[8, 6]);
        assert_eq!(owner(&arp, &t, 2), None, "ARP");
        assert_eq!(
            owner(&frame([1, 2, 3, 4], [10, 0, 0, 100], 6), &t, 1),
            None,
            "one worker"
        );
        assert_eq!(owner(&[0u8; 20], &t, 2), None, "runt");
    }
}
