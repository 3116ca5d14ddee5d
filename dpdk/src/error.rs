//! Errors of the safe layer: which call failed, and DPDK's errno text.

use std::ffi::CStr;

/// A failed DPDK control call.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    #[error("EAL initialisation failed: {0}")]
    EalInit(String),
    #[error("EAL was already initialised in this process")]
    EalAlreadyInit,
    #[error("argument contains a NUL byte: {0:?}")]
    NulInArgument(String),
    #[error("mempool {name:?}: {reason}")]
    Mempool { name: String, reason: String },
    #[error("no DPDK port named {0:?} (is the device spec or PCI address right?)")]
    NoSuchPort(String),
    #[error("port {port}: {call} failed: {reason}")]
    Port {
        port: u16,
        call: &'static str,
        reason: String,
    },
    #[error("port {port}: {reason}")]
    Mtu { port: u16, reason: String },
    #[error("port {port}: {reason}")]
    Queue { port: u16, reason: String },
    #[error("lcore {lcore}: {reason}")]
    Lcore { lcore: u32, reason: String },
    #[error("{call} failed: {reason}")]
    Call { call: &'static str, reason: String },
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

/// The current value of `rte_errno`, as text.
pub(crate) fn last_error() -> String {
    // SAFETY: reading the thread-local rte_errno has no preconditions.
    strerror(unsafe { crate::ffi::dlvs_errno() })
}
