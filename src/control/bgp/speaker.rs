//! The supervised BGP speaker: BIRD, started by dlvs with its own
//! configuration, control socket and pid file beside `[control] socket`
//! (`dlvs.sock.bird.conf`, `.bird.ctl`, `.bird.pid`: several directors may
//! share a host), dying with dlvs (a parent-death signal, through
//! util-linux's `setpriv`), restarted if it dies, told of a new announced
//! set with `birdc configure`, and shut down with `birdc down` (its
//! sessions closed with a NOTIFICATION) when dlvs stops.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bird;
use crate::config::BgpConfig;

/// Why the speaker could not be told or started.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("cannot write {path}: {err}")]
    Write { path: PathBuf, err: std::io::Error },
    #[error("cannot start bird: {0}")]
    Start(std::io::Error),
    #[error("birdc configure: {0}")]
    Configure(String),
}

/// A restart waits this long after the speaker died.
const RESTART_AFTER: Duration = Duration::from_secs(1);

pub struct Speaker {
    cfg: BgpConfig,
    conf: PathBuf,
    ctl: PathBuf,
    pid: PathBuf,
    child: Option<Child>,
    /// What the running speaker was last told to announce.
    announced: Option<Vec<Ipv4Addr>>,
    /// Not before this, a restart.
    next_start: Instant,
}

fn beside(socket: &Path, suffix: &str) -> PathBuf {
    let mut s = socket.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl Speaker {
    /// A speaker for `cfg`, its files beside `socket`; not started yet.
    pub fn new(cfg: BgpConfig, socket: &Path) -> Speaker {
        Speaker {
            cfg,
            conf: beside(socket, ".bird.conf"),
            ctl: beside(socket, ".bird.ctl"),
            pid: beside(socket, ".bird.pid"),
            child: None,
            announced: None,
            next_start: Instant::now(),
        }
    }

    /// Announces exactly `vips` (sorted): rewrites the configuration and
    /// has the running speaker read it, or starts one. Nothing is done
    /// when the set did not change.
    pub fn announce(&mut self, mut vips: Vec<Ipv4Addr>) -> Result<(), SpeakerError> {
        vips.sort_unstable();
        vips.dedup();
        if self.child.is_some() && self.announced.as_ref() == Some(&vips) {
            return Ok(());
        }
        if self.child.is_none() && Instant::now() < self.next_start {
            // A speaker that died is started again after RESTART_AFTER,
            // with what it should announce by then.
            self.announced = Some(vips);
            return Ok(());
        }
        let text = bird::config(&self.cfg, &vips);
        std::fs::write(&self.conf, text).map_err(|err| SpeakerError::Write {
            path: self.conf.clone(),
            err,
        })?;
        if self.child.is_some() {
            self.configure()?;
        } else if let Err(e) = self.start() {
            self.next_start = Instant::now() + RESTART_AFTER;
            return Err(e);
        }
        log::info!(
            "bgp: announcing {}",
            if vips.is_empty() {
                "nothing".to_string()
            } else {
                vips.iter()
                    .map(|v| format!("{v}/32"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        );
        self.announced = Some(vips);
        Ok(())
    }

    fn start(&mut self) -> Result<(), SpeakerError> {
        let _ = std::fs::remove_file(&self.ctl);
        let child = Command::new("setpriv")
            .arg("--pdeathsig")
            .arg("KILL")
            .arg("--")
            .arg("bird")
            .arg("-f")
            .arg("-c")
            .arg(&self.conf)
            .arg("-s")
            .arg(&self.ctl)
            .arg("-P")
            .arg(&self.pid)
            .stdin(Stdio::null())
            .spawn()
            .map_err(SpeakerError::Start)?;
        log::info!(
            "bgp: bird started (pid {}), birdc -s {}",
            child.id(),
            self.ctl.display()
        );
        self.child = Some(child);
        Ok(())
    }

    fn configure(&mut self) -> Result<(), SpeakerError> {
        // A just-started bird takes a moment to open its socket.
        let mut last = String::new();
        for _ in 0..20 {
            match Command::new("birdc")
                .arg("-s")
                .arg(&self.ctl)
                .arg("configure")
                .stdin(Stdio::null())
                .output()
            {
                Ok(o) => {
                    let text = String::from_utf8_lossy(&o.stdout).into_owned();
                    if o.status.success() && text.contains("Reconfigur") {
                        return Ok(());
                    }
                    last = format!(
                        "{}{}",
                        text.trim(),
                        String::from_utf8_lossy(&o.stderr).trim()
                    );
                }
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(SpeakerError::Configure(last))
    }

    /// Restarts a speaker that died (after `RESTART_AFTER`), with what it
    /// was announcing.
    pub fn supervise(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        match child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => {
                log::error!("bgp: bird exited ({status}); restarting it in {RESTART_AFTER:?}");
                self.child = None;
                self.next_start = Instant::now() + RESTART_AFTER;
            }
            Err(e) => log::warn!("bgp: cannot check on bird: {e}"),
        }
        if self.child.is_none() && Instant::now() >= self.next_start {
            if let Some(vips) = self.announced.take() {
                if let Err(e) = self.announce(vips) {
                    log::error!("bgp: {e}");
                    self.next_start = Instant::now() + RESTART_AFTER;
                }
            }
        }
    }

    /// Stops the speaker: `birdc down` (its sessions closed properly),
    /// then a kill if it is still there a second later.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("birdc")
            .arg("-s")
            .arg(&self.ctl)
            .arg("down")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        for p in [&self.ctl, &self.pid, &self.conf] {
            let _ = std::fs::remove_file(p);
        }
        log::info!("bgp: bird stopped");
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        self.stop();
    }
}
