// SPDX-License-Identifier: GPL-2.0-only
// The kernel's counters (enum cw_stat in bpf/connwatch_abi.h), described once:
// the name `connwatchctl status` and the tests print, and the Prometheus
// family and label each one is exported as. Status, metrics and tests all
// read this table; a counter added to the ABI fails the build until it has a
// row here.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

extern "C" {
#include "connwatch_abi.h"
}

namespace connwatch {

using Stats = std::array<uint64_t, CW_STAT_MAX>;

struct StatInfo {
    cw_stat id;
    std::string_view name;        // "drop_blocked": status and tests
    std::string_view metric;      // the family; empty: exported otherwise (see metrics.cpp)
    std::string_view label;       // the family's label name, or empty
    std::string_view label_value; // this counter's value of it
};

// Every counter, in enum order: stat_table()[i].id == i.
std::span<const StatInfo> stat_table();
std::string_view stat_name(uint32_t id); // "unknown" past the end

// The help text of each family the table names.
struct StatFamily {
    std::string_view metric;
    std::string help;
};
std::span<const StatFamily> stat_families();

} // namespace connwatch
