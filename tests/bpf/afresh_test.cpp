// SPDX-License-Identifier: GPL-2.0-only
// A scanner whose block has ended is judged afresh from its next port. The
// scan state's "reported in this window" mark must not outlive the block:
// userspace resets the state when it removes a block (BlockTable, through the
// real KernelMaps here), and the kernel itself when it finds the block lapsed
// before userspace has swept it.
#include "blocks/block_table.h"
#include "blocks/kernel_maps.h"
#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

class Afresh : public XdpTest {
protected:
    // SYNs to `ports`: all plain attempts but the last, which must be a scan
    // with exactly these ports, blocked.
    void expect_scan_blocked(std::initializer_list<uint16_t> ports)
    {
        size_t i = 0;
        for (uint16_t port : ports) {
            SCOPED_TRACE("port " + std::to_string(port));
            RunResult r = syn(kScanner, port);
            if (++i < ports.size()) {
                expect_attempt_only(r);
                continue;
            }
            auto scans = events_of(r, CW_EV_SCAN);
            ASSERT_EQ(scans.size(), 1u) << describe(r.events);
            EXPECT_EQ(scans[0].action, CW_ACT_BLOCKED);
            EXPECT_EQ(ports_of(scans[0]), std::set<uint16_t>(ports));
        }
        EXPECT_EQ(syn(kScanner, 9999).delta, verdict(CW_STAT_DROP_BLOCKED));
    }
    void set_block_duration(uint64_t ns)
    {
        cw_config cfg = default_config();
        cfg.block_ns = ns;
        prog_->set_config(cfg);
    }
    // Not written: these tests never save.
    std::string state_path() const { return "/nonexistent/connwatch-test/state.json"; }
};

TEST_F(Afresh, UnblockedScannerIsDetectedAgainAtOnce)
{
    expect_scan_blocked({22, 80, 443, 8080});
    KernelMaps maps(*prog_);
    BlockTable table(maps, state_path());
    ASSERT_TRUE(table.unblock(Cidr::host(addr(kScanner))));
    EXPECT_FALSE(prog_->scan_state(addr(kScanner))) << "unblock left the scan state";
    // Seconds later, well within the window of the first report.
    advance(5 * kSec);
    expect_scan_blocked({1, 2, 3, 4});
}

// A flush resets the scan state of the sources it unblocks in one batch
// (the few the scan state holds, not one call a block).
TEST_F(Afresh, FlushedScannerIsDetectedAgainAtOnce)
{
    expect_scan_blocked({22, 80, 443, 8080});
    KernelMaps maps(*prog_);
    BlockTable table(maps, state_path());
    table.restore();
    ASSERT_TRUE(prog_->scan_state(addr(kScanner)));
    table.flush_begin(now());
    while (!table.flush_step(BlockTable::kFlushSlice)) {
    }
    EXPECT_EQ(table.flushed().scan, 1u);
    EXPECT_TRUE(prog_->block_list().empty());
    EXPECT_FALSE(prog_->scan_state(addr(kScanner))) << "flush left the scan state";
    advance(5 * kSec);
    expect_scan_blocked({1, 2, 3, 4});
}

TEST_F(Afresh, ScannerWhoseBlockWasSweptIsDetectedAgain)
{
    set_block_duration(10 * kSec); // shorter than the 60 s window
    expect_scan_blocked({22, 80, 443, 8080});
    advance(10 * kSec);
    KernelMaps maps(*prog_);
    BlockTable table(maps, state_path());
    ASSERT_EQ(table.sweep_expired(now()).expired.size(), 1u);
    EXPECT_FALSE(prog_->scan_state(addr(kScanner)));
    expect_scan_blocked({1, 2, 3, 4});
}

// Between the kernel's deadline and userspace's sweep (a second; longer while
// connwatchd is stalled or gone), the kernel judges afresh by itself: its old
// ports are forgotten too, exactly as after a sweep.
TEST_F(Afresh, BlockLapsedInTheKernelBeforeTheSweepIsJudgedAfresh)
{
    set_block_duration(10 * kSec);
    expect_scan_blocked({22, 80, 443, 8080});
    advance(10 * kSec);
    ASSERT_EQ(prog_->block_list().size(), 1u) << "the expired entry is still there, unswept";
    expect_scan_blocked({1, 2, 3, 4});
    // Renewed in place: one entry, the new deadline.
    auto blocks = prog_->block_list();
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].second.expires_ns, now() + 10 * kSec);
}

// What must not change: a source reported but not blocked (here allowlisted)
// stays reported once per window, and an expired block older than the report
// is no reason to forget it.
TEST_F(Afresh, ReportedButNotBlockedStaysOncePerWindow)
{
    cw_block old{};
    old.created_ns = now();
    old.expires_ns = now() + kSec;
    old.origin = CW_ORIGIN_MANUAL;
    ASSERT_TRUE(prog_->block_add(addr(kScanner), old));
    advance(2 * kSec);
    prog_->allow_add(Cidr::host(addr(kScanner)));
    for (uint16_t port : {22, 80, 443})
        expect_attempt_only(syn(kScanner, port));
    RunResult r = syn(kScanner, 8080);
    ASSERT_EQ(events_of(r, CW_EV_SCAN).size(), 1u);
    EXPECT_EQ(events_of(r, CW_EV_SCAN)[0].action, CW_ACT_ALLOWLISTED);
    for (uint16_t port = 1; port <= 8; port++) {
        advance(kSec);
        expect_attempt_only(syn(kScanner, port));
    }
}

} // namespace
} // namespace connwatch::test
