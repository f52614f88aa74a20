# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this
# lab/lib.sh — names and helpers shared by the lab scripts (sourced, not run).
#
# The lab: two "switches" (network namespaces dagw-sw1, dagw-sw2) that form an
# M-LAG pair, and a dual-homed server (dagw-srv). See lab/topology.sh.

NS_SW1=dagw-sw1
NS_SW2=dagw-sw2
NS_SRV=dagw-srv
LAB_NAMESPACES=("$NS_SW1" "$NS_SW2" "$NS_SRV")

# Runtime directory of the lab agents (sockets, state markers). Lives on /run
# (tmpfs), like the real /run/dagw.
LAB_RUN=/run/dagw-lab

# The server's emulated active-backup bond and its two legs.
SRV_BOND=bond0
SRV_PORTS=(eth1 eth2)

lab_log() { printf '[lab] %s\n' "$*" >&2; }
lab_die() { printf '[lab] error: %s\n' "$*" >&2; exit 1; }

lab_require_root() {
    [[ $(id -u) -eq 0 ]] || lab_die "must run as root (network namespaces)"
}

lab_ns_exists() { ip netns list | awk '{print $1}' | grep -qx -- "$1"; }

# Carrier of DEV in namespace NS: prints 1 or 0 (0 also when absent/admin down).
lab_carrier() {
    local ns=$1 dev=$2 c
    c=$(ip netns exec "$ns" cat "/sys/class/net/$dev/carrier" 2>/dev/null) || c=0
    printf '%s\n' "${c:-0}"
}

# The server port currently enslaved to the bond (the active one), or nothing.
lab_srv_active() {
    local p
    for p in "${SRV_PORTS[@]}"; do
        if ip -n "$NS_SRV" -o link show dev "$p" 2>/dev/null | grep -q " master $SRV_BOND "; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    return 0
}
