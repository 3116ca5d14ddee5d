//! A self-checking harness around the per-lcore data path, for property
//! tests and fuzzers, plus a seeded frame mutator.
//!
//! [`Harness`] runs [`Engine<Vec<u8>>`](super::Engine) against a fixed,
//! realistic configuration ([`CONFIG`]: a LAN port with the director's
//! address and a VIP, a WAN port with the default route and a static
//! gateway) and virtual services ([`RULES`]: NAT, DR, TUN over ipip, GUE
//! and GRE, persistence, one-packet UDP, a fwmark service), and checks
//! invariants after every frame, not just the absence of a panic:
//!
//! - no output frame is longer than its egress port's MTU allows;
//! - every output frame leaves with the egress port's MAC as its source;
//! - every frame the director builds (ARP requests and replies, echo
//!   replies) parses, and its IPv4 and ICMP checksums verify (by the
//!   harness's own RFC 1071 checksum, not `wire`'s);
//! - no output frame holds bytes nobody wrote: frames live in
//!   [`TestBuf`]s, whose spare room is poison;
//! - a forwarded TCP or UDP segment whose checksum was right still is
//!   (NAT's incremental updates, tunnels' untouched inner packets);
//! - counters add up: `received == replied + held + sum(drops)`, per port
//!   too, and every transmitted frame was counted once;
//! - the fast path for whole TCP and UDP datagrams changes nothing but
//!   speed: a second engine with it off sees the same frames, and sends
//!   the same bytes on the same ports and counts the same (`l4::fast`'s
//!   contract).
//!
//! [`mutate`] derives hostile frames from real ones (truncations, bit
//! flips, bad lengths, IP options, fragments, odd EtherTypes), seeded so a
//! failure reproduces.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use super::engine::{Engine, Output};
use super::packet::{Csum, RxMeta};
use super::test_buf::{has_poison, TestBuf};
use super::Host;
use crate::config::Config;
use crate::service::rules::Rules;
use crate::service::table::{Registry, ServiceTable};
use crate::wire::{
    ArpOp, ArpPacket, EtherType, EthernetFrame, IcmpPacket, IpProtocol, Ipv4Packet, MacAddr,
};

/// The configuration the harness runs against (the tests' two-port
/// director, `config::testing::TWO_PORTS`).
pub use crate::config::testing::TWO_PORTS as CONFIG;

/// What the harness adds to [`CONFIG`]: a VRRP instance on lan0 (its
/// virtual address 10.0.0.200 is the director's only while MASTER) and
/// connection sync (both daemons: without `vrrp` the first instance leads),
/// so that adverts, sync messages and their timers go through the same
/// checks as any frame.
pub const HA_CONFIG: &str = r#"
[[vrrp]]
interface = "lan0"
virtual_router_id = 51
priority = 100
virtual_addresses = ["10.0.0.200"]

[sync]
interface = "lan0"
syncid = 0
"#;

/// The virtual services the harness runs (ipvsadm-save syntax): every
/// forwarding method, persistence, one-packet UDP, a fwmark service.
pub const RULES: &str = "\
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m
-a -t 10.0.0.100:80 -r 10.0.0.12:8080 -m -w 2
-A -t 10.0.0.100:443 -s wlc -p 60
-a -t 10.0.0.100:443 -r 10.0.0.11 -g
-a -t 10.0.0.100:443 -r 10.0.0.12 -i --tun-type gue --tun-port 6080 --tun-csum
-A -u 10.0.0.100:53 -s sh -o
-a -u 10.0.0.100:53 -r 10.0.0.11 -i
-a -u 10.0.0.100:53 -r 10.0.0.12 -i --tun-type gre --tun-csum
-A -f 5 -s mh -p
-a -f 5 -r 10.0.0.13 -m
-A -u 10.0.0.100:123 -s rr
-a -u 10.0.0.100:123 -r 10.0.0.11 -m
";

/// The longest frame [`run_encoded`] feeds.
pub const MAX_ENCODED_FRAME: usize = 9100;

/// Runs a sequence of frames encoded as the `pipeline` fuzz target reads
/// its input (fuzz/fuzz_targets/pipeline.rs has the table): per frame one
/// byte of ingress port (bits 0-3) and device checksum word (bits 4-5),
/// a little-endian time delta in units of 64 µs, a little-endian length
/// (clamped to what remains and to [`MAX_ENCODED_FRAME`]), the frame.
/// Time starts at 1 s. The fuzz target and the regression test of its
/// findings (fuzz/regressions/pipeline) both run inputs through this.
pub fn run_encoded(data: &[u8]) -> Result<(), Violation> {
    const TICK_US: u64 = 64;
    let mut h = Harness::new();
    let mut now: u64 = 1_000_000;
    let mut rest = data;
    while rest.len() >= 5 {
        let (port, verdict) = (usize::from(rest[0] & 0x0f), rest[0] >> 4);
        let delta = u64::from(u16::from_le_bytes([rest[1], rest[2]]));
        let len = usize::from(u16::from_le_bytes([rest[3], rest[4]]));
        rest = &rest[5..];
        let len = len.min(rest.len()).min(MAX_ENCODED_FRAME);
        let (frame, tail) = rest.split_at(len);
        rest = tail;
        now += delta * TICK_US;
        h.feed_with(port, frame, now, device_meta(frame, verdict))?;
    }
    h.finish()
}

/// An invariant the data path broke, with the offending frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub what: String,
    pub frame: Vec<u8>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (frame: ", self.what)?;
        for b in &self.frame {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

#[derive(Default)]
struct Collect {
    sent: Vec<(usize, Vec<u8>)>,
}

impl Output<TestBuf> for Collect {
    fn alloc(&mut self) -> Option<TestBuf> {
        Some(TestBuf::new())
    }
    fn send(&mut self, port: usize, buf: TestBuf) -> bool {
        self.sent.push((port, buf.to_vec()));
        true
    }
}

pub struct Harness {
    engine: Engine<TestBuf>,
    /// The same director with the fast path off (see the module doc).
    general: Engine<TestBuf>,
    host: Arc<Host>,
    out: Collect,
    general_out: Collect,
    transmitted: u64,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        // Parsed once per process: fuzzers call new() for every input, and
        // parsing the config each time would dominate their run time and
        // blur their coverage with the TOML parser's.
        type Built = (Arc<Host>, Config, Rules);
        static BUILT: OnceLock<Built> = OnceLock::new();
        let (host, cfg, rules) = BUILT.get_or_init(|| {
            let text = format!("{CONFIG}{HA_CONFIG}");
            let cfg = Config::from_toml(&text, Path::new("harness.toml")).expect("harness config");
            let macs = [MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2])];
            let rules = Rules::parse(RULES, Path::new("harness.rules")).expect("harness rules");
            (Arc::new(Host::new(&cfg, &macs)), cfg, rules)
        });
        // A table each: the real servers' connection counters live in it,
        // shared by the engines that share it (as workers do).
        let services = || {
            Arc::new(
                ServiceTable::build(rules, &cfg.marks, &mut Registry::default())
                    .expect("harness services"),
            )
        };
        // Its own VRRP states and sync daemons: harnesses run side by side.
        let (host, conn) = (Arc::new(host.with_own_ha()), &cfg.conn);
        let mut general = Engine::with_services(Arc::clone(&host), services(), conn, 1);
        general.set_fast_path(false);
        let mut h = Harness {
            engine: Engine::with_services(Arc::clone(&host), services(), conn, 1),
            general,
            host,
            out: Collect::default(),
            general_out: Collect::default(),
            transmitted: 0,
        };
        h.engine.announce(&mut h.out);
        h.general.announce(&mut h.general_out);
        for e in [&mut h.engine, &mut h.general] {
            e.run_vrrp();
            e.run_sync(0, 1);
        }
        h
    }

    /// Number of ports in [`CONFIG`].
    pub fn ports(&self) -> usize {
        self.host.ports.len()
    }

    /// Processes one frame received on `port` at time `now` (µs), runs the
    /// timers, and checks every invariant.
    pub fn feed(&mut self, port: usize, frame: &[u8], now: u64) -> Result<(), Violation> {
        self.feed_with(port, frame, now, RxMeta::default())
    }

    /// [`Harness::feed`] with what the device said of the frame.
    pub fn feed_with(
        &mut self,
        port: usize,
        frame: &[u8],
        now: u64,
        meta: RxMeta,
    ) -> Result<(), Violation> {
        let port = port % self.ports();
        for (engine, out) in [
            (&mut self.engine, &mut self.out),
            (&mut self.general, &mut self.general_out),
        ] {
            engine.set_now(now);
            engine.tick(out);
            engine.process(port, TestBuf::with_frame(frame), meta, out);
        }
        self.check(frame)
    }

    /// Drops what is held (as at shutdown) and checks the final accounting.
    pub fn finish(&mut self) -> Result<(), Violation> {
        self.engine.shutdown();
        self.general.shutdown();
        self.check(&[])?;
        let s = self.engine.stats();
        if s.held != 0 {
            return Err(Violation {
                what: format!("{} frames still held after shutdown", s.held),
                frame: vec![],
            });
        }
        Ok(())
    }

    fn check(&mut self, input: &[u8]) -> Result<(), Violation> {
        let fail = |what: String| {
            Err(Violation {
                what,
                frame: input.to_vec(),
            })
        };
        if self.out.sent != self.general_out.sent {
            return fail(format!(
                "the fast path sent {:?}, the general path {:?}",
                self.out.sent, self.general_out.sent
            ));
        }
        self.general_out.sent.clear();
        let (fast, general) = (self.engine.ctx(), self.general.ctx());
        if self.engine.stats() != self.general.stats()
            || fast.dest_stats() != general.dest_stats()
            || fast.connections() != general.connections()
        {
            return fail(format!(
                "the fast path counted {:?} {:?} ({} connections), the general path {:?} {:?} ({})",
                self.engine.stats(),
                fast.dest_stats(),
                fast.connections(),
                self.general.stats(),
                general.dest_stats(),
                general.connections()
            ));
        }
        for (port, f) in &self.out.sent {
            self.transmitted += 1;
            if let Err(what) = check_output(&self.host, *port, f) {
                return fail(what);
            }
            // Bytes a frame gained must all be written: the test buffers'
            // spare room is poison (unless the input itself carried it).
            if has_poison(f) && !has_poison(input) {
                return fail(format!(
                    "output on port {port} holds unwritten (poison) bytes"
                ));
            }
            // A forwarded segment whose checksum was right still is (NAT
            // patches it; a tunnel carries it untouched).
            if l4_checksum_ok(input.get(14..).unwrap_or(&[])) == Some(true)
                && f.len() > 14
                && l4_checksum_ok(inner_ip(&f[14..])) == Some(false)
            {
                return fail(format!(
                    "output on port {port}: a TCP/UDP checksum that was right is now wrong"
                ));
            }
        }
        self.out.sent.clear();

        let s = self.engine.stats();
        let dropped = s.dropped_total();
        if s.received != s.replied + s.punted + s.held + dropped {
            return fail(format!(
                "accounting: received {} != replied {} + punted {} + held {} + dropped {}",
                s.received, s.replied, s.punted, s.held, dropped
            ));
        }
        if self.transmitted != s.replied + s.generated {
            return fail(format!(
                "transmitted {} != replied {} + generated {}",
                self.transmitted, s.replied, s.generated
            ));
        }
        let rx: u64 = s.ports.iter().map(|p| p.rx_packets).sum();
        let tx: u64 = s.ports.iter().map(|p| p.tx_packets).sum();
        if rx != s.received || tx != self.transmitted {
            return fail(format!(
                "per-port counters: rx {rx} vs received {}, tx {tx} vs transmitted {}",
                s.received, self.transmitted
            ));
        }
        Ok(())
    }
}

/// What a device that checks IPv4 header checksums says of `frame`, for
/// a fuzzer's or a test's choice `verdict` (its low two bits: 1 "good",
/// 2 "bad", 0 or 3 not checked). The device is truthful about "good": a
/// frame whose header does not verify (by the harness's own sum) is
/// reported unchecked instead, since the director trusts the device and
/// would rightly forward it.
pub fn device_meta(frame: &[u8], verdict: u8) -> RxMeta {
    let verifies = || {
        frame.len() >= 34
            && frame[12..14] == [0x08, 0x00]
            && frame[14] >> 4 == 4
            && frame
                .get(14..14 + usize::from(frame[14] & 0x0f) * 4)
                .is_some_and(|h| h.len() >= 20 && internet_checksum(h) == 0)
    };
    let ip_csum = match verdict & 3 {
        1 if verifies() => Csum::Good,
        2 => Csum::Bad,
        _ => Csum::Unknown,
    };
    RxMeta {
        ip_csum,
        l4_csum: Csum::Unknown,
    }
}

/// Checks one frame the director sent on `port`.
pub fn check_output(host: &Host, port: usize, f: &[u8]) -> Result<(), String> {
    let p = host
        .ports
        .get(port)
        .ok_or_else(|| format!("sent on unknown port {port}"))?;
    if f.len() > 14 + p.mtu as usize {
        return Err(format!(
            "{}-byte frame on {} exceeds MTU {}",
            f.len(),
            p.name,
            p.mtu
        ));
    }
    let eth = EthernetFrame::new_checked(f).map_err(|e| format!("output Ethernet: {e}"))?;
    if eth.src() != p.mac {
        return Err(format!(
            "source MAC {} on {} is not the port's {}",
            eth.src(),
            p.name,
            p.mac
        ));
    }
    // Multicast only as the director's own VRRP adverts and sync messages
    // go: an IPv4 datagram to the group the MAC maps (RFC 1112 §6.4),
    // from the port's first address.
    let group = multicast_group(f);
    if eth.dst() == MacAddr::ZERO
        || eth.dst().is_multicast() && !eth.dst().is_broadcast() && group.is_none()
    {
        return Err(format!("bad destination MAC {}", eth.dst()));
    }
    if let Some(g) = group {
        let ours = p.addresses.first().map(|a| a.addr);
        let src = f.get(26..30).map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]));
        let known = g == crate::wire::vrrp::GROUP || g == crate::wire::ipvs_sync::GROUP;
        if !known || src != ours {
            return Err(format!("multicast to {g} from {src:?} on {}", p.name));
        }
    }
    match eth.ethertype() {
        EtherType::ARP => {
            let a =
                ArpPacket::new_checked(eth.payload()).map_err(|e| format!("output ARP: {e}"))?;
            if !matches!(a.operation(), ArpOp::Request | ArpOp::Reply) {
                return Err("output ARP with an odd operation".into());
            }
            if a.sender_mac() != p.mac {
                return Err("output ARP sender MAC is not the port's".into());
            }
            // Its own address, or a VRRP instance's (gratuitous ARP on
            // becoming MASTER, replies while MASTER).
            if host.local_port(a.sender_ip()).is_none() && host.virtual_of(a.sender_ip()).is_none()
            {
                return Err(format!("output ARP sender {} is not ours", a.sender_ip()));
            }
        }
        EtherType::IPV4 => {
            let ip =
                Ipv4Packet::new_checked(eth.payload()).map_err(|e| format!("output IPv4: {e}"))?;
            if ip.protocol() == IpProtocol::ICMP {
                IcmpPacket::new_checked(ip.payload()).map_err(|e| format!("output ICMP: {e}"))?;
            }
            check_ipv4_checksums(eth.payload())?;
        }
        t => return Err(format!("director sent EtherType {:#06x}", t.0)),
    }
    Ok(())
}

/// The IPv4 multicast group of a frame whose destination MAC is that
/// group's (01:00:5e and the group's low 23 bits).
fn multicast_group(f: &[u8]) -> Option<Ipv4Addr> {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return None;
    }
    let g = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
    let o = g.octets();
    (g.is_multicast() && f[0..6] == [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]).then_some(g)
}

/// Verifies, with [`internet_checksum`] and lengths read straight from the
/// bytes, the header checksum of the IPv4 packet `ip` (over its IHL * 4
/// header bytes) and, if it carries ICMP, the ICMP checksum (over the
/// message up to the IPv4 total length).
fn check_ipv4_checksums(ip: &[u8]) -> Result<(), String> {
    let Some(&ver_ihl) = ip.first() else {
        return Err("output IPv4 packet is empty".into());
    };
    let header_len = usize::from(ver_ihl & 0x0f) * 4;
    if header_len < 20 || ip.len() < header_len {
        return Err(format!(
            "output IPv4 header length {header_len} in a {}-byte packet",
            ip.len()
        ));
    }
    // A header with a correct checksum in it sums to 0xffff: checksum 0.
    if internet_checksum(&ip[..header_len]) != 0 {
        return Err("output IPv4 header checksum is wrong".into());
    }
    const PROTO_ICMP: u8 = 1;
    if ip[9] == PROTO_ICMP {
        let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if total_len < header_len || total_len > ip.len() {
            return Err(format!(
                "output IPv4 total length {total_len} in a {}-byte packet",
                ip.len()
            ));
        }
        if internet_checksum(&ip[header_len..total_len]) != 0 {
            return Err("output ICMP checksum is wrong".into());
        }
    }
    Ok(())
}

/// The IP packet a tunnel carries (ipip, GRE, GUE to port 6080), else
/// the packet itself.
fn inner_ip(ip: &[u8]) -> &[u8] {
    let hl = ip.first().map_or(20, |b| usize::from(b & 0x0f) * 4);
    let at = match ip.get(9) {
        Some(4) => hl,
        Some(47) => match ip.get(hl) {
            Some(f) if f & 0x80 != 0 => hl + 8,
            _ => hl + 4,
        },
        Some(17) if ip.get(hl + 2..hl + 4) == Some(&[0x17, 0xc0]) => hl + 12,
        _ => return ip,
    };
    ip.get(at..).unwrap_or(&[])
}

/// Whether the TCP or UDP checksum of an IPv4 packet verifies (over the
/// pseudo header), by the harness's own sum; `None` for other packets,
/// cut ones, and UDP without a checksum.
fn l4_checksum_ok(ip: &[u8]) -> Option<bool> {
    let hl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let proto = *ip.get(9)?;
    if hl < 20 || total < hl || total > ip.len() || ip[6] & 0x3f != 0 || ip[7] != 0 {
        return None;
    }
    let seg = &ip[hl..total];
    match proto {
        6 if seg.len() >= 20 => {}
        17 if seg.len() >= 8 && seg[6..8] != [0, 0] => {}
        _ => return None,
    }
    let len = seg.len() as u16;
    let mut pseudo = Vec::with_capacity(12 + seg.len());
    pseudo.extend_from_slice(&ip[12..20]);
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(seg);
    Some(internet_checksum(&pseudo) == 0)
}

/// The Internet checksum (RFC 1071), written out here from scratch rather
/// than taken from `crate::wire::checksum`: the harness is an oracle for the
/// data path, and an oracle must not share code with what it checks (a bug
/// in shared code would pass its own test).
///
/// The one's complement of the one's-complement sum of `data` taken as
/// big-endian 16-bit words, an odd trailing byte padded with a zero byte,
/// carries folded back in (end-around carry). Over data that holds a
/// correct checksum the result is 0; with the checksum field zeroed it is
/// the value to store there.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        sum += u64::from(u16::from_be_bytes([data[i], data[i + 1]]));
        i += 2;
    }
    if i < data.len() {
        sum += u64::from(u16::from_be_bytes([data[i], 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A small deterministic PRNG (SplitMix64): mutations reproduce from a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// Recomputes an IPv4 header checksum in place if the header is readable.
fn refresh_ip_checksum(f: &mut [u8]) {
    if f.len() >= 34 && f[12..14] == [0x08, 0x00] {
        let hl = ((f[14] & 0x0f) as usize * 4).clamp(20, 60);
        if f.len() >= 14 + hl {
            f[24] = 0;
            f[25] = 0;
            let c = internet_checksum(&f[14..14 + hl]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
        }
    }
}

/// Derives a hostile frame from `seed` (a real frame). One to three
/// mutations are applied; IPv4 header edits are re-checksummed most of the
/// time so that the layers behind the checksum get exercised too.
pub fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut f = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let ip = f.len() >= 34 && f[12..14] == [0x08, 0x00];
        let fix = rng.chance(80);
        match rng.below(11) {
            // Truncation anywhere, the headers most often.
            0 => {
                let cut = if rng.chance(70) {
                    rng.below(60.min(f.len() + 1))
                } else {
                    rng.below(f.len() + 1)
                };
                f.truncate(cut);
            }
            // Bit flips.
            1 => {
                for _ in 0..1 + rng.below(8) {
                    if !f.is_empty() {
                        let i = rng.below(f.len());
                        f[i] ^= 1 << rng.below(8);
                    }
                }
            }
            // A random byte in the headers.
            2 => {
                if !f.is_empty() {
                    let i = rng.below(f.len().min(64));
                    f[i] = rng.next_u64() as u8;
                }
            }
            // Bad IPv4 total length.
            3 if ip => {
                let v = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(20) as u16,
                    2 => (f.len() - 14 + 1 + rng.below(100)) as u16,
                    _ => rng.next_u64() as u16,
                };
                f[16..18].copy_from_slice(&v.to_be_bytes());
                if fix {
                    refresh_ip_checksum(&mut f);
                }
            }
            // IP options: IHL grown, option bytes inserted (or not).
            4 if ip => {
                let words = 1 + rng.below(10);
                let mut opts: Vec<u8> = (0..words * 4).map(|_| rng.next_u64() as u8).collect();
                if rng.chance(50) {
                    opts.fill(1); // NOPs
                }
                if rng.chance(80) {
                    let at = 34;
                    f.splice(at..at, opts);
                    let tl = u16::from_be_bytes([f[16], f[17]]).saturating_add(words as u16 * 4);
                    f[16..18].copy_from_slice(&tl.to_be_bytes());
                }
                f[14] = 0x40 | ((5 + words) as u8).min(15);
                if fix {
                    refresh_ip_checksum(&mut f);
                }
            }
            // Fragments: MF, an offset, or both.
            5 if ip => {
                let off = rng.below(8192) as u16;
                let flags = match rng.below(3) {
                    0 => 0x2000,
                    1 => 0,
                    _ => 0x4000,
                };
                let v = flags | if rng.chance(50) { off } else { 0 };
                f[20..22].copy_from_slice(&v.to_be_bytes());
                if fix {
                    refresh_ip_checksum(&mut f);
                }
            }
            // Odd EtherTypes.
            6 if f.len() >= 14 => {
                let t: u16 = match rng.below(6) {
                    0 => 0x86dd,
                    1 => 0x8100,
                    2 => 0x88cc,
                    3 => 0x0806,
                    4 => 0x0800,
                    _ => rng.next_u64() as u16,
                };
                f[12..14].copy_from_slice(&t.to_be_bytes());
            }
            // Version / IHL nibble.
            7 if ip => {
                f[14] = rng.next_u64() as u8;
                if fix {
                    refresh_ip_checksum(&mut f);
                }
            }
            // Transport length fields (UDP length, TCP data offset).
            8 if ip => {
                let hl = ((f[14] & 0x0f) as usize * 4).max(20);
                let l4 = 14 + hl;
                if f.len() > l4 + 13 {
                    match f[23] {
                        17 => {
                            let v = rng.next_u64() as u16;
                            f[l4 + 4..l4 + 6].copy_from_slice(&v.to_be_bytes());
                        }
                        _ => f[l4 + 12] = rng.next_u64() as u8,
                    }
                }
            }
            // Junk appended, or a jumbo frame.
            9 => {
                let n = if rng.chance(10) {
                    1500 + rng.below(8000)
                } else {
                    rng.below(64)
                };
                f.extend((0..n).map(|_| rng.next_u64() as u8));
            }
            // Addresses: broadcast, own, multicast, zero as source or destination.
            _ if ip => {
                let a: [u8; 4] = match rng.below(5) {
                    0 => [255, 255, 255, 255],
                    1 => [10, 0, 0, 100],
                    2 => [224, 0, 0, 1],
                    3 => [0, 0, 0, 0],
                    _ => [10, 0, 0, 255],
                };
                let at = if rng.chance(50) { 26 } else { 30 };
                f[at..at + 4].copy_from_slice(&a);
                if fix {
                    refresh_ip_checksum(&mut f);
                }
            }
            _ => {
                if !f.is_empty() {
                    let i = rng.below(f.len());
                    f[i] = !f[i];
                }
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::Rng;
    use super::*;
    use crate::datapath::DropReason;
    use crate::wire::fixture_frames::{
        ARP_REP_CLIENT, ARP_REQ, DNS_QUERY, ECHO_LAN, ECHO_WAN, NTP_QUERY, TCP_ACK, TCP_FIN_443,
        TCP_NAT_REPLY_11, TCP_NAT_REPLY_12, TCP_SYN, TCP_SYN_443,
    };
    use proptest::prelude::{any, prop_assert, prop_oneof, proptest, ProptestConfig, Strategy};

    /// Real frames (made with scapy by scripts/gen-fixtures, of the kinds
    /// the lab capture holds): ARP request and reply, echo to the VIP and,
    /// through the gateway, to the WAN address, a Linux TCP SYN and a DNS
    /// query to the VIP; then established connections' frames: the SYN's
    /// next segment and its NAT real servers' replies, a DR or GUE
    /// connection's SYN and FIN, a UDP datagram to a NAT service.
    pub(crate) fn seeds() -> Vec<Vec<u8>> {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        [
            ARP_REQ,
            ARP_REP_CLIENT,
            ECHO_LAN,
            ECHO_WAN,
            TCP_SYN,
            DNS_QUERY,
            TCP_ACK,
            TCP_NAT_REPLY_11,
            TCP_NAT_REPLY_12,
            TCP_SYN_443,
            TCP_FIN_443,
            NTP_QUERY,
        ]
        .into_iter()
        .map(hex)
        .collect()
    }

    #[test]
    fn seeds_are_served() {
        let mut h = Harness::new();
        for (i, s) in seeds().iter().enumerate() {
            h.feed(if i == 3 { 1 } else { 0 }, s, 1_000 + i as u64)
                .unwrap();
        }
        // ARP reply + echo replies from both ports, the SYN and the DNS
        // query forwarded to their real servers (NAT, TUN); the SYN's next
        // segment, the reply of the real server it went to (the other's
        // belongs to no connection), the 443 SYN and FIN, the UDP
        // datagram.
        let s = h.engine.stats();
        assert_eq!(s.replied, 10, "{s:?}");
        assert_eq!(s.drops[DropReason::Ipv4NotLocal as usize], 1, "{s:?}");
        h.finish().unwrap();
    }

    /// What the pipeline fuzzer found (fuzz/regressions/pipeline, each
    /// an input the fuzz target rejected) stays fixed: the sync group's
    /// datagrams to the port's own MAC, which the fast path dropped as
    /// `ipv4_broadcast` while the general path took them to the sync
    /// receiver.
    #[test]
    fn fuzz_regressions_pass() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/pipeline");
        let mut ran = 0;
        for e in std::fs::read_dir(&dir).expect("fuzz/regressions/pipeline") {
            let path = e.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            if let Err(v) = run_encoded(&data) {
                panic!("{}: {v}", path.display());
            }
            ran += 1;
        }
        assert!(ran >= 2, "{ran} inputs in {}", dir.display());
    }

    /// A well-formed sync message to the group, sent to the port's own
    /// MAC, is taken in by both paths (the fast path leaves it alone).
    #[test]
    fn sync_message_to_own_mac_is_installed_by_both_paths() {
        let data = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/regressions/pipeline/pipeline-valid-sync-to-own-mac"),
        )
        .unwrap();
        let frame = &data[5..5 + usize::from(u16::from_le_bytes([data[3], data[4]]))];
        let mut h = Harness::new();
        h.feed(0, frame, 1_000_000).unwrap();
        for e in [&h.engine, &h.general] {
            let s = e.stats();
            assert_eq!(s.drops[DropReason::SyncMessage as usize], 1, "{s:?}");
            assert_eq!(s.drops[DropReason::Ipv4Broadcast as usize], 0, "{s:?}");
        }
        h.finish().unwrap();
    }

    /// `ipvsadm --set`'s timeouts reach connections through the published
    /// table: a connection established after the change gets the new
    /// ESTABLISHED timeout, a UDP one the new UDP timeout; both paths.
    #[test]
    fn published_timeouts_time_new_states() {
        use crate::conn::dump::{walk, ConnRecord};
        use crate::service::table::StateTimeouts;
        use crate::service::Timeouts;
        let mut h = Harness::new();
        let cfg = Config::from_toml(CONFIG, Path::new("harness.toml")).unwrap();
        let rules = Rules::parse(RULES, Path::new("harness.rules")).unwrap();
        let mut timeouts = StateTimeouts::default();
        timeouts.set(&Timeouts {
            tcp: 3600,
            tcp_fin: 0,
            udp: 30,
        });
        assert_eq!(
            timeouts.shown(),
            Timeouts {
                tcp: 3600,
                tcp_fin: 120,
                udp: 30
            }
        );
        for e in [&mut h.engine, &mut h.general] {
            let mut t = ServiceTable::build(&rules, &cfg.marks, &mut Registry::default()).unwrap();
            t.set_timeouts(timeouts);
            e.set_services(Arc::new(t));
        }
        let s = seeds();
        let (syn, ack, ntp) = (&s[4], &s[6], &s[11]);
        h.feed(0, syn, 1_000_000).unwrap();
        h.feed(0, ack, 2_000_000).unwrap();
        h.feed(0, ntp, 2_000_000).unwrap();
        for e in [&h.engine, &h.general] {
            let mut records: Vec<ConnRecord> = Vec::new();
            let mut from = Some(0);
            while let Some(f) = from {
                from = walk(e.ctx().conn_table(), f, 2_000_000, &mut records);
            }
            let left: Vec<(&str, u64)> = records.iter().map(|r| (r.state, r.expires_s)).collect();
            assert!(left.contains(&("ESTABLISHED", 3600)), "{left:?}");
            assert!(left.contains(&("UDP", 30)), "{left:?}");
        }
        h.finish().unwrap();
    }

    /// A real server removed while it has a connection (ip_vs_core.c
    /// `ip_vs_in_hook` with a dest no longer AVAILABLE): by default the
    /// client's packets are dropped and the connection kept, so it goes
    /// on when the server is added back; with `expire_nodest_conn` the
    /// connection ends at the next packet, which is taken as new (a
    /// mid-connection ACK then has no connection; a SYN is scheduled to a
    /// server that is there). Both paths, each with its own registry.
    #[test]
    fn connections_of_a_removed_server_follow_ipvs() {
        use crate::config::ConnConfig;
        use crate::conn::dump::{walk, ConnRecord};
        use std::net::Ipv4Addr;
        let cfg = Config::from_toml(CONFIG, Path::new("harness.toml")).unwrap();
        let s = seeds();
        let (syn, ack) = (&s[4], &s[6]);
        let records = |e: &Engine<TestBuf>| {
            let mut r: Vec<ConnRecord> = Vec::new();
            let mut from = Some(0);
            while let Some(f) = from {
                from = walk(e.ctx().conn_table(), f, 0, &mut r);
            }
            r
        };
        for expire_nodest_conn in [false, true] {
            let conn = ConnConfig {
                capacity: 1024,
                expire_nodest_conn,
                ..ConnConfig::default()
            };
            let mut h = Harness::new();
            let mut regs = [Registry::default(), Registry::default()];
            let table = |reg: &mut Registry, text: &str| {
                let rules = Rules::parse(text, Path::new("t.rules")).unwrap();
                let mut t = ServiceTable::build(&rules, &cfg.marks, reg).unwrap();
                t.set_conn_flags((&conn).into());
                Arc::new(t)
            };
            h.engine =
                Engine::with_services(Arc::clone(&h.host), table(&mut regs[0], RULES), &conn, 1);
            h.general =
                Engine::with_services(Arc::clone(&h.host), table(&mut regs[1], RULES), &conn, 1);
            h.general.set_fast_path(false);
            (h.out, h.general_out) = (Collect::default(), Collect::default());
            h.engine.announce(&mut h.out);
            h.general.announce(&mut h.general_out);
            h.feed(0, syn, 1_000_000).unwrap();
            let first = records(&h.engine)[0].daddr;
            assert_eq!(records(&h.general)[0].daddr, first);
            // Without the server the SYN went to.
            let without: String = RULES
                .lines()
                .filter(|l| !l.contains(&format!("-r {first}:8080")))
                .map(|l| format!("{l}\n"))
                .collect();
            let before = h.engine.stats().drops[DropReason::DestUnavailable as usize];
            for (e, reg) in [&mut h.engine, &mut h.general].into_iter().zip(&mut regs) {
                e.set_services(table(reg, &without));
            }
            h.feed(0, ack, 2_000_000).unwrap();
            let drops = |h: &Harness, r: DropReason| h.engine.stats().drops[r as usize];
            if !expire_nodest_conn {
                assert_eq!(drops(&h, DropReason::DestUnavailable), before + 1);
                assert_eq!(records(&h.engine).len(), 1, "the connection stays");
                // Added back (the same id): the connection goes on.
                for (e, reg) in [&mut h.engine, &mut h.general].into_iter().zip(&mut regs) {
                    e.set_services(table(reg, RULES));
                }
                let sent = h.engine.stats().replied;
                h.feed(0, ack, 3_000_000).unwrap();
                assert_eq!(h.engine.stats().replied, sent + 1, "forwarded again");
            } else {
                assert_eq!(drops(&h, DropReason::TcpNoConn), 1);
                assert!(records(&h.engine).is_empty(), "the connection ended");
                h.feed(0, syn, 3_000_000).unwrap();
                let now: Vec<Ipv4Addr> = records(&h.engine).iter().map(|r| r.daddr).collect();
                assert_eq!(now.len(), 1);
                assert_ne!(now[0], first, "scheduled to a server that is there");
            }
            h.finish().unwrap();
        }
    }

    /// The shapes at the edge of the fast path, each after a connection
    /// exists, and the general path's answer to each (the harness compares
    /// the two engines on every frame): fragments (first, later), IP
    /// options, a bad header checksum, a broadcast destination, Ethernet
    /// padding, layer-4 headers longer than the segment, a RST, a NAT
    /// reply, a reused port after the connection closed, an entry that
    /// expired, and datagrams of no connection or service (to the
    /// director, to the broadcast address, from a martian source).
    #[test]
    fn the_fast_path_agrees_with_the_general_path_at_its_edges() {
        let s = seeds();
        let (syn, ack, reply11, reply12) = (&s[4], &s[6], &s[7], &s[8]);
        let (syn443, fin443, ntp) = (&s[9], &s[10], &s[11]);
        let edit = |f: &[u8], change: &dyn Fn(&mut Vec<u8>)| {
            let mut f = f.to_vec();
            change(&mut f);
            refresh_ip_checksum(&mut f);
            f
        };
        let first_fragment = edit(ack, &|f| f[20] |= 0x20);
        let later_fragment = edit(ack, &|f| f[21] = 1);
        let options = edit(ack, &|f| {
            f[14] = 0x46;
            f.splice(34..34, [1, 1, 1, 0]);
            f[17] += 4;
        });
        let mut bad_checksum = ack.clone();
        bad_checksum[24] ^= 0xff;
        let broadcast = edit(ack, &|f| f[0..6].fill(0xff));
        let padded = edit(ack, &|f| f.extend_from_slice(&[0; 8]));
        let rst = edit(ack, &|f| f[47] = 0x04);
        let long_udp = edit(ntp, &|f| f[38..40].copy_from_slice(&[0xff, 0xff]));
        let long_tcp_header = edit(ack, &|f| f[46] = 0xf0);
        // No connection, no service: the host duties' verdicts.
        let to_director = edit(ack, &|f| f[33] = 2);
        let to_broadcast = edit(ntp, &|f| f[33] = 255);
        let martian_to_director = edit(ack, &|f| {
            f[26..30].fill(0);
            f[33] = 2;
        });
        let frames: Vec<(&[u8], u64)> = vec![
            (syn, 0),
            (ack, 10),
            (&first_fragment, 10),
            (&later_fragment, 10),
            (&options, 10),
            (&bad_checksum, 10),
            (&broadcast, 10),
            (&padded, 10),
            (reply11, 10),
            (reply12, 10),
            (ntp, 10),
            (ntp, 10),
            (&long_udp, 10),
            (&long_tcp_header, 10),
            (&to_director, 10),
            (&to_broadcast, 10),
            (&martian_to_director, 10),
            (syn443, 10),
            (syn443, 10),
            (fin443, 10),
            (syn443, 10),
            (&rst, 10),
            (ack, 10),
            // Past every timeout: the lookups meet expired entries.
            (ack, 1_000_000_000),
            (ntp, 10),
            (syn, 10),
            (ack, 10),
        ];
        let mut h = Harness::new();
        let mut now = 1_000_000;
        for (i, (f, dt)) in frames.iter().enumerate() {
            now += dt;
            if let Err(v) = h.feed(0, f, now) {
                panic!("frame {i}: {v}");
            }
        }
        h.finish().unwrap();
        // The fast path was taken, and the edges were reached.
        let s = h.engine.stats();
        assert!(s.replied >= 12, "{s:?}");
        for r in [
            DropReason::HostUnhandled,
            DropReason::Ipv4Broadcast,
            DropReason::Ipv4MartianSource,
        ] {
            assert_eq!(s.drops[r as usize], 1, "{r:?}: {s:?}");
        }
    }

    #[test]
    fn check_output_catches_bad_frames() {
        let h = Harness::new();
        let mut reply = seeds()[2].clone();
        reply[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xaa]);
        reply[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        assert!(check_output(&h.host, 0, &reply).is_ok());
        let mut bad = reply.clone();
        bad[40] ^= 1; // ICMP payload byte: checksum now wrong
        assert!(check_output(&h.host, 0, &bad)
            .unwrap_err()
            .contains("ICMP checksum"));
        let mut bad = reply.clone();
        bad[24] ^= 1;
        assert!(check_output(&h.host, 0, &bad)
            .unwrap_err()
            .contains("IPv4 header"));
        assert!(check_output(&h.host, 1, &reply)
            .unwrap_err()
            .contains("source MAC"));
        let big = [reply.clone(), vec![0; 1400]].concat();
        assert!(check_output(&h.host, 1, &big).unwrap_err().contains("MTU"));
    }

    /// The device words the fuzzer and the property test pick: "good" only
    /// for a header that verifies.
    #[test]
    fn devices_call_good_only_what_verifies() {
        let ping = &seeds()[2];
        let mut broken = ping.clone();
        broken[24] ^= 1;
        assert_eq!(device_meta(ping, 1).ip_csum, Csum::Good);
        assert_eq!(device_meta(&broken, 1).ip_csum, Csum::Unknown);
        assert_eq!(device_meta(&broken, 2).ip_csum, Csum::Bad);
        assert_eq!(device_meta(ping, 2).ip_csum, Csum::Bad);
        assert_eq!(device_meta(ping, 0).ip_csum, Csum::Unknown);
        assert_eq!(device_meta(ping, 3).ip_csum, Csum::Unknown);
        assert_eq!(device_meta(&seeds()[0], 1).ip_csum, Csum::Unknown, "ARP");
    }

    /// The independent checksum against RFC 1071's worked example (section
    /// 3): the words 0001 f203 f4f5 f6f7 sum to 0x2ddf0, folded 0xddf2,
    /// whose complement is the checksum 0x220d.
    #[test]
    fn internet_checksum_matches_rfc1071() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), 0x220d);
        // With the checksum appended, the whole verifies (checksum 0).
        assert_eq!(internet_checksum(&[&data[..], &[0x22, 0x0d]].concat()), 0);
        // An odd trailing byte counts as the high byte of a word: 00 01 f2
        // is 0001 + f200 = 0xf201, checksum 0x0dfe.
        assert_eq!(internet_checksum(&data[..3]), 0x0dfe);
        assert_eq!(internet_checksum(&[]), 0xffff);
        // The scapy-made echo request: its IPv4 header and ICMP message
        // verify.
        let ping = &seeds()[2];
        assert_eq!(internet_checksum(&ping[14..34]), 0);
        assert_eq!(internet_checksum(&ping[34..]), 0);
    }

    #[test]
    fn mutation_is_deterministic() {
        let s = &seeds()[2];
        let a: Vec<_> = (0..50).map(|i| mutate(s, &mut Rng::new(i))).collect();
        let b: Vec<_> = (0..50).map(|i| mutate(s, &mut Rng::new(i))).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|f| f != s));
    }

    const SEEDS: usize = 12;

    #[test]
    fn seeds_are_counted() {
        assert_eq!(seeds().len(), SEEDS);
    }

    fn frame() -> impl Strategy<Value = (u8, Vec<u8>)> {
        prop_oneof![
            // Arbitrary bytes.
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..200)),
            // Mutated real frames.
            (any::<u8>(), any::<u64>(), 0..SEEDS)
                .prop_map(|(p, seed, i)| { (p, mutate(&seeds()[i], &mut Rng::new(seed))) }),
            // Real frames as they are.
            (any::<u8>(), 0..SEEDS).prop_map(|(p, i)| (p, seeds()[i].clone())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

        /// The pipeline over random, mutated and real frames never panics
        /// and keeps every invariant, with time moving through ARP retries.
        #[test]
        fn pipeline_keeps_invariants(
            frames in proptest::collection::vec((frame(), 0..300_000u64), 1..40)
        ) {
            let mut h = Harness::new();
            let mut now = 1_000_000u64;
            for ((port, f), dt) in &frames {
                now += dt;
                // The port byte's high bits pick the device's checksum word.
                let meta = device_meta(f, port >> 4);
                if let Err(v) = h.feed_with(usize::from(port & 0x0f), f, now, meta) {
                    prop_assert!(false, "{}", v);
                }
            }
            if let Err(v) = h.finish() {
                prop_assert!(false, "{}", v);
            }
        }
    }
}
