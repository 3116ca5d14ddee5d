//! `[control]`: where `dlvsadm` reaches the director.
//!
//! ```toml
//! [control]
//! socket = "/run/dlvs/dlvs.sock"  # dlvsadm's Unix socket, mode 0600 (the default; its
//!                               # directory is made when missing)
//! ```

use serde::Deserialize;

use super::Invalid;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControl {
    pub(super) socket: Option<String>,
}

/// Where `dlvsadm` reaches the director.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    pub socket: std::path::PathBuf,
}

pub use dlvs_admin::protocol::DEFAULT_CONTROL_SOCKET;

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: DEFAULT_CONTROL_SOCKET.into(),
        }
    }
}

/// Reads `[control]`.
pub(super) fn parse(raw: RawControl) -> Result<ControlConfig, Invalid> {
    Ok(match raw.socket {
        None => ControlConfig::default(),
        Some(s) if s.is_empty() => {
            return Err(Invalid(
                "control.socket".into(),
                "empty path (leave the key out for /run/dlvs/dlvs.sock)".into(),
            ))
        }
        Some(s) => ControlConfig { socket: s.into() },
    })
}
