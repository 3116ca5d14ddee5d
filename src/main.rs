//! The `dlvs` binary: `dlvs run` and `dlvs replay`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use dlvs::config::Config;
use dlvs::control::daemon::{self, Mode};

/// The demo lab's configuration, used by `dlvs run` without `--config`.
const DEMO_CONFIG: &str = include_str!("../config/demo.toml");

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
    },
    /// Run the data path over a capture: the first interface reads IN and
    /// writes every frame it sends to OUT; prints a JSON summary last.
    Replay {
        #[arg(long, short)]
        config: PathBuf,
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
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run { config } => {
            let cfg = match config {
                Some(path) => Config::load(&path)?,
                None => Config::from_toml(DEMO_CONFIG, Path::new("<built-in demo config>"))?,
            };
            let s = daemon::run(&cfg, &Mode::Run)?;
            log::info!("stopped: {}", s.to_json());
            Ok(())
        }
        Cmd::Replay {
            config,
            input,
            output,
        } => {
            let cfg = Config::load(&config)?;
            let s = daemon::run(&cfg, &Mode::Replay { input, output })?;
            println!("{}", s.to_json());
            Ok(())
        }
    }
}
