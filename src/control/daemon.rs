//! Bring-up and lifecycle of the director: EAL, mempool, ports, workers,
//! the control loop, shutdown.
//!
//! `run` serves `dlvs run` (until SIGINT/SIGTERM) and `dlvs replay` (until
//! the input capture is drained). Order of events:
//!
//! 1. EAL init with `[dpdk] eal_args`; one worker per enabled lcore (the
//!    main lcore included; replay uses the main lcore only, so its output
//!    is deterministic).
//! 2. One mbuf pool; every `[[interface]]` attached (`rte_dev_probe` of its
//!    vdev spec or PCI address), configured with one RX/TX queue per
//!    worker, its MAC programmed if configured, started.
//! 3. The `Host` snapshot is built and each worker gets an engine; worker 0
//!    announces every own address with gratuitous ARP.
//! 4. The main thread runs worker 0; a control thread publishes metrics,
//!    logs link changes and address conflicts (another host claiming one of
//!    our addresses in ARP), and watches for the stop condition.
//! 5. Workers flush and return their counters; ports stop and close (the
//!    pcap writer is flushed and closed then); the EAL is cleaned up.
//!
//! Any failure before the workers start is returned with the interface or
//! call it concerns; nothing is left running.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dpdk::{Eal, Mempool, Port, PortConfig};

use super::metrics::MetricsPublisher;
use super::summary::Summary;
use crate::config::{dev_name, Config};
use crate::datapath::pipeline::Learned;
use crate::datapath::stats::Conflict;
use crate::datapath::worker::{self, Clock, WorkerSetup};
use crate::datapath::{DropReason, Engine, Host, Stats};
use crate::wire::MacAddr;

/// How the director is being run.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Until SIGINT or SIGTERM.
    Run,
    /// The first interface reads `input` and writes `output`; until drained.
    Replay { input: PathBuf, output: PathBuf },
}

/// Why the director could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Dpdk(#[from] dpdk::DpdkError),
    #[error("{err} (check [dpdk] eal_args: {args:?})")]
    Eal {
        args: Vec<String>,
        err: dpdk::DpdkError,
    },
    #[error("interface {name} ({device}): {err}")]
    Interface {
        name: String,
        device: String,
        err: dpdk::DpdkError,
    },
    #[error("replay input: {err}")]
    ReplayInput { err: crate::pcap::PcapError },
    #[error("replay output {path}: {reason}")]
    ReplayOutput { path: PathBuf, reason: String },
    #[error(
        "replay stalled: {received} of {expected} frames received after {secs} s without progress"
    )]
    ReplayStalled {
        received: u64,
        expected: u64,
        secs: u64,
    },
    #[error("interrupted by a signal before the replay input was drained")]
    Interrupted,
    #[error("metrics exporter on {listen}: {reason}")]
    Metrics { listen: String, reason: String },
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
    #[error("worker on lcore {lcore} failed")]
    Worker { lcore: u32 },
}

/// Timing of the worker loop.
const FLUSH_US: u64 = 100;

/// The device spec used for the first interface in replay.
pub fn replay_device(input: &std::path::Path, output: &std::path::Path) -> String {
    format!(
        "net_pcap_replay0,rx_pcap={},tx_pcap={}",
        input.display(),
        output.display()
    )
}

/// Runs the director; returns the final counters.
pub fn run(cfg: &Config, mode: &Mode) -> Result<Summary, DaemonError> {
    // Validate the replay files before touching DPDK.
    let expected = match mode {
        Mode::Run => None,
        Mode::Replay { input, output } => {
            let n = crate::pcap::count(input).map_err(|err| DaemonError::ReplayInput { err })?;
            for p in [input, output] {
                let s = p.display().to_string();
                if s.contains(',') || s.contains('=') {
                    return Err(DaemonError::ReplayOutput {
                        path: p.clone(),
                        reason: "the path may not contain ',' or '=' (DPDK device arguments)"
                            .into(),
                    });
                }
            }
            std::fs::File::create(output).map_err(|e| DaemonError::ReplayOutput {
                path: output.clone(),
                reason: e.to_string(),
            })?;
            Some(n as u64)
        }
    };

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(DaemonError::Signal)?;
    }

    let mut eal_args = cfg.dpdk.eal_args.clone();
    if !eal_args.iter().any(|a| a.starts_with("--log-level")) {
        // EAL's INFO lines drown the director's own; the operator can
        // still ask for them in eal_args.
        eal_args.insert(0, "--log-level=notice".into());
    }
    let eal = Eal::init(&eal_args).map_err(|err| DaemonError::Eal {
        args: cfg.dpdk.eal_args.clone(),
        err,
    })?;
    let main_lcore = eal.main_lcore();
    let mut lcores = vec![main_lcore];
    if let Mode::Run = mode {
        lcores.extend(eal.worker_lcores());
    }
    let workers = lcores.len();
    let socket = eal.lcore_socket(main_lcore) as i32;
    let pool = Arc::new(Mempool::new(
        "dlvs_pkt",
        cfg.dpdk.mbufs,
        256.min(cfg.dpdk.mbufs / 4),
        socket,
    )?);

    let mut ports = Vec::with_capacity(cfg.interfaces.len());
    let mut macs = Vec::with_capacity(cfg.interfaces.len());
    for (i, itf) in cfg.interfaces.iter().enumerate() {
        let device = match (mode, i) {
            (Mode::Replay { input, output }, 0) => replay_device(input, output),
            _ => itf.device.clone(),
        };
        let ierr = |err| DaemonError::Interface {
            name: itf.name.clone(),
            device: device.clone(),
            err,
        };
        let port = Port::attach(&eal, &device).map_err(ierr)?;
        let pc = PortConfig {
            rx_queues: workers as u16,
            tx_queues: workers as u16,
            ..PortConfig::default()
        };
        port.configure(&pc, &pool, socket).map_err(ierr)?;
        if let Some(mac) = itf.mac {
            if let Err(e) = port.set_mac(mac.0) {
                // Virtual devices such as net_pcap cannot program a MAC;
                // the director then uses the configured one in software.
                let level = match (mode, i) {
                    (Mode::Replay { .. }, 0) => log::Level::Info,
                    _ => log::Level::Warn,
                };
                log::log!(
                    level,
                    "interface {}: the device keeps its own MAC ({e}); using {mac} in software",
                    itf.name
                );
            }
        }
        port.start().map_err(ierr)?;
        let mac = match itf.mac {
            Some(m) => m,
            None => MacAddr(port.mac().map_err(ierr)?),
        };
        log::info!(
            "interface {} on {} (port {}): MAC {mac}, {} queue(s), addresses {}",
            itf.name,
            dev_name(&device),
            port.id(),
            workers,
            itf.addresses
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        ports.push(port);
        macs.push(mac);
    }
    let host = Arc::new(Host::new(cfg, &macs));

    let clock = match mode {
        Mode::Run => Clock::Tsc,
        Mode::Replay { .. } => Clock::Capture(eal.rx_timestamp_field()?),
    };
    let publish_us = cfg.metrics.map_or(100, |m| m.publish_ms) * 1000;

    // Neighbour sharing: one bounded inbox per worker.
    let (senders, mut inboxes): (Vec<SyncSender<Learned>>, Vec<Option<Receiver<Learned>>>) = (0
        ..workers)
        .map(|_| {
            let (tx, rx) = sync_channel(1024);
            (tx, Some(rx))
        })
        .unzip();
    let shared: Vec<Arc<Mutex<Stats>>> = (0..workers)
        .map(|_| Arc::new(Mutex::new(Stats::new(ports.len()))))
        .collect();

    let mut setups = Vec::with_capacity(workers);
    for (w, inbox) in inboxes.iter_mut().enumerate() {
        let q = w as u16;
        setups.push(WorkerSetup {
            index: w,
            rx: ports
                .iter()
                .map(|p| p.rx_queue(q).expect("queue taken once"))
                .collect(),
            tx: ports
                .iter()
                .map(|p| p.tx_queue(q).expect("queue taken once"))
                .collect(),
            pool: Arc::clone(&pool),
            clock,
            tsc_hz: eal.tsc_hz(),
            flush_us: FLUSH_US,
            publish_us,
            stop: Arc::new(AtomicBool::new(false)),
            shared: Arc::clone(&shared[w]),
            peers: senders
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != w)
                .map(|(_, s)| s.clone())
                .collect(),
            inbox: inbox.take().expect("one inbox per worker"),
        });
    }
    drop(senders);
    // Workers share one stop flag, set by the control thread.
    let worker_stop = Arc::new(AtomicBool::new(false));
    for s in &mut setups {
        s.stop = Arc::clone(&worker_stop);
    }

    let metrics = match cfg.metrics {
        Some(m) => Some(
            MetricsPublisher::install(m.listen, &cfg.interfaces, &lcores).map_err(|reason| {
                DaemonError::Metrics {
                    listen: m.listen.to_string(),
                    reason,
                }
            })?,
        ),
        None => None,
    };

    let mut setups = setups.into_iter();
    let main_setup = setups.next().expect("at least one worker");
    for (setup, &lcore) in setups.zip(&lcores[1..]) {
        let engine = Engine::new(Arc::clone(&host));
        eal.launch(lcore, move || {
            worker::run(engine, setup);
            0
        })?;
    }
    log::info!(
        "{} worker(s) on lcore(s) {:?}; {}",
        workers,
        lcores,
        match mode {
            Mode::Run => "running until SIGINT/SIGTERM".to_string(),
            Mode::Replay { input, .. } => format!(
                "replaying {} frame(s) from {}",
                expected.unwrap_or(0),
                input.display()
            ),
        }
    );

    // The control thread: metrics, link logging, and the stop condition.
    let control = {
        let c = Control {
            ports: ports.clone(),
            names: cfg.interfaces.iter().map(|i| i.name.clone()).collect(),
            shared: shared.clone(),
            metrics,
            signalled: Arc::clone(&stop),
            worker_stop: Arc::clone(&worker_stop),
            expected,
            period: Duration::from_micros(publish_us),
        };
        std::thread::Builder::new()
            .name("dlvs-control".into())
            .spawn(move || c.run())
            .expect("spawning the control thread")
    };

    let main_stats = worker::run(Engine::new(Arc::clone(&host)), main_setup);
    let mut failed = None;
    for &lcore in &lcores[1..] {
        if eal.wait(lcore) != 0 {
            failed = Some(lcore);
        }
    }
    let outcome = control.join().expect("control thread");

    let mut total = main_stats;
    for s in shared.iter().skip(1) {
        total.merge(&s.lock().expect("stats lock"));
    }
    let conflicts = total.drops[DropReason::ArpConflict as usize];
    if let (true, Some(c)) = (conflicts > 0, total.last_conflict) {
        let names: Vec<String> = cfg.interfaces.iter().map(|i| i.name.clone()).collect();
        log::warn!(
            "{conflicts} ARP frame(s) during this run claimed the director's addresses; the last: {}",
            describe_conflict(&c, &names)
        );
    }
    let port_stats: Vec<_> = ports
        .iter()
        .map(|p| p.stats().unwrap_or_default())
        .collect();
    for p in &ports {
        p.stop();
    }
    drop(ports);
    if let Some(lcore) = failed {
        return Err(DaemonError::Worker { lcore });
    }
    outcome?;
    let names: Vec<&str> = cfg.interfaces.iter().map(|i| i.name.as_str()).collect();
    Ok(Summary::new(&total, &names, &port_stats))
}

/// Warns about hosts claiming the director's addresses: when a new one
/// appears, and again at most every 10 s while conflicting frames go on.
#[derive(Default)]
struct ConflictLog {
    last: Option<(Conflict, Instant, u64)>,
}

impl ConflictLog {
    fn check(&mut self, shared: &[Arc<Mutex<Stats>>], names: &[String]) {
        let (mut latest, mut count) = (None, 0);
        for s in shared {
            if let Ok(g) = s.lock() {
                count += g.drops[DropReason::ArpConflict as usize];
                latest = latest.or(g.last_conflict);
            }
        }
        let Some(c) = latest else {
            return;
        };
        let due = match self.last {
            None => true,
            Some((lc, at, n)) => lc != c || (count > n && at.elapsed() >= Duration::from_secs(10)),
        };
        if due {
            log::warn!(
                "{}; {count} such ARP frame(s) so far",
                describe_conflict(&c, names)
            );
            self.last = Some((c, Instant::now(), count));
        }
    }
}

/// "interface lan0: 02:...:66 claims the director's address 10.0.0.100"
fn describe_conflict(c: &Conflict, names: &[String]) -> String {
    format!(
        "interface {}: {} claims the director's address {} in ARP (another host uses it: in LVS-DR, check the real servers' arp_ignore/arp_announce)",
        names.get(c.port).map_or("?", |n| n.as_str()),
        c.mac,
        c.ip
    )
}

/// Logs each port's link state when first seen and whenever it changes.
fn log_link_changes(ports: &[Port], names: &[String], seen: &mut [Option<bool>]) {
    for ((p, name), last) in ports.iter().zip(names).zip(seen.iter_mut()) {
        let link = p.link();
        if *last == Some(link.up) {
            continue;
        }
        if link.up {
            log::info!(
                "interface {name}: link up, {} Mb/s {}",
                link.speed_mbps,
                if link.full_duplex {
                    "full duplex"
                } else {
                    "half duplex"
                }
            );
        } else if last.is_some() {
            log::warn!("interface {name}: link down");
        } else {
            log::warn!("interface {name}: link down at start");
        }
        *last = Some(link.up);
    }
}

/// The control thread's state.
struct Control {
    ports: Vec<Port>,
    /// Interface names, by port.
    names: Vec<String>,
    shared: Vec<Arc<Mutex<Stats>>>,
    metrics: Option<MetricsPublisher>,
    /// Set by SIGINT/SIGTERM.
    signalled: Arc<AtomicBool>,
    /// Set by the control thread to stop the workers.
    worker_stop: Arc<AtomicBool>,
    /// Replay: the number of frames in the input.
    expected: Option<u64>,
    period: Duration,
}

impl Control {
    /// Publishes metrics and logs link changes until a signal (run) or the
    /// input is drained (replay); then stops the workers.
    fn run(self) -> Result<(), DaemonError> {
        let Control {
            ports,
            names,
            shared,
            mut metrics,
            signalled,
            worker_stop,
            expected,
            period,
        } = self;

        let mut last_progress = (0u64, Instant::now());
        let stall = Duration::from_secs(10);
        let mut links: Vec<Option<bool>> = vec![None; ports.len()];
        let mut conflicts = ConflictLog::default();
        let result = loop {
            log_link_changes(&ports, &names, &mut links);
            conflicts.check(&shared, &names);
            if let Some(m) = metrics.as_mut() {
                m.publish(&ports, &shared);
            }
            if signalled.load(Ordering::Relaxed) {
                break match expected {
                    Some(_) => Err(DaemonError::Interrupted),
                    None => Ok(()),
                };
            }
            if let Some(n) = expected {
                // net_pcap has no end-of-file signal: the input is drained when
                // the port has taken every frame, received or in error.
                let s = ports[0].stats().unwrap_or_default();
                let seen = s.ipackets + s.ierrors;
                if seen >= n {
                    break Ok(());
                }
                if seen != last_progress.0 {
                    last_progress = (seen, Instant::now());
                } else if last_progress.1.elapsed() > stall {
                    break Err(DaemonError::ReplayStalled {
                        received: seen,
                        expected: n,
                        secs: stall.as_secs(),
                    });
                }
                std::thread::sleep(Duration::from_millis(1).min(period));
            } else {
                std::thread::sleep(period.min(Duration::from_millis(100)));
            }
        };
        worker_stop.store(true, Ordering::Release);
        result
    }
}
