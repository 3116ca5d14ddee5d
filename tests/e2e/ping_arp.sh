#!/usr/bin/env bash
# tests/e2e/ping_arp.sh: end-to-end test of the director's host duties in
# network namespaces (ARP for its addresses, ICMP echo, metrics, clean stop).
#
# Usage: tests/e2e/ping_arp.sh [DLVS_BINARY]
#        DLVS_LCORES=0-1 tests/e2e/ping_arp.sh ...   (one worker per lcore)
#
# The binary is $1, else $DLVS_BIN, else target/debug/dlvs. Run as root.
# DLVS_LCORES is the EAL lcore list (default 0: one worker). With two
# workers the tap's queues spread the client's frames over both, so an ARP
# request and the echo after it may reach different workers: the neighbour
# fact learned by one must serve the other.
# It builds a lab with scripts/lab (PREFIX dlvst$$), runs `dlvs run --config`
# in the director's namespace with config/demo.toml's settings (metrics on
# 127.0.0.1:9911) plus `[arp] table_size = 512`, and checks from a real
# Linux client (10.0.0.50):
#   (0) the interface's MTU (1400 here) is programmed on the tap: its
#       kernel side dtap0 shows it
#   (a) the kernel's own ARP resolves the VIP 10.0.0.100 to 02:00:00:00:00:01
#   (b) 5/5 echo replies from the VIP and from the director's 10.0.0.2
#   (c) the metrics: dlvs_lcore_replied_packets_total >= 10 and
#       dlvs_port_rx_packets_total{port="lan0"}; with two or more workers,
#       after UDP datagrams from 64 source ports per worker, every worker's
#       dlvs_lcore_received_packets_total is at least 1
#   (d) the log reports the tap's link as up
#   (e) neighbour-table flood: 3000 ARP requests for the VIP from random
#       MACs with off-subnet senders 10.x.y.9 reach the director
#       (dlvs_port_rx_packets_total grows by at least 2700); then a
#       neighbour it has not met yet (rs2, 10.0.0.12) gets 5/5 echo replies
#       from 10.0.0.2, and no lcore reports a neighbor_table_full drop
#   (f) a real server that claims the VIP in ARP (the VIP on its eth0 with
#       the default arp_announce: LVS-DR's classic fault) is named in the log
#   (g) dlvs exits 0 within 10 s of SIGTERM
# Prints `ok - ...` / `not ok - ...` per check and last
# `e2e: N passed, M failed`; exits non-zero on any failure. The director is
# stopped by its PID and the lab removed on exit, pass or fail.
set -euo pipefail

start=$SECONDS
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-${DLVS_BIN:-$root/target/debug/dlvs}}
[[ $bin == /* ]] || bin=$PWD/$bin

PREFIX=dlvst$$
DIR_NS=$PREFIX-dir
CLI_NS=$PREFIX-cli
VIP=10.0.0.100
DIRECTOR_IP=10.0.0.2
DIRECTOR_MAC=02:00:00:00:00:01
METRICS=127.0.0.1:9911
LCORES=${DLVS_LCORES:-0}

# shellcheck source=tests/e2e/common.bash
source "$root/tests/e2e/common.bash"
# scrape: the director's metrics page (empty if it does not answer)
scrape() { ip netns exec "$DIR_NS" curl -s --max-time 2 "http://$METRICS/metrics" || true; }
# lcores LIST: the lcores of an EAL list such as 0, 0-1 or 0,2-3, one a
# line; fails on any other form
lcores() {
    local part l
    local -a parts
    IFS=, read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
            for ((l = BASH_REMATCH[1]; l <= BASH_REMATCH[2]; l++)); do echo "$l"; done
        elif [[ $part =~ ^[0-9]+$ ]]; then
            echo "$part"
        else
            return 1
        fi
    done
}

dlvs_pid=
tmp=$(mktemp -d /tmp/dlvs-e2e.XXXXXX)
log=$tmp/dlvs.log

# shellcheck disable=SC2317 # called from a trap or through check
cleanup() { end_lab $?; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

require_root_and_bin

# The demo's configuration, with this test's metrics port and an MTU of
# 1400, which dlvs programs on the tap (its kernel side shows it).
MTU=1400
cfg=$tmp/dlvs.toml
sed -E -e "s|^listen = .*|listen = \"$METRICS\"|" \
    -e "s|\"-l\", \"0\"|\"-l\", \"$LCORES\"|" \
    -e "s|^(addresses = .*)$|\1\nmtu = $MTU|" "$root/config/demo.toml" >"$cfg"
# A small neighbour table for (e) (demo.toml has no [arp] section).
cat >>"$cfg" <<'EOF'

[arp]
table_size = 512
EOF
grep -q "^listen = \"$METRICS\"" "$cfg" && grep -q "\"-l\", \"$LCORES\"" "$cfg" &&
    grep -q "^mtu = $MTU$" "$cfg" ||
    { not_ok "writing the config $cfg"; finish; }
echo "# lcores $LCORES"

"$root/scripts/lab" up "$PREFIX" | sed 's/^/# /'

ip netns exec "$DIR_NS" "$bin" run --config "$cfg" >"$log" 2>&1 &
dlvs_pid=$!

ready=0
deadline=$((SECONDS + 20))
while ((SECONDS < deadline)); do
    kill -0 "$dlvs_pid" 2>/dev/null || break
    if ip -n "$DIR_NS" link show dev dtap0 2>/dev/null | grep -q 'LOWER_UP' &&
        { grep -q 'running until' "$log" ||
            ip netns exec "$DIR_NS" curl -sf --max-time 1 -o /dev/null "http://$METRICS/metrics"; }; then
        ready=1
        break
    fi
    sleep 0.1
done
if ((ready == 0)); then
    not_ok "dlvs starts and its tap comes up within 20 s"
    finish
fi
ok "dlvs starts and its tap comes up ($((SECONDS - start)) s)"
tap_mtu=$(ip -n "$DIR_NS" -o link show dev dtap0 | sed -nE 's/.* mtu ([0-9]+) .*/\1/p')
check "the port's MTU is programmed: dtap0 has MTU ${tap_mtu:-?} = $MTU" test "${tap_mtu:-0}" = "$MTU"
"$root/scripts/lab" retap "$PREFIX" | sed 's/^/# /'

# (a) the client's kernel resolves the VIP with ARP.
ip netns exec "$CLI_NS" ping -c 1 -W 2 "$VIP" >/dev/null 2>&1 || true
neigh=$(ip -n "$CLI_NS" neigh show "$VIP")
echo "# client: ip neigh show $VIP: $neigh"
check "client resolves $VIP to $DIRECTOR_MAC by ARP" \
    grep -Eqi "lladdr $DIRECTOR_MAC( |$)" <<<"$neigh"

# (b) echo replies.
# shellcheck disable=SC2317 # called from a trap or through check
pings() { # pings ADDR [NS]: 5/5 replies to pings from NS (default: the client)
    local out
    out=$(ip netns exec "${2:-$CLI_NS}" ping -c 5 -i 0.2 -W 1 "$1" 2>&1) || true
    echo "# $(grep 'packets transmitted' <<<"$out")"
    grep -q '5 packets transmitted, 5 received' <<<"$out"
}
check "ping $VIP: 5/5 replies" pings "$VIP"
check "ping $DIRECTOR_IP: 5/5 replies" pings "$DIRECTOR_IP"

# (c) metrics (published every 100 ms by default: retry for 3 s).
replied=0
metrics=
for ((i = 0; i < 30; i++)); do
    metrics=$(scrape)
    replied=$(msum "$metrics" 'dlvs_lcore_replied_packets_total[{ ]')
    ((replied >= 10)) && break
    sleep 0.1
done
check "metrics: dlvs_lcore_replied_packets_total = $replied >= 10" test "$replied" -ge 10
rx=$(grep -E '^dlvs_port_rx_packets_total\{port="lan0"\} ' <<<"$metrics" || true)
check "metrics: ${rx:-no dlvs_port_rx_packets_total for port lan0}" test -n "$rx"
# Which worker saw what (the kernel's flow hash picks the tap queue).
echo "# per worker: $(grep -E '^dlvs_lcore_received_packets_total' <<<"$metrics" |
    sed -E 's/.*lcore="([0-9]+)"} ([0-9]+)/lcore \1 received \2/' | paste -sd, -)"
# With two or more workers, prove that every one of them receives frames.
# The ARP and ping traffic above usually lands on a single tap queue: the
# kernel's tun driver picks the queue by a flow hash (addresses and ports),
# and ARP, like one ping flow, hashes the same every time. UDP datagrams
# from distinct source ports (40000, 40001, ...) are distinct flows, and the
# hash's key is random per boot: with 64 datagrams per worker the chance
# that a worker gets none is about N * (1 - 1/N)^(64 N) for N workers
# (2^-127 for two). dlvs counts them as received and drops them
# (host_unhandled). The lcores are those of DLVS_LCORES (every EAL lcore
# runs a worker), or, for a list this script cannot read, those the metrics
# name.
workers=()
if ! list=$(lcores "$LCORES"); then
    list=$(sed -nE 's/^dlvs_lcore_received_packets_total[{]lcore="([0-9]+)"[}].*/\1/p' <<<"$metrics")
fi
mapfile -t workers < <(sort -nu <<<"$list" | grep .)
if ((${#workers[@]} >= 2)); then
    ip netns exec "$CLI_NS" /usr/bin/python3 - "$VIP" $((64 * ${#workers[@]})) <<'PY' || true
import socket
import sys

vip, n = sys.argv[1], int(sys.argv[2])
for port in range(40000, 40000 + n):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", port))
        s.sendto(b"dlvs e2e", (vip, 9))
PY
    for ((i = 0; i < 30; i++)); do
        metrics=$(scrape)
        seen=()
        all=1
        for l in "${workers[@]}"; do
            n=$(msum "$metrics" "dlvs_lcore_received_packets_total[{]lcore=\"$l\"[}] ")
            seen+=("lcore $l: $n")
            ((n >= 1)) || all=0
        done
        ((all)) && break
        sleep 0.1
    done
    if ((${#workers[@]} == 2)); then what="both workers"; else what="all ${#workers[@]} workers"; fi
    check "$what received traffic ($(printf '%s, ' "${seen[@]}" | sed 's/, $//'))" test "$all" = 1
fi

# (d) the control thread logs the port's link state.
check "log: interface lan0: link up" grep -q 'interface lan0: link up' "$log"

# (e) neighbour-table flood. ARP requests for the VIP from many MACs whose
# sender addresses lie outside the director's connected subnet 10.0.0.0/24
# (a scan, a spoofer, a misconfigured host) must not fill the neighbour
# table (table_size = 512 above), or the director can no longer resolve
# the neighbours it needs. The flood is 3000 requests from random locally
# administered MACs and distinct senders 10.x.y.9, (x, y) != (0, 0): one
# scapy process builds them all, then one sendp sends them (a few seconds).
# Then rs2, which has sent nothing to the director so far (rs1 pings rs2
# only in (f)), pings the director's 10.0.0.2: the director must learn rs2
# and answer, without a neighbor_table_full drop on any lcore.
RS2_NS=$PREFIX-rs2
RS2_IP=10.0.0.12
FLOOD=3000
rx_lan0='dlvs_port_rx_packets_total[{]port="lan0"[}] '
rx0=$(msum "$(scrape)" "$rx_lan0")
t0=$EPOCHREALTIME
if ip netns exec "$CLI_NS" /usr/bin/python3 - "$VIP" "$FLOOD" <<'PY'; then
import random
import sys

from scapy.all import ARP, Ether, sendp

vip, n = sys.argv[1], int(sys.argv[2])
frames = []
for xy in random.sample(range(1, 1 << 16), n):
    mac = "02:%02x:%02x:%02x:%02x:%02x" % (
        random.randrange(1, 256), *(random.randrange(256) for _ in range(4)))
    psrc = "10.%d.%d.9" % (xy >> 8, xy & 0xFF)
    frames.append(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") /
                  ARP(op=1, hwsrc=mac, psrc=psrc, pdst=vip))
sendp(frames, iface="eth0", verbose=False)
PY
    echo "# flood: $FLOOD ARP requests built and sent in $(awk -v a="$t0" -v b="$EPOCHREALTIME" \
        'BEGIN {printf "%.1f", b - a}') s"
    # All of them normally arrive; allow for a few lost in the tap's queue.
    grown=0
    for ((i = 0; i < 30; i++)); do
        rx1=$(msum "$(scrape)" "$rx_lan0")
        grown=$((rx1 - rx0))
        ((grown >= FLOOD)) && break
        sleep 0.1
    done
    check "the flood reached the director: dlvs_port_rx_packets_total{port=\"lan0\"} grew by $grown >= $((FLOOD * 9 / 10))" \
        test "$grown" -ge $((FLOOD * 9 / 10))
else
    not_ok "sending $FLOOD ARP requests with scapy (/usr/bin/python3, python3-scapy)"
    rx1=$(msum "$(scrape)" "$rx_lan0")
fi
echo "# rs2: ip neigh show $DIRECTOR_IP: $(ip -n "$RS2_NS" neigh show "$DIRECTOR_IP" | grep . || echo none)"
check "after a flood of $FLOOD ARP requests from off-subnet senders, a new neighbour (rs2 $RS2_IP) gets 5/5 echo replies from $DIRECTOR_IP" \
    pings "$DIRECTOR_IP" "$RS2_NS"
# Wait until the workers' counters cover rs2's frames (its ARP request and
# echo requests come after the $rx1 frames counted above), then sum the drops.
full_series=0
full=0
for ((i = 0; i < 30; i++)); do
    metrics=$(scrape)
    full_series=$(grep -c '^dlvs_lcore_dropped_packets_total{.*reason="neighbor_table_full"' <<<"$metrics" || true)
    full=$(msum "$metrics" 'dlvs_lcore_dropped_packets_total[{].*reason="neighbor_table_full"')
    (($(msum "$metrics" 'dlvs_lcore_received_packets_total[{]') >= rx1 + 5)) && break
    sleep 0.1
done
# shellcheck disable=SC2317 # called through check
no_table_full() { ((full_series > 0 && full == 0)); }
check "metrics: no neighbor_table_full drops (sum over $full_series lcore(s): $full)" no_table_full

# (f) LVS-DR's classic fault: a real server with the VIP on its interface
# and the default arp_announce uses the VIP as the sender of its own ARP
# requests. The director must name it in its log (run mode: the control
# thread's periodic check).
RS1_NS=$PREFIX-rs1
ip -n "$RS1_NS" addr add "$VIP/32" dev eth0
rs1_mac=$(ip -n "$RS1_NS" link show dev eth0 | awk '/link\/ether/ {print $2}')
ip netns exec "$RS1_NS" ping -c 1 -W 1 -I "$VIP" 10.0.0.12 >/dev/null 2>&1 || true
conflict=0
for ((i = 0; i < 30; i++)); do
    if grep -qi "$rs1_mac claims the director's address $VIP" "$log"; then
        conflict=1
        break
    fi
    sleep 0.1
done
check "log names the real server $rs1_mac that claims $VIP" test "$conflict" = 1
ip -n "$RS1_NS" addr del "$VIP/32" dev eth0

# (g) clean stop.
check_clean_stop ""

finish
