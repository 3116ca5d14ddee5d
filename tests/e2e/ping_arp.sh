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
# 127.0.0.1:9911), and checks from a real Linux client (10.0.0.50):
#   (a) the kernel's own ARP resolves the VIP 10.0.0.100 to 02:00:00:00:00:01
#   (b) 5/5 echo replies from the VIP and from the director's 10.0.0.2
#   (c) the metrics: dlvs_lcore_replied_packets_total >= 10 and
#       dlvs_port_rx_packets_total{port="lan0"}
#   (d) the log reports the tap's link as up
#   (e) a real server that claims the VIP in ARP (the VIP on its eth0 with
#       the default arp_announce: LVS-DR's classic fault) is named in the log
#   (f) dlvs exits 0 within 10 s of SIGTERM
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

passed=0
failed=0
ok() {
    printf 'ok - %s\n' "$*"
    passed=$((passed + 1))
}
not_ok() {
    printf 'not ok - %s\n' "$*"
    failed=$((failed + 1))
}
# check DESCRIPTION COMMAND...
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}

dlvs_pid=
tmp=$(mktemp -d /tmp/dlvs-e2e.XXXXXX)
log=$tmp/dlvs.log

# shellcheck disable=SC2317 # called from a trap or through check
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $dlvs_pid ]] && kill -0 "$dlvs_pid" 2>/dev/null; then
        kill -TERM "$dlvs_pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$dlvs_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$dlvs_pid" 2>/dev/null || true
        wait "$dlvs_pid" 2>/dev/null || true
    fi
    if ((failed > 0 || rc != 0)) && [[ -s $log ]]; then
        echo "# the last 30 lines of the dlvs log:"
        tail -n 30 "$log" | sed 's/^/#   /'
    fi
    "$root/scripts/lab" down "$PREFIX" >/dev/null 2>&1 || true
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

finish() {
    echo "# $((SECONDS - start)) s"
    echo "e2e: $passed passed, $failed failed"
    if ((failed > 0)); then exit 1; fi
    exit 0
}

if [[ $(id -u) -ne 0 ]]; then
    not_ok "running as root (network namespaces, DPDK)"
    finish
fi
if [[ ! -x $bin ]]; then
    not_ok "dlvs binary $bin exists (cargo build)"
    finish
fi

# The demo's configuration, with this test's metrics port.
cfg=$tmp/dlvs.toml
sed -E -e "s|^listen = .*|listen = \"$METRICS\"|" \
    -e "s|\"-l\", \"0\"|\"-l\", \"$LCORES\"|" "$root/config/demo.toml" >"$cfg"
grep -q "^listen = \"$METRICS\"" "$cfg" && grep -q "\"-l\", \"$LCORES\"" "$cfg" ||
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
"$root/scripts/lab" retap "$PREFIX" | sed 's/^/# /'

# (a) the client's kernel resolves the VIP with ARP.
ip netns exec "$CLI_NS" ping -c 1 -W 2 "$VIP" >/dev/null 2>&1 || true
neigh=$(ip -n "$CLI_NS" neigh show "$VIP")
echo "# client: ip neigh show $VIP: $neigh"
check "client resolves $VIP to $DIRECTOR_MAC by ARP" \
    grep -Eqi "lladdr $DIRECTOR_MAC( |$)" <<<"$neigh"

# (b) echo replies.
# shellcheck disable=SC2317 # called from a trap or through check
pings() { # pings ADDR: 5/5 replies
    local out
    out=$(ip netns exec "$CLI_NS" ping -c 5 -i 0.2 -W 1 "$1" 2>&1) || true
    echo "# $(grep 'packets transmitted' <<<"$out")"
    grep -q '5 packets transmitted, 5 received' <<<"$out"
}
check "ping $VIP: 5/5 replies" pings "$VIP"
check "ping $DIRECTOR_IP: 5/5 replies" pings "$DIRECTOR_IP"

# (c) metrics (published every 100 ms by default: retry for 3 s).
replied=0
metrics=
for ((i = 0; i < 30; i++)); do
    metrics=$(ip netns exec "$DIR_NS" curl -s --max-time 2 "http://$METRICS/metrics" || true)
    replied=$(awk '/^dlvs_lcore_replied_packets_total[{ ]/ {s += $NF} END {printf "%d", s}' \
        <<<"$metrics")
    ((replied >= 10)) && break
    sleep 0.1
done
check "metrics: dlvs_lcore_replied_packets_total = $replied >= 10" test "$replied" -ge 10
rx=$(grep -E '^dlvs_port_rx_packets_total\{port="lan0"\} ' <<<"$metrics" || true)
check "metrics: ${rx:-no dlvs_port_rx_packets_total for port lan0}" test -n "$rx"
# Which worker saw what (the kernel's flow hash picks the tap queue).
echo "# per worker: $(grep -E '^dlvs_lcore_received_packets_total' <<<"$metrics" |
    sed -E 's/.*lcore="([0-9]+)"} ([0-9]+)/lcore \1 received \2/' | paste -sd, -)"

# (d) the control thread logs the port's link state.
check "log: interface lan0: link up" grep -q 'interface lan0: link up' "$log"

# (e) LVS-DR's classic fault: a real server with the VIP on its interface
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

# (f) clean stop.
kill -TERM "$dlvs_pid"
stopped=0
for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$dlvs_pid" 2>/dev/null; then
        stopped=1
        break
    fi
    sleep 0.1
done
if ((stopped)); then
    rc=0
    wait "$dlvs_pid" || rc=$?
    dlvs_pid=
    check "dlvs exits 0 after SIGTERM (exit status $rc)" test "$rc" -eq 0
else
    not_ok "dlvs exits within 10 s of SIGTERM"
fi

finish
