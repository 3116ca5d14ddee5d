//! BIRD 2's configuration for `[bgp]`: why BIRD, and what it is told.
//!
//! BIRD (Debian's bird2) rather than FRR: one daemon and one file where FRR
//! needs zebra, bgpd and bfdd and their vtysh configuration; `bird -p`
//! checks a file without running it, and `birdc configure` swaps one in
//! without dropping the sessions, which is all an announced set changing
//! needs. Both have single-hop BFD; BIRD's fits in the same file.
//!
//! What the file says (regenerated whole when the announced set changes):
//! - the virtual addresses to announce as /32 routes of a static protocol
//!   (`blackhole`: BIRD never installs them in any kernel table, it only
//!   exports them);
//! - one eBGP session per peer, directly connected, from the interface's
//!   first address, exporting exactly those routes with the director's
//!   address as next hop and no other attribute of its own (so that the
//!   routers see the same route from every director and merge them into
//!   ECMP), importing nothing;
//! - single-hop BFD on the kernel interface, 100 ms intervals, multiplier
//!   3 (a dead director's routes go within 300 ms);
//! - `connect retry time 1`, `error wait time 1, 10`: a peer that comes
//!   back is met within seconds (BIRD's defaults wait a minute after an
//!   error).

use std::fmt::Write;
use std::net::Ipv4Addr;

use crate::config::BgpConfig;

/// The static protocol that holds the announced routes.
pub const STATIC: &str = "dlvs_vips";

/// BIRD's configuration announcing `vips` (sorted, without repeats).
pub fn config(cfg: &BgpConfig, vips: &[Ipv4Addr]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Written by dlvs for its [bgp]; rewritten whenever the announced addresses change."
    );
    let _ = writeln!(s, "router id {};", cfg.router_id);
    let _ = writeln!(s, "log stderr {{ info, warning, error, fatal }};");
    let _ = writeln!(s, "protocol device {{ }}");
    let _ = writeln!(s, "protocol static {STATIC} {{");
    let _ = writeln!(s, "    ipv4;");
    for v in vips {
        let _ = writeln!(s, "    route {v}/32 blackhole;");
    }
    let _ = writeln!(s, "}}");
    if cfg.peers.iter().any(|p| p.bfd) {
        let _ = writeln!(s, "protocol bfd dlvs_bfd {{");
        let _ = writeln!(s, "    interface \"{}\" {{", cfg.kernel);
        let _ = writeln!(s, "        min rx interval 100 ms;");
        let _ = writeln!(s, "        min tx interval 100 ms;");
        let _ = writeln!(s, "        multiplier 3;");
        let _ = writeln!(s, "    }};");
        let _ = writeln!(s, "}}");
    }
    for p in &cfg.peers {
        let o = p.address.octets();
        let _ = writeln!(
            s,
            "protocol bgp peer_{}_{}_{}_{} {{",
            o[0], o[1], o[2], o[3]
        );
        let _ = writeln!(s, "    local {} as {};", cfg.local, cfg.local_as);
        let _ = writeln!(s, "    neighbor {} as {};", p.address, p.remote_as);
        let _ = writeln!(s, "    direct;");
        let _ = writeln!(s, "    interface \"{}\";", cfg.kernel);
        let _ = writeln!(s, "    connect retry time 1;");
        let _ = writeln!(s, "    error wait time 1, 10;");
        if p.bfd {
            let _ = writeln!(s, "    bfd on;");
        }
        let _ = writeln!(s, "    ipv4 {{");
        let _ = writeln!(s, "        import none;");
        let _ = writeln!(s, "        export where proto = \"{STATIC}\";");
        let _ = writeln!(s, "        next hop self;");
        let _ = writeln!(s, "    }};");
        let _ = writeln!(s, "}}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::bgp::Peer;

    fn cfg() -> BgpConfig {
        BgpConfig {
            port: 0,
            kernel: "dk0".into(),
            local: Ipv4Addr::new(10, 1, 0, 2),
            local_as: 65001,
            router_id: Ipv4Addr::new(10, 1, 0, 2),
            peers: vec![
                Peer {
                    address: Ipv4Addr::new(10, 1, 0, 1),
                    remote_as: 65000,
                    bfd: true,
                },
                Peer {
                    address: Ipv4Addr::new(10, 1, 0, 3),
                    remote_as: 4_200_000_000,
                    bfd: false,
                },
            ],
            drain_s: 5.0,
        }
    }

    /// BIRD itself reads what dlvs writes (`bird -p`: parse only), with
    /// addresses and without.
    #[test]
    fn bird_accepts_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        for vips in [
            vec![],
            vec![Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 101)],
        ] {
            let text = config(&cfg(), &vips);
            let path = dir.path().join("bird.conf");
            std::fs::write(&path, &text).unwrap();
            let out = std::process::Command::new("bird")
                .arg("-p")
                .arg("-c")
                .arg(&path)
                .output()
                .expect("bird (Debian's bird2, installed by scripts/setup)");
            assert!(
                out.status.success(),
                "bird -p refused:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            for v in &vips {
                assert!(text.contains(&format!("route {v}/32 blackhole;")));
            }
        }
    }
}
