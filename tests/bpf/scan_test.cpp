// SPDX-License-Identifier: GPL-2.0-only
// Scan detection: more than `threshold` distinct destination ports from one
// source inside a sliding window of `window` is a scan, reported once and
// blocked from the next packet on. The fake clock moves time; nothing sleeps.
// Config throughout: window 60 s, threshold 3, block 3600 s, dedup 5 s.
#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

using Scan = XdpTest;

const std::string kBystander = "192.0.2.67";

// The SYN that completes a scan: passed (the block applies from the next
// packet), its own attempt reported first, then the scan.
const cw_event* expect_scan(const RunResult& r, const StatDelta& delta)
{
    EXPECT_EQ(r.action, XDP_PASS);
    EXPECT_EQ(r.delta, delta);
    EXPECT_EQ(r.events.size(), 2u) << describe(r.events);
    if (r.events.size() != 2)
        return nullptr;
    EXPECT_EQ(r.events[0].type, CW_EV_NEW_CONN);
    EXPECT_EQ(r.events[1].type, CW_EV_SCAN);
    return &r.events[1];
}

StatDelta scan_blocked()
{
    return {{CW_STAT_PASS_SYN, 1}, {CW_STAT_SYN, 1}, {CW_STAT_SCAN, 1}, {CW_STAT_BLOCK_ADDED, 1}};
}

TEST_F(Scan, ThreeDistinctPortsAreNotAScan)
{
    for (uint16_t port : {22, 80, 443}) {
        SCOPED_TRACE(port);
        expect_attempt_only(syn(kScanner, port));
        advance(kSec);
    }
    RunResult r = tcp(kScanner, 80, kAck);
    EXPECT_EQ(r.action, XDP_PASS);
    EXPECT_EQ(r.delta, verdict(CW_STAT_PASS_TCP_OTHER));
    EXPECT_TRUE(prog_->block_list().empty());
}

TEST_F(Scan, FourthDistinctPortIsAScanAndBlocksFromTheNextPacket)
{
    for (uint16_t port : {22, 80, 443}) {
        expect_attempt_only(syn(kScanner, port));
        advance(kSec);
    }
    RunResult r = run(tcp_from(kScanner, 51234, 8080));
    const cw_event* scan = expect_scan(r, scan_blocked());
    ASSERT_NE(scan, nullptr);
    SCOPED_TRACE(describe(*scan));
    EXPECT_EQ(Address(scan->saddr), addr(kScanner));
    EXPECT_EQ(Address(scan->daddr), addr(kDst4));
    EXPECT_EQ(scan->sport, 51234);
    EXPECT_EQ(scan->dport, 8080);
    EXPECT_EQ(scan->ifindex, static_cast<uint32_t>(lo_ifindex_));
    EXPECT_EQ(scan->ts_ns, now());
    EXPECT_EQ(scan->action, CW_ACT_BLOCKED);
    EXPECT_EQ(scan->expires_ns, now() + 3600 * kSec);
    EXPECT_EQ(scan->nports, 4);
    EXPECT_EQ(ports_of(*scan), (std::set<uint16_t>{22, 80, 443, 8080}));

    auto blocks = prog_->block_list();
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].first, addr(kScanner));
    EXPECT_EQ(blocks[0].second.origin, CW_ORIGIN_SCAN);
    EXPECT_EQ(blocks[0].second.created_ns, now());
    EXPECT_EQ(blocks[0].second.expires_ns, now() + 3600 * kSec);

    // From the next packet on, everything from the scanner is dropped -- an
    // ACK of an established connection, a SYN, UDP, a bare fragment -- since
    // the block is checked before the protocol is.
    advance(kMs);
    struct {
        const char* what;
        Packet p;
    } after[] = {
        {"ACK", tcp_from(kScanner, 51234, 8080, kAck)},
        {"SYN to a new port", tcp_from(kScanner, 51235, 9999)},
        {"UDP", [] {
             Packet p;
             p.ipv4 = Ipv4{.src = kScanner};
             p.udp = Udp{};
             return p;
         }()},
        {"non-first fragment", [] {
             Packet p = tcp_from(kScanner, 51236, 22);
             p.ipv4->frag_offset = 3;
             return p;
         }()},
    };
    for (const auto& a : after) {
        SCOPED_TRACE(a.what);
        RunResult d = run(a.p);
        EXPECT_EQ(d.action, XDP_DROP);
        EXPECT_EQ(d.delta, verdict(CW_STAT_DROP_BLOCKED));
        EXPECT_TRUE(d.events.empty());
    }
    // A block is per source: its neighbour is untouched.
    expect_attempt_only(syn(kBystander, 22));
}

TEST_F(Scan, TheSamePortRepeatedIsNotAScan)
{
    // Different source ports, so each SYN is a new attempt, not a
    // retransmission: ten attempts, one port.
    for (int i = 0; i < 10; i++) {
        SCOPED_TRACE(i);
        expect_attempt_only(syn(kScanner, 443));
        advance(100 * kMs);
    }
    // Three ports, each many times, are still three.
    for (int i = 0; i < 10; i++)
        for (uint16_t port : {22, 80})
            expect_attempt_only(syn(kScanner, port));
    EXPECT_TRUE(prog_->block_list().empty());
}

TEST_F(Scan, PortsFromDifferentSourcesAreNotPooled)
{
    expect_attempt_only(syn("192.0.2.1", 22));
    expect_attempt_only(syn("192.0.2.1", 23));
    expect_attempt_only(syn("192.0.2.2", 24));
    expect_attempt_only(syn("192.0.2.2", 25));
    expect_attempt_only(syn("2001:db8::1", 26));
    expect_attempt_only(syn("2001:db8::1", 27));
    EXPECT_TRUE(prog_->block_list().empty());
}

TEST_F(Scan, PortsSpreadOverMoreThanTheWindowAreNotAScan)
{
    // 21 s apart (> window / 3): four ports span 63 s, and at any moment at
    // most three of them are less than 60 s old.
    for (uint16_t port : {1001, 1002, 1003, 1004, 1005, 1006}) {
        SCOPED_TRACE(port);
        expect_attempt_only(syn(kScanner, port));
        advance(21 * kSec);
    }
    EXPECT_TRUE(prog_->block_list().empty());
}

TEST_F(Scan, APortCountsForExactlyTheWindow)
{
    // Ports are stamped in milliseconds; one stays in the window while it is
    // less than window old.
    const std::string early = "192.0.2.1", late = "192.0.2.2";
    for (uint16_t port : {1, 2, 3}) {
        expect_attempt_only(syn(early, port));
        expect_attempt_only(syn(late, port));
    }
    advance(60 * kSec - kMs);
    EXPECT_NE(expect_scan(syn(early, 4), scan_blocked()), nullptr);
    advance(kMs);
    expect_attempt_only(syn(late, 4)); // ports 1-3 are exactly 60 s old: gone
}

TEST_F(Scan, TheWindowSlidesAcrossMinuteBoundaries)
{
    // A tumbling per-minute counter would see 2 ports in minute one and 2 in
    // minute two; the sliding window sees 4 within 4 seconds.
    ASSERT_EQ(now() % (60 * kSec), 0u);
    set_now(now() + 58 * kSec);
    expect_attempt_only(syn(kScanner, 7001));
    set_now(now() + kSec); // :59
    expect_attempt_only(syn(kScanner, 7002));
    set_now(now() + 2 * kSec); // :01 of the next minute
    expect_attempt_only(syn(kScanner, 7003));
    set_now(now() + kSec); // :02
    const cw_event* scan = expect_scan(syn(kScanner, 7004), scan_blocked());
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(ports_of(*scan), (std::set<uint16_t>{7001, 7002, 7003, 7004}));
}

TEST_F(Scan, ThresholdChangesLiveWithoutReload)
{
    const int fd = prog_->prog_fd();
    for (uint16_t port : {1, 2, 3})
        expect_attempt_only(syn(kScanner, port));

    cw_config cfg = default_config();
    cfg.threshold = 5;
    prog_->set_config(cfg);
    // Under threshold 3 the next port would have been a scan.
    expect_attempt_only(syn(kScanner, 4));
    expect_attempt_only(syn(kScanner, 5));
    const cw_event* scan = expect_scan(syn(kScanner, 6), scan_blocked());
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(scan->nports, 6);

    // And down again: two ports are a scan under threshold 1.
    expect_attempt_only(syn(kBystander, 1));
    cfg.threshold = 1;
    prog_->set_config(cfg);
    scan = expect_scan(syn(kBystander, 2), scan_blocked());
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(ports_of(*scan), (std::set<uint16_t>{1, 2}));
    EXPECT_EQ(prog_->prog_fd(), fd);
}

TEST_F(Scan, Ipv6ScanIsBlocked)
{
    const std::string scanner = "2001:db8:bad::66";
    for (uint16_t port : {22, 80, 443})
        expect_attempt_only(syn(scanner, port));
    const cw_event* scan = expect_scan(syn(scanner, 8443), scan_blocked());
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(Address(scan->saddr), addr(scanner));
    EXPECT_EQ(Address(scan->daddr), addr(kDst6));
    EXPECT_EQ(scan->action, CW_ACT_BLOCKED);
    EXPECT_EQ(ports_of(*scan), (std::set<uint16_t>{22, 80, 443, 8443}));

    auto blocks = prog_->block_list();
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].first, addr(scanner));

    RunResult r = syn(scanner, 3389);
    EXPECT_EQ(r.action, XDP_DROP);
    EXPECT_EQ(r.delta, verdict(CW_STAT_DROP_BLOCKED));
    EXPECT_TRUE(r.events.empty());
    // The same 64 bits of interface id under another prefix is someone else.
    expect_attempt_only(syn("2001:db8:bae::66", 22));
}

// ---- SYN retransmissions ---------------------------------------------------

TEST_F(Scan, RetransmittedSynIsReportedOnce)
{
    Packet p = tcp_from(kScanner, 50000, 22);
    RunResult r = run(p);
    EXPECT_EQ(r.delta, syn_reported());
    expect_new_conn(r, kScanner, kDst4, 50000, 22);

    // Linux retransmits a SYN after 1 s, 2 s, 4 s: each gap is under dedup (5 s)
    // and each retransmission restarts it, so the chain stays one attempt even
    // though it lasts longer than 5 s.
    const StatDelta retransmit{{CW_STAT_PASS_SYN, 1}, {CW_STAT_SYN_RETRANSMIT, 1}};
    for (uint64_t gap : {1, 2, 4}) {
        SCOPED_TRACE(gap);
        advance(gap * kSec);
        r = run(p);
        EXPECT_EQ(r.action, XDP_PASS);
        EXPECT_EQ(r.delta, retransmit);
        EXPECT_TRUE(r.events.empty());
    }
    // Another source port is another attempt, however close in time.
    expect_attempt_only(run(tcp_from(kScanner, 50001, 22)));

    // A gap longer than dedup: a new attempt with the same 4-tuple.
    advance(5 * kSec);
    r = run(p);
    EXPECT_EQ(r.delta, syn_reported());
    expect_new_conn(r, kScanner, kDst4, 50000, 22);
}

TEST_F(Scan, RetransmissionsDoNotAddPorts)
{
    // The same SYN four times is one port, not a scan.
    Packet p = tcp_from(kScanner, 50000, 22);
    expect_attempt_only(run(p));
    for (int i = 0; i < 3; i++) {
        advance(kSec);
        EXPECT_EQ(run(p).delta, StatDelta({{CW_STAT_PASS_SYN, 1}, {CW_STAT_SYN_RETRANSMIT, 1}}));
    }
    expect_attempt_only(syn(kScanner, 23));
    expect_attempt_only(syn(kScanner, 24));
    EXPECT_TRUE(prog_->block_list().empty());
}

} // namespace
} // namespace connwatch::test
