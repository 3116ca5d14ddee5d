#!/usr/bin/env bash
# tests/e2e/scaleout.sh: three dlvs directors behind an ECMP router, their
# VIP announced over BGP, one killed and one drained under long-lived
# connections, then one joining.
#
# Usage: tests/e2e/scaleout.sh [DLVS_BINARY]
#        DLVS_LCORES=0-1 tests/e2e/scaleout.sh ...   (two workers each)
#
# The lab (scripts/lab, PREFIX dlvss$$) is the wire (its bridge); on it:
#   - directors A, B, C (10.0.0.2, .3, .4; A in the lab's director
#     namespace, B and C in namespaces of their own with a tap bridged to
#     the wire), each with an exception path, [bgp] (AS 65001, BIRD), [sync]
#     (no VRRP: every director sends and installs), [conn] sloppy = true
#     and the DR service 10.0.0.100:80 with mh over rs1 and rs2;
#   - the router rtr (10.0.0.254, AS 65000; BIRD, its routes merged into
#     ECMP in its kernel table, fib_multipath_hash_policy=1) between the
#     wire and the far client's network 198.51.100.0/24;
#   - rs1, rs2 (their replies go back through the router).
# Checks:
#   (a) the router's route to 10.0.0.100 has three next hops;
#   (b) the far client holds 12 long-lived downloads and a request loop;
#   (c) SIGKILL C: within 2 s the router has two next hops;
#   (d) every download finishes whole (those C carried went on through A
#       and B to the same real servers: mh, sloppy and sync);
#   (e) every request from 1 s after the convergence on succeeds;
#   (f) B drains (dlvsadm --drain) under 12 new downloads: its next hop
#       goes within 2 s, every download finishes whole;
#   (g) C joins again under 12 downloads: three next hops (B undrained),
#       the downloads finish whole with C taking a share (ECMP moves flows
#       to it; sloppy and mh keep their real servers), and new downloads
#       all finish whole.
# Prints the convergence time, the stall and the connections kept, then
# `e2e: N passed, M failed`; exits non-zero on any failure. Everything it
# starts is stopped by PID and the lab removed on exit, pass or fail.
set -euo pipefail

start=$SECONDS
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-${DLVS_BIN:-$root/target/debug/dlvs}}
[[ $bin == /* ]] || bin=$PWD/$bin
adm=$(dirname "$bin")/dlvsadm

PREFIX=dlvss$$
DIR_NS=$PREFIX-dir
CLI_NS=$PREFIX-far
RTR_NS=$PREFIX-rtr
RS_NS=("$PREFIX-rs1" "$PREFIX-rs2")
NS=("$PREFIX-dir" "$PREFIX-d2" "$PREFIX-d3")
ADDR=(10.0.0.2 10.0.0.3 10.0.0.4)
VIP=10.0.0.100
METRICS=127.0.0.1:9920
LCORES=${DLVS_LCORES:-0}
FLOWS=12
SIZE_KIB=4096

# shellcheck source=tests/e2e/common.bash
source "$root/tests/e2e/common.bash"

dlvs_pid=
pids=(0 0 0)
helpers=()
rtr_pid=
tmp=$(mktemp -d /tmp/dlvs-e2e-scaleout.XXXXXX)
log=$tmp/d0.log

# shellcheck disable=SC2317 # called from a trap
cleanup() {
    local rc=$? p
    for p in "${pids[@]:1}"; do
        if [[ $p != 0 ]] && kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    dlvs_pid=${pids[0]}
    [[ $dlvs_pid == 0 ]] && dlvs_pid=
    end_lab "$rc" "${helpers[@]}" ${rtr_pid:+"$rtr_pid"}
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

require_root_and_bin
if ! command -v bird >/dev/null 2>&1; then
    not_ok "bird is installed (scripts/setup)"
    finish
fi
echo "# lcores $LCORES"

# director I: its configuration.
director() {
    local i=$1
    cat <<EOF2
[dpdk]
eal_args = ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "-l", "$LCORES", "--file-prefix", "$PREFIX$i"]
idle_sleep_us = 1000
mbufs = 16383

[[interface]]
name = "lan0"
device = "net_tap0,iface=dtap0"
mac = "02:00:00:00:00:0$((i + 1))"
addresses = ["${ADDR[$i]}/24", "$VIP/32"]
kernel = "dk0"

[[route]]
prefix = "0.0.0.0/0"
via = "10.0.0.254"

[bgp]
interface = "lan0"
local_as = 65001
router_id = "${ADDR[$i]}"
peers = [{ address = "10.0.0.254", remote_as = 65000, bfd = true }]
drain_s = 1

[sync]
interface = "lan0"
syncid = 1

[conn]
capacity = 65536
sloppy = true

[metrics]
listen = "$METRICS"

[control]
socket = "$tmp/d$i.sock"
EOF2
}
cat >"$tmp/rules" <<EOF2
-A -t $VIP:80 -s mh
-a -t $VIP:80 -r 10.0.0.11:80 -g
-a -t $VIP:80 -r 10.0.0.12:80 -g
EOF2
for i in 0 1 2; do director "$i" >"$tmp/d$i.toml"; done

"$root/scripts/lab" up "$PREFIX" | sed 's/^/# /'
new_ns() {
    ip netns add "$1"
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$1" link set lo up
}
# B and C: a tap bridged to a veth into the wire.
for i in 1 2; do
    ns=${NS[$i]}
    new_ns "$ns"
    ip -n "$ns" link add br0 type bridge
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.br0.arp_ignore=8
    ip -n "$ns" link set br0 up
    ip netns exec "$ns" ip tuntap add dev dtap0 mode tap multi_queue
    ip -n "$ns" link set dtap0 master br0 up
    ip -n "$DIR_NS" link add "vd$i" type veth peer name wire netns "$ns"
    ip -n "$DIR_NS" link set "vd$i" master br0 up
    ip -n "$ns" link set wire master br0 up
done
# The router and the far client.
wire_ns "$RTR_NS" 10.0.0.254/24 vrtr
new_ns "$CLI_NS"
ip -n "$RTR_NS" link add eth1 type veth peer name eth0 netns "$CLI_NS"
ip -n "$RTR_NS" addr add 198.51.100.1/24 dev eth1
ip -n "$RTR_NS" link set eth1 up
ip -n "$CLI_NS" addr add 198.51.100.50/24 dev eth0
ip -n "$CLI_NS" link set eth0 up
ip -n "$CLI_NS" route add default via 198.51.100.1
ip netns exec "$RTR_NS" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
{
    echo 'router id 10.0.0.254;'
    echo 'protocol device { }'
    echo 'protocol kernel { ipv4 { import none; export all; }; merge paths on; }'
    echo 'protocol bfd { interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }'
    for i in 0 1 2; do
        cat <<EOF2
protocol bgp d$i {
    local 10.0.0.254 as 65000;
    neighbor ${ADDR[$i]} as 65001;
    direct;
    bfd on;
    connect delay time 1;
    connect retry time 1;
    error wait time 1, 5;
    ipv4 { import all; export none; };
}
EOF2
    done
} >"$tmp/rtr.conf"
ip netns exec "$RTR_NS" bird -f -c "$tmp/rtr.conf" -s "$tmp/rtr.ctl" -P "$tmp/rtr.pid" >"$tmp/rtr.log" 2>&1 &
rtr_pid=$!

# The real servers: DR (the VIP on lo), replies through the router; a
# page and a download paced by the server (32 KiB every 50 ms).
head -c $((SIZE_KIB * 1024)) /dev/urandom >"$tmp/big"
sum=$(md5sum <"$tmp/big" | cut -d' ' -f1)
for i in 0 1; do
    ns=${RS_NS[$i]}
    ip -n "$ns" addr add "$VIP/32" dev lo
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    ip -n "$ns" route add default via 10.0.0.254
    mkdir -p "$tmp/www$i"
    echo "served by rs$((i + 1))" >"$tmp/www$i/index.html"
    cp "$tmp/big" "$tmp/www$i/big"
    ip netns exec "$ns" /usr/bin/python3 "$root/tests/e2e/paced_http.py" "$tmp/www$i" >"$tmp/http$i.log" 2>&1 &
    helpers+=($!)
done

# start_director I: dlvs in its namespace; its tap's kernel side given
# another MAC once up (as scripts/lab retap does).
start_director() {
    local i=$1 ns=${NS[$1]} k
    ip netns exec "$ns" "$bin" run --config "$tmp/d$i.toml" --rules "$tmp/rules" >"$tmp/d$i.log" 2>&1 &
    pids[i]=$!
    for ((k = 0; k < 200; k++)); do
        grep -qs 'running until' "$tmp/d$i.log" && break
        kill -0 "${pids[$i]}" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -qs 'running until' "$tmp/d$i.log"; then
        not_ok "director ${ADDR[$i]} starts"
        sed 's/^/#   /' "$tmp/d$i.log" | tail -n 5
        finish
    fi
    ip -n "$ns" link set dtap0 address "02:00:00:00:ff:1$i"
    ip -n "$ns" link set dtap0 master br0 up
}
for i in 0 1 2; do start_director "$i"; done
dlvs_pid=${pids[0]}
ok "three directors started ($((SECONDS - start)) s)"

# hops: the router's next hops for the VIP.
hops() {
    ip -n "$RTR_NS" route show "$VIP/32" 2>/dev/null |
        awk '/via/ {for (i = 1; i < NF; i++) if ($i == "via") print $(i + 1)}' | sort | paste -sd ' ' -
}
# shellcheck disable=SC2317 # called through wait_for
hops_are() { [[ $(hops) == "$1" ]]; }

# (a)
check "(a) the router's route to $VIP has three next hops within 30 s" \
    wait_for 30 hops_are "10.0.0.2 10.0.0.3 10.0.0.4"
echo "# router: $(ip -n "$RTR_NS" route show "$VIP/32" | paste -sd ' ' -)"

# downloads TAG N: N long-lived downloads from the far client, each from
# its own port; their results in $tmp/TAG.K.
downloads() {
    local tag=$1 n=$2 k
    for ((k = 0; k < n; k++)); do
        ip netns exec "$CLI_NS" curl -s --max-time 60 -o "$tmp/$tag.$k.body" \
            -w '%{http_code} %{size_download} %{time_total}\n' "http://$VIP/big" >"$tmp/$tag.$k" 2>&1 &
        helpers+=($!)
        echo $! >>"$tmp/$tag.pids"
    done
}
# settle TAG: waits for the downloads (in this shell: they are its
# children).
settle() {
    local p
    while read -r p; do wait "$p" 2>/dev/null || true; done <"$tmp/$1.pids"
}
# whole TAG N: how many of the downloads finished whole (status 200, size,
# checksum).
whole() {
    local tag=$1 n=$2 k good=0
    for ((k = 0; k < n; k++)); do
        read -r code size _ <"$tmp/$tag.$k" || true
        if [[ ${code:-} == 200 && ${size:-0} == $((SIZE_KIB * 1024)) ]] &&
            [[ $(md5sum <"$tmp/$tag.$k.body" | cut -d' ' -f1) == "$sum" ]]; then
            good=$((good + 1))
        fi
    done
    echo "$good"
}

# (b)
downloads first "$FLOWS"
(
    while :; do
        t=$(date +%s%N)
        if body=$(ip netns exec "$CLI_NS" curl -s --max-time 1 "http://$VIP/" 2>/dev/null) &&
            [[ $body == "served by rs"* ]]; then
            echo "$t ok"
        else
            echo "$t fail"
        fi
        sleep 0.2
    done
) >"$tmp/requests" &
loop=$!
helpers+=("$loop")
sleep 3
# Which directors carry the downloads now (their connection counts).
for i in 0 1 2; do
    n=$(ip netns exec "${NS[$i]}" "$adm" --socket "$tmp/d$i.sock" -Lnc 2>/dev/null | grep -c ESTABLISHED || true)
    echo "# director ${ADDR[$i]}: $n established connection(s) listed (its own and synced)"
done
c_own=$(msum "$(ip netns exec "${NS[2]}" curl -s "http://$METRICS/metrics")" 'dlvs_lcore_replied_packets_total')
echo "# C forwarded $c_own packet(s) so far"
check "(b) C carries some of the traffic before it dies" test "${c_own:-0}" -gt 0

# (c)
t_kill=$(date +%s%N)
kill -KILL "${pids[2]}"
wait "${pids[2]}" 2>/dev/null || true
pids[2]=0
if wait_for 5 hops_are "10.0.0.2 10.0.0.3"; then
    conv=$((($(date +%s%N) - t_kill) / 1000000))
    echo "# convergence: two next hops ${conv} ms after SIGKILL of C"
    check "(c) within 2 s the router has two next hops (${conv} ms)" test "$conv" -le 2000
else
    not_ok "(c) the router drops C's next hop within 5 s ($(hops))"
    conv=99999
fi
t_conv=$(date +%s%N)

# (d)
settle first
kept=$(whole first "$FLOWS")
echo "# connections kept: $kept of $FLOWS long-lived downloads finished whole"
# The stall: the slowest download against an undisturbed one's time.
slowest=$(for ((k = 0; k < FLOWS; k++)); do awk '{print $3}' "$tmp/first.$k"; done | sort -n | tail -n 1)
echo "# the slowest download through the kill took ${slowest} s (paced: $((SIZE_KIB / 32 * 50 / 1000)) s and more undisturbed)"
check "(d) every long-lived download finishes whole ($kept of $FLOWS)" test "$kept" -eq "$FLOWS"

# (e)
sleep 1
after=$((t_conv + 1000000000))
late_fail=$(awk -v t="$after" '$1 > t && $2 == "fail"' "$tmp/requests" | wc -l)
late_ok=$(awk -v t="$after" '$1 > t && $2 == "ok"' "$tmp/requests" | wc -l)
echo "# requests: $(wc -l <"$tmp/requests") in all, $(grep -c ' fail$' "$tmp/requests" || true) failed"
check "(e) every request from 1 s after the convergence on succeeds ($late_ok ok, $late_fail failed)" \
    test "$late_fail" -eq 0 -a "$late_ok" -gt 0

# (f)
downloads second "$FLOWS"
sleep 2
out=$(ip netns exec "${NS[1]}" "$adm" --socket "$tmp/d1.sock" --drain 2>&1 || true)
echo "# B: $out"
check "(f) B drains: its next hop goes within 2 s" wait_for 2 hops_are "10.0.0.2"
settle second
kept=$(whole second "$FLOWS")
check "(f) ... and every download finishes whole ($kept of $FLOWS)" test "$kept" -eq "$FLOWS"

# (g) C joins under downloads: ECMP moves some of them to it, and with
# sloppy and mh it sends them to the real servers they had.
ip netns exec "${NS[1]}" "$adm" --socket "$tmp/d1.sock" --undrain >/dev/null 2>&1 || true
wait_for 10 hops_are "10.0.0.2 10.0.0.3" || true
downloads third "$FLOWS"
sleep 2
start_director 2
check "(g) C joins again (B undrained): three next hops within 30 s" \
    wait_for 30 hops_are "10.0.0.2 10.0.0.3 10.0.0.4"
settle third
kept=$(whole third "$FLOWS")
c_fwd=$(msum "$(ip netns exec "${NS[2]}" curl -s "http://$METRICS/metrics")" 'dlvs_lcore_replied_packets_total')
echo "# the joined director forwarded $c_fwd packet(s) of the downloads under way"
check "(g) the downloads under way finish whole ($kept of $FLOWS), C taking a share ($c_fwd packets)" \
    test "$kept" -eq "$FLOWS" -a "${c_fwd:-0}" -gt 0
downloads fourth "$FLOWS"
settle fourth
kept=$(whole fourth "$FLOWS")
check "(g) ... and new downloads all finish whole ($kept of $FLOWS)" test "$kept" -eq "$FLOWS"

kill "$loop" 2>/dev/null || true
for i in 1 2; do
    if [[ ${pids[$i]} != 0 ]]; then
        kill -TERM "${pids[$i]}" 2>/dev/null || true
        wait "${pids[$i]}" 2>/dev/null || true
        pids[i]=0
    fi
done
check_clean_stop "(h) "
finish
