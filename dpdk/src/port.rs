//! Ethdev ports and their queues.
//!
//! A [`Port`] is attached by device spec (a vdev such as
//! `net_tap0,iface=dlvs0` or a PCI address), configured with one RX and one
//! TX queue per worker, and started. Each queue is handed out once, as an
//! [`RxQueue`] or [`TxQueue`] that a single worker owns: DPDK's burst
//! functions are not thread-safe per queue, and the type system keeps it so.
//! Queue handles keep the port alive; the port is stopped and closed when
//! the last handle and the `Port` itself are gone.

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{strerror, DpdkError};
use crate::ffi;
use crate::{Mbuf, Mempool, BURST};

/// How to configure a port.
#[derive(Debug, Clone)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
        }
    }
}

/// Port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// RX packets dropped by the hardware (queue full).
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

#[derive(Debug)]
struct PortInner {
    id: u16,
    name: String,
    taken_rx: AtomicU64,
    taken_tx: AtomicU64,
    started: std::sync::atomic::AtomicBool,
}

impl Drop for PortInner {
    fn drop(&mut self) {
        // SAFETY: no queue handle is left (they hold the Arc), so no worker
        // is polling; stop and close are valid on a configured port.
        unsafe {
            if self.started.load(Ordering::SeqCst) {
                ffi::rte_eth_dev_stop(self.id);
            }
            ffi::rte_eth_dev_close(self.id);
        }
    }
}

/// An attached ethdev port.
#[derive(Debug, Clone)]
pub struct Port {
    inner: Arc<PortInner>,
}

fn port_err(port: u16, call: &'static str, rc: i32) -> DpdkError {
    DpdkError::Port {
        port,
        call,
        reason: strerror(rc),
    }
}

impl Port {
    /// Probes the device named by `spec` (vdev spec or PCI address) and
    /// returns its port. The EAL must be initialised.
    pub fn attach(_eal: &crate::Eal, spec: &str) -> Result<Port, DpdkError> {
        let cspec = CString::new(spec).map_err(|_| DpdkError::NulInArgument(spec.to_owned()))?;
        // SAFETY: cspec is a valid C string for the duration of the call.
        let rc = unsafe { ffi::rte_dev_probe(cspec.as_ptr()) };
        // -EEXIST: already probed (e.g. a PCI device the EAL scanned).
        if rc < 0 && rc != -eexist() {
            return Err(DpdkError::Call {
                call: "rte_dev_probe",
                reason: format!("{spec}: {}", strerror(rc)),
            });
        }
        let name = spec.split(',').next().unwrap_or(spec);
        let cname = CString::new(name).map_err(|_| DpdkError::NulInArgument(name.to_owned()))?;
        let mut id: u16 = 0;
        // SAFETY: cname is valid; id is a valid out-pointer.
        let rc = unsafe { ffi::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(DpdkError::NoSuchPort(name.to_owned()));
        }
        Ok(Port {
            inner: Arc::new(PortInner {
                id,
                name: name.to_owned(),
                taken_rx: AtomicU64::new(0),
                taken_tx: AtomicU64::new(0),
                started: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    pub fn id(&self) -> u16 {
        self.inner.id
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Configures queues (RSS across RX queues when there are several),
    /// sets them up on `pool`. Call once, before `start`: some devices
    /// (net_pcap with infinite_rx) consume their input at queue setup.
    pub fn configure(
        &self,
        conf: &PortConfig,
        pool: &Mempool,
        socket: i32,
    ) -> Result<(), DpdkError> {
        let id = self.inner.id;
        if conf.rx_queues as u32 > 64 || conf.tx_queues as u32 > 64 {
            return Err(DpdkError::Port {
                port: id,
                call: "configure",
                reason: "more than 64 queues".into(),
            });
        }
        let mut info = ffi::rte_eth_dev_info::default();
        // SAFETY: info is a valid out-pointer; id names a probed port.
        let rc = unsafe { ffi::rte_eth_dev_info_get(id, &mut info) };
        if rc != 0 {
            return Err(port_err(id, "rte_eth_dev_info_get", rc));
        }
        if conf.rx_queues > info.max_rx_queues || conf.tx_queues > info.max_tx_queues {
            return Err(DpdkError::Port {
                port: id,
                call: "configure",
                reason: format!(
                    "{} RX / {} TX queues asked, the device has at most {} / {}",
                    conf.rx_queues, conf.tx_queues, info.max_rx_queues, info.max_tx_queues
                ),
            });
        }
        let mut eth_conf = ffi::rte_eth_conf::default();
        // SAFETY: returns a constant.
        let rss_hf = unsafe { ffi::dlvs_rss_hf_l3_l4() };
        if conf.rx_queues > 1 && info.flow_type_rss_offloads & rss_hf != 0 {
            eth_conf.rxmode.mq_mode = ffi::RTE_ETH_MQ_RX_RSS;
            eth_conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads & rss_hf;
        }
        // SAFETY: eth_conf is a valid, fully initialised configuration.
        let rc =
            unsafe { ffi::rte_eth_dev_configure(id, conf.rx_queues, conf.tx_queues, &eth_conf) };
        if rc != 0 {
            return Err(port_err(id, "rte_eth_dev_configure", rc));
        }
        let (mut nrx, mut ntx) = (conf.rx_desc, conf.tx_desc);
        // SAFETY: valid in/out pointers.
        let rc = unsafe { ffi::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nrx, &mut ntx) };
        if rc != 0 {
            return Err(port_err(id, "rte_eth_dev_adjust_nb_rx_tx_desc", rc));
        }
        for q in 0..conf.rx_queues {
            // SAFETY: the port is configured with this many queues; null conf
            // means the driver default; the pool outlives the port (contract).
            let rc = unsafe {
                ffi::rte_eth_rx_queue_setup(
                    id,
                    q,
                    nrx,
                    socket as u32,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(port_err(id, "rte_eth_rx_queue_setup", rc));
            }
        }
        for q in 0..conf.tx_queues {
            // SAFETY: as above.
            let rc =
                unsafe { ffi::rte_eth_tx_queue_setup(id, q, ntx, socket as u32, std::ptr::null()) };
            if rc != 0 {
                return Err(port_err(id, "rte_eth_tx_queue_setup", rc));
            }
        }
        Ok(())
    }

    /// Programs the port's MAC address. Some virtual devices (net_pcap)
    /// refuse; the port stays usable with its own.
    pub fn set_mac(&self, mac: [u8; 6]) -> Result<(), DpdkError> {
        let mut addr = ffi::rte_ether_addr { addr_bytes: mac };
        // SAFETY: addr is a valid ether address for the call.
        let rc = unsafe { ffi::rte_eth_dev_default_mac_addr_set(self.inner.id, &mut addr) };
        if rc != 0 {
            return Err(port_err(
                self.inner.id,
                "rte_eth_dev_default_mac_addr_set",
                rc,
            ));
        }
        Ok(())
    }

    /// Starts the port.
    pub fn start(&self) -> Result<(), DpdkError> {
        // SAFETY: starting a configured port.
        let rc = unsafe { ffi::rte_eth_dev_start(self.inner.id) };
        if rc != 0 {
            return Err(port_err(self.inner.id, "rte_eth_dev_start", rc));
        }
        self.inner.started.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Stops the port (queues stop receiving). Idempotent.
    pub fn stop(&self) {
        if self.inner.started.swap(false, Ordering::SeqCst) {
            // SAFETY: the port was started.
            unsafe {
                ffi::rte_eth_dev_stop(self.inner.id);
            }
        }
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6], DpdkError> {
        let mut addr = ffi::rte_ether_addr::default();
        // SAFETY: addr is a valid out-pointer.
        let rc = unsafe { ffi::rte_eth_macaddr_get(self.inner.id, &mut addr) };
        if rc != 0 {
            return Err(port_err(self.inner.id, "rte_eth_macaddr_get", rc));
        }
        Ok(addr.addr_bytes)
    }

    /// Link state without waiting.
    pub fn link(&self) -> LinkInfo {
        let mut link = ffi::rte_eth_link::default();
        // SAFETY: link is a valid out-pointer.
        unsafe {
            ffi::rte_eth_link_get_nowait(self.inner.id, &mut link);
        }
        LinkInfo {
            up: link.link_status() != 0,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() != 0,
        }
    }

    /// Port counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = ffi::rte_eth_stats::default();
        // SAFETY: s is a valid out-pointer.
        let rc = unsafe { ffi::rte_eth_stats_get(self.inner.id, &mut s) };
        if rc != 0 {
            return Err(port_err(self.inner.id, "rte_eth_stats_get", rc));
        }
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Takes RX queue `q` (each queue once).
    pub fn rx_queue(&self, q: u16) -> Option<RxQueue> {
        take(&self.inner.taken_rx, q).then(|| RxQueue {
            port: self.clone(),
            id: self.inner.id,
            queue: q,
        })
    }

    /// Takes TX queue `q` (each queue once).
    pub fn tx_queue(&self, q: u16) -> Option<TxQueue> {
        take(&self.inner.taken_tx, q).then(|| TxQueue {
            _port: self.clone(),
            id: self.inner.id,
            queue: q,
            pending: [std::ptr::null_mut(); BURST],
            len: 0,
            sent: 0,
            dropped: 0,
        })
    }
}

fn eexist() -> i32 {
    // SAFETY: returns a constant.
    unsafe { ffi::dlvs_eexist() }
}

fn take(mask: &AtomicU64, q: u16) -> bool {
    if q >= 64 {
        return false;
    }
    let bit = 1u64 << q;
    mask.fetch_or(bit, Ordering::SeqCst) & bit == 0
}

/// One RX queue of a port, owned by one worker.
#[derive(Debug)]
pub struct RxQueue {
    port: Port,
    id: u16,
    queue: u16,
}

impl RxQueue {
    pub fn port(&self) -> &Port {
        &self.port
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to [`BURST`] packets, appending them to `out` (which
    /// should have capacity for them: no allocation then). Chained mbufs
    /// are linearised; one that cannot be is freed and counted in the
    /// return value's second element.
    #[inline]
    pub fn burst(&mut self, out: &mut Vec<Mbuf>) -> (usize, usize) {
        let mut raw = [std::ptr::null_mut::<ffi::rte_mbuf>(); BURST];
        // SAFETY: raw has room for BURST pointers; this handle is the only
        // user of (port, queue), so the call is not concurrent on the queue.
        let n = unsafe { ffi::dlvs_rx_burst(self.id, self.queue, raw.as_mut_ptr(), BURST as u16) }
            as usize;
        let mut bad = 0;
        for &p in &raw[..n] {
            // SAFETY: the PMD returned n valid mbufs that we now own.
            let mut m = unsafe { Mbuf::from_raw(std::ptr::NonNull::new_unchecked(p)) };
            if m.linearize() {
                out.push(m);
            } else {
                bad += 1;
            }
        }
        (n, bad)
    }
}

/// One TX queue of a port with its burst buffer, owned by one worker.
/// Packets are queued with [`TxQueue::push`] and sent when BURST are
/// pending or on [`TxQueue::flush`]; whatever the device refuses is freed
/// and counted in `dropped`.
#[derive(Debug)]
pub struct TxQueue {
    _port: Port,
    id: u16,
    queue: u16,
    pending: [*mut ffi::rte_mbuf; BURST],
    len: usize,
    /// Packets the device accepted.
    pub sent: u64,
    /// Packets the device refused (freed).
    pub dropped: u64,
}

// SAFETY: the pending pointers are mbufs this TxQueue owns exclusively;
// moving the owner to another thread moves that ownership with it.
unsafe impl Send for TxQueue {}

impl TxQueue {
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Packets waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Queues a packet; sends the buffer if it is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) {
        self.pending[self.len] = m.into_raw();
        self.len += 1;
        if self.len == BURST {
            self.flush();
        }
    }

    /// Sends everything pending.
    #[inline]
    pub fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: pending[..len] are owned mbufs; the PMD takes ownership of
        // the first `sent` of them; this handle is the queue's only user.
        let sent = unsafe {
            ffi::dlvs_tx_burst(
                self.id,
                self.queue,
                self.pending.as_mut_ptr(),
                self.len as u16,
            )
        } as usize;
        for &p in &self.pending[sent..self.len] {
            // SAFETY: the device refused these; they are still ours to free.
            unsafe { ffi::dlvs_pktmbuf_free(p) };
        }
        self.sent += sent as u64;
        self.dropped += (self.len - sent) as u64;
        self.len = 0;
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        for &p in &self.pending[..self.len] {
            // SAFETY: never-sent mbufs we own.
            unsafe { ffi::dlvs_pktmbuf_free(p) };
        }
    }
}
