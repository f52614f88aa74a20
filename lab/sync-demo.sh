#!/usr/bin/env bash
# lab/sync-demo.sh — static vs dynamic up-delay after a switch restart (issue 5),
# on the lab of lab/topology.sh, as root:
#
#   for MODE in static dynamic:
#     1. both agents up and synced; sw1 has learned ENTRIES ARP entries on
#        vlanif10 (198.18.0.0/20, the benchmarking range, as a sub address);
#     2. the server sends ICMP to the gateway through sw1;
#     3. sw2 "reboots": its agent is killed, its gateway devices, neighbour
#        table and state are lost, its links go down and come back, and a fresh
#        agent starts (first start after boot: members held);
#     4. as soon as sw2 releases its member, sw1's member fails, so the
#        server's traffic moves to sw2;
#   and prints, per mode: how long sw2's gateway was held, how many ARP
#   entries it had when released, and the loss / longest gap of the traffic.
#
# Static mode holds for a blind up_delay; dynamic mode holds until sw2's table
# has caught up with sw1's (bounded by min/max). Everything is removed on exit.
# Environment: DAGW=prebuilt binary, ENTRIES (default 3000), MODES (default
# "static dynamic").
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/.." && pwd)
# shellcheck source=lab/lib.sh
source "$LAB_DIR/lib.sh"

ENTRIES=${ENTRIES:-3000}
WORK=""
PIDS=()
SAVED_GC=""

info() { printf '   %s\n' "$*"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    set +e
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    bash "$LAB_DIR/topology.sh" down
    if [[ -n $SAVED_GC ]]; then
        read -r g1 g2 g3 <<<"$SAVED_GC"
        sysctl -qw net.ipv4.neigh.default.gc_thresh1="$g1" net.ipv4.neigh.default.gc_thresh2="$g2" net.ipv4.neigh.default.gc_thresh3="$g3"
    fi
    [[ -n $WORK && ${KEEP_LOGS:-0} != 1 ]] && rm -rf "$WORK"
    [[ ${KEEP_LOGS:-0} == 1 ]] && printf "logs kept in %s\n" "$WORK"
    exit "$rc"
}

q() { # q SOCK EXPR: a Python expression over `dagw status --json` as s
    local json
    json=$("$DAGW" -s "$1" status --json 2>/dev/null) || { echo unreachable; return 0; }
    python3 -c 'import json,sys; s=json.loads(sys.argv[2]); print(eval(sys.argv[1]))' "$2" "$json" 2>/dev/null || echo "?"
}

GW='next(g for g in s["gateways"] if g["name"] == "vlanif10")'

wait_q() { # wait_q SECONDS SOCK EXPR VALUE
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        [[ $(q "$2" "$3") == "$4" ]] && return 0
        sleep 0.1
    done
    lab_die "timeout waiting for $3 == $4 on $2 (now: $(q "$2" "$3"))"
}

config() { # config SW MODE: lab/SW.toml adapted for this run
    local sw=$1 mode=$2
    sed -e "s#/run/dagw-lab/$sw#$WORK/$sw#" \
        -e "s#key_file = \"peer.key\"#key_file = \"$WORK/peer.key\"#" \
        -e 's/member_up_delay = "30s"/member_up_delay = "10s"/' \
        -e 's/member_min_delay = "5s"/member_min_delay = "2s"/' \
        -e 's/^mode = "static"/mode = "'"$mode"'"\nmin = "1s"\nmax = "8s"/' \
        -e 's#ipv4 = \["192.0.2.1/24"\]#ipv4 = ["192.0.2.1/24", "198.18.0.1/20"]#' \
        "$LAB_DIR/$sw.toml" >"$WORK/$sw.toml"
}

start() { # start SW
    ip netns exec "dagw-$1" "$DAGW" run -c "$WORK/$1.toml" >>"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$1=$!"
}

# wait_quiet: until the machine is idle (< 5 % busy over a second, at most 60 s):
# the kernel tears the previous run's namespaces down in the background.
wait_quiet() {
    local i a b
    for ((i = 0; i < 60; i++)); do
        read -r -a a </proc/stat
        sleep 1
        read -r -a b </proc/stat
        local total=0 idle=$((b[4] + b[5] - a[4] - a[5])) k
        for k in 1 2 3 4 5 6 7 8; do total=$((total + b[k] - a[k])); done
        ((total > 0 && (total - idle) * 100 / total < 5)) && return 0
    done
}

run_mode() {
    local mode=$1 s1="$WORK/sw1.sock" s2="$WORK/sw2.sock"
    step "$mode mode"
    bash "$LAB_DIR/topology.sh" down
    wait_quiet
    bash "$LAB_DIR/topology.sh" up >/dev/null
    rm -rf "$WORK/sw1-state" "$WORK/sw2-state"
    config sw1 "$mode"
    config sw2 "$mode"
    "$DAGW" check -c "$WORK/sw1.toml" >/dev/null
    start sw1
    start sw2
    wait_q 60 "$s1" "s['members'][0]['state']" up
    wait_q 60 "$s2" "s['members'][0]['state']" up
    wait_q 20 "$s2" "s['peer']['sync']['state']" established
    bash "$LAB_DIR/server-failover.sh" to eth1 >/dev/null
    python3 - "$ENTRIES" >"$WORK/neigh.batch" <<'EOF'
import sys, ipaddress
n = int(sys.argv[1])
base = int(ipaddress.IPv4Address("198.18.0.10"))
for i in range(n):
    print(f"neigh replace {ipaddress.IPv4Address(base + i)} lladdr 02:18:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x} dev gw10 nud reachable")
EOF
    ip -n "$NS_SW1" -batch "$WORK/neigh.batch"
    wait_q 30 "$s2" "$GW['arp']['local'] >= $ENTRIES" True
    info "sw1 learned $ENTRIES ARP entries; sw2 has them synced: $(q "$s2" "$GW['arp']")"

    ip netns exec "$NS_SRV" python3 "$LAB_DIR/traffic.py" --rate 200 --duration 20 192.0.2.1 >"$WORK/traffic" 2>&1 &
    local traffic=$!
    PIDS+=("$traffic")
    sleep 2

    info "sw1 before the reboot: $(q "$s1" "$GW['state'] + ' arp ' + str($GW['arp'])")"
    info "sw2 reboots: agent killed, gateway devices, neighbours and state lost, links down"
    kill -9 "$PID_sw2"
    ip -n "$NS_SW2" link del gw10
    ip -n "$NS_SW2" link del gwb5010
    ip -n "$NS_SW2" link set bond1 down
    ip -n "$NS_SW2" link set peerlink down
    rm -rf "$WORK/sw2-state"
    sleep 1
    ip -n "$NS_SW2" link set peerlink up
    ip -n "$NS_SW2" link set bond1 up
    local t0
    t0=$(date +%s.%N)
    start sw2
    local state=""
    while [[ $state != up ]]; do
        state=$(q "$s2" "$GW['state'] + '/' + str($GW['reason'])")
        [[ $state == up/None ]] && state=up
        sleep 0.02
        (($(date +%s) - ${t0%.*} < 60)) || lab_die "sw2's gateway never came up"
    done
    local held arp
    held=$(python3 -c "import time; print('%.2f' % (time.time() - $t0))")
    arp=$(q "$s2" "$GW['arp']")
    info "sw2 gateway up after ${held} s (from agent start), ARP at release: $arp"
    info "sw1 now: $(q "$s1" "$GW['state'] + ' arp ' + str($GW['arp'])") (kernel: $(ip -n "$NS_SW1" neigh show dev gw10 | wc -l) entries)"
    wait_q 60 "$s2" "s['members'][0]['state']" up
    info "sw2 member released; sw1's member fails: the server moves to sw2"
    ip -n "$NS_SW1" link set bond1 down
    bash "$LAB_DIR/server-failover.sh" to eth2 >/dev/null
    wait "$traffic" || true
    info "traffic: $(cat "$WORK/traffic")"
    RESULTS+=("$(printf '%-8s held %6s s   ARP at release %-28s %s' "$mode" "$held" "$arp" "$(grep -o 'lost.*gap [0-9]* ms' "$WORK/traffic")")")
    kill -9 "$PID_sw1" "$PID_sw2" 2>/dev/null || true
}

main() {
    lab_require_root
    cd "$REPO"
    if [[ -z ${DAGW:-} ]]; then
        cargo build --release
        DAGW=$REPO/target/release/dagw
    fi
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    WORK=$(mktemp -d /tmp/dagw-sync-demo.XXXXXX)
    (umask 077 && head -c 32 /dev/urandom | base64 >"$WORK/peer.key")
    SAVED_GC="$(sysctl -n net.ipv4.neigh.default.gc_thresh1) $(sysctl -n net.ipv4.neigh.default.gc_thresh2) $(sysctl -n net.ipv4.neigh.default.gc_thresh3)"
    sysctl -qw net.ipv4.neigh.default.gc_thresh1=16384 net.ipv4.neigh.default.gc_thresh2=32768 net.ipv4.neigh.default.gc_thresh3=65536
    RESULTS=()
    for mode in ${MODES:-static dynamic}; do
        run_mode "$mode"
    done
    step "results (sw2 restarted with $ENTRIES ARP entries on its peer)"
    printf '   %s\n' "${RESULTS[@]}"
}

main "$@"
