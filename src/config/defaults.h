// SPDX-License-Identifier: GPL-2.0-only
// PROVISIONAL (replaced by the config branch): the defaults connwatch uses.
#pragma once

#include <chrono>

namespace connwatch {

// The kernel's SYN-retransmission dedup interval (cw_config.dedup_ns).
inline constexpr std::chrono::seconds kDefaultDedupInterval{5};

} // namespace connwatch
