//! Bring-up and lifecycle of the director: EAL, mempool, ports, workers,
//! the control loop, shutdown.
//!
//! `run` serves `dlvs run` (until SIGINT/SIGTERM) and `dlvs replay` (until
//! the input capture is drained). Order of events:
//!
//! 1. The process's CPUs are noted, then the EAL starts with `[dpdk]
//!    eal_args`; one worker per enabled lcore (the main lcore included;
//!    replay uses the main lcore only, so its output is deterministic).
//! 2. Every `[[interface]]` is probed (`rte_dev_probe` of its vdev spec or
//!    PCI address). The mbufs they need are counted (`control::mbuf_budget`) and
//!    a short `[dpdk] mbufs` is refused with the number needed. One pool is
//!    made, its buffers sized for the largest MTU; each port is configured
//!    with one RX/TX queue per worker and its MTU, its MAC programmed if
//!    configured, started.
//! 3. The `Host` snapshot is built and each worker gets an engine; worker 0
//!    announces every own address with gratuitous ARP.
//! 4. The control thread starts on the control CPUs (`control::cpus`),
//!    starts the metrics exporter there (its threads inherit those CPUs),
//!    and says when it is ready. Workers are launched on their lcores; the
//!    main thread runs worker 0. The control thread publishes metrics, logs
//!    link changes and address conflicts, and watches for the stop
//!    condition: a signal, the replay input drained, or a worker that
//!    ended on its own (a failure).
//! 5. Workers flush and return their counters; every launched lcore is
//!    joined (also when a launch fails part-way: `Eal::scope`); ports stop
//!    and close (the pcap writer is flushed and closed then); the EAL is
//!    cleaned up. A worker that failed or panicked makes `run` fail, naming
//!    its lcore.
//!
//! Any failure before the workers start is returned with the interface or
//! call it concerns; nothing is left running.
//!
//! Logging: the control thread logs link changes and address conflicts as
//! they happen (the workers never log).

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dpdk::{Device, Eal, Lcore, MbufRing, Mempool, Port, PortConfig, PortMonitor, FRAME_OVERHEAD};

pub use super::admin::Sources;
use super::admin::{Admin, Live};
use super::cpus::{self, ControlCpus};
use super::ha::Ha;
use super::mbuf_budget::{self, Budget, KERNEL_DESC};
use super::metrics::MetricsPublisher;
use super::summary::Summary;
use crate::config::{dev_name, format_cpu_list, Config, Interface};
use crate::conn::dump::DumpSlot;
use crate::datapath::pipeline::Learned;
use crate::datapath::stats::Conflict;
use crate::datapath::worker::{self, Clock, Steering, WorkerSetup};
use crate::datapath::{DropReason, Engine, Host, Stats};
use crate::service::rules::ServiceKey;
use crate::service::table::{ConnFlags, Published, Registry, ServiceTable};
use crate::wire::ipvs_sync::SyncConn;
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
pub enum DirectorError {
    #[error(transparent)]
    Dpdk(#[from] dpdk::DpdkError),
    #[error(transparent)]
    Admin(#[from] super::admin::AdminError),
    #[error("[feedback] listen {listen}: {reason} (an address of the director's kernel: give the interface `kernel = ...`)")]
    Feedback { listen: String, reason: String },
    #[error("interface {interface}: exception path {kernel}: {reason}")]
    Kernel {
        interface: String,
        kernel: String,
        reason: String,
    },
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
    #[error("interface {name}: MTU {mtu} needs {need}-byte packet buffers, more than the {max} an mbuf can hold")]
    BufferSize {
        name: String,
        mtu: u16,
        need: u32,
        max: u32,
    },
    #[error("[dpdk] mbufs = {have} is too few: {need} needed for {explain}")]
    Mbufs {
        have: u32,
        need: u64,
        explain: String,
    },
    #[error(transparent)]
    ControlCpus(#[from] cpus::CpuError),
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
    #[error(transparent)]
    Services(#[from] crate::service::table::BuildError),
    #[error("control thread: {0}")]
    ControlThread(String),
    #[error("worker on lcore {lcore} failed: {reason}")]
    Worker { lcore: u32, reason: String },
}

/// Timing of the worker loop.
const FLUSH_US: u64 = 100;
/// Slots of each worker's steering ring.
const STEER_RING: u32 = 1024;

/// Fault injection for the lifecycle tests, in debug builds only:
/// `DLVS_TEST_FAULT=worker-panic:N` makes worker N panic as it starts.
fn injected_panic(worker: usize) -> bool {
    cfg!(debug_assertions)
        && std::env::var("DLVS_TEST_FAULT").is_ok_and(|v| v == format!("worker-panic:{worker}"))
}

/// The device spec used for the first interface in replay.
pub fn replay_device(input: &std::path::Path, output: &std::path::Path) -> String {
    format!(
        "net_pcap_replay0,rx_pcap={},tx_pcap={}",
        input.display(),
        output.display()
    )
}

/// Bytes of packet each buffer holds: `[dpdk] mbuf_size`, or the largest
/// frame of any interface and DPDK's customary 2048 at least.
fn buffer_size(cfg: &Config) -> Result<u16, DirectorError> {
    // Checked against the MTUs when the configuration was loaded.
    if let Some(size) = cfg.dpdk.mbuf_size {
        return Ok(size);
    }
    let mut size = 2048u16;
    for itf in &cfg.interfaces {
        let need = itf.mtu as u32 + FRAME_OVERHEAD as u32;
        let max = (u16::MAX - dpdk::HEADROOM) as u32;
        if need > max {
            return Err(DirectorError::BufferSize {
                name: itf.name.clone(),
                mtu: itf.mtu,
                need,
                max,
            });
        }
        size = size.max(need as u16);
    }
    Ok(size)
}

/// Sets when a worker's job ends, normally or by unwinding.
struct ExitFlag<'a>(&'a AtomicBool);

impl Drop for ExitFlag<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Runs the director; returns the final counters.
pub fn run(sources: &Sources, mode: &Mode) -> Result<Summary, DirectorError> {
    let cfg = &sources.config;
    // The replay files, checked before DPDK is touched.
    let expected = replay_expected(mode)?;
    let data_room = buffer_size(cfg)?;
    // dlvsadm's socket, in a run (a replay takes no requests): first, so
    // that a second director on the same socket touches no device.
    // (Dynamic feedback's socket is bound later: its address is the
    // exception path's, there only once the taps are up.)
    let listener = match mode {
        Mode::Run => Some(super::admin::bind(&cfg.control.socket)?),
        Mode::Replay { .. } => None,
    };
    // The service table, built before DPDK starts: a bad rule costs nothing.
    let (services, mut registry) = first_services(sources)?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(DirectorError::Signal)?;
    }

    // The CPUs this process may use, before the EAL pins this thread.
    let process_cpus = dpdk::thread::affinity()?;
    let eal = start_eal(cfg)?;
    let main_lcore = eal.main_lcore();
    // A replay runs one worker, on the main lcore.
    let mut lcores = vec![main_lcore];
    if let Mode::Run = mode {
        lcores.extend(eal.worker_lcores());
    }
    let workers = lcores.len();
    let socket = eal.lcore_socket(main_lcore) as i32;

    let (devices, kernel_devices, need) = probe_devices(&eal, cfg, mode, workers)?;
    let pool = Mempool::new(
        &eal,
        "dlvs_pkt",
        cfg.dpdk.mbufs,
        need.cache as u32,
        data_room,
        socket,
    )?;
    let (ports, macs) = configure_ports(devices, &pool, cfg, mode, workers, socket)?;
    let kernel_ports = kernel_taps(kernel_devices, &pool, cfg, &macs, workers, socket)?;
    let mut host = Host::new(cfg, &macs);
    // A replay has no exception path: what would go to the kernel is
    // dropped with its reason, as without one.
    for (p, k) in host.ports.iter_mut().zip(&kernel_ports) {
        p.kernel = k.is_some();
    }
    let host = Arc::new(host);
    let feedback = feedback_socket(cfg, mode)?;
    // Per-start randomness for the schedulers (twos) and tunnel idents.
    let seeds = std::collections::hash_map::RandomState::new();

    // Control threads off the polling CPUs.
    let control_cpus = control_cpus(&eal, &lcores, &process_cpus, cfg)?;

    let clock = match mode {
        Mode::Run => Clock::Tsc,
        Mode::Replay { .. } => Clock::Capture(eal.rx_timestamp_field()?),
    };
    let publish_us = cfg.metrics.map_or(100, |m| m.publish_ms) * 1000;

    // The channels between the workers, and from worker 0 to the control side.
    let (mut wiring, events_rx) = Wiring::new(workers);
    let shared: Vec<Arc<Mutex<Stats>>> = (0..workers)
        .map(|_| Arc::new(Mutex::new(Stats::new(ports.len()))))
        .collect();
    // The services the workers run; SIGHUP publishes a new snapshot.
    let published = Published::new(Arc::clone(&services));
    let hup = Arc::new(AtomicBool::new(false));
    if let Mode::Run = mode {
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
            .map_err(DirectorError::Signal)?;
    }
    // The control plane's copy of the rules: dlvsadm's requests and SIGHUP
    // change them (one at a time) and publish new snapshots.
    // Set when a [bgp] director starts draining (SIGTERM, dlvsadm --drain).
    let draining = Arc::new(AtomicBool::new(false));
    let admin = Mutex::new({
        let mut a = Admin::new(
            sources.clone(),
            std::mem::take(&mut registry),
            (cfg.conn.capacity * workers) as u64,
        );
        a.set_host(Arc::clone(&host));
        if let (Some(_), Mode::Run) = (&cfg.bgp, mode) {
            a.set_drain(Arc::clone(&draining));
        }
        a
    });

    // With several workers, one steering ring each (datapath::steer).
    let rings: Vec<MbufRing> = if workers > 1 {
        (0..workers)
            .map(|w| MbufRing::new(&pool, &format!("dlvs_steer{w}"), STEER_RING, socket))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    // Set by the control thread (or the main thread on a failure) to stop
    // the workers; each worker's exit flag says it has ended.
    let worker_stop = AtomicBool::new(false);
    let exited: Vec<AtomicBool> = (0..workers).map(|_| AtomicBool::new(false)).collect();
    let names: Vec<String> = cfg.interfaces.iter().map(|i| i.name.clone()).collect();
    let lcore_ids: Vec<u32> = lcores.iter().map(|l| l.id()).collect();
    // Where dlvsadm -c asks each worker for its connections.
    let dumps: Vec<DumpSlot> = (0..workers).map(|_| DumpSlot::default()).collect();
    // An idle worker sleeps at most a tenth of the shortest advert
    // interval: worker 0's adverts must not wait for its naps.
    let idle_sleep_us = cfg
        .vrrp
        .iter()
        .map(|v| u64::from(v.advert_int_cs) * 1000)
        .fold(cfg.dpdk.idle_sleep_us, u64::min);
    // The VRRP instances run in worker 0, which reports their transitions.
    let ha = Ha::new(&cfg.vrrp, Some(events_rx));

    let (main_stats, failures, outcome) = eal.scope(|lcore_scope| {
        std::thread::scope(|threads| {
            let common = Common {
                pool: &pool,
                clock,
                tsc_hz: eal.tsc_hz(),
                publish_us,
                stop: &worker_stop,
                published: &published,
                shared: &shared,
                dumps: &dumps,
                idle_sleep_us,
            };
            let mut setups = Vec::with_capacity(workers);
            for w in 0..workers {
                setups.push(worker_setup(
                    w,
                    &ports,
                    &kernel_ports,
                    &rings,
                    &mut wiring,
                    &common,
                )?);
            }
            // The workers hold the only senders now: a channel ends with them.
            drop(wiring);

            // The control thread: metrics, link logging, the stop condition.
            let control = Control {
                ports: ports.iter().map(|p| p.monitor()).collect(),
                names: names.clone(),
                shared: shared.clone(),
                signalled: Arc::clone(&stop),
                worker_stop: &worker_stop,
                exited: &exited,
                lcores: &lcore_ids,
                published: &published,
                admin: &admin,
                ha: &ha,
                drain: match (&cfg.bgp, mode) {
                    (Some(b), Mode::Run) => Some((&draining, Duration::from_secs_f64(b.drain_s))),
                    _ => None,
                },
                hup: Arc::clone(&hup),
                expected,
                period: Duration::from_micros(publish_us),
            };
            let control = spawn_control(threads, control, &control_cpus.cpus, cfg, &lcore_ids)?;
            spawn_helpers(
                threads,
                &Helpers {
                    cfg,
                    mode,
                    cpus: &control_cpus.cpus,
                    admin: &admin,
                    published: &published,
                    stop: &worker_stop,
                    draining: &draining,
                    shared: &shared,
                    dumps: &dumps,
                },
                listener,
                feedback,
            )?;

            let mut setups = setups.into_iter();
            let main_setup = setups.next().expect("at least one worker");
            let launched = launch_workers(lcore_scope, setups, &lcores[1..], &exited, |w| {
                Engine::with_services(
                    Arc::clone(&host),
                    Arc::clone(&services),
                    &cfg.conn,
                    seeds.hash_one(w),
                )
            })
            .inspect_err(|_| {
                // Stop what runs; the scopes join it.
                worker_stop.store(true, Ordering::Release);
            })?;
            log::info!(
                "{} worker(s) on lcore(s) {:?}; {}",
                workers,
                lcore_ids,
                match mode {
                    Mode::Run => "running until SIGINT/SIGTERM".to_string(),
                    Mode::Replay { input, .. } => format!(
                        "replaying {} frame(s) from {}",
                        expected.unwrap_or(0),
                        input.display()
                    ),
                }
            );

            let engine = Engine::with_services(
                Arc::clone(&host),
                Arc::clone(&services),
                &cfg.conn,
                seeds.hash_one(0usize),
            );
            let main = run_main_worker(engine, main_setup, &exited[0]);
            let mut failures = Vec::new();
            let main_stats = match main {
                Ok(s) => Some(s),
                Err(why) => {
                    worker_stop.store(true, Ordering::Release);
                    failures.push((main_lcore.id(), why));
                    None
                }
            };
            for lcore in launched {
                match lcore_scope.wait(lcore) {
                    Some(0) | None => {}
                    Some(dpdk::JOB_PANICKED) => failures.push((lcore.id(), "panicked".into())),
                    Some(code) => failures.push((lcore.id(), format!("exit code {code}"))),
                }
            }
            let outcome = control
                .join()
                .unwrap_or_else(|p| Err(DirectorError::ControlThread(panic_text(&p))));
            Ok::<_, DirectorError>((main_stats, failures, outcome))
        })
    })?;

    shut_down(
        Ending {
            main_stats,
            failures,
            outcome,
        },
        ports,
        &shared,
        &names,
        &published,
        &ha,
    )
}

/// How the workers and the control thread ended.
struct Ending {
    /// The main lcore's worker's final counters (`None`: it panicked).
    main_stats: Option<Stats>,
    /// Workers that failed: (lcore, why).
    failures: Vec<(u32, String)>,
    /// The control thread's outcome.
    outcome: Result<(), DirectorError>,
}

/// After the workers: the instances' last words, the counters summed, the
/// ports stopped, and the summary (or the first failure).
fn shut_down(
    ending: Ending,
    mut ports: Vec<Port<'_>>,
    shared: &[Arc<Mutex<Stats>>],
    names: &[String],
    published: &Published,
    ha: &Ha,
) -> Result<Summary, DirectorError> {
    let Ending {
        main_stats,
        failures,
        outcome,
    } = ending;
    // The instances' last words (STOP), logged and notified.
    ha.poll();
    let mut total = main_stats.unwrap_or_else(|| Stats::new(ports.len()));
    for s in shared.iter().skip(1) {
        total.merge(&s.lock().unwrap_or_else(|p| p.into_inner()));
    }
    let conflicts = total.drops[DropReason::ArpConflict as usize];
    if let (true, Some(c)) = (conflicts > 0, total.last_conflict) {
        log::warn!(
            "{conflicts} ARP frame(s) during this run claimed the director's addresses; the last: {}",
            describe_conflict(&c, names)
        );
    }
    let port_stats: Vec<_> = ports
        .iter()
        .map(|p| p.stats().unwrap_or_default())
        .collect();
    for p in &mut ports {
        p.stop();
    }
    drop(ports);
    if let Some((lcore, reason)) = failures.into_iter().next() {
        return Err(DirectorError::Worker { lcore, reason });
    }
    outcome?;
    let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    let mut summary = Summary::new(&total, &names, &port_stats, &published.current().1);
    summary.vrrp = ha.status();
    Ok(summary)
}

/// Starts the EAL with `[dpdk] eal_args` (at log level notice unless
/// they say otherwise: its INFO lines drown the director's own).
fn start_eal(cfg: &Config) -> Result<Eal, DirectorError> {
    let mut eal_args = cfg.dpdk.eal_args.clone();
    if !eal_args.iter().any(|a| a.starts_with("--log-level")) {
        eal_args.insert(0, "--log-level=notice".into());
    }
    Eal::init(&eal_args).map_err(|err| DirectorError::Eal {
        args: cfg.dpdk.eal_args.clone(),
        err,
    })
}

/// A replay's frame count, with its input read and its output created;
/// `None` in a run.
fn replay_expected(mode: &Mode) -> Result<Option<u64>, DirectorError> {
    Ok(match mode {
        Mode::Run => None,
        Mode::Replay { input, output } => {
            let n = crate::pcap::count(input).map_err(|err| DirectorError::ReplayInput { err })?;
            for p in [input, output] {
                let s = p.display().to_string();
                if s.contains(',') || s.contains('=') {
                    return Err(DirectorError::ReplayOutput {
                        path: p.clone(),
                        reason: "the path may not contain ',' or '=' (DPDK device arguments)"
                            .into(),
                    });
                }
            }
            std::fs::File::create(output).map_err(|e| DirectorError::ReplayOutput {
                path: output.clone(),
                reason: e.to_string(),
            })?;
            Some(n as u64)
        }
    })
}

/// The first service table, from the rules as the health checks leave
/// them (servers start up, but a quorum may already be short), and the
/// registry of real-server ids it was built with.
fn first_services(sources: &Sources) -> Result<(Arc<ServiceTable>, Registry), DirectorError> {
    let cfg = &sources.config;
    let mut registry = Registry::default();
    let effective = super::health::Health::new(cfg.health.clone()).effective(&sources.rules);
    let mut table = ServiceTable::build(&effective, &cfg.marks, &mut registry)?;
    table.set_conn_flags(ConnFlags::from(&cfg.conn));
    let services = Arc::new(table);
    log_services(&services, cfg);
    Ok((services, registry))
}

/// Dynamic feedback's socket, in a run with `[feedback]` (bound once the
/// exception path is up: its address is the kernel's), and its interval.
fn feedback_socket(
    cfg: &Config,
    mode: &Mode,
) -> Result<Option<(std::net::UdpSocket, Duration)>, DirectorError> {
    Ok(match (&cfg.feedback, mode) {
        (Some(f), Mode::Run) => {
            let ferr = |e: std::io::Error| DirectorError::Feedback {
                listen: f.listen.to_string(),
                reason: e.to_string(),
            };
            let s = std::net::UdpSocket::bind(f.listen).map_err(ferr)?;
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .map_err(ferr)?;
            log::info!("feedback: load reports on udp {}", f.listen);
            Some((s, f.interval))
        }
        _ => None,
    })
}

/// The control threads' CPUs: `[dpdk] control_cpus`, or those of the
/// process's that poll no worker lcore.
fn control_cpus(
    eal: &Eal,
    lcores: &[Lcore],
    process_cpus: &[usize],
    cfg: &Config,
) -> Result<ControlCpus, DirectorError> {
    let mut worker_cpus: Vec<usize> = lcores.iter().flat_map(|&l| eal.lcore_cpus(l)).collect();
    worker_cpus.sort_unstable();
    worker_cpus.dedup();
    let control_cpus = cpus::choose(process_cpus, &worker_cpus, cfg.dpdk.control_cpus.as_deref())?;
    log_control_cpus(&control_cpus, &worker_cpus, cfg.dpdk.control_cpus.is_some());
    Ok(control_cpus)
}

/// The channels between the workers, and from worker 0 to the control
/// side; each worker takes its ends (`worker_setup`).
struct Wiring {
    /// Neighbour facts learned by one worker, for the others: one bounded
    /// inbox each.
    learned_tx: Vec<SyncSender<Learned>>,
    learned_rx: Vec<Option<Receiver<Learned>>>,
    /// Sync entries worker 0 receives for the others.
    sync_tx: Vec<SyncSender<SyncConn>>,
    sync_rx: Vec<Option<Receiver<SyncConn>>>,
    /// Worker 0's VRRP transitions.
    events_tx: SyncSender<crate::datapath::vrrp::Transition>,
}

impl Wiring {
    /// The channels of `workers` workers, and the receiving end of the
    /// VRRP transitions.
    fn new(workers: usize) -> (Wiring, Receiver<crate::datapath::vrrp::Transition>) {
        let (learned_tx, learned_rx) = (0..workers)
            .map(|_| {
                let (tx, rx) = sync_channel(1024);
                (tx, Some(rx))
            })
            .unzip();
        let (sync_tx, sync_rx) = (0..workers)
            .map(|_| {
                let (tx, rx) = sync_channel(4096);
                (tx, Some(rx))
            })
            .unzip();
        let (events_tx, events_rx) = sync_channel(256);
        let wiring = Wiring {
            learned_tx,
            learned_rx,
            sync_tx,
            sync_rx,
            events_tx,
        };
        (wiring, events_rx)
    }
}

/// What every worker's setup shares.
struct Common<'a> {
    pool: &'a Mempool<'a>,
    clock: Clock,
    tsc_hz: u64,
    publish_us: u64,
    stop: &'a AtomicBool,
    published: &'a Published,
    shared: &'a [Arc<Mutex<Stats>>],
    dumps: &'a [DumpSlot],
    idle_sleep_us: u64,
}

/// Worker `w`'s setup: queue `w` of every port and exception path, its
/// steering ring, its ends of the channels.
fn worker_setup<'a>(
    w: usize,
    ports: &'a [Port<'a>],
    kernel_ports: &'a [Option<Port<'a>>],
    rings: &'a [MbufRing<'a>],
    wiring: &mut Wiring,
    c: &Common<'a>,
) -> Result<WorkerSetup<'a>, DirectorError> {
    let q = w as u16;
    let workers = wiring.learned_tx.len();
    Ok(WorkerSetup {
        index: w,
        rx: ports
            .iter()
            .map(|p| p.rx_queue(q))
            .collect::<Result<_, _>>()?,
        tx: ports
            .iter()
            .map(|p| p.tx_queue(q))
            .collect::<Result<_, _>>()?,
        pool: c.pool,
        clock: c.clock,
        tsc_hz: c.tsc_hz,
        flush_us: FLUSH_US,
        publish_us: c.publish_us,
        stop: c.stop,
        services: c.published,
        shared: Arc::clone(&c.shared[w]),
        dump: &c.dumps[w],
        peers: wiring
            .learned_tx
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != w)
            .map(|(_, s)| s.clone())
            .collect(),
        inbox: wiring.learned_rx[w].take().expect("one inbox per worker"),
        port_ids: ports.iter().map(|p| p.id()).collect(),
        kernel_rx: kernel_ports
            .iter()
            .map(|p| p.as_ref().map(|p| p.rx_queue(q)).transpose())
            .collect::<Result<_, _>>()?,
        kernel_tx: kernel_ports
            .iter()
            .map(|p| p.as_ref().map(|p| p.tx_queue(q)).transpose())
            .collect::<Result<_, _>>()?,
        steer: (workers > 1).then(|| Steering {
            to: rings.iter().map(|r| r.sender()).collect(),
            from: rings[w].receiver().expect("one receiver per ring"),
        }),
        events: (w == 0).then(|| wiring.events_tx.clone()),
        sync_to: wiring
            .sync_tx
            .iter()
            .enumerate()
            .map(|(j, tx)| (j != w).then(|| tx.clone()))
            .collect(),
        sync_from: wiring.sync_rx[w].take(),
        idle_sleep_us: c.idle_sleep_us,
    })
}

/// Starts the control thread (metrics, link logging, the stop condition)
/// on the control CPUs, and waits until its metrics exporter is up.
fn spawn_control<'scope>(
    threads: &'scope std::thread::Scope<'scope, '_>,
    control: Control<'scope>,
    cpus: &[usize],
    cfg: &'scope Config,
    lcore_ids: &'scope [u32],
) -> Result<std::thread::ScopedJoinHandle<'scope, Result<(), DirectorError>>, DirectorError> {
    let (ready_tx, ready_rx) = sync_channel::<Result<(), DirectorError>>(1);
    let metrics = cfg.metrics.map(|m| m.listen);
    let capacity = cfg.conn.capacity;
    let cpus = cpus.to_vec();
    let interfaces = &cfg.interfaces;
    let handle = std::thread::Builder::new()
        .name("dlvs-control".into())
        .spawn_scoped(threads, move || {
            let publisher = match control_start(&cpus, metrics, interfaces, lcore_ids, capacity) {
                Ok(p) => p,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return Ok(());
                }
            };
            let _ = ready_tx.send(Ok(()));
            control.run(publisher)
        })
        .map_err(|e| DirectorError::ControlThread(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(DirectorError::ControlThread("ended at start".into())),
    }
}

/// Launches workers 1.. on their lcores (`setups` after worker 0's, in
/// order), each with the engine `engine` builds for it; returns the lcores
/// launched. On a failure the caller stops those already running.
fn launch_workers<'a>(
    lcore_scope: &dpdk::LcoreScope<'a>,
    setups: impl Iterator<Item = WorkerSetup<'a>>,
    lcores: &[Lcore],
    exited: &'a [AtomicBool],
    engine: impl Fn(usize) -> Engine<dpdk::Mbuf<'a>>,
) -> Result<Vec<Lcore>, DirectorError> {
    let mut launched = Vec::new();
    for ((w, setup), &lcore) in setups.enumerate().map(|(i, s)| (i + 1, s)).zip(lcores) {
        let engine = engine(w);
        let flag = &exited[w];
        let job = move || {
            let _exit = ExitFlag(flag);
            if injected_panic(w) {
                panic!("injected fault: DLVS_TEST_FAULT=worker-panic:{w}");
            }
            worker::run(engine, setup);
            0
        };
        lcore_scope.launch(lcore, job)?;
        launched.push(lcore);
    }
    Ok(launched)
}

/// Runs worker 0 on the main lcore, a panic caught (and said) as the other
/// lcores' trampoline catches theirs.
fn run_main_worker<'a>(
    engine: Engine<dpdk::Mbuf<'a>>,
    setup: WorkerSetup<'a>,
    exited: &AtomicBool,
) -> Result<Stats, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _exit = ExitFlag(exited);
        if injected_panic(0) {
            panic!("injected fault: DLVS_TEST_FAULT=worker-panic:0");
        }
        worker::run(engine, setup)
    }))
    .map_err(|p| panic_text(&p))
}

/// What the control-plane helper threads share with the director.
struct Helpers<'a> {
    cfg: &'a Config,
    mode: &'a Mode,
    /// The control CPUs they run on.
    cpus: &'a [usize],
    admin: &'a Mutex<Admin>,
    published: &'a Published,
    /// Set when the workers stop: the helpers stop too.
    stop: &'a AtomicBool,
    draining: &'a Arc<AtomicBool>,
    shared: &'a [Arc<Mutex<Stats>>],
    dumps: &'a [DumpSlot],
}

/// Starts a named control-plane thread on the control CPUs.
fn spawn_off<'scope, F>(
    threads: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    cpus: &[usize],
    f: F,
) -> Result<(), DirectorError>
where
    F: FnOnce() + Send + 'scope,
{
    let cpus = cpus.to_vec();
    std::thread::Builder::new()
        .name(name.into())
        .spawn_scoped(threads, move || {
            off_the_workers(&cpus);
            f()
        })
        .map(|_| ())
        .map_err(|e| DirectorError::ControlThread(e.to_string()))
}

/// The helper threads of a run, each until the workers stop: the health
/// checker (each check in a thread of its own: one blocks for its connect
/// timeout), the `[bgp]` speaker's keeper, dynamic feedback (load reports
/// in, weights moved each interval), and the admin thread answering
/// dlvsadm.
fn spawn_helpers<'scope>(
    threads: &'scope std::thread::Scope<'scope, '_>,
    h: &Helpers<'scope>,
    listener: Option<super::admin::Bound>,
    feedback: Option<(std::net::UdpSocket, Duration)>,
) -> Result<(), DirectorError> {
    let Mode::Run = h.mode else {
        return Ok(());
    };
    let (admin, published, stop) = (h.admin, h.published, h.stop);
    spawn_off(threads, "dlvs-health", h.cpus, move || {
        health_loop(admin, published, stop)
    })?;
    if let Some(b) = &h.cfg.bgp {
        let (b, socket, draining) = (b.clone(), h.cfg.control.socket.clone(), h.draining);
        spawn_off(threads, "dlvs-bgp", h.cpus, move || {
            bgp_loop(b, &socket, admin, draining, stop)
        })?;
    }
    if let Some((socket, interval)) = feedback {
        spawn_off(threads, "dlvs-feedback", h.cpus, move || {
            feedback_loop(&socket, interval, admin, published, stop)
        })?;
    }
    if let Some(listener) = listener {
        let (stats, dumps) = (h.shared, h.dumps);
        spawn_off(threads, "dlvs-admin", h.cpus, move || {
            let live = Live {
                published,
                stats,
                dumps,
            };
            super::admin::serve(listener, admin, &live, stop);
        })?;
        log::info!(
            "control socket {} (dlvsadm --socket {0})",
            h.cfg.control.socket.display()
        );
    }
    Ok(())
}

/// A probed device and its spec.
type Probed<'e> = (Device<'e>, String);

/// The devices of the interfaces and of their exception paths (a net_tap
/// each, in a run only), and the buffers they need: `[dpdk] mbufs` is
/// checked against them (the count depends on their descriptor limits).
#[allow(clippy::type_complexity)]
fn probe_devices<'e>(
    eal: &'e Eal,
    cfg: &Config,
    mode: &Mode,
    workers: usize,
) -> Result<(Vec<Probed<'e>>, Vec<Option<Probed<'e>>>, Budget), DirectorError> {
    let mut devices = Vec::with_capacity(cfg.interfaces.len());
    let mut kernel_devices = Vec::with_capacity(cfg.interfaces.len());
    let (mut rx_desc, mut tx_desc) = (0u16, 0u16);
    for (i, itf) in cfg.interfaces.iter().enumerate() {
        let spec = match (mode, i) {
            (Mode::Replay { input, output }, 0) => replay_device(input, output),
            _ => itf.device.clone(),
        };
        let ierr = |err| interface_error(itf, &spec, err);
        let dev = Device::probe(eal, &spec).map_err(ierr)?;
        let (r, t) = dev
            .adjust_desc(cfg.dpdk.rx_desc, cfg.dpdk.tx_desc)
            .map_err(ierr)?;
        rx_desc = rx_desc.max(r);
        tx_desc = tx_desc.max(t);
        devices.push((dev, spec));
        kernel_devices.push(match (mode, &itf.kernel) {
            (Mode::Run, Some(name)) => {
                let spec = format!("net_tap_dlvsk{i},iface={name}");
                let kerr = |err| interface_error(itf, &spec, err);
                let dev = Device::probe(eal, &spec).map_err(kerr)?;
                dev.adjust_desc(KERNEL_DESC, KERNEL_DESC).map_err(kerr)?;
                Some((dev, spec))
            }
            (Mode::Replay { .. }, Some(name)) => {
                log::info!(
                    "interface {}: no exception path in a replay (kernel = {name:?} ignored)",
                    itf.name
                );
                None
            }
            (_, None) => None,
        });
    }
    let need = Budget {
        ports: devices.len(),
        kernel_ports: kernel_devices.iter().flatten().count(),
        rx_desc: rx_desc as usize,
        tx_desc: tx_desc as usize,
        workers,
        cache: mbuf_budget::cache_size(cfg.dpdk.mbufs) as usize,
        hold_queue: cfg.arp.queue,
        steer_ring: if workers > 1 {
            STEER_RING as usize - 1
        } else {
            0
        },
    };
    if (cfg.dpdk.mbufs as u64) < need.needed() {
        return Err(DirectorError::Mbufs {
            have: cfg.dpdk.mbufs,
            need: need.needed(),
            explain: need.explain(),
        });
    }
    Ok((devices, kernel_devices, need))
}

/// Configures and starts each exception path's tap with its interface's
/// MAC (the net_tap driver gives the kernel side the same), queues like
/// the data ports', then gives the kernel interface the interface's
/// addresses and the routes through it, and brings it up.
fn kernel_taps<'e, 'p>(
    devices: Vec<Option<Probed<'e>>>,
    pool: &'p Mempool<'e>,
    cfg: &Config,
    macs: &[MacAddr],
    workers: usize,
    socket: i32,
) -> Result<Vec<Option<Port<'p>>>, DirectorError> {
    let mut ports = Vec::with_capacity(devices.len());
    for (i, dev) in devices.into_iter().enumerate() {
        let Some((dev, spec)) = dev else {
            ports.push(None);
            continue;
        };
        let itf = &cfg.interfaces[i];
        let ierr = |err| interface_error(itf, &spec, err);
        let pc = PortConfig {
            rx_queues: workers as u16,
            tx_queues: workers as u16,
            rx_desc: KERNEL_DESC,
            tx_desc: KERNEL_DESC,
            mtu: itf.mtu,
        };
        let mut port = dev.configure(&pc, pool, socket).map_err(ierr)?;
        port.set_mac(macs[i].0).map_err(ierr)?;
        port.start().map_err(ierr)?;
        let name = itf.kernel.as_deref().unwrap_or_default();
        super::exception_path::configure(name, itf, &cfg.routes, i).map_err(|reason| {
            DirectorError::Kernel {
                interface: itf.name.clone(),
                kernel: name.to_owned(),
                reason,
            }
        })?;
        log::info!(
            "interface {}: exception path {name} (port {}), MAC {}, addresses {}",
            itf.name,
            port.id(),
            macs[i],
            itf.addresses
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        ports.push(Some(port));
    }
    Ok(ports)
}

/// Configures each device into a port on `pool` (one RX/TX queue per
/// worker, the interface's MTU), programs its MAC if configured, starts
/// it; returns the ports and the MAC each uses.
fn configure_ports<'e, 'p>(
    devices: Vec<(Device<'e>, String)>,
    pool: &'p Mempool<'e>,
    cfg: &Config,
    mode: &Mode,
    workers: usize,
    socket: i32,
) -> Result<(Vec<Port<'p>>, Vec<MacAddr>), DirectorError> {
    let mut ports = Vec::with_capacity(devices.len());
    let mut macs = Vec::with_capacity(devices.len());
    for (i, ((dev, spec), itf)) in devices.into_iter().zip(&cfg.interfaces).enumerate() {
        let ierr = |err| interface_error(itf, &spec, err);
        let pc = PortConfig {
            rx_queues: workers as u16,
            tx_queues: workers as u16,
            rx_desc: cfg.dpdk.rx_desc,
            tx_desc: cfg.dpdk.tx_desc,
            mtu: itf.mtu,
        };
        let mut port = dev.configure(&pc, pool, socket).map_err(ierr)?;
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
        // VRRP adverts and sync messages are multicast; dlvsadm may start
        // a sync daemon on any interface.
        if let Err(e) = port.allmulticast() {
            log::info!(
                "interface {}: all-multicast not set ({e}); VRRP and sync rely on the device's default",
                itf.name
            );
        }
        port.start().map_err(ierr)?;
        let mac = match itf.mac {
            Some(m) => m,
            None => MacAddr(port.mac().map_err(ierr)?),
        };
        log::info!(
            "interface {} on {} (port {}): MAC {mac}, MTU {}, {} queue(s), addresses {}",
            itf.name,
            dev_name(&spec),
            port.id(),
            itf.mtu,
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
    Ok((ports, macs))
}

/// One line on the services, and a warning for each virtual address that
/// is not one of the director's: nothing answers ARP for it, so traffic
/// reaches it only if routed to the director.
fn log_services(services: &ServiceTable, cfg: &Config) {
    if services.is_empty() {
        log::info!("no virtual services (give a rules file with --rules)");
        return;
    }
    let dests: usize = services.services().iter().map(|s| s.dests.len()).sum();
    log::info!(
        "{} virtual service(s), {dests} real server(s)",
        services.services().len()
    );
    for s in services.services() {
        if let ServiceKey::Addr { addr, .. } = s.key {
            let own = cfg
                .interfaces
                .iter()
                .any(|i| i.addresses.iter().any(|a| a.addr == addr))
                || cfg.vrrp.iter().any(|v| v.addresses.contains(&addr));
            if !own {
                log::warn!(
                    "rules line {}: {addr} is not an address of any [[interface]] or [[vrrp]] instance; the director answers no ARP for it",
                    s.line
                );
            }
        }
    }
}

/// Pins a control-plane thread to the control CPUs: threads spawned from
/// the main thread inherit its lcore's pinning, the first worker's CPU.
fn off_the_workers(cpus: &[usize]) {
    if let Err(e) = dpdk::thread::set_affinity(cpus) {
        log::warn!("a control thread stays on the workers' CPUs: {e}");
    }
}

/// Takes load reports from `socket` and moves the weights every
/// `interval`, until `stop`.
fn feedback_loop(
    socket: &std::net::UdpSocket,
    interval: Duration,
    admin: &Mutex<Admin>,
    published: &Published,
    stop: &AtomicBool,
) {
    let mut buf = [0u8; 512];
    let mut next = Instant::now() + interval;
    while !stop.load(Ordering::Acquire) {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            match (super::feedback::parse_report(&text), from.ip()) {
                (Some(load), std::net::IpAddr::V4(ip)) => admin
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .feedback_report(ip, load),
                _ => log::debug!("feedback: {from} sent {:?}, not `load VALUE`", text.trim()),
            }
        }
        if Instant::now() >= next {
            next += interval;
            admin
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .feedback_tick(published);
        }
    }
}

/// The `[bgp]` speaker's keeper: every 0.2 s the announced set (none while
/// draining) is worked out and the speaker told when it changed, and a
/// dead speaker restarted; it stops with the workers.
fn bgp_loop(
    cfg: crate::config::BgpConfig,
    socket: &std::path::Path,
    admin: &Mutex<Admin>,
    draining: &AtomicBool,
    stop: &AtomicBool,
) {
    let mut speaker = crate::control::bgp::speaker::Speaker::new(cfg, socket);
    let mut last_error = String::new();
    while !stop.load(Ordering::Acquire) {
        let vips = if draining.load(Ordering::Acquire) {
            Vec::new()
        } else {
            admin
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .announced_vips()
        };
        metrics::gauge!("dlvs_bgp_draining").set(if draining.load(Ordering::Acquire) {
            1.0
        } else {
            0.0
        });
        metrics::gauge!("dlvs_bgp_announced_routes").set(vips.len() as f64);
        match speaker.announce(vips) {
            Ok(()) => last_error.clear(),
            Err(e) => {
                let e = e.to_string();
                if e != last_error {
                    log::error!("bgp: {e}");
                    last_error = e;
                }
            }
        }
        speaker.supervise();
        std::thread::sleep(Duration::from_millis(200));
    }
    speaker.stop();
}

/// Starts the due health checks and applies their results, until `stop`.
fn health_loop(admin: &Mutex<Admin>, published: &Published, stop: &AtomicBool) {
    let (tx, rx) = std::sync::mpsc::channel();
    while !stop.load(Ordering::Acquire) {
        let jobs = admin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .health_due(Instant::now());
        for job in jobs {
            let tx = tx.clone();
            let spawned = std::thread::Builder::new()
                .name("dlvs-check".into())
                .spawn(move || {
                    let r = super::health::check::run(&job.check, job.addr, job.port, job.timeout);
                    let _ = tx.send((job, r));
                });
            if let Err(e) = spawned {
                log::warn!("health: cannot start a check thread: {e}");
            }
        }
        while let Ok((job, result)) = rx.try_recv() {
            admin
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .health_report(&job, result, published);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn interface_error(itf: &Interface, spec: &str, err: dpdk::DpdkError) -> DirectorError {
    DirectorError::Interface {
        name: itf.name.clone(),
        device: spec.to_owned(),
        err,
    }
}

/// A panic's message, as far as it is text.
fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text payload".into());
    format!("panicked: {msg}")
}

/// One line on where the control threads run (a warning when they share
/// CPUs with workers).
fn log_control_cpus(c: &ControlCpus, workers: &[usize], configured: bool) {
    let list = format_cpu_list(&c.cpus);
    if c.shared.is_empty() {
        log::info!(
            "control threads on CPU(s) {list}; workers on CPU(s) {}",
            format_cpu_list(workers)
        );
    } else if configured {
        log::warn!(
            "control threads on CPU(s) {list} ([dpdk] control_cpus) share CPU(s) {} with polling workers: a busy control side takes cycles from packet processing",
            format_cpu_list(&c.shared)
        );
    } else {
        log::warn!(
            "every CPU this process may use runs a worker: control threads share CPU(s) {list} with polling workers, so a busy control side takes cycles from packet processing (leave a CPU out of the EAL's -l, or set [dpdk] control_cpus)"
        );
    }
}

/// The control thread's start: move to the control CPUs, then start the
/// metrics exporter (whose threads inherit them).
fn control_start(
    cpus: &[usize],
    metrics: Option<SocketAddr>,
    interfaces: &[Interface],
    lcores: &[u32],
    capacity: usize,
) -> Result<Option<MetricsPublisher>, DirectorError> {
    dpdk::thread::set_affinity(cpus)?;
    metrics
        .map(|listen| {
            MetricsPublisher::install(listen, interfaces, lcores, capacity).map_err(|reason| {
                DirectorError::Metrics {
                    listen: listen.to_string(),
                    reason,
                }
            })
        })
        .transpose()
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
fn log_link_changes(ports: &[PortMonitor<'_>], names: &[String], seen: &mut [Option<bool>]) {
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
struct Control<'a> {
    ports: Vec<PortMonitor<'a>>,
    /// Interface names, by port.
    names: Vec<String>,
    shared: Vec<Arc<Mutex<Stats>>>,
    /// Set by SIGINT/SIGTERM.
    signalled: Arc<AtomicBool>,
    /// Set to stop the workers (here, or by the main thread on a failure).
    worker_stop: &'a AtomicBool,
    /// Set as each worker ends.
    exited: &'a [AtomicBool],
    /// Each worker's lcore id.
    lcores: &'a [u32],
    /// Where new snapshots of the services go.
    published: &'a Published,
    /// The rules, which SIGHUP reloads.
    admin: &'a Mutex<Admin>,
    /// The VRRP instances' transitions.
    ha: &'a Ha,
    /// With `[bgp]`: set on SIGTERM (the routes are withdrawn), and how
    /// long the director then goes on forwarding.
    drain: Option<(&'a AtomicBool, Duration)>,
    /// Set by SIGHUP.
    hup: Arc<AtomicBool>,
    /// Replay: the number of frames in the input.
    expected: Option<u64>,
    period: Duration,
}

impl Control<'_> {
    /// Publishes metrics and logs link changes until a signal (run), the
    /// input is drained (replay), or a worker ends on its own (a failure);
    /// then stops the workers.
    fn run(self, mut metrics: Option<MetricsPublisher>) -> Result<(), DirectorError> {
        let Control {
            ports,
            names,
            shared,
            signalled,
            worker_stop,
            exited,
            lcores,
            published,
            admin,
            ha,
            drain,
            hup,
            expected,
            period,
        } = self;
        let mut drain_until: Option<Instant> = None;

        let mut last_progress = (0u64, Instant::now());
        let stall = Duration::from_secs(10);
        let mut links: Vec<Option<bool>> = vec![None; ports.len()];
        let mut conflicts = ConflictLog::default();
        let result = loop {
            log_link_changes(&ports, &names, &mut links);
            conflicts.check(&shared, &names);
            ha.poll();
            if let Some(m) = metrics.as_mut() {
                m.publish(&ports, &shared);
                m.publish_vrrp(&ha.status());
                let live = Live {
                    published,
                    stats: &shared,
                    dumps: &[],
                };
                let view = admin
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .metrics_view(&live);
                m.publish_services(&view);
            }
            if worker_stop.load(Ordering::Acquire) {
                // The main thread stopped everything after a failure.
                break Ok(());
            }
            {
                let mut a = admin.lock().unwrap_or_else(|p| p.into_inner());
                if hup.swap(false, Ordering::AcqRel) {
                    a.reload(published);
                }
                a.tick(&shared);
            }
            if let Some(w) = exited.iter().position(|e| e.load(Ordering::Acquire)) {
                let lcore = lcores[w];
                log::error!("the worker on lcore {lcore} ended on its own; stopping the director");
                break Err(DirectorError::Worker {
                    lcore,
                    reason: "ended before it was asked to stop".into(),
                });
            }
            if let (true, Some((flag, how_long)), None) =
                (signalled.load(Ordering::Relaxed), drain, drain_until)
            {
                // [bgp]: the routes go first; forwarding goes on while the
                // routers converge.
                flag.store(true, Ordering::Release);
                drain_until = Some(Instant::now() + how_long);
                log::info!(
                    "stopping: routes withdrawn, forwarding for {:.1} s more ([bgp] drain_s)",
                    how_long.as_secs_f64()
                );
            }
            if drain_until.is_some_and(|t| Instant::now() < t) {
                std::thread::sleep(period.min(Duration::from_millis(100)));
                continue;
            }
            if signalled.load(Ordering::Relaxed) {
                break match expected {
                    Some(_) => Err(DirectorError::Interrupted),
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
                    break Err(DirectorError::ReplayStalled {
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
