// SPDX-License-Identifier: GPL-2.0-only
// BlockTable at scale, against FakeMaps: counts kept rather than walked,
// expiry from the deadline index, and the reconciliation that finds the blocks
// whose events were lost and forgets those removed behind its back.
#include "block_table_fixture.h"

using namespace connwatch;
using namespace connwatch::test;
using namespace std::chrono_literals;

class BlockScaleTest : public BlockTableTest {
protected:
    // Sweeps until a whole reconciliation round has passed.
    BlockCounts full_round(uint64_t now)
    {
        BlockTable::Sweep s;
        size_t ticks = maps_.hosts.size() / BlockTable::kReconcileMinSlice + 2;
        for (size_t i = 0; i < ticks; i++)
            s = table_->sweep_expired(now);
        return s.left;
    }
};

TEST_F(BlockScaleTest, CountsAreKeptNotWalked)
{
    must_block("192.0.2.1");
    must_block("203.0.113.0/24", 1h);
    int walks = maps_.walks;
    for (int i = 0; i < 10; i++) {
        auto n = table_->counts();
        EXPECT_EQ(n.manual, 2u);
        EXPECT_EQ(n.scan, 0u);
    }
    EXPECT_EQ(maps_.walks, walks) << "counts() read the maps";
}

TEST_F(BlockScaleTest, ABlockWhoseEventWasLostIsFoundCountedAndExpires)
{
    maps_.host_cap = 100;
    table_->restore();
    uint64_t now = monotonic_now_ns();
    // The kernel made it; its event never arrived (a full ring buffer).
    maps_.hosts[P("192.0.2.7")] = kernel_block(BlockOrigin::Scan, now + 10 * kNsPerSec);
    EXPECT_EQ(table_->counts().scan, 0u);
    auto left = full_round(now);
    EXPECT_EQ(left.scan, 1u) << "found by the reconciliation";
    EXPECT_TRUE(table_->sweep_expired(now + 9 * kNsPerSec).expired.empty());
    auto s = table_->sweep_expired(now + 10 * kNsPerSec);
    ASSERT_EQ(s.expired.size(), 1u);
    EXPECT_EQ(s.expired[0].prefix, P("192.0.2.7"));
    EXPECT_TRUE(maps_.hosts.empty());
    EXPECT_EQ(s.left.total(), 0u);
    EXPECT_EQ(table_->removed(RemovalReason::Expired), 1u);
}

TEST_F(BlockScaleTest, ABlockRemovedBehindItsBackIsForgottenAfterARound)
{
    maps_.host_cap = 100;
    must_block("192.0.2.1", 1h);
    must_block("192.0.2.2");
    maps_.hosts.erase(P("192.0.2.2")); // bpftool, another process
    EXPECT_EQ(full_round(monotonic_now_ns()).manual, 1u);
}

TEST_F(BlockScaleTest, ARenewedBlockOutlivesItsOldDeadline)
{
    maps_.host_cap = 100;
    uint64_t now = monotonic_now_ns();
    maps_.hosts[P("192.0.2.3")] = kernel_block(BlockOrigin::Scan, now + 5 * kNsPerSec);
    table_->record_scan_block(P("192.0.2.3").address(), "scan", 1, 2);
    // Expired in the kernel, and renewed by a second scan before the sweep
    // (its event not read yet).
    maps_.hosts[P("192.0.2.3")] = kernel_block(BlockOrigin::Scan, now + 3600 * kNsPerSec);
    EXPECT_TRUE(table_->sweep_expired(now + 6 * kNsPerSec).expired.empty());
    EXPECT_TRUE(maps_.hosts.count(P("192.0.2.3")));
    EXPECT_EQ(table_->sweep_expired(now + 3600 * kNsPerSec).expired.size(), 1u);
}

TEST_F(BlockScaleTest, ManyBlocksFallDueAcrossTicksWithoutAWalkEach)
{
    maps_.host_cap = 20000;
    uint64_t now = monotonic_now_ns();
    for (uint32_t i = 0; i < 10000; i++) {
        cw_addr a{};
        a.b[10] = a.b[11] = 0xff;
        a.b[12] = 10;
        a.b[13] = static_cast<uint8_t>(i >> 8);
        a.b[14] = static_cast<uint8_t>(i);
        maps_.hosts[Cidr::host(Address(a))] =
            kernel_block(BlockOrigin::Scan, i < 3000 ? now + kNsPerSec : 0);
    }
    table_->restore();
    EXPECT_EQ(table_->counts().scan, 10000u);
    auto s = table_->sweep_expired(now + 2 * kNsPerSec);
    EXPECT_EQ(s.expired.size(), 3000u);
    EXPECT_EQ(s.left.scan, 7000u);
    EXPECT_EQ(maps_.hosts.size(), 7000u);
    EXPECT_EQ(maps_.scan_resets.size(), 3000u) << "each judged afresh";
}

TEST_F(BlockScaleTest, ScanReasonsAreKeptUpToALimitManualOnesAlways)
{
    maps_.host_cap = BlockTable::kMaxScanRecords + 10;
    uint64_t now = monotonic_now_ns();
    auto host = [](uint32_t i) {
        cw_addr a{};
        a.b[10] = a.b[11] = 0xff;
        a.b[12] = 10;
        a.b[13] = static_cast<uint8_t>(i >> 16);
        a.b[14] = static_cast<uint8_t>(i >> 8);
        a.b[15] = static_cast<uint8_t>(i);
        return Address(a);
    };
    for (uint32_t i = 0; i <= BlockTable::kMaxScanRecords; i++) {
        maps_.hosts[Cidr::host(host(i))] = kernel_block(BlockOrigin::Scan, now + 3600 * kNsPerSec);
        table_->record_scan_block(host(i), "scan " + std::to_string(i), 1, 2);
    }
    EXPECT_EQ(table_->counts().scan, BlockTable::kMaxScanRecords + 1);
    must_block("192.0.2.1", {}, "manual, past the limit");
    std::map<Cidr, std::string> reasons;
    for (const auto& v : table_->list())
        reasons[v.record.prefix] = v.record.reason;
    EXPECT_EQ(reasons[Cidr::host(host(0))], "scan 0");
    EXPECT_EQ(reasons[Cidr::host(host(BlockTable::kMaxScanRecords))], "") << "past the limit";
    EXPECT_EQ(reasons[P("192.0.2.1")], "manual, past the limit");
}
