// SPDX-License-Identifier: GPL-2.0-only
// BlockTable at scale, against FakeMaps: counts kept rather than walked,
// expiry from the deadline index, and the reconciliation that finds the blocks
// whose events were lost and forgets those removed behind its back.
#include <algorithm>
#include <fstream>
#include <iterator>

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
    for (const auto& r : every_block(*table_))
        reasons[r.prefix] = r.reason;
    EXPECT_EQ(reasons[Cidr::host(host(0))], "scan 0");
    EXPECT_EQ(reasons[Cidr::host(host(BlockTable::kMaxScanRecords))], "") << "past the limit";
    EXPECT_EQ(reasons[P("192.0.2.1")], "manual, past the limit");
}

// ---- manual blocks without a record each (issue 10: 1 M manual blocks in 64 MiB)

namespace {

std::vector<BlockTable::BulkItem> hosts_10_0(uint32_t n, const std::string& reason,
                                             std::optional<std::chrono::seconds> d = 1h)
{
    std::vector<BlockTable::BulkItem> items;
    for (uint32_t i = 0; i < n; i++)
        items.push_back({P(("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)).c_str()),
                         d, reason});
    return items;
}

std::string slurp(const std::string& path)
{
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

TEST_F(BlockScaleTest, ManualBlocksOfAnImportShareOneRecord)
{
    maps_.host_cap = 5000;
    auto done = table_->block_many(hosts_10_0(3000, "threat list A"), false);
    ASSERT_EQ(done.added.size(), 3000u);
    EXPECT_EQ(table_->shared_blocks(), 3000u);
    EXPECT_EQ(table_->shared_records(), 1u) << "one reason, one request: one record";
    must_block("192.0.2.1", 2h, "by hand");
    EXPECT_EQ(table_->shared_records(), 2u);
    // What the table holds for them: the index's 24 bytes a block and the
    // records once, not a record each (~140 bytes).
    EXPECT_LT(table_->memory_bytes(), 3001u * 80u);
    auto r = table_->record(P("10.0.1.7"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->origin, BlockOrigin::Manual);
    EXPECT_EQ(r->reason, "threat list A");
    EXPECT_EQ(r->created, done.added[0].created);
    EXPECT_EQ(r->expires, done.added[0].expires);
    // Listed as before.
    size_t with_reason = 0;
    for (const auto& b : every_block(*table_))
        with_reason += b.reason == "threat list A";
    EXPECT_EQ(with_reason, 3000u);
    // Unblocked one by one and all at once, the shared record goes with the last.
    ASSERT_TRUE(table_->unblock(P("10.0.0.0")));
    EXPECT_EQ(table_->shared_blocks(), 2999u + 1);
    std::vector<Cidr> rest;
    for (const auto& it : hosts_10_0(3000, ""))
        rest.push_back(it.prefix);
    EXPECT_EQ(table_->unblock_many(rest).removed.size(), 2999u);
    EXPECT_EQ(table_->shared_blocks(), 1u);
    EXPECT_EQ(table_->shared_records(), 1u);
}

TEST_F(BlockScaleTest, SharedRecordsAreInTheStateFileAsBeforeAndSurviveRestartAndReboot)
{
    maps_.host_cap = 5000;
    table_->restore();
    auto done = table_->block_many(hosts_10_0(300, "list \"B\""), false);
    ASSERT_EQ(done.added.size(), 300u);
    must_block("192.0.2.1", {}, "mine");
    ASSERT_EQ(table_->save_if_dirty().error, "");
    // The snapshot holds every record, as when each block kept one.
    std::vector<BlockRecord> expected = done.added;
    expected.push_back(*table_->record(P("192.0.2.1")));
    std::sort(expected.begin(), expected.end(),
              [](const BlockRecord& a, const BlockRecord& b) { return a.prefix < b.prefix; });
    {
        BlockTable next(maps_, state());
        next.restore(); // writes a snapshot
        ASSERT_EQ(next.save_if_dirty().error, "");
        std::vector<std::string> problems;
        State st = parse_state(slurp(state()), &problems);
        EXPECT_TRUE(problems.empty());
        EXPECT_EQ(st.blocks, expected);
        EXPECT_EQ(next.shared_blocks(), 301u) << "shared again after the restart";
        auto r = next.record(P("10.0.0.9"));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->reason, "list \"B\"");
    }
    // A reboot: the kernel's maps are empty; the manual blocks come back
    // with their reasons.
    maps_.hosts.clear();
    BlockTable after(maps_, state());
    auto r = after.restore();
    EXPECT_EQ(r.restored, 301u);
    auto rec = after.record(P("10.0.1.2"));
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->reason, "list \"B\"");
    EXPECT_EQ(rec->expires, done.added[0].expires);
    EXPECT_EQ(rec->created, done.added[0].created);
    ASSERT_EQ(after.save_if_dirty().error, "");
    std::vector<std::string> problems;
    EXPECT_EQ(parse_state(slurp(state()), &problems).blocks, expected);
}

TEST_F(BlockScaleTest, AManualBlockWithASharedRecordIsNotReplacedByADecision)
{
    maps_.host_cap = 100;
    must_block("192.0.2.1", 1h, "mine");
    ASSERT_EQ(table_->shared_blocks(), 1u);
    EXPECT_EQ(table_->mirror(P("192.0.2.1"), 7200s, "crowdsec").outcome,
              BlockTable::Mirror::Outcome::Kept);
    EXPECT_EQ(maps_.hosts.at(P("192.0.2.1")).origin, CW_ORIGIN_MANUAL);
}

TEST_F(BlockScaleTest, ASharedRecordBlockRemovedBehindItsBackLeavesTheStateFile)
{
    maps_.host_cap = 100;
    table_->restore();
    must_block("192.0.2.1", 1h, "mine");
    must_block("192.0.2.2", 1h, "mine");
    ASSERT_EQ(table_->save_if_dirty().error, "");
    maps_.hosts.erase(P("192.0.2.2"));
    EXPECT_EQ(full_round(monotonic_now_ns()).manual, 1u);
    EXPECT_EQ(table_->shared_blocks(), 1u);
    ASSERT_EQ(table_->save_if_dirty().error, "");
    BlockTable next(maps_, state());
    maps_.hosts.clear(); // a reboot: only what the state file holds comes back
    EXPECT_EQ(next.restore().restored, 1u);
}

// ---- flush: in slices, counted by origin, one snapshot

TEST_F(BlockScaleTest, AFlushInSlicesCountsByOriginAndLeavesAnEmptyState)
{
    maps_.host_cap = 100;
    table_->restore();
    must_block("192.0.2.1", 1h, "a");
    must_block("192.0.2.2", {}, "b");
    must_block("198.51.100.0/24", {}, "c");
    maps_.hosts[P("192.0.2.9")] = kernel_block(BlockOrigin::Scan, 0);
    ASSERT_EQ(table_->mirror(P("192.0.2.10"), 600s, "cs").outcome, BlockTable::Mirror::Outcome::Added);
    ASSERT_EQ(table_->save_if_dirty().error, "");
    uint64_t begun = monotonic_now_ns();
    table_->flush_begin(begun);
    EXPECT_TRUE(table_->flushing());
    // A block made during the flush (later than its start) is kept.
    cw_block later = kernel_block(BlockOrigin::Manual, 0);
    later.created_ns = begun + 1;
    maps_.hosts[P("203.0.113.1")] = later;
    size_t steps = 0;
    while (!table_->flush_step(100))
        ASSERT_LT(++steps, 100u);
    EXPECT_FALSE(table_->flushing());
    EXPECT_EQ(table_->flushed().manual, 3u);
    EXPECT_EQ(table_->flushed().scan, 1u);
    EXPECT_EQ(table_->flushed().crowdsec, 1u);
    EXPECT_EQ(table_->removed(RemovalReason::Flushed), 5u);
    EXPECT_EQ(maps_.hosts.size(), 1u) << "the block made during the flush";
    EXPECT_TRUE(maps_.cidrs.empty());
    EXPECT_EQ(table_->shared_blocks(), 0u);
    std::set<Address> reset(maps_.scan_resets.begin(), maps_.scan_resets.end());
    EXPECT_EQ(reset.size(), 4u) << "the exact blocks' sources judged afresh";
    // One snapshot, no line a block.
    ASSERT_EQ(table_->save_if_dirty().error, "");
    EXPECT_EQ(slurp(state() + ".journal"), "");
    std::vector<std::string> problems;
    EXPECT_TRUE(parse_state(slurp(state()), &problems).blocks.empty());
    // Flushing again finds nothing of before.
    EXPECT_EQ(table_->flush().total(), 1u) << "now the later block too";
}
