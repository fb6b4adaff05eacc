// SPDX-License-Identifier: GPL-2.0-only
// Every prefix of a valid SYN, cut at every byte: on a header boundary, a byte
// short of one, and inside each header. The verifier proves that no cut makes
// the program read past the frame; these tests prove the other half, that no
// cut makes it misreport: every cut frame passes, counts as unparsed, and
// reports nothing.
#include <cerrno>
#include <cstring>

#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

// Names the header a cut at `len` bytes falls into, for failure messages.
std::string where(const Packet& p, size_t len)
{
    std::string in = "?";
    for (const auto& [name, offset] : p.layout()) {
        if (offset > len)
            break;
        in = name;
    }
    return std::to_string(len) + " bytes, cut in " + in;
}

class Truncation : public XdpTest {
protected:
    void every_prefix(const Packet& p)
    {
        Bytes full = p.build();
        size_t refused = 0;
        for (size_t len = 0; len < full.size(); len++) {
            SCOPED_TRACE(where(p, len));
            Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
            RunResult r;
            int err = try_run(cut, &r);
            if (len < 14) {
                // BPF_PROG_TEST_RUN refuses any XDP frame shorter than an
                // Ethernet header (ETH_HLEN, 14) with EINVAL before the program
                // runs (bpf_test_init() in net/bpf/test_run.c), so the
                // program's own "< 14 bytes" branch cannot be reached from
                // here. A real NIC can hand XDP such a runt; should a kernel
                // ever let the test through, it must be passed as unparsed.
                if (err == -EINVAL) {
                    refused++;
                    continue;
                }
            }
            ASSERT_EQ(err, 0) << std::strerror(-err);
            EXPECT_EQ(r.action, XDP_PASS);
            EXPECT_EQ(r.delta, verdict(CW_STAT_PASS_UNPARSED));
            EXPECT_TRUE(r.events.empty()) << describe(r.events);
            EXPECT_EQ(r.out, cut);
        }
        // The frame itself is a SYN: the cuts were rejected for being cut.
        expect_attempt_only(run(full));
        RecordProperty("runts_refused_by_kernel", static_cast<int>(refused));
    }
};

// What this kernel lets BPF_PROG_TEST_RUN do with short frames, pinned down so
// a kernel that changes it is noticed (6.18 here): anything under 14 bytes is
// refused with EINVAL before the program runs; 14 bytes, an Ethernet header
// alone, runs -- and is a truncated IPv4 packet to the program.
TEST_F(Truncation, KernelRefusesFramesShorterThanAnEthernetHeader)
{
    Bytes frame = tcp4("192.0.2.10", 40000, 443).build();
    for (size_t len = 0; len < 14; len++) {
        RunResult r;
        EXPECT_EQ(try_run(Bytes(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(len)),
                          &r),
                  -EINVAL)
            << len << " bytes";
    }
    RunResult r = run(Bytes(frame.begin(), frame.begin() + 14));
    EXPECT_EQ(r.action, XDP_PASS);
    EXPECT_EQ(r.delta, verdict(CW_STAT_PASS_UNPARSED));
}

TEST_F(Truncation, Ipv4VlanSynWithOptions)
{
    Packet p = tcp4("192.0.2.10", 40000, 443);
    p.vlan(kEthVlan, 7);
    p.ipv4->options = {0x94, 0x04, 0, 0}; // router alert: IHL 6
    p.tcp->options = linux_syn_options(); // data offset 10
    // Ethernet 14, VLAN 4, IPv4 24, TCP 40.
    ASSERT_EQ(p.build().size(), 82u);
    every_prefix(p);
}

TEST_F(Truncation, Ipv6QinQSynWithExtensionHeaders)
{
    Packet p = tcp6("2001:db8:1::10", 40000, 443);
    p.vlan(kEthQinQ, 100).vlan(kEthVlan, 200);
    p.ipv6->ext = {hop_by_hop(), fragment(0, false), dest_options(16)};
    p.tcp->options = linux_syn_options();
    // Ethernet 14, two tags 8, IPv6 40, extensions 8 + 8 + 16, TCP 40.
    ASSERT_EQ(p.build().size(), 134u);
    every_prefix(p);
}

} // namespace
} // namespace connwatch::test
