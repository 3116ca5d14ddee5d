//! Bad configuration and bad input through the real binary: a non-zero
//! exit with one clear last line naming the cause, nothing left behind.

mod common;

use std::process::Command;

use common::*;

/// Runs `dlvs replay` with `config_text` and an empty capture; returns the
/// exit success and the last stderr line.
fn replay_err(config_text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, config_text).unwrap();
    let input = dir.path().join("in.pcap");
    dlvs::pcap::write_file(&input, std::iter::empty()).unwrap();
    let out = run_replay(&cfg, &input, &dir.path().join("out.pcap"));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("").to_string();
    (out.status.success(), last)
}

/// Runs the dlvs binary with `args`: (success, stdout, stderr).
fn dlvs<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("running dlvs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_fails(config_text: &str, needles: &[&str]) {
    let (ok, last) = replay_err(config_text);
    assert!(!ok, "should fail: {needles:?}");
    assert!(last.starts_with("dlvs: error: "), "{last}");
    for n in needles {
        assert!(last.contains(n), "{n:?} not in {last:?}");
    }
}

#[test]
fn missing_config_file() {
    let (ok, _, err) = dlvs(&["run", "--config", "/nonexistent/dlvs.toml"]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/dlvs.toml") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn unknown_key_is_named() {
    assert_fails(
        &config("").replace(
            "mac = \"02:00:00:00:00:01\"",
            "mac = \"02:00:00:00:00:01\"\nspeed = 10",
        ),
        &["bad.toml", "speed", "interface[0]"],
    );
}

#[test]
fn buffers_too_small_for_the_mtu_are_named() {
    assert_fails(
        &config("").replace("mbufs = 4095", "mbufs = 4095\nmbuf_size = 1500"),
        &[
            "dpdk.mbuf_size",
            "interface[0] (lan0)",
            "mtu 1500",
            "at least 1522",
        ],
    );
}

#[test]
fn bad_address_is_named() {
    assert_fails(
        &config("").replace("10.0.0.100/32", "10.0.0.300/32"),
        &["interface[0].addresses[1]", "10.0.0.300"],
    );
}

#[test]
fn unknown_device_is_named() {
    // Only the first interface is replaced in replay; the second is real.
    assert_fails(
        &config(
            r#"
[[interface]]
name = "wan0"
device = "net_bogus0"
addresses = ["192.0.2.2/24"]
"#,
        ),
        &["wan0", "net_bogus0"],
    );
}

#[test]
fn eal_failure_is_reported() {
    assert_fails(
        &config("").replace("\"-l\", \"0\"", "\"-l\", \"0\", \"--no-such-eal-flag\""),
        &["EAL"],
    );
}

#[test]
fn bad_capture_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ok.toml");
    std::fs::write(&cfg, config("")).unwrap();
    let input = dir.path().join("in.pcap");
    std::fs::write(&input, b"this is not a capture file at all").unwrap();
    let out = run_replay(&cfg, &input, &dir.path().join("out.pcap"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in.pcap") && err.contains("not a pcap"),
        "{err}"
    );
}

#[test]
fn check_accepts_a_good_config_and_summarises_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ok.toml");
    std::fs::write(&cfg, config("")).unwrap();
    let (ok, text, err) = dlvs(&["check".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    assert!(ok, "{err}");
    assert!(
        text.starts_with(&format!("{}: ok", cfg.display())),
        "{text}"
    );
    assert!(text.contains("interface lan0 on net_null0"), "{text}");
    assert!(
        text.contains("route 0.0.0.0/0 via 10.0.0.1 on lan0"),
        "{text}"
    );
    assert!(text.contains("1048576 connection(s) per lcore"), "{text}");
    // Without --config: the built-in demo lab configuration.
    let (ok, text, _) = dlvs(&["check"]);
    assert!(ok);
    assert!(text.contains("net_tap0,iface=dtap0"), "{text}");
}

#[test]
fn check_refuses_a_bad_config_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        config("").replace("via = \"10.0.0.1\"", "via = \"172.16.0.1\""),
    )
    .unwrap();
    let (ok, _, err) = dlvs(&["check".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.toml") && err.contains("route[0].via") && err.contains("172.16.0.1"),
        "{err}"
    );
}

#[test]
fn check_prints_the_rules_as_ipvsadm_saves_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ok.toml");
    std::fs::write(&cfg, config("")).unwrap();
    let rules = dir.path().join("lvs.rules");
    std::fs::write(
        &rules,
        "-A -t 10.0.0.100:http -s wlc -p\n-a -t 10.0.0.100:80 -r 10.0.0.11:8080 --masquerading -w 3\n",
    )
    .unwrap();
    let (ok, text, err) = dlvs(&[
        "check".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
        "--rules".as_ref(),
        rules.as_os_str(),
    ]);
    assert!(ok, "{err}");
    assert!(
        text.contains("1 virtual service(s), 1 real server(s)"),
        "{text}"
    );
    assert!(text.contains("-A -t 10.0.0.100:80 -s wlc -p 300"), "{text}");
    assert!(
        text.contains("-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m -w 3"),
        "{text}"
    );
    // A scheduler the rules parser knows but that cannot take the servers
    // is refused with its line.
    std::fs::write(&rules, "-A -t 10.0.0.100:80 -s nosuch\n").unwrap();
    let (ok, _, err) = dlvs(&[
        "check".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
        "--rules".as_ref(),
        rules.as_os_str(),
    ]);
    assert!(!ok);
    assert!(err.contains("lvs.rules") && err.contains("line 1"), "{err}");
}

/// `dlvs check --keepalived FILE` loads the virtual_server blocks with the
/// rules, prints them and names what it does not support; a malformed
/// file, or a service in both, is refused naming file and line.
#[test]
fn check_loads_a_keepalived_conf() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dlvs.toml");
    std::fs::write(&cfg, with_kernel(&config(""))).unwrap();
    let conf = dir.path().join("keepalived.conf");
    std::fs::write(
        &conf,
        "virtual_server 10.0.0.100 80 {\n  lb_algo wrr\n  lb_kind DR\n  alpha\n  \
         real_server 10.0.0.11 80 {\n    weight 2\n    TCP_CHECK {\n      connect_timeout 2\n    }\n  }\n}\n\
         global_defs {\n  lvs_sync_daemon lan0 VI_1 id 4\n}\n\
         vrrp_instance VI_1 {\n  interface lan0\n  virtual_router_id 7\n  priority 120\n  \
         virtual_ipaddress {\n    10.0.0.200/24\n  }\n  track_script {\n    chk\n  }\n}\n",
    )
    .unwrap();
    let args = |extra: &[&std::ffi::OsStr]| {
        let mut a: Vec<std::ffi::OsString> =
            vec!["check".into(), "--config".into(), cfg.clone().into()];
        a.extend(extra.iter().map(|s| s.to_os_string()));
        a
    };
    let (ok, text, err) = dlvs(&args(&["--keepalived".as_ref(), conf.as_os_str()]));
    assert!(ok, "{err}");
    assert!(text.contains("-A -t 10.0.0.100:80 -s wrr"), "{text}");
    assert!(
        text.contains("-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 2"),
        "{text}"
    );
    assert!(
        text.contains("keepalived.conf:4: alpha: not supported, ignored"),
        "{text}"
    );
    // The VRRP instance and the sync daemon move over, what dlvs does not
    // do named with its line.
    assert!(
        text.contains("vrrp VI_1 on lan0: virtual router 7, priority 120, version 2, advert 1000 ms, preempt, addresses 10.0.0.200"),
        "{text}"
    );
    assert!(
        text.contains("sync on lan0 from 10.0.0.2: syncid 4, version 1, threshold 3, period 50, master while VI_1 is MASTER"),
        "{text}"
    );
    assert!(
        text.contains("keepalived.conf:22: track_script: not supported, ignored"),
        "{text}"
    );
    // Its checkers with no exception path to run on: refused.
    std::fs::write(dir.path().join("nokernel.toml"), config("")).unwrap();
    let (ok, _, err) = dlvs(&[
        "check".as_ref(),
        "--config".as_ref(),
        dir.path().join("nokernel.toml").as_os_str(),
        "--keepalived".as_ref(),
        conf.as_os_str(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("keepalived.conf: virtual_server tcp/10.0.0.100:80: its checkers cannot run")
            && err.contains("kernel = \"NAME\""),
        "{err}"
    );
    // The same service in the rules file too: refused.
    let rules = dir.path().join("dlvs.rules");
    std::fs::write(&rules, "-A -t 10.0.0.100:80 -s rr\n").unwrap();
    let (ok, _, err) = dlvs(&args(&[
        "--rules".as_ref(),
        rules.as_os_str(),
        "--keepalived".as_ref(),
        conf.as_os_str(),
    ]));
    assert!(!ok);
    assert!(err.contains("keepalived.conf:1: virtual_server -t 10.0.0.100:80: the rules file has it too (line 1)"), "{err}");
    // Unbalanced braces.
    std::fs::write(&conf, "virtual_server 10.0.0.100 80 {\n").unwrap();
    let (ok, _, err) = dlvs(&args(&["--keepalived".as_ref(), conf.as_os_str()]));
    assert!(!ok);
    assert!(
        err.contains("keepalived.conf:1: this block is not closed"),
        "{err}"
    );
}

/// `config("")` with an exception path on lan0.
fn with_kernel(cfg: &str) -> String {
    let with = cfg.replace(
        "addresses = [\"10.0.0.2/24\", \"10.0.0.100/32\"]",
        "addresses = [\"10.0.0.2/24\", \"10.0.0.100/32\"]\nkernel = \"dk0\"",
    );
    assert_ne!(with, cfg);
    with
}

/// Health checks are the director's kernel's own connections: without an
/// exception path they could reach no real server and would take every
/// one out. `dlvs check` and `dlvs run` refuse that, naming the `kernel`
/// key; with one, the configuration loads.
#[test]
fn health_checks_need_an_exception_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("health.toml");
    let health = "[[health]]\nservice = \"tcp/10.0.0.100:80\"\ncheck = \"tcp_connect\"\n";
    std::fs::write(&cfg, config(health)).unwrap();
    for cmd in ["check", "run"] {
        let (ok, _, err) = dlvs(&[cmd.as_ref(), "--config".as_ref(), cfg.as_os_str()]);
        assert!(!ok, "dlvs {cmd} should refuse it");
        assert_eq!(err.lines().count(), 1, "{err}");
        for n in [
            "health.toml: health[0]: ",
            "exception path",
            "kernel = \"NAME\"",
        ] {
            assert!(err.contains(n), "dlvs {cmd}: {n:?} not in {err:?}");
        }
    }
    std::fs::write(&cfg, with_kernel(&config(health))).unwrap();
    let (ok, _, err) = dlvs(&["check".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    assert!(ok, "{err}");
}

/// `[[vrrp]]` and `[sync]` are checked whole, and an error names the
/// field; a good pair is summarised.
#[test]
fn check_summarises_and_refuses_vrrp_and_sync() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ha.toml");
    let good = format!(
        "{}\n[[vrrp]]\nname = \"VI_1\"\ninterface = \"lan0\"\nvirtual_router_id = 51\n\
         priority = 150\nvirtual_addresses = [\"10.0.0.200/32\"]\n\n\
         [sync]\ninterface = \"lan0\"\nsyncid = 7\n",
        config("")
    );
    std::fs::write(&cfg, &good).unwrap();
    let (ok, out, err) = dlvs(&["check".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("vrrp VI_1 on lan0: virtual router 51, priority 150, version 2, advert 1000 ms, preempt, addresses 10.0.0.200"),
        "{out}"
    );
    assert!(
        out.contains("sync on lan0 from 10.0.0.2: syncid 7, version 1, threshold 3, period 50, master while VI_1 is MASTER"),
        "{out}"
    );
    for (from, to, needles) in [
        (
            "[\"10.0.0.200/32\"]",
            "[\"10.0.0.100\"]",
            &[
                "vrrp[0].virtual_addresses[0]",
                "10.0.0.100 is an address of interface \"lan0\"",
            ][..],
        ),
        (
            "priority = 150",
            "priority = 255",
            &["vrrp[0].priority", "255 is outside 1..=254"],
        ),
        (
            "priority = 150",
            "priority = 150\nadvert_int_ms = 1500",
            &["vrrp[0].advert_int_ms", "whole seconds"],
        ),
        (
            "interface = \"lan0\"\nsyncid",
            "interface = \"wan9\"\nsyncid",
            &["sync.interface", "wan9"],
        ),
        (
            "syncid = 7",
            "syncid = 7\nvrrp = \"VI_2\"",
            &["sync.vrrp", "VI_2"],
        ),
        (
            "syncid = 7",
            "syncid = 7\nthreshold = 50",
            &["sync.threshold"],
        ),
    ] {
        let bad = good.replacen(from, to, 1);
        assert_ne!(bad, good, "{from}");
        std::fs::write(&cfg, &bad).unwrap();
        let (ok, _, err) = dlvs(&["check".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
        assert!(!ok, "{to} should be refused");
        assert_eq!(err.lines().count(), 1, "{err}");
        for n in needles.iter().chain(&["ha.toml"]) {
            assert!(err.contains(n), "{n:?} not in {err:?}");
        }
    }
}

/// `[bgp]` is checked whole (its interface needs an exception path, its
/// peers a connected subnet) and summarised.
#[test]
fn check_summarises_and_refuses_bgp() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bgp.toml");
    let good = format!(
        "{}\n[bgp]\ninterface = \"lan0\"\nlocal_as = 65001\nrouter_id = \"10.0.0.2\"\n\
         peers = [{{ address = \"10.0.0.254\", remote_as = 65000 }}]\n",
        config("").replace(
            "addresses = [\"10.0.0.2/24\", \"10.0.0.100/32\"]",
            "addresses = [\"10.0.0.2/24\", \"10.0.0.100/32\"]\nkernel = \"dk0\""
        )
    );
    std::fs::write(&cfg, &good).unwrap();
    let (ok, out, err) = dlvs(&["check".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("bgp on lan0 (kernel side dk0) from 10.0.0.2 as 65001, router id 10.0.0.2, drain 5 s: peers 10.0.0.254 as 65000 (bfd)"),
        "{out}"
    );
    for (from, to, needles) in [
        (
            "kernel = \"dk0\"\n",
            "",
            &["bgp.interface", "no exception path"][..],
        ),
        (
            "10.0.0.254",
            "172.16.0.1",
            &["bgp.peers[0].address", "not on a subnet"],
        ),
        (
            "local_as = 65001",
            "local_as = 0",
            &["bgp.local_as", "not an AS number"],
        ),
        (
            "router_id = \"10.0.0.2\"",
            "router_id = \"x\"",
            &["bgp.router_id"],
        ),
    ] {
        let bad = good.replacen(from, to, 1);
        assert_ne!(bad, good, "{from}");
        std::fs::write(&cfg, &bad).unwrap();
        let (ok, _, err) = dlvs(&["check".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
        assert!(!ok, "{to} should be refused");
        for n in needles {
            assert!(err.contains(n), "{n:?} not in {err:?}");
        }
    }
}
