#!/usr/bin/env bash
# tests/e2e/tun.sh: the TUN forwarding method (ipip, GUE, GRE) end to end,
# real Linux TCP through dlvs on a tap device, in network namespaces.
#
# Usage: tests/e2e/tun.sh [DLVS_BINARY]
#        DLVS_LCORES=0-1 tests/e2e/tun.sh ...   (two workers)
#
# The lab (scripts/lab, PREFIX dlvsu$$): the director (10.0.0.2, VIP
# 10.0.0.100), two real servers rs1/rs2 (10.0.0.11/12) running Python's
# http.server on ports 80, 81 and 82, and a client 10.0.0.50.
# Rules (the real servers' port is the service's, as ipvsadm forces for -i):
#   -A -t 10.0.0.100:80 -s rr    -i --tun-type ipip            to both servers
#   -A -t 10.0.0.100:81 -s wlc   -i --tun-type gue --tun-port 6080
#   -A -t 10.0.0.100:82 -s rr    -i --tun-type gre --tun-csum
# The kernels here have no ipip, ip_gre or fou modules, so each real server
# takes the tunnels apart in userspace: tests/e2e/tun_decap.py, one per
# tunnel type, each feeding the inner packets to its own TUN device
# (dlvs-ipip, dlvs-gue, dlvs-gre), and checking what it strips (GUE header,
# GRE flags and checksum). The servers hold the VIP on lo (arp_ignore=1,
# arp_announce=2, as for DR) and have rp_filter off (the inner packets come
# from the client, which they route by eth0); replies go straight to the
# client. The client's route to the VIP has MTU 1468, so no packet of it
# needs more than the 1500 bytes of the director's port once tunnelled.
# Checks:
#   (a) ipip: 20 HTTP requests to 10.0.0.100:80 all answered, both servers
#       serving (the body names the server);
#   (b) GUE: the same for :81;
#   (c) GRE with checksums: the same for :82;
#   (w) a load run, wrk -t2 -c16 for 3 s through the ipip tunnels: no socket
#       errors, every answer 2xx;
#   (m) the metrics show no drops for tun_too_big, no_dest (summed over
#       lcores), and the client has learned no path MTU to the VIP (dlvs
#       answers a DF packet too big for the tunnel with ICMP fragmentation
#       needed, which the client would cache);
#   (e) every decapsulator forwarded packets, found none malformed (outer
#       header, GUE header, GRE flags and checksum, inner header), and
#       exits 0 on SIGTERM;
#   (d) dlvs exits 0 on SIGTERM.
# Prints `ok - ...` / `not ok - ...` and last `e2e: N passed, M failed`;
# exits non-zero on any failure. Everything it starts is stopped by PID and
# the lab removed on exit, pass or fail.
set -euo pipefail

start=$SECONDS
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-${DLVS_BIN:-$root/target/debug/dlvs}}
[[ $bin == /* ]] || bin=$PWD/$bin
decap=$root/tests/e2e/tun_decap.py

PREFIX=dlvsu$$
DIR_NS=$PREFIX-dir
CLI_NS=$PREFIX-cli
RS_NS=("$PREFIX-rs1" "$PREFIX-rs2")
RS_IP=(10.0.0.11 10.0.0.12)
DIRECTOR_IP=10.0.0.2
VIP=10.0.0.100
GUE_PORT=6080
METRICS=127.0.0.1:9913
LCORES=${DLVS_LCORES:-0}
REQUESTS=20
# tunnel type, service port, TUN device on the real servers
TUNNELS=("ipip 80 dlvs-ipip" "gue 81 dlvs-gue" "gre 82 dlvs-gre")

# shellcheck source=tests/e2e/common.bash
source "$root/tests/e2e/common.bash"

dlvs_pid=
servers=()
decaps=()
decap_logs=()
tmp=$(mktemp -d /tmp/dlvs-e2e-tun.XXXXXX)
log=$tmp/dlvs.log

# shellcheck disable=SC2317 # called from a trap
cleanup() { end_lab $? "${servers[@]}" "${decaps[@]}"; }
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
addresses = ["$DIRECTOR_IP/24", "$VIP/32"]

[conn]
capacity = 65536

[metrics]
listen = "$METRICS"
EOF2
rules=$tmp/dlvs.rules
cat >"$rules" <<EOF2
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r ${RS_IP[0]}:80 -i --tun-type ipip
-a -t $VIP:80 -r ${RS_IP[1]}:80 -i --tun-type ipip
-A -t $VIP:81 -s wlc
-a -t $VIP:81 -r ${RS_IP[0]}:81 -i --tun-type gue --tun-port $GUE_PORT
-a -t $VIP:81 -r ${RS_IP[1]}:81 -i --tun-type gue --tun-port $GUE_PORT
-A -t $VIP:82 -s rr
-a -t $VIP:82 -r ${RS_IP[0]}:82 -i --tun-type gre --tun-csum
-a -t $VIP:82 -r ${RS_IP[1]}:82 -i --tun-type gre --tun-csum
EOF2

"$root/scripts/lab" up "$PREFIX" | sed 's/^/# /'

# The real servers: the VIP on lo without answering ARP for it; rp_filter
# off (the inner packets' source, the client, is routed by eth0, not by the
# TUN device they arrive on); one TUN device and decapsulator per tunnel
# type; an HTTP server on 80, 81 and 82 whose page names the server.
for i in 0 1; do
    ns=${RS_NS[$i]}
    www=$tmp/www$i
    mkdir -p "$www"
    echo "served by rs$((i + 1))" >"$www/index.html"
    ip -n "$ns" addr add "$VIP/32" dev lo
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    for t in "${TUNNELS[@]}"; do
        read -r type port dev <<<"$t"
        ip netns exec "$ns" ip tuntap add dev "$dev" mode tun
        ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$dev.rp_filter=0"
        ip -n "$ns" link set dev "$dev" up
        dlog=$tmp/decap-rs$((i + 1))-$type.log
        ip netns exec "$ns" "$decap" --type "$type" --port "$GUE_PORT" --dev "$dev" \
            --peer "$DIRECTOR_IP" >"$dlog" 2>&1 &
        decaps+=($!)
        decap_logs+=("$dlog")
        ip netns exec "$ns" /usr/bin/python3 -m http.server "$port" --bind 0.0.0.0 \
            --directory "$www" >"$tmp/http-$i-$port.log" 2>&1 &
        servers+=($!)
    done
done
# The client: room for the tunnel's 32 bytes at most under the director's
# 1500 (the HTTP requests are small anyway; the replies do not cross it).
ip -n "$CLI_NS" route add "$VIP/32" dev eth0 mtu 1468

start_dlvs --config "$cfg" --rules "$rules"
"$root/scripts/lab" retap "$PREFIX" | sed 's/^/# /'
# The decapsulators and the servers' HTTP listeners are up.
for ((i = 0; i < 50; i++)); do
    up=0
    for dlog in "${decap_logs[@]}"; do
        grep -q ': ready$' "$dlog" && up=$((up + 1))
    done
    for ns in "${RS_NS[@]}"; do
        ip netns exec "$ns" /usr/bin/python3 -c \
            'import socket; [socket.create_connection(("127.0.0.1", p), 1) for p in (80, 81, 82)]' \
            2>/dev/null && up=$((up + 1))
    done
    ((up == ${#decap_logs[@]} + 2)) && break
    sleep 0.1
done

# run_requests PORT NAME: every request answered, both servers serving.
# shellcheck disable=SC2317 # called through check
run_requests() {
    local port=$1 name=$2 n1=0 n2=0 bad=0 body i
    for ((i = 0; i < REQUESTS; i++)); do
        body=$(ip netns exec "$CLI_NS" curl -s --max-time 3 "http://$VIP:$port/" || true)
        case $body in
        "served by rs1") n1=$((n1 + 1)) ;;
        "served by rs2") n2=$((n2 + 1)) ;;
        *) bad=$((bad + 1)) ;;
        esac
    done
    echo "# $name: rs1 $n1, rs2 $n2, failed $bad of $REQUESTS"
    ((bad == 0 && n1 > 0 && n2 > 0))
}
check "(a) ipip: $REQUESTS requests to $VIP:80 all answered, both servers serving" \
    run_requests 80 ipip
check "(b) GUE (port $GUE_PORT): $REQUESTS requests to $VIP:81 all answered, both servers serving" \
    run_requests 81 GUE
check "(c) GRE with checksum: $REQUESTS requests to $VIP:82 all answered, both servers serving" \
    run_requests 82 GRE

# (w) a load run through the ipip tunnels.
check "(w) wrk through ipip for 3 s: no socket errors, every answer 2xx, over 100 requests" \
    wrk_ok ipip "http://$VIP:80/"

# (m) metrics.
metrics=$(scrape_metrics)
unexpected=0
for reason in tun_too_big no_dest; do
    n=$(msum "$metrics" "dlvs_lcore_dropped_packets_total[{].*reason=\"$reason\"")
    if ((n > 0)); then
        echo "# $reason: $n"
        unexpected=$((unexpected + n))
    fi
done
# A path MTU learned from ICMP shows as a cached exception (`expires`).
pmtu=$(ip -n "$CLI_NS" route get "$VIP" | grep -o 'expires.*' || true)
if [[ -n $pmtu ]]; then
    echo "# the client's route to $VIP: $pmtu"
    unexpected=$((unexpected + 1))
fi
if [[ -z $metrics ]]; then
    not_ok "(m) the metrics endpoint $METRICS answers"
else
    check "(m) no drops for tun_too_big, no_dest, no path MTU learned ($unexpected)" \
        test "$unexpected" -eq 0
fi
echo "# connections: $(msum "$metrics" 'dlvs_lcore_connections[{]'); steered between workers: $(msum "$metrics" 'dlvs_lcore_steered_packets_total[{]')"

# (e) the decapsulators: stopped, each reports
# `tun_decap TYPE DEV: received N forwarded N bad N ...` on stderr.
# shellcheck disable=SC2317 # called through check
decaps_clean() {
    local k p rc line fwd bad good=0
    for k in "${!decaps[@]}"; do
        p=${decaps[$k]}
        kill -TERM "$p" 2>/dev/null || true
        rc=0
        wait "$p" || rc=$?
        line=$(grep '^tun_decap .* received ' "${decap_logs[$k]}" || true)
        echo "# $(basename "${decap_logs[$k]}" .log): ${line:-no counters} (exit $rc)"
        read -r fwd bad < <(awk '{for (i = 1; i < NF; i++) {
            if ($i == "forwarded") f = $(i + 1); if ($i == "bad") b = $(i + 1) }}
            END {print f + 0, (b == "" ? 1 : b)}' <<<"$line")
        ((rc == 0 && fwd > 0 && bad == 0)) && good=$((good + 1))
    done
    decaps=()
    ((good == ${#decap_logs[@]}))
}
check "(e) all ${#decap_logs[@]} decapsulators forwarded packets, found none malformed (GUE header, GRE checksum), and exit 0 on SIGTERM" \
    decaps_clean

# (d) clean stop.
check_clean_stop "(d) "

finish
