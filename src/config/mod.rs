//! The director's TOML configuration, one file per section.
//!
//! Read with the `config` crate into serde structs that deny unknown keys
//! (the error names the key and its table, e.g. `interface[0]`), then
//! validated whole into a [`Config`]: every address parsed, every reference
//! (a neighbour's interface, a route's next hop) resolved. A file either
//! loads completely or not at all, and the error says which file and field.
//!
//! Each section's file documents its keys and validates them into its
//! typed value: [`dpdk`], [`interface`], [`neighbor`], [`route`], [`arp`],
//! [`mark`], [`conn`], [`control`], [`metrics`], [`health`] (`[[health]]`),
//! [`feedback`], [`vrrp`] (`[[vrrp]]`), [`sync`], [`bgp`]. What several
//! sections share: [`prefix`] (`10.0.0.2/24`) and [`service`] (how the
//! TOML and the rules name a virtual service, dlvs-admin's). What
//! `dlvs check` prints of a configuration: [`summary`].
//!
//! The layer: this folder imports nothing of the crate but `wire`; every
//! other layer reads its values.

pub mod arp;
pub mod bgp;
pub mod conn;
pub mod control;
pub mod dpdk;
pub mod feedback;
pub mod health;
pub mod interface;
pub mod mark;
pub mod metrics;
pub mod neighbor;
pub mod prefix;
pub mod route;
pub mod summary;
pub use dlvs_admin::service_key as service;
pub mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod vrrp;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use self::arp::ArpConfig;
pub use self::bgp::BgpConfig;
pub use self::conn::{ConnConfig, DEFAULT_CONN_CAPACITY};
pub use self::control::{ControlConfig, DEFAULT_CONTROL_SOCKET};
pub use self::dpdk::{format_cpu_list, parse_cpu_list, DpdkConfig, DEFAULT_DESC, DEFAULT_MBUFS};
pub use self::feedback::FeedbackConfig;
pub use self::health::{HealthRule, NO_EXCEPTION_PATH};
pub use self::interface::{dev_name, Interface, DEFAULT_MTU};
pub use self::mark::{L4Proto, MarkRule};
pub use self::metrics::MetricsConfig;
pub use self::neighbor::Neighbor;
pub use self::prefix::Prefix;
pub use self::route::Route;
pub use self::sync::SyncConfig;
pub use self::vrrp::VrrpConfig;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

/// A section's refusal: the field (`interface[0].mac`) and what is wrong
/// with it. [`ConfigError::Invalid`] adds the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}: {1}")]
pub struct Invalid(pub String, pub String);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    dpdk: dpdk::RawDpdk,
    #[serde(default)]
    interface: Vec<interface::RawInterface>,
    #[serde(default)]
    neighbor: Vec<neighbor::RawNeighbor>,
    #[serde(default)]
    route: Vec<route::RawRoute>,
    #[serde(default)]
    arp: arp::RawArp,
    metrics: Option<metrics::RawMetrics>,
    #[serde(default)]
    mark: Vec<mark::RawMark>,
    #[serde(default)]
    conn: conn::RawConn,
    #[serde(default)]
    control: control::RawControl,
    #[serde(default)]
    health: Vec<health::RawHealth>,
    feedback: Option<feedback::RawFeedback>,
    #[serde(default)]
    vrrp: Vec<vrrp::RawVrrp>,
    sync: Option<sync::RawSync>,
    bgp: Option<bgp::RawBgp>,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub dpdk: DpdkConfig,
    pub interfaces: Vec<Interface>,
    pub neighbors: Vec<Neighbor>,
    /// Configured routes followed by the connected subnets of every
    /// interface address shorter than /32.
    pub routes: Vec<Route>,
    pub arp: ArpConfig,
    pub metrics: Option<MetricsConfig>,
    /// Mark rules, in file order: the first that matches a packet marks it.
    pub marks: Vec<MarkRule>,
    pub conn: ConnConfig,
    pub control: ControlConfig,
    /// Health checks, by virtual service.
    pub health: Vec<HealthRule>,
    /// Dynamic feedback of the real servers' load.
    pub feedback: Option<FeedbackConfig>,
    /// `[[vrrp]]` instances.
    pub vrrp: Vec<VrrpConfig>,
    /// `[sync]`, IPVS connection sync.
    pub sync: Option<SyncConfig>,
    /// `[bgp]`.
    pub bgp: Option<BgpConfig>,
}

impl Config {
    /// Loads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
            path: path.to_owned(),
            err,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parses and validates TOML text; `path` only labels errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = ::config::Config::builder()
            .add_source(::config::File::from_str(text, ::config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string().trim_end().to_owned(),
            })?;
        validate(raw).map_err(|Invalid(field, message)| ConfigError::Invalid {
            path: path.to_owned(),
            field,
            message,
        })
    }
}

/// Validates the sections in the order the file's readers expect their
/// errors (the first wrong field is the one named), each against those it
/// refers to.
fn validate(raw: RawConfig) -> Result<Config, Invalid> {
    if raw.interface.is_empty() {
        return Err(Invalid(
            "interface".into(),
            "at least one [[interface]] is required".into(),
        ));
    }
    let dpdk = dpdk::parse(raw.dpdk)?;
    let interfaces = interface::parse(raw.interface)?;
    dpdk::check_mbuf_size(&dpdk, &interfaces)?;
    let neighbors = neighbor::parse(raw.neighbor, &interfaces)?;
    let routes = route::parse(raw.route, &interfaces)?;
    let arp = arp::parse(raw.arp, dpdk.mbufs)?;
    let metrics = raw.metrics.map(metrics::parse).transpose()?;
    let marks = mark::parse(raw.mark)?;
    let conn = conn::parse(raw.conn)?;
    let health = health::parse_all(raw.health, &interfaces)?;
    let feedback = raw.feedback.map(feedback::parse).transpose()?;
    let vrrp = vrrp::parse_vrrp(raw.vrrp, &interfaces)?;
    let sync = raw
        .sync
        .map(|s| sync::parse(s, &interfaces, &vrrp))
        .transpose()?;
    let bgp = raw.bgp.map(|b| bgp::parse(b, &interfaces)).transpose()?;
    let control = control::parse(raw.control)?;
    Ok(Config {
        dpdk,
        interfaces,
        neighbors,
        routes,
        arp,
        metrics,
        marks,
        conn,
        control,
        health,
        feedback,
        vrrp,
        sync,
        bgp,
    })
}

#[cfg(test)]
mod tests;
