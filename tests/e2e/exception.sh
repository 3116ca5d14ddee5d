#!/usr/bin/env bash
# tests/e2e/exception.sh: the exception path end to end. The director's
# lan0 has `kernel = "dk0"`: a net_tap interface in the director's
# namespace with the port's MAC and addresses, through which the kernel
# sends and receives the director's own traffic.
#
# Usage: tests/e2e/exception.sh [DLVS_BINARY]
#        DLVS_LCORES=0-1 tests/e2e/exception.sh ...   (two workers)
#
# The lab (scripts/lab, PREFIX dlvsx$$): the director (10.0.0.2, VIP
# 10.0.0.100), real servers rs1/rs2 (10.0.0.11/12) with an HTTP server on
# 8080, a client (10.0.0.50). Rules: -A -t 10.0.0.100:80 -s rr, NAT to both
# servers' 8080 (the client reaches the VIP via the director).
# Checks:
#   (k) dk0 exists in the director's namespace, up, with lan0's MAC and
#       10.0.0.2/24;
#   (o) the director's own kernel reaches the servers through the data
#       port: an HTTP GET to each real server (what a health check does),
#       and a ping to each (their echo replies go to the kernel);
#   (i) a client reaches a service of the director's kernel: an HTTP
#       server in the director's namespace on 10.0.0.2:8000;
#   (v) the virtual service is still the data plane's: 20 requests to
#       10.0.0.100:80 from the client, both servers serving;
#   (c) the metrics count frames punted to the kernel and frames it sent;
#   (d) dlvs exits 0 on SIGTERM, and dk0 goes with it.
# Prints `ok - ...` / `not ok - ...` and last `e2e: N passed, M failed`;
# exits non-zero on any failure. Everything it starts is stopped by PID and
# the lab removed on exit, pass or fail.
set -euo pipefail

start=$SECONDS
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-${DLVS_BIN:-$root/target/debug/dlvs}}
[[ $bin == /* ]] || bin=$PWD/$bin

PREFIX=dlvsx$$
DIR_NS=$PREFIX-dir
CLI_NS=$PREFIX-cli
RS_NS=("$PREFIX-rs1" "$PREFIX-rs2")
RS_IP=(10.0.0.11 10.0.0.12)
VIP=10.0.0.100
NAT_NET=198.51.100
METRICS=127.0.0.1:9913
LCORES=${DLVS_LCORES:-0}

# shellcheck source=tests/e2e/common.bash
source "$root/tests/e2e/common.bash"

dlvs_pid=
servers=()
tmp=$(mktemp -d /tmp/dlvs-e2e-exc.XXXXXX)
log=$tmp/dlvs.log

# shellcheck disable=SC2317 # called from a trap
cleanup() { end_lab $? "${servers[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

require_root_and_bin
echo "# lcores $LCORES"

cfg=$tmp/dlvs.toml
cat >"$cfg" <<EOF2
[dpdk]
eal_args = ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--no-telemetry", "-l", "$LCORES", "--file-prefix", "$PREFIX"]

[[interface]]
name = "lan0"
device = "net_tap0,iface=dtap0"
mac = "02:00:00:00:00:01"
addresses = ["10.0.0.2/24", "$VIP/32", "$NAT_NET.1/24"]
kernel = "dk0"

[conn]
capacity = 65536

[metrics]
listen = "$METRICS"

[control]
socket = "$tmp/dlvs.sock"
EOF2
rules=$tmp/dlvs.rules
cat >"$rules" <<EOF2
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r ${RS_IP[0]}:8080 -m
-a -t $VIP:80 -r ${RS_IP[1]}:8080 -m
EOF2

"$root/scripts/lab" up "$PREFIX" | sed 's/^/# /'
serve_http 8080
ip -n "$CLI_NS" addr add "$NAT_NET.50/24" dev eth0

start_dlvs --config "$cfg" --rules "$rules"
"$root/scripts/lab" retap "$PREFIX" | sed 's/^/# /'
ip -n "$CLI_NS" route add "$VIP/32" via "$NAT_NET.1" src "$NAT_NET.50"

# (k) the kernel interface.
link=$(ip -n "$DIR_NS" -o link show dev dk0 2>&1 || true)
addrs=$(ip -n "$DIR_NS" -o -4 addr show dev dk0 2>&1 || true)
sed 's/^/# /' <<<"$link"$'\n'"$addrs"
# shellcheck disable=SC2317 # called through check
kernel_itf_ok() {
    grep -q 'state UP\|,UP' <<<"$link" && grep -q 'link/ether 02:00:00:00:00:01' <<<"$link" &&
        grep -q 'inet 10.0.0.2/24' <<<"$addrs"
}
check "(k) dk0 is up in the director's namespace with lan0's MAC and 10.0.0.2/24" kernel_itf_ok

# (o) the director's kernel out through the data port.
for i in 0 1; do
    body=$(ip netns exec "$DIR_NS" curl -s --max-time 5 "http://${RS_IP[$i]}:8080/" || true)
    check "(o) the director's kernel GETs http://${RS_IP[$i]}:8080/ through dk0: '$body'" \
        test "$body" = "served by rs$((i + 1))"
    check "(o) the director's kernel pings ${RS_IP[$i]}" \
        ip netns exec "$DIR_NS" ping -c 2 -W 2 -q "${RS_IP[$i]}"
done

# (i) a client reaches the director's kernel.
mkdir -p "$tmp/own"
echo "the director itself" >"$tmp/own/index.html"
ip netns exec "$DIR_NS" /usr/bin/python3 -m http.server 8000 --bind 10.0.0.2 \
    --directory "$tmp/own" >"$tmp/own.log" 2>&1 &
servers+=($!)
for ((i = 0; i < 50; i++)); do
    ip netns exec "$DIR_NS" /usr/bin/python3 -c \
        'import socket; socket.create_connection(("10.0.0.2", 8000), 1)' 2>/dev/null && break
    sleep 0.1
done
body=$(ip netns exec "$CLI_NS" curl -s --max-time 5 --interface 10.0.0.50 "http://10.0.0.2:8000/" || true)
check "(i) the client GETs http://10.0.0.2:8000/ from the director's kernel: '$body'" \
    test "$body" = "the director itself"

# (v) the virtual service stays the data plane's.
# shellcheck disable=SC2317 # called through check
vip_ok() {
    local i body n1=0 n2=0 bad=0
    for ((i = 0; i < 20; i++)); do
        body=$(ip netns exec "$CLI_NS" curl -s --max-time 3 --interface "$NAT_NET.50" "http://$VIP:80/" || true)
        case $body in
        "served by rs1") n1=$((n1 + 1)) ;;
        "served by rs2") n2=$((n2 + 1)) ;;
        *) bad=$((bad + 1)) ;;
        esac
    done
    echo "# VIP: rs1 $n1, rs2 $n2, failed $bad"
    ((bad == 0 && n1 > 0 && n2 > 0))
}
check "(v) 20 requests to $VIP:80 through NAT all answered, both servers serving" vip_ok

# (c) metrics.
metrics=$(scrape_metrics)
punted=$(msum "$metrics" 'dlvs_lcore_punted_packets_total[{]')
from_kernel=$(msum "$metrics" 'dlvs_lcore_kernel_packets_total[{]')
echo "# punted to the kernel: $punted; sent for the kernel: $from_kernel"
check "(c) frames punted to the kernel and sent for it are counted" \
    test "$punted" -gt 10 -a "$from_kernel" -gt 10

# (d) clean stop; the kernel interface goes with the director.
check_clean_stop "(d) "
check "(d) dk0 is gone after the stop" eval "! ip -n '$DIR_NS' link show dev dk0 >/dev/null 2>&1"

finish
