//! Ethdev devices, ports and their queues.
//!
//! The life of a port, with the borrow checker keeping the order:
//!
//! 1. [`Device::probe`] attaches a device by spec (a vdev such as
//!    `net_tap0,iface=dlvs0` or a PCI address); [`Device::info`] and
//!    [`Device::adjust_desc`] tell what it can do before any buffer exists.
//! 2. [`Device::configure`] sets up its queues on a [`Mempool`], programs
//!    the MTU and turns it into a [`Port`], which borrows the pool.
//! 3. `&mut Port` starts, stops and sets the MAC. Queue handles
//!    ([`RxQueue`], [`TxQueue`], each handed out once and only for a queue
//!    that was configured) and [`PortMonitor`]s (stats, link, MAC: what a
//!    control thread may read while workers poll) borrow the port, so the
//!    port cannot be stopped, reconfigured or closed while a worker polls it.
//! 4. Dropping the port stops and closes it.

use std::ffi::CString;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::{DpdkError, Errno};
use crate::{ffi, Eal, Mbuf, Mempool, BURST};

/// Bytes a frame adds to its MTU in a buffer: Ethernet header, one VLAN
/// tag and the CRC some devices leave in place.
pub const FRAME_OVERHEAD: u16 = 14 + 4 + 4;

/// Queues a port may have (the queue-taken masks are 64 bits).
pub const MAX_QUEUES: u16 = 64;

/// How to configure a port.
#[derive(Debug, Clone)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// The IP MTU; frames up to `mtu` + 14 bytes are received and sent.
    pub mtu: u16,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            mtu: 1500,
        }
    }
}

/// What a device says it can do (`rte_eth_dev_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub min_mtu: u16,
    pub max_mtu: u16,
    pub max_rx_pktlen: u32,
    /// Flow types the device can spread over queues with RSS.
    pub rss_offloads: u64,
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

/// Port ids a `Device` or `Port` of this process holds. Probing a spec
/// twice yields the same port id; one owner per id keeps one handle from
/// closing a port that another one's workers poll.
static HELD: Mutex<Vec<u16>> = Mutex::new(Vec::new());

fn hold(id: u16, name: &str) -> Result<(), DpdkError> {
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    if held.contains(&id) {
        return Err(DpdkError::Port {
            port: id,
            call: "probe",
            reason: format!("{name} is already attached in this process"),
        });
    }
    held.push(id);
    Ok(())
}

fn release(id: u16) {
    HELD.lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&x| x != id);
}

fn port_err(port: u16, call: &'static str, rc: i32) -> DpdkError {
    DpdkError::PortCall {
        port,
        call,
        errno: Errno(rc.abs()),
    }
}

/// A probed device, not configured yet. Dropping it closes it.
#[derive(Debug)]
pub struct Device<'e> {
    id: u16,
    name: String,
    _eal: PhantomData<&'e ()>,
}

impl<'e> Device<'e> {
    /// Probes the device named by `spec` (vdev spec or PCI address).
    pub fn probe(_eal: &'e Eal, spec: &str) -> Result<Device<'e>, DpdkError> {
        let cspec = CString::new(spec).map_err(|_| DpdkError::NulInArgument(spec.to_owned()))?;
        // SAFETY: the EAL is initialised (`_eal` proves it); cspec is a
        // valid C string for the duration of the call.
        let rc = unsafe { ffi::rte_dev_probe(cspec.as_ptr()) };
        // -EEXIST: already probed (e.g. a PCI device the EAL scanned).
        if rc < 0 && rc != -eexist() {
            return Err(DpdkError::Failed {
                call: "rte_dev_probe",
                subject: Some(spec.to_owned()),
                errno: Errno(rc.abs()),
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
        hold(id, name)?;
        Ok(Device {
            id,
            name: name.to_owned(),
            _eal: PhantomData,
        })
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's capabilities.
    pub fn info(&self) -> Result<DeviceInfo, DpdkError> {
        let mut info = ffi::rte_eth_dev_info::default();
        // SAFETY: info is a valid out-pointer; id names a probed port.
        let rc = unsafe { ffi::rte_eth_dev_info_get(self.id, &mut info) };
        if rc != 0 {
            return Err(port_err(self.id, "rte_eth_dev_info_get", rc));
        }
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: a non-null driver_name is the driver's static,
            // NUL-terminated name; it is copied out at once.
            unsafe { std::ffi::CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(DeviceInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            min_mtu: info.min_mtu,
            max_mtu: info.max_mtu,
            max_rx_pktlen: info.max_rx_pktlen,
            rss_offloads: info.flow_type_rss_offloads,
        })
    }

    /// The descriptor counts the device would use for the ones asked
    /// (rounded to its limits and alignment).
    pub fn adjust_desc(&self, rx: u16, tx: u16) -> Result<(u16, u16), DpdkError> {
        let (mut nrx, mut ntx) = (rx, tx);
        // SAFETY: valid in/out pointers; id names a probed port.
        let rc = unsafe { ffi::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut nrx, &mut ntx) };
        if rc != 0 {
            return Err(port_err(self.id, "rte_eth_dev_adjust_nb_rx_tx_desc", rc));
        }
        Ok((nrx, ntx))
    }

    /// Configures queues (RSS across RX queues when there are several)
    /// and the MTU, sets the queues up on `pool`, and returns the port.
    /// Some devices (net_pcap with infinite_rx) consume their input at
    /// queue setup, so this is done once, before `start`.
    pub fn configure<'p>(
        self,
        conf: &PortConfig,
        pool: &'p Mempool<'e>,
        socket: i32,
    ) -> Result<Port<'p>, DpdkError> {
        let id = self.id;
        let fail = |reason: String| DpdkError::Port {
            port: id,
            call: "configure",
            reason,
        };
        if conf.rx_queues == 0 || conf.tx_queues == 0 {
            return Err(fail("a port needs at least one RX and one TX queue".into()));
        }
        if conf.rx_queues > MAX_QUEUES || conf.tx_queues > MAX_QUEUES {
            return Err(fail(format!("more than {MAX_QUEUES} queues")));
        }
        let info = self.info()?;
        if conf.rx_queues > info.max_rx_queues || conf.tx_queues > info.max_tx_queues {
            return Err(fail(format!(
                "{} RX / {} TX queues asked, the device has at most {} / {}",
                conf.rx_queues, conf.tx_queues, info.max_rx_queues, info.max_tx_queues
            )));
        }
        if conf.mtu < info.min_mtu || conf.mtu > info.max_mtu {
            return Err(DpdkError::Mtu {
                port: id,
                reason: format!(
                    "MTU {} is outside what the device ({}) allows: {}..={}",
                    conf.mtu, info.driver, info.min_mtu, info.max_mtu
                ),
            });
        }
        let frame = conf.mtu as u32 + FRAME_OVERHEAD as u32;
        if frame > pool.data_room() as u32 {
            return Err(DpdkError::Mtu {
                port: id,
                reason: format!(
                    "MTU {} needs {frame}-byte buffers; the pool's hold {} bytes",
                    conf.mtu,
                    pool.data_room()
                ),
            });
        }
        let mut eth_conf = ffi::rte_eth_conf::default();
        eth_conf.rxmode.mtu = conf.mtu as u32;
        // SAFETY: returns a constant.
        let rss_hf = unsafe { ffi::dlvs_rss_hf_l3_l4() };
        if conf.rx_queues > 1 && info.rss_offloads & rss_hf != 0 {
            eth_conf.rxmode.mq_mode = ffi::RTE_ETH_MQ_RX_RSS;
            eth_conf.rx_adv_conf.rss_conf.rss_hf = info.rss_offloads & rss_hf;
        }
        // SAFETY: eth_conf is a valid, fully initialised configuration;
        // the port is probed and not started.
        let rc =
            unsafe { ffi::rte_eth_dev_configure(id, conf.rx_queues, conf.tx_queues, &eth_conf) };
        if rc != 0 {
            return Err(port_err(id, "rte_eth_dev_configure", rc));
        }
        // Program the MTU on the device itself where the driver can (for
        // net_tap, the kernel interface's MTU); drivers without the
        // operation take it from rxmode.mtu above.
        // SAFETY: a configured, stopped port.
        let rc = unsafe { ffi::rte_eth_dev_set_mtu(id, conf.mtu) };
        if rc != 0 && rc != -enotsup() {
            return Err(DpdkError::SetMtu {
                port: id,
                mtu: conf.mtu,
                errno: Errno(rc.abs()),
            });
        }
        let (nrx, ntx) = self.adjust_desc(conf.rx_desc, conf.tx_desc)?;
        for q in 0..conf.rx_queues {
            // SAFETY: the port is configured with this many queues; null
            // conf means the driver default; the pool outlives the port
            // (the returned Port borrows it for 'p).
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
            // SAFETY: the port is configured with this many queues.
            let rc =
                unsafe { ffi::rte_eth_tx_queue_setup(id, q, ntx, socket as u32, std::ptr::null()) };
            if rc != 0 {
                return Err(port_err(id, "rte_eth_tx_queue_setup", rc));
            }
        }
        // The Port holds and closes the device from now on.
        let mut dev = std::mem::ManuallyDrop::new(self);
        let port = Port {
            id,
            pool: pool.as_ptr(),
            name: std::mem::take(&mut dev.name),
            rx_queues: conf.rx_queues,
            tx_queues: conf.tx_queues,
            taken_rx: AtomicU64::new(0),
            taken_tx: AtomicU64::new(0),
            started: false,
            _pool: PhantomData,
        };
        Ok(port)
    }
}

impl Drop for Device<'_> {
    fn drop(&mut self) {
        // SAFETY: the device is probed and was never started (a Device is
        // never started); this Device is the id's only holder (`hold`), so
        // no Port of it exists; closing releases it.
        unsafe {
            ffi::rte_eth_dev_close(self.id);
        }
        release(self.id);
    }
}

/// A configured ethdev port, set up on a pool it borrows.
#[derive(Debug)]
pub struct Port<'p> {
    id: u16,
    /// The pool the RX queues were set up on.
    pool: *const ffi::rte_mempool,
    name: String,
    rx_queues: u16,
    tx_queues: u16,
    taken_rx: AtomicU64,
    taken_tx: AtomicU64,
    started: bool,
    _pool: PhantomData<&'p ()>,
}

impl Drop for Port<'_> {
    fn drop(&mut self) {
        // SAFETY: queue handles and monitors borrow the port, so none is
        // left and no worker polls it; this Port is the id's only holder
        // (`hold`); stop and close are valid on a configured port, and the
        // pool it uses is still alive ('p).
        unsafe {
            if self.started {
                ffi::rte_eth_dev_stop(self.id);
            }
            ffi::rte_eth_dev_close(self.id);
        }
        release(self.id);
    }
}

impl<'p> Port<'p> {
    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configured queue counts (RX, TX).
    pub fn queues(&self) -> (u16, u16) {
        (self.rx_queues, self.tx_queues)
    }

    /// Programs the port's MAC address. Some virtual devices (net_pcap)
    /// refuse; the port stays usable with its own.
    pub fn set_mac(&mut self, mac: [u8; 6]) -> Result<(), DpdkError> {
        let mut addr = ffi::rte_ether_addr { addr_bytes: mac };
        // SAFETY: addr is a valid ether address for the call; &mut self
        // means no queue handle or monitor uses the port meanwhile.
        let rc = unsafe { ffi::rte_eth_dev_default_mac_addr_set(self.id, &mut addr) };
        if rc != 0 {
            return Err(port_err(self.id, "rte_eth_dev_default_mac_addr_set", rc));
        }
        Ok(())
    }

    /// Receives every multicast frame (VRRP adverts, IPVS sync messages),
    /// not only those to addresses the device was told of. Virtual devices
    /// that deliver everything anyway may refuse.
    pub fn allmulticast(&mut self) -> Result<(), DpdkError> {
        // SAFETY: a configured port id; &mut self: nothing else configures it.
        let rc = unsafe { ffi::rte_eth_allmulticast_enable(self.id) };
        if rc != 0 {
            return Err(port_err(self.id, "rte_eth_allmulticast_enable", rc));
        }
        Ok(())
    }

    /// Starts the port.
    pub fn start(&mut self) -> Result<(), DpdkError> {
        if self.started {
            return Ok(());
        }
        // SAFETY: starting a configured port; &mut self: nothing polls it.
        let rc = unsafe { ffi::rte_eth_dev_start(self.id) };
        if rc != 0 {
            return Err(port_err(self.id, "rte_eth_dev_start", rc));
        }
        self.started = true;
        Ok(())
    }

    /// Stops the port (queues stop receiving). Idempotent.
    pub fn stop(&mut self) {
        if std::mem::take(&mut self.started) {
            // SAFETY: the port was started; &mut self means no queue handle
            // borrows it, so no worker is polling.
            unsafe {
                ffi::rte_eth_dev_stop(self.id);
            }
        }
    }

    /// A read-only handle for another thread: stats, link, MAC.
    pub fn monitor(&self) -> PortMonitor<'_> {
        PortMonitor {
            id: self.id,
            _port: PhantomData,
        }
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6], DpdkError> {
        self.monitor().mac()
    }

    /// Link state without waiting.
    pub fn link(&self) -> LinkInfo {
        self.monitor().link()
    }

    /// Port counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        self.monitor().stats()
    }

    /// Takes RX queue `q`: each configured queue once.
    pub fn rx_queue(&self, q: u16) -> Result<RxQueue<'_>, DpdkError> {
        take(self.id, "RX", &self.taken_rx, q, self.rx_queues)?;
        Ok(RxQueue {
            id: self.id,
            queue: q,
            _port: PhantomData,
        })
    }

    /// Takes TX queue `q`: each configured queue once.
    pub fn tx_queue(&self, q: u16) -> Result<TxQueue<'_>, DpdkError> {
        take(self.id, "TX", &self.taken_tx, q, self.tx_queues)?;
        Ok(TxQueue {
            id: self.id,
            pool: self.pool,
            queue: q,
            pending: [std::ptr::null_mut(); BURST],
            len: 0,
            sent: 0,
            dropped: 0,
            _port: PhantomData,
        })
    }
}

/// What a control thread may do with a port while workers poll it: read
/// counters, link state and MAC. It cannot stop or configure the port.
#[derive(Debug, Clone, Copy)]
pub struct PortMonitor<'a> {
    id: u16,
    _port: PhantomData<&'a ()>,
}

impl PortMonitor<'_> {
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6], DpdkError> {
        let mut addr = ffi::rte_ether_addr::default();
        // SAFETY: addr is a valid out-pointer; the port is configured and
        // cannot be closed while this handle borrows it.
        let rc = unsafe { ffi::rte_eth_macaddr_get(self.id, &mut addr) };
        if rc != 0 {
            return Err(port_err(self.id, "rte_eth_macaddr_get", rc));
        }
        Ok(addr.addr_bytes)
    }

    /// Link state without waiting.
    pub fn link(&self) -> LinkInfo {
        let mut link = ffi::rte_eth_link::default();
        // SAFETY: link is a valid out-pointer; the port is configured and
        // cannot be closed while this handle borrows it.
        unsafe {
            ffi::rte_eth_link_get_nowait(self.id, &mut link);
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
        // SAFETY: s is a valid out-pointer; the port is configured and
        // cannot be closed while this handle borrows it.
        let rc = unsafe { ffi::rte_eth_stats_get(self.id, &mut s) };
        if rc != 0 {
            return Err(port_err(self.id, "rte_eth_stats_get", rc));
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
}

fn eexist() -> i32 {
    // SAFETY: returns a constant.
    unsafe { ffi::dlvs_eexist() }
}

fn enotsup() -> i32 {
    // SAFETY: returns a constant.
    unsafe { ffi::dlvs_enotsup() }
}

fn take(port: u16, dir: &str, mask: &AtomicU64, q: u16, configured: u16) -> Result<(), DpdkError> {
    if q >= configured {
        return Err(DpdkError::Queue {
            port,
            reason: format!("{dir} queue {q} is not configured (the port has {configured})"),
        });
    }
    let bit = 1u64 << q;
    if mask.fetch_or(bit, Ordering::SeqCst) & bit != 0 {
        return Err(DpdkError::Queue {
            port,
            reason: format!("{dir} queue {q} was already taken"),
        });
    }
    Ok(())
}

/// One RX queue of a port, owned by one worker.
#[derive(Debug)]
pub struct RxQueue<'a> {
    id: u16,
    queue: u16,
    _port: PhantomData<&'a ()>,
}

impl<'a> RxQueue<'a> {
    /// The port's id.
    pub fn port_id(&self) -> u16 {
        self.id
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to [`BURST`] packets, appending them to `out` (which
    /// should have capacity for them: no allocation then). Chained mbufs
    /// are linearised; one that cannot be is freed and counted in the
    /// return value's second element.
    #[inline]
    pub fn burst(&mut self, out: &mut Vec<Mbuf<'a>>) -> (usize, usize) {
        let mut raw = [std::ptr::null_mut::<ffi::rte_mbuf>(); BURST];
        // SAFETY: raw has room for BURST pointers; the queue was configured
        // (checked when the handle was made) and the port cannot be stopped
        // or closed while the handle borrows it; this handle is the only
        // user of (port, queue), so the call is not concurrent on the queue.
        let n = unsafe { ffi::dlvs_rx_burst(self.id, self.queue, raw.as_mut_ptr(), BURST as u16) }
            as usize;
        let mut bad = 0;
        for &p in &raw[..n] {
            // SAFETY: the PMD returned n valid mbufs that we now own, from
            // the pool the port's queues were set up on, which the port
            // borrows for longer than 'a. (A net_ring port hands over
            // mbufs of the sender's pool: its pairing is the caller's
            // set-up, outside this crate's checks.)
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
pub struct TxQueue<'a> {
    id: u16,
    /// The port's pool: the only one whose mbufs it accepts.
    pool: *const ffi::rte_mempool,
    queue: u16,
    pending: [*mut ffi::rte_mbuf; BURST],
    len: usize,
    /// Packets the device accepted.
    pub sent: u64,
    /// Packets the device refused (freed).
    pub dropped: u64,
    _port: PhantomData<&'a ()>,
}

// SAFETY: the pending pointers are mbufs this TxQueue owns exclusively,
// and `pool` is only compared, never dereferenced; moving the owner to
// another thread moves that ownership with it.
unsafe impl Send for TxQueue<'_> {}

impl<'a> TxQueue<'a> {
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Packets waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Queues a packet; sends the buffer if it is full. Only mbufs of the
    /// port's own pool are sent (a device may keep a sent mbuf in its ring
    /// until it is stopped, and only that pool surely outlives the port);
    /// any other is freed and counted in `dropped`.
    #[inline]
    pub fn push(&mut self, m: Mbuf<'a>) {
        if m.pool() != self.pool {
            self.dropped += 1;
            return;
        }
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
        // the first `sent` of them; the queue was configured and the port
        // is not stopped or closed while this handle borrows it; this handle
        // is the queue's only user.
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

impl Drop for TxQueue<'_> {
    fn drop(&mut self) {
        for &p in &self.pending[..self.len] {
            // SAFETY: never-sent mbufs we own.
            unsafe { ffi::dlvs_pktmbuf_free(p) };
        }
    }
}
