//! The control plane: everything around the workers, on the control CPUs,
//! never on the packet path. It brings the director up and down, and is
//! the only writer of what the workers read: it publishes service-table
//! snapshots (dlvsadm's changes, SIGHUP reloads, health checks, feedback)
//! that the workers take between bursts, and reads their counters.
//!
//! - [`director`]: bring-up in phases (EAL, pool, ports, exception paths,
//!   workers, control threads), the run, the shutdown and its summary;
//!   [`mbuf_budget`] the buffers the ports and workers need;
//!   [`exception_path`] the kernel side of each port's tap; [`cpus`] where
//!   the control threads run.
//! - [`admin`]: the control socket (dlvsadm's requests, applied whole),
//!   the control state behind it, SIGHUP reloads; [`listing`] ipvsadm's
//!   listing formats; [`estimator`] IPVS's rate estimator.
//! - [`health`]: keepalived's checkers; [`feedback`] dynamic feedback;
//!   [`keepalived_import`] keepalived.conf read into rules and
//!   configuration.
//! - [`ha`]: VRRP transitions logged and notified; [`bgp`] the supervised
//!   BIRD that announces the virtual addresses.
//! - [`metrics`] (what is exported, [`metrics_catalogue`]) and
//!   [`summary`] (the replay's and the stop's JSON line).

pub mod admin;
pub mod bgp;
pub mod cpus;
pub mod director;
pub mod estimator;
pub mod exception_path;
pub mod feedback;
pub mod ha;
pub mod health;
pub mod keepalived_import;
pub mod listing;
pub mod mbuf_budget;
pub mod metrics;
pub mod metrics_catalogue;
pub mod summary;
