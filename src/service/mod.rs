//! Virtual services and real servers as configured: the rules file in
//! ipvsadm's syntax (`rules`), the names it may use (`names`), and the
//! snapshot the data path looks services up in (`table`).
//!
//! These are the typed, validated rules others build on: the service table
//! of the data path and `dlvsadm` both start from a [`Rules`] value.

pub mod command;
pub mod names;
pub mod rules;
pub mod table;

pub use command::{Command, ListOptions, Timeouts};
pub use rules::{
    ApplyError, DestRule, Method, Persistence, Protocol, Rules, RulesError, SchedFlags, ServiceKey,
    ServiceRule, TunConfig, TunCsum, TunKind,
};
