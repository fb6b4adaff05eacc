#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Shared by bench/run.sh and bench/syn_rows.sh (sourced, not run).

# bench_veth_pair NS_TX IF_TX ADDR_TX NS_RX IF_RX ADDR_RX
#
# Two network namespaces joined by a veth pair created inside them (never an
# interface in the root namespace), each end with its address in a /24 and up,
# IPv6 off in both (no router solicitations, DAD or MLD on the link: only the
# benchmark's frames), and each side's neighbour entry for the other static:
# the receiver's stack answers some frames (a RST to a SYN for a closed port),
# and the sender's XDP sink would drop the ARP reply it needs, so those answers
# would wait in the neighbour queue and never be sent. Sets mac_tx and mac_rx,
# the two ends' MAC addresses. The caller removes the namespaces (deleting one
# deletes the pair).
bench_veth_pair() {
    local ns_tx=$1 if_tx=$2 addr_tx=$3 ns_rx=$4 if_rx=$5 addr_rx=$6 ns
    ip netns add "$ns_tx"
    ip netns add "$ns_rx"
    for ns in "$ns_tx" "$ns_rx"; do
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    done
    ip -n "$ns_tx" link add "$if_tx" type veth peer name "$if_rx" netns "$ns_rx"
    ip -n "$ns_tx" addr add "$addr_tx/24" dev "$if_tx"
    ip -n "$ns_rx" addr add "$addr_rx/24" dev "$if_rx"
    ip -n "$ns_tx" link set "$if_tx" up
    ip -n "$ns_rx" link set "$if_rx" up
    mac_tx=$(ip -n "$ns_tx" -br link show dev "$if_tx" | awk '{print $3}')
    mac_rx=$(ip -n "$ns_rx" -br link show dev "$if_rx" | awk '{print $3}')
    ip -n "$ns_rx" neigh replace "$addr_tx" lladdr "$mac_tx" dev "$if_rx" nud permanent
    ip -n "$ns_tx" neigh replace "$addr_rx" lladdr "$mac_rx" dev "$if_tx" nud permanent
}
