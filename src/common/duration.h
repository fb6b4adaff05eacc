// SPDX-License-Identifier: GPL-2.0-only
// Durations as operators write them: "90s", "10m", "1h", "2d", "0", "45".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace connwatch {

// A bare number is seconds. Units: s, m, h, d. "0" is zero (for a block
// duration: until removed). On failure returns nullopt and says why in error.
std::optional<std::chrono::seconds> parse_duration(std::string_view text,
                                                   std::string* error = nullptr);

// The shortest exact form: 3600 s -> "1h", 90 s -> "90s", 0 -> "0".
std::string format_duration(std::chrono::seconds d);

} // namespace connwatch
