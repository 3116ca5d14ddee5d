#!/usr/bin/env bash
# tests/e2e/vrrp_keepalived.sh: dlvs and keepalived (Debian's, VRRP only)
# in one virtual router, in network namespaces.
#
# Usage: tests/e2e/vrrp_keepalived.sh [DLVS_BINARY]
#        DLVS_LCORES=0-1 tests/e2e/vrrp_keepalived.sh ...   (two workers)
#
# The lab (scripts/lab, PREFIX dlvsv$$) and one more host on its wire: ka
# (10.0.0.3) running keepalived. Virtual router 51, VRRP version 2, one
# second adverts, virtual address 10.0.0.200: keepalived with priority
# 150, dlvs (10.0.0.2) with priority 100 and a DR service on the address
# (rs1 holds it on lo without answering ARP for it).
# Checks:
#   (a) keepalived alone becomes MASTER (the address on its eth0);
#   (b) dlvs joins: after 5 s it is still BACKUP (metrics), keepalived
#       still MASTER, and the client's ARP for the address names ka;
#   (c) keepalived stops (its priority-0 advert): dlvs is MASTER within
#       2 s (the skew time, 0.61 s, and a timer run); the client's ARP
#       for the address names dlvs; HTTP to it is served by rs1 through
#       dlvs; the notify program ran with keepalived's arguments;
#   (d) keepalived returns and preempts (its priority is higher): MASTER
#       within 6 s, dlvs BACKUP (its log names ka's advert);
#   (e) keepalived stops again, dlvs takes over, and keepalived returns
#       with nopreempt: 6 s later dlvs is still MASTER;
#   (f) dlvs stops (SIGTERM, its priority-0 advert): keepalived is MASTER
#       within 2 s, and dlvs exits 0.
# Prints `ok - ...` / `not ok - ...`, the takeover times, and last
# `e2e: N passed, M failed`; exits non-zero on any failure. Everything it
# starts is stopped by PID and the lab removed on exit, pass or fail.
set -euo pipefail

start=$SECONDS
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-${DLVS_BIN:-$root/target/debug/dlvs}}
[[ $bin == /* ]] || bin=$PWD/$bin

PREFIX=dlvsv$$
DIR_NS=$PREFIX-dir
CLI_NS=$PREFIX-cli
KA_NS=$PREFIX-ka
RS_NS=("$PREFIX-rs1")
VIP=10.0.0.200
DLVS_MAC=02:00:00:00:00:01
METRICS=127.0.0.1:9916
LCORES=${DLVS_LCORES:-0}

# shellcheck source=tests/e2e/common.bash
source "$root/tests/e2e/common.bash"

dlvs_pid=
servers=()
ka_pid=
tmp=$(mktemp -d /tmp/dlvs-e2e-vrrp.XXXXXX)
log=$tmp/dlvs.log

# shellcheck disable=SC2317 # called from a trap
cleanup() { end_lab $? "${servers[@]}" ${ka_pid:+"$ka_pid"}; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

require_root_and_bin
if ! command -v keepalived >/dev/null 2>&1; then
    not_ok "keepalived is installed (scripts/setup)"
    finish
fi
echo "# lcores $LCORES; $(keepalived --version 2>&1 | head -n 1)"

cat >"$tmp/notify.sh" <<EOF2
#!/bin/sh
echo "\$*" >>"$tmp/notify.log"
EOF2
chmod +x "$tmp/notify.sh"

cfg=$tmp/dlvs.toml
cat >"$cfg" <<EOF2
[dpdk]
eal_args = ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--no-telemetry", "-l", "$LCORES", "--file-prefix", "$PREFIX"]

[[interface]]
name = "lan0"
device = "net_tap0,iface=dtap0"
mac = "$DLVS_MAC"
addresses = ["10.0.0.2/24"]

[[vrrp]]
name = "VI_1"
interface = "lan0"
virtual_router_id = 51
priority = 100
advert_int_ms = 1000
virtual_addresses = ["$VIP"]
notify = "$tmp/notify.sh"

[metrics]
listen = "$METRICS"

[control]
socket = "$tmp/dlvs.sock"
EOF2
rules=$tmp/dlvs.rules
cat >"$rules" <<EOF2
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r 10.0.0.11:80 -g
EOF2

# ka_conf PREEMPT: keepalived's configuration (nopreempt when PREEMPT is 0).
ka_conf() {
    cat <<EOF2
global_defs {
    router_id ka
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    $( (($1)) || echo nopreempt)
    virtual_ipaddress {
        $VIP/24
    }
}
EOF2
}

"$root/scripts/lab" up "$PREFIX" | sed 's/^/# /'
# keepalived's host on the lab's wire.
wire_ns "$KA_NS" 10.0.0.3/24 vka
KA_MAC=$(ip -n "$KA_NS" -br link show dev eth0 | awk '{print $3}')
# rs1 serves the address by DR.
ip -n "${RS_NS[0]}" addr add "$VIP/32" dev lo
ip netns exec "${RS_NS[0]}" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
ip netns exec "${RS_NS[0]}" /usr/bin/python3 -m http.server 80 --bind 0.0.0.0 --directory "$tmp" \
    >"$tmp/http.log" 2>&1 &
servers+=($!)
echo "served by rs1" >"$tmp/index.html"

# start_ka PREEMPT: keepalived, VRRP only, in its namespace.
start_ka() {
    ka_conf "$1" >"$tmp/ka.conf"
    ip netns exec "$KA_NS" keepalived -n -l -D -P -f "$tmp/ka.conf" \
        -p "$tmp/ka.pid" -r "$tmp/ka-vrrp.pid" >>"$tmp/ka.log" 2>&1 &
    ka_pid=$!
}
stop_ka() {
    kill -TERM "$ka_pid" 2>/dev/null || true
    wait "$ka_pid" 2>/dev/null || true
    ka_pid=
}
# shellcheck disable=SC2317 # called through wait_for and check
ka_holds() { ip -n "$KA_NS" -4 addr show dev eth0 | grep -q " $VIP/"; }
# shellcheck disable=SC2317
ka_free() { ! ka_holds; }
# dlvs_master: 1 or 0 as the metrics say (empty if they do not).
dlvs_master() {
    scrape_metrics | awk '/^dlvs_vrrp_master[{]instance="VI_1"[}]/ {print $NF}'
}
# shellcheck disable=SC2317
is_master() { [[ $(dlvs_master) == 1 ]]; }
# shellcheck disable=SC2317
is_backup() { [[ $(dlvs_master) == 0 ]]; }
# client_sees MAC: the client's ARP entry for the address, after a fresh
# resolution (a ping), names MAC.
# shellcheck disable=SC2317
client_sees() {
    ip -n "$CLI_NS" neigh flush dev eth0 2>/dev/null || true
    ip netns exec "$CLI_NS" ping -c 1 -W 1 "$VIP" >/dev/null 2>&1 || true
    ip -n "$CLI_NS" neigh show "$VIP" dev eth0 | grep -qi "lladdr $1"
}

# (a)
start_ka 1
check "(a) keepalived alone becomes MASTER: $VIP on its eth0 within 8 s" wait_for 8 ka_holds

# (b)
start_dlvs --config "$cfg" --rules "$rules"
"$root/scripts/lab" retap "$PREFIX" | sed 's/^/# /'
sleep 5
check "(b) dlvs (priority 100) stays BACKUP under keepalived (150) after 5 s" is_backup
check "(b) keepalived still holds $VIP" ka_holds
check "(b) the client's ARP for $VIP names keepalived's host ($KA_MAC)" client_sees "$KA_MAC"

# (c)
stop_ka
if wait_for 3 is_master; then
    echo "# takeover after keepalived's priority-0 advert: ${waited} ms"
    check "(c) dlvs is MASTER within 2 s of keepalived's stop (${waited} ms)" test "$waited" -le 2000
else
    not_ok "(c) dlvs becomes MASTER after keepalived stops"
fi
check "(c) the client's ARP for $VIP names dlvs ($DLVS_MAC)" client_sees "$DLVS_MAC"
# shellcheck disable=SC2317
served() {
    local body
    body=$(ip netns exec "$CLI_NS" curl -s --max-time 3 "http://$VIP/" || true)
    [[ $body == "served by rs1" ]]
}
check "(c) HTTP to $VIP is served by rs1 through dlvs" served
# shellcheck disable=SC2317
notified() { grep -qx "INSTANCE VI_1 MASTER 100" "$tmp/notify.log" 2>/dev/null; }
check "(c) notify ran with keepalived's arguments (INSTANCE VI_1 MASTER 100)" wait_for 3 notified

# (d)
start_ka 1
if wait_for 8 ka_holds; then
    echo "# keepalived preempts after ${waited} ms"
    ok "(d) keepalived returns and preempts within 8 s (${waited} ms)"
else
    not_ok "(d) keepalived returns and preempts within 8 s"
fi
check "(d) dlvs is BACKUP again" wait_for 3 is_backup
check "(d) dlvs logs the preemption by keepalived's advert" \
    grep -q "VI_1 (vrid 51, priority 100): MASTER -> BACKUP: 10.0.0.3 advertises priority 150" "$log"

# (e)
stop_ka
check "(e) dlvs takes over again" wait_for 3 is_master
start_ka 0
sleep 6
check "(e) keepalived with nopreempt leaves dlvs MASTER (6 s on)" is_master
check "(e) and does not take $VIP" ka_free

# (f)
kill -TERM "$dlvs_pid"
if wait_for 3 ka_holds; then
    echo "# keepalived takes over from a stopping dlvs after ${waited} ms"
    check "(f) keepalived is MASTER within 2 s of dlvs's stop (${waited} ms)" test "$waited" -le 2000
else
    not_ok "(f) keepalived takes over when dlvs stops"
fi
rc=0
for ((i = 0; i < 100; i++)); do
    kill -0 "$dlvs_pid" 2>/dev/null || break
    sleep 0.1
done
wait "$dlvs_pid" || rc=$?
dlvs_pid=
check "(f) dlvs exits 0 after SIGTERM (exit status $rc)" test "$rc" -eq 0
if ((failed > 0)); then
    echo "# keepalived's log:"
    tail -n 30 "$tmp/ka.log" | sed 's/^/#   /'
fi
finish
