//! `[feedback]`: dynamic feedback of the real servers' load (the rule and
//! the protocol are `control::feedback`'s).
//!
//! ```toml
//! [feedback]
//! listen = "10.0.0.2:8999"      # UDP, an address of the director's kernel
//! interval_s = 5.0              # how often weights move (default 5)
//! alpha = 5.0                   # LVS's coefficient A (default 5)
//! max_weight = 100              # the highest weight feedback may give (default 100)
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::Invalid;

/// `[feedback]` as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeedback {
    pub(super) listen: String,
    pub(super) interval_s: Option<f64>,
    pub(super) alpha: Option<f64>,
    pub(super) max_weight: Option<u32>,
}

/// `[feedback]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackConfig {
    /// Where reports arrive (UDP); an address of the director's kernel.
    pub listen: SocketAddr,
    /// How often weights move.
    pub interval: Duration,
    /// LVS's coefficient A (how far one step moves a weight).
    pub alpha: f64,
    /// The highest weight feedback may give.
    pub max_weight: u32,
}

/// Reads `[feedback]`; an error names the key.
pub fn parse(raw: RawFeedback) -> Result<FeedbackConfig, Invalid> {
    let listen = raw.listen.parse().map_err(|_| {
        Invalid(
            "feedback.listen".to_owned(),
            format!("{:?} is not ADDRESS:PORT", raw.listen),
        )
    })?;
    let interval = raw.interval_s.unwrap_or(5.0);
    if !(0.1..=3600.0).contains(&interval) {
        return Err(Invalid(
            "feedback.interval_s".into(),
            format!("{interval} is outside 0.1..=3600"),
        ));
    }
    let alpha = raw.alpha.unwrap_or(5.0);
    if !(0.0..=1000.0).contains(&alpha) || alpha == 0.0 {
        return Err(Invalid(
            "feedback.alpha".into(),
            format!("{alpha} is outside (0, 1000]"),
        ));
    }
    let max_weight = raw.max_weight.unwrap_or(100);
    if !(1..=65_535).contains(&max_weight) {
        return Err(Invalid(
            "feedback.max_weight".into(),
            format!("{max_weight} is outside 1..=65535"),
        ));
    }
    Ok(FeedbackConfig {
        listen,
        interval: Duration::from_secs_f64(interval),
        alpha,
        max_weight,
    })
}
