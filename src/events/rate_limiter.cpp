// SPDX-License-Identifier: GPL-2.0-only
#include "events/rate_limiter.h"

namespace connwatch {

void RateLimiter::roll(Clock::time_point now)
{
    if (now - start_ >= interval_) {
        ended_suppressed_ += suppressed_;
        suppressed_ = 0;
        used_ = 0;
        start_ = now;
    }
}

bool RateLimiter::allow(Clock::time_point now)
{
    roll(now);
    if (used_ < burst_) {
        used_++;
        return true;
    }
    suppressed_++;
    return false;
}

uint64_t RateLimiter::take_suppressed(Clock::time_point now)
{
    roll(now);
    uint64_t n = ended_suppressed_;
    ended_suppressed_ = 0;
    return n;
}

} // namespace connwatch
