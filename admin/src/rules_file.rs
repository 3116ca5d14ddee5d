//! Rules files in `ipvsadm-save` syntax (ipvsadm 1.31).
//!
//! A rules file is what `ipvsadm -S` or `ipvsadm -S -n` prints, plus what
//! operators write by hand in the same syntax: one `-A` line per virtual
//! service and one `-a` line per real server, options in any order, short or
//! long (`-s wlc`, `--scheduler wlc`, `--scheduler=wlc`, `-swlc`). Blank
//! lines are skipped, a word starting with `#` comments out the rest of its
//! line, and a leading `ipvsadm` word is ignored (as `ipvsadm -R` does), so
//! pasted commands load too.
//!
//! The contract: [`Rules::parse`] validates the whole file, syntax and
//! meaning, before returning anything; a file either loads completely or not
//! at all. An error names the file, the line and what is wrong, e.g.
//! `rules.txt: line 4: -a -t 10.0.0.100:80: no such virtual service (add it
//! with -A first)`. What ipvsadm or the kernel would refuse is refused here,
//! at load time:
//!
//! - option/command combinations (ipvsadm's `commands_v_options` table), an
//!   option given twice, two forwarding methods (`-g -m`);
//! - a port-0 TCP/UDP service without `-p` (ipvsadm: "Zero port specified
//!   for non-persistent service"; the kernel's `ip_vs_schedule` would drop
//!   every packet of it: "port zero only supported in persistent services");
//! - `-o` on a TCP service (ipvsadm: one-packet scheduling is UDP only; a
//!   fwmark service may have it, the kernel applies it to its UDP packets);
//! - `sh-*` flags without `-s sh`, `mh-*` flags without `-s mh`
//!   (`parse_sched_flags`; the kernel itself does not check);
//! - `-y` above `-x`, including `-y N` without `-x` (the kernel's
//!   `ip_vs_add_dest` compares them as given, 0 included, and returns ERANGE);
//! - tunnel options without `-i`, `--tun-port` missing for GUE or present
//!   for IPIP/GRE, `--tun-remcsum` for GRE, two checksum options
//!   (ipvsadm's `tunnel_types_v_options` table);
//! - an `-a` before its `-A`, a service defined twice, a real server
//!   (address and port) twice in one service (the kernel's EEXIST).
//!
//! Where ipvsadm silently adjusts, so does dlvs: a real server without a port
//! takes the service's port, and for DR (`-g`) and TUN (`-i`) real servers of
//! TCP/UDP services the port is always the service's (ipvsadm overwrites it;
//! only NAT can change ports). `-M` without `-p` is accepted and has no
//! effect (the kernel keeps the mask but only persistence uses it, and
//! `ipvsadm -S` does not print it back).
//!
//! IPv6 (`[::1]:80`, `-6`), SCTP services and persistence engines (`--pe`)
//! are refused with an error naming the line: dlvs does not support them yet.
//!
//! [`Rules::to_save_n`] writes rules back as `ipvsadm -S -n` prints them.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use super::command::{self, Command, Lookup};
use super::names;
use super::rules::{ApplyError, Rules};

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{path}: cannot read: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path}: line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Rules {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|err| RulesError::Read {
            path: path.to_owned(),
            err,
        })?;
        Rules::parse(&text, path)
    }

    /// Parses and validates rules text; `path` only labels errors. Port
    /// names are looked up in `/etc/services` (then a built-in table), host
    /// names with the system resolver.
    pub fn parse(text: &str, path: &Path) -> Result<Rules, RulesError> {
        let services = OnceCell::new();
        let lookup = Lookup {
            services: &services,
            host: &names::resolve_host,
        };
        parse_with(text, path, &lookup)
    }
}

/// The words of one command line of a rules file or a restore: up to a
/// `#` comment, a leading `ipvsadm` dropped (pasted commands load too).
pub fn command_words(raw: &str) -> Vec<&str> {
    let mut words: Vec<&str> = raw
        .split_whitespace()
        .take_while(|w| !w.starts_with('#'))
        .collect();
    if words.first() == Some(&"ipvsadm") {
        words.remove(0);
    }
    words
}

fn parse_with(text: &str, path: &Path, lookup: &Lookup<'_>) -> Result<Rules, RulesError> {
    let mut rules = Rules::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        parse_line(raw, line, &mut rules, lookup).map_err(|message| RulesError::Line {
            path: path.to_owned(),
            line,
            message,
        })?;
    }
    Ok(rules)
}

/// One line of a rules file: blank, or an `-A` or `-a` command.
fn parse_line(
    raw: &str,
    line: usize,
    rules: &mut Rules,
    lookup: &Lookup<'_>,
) -> Result<(), String> {
    let words = command_words(raw);
    if words.is_empty() {
        return Ok(());
    }
    let cmd = command::parse(&words, line, lookup)?;
    let (flag, key) = match &cmd {
        Command::AddService(s) => ("-A", s.key),
        Command::AddDest(key, _) => ("-a", *key),
        _ => {
            return Err(format!(
                "{} is not allowed in a rules file: it holds only -A (add a virtual service) \
                 and -a (add a real server) lines",
                cmd.describe()
            ))
        }
    };
    rules.apply(&cmd).map_err(|e| match (e, &cmd) {
        (ApplyError::ServiceExists { line }, _) => {
            format!("-A {key}: virtual service already defined on line {line}")
        }
        (ApplyError::ServiceNotDefined, _) => {
            format!("-a {key}: no such virtual service (add it with -A first)")
        }
        (ApplyError::DestExists { line }, Command::AddDest(_, d)) => format!(
            "-a {key} -r {}:{}: real server already in this service (line {line})",
            d.addr, d.port
        ),
        (e, _) => format!("{flag} {key}: {e}"),
    })
}

#[cfg(test)]
mod tests;
