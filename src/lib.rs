//! dlvs: a Linux Virtual Server director as a userspace DPDK data plane.
//!
//! The library holds everything but the binary's edge: the packet views
//! (`wire`), the configuration (`config`), the byte-level data path
//! (`datapath`), the connection tables (`conn`), the IPVS schedulers
//! (`sched`), the virtual services of ipvsadm-style rules files
//! (`service`), the control plane (`control`) and capture files (`pcap`).
//! Only the `dpdk` crate touches FFI; this crate forbids unsafe code.
#![forbid(unsafe_code)]

pub mod config;
pub mod conn;
pub mod control;
pub mod datapath;
pub mod pcap;
pub mod sched;
pub mod service;
pub mod wire;
