# tests/e2e/common.bash: what every end-to-end scenario shares, sourced
# (not run: scripts/test runs tests/e2e/*.sh). The scenario sets, before
# using these: start (=$SECONDS), bin, log, dlvs_pid, DIR_NS, CLI_NS,
# METRICS; these keep the counters `passed` and `failed`.

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

# msum TEXT ERE: the sum of the samples in TEXT whose line starts with ERE
# (write braces as [{] and [}])
msum() { awk -v re="^$2" '$0 ~ re {s += $NF} END {printf "%d", s}' <<<"$1"; }

# scrape_metrics: the director's metrics page, asked up to 20 times 0.1 s
# apart (empty if it never answers)
scrape_metrics() {
    local i m=
    for ((i = 0; i < 20; i++)); do
        m=$(ip netns exec "$DIR_NS" curl -s --max-time 2 "http://$METRICS/metrics" || true)
        [[ -n $m ]] && break
        sleep 0.1
    done
    printf '%s' "$m"
}

# wait_for SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds
# (status 0) or SECONDS pass (status 1); `waited` holds the milliseconds
# it took.
waited=0
wait_for() {
    local limit=$1 t0 i
    shift
    t0=$(date +%s%N)
    for ((i = 0; i < limit * 10; i++)); do
        if "$@"; then
            waited=$((($(date +%s%N) - t0) / 1000000))
            return 0
        fi
        sleep 0.1
    done
    waited=$((($(date +%s%N) - t0) / 1000000))
    return 1
}

# wire_ns NS ADDR/LEN VETH: a namespace on the lab's wire (the bridge br0
# of $DIR_NS): lo up, no IPv6, eth0 with ADDR/LEN, its peer VETH in br0.
wire_ns() {
    ip netns add "$1"
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$1" link set lo up
    ip -n "$DIR_NS" link add "$3" type veth peer name eth0 netns "$1"
    ip -n "$DIR_NS" link set "$3" master br0 up
    ip -n "$1" addr add "$2" dev eth0
    ip -n "$1" link set eth0 up
}

# The closing lines; exits non-zero when a check failed.
finish() {
    echo "# $((SECONDS - start)) s"
    echo "e2e: $passed passed, $failed failed"
    if ((failed > 0)); then exit 1; fi
    exit 0
}

# Root and the binary, or the scenario ends here.
require_root_and_bin() {
    if [[ $(id -u) -ne 0 ]]; then
        not_ok "running as root (network namespaces, DPDK)"
        finish
    fi
    if [[ ! -x $bin ]]; then
        not_ok "dlvs binary $bin exists (cargo build)"
        finish
    fi
}

# For the cleanup trap: dlvs, if it still runs, gets SIGTERM, 5 s, then
# SIGKILL; on a failure the end of its log is shown.
# cleanup_dlvs EXIT_STATUS
cleanup_dlvs() {
    local i
    if [[ -n $dlvs_pid ]] && kill -0 "$dlvs_pid" 2>/dev/null; then
        kill -TERM "$dlvs_pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$dlvs_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$dlvs_pid" 2>/dev/null || true
        wait "$dlvs_pid" 2>/dev/null || true
    fi
    if ((failed > 0 || $1 != 0)) && [[ -s $log ]]; then
        echo "# the last 30 lines of the dlvs log:"
        tail -n 30 "$log" | sed 's/^/#   /'
    fi
}

# end_lab RC PID...: the scenario's EXIT trap. Stops PIDs (the servers
# and helpers it started) and dlvs (as cleanup_dlvs), removes the lab
# ($PREFIX) and $tmp, and exits with RC.
end_lab() {
    local rc=$1 p
    shift
    trap - EXIT INT TERM
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
    cleanup_dlvs "$rc"
    "$root/scripts/lab" down "$PREFIX" >/dev/null 2>&1 || true
    rm -rf "$tmp"
    exit "$rc"
}

# start_dlvs ARGS...: dlvs runs in the director's namespace with ARGS; the
# scenario ends unless it logs `running until` and its tap is up within
# 20 s.
start_dlvs() {
    local i ready=0
    ip netns exec "$DIR_NS" "$bin" run "$@" >"$log" 2>&1 &
    dlvs_pid=$!
    for ((i = 0; i < 200; i++)); do
        kill -0 "$dlvs_pid" 2>/dev/null || break
        if grep -qs 'running until' "$log" &&
            ip -n "$DIR_NS" link show dev dtap0 2>/dev/null | grep -q LOWER_UP; then
            ready=1
            break
        fi
        sleep 0.1
    done
    if ((ready == 0)); then
        not_ok "dlvs starts with the rules and its tap comes up within 20 s"
        finish
    fi
    ok "dlvs starts with the rules ($((SECONDS - start)) s)"
}

# check_clean_stop LABEL: SIGTERM; dlvs exits 0 within 10 s.
check_clean_stop() {
    local i rc stopped=0
    kill -TERM "$dlvs_pid"
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
        check "${1}dlvs exits 0 after SIGTERM (exit status $rc)" test "$rc" -eq 0
    else
        not_ok "${1}dlvs exits within 10 s of SIGTERM"
    fi
}

# wrk_ok NAME URL: wrk from the client for 3 s; no socket errors, every
# answer 2xx, over 100 requests.
# shellcheck disable=SC2317 # called through check
wrk_ok() {
    local out
    out=$(ip netns exec "$CLI_NS" wrk -t2 -c16 -d3s --timeout 2s "$2" 2>&1 || true)
    sed "s/^/# wrk $1: /" <<<"$out"
    grep -q 'Requests/sec' <<<"$out" &&
        ! grep -qE 'Socket errors|Non-2xx' <<<"$out" &&
        [[ $(awk '/requests in/ {print $1}' <<<"$out") -gt 100 ]]
}

# serve_http PORT...: on each real server (RS_NS, whose replies to the NAT
# clients' network $NAT_NET.0/24 go through the director at 10.0.0.2), an
# HTTP server on each PORT whose page says "served by rsN"; their PIDs are
# appended to `servers`. Returns once every one listens (5 s at most).
serve_http() {
    local i ns www port n up
    for i in "${!RS_NS[@]}"; do
        ns=${RS_NS[$i]}
        www=$tmp/www$i
        mkdir -p "$www"
        echo "served by rs$((i + 1))" >"$www/index.html"
        ip -n "$ns" route add "$NAT_NET.0/24" via 10.0.0.2
        for port in "$@"; do
            ip netns exec "$ns" /usr/bin/python3 -m http.server "$port" --bind 0.0.0.0 \
                --directory "$www" >"$tmp/http-$i-$port.log" 2>&1 &
            servers+=($!)
        done
    done
    for ((n = 0; n < 50; n++)); do
        up=0
        for ns in "${RS_NS[@]}"; do
            for port in "$@"; do
                ip netns exec "$ns" /usr/bin/python3 -c \
                    "import socket; socket.create_connection(('127.0.0.1', $port), 1)" \
                    2>/dev/null && up=$((up + 1))
            done
        done
        ((up == ${#RS_NS[@]} * $#)) && return 0
        sleep 0.1
    done
}
