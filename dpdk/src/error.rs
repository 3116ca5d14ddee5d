//! Errors of the safe layer: which call failed, and why: DPDK's errno
//! (kept as the number, shown as DPDK's text) or the safe layer's own
//! reason.

use std::ffi::CStr;

/// An errno value a DPDK call returned or left in `rte_errno` (positive),
/// shown as DPDK's text for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&strerror(self.0))
    }
}

/// `subject: errno`, or the errno alone.
fn about(subject: &Option<String>, errno: &Errno) -> String {
    match subject {
        Some(s) => format!("{s}: {errno}"),
        None => errno.to_string(),
    }
}

/// A failed DPDK control call.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    #[error("EAL initialisation failed: {0}")]
    EalInit(Errno),
    #[error("EAL was already initialised in this process")]
    EalAlreadyInit,
    #[error("argument contains a NUL byte: {0:?}")]
    NulInArgument(String),
    #[error("mempool {name:?}: {reason}")]
    Mempool { name: String, reason: String },
    #[error("mempool {name:?}: {errno}")]
    MempoolCreate { name: String, errno: Errno },
    #[error("no DPDK port named {0:?} (is the device spec or PCI address right?)")]
    NoSuchPort(String),
    #[error("port {port}: {call} failed: {reason}")]
    Port {
        port: u16,
        call: &'static str,
        reason: String,
    },
    #[error("port {port}: {call} failed: {errno}")]
    PortCall {
        port: u16,
        call: &'static str,
        errno: Errno,
    },
    #[error("port {port}: {reason}")]
    Mtu { port: u16, reason: String },
    #[error("port {port}: setting MTU {mtu}: {errno}")]
    SetMtu { port: u16, mtu: u16, errno: Errno },
    #[error("port {port}: {reason}")]
    Queue { port: u16, reason: String },
    #[error("lcore {lcore}: {reason}")]
    Lcore { lcore: u32, reason: String },
    #[error("lcore {lcore}: {errno}")]
    Launch { lcore: u32, errno: Errno },
    #[error("{call} failed: {reason}")]
    Call { call: &'static str, reason: String },
    /// A DPDK call that failed with `errno`, about `subject` if it names one.
    #[error("{call} failed: {}", about(.subject, .errno))]
    Failed {
        call: &'static str,
        subject: Option<String>,
        errno: Errno,
    },
}

impl DpdkError {
    /// The errno of a DPDK call that failed, if that is what this is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            DpdkError::EalInit(e)
            | DpdkError::MempoolCreate { errno: e, .. }
            | DpdkError::PortCall { errno: e, .. }
            | DpdkError::SetMtu { errno: e, .. }
            | DpdkError::Launch { errno: e, .. }
            | DpdkError::Failed { errno: e, .. } => Some(e.0),
            _ => None,
        }
    }
}

/// DPDK's text for an errno value (positive or negative).
pub(crate) fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // NUL-terminated string for any input value.
    let p = unsafe { crate::ffi::rte_strerror(code.abs()) };
    if p.is_null() {
        return format!("error {code}");
    }
    // SAFETY: p is non-null and NUL-terminated (see above); we copy it out at once.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The current value of `rte_errno`.
pub(crate) fn last_error() -> Errno {
    // SAFETY: reading the thread-local rte_errno has no preconditions.
    Errno(unsafe { crate::ffi::dlvs_errno() }.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error keeps the errno it was given, and says it in DPDK's words.
    #[test]
    fn errors_keep_their_errno() {
        let e = DpdkError::PortCall {
            port: 3,
            call: "rte_eth_dev_start",
            errno: Errno(22),
        };
        assert_eq!(e.errno(), Some(22));
        assert_eq!(
            e.to_string(),
            format!("port 3: rte_eth_dev_start failed: {}", strerror(22))
        );
        let probe = DpdkError::Failed {
            call: "rte_dev_probe",
            subject: Some("net_nosuch0".into()),
            errno: Errno(19),
        };
        assert_eq!(probe.errno(), Some(19));
        assert!(probe
            .to_string()
            .starts_with("rte_dev_probe failed: net_nosuch0: "));
        assert_eq!(DpdkError::EalAlreadyInit.errno(), None);
    }
}
