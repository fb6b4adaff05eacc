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

    EXPECT_EQ(table_->flush().total(), 2u);
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

// ---- dangerous blocks need force --------------------------------------------------

TEST_F(BlockPolicyTest, RefusesWideBlocksWithoutForceAndSaysHow)
{
    EXPECT_EQ(refusal("0.0.0.0/0"), "not blocking 0.0.0.0/0: it is wider than /8; repeat with "
                                    "--force (\"force\": true) if you really mean it");
    EXPECT_EQ(refusal("::/0"), "not blocking ::/0: it is wider than /16; repeat with --force "
                               "(\"force\": true) if you really mean it");
    for (const char* wide : {"10.0.0.0/7", "128.0.0.0/1", "2000::/3", "2000::/15"})
        EXPECT_NE(refusal(wide).find("--force"), std::string::npos) << wide;
    EXPECT_TRUE(maps_.cidrs.empty());
    // The narrowest dangerous widths' neighbours need nothing.
    must_block("10.0.0.0/8");
    must_block("2001::/16");
    // Forced, they are made like any block.
    maps_.cidr_cap = 8;
    must_block("0.0.0.0/0", {}, "", true);
    must_block("::/0", 1h, "", true);
    EXPECT_TRUE(maps_.cidrs.count(P("0.0.0.0/0")) && maps_.cidrs.count(P("::/0")));
    EXPECT_TRUE(table_->unblock(P("0.0.0.0/0")));
}

TEST_F(BlockPolicyTest, RefusesBlocksCoveringAnOwnAddressWithoutForce)
{
    ASSERT_EQ(table_->set_allow_sources({P("198.51.100.0/24")},
                                        {P("127.0.0.0/8"), P("192.0.2.10"), P("2001:db8:1::10")})
                  .error,
              "");
    EXPECT_EQ(refusal("192.0.2.0/24"),
              "not blocking 192.0.2.0/24: it covers 192.0.2.10/32, an address of this host; "
              "repeat with --force (\"force\": true) if you really mean it");
    EXPECT_NE(refusal("2001:db8::/32").find("covers 2001:db8:1::10/128"), std::string::npos);
    EXPECT_EQ(refusal("0.0.0.0/0"),
              "not blocking 0.0.0.0/0: it is wider than /8, and covers 127.0.0.0/8, an address "
              "of this host; repeat with --force (\"force\": true) if you really mean it");
    // A configured allow entry inside is no danger: the kernel's allow wins there.
    must_block("198.51.0.0/16");
    // Next to the own address, not covering it.
    must_block("192.0.2.0/29");
    // Forced: made; the own address itself stays allowed in the kernel.
    maps_.cidr_cap = 8;
    must_block("192.0.2.0/24", {}, "", true);
    // Force never overrides an allow entry that covers the block itself.
    EXPECT_NE(refusal("192.0.2.10", true).find("covered by the allow entry"), std::string::npos);
    EXPECT_NE(refusal("127.0.0.0/8", true).find("covered by the allow entry"), std::string::npos);
}
