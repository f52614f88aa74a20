#!/usr/bin/env bash
# lab/topology.sh up|down|show — build or remove the dagw test lab.
#
#   dagw-sw1 (leaf1a)                         dagw-sw2 (leaf1b)
#   br10  = SVI of VLAN 10: ports peerlink, bond1   (same in both)
#   br5010 = SVI of BD 5010 (VBDIF): port vxlan5010 (VNI 5010, UDP 4789)
#   ul    = underlay / heartbeat link  203.0.113.1/30 <-> 203.0.113.2/30
#   peerlink <------------------- veth -------------------> peerlink
#   bond1 (M-LAG member, veth)                 bond1 (M-LAG member, veth)
#      |                                          |
#     eth1 ---------- dagw-srv: bond0 ---------- eth2
#
# The kernel has no bonding driver, so the server's active-backup bond is a
# bridge `bond0` (STP off) that holds ONLY the active leg; the backup leg is
# detached (nomaster). A bridge port with STP off goes back to forwarding
# whenever its carrier returns, so "state disabled" on an enslaved backup leg
# would not hold through a member flap and would close the loop
# srv bond0 - sw1 br10 - peerlink - sw2 br10. lab/server-failover.sh moves
# the active leg (like miimon); a port that leads nowhere (bond0hold) keeps
# the bridge's carrier while it does. Server: 192.0.2.10/24, 2001:db8:10::10/64,
# default routes via the gateway 192.0.2.1 / 2001:db8:10::1 (which dagw owns).
#
# dagw creates the gateways (macvlans on br10/br5010) itself; this script only
# builds what a switch's network configuration would.
set -Eeuo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
source "$LAB_DIR/lib.sh"

# Underlay / heartbeat addresses, index 1 = sw1, 2 = sw2.
UL_ADDR=("" 203.0.113.1 203.0.113.2)

switch_up() {
    local i=$1 ns="dagw-sw$1"
    local local_ip=${UL_ADDR[$i]}

    # A switch routes between its SVIs.
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.forwarding=1
    ip -n "$ns" link set lo up

    # Underlay: heartbeat and VXLAN transport.
    ip -n "$ns" addr add "$local_ip/30" dev ul
    ip -n "$ns" link set ul up

    # VLAN 10: one bridge per VLAN (no vlan_filtering here), STP off as on an
    # M-LAG pair (the peer-link is never blocked).
    ip -n "$ns" link add br10 type bridge stp_state 0 forward_delay 0
    ip -n "$ns" link set peerlink master br10
    ip -n "$ns" link set bond1 master br10
    ip -n "$ns" link set peerlink up
    ip -n "$ns" link set bond1 up
    ip -n "$ns" link set br10 up

    # BD 5010 (VBDIF): bridge + VXLAN device over the underlay. The static
    # bypass tunnel (all-zeros FDB entry towards the peer VTEP) is dagw's job.
    ip -n "$ns" link add br5010 type bridge stp_state 0 forward_delay 0
    ip -n "$ns" link add vxlan5010 type vxlan id 5010 local "$local_ip" \
        dstport 4789 nolearning dev ul
    ip -n "$ns" link set vxlan5010 master br5010
    ip -n "$ns" link set vxlan5010 up
    ip -n "$ns" link set br5010 up
}

server_up() {
    local ns=$NS_SRV
    ip -n "$ns" link set lo up
    # A fixed MAC for the "bond", like a bond keeps its MAC across failovers.
    ip -n "$ns" link add "$SRV_BOND" address 02:00:5e:10:00:10 type bridge \
        stp_state 0 forward_delay 0
    # The legs carry no addresses of their own, like bond slaves: no IPv6
    # link-local, no ARP answers (a detached backup leg would otherwise answer
    # ARP for 192.0.2.10 with its own MAC).
    local leg
    for leg in "${SRV_PORTS[@]}"; do
        ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$leg.disable_ipv6=1"
        ip -n "$ns" link set dev "$leg" arp off
    done
    # A bond keeps its carrier while it has a slave; this bridge would lose it
    # between a failover's detach of the old leg and attach of the new one,
    # and the kernel flushes the server's ARP/ND entries on carrier loss (the
    # first resolution after the failover then waits for a 1 s retransmit).
    # A port that leads nowhere holds the carrier (no dummy driver in the lab
    # kernel: a veth pair with both ends up here, no ARP, no IPv6).
    local hold
    ip -n "$ns" link add "${SRV_BOND}hold" type veth peer name "${SRV_BOND}holdp"
    for hold in "${SRV_BOND}hold" "${SRV_BOND}holdp"; do
        ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$hold.disable_ipv6=1"
        ip -n "$ns" link set dev "$hold" arp off up
    done
    ip -n "$ns" link set dev "${SRV_BOND}hold" master "$SRV_BOND"
    # Active leg eth1 (sw1); eth2 (sw2) is the backup: up, but not enslaved.
    ip -n "$ns" link set eth1 master "$SRV_BOND"
    ip -n "$ns" link set eth1 up
    ip -n "$ns" link set eth2 up
    ip -n "$ns" link set "$SRV_BOND" up
    ip -n "$ns" addr add 192.0.2.10/24 dev "$SRV_BOND"
    ip -n "$ns" -6 addr add 2001:db8:10::10/64 dev "$SRV_BOND" nodad
    ip -n "$ns" route add default via 192.0.2.1
    ip -n "$ns" -6 route add default via 2001:db8:10::1
}

topology_up() {
    local ns
    for ns in "${LAB_NAMESPACES[@]}"; do
        if lab_ns_exists "$ns"; then
            lab_die "namespace $ns exists: run '$0 down' first"
        fi
    done
    # From here on, a failure leaves a half-built lab: remove it.
    trap 'lab_log "topology up failed; removing the partial lab"; trap - ERR; topology_down; exit 1' ERR

    for ns in "${LAB_NAMESPACES[@]}"; do
        ip netns add "$ns"
    done
    # Links between namespaces (created in place, both ends named as on a switch).
    ip -n "$NS_SW1" link add peerlink type veth peer name peerlink netns "$NS_SW2"
    ip -n "$NS_SW1" link add ul type veth peer name ul netns "$NS_SW2"
    ip -n "$NS_SW1" link add bond1 type veth peer name eth1 netns "$NS_SRV"
    ip -n "$NS_SW2" link add bond1 type veth peer name eth2 netns "$NS_SRV"

    switch_up 1
    switch_up 2
    server_up
    wait_settled
    trap - ERR
    lab_log "lab is up: namespaces ${LAB_NAMESPACES[*]}; server active leg: $(lab_srv_active)"
}

# Bridges get carrier once a port is forwarding: wait for it (bounded) so that
# whoever runs next sees a settled lab.
wait_settled() {
    local i ns dev ok
    for ((i = 0; i < 50; i++)); do
        ok=1
        for ns in "$NS_SW1" "$NS_SW2"; do
            for dev in br10 br5010 peerlink ul bond1; do
                [[ $(lab_carrier "$ns" "$dev") == 1 ]] || ok=0
            done
        done
        [[ $(lab_carrier "$NS_SRV" "$SRV_BOND") == 1 ]] || ok=0
        [[ $ok == 1 ]] && return 0
        sleep 0.1
    done
    lab_log "lab did not settle within 5 s (carrier missing)"
    return 1
}

topology_down() {
    local ns
    for ns in "${LAB_NAMESPACES[@]}"; do
        if lab_ns_exists "$ns"; then
            # Deleting the namespace deletes its devices (veth peers go too).
            ip netns del "$ns" || lab_log "could not delete namespace $ns"
        fi
    done
}

topology_show() {
    local ns
    for ns in "${LAB_NAMESPACES[@]}"; do
        if lab_ns_exists "$ns"; then
            printf '== %s\n' "$ns"
            ip -n "$ns" -br link
            ip -n "$ns" -br addr | grep -v '^lo ' || true
        else
            printf '== %s (absent)\n' "$ns"
        fi
    done
}

main() {
    case ${1:-} in
        up) lab_require_root; topology_up ;;
        down) lab_require_root; topology_down ;;
        show) topology_show ;;
        *) printf 'usage: %s up|down|show\n' "$0" >&2; exit 2 ;;
    esac
}

main "$@"
