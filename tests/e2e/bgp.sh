#!/usr/bin/env bash
# tests/e2e/bgp.sh: [bgp] end to end: the director's BIRD, started and
# supervised by dlvs on its exception path, announces the virtual address
# to an upstream router (BIRD in a namespace of the lab's wire, its routes
# in its kernel table).
#
# Usage: tests/e2e/bgp.sh [DLVS_BINARY]
#        DLVS_LCORES=0-1 tests/e2e/bgp.sh ...   (two workers)
#
# The lab (scripts/lab, PREFIX dlvsg$$) and a router namespace rtr
# (10.0.0.254, AS 65000) on its wire; the director 10.0.0.2 (AS 65001,
# lan0 with its exception path dk0), VIP 10.0.0.100 (DR to rs1).
# Checks:
#   (a) the router's table has 10.0.0.100/32 via 10.0.0.2 within 15 s
#       (BIRD on the director, the session through dk0 and the data port);
#   (b) the real server removed (dlvsadm -d): the route goes within 3 s;
#       added back: it comes back within 3 s;
#   (c) a dead speaker is restarted: SIGKILL of the director's bird, the
#       route back within 15 s;
#   (e) dlvsadm --drain: the route goes within 2 s, dlvs runs on;
#       --undrain: it comes back;
#   (d) SIGTERM: the route goes within 2 s while dlvs goes on (drain_s =
#       3), dlvs exits 0 after the drain, its bird with it;
#   (f) started again, then SIGKILLed: its session cannot close (its
#       interfaces are gone), and BFD has the router drop the route within
#       1 s.
# Prints `ok - ...` / `not ok - ...` and last `e2e: N passed, M failed`;
# exits non-zero on any failure. Everything it starts is stopped by PID and
# the lab removed on exit, pass or fail.
set -euo pipefail

start=$SECONDS
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-${DLVS_BIN:-$root/target/debug/dlvs}}
[[ $bin == /* ]] || bin=$PWD/$bin
adm=$(dirname "$bin")/dlvsadm

PREFIX=dlvsg$$
DIR_NS=$PREFIX-dir
CLI_NS=$PREFIX-cli
RTR_NS=$PREFIX-rtr
RS_NS=("$PREFIX-rs1")
VIP=10.0.0.100
METRICS=127.0.0.1:9919
LCORES=${DLVS_LCORES:-0}

# shellcheck source=tests/e2e/common.bash
source "$root/tests/e2e/common.bash"

dlvs_pid=
rtr_pid=
tmp=$(mktemp -d /tmp/dlvs-e2e-bgp.XXXXXX)
log=$tmp/dlvs.log

# shellcheck disable=SC2317 # called from a trap
cleanup() { end_lab $? ${rtr_pid:+"$rtr_pid"}; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

require_root_and_bin
if ! command -v bird >/dev/null 2>&1; then
    not_ok "bird is installed (scripts/setup)"
    finish
fi
echo "# lcores $LCORES; $(bird --version 2>&1 | head -n 1)"

cfg=$tmp/dlvs.toml
cat >"$cfg" <<EOF2
[dpdk]
eal_args = ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--no-telemetry", "-l", "$LCORES", "--file-prefix", "$PREFIX"]

[[interface]]
name = "lan0"
device = "net_tap0,iface=dtap0"
mac = "02:00:00:00:00:01"
addresses = ["10.0.0.2/24", "$VIP/32"]
kernel = "dk0"

[bgp]
interface = "lan0"
local_as = 65001
router_id = "10.0.0.2"
peers = [{ address = "10.0.0.254", remote_as = 65000, bfd = true }]
drain_s = 3

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

"$root/scripts/lab" up "$PREFIX" | sed 's/^/# /'
wire_ns "$RTR_NS" 10.0.0.254/24 vrtr
cat >"$tmp/rtr.conf" <<EOF2
router id 10.0.0.254;
protocol device { }
protocol kernel { ipv4 { import none; export all; }; merge paths on; }
protocol bfd { interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }
protocol bgp director {
    local 10.0.0.254 as 65000;
    neighbor 10.0.0.2 as 65001;
    direct;
    bfd on;
    # A director that left (or died) is met again at once.
    connect delay time 1;
    connect retry time 1;
    error wait time 1, 5;
    ipv4 { import all; export none; };
}
EOF2
ip netns exec "$RTR_NS" bird -f -c "$tmp/rtr.conf" -s "$tmp/rtr.ctl" -P "$tmp/rtr.pid" >"$tmp/rtr.log" 2>&1 &
rtr_pid=$!

start_dlvs --config "$cfg" --rules "$rules"
"$root/scripts/lab" retap "$PREFIX" | sed 's/^/# /'

# shellcheck disable=SC2317 # called through wait_for
routed() { ip -n "$RTR_NS" route show "$VIP/32" | grep -q "via 10.0.0.2"; }
# shellcheck disable=SC2317
unrouted() { ! routed; }
adm() { ip netns exec "$DIR_NS" "$adm" --socket "$tmp/dlvs.sock" "$@"; }

# (a)
if wait_for 15 routed; then
    ok "(a) the router has $VIP/32 via 10.0.0.2 (${waited} ms)"
else
    not_ok "(a) the router has $VIP/32 via 10.0.0.2 within 15 s"
    ip netns exec "$RTR_NS" birdc -s "$tmp/rtr.ctl" show protocols all director 2>&1 | sed 's/^/#   /' | head -n 30
fi
ip -n "$RTR_NS" route show "$VIP/32" | sed 's/^/# router: /'

# (b)
adm -d -t "$VIP:80" -r 10.0.0.11:80
check "(b) without a real server, the route goes within 3 s" wait_for 3 unrouted
adm -a -t "$VIP:80" -r 10.0.0.11:80 -g
check "(b) with it back, the route comes back within 3 s" wait_for 3 routed

# (c)
bird_pid=$(cat "$tmp/dlvs.sock.bird.pid" 2>/dev/null || true)
if [[ -n $bird_pid ]]; then
    kill -KILL "$bird_pid"
    check "(c) a killed speaker is restarted: the route back within 15 s" \
        bash -c "sleep 0.5; for i in \$(seq 150); do ip -n $RTR_NS route show $VIP/32 | grep -q 'via 10.0.0.2' && exit 0; sleep 0.1; done; exit 1"
    new_pid=$(cat "$tmp/dlvs.sock.bird.pid" 2>/dev/null || true)
    check "(c) ... by a new bird ($bird_pid, then $new_pid)" test -n "$new_pid" -a "$new_pid" != "$bird_pid"
else
    not_ok "(c) the speaker's pid file $tmp/dlvs.sock.bird.pid exists"
fi

# (e) dlvsadm drains and undrains.
out=$(adm --drain 2>&1 || true)
echo "# dlvsadm --drain: $out"
check "(e) dlvsadm --drain says so ('$out')" grep -q '^draining: routes withdrawn' <<<"$out"
check "(e) ... and the route goes within 2 s" wait_for 2 unrouted
check "(e) ... while dlvs runs on" kill -0 "$dlvs_pid"
m=$(scrape_metrics)
check "(e) ... and the metrics say so (dlvs_bgp_draining 1, no route announced)" \
    test "$(msum "$m" 'dlvs_bgp_draining')|$(msum "$m" 'dlvs_bgp_announced_routes')" = "1|0"
out=$(adm --undrain 2>&1 || true)
check "(e) dlvsadm --undrain: the route comes back within 3 s ('$out')" wait_for 3 routed
set +e
err=$(adm --drain now 2>&1)
status=$?
set -e
check "(e) a stray argument is refused ($status: $err)" test "$status" -eq 2

# (d)
t0=$(date +%s%N)
kill -TERM "$dlvs_pid"
if wait_for 2 unrouted; then
    ok "(d) SIGTERM withdraws the route at once (${waited} ms)"
else
    not_ok "(d) SIGTERM withdraws the route within 2 s"
fi
check "(d) ... while dlvs goes on forwarding (drain_s = 3)" kill -0 "$dlvs_pid"
rc=0
for ((i = 0; i < 100; i++)); do
    kill -0 "$dlvs_pid" 2>/dev/null || break
    sleep 0.1
done
wait "$dlvs_pid" || rc=$?
took=$((($(date +%s%N) - t0) / 1000000))
dlvs_pid=
check "(d) dlvs exits 0 after the drain ($rc, ${took} ms after SIGTERM)" test "$rc" -eq 0 -a "$took" -ge 3000
# shellcheck disable=SC2317
gone() { ! kill -0 "$1" 2>/dev/null; }
check "(d) its bird went with it (pid ${new_pid:-none})" gone "${new_pid:-0}"

# (f) A dead director: started again, then SIGKILLed. Its tap and kernel
# interface go with it, so its BGP session cannot close: BFD tells the
# router.
start_dlvs --config "$cfg" --rules "$rules"
"$root/scripts/lab" retap "$PREFIX" | sed 's/^/# /'
if wait_for 20 routed; then
    bfd=$(ip netns exec "$RTR_NS" birdc -s "$tmp/rtr.ctl" show bfd sessions 2>&1 | grep -c ' Up ' || true)
    t0=$(date +%s%N)
    kill -KILL "$dlvs_pid"
    wait "$dlvs_pid" 2>/dev/null || true
    dlvs_pid=
    if wait_for 3 unrouted; then
        took=$((($(date +%s%N) - t0) / 1000000))
        echo "# the router dropped the dead director's route ${took} ms after SIGKILL (BFD sessions up before: $bfd)"
        check "(f) a dead director's route goes within 1 s (BFD; ${took} ms)" test "$took" -le 1000
    else
        not_ok "(f) a dead director's route goes within 3 s"
    fi
else
    not_ok "(f) the restarted director is routed again within 20 s"
fi
finish
