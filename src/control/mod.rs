//! The control plane: bring-up and lifecycle, metrics, summaries.

pub mod daemon;
pub mod metrics;
pub mod summary;
