//! `[conn]`: the connection tables.
//!
//! ```toml
//! [conn]
//! capacity = 1048576            # connection entries per lcore, allocated at start (default 1048576)
//! sloppy = false                # true: a mid-connection TCP packet with no entry is scheduled
//! expire_nodest_conn = false    # true: a connection whose real server was removed ends at its
//!                               # next client packet, which is taken as new (IPVS's sysctl);
//!                               # false: such packets are dropped until it expires
//! ```

use serde::Deserialize;

use super::Invalid;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConn {
    pub(super) capacity: Option<usize>,
    pub(super) sloppy: Option<bool>,
    pub(super) expire_nodest_conn: Option<bool>,
}

/// `[conn]`: the connection tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnConfig {
    /// Entries per lcore, allocated at start.
    pub capacity: usize,
    /// Schedule a mid-connection TCP packet that has no entry (IPVS's
    /// `sloppy_tcp`).
    pub sloppy: bool,
    /// End a connection whose real server was removed at its next client
    /// packet, and take that packet as new (IPVS's `expire_nodest_conn`);
    /// otherwise such packets are dropped and the connection expires.
    pub expire_nodest_conn: bool,
}

/// Default connection entries per lcore.
pub const DEFAULT_CONN_CAPACITY: usize = 1 << 20;

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            capacity: DEFAULT_CONN_CAPACITY,
            sloppy: false,
            expire_nodest_conn: false,
        }
    }
}

/// Reads `[conn]`.
pub(super) fn parse(raw: RawConn) -> Result<ConnConfig, Invalid> {
    let mut conn = ConnConfig::default();
    if let Some(c) = raw.capacity {
        if !(1024..=1 << 27).contains(&c) {
            return Err(Invalid(
                "conn.capacity".into(),
                format!("{c} is outside 1024..=134217728"),
            ));
        }
        conn.capacity = c;
    }
    conn.sloppy = raw.sloppy.unwrap_or(false);
    conn.expire_nodest_conn = raw.expire_nodest_conn.unwrap_or(false);

    Ok(conn)
}
