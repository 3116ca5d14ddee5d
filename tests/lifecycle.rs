//! The director's lifecycle through the real binary: buffer sizing checked
//! at start-up, a worker's failure reaching the exit status, the control
//! CPUs checked.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs `dlvs replay` over `frames` with `config_text`; (success, stderr).
fn replay_status(config_text: &str, frames: &[Vec<u8>]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dlvs.toml");
    std::fs::write(&cfg, config_text).unwrap();
    let input = dir.path().join("in.pcap");
    dlvs::pcap::write_file(
        &input,
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| (1_700_000_000_000_000 + i as u64 * 1000, f.as_slice())),
    )
    .unwrap();
    let out = run_replay(&cfg, &input, &dir.path().join("out.pcap"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

#[test]
fn too_few_mbufs_name_the_key_and_the_number_needed() {
    let (ok, err) = replay_status(&config("").replace("mbufs = 4095", "mbufs = 2047"), &[]);
    assert!(!ok);
    let last = last_line(&err);
    // One port, one worker: 1024 + 1024 descriptors, a cache of 256
    // (384 at DPDK's flush threshold), 256 held for ARP, 64 in bursts.
    assert!(
        last.contains("[dpdk] mbufs = 2047 is too few: 2752 needed"),
        "{last}"
    );
    // Fewer descriptors make the same pool enough.
    let (ok, err) = replay_status(
        &config("").replace("mbufs = 4095", "mbufs = 2047\nrx_desc = 512\ntx_desc = 512"),
        &[],
    );
    assert!(ok, "{err}");
}

/// With `mtu` on lan0 (and `dpdk` keys added to the base config): a
/// full-size echo request is answered whole, one a byte bigger is
/// dropped as oversize.
fn full_size_answered_one_byte_more_dropped(mtu: usize, dpdk: &str) {
    let cfg = config("").replace("mbufs = 4095", dpdk).replace(
        "addresses = [\"10.0.0.2/24\", \"10.0.0.100/32\"]",
        &format!("addresses = [\"10.0.0.2/24\", \"10.0.0.100/32\"]\nmtu = {mtu}"),
    );
    let frame = |seq: u16, ip_len: usize| {
        let data: Vec<u8> = (0..ip_len - 28).map(|i| i as u8).collect();
        eth(
            CLIENT_MAC,
            DIR_MAC,
            0x0800,
            &ipv4(CLIENT_IP, VIP, 1, &icmp_echo(7, seq, &data)),
        )
    };
    let full = frame(1, mtu);
    assert_eq!(full.len(), 14 + mtu);
    let r = replay(
        &cfg,
        &[
            arp_request(CLIENT_MAC, CLIENT_IP, VIP),
            full,
            frame(2, mtu + 1),
        ],
    );
    r.assert_accounted();
    assert_eq!(r.dropped("oversize"), 1, "{}", r.summary);
    let replies: Vec<_> = r
        .after_announcements()
        .into_iter()
        .filter_map(|o| match o {
            Out::EchoReply { data, seq, .. } => Some((seq, data.len())),
            _ => None,
        })
        .collect();
    assert_eq!(replies, vec![(1, mtu - 28)], "{}", r.summary);
}

/// `[dpdk] mbuf_size` smaller than the default: with MTU 576, 640-byte
/// buffers hold a full-size frame. The buffers really are that size:
/// 150,000 of them fit the EAL's 256 MB, which they would not at the
/// default 2048 bytes (checked: the pool cannot be created then).
#[test]
fn small_buffers_hold_the_mtu() {
    full_size_answered_one_byte_more_dropped(576, "mbufs = 150000\nmbuf_size = 640");
}

/// A 9000-byte MTU: the pool's buffers are sized for it.
#[test]
fn jumbo_frames_fit_the_buffers() {
    full_size_answered_one_byte_more_dropped(9000, "mbufs = 4095");
}

#[test]
fn unavailable_control_cpus_are_refused() {
    let (ok, err) = replay_status(
        &config("").replace("mbufs = 4095", "mbufs = 4095\ncontrol_cpus = \"1000\""),
        &[],
    );
    assert!(!ok);
    let last = last_line(&err);
    assert!(
        last.contains("[dpdk] control_cpus: CPU(s) 1000 are not available"),
        "{last}"
    );
}

/// `dlvs run` on null devices with the given lcores, environment and a
/// deadline; returns (exit success, stderr).
fn run_briefly(lcores: &str, env: &[(&str, &str)], stop_after: Option<Duration>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dlvs.toml");
    // Each run its own control socket: these tests run at once.
    let socket = dir.path().join("dlvs.sock");
    let text = config(&format!(
        "[control]\nsocket = {:?}\n",
        socket.display().to_string()
    ))
    .replace("\"-l\", \"0\"", &format!("\"-l\", \"{lcores}\""))
    .replace("device = \"net_null0\"", "device = \"net_null0,no-rx=1\"")
    .replace("mbufs = 4095", "mbufs = 8191");
    std::fs::write(&cfg, text).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("running dlvs");
    let start = Instant::now();
    let limit = Duration::from_secs(20);
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        if stop_after.is_some_and(|d| start.elapsed() >= d) || start.elapsed() >= limit {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() < limit + Duration::from_secs(10),
        "dlvs did not stop"
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A worker that panics on a launched lcore stops the director with a
/// non-zero exit naming the lcore, by itself, without a signal.
#[test]
fn a_failing_worker_stops_the_director_with_an_error() {
    let (ok, err) = run_briefly("0-1", &[("DLVS_TEST_FAULT", "worker-panic:1")], None);
    assert!(!ok, "{err}");
    assert!(err.contains("injected fault"), "{err}");
    assert!(
        err.contains("the worker on lcore 1 ended on its own"),
        "{err}"
    );
    assert!(
        last_line(&err).contains("worker on lcore 1 failed: panicked"),
        "{err}"
    );
}

/// The same for the worker on the main lcore.
#[test]
fn a_failing_main_worker_stops_the_director_with_an_error() {
    let (ok, err) = run_briefly("0", &[("DLVS_TEST_FAULT", "worker-panic:0")], None);
    assert!(!ok, "{err}");
    assert!(
        last_line(&err).contains("worker on lcore 0 failed: panicked: injected fault"),
        "{err}"
    );
}

/// Without a fault the same run stops cleanly on SIGTERM, and says where
/// its control threads run.
#[test]
fn a_healthy_run_stops_cleanly_and_places_its_control_threads() {
    let (ok, err) = run_briefly("0", &[], Some(Duration::from_secs(2)));
    assert!(ok, "{err}");
    assert!(err.contains("control threads on CPU(s)"), "{err}");
}
