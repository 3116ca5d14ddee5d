//! dlvsadm against a running director: the session of
//! tests/golden/dlvsadm.json (written by scripts/gen-dlvsadm-golden from a
//! model of the table with ipvsadm 1.31's formats and messages) is played
//! through the real binaries, and every command must print and exit
//! exactly as expected.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Runs dlvsadm with `args` (and `stdin`); (status, stdout, stderr).
fn dlvsadm(socket: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(common::dlvsadm_bin())
        .args(args)
        .env("DLVS_SOCKET", socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running dlvsadm");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A director on a net_pcap port that reads the golden traffic once, with
/// its control socket in `dir`; stopped with SIGTERM when dropped.
struct Director {
    child: std::process::Child,
    socket: PathBuf,
}

impl Director {
    fn start(dir: &Path, rules: &str) -> Director {
        let traffic = golden_dir().join("dlvsadm-traffic.pcap");
        let device = format!(
            "net_pcap0,rx_pcap={},tx_pcap={}",
            traffic.display(),
            dir.join("out.pcap").display()
        );
        std::fs::write(dir.join("dlvs.rules"), rules).unwrap();
        Director::start_on(dir, &device, 1024, Some(&dir.join("dlvs.rules")))
    }

    /// A director on `device` with a connection table of `capacity`.
    fn start_on(dir: &Path, device: &str, capacity: usize, rules: Option<&Path>) -> Director {
        let socket = dir.join("dlvs.sock");
        let cfg = common::l4_config(
            &[],
            &format!("[control]\nsocket = {:?}\n", socket.display().to_string()),
        )
        .replace("device = \"net_null0\"", &format!("device = \"{device}\""))
        .replace("capacity = 1024", &format!("capacity = {capacity}"));
        std::fs::write(dir.join("dlvs.toml"), cfg).unwrap();
        let mut cmd = Command::new(common::bin());
        cmd.arg("run").arg("--config").arg(dir.join("dlvs.toml"));
        if let Some(r) = rules {
            cmd.arg("--rules").arg(r);
        }
        let child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("dlvs.log")).unwrap())
            .spawn()
            .expect("running dlvs");
        Director { child, socket }
    }

    /// Stops it with SIGTERM; true if it exited 0 within 10 s.
    fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        false
    }
}

impl Drop for Director {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `got` with each connection line's expire column replaced by the
/// expected one where it shows at most `slack` seconds less (the clock ran
/// between the traffic and the listing); any other difference stays.
fn within_slack(got: &str, want: &str, slack: u64) -> String {
    let seconds = |line: &str| {
        let (m, s) = line.split_whitespace().nth(1)?.split_once(':')?;
        Some(m.parse::<u64>().ok()? * 60 + s.parse::<u64>().ok()?)
    };
    let lines: Vec<String> = got
        .lines()
        .zip(want.lines().chain(std::iter::repeat("")))
        .map(|(g, w)| match (seconds(g), seconds(w)) {
            (Some(a), Some(b)) if a <= b && b - a <= slack && g.len() == w.len() => {
                // Same layout: take the expected expire field.
                let at = g.find(char::is_whitespace).unwrap_or(0) + 1;
                format!("{}{}{}", &g[..at], &w[at..at + 6], &g[at + 6..])
            }
            _ => g.to_owned(),
        })
        .collect();
    let mut out = lines.join("\n");
    if got.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[test]
fn a_dlvsadm_session_prints_and_exits_as_ipvsadm() {
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_dir().join("dlvsadm.json")).unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut d = Director::start(dir.path(), golden["rules"].as_str().unwrap());
    let steps = golden["steps"].as_array().unwrap();
    let text = |v: &Value| v.as_str().unwrap().to_owned();

    // The first two steps list the table once the traffic has been counted:
    // the connection counts at once, the workers' traffic counters when
    // they next publish them (every 100 ms).
    let (first, stats) = (text(&steps[0]["stdout"]), text(&steps[1]["stdout"]));
    let start = Instant::now();
    loop {
        let (status, out, err) = dlvsadm(&d.socket, &["-L", "-n"], None);
        if status == 0 && out == first && dlvsadm(&d.socket, &["-Ln", "--stats"], None).1 == stats {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the director never listed what the traffic makes: status {status}\n{out}{err}\nlog:\n{}",
            std::fs::read_to_string(dir.path().join("dlvs.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mode = std::fs::metadata(&d.socket).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);

    for (i, step) in steps.iter().enumerate() {
        let args: Vec<String> = step["args"].as_array().unwrap().iter().map(text).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stdin = step.get("stdin").map(text);
        let (status, mut out, err) = dlvsadm(&d.socket, &args, stdin.as_deref());
        if let Some(slack) = step.get("expire_slack_s").and_then(Value::as_u64) {
            out = within_slack(&out, &text(&step["stdout"]), slack);
        }
        let want = (
            step["status"].as_i64().unwrap() as i32,
            text(&step["stdout"]),
            text(&step["stderr"]),
        );
        assert_eq!(
            (status, out, err),
            want,
            "step {i}: dlvsadm {}",
            args.join(" ")
        );
    }
    assert!(d.stop(), "dlvs did not stop cleanly");
    assert!(!d.socket.exists(), "the socket file outlived the director");
}

/// Without a director, dlvsadm names the socket it tried; a mistake is
/// named before any director is asked; -h and -v need none.
#[test]
fn dlvsadm_alone() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    let (status, out, err) = dlvsadm(&socket, &["-Ln"], None);
    assert_eq!((status, out.as_str()), (2, ""));
    assert!(
        err.contains(&socket.display().to_string()) && err.contains("Is dlvs running?"),
        "{err}"
    );
    let (status, _, err) = dlvsadm(
        &socket,
        &["-A", "-t", "10.0.0.1:80", "-r", "10.0.0.2"],
        None,
    );
    assert_eq!(
        (status, err.as_str()),
        (
            2,
            "Illegal 'real-server' option with the 'add-service' command\n"
        )
    );
    let (status, out, _) = dlvsadm(&socket, &["-h"], None);
    assert!(
        status == 0 && out.contains("Usage:") && out.contains("--socket"),
        "{out}"
    );
    let (status, out, _) = dlvsadm(&socket, &["-v"], None);
    assert!(status == 0 && out.starts_with("dlvsadm v"), "{out}");
}

/// A second director on the same socket is refused with a message naming
/// it, and the first keeps answering.
#[test]
fn a_socket_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Director::start(dir.path(), "");
    let start = Instant::now();
    while dlvsadm(&first.socket, &["-Ln"], None).0 != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the first director never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("dlvs.toml"),
        second.path().join("dlvs.toml"),
    )
    .unwrap();
    let out = Command::new(common::bin())
        .arg("run")
        .arg("--config")
        .arg(second.path().join("dlvs.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("another director answers on it"), "{err}");
    assert_eq!(dlvsadm(&first.socket, &["-Ln"], None).0, 0);
    assert!(first.stop());
}

/// A change dlvsadm makes as soon as the control socket exists (an
/// operator's start script: start `dlvs run`, wait for the socket, add the
/// services) reaches the data plane: SYNs to the new service are forwarded
/// to its real server, not dropped as `host_unhandled`. Twice, as the
/// script would be run. (A request sent before the workers run waits in
/// the socket's backlog and is answered just before they start.)
#[test]
fn changes_made_at_start_reach_the_workers() {
    for round in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let syn = common::tcp_frame(
            common::CLIENT_MAC,
            common::CLIENT_IP,
            40000,
            common::VIP,
            80,
            smoltcp::wire::TcpControl::Syn,
            false,
        );
        let input = dir.path().join("in.pcap");
        dlvs::pcap::write_file(&input, [(1_700_000_000_000_000u64, syn.as_slice())]).unwrap();
        // The SYN again and again (infinite_rx), whatever the director
        // forwards thrown away; the connection table of the default size,
        // which takes a moment to set up; no rules.
        let device = format!(
            "net_pcap0,rx_pcap={},tx_pcap=/dev/null,infinite_rx=1",
            input.display()
        );
        let mut d = Director::start_on(dir.path(), &device, 1_048_576, None);
        let socket = d.socket.clone();
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "round {round}: no control socket"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        for args in [
            &["-A", "-t", "10.0.0.100:80", "-s", "rr"][..],
            &["-a", "-t", "10.0.0.100:80", "-r", "10.0.0.11:80", "-g"],
        ] {
            let (status, out, err) = dlvsadm(&socket, args, None);
            assert_eq!(status, 0, "round {round}: dlvsadm {args:?}: {out}{err}");
        }
        // The workers publish their counters every 100 ms.
        let forwarded = |out: &str| {
            out.lines()
                .find(|l| l.trim_start().starts_with("-> 10.0.0.11:80"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let start = Instant::now();
        loop {
            let (_, out, _) = dlvsadm(&socket, &["-Ln", "--stats"], None);
            if forwarded(&out) > 0 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "round {round}: the SYNs never reached the real server the listing shows:\n{out}log:\n{}",
                std::fs::read_to_string(dir.path().join("dlvs.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(d.stop(), "round {round}: dlvs did not stop cleanly");
    }
}

/// Waits until the director's log holds `needle` more than `before` times
/// (10 s at most).
fn log_says_more(dir: &Path, needle: &str, before: usize) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if log_count(dir, needle) > before {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn log_says(dir: &Path, needle: &str) -> bool {
    log_says_more(dir, needle, 0)
}

fn log_count(dir: &Path, needle: &str) -> usize {
    std::fs::read_to_string(dir.join("dlvs.log"))
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// SIGHUP reloads the configuration and the rules all or nothing: a
/// change the running director can take (a [[mark]], [conn] sloppy) is
/// applied with the rules and logged; one that needs a restart, a broken
/// configuration and a broken rules file each change nothing, and the log
/// says why.
#[test]
fn sighup_reloads_configuration_and_rules_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11 -g\n";
    let mut d = Director::start(dir.path(), rules);
    let start = Instant::now();
    while dlvsadm(&d.socket, &["-Ln"], None).0 != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the director never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let cfg_path = dir.path().join("dlvs.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    let hup = |d: &Director| {
        let ok = Command::new("kill")
            .arg("-HUP")
            .arg(d.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    let save = |d: &Director| dlvsadm(&d.socket, &["-S", "-n"], None).1;

    // A mark, sloppy TCP and a fwmark service: all taken.
    let live = cfg.replace("[conn]\n", "[conn]\nsloppy = true\n")
        + "\n[[mark]]\nmark = 7\ndestination = \"10.0.0.100/32\"\nprotocol = \"tcp\"\nports = [443]\n";
    std::fs::write(&cfg_path, &live).unwrap();
    std::fs::write(
        dir.path().join("dlvs.rules"),
        format!("{rules}-A -f 7 -s wlc\n-a -f 7 -r 10.0.0.12 -g\n"),
    )
    .unwrap();
    hup(&d);
    assert!(
        log_says(
            dir.path(),
            "2 virtual service(s), 2 real server(s) (was 1, 1); [[mark]]: 1 rule(s), was 0; [conn] sloppy = true"
        ),
        "{}",
        std::fs::read_to_string(dir.path().join("dlvs.log")).unwrap()
    );
    let taken = save(&d);
    assert!(taken.contains("-A -f 7 -s wlc"), "{taken}");

    // A bigger table needs a restart: nothing changes, the log says why.
    std::fs::write(
        &cfg_path,
        live.replace("capacity = 1024", "capacity = 2048"),
    )
    .unwrap();
    std::fs::write(dir.path().join("dlvs.rules"), rules).unwrap();
    hup(&d);
    assert!(log_says(dir.path(), "[conn] capacity changed in"));
    assert_eq!(save(&d), taken);
    // So does a VRRP instance (the host is built at start).
    std::fs::write(
        &cfg_path,
        format!(
            "{live}\n[[vrrp]]\ninterface = \"lan0\"\nvirtual_router_id = 9\nvirtual_addresses = [\"10.0.0.209\"]\n"
        ),
    )
    .unwrap();
    hup(&d);
    assert!(log_says(dir.path(), "[[vrrp]] changed in"));
    assert_eq!(save(&d), taken);

    // A broken configuration, then a broken rules file: nothing changes.
    // (each refusal counted: an earlier one logged the same words)
    let refused = "configuration not reloaded (nor the rules)";
    let before = log_count(dir.path(), refused);
    std::fs::write(&cfg_path, live.replace("[conn]", "[conn\n")).unwrap();
    hup(&d);
    assert!(log_says_more(dir.path(), refused, before));
    std::fs::write(&cfg_path, &live).unwrap();
    std::fs::write(
        dir.path().join("dlvs.rules"),
        "-A -t 10.0.0.100:80 -s nosuch\n",
    )
    .unwrap();
    let refused = "rules not reloaded, the services stay as they were";
    let before = log_count(dir.path(), refused);
    hup(&d);
    assert!(log_says_more(dir.path(), refused, before));
    assert_eq!(save(&d), taken);
    assert!(d.stop());
}
