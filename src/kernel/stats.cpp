// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/stats.h"

#include <vector>

#include "config/defaults.h"

namespace connwatch {

namespace {

constexpr std::string_view kDropped = "connwatch_packets_dropped_total";
constexpr std::string_view kPassed = "connwatch_packets_passed_total";
constexpr std::string_view kSkipped = "connwatch_scan_blocks_skipped_total";

// CW_STAT_SYN is exported per interface (connwatch_new_connections_total),
// from the if_syn map, not from here.
constexpr StatInfo kTable[] = {
    {CW_STAT_PASS_NON_IP, "pass_non_ip", kPassed, "reason", "non_ip"},
    {CW_STAT_PASS_NON_TCP, "pass_non_tcp", kPassed, "reason", "non_tcp"},
    {CW_STAT_PASS_UNPARSED, "pass_unparsed", kPassed, "reason", "unparsed"},
    {CW_STAT_PASS_FRAGMENT, "pass_fragment", kPassed, "reason", "fragment"},
    {CW_STAT_PASS_TCP_OTHER, "pass_tcp_other", kPassed, "reason", "tcp_other"},
    {CW_STAT_PASS_SYN, "pass_syn", kPassed, "reason", "syn"},
    {CW_STAT_DROP_BLOCKED, "drop_blocked", kDropped, "reason", "blocklist"},
    {CW_STAT_DROP_BLOCKED_CIDR, "drop_blocked_cidr", kDropped, "reason", "blocklist_cidr"},
    {CW_STAT_SYN, "syn", "", "", ""},
    {CW_STAT_SYN_RETRANSMIT, "syn_retransmit", "connwatch_syn_retransmits_total", "", ""},
    {CW_STAT_SCAN, "scan", "connwatch_port_scans_total", "", ""},
    {CW_STAT_BLOCK_ADDED, "block_added", "connwatch_blocks_added_total", "origin", "scan"},
    {CW_STAT_BLOCK_FULL, "block_full", kSkipped, "reason", "blocklist_full"},
    {CW_STAT_BLOCK_ALLOWED, "block_allowed", kSkipped, "reason", "allowlisted"},
    {CW_STAT_BLOCK_MONITOR, "block_monitor", kSkipped, "reason", "monitor_only"},
    {CW_STAT_EVENTS_LOST, "events_lost", "connwatch_events_lost_total", "", ""},
    {CW_STAT_PASS_PROBE, "pass_probe", kPassed, "reason", "probe"},
    {CW_STAT_PROBE, "probe", "connwatch_probes_total", "", ""},
    {CW_STAT_PROBE_RETRANSMIT, "probe_retransmit", "connwatch_probe_retransmits_total", "", ""},
    {CW_STAT_PASS_MARTIAN, "pass_martian", kPassed, "reason", "martian"},
    {CW_STAT_DROP_TINY_FRAGMENT, "drop_tiny_fragment", kDropped, "reason", "tiny_fragment"},
    {CW_STAT_PASS_TINY_FRAGMENT, "pass_tiny_fragment", kPassed, "reason", "tiny_fragment"},
    {CW_STAT_BLOCK_RATE_LIMITED, "block_rate_limited", kSkipped, "reason", "rate_limited"},
    {CW_STAT_BLOCK_SPOOFED, "block_spoofed", kSkipped, "reason", "spoofed"},
    {CW_STAT_DROP_BLOCKED_PREFIX, "drop_blocked_prefix", kDropped, "reason", "blocklist_prefix"},
    {CW_STAT_BLOCK_PREFIX_ADDED, "block_prefix_added", "connwatch_prefix_blocks_added_total", "",
     ""},
};
static_assert(std::size(kTable) == CW_STAT_MAX, "a counter of enum cw_stat has no row here");

constexpr bool in_enum_order()
{
    for (size_t i = 0; i < std::size(kTable); i++)
        if (kTable[i].id != static_cast<cw_stat>(i))
            return false;
    return true;
}
static_assert(in_enum_order(), "rows must follow enum cw_stat");

} // namespace

std::span<const StatInfo> stat_table()
{
    return kTable;
}

std::string_view stat_name(uint32_t id)
{
    return id < std::size(kTable) ? kTable[id].name : "unknown";
}

std::span<const StatFamily> stat_families()
{
    // Built once: the retransmission help states the interval the kernel uses.
    static const std::vector<StatFamily> families = {
        {kPassed, "Packets passed to the kernel's stack, by reason; unparsed counts truncated "
                  "or malformed headers, martian SYNs from sources no packet may carry"},
        {kDropped, "Packets dropped in XDP, by reason"},
        {"connwatch_syn_retransmits_total",
         "SYNs of a connection attempt already reported within " +
             std::to_string(defaults::kDedupInterval.count()) + " s, not reported again"},
        {"connwatch_port_scans_total", "Port scans detected"},
        {"connwatch_blocks_added_total", "Blocks added, by origin"},
        {kSkipped, "Detected scanners not blocked, by reason"},
        {"connwatch_events_lost_total",
         "Events the kernel could not hand to connwatchd because the ring buffer was full"},
        {"connwatch_probes_total",
         "Stealth probes (TCP without ACK that no stack sends unasked: FIN, NULL, Xmas, "
         "SYN+FIN, SYN+RST) counted as ports; retransmissions not included"},
        {"connwatch_probe_retransmits_total",
         "Probes of a 4-tuple already probed within " +
             std::to_string(defaults::kDedupInterval.count()) + " s, not counted again"},
        {"connwatch_prefix_blocks_added_total",
         "Automatic blocks of a whole source prefix (ipv4-prefix, ipv6-prefix); also counted "
         "in connwatch_blocks_added_total"},
    };
    return families;
}

} // namespace connwatch
