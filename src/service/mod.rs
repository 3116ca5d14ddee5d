//! Virtual services and real servers as configured: their model
//! (`rules`), ipvsadm's commands that change and list them (`command`),
//! rules files in ipvsadm's syntax (`rules_file`), the names both may use
//! (`names`), and the snapshot the data path looks services up in
//! (`table`).
//!
//! These are the typed, validated rules others build on: the service table
//! of the data path and `dlvsadm` both start from a [`Rules`] value.

pub use dlvs_admin::{command, names, rules, rules_file};
pub mod table;

pub use command::{Command, ListOptions, Timeouts};
pub use rules::{
    ApplyError, DestRule, Method, Persistence, Protocol, Rules, SchedFlags, ServiceKey,
    ServiceRule, TunConfig, TunCsum, TunKind,
};
pub use rules_file::RulesError;
