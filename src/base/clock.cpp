// SPDX-License-Identifier: GPL-2.0-only
#include "base/clock.h"

namespace connwatch {

uint64_t monotonic_now_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

std::time_t wall_time_of(uint64_t monotonic_ns)
{
    // Whole nanoseconds first, seconds last: rounding the offset alone would be
    // off by one for instants in the future (block deadlines).
    timespec rt{};
    clock_gettime(CLOCK_REALTIME, &rt);
    int64_t rt_ns = static_cast<int64_t>(rt.tv_sec) * static_cast<int64_t>(kNsPerSec) + rt.tv_nsec;
    int64_t wall_ns = rt_ns + static_cast<int64_t>(monotonic_ns - monotonic_now_ns());
    return static_cast<std::time_t>(wall_ns / static_cast<int64_t>(kNsPerSec));
}

uint64_t deadline_ns(uint64_t from_ns, std::chrono::seconds d)
{
    if (d.count() <= 0)
        return 0;
    return from_ns + static_cast<uint64_t>(d.count()) * kNsPerSec;
}

uint64_t monotonic_deadline_of(std::time_t wall, std::time_t now_wall, uint64_t now_ns)
{
    if (wall == 0)
        return 0;
    if (wall <= now_wall)
        return now_ns;
    return now_ns + static_cast<uint64_t>(wall - now_wall) * kNsPerSec;
}

} // namespace connwatch
