// SPDX-License-Identifier: GPL-2.0-only
#include <gtest/gtest.h>

#include "common/duration.h"

using connwatch::format_duration;
using connwatch::parse_duration;
using std::chrono::seconds;

TEST(Duration, ParsesUnits)
{
    EXPECT_EQ(parse_duration("90s"), seconds(90));
    EXPECT_EQ(parse_duration("10m"), seconds(600));
    EXPECT_EQ(parse_duration("1h"), seconds(3600));
    EXPECT_EQ(parse_duration("2d"), seconds(172800));
    EXPECT_EQ(parse_duration("45"), seconds(45));
    EXPECT_EQ(parse_duration("0"), seconds(0));
}

TEST(Duration, RejectsWhatIsNotADuration)
{
    for (const char* bad : {"", "s", "1x", "1 h", "-5", "1.5h", "h1", "1hh", "1H", "0x10"}) {
        std::string err;
        EXPECT_FALSE(parse_duration(bad, &err)) << bad;
        EXPECT_NE(err.find("not a duration"), std::string::npos) << bad << ": " << err;
    }
}

TEST(Duration, RejectsAbsurdLengthsInsteadOfOverflowing)
{
    std::string err;
    EXPECT_FALSE(parse_duration("99999999999999999999", &err)); // > u64
    EXPECT_FALSE(parse_duration("4000d", &err));
    EXPECT_NE(err.find("too long"), std::string::npos) << err;
    EXPECT_TRUE(parse_duration("3660d"));
}

TEST(Duration, FormatsTheShortestExactForm)
{
    EXPECT_EQ(format_duration(seconds(0)), "0");
    EXPECT_EQ(format_duration(seconds(90)), "90s");
    EXPECT_EQ(format_duration(seconds(600)), "10m");
    EXPECT_EQ(format_duration(seconds(3600)), "1h");
    EXPECT_EQ(format_duration(seconds(5400)), "90m");
    EXPECT_EQ(format_duration(seconds(86400)), "1d");
    for (long s : {1L, 59L, 61L, 3599L, 7200L, 90000L})
        EXPECT_EQ(parse_duration(format_duration(seconds(s))), seconds(s)) << s;
}
