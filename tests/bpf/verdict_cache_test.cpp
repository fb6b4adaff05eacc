// SPDX-License-Identifier: GPL-2.0-only
// The per-CPU verdict cache of the block path (bpf/verdict.h, blocked()): a
// cached drop must never outlive what the blocklists say. Each check fills
// the cache on every CPU (one pinned thread per CPU runs the frame there:
// BPF_PROG_TEST_RUN runs the program on the caller's CPU, and the cache is
// per CPU), confirms from the map that every CPU's slot holds the verdict,
// changes the lists through XdpProgram as connwatchd does, and expects the
// very next packet on every CPU to pass: a removed block (single and batched),
// a prefix block removed, a CIDR block removed, an allow entry added inside a
// CIDR block, a block rewritten with a shorter deadline, an automatic block
// lifted. Deadlines are honoured from the cache itself (the test clock). The
// cache really answers on its own (a block deleted behind XdpProgram's back
// is still dropped until the generation moves), two sources sharing a slot
// never take each other's verdict, and with the cache off
// (config.verdict_gen 0) nothing is written to it.
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <cstring>
#include <functional>
#include <thread>

#include "blocks/kernel_maps.h"
#include "map_by_name.h"
#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

// Runs fn on CPU `cpu` (a thread pinned there, joined before returning).
void on_cpu(int cpu, const std::function<void()>& fn)
{
    bool pinned = false;
    std::thread t([&] {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        pinned = pthread_setaffinity_np(pthread_self(), sizeof(one), &one) == 0 &&
                 sched_getcpu() == cpu;
        if (pinned)
            fn();
    });
    t.join();
    ASSERT_TRUE(pinned) << "could not run on CPU " << cpu;
}

// The slot the program uses for a source (bpf/verdict.h: the same macro).
uint32_t slot_of(const std::string& src)
{
    cw_addr k = addr(src).to_abi();
    uint64_t hi, lo;
    std::memcpy(&hi, &k.b[0], 8);
    std::memcpy(&lo, &k.b[8], 8);
    return CW_VERDICT_INDEX(hi, lo);
}

class VerdictCache : public XdpTest {
protected:
    void SetUp() override
    {
        XdpTest::SetUp();
        if (HasFatalFailure() || IsSkipped())
            return;
        cpus_ = usable_cpus();
        ASSERT_FALSE(cpus_.empty());
        ASSERT_TRUE(prog_->verdict_cache()) << "the cache is on by default";
        ASSERT_NE(prog_->config().verdict_gen, 0u);
    }

    // The frame on every CPU; expects `action` and exactly the verdict
    // counter `stat` each time.
    void expect_everywhere(const std::string& src, int action, cw_stat stat, const char* what)
    {
        Bytes f = tcp_from(src, 40000, 443, kAck).build();
        for (int cpu : cpus_) {
            SCOPED_TRACE(std::string(what) + ", " + src + " on CPU " + std::to_string(cpu));
            on_cpu(cpu, [&] {
                RunResult r = run(f);
                EXPECT_EQ(r.action, action);
                EXPECT_EQ(r.delta, verdict(stat));
            });
        }
    }

    // Every CPU's slot of src holds its drop verdict under the current
    // generation: the next packet there is answered from the cache.
    void expect_cached(const std::string& src, cw_stat stat)
    {
        auto slots = prog_->verdict_slots(addr(src));
        uint64_t gen = prog_->verdict_epoch();
        ASSERT_NE(gen, 0u);
        ASSERT_FALSE(slots.empty());
        for (int cpu : cpus_) {
            SCOPED_TRACE("slot of " + src + " on CPU " + std::to_string(cpu));
            const cw_verdict_slot& s = slots.at(static_cast<size_t>(cpu));
            EXPECT_EQ(s.tag >> 8, gen);
            EXPECT_EQ(Address(s.addr), addr(src));
            EXPECT_EQ(s.tag & 0xff, static_cast<uint64_t>(stat));
        }
    }

    // Drops src on every CPU twice: the first fills the cache, the second is
    // answered by it.
    void fill(const std::string& src, cw_stat stat)
    {
        expect_everywhere(src, XDP_DROP, stat, "filling the cache");
        expect_cached(src, stat);
        expect_everywhere(src, XDP_DROP, stat, "from the cache");
    }

    std::vector<int> cpus_;
};

TEST_F(VerdictCache, RemovedBlockPassesFromTheNextPacketOnEveryCpu)
{
    for (const std::string src : {"203.0.113.7", "2001:db8:77::9"}) {
        for (int round = 0; round < 3; round++) {
            SCOPED_TRACE(src + ", round " + std::to_string(round));
            ASSERT_TRUE(prog_->block_add(addr(src), manual_block(now(), 0)));
            fill(src, CW_STAT_DROP_BLOCKED);
            ASSERT_TRUE(prog_->block_remove(addr(src)));
            expect_everywhere(src, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "after the unblock");
        }
    }
}

TEST_F(VerdictCache, BatchedRemovalsRetireTheCache)
{
    const std::vector<std::string> srcs = {"203.0.113.10", "203.0.113.11", "2001:db8:5::1"};
    std::vector<cw_addr> keys;
    for (const auto& s : srcs)
        keys.push_back(addr(s).to_abi());

    // block_add_batch, then block_remove_batch (the expiry sweep, unblock
    // --file, flush, CrowdSec withdrawals) with a key that is not there in
    // the middle.
    std::vector<cw_block> values(keys.size(), manual_block(now(), 0));
    ASSERT_EQ(prog_->block_add_batch(keys, values), keys.size());
    for (const auto& s : srcs)
        fill(s, CW_STAT_DROP_BLOCKED);
    auto with_gap = keys;
    with_gap.insert(with_gap.begin() + 1, addr("198.18.0.1").to_abi());
    std::vector<bool> done;
    EXPECT_EQ(prog_->block_remove_batch(with_gap, &done), keys.size());
    for (const auto& s : srcs)
        expect_everywhere(s, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "after block_remove_batch");
}

TEST_F(VerdictCache, DeadlineHonouredThroughTheCache)
{
    const std::string src = "203.0.113.20";
    ASSERT_TRUE(prog_->block_add(addr(src), manual_block(now(), now() + 10 * kSec)));
    fill(src, CW_STAT_DROP_BLOCKED);
    // Cached for the time left in the longest jiffies (10 ms; the test clock
    // counts its jiffies so): 10 s = 1000 of them.
    auto slots = prog_->verdict_slots(addr(src));
    for (int cpu : cpus_)
        EXPECT_EQ(slots.at(static_cast<size_t>(cpu)).until_jiffies,
                  now() / CW_JIFFY_MAX_NS + 1000);
    advance(10 * kSec - 1);
    expect_everywhere(src, XDP_DROP, CW_STAT_DROP_BLOCKED, "1 ns before the deadline");
    advance(1);
    // The block is still in the map (userspace sweeps it later): the cache's
    // own copy of the deadline ends the drops, and so does the map's.
    ASSERT_TRUE(prog_->block_get(addr(src)).has_value());
    expect_everywhere(src, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "at the deadline");
}

TEST_F(VerdictCache, ABlockWithoutDeadlineIsCachedWithout)
{
    const std::string src = "203.0.113.22";
    ASSERT_TRUE(prog_->block_add(addr(src), manual_block(now(), 0)));
    fill(src, CW_STAT_DROP_BLOCKED);
    auto slots = prog_->verdict_slots(addr(src));
    for (int cpu : cpus_)
        EXPECT_EQ(slots.at(static_cast<size_t>(cpu)).until_jiffies, 0u);
    // A block ending within the longest jiffy is not cached at all.
    const std::string soon = "203.0.113.23";
    ASSERT_TRUE(prog_->block_add(addr(soon), manual_block(now(), now() + CW_JIFFY_MAX_NS)));
    expect_everywhere(soon, XDP_DROP, CW_STAT_DROP_BLOCKED, "ending within a jiffy");
    for (const auto& slot : prog_->verdict_slots(addr(soon)))
        EXPECT_NE(Address(slot.addr), addr(soon));
}

TEST_F(VerdictCache, ShorterDeadlineRewrittenIsHonoured)
{
    const std::string src = "203.0.113.21";
    ASSERT_TRUE(prog_->block_add(addr(src), manual_block(now(), 0))); // until removed
    fill(src, CW_STAT_DROP_BLOCKED);
    // Rewritten with a deadline in 1 s (blocked again with a duration).
    ASSERT_TRUE(prog_->block_add(addr(src), manual_block(now(), now() + kSec)));
    expect_everywhere(src, XDP_DROP, CW_STAT_DROP_BLOCKED, "before the new deadline");
    advance(kSec);
    expect_everywhere(src, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "at the new deadline");
    // The same through a batch (an import rewriting a block).
    ASSERT_TRUE(prog_->block_add(addr(src), manual_block(now(), 0)));
    fill(src, CW_STAT_DROP_BLOCKED);
    std::vector<cw_addr> keys{addr(src).to_abi()};
    std::vector<cw_block> values{manual_block(now(), now() + kSec)};
    ASSERT_EQ(prog_->block_add_batch(keys, values), 1u);
    advance(kSec);
    expect_everywhere(src, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "at the batch's deadline");
}

TEST_F(VerdictCache, PrefixBlockRemovedPassesItsSources)
{
    // An automatic /64 block as the kernel (or connwatchd, at a full list)
    // writes it: the masked key, prefix_len 64, sources counted per /64.
    cw_config c = default_config();
    c.ipv6_prefix = 64;
    prog_->set_config(c);
    const std::string net = "2001:db8:aa::", src = "2001:db8:aa::5";
    ASSERT_TRUE(prog_->block_add(addr(net), manual_block(now(), 0, 64)));
    fill(src, CW_STAT_DROP_BLOCKED_PREFIX);
    fill("2001:db8:aa::6", CW_STAT_DROP_BLOCKED_PREFIX);
    ASSERT_TRUE(prog_->block_remove(addr(net)));
    expect_everywhere(src, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "after the prefix unblock");
    expect_everywhere("2001:db8:aa::6", XDP_PASS, CW_STAT_PASS_TCP_OTHER,
                      "after the prefix unblock");
}

TEST_F(VerdictCache, AutomaticBlockLiftedPasses)
{
    // The program blocks the scanner itself; its drops are then cached; an
    // unblock through XdpProgram (connwatchctl unblock) ends them everywhere.
    for (uint16_t port = 1; port <= 4; port++)
        syn(kScanner, port);
    ASSERT_TRUE(prog_->block_get(addr(kScanner)).has_value()) << "the scan was not blocked";
    fill(kScanner, CW_STAT_DROP_BLOCKED);
    ASSERT_TRUE(prog_->block_remove(addr(kScanner)));
    expect_everywhere(kScanner, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "after the unblock");
}

TEST_F(VerdictCache, CidrUnblockHonoured)
{
    const std::string src = "198.51.100.77", src6 = "2001:db8:99::5";
    Cidr net(addr("198.51.100.0"), 24), net6(addr("2001:db8:99::"), 48);
    ASSERT_TRUE(prog_->cidr_block_add(net, manual_block(now(), 0)));
    ASSERT_TRUE(prog_->cidr_block_add(net6, manual_block(now(), 0)));
    fill(src, CW_STAT_DROP_BLOCKED_CIDR);
    fill(src6, CW_STAT_DROP_BLOCKED_CIDR);
    ASSERT_TRUE(prog_->cidr_block_remove(net));
    expect_everywhere(src, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "after the CIDR unblock");
    expect_everywhere(src6, XDP_DROP, CW_STAT_DROP_BLOCKED_CIDR, "the other prefix stays");
    // A CIDR block rewritten with a shorter deadline.
    ASSERT_TRUE(prog_->cidr_block_add(net6, manual_block(now(), now() + kSec)));
    advance(kSec);
    expect_everywhere(src6, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "at the rewritten deadline");
}

TEST_F(VerdictCache, PrefixesImportedAndRemovedInOneRequestRetireOnce)
{
    // KernelMaps::add_blocks / remove_blocks (an import, an unblock --file)
    // write the trie one prefix at a time and retire the cache once after
    // them all: the next packet on every CPU still sees every removal.
    KernelMaps maps(*prog_);
    Cidr a(addr("198.51.100.0"), 24), b(addr("2001:db8:98::"), 48);
    auto added = maps.add_blocks({{a, manual_block(now(), 0)}, {b, manual_block(now(), 0)}});
    ASSERT_EQ(added, std::vector<bool>({true, true}));
    fill("198.51.100.9", CW_STAT_DROP_BLOCKED_CIDR);
    fill("2001:db8:98::9", CW_STAT_DROP_BLOCKED_CIDR);
    uint64_t before = prog_->config().verdict_gen;
    auto removed = maps.remove_blocks({a, b});
    ASSERT_EQ(removed, std::vector<bool>({true, true}));
    EXPECT_EQ(prog_->config().verdict_gen, before + 1) << "one retire for the whole request";
    expect_everywhere("198.51.100.9", XDP_PASS, CW_STAT_PASS_TCP_OTHER, "after the removals");
    expect_everywhere("2001:db8:98::9", XDP_PASS, CW_STAT_PASS_TCP_OTHER, "after the removals");
}

TEST_F(VerdictCache, AllowEntryInsideCidrBlockHonoured)
{
    const std::string src = "198.51.100.78";
    ASSERT_TRUE(prog_->cidr_block_add(Cidr(addr("198.51.100.0"), 24), manual_block(now(), 0)));
    fill(src, CW_STAT_DROP_BLOCKED_CIDR);
    prog_->allow_add(Cidr::host(addr(src)));
    expect_everywhere(src, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "after the allow entry");
    expect_everywhere("198.51.100.79", XDP_DROP, CW_STAT_DROP_BLOCKED_CIDR, "a neighbour");
    // And back: the allow entry removed, the prefix drops it again.
    ASSERT_TRUE(prog_->allow_remove(Cidr::host(addr(src))));
    expect_everywhere(src, XDP_DROP, CW_STAT_DROP_BLOCKED_CIDR, "allow entry removed");
}

TEST_F(VerdictCache, TheCacheAnswersUntilTheGenerationMoves)
{
    // Proof that the cache, not the map, answers a cached source -- and so
    // that every removal must retire it: deleted from block_addr directly
    // (not through XdpProgram, so no new generation), the source is still
    // dropped on every CPU; one retire_verdicts() later it passes.
    const std::string src = "203.0.113.30";
    ASSERT_TRUE(prog_->block_add(addr(src), manual_block(now(), 0)));
    fill(src, CW_STAT_DROP_BLOCKED);
    int fd = map_fd_by_name(prog_->prog_fd(), "block_addr");
    ASSERT_GE(fd, 0);
    cw_addr k = addr(src).to_abi();
    ASSERT_EQ(bpf_map_delete_elem(fd, &k), 0);
    close(fd);
    expect_everywhere(src, XDP_DROP, CW_STAT_DROP_BLOCKED, "stale, by design of this test");
    prog_->retire_verdicts();
    expect_everywhere(src, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "after retire_verdicts");
}

TEST_F(VerdictCache, SourcesSharingASlotKeepTheirOwnVerdicts)
{
    // An IPv4 and an IPv6 source in the slot of a third, found with the
    // program's own index.
    const std::string a = "203.0.113.40";
    std::string b, b6;
    for (uint32_t i = 1; i < 4'000'000 && (b.empty() || b6.empty()); i++) {
        std::string v4 = "10." + std::to_string(i >> 16 & 255) + "." +
                         std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255);
        if (b.empty() && slot_of(v4) == slot_of(a))
            b = v4;
        char v6[64];
        std::snprintf(v6, sizeof(v6), "2001:db8:%x::%x", i >> 16, i & 0xffff);
        if (b6.empty() && slot_of(v6) == slot_of(a))
            b6 = v6;
    }
    ASSERT_FALSE(b.empty());
    ASSERT_FALSE(b6.empty());
    ASSERT_TRUE(prog_->block_add(addr(a), manual_block(now(), 0)));
    fill(a, CW_STAT_DROP_BLOCKED);
    expect_everywhere(b, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "unblocked source in a's slot");
    expect_everywhere(b6, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "unblocked source in a's slot");
    ASSERT_TRUE(prog_->block_add(addr(b), manual_block(now(), 0)));
    fill(b, CW_STAT_DROP_BLOCKED); // takes the slot over
    expect_everywhere(a, XDP_DROP, CW_STAT_DROP_BLOCKED, "a, evicted from its slot");
    expect_everywhere(b6, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "still not blocked");
}

TEST_F(VerdictCache, OffMeansNeitherReadNorWritten)
{
    // Generation 0 (a zeroed config, as the differential fuzzer writes it):
    // the program behaves as before the cache.
    prog_->set_verdict_cache(false);
    EXPECT_EQ(prog_->config().verdict_gen, 0u);
    prog_->set_config(default_config());
    EXPECT_EQ(prog_->config().verdict_gen, 0u) << "set_config keeps the cache off";
    const std::string src = "203.0.113.50";
    ASSERT_TRUE(prog_->block_add(addr(src), manual_block(now(), 0)));
    expect_everywhere(src, XDP_DROP, CW_STAT_DROP_BLOCKED, "cache off");
    for (const auto& s : prog_->verdict_slots(addr(src)))
        EXPECT_EQ(s.tag, 0u) << "a slot was written with the cache off";
    ASSERT_TRUE(prog_->block_remove(addr(src)));
    expect_everywhere(src, XDP_PASS, CW_STAT_PASS_TCP_OTHER, "removed, cache off");
    // On again: a generation never used before.
    uint64_t before = prog_->config().verdict_gen;
    prog_->set_verdict_cache(true);
    EXPECT_GT(prog_->config().verdict_gen, before);
    ASSERT_TRUE(prog_->block_add(addr(src), manual_block(now(), 0)));
    fill(src, CW_STAT_DROP_BLOCKED);
}

} // namespace
} // namespace connwatch::test
