// SPDX-License-Identifier: GPL-2.0-only
// Repeat offenders (bpf/escalate.h): a source blocked again within
// escalation-window of the end of its previous automatic block gets the
// previous duration x escalation-factor, capped at max-block-duration; outside
// the window, or forgiven by an operator's unblock, it starts again at
// block-duration. With the test clock: no sleeping.
#include <sys/stat.h>
#include <unistd.h>

#include "blocks/block_table.h"
#include "blocks/kernel_maps.h"
#include "blocks/offenders.h"
#include "config/options.h"
#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

constexpr uint64_t kBase = 10 * kSec;    // block-duration
constexpr uint64_t kWindow = 100 * kSec; // escalation-window
constexpr uint64_t kCap = 35 * kSec;     // max-block-duration

class Escalate : public XdpTest {
protected:
    void SetUp() override
    {
        XdpTest::SetUp();
        if (IsSkipped())
            return;
        configure(2000);
    }
    void configure(uint32_t factor_milli, uint64_t base = kBase)
    {
        cw_config cfg = default_config();
        cfg.block_ns = base;
        cfg.escalation_window_ns = kWindow;
        cfg.escalation_factor_milli = factor_milli;
        cfg.max_block_ns = kCap;
        // No bound on new blocks: one test moves the clock back (a reboot),
        // which the token bucket would read as a burst.
        cfg.block_every_ns = 0;
        prog_->set_config(cfg);
    }
    // Four new ports from the scanner (the threshold is 3): the fourth is the
    // scan. Returns its event, which must say the source was blocked.
    cw_event scan()
    {
        RunResult r{};
        for (int i = 0; i < 4; i++)
            r = syn(kScanner, static_cast<uint16_t>(next_port_++));
        auto scans = events_of(r, CW_EV_SCAN);
        EXPECT_EQ(scans.size(), 1u) << describe(r.events);
        if (scans.empty())
            return {};
        EXPECT_EQ(scans[0].action, CW_ACT_BLOCKED);
        EXPECT_EQ(syn(kScanner, 9).delta, verdict(CW_STAT_DROP_BLOCKED)) << "not blocked";
        return scans[0];
    }
    // Scans; expects offence `n` and a block of `dur` from now.
    void expect_offence(uint32_t n, uint64_t dur)
    {
        SCOPED_TRACE("offence " + std::to_string(n));
        uint64_t at = now();
        cw_event e = scan();
        EXPECT_EQ(e.offence, n);
        EXPECT_EQ(e.expires_ns, at + dur);
        auto b = prog_->block_get(addr(kScanner));
        ASSERT_TRUE(b.has_value());
        EXPECT_EQ(b->expires_ns, at + dur);
        auto o = prog_->offender(addr(kScanner).to_abi());
        ASSERT_TRUE(o.has_value());
        EXPECT_EQ(o->offences, n);
        EXPECT_EQ(o->until_ns, at + dur);
        EXPECT_EQ(o->block_ns, dur);
    }
    std::string state_path() const { return "/nonexistent/connwatch-test/state.json"; }
    int next_port_ = 1000;
};

TEST_F(Escalate, OffWhenTheWindowIsZero)
{
    // What a zeroed config means (the differential fuzzer's): today's blocks.
    prog_->set_config(default_config());
    ASSERT_EQ(default_config().escalation_window_ns, 0u) << "escalation is off by default";
    uint64_t at = now();
    cw_event e = scan();
    EXPECT_EQ(e.offence, 0u);
    EXPECT_EQ(e.expires_ns, at + 3600 * kSec);
    EXPECT_TRUE(prog_->offender_list().empty()) << "no history kept with escalation off";
}

TEST_F(Escalate, AgainWithinTheWindowDoublesUpToTheCap)
{
    expect_offence(1, kBase);
    advance(kBase); // the block ends in the kernel (not swept: the kernel judges afresh)
    expect_offence(2, 2 * kBase);
    advance(2 * kBase + 50 * kSec); // inside the window after the block's end
    expect_offence(3, kCap);        // 40 s, capped at 35 s
    advance(kCap + kWindow - kSec); // a second before the window closes
    expect_offence(4, kCap);
}

TEST_F(Escalate, OutsideTheWindowStartsAgainAtTheBase)
{
    expect_offence(1, kBase);
    advance(kBase);
    expect_offence(2, 2 * kBase);
    advance(2 * kBase + kWindow); // the window measured from the block's end is over
    expect_offence(1, kBase);
}

TEST_F(Escalate, FractionalFactor)
{
    configure(1500);
    expect_offence(1, kBase);
    advance(kBase);
    expect_offence(2, 15 * kSec);
    advance(15 * kSec);
    expect_offence(3, 22'500 * kMs);
}

TEST_F(Escalate, FactorOneCountsWithoutLengthening)
{
    configure(1000);
    expect_offence(1, kBase);
    advance(kBase);
    expect_offence(2, kBase);
}

TEST_F(Escalate, BlocksUntilRemovedAreNotEscalated)
{
    configure(2000, /*base=*/0);
    cw_event e = scan();
    EXPECT_EQ(e.expires_ns, 0u);
    EXPECT_EQ(e.offence, 0u);
    EXPECT_TRUE(prog_->offender_list().empty());
}

// The operator's unblock forgives: the next block is a first offence again.
TEST_F(Escalate, UnblockByTheOperatorForgives)
{
    expect_offence(1, kBase);
    advance(kBase);
    expect_offence(2, 2 * kBase);
    KernelMaps maps(*prog_);
    BlockTable table(maps, state_path());
    ASSERT_TRUE(table.unblock(Cidr::host(addr(kScanner))));
    EXPECT_FALSE(prog_->offender(addr(kScanner).to_abi())) << "unblock kept the history";
    EXPECT_EQ(maps.forgiven(), 1u);
    advance(kSec); // within the window and the scan window alike
    expect_offence(1, kBase);
}

// An expiry swept by userspace forgives nothing.
TEST_F(Escalate, ExpiryDoesNotForgive)
{
    expect_offence(1, kBase);
    advance(kBase);
    KernelMaps maps(*prog_);
    BlockTable table(maps, state_path());
    ASSERT_EQ(table.sweep_expired(now()).expired.size(), 1u);
    EXPECT_TRUE(prog_->offender(addr(kScanner).to_abi()));
    expect_offence(2, 2 * kBase);
}

// A block lifted early by something that is not an operator's unblock (here
// the map entry deleted, as a CrowdSec withdrawal of the same address would)
// leaves the history: the chain goes on from the previous duration.
TEST_F(Escalate, HistoryAheadOfNowStillCounts)
{
    expect_offence(1, kBase);
    ASSERT_TRUE(prog_->block_remove(addr(kScanner)));
    prog_->scan_state_remove(addr(kScanner));
    advance(kSec); // the previous block's deadline is still 9 s ahead
    expect_offence(2, 2 * kBase);
}

// After a reboot userspace puts the history back with the times converted to
// the new boot's clock: a block that ended before this boot began has an
// until_ns "below zero", which the kernel must read as long ago, not as the
// far future.
TEST_F(Escalate, HistoryFromBeforeThisBootIsReadSigned)
{
    configure(2000);
    OffenderRecord r{addr(kScanner), 3, /*until=*/1'000'000 - 3 * 3600, /*block=*/20};
    // Now is 3600 s after boot here (kStart): the block ended 3 h ago, i.e.
    // 2 h before boot. Inside a 4 h window: escalates; inside 100 s: no.
    auto entries = offenders_to_kernel({r}, std::chrono::hours{4}, now(), 1'000'000);
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_GT(entries[0].second.until_ns, now()) << "expected a wrapped, 'negative' time";
    ASSERT_TRUE(prog_->offender_set(entries[0].first, entries[0].second));
    cw_config cfg = prog_->config();
    cfg.escalation_window_ns = 4 * 3600 * kSec;
    cfg.max_block_ns = 3600 * kSec;
    prog_->set_config(cfg);
    expect_offence(4, 40 * kSec);
    // The same history with the test's 100 s window is outside it: base.
    ASSERT_TRUE(prog_->offender_set(entries[0].first, entries[0].second));
    ASSERT_TRUE(prog_->block_remove(addr(kScanner)));
    prog_->scan_state_remove(addr(kScanner));
    configure(2000);
    expect_offence(1, kBase);
}

// The way round a reboot, through the file: what the kernel holds, saved at
// one instant and put back into an empty map at another, escalates the same.
TEST_F(Escalate, SavedAndRestoredHistoryEscalatesTheSame)
{
    expect_offence(1, kBase);
    advance(kBase);
    expect_offence(2, 2 * kBase);
    const std::time_t wall = 1'800'000'000;
    auto saved = offenders_from_kernel(prog_->offender_list(), std::chrono::seconds{100},
                                       now(), wall, 16);
    ASSERT_EQ(saved.size(), 1u);
    EXPECT_EQ(saved[0].offences, 2u);
    EXPECT_EQ(saved[0].until, wall + 20);
    auto text = format_offenders(saved);
    std::vector<std::string> problems;
    auto back = parse_offenders(text, &problems);
    EXPECT_TRUE(problems.empty());
    ASSERT_EQ(back, saved);

    // "Reboot": the map is emptied; the new boot's clock reads 600 s; the
    // wall clock has moved 50 s since the save (the block ended 30 s ago).
    ASSERT_TRUE(prog_->offender_remove(addr(kScanner).to_abi()));
    ASSERT_TRUE(prog_->block_remove(addr(kScanner)));
    prog_->scan_state_remove(addr(kScanner));
    set_now(600 * kSec);
    for (const auto& [k, o] : offenders_to_kernel(back, std::chrono::seconds{100}, now(),
                                                  wall + 50))
        ASSERT_TRUE(prog_->offender_set(k, o));
    expect_offence(3, kCap);
}

// The history is pinned with the blocklists: a clean stop (unpin_runtime)
// leaves it, and the next program takes it over.
TEST(EscalatePins, HistorySurvivesARestart)
{
    if (geteuid() != 0)
        GTEST_SKIP() << "the BPF tests load an XDP program: run them as root";
    std::string dir = "/sys/fs/bpf/cw-bpftest-escalate-" + std::to_string(getpid());
    LoadSettings s;
    s.pin_dir = dir;
    s.test_clock = true;
    cw_addr key = addr(kScanner).to_abi();
    cw_offender o{};
    o.until_ns = 123 * kSec;
    o.block_ns = 20 * kSec;
    o.offences = 2;
    {
        XdpProgram first(s);
        EXPECT_FALSE(first.offenders_reused());
        ASSERT_TRUE(first.offender_set(key, o));
        first.unpin_runtime();
    }
    {
        XdpProgram second(s);
        EXPECT_TRUE(second.offenders_reused());
        auto got = second.offender(key);
        ASSERT_TRUE(got.has_value());
        EXPECT_EQ(got->offences, 2u);
        EXPECT_EQ(got->until_ns, 123 * kSec);
        second.unpin_runtime();
    }
    for (const char* map : {"block_addr", "block_cidr", "offenders"})
        unlink((dir + "/" + map).c_str());
    EXPECT_EQ(rmdir(dir.c_str()), 0) << dir;
}

} // namespace
} // namespace connwatch::test
