//! The exception path's kernel side: a net_tap interface per data port that
//! has `kernel = NAME`, mirroring the port as VPP's linux-cp does.
//!
//! The contract: [`configure`] gives the kernel interface NAME (created by
//! the net_tap driver in the director's network namespace, with the port's
//! MAC) the port's addresses, IPv6 off, the configured routes that leave by
//! the port (not a default route: the host keeps its own), and brings it up, with iproute2 at start (never on the packet
//! path). The data path then gives the kernel what is addressed to the
//! director and that it does not handle itself (TCP, UDP and ICMP other
//! than echo to its addresses, ARP replies), and sends out of the port what
//! the kernel writes to the tap, so that health checks, and later routing
//! daemons, run with ordinary sockets.

use std::process::Command;

use crate::config::{Interface, Route};

/// Runs `ip ARGS...`; its error output names what failed.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Sets up the kernel interface `name` of interface `itf` (port `port`).
pub fn configure(name: &str, itf: &Interface, routes: &[Route], port: usize) -> Result<(), String> {
    // The director's own frames only: no IPv6 chatter (router
    // solicitations, MLD) through the data port.
    let v6 = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
    if std::path::Path::new(&v6).exists() {
        std::fs::write(&v6, "1").map_err(|e| format!("{v6}: {e}"))?;
    }
    ip(&["link", "set", "dev", name, "mtu", &itf.mtu.to_string()])?;
    for a in &itf.addresses {
        ip(&["addr", "replace", &a.to_string(), "dev", name])?;
    }
    ip(&["link", "set", "dev", name, "up"])?;
    // Connected subnets come with the addresses; the other routes that
    // leave by this port are the kernel's too, but for a default route:
    // the host's own (a management interface's) stays where it is.
    for r in routes.iter().filter(|r| r.port == port && r.prefix.len > 0) {
        if let Some(via) = r.via {
            ip(&[
                "route",
                "replace",
                &r.prefix.to_string(),
                "via",
                &via.to_string(),
                "dev",
                name,
            ])?;
        }
    }
    Ok(())
}
