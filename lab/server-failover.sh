#!/usr/bin/env bash
# lab/server-failover.sh — the lab server's active-backup "bond" (no bonding
# driver here): show it, move the active leg, or watch the legs like miimon.
#
#   server-failover.sh status          active leg and both legs' carrier
#   server-failover.sh to eth2         make eth2 the active leg
#   server-failover.sh flip            make the other leg active
#   server-failover.sh watch [SECONDS] [INTERVAL_MS]
#       miimon: every INTERVAL_MS (default 100) for SECONDS (default 60), if the
#       active leg lost carrier and the other has it, fail over (no failback,
#       as in active-backup without `primary`). Prints each failover.
#
# The bond is a bridge `bond0` in dagw-srv holding only the active leg; the
# backup leg stays up but detached, so it never forwards (see lab/topology.sh).
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
source "$LAB_DIR/lib.sh"

other_leg() {
    case $1 in
        eth1) echo eth2 ;;
        eth2) echo eth1 ;;
        *) lab_die "unknown leg '$1' (eth1|eth2)" ;;
    esac
}

# Detach the old leg first, then attach the new one: never two legs at once.
activate() {
    local new=$1 old
    old=$(other_leg "$new")
    if ip -n "$NS_SRV" -o link show dev "$old" | grep -q " master $SRV_BOND "; then
        ip -n "$NS_SRV" link set dev "$old" nomaster
    fi
    if ! ip -n "$NS_SRV" -o link show dev "$new" | grep -q " master $SRV_BOND "; then
        ip -n "$NS_SRV" link set dev "$new" master "$SRV_BOND"
    fi
}

status() {
    local p
    printf 'active: %s\n' "$(lab_srv_active)"
    for p in "${SRV_PORTS[@]}"; do
        printf '%s carrier %s\n' "$p" "$(lab_carrier "$NS_SRV" "$p")"
    done
}

watch_legs() {
    local seconds=${1:-60} interval_ms=${2:-100}
    [[ $seconds =~ ^[0-9]+$ && $interval_ms =~ ^[0-9]+$ && $interval_ms -gt 0 ]] ||
        lab_die "watch: SECONDS and INTERVAL_MS must be whole numbers"
    local rounds=$((seconds * 1000 / interval_ms)) i active other sleep_s
    sleep_s=$(printf '%d.%03d' $((interval_ms / 1000)) $((interval_ms % 1000)))
    for ((i = 0; i < rounds; i++)); do
        active=$(lab_srv_active)
        if [[ -z $active ]]; then
            # No leg attached: take the first with carrier.
            for other in "${SRV_PORTS[@]}"; do
                if [[ $(lab_carrier "$NS_SRV" "$other") == 1 ]]; then
                    activate "$other"
                    lab_log "miimon: $other up, now active"
                    break
                fi
            done
        elif [[ $(lab_carrier "$NS_SRV" "$active") != 1 ]]; then
            other=$(other_leg "$active")
            if [[ $(lab_carrier "$NS_SRV" "$other") == 1 ]]; then
                activate "$other"
                lab_log "miimon: $active lost carrier, failed over to $other"
            fi
        fi
        sleep "$sleep_s"
    done
}

main() {
    lab_require_root
    lab_ns_exists "$NS_SRV" || lab_die "no lab (run lab/topology.sh up)"
    case ${1:-} in
        status) status ;;
        to) [[ $# -eq 2 ]] || lab_die "usage: $0 to eth1|eth2"; other_leg "$2" >/dev/null; activate "$2" ;;
        flip)
            local a
            a=$(lab_srv_active)
            activate "$(other_leg "${a:-eth2}")"
            ;;
        watch) shift; watch_legs "$@" ;;
        *) printf 'usage: %s status | to eth1|eth2 | flip | watch [SECONDS] [INTERVAL_MS]\n' "$0" >&2; exit 2 ;;
    esac
}

main "$@"
