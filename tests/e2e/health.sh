#!/usr/bin/env bash
# tests/e2e/health.sh: health checks end to end. The director checks its
# NAT service's real servers with HTTP GETs from its own kernel through the
# exception path (lan0's `kernel = "dk0"`): every second, 2 s timeout, one
# retry after 0.5 s, quiescing a failed server (inhibit_on_failure).
#
# Usage: tests/e2e/health.sh [DLVS_BINARY]
#        DLVS_LCORES=0-1 tests/e2e/health.sh ...   (two workers)
#        HEALTH_FROM=keepalived tests/e2e/health.sh ...   (the checks from a
#        keepalived.conf with two virtual servers and all three checkers:
#        tests/e2e/health_keepalived.sh; adds the (k) checks)
#
# The lab as in exception.sh: rs1/rs2 (10.0.0.11/12) serve HTTP on 8080;
# -A -t 10.0.0.100:80 -s rr, NAT to both; the client uses 198.51.100.50.
# Checks:
#   (u) both servers up: wrk through the VIP, every answer 2xx, both serve;
#   (q) rs2's HTTP daemon stopped: dlvsadm -Ln shows it quiesced (weight 0)
#       within the configured time (1 s between checks, two refused
#       connections 0.5 s apart, and 3 s of slack: 4.5 s; the 2 s timeout
#       is for a server slow under the load runs), the log says it
#       is down and why, dlvs_real_server_up is 0 for it;
#       a client making one request after another across the kill has
#       none fail once rs2 is quiesced (those in the detection window may:
#       they were scheduled to a dead server, as with keepalived);
#   (n) then a wrk run has no connection refused or timed out and no
#       non-2xx answer, and rs2's connections counter does not move: no new
#       connection goes to it;
#   (b) rs2's daemon started again: it is back at weight 1 within 3 s, the
#       log says it is up, requests reach both servers again, and its
#       metrics count 2 state changes;
#   (o) (TOML checks) :84's servers listen nowhere: its sorry server
#       (rs1:8081) answers every request; :85 has quorum 2 and one of its
#       two servers down: below quorum, the sorry server answers too;
#   (f) dynamic feedback: rs1 reports load 0.1 and rs2 load 3.0 over UDP
#       ([feedback], every 0.5 s, A = 5, at most 20): rs2's weight falls to
#       1 and rs1's rises, rs2 gets under a quarter of 40 new connections
#       (wrr), and the live weight is exported;
#   (e) every metric the shipped alerting rules and Grafana dashboard
#       (config/monitoring) use is exported;
#   (d) dlvs exits 0 on SIGTERM.
# Prints `ok - ...` / `not ok - ...` and last `e2e: N passed, M failed`;
# exits non-zero on any failure. Everything it starts is stopped by PID and
# the lab removed on exit, pass or fail.
set -euo pipefail

start=$SECONDS
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-${DLVS_BIN:-$root/target/debug/dlvs}}
[[ $bin == /* ]] || bin=$PWD/$bin

PREFIX=dlvsh$$
DIR_NS=$PREFIX-dir
CLI_NS=$PREFIX-cli
RS_NS=("$PREFIX-rs1" "$PREFIX-rs2")
RS_IP=(10.0.0.11 10.0.0.12)
VIP=10.0.0.100
NAT_NET=198.51.100
METRICS=127.0.0.1:9914
LCORES=${DLVS_LCORES:-0}

# shellcheck source=tests/e2e/common.bash
source "$root/tests/e2e/common.bash"

dlvs_pid=
servers=()
tmp=$(mktemp -d /tmp/dlvs-e2e-health.XXXXXX)
log=$tmp/dlvs.log

# shellcheck disable=SC2317 # called from a trap
cleanup() { end_lab $? "${servers[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

require_root_and_bin
echo "# lcores $LCORES"

# The checks: dlvs's TOML, or (HEALTH_FROM=keepalived) a keepalived.conf
# with two virtual servers and the three checkers, loaded by --keepalived:
# the same timing, HTTP_GET on rs1 and TCP_CHECK on rs2 for :80, a
# MISC_CHECK on :81's server, and keywords dlvs does not support.
health_toml=
source_args=(--rules "$tmp/dlvs.rules")
if [[ ${HEALTH_FROM:-toml} == keepalived ]]; then
    echo "# health checks from a keepalived.conf"
    cat >"$tmp/keepalived.conf" <<EOF2
global_defs {
    router_id dlvs_e2e
}
virtual_server $VIP 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    ha_suspend
    real_server ${RS_IP[0]} 8080 {
        weight 1
        inhibit_on_failure
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 2
            retry 1
            delay_before_retry 0.5
        }
    }
    real_server ${RS_IP[1]} 8080 {
        weight 1
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }
    }
}
virtual_server $VIP 81 {
    delay_loop 1
    lb_algo wlc
    lb_kind NAT
    real_server ${RS_IP[0]} 8080 {
        MISC_CHECK {
            misc_path "/usr/bin/curl -sf -o /dev/null --max-time 1 http://${RS_IP[0]}:8080/"
            misc_timeout 2
        }
    }
}
EOF2
    source_args=(--keepalived "$tmp/keepalived.conf")
else
    health_toml="[[health]]
service = \"tcp/$VIP:80\"
check = \"http_get\"
url = \"/\"
status = 200
delay_loop_s = 1.0
connect_timeout_s = 2.0
retry = 1
delay_before_retry_s = 0.5
inhibit_on_failure = true

# (o) :84's servers listen nowhere: the sorry server (rs1:8081) serves.
[[health]]
service = \"tcp/$VIP:84\"
check = \"tcp_connect\"
delay_loop_s = 1.0
connect_timeout_s = 0.5
retry = 0
sorry_server = \"${RS_IP[0]}:8081\"

# (o) :85 needs a live weight of 2: with rs2:8090 down it is below quorum.
[[health]]
service = \"tcp/$VIP:85\"
check = \"tcp_connect\"
delay_loop_s = 1.0
connect_timeout_s = 0.5
retry = 0
quorum = 2
sorry_server = \"${RS_IP[0]}:8081\"
"
fi
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

$health_toml
[feedback]
listen = "10.0.0.2:8999"
interval_s = 0.5
alpha = 5.0
max_weight = 20

[metrics]
listen = "$METRICS"

[control]
socket = "$tmp/dlvs.sock"
EOF2
rules=$tmp/dlvs.rules
cat >"$rules" <<EOF2
-A -t $VIP:80 -s wrr
-a -t $VIP:80 -r ${RS_IP[0]}:8080 -m
-a -t $VIP:80 -r ${RS_IP[1]}:8080 -m
-A -t $VIP:84 -s rr
-a -t $VIP:84 -r ${RS_IP[0]}:8090 -m
-a -t $VIP:84 -r ${RS_IP[1]}:8090 -m
-A -t $VIP:85 -s rr
-a -t $VIP:85 -r ${RS_IP[0]}:8080 -m
-a -t $VIP:85 -r ${RS_IP[1]}:8090 -m
EOF2

"$root/scripts/lab" up "$PREFIX" | sed 's/^/# /'
serve_http 8080
# The sorry page, on rs1:8081.
mkdir -p "$tmp/sorry"
echo "sorry" >"$tmp/sorry/index.html"
ip netns exec "${RS_NS[0]}" /usr/bin/python3 -m http.server 8081 --bind 0.0.0.0 \
    --directory "$tmp/sorry" >"$tmp/http-sorry.log" 2>&1 &
servers+=($!)
rs2_pid=${servers[1]}
ip -n "$CLI_NS" addr add "$NAT_NET.50/24" dev eth0

start_dlvs --config "$cfg" "${source_args[@]}"
"$root/scripts/lab" retap "$PREFIX" | sed 's/^/# /'
ip -n "$CLI_NS" route add "$VIP/32" via "$NAT_NET.1" src "$NAT_NET.50"


adm() { DLVS_SOCKET=$tmp/dlvs.sock "$(dirname "$bin")/dlvsadm" "$@"; }
# weight_of SERVER: rs's weight in -Ln, or "gone".
weight_of() { adm -Ln -t "$VIP:80" | awk -v s="$1:8080" '$2 == s {print $4; f = 1} END {if (!f) print "gone"}'; }
# both_serve COUNT: every request answered, both servers serving.
# shellcheck disable=SC2317 # called through check
both_serve() {
    local i body n1=0 n2=0 bad=0
    for ((i = 0; i < $1; i++)); do
        body=$(ip netns exec "$CLI_NS" curl -s --max-time 3 --interface "$NAT_NET.50" "http://$VIP:80/" || true)
        case $body in
        "served by rs1") n1=$((n1 + 1)) ;;
        "served by rs2") n2=$((n2 + 1)) ;;
        *) bad=$((bad + 1)) ;;
        esac
    done
    echo "# rs1 $n1, rs2 $n2, failed $bad"
    ((bad == 0 && n1 > 0 && n2 > 0))
}
# wrk_clean NAME: 3 s of new connections through the VIP, no error.
# shellcheck disable=SC2317 # called through check
wrk_clean() {
    local out
    out=$(ip netns exec "$CLI_NS" wrk -t2 -c8 -d3s --timeout 2s -H "Connection: close" "http://$VIP:80/" 2>&1 || true)
    sed "s/^/# wrk $1: /" <<<"$out"
    grep -q 'Requests/sec' <<<"$out" && ! grep -qE 'Socket errors|Non-2xx' <<<"$out"
}
# The series of rs2 in the NAT service (labels in the exporter's order).
rs2_series="[{]service=\"tcp/$VIP:80\",server=\"${RS_IP[1]}:8080\"[}]"
rs2_conns() { msum "$(scrape_metrics)" "dlvs_real_server_connections_total$rs2_series"; }

# The first checks pass before the load starts.
sleep 1.5
if [[ ${HEALTH_FROM:-toml} == keepalived ]]; then
    listing=$(adm -Ln)
    sed 's/^/# /' <<<"$listing"
    check "(k) the keepalived.conf's two virtual servers are the services" \
        grep -q "^TCP  $VIP:81 wlc" <<<"$listing"
    check "(k) what dlvs does not support is named with its line" \
        grep -q "keepalived.conf:9: ha_suspend: not supported, ignored" "$log"
    check "(k) the MISC_CHECK keeps :81's server up" \
        grep -q "^  -> ${RS_IP[0]}:8080  *Masq    1 " <<<"$(adm -Ln -t "$VIP:81")"
fi
check "(u) both servers up: wrk through $VIP:80 clean" wrk_clean up
check "(u) and both serve" both_serve 10

# (q) rs2's daemon stops, while a client makes one request after another
# (a new connection each); each outcome is logged with its time.
(
    while :; do
        if ip netns exec "$CLI_NS" curl -s -o /dev/null --max-time 2 --interface "$NAT_NET.50" \
            "http://$VIP:80/"; then r=ok; else r=failed; fi
        echo "$(date +%s%N) $r"
    done
) >"$tmp/across.txt" 2>/dev/null &
across_pid=$!
servers+=($across_pid)
sleep 0.5
kill "$rs2_pid"
wait "$rs2_pid" 2>/dev/null || true
t0=$(date +%s%N)
quiesced=
for ((i = 0; i < 100; i++)); do
    if [[ $(weight_of "${RS_IP[1]}") == 0 ]]; then
        quiesced=$((($(date +%s%N) - t0) / 1000000))
        break
    fi
    sleep 0.1
done
echo "# rs2 quiesced after ${quiesced:-never} ms"
sleep 2
kill "$across_pid" 2>/dev/null || true
wait "$across_pid" 2>/dev/null || true
# A request that ended after the quiesce plus its own 2 s limit was made
# after it: none of those may fail.
late=$((t0 + (${quiesced:-99999} + 2000) * 1000000))
read -r total fails late_fails < <(awk -v late="$late" \
    '{n++} $2 == "failed" {f++; if ($1 > late) l++} END {printf "%d %d %d\n", n, f, l}' "$tmp/across.txt")
echo "# requests across the failure: $total, failed $fails (within the detection window: $((fails - late_fails)))"
check "(q) requests across the failure: none failed after the detection window ($late_fails of $total)" \
    test "$late_fails" = 0 -a "$total" -gt 10
check "(q) rs2 quiesced (weight 0) within 4.5 s (${quiesced:-never} ms)" test "${quiesced:-99999}" -le 4500
check "(q) the log says rs2 is down and why" \
    grep -q "health: real server ${RS_IP[1]}:8080 of tcp/$VIP:80 is down: .*connect to ${RS_IP[1]}:8080: Connection refused" "$log"
# (the exporter's values follow within a publish interval)
# shellcheck disable=SC2317 # called through check
rs2_down_exported() {
    local i
    for ((i = 0; i < 20; i++)); do
        grep -q "^dlvs_real_server_up$rs2_series 0\$" <<<"$(scrape_metrics)" && return 0
        sleep 0.1
    done
    return 1
}
check "(q) dlvs_real_server_up is 0 for rs2" rs2_down_exported

# (n) nothing new goes to rs2.
before=$(rs2_conns)
# wrk_quiesced: no connect error or timeout (nothing sent to a dead
# server), no non-2xx answer; wrk's own read/write errors on closing
# connections (seen once in ~3,000 with Connection: close) at most 0.2 %.
# shellcheck disable=SC2317 # called through check
wrk_quiesced() {
    local out n errs
    out=$(ip netns exec "$CLI_NS" wrk -t2 -c8 -d3s --timeout 2s -H "Connection: close" "http://$VIP:80/" 2>&1 || true)
    sed "s/^/# wrk quiesced: /" <<<"$out"
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    errs=$(awk -F'[ ,]+' '/Socket errors/ {for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i} END {print s + 0}' <<<"$out")
    ! grep -qE 'Non-2xx|connect [1-9]|timeout [1-9]' <<<"$out" && ((${n:-0} > 100 && errs * 500 <= n))
}
check "(n) wrk after the quiesce: no connection refused or timed out, every answer 2xx" wrk_quiesced
sleep 0.3
after=$(rs2_conns)
echo "# rs2 connections counted: $before before, $after after"
check "(n) no new connection went to rs2 (it had some before)" test "$before" = "$after" -a "$before" -gt 0

# (b) rs2 comes back.
www=$tmp/www1
ip netns exec "${RS_NS[1]}" /usr/bin/python3 -m http.server 8080 --bind 0.0.0.0 \
    --directory "$www" >"$tmp/http-1b.log" 2>&1 &
servers+=($!)
t0=$(date +%s%N)
back=
for ((i = 0; i < 100; i++)); do
    if [[ $(weight_of "${RS_IP[1]}") == 1 ]]; then
        back=$((($(date +%s%N) - t0) / 1000000))
        break
    fi
    sleep 0.1
done
echo "# rs2 back after ${back:-never} ms"
check "(b) rs2 back at weight 1 within 3 s (${back:-never} ms)" test "${back:-99999}" -le 3000
check "(b) the log says rs2 is up" grep -q "health: real server ${RS_IP[1]}:8080 of tcp/$VIP:80 is up" "$log"
check "(b) requests reach both servers again" both_serve 10
sleep 0.3 # a publish interval
after_scrape=$(scrape_metrics)
changes=$(msum "$after_scrape" "dlvs_real_server_state_changes_total$rs2_series")
check "(b) rs2's state changes counted: 2 ($changes)" test "$changes" = 2

# (o) a sorry server, and a quorum taking a service down (TOML checks only).
if [[ ${HEALTH_FROM:-toml} != keepalived ]]; then
    # sorry_answers PORT: how many of 10 requests to the VIP's PORT the
    # sorry page answered
    sorry_answers() {
        local i n=0
        for ((i = 0; i < 10; i++)); do
            [[ $(ip netns exec "$CLI_NS" curl -s --max-time 3 --interface "$NAT_NET.50" \
                "http://$VIP:$1/" || true) == sorry ]] && n=$((n + 1))
        done
        echo "$n"
    }
    a84=$(sorry_answers 84)
    a85=$(sorry_answers 85)
    echo "# :84 answers: $a84; :85 answers: $a85"
    listing=$(adm -Ln -t "$VIP:84")$'\n'$(adm -Ln -t "$VIP:85")
    sed 's/^/# /' <<<"$listing"
    check "(o) no real server of :84 up: the sorry server answers all 10" test "$a84" = 10
    check "(o) :85 below its quorum of 2 (rs1 up, rs2 down): the sorry server answers all 10" \
        test "$a85" = 10
    check "(o) -Ln shows :84 and :85 with only the sorry server" \
        test "$(grep -c "^  -> ${RS_IP[0]}:8081 " <<<"$listing")" = 2 -a \
        "$(grep -c '^  -> [0-9]' <<<"$listing")" = 2
fi

# (f) dynamic feedback: rs1 reports a light load, rs2 a heavy one, every
# 0.3 s (the director moves weights every 0.5 s).
report() { # SERVER_INDEX LOAD: every 0.3 s until killed
    ip netns exec "${RS_NS[$1]}" bash -c \
        'while :; do echo "load $1" >/dev/udp/10.0.0.2/8999; sleep 0.3; done' _ "$2" &
    servers+=($!)
}
report 0 0.1
report 1 3.0
sleep 2.5
w1=$(weight_of "${RS_IP[0]}")
w2=$(weight_of "${RS_IP[1]}")
echo "# weights after the reports: rs1 $w1, rs2 $w2"
check "(f) the heavy load lowered rs2's weight to 1, the light one raised rs1's ($w1)" \
    test "$w2" = 1 -a "$w1" -gt 2
# shellcheck disable=SC2317 # called through check
share_ok() {
    local i body n2=0 bad=0
    for ((i = 0; i < 40; i++)); do
        body=$(ip netns exec "$CLI_NS" curl -s --max-time 3 --interface "$NAT_NET.50" "http://$VIP:80/" || true)
        case $body in
        "served by rs2") n2=$((n2 + 1)) ;;
        "served by rs1") ;;
        *) bad=$((bad + 1)) ;;
        esac
    done
    echo "# of 40 new connections, rs2 got $n2 (failed $bad)"
    ((bad == 0 && n2 < 10))
}
check "(f) rs2's share of new connections fell under a quarter" share_ok
weights=$(scrape_metrics)
check "(f) the live weight is exported" \
    grep -q "^dlvs_real_server_weight$rs2_series 1\$" <<<"$weights"

# (e) the shipped monitoring's metrics.
# shellcheck disable=SC2317 # called through check
all_exported() {
    local name missing=0
    for name in $(grep -ohE 'dlvs_[a-z_]+' "$root/config/monitoring/alerts.yml" \
        "$root/config/monitoring/grafana-dashboard.json" | sort -u); do
        if ! grep -q "^$name[{ ]" <<<"$after_scrape"; then
            echo "# not exported: $name"
            missing=1
        fi
    done
    ((missing == 0))
}
check "(e) every metric of the shipped alerting rules and dashboard is exported" all_exported

check_clean_stop "(d) "
finish
