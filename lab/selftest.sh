#!/usr/bin/env bash
# lab/selftest.sh — checks the lab itself, without dagw: builds the topology,
# puts the gateway addresses straight on sw1's br10 (standing in for dagw),
# then checks server -> gateway reachability (IPv4 + IPv6), that the server's
# emulated bond does not close a loop with the peer-link, a member failure with
# miimon-style failover, and that `down` leaves nothing behind.
# Needs root; prints SKIPPED otherwise. Ends with "lab: N passed, N failed".
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
source "$LAB_DIR/lib.sh"

if [[ $(id -u) -ne 0 ]]; then
    echo "lab selftest: SKIPPED (needs root for network namespaces)"
    exit 0
fi

PASSED=0
FAILED=0
BG_PIDS=()
TMP=$(mktemp -d /tmp/dagw-selftest.XXXXXX)

cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    bash "$LAB_DIR/topology.sh" down || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() {
    local what=$1
    shift
    if "$@"; then
        printf 'ok   %s\n' "$what"
        PASSED=$((PASSED + 1))
    else
        printf 'FAIL %s\n' "$what"
        FAILED=$((FAILED + 1))
    fi
}

traffic() { ip netns exec "$NS_SRV" python3 "$LAB_DIR/traffic.py" --json "$@"; }

# Reads one field of traffic.py's JSON summary.
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

rx_packets() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_packets"; }

# A forwarding loop makes a broadcast circulate for ever: after some ARP
# broadcasts stop, the peer-link must fall quiet.
no_loop() {
    traffic --rate 20 --duration 0.5 --wait 0 --allow-none 192.0.2.99 >/dev/null
    sleep 0.5
    local a b
    a=$(rx_packets "$NS_SW2" peerlink)
    sleep 1
    b=$(rx_packets "$NS_SW2" peerlink)
    # A few stray frames (IPv6 ND, MLD) are fine; a loop is thousands.
    [[ $((b - a)) -lt 20 ]] || { echo "  peer-link saw $((b - a)) frames in 1 s idle" >&2; return 1; }
}

no_loss() {
    [[ $(field "$1" lost) -eq 0 ]] || { echo "  $(cat "$1")" >&2; return 1; }
}

failover_ok() {
    local f=$1 gap
    gap=$(field "$f" longest_gap_ms)
    echo "  failover: $(cat "$f")"
    # miimon 100 ms: the gap is the carrier poll plus re-learning; allow 1 s.
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 1000 and int(sys.argv[2]) > 0 else 1)' \
        "$gap" "$(field "$f" received)"
}

active_is() { [[ $(lab_srv_active) == "$1" ]]; }

lab_gone() {
    local ns
    for ns in "${LAB_NAMESPACES[@]}"; do
        if lab_ns_exists "$ns"; then return 1; fi
    done
}

bash "$LAB_DIR/topology.sh" down
bash "$LAB_DIR/topology.sh" up
# Stand-in for dagw's gateway: the addresses straight on the SVI.
ip -n "$NS_SW1" addr add 192.0.2.1/24 dev br10
ip -n "$NS_SW1" addr add 2001:db8:10::1/64 dev br10 nodad

traffic --duration 1 192.0.2.1 >"$TMP/v4" || true
check "server reaches 192.0.2.1 on sw1 br10 via eth1, no loss" no_loss "$TMP/v4"
traffic --duration 1 2001:db8:10::1 >"$TMP/v6" || true
check "server reaches 2001:db8:10::1 via eth1, no loss" no_loss "$TMP/v6"
check "server bond + peer-link: no loop" no_loop

# Member failure: sw1's bond1 goes down; miimon moves the server to eth2; the
# traffic then crosses sw2 and the peer-link to sw1's br10.
bash "$LAB_DIR/server-failover.sh" watch 4 100 &
BG_PIDS+=($!)
traffic --duration 3 192.0.2.1 >"$TMP/fo" &
BG_PIDS+=($!)
sleep 1
ip -n "$NS_SW1" link set bond1 down
sleep 1.5
ip -n "$NS_SW1" link set bond1 up
wait "${BG_PIDS[@]}" || true
BG_PIDS=()
check "member failure: failover to eth2 within 1 s" failover_ok "$TMP/fo"
check "server stays on eth2 after sw1 bond1 returns (no failback)" active_is eth2
check "no loop after the member returns" no_loop
bash "$LAB_DIR/server-failover.sh" to eth1
traffic --duration 1 192.0.2.1 >"$TMP/back" || true
check "manual failback to eth1, no loss" no_loss "$TMP/back"

bash "$LAB_DIR/topology.sh" down
check "topology down leaves no namespace" lab_gone

echo "lab: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
