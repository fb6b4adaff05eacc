// SPDX-License-Identifier: GPL-2.0-only
// Sources no packet may carry (bpf/martian.h): passed, counted in PASS_MARTIAN,
// never in the scan state, never blocked, never reported. Above all the
// v4-mapped IPv6 source ::ffff:a.b.c.d, whose 16 bytes are the IPv4 host's own
// key: it must neither match that host's blocks nor count in its scan state.
#include <net/if.h>
#include <sched.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>

#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

const StatDelta kMartian = verdict(CW_STAT_PASS_MARTIAN);

class Martian : public XdpTest {
protected:
    // Five SYNs to five ports (a scan from any other source) and an ACK: all
    // passed, the SYNs as martians, nothing recorded anywhere.
    void expect_martian(const std::string& src, cw_stat ack_verdict = CW_STAT_PASS_TCP_OTHER)
    {
        SCOPED_TRACE(src);
        for (uint16_t port : {22, 80, 443, 8080, 9000}) {
            RunResult r = syn(src, port);
            EXPECT_EQ(r.action, XDP_PASS);
            EXPECT_EQ(r.delta, kMartian);
            EXPECT_TRUE(r.events.empty()) << describe(r.events);
        }
        RunResult r = tcp(src, 22, kAck);
        EXPECT_EQ(r.action, XDP_PASS);
        EXPECT_EQ(r.delta, verdict(ack_verdict));
        EXPECT_FALSE(prog_->scan_state(addr(src))) << "it has a scan state";
        EXPECT_TRUE(prog_->block_list().empty());
    }
    // A SYN that is an ordinary attempt.
    void expect_ordinary(const std::string& src)
    {
        SCOPED_TRACE(src);
        expect_attempt_only(syn(src, 22));
        EXPECT_TRUE(prog_->scan_state(addr(src))) << src << " has no scan state";
    }
};

TEST_F(Martian, ImpossibleIpv4SourcesAreIgnored)
{
    for (const char* src : {"0.0.0.0", "0.1.2.3", "0.255.255.255", "224.0.0.1", "232.1.2.3",
                            "239.255.255.255", "255.255.255.255"})
        expect_martian(src);
}

TEST_F(Martian, ImpossibleIpv6SourcesAreIgnored)
{
    for (const char* src : {"::", "ff02::1", "ff05::1:3", "ff0e::1234"})
        expect_martian(src);
    // v4-mapped: every packet of it, the ACK too, before the block lookup.
    for (const char* src : {"::ffff:10.72.0.2", "::ffff:0.0.0.0", "::ffff:255.255.255.255"})
        expect_martian(src, CW_STAT_PASS_MARTIAN);
}

// On the edges of the ranges, and the two kept on purpose (martian.h): class E,
// which Linux answers, and the deprecated v4-compatible form, which aliases
// nothing.
TEST_F(Martian, NeighboursOfTheRangesAreOrdinarySources)
{
    for (const char* src : {"1.0.0.0", "126.255.255.255", "128.0.0.0", "223.255.255.255",
                            "240.0.0.1", "255.255.255.254", "::2", "::10.72.0.2",
                            "::fffe:10.72.0.2", "fe80::1", "feff::1", "100::1"})
        expect_ordinary(src);
}

TEST_F(Martian, LoopbackSourcesAreOrdinaryOnLoopback)
{
    ASSERT_EQ(ingress_ifindex_, 1) << "loopback is ifindex 1 in every namespace";
    expect_ordinary("127.0.0.1");
    expect_ordinary("127.255.0.9");
    expect_ordinary("::1");
}

// Runs fn on a thread of its own, in a network namespace of its own holding a
// veth pair, with the ifindex of one end. BPF_PROG_TEST_RUN finds the ingress
// device in the calling thread's namespace: this is how a frame "arrives" on a
// device other than loopback without touching the host's devices. The
// namespace, and the pair, go when the thread ends.
void on_other_device(const std::function<void(int)>& fn)
{
    std::thread t([&] {
        if (unshare(CLONE_NEWNET) != 0) {
            ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno);
            return;
        }
        // fork() copies the calling thread's namespaces: ip runs in this one.
        if (std::system("ip link add cwt0 type veth peer name cwt1") != 0) {
            ADD_FAILURE() << "could not make a veth pair in a new network namespace";
            return;
        }
        int ifindex = static_cast<int>(if_nametoindex("cwt0"));
        if (ifindex <= 1) {
            ADD_FAILURE() << "no ifindex for the veth pair";
            return;
        }
        fn(ifindex);
    });
    t.join();
}

TEST_F(Martian, LoopbackSourcesAreMartiansElsewhere)
{
    on_other_device([this](int ifindex) {
        ingress_ifindex_ = ifindex;
        expect_martian("127.0.0.1");
        expect_martian("127.1.2.3");
        expect_martian("::1");
        // The device itself is no reason: ordinary sources still count.
        expect_ordinary(kScanner);
    });
}

// nmap -S ::ffff:10.72.0.2 from the issue: a whole scan from the mapped form
// of an IPv4 host blocks nothing and adds nothing to that host's state.
TEST_F(Martian, V4MappedScanNeitherBlocksNorCountsForTheIpv4Host)
{
    const std::string host = "10.72.0.2", mapped = "::ffff:10.72.0.2";
    for (uint16_t port : {1, 2, 3})
        expect_attempt_only(syn(host, port));
    for (uint16_t port : {4, 5, 6, 7, 8, 9}) {
        RunResult r = syn(mapped, port);
        EXPECT_EQ(r.delta, kMartian) << port;
        EXPECT_TRUE(r.events.empty()) << describe(r.events);
    }
    EXPECT_TRUE(prog_->block_list().empty());
    auto st = prog_->scan_state(addr(host));
    ASSERT_TRUE(st);
    int used = 0;
    for (uint64_t slot : st->slot)
        used += slot != 0;
    EXPECT_EQ(used, 3) << "the mapped source's ports went into the IPv4 host's state";
    EXPECT_EQ(st->reported_ms, 0u);
    // The host's own fourth port is what makes it a scan, as it should.
    RunResult r = syn(host, 4);
    ASSERT_EQ(events_of(r, CW_EV_SCAN).size(), 1u) << describe(r.events);
    EXPECT_EQ(ports_of(events_of(r, CW_EV_SCAN)[0]), (std::set<uint16_t>{1, 2, 3, 4}));
}

// Before this check, the mapped form matched the IPv4 host's blocks (one key
// space). It is checked before the block lookup, so it never does.
TEST_F(Martian, V4MappedSourceNeverMatchesAnIpv4Block)
{
    ASSERT_TRUE(prog_->block_add(addr("10.72.0.2"), manual_block(now())));
    ASSERT_TRUE(prog_->cidr_block_add(Cidr(addr("203.0.113.0"), 24),
                                      manual_block(now())));
    for (const char* mapped : {"::ffff:10.72.0.2", "::ffff:203.0.113.5"}) {
        SCOPED_TRACE(mapped);
        for (uint8_t flags : {uint8_t(kSyn), uint8_t(kAck), uint8_t(kRst)}) {
            RunResult r = tcp(mapped, 22, flags);
            EXPECT_EQ(r.action, XDP_PASS);
            EXPECT_EQ(r.delta, kMartian);
        }
    }
    // The IPv4 hosts themselves stay blocked.
    EXPECT_EQ(syn("10.72.0.2", 22).delta, verdict(CW_STAT_DROP_BLOCKED));
    EXPECT_EQ(syn("203.0.113.5", 22).delta, verdict(CW_STAT_DROP_BLOCKED_CIDR));
}

// The source check comes after the block lookup: an operator's block of a
// martian range still drops (the check only keeps martians out of the state).
TEST_F(Martian, ABlockedMartianIsStillDropped)
{
    ASSERT_TRUE(prog_->cidr_block_add(Cidr(addr("224.0.0.0"), 4),
                                      manual_block(now())));
    EXPECT_EQ(syn("224.0.0.1", 22).delta, verdict(CW_STAT_DROP_BLOCKED_CIDR));
}

} // namespace
} // namespace connwatch::test
