//! The configuration's validation, section by section.

use std::net::Ipv4Addr;

use super::*;

const GOOD: &str = r#"
[dpdk]
eal_args = ["--no-huge", "-m", "512"]

[[interface]]
name = "lan0"
device = "net_tap0,iface=dlvs0"
mac = "02:00:00:00:00:01"
addresses = ["10.0.0.2/24", "10.0.0.100/32"]

[[interface]]
name = "wan0"
device = "net_null0"
addresses = ["192.0.2.2/30"]

[[neighbor]]
interface = "lan0"
ip = "10.0.0.11"
mac = "02:00:00:00:01:11"

[[route]]
prefix = "0.0.0.0/0"
via = "192.0.2.1"

[metrics]
listen = "127.0.0.1:9900"
"#;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("t.toml"))
}

fn err(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

#[test]
fn good_config_resolves_everything() {
    let c = load(GOOD).unwrap();
    assert_eq!(c.interfaces.len(), 2);
    assert_eq!(c.interfaces[0].mtu, DEFAULT_MTU);
    assert_eq!(c.dpdk.mbufs, DEFAULT_MBUFS);
    assert_eq!(
        c.interfaces[0].mac,
        Some("02:00:00:00:00:01".parse().unwrap())
    );
    assert_eq!(c.neighbors[0].port, 0);
    // The default route leaves through wan0, where its gateway lives;
    // connected subnets follow the configured routes; the /32 VIP has none.
    assert_eq!(c.routes[0].port, 1);
    assert_eq!(c.routes[0].via, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(c.routes.len(), 3);
    assert_eq!(c.routes[1].prefix.to_string(), "10.0.0.0/24");
    assert_eq!(c.routes[2].prefix.to_string(), "192.0.2.0/30");
    assert_eq!(c.metrics.unwrap().listen.port(), 9900);
    assert_eq!(c.arp, ArpConfig::default());
}

#[test]
fn unknown_keys_are_named() {
    let e = err(&GOOD
        .replace("mtu", "x")
        .replace("name = \"wan0\"", "name = \"wan0\"\nspeed = 10"));
    assert!(e.contains("speed") && e.contains("interface[1]"), "{e}");
    let e = err(&format!("{GOOD}\n[bogus]\nx = 1\n"));
    assert!(e.contains("bogus"), "{e}");
}

#[test]
fn syntax_errors_give_the_line() {
    let e = err("[[interface]\nname = 'a'\n");
    assert!(e.contains("t.toml") && e.contains("line 1"), "{e}");
}

#[test]
fn bad_values_name_the_field() {
    for (from, to, want) in [
        ("10.0.0.2/24", "10.0.0.300/24", "interface[0].addresses[0]"),
        ("10.0.0.2/24", "10.0.0.2/33", "interface[0].addresses[0]"),
        ("10.0.0.2/24", "10.0.0.2", "interface[0].addresses[0]"),
        ("02:00:00:00:00:01", "02:00:00:00:00", "interface[0].mac"),
        ("02:00:00:00:00:01", "01:00:5e:00:00:01", "interface[0].mac"),
        (
            "interface = \"lan0\"",
            "interface = \"nope\"",
            "neighbor[0].interface",
        ),
        ("ip = \"10.0.0.11\"", "ip = \"ten\"", "neighbor[0].ip"),
        (
            "via = \"192.0.2.1\"",
            "via = \"172.16.0.1\"",
            "route[0].via",
        ),
        (
            "prefix = \"0.0.0.0/0\"",
            "prefix = \"10.1.2.3/8\"",
            "route[0].prefix",
        ),
        ("127.0.0.1:9900", "localhost", "metrics.listen"),
        ("\"net_null0\"", "\"net_tap0\"", "interface[1].device"),
        ("\"wan0\"", "\"lan0\"", "interface[1].name"),
        ("192.0.2.2/30", "10.0.0.100/32", "interface[1].addresses[0]"),
    ] {
        assert!(GOOD.contains(from), "{from}");
        let e = err(&GOOD.replacen(from, to, 1));
        assert!(e.contains(want), "{from} -> {to}: {e}");
    }
}

#[test]
fn missing_file_names_it() {
    let e = Config::load(Path::new("/nonexistent/dlvs.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nonexistent/dlvs.toml") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn no_interface_is_an_error() {
    assert!(err("[dpdk]\neal_args = []\n").contains("[[interface]]"));
}

#[test]
fn dpdk_keys() {
    let c = load(&GOOD.replace(
        "eal_args = [\"--no-huge\", \"-m\", \"512\"]",
        "eal_args = []\nrx_desc = 512\ntx_desc = 256\ncontrol_cpus = \"3, 0-1,1\"",
    ))
    .unwrap();
    assert_eq!((c.dpdk.rx_desc, c.dpdk.tx_desc), (512, 256));
    assert_eq!(c.dpdk.control_cpus, Some(vec![0, 1, 3]));
    assert_eq!(load(GOOD).unwrap().dpdk.control_cpus, None);
    for (k, v, want) in [
        ("rx_desc", "8", "dpdk.rx_desc"),
        ("tx_desc", "20000", "dpdk.tx_desc"),
        ("control_cpus", "\"2-1\"", "backwards"),
        ("control_cpus", "\"a\"", "dpdk.control_cpus"),
        ("control_cpus", "\"\"", "dpdk.control_cpus"),
    ] {
        let e = err(&GOOD.replace("[dpdk]\n", &format!("[dpdk]\n{k} = {v}\n")));
        assert!(e.contains(want), "{k} = {v}: {e}");
    }
}

#[test]
fn marks_and_conn() {
    let c = load(&format!(
        "{GOOD}\n[[mark]]\nmark = 1\ndestination = \"10.0.0.100/32\"\nprotocol = \"tcp\"\nports = [80, 443]\n\n[[mark]]\nmark = 2\ndestination = \"10.0.1.0/24\"\n\n[conn]\ncapacity = 4096\nsloppy = true\nexpire_nodest_conn = true\n"
    ))
    .unwrap();
    assert_eq!(c.marks.len(), 2);
    let vip = Ipv4Addr::new(10, 0, 0, 100);
    assert!(c.marks[0].matches(6, vip, 443));
    assert!(!c.marks[0].matches(17, vip, 443));
    assert!(!c.marks[0].matches(6, vip, 8080));
    assert!(c.marks[1].matches(17, Ipv4Addr::new(10, 0, 1, 9), 53));
    assert!(!c.marks[1].matches(1, Ipv4Addr::new(10, 0, 1, 9), 0));
    assert_eq!(
        c.conn,
        ConnConfig {
            capacity: 4096,
            sloppy: true,
            expire_nodest_conn: true,
        }
    );
    assert_eq!(load(GOOD).unwrap().conn, ConnConfig::default());
    for (extra, want) in [
        (
            "[[mark]]\nmark = 0\ndestination = \"10.0.0.0/8\"",
            "mark[0].mark",
        ),
        (
            "[[mark]]\nmark = 4294967296\ndestination = \"10.0.0.0/8\"",
            "mark[0].mark",
        ),
        (
            "[[mark]]\nmark = 1\ndestination = \"10.0.0.1/8\"",
            "host bits",
        ),
        (
            "[[mark]]\nmark = 1\ndestination = \"10.0.0.0/8\"\nprotocol = \"sctp\"",
            "mark[0].protocol",
        ),
        (
            "[[mark]]\nmark = 1\ndestination = \"10.0.0.0/8\"\nports = [0]",
            "mark[0].ports",
        ),
        (
            "[[mark]]\nmark = 1\ndestination = \"10.0.0.0/8\"\nport = 80",
            "port",
        ),
        ("[conn]\ncapacity = 10", "conn.capacity"),
    ] {
        let e = err(&format!("{GOOD}\n{extra}\n"));
        assert!(e.contains(want), "{extra}: {e}");
    }
    // Sections that GOOD has: the key goes in its own section.
    for (extra, want) in [
        (
            "mbuf_size = 1000",
            "dpdk.mbuf_size: 1000 is too small for interface[0]",
        ),
        ("mbuf_size = 65500", "dpdk.mbuf_size: 65500 does not fit"),
    ] {
        let e = err(&GOOD.replacen("[dpdk]\n", &format!("[dpdk]\n{extra}\n"), 1));
        assert!(e.contains(want), "{extra}: {e}");
    }
}

#[test]
fn cpu_lists() {
    assert_eq!(parse_cpu_list("0").unwrap(), vec![0]);
    assert_eq!(parse_cpu_list("4-6,1").unwrap(), vec![1, 4, 5, 6]);
    assert!(parse_cpu_list("1,,2").is_err());
    assert!(parse_cpu_list("5000").is_err());
    assert_eq!(format_cpu_list(&[0, 2, 3, 4, 7]), "0,2-4,7");
    assert_eq!(format_cpu_list(&[]), "");
}

#[test]
fn prefix_arithmetic() {
    let p: Prefix = "10.1.2.3/24".parse().unwrap();
    assert_eq!(p.network(), Ipv4Addr::new(10, 1, 2, 0));
    assert_eq!(p.broadcast(), Some(Ipv4Addr::new(10, 1, 2, 255)));
    assert!(p.contains(Ipv4Addr::new(10, 1, 2, 200)));
    assert!(!p.contains(Ipv4Addr::new(10, 1, 3, 1)));
    let d: Prefix = "0.0.0.0/0".parse().unwrap();
    assert!(d.contains(Ipv4Addr::new(8, 8, 8, 8)));
    assert_eq!(d.mask(), 0);
    let h: Prefix = "10.0.0.1/32".parse().unwrap();
    assert_eq!(h.broadcast(), None);
}
