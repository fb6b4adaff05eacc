// SPDX-License-Identifier: GPL-2.0-only
// The words of the blocklist's vocabulary, as enums: where a block came from,
// why one was removed, where an allow entry came from. Their texts are public
// interface (state.json, the control protocol, journald's REASON=, metric
// labels): never change one.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

extern "C" {
#include "connwatch_abi.h"
}

namespace connwatch {

// The values are the kernel's enum cw_origin, so a map value converts as it is.
enum class BlockOrigin : uint8_t {
    Scan = CW_ORIGIN_SCAN,
    Manual = CW_ORIGIN_MANUAL,
    Crowdsec = CW_ORIGIN_CROWDSEC, // a CrowdSec LAPI decision (docs/CROWDSEC.md)
};

// Withdrawn: the CrowdSec LAPI deleted the decision (or no longer had it when
// connwatchd pulled all of them at start).
// Replaced: an automatic block removed to make room for a new scanner's when
// the blocklist was full (BlockTable::replace_oldest_scan_block). Appended:
// the texts are metric labels.
enum class RemovalReason : uint8_t { Expired, Unblocked, Allowlisted, Flushed, Withdrawn, Replaced };

enum class AllowSource : uint8_t { Configuration, Connwatchctl, OwnAddress };

// "scan", "manual", "crowdsec"
std::string_view to_string(BlockOrigin o);
std::optional<BlockOrigin> block_origin_from(std::string_view text);
// A kernel map value's origin byte; anything unknown is treated as a scan block
// (the kernel is the only other writer).
BlockOrigin block_origin_of(uint8_t cw_origin);

// "expired", "unblocked", "allowlisted", "flushed", "withdrawn", "replaced"
std::string_view to_string(RemovalReason r);
inline constexpr RemovalReason kRemovalReasons[] = {
    RemovalReason::Expired, RemovalReason::Unblocked, RemovalReason::Allowlisted,
    RemovalReason::Flushed, RemovalReason::Withdrawn, RemovalReason::Replaced};

// "configuration", "connwatchctl", "own-address"
std::string_view to_string(AllowSource s);
std::optional<AllowSource> allow_source_from(std::string_view text);

} // namespace connwatch
