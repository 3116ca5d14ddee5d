use std::net::Ipv4Addr;

use super::*;
use crate::names::ServiceNames;
use crate::rules::*;

/// A small services(5) file: `http`, `https` and `domain` come from it,
/// other names from the built-in table.
const SERVICES: &str = "http 80/tcp www\nhttps 443/tcp\ndomain 53/tcp\ndomain 53/udp\n";

/// Host names without DNS.
fn hosts(name: &str) -> Result<Ipv4Addr, String> {
    match name {
        "lb.example.com" => Ok(Ipv4Addr::new(10, 0, 0, 100)),
        "web1.example.com" => Ok(Ipv4Addr::new(10, 0, 0, 11)),
        "web2.example.com" => Ok(Ipv4Addr::new(10, 0, 0, 12)),
        _ => Err(format!("cannot resolve host name {name:?}")),
    }
}

fn parse(text: &str) -> Result<Rules, RulesError> {
    let services = OnceCell::new();
    let _ = services.set(ServiceNames::from_services_text(SERVICES));
    let lookup = Lookup {
        services: &services,
        host: &hosts,
    };
    parse_with(text, Path::new("rules.txt"), &lookup)
}

fn ok(text: &str) -> Rules {
    parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The only service of `text`.
fn service(text: &str) -> ServiceRule {
    let rules = ok(text);
    assert_eq!(rules.services.len(), 1, "{text}");
    rules.services.into_iter().next().unwrap()
}

/// The only real server of `-A -t 10.0.0.100:80` given its `-a` options.
fn dest(options: &str) -> DestRule {
    let s = service(&format!(
        "-A -t 10.0.0.100:80\n-a -t 10.0.0.100:80 {options}\n"
    ));
    assert_eq!(s.dests.len(), 1);
    s.dests.into_iter().next().unwrap()
}

/// The error of `text`, which must name rules.txt and `line`.
fn err_at(text: &str, line: usize) -> String {
    let e = parse(text).expect_err(text).to_string();
    let prefix = format!("rules.txt: line {line}: ");
    assert!(e.starts_with(&prefix), "{e:?} should start with {prefix:?}");
    e[prefix.len()..].to_owned()
}

/// The error of a one-line file.
fn err(text: &str) -> String {
    err_at(text, 1)
}

/// The error of `-A -t 10.0.0.100:80` followed by an `-a` with `options`.
fn dest_err(options: &str) -> String {
    err_at(
        &format!("-A -t 10.0.0.100:80\n-a -t 10.0.0.100:80 {options}\n"),
        2,
    )
}

fn without_lines(mut r: Rules) -> Rules {
    for s in &mut r.services {
        s.line = 0;
        for d in &mut s.dests {
            d.line = 0;
        }
    }
    r
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

fn tcp(addr: Ipv4Addr, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr,
        port,
    }
}

/// `ipvsadm -S -n` of a director with NAT, DR and TUN servers, a UDP service
/// with one-packet scheduling and a fwmark service, in ipvsadm's order.
const SAVE_N: &str = "\
-A -t 10.0.0.100:80 -s wlc -p 300
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m -w 1
-a -t 10.0.0.100:80 -r 10.0.0.12:8080 -m -w 2
-A -t 10.0.0.100:443 -s sh -b sh-fallback,sh-port
-a -t 10.0.0.100:443 -r 10.0.0.21:443 -g -w 1
-a -t 10.0.0.100:443 -r 10.0.0.22:443 -i -w 1 --tun-type ipip
-a -t 10.0.0.100:443 -r 10.0.0.23:443 -i -w 0 --tun-type gue --tun-port 6080 --tun-csum
-A -u 10.0.0.100:53 -s rr -o
-a -u 10.0.0.100:53 -r 10.0.0.31:53 -m -w 1
-a -u 10.0.0.100:53 -r 10.0.0.32:5353 -m -w 1
-A -f 1 -s wrr -p 600 -M 255.255.255.0
-a -f 1 -r 10.0.0.41:0 -g -w 1
-a -f 1 -r 10.0.0.42:0 -i -w 3 --tun-type gre --tun-nocsum
";

#[test]
fn realistic_save_n_sample() {
    let rules = ok(SAVE_N);
    assert_eq!(rules.services.len(), 4);

    let web = &rules.services[0];
    assert_eq!(web.key, tcp(ip(10, 0, 0, 100), 80));
    assert_eq!(web.scheduler, "wlc");
    assert_eq!(
        web.persistence,
        Some(Persistence {
            timeout_s: 300,
            netmask: Ipv4Addr::BROADCAST
        })
    );
    assert_eq!(web.line, 1);
    assert_eq!(
        web.dests[1],
        DestRule {
            addr: ip(10, 0, 0, 12),
            port: 8080,
            method: Method::Nat,
            weight: 2,
            u_threshold: 0,
            l_threshold: 0,
            line: 3,
        }
    );

    let tls = &rules.services[1];
    assert_eq!(tls.scheduler, "sh");
    assert_eq!(
        tls.flags,
        SchedFlags {
            fallback: true,
            port: true,
            flag3: false
        }
    );
    assert_eq!(tls.persistence, None);
    let methods: Vec<Method> = tls.dests.iter().map(|d| d.method).collect();
    assert_eq!(
        methods,
        [
            Method::Dr,
            Method::Tun(TunConfig {
                kind: TunKind::Ipip,
                port: 0,
                csum: TunCsum::NoCsum
            }),
            Method::Tun(TunConfig {
                kind: TunKind::Gue,
                port: 6080,
                csum: TunCsum::Csum
            }),
        ]
    );
    assert_eq!(tls.dests[2].weight, 0);

    let dns = &rules.services[2];
    assert_eq!(
        dns.key,
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: ip(10, 0, 0, 100),
            port: 53
        }
    );
    assert!(dns.one_packet);

    let mark = &rules.services[3];
    assert_eq!(mark.key, ServiceKey::Fwmark(1));
    assert_eq!(
        mark.persistence,
        Some(Persistence {
            timeout_s: 600,
            netmask: ip(255, 255, 255, 0)
        })
    );
    assert_eq!(mark.dests[0].port, 0);
    assert_eq!(
        mark.dests[1].method,
        Method::Tun(TunConfig {
            kind: TunKind::Gre,
            port: 0,
            csum: TunCsum::NoCsum
        })
    );
    assert_eq!(mark.dests[1].line, 13);

    // Written back exactly as ipvsadm wrote it.
    assert_eq!(rules.to_save_n(), SAVE_N);
}

#[test]
fn save_form_with_host_and_port_names() {
    // `ipvsadm -S` without -n.
    let rules = ok("\
-A -t lb.example.com:http -s wlc
-a -t lb.example.com:http -r web1.example.com:http -m -w 1
-a -t lb.example.com:http -r web2.example.com:www -m -w 1
-A -t lb.example.com:https -s rr
-a -t lb.example.com:https -r web1.example.com:https -g -w 1
-A -u lb.example.com:domain -s rr
-a -u lb.example.com:domain -r web1.example.com:domain -m -w 1
-A -t lb.example.com:ssh -s rr
-a -t lb.example.com:ssh -r web2.example.com:smtp -m -w 1
");
    let keys: Vec<ServiceKey> = rules.services.iter().map(|s| s.key).collect();
    assert_eq!(
        keys,
        [
            tcp(ip(10, 0, 0, 100), 80),
            tcp(ip(10, 0, 0, 100), 443),
            ServiceKey::Addr {
                protocol: Protocol::Udp,
                addr: ip(10, 0, 0, 100),
                port: 53
            },
            // ssh is not in the test's services file: the built-in table.
            tcp(ip(10, 0, 0, 100), 22),
        ]
    );
    let dests: Vec<(Ipv4Addr, u16)> = rules
        .services
        .iter()
        .flat_map(|s| s.dests.iter().map(|d| (d.addr, d.port)))
        .collect();
    assert_eq!(
        dests,
        [
            (ip(10, 0, 0, 11), 80),
            (ip(10, 0, 0, 12), 80),
            (ip(10, 0, 0, 11), 443),
            (ip(10, 0, 0, 11), 53),
            (ip(10, 0, 0, 12), 25),
        ]
    );
    assert_eq!(
        rules.to_save_n().lines().next(),
        Some("-A -t 10.0.0.100:80 -s wlc")
    );
}

#[test]
fn short_and_long_forms_are_the_same() {
    let pairs = [
        (
            "-A -t 10.0.0.1:80 -s rr",
            "--add-service --tcp-service 10.0.0.1:80 --scheduler rr",
        ),
        (
            "-A -u 10.0.0.1:53 -o",
            "--add-service --udp-service=10.0.0.1:53 --ops",
        ),
        (
            "-A -f 7 -p 60 -M 255.255.0.0",
            "--add-service --fwmark-service 7 --persistent 60 --netmask 255.255.0.0",
        ),
        (
            "-A -t 10.0.0.1:80 -s mh -b mh-fallback,mh-port",
            "--add-service --tcp-service 10.0.0.1:80 --scheduler=mh --sched-flags mh-fallback,mh-port",
        ),
        // Attached values and bundled flags, as popt reads them.
        ("-A -t 10.0.0.1:80 -p 60", "-A -t10.0.0.1:80 -p60"),
        ("-A -u 10.0.0.1:53 -o -s rr", "-A -u 10.0.0.1:53 -os rr"),
    ];
    for (short, long) in pairs {
        assert_eq!(
            without_lines(ok(short)),
            without_lines(ok(long)),
            "{short} / {long}"
        );
    }

    let dest_pairs = [
        (
            "-r 10.0.0.2:8080 -m -w 3 -x 100 -y 10",
            "--real-server 10.0.0.2:8080 --masquerading --weight 3 --u-threshold 100 --l-threshold 10",
        ),
        ("-r 10.0.0.2 -g", "--real-server=10.0.0.2 --gatewaying"),
        ("-r 10.0.0.2 -i", "--real-server 10.0.0.2 --ipip"),
        ("-r 10.0.0.2 -m -w 5", "-r 10.0.0.2 -mw5"),
        ("-r 10.0.0.2 -m -w 5", "-r 10.0.0.2 --weight=5 -m"),
        (
            "-r 10.0.0.2 -i --tun-type gue --tun-port 6080 --tun-remcsum",
            "-r 10.0.0.2 -i --tun-type=gue --tun-port=6080 --tun-remcsum",
        ),
    ];
    for (short, long) in dest_pairs {
        let mut a = dest(short);
        let mut b = dest(long);
        a.line = 0;
        b.line = 0;
        assert_eq!(a, b, "{short} / {long}");
    }
    // And the long forms do what they say.
    let r = ok("--add-service --tcp-service 10.0.0.100:80\n\
         --add-server --tcp-service 10.0.0.100:80 --real-server 10.0.0.2:8080 --masquerading \
         --weight 3 --u-threshold 100 --l-threshold 10\n");
    let d = &r.services[0].dests[0];
    assert_eq!(
        (
            d.addr,
            d.port,
            d.method,
            d.weight,
            d.u_threshold,
            d.l_threshold
        ),
        (ip(10, 0, 0, 2), 8080, Method::Nat, 3, 100, 10)
    );
}

#[test]
fn option_order_is_free() {
    let a = service("-A -s rr -p 60 -t 10.0.0.1:80");
    let b = service("-A -t 10.0.0.1:80 -p 60 -s rr");
    assert_eq!(a, b);
    // -b before -s is checked against the -s that follows, as ipvsadm does.
    assert!(service("-A -b sh-port -s sh -t 10.0.0.1:80").flags.port);
    let d = dest("-w 4 -m -r 10.0.0.2:81");
    assert_eq!((d.port, d.method, d.weight), (81, Method::Nat, 4));
}

#[test]
fn persistence_with_and_without_a_timeout() {
    let timeout = |line: &str| service(line).persistence.map(|p| (p.timeout_s, p.netmask));
    let all = Ipv4Addr::BROADCAST;
    let net24 = ip(255, 255, 255, 0);
    assert_eq!(timeout("-A -t 10.0.0.1:80 -p"), Some((300, all)));
    assert_eq!(timeout("-A -t 10.0.0.1:80 --persistent"), Some((300, all)));
    assert_eq!(timeout("-A -t 10.0.0.1:80 -p -s rr"), Some((300, all)));
    assert_eq!(
        timeout("-A -t 10.0.0.1:80 -p -M 255.255.255.0"),
        Some((300, net24))
    );
    assert_eq!(timeout("-A -t 10.0.0.1:80 -p 60"), Some((60, all)));
    assert_eq!(timeout("-A -t 10.0.0.1:80 -p60"), Some((60, all)));
    assert_eq!(
        timeout("-A -t 10.0.0.1:80 --persistent=60"),
        Some((60, all))
    );
    assert_eq!(
        timeout("-A -t 10.0.0.1:80 -p 2678400"),
        Some((2_678_400, all))
    );
    assert_eq!(
        timeout("-A -t 10.0.0.1:80 -M 255.255.255.0 -p 60"),
        Some((60, net24))
    );
    assert_eq!(timeout("-A -t 10.0.0.1:80 -p 60 # sticky"), Some((60, all)));
    assert_eq!(timeout("-A -t 10.0.0.1:80"), None);

    assert_eq!(
        err("-A -t 10.0.0.1:80 -p 0"),
        "invalid persistence timeout (-p) `0`: expected 1 to 2678400"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -p 2678401"),
        "invalid persistence timeout (-p) `2678401`: expected 1 to 2678400"
    );
    // A word not starting with '-' is -p's value, as popt takes it.
    assert_eq!(
        err("-A -t 10.0.0.1:80 -p rr"),
        "invalid persistence timeout (-p) `rr`: expected 1 to 2678400"
    );
}

#[test]
fn netmask_without_persistence_is_accepted_and_has_no_effect() {
    let s = service("-A -t 10.0.0.1:80 -M 255.255.0.0");
    assert_eq!(s.persistence, None);
    assert_eq!(
        Rules { services: vec![s] }.to_save_n(),
        "-A -t 10.0.0.1:80 -s wlc\n"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -p -M 24"),
        "invalid netmask `24` (-M): expected a dotted quad such as 255.255.255.0"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -M 255.255.0"),
        "invalid netmask `255.255.0` (-M): expected a dotted quad such as 255.255.255.0"
    );
}

#[test]
fn one_packet_scheduling_is_for_udp_and_fwmark_services() {
    assert!(service("-A -u 10.0.0.1:53 -o").one_packet);
    assert!(service("-A -f 3 -o").one_packet);
    assert!(!service("-A -u 10.0.0.1:53").one_packet);
    assert_eq!(
        err("-A -t 10.0.0.1:80 -o"),
        "-A -t 10.0.0.1:80: one-packet scheduling (-o) is only for UDP (or fwmark) services"
    );
}

#[test]
fn port_zero_services_need_persistence() {
    let s = service("-A -t 10.0.0.1:0 -p 60");
    assert_eq!(s.key, tcp(ip(10, 0, 0, 1), 0));
    // Without a port, the service is port 0 too.
    assert_eq!(service("-A -t 10.0.0.1 -p").key, tcp(ip(10, 0, 0, 1), 0));
    let expected = "-A -t 10.0.0.1:0: port 0 (every port) needs persistence (-p): the kernel \
                    schedules port-0 services only through persistence templates";
    assert_eq!(err("-A -t 10.0.0.1:0"), expected);
    assert_eq!(err("-A -t 10.0.0.1 -s rr"), expected);
    // Fwmark services have no port: no persistence needed.
    assert_eq!(service("-A -f 2").persistence, None);
    // Their real servers take the port the client used.
    let r = ok("-A -t 10.0.0.1:0 -p\n-a -t 10.0.0.1:0 -r 10.0.0.2 -m\n");
    assert_eq!(r.services[0].dests[0].port, 0);
    assert_eq!(
        r.to_save_n(),
        "-A -t 10.0.0.1:0 -s wlc -p 300\n-a -t 10.0.0.1:0 -r 10.0.0.2:0 -m -w 1\n"
    );
}

#[test]
fn schedulers_and_their_flags() {
    assert_eq!(service("-A -t 10.0.0.1:80").scheduler, "wlc");
    for name in SCHEDULERS {
        assert_eq!(
            service(&format!("-A -t 10.0.0.1:80 -s {name}")).scheduler,
            *name
        );
    }
    assert_eq!(
        err("-A -t 10.0.0.1:80 -s fastest"),
        "-A -t 10.0.0.1:80: unknown scheduler `fastest` (one of rr, wrr, lc, wlc, sed, nq, \
         lblc, lblcr, dh, sh, mh, fo, ovf, twos)"
    );

    let flags = |line: &str| service(line).flags;
    let f = |fallback, port, flag3| SchedFlags {
        fallback,
        port,
        flag3,
    };
    assert_eq!(
        flags("-A -t 10.0.0.1:80 -s sh -b sh-fallback"),
        f(true, false, false)
    );
    assert_eq!(
        flags("-A -t 10.0.0.1:80 -s sh -b sh-port,sh-fallback"),
        f(true, true, false)
    );
    assert_eq!(
        flags("-A -t 10.0.0.1:80 -s mh -b mh-port"),
        f(false, true, false)
    );
    assert_eq!(
        flags("-A -t 10.0.0.1:80 -s rr -b flag-1,flag-2,flag-3"),
        f(true, true, true)
    );
    // Generic flags are the same bits: flag-1 on sh is sh-fallback.
    assert_eq!(
        flags("-A -t 10.0.0.1:80 -s sh -b flag-1"),
        f(true, false, false)
    );
    // strtok(3) skips empty fields.
    assert_eq!(
        flags("-A -t 10.0.0.1:80 -s sh -b ,sh-port,"),
        f(false, true, false)
    );

    assert_eq!(
        err("-A -t 10.0.0.1:80 -b sh-port"),
        "-A -t 10.0.0.1:80: scheduler flag sh-port needs -s sh, not -s wlc"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -s sh -b mh-fallback"),
        "-A -t 10.0.0.1:80: scheduler flag mh-fallback needs -s mh, not -s sh"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -s sh -b sh-sticky"),
        "-A -t 10.0.0.1:80: unknown scheduler flag `sh-sticky` (-b takes sh-fallback, sh-port, \
         mh-fallback, mh-port, flag-1, flag-2, flag-3)"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -s sh -b ,"),
        "-A -t 10.0.0.1:80: -b needs at least one scheduler flag"
    );

    // Written with the scheduler's own names, as ipvsadm prints them.
    let saved = ok("\
-A -t 10.0.0.1:1 -s sh -b flag-2,flag-1
-A -t 10.0.0.1:2 -s mh -b flag-1
-A -t 10.0.0.1:3 -s rr -b flag-3,flag-1
-A -t 10.0.0.1:4 -s sh -b flag-3
")
    .to_save_n();
    assert_eq!(
        saved,
        "\
-A -t 10.0.0.1:1 -s sh -b sh-fallback,sh-port
-A -t 10.0.0.1:2 -s mh -b mh-fallback
-A -t 10.0.0.1:3 -s rr -b flag-1,flag-3
-A -t 10.0.0.1:4 -s sh -b flag-3
"
    );
}

#[test]
fn real_server_ports() {
    // No port: the service's.
    assert_eq!(dest("-r 10.0.0.2 -m").port, 80);
    assert_eq!(dest("-r 10.0.0.2").port, 80);
    // NAT may change the port.
    assert_eq!(dest("-r 10.0.0.2:8080 -m").port, 8080);
    assert_eq!(dest("-r 10.0.0.2:0 -m").port, 0);
    // DR and TUN cannot: ipvsadm replaces the port with the service's.
    assert_eq!(dest("-r 10.0.0.2:8080 -g").port, 80);
    assert_eq!(dest("-r 10.0.0.2:8080").port, 80);
    assert_eq!(dest("-r 10.0.0.2:8080 -i").port, 80);
    // Default method and weight.
    let d = dest("-r 10.0.0.2");
    assert_eq!(
        (d.method, d.weight, d.u_threshold, d.l_threshold),
        (Method::Dr, 1, 0, 0)
    );

    // Fwmark services: the port may be omitted (0) or given, whatever the method.
    let r = ok("\
-A -f 5
-a -f 5 -r 10.0.0.2
-a -f 5 -r 10.0.0.3:8080 -g
-a -f 5 -r 10.0.0.4:https -m
");
    let ports: Vec<u16> = r.services[0].dests.iter().map(|d| d.port).collect();
    assert_eq!(ports, [0, 8080, 443]);
}

#[test]
fn weights_and_thresholds() {
    assert_eq!(dest("-r 10.0.0.2 -w 0").weight, 0);
    assert_eq!(dest("-r 10.0.0.2 -w 65535").weight, 65535);
    assert_eq!(
        dest_err("-r 10.0.0.2 -w 65536"),
        "invalid weight (-w) `65536`: expected 0 to 65535"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -w -1"),
        "invalid weight (-w) `-1`: expected 0 to 65535"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -w heavy"),
        "invalid weight (-w) `heavy`: expected 0 to 65535"
    );
    let d = dest("-r 10.0.0.2 -x 100");
    assert_eq!((d.u_threshold, d.l_threshold), (100, 0));
    let d = dest("-r 10.0.0.2 -x 100 -y 100");
    assert_eq!((d.u_threshold, d.l_threshold), (100, 100));
    assert_eq!(dest("-r 10.0.0.2 -x 2147483647").u_threshold, 2_147_483_647);
    assert_eq!(
        dest_err("-r 10.0.0.2 -x 2147483648"),
        "invalid upper threshold (-x) `2147483648`: expected 0 to 2147483647"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -x 10 -y 20"),
        "lower threshold -y 20 is above upper threshold -x 10 (the kernel refuses this, also \
         when -x is not given)"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -y 5"),
        "lower threshold -y 5 is above upper threshold -x 0 (the kernel refuses this, also \
         when -x is not given)"
    );
}

#[test]
fn tunnels() {
    let tun = |options: &str| match dest(options).method {
        Method::Tun(t) => (t.kind, t.port, t.csum),
        other => panic!("{other:?}"),
    };
    assert_eq!(tun("-r 10.0.0.2 -i"), (TunKind::Ipip, 0, TunCsum::NoCsum));
    assert_eq!(
        tun("-r 10.0.0.2 -i --tun-type ipip"),
        (TunKind::Ipip, 0, TunCsum::NoCsum)
    );
    assert_eq!(
        tun("-r 10.0.0.2 -i --tun-type gue --tun-port 6080"),
        (TunKind::Gue, 6080, TunCsum::NoCsum)
    );
    assert_eq!(
        tun("-r 10.0.0.2 -i --tun-type gue --tun-port 6080 --tun-nocsum"),
        (TunKind::Gue, 6080, TunCsum::NoCsum)
    );
    assert_eq!(
        tun("-r 10.0.0.2 --tun-csum --tun-port 6080 --tun-type gue -i"),
        (TunKind::Gue, 6080, TunCsum::Csum)
    );
    assert_eq!(
        tun("-r 10.0.0.2 -i --tun-type gue --tun-port 6080 --tun-remcsum"),
        (TunKind::Gue, 6080, TunCsum::RemCsum)
    );
    assert_eq!(
        tun("-r 10.0.0.2 -i --tun-type gre"),
        (TunKind::Gre, 0, TunCsum::NoCsum)
    );
    assert_eq!(
        tun("-r 10.0.0.2 -i --tun-type gre --tun-csum"),
        (TunKind::Gre, 0, TunCsum::Csum)
    );

    assert_eq!(
        dest_err("-r 10.0.0.2 -i --tun-type gue"),
        "--tun-type gue needs --tun-port PORT"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -i --tun-type gue --tun-port 0"),
        "invalid tunnel port (--tun-port) `0`: expected 1 to 65535"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -i --tun-port 6080"),
        "--tun-port is not valid with --tun-type ipip"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -i --tun-type gre --tun-port 6080"),
        "--tun-port is not valid with --tun-type gre"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -i --tun-csum"),
        "--tun-csum is not valid with --tun-type ipip"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -i --tun-type gre --tun-remcsum"),
        "--tun-remcsum is not valid with --tun-type gre"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -i --tun-type gue --tun-port 1 --tun-csum --tun-remcsum"),
        "option --tun-remcsum conflicts with --tun-csum: only one tunnel checksum option"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -i --tun-type vxlan"),
        "unknown tunnel type `vxlan` (--tun-type ipip, gue or gre)"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -m --tun-type gue --tun-port 6080"),
        "option --tun-type needs the tunnelling method -i (--ipip)"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 --tun-port 6080"),
        "option --tun-port needs the tunnelling method -i (--ipip)"
    );
}

#[test]
fn service_and_real_server_references() {
    // The brief's example: an -a for a service that is not (yet) defined.
    assert_eq!(
        parse(
            "# web\n-A -t 10.0.0.100:443\n-a -t 10.0.0.100:443 -r 10.0.0.11\n\
             -a -t 10.0.0.100:80 -r 10.0.0.11:80 -m\n-A -t 10.0.0.100:80\n"
        )
        .unwrap_err()
        .to_string(),
        "rules.txt: line 4: -a -t 10.0.0.100:80: no such virtual service (add it with -A first)"
    );
    // Same address, other protocol: another service.
    assert_eq!(
        err_at("-A -t 10.0.0.1:53\n-a -u 10.0.0.1:53 -r 10.0.0.2\n", 2),
        "-a -u 10.0.0.1:53: no such virtual service (add it with -A first)"
    );
    assert_eq!(
        err_at(
            "-A -t 10.0.0.1:80\n\n-A --tcp-service 10.0.0.1:http -s rr\n",
            3
        ),
        "-A -t 10.0.0.1:80: virtual service already defined on line 1"
    );
    assert_eq!(
        err_at("-A -f 1\n-A -f 1\n", 2),
        "-A -f 1: virtual service already defined on line 1"
    );
    assert_eq!(
        err_at(
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -m\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 5\n",
            3
        ),
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80: real server already in this service (line 2)"
    );
    // DR forces the service's port: these two are the same real server.
    assert_eq!(
        err_at(
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2:80\n-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -g\n",
            3
        ),
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80: real server already in this service (line 2)"
    );
    // The same address on other ports (NAT) or in another service is fine.
    let r = ok("\
-A -t 10.0.0.1:80
-A -t 10.0.0.1:81
-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m
-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m
-a -t 10.0.0.1:81 -r 10.0.0.2 -m
");
    assert_eq!(r.services[0].dests.len(), 2);
    assert_eq!(r.services[1].dests.len(), 1);
    assert_eq!(r.services[1].dests[0].line, 5);
}

#[test]
fn missing_parts() {
    assert_eq!(
        err("-A -s rr"),
        "You need to supply the 'service-address' option for the 'add-service' command"
    );
    assert_eq!(
        err_at("-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -m\n", 2),
        "You need to supply the 'real-server' option for the 'add-server' command"
    );
    assert_eq!(err("-A -t"), "option -t (--tcp-service) needs a value");
    assert_eq!(
        dest_err("-r 10.0.0.2 --weight"),
        "option -w (--weight) needs a value"
    );
}

#[test]
fn unknown_and_misplaced_options() {
    assert_eq!(err("-A -t 10.0.0.1:80 -q"), "unknown option -q");
    assert_eq!(
        err("-A -t 10.0.0.1:80 --frobnicate 3"),
        "unknown option --frobnicate"
    );
    assert_eq!(
        err_at("\n\n-A -t 10.0.0.1:80 --sched=rr\n", 3),
        "unknown option --sched"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 --ops=1"),
        "option --ops takes no value"
    );
    assert_eq!(err("-A -t 10.0.0.1:80 rr"), "unexpected argument `rr`");
    assert_eq!(
        err("-A -t 10.0.0.1:80 -w 1"),
        "Illegal 'weight' option with the 'add-service' command"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -s rr"),
        "Illegal 'scheduler' option with the 'add-server' command"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -p 60"),
        "Illegal 'persistent' option with the 'add-server' command"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -r 10.0.0.2"),
        "Illegal 'real-server' option with the 'add-service' command"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -n"),
        "Illegal 'numeric' option with the 'add-service' command"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 --pe sip"),
        "persistence engines (--pe) are not supported"
    );
    assert_eq!(
        err("-A --sctp-service 10.0.0.1:80"),
        "SCTP services are not supported"
    );
}

#[test]
fn commands() {
    assert_eq!(
        err("-E -t 10.0.0.1:80 -s rr"),
        "-E (--edit-service) is not allowed in a rules file: it holds only -A (add a virtual \
         service) and -a (add a real server) lines"
    );
    assert_eq!(
        err("-C"),
        "-C (--clear) is not allowed in a rules file: it holds only -A (add a virtual service) \
         and -a (add a real server) lines"
    );
    assert_eq!(
        err("-t 10.0.0.1:80 -A"),
        "a command comes first (-A, -E, -D, -a, -e, -d, -C, -L, -Z, -S, -R, --set), not -t \
         (--tcp-service)"
    );
    assert_eq!(
        err("-A -a -t 10.0.0.1:80"),
        "a second command -a (--add-server): one command at a time"
    );
}

#[test]
fn repeated_options() {
    assert_eq!(
        err("-A -t 10.0.0.1:80 -s rr -s wlc"),
        "option -s (--scheduler) given twice"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -f 1"),
        "option -f (--fwmark-service) conflicts with -t (--tcp-service): only one virtual service"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -g -m"),
        "option -m (--masquerading) conflicts with -g (--gatewaying): only one forwarding method"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -r 10.0.0.3"),
        "option -r (--real-server) given twice"
    );
    assert_eq!(
        dest_err("-r 10.0.0.2 -i --tun-type gue --tun-type gre"),
        "option --tun-type given twice"
    );
}

#[test]
fn addresses_ports_and_names() {
    assert_eq!(err("-A -t [::1]:80"), "[::1]:80: IPv6 is not supported yet");
    assert_eq!(
        err_at(
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r [2001:db8::1]:80 -m\n",
            2
        ),
        "[2001:db8::1]:80: IPv6 is not supported yet"
    );
    assert_eq!(
        err("-A -u 2001:db8::1"),
        "2001:db8::1: IPv6 is not supported yet"
    );
    assert_eq!(err("-A -f 1 -6"), "IPv6 is not supported yet (-6)");
    assert_eq!(err("-A -t 80"), "`80` is not ADDRESS[:PORT]");
    assert_eq!(err("-A -t :80"), "`:80` is not ADDRESS[:PORT]");
    assert_eq!(err("-A -t 10.0.0.1:"), "empty port after ':'");
    // An option in place of a missing address is not looked up as a host.
    assert_eq!(dest_err("-r -m -w 1"), "`-m` is not ADDRESS[:PORT]");
    assert_eq!(err("-A -t we/b:80"), "`we/b:80` is not ADDRESS[:PORT]");
    assert_eq!(
        err("-A -t 10.0.0.300:80"),
        "`10.0.0.300` is not an IPv4 address"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:65536"),
        "port 65536 is out of range (0 to 65535)"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:gopherplus"),
        "unknown port name `gopherplus` for tcp (neither in /etc/services nor a common name)"
    );
    assert_eq!(
        err("-A -t nowhere.example.com:80"),
        "cannot resolve host name \"nowhere.example.com\""
    );
    assert_eq!(
        err("-A -f 0"),
        "invalid firewall mark (-f) `0`: expected 1 to 4294967295"
    );
    assert_eq!(
        err("-A -f 4294967296"),
        "invalid firewall mark (-f) `4294967296`: expected 1 to 4294967295"
    );
    assert_eq!(
        service("-A -f 4294967295").key,
        ServiceKey::Fwmark(u32::MAX)
    );
    assert_eq!(
        service("-A -t 10.0.0.1:65535").key,
        tcp(ip(10, 0, 0, 1), 65535)
    );
}

#[test]
fn comments_blank_lines_and_pasted_commands() {
    let r = ok("\
# saved by ipvsadm-save
\r
   \t
ipvsadm -A -t 10.0.0.1:80 -s rr   # the web
  -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m\r
#-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m
");
    assert_eq!(r.services.len(), 1);
    assert_eq!(r.services[0].line, 4);
    assert_eq!(r.services[0].dests.len(), 1);
    assert_eq!(r.services[0].dests[0].line, 5);
    assert_eq!(ok(""), Rules::default());
    assert_eq!(ok("# nothing\n\n"), Rules::default());
}

#[test]
fn the_whole_file_or_nothing() {
    // A good first half does not load when a later line is bad.
    let e = parse(&format!("{SAVE_N}-a -f 1 -r 10.0.0.43 -w 70000\n")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules.txt: line 14: invalid weight (-w) `70000`: expected 0 to 65535"
    );
}

#[test]
fn round_trip() {
    // A hand-written file with names, comments, long options and defaults.
    let r = ok("\
# hand-written
--add-service --tcp-service lb.example.com:http --persistent
-a -t 10.0.0.100:80 -r web1.example.com -m -x 200 -y 50
-a -t 10.0.0.100:80 -r web2.example.com:8080 --masquerading -w 0
-A -u 10.0.0.100:53 -s sed -o
-a -u 10.0.0.100:53 -r 10.0.0.31 -i --tun-type gue --tun-port 6080 --tun-remcsum
-A -f 9 -s mh -b mh-port -p 30 -M 255.255.0.0
-a -f 9 -r 10.0.0.41 -i --tun-type gre --tun-csum -w 7 -x 10
-a -f 9 -r 10.0.0.42:8443 -m
-A -t 10.0.0.100:0 -s rr -p 120
-a -t 10.0.0.100:0 -r 10.0.0.51 -g
");
    let saved = r.to_save_n();
    let back = ok(&saved);
    assert_eq!(without_lines(back.clone()), without_lines(r.clone()));
    // From saved form, lines match too.
    assert_eq!(ok(&back.to_save_n()), back);
    assert_eq!(back.to_save_n(), saved);
    assert_eq!(
        saved,
        "\
-A -t 10.0.0.100:80 -s wlc -p 300
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m -w 1 -x 200 -y 50
-a -t 10.0.0.100:80 -r 10.0.0.12:8080 -m -w 0
-A -u 10.0.0.100:53 -s sed -o
-a -u 10.0.0.100:53 -r 10.0.0.31:53 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum
-A -f 9 -s mh -p 30 -M 255.255.0.0 -b mh-port
-a -f 9 -r 10.0.0.41:0 -i -w 7 --tun-type gre --tun-csum -x 10
-a -f 9 -r 10.0.0.42:8443 -m -w 1
-A -t 10.0.0.100:0 -s rr -p 120
-a -t 10.0.0.100:0 -r 10.0.0.51:0 -g -w 1
"
    );
    assert_eq!(ok(SAVE_N).to_save_n(), SAVE_N);
    assert_eq!(ok(SAVE_N), ok(&ok(SAVE_N).to_save_n()));
}

#[test]
fn sort_gives_ipvsadm_order() {
    let mut r = ok("\
-A -f 2
-A -f 1
-A -u 10.0.0.1:53
-A -t 10.0.0.2:80
-A -t 10.0.0.1:443
-A -t 10.0.0.1:80
-a -t 10.0.0.1:80 -r 10.0.0.12:80 -m
-a -t 10.0.0.1:80 -r 10.0.0.11:81 -m
-a -t 10.0.0.1:80 -r 10.0.0.11:80 -m
-a -t 10.0.0.1:80 -r 10.0.0.9:80 -m
");
    r.sort();
    assert_eq!(
        r.to_save_n(),
        "\
-A -t 10.0.0.1:80 -s wlc
-a -t 10.0.0.1:80 -r 10.0.0.9:80 -m -w 1
-a -t 10.0.0.1:80 -r 10.0.0.11:80 -m -w 1
-a -t 10.0.0.1:80 -r 10.0.0.11:81 -m -w 1
-a -t 10.0.0.1:80 -r 10.0.0.12:80 -m -w 1
-A -t 10.0.0.1:443 -s wlc
-A -t 10.0.0.2:80 -s wlc
-A -u 10.0.0.1:53 -s wlc
-A -f 1 -s wlc
-A -f 2 -s wlc
"
    );
}

#[test]
fn load_reads_a_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.txt");
    std::fs::write(&path, SAVE_N).unwrap();
    assert_eq!(Rules::load(&path).unwrap().to_save_n(), SAVE_N);

    std::fs::write(&path, "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80 -s rr\n").unwrap();
    assert_eq!(
        Rules::load(&path).unwrap_err().to_string(),
        format!(
            "{}: line 2: -A -t 10.0.0.1:80: virtual service already defined on line 1",
            path.display()
        )
    );

    let missing = dir.path().join("missing.txt");
    let e = Rules::load(&missing).unwrap_err();
    assert!(matches!(e, RulesError::Read { .. }));
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read: ", missing.display())),
        "{e}"
    );
}

#[test]
fn parse_uses_the_system_names() {
    // The public entry point: /etc/services or the built-in table, and the
    // system resolver (localhost comes from /etc/hosts, no DNS).
    let r = Rules::parse(
        "-A -t localhost:https -s rr\n-a -t 127.0.0.1:443 -r 127.0.0.2 -m\n",
        Path::new("rules.txt"),
    )
    .unwrap();
    assert_eq!(r.services[0].key, tcp(Ipv4Addr::LOCALHOST, 443));
    assert_eq!(r.services[0].dests[0].port, 443);
}

mod round_trip_property {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn arb_key() -> impl Strategy<Value = ServiceKey> {
        prop_oneof![
            (any::<bool>(), any::<u32>(), any::<u16>()).prop_map(|(udp, addr, port)| {
                ServiceKey::Addr {
                    protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
                    addr: Ipv4Addr::from(addr),
                    port,
                }
            }),
            (1..=u32::MAX).prop_map(ServiceKey::Fwmark),
        ]
    }

    fn arb_method() -> impl Strategy<Value = Method> {
        let csum = prop_oneof![
            Just(TunCsum::NoCsum),
            Just(TunCsum::Csum),
            Just(TunCsum::RemCsum)
        ];
        prop_oneof![
            Just(Method::Dr),
            Just(Method::Nat),
            Just(Method::Tun(TunConfig {
                kind: TunKind::Ipip,
                port: 0,
                csum: TunCsum::NoCsum
            })),
            (1..=u16::MAX, csum).prop_map(|(port, csum)| Method::Tun(TunConfig {
                kind: TunKind::Gue,
                port,
                csum
            })),
            any::<bool>().prop_map(|c| Method::Tun(TunConfig {
                kind: TunKind::Gre,
                port: 0,
                csum: if c { TunCsum::Csum } else { TunCsum::NoCsum }
            })),
        ]
    }

    fn arb_dest() -> impl Strategy<Value = DestRule> {
        (
            any::<u32>(),
            any::<u16>(),
            arb_method(),
            0..=MAX_WEIGHT,
            0..=MAX_THRESHOLD,
            any::<u32>(),
        )
            .prop_map(|(addr, port, method, weight, u, l)| DestRule {
                addr: Ipv4Addr::from(addr),
                port,
                method,
                weight,
                u_threshold: u,
                // The kernel's rule: never above the upper threshold.
                l_threshold: if u == 0 { 0 } else { l % (u + 1) },
                line: 0,
            })
    }

    fn arb_service() -> impl Strategy<Value = ServiceRule> {
        (
            arb_key(),
            proptest::sample::select(SCHEDULERS),
            (any::<bool>(), any::<bool>(), any::<bool>()),
            proptest::option::of((1..=MAX_PERSISTENT_TIMEOUT_S, any::<u32>())),
            any::<bool>(),
            vec(arb_dest(), 0..4),
        )
            .prop_map(
                |(key, sched, (fallback, port, flag3), persistence, ops, dests)| {
                    let mut persistence = persistence.map(|(t, m)| Persistence {
                        timeout_s: t,
                        netmask: Ipv4Addr::from(m),
                    });
                    let (one_packet, vport) = match key {
                        ServiceKey::Addr { protocol, port, .. } => {
                            if port == 0 && persistence.is_none() {
                                persistence = Some(Persistence {
                                    timeout_s: DEFAULT_PERSISTENT_TIMEOUT_S,
                                    netmask: DEFAULT_NETMASK,
                                });
                            }
                            (ops && protocol == Protocol::Udp, Some(port))
                        }
                        ServiceKey::Fwmark(_) => (ops, None),
                    };
                    let mut unique: Vec<DestRule> = Vec::new();
                    for mut d in dests {
                        if let (Some(vport), false) = (vport, d.method == Method::Nat) {
                            d.port = vport;
                        }
                        if !unique.iter().any(|u| (u.addr, u.port) == (d.addr, d.port)) {
                            unique.push(d);
                        }
                    }
                    ServiceRule {
                        key,
                        scheduler: sched.to_string(),
                        flags: SchedFlags {
                            fallback,
                            port,
                            flag3,
                        },
                        persistence,
                        one_packet,
                        line: 0,
                        dests: unique,
                    }
                },
            )
    }

    /// Valid rules, numbered as their saved form numbers them.
    fn arb_rules() -> impl Strategy<Value = Rules> {
        vec(arb_service(), 0..6).prop_map(|services| {
            let mut rules = Rules::default();
            let mut line = 0;
            for mut s in services {
                if rules.services.iter().any(|o| o.key == s.key) {
                    continue;
                }
                line += 1;
                s.line = line;
                for d in &mut s.dests {
                    line += 1;
                    d.line = line;
                }
                rules.services.push(s);
            }
            rules
        })
    }

    proptest! {
        #[test]
        fn parse_of_to_save_n_is_identity(rules in arb_rules()) {
            let text = rules.to_save_n();
            let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(back, rules);
        }
    }
}
