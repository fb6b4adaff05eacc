// SPDX-License-Identifier: GPL-2.0-only
// Compile-time checks that bpf/connwatch_abi.h has the layout both sides rely on:
// the BPF object (clang -target bpf) and this C++ code (g++, x86-64) compile the
// same header, and a field whose size or offset differed between them would
// corrupt every event and map value silently. Any change to the header that
// moves a field fails the build here instead.
#include <cstddef>

extern "C" {
#include "connwatch_abi.h"
}

static_assert(sizeof(cw_addr) == 16);
static_assert(sizeof(cw_lpm_key) == 20 && offsetof(cw_lpm_key, addr) == 4,
              "LPM trie keys: u32 prefix length, then the data, no padding");
static_assert(sizeof(cw_block) == 24);
static_assert(sizeof(cw_scan_state) == 8 + 8 * CW_SCAN_SLOTS);
static_assert(sizeof(cw_flow_key) == 36);
static_assert(sizeof(cw_config) == 112);
static_assert(offsetof(cw_config, escalation_window_ns) == 56,
              "config fields are appended: 0 in them is the behaviour before them");
static_assert(offsetof(cw_config, rp_filter) == 80, "rp_filter appended");
static_assert(offsetof(cw_config, exact_empty_gen) == 96, "exact_empty_gen appended");
static_assert(offsetof(cw_config, verdict_gen) == 104, "verdict_gen appended");
static_assert(sizeof(cw_verdict_slot) == 32, "two slots to a cache line");
static_assert(CW_STAT_MAX <= 256, "a verdict slot's tag keeps the drop counter in 8 bits");
static_assert(sizeof(cw_offender) == 24);
static_assert(sizeof(cw_event) == 136, "one event is 136 bytes in the ring buffer");
static_assert(offsetof(cw_event, offence) == 128,
              "offence was appended: a 128-byte event of an older program lacks it");
static_assert(sizeof(cw_route) == 4 * CW_ROUTE_NEXTHOPS + 4);
static_assert(CW_ACT_SPOOFED == 6);
static_assert(offsetof(cw_config, ipv4_prefix) == 88 &&
                  offsetof(cw_config, ipv6_prefix) == 89,
              "ipv4_prefix and ipv6_prefix were appended after rp_filter");
static_assert(offsetof(cw_block, prefix_len) == 18, "prefix_len took a byte of the padding");
static_assert(offsetof(cw_event, ports) == 64);
static_assert(CW_SCAN_SLOTS == 32 && (CW_SCAN_SLOTS & (CW_SCAN_SLOTS - 1)) == 0,
              "the program masks slot indices with CW_SCAN_SLOTS - 1");
static_assert(offsetof(cw_event, tcp_flags) == 59, "tcp_flags took one byte of the padding");
static_assert(offsetof(cw_event, tiny_fragment) == 60, "tiny_fragment took another");
static_assert(offsetof(cw_event, prefix_len) == 61 && offsetof(cw_event, block_prefix_len) == 62,
              "prefix_len and block_prefix_len took two more");
static_assert(CW_EV_NEW_CONN == 1 && CW_EV_SCAN == 2 && CW_EV_PROBE == 3,
              "event types are append-only");
static_assert(CW_STAT_EVENTS_LOST == 15 && CW_STAT_PASS_PROBE == 16 && CW_STAT_PROBE == 17 &&
                  CW_STAT_PROBE_RETRANSMIT == 18 &&
                  CW_STAT_PASS_MARTIAN == 19 && CW_STAT_DROP_TINY_FRAGMENT == 20 &&
                  CW_STAT_PASS_TINY_FRAGMENT == 21 && CW_STAT_BLOCK_RATE_LIMITED == 22 &&
                  CW_STAT_BLOCK_SPOOFED == 23 && CW_STAT_DROP_BLOCKED_PREFIX == 24 &&
                  CW_STAT_BLOCK_PREFIX_ADDED == 25 && CW_STAT_MAX == 26,
              "stats are append-only: renumbering breaks readers");
