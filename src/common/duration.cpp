// SPDX-License-Identifier: GPL-2.0-only
#include "common/duration.h"

#include <charconv>
#include <cstdint>
#include <limits>

namespace connwatch {

std::optional<std::chrono::seconds> parse_duration(std::string_view text, std::string* error)
{
    auto fail = [&]() -> std::optional<std::chrono::seconds> {
        if (error)
            *error = "'" + std::string(text) +
                     "' is not a duration (a number with an optional unit s, m, h or d, "
                     "e.g. 90s, 10m, 1h, or 0)";
        return std::nullopt;
    };
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || end == text.data())
        return fail();
    std::string_view unit(end, text.data() + text.size() - end);
    uint64_t scale = 0;
    if (unit.empty() || unit == "s")
        scale = 1;
    else if (unit == "m")
        scale = 60;
    else if (unit == "h")
        scale = 3600;
    else if (unit == "d")
        scale = 86400;
    else
        return fail();
    // Cap at ten years: anything longer is a typo, and the kernel keeps
    // deadlines in nanoseconds (u64), which this keeps far from overflow.
    constexpr uint64_t kMax = 10ull * 366 * 86400;
    if (n > kMax / scale) {
        if (error)
            *error = "'" + std::string(text) + "' is too long (at most 3660d)";
        return std::nullopt;
    }
    return std::chrono::seconds(n * scale);
}

std::string format_duration(std::chrono::seconds d)
{
    auto s = static_cast<uint64_t>(d.count());
    if (s == 0)
        return "0";
    if (s % 86400 == 0)
        return std::to_string(s / 86400) + "d";
    if (s % 3600 == 0)
        return std::to_string(s / 3600) + "h";
    if (s % 60 == 0)
        return std::to_string(s / 60) + "m";
    return std::to_string(s) + "s";
}

} // namespace connwatch
