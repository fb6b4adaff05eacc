// SPDX-License-Identifier: GPL-2.0-only
// A fixed-window rate limit that counts what it holds back.
#pragma once

#include <chrono>
#include <cstdint>

namespace connwatch {

// Holds back events beyond `burst` per `interval`, and counts them. Only new
// connection events go through it: a SYN flood must not push scans and blocks
// out of journald's own per-unit limit (10,000 per 30 s by default), which
// would drop them without saying which.
class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;
    RateLimiter(unsigned burst, std::chrono::seconds interval)
        : burst_(burst), interval_(interval) {}
    bool allow(Clock::time_point now);
    // The count held back in an interval that has ended (then reset), else 0.
    uint64_t take_suppressed(Clock::time_point now);
    std::chrono::seconds interval() const { return interval_; }
    unsigned burst() const { return burst_; }

private:
    void roll(Clock::time_point now);
    unsigned burst_;
    std::chrono::seconds interval_;
    Clock::time_point start_{};
    unsigned used_ = 0;
    uint64_t suppressed_ = 0, ended_suppressed_ = 0;
};

} // namespace connwatch
