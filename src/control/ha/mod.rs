//! High availability on the control side: the VRRP instances' transitions
//! (reported by the worker that runs them, `datapath::vrrp`) logged,
//! counted for metrics and the replay summary, and handed to the
//! instances' notify programs as keepalived does.
//!
//! Notify programs run through `/bin/sh -c`, without waiting for them:
//! `notify_master`, `notify_backup` and `notify_stop` as written, and
//! `notify` with keepalived's four arguments appended (`INSTANCE`, the
//! instance's name, the new state, its priority).

use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::Mutex;

use serde::Serialize;

use crate::config::VrrpConfig;
use crate::datapath::vrrp::{Transition, VrrpState, Why};

/// One instance as the control side knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceStatus {
    pub name: String,
    /// "BACKUP", "MASTER" or "STOP".
    pub state: &'static str,
    pub transitions: u64,
}

/// The instances' states, from their transitions.
#[derive(Debug)]
pub struct Ha {
    cfgs: Vec<VrrpConfig>,
    status: Mutex<Vec<InstanceStatus>>,
    events: Mutex<Option<Receiver<Transition>>>,
}

impl Ha {
    /// Every instance BACKUP (as the worker starts them); `events` is where
    /// the worker reports.
    pub fn new(cfgs: &[VrrpConfig], events: Option<Receiver<Transition>>) -> Ha {
        Ha {
            status: Mutex::new(
                cfgs.iter()
                    .map(|c| InstanceStatus {
                        name: c.name.clone(),
                        state: VrrpState::Backup.as_str(),
                        transitions: 0,
                    })
                    .collect(),
            ),
            cfgs: cfgs.to_vec(),
            events: Mutex::new(events),
        }
    }

    /// Takes the transitions reported so far: logs them, runs the notify
    /// programs, updates the status.
    pub fn poll(&self) {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let Some(rx) = events.as_ref() else {
            return;
        };
        while let Ok(t) = rx.try_recv() {
            self.apply(&t);
        }
    }

    /// The instances' current states.
    pub fn status(&self) -> Vec<InstanceStatus> {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn apply(&self, t: &Transition) {
        let Some(cfg) = self.cfgs.get(usize::from(t.instance)) else {
            return;
        };
        let why = match t.why {
            Why::MasterDown => "no advert from a master for the master-down interval".to_string(),
            Why::MasterLeft => "the master left (priority 0)".to_string(),
            Why::Preempted { by, priority } => format!("{by} advertises priority {priority}"),
            Why::Shutdown => "the director stops".to_string(),
        };
        log::info!(
            "VRRP {} (vrid {}, priority {}): {} -> {}: {why}",
            cfg.name,
            cfg.vrid,
            cfg.priority,
            t.from.as_str(),
            t.to.as_str()
        );
        if let Some(s) = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(usize::from(t.instance))
        {
            s.state = t.to.as_str();
            s.transitions += 1;
        }
        let specific = match t.to {
            VrrpState::Master => &cfg.notify_master,
            VrrpState::Backup => &cfg.notify_backup,
            VrrpState::Stop => &cfg.notify_stop,
        };
        if let Some(cmd) = specific {
            notify(&cfg.name, cmd, &[]);
        }
        if let Some(cmd) = &cfg.notify {
            let args = [
                "INSTANCE".to_string(),
                cfg.name.clone(),
                t.to.as_str().to_string(),
                cfg.priority.to_string(),
            ];
            notify(&cfg.name, &format!("{cmd} \"$@\""), &args);
        }
    }
}

/// Runs `cmd` through the shell with `args` as its positional parameters,
/// and reaps it in a thread of its own (a slow program holds nothing).
fn notify(instance: &str, cmd: &str, args: &[String]) {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(cmd)
        .arg("sh")
        .args(args)
        .stdin(Stdio::null());
    match c.spawn() {
        Ok(mut child) => {
            let (instance, cmd) = (instance.to_string(), cmd.to_string());
            std::thread::spawn(move || match child.wait() {
                Ok(s) if s.success() => {}
                Ok(s) => log::warn!("VRRP {instance}: notify {cmd:?} {s}"),
                Err(e) => log::warn!("VRRP {instance}: notify {cmd:?}: {e}"),
            });
        }
        Err(e) => log::warn!("VRRP {instance}: notify {cmd:?} did not start: {e}"),
    }
}
