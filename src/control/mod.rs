//! The control plane: bring-up and lifecycle, metrics, summaries.

pub mod admin;
pub mod bgp;
pub mod budget;
pub mod cpus;
pub mod daemon;
pub mod estimator;
pub mod feedback;
pub mod ha;
pub mod health;
pub mod keepalived;
pub mod kernel;
pub mod listing;
pub mod metrics;
pub mod metrics_catalogue;
pub mod summary;
