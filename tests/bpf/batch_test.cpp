// SPDX-License-Identifier: GPL-2.0-only
// The blocklist's batched operations on the real map (bpf_map_*_batch), which
// BlockTable's start-up walk, reconciliation and expiry rest on: a walk in
// slices of any size sees every entry exactly once, a batched delete skips
// keys that are not there, and the capacities are what the settings say.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "blocks/block_table.h"
#include "blocks/kernel_maps.h"
#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

class Batch : public XdpTest {
protected:
    LoadSettings load_settings() const override
    {
        LoadSettings s = XdpTest::load_settings();
        s.max_blocks = 20000;
        s.max_cidr_blocks = 123;
        return s;
    }
    static cw_addr key(uint32_t i)
    {
        cw_addr a{};
        a.b[10] = a.b[11] = 0xff;
        a.b[12] = 10;
        a.b[13] = static_cast<uint8_t>(i >> 16);
        a.b[14] = static_cast<uint8_t>(i >> 8);
        a.b[15] = static_cast<uint8_t>(i);
        return a;
    }
    void fill(uint32_t n)
    {
        for (uint32_t i = 0; i < n; i++) {
            cw_block b{};
            b.expires_ns = i + 1;
            b.origin = CW_ORIGIN_SCAN;
            ASSERT_TRUE(prog_->block_add(Address(key(i)), b)) << i;
        }
    }
};

TEST_F(Batch, CapacitiesAreTheSettings)
{
    EXPECT_EQ(prog_->block_capacity(), 20000u);
    EXPECT_EQ(prog_->cidr_block_capacity(), 123u);
}

TEST_F(Batch, AWalkInSlicesSeesEveryEntryOnce)
{
    constexpr uint32_t n = 15000;
    fill(n);
    for (size_t slice : {1u, 1000u, 4096u, 16384u, 100000u}) {
        std::map<uint32_t, int> seen;
        uint64_t cursor = 0;
        int calls = 0;
        do {
            cursor = prog_->block_slice(cursor, slice, [&](const cw_addr& k, const cw_block& b) {
                uint32_t i = (uint32_t{k.b[13]} << 16) | (uint32_t{k.b[14]} << 8) | k.b[15];
                EXPECT_EQ(b.expires_ns, i + 1);
                seen[i]++;
            });
            ASSERT_NE(cursor, XdpProgram::kSliceFailed) << "slice " << slice;
            ASSERT_LT(++calls, 1000) << "no end";
        } while (cursor);
        EXPECT_EQ(seen.size(), n) << "slice " << slice;
        EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](const auto& e) { return e.second == 1; }))
            << "slice " << slice;
    }
}

TEST_F(Batch, AnEmptyMapIsAWalkOfOneCall)
{
    int visited = 0;
    EXPECT_EQ(prog_->block_slice(0, 4096, [&](const cw_addr&, const cw_block&) { visited++; }), 0u);
    EXPECT_EQ(visited, 0);
}

TEST_F(Batch, ABatchedDeleteSkipsWhatIsNotThere)
{
    fill(100);
    std::vector<cw_addr> keys;
    for (uint32_t i = 0; i < 100; i += 2)
        keys.push_back(key(i));
    keys.insert(keys.begin() + 10, key(5000)); // never there
    keys.push_back(key(6000));                 // nor this
    std::vector<bool> done;
    EXPECT_EQ(prog_->block_remove_batch(keys, &done), 50u);
    ASSERT_EQ(done.size(), keys.size());
    EXPECT_TRUE(done[0]);
    EXPECT_FALSE(done[10]) << "never there";
    EXPECT_TRUE(done[11]);
    EXPECT_FALSE(done.back());
    EXPECT_EQ(prog_->block_list().size(), 50u);
    EXPECT_FALSE(prog_->block_get(Address(key(0))));
    EXPECT_TRUE(prog_->block_get(Address(key(1))));
}

// connwatchctl flush on the real map: a slice of the walk and one delete
// batch a step, every block gone in the end, counted by origin; a block made
// after the flush began stays.
TEST_F(Batch, AFlushGoesInSlicesAndKeepsWhatCameAfter)
{
    constexpr uint32_t n = 15000;
    fill(n);
    KernelMaps maps(*prog_);
    BlockTable table(maps, "/nonexistent/connwatch-test/state.json");
    table.restore();
    ASSERT_EQ(table.counts().scan, n);
    const uint64_t begun = 1'000'000;
    table.flush_begin(begun);
    cw_block later{};
    later.created_ns = begun + 1;
    later.origin = CW_ORIGIN_MANUAL;
    ASSERT_TRUE(prog_->block_add(Address(key(n + 1)), later));
    int steps = 0;
    while (!table.flush_step(1024))
        ASSERT_LT(++steps, 1000) << "no end";
    EXPECT_GE(steps, 10) << "one step did it all";
    EXPECT_EQ(table.flushed().scan, n);
    EXPECT_EQ(table.flushed().total(), n);
    auto left = prog_->block_list();
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0].first, Address(key(n + 1)));
    EXPECT_EQ(table.counts().total(), 0u) << "the later block was never indexed";
    EXPECT_EQ(table.removed(RemovalReason::Flushed), n);
}

// max-blocks changed at a restart: the pinned blocks are carried into the new
// map in batches; what does not fit a smaller one is dropped and said.
TEST_F(Batch, ANewCapacityCarriesThePinnedBlocksOver)
{
    const std::string pins = "/sys/fs/bpf/cw-test-resize-" + std::to_string(getpid());
    std::filesystem::remove_all(pins);
    struct Cleanup {
        std::string dir;
        ~Cleanup() { std::filesystem::remove_all(dir); }
    } cleanup{pins};
    {
        LoadSettings a;
        a.max_blocks = 20000;
        a.pin_dir = pins;
        XdpProgram first(a);
        std::vector<cw_addr> keys;
        std::vector<cw_block> values;
        for (uint32_t i = 0; i < 15000; i++) {
            keys.push_back(key(i));
            cw_block b{};
            b.expires_ns = i + 1;
            b.origin = CW_ORIGIN_MANUAL;
            values.push_back(b);
        }
        ASSERT_EQ(first.block_add_batch(keys, values), 15000u);
    }
    {
        LoadSettings b;
        b.max_blocks = 30000;
        b.pin_dir = pins;
        XdpProgram larger(b);
        EXPECT_EQ(larger.block_capacity(), 30000u);
        std::map<uint32_t, uint64_t> seen;
        larger.block_for_each([&](const cw_addr& k, const cw_block& v) {
            seen[(uint32_t{k.b[13]} << 16) | (uint32_t{k.b[14]} << 8) | k.b[15]] = v.expires_ns;
        });
        ASSERT_EQ(seen.size(), 15000u);
        EXPECT_EQ(seen[0], 1u);
        EXPECT_EQ(seen[14999], 15000u);
        ASSERT_EQ(larger.warnings().size(), 1u);
        EXPECT_EQ(larger.warnings()[0], "The blocklist's capacity changed: 15000 blocks carried over");
    }
    {
        LoadSettings c;
        c.max_blocks = 10000;
        c.pin_dir = pins;
        XdpProgram smaller(c);
        EXPECT_EQ(smaller.block_list().size(), 10000u);
        ASSERT_EQ(smaller.warnings().size(), 1u);
        EXPECT_EQ(smaller.warnings()[0], "The blocklist's capacity changed: 10000 blocks carried "
                                         "over, 5000 dropped (no room)");
    }
}

} // namespace
} // namespace connwatch::test

