#!/usr/bin/env bash
# tests/e2e/failover.sh: two dlvs directors with VRRP and IPVS connection
# sync; the master is killed under a long download and a request loop.
#
# Usage: tests/e2e/failover.sh [DLVS_BINARY]
#        DLVS_LCORES=0-1 tests/e2e/failover.sh ...   (two workers each)
#
# The lab (scripts/lab, PREFIX dlvsf$$) and a second tap, dtap1, on its
# wire: director A (10.0.0.2 on dtap0, priority 150) and director B
# (10.0.0.4 on dtap1, priority 100), one virtual router (51, one second
# adverts) for 10.0.0.200, [sync] (syncid 1) led by it, and a DR service
# 10.0.0.200:80 over rs1 and rs2 (the address on their lo, no ARP for
# it). Both directors share the CPUs with everything else, so they back
# off when idle ([dpdk] idle_sleep_us).
# Checks:
#   (a) A becomes MASTER, B stays BACKUP;
#   (b) the client starts a download of 8 MiB, which the real server
#       sends 32 KiB every 50 ms (tests/e2e/paced_http.py: a connection of
#       ~13 s, from 10.0.0.50), and a request loop (one request every 0.2
#       s, from 10.0.0.51); within 3 s
#       B has the download's connection from A's sync messages (dlvsadm
#       -Lnc on B lists it, ESTABLISHED, to the same real server) and A's
#       metrics count the messages sent;
#   (c) SIGKILL A: B is MASTER within 3 x 1 s + 156/256 s (the master-down
#       interval; 4 s with the polling);
#   (d) the download goes on through B without a reset and the file
#       arrives whole (its checksum); the longest stall is printed;
#   (e) every request from 1 s after the takeover on succeeds; the
#       failures around it are printed;
#   (f) B's metrics count the connections it installed from sync, and
#       B exits 0 on SIGTERM;
#   (g) the sync messages on the wire (tcpdump on the bridge), decoded by
#       an independent decoder of the kernel's layouts
#       (tests/e2e/ipvs_sync_decode.py): A's and, after the takeover, B's
#       all decode, and both carry the download's connection, ESTABLISHED,
#       to its real server.
# Prints `ok - ...` / `not ok - ...` and last `e2e: N passed, M failed`;
# exits non-zero on any failure. Everything it starts is stopped by PID and
# the lab removed on exit, pass or fail.
set -euo pipefail

start=$SECONDS
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-${DLVS_BIN:-$root/target/debug/dlvs}}
[[ $bin == /* ]] || bin=$PWD/$bin
adm=$(dirname "$bin")/dlvsadm

PREFIX=dlvsf$$
DIR_NS=$PREFIX-dir
CLI_NS=$PREFIX-cli
RS_NS=("$PREFIX-rs1" "$PREFIX-rs2")
VIP=10.0.0.200
METRICS=127.0.0.1:9917
METRICS_B=127.0.0.1:9918
LCORES=${DLVS_LCORES:-0}
SIZE_KIB=8192

# shellcheck source=tests/e2e/common.bash
source "$root/tests/e2e/common.bash"

dlvs_pid=
b_pid=
servers=()
helpers=()
tmp=$(mktemp -d /tmp/dlvs-e2e-failover.XXXXXX)
log=$tmp/a.log
log_b=$tmp/b.log

# shellcheck disable=SC2317 # called from a trap
cleanup() {
    local rc=$?
    if [[ -n $b_pid ]] && kill -0 "$b_pid" 2>/dev/null; then
        kill -TERM "$b_pid" 2>/dev/null || true
        sleep 1
        kill -KILL "$b_pid" 2>/dev/null || true
        wait "$b_pid" 2>/dev/null || true
    fi
    if ((failed > 0 || rc != 0)) && [[ -s $log_b ]]; then
        echo "# the last 20 lines of director B's log:"
        tail -n 20 "$log_b" | sed 's/^/#   /'
    fi
    end_lab "$rc" "${servers[@]}" "${helpers[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

require_root_and_bin
echo "# lcores $LCORES"

# director NAME ADDRESS TAP MAC PRIORITY METRICS: its configuration.
director() {
    cat <<EOF2
[dpdk]
eal_args = ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--no-telemetry", "-l", "$LCORES", "--file-prefix", "$PREFIX$1"]
idle_sleep_us = 1000

[[interface]]
name = "lan0"
device = "net_tap$1,iface=$3"
mac = "$4"
addresses = ["$2/24"]

[[vrrp]]
name = "VI_1"
interface = "lan0"
virtual_router_id = 51
priority = $5
advert_int_ms = 1000
virtual_addresses = ["$VIP"]

[sync]
interface = "lan0"
syncid = 1

[conn]
capacity = 65536

[metrics]
listen = "$6"

[control]
socket = "$tmp/$1.sock"
EOF2
}
director 0 10.0.0.2 dtap0 02:00:00:00:00:01 150 "$METRICS" >"$tmp/a.toml"
director 1 10.0.0.4 dtap1 02:00:00:00:00:02 100 "$METRICS_B" >"$tmp/b.toml"
cat >"$tmp/rules" <<EOF2
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r 10.0.0.11:80 -g
-a -t $VIP:80 -r 10.0.0.12:80 -g
EOF2

# The real servers' HTTP: pages at once, /big paced by the server (a
# client's rate limit is no pace: curl's bursts).
"$root/scripts/lab" up "$PREFIX" | sed 's/^/# /'
# Director B's tap on the same wire.
ip netns exec "$DIR_NS" ip tuntap add dev dtap1 mode tap multi_queue
ip -n "$DIR_NS" link set dtap1 master br0 up
for i in 0 1; do
    ns=${RS_NS[$i]}
    ip -n "$ns" addr add "$VIP/32" dev lo
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    mkdir -p "$tmp/www$i"
    echo "served by rs$((i + 1))" >"$tmp/www$i/index.html"
    head -c $((SIZE_KIB * 1024)) /dev/urandom >"$tmp/www$i/big"
    ip netns exec "$ns" /usr/bin/python3 "$root/tests/e2e/paced_http.py" "$tmp/www$i" >"$tmp/http$i.log" 2>&1 &
    servers+=($!)
done
sum0=$(md5sum <"$tmp/www0/big" | cut -d' ' -f1)
sum1=$(md5sum <"$tmp/www1/big" | cut -d' ' -f1)

start_dlvs --config "$tmp/a.toml" --rules "$tmp/rules"
"$root/scripts/lab" retap "$PREFIX" | sed 's/^/# /'
ip netns exec "$DIR_NS" "$bin" run --config "$tmp/b.toml" --rules "$tmp/rules" >"$log_b" 2>&1 &
b_pid=$!
for ((i = 0; i < 200; i++)); do
    grep -qs 'running until' "$log_b" && break
    sleep 0.1
done
# net_tap gave dtap1's kernel side B's MAC: another one, as retap does.
ip -n "$DIR_NS" link set dtap1 address 02:00:00:00:ff:02
ip -n "$DIR_NS" link set dtap1 master br0 up

# Every sync message on the wire, for (g).
ip netns exec "$DIR_NS" tcpdump -i br0 -U -w "$tmp/sync.pcap" udp port 8848 >"$tmp/tcpdump.log" 2>&1 &
tcpdump_pid=$!
helpers+=("$tcpdump_pid")

# master_of METRICS: 1 or 0 as that director's metrics say.
master_of() {
    ip netns exec "$DIR_NS" curl -s --max-time 2 "http://$1/metrics" |
        awk '/^dlvs_vrrp_master[{]instance="VI_1"[}]/ {print $NF}'
}
# shellcheck disable=SC2317 # called through wait_for
a_master_b_backup() { [[ $(master_of "$METRICS") == 1 && $(master_of "$METRICS_B") == 0 ]]; }
# shellcheck disable=SC2317
b_master() { [[ $(master_of "$METRICS_B") == 1 ]]; }
check "(a) A (150) becomes MASTER and B (100) stays BACKUP within 8 s" wait_for 8 a_master_b_backup

# (b) The download (from 10.0.0.50) and the request loop (from 10.0.0.51).
ip -n "$CLI_NS" addr add 10.0.0.51/24 dev eth0
ip netns exec "$CLI_NS" curl -s --max-time 40 -o "$tmp/got" \
    -w '%{http_code} %{size_download} %{time_total}\n' "http://$VIP/big" >"$tmp/curl.out" 2>"$tmp/curl.err" &
download=$!
helpers+=("$download")
# Samples of the download's size, every 0.05 s, for the stall.
(
    while kill -0 "$download" 2>/dev/null; do
        printf '%s %s\n' "$(date +%s%N)" "$(stat -c %s "$tmp/got" 2>/dev/null || echo 0)"
        sleep 0.05
    done
) >"$tmp/progress" &
helpers+=($!)
(
    while :; do
        t=$(date +%s%N)
        if body=$(ip netns exec "$CLI_NS" curl -s --max-time 1 --interface 10.0.0.51 "http://$VIP/" 2>/dev/null) &&
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

# shellcheck disable=SC2317
b_has_it() {
    ip netns exec "$DIR_NS" "$adm" --socket "$tmp/1.sock" -Lnc 2>/dev/null |
        grep -E "^TCP .* ESTABLISHED +10\.0\.0\.50:[0-9]+ +$VIP:80 +10\.0\.0\.1[12]:80\$" >"$tmp/b-conns"
}
check "(b) B holds the download's connection from A's sync messages within 3 s (dlvsadm -Lnc)" wait_for 3 b_has_it
sed 's/^/# B: /' "$tmp/b-conns" | head -n 3
# The server A gave the download, as A lists it.
a_rs=$(ip netns exec "$DIR_NS" "$adm" --socket "$tmp/0.sock" -Lnc 2>/dev/null |
    awk '$3 == "ESTABLISHED" && $5 == "'"$VIP"':80" {print $6; exit}' || true)
b_rs=$(awk 'NR == 1 {print $6}' "$tmp/b-conns")
check "(b) ... to the real server A chose (A: $a_rs, B: $b_rs)" test -n "$a_rs" -a "$a_rs" = "$b_rs"
download_client=$(awk 'NR == 1 {print $4}' "$tmp/b-conns")
# B counts it at that server, active (ipvsadm's ActiveConn column).
b_active=$(ip netns exec "$DIR_NS" "$adm" --socket "$tmp/1.sock" -Ln 2>/dev/null |
    awk -v rs="$b_rs" '$1 == "->" && $2 == rs {print $5}')
check "(b) B's -Ln counts the synced connection active at $b_rs (ActiveConn ${b_active:-none})" \
    test "${b_active:-0}" -ge 1
# (The counters are published every 0.1 s, and exported as often.)
sent=0
# shellcheck disable=SC2317
a_counted() {
    sent=$(msum "$(ip netns exec "$DIR_NS" curl -s "http://$METRICS/metrics")" 'dlvs_sync_messages_sent_total')
    ((sent > 0))
}
check "(b) A's metrics count the sync messages it sent" wait_for 2 a_counted

# (c)
sleep 1
check "(c) the download is still under way when A dies" kill -0 "$download"
t_kill=$(date +%s%N)
kill -KILL "$dlvs_pid"
wait "$dlvs_pid" 2>/dev/null || true
dlvs_pid=
if wait_for 6 b_master; then
    takeover=$((($(date +%s%N) - t_kill) / 1000000))
    echo "# takeover: B MASTER ${takeover} ms after SIGKILL of A (master-down interval 3609 ms)"
    check "(c) B is MASTER within 4 s of A's death (${takeover} ms)" test "$takeover" -le 4000
else
    not_ok "(c) B becomes MASTER after A's death"
    takeover=99999
fi
t_takeover=$(date +%s%N)

# (d)
rc=0
wait "$download" || rc=$?
read -r code size total <"$tmp/curl.out" || true
got=$(md5sum <"$tmp/got" | cut -d' ' -f1)
echo "# download: exit $rc, HTTP $code, $size bytes in $total s"
check "(d) the download finishes without error through B (curl exit $rc, HTTP $code)" test "$rc" -eq 0 -a "$code" = 200
check "(d) ... and the file is whole ($size bytes, md5 matches rs1's or rs2's)" \
    test "$size" -eq $((SIZE_KIB * 1024)) -a \( "$got" = "$sum0" -o "$got" = "$sum1" \)
# The longest time between two samples that saw the file grow.
stall=$(awk 'NR == 1 {t = $1; n = $2; next}
    $2 != n {gap = ($1 - t) / 1e6; if (gap > max) max = gap; t = $1; n = $2}
    {now = $1}
    END {gap = (now - t) / 1e6; if (gap > max) max = gap; printf "%d", max}' "$tmp/progress")
echo "# the download's longest stall: ${stall} ms"
grown=$(awk -v t="$t_kill" '$1 > t {n++} $1 > t && $2 != last && n > 1 {g++} {last = $2} END {printf "%d", g}' "$tmp/progress")
check "(d) ... and grew after A's death ($grown samples saw it grow)" test "$grown" -gt 10

# (e)
sleep 2
kill "$loop" 2>/dev/null || true
wait "$loop" 2>/dev/null || true
after=$((t_takeover + 1000000000))
late_fail=$(awk -v t="$after" '$1 > t && $2 == "fail"' "$tmp/requests" | wc -l)
late_ok=$(awk -v t="$after" '$1 > t && $2 == "ok"' "$tmp/requests" | wc -l)
all_fail=$(grep -c ' fail$' "$tmp/requests" || true)
echo "# requests: $(wc -l <"$tmp/requests") in all, $all_fail failed (around the takeover)"
check "(e) every request from 1 s after the takeover on succeeds ($late_ok ok, $late_fail failed)" \
    test "$late_fail" -eq 0 -a "$late_ok" -gt 0

# (f)
m=$(ip netns exec "$DIR_NS" curl -s "http://$METRICS_B/metrics")
installed=$(msum "$m" 'dlvs_sync_conns_received_total[{][^}]*result="installed"')
no_conn=$(msum "$m" 'dlvs_lcore_dropped_packets_total[{][^}]*reason="tcp_no_conn"')
echo "# B: $installed connection(s) installed from sync, $no_conn tcp_no_conn drop(s)"
check "(f) B installed connections from sync ($installed)" test "$installed" -gt 0
kill -TERM "$b_pid"
rc=0
for ((i = 0; i < 100; i++)); do
    kill -0 "$b_pid" 2>/dev/null || break
    sleep 0.1
done
wait "$b_pid" || rc=$?
b_pid=
check "(f) B exits 0 after SIGTERM (exit status $rc)" test "$rc" -eq 0

# (g)
kill -INT "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true
rc=0
/usr/bin/python3 "$root/tests/e2e/ipvs_sync_decode.py" "$tmp/sync.pcap" >"$tmp/sync.txt" 2>"$tmp/sync.err" || rc=$?
echo "# sync on the wire: $(grep -c '^message 10.0.0.2 ' "$tmp/sync.txt" || true) message(s) from A, \
$(grep -c '^message 10.0.0.4 ' "$tmp/sync.txt" || true) from B, $(grep -c '^conn ' "$tmp/sync.txt" || true) entries"
check "(g) every sync message on the wire decodes (exit $rc: $(head -c 200 "$tmp/sync.err"))" test "$rc" -eq 0
# by_director SRC: the entries of SRC's messages.
by_director() { awk -v s="$1" '/^message / {m = ($2 == s)} m && /^conn /' "$tmp/sync.txt"; }
want="conn TCP ESTABLISHED $download_client $VIP:80 $a_rs "
check "(g) A's messages carry the download ($want...)" grep -qF "$want" <(by_director 10.0.0.2)
check "(g) B's, after the takeover, carry it too" grep -qF "$want" <(by_director 10.0.0.4)
finish
