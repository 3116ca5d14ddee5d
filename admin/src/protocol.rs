//! The control socket's protocol: dlvsadm connects to the director's Unix
//! socket, writes one JSON [`Request`] and shuts its writing half; the
//! director answers one JSON [`Response`] and closes. Listings are
//! formatted by the director, so the client prints what it is given.

use serde::{Deserialize, Serialize};

/// The control socket without `[control] socket` (and dlvsadm's without
/// `--socket` or `DLVS_SOCKET`).
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/dlvs/dlvs.sock";

/// The IPVS version listings and `-v` name (the kernel's, which dlvs
/// behaves as).
pub const IPVS_VERSION: &str = "1.2.1";

/// What dlvsadm sends.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    /// ipvsadm's arguments, without the program name.
    pub args: Vec<String>,
    /// Standard input, for `-R`.
    #[serde(default)]
    pub stdin: String,
}

/// What the director answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Response {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Response {
    /// A success printing `stdout`.
    pub fn out(stdout: String) -> Response {
        Response {
            status: 0,
            stdout,
            stderr: String::new(),
        }
    }

    /// A failure with exit `status`, printing `message` on standard error.
    pub fn fail(status: i32, message: impl std::fmt::Display) -> Response {
        Response {
            status,
            stdout: String::new(),
            stderr: format!("{message}\n"),
        }
    }
}
