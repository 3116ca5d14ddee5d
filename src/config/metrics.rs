//! `[metrics]`: the Prometheus exporter.
//!
//! ```toml
//! [metrics]
//! listen = "127.0.0.1:9900"     # Prometheus exporter; absent: no exporter
//! publish_ms = 100              # how often workers' counters are published (default 100)
//! ```

use std::net::SocketAddr;

use serde::Deserialize;

use super::Invalid;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) listen: String,
    pub(super) publish_ms: Option<u64>,
}

/// Prometheus exporter settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
    pub publish_ms: u64,
}

/// Reads `[metrics]`.
pub(super) fn parse(m: RawMetrics) -> Result<MetricsConfig, Invalid> {
    let listen: SocketAddr = m.listen.parse().map_err(|_| {
        Invalid(
            "metrics.listen".into(),
            format!("{:?} is not ADDRESS:PORT", m.listen),
        )
    })?;
    let publish_ms = m.publish_ms.unwrap_or(100);
    if !(1..=10_000).contains(&publish_ms) {
        return Err(Invalid(
            "metrics.publish_ms".into(),
            format!("{publish_ms} is outside 1..=10000"),
        ));
    }
    Ok(MetricsConfig { listen, publish_ms })
}
