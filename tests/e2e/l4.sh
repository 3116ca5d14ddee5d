#!/usr/bin/env bash
# tests/e2e/l4.sh: layer-4 switching end to end, real Linux TCP through
# dlvs on a tap device, in network namespaces.
#
# Usage: tests/e2e/l4.sh [DLVS_BINARY]
#        DLVS_LCORES=0-1 tests/e2e/l4.sh ...   (two workers: steering)
#
# The lab (scripts/lab, PREFIX dlvsl$$): the director (10.0.0.2, VIP
# 10.0.0.100, and 198.51.100.1 for the NAT clients' network), two real
# servers rs1/rs2 (10.0.0.11/12) running Python's http.server, and a client.
# Rules:
#   -A -t 10.0.0.100:80 -s rr      NAT to port 8080 of both servers
#   -A -t 10.0.0.101:81 -s wlc     DR to both servers (a second VIP, on
#                                  their lo; arp_ignore=1, arp_announce=2)
#   -A -t 10.0.0.100:82 -s wlc -p  NAT, persistent: one client, one server
# NAT needs the replies to come back through the director, so the NAT
# client uses 198.51.100.50 (a network the servers route via 10.0.0.2);
# the DR client uses 10.0.0.50 on the servers' own subnet.
# Checks:
#   (a) 40 HTTP requests through NAT all succeed, and each server answers
#       some (body names it);
#   (b) 40 through DR, the same;
#   (w) load runs, wrk -t2 -c16 for 3 s through NAT and through DR: no
#       socket errors, no non-2xx answer (requests/s printed);
#   (s) metrics during a load run: wrk with "Connection: close" through NAT
#       (one connection per request; NAT sees both sides close, so a reused
#       client port is a new connection, as in IPVS: through DR a SYN on an
#       entry still in FIN_WAIT is not, conn_reuse_mode 1); a scrape taken
#       while it runs passes
#       `promtool check metrics`; the service's connections counter grew by
#       wrk's request count (plus at most two per wrk connection open at its
#       end, and its socket errors) (that every metric of config/monitoring is
#       exported is checked in health.sh, which has health checks);
#   (p) 20 to the persistent service all reach one server: with two
#       workers, the client's connections (on both tap queues) are steered
#       to the worker that holds its template;
#   (r) SIGHUP with rs2 removed from the NAT service: the log says the
#       rules were reloaded, and 10 requests are all answered by rs1; a
#       SIGHUP with a broken rules file changes nothing (logged), requests
#       still answered;
#   (m) dlvsadm during a load run: while wrk runs through NAT, dlvsadm adds
#       rs2 back to the NAT service, adds a service on :83 with both
#       servers and switches :80 to wlc; every request exits 0, wrk sees no
#       socket error and no non-2xx answer; then :83 answers from both
#       servers, -Ln shows the new table, a bad command is refused with
#       ipvsadm's message and status and changes nothing (-S -n before and
#       after), and --stats and -c count :80's connections;
#   (x) a real server removed under a download (dlvsadm -d) as IPVS does
#       it: the client's packets are dropped (dest_unavailable) and the
#       connection kept, so the download stalls; added back (dlvsadm -a),
#       the same connection goes on and the file arrives whole;
#   (c) the metrics count connections and no unexpected drops
#       (tcp_no_conn, no_dest, conn_table_full, steer_ring_full are 0,
#       counted before (y));
#   (y) `[conn] expire_nodest_conn = true` by SIGHUP: a server removed under
#       a download ends its connection at the client's next packet (gone
#       from -Lnc; the client's later packets are tcp_no_conn);
#   (d) dlvs exits 0 on SIGTERM.
# Prints `ok - ...` / `not ok - ...` and last `e2e: N passed, M failed`;
# exits non-zero on any failure. Everything it starts is stopped by PID and
# the lab removed on exit, pass or fail.
set -euo pipefail

start=$SECONDS
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-${DLVS_BIN:-$root/target/debug/dlvs}}
[[ $bin == /* ]] || bin=$PWD/$bin

PREFIX=dlvsl$$
DIR_NS=$PREFIX-dir
CLI_NS=$PREFIX-cli
RS_NS=("$PREFIX-rs1" "$PREFIX-rs2")
RS_IP=(10.0.0.11 10.0.0.12)
VIP=10.0.0.100
# DR's VIP: the client reaches it directly on the LAN (its replies come
# straight back from the real servers, not through the director).
DR_VIP=10.0.0.101
NAT_NET=198.51.100
METRICS=127.0.0.1:9912
LCORES=${DLVS_LCORES:-0}
REQUESTS=40

# shellcheck source=tests/e2e/common.bash
source "$root/tests/e2e/common.bash"

dlvs_pid=
servers=()
tmp=$(mktemp -d /tmp/dlvs-e2e-l4.XXXXXX)
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
addresses = ["10.0.0.2/24", "$VIP/32", "$DR_VIP/32", "$NAT_NET.1/24"]

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
-A -t $DR_VIP:81 -s wlc
-a -t $DR_VIP:81 -r ${RS_IP[0]} -g
-a -t $DR_VIP:81 -r ${RS_IP[1]} -g
-A -t $VIP:82 -s wlc -p 60
-a -t $VIP:82 -r ${RS_IP[0]}:8080 -m
-a -t $VIP:82 -r ${RS_IP[1]}:8080 -m
EOF2

"$root/scripts/lab" up "$PREFIX" | sed 's/^/# /'

# The real servers: an HTTP server on 8080 (NAT) and 81 (DR) whose page
# names the server; replies to the NAT clients' network via the director;
# the VIP on lo for DR, without answering ARP for it.
for ns in "${RS_NS[@]}"; do
    ip -n "$ns" addr add "$DR_VIP/32" dev lo
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
done
serve_http 8080 81
# The client: 10.0.0.50 (DR) and 198.51.100.50 (NAT, via the director).
ip -n "$CLI_NS" addr add "$NAT_NET.50/24" dev eth0

start_dlvs --config "$cfg" --rules "$rules"
"$root/scripts/lab" retap "$PREFIX" | sed 's/^/# /'
# Every packet to the VIP goes through the director, from 198.51.100.50
# unless a request asks for 10.0.0.50 (DR's replies come back directly).
ip -n "$CLI_NS" route add "$VIP/32" via "$NAT_NET.1" src "$NAT_NET.50"

# run_requests FROM VIP PORT NAME [COUNT] [persistent]: every request
# answered, and both servers serving (or, persistent, exactly one).
# shellcheck disable=SC2317 # called through check
run_requests() {
    local from=$1 vip=$2 port=$3 name=$4 count=${5:-$REQUESTS} persistent=${6:-} n1=0 n2=0 bad=0 body i
    for ((i = 0; i < count; i++)); do
        body=$(ip netns exec "$CLI_NS" curl -s --max-time 3 --interface "$from" "http://$vip:$port/" || true)
        case $body in
        "served by rs1") n1=$((n1 + 1)) ;;
        "served by rs2") n2=$((n2 + 1)) ;;
        *) bad=$((bad + 1)) ;;
        esac
    done
    echo "# $name: rs1 $n1, rs2 $n2, failed $bad of $count"
    if [[ -n $persistent ]]; then
        ((bad == 0 && (n1 == 0 || n2 == 0)))
    else
        ((bad == 0 && n1 > 0 && n2 > 0))
    fi
}
check "(a) NAT: $REQUESTS requests to $VIP:80 from $NAT_NET.50 all answered, both servers serving" \
    run_requests "$NAT_NET.50" "$VIP" 80 NAT
check "(b) DR: $REQUESTS requests to $DR_VIP:81 from 10.0.0.50 all answered, both servers serving" \
    run_requests 10.0.0.50 "$DR_VIP" 81 DR
# (w) load runs through NAT and DR.
check "(w) wrk through NAT for 3 s: no socket errors, every answer 2xx, over 100 requests" \
    wrk_ok NAT "http://$VIP:80/"
check "(w) wrk through DR for 3 s: no socket errors, every answer 2xx, over 100 requests" \
    wrk_ok DR "http://$DR_VIP:81/"
# (s) metrics during a load run.
svc80="dlvs_service_connections_total[{]service=\"tcp/$VIP:80\"[}]"
before=$(msum "$(scrape_metrics)" "$svc80")
ip netns exec "$CLI_NS" wrk -t2 -c16 -d3s --timeout 2s -H "Connection: close" \
    "http://$VIP:80/" >"$tmp/wrk-s.txt" 2>&1 &
wrk_pid=$!
sleep 1.5
# (scrape_metrics drops the page's last newline, which the format needs)
printf '%s\n' "$(scrape_metrics)" >"$tmp/during.prom"
wait "$wrk_pid" || true
sed "s/^/# wrk close: /" "$tmp/wrk-s.txt"
sleep 0.5
after_scrape=$(scrape_metrics)
grown=$(($(msum "$after_scrape" "$svc80") - before))
requests=$(awk '/requests in/ {print $1}' "$tmp/wrk-s.txt")
errors=$(awk -F'[ ,]+' '/Socket errors/ {s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; print s}' "$tmp/wrk-s.txt")
echo "# wrk requests ${requests:-?}, socket errors ${errors:-0}; tcp/$VIP:80 connections counted: $grown"
# shellcheck disable=SC2317 # called through check
promtool_ok() {
    local out rc=0
    out=$(promtool check metrics <"$tmp/during.prom" 2>&1) || rc=$?
    [[ -n $out ]] && sed 's/^/# promtool: /' <<<"$out"
    ((rc == 0)) && grep -q '^dlvs_real_server_active_connections' "$tmp/during.prom"
}
check "(s) a scrape during the load passes promtool check metrics" promtool_ok
# shellcheck disable=SC2317 # called through check
# (wrk's 16 connections may each have opened a last one, and be closing
# another, when it stops counting.)
agrees() { ((requests > 100 && grown >= requests && grown <= requests + 32 + ${errors:-0})); }
check "(s) the service's connections counter agrees with wrk's request count" agrees

check "(p) persistence: 20 requests to $VIP:82 from $NAT_NET.50 all reach one server" \
    run_requests "$NAT_NET.50" "$VIP" 82 persistent 20 persistent

# (r) live reload of the rules on SIGHUP.
grep -v "^-a -t $VIP:80 -r ${RS_IP[1]}:8080" "$rules" >"$rules.new"
mv "$rules.new" "$rules"
kill -HUP "$dlvs_pid"
reloaded=0
for ((i = 0; i < 50; i++)); do
    grep -qs 'rules reloaded' "$log" && reloaded=1 && break
    sleep 0.1
done
check "(r) SIGHUP: the log says the rules were reloaded" test "$reloaded" = 1
# only_rs1 COUNT: every request to :80 answered by rs1.
# shellcheck disable=SC2317 # called through check
only_rs1() {
    local i body n=0
    for ((i = 0; i < $1; i++)); do
        # Ports above the kernel's ephemeral range: none is the tuple of
        # a load run's connection still in the director's table (a new
        # SYN on an established entry follows it, as IPVS does).
        body=$(ip netns exec "$CLI_NS" curl -s --max-time 3 --interface "$NAT_NET.50" \
            --local-port 61000-62000 "http://$VIP:80/" || true)
        [[ $body == "served by rs1" ]] && n=$((n + 1))
    done
    echo "# after the reload: $n of $1 answered by rs1"
    ((n == $1))
}
check "(r) after the reload, rs2 is out of the NAT service: 10 of 10 by rs1" only_rs1 10
echo "-A -t $VIP:80 -s nosuchsched" >"$rules"
kill -HUP "$dlvs_pid"
refused=0
for ((i = 0; i < 50; i++)); do
    grep -qs 'rules not reloaded' "$log" && refused=1 && break
    sleep 0.1
done
check "(r) SIGHUP with a broken rules file: refused, logged" test "$refused" = 1
check "(r) the services stay as they were: 5 of 5 by rs1" only_rs1 5

# (m) dlvsadm while a load runs.
adm() { DLVS_SOCKET=$tmp/dlvs.sock "$(dirname "$bin")/dlvsadm" "$@"; }
ip netns exec "$CLI_NS" wrk -t2 -c16 -d4s --timeout 2s "http://$VIP:80/" >"$tmp/wrk-m.txt" 2>&1 &
wrk_pid=$!
sleep 0.5
# shellcheck disable=SC2317 # called through check
live_changes() {
    local failed=0 c
    for c in "-a -t $VIP:80 -r ${RS_IP[1]}:8080 -m" \
        "-A -t $VIP:83 -s rr" \
        "-a -t $VIP:83 -r ${RS_IP[0]}:8080 -m" \
        "-a -t $VIP:83 -r ${RS_IP[1]}:8080 -m -w 2" \
        "-E -t $VIP:80 -s wlc"; do
        # shellcheck disable=SC2086 # the words of a command
        if ! adm $c; then
            echo "# dlvsadm $c failed"
            failed=1
        fi
        sleep 0.3
    done
    ((failed == 0))
}
check "(m) five dlvsadm changes while wrk runs: each exits 0" live_changes
wait "$wrk_pid" || true
sed "s/^/# wrk during changes: /" "$tmp/wrk-m.txt"
# shellcheck disable=SC2317 # called through check
wrk_m_ok() { grep -q 'Requests/sec' "$tmp/wrk-m.txt" && ! grep -qE 'Socket errors|Non-2xx' "$tmp/wrk-m.txt"; }
check "(m) wrk during the changes: no socket errors, every answer 2xx" wrk_m_ok
check "(m) the new service $VIP:83: $REQUESTS requests all answered, both servers serving" \
    run_requests "$NAT_NET.50" "$VIP" 83 NAT83
listing=$(adm -Ln)
sed 's/^/# /' <<<"$listing"
# shellcheck disable=SC2317 # called through check
listing_ok() {
    grep -q "^TCP  $VIP:83 rr\$" <<<"$listing" && grep -q "^TCP  $VIP:80 wlc\$" <<<"$listing" &&
        [[ $(grep -c ':8080  *Masq' <<<"$listing") -eq 6 ]]
}
check "(m) -Ln shows :83 with both servers and :80 under wlc with rs2 back" listing_ok
before=$(adm -S -n)
set +e
err=$(adm -a -t "$VIP:84" -r "${RS_IP[0]}:8080" -m 2>&1)
status=$?
set -e
check "(m) a real server for a missing service: 'Service not defined', status 255" \
    test "$err|$status" = "Service not defined|255"
check "(m) ... and nothing changed (-S -n before and after)" test "$before" = "$(adm -S -n)"
conns=$(adm -Ln --stats --exact -t "$VIP:80" | awk 'NR == 3 {print $3}')
echo "# :80 connections counted: $conns"
check "(m) --stats counts :80's connections (over 100)" test "${conns:-0}" -gt 100
listed=$(adm -Lnc | grep -c " $VIP:80 " || true)
echo "# -Lnc: $listed entries of $VIP:80"
check "(m) -Lnc lists every worker's connections of :80 (over 100)" test "$listed" -gt 100

# (x) a removed real server's connection waits for it.
head -c 1500000 /dev/urandom >"$tmp/www0/big.bin"
cp "$tmp/www0/big.bin" "$tmp/www1/big.bin"
ip netns exec "$CLI_NS" curl -s --max-time 40 --limit-rate 150k --interface "$NAT_NET.50" \
    -o "$tmp/big.out" "http://$VIP:80/big.bin" &
curl_pid=$!
sleep 1.5
dest=$(adm -Lnc | awk -v v="$VIP:80" -v c="$NAT_NET.50:" \
    '$3 == "ESTABLISHED" && $5 == v && index($4, c) == 1 && !d {d = $6} END {print d}' || true)
echo "# the download's real server: ${dest:-none}"
adm -d -t "$VIP:80" -r "${dest:-none}" || true
# The client socket's received bytes (the kernel's count, not the file:
# curl's rate limit reads its buffer on at its own pace), once the data in
# flight has come (1 s), then 2 s later.
rx_bytes() {
    { ip netns exec "$CLI_NS" ss -tin "dst $VIP:80" || true; } |
        awk -F'bytes_received:' 'NF > 1 && !done {split($2, a, " "); print a[1]; done = 1}'
}
sleep 1
size1=$(rx_bytes)
sleep 2
size2=$(rx_bytes)
echo "# while the server was out, the client's socket received: $size1 then $size2 bytes"
check "(x) with its server removed, the download stalls ($size1 -> $size2 bytes)" \
    test -n "$dest" -a -n "$size1" -a "$size1" = "$size2" -a "${size1:-0}" -lt 1500000
unavailable=$(msum "$(scrape_metrics)" 'dlvs_lcore_dropped_packets_total[{].*reason="dest_unavailable"')
check "(x) its client's packets were dropped as dest_unavailable ($unavailable)" test "$unavailable" -gt 0
adm -a -t "$VIP:80" -r "${dest:-none}" -m || true
wait "$curl_pid" || true
check "(x) added back, the same connection goes on: the file arrives whole" \
    cmp -s "$tmp/www0/big.bin" "$tmp/big.out"

# (c) metrics.
metrics=$(scrape_metrics)
unexpected=0
for reason in tcp_no_conn no_dest conn_table_full steer_ring_full no_such_port; do
    # (dest_unavailable is expected: (x))
    n=$(msum "$metrics" "dlvs_lcore_dropped_packets_total[{].*reason=\"$reason\"")
    if ((n > 0)); then
        echo "# $reason: $n"
        unexpected=$((unexpected + n))
    fi
done
check "(c) no drops for tcp_no_conn, no_dest, conn_table_full, steer_ring_full, no_such_port ($unexpected)" \
    test "$unexpected" -eq 0
echo "# steered between workers: $(msum "$metrics" 'dlvs_lcore_steered_packets_total[{]'); connections: $(msum "$metrics" 'dlvs_lcore_connections[{]')"

# (y) [conn] expire_nodest_conn switched on by SIGHUP: a removed server's
# connection ends at its client's next packet, which is then no one's.
adm -S -n >"$rules" # the table as it stands (the rules file was left broken)
sed -i 's/^\[conn\]$/[conn]\nexpire_nodest_conn = true/' "$cfg"
kill -HUP "$dlvs_pid"
for ((i = 0; i < 50; i++)); do
    grep -qs 'expire_nodest_conn = true' "$log" && break
    sleep 0.1
done
check "(y) SIGHUP: the log says expire_nodest_conn = true" grep -q 'expire_nodest_conn = true' "$log"
ip netns exec "$CLI_NS" curl -s --max-time 6 --limit-rate 150k --interface "$NAT_NET.50" \
    -o "$tmp/big2.out" "http://$VIP:80/big.bin" &
curl_pid=$!
conn=
for ((i = 0; i < 40; i++)); do
    [[ -n $conn ]] && break
    sleep 0.1
    conn=$(adm -Lnc | awk -v v="$VIP:80" -v c="$NAT_NET.50:" \
        '$3 == "ESTABLISHED" && $5 == v && index($4, c) == 1 && !d {d = $4 " " $6} END {print d}' || true)
done
sleep 0.5
read -r client dest <<<"${conn:-none none}"
echo "# the download: client $client, real server $dest"
[[ $client == none ]] && adm -Lnc | grep -v TIME_WAIT | sed 's/^/# /' | head -20
no_conn0=$(msum "$(scrape_metrics)" 'dlvs_lcore_dropped_packets_total[{].*reason="tcp_no_conn"')
adm -d -t "$VIP:80" -r "$dest" || true
sleep 1.5
check "(y) the download's connection is gone (-Lnc)" \
    eval "[[ $client != none ]] && ! adm -Lnc | grep -q ' $client '"
# The client's next packet may wait: curl's rate limit reads its socket
# buffer at its own pace (a window update), or its 6 s run ends (its FIN).
no_conn1=$no_conn0
# shellcheck disable=SC2317 # called through wait_for
counted() {
    no_conn1=$(msum "$(scrape_metrics)" 'dlvs_lcore_dropped_packets_total[{].*reason="tcp_no_conn"')
    ((no_conn1 > no_conn0))
}
wait_for 8 counted || true
check "(y) its client's later packets belong to no connection (tcp_no_conn $no_conn0 -> $no_conn1)" \
    test "$no_conn1" -gt "$no_conn0"
kill "$curl_pid" 2>/dev/null || true
wait "$curl_pid" 2>/dev/null || true
adm -a -t "$VIP:80" -r "$dest" -m || true

# (d) clean stop.
check_clean_stop "(d) "

finish
