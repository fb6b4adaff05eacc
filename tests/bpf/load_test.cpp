// SPDX-License-Identifier: GPL-2.0-only
// Every other BPF test loads the test-clock variant of the program. The
// verifier sees a different program without it (cw_test_clock is a load-time
// constant, so the branch to bpf_ktime_get_ns() is the only one left), and
// that is the one connwatchd loads: it must pass the verifier too, and stamp
// events with the kernel's CLOCK_MONOTONIC.
#include <bpf/bpf.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "packet.h"
#include "kernel/event_reader.h"
#include "base/clock.h"
#include "kernel/program.h"

namespace connwatch::test {
namespace {

TEST(Load, ProductionProgramPassesTheVerifierAndUsesTheKernelClock)
{
    if (geteuid() != 0)
        GTEST_SKIP() << "the BPF tests load an XDP program: run them as root";
    XdpProgram prog{LoadSettings{}};
    ASSERT_GE(prog.prog_fd(), 0);
    std::vector<cw_event> events;
    EventReader reader(prog, [&](const cw_event& e) { events.push_back(e); });

    Bytes frame = tcp4("192.0.2.10", 40000, 22).build();
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()), .repeat = 1);
    const uint64_t before = monotonic_now_ns();
    ASSERT_EQ(bpf_prog_test_run_opts(prog.prog_fd(), &opts), 0);
    const uint64_t after = monotonic_now_ns();
    EXPECT_EQ(opts.retval, static_cast<uint32_t>(XDP_PASS));
    reader.consume();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, CW_EV_NEW_CONN);
    EXPECT_GE(events[0].ts_ns, before);
    EXPECT_LE(events[0].ts_ns, after);
}

} // namespace
} // namespace connwatch::test
