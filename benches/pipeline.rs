//! Criterion micro-benchmarks of the per-lcore data path on byte buffers
//! (no EAL): parse, connection lookup, scheduling, rewrite, next hop, at
//! 64, 512 and 1500-byte frames. `cargo bench --bench pipeline`.
//!
//! Each iteration copies the frame into a fresh heap test buffer first
//! (the pipeline rewrites it in place), so the figures include a copy of the
//! frame's bytes; `copy` measures that alone.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dlvs::config::Config;
use dlvs::datapath::{Engine, Host, Output, PacketBuf, RxMeta, TestBuf};
use dlvs::service::table::{Registry, ServiceTable};
use dlvs::service::Rules;
use dlvs::wire::{checksum, MacAddr};

const CONFIG: &str = r#"
[[interface]]
name = "lan0"
device = "net_null0"
mac = "02:00:00:00:00:01"
addresses = ["10.0.0.2/24", "10.0.0.100/32", "10.0.0.101/32", "10.0.0.102/32"]

[[neighbor]]
interface = "lan0"
ip = "10.0.0.11"
mac = "02:00:00:00:01:11"

[[neighbor]]
interface = "lan0"
ip = "10.0.0.12"
mac = "02:00:00:00:01:12"

[[neighbor]]
interface = "lan0"
ip = "10.0.0.50"
mac = "02:00:00:00:00:aa"

[conn]
capacity = 65536
"#;

const RULES: &str = "\
-A -t 10.0.0.100:80 -s wlc
-a -t 10.0.0.100:80 -r 10.0.0.11 -g
-a -t 10.0.0.100:80 -r 10.0.0.12 -g
-A -t 10.0.0.101:80 -s wlc
-a -t 10.0.0.101:80 -r 10.0.0.11:8080 -m
-a -t 10.0.0.101:80 -r 10.0.0.12:8080 -m
-A -t 10.0.0.102:80 -s mh
-a -t 10.0.0.102:80 -r 10.0.0.11 -i
-a -t 10.0.0.102:80 -r 10.0.0.12 -i
";

/// Frames sent go nowhere; buffers come from the heap.
struct Sink(u64);

impl Output<TestBuf> for Sink {
    fn alloc(&mut self) -> Option<TestBuf> {
        Some(TestBuf::new())
    }
    fn send(&mut self, _port: usize, buf: TestBuf) -> bool {
        self.0 += buf.data().len() as u64;
        true
    }
}

fn engine() -> Engine<TestBuf> {
    let cfg = Config::from_toml(CONFIG, Path::new("bench.toml")).unwrap();
    let rules = Rules::parse(RULES, Path::new("bench.rules")).unwrap();
    let services = ServiceTable::build(&rules, &cfg.marks, &mut Registry::default()).unwrap();
    let host = Host::new(&cfg, &[MacAddr([2, 0, 0, 0, 0, 1])]);
    let mut e = Engine::with_services(Arc::new(host), Arc::new(services), &cfg.conn, 1);
    e.set_now(1_000_000);
    e
}

/// An Ethernet/IPv4/TCP frame of `len` bytes (checksums valid).
fn tcp(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
    len: usize,
    mac: [u8; 6],
) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[8, 0]);
    let ip_len = (len - 14) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&src.octets());
    f[30..34].copy_from_slice(&dst.octets());
    let c = !sum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[46] = 0x50;
    f[47] = flags;
    f[48..50].copy_from_slice(&8192u16.to_be_bytes());
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&f[26..34]);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(ip_len - 20).to_be_bytes());
    pseudo.extend_from_slice(&f[34..]);
    let c = !sum(&pseudo);
    f[50..52].copy_from_slice(&c.to_be_bytes());
    f
}

/// The frames' checksums (a benchmark's input, not a test's oracle: the
/// project's own sum serves).
fn sum(b: &[u8]) -> u16 {
    checksum::sum(b) as u16
}

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xaa];
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;

/// Runs a fresh copy of `frame` through the engine (it rewrites the
/// buffer in place, then sends or drops it).
#[inline]
fn run(e: &mut Engine<TestBuf>, out: &mut Sink, frame: &[u8]) {
    e.process(0, TestBuf::with_frame(frame), RxMeta::default(), out);
}

fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("established");
    for len in [64usize, 512, 1500] {
        g.throughput(Throughput::Elements(1));
        for (name, vip) in [("dr", 100u8), ("nat", 101), ("tun", 102)] {
            let vip = Ipv4Addr::new(10, 0, 0, vip);
            let mut e = engine();
            let mut out = Sink(0);
            // The connection, established.
            run(
                &mut e,
                &mut out,
                &tcp(CLIENT, 40000, vip, 80, SYN, 64, CLIENT_MAC),
            );
            run(
                &mut e,
                &mut out,
                &tcp(CLIENT, 40000, vip, 80, ACK, 64, CLIENT_MAC),
            );
            // The director does not fragment: a tunnelled frame leaves
            // room for the outer IPv4 header within the 1500-byte MTU.
            let len = if name == "tun" { len.min(1494) } else { len };
            let frame = tcp(CLIENT, 40000, vip, 80, ACK, len, CLIENT_MAC);
            // A benchmark of the drop path would flatter the figures.
            let before = out.0;
            run(&mut e, &mut out, &frame);
            assert!(
                out.0 > before,
                "{name}/{len}: the established frame was not forwarded"
            );
            g.bench_with_input(BenchmarkId::new(name, len), &frame, |b, f| {
                b.iter(|| run(&mut e, &mut out, black_box(f)))
            });
        }
    }
    g.finish();
}

fn new_connections(c: &mut Criterion) {
    let mut g = c.benchmark_group("new_connection");
    g.throughput(Throughput::Elements(1));
    for (name, vip) in [("wlc", 100u8), ("mh", 102)] {
        let vip = Ipv4Addr::new(10, 0, 0, vip);
        let mut e = engine();
        let mut out = Sink(0);
        // A SYN makes a connection, a FIN (SYN_RECV -> TIME_WAIT) ends it,
        // and the next SYN on the same tuple is scheduled afresh (IPVS's
        // conn_reuse_mode): one new connection per SYN. (A RST would not
        // do: IPVS keeps SYN_RECV on a RST, and so does dlvs.)
        let syn = tcp(CLIENT, 40000, vip, 80, SYN, 64, CLIENT_MAC);
        let fin = tcp(CLIENT, 40000, vip, 80, FIN | ACK, 64, CLIENT_MAC);
        let conns = |e: &Engine<TestBuf>| e.ctx().dest_stats().iter().map(|d| d.conns).sum::<u64>();
        for _ in 0..3 {
            run(&mut e, &mut out, &syn);
            run(&mut e, &mut out, &fin);
        }
        assert_eq!(
            conns(&e),
            3,
            "{name}: a SYN after a FIN was not a new connection"
        );
        g.bench_function(BenchmarkId::new("syn+fin", name), |b| {
            b.iter(|| {
                run(&mut e, &mut out, black_box(&syn));
                run(&mut e, &mut out, black_box(&fin));
            })
        });
    }
    g.finish();
}

fn copy(c: &mut Criterion) {
    let mut g = c.benchmark_group("copy");
    for len in [64usize, 512, 1500] {
        let frame = tcp(
            CLIENT,
            40000,
            Ipv4Addr::new(10, 0, 0, 100),
            80,
            ACK,
            len,
            CLIENT_MAC,
        );
        g.bench_with_input(BenchmarkId::from_parameter(len), &frame, |b, f| {
            b.iter(|| black_box(TestBuf::with_frame(black_box(f))))
        });
    }
    g.finish();
}

criterion_group!(benches, established, new_connections, copy);
criterion_main!(benches);
