// SPDX-License-Identifier: GPL-2.0-only
// What a new connwatchd takes over from the program an earlier one left
// running (docs/ARCHITECTURE.md, "No gap on restart"): the pinned maps of the
// same layout are shared, so counters and scan state go on; one of another
// layout starts afresh, with the old counters read for the report and the old
// ring buffer kept to be drained.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "packet.h"
#include "kernel/program.h"

namespace connwatch::test {
namespace {

class Takeover : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (geteuid() != 0)
            GTEST_SKIP() << "the BPF tests load an XDP program: run them as root";
        dir_ = "/sys/fs/bpf/cw-bpftest-takeover-" + std::to_string(getpid());
        remove_dir();
    }
    void TearDown() override { remove_dir(); }
    void remove_dir()
    {
        for (const auto& n : pinned())
            unlink((dir_ + "/" + n).c_str());
        rmdir(dir_.c_str());
    }
    std::set<std::string> pinned() const
    {
        std::set<std::string> out;
        if (DIR* d = opendir(dir_.c_str())) {
            while (dirent* e = readdir(d))
                if (e->d_name[0] != '.')
                    out.insert(e->d_name);
            closedir(d);
        }
        return out;
    }
    LoadSettings settings() const
    {
        LoadSettings s;
        s.pin_dir = dir_;
        s.test_clock = true;
        return s;
    }
    static void syn(const XdpProgram& prog, uint16_t dport)
    {
        Bytes frame = tcp4("192.0.2.10", 40000, dport).build();
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                    .data_size_in = static_cast<uint32_t>(frame.size()), .repeat = 1);
        ASSERT_EQ(bpf_prog_test_run_opts(prog.prog_fd(), &opts), 0);
    }
    std::string dir_;
};

TEST_F(Takeover, TheNextProgramSharesCountersAndScanStateAndSaysWhatWasMissed)
{
    XdpProgram old(settings());
    syn(old, 22);
    old.record_seen(old.stats()); // what the old daemon reported
    syn(old, 23);                 // what happened after it ended
    EXPECT_FALSE(old.same_as_pinned().has_value()); // nothing was pinned before it

    XdpProgram next(settings());
    EXPECT_TRUE(next.stats_taken_over());
    ASSERT_TRUE(next.same_as_pinned().has_value());
    EXPECT_TRUE(*next.same_as_pinned());
    ASSERT_TRUE(next.previous_seen().has_value());
    ASSERT_TRUE(next.previous_stats().has_value());
    EXPECT_EQ((*next.previous_seen())[CW_STAT_SYN], 1u);
    EXPECT_EQ((*next.previous_stats())[CW_STAT_SYN], 2u);
    EXPECT_EQ(next.stats()[CW_STAT_SYN], 2u);
    // The old program's scan state is the new one's: two ports already.
    auto st = next.scan_state(Address::parse("192.0.2.10").value());
    ASSERT_TRUE(st.has_value());
    syn(next, 24);
    EXPECT_EQ(old.stats()[CW_STAT_SYN], 3u); // one map, two programs
    EXPECT_LT(next.previous_events_fd(), 0);
    for (const auto& w : next.warnings())
        ADD_FAILURE() << "unexpected warning: " << w;

    // A clean stop: only the blocklists (and the offenders' history) stay.
    next.unpin_runtime();
    EXPECT_EQ(pinned(), (std::set<std::string>{"block_addr", "block_cidr", "offenders"}));
}

TEST_F(Takeover, TheNextProgramRetiresTheOldOnesCachedVerdicts)
{
    // The config entry is shared: the program still attached reads the
    // generation the next one writes. The next one must go on from the old
    // one's, never back (a number the old cache may hold), and its first
    // write already retires every verdict the old program cached.
    XdpProgram old(settings());
    for (int i = 0; i < 5; i++)
        old.retire_verdicts();
    uint64_t g = old.config().verdict_gen;
    ASSERT_GT(g, 5u);
    XdpProgram next(settings());
    EXPECT_GT(next.config().verdict_gen, g);
    EXPECT_EQ(old.config().verdict_gen, next.config().verdict_gen) << "one config entry";
}

TEST_F(Takeover, AMapOfAnotherLayoutStartsAfreshAndTheOldOnesAreRead)
{
    // What an older connwatchd could have left: fewer counters, another scan
    // state value, a smaller ring buffer.
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
    int ncpu = libbpf_num_possible_cpus();
    ASSERT_GT(ncpu, 0);
    int stats = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "stats", 4, 8, CW_STAT_SYN + 1, nullptr);
    ASSERT_GE(stats, 0);
    std::vector<uint64_t> five(static_cast<size_t>(ncpu), 5);
    uint32_t key = CW_STAT_SYN;
    ASSERT_EQ(bpf_map_update_elem(stats, &key, five.data(), BPF_ANY), 0);
    int scan = bpf_map_create(BPF_MAP_TYPE_HASH, "scan_state", 16, 8, 16, nullptr);
    int events = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "events", 0, 0, 4096, nullptr);
    ASSERT_GE(scan, 0);
    ASSERT_GE(events, 0);
    ASSERT_EQ(bpf_obj_pin(stats, (dir_ + "/stats").c_str()), 0);
    ASSERT_EQ(bpf_obj_pin(scan, (dir_ + "/scan_state").c_str()), 0);
    ASSERT_EQ(bpf_obj_pin(events, (dir_ + "/events").c_str()), 0);
    close(stats);
    close(scan);
    close(events);

    XdpProgram next(settings());
    EXPECT_FALSE(next.stats_taken_over());
    ASSERT_TRUE(next.previous_stats().has_value());
    EXPECT_EQ((*next.previous_stats())[CW_STAT_SYN], 5u * static_cast<uint64_t>(ncpu));
    EXPECT_EQ(next.stats()[CW_STAT_SYN], 0u);
    EXPECT_GE(next.previous_events_fd(), 0);
    auto w = next.warnings();
    EXPECT_TRUE(std::any_of(w.begin(), w.end(), [](const std::string& s) {
        return s.find("scan_state has another layout") != std::string::npos;
    }));
    // The new maps are the pinned ones now.
    int fd = bpf_obj_get((dir_ + "/scan_state").c_str());
    ASSERT_GE(fd, 0);
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    ASSERT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
    close(fd);
    EXPECT_EQ(info.value_size, sizeof(cw_scan_state));
}

} // namespace
} // namespace connwatch::test
