//! What `dlvs check` says of a configuration that loads: one line per
//! interface, route, mark, VRRP instance, sync and BGP, and the tables'
//! sizes, each indented two spaces.

use super::Config;

/// The summary's lines, in the order `dlvs check` prints them.
pub fn summary(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    interfaces(cfg, &mut out);
    routes(cfg, &mut out);
    marks(cfg, &mut out);
    out.push(format!(
        "  {} connection(s) per lcore{}",
        cfg.conn.capacity,
        if cfg.conn.sloppy { ", sloppy TCP" } else { "" }
    ));
    out.push(format!(
        "  {} static neighbour(s); metrics {}",
        cfg.neighbors.len(),
        cfg.metrics
            .map_or("off".to_string(), |m| format!("on {}", m.listen))
    ));
    vrrp(cfg, &mut out);
    sync(cfg, &mut out);
    bgp(cfg, &mut out);
    out
}

fn joined<T: std::fmt::Display>(items: impl IntoIterator<Item = T>, sep: &str) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

fn interfaces(cfg: &Config, out: &mut Vec<String>) {
    for i in &cfg.interfaces {
        out.push(format!(
            "  interface {} on {}: mtu {}, mac {}, addresses {}",
            i.name,
            i.device,
            i.mtu,
            i.mac.map_or("the device's".to_string(), |m| m.to_string()),
            if i.addresses.is_empty() {
                "none".to_string()
            } else {
                joined(&i.addresses, " ")
            }
        ));
    }
}

fn routes(cfg: &Config, out: &mut Vec<String>) {
    for r in &cfg.routes {
        let via = r
            .via
            .map_or("connected".to_string(), |v| format!("via {v}"));
        out.push(format!(
            "  route {} {via} on {}",
            r.prefix, cfg.interfaces[r.port].name
        ));
    }
}

fn marks(cfg: &Config, out: &mut Vec<String>) {
    for m in &cfg.marks {
        out.push(format!(
            "  mark {} for {}{}{}",
            m.mark,
            m.destination,
            m.protocol
                .map_or(String::new(), |p| format!(" {}", p.name())),
            if m.ports.is_empty() {
                String::new()
            } else {
                format!(" ports {}", joined(&m.ports, ","))
            }
        ));
    }
}

fn vrrp(cfg: &Config, out: &mut Vec<String>) {
    for v in &cfg.vrrp {
        out.push(format!(
            "  vrrp {} on {}: virtual router {}, priority {}, version {}, advert {} ms, {}, addresses {}",
            v.name,
            cfg.interfaces[v.port].name,
            v.vrid,
            v.priority,
            v.version,
            u32::from(v.advert_int_cs) * 10,
            if v.preempt { "preempt" } else { "nopreempt" },
            joined(&v.addresses, " ")
        ));
    }
}

fn sync(cfg: &Config, out: &mut Vec<String>) {
    if let Some(s) = &cfg.sync {
        out.push(format!(
            "  sync on {} from {}: syncid {}, version {}, threshold {}, period {}, {}",
            cfg.interfaces[s.port].name,
            s.source,
            s.syncid,
            s.version,
            s.threshold,
            s.period,
            match s.vrrp {
                Some(i) => format!("master while {} is MASTER", cfg.vrrp[i].name),
                None => "master and backup at once".to_string(),
            }
        ));
    }
}

fn bgp(cfg: &Config, out: &mut Vec<String>) {
    if let Some(b) = &cfg.bgp {
        let peers = b.peers.iter().map(|p| {
            format!(
                "{} as {}{}",
                p.address,
                p.remote_as,
                if p.bfd { " (bfd)" } else { "" }
            )
        });
        out.push(format!(
            "  bgp on {} (kernel side {}) from {} as {}, router id {}, drain {} s: peers {}",
            cfg.interfaces[b.port].name,
            b.kernel,
            b.local,
            b.local_as,
            b.router_id,
            b.drain_s,
            joined(peers, ", ")
        ));
    }
}
