// SPDX-License-Identifier: GPL-2.0-only
#include <gtest/gtest.h>

#include "events/rate_limiter.h"

using connwatch::RateLimiter;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RateLimiter, AllowsTheBurstThenHoldsBackAndCounts)
{
    RateLimiter rl(3, seconds(10));
    auto t0 = RateLimiter::Clock::time_point{} + seconds(1000);
    EXPECT_TRUE(rl.allow(t0));
    EXPECT_TRUE(rl.allow(t0 + milliseconds(1)));
    EXPECT_TRUE(rl.allow(t0 + milliseconds(2)));
    EXPECT_FALSE(rl.allow(t0 + milliseconds(3)));
    EXPECT_FALSE(rl.allow(t0 + seconds(9)));
    // Nothing is reported while the interval is still running ...
    EXPECT_EQ(rl.take_suppressed(t0 + seconds(9)), 0u);
    // ... and once it has ended, exactly what was held back, once.
    EXPECT_EQ(rl.take_suppressed(t0 + seconds(10)), 2u);
    EXPECT_EQ(rl.take_suppressed(t0 + seconds(11)), 0u);
}

TEST(RateLimiter, ANewIntervalStartsWithAFullBurst)
{
    RateLimiter rl(1, seconds(10));
    auto t0 = RateLimiter::Clock::time_point{} + seconds(1000);
    EXPECT_TRUE(rl.allow(t0));
    EXPECT_FALSE(rl.allow(t0 + seconds(1)));
    EXPECT_TRUE(rl.allow(t0 + seconds(10)));
    EXPECT_FALSE(rl.allow(t0 + seconds(11)));
    // Both intervals' losses are reported once the second one ends.
    EXPECT_EQ(rl.take_suppressed(t0 + seconds(25)), 2u);
}
