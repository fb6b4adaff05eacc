// SPDX-License-Identifier: GPL-2.0-only
// The history of repeat offenders (bpf/escalate.h, the kernel's `offenders`
// map) across a reboot. The map is pinned, so it outlives a restart of
// connwatchd by itself; a reboot takes the pins, so connwatchd also writes the
// history to STATE_DIR/offenders.json (at stop, and a minute after it changed)
// and puts it back into a map created empty at start.
//
// The kernel's times are CLOCK_MONOTONIC, which starts again at every boot: the
// file holds wall-clock seconds, converted on the way out and back in.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/address.h"
#include "connwatch_abi.h"

namespace connwatch {

struct OffenderRecord {
    Address source;        // the key of the blocklist (an address, or a prefix's first)
    uint32_t offences = 0; // in its chain, the latest block included
    std::time_t until = 0; // wall clock: when the latest block ended or ends
    uint64_t block_seconds = 0; // the latest block's duration

    bool operator==(const OffenderRecord&) const = default;
};

// The file's text and back. parse_offenders throws std::runtime_error when the
// text is not such a file at all (not JSON, another version); a record that
// cannot be read is skipped and said in `problems`.
std::string format_offenders(const std::vector<OffenderRecord>& records);
std::vector<OffenderRecord> parse_offenders(std::string_view text,
                                            std::vector<std::string>* problems);

// What the kernel holds, as records, keeping only those still inside `window`
// at wall_now (the others cannot escalate anything any more), at most `max`
// of them, the most recent first. mono_now and wall_now are the same instant
// on the two clocks.
std::vector<OffenderRecord> offenders_from_kernel(
    const std::vector<std::pair<cw_addr, cw_offender>>& entries, std::chrono::seconds window,
    uint64_t mono_now, std::time_t wall_now, std::size_t max);
// The records as kernel entries at mono_now / wall_now, leaving out those
// already past `window`. A block that ended before this boot's clock began
// gets an until_ns "before zero" (wrapped), which the kernel compares signed.
std::vector<std::pair<cw_addr, cw_offender>> offenders_to_kernel(
    const std::vector<OffenderRecord>& records, std::chrono::seconds window, uint64_t mono_now,
    std::time_t wall_now);

// STATE_DIR/offenders.json. load: a missing file is no history; an unreadable
// one is moved aside to PATH.corrupt and said in `warning`. save: atomically
// (write_atomically); throws Error.
std::vector<OffenderRecord> load_offenders(const std::string& path, std::string* warning);
void save_offenders(const std::string& path, const std::vector<OffenderRecord>& records);

} // namespace connwatch
