// SPDX-License-Identifier: GPL-2.0-only
// The bound on automatic blocks (max-new-blocks-per-second, max-new-blocks-burst):
// a token bucket in the kernel. A flood of scans from thousands of spoofed
// sources makes at most burst + rate x elapsed blocks; every scan beyond is still
// reported, with action CW_ACT_RATE_LIMITED, and counted; the bucket refills with
// time, up to the burst and no further. Config otherwise connwatchd's defaults
// (threshold 3: the 4th port of a source is its scan).
#include <cstdio>

#include "config/defaults.h"
#include "config/options.h"
#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

// The i-th spoofed source, 10.0.0.1 on: never a martian, not allowlisted.
std::string spoofed(unsigned i)
{
    unsigned n = i + 1;
    char buf[32];
    std::snprintf(buf, sizeof(buf), "10.%u.%u.%u", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
    return buf;
}

class Bucket : public XdpTest {
protected:
    // rate 0: no bound.
    void set_bucket(uint32_t rate, uint32_t burst)
    {
        Options o;
        o.max_new_blocks_per_second = rate;
        o.max_new_blocks_burst = burst;
        prog_->set_config(kernel_config(o));
    }
    // A scan of 4 ports from src (fast: XDP actions only; events drained).
    void scan(const std::string& src)
    {
        for (uint16_t port = 1; port <= 4; port++)
            ASSERT_EQ(run_action(tcp_from(src, 40000, port).build()), XDP_PASS) << src;
        drain_events();
    }
    uint64_t stat(cw_stat s) const { return prog_->stats()[s]; }
};

TEST_F(Bucket, DefaultsBoundAFloodWellBelowTheBlocklist)
{
    static_assert(defaults::kMaxNewBlocksPerSecond == 5 && defaults::kMaxNewBlocksBurst == 100);
    cw_config c = default_config();
    EXPECT_EQ(c.block_every_ns, 200 * kMs);
    EXPECT_EQ(c.block_slack_ns, 99 * 200 * kMs);
}

// The flood of the issue, at one instant: 3000 spoofed sources x 4 ports. The
// burst is spent, every other scan is reported and not blocked.
TEST_F(Bucket, FloodAtOneInstantMakesOnlyTheBurst)
{
    for (unsigned i = 0; i < 3000; i++)
        scan(spoofed(i));
    EXPECT_EQ(stat(CW_STAT_SCAN), 3000u);
    EXPECT_EQ(stat(CW_STAT_BLOCK_ADDED), 100u);
    EXPECT_EQ(stat(CW_STAT_BLOCK_RATE_LIMITED), 2900u);
    EXPECT_EQ(stat(CW_STAT_BLOCK_FULL), 0u);
    EXPECT_EQ(prog_->block_list().size(), 100u);
}

// Spread over time: 4000 sources, one every ms (4 s): burst + 4 s x 5/s.
TEST_F(Bucket, FloodOverTimeStaysWithinTheBound)
{
    const uint64_t start = now();
    for (unsigned i = 0; i < 4000; i++) {
        scan(spoofed(i));
        advance(1 * kMs);
    }
    uint64_t elapsed_s = (now() - start) / kSec;
    uint64_t added = stat(CW_STAT_BLOCK_ADDED);
    EXPECT_LE(added, 100 + 5 * elapsed_s);
    EXPECT_GE(added, 100 + 5 * elapsed_s - 1); // and it does let them through
    EXPECT_EQ(added + stat(CW_STAT_BLOCK_RATE_LIMITED), 4000u);
}

TEST_F(Bucket, ASkippedBlockIsReportedAndTheSourceNotBlocked)
{
    set_bucket(1, 1);
    for (uint16_t p = 1; p <= 3; p++)
        syn(kScanner, p);
    EXPECT_EQ(events_of(syn(kScanner, 4), CW_EV_SCAN).at(0).action, CW_ACT_BLOCKED);
    // The bucket is empty now: the next scanner is reported, not blocked.
    const char* other = "192.0.2.67";
    for (uint16_t p = 1; p <= 3; p++)
        syn(other, p);
    RunResult r = syn(other, 4);
    EXPECT_EQ(r.action, XDP_PASS);
    EXPECT_EQ(r.delta, StatDelta({{CW_STAT_PASS_SYN, 1},
                                  {CW_STAT_SYN, 1},
                                  {CW_STAT_SCAN, 1},
                                  {CW_STAT_BLOCK_RATE_LIMITED, 1}}));
    auto scans = events_of(r, CW_EV_SCAN);
    ASSERT_EQ(scans.size(), 1u) << describe(r.events);
    EXPECT_EQ(scans[0].action, CW_ACT_RATE_LIMITED);
    EXPECT_EQ(scans[0].expires_ns, 0u);
    EXPECT_EQ(ports_of(scans[0]), (std::set<uint16_t>{1, 2, 3, 4}));
    expect_attempt_only(syn(other, 5)); // not blocked, and reported once per window
}

// One token a second, up to the burst and no more.
TEST_F(Bucket, TheBucketRefillsUpToTheBurst)
{
    set_bucket(2, 3);
    unsigned next = 0;
    auto blocks_of = [&](unsigned scans) {
        uint64_t before = stat(CW_STAT_BLOCK_ADDED);
        for (unsigned i = 0; i < scans; i++)
            scan(spoofed(next++));
        return stat(CW_STAT_BLOCK_ADDED) - before;
    };
    EXPECT_EQ(blocks_of(10), 3u); // the burst
    advance(499 * kMs);
    EXPECT_EQ(blocks_of(5), 0u); // not yet one token (one per 500 ms)
    advance(1 * kMs);
    EXPECT_EQ(blocks_of(5), 1u);
    advance(1 * kSec);
    EXPECT_EQ(blocks_of(5), 2u);
    advance(3600 * kSec); // an hour of quiet refills the burst, not 7200 tokens
    EXPECT_EQ(blocks_of(10), 3u);
}

TEST_F(Bucket, ZeroMeansNoBound)
{
    set_bucket(0, 1);
    for (unsigned i = 0; i < 300; i++)
        scan(spoofed(i));
    EXPECT_EQ(stat(CW_STAT_BLOCK_ADDED), 300u);
    EXPECT_EQ(stat(CW_STAT_BLOCK_RATE_LIMITED), 0u);
}

// Only a block about to be made spends a token: an allowlisted scanner, or
// monitor-only mode, leaves the bucket as it was.
TEST_F(Bucket, OnlyBlocksSpendTokens)
{
    set_bucket(1, 1);
    prog_->allow_add(*Cidr::parse("10.0.0.0/16"));
    scan(spoofed(1)); // 10.0.0.2: allowlisted
    EXPECT_EQ(stat(CW_STAT_BLOCK_ALLOWED), 1u);
    Options o;
    o.max_new_blocks_per_second = 1;
    o.max_new_blocks_burst = 1;
    o.monitor_only = true;
    prog_->set_config(kernel_config(o));
    scan(spoofed(0x10000)); // 10.1.0.1
    EXPECT_EQ(stat(CW_STAT_BLOCK_MONITOR), 1u);
    set_bucket(1, 1);
    scan(spoofed(0x20000));
    EXPECT_EQ(stat(CW_STAT_BLOCK_ADDED), 1u);
    EXPECT_EQ(stat(CW_STAT_BLOCK_RATE_LIMITED), 0u);
}

} // namespace
} // namespace connwatch::test
