// SPDX-License-Identifier: GPL-2.0-only
// BlockIndex: the compact table of exact blocks with its deadline heap.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "blocks/block_index.h"

using namespace connwatch;

namespace {

cw_addr key(uint32_t n)
{
    cw_addr a{};
    a.b[10] = a.b[11] = 0xff;
    std::memcpy(&a.b[12], &n, 4);
    return a;
}

uint32_t num(const cw_addr& a)
{
    uint32_t n;
    std::memcpy(&n, &a.b[12], 4);
    return n;
}

constexpr uint64_t kSec = 1'000'000'000;

} // namespace

TEST(BlockIndex, CountsByOriginThroughPutsAndErases)
{
    BlockIndex idx;
    EXPECT_TRUE(idx.put(key(1), 0, CW_ORIGIN_SCAN));
    EXPECT_TRUE(idx.put(key(2), 0, CW_ORIGIN_MANUAL));
    EXPECT_FALSE(idx.put(key(1), 0, CW_ORIGIN_SCAN)) << "already there";
    EXPECT_EQ(idx.size(), 2u);
    EXPECT_EQ(idx.scan(), 1u);
    EXPECT_EQ(idx.manual(), 1u);
    EXPECT_FALSE(idx.put(key(1), 0, CW_ORIGIN_MANUAL)) << "re-made by an operator";
    EXPECT_EQ(idx.scan(), 0u);
    EXPECT_EQ(idx.manual(), 2u);
    EXPECT_TRUE(idx.erase(key(2)));
    EXPECT_FALSE(idx.erase(key(2)));
    EXPECT_EQ(idx.size(), 1u);
    EXPECT_EQ(idx.find(key(2)), nullptr);
    ASSERT_NE(idx.find(key(1)), nullptr);
}

TEST(BlockIndex, GivesWhatIsDueInDeadlineOrderOnceAndNeverTheRest)
{
    BlockIndex idx;
    idx.put(key(1), 30 * kSec, CW_ORIGIN_SCAN);
    idx.put(key(2), 10 * kSec + 1, CW_ORIGIN_SCAN); // due second 11
    idx.put(key(3), 0, CW_ORIGIN_MANUAL);           // never
    idx.put(key(4), 20 * kSec, CW_ORIGIN_SCAN);
    EXPECT_TRUE(idx.due(10, 100).empty());
    auto d = idx.due(20, 100);
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(num(d[0]), 2u);
    EXPECT_EQ(num(d[1]), 4u);
    EXPECT_TRUE(idx.due(20, 100).empty()) << "each once";
    // Moved later: only the new deadline counts.
    idx.put(key(1), 40 * kSec, CW_ORIGIN_SCAN);
    EXPECT_TRUE(idx.due(35, 100).empty());
    // Erased: never given.
    idx.erase(key(1));
    EXPECT_TRUE(idx.due(1000, 100).empty());
    // Requeued: given again.
    idx.requeue(key(4));
    d = idx.due(20, 100);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(num(d[0]), 4u);
}

TEST(BlockIndex, DueIsBoundedAndKeepsTheRestForLater)
{
    BlockIndex idx;
    for (uint32_t i = 0; i < 100; i++)
        idx.put(key(i), (i + 1) * kSec, CW_ORIGIN_SCAN);
    EXPECT_EQ(idx.due(1000, 30).size(), 30u);
    EXPECT_EQ(idx.due(1000, 1000).size(), 70u);
}

TEST(BlockIndex, GrowsAndShrinksWithTheBlocksAndLosesNone)
{
    BlockIndex idx;
    constexpr uint32_t n = 200000;
    for (uint32_t i = 0; i < n; i++)
        ASSERT_TRUE(idx.put(key(i), (i % 7) ? (1000 + i) * kSec : 0, CW_ORIGIN_SCAN));
    EXPECT_EQ(idx.size(), n);
    // 24 bytes a slot, at most 1 / 0.55 slots a block, plus 8 bytes in each of
    // the two heaps (deadlines; scan blocks), twice that while a heap grows.
    EXPECT_LE(idx.bytes(), static_cast<size_t>(n * (24 / 0.55 + 2 * 2 * 8)));
    for (uint32_t i = 0; i < n; i++)
        ASSERT_NE(idx.find(key(i)), nullptr) << i;
    size_t full = idx.bytes();
    for (uint32_t i = 0; i < n - 100; i++)
        ASSERT_TRUE(idx.erase(key(i)));
    EXPECT_EQ(idx.size(), 100u);
    EXPECT_LT(idx.bytes(), full / 100) << "memory follows the blocks";
    for (uint32_t i = n - 100; i < n; i++)
        ASSERT_NE(idx.find(key(i)), nullptr) << i;
    // The heap was rebuilt with the table: the survivors still fall due.
    size_t with_deadline = 0;
    for (uint32_t i = n - 100; i < n; i++)
        with_deadline += (i % 7) != 0;
    EXPECT_EQ(idx.due(UINT32_MAX, n).size(), with_deadline);
}

TEST(BlockIndex, ChurnLeavesNoStaleEntries)
{
    // Tombstones and stale heap items under many puts and erases of a few keys.
    BlockIndex idx;
    for (uint32_t round = 0; round < 50; round++) {
        for (uint32_t i = 0; i < 1000; i++)
            idx.put(key(i), (round * 1000 + i + 1) * kSec, CW_ORIGIN_SCAN);
        for (uint32_t i = 0; i < 1000; i += 2)
            idx.erase(key(i));
    }
    EXPECT_EQ(idx.size(), 500u);
    auto d = idx.due(UINT32_MAX, 1'000'000);
    std::set<uint32_t> got;
    for (const auto& k : d)
        got.insert(num(k));
    EXPECT_EQ(got.size(), 500u);
    EXPECT_EQ(d.size(), 500u) << "each key once, at its latest deadline";
}

TEST(BlockIndex, ARoundForgetsWhatItDidNotSee)
{
    BlockIndex idx;
    for (uint32_t i = 0; i < 10; i++)
        idx.put(key(i), 0, CW_ORIGIN_SCAN);
    idx.start_round();
    for (uint32_t i = 0; i < 10; i += 2)
        idx.put(key(i), 0, CW_ORIGIN_SCAN); // seen by the walk
    idx.put(key(100), 0, CW_ORIGIN_SCAN);   // made during the round
    auto gone = idx.end_round();
    std::set<uint32_t> g;
    for (const auto& e : gone)
        g.insert(num(e.key));
    EXPECT_EQ(g, (std::set<uint32_t>{1, 3, 5, 7, 9}));
    EXPECT_EQ(idx.size(), 6u);
    EXPECT_NE(idx.find(key(100)), nullptr);
}

TEST(BlockIndex, PutKeepsTheSharedRecord)
{
    BlockIndex idx;
    idx.put(key(1), 5'000'000'000, CW_ORIGIN_MANUAL);
    idx.find(key(1))->shared = 7;
    idx.put(key(1), 9'000'000'000, CW_ORIGIN_MANUAL); // reconciliation, a renewal
    EXPECT_EQ(idx.find(key(1))->shared, 7);
    for (uint32_t i = 2; i < 5000; i++) // rehashes
        idx.put(key(i), 0, CW_ORIGIN_SCAN);
    EXPECT_EQ(idx.find(key(1))->shared, 7);
    idx.start_round();
    auto gone = idx.end_round();
    ASSERT_EQ(gone.size(), 4999u);
    EXPECT_EQ(std::count_if(gone.begin(), gone.end(),
                            [](const HostEntry& e) { return e.shared == 7; }),
              1);
}

// oldest_scan(): of the scan blocks with a deadline and not marked escalated,
// the earliest deadline, whatever the manual and CrowdSec blocks around it,
// through growth, shrinking, renewals and erases (a model checks every step).
TEST(BlockIndex, OldestScanIsTheEarliestReplaceableDeadlineThroughChurn)
{
    BlockIndex idx;
    EXPECT_FALSE(idx.oldest_scan());
    // Model: key -> (due second, origin, escalated).
    struct M {
        uint32_t due;
        uint8_t origin;
        bool escalated;
    };
    std::map<uint32_t, M> model;
    auto expect_oldest = [&](const char* when) {
        std::optional<uint32_t> best_due;
        for (const auto& [k, m] : model)
            if (m.origin == CW_ORIGIN_SCAN && m.due && !m.escalated &&
                (!best_due || m.due < *best_due))
                best_due = m.due;
        auto got = idx.oldest_scan();
        ASSERT_EQ(got.has_value(), best_due.has_value()) << when;
        if (got) {
            EXPECT_EQ(model.at(num(*got)).due, *best_due) << when;
        }
    };
    uint32_t seed = 12345;
    auto rnd = [&] {
        seed = seed * 1103515245 + 12345;
        return (seed >> 8) & 0xffffff;
    };
    const uint8_t origins[] = {CW_ORIGIN_SCAN, CW_ORIGIN_SCAN, CW_ORIGIN_MANUAL,
                               CW_ORIGIN_CROWDSEC};
    for (int step = 0; step < 20000; step++) {
        uint32_t k = rnd() % 3000 + 1, op = rnd() % 10;
        if (op < 5) { // a block made or renewed (sometimes without a deadline)
            uint32_t due = rnd() % 8 ? rnd() % 100000 + 1 : 0;
            uint8_t origin = origins[rnd() % 4];
            idx.put(key(k), uint64_t(due) * kSec, origin);
            auto it = model.find(k);
            bool esc = it != model.end() && it->second.escalated && it->second.due == due;
            model[k] = {due, origin, esc};
        } else if (op < 8) {
            EXPECT_EQ(idx.erase(key(k)), model.erase(k) == 1);
        } else if (op < 9) {
            if (model.count(k)) {
                idx.mark_escalated(key(k));
                model[k].escalated = true;
            }
        } else if (auto o = idx.oldest_scan()) { // replaced: the oldest goes
            idx.erase(*o);
            model.erase(num(*o));
        }
        if (step % 97 == 0)
            expect_oldest("step");
    }
    expect_oldest("end");
    // Drained in deadline order.
    uint32_t last = 0;
    while (auto o = idx.oldest_scan()) {
        uint32_t due = model.at(num(*o)).due;
        EXPECT_GE(due, last);
        last = due;
        idx.erase(*o);
        model.erase(num(*o));
    }
    for (const auto& [k, m] : model)
        EXPECT_TRUE(m.origin != CW_ORIGIN_SCAN || !m.due || m.escalated) << k;
}
