// SPDX-License-Identifier: GPL-2.0-only
// BlockTable's policy, continued: a source whose block ends is judged afresh
// (its scan state reset, whatever ended the block).
#include "block_table_fixture.h"

using namespace connwatch;
using namespace connwatch::test;
using namespace std::chrono_literals;

namespace {

Address A(const char* text)
{
    return *Address::parse(text);
}

} // namespace

class BlockPolicyTest : public BlockTableTest {};

TEST_F(BlockPolicyTest, EveryWayAHostBlockEndsResetsItsScanState)
{
    uint64_t now = monotonic_now_ns();
    maps_.hosts[P("192.0.2.1")] = kernel_block(BlockOrigin::Scan, now - 1);
    maps_.hosts[P("192.0.2.2")] = kernel_block(BlockOrigin::Scan, 0);
    maps_.hosts[P("2001:db8::3")] = kernel_block(BlockOrigin::Scan, 0);
    maps_.hosts[P("198.51.100.4")] = kernel_block(BlockOrigin::Scan, 0);
    maps_.hosts[P("198.51.100.5")] = kernel_block(BlockOrigin::Scan, 0);

    table_->sweep_expired(now);
    EXPECT_EQ(maps_.scan_resets, (std::vector<Address>{A("192.0.2.1")})) << "expired";
    maps_.scan_resets.clear();

    ASSERT_TRUE(table_->unblock(P("2001:db8::3")));
    EXPECT_EQ(maps_.scan_resets, (std::vector<Address>{A("2001:db8::3")})) << "unblocked";
    maps_.scan_resets.clear();

    ASSERT_EQ(table_->allow(P("198.51.100.4")).error, "");
    EXPECT_EQ(maps_.scan_resets, (std::vector<Address>{A("198.51.100.4")})) << "allowlisted";
    maps_.scan_resets.clear();

    EXPECT_EQ(table_->flush().size(), 2u);
    std::set<Address> flushed(maps_.scan_resets.begin(), maps_.scan_resets.end());
    EXPECT_EQ(flushed, (std::set<Address>{A("192.0.2.2"), A("198.51.100.5")})) << "flushed";
}

TEST_F(BlockPolicyTest, NothingElseResetsAScanState)
{
    must_block("192.0.2.1");
    must_block("203.0.113.0/24");
    EXPECT_FALSE(table_->unblock(P("192.0.2.9")));  // not blocked
    EXPECT_TRUE(table_->unblock(P("203.0.113.0/24"))); // a prefix: no scan made it
    table_->sweep_expired(monotonic_now_ns());        // nothing due
    EXPECT_TRUE(maps_.scan_resets.empty());
}
