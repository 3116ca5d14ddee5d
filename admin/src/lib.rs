//! dlvs-admin: what the `dlvsadm` client and the `dlvs` director share,
//! with no DPDK in it, so that the client builds and runs on any Linux
//! machine (`cargo build -p dlvs-admin`).
//!
//! - [`service_key`]: how a virtual service is named (protocol, address
//!   and port, or firewall mark);
//! - [`rules`]: virtual services and real servers as configured, the
//!   model every change and listing starts from, and `ipvsadm -S -n`'s
//!   writer;
//! - [`command`]: ipvsadm 1.31's command line, parsed and checked as
//!   ipvsadm does, and applied to [`rules::Rules`];
//! - [`rules_file`]: `ipvsadm-save` files; [`names`]: the port and host
//!   names both may use;
//! - [`protocol`]: the control socket's request and answer.
#![forbid(unsafe_code)]

pub mod command;
pub mod names;
pub mod protocol;
pub mod rules;
pub mod rules_file;
pub mod service_key;
