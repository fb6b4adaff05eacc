// SPDX-License-Identifier: GPL-2.0-only
// What the kernel reports, as typed events: the one place a struct cw_event
// from the ring buffer is taken apart (clock conversion, interface names, the
// port list's bound).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/address.h"

namespace connwatch {

struct NewConnection {
    std::time_t when;
    Address src, dst;
    uint16_t sport, dport;
    std::string ifname;
};

struct PortScan {
    std::time_t when;
    Address src, dst;
    std::vector<uint16_t> ports;
    std::string ifname;
    uint8_t action;      // enum cw_scan_action
    std::time_t expires; // CW_ACT_BLOCKED: wall-clock deadline, 0 = never
    // CW_ACT_BLOCKED with escalation on: which offence of the source this
    // block is (1 = first of its chain); 0 = not counted (escalation off).
    uint32_t offence = 0;
    // CW_ACT_BLOCKED: how long the block lasts, 0 = until removed.
    uint64_t duration_ns = 0;
    // Set when the source was counted as its prefix (ipv4-prefix,
    // ipv6-prefix: 2001:db8:1:2::/64), and when the block covers it
    // (CW_ACT_BLOCKED); unset: src alone, as before.
    std::optional<Cidr> scanner_prefix;
    std::optional<Cidr> blocked_prefix;
    Cidr scanner() const { return scanner_prefix ? *scanner_prefix : Cidr::host(src); }
    Cidr blocked() const { return blocked_prefix ? *blocked_prefix : Cidr::host(src); }
    // "2001:db8:1:2::/64" for a prefix, else src as before ("192.0.2.1").
    std::string scanner_str() const { return scanner_prefix ? scanner_prefix->str() : src.str(); }
    std::string blocked_str() const { return blocked_prefix ? blocked_prefix->str() : src.str(); }
    // CLOCK_MONOTONIC when the packet was seen (the kernel's clock, for the
    // deadline of a block connwatchd makes in its place).
    uint64_t ts_ns = 0;
    // The kernel refused the block (CW_ACT_BLOCKLIST_FULL) and connwatchd
    // made it in place of this automatic block, the oldest (action then
    // CW_ACT_BLOCKED; docs/SECURITY.md, "A full blocklist").
    std::optional<Address> replaced = std::nullopt;
};

// A stealth probe (FIN, NULL, Xmas, SYN+FIN, SYN+RST; docs/PROBES.md): a port
// counted in the source's scan state, not a connection attempt.
struct Probe {
    std::time_t when;
    Address src, dst;
    uint16_t sport, dport;
    uint8_t tcp_flags; // byte 13 of the TCP header, as format_tcp_flags() reads it
    std::string ifname;
    bool tiny_fragment = false; // a first fragment too short for the TCP header
};

// An event of a type this build does not know (a newer object): skipped.
struct UnknownEvent {
    uint8_t type;
};

using Event = std::variant<NewConnection, PortScan, Probe, UnknownEvent>;

Event decode_event(const cw_event& ev);

// The name of an interface, or "ifindexN" when it has gone (for metrics'
// labels and journald's INTERFACE= alike).
std::string interface_name(uint32_t ifindex);

} // namespace connwatch
