//! The `dlvs` binary: `dlvs run` and `dlvs replay`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use dlvs::config::Config;
use dlvs::control::director::{self, Mode};
use dlvs::service::table::{Registry, ServiceTable};
use dlvs::service::Rules;

/// The demo lab's configuration, used by `dlvs run` without `--config`.
const DEMO_CONFIG: &str = include_str!("../config/demo.toml");
const DEMO_NAME: &str = "<built-in demo config>";

/// Loads `path`, or the built-in demo configuration.
fn load(path: Option<&Path>) -> Result<Config, dlvs::config::ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None => Config::from_toml(DEMO_CONFIG, Path::new(DEMO_NAME)),
    }
}

/// Adds a keepalived.conf's virtual servers and checks.
fn merge_keepalived(
    path: &Path,
    rules: &mut Rules,
    cfg: &mut Config,
) -> anyhow::Result<Vec<String>> {
    dlvs::control::keepalived_import::merge(path, rules, cfg).map_err(anyhow::Error::msg)
}

/// Loads a rules file, or none.
fn load_rules(path: Option<&Path>) -> Result<Rules, dlvs::service::RulesError> {
    path.map_or_else(|| Ok(Rules::default()), Rules::load)
}

#[derive(Parser)]
#[command(
    name = "dlvs",
    version,
    about = "Linux Virtual Server director on DPDK"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the director until SIGINT or SIGTERM.
    Run {
        /// The TOML configuration file [default: the demo lab's, built in;
        /// see config/demo.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Virtual services and real servers in ipvsadm-save syntax
        /// [default: none].
        #[arg(long, short)]
        rules: Option<PathBuf>,
        /// Also the virtual_server blocks (services, real servers, health
        /// checks) of a keepalived.conf; SIGHUP reloads it too.
        #[arg(long, short)]
        keepalived: Option<PathBuf>,
    },
    /// Check a configuration without starting DPDK: exit 0 and a summary
    /// if it would load, else the error naming the file and field. (Device
    /// specs are probed only when the director starts.)
    Check {
        /// The TOML configuration file [default: the built-in demo config].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// A rules file (ipvsadm-save syntax) to check too; its services
        /// are printed as `ipvsadm -S -n` would.
        #[arg(long, short)]
        rules: Option<PathBuf>,
        /// A keepalived.conf whose virtual_server blocks to check too.
        #[arg(long, short)]
        keepalived: Option<PathBuf>,
    },
    /// Run the data path over a capture: the first interface reads IN and
    /// writes every frame it sends to OUT; prints a JSON summary last.
    Replay {
        #[arg(long, short)]
        config: PathBuf,
        /// Virtual services and real servers in ipvsadm-save syntax.
        #[arg(long, short)]
        rules: Option<PathBuf>,
        /// Input capture (pcap).
        #[arg(long, short)]
        input: PathBuf,
        /// Output capture (pcap), created or truncated.
        #[arg(long, short)]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .init();
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dlvs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Check {
            config,
            rules,
            keepalived,
        } => check(config.as_deref(), rules.as_deref(), keepalived.as_deref()),
        Cmd::Run {
            config,
            rules,
            keepalived,
        } => run(config, rules, keepalived),
        Cmd::Replay {
            config,
            rules,
            input,
            output,
        } => replay(config, rules, input, output),
    }
}

/// `dlvs check`: loads everything as `run` would, without DPDK, and
/// prints what it found.
fn check(
    config: Option<&Path>,
    rules: Option<&Path>,
    keepalived: Option<&Path>,
) -> anyhow::Result<()> {
    let mut cfg = load(config)?;
    let mut rules = load_rules(rules)?;
    if let Some(k) = keepalived {
        for w in merge_keepalived(k, &mut rules, &mut cfg)? {
            println!("warning: {w}");
        }
    }
    // Building the table checks what the parser cannot alone (each
    // scheduler with its servers).
    ServiceTable::build(&rules, &cfg.marks, &mut Registry::default())?;
    println!("{}: ok", config.unwrap_or(Path::new(DEMO_NAME)).display());
    for line in dlvs::config::summary::summary(&cfg) {
        println!("{line}");
    }
    let dests: usize = rules.services.iter().map(|s| s.dests.len()).sum();
    println!(
        "  {} virtual service(s), {dests} real server(s)",
        rules.services.len()
    );
    for line in rules.to_save_n().lines() {
        println!("  {line}");
    }
    Ok(())
}

/// `dlvs run`: the director, until SIGINT or SIGTERM.
fn run(
    config: Option<PathBuf>,
    rules: Option<PathBuf>,
    keepalived: Option<PathBuf>,
) -> anyhow::Result<()> {
    let base = load(config.as_deref())?;
    let mut cfg = base.clone();
    let mut parsed = load_rules(rules.as_deref())?;
    if let Some(k) = &keepalived {
        for w in merge_keepalived(k, &mut parsed, &mut cfg)? {
            log::warn!("{w}");
        }
    }
    let s = director::run(
        &director::Sources {
            config: cfg,
            base_config: base,
            config_path: config,
            rules: parsed,
            rules_path: rules,
            keepalived_path: keepalived,
        },
        &Mode::Run,
    )?;
    log::info!("stopped: {}", s.to_json());
    Ok(())
}

/// `dlvs replay`: the data path over a capture; the summary on stdout.
fn replay(
    config: PathBuf,
    rules: Option<PathBuf>,
    input: PathBuf,
    output: PathBuf,
) -> anyhow::Result<()> {
    let cfg = Config::load(&config)?;
    let parsed = load_rules(rules.as_deref())?;
    let s = director::run(
        &director::Sources {
            base_config: cfg.clone(),
            config: cfg,
            config_path: Some(config),
            rules: parsed,
            rules_path: rules,
            keepalived_path: None,
        },
        &Mode::Replay { input, output },
    )?;
    println!("{}", s.to_json());
    Ok(())
}
