// SPDX-License-Identifier: GPL-2.0-only
// The state file's compaction on a thread of its own (issue 10): the loop
// goes on appending lines while the snapshot is written, nothing is lost, and
// a crash (SIGKILL) at any step of it leaves a state that loads whole.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "block_table_fixture.h"

namespace connwatch::test {
namespace {

using std::chrono::seconds;

std::string read(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

Cidr nth(uint32_t i)
{
    // 100.64.0.0/10, none of the host's addresses.
    uint32_t a = (100u << 24 | 64u << 16) + i;
    cw_addr k{};
    k.b[10] = k.b[11] = 0xff;
    k.b[12] = static_cast<uint8_t>(a >> 24);
    k.b[13] = static_cast<uint8_t>(a >> 16);
    k.b[14] = static_cast<uint8_t>(a >> 8);
    k.b[15] = static_cast<uint8_t>(a);
    return Cidr::host(Address(k));
}

std::vector<BlockTable::BulkItem> items(uint32_t from, uint32_t to, const std::string& reason)
{
    std::vector<BlockTable::BulkItem> out;
    for (uint32_t i = from; i < to; i++)
        out.push_back({nth(i), seconds(86400), reason});
    return out;
}

std::vector<Cidr> prefixes(uint32_t from, uint32_t to)
{
    std::vector<Cidr> out;
    for (uint32_t i = from; i < to; i++)
        out.push_back(nth(i));
    return out;
}

// The blocks a state says, prefix -> reason.
std::map<std::string, std::string> blocks_of(const State& st)
{
    std::map<std::string, std::string> out;
    for (const auto& b : st.blocks)
        out[b.prefix.str()] = b.reason;
    return out;
}

// What phase A and phase B below leave: 2,000..4,999 ("a"), less 2,000..2,099,
// and 5,000..5,499 ("b"); the prefix block; the runtime allow entry.
std::map<std::string, std::string> expected_blocks(uint32_t c = 0)
{
    std::map<std::string, std::string> out;
    for (uint32_t i = 5500; i < 5500 + c; i++)
        out[nth(i).str()] = "c";
    for (uint32_t i = 2100; i < 5000; i++)
        out[nth(i).str()] = "a";
    for (uint32_t i = 5000; i < 5500; i++)
        out[nth(i).str()] = "b";
    out["198.51.100.0/24"] = "a prefix";
    return out;
}

class CompactionTest : public BlockTableTest {
protected:
    void SetUp() override
    {
        BlockTableTest::SetUp();
        maps_.host_cap = 100000;
        maps_.cidr_cap = 10;
        maps_.allow_cap = 10;
        table_->async_snapshot_from = 0; // every compaction on its thread
    }
    // Phase A: 5,000 blocks and 2,000 removed: 7,000 journal lines for 3,000
    // blocks, so the save compacts.
    void phase_a(std::function<void(const char*)> hook)
    {
        table_->restore();
        ASSERT_EQ(table_->save_if_dirty().error, "");
        // restore()'s snapshot, on its thread: done before the phase begins.
        wait_compacted();
        table_->state_file().compaction_hook = std::move(hook);
        ASSERT_EQ(table_->block_many(items(0, 5000, "a"), false).added.size(), 5000u);
        must_block("198.51.100.0/24", std::nullopt, "a prefix");
        ASSERT_EQ(table_->unblock_many(prefixes(0, 2000)).removed.size(), 2000u);
        ASSERT_EQ(table_->save_if_dirty().error, "");
    }
    // Phase B: changes while the snapshot is written, saved as lines.
    void phase_b()
    {
        ASSERT_EQ(table_->block_many(items(5000, 5500, "b"), false).added.size(), 500u);
        ASSERT_EQ(table_->unblock_many(prefixes(2000, 2100)).removed.size(), 100u);
        ASSERT_TRUE(table_->allow(P("203.0.113.0/24")).error.empty());
        ASSERT_EQ(table_->save_if_dirty().error, "");
    }
    void wait_compacted()
    {
        auto deadline = std::chrono::steady_clock::now() + seconds(60);
        while (table_->compacting() && std::chrono::steady_clock::now() < deadline) {
            ASSERT_EQ(table_->save_if_dirty().error, "");
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        ASSERT_FALSE(table_->compacting()) << "no end of the compaction in 60 s";
    }
    void expect_whole_state(uint32_t c = 0)
    {
        StateFile f(state());
        std::string warning;
        State st = f.load(&warning);
        EXPECT_EQ(warning, "");
        EXPECT_EQ(blocks_of(st), expected_blocks(c));
        EXPECT_EQ(st.allow, std::vector<Cidr>{P("203.0.113.0/24")});
    }
};

TEST_F(CompactionTest, LinesWrittenDuringTheSnapshotAreKept)
{
    // Phase B's lines come while the snapshot is being written (the thread
    // copies them), phase C's after the thread's copy of the journal (the
    // loop adds them when it puts the new journal in place).
    std::atomic<bool> b_done{false}, c_done{false}, held{false}, copied{false};
    phase_a([&](const char* step) {
        std::string s = step;
        held = held || s == "writing";
        copied = copied || s == "copied";
        auto& flag = s == "writing" ? b_done : c_done;
        if (s == "writing" || s == "copied")
            for (int i = 0; i < 60000 && !flag; i++)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    ASSERT_TRUE(table_->compacting()) << "7,000 lines for 3,000 blocks: a compaction";
    const size_t lines_before = table_->state_file().journal_lines();
    phase_b();
    b_done = true;
    for (int i = 0; i < 60000 && !copied; i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_TRUE(copied) << "the thread never copied the journal";
    ASSERT_EQ(table_->block_many(items(5500, 5510, "c"), false).added.size(), 10u);
    ASSERT_EQ(table_->save_if_dirty().error, "");
    c_done = true;
    wait_compacted();
    EXPECT_TRUE(held);
    // The journal holds only what came after the snapshot's copy.
    const size_t after = table_->state_file().journal_lines();
    EXPECT_LT(after, lines_before);
    EXPECT_EQ(after, 500u + 100u + 1u + 10u) << "phase B's and C's lines";
    const std::string journal = read(state() + ".journal");
    EXPECT_EQ(static_cast<size_t>(std::count(journal.begin(), journal.end(), '\n')), after);
    EXPECT_FALSE(std::filesystem::exists(state() + ".journal.tmp"));
    expect_whole_state(10);
    // And a restart (a reboot: the kernel's lists empty) restores exactly that.
    maps_.hosts.clear();
    maps_.cidrs.clear();
    BlockTable next(maps_, state());
    auto r = next.restore();
    EXPECT_EQ(r.warning, "");
    EXPECT_EQ(r.restored, expected_blocks(10).size());
}

// kill -9 at every step of a compaction, in a child process: what is on the
// disk afterwards loads, and holds every change that was saved.
TEST_F(CompactionTest, AKillAtAnyStepLeavesAWholeState)
{
    for (const char* step : {"writing", "written", "renamed", "copied", "tail", "replaced"}) {
        SCOPED_TRACE(step);
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        maps_ = FakeMaps{};
        maps_.host_cap = 100000;
        maps_.cidr_cap = maps_.allow_cap = 10;
        table_ = std::make_unique<BlockTable>(maps_, state());
        table_->async_snapshot_from = 0;
        pid_t child = fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            // The child: phase A starts a compaction, whose thread waits at
            // its first step for phase B's lines; at `step` the process dies.
            std::atomic<bool> b_done{false};
            const std::string target = step;
            table_->restore();
            if (!table_->save_if_dirty().error.empty())
                _exit(10);
            for (int i = 0; i < 60000 && table_->compacting(); i++) {
                table_->save_if_dirty();
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            table_->state_file().compaction_hook = [&](const char* s) {
                for (int i = 0; i < 60000 && !b_done; i++)
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                if (target == s)
                    raise(SIGKILL);
            };
            if (table_->block_many(items(0, 5000, "a"), false).added.size() != 5000 ||
                !std::holds_alternative<BlockRecord>(
                    table_->block(P("198.51.100.0/24"), std::nullopt, "a prefix", false)) ||
                table_->unblock_many(prefixes(0, 2000)).removed.size() != 2000 ||
                !table_->save_if_dirty().error.empty() || !table_->compacting())
                _exit(11);
            if (table_->block_many(items(5000, 5500, "b"), false).added.size() != 500 ||
                table_->unblock_many(prefixes(2000, 2100)).removed.size() != 100 ||
                !table_->allow(P("203.0.113.0/24")).error.empty() ||
                !table_->save_if_dirty().error.empty())
                _exit(12);
            b_done = true;
            for (int i = 0; i < 60000 && table_->compacting(); i++) {
                table_->save_if_dirty();
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            _exit(13); // the step never came
        }
        int status = 0;
        pid_t got = 0;
        auto deadline = std::chrono::steady_clock::now() + seconds(90);
        while ((got = waitpid(child, &status, WNOHANG)) == 0 &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (got == 0) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            FAIL() << "the child did not end in 90 s";
        }
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            << "the child exited " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        expect_whole_state();
    }
}

// A stop (SIGTERM) abandons a compaction under way at once: the journal is
// whole, and the next start reads everything.
TEST_F(CompactionTest, AStopAbandonsACompactionAndLosesNothing)
{
    std::atomic<bool> b_done{false};
    phase_a([&](const char*) {
        for (int i = 0; i < 60000 && !b_done; i++)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    ASSERT_TRUE(table_->compacting());
    phase_b();
    b_done = true;
    ASSERT_EQ(table_->save_if_dirty(/*stopping=*/true).error, "");
    EXPECT_FALSE(table_->compacting());
    expect_whole_state();
}

} // namespace
} // namespace connwatch::test
