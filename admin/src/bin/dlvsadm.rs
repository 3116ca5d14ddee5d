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

use dlvs_admin::command::Command;
use dlvs_admin::protocol::{Request, Response, DEFAULT_CONTROL_SOCKET, IPVS_VERSION};

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
        IPVS_VERSION
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
          [--tun-type ipip|gue|gre] [--tun-port port] [--tun-nocsum|--tun-csum|--tun-remcsum]
  dlvsadm -d virtual-service -r server-address
  dlvsadm -L|l [virtual-service] [options]
  dlvsadm -L|l -c [-n]
  dlvsadm -L|l --timeout
  dlvsadm -L|l --daemon
  dlvsadm -Z [virtual-service]
  dlvsadm --set tcp tcpfin udp
  dlvsadm --start-daemon {{master|backup}} [daemon-options]
  dlvsadm --stop-daemon {{master|backup}}
  dlvsadm --drain | --undrain
  dlvsadm -h | -v

virtual-service: -t|-u host[:port], or -f fwmark.
Each request is applied whole or not at all; -R applies all of standard
input as one change. The options are ipvsadm's (see ipvsadm(8)) but for
--drain and --undrain, dlvs's own.

Commands:
  --add-service     -A        add a virtual service with options
  --edit-service    -E        edit a virtual service with options
  --delete-service  -D        delete a virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from standard input
  --save            -S        save rules to standard output
  --add-server      -a        add a real server with options
  --edit-server     -e        edit a real server with options
  --delete-server   -d        delete a real server
  --list            -L -l     list the table
  --zero            -Z        zero the counters of a service or all
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon {{master|backup}}  start a connection sync daemon
  --stop-daemon {{master|backup}}   stop a connection sync daemon
  --drain                     withdraw the [bgp] routes, keep forwarding
  --undrain                   announce the [bgp] routes again
  --help            -h        this help
  --version         -v        the version

Options:
  --tcp-service  -t service-address   a TCP service (host[:port])
  --udp-service  -u service-address   a UDP service (host[:port])
  --sctp-service    service-address   refused: dlvs has no SCTP
  --fwmark-service  -f fwmark         a firewall-mark service (an integer above 0)
  --ipv6         -6                   refused for now: IPv4 only
  --scheduler    -s scheduler         one of {} (default {})
  --pe              engine            refused: no persistence engines
  --persistent   -p [timeout]         persistent service (default 300 s)
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --tun-type        type              the tunnel: ipip (default), gue or gre
  --tun-port        port              the GUE tunnel's destination port
  --tun-nocsum                        no tunnel checksum (GUE's default)
  --tun-csum                          a tunnel checksum
  --tun-remcsum                       GUE's remote checksum offload
  --weight       -w weight            capacity of the real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   the connection table (with -L)
  --mcast-interface interface         the sync daemon's interface
  --syncid          sid               the sync daemon's syncid (0 to 255)
  --sync-maxlen     length            the largest sync message
  --mcast-group     address           the sync group (IPv4 multicast)
  --mcast-port      port              the sync UDP port
  --mcast-ttl       ttl               the sync messages' TTL (1 to 255)
  --timeout                           the timeouts (with -L)
  --daemon                            the sync daemons (with -L)
  --stats                             statistics (with -L)
  --rate                              rate statistics (with -L)
  --thresholds                        thresholds (with -L)
  --persistent-conn                   persistent connections (with -L)
  --tun-info                          tunnel information (with -L)
  --nosort                            no sorting (with -L)
  --sort                              sorting (with -L: the default)
  --exact        -X                   exact numbers (with -L)
  --numeric      -n                   numeric addresses and ports
  --ops          -o                   one-packet scheduling (UDP)
  --sched-flags  -b flags             scheduler flags (comma-separated)
  --socket          path              the director's control socket (default:
                                      $DLVS_SOCKET, else {DEFAULT_CONTROL_SOCKET})
",
        version(),
        dlvs_admin::rules::SCHEDULERS.join(", "),
        dlvs_admin::rules::DEFAULT_SCHEDULER,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The help names every option the command line takes, long and
    /// short.
    #[test]
    fn the_help_lists_every_option() {
        let help = usage();
        let mut missing = Vec::new();
        for (short, long) in dlvs_admin::command::options() {
            if !help.contains(&format!("--{long} ")) && !help.contains(&format!("--{long}\n")) {
                missing.push(format!("--{long}"));
            }
            if let Some(c) = short {
                if !help.contains(&format!(" -{c} ")) && !help.contains(&format!("|-{c} ")) {
                    missing.push(format!("-{c}"));
                }
            }
        }
        assert!(missing.is_empty(), "not in dlvsadm --help: {missing:?}");
        assert!(help.contains("--socket"));
    }
}
