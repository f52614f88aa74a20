#!/usr/bin/env bash
# lab/demo.sh — the dagw demo, end to end, on one machine (run as root):
#
#   1. builds dagw (cargo build --release);
#   2. builds the lab (lab/topology.sh): two M-LAG switches in namespaces
#      dagw-sw1 / dagw-sw2 and a dual-homed server dagw-srv;
#   3. starts one dagw per switch (lab/sw1.toml, lab/sw2.toml) and waits until
#      both report the VLANIF 10 gateway `up` (192.0.2.1, vMAC 00:00:5e:00:01:01);
#   4. shows the member hold of a first start after boot (bond1 `holding` for
#      member_up_delay = 30 s) and waits it out;
#   5. sends ICMP echo traffic from the server to the gateway (lab/traffic.py,
#      IPv4 and IPv6) while sw1's member bond1 fails and returns; the server's
#      bond (lab/server-failover.sh watch) fails over to eth2 like miimon would;
#      prints sent / received / loss and the longest gap;
#   6. restarts sw2's agent: the state marker survives, so no member hold.
#
# Everything is removed on exit, also on failure or Ctrl-C: agents, namespaces,
# temporary files. Settings (environment): DAGW=path to a prebuilt binary (skips
# the build), TRAFFIC_SECONDS (default 12), KEEP_LOGS=1 (keep the agents' logs).
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/.." && pwd)
# shellcheck source=lab/lib.sh
source "$LAB_DIR/lib.sh"

TRAFFIC_SECONDS=${TRAFFIC_SECONDS:-12}
SWITCHES=(sw1 sw2)
declare -A AGENT_PID=()
BG_PIDS=()
LOGS=""

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
info() { printf '   %s\n' "$*"; }

sock() { printf '%s/%s.sock' "$LAB_RUN" "$1"; }

# ---------------------------------------------------------------- cleanup

stop_pid() { # PID: TERM, up to 5 s, then KILL. Only processes this demo started.
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Agents left running by an earlier demo that was killed hard: their pid files.
stop_stale_agents() {
    local f pid
    for f in "$LAB_RUN"/*.pid; do
        [[ -e $f ]] || continue
        pid=$(<"$f")
        if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "dagw.* run -c .*lab/sw"; then
            info "stopping agent $pid left by an earlier run"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
}

cleanup() {
    local rc=$? sw pid
    trap - EXIT INT TERM
    set +e
    for pid in "${BG_PIDS[@]}"; do stop_pid "$pid"; done
    for sw in "${!AGENT_PID[@]}"; do stop_pid "${AGENT_PID[$sw]}"; done
    if [[ $rc -ne 0 && -n $LOGS ]]; then
        for sw in "${SWITCHES[@]}"; do
            if [[ -s $LOGS/$sw.log ]]; then
                printf '\n-- last lines of the %s agent log:\n' "$sw"
                tail -n 20 "$LOGS/$sw.log"
            fi
        done
    fi
    bash "$LAB_DIR/topology.sh" down
    rm -rf "$LAB_RUN"
    if [[ -n $LOGS ]]; then
        if [[ ${KEEP_LOGS:-0} == 1 ]]; then
            printf 'logs kept in %s\n' "$LOGS"
        else
            rm -rf "$LOGS"
        fi
    fi
    if [[ $rc -eq 0 ]]; then
        printf '\ndemo done; lab removed.\n'
    else
        printf '\ndemo FAILED (exit %s); lab removed.\n' "$rc" >&2
    fi
    exit "$rc"
}

# ---------------------------------------------------------------- status

# status_q SWITCH EXPR: evaluates a Python expression over the parsed
# `dagw status --json` (as `s`); prints "unreachable" if the daemon does not answer.
status_q() {
    local json
    if ! json=$("$DAGW" -s "$(sock "$1")" status --json 2>/dev/null); then
        echo unreachable
        return 0
    fi
    python3 -c '
import json, sys
try:
    s = json.loads(sys.argv[2])
    print(eval(sys.argv[1], {}, {"s": s}))
except Exception as e:
    print("bad-json:", e)
' "$2" "$json"
}

GW_STATE='next((g["state"] for g in s["gateways"] if g["name"] == "vlanif10"), "absent")'
MEMBER_STATE='next((m["state"] for m in s["members"] if m["name"] == "bond1"), "absent")'
MEMBER_TEXT='next((m["state"] + (" (" + m["reason"] + ")" if m.get("reason") else "") + (", %.1f s left" % (m["hold_remaining_ms"] / 1000) if m.get("hold_remaining_ms") else "") for m in s["members"] if m["name"] == "bond1"), "absent")'

agent_alive() {
    kill -0 "${AGENT_PID[$1]}" 2>/dev/null || lab_die "the $1 agent exited (see its log below)"
}

# wait_for SECONDS WHAT EXPR VALUE: poll every 200 ms until EXPR is VALUE on
# every switch; print progress every 5 s. Fails after SECONDS.
wait_for() {
    local seconds=$1 what=$2 expr=$3 want=$4 i sw v all line
    for ((i = 0; i <= seconds * 5; i++)); do
        all=1
        line=""
        for sw in "${SWITCHES[@]}"; do
            agent_alive "$sw"
            v=$(status_q "$sw" "$expr")
            [[ $v == "$want" ]] || all=0
            line+=" $sw: $v;"
        done
        if [[ $all == 1 ]]; then
            info "$what:$line"
            return 0
        fi
        if ((i % 25 == 0)); then
            info "waiting for $what ($((i / 5)) s):$line"
        fi
        sleep 0.2
    done
    lab_die "$what: not reached within $seconds s:$line"
}

# The server's ARP/ND entries on both switches' gateway device (gw10, the
# macvlan of vlanif10): after a failover the switch the server
# left must still hold them usable (pinned from the peer, extern_learn NOARP).
show_server_entries() {
    local sw ns ip line bad=0
    for sw in sw1 sw2; do
        ns=$NS_SW1
        [[ $sw == sw2 ]] && ns=$NS_SW2
        for ip in 192.0.2.10 2001:db8:10::10; do
            line=$(ip -n "$ns" neigh show dev gw10 to "$ip" nud all)
            info "$sw: ${line:-$ip (no entry)}"
            if [[ -z $line || $line == *FAILED* || $line == *INCOMPLETE* || $line != *lladdr* ]]; then
                bad=1
            fi
        done
    done
    [[ $bad -eq 0 ]] || lab_die "a switch does not hold a usable entry for the server"
}

show_status() {
    local sw
    for sw in "${SWITCHES[@]}"; do
        printf -- '-- dagw status on %s:\n' "$sw"
        "$DAGW" -s "$(sock "$sw")" status || true
    done
}

start_agent() {
    local sw=$1
    ip netns exec "dagw-$sw" "$DAGW" run -c "lab/$sw.toml" >>"$LOGS/$sw.log" 2>&1 &
    AGENT_PID[$sw]=$!
    echo "${AGENT_PID[$sw]}" >"$LAB_RUN/$sw.pid"
    info "started dagw on $sw (pid ${AGENT_PID[$sw]}, log $LOGS/$sw.log)"
}

# ---------------------------------------------------------------- main

main() {
    lab_require_root
    command -v python3 >/dev/null || lab_die "python3 is needed (traffic generator)"
    cd "$REPO"

    step "1. build"
    if [[ -n ${DAGW:-} ]]; then
        info "using DAGW=$DAGW"
    elif command -v cargo >/dev/null; then
        cargo build --release
        DAGW="${CARGO_TARGET_DIR:-$REPO/target}/release/dagw"
    else
        lab_die "cargo not found (under sudo, PATH may lack ~/.cargo/bin): build first, then run with DAGW=target/release/dagw"
    fi
    [[ -x $DAGW ]] || lab_die "no dagw binary at $DAGW"
    DAGW=$(cd "$(dirname "$DAGW")" && pwd)/$(basename "$DAGW")
    info "$("$DAGW" --version)"

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    step "2. lab topology"
    stop_stale_agents
    bash "$LAB_DIR/topology.sh" down
    rm -rf "$LAB_RUN"
    mkdir -p "$LAB_RUN"
    LOGS=$(mktemp -d /tmp/dagw-demo.XXXXXX)
    bash "$LAB_DIR/topology.sh" up
    # the peers' shared heartbeat key (kept between demos; never committed)
    if [[ ! -s lab/peer.key ]]; then
        (umask 077 && head -c 32 /dev/urandom | base64 >lab/peer.key)
    fi
    chmod 600 lab/peer.key
    for sw in "${SWITCHES[@]}"; do
        "$DAGW" check -c "lab/$sw.toml"
    done

    step "3. start the agents (first start after boot: no state marker)"
    for sw in "${SWITCHES[@]}"; do start_agent "$sw"; done
    wait_for 30 "gateway vlanif10 up" "$GW_STATE" up
    wait_for 15 "peer heartbeat up and configs consistent" "s['peer']['state'] + '/' + ('consistent' if s['peer'].get('consistent') else 'MISMATCH')" up/consistent
    info "roles: sw1 $(status_q sw1 "s['role']"), sw2 $(status_q sw2 "s['role']")"
    show_status

    step "4. member hold (member_up_delay = 30 s; the product default is 240 s)"
    for sw in "${SWITCHES[@]}"; do
        info "$sw bond1: $(status_q "$sw" "$MEMBER_TEXT")"
    done
    info "server legs while the members are held: eth1 carrier $(lab_carrier "$NS_SRV" eth1), eth2 carrier $(lab_carrier "$NS_SRV" eth2)"
    info "(ARP/ND entries sync while the members are down; then the server gets its links)"
    wait_for 60 "member bond1 up" "$MEMBER_STATE" up
    # The server's bond notices its links (miimon) and picks an active leg.
    bash "$LAB_DIR/server-failover.sh" watch 2 100
    info "server active leg: $(lab_srv_active)"
    show_status

    step "5. traffic while sw1's member fails (${TRAFFIC_SECONDS} s, 200/s IPv4 + 100/s IPv6)"
    bash "$LAB_DIR/server-failover.sh" watch $((TRAFFIC_SECONDS + 3)) 100 &
    BG_PIDS+=($!)
    ip netns exec "$NS_SRV" python3 "$LAB_DIR/traffic.py" --rate 200 \
        --duration "$TRAFFIC_SECONDS" 192.0.2.1 >"$LOGS/traffic4" 2>&1 &
    local t4=$!
    BG_PIDS+=("$t4")
    ip netns exec "$NS_SRV" python3 "$LAB_DIR/traffic.py" --rate 100 \
        --duration "$TRAFFIC_SECONDS" 2001:db8:10::1 >"$LOGS/traffic6" 2>&1 &
    local t6=$!
    BG_PIDS+=("$t6")
    local third=$((TRAFFIC_SECONDS / 3))
    sleep "$third"
    info "t=${third}s: sw1 bond1 down (member failure)"
    ip -n "$NS_SW1" link set bond1 down
    sleep "$third"
    info "t=$((2 * third))s: sw1 bond1 back up (server stays on eth2: no failback)"
    ip -n "$NS_SW1" link set bond1 up
    local rc4=0 rc6=0
    wait "$t4" || rc4=$?
    wait "$t6" || rc6=$?
    info "server active leg now: $(lab_srv_active)"
    info "IPv4 $(cat "$LOGS/traffic4")"
    info "IPv6 $(cat "$LOGS/traffic6")"
    [[ $rc4 -eq 0 && $rc6 -eq 0 ]] || lab_die "no replies from the gateway"
    show_status
    info "the server's ARP/ND entries on both switches (the server is behind sw2 now):"
    show_server_entries

    step "6. restart sw2's agent (state marker kept: no member hold this time)"
    stop_pid "${AGENT_PID[sw2]}"
    start_agent sw2
    SWITCHES=(sw2)
    wait_for 30 "gateway vlanif10 up" "$GW_STATE" up
    SWITCHES=(sw1 sw2)
    info "sw2 bond1 after the restart: $(status_q sw2 "$MEMBER_TEXT")"
}

main "$@"
