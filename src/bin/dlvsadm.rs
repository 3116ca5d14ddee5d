//! dlvsadm: ipvsadm's command line for a running dlvs director.
//!
//! It checks the command as ipvsadm would (so a mistake is named without
//! a director), reads standard input for `-R`, sends the words to the
//! director's control socket and prints what the director answers, with
//! its exit status. The socket: `--socket PATH` (anywhere on the line),
//! else `$DLVS_SOCKET`, else /run/dlvs/dlvs.sock.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use dlvs::config::DEFAULT_CONTROL_SOCKET;
use dlvs::control::admin::{Request, Response};
use dlvs::service::Command;

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let socket = match take_socket(&mut args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut stdin = String::new();
    match Command::parse(&words) {
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
        Ok(Command::Help) => {
            print!("{}", usage());
            return 0;
        }
        Ok(Command::Version) => {
            println!("{}", version());
            return 0;
        }
        Ok(Command::Restore) => {
            if let Err(e) = std::io::stdin().read_to_string(&mut stdin) {
                eprintln!("-R: cannot read standard input: {e}");
                return 2;
            }
        }
        Ok(_) => {}
    }
    let request = Request { args, stdin };
    match ask(&socket, &request) {
        Ok(r) => {
            print!("{}", r.stdout);
            eprint!("{}", r.stderr);
            let _ = std::io::stdout().flush();
            r.status
        }
        Err(e) => {
            eprintln!(
                "cannot reach the director at {}: {e}\n\
                 Is dlvs running? (its [control] socket; dlvsadm --socket PATH or DLVS_SOCKET)",
                socket.display()
            );
            2
        }
    }
}

/// Removes `--socket PATH` or `--socket=PATH` from the words.
fn take_socket(args: &mut Vec<String>) -> Result<PathBuf, String> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        if let Some(v) = args[i].strip_prefix("--socket=") {
            found = Some(v.to_owned());
            args.remove(i);
        } else if args[i] == "--socket" {
            if i + 1 >= args.len() {
                return Err("option --socket needs a value".into());
            }
            found = Some(args.remove(i + 1));
            args.remove(i);
        } else {
            i += 1;
        }
    }
    Ok(found
        .or_else(|| std::env::var("DLVS_SOCKET").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_CONTROL_SOCKET.to_owned())
        .into())
}

fn ask(socket: &PathBuf, request: &Request) -> std::io::Result<Response> {
    let mut stream = UnixStream::connect(socket)?;
    let body = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    stream.write_all(&body)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    serde_json::from_str(&text).map_err(std::io::Error::other)
}

fn version() -> String {
    format!(
        "dlvsadm v{} (ipvsadm v1.31 command line, IPVS v{})",
        env!("CARGO_PKG_VERSION"),
        dlvs::control::listing::IPVS_VERSION
    )
}

fn usage() -> String {
    format!(
        "{}
Usage:
  dlvsadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-o] [-b sched-flags]
  dlvsadm -D virtual-service
  dlvsadm -C
  dlvsadm -R
  dlvsadm -S [-n]
  dlvsadm -a|e virtual-service -r server-address [-g|-m|-i] [-w weight] [-x upper] [-y lower]
  dlvsadm -d virtual-service -r server-address
  dlvsadm -L|l [virtual-service] [-n] [--stats|--thresholds|--persistent-conn|--tun-info] [--exact] [--nosort]
  dlvsadm -Z [virtual-service]
  dlvsadm -h | -v

virtual-service: -t|-u host[:port], or -f fwmark.
The options are ipvsadm's (see ipvsadm(8)). Each request is applied whole
or not at all; -R applies all of standard input as one change.

  --socket PATH   the director's control socket (default: $DLVS_SOCKET,
                  else {DEFAULT_CONTROL_SOCKET})
",
        version()
    )
}
