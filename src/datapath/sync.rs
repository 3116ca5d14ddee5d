//! IPVS connection sync in the data plane.
//!
//! Sending: each worker batches its own connections' updates
//! (`conn::sync::on_inbound` decides which) into a message of the
//! kernel's size for the sync interface's MTU, and sends it from that
//! interface's first address to 224.0.0.81:8848 with TTL 1 (as the
//! kernel's sync socket does: `make_send_sock`) when the next entry does
//! not fit, or [`FLUSH_US`] after its first entry. A full message waits
//! for the engine to send it after the frame that filled it; an entry
//! that finds both messages full is counted lost. Workers send only while
//! the director is the sync master: its `[sync] vrrp` instance MASTER, or
//! always without one.
//!
//! Receiving: a message (steered to worker 0, checked whole by
//! `wire::ipvs_sync::parse`) is installed entry by entry in the table of
//! the worker that owns each entry's client (`datapath::steer`): this
//! worker's at once, the others' through their inboxes, drained between
//! bursts. Only while the director is not the sync master (always
//! without `[[vrrp]]`: then every director sends and receives).

use std::net::Ipv4Addr;

use crate::conn::sync::SyncThreshold;
use crate::wire::ipvs_sync::{self, SyncConn, Writer};

/// A message leaves at the latest this long after its first entry: within
/// the kernel's 2 s flush time (IPVS_SYNC_FLUSH_TIME) even with a late
/// timer run.
pub const FLUSH_US: u64 = 1_000_000;

/// Sync counters of one lcore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncStats {
    /// Messages and entries sent.
    pub sent_messages: u64,
    pub sent_conns: u64,
    /// Entries not sent: both messages were full.
    pub lost: u64,
    /// Received entries by what became of them (`sync_install::Installed`).
    pub installed: u64,
    pub updated: u64,
    pub replaced: u64,
    pub stale: u64,
    pub no_dest: u64,
    pub unsupported: u64,
    pub full: u64,
    /// Entries a kernel backup skips too (IPv6, SCTP, a bad state, an
    /// unknown mandatory option, persistence-engine data).
    pub skipped: u64,
    /// Entries handed to the worker that owns their client, and those
    /// lost on the way (its inbox full).
    pub handed: u64,
    pub hand_lost: u64,
}

impl SyncStats {
    pub fn add(&mut self, o: &SyncStats) {
        self.sent_messages += o.sent_messages;
        self.sent_conns += o.sent_conns;
        self.lost += o.lost;
        self.installed += o.installed;
        self.updated += o.updated;
        self.replaced += o.replaced;
        self.stale += o.stale;
        self.no_dest += o.no_dest;
        self.unsupported += o.unsupported;
        self.full += o.full;
        self.skipped += o.skipped;
        self.handed += o.handed;
        self.hand_lost += o.hand_lost;
    }

    pub fn is_zero(&self) -> bool {
        *self == SyncStats::default()
    }

    /// Counts what became of a received entry.
    pub fn count(&mut self, i: super::sync_install::Installed) {
        use super::sync_install::Installed::*;
        *match i {
            New => &mut self.installed,
            Updated => &mut self.updated,
            Replaced => &mut self.replaced,
            Stale => &mut self.stale,
            NoDest => &mut self.no_dest,
            Unsupported => &mut self.unsupported,
            Full => &mut self.full,
        } += 1;
    }
}

/// One worker's sending side, for one master daemon.
#[derive(Debug)]
pub struct SyncTx {
    pub rules: SyncThreshold,
    daemon: Daemon,
    version: u8,
    /// The messages' source: the daemon's interface's first address.
    pub source: Ipv4Addr,
    current: Writer,
    /// When `current` got its first entry.
    first: u64,
    /// A full message waiting to be sent.
    full: Writer,
    full_pending: bool,
    /// Sending now: the director is the sync master.
    pub active: bool,
    pub lost: u64,
}

impl SyncTx {
    pub fn new(version: u8, daemon: Daemon, rules: SyncThreshold, source: Ipv4Addr) -> SyncTx {
        let (syncid, max) = (daemon.syncid, usize::from(daemon.maxlen));
        SyncTx {
            rules,
            daemon,
            version,
            source,
            current: Writer::new(version, syncid, max),
            first: 0,
            full: Writer::new(version, syncid, max),
            full_pending: false,
            active: false,
            lost: 0,
        }
    }

    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    pub fn version(&self) -> u8 {
        self.version
    }

    /// Adds an entry to the message being built.
    pub fn push(&mut self, c: &SyncConn, now: u64) {
        if self.current.is_empty() {
            self.first = now;
        }
        if self.current.push(c) {
            return;
        }
        if self.full_pending {
            self.lost += 1;
            return;
        }
        std::mem::swap(&mut self.current, &mut self.full);
        self.full_pending = true;
        self.current.reset(self.daemon.syncid);
        self.first = now;
        if !self.current.push(c) {
            self.lost += 1;
        }
    }

    /// Whether a full message waits.
    #[inline]
    pub fn has_full(&self) -> bool {
        self.full_pending
    }

    /// The message to send now, if one is due: a full one, or the one
    /// being built once `FLUSH_US` old (or at once with `flush`). Hands it
    /// and its entry count to `send`, then empties it.
    pub fn take_due(&mut self, now: u64, flush: bool, mut send: impl FnMut(&[u8], usize)) {
        if self.full_pending {
            send(self.full.bytes(), self.full.count());
            self.full.reset(self.daemon.syncid);
            self.full_pending = false;
        }
        let old = now.saturating_sub(self.first) >= FLUSH_US;
        if !self.current.is_empty() && (old || flush) {
            send(self.current.bytes(), self.current.count());
            self.current.reset(self.daemon.syncid);
        }
    }

    /// Entries in the message being built and the one waiting.
    pub fn pending(&self) -> usize {
        self.current.count()
            + if self.full_pending {
                self.full.count()
            } else {
                0
            }
    }
}

/// One sync daemon's settings: ipvsadm's daemon options, as the kernel
/// completes them (`start_sync_thread`: group 224.0.0.81, port 8848,
/// TTL 1, and a message size of the MTU less the IP and UDP headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    /// The interface's index and name (ipvsadm's mcast_ifn).
    pub port: usize,
    pub ifname: String,
    pub syncid: u8,
    /// The largest message (sync_maxlen).
    pub maxlen: u16,
    pub group: Ipv4Addr,
    pub udp_port: u16,
    pub ttl: u8,
}

impl Daemon {
    /// A daemon on `port` (`ifname`, of `mtu`), the kernel's defaults for
    /// what is not given. A master's messages fit 1500 bytes (the kernel's
    /// choice) and its interface's MTU (dlvs does not fragment); a backup
    /// takes what its interface can carry.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        master: bool,
        port: usize,
        ifname: &str,
        mtu: u16,
        syncid: u8,
        maxlen: Option<u16>,
        group: Option<Ipv4Addr>,
        udp_port: Option<u16>,
        ttl: Option<u8>,
    ) -> Daemon {
        const HLEN: u16 = 28;
        let room = mtu.saturating_sub(HLEN);
        let maxlen = match maxlen {
            Some(m) => m
                .clamp(if master { 1 } else { 1024 }, 65535 - HLEN)
                .min(room.max(1)),
            None if master => 1500u16.min(mtu).saturating_sub(HLEN),
            None => room,
        };
        Daemon {
            port,
            ifname: ifname.to_string(),
            syncid,
            maxlen,
            group: group.unwrap_or(ipvs_sync::GROUP),
            udp_port: udp_port.unwrap_or(ipvs_sync::PORT),
            ttl: ttl.unwrap_or(1),
        }
    }

    /// ipvsadm's `-L --daemon` line for it.
    pub fn line(&self, master: bool) -> String {
        format!(
            "{} sync daemon (mcast={}, syncid={}, maxlen={}, group={}, port={}, ttl={})\n",
            if master { "master" } else { "backup" },
            self.ifname,
            self.syncid,
            self.maxlen,
            self.group,
            self.udp_port,
            self.ttl
        )
    }
}

/// What a sync daemon does: follow the `[sync] vrrp` instance (as
/// keepalived's lvs_sync_daemon starts and stops the kernel's on its
/// transitions: the master daemon runs while the instance is MASTER, the
/// backup one while it is not; both always without an instance), run, or
/// not run, as dlvsadm last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Auto(Daemon),
    Running(Daemon),
    Stopped,
}

/// The director's two sync daemons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    pub master: Role,
    pub backup: Role,
    /// The message version a master sends.
    pub version: u8,
    /// The instance `Auto` follows.
    pub vrrp: Option<usize>,
    pub rules: SyncThreshold,
}

impl Roles {
    /// The daemons running now, given which VRRP instances are MASTER:
    /// (master, backup).
    pub fn now(&self, master_bits: u64) -> (Option<&Daemon>, Option<&Daemon>) {
        let leading = self.vrrp.map(|i| master_bits & (1 << i) != 0);
        fn pick(r: &Role, master: bool, leading: Option<bool>) -> Option<&Daemon> {
            match r {
                Role::Auto(d) => match leading {
                    None => Some(d),
                    Some(m) => (m == master).then_some(d),
                },
                Role::Running(d) => Some(d),
                Role::Stopped => None,
            }
        }
        (
            pick(&self.master, true, leading),
            pick(&self.backup, false, leading),
        )
    }
}

/// Why dlvsadm's daemon command was refused (libipvs's messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SyncDaemonError {
    #[error("Daemon has already run")]
    Running,
    #[error("No daemon is running")]
    NotRunning,
}

/// The sync daemons' roles, shared by the workers (which read them when
/// their generation moves, at timer time) and dlvsadm's commands.
#[derive(Debug)]
pub struct SyncDaemons {
    generation: std::sync::atomic::AtomicU64,
    roles: std::sync::Mutex<Roles>,
}

impl SyncDaemons {
    pub fn new(roles: Roles) -> SyncDaemons {
        SyncDaemons {
            generation: std::sync::atomic::AtomicU64::new(1),
            roles: std::sync::Mutex::new(roles),
        }
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn roles(&self) -> Roles {
        self.roles.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The roles, unless the lock is held this instant (a worker's read).
    pub fn try_roles(&self) -> Option<Roles> {
        match self.roles.try_lock() {
            Ok(r) => Some(r.clone()),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner().clone()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// `--start-daemon`: refused if that daemon runs now.
    pub fn start(&self, master: bool, d: Daemon, master_bits: u64) -> Result<(), SyncDaemonError> {
        self.change(|r| {
            let (m, b) = r.now(master_bits);
            if if master { m.is_some() } else { b.is_some() } {
                return Err(SyncDaemonError::Running);
            }
            *if master { &mut r.master } else { &mut r.backup } = Role::Running(d);
            Ok(())
        })
    }

    /// `--stop-daemon`: refused if that daemon does not run now.
    pub fn stop(&self, master: bool, master_bits: u64) -> Result<(), SyncDaemonError> {
        self.change(|r| {
            let (m, b) = r.now(master_bits);
            if if master { m.is_none() } else { b.is_none() } {
                return Err(SyncDaemonError::NotRunning);
            }
            *if master { &mut r.master } else { &mut r.backup } = Role::Stopped;
            Ok(())
        })
    }

    fn change(
        &self,
        f: impl FnOnce(&mut Roles) -> Result<(), SyncDaemonError>,
    ) -> Result<(), SyncDaemonError> {
        let mut r = self.roles.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut r)?;
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    /// `-L --daemon`: the running daemons, master first.
    pub fn listing(&self, master_bits: u64) -> String {
        let r = self.roles();
        let (m, b) = r.now(master_bits);
        let mut out = String::new();
        if let Some(d) = m {
            out += &d.line(true);
        }
        if let Some(d) = b {
            out += &d.line(false);
        }
        out
    }
}
