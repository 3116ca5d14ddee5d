//! Configurations the tests share (built with `cfg(test)` or the
//! `testing` feature only).

/// A two-port director: a LAN port with the director's address and a
/// VIP, a WAN port (MTU 1400) with the default route and a static
/// gateway. The harness runs against it; engine tests use it too.
pub const TWO_PORTS: &str = r#"
[[interface]]
name = "lan0"
device = "net_null0"
mac = "02:00:00:00:00:01"
addresses = ["10.0.0.2/24", "10.0.0.100/32"]

[[interface]]
name = "wan0"
device = "net_null1"
mac = "02:00:00:00:00:02"
addresses = ["192.0.2.2/24"]
mtu = 1400

[[neighbor]]
interface = "wan0"
ip = "192.0.2.1"
mac = "02:00:00:00:00:0f"

[[neighbor]]
interface = "lan0"
ip = "10.0.0.11"
mac = "02:00:00:00:01:11"

[[neighbor]]
interface = "lan0"
ip = "10.0.0.12"
mac = "02:00:00:00:01:12"

[[route]]
prefix = "0.0.0.0/0"
via = "192.0.2.1"

[arp]
retry_ms = 100
retries = 2
queue = 16
table_size = 64

[[mark]]
mark = 5
destination = "10.0.0.100/32"
protocol = "tcp"
ports = [8443]

[conn]
capacity = 1024
"#;
