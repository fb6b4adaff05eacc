// SPDX-License-Identifier: GPL-2.0-only
// Blocking: who is exempt (allowlist, monitor-only), when a block ends (its
// deadline, never for a deadline of 0), CIDR blocks and the allow entries that
// override them, a full blocklist, and a flood of sources that overflows every
// LRU map yet cannot push a block out.
#include <bpf/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

void expect_dropped(const RunResult& r, cw_stat reason)
{
    EXPECT_EQ(r.action, XDP_DROP);
    EXPECT_EQ(r.delta, verdict(reason));
    EXPECT_TRUE(r.events.empty()) << describe(r.events);
}

void expect_passed_ack(const RunResult& r)
{
    EXPECT_EQ(r.action, XDP_PASS);
    EXPECT_EQ(r.delta, verdict(CW_STAT_PASS_TCP_OTHER));
}

class Block : public XdpTest {
protected:
    // Sends SYNs from src to `ports`, the last of which must complete a scan
    // with the given counters; returns that scan event.
    cw_event scan_from(const std::string& src, std::initializer_list<uint16_t> ports,
                  const StatDelta& last)
    {
        cw_event out{};
        size_t i = 0;
        for (uint16_t port : ports) {
            SCOPED_TRACE("port " + std::to_string(port));
            RunResult r = syn(src, port);
            if (++i < ports.size()) {
                expect_attempt_only(r);
                continue;
            }
            EXPECT_EQ(r.action, XDP_PASS);
            EXPECT_EQ(r.delta, last);
            auto scans = events_of(r, CW_EV_SCAN);
            EXPECT_EQ(scans.size(), 1u) << describe(r.events);
            if (!scans.empty())
                out = scans[0];
        }
        return out;
    }
};

const StatDelta kBlocked{{CW_STAT_PASS_SYN, 1}, {CW_STAT_SYN, 1}, {CW_STAT_SCAN, 1},
                         {CW_STAT_BLOCK_ADDED, 1}};

TEST_F(Block, AllowlistedScannerIsReportedNotBlocked)
{
    prog_->allow_add(Cidr(addr("192.0.2.0"), 24));
    cw_event scan = scan_from(kScanner, {22, 80, 443, 8080},
                         StatDelta({{CW_STAT_PASS_SYN, 1}, {CW_STAT_SYN, 1}, {CW_STAT_SCAN, 1},
                                    {CW_STAT_BLOCK_ALLOWED, 1}}));
    EXPECT_EQ(scan.action, CW_ACT_ALLOWLISTED) << describe(scan);
    EXPECT_EQ(scan.expires_ns, 0u);
    EXPECT_EQ(ports_of(scan), (std::set<uint16_t>{22, 80, 443, 8080}));
    EXPECT_TRUE(prog_->block_list().empty());
    expect_passed_ack(tcp(kScanner, 22, kAck));
    expect_attempt_only(syn(kScanner, 9000));
}

TEST_F(Block, MonitorOnlyReportsOncePerWindowAndNeverBlocks)
{
    cw_config cfg = default_config();
    cfg.monitor_only = 1;
    prog_->set_config(cfg);
    const StatDelta monitored{{CW_STAT_PASS_SYN, 1}, {CW_STAT_SYN, 1}, {CW_STAT_SCAN, 1},
                              {CW_STAT_BLOCK_MONITOR, 1}};
    cw_event scan = scan_from(kScanner, {22, 80, 443, 8080}, monitored);
    EXPECT_EQ(scan.action, CW_ACT_MONITOR_ONLY) << describe(scan);
    EXPECT_EQ(scan.expires_ns, 0u);
    EXPECT_TRUE(prog_->block_list().empty());
    expect_passed_ack(tcp(kScanner, 22, kAck));

    // Still scanning within the same window: one report is enough.
    for (uint16_t port = 9000; port < 9010; port++) {
        advance(kSec);
        expect_attempt_only(syn(kScanner, port));
    }
    // A window after the report, a fresh scan is a fresh report.
    advance(60 * kSec);
    scan = scan_from(kScanner, {1, 2, 3, 4}, monitored);
    EXPECT_EQ(ports_of(scan), (std::set<uint16_t>{1, 2, 3, 4}));
}

TEST_F(Block, BlockEndsAtItsDeadline)
{
    ASSERT_TRUE(prog_->block_add(addr(kScanner), manual_block(now(), now() + 10 * kSec)));
    const uint64_t deadline = now() + 10 * kSec;
    expect_dropped(tcp(kScanner, 22, kAck), CW_STAT_DROP_BLOCKED);
    expect_dropped(syn(kScanner, 22), CW_STAT_DROP_BLOCKED);
    set_now(deadline - 1);
    expect_dropped(tcp(kScanner, 22, kAck), CW_STAT_DROP_BLOCKED);
    set_now(deadline);
    expect_passed_ack(tcp(kScanner, 22, kAck));
    expect_attempt_only(syn(kScanner, 22));
    // The kernel only stops matching an expired entry; removing it (and
    // logging that) is the userspace sweep's job.
    EXPECT_EQ(prog_->block_list().size(), 1u);
}

TEST_F(Block, BlockWithoutDeadlineLastsUntilRemoved)
{
    ASSERT_TRUE(prog_->block_add(addr("2001:db8::bad"), manual_block(now(), 0)));
    expect_dropped(syn("2001:db8::bad", 22), CW_STAT_DROP_BLOCKED);
    set_now(now() + 10ull * 365 * 24 * 3600 * kSec); // ten years on
    expect_dropped(syn("2001:db8::bad", 22), CW_STAT_DROP_BLOCKED);
    ASSERT_TRUE(prog_->block_remove(addr("2001:db8::bad")));
    expect_attempt_only(syn("2001:db8::bad", 22));
}

TEST_F(Block, ExpiredBlockIsRenewedByTheNextScan)
{
    ASSERT_TRUE(prog_->block_add(addr(kScanner), manual_block(now(), now() + kSec)));
    advance(2 * kSec);
    cw_event scan = scan_from(kScanner, {22, 80, 443, 8080},
                         kBlocked);
    EXPECT_EQ(scan.action, CW_ACT_BLOCKED);
    auto blocks = prog_->block_list();
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].second.origin, CW_ORIGIN_SCAN);
    EXPECT_EQ(blocks[0].second.expires_ns, now() + 3600 * kSec);
    expect_dropped(tcp(kScanner, 22, kAck), CW_STAT_DROP_BLOCKED);
}

TEST_F(Block, CidrBlockDropsItsPrefixExceptAllowedAddresses)
{
    ASSERT_TRUE(prog_->cidr_block_add(Cidr(addr("203.0.113.0"), 24), manual_block(now(), 0)));
    ASSERT_TRUE(prog_->cidr_block_add(Cidr(addr("2001:db8:bad::"), 48), manual_block(now(), 0)));
    EXPECT_EQ(prog_->config().cidr_blocks, 2u);

    for (const char* inside : {"203.0.113.0", "203.0.113.5", "203.0.113.255",
                               "2001:db8:bad::1", "2001:db8:bad:ffff::5"}) {
        SCOPED_TRACE(inside);
        expect_dropped(syn(inside, 22), CW_STAT_DROP_BLOCKED_CIDR);
        expect_dropped(tcp(inside, 22, kAck), CW_STAT_DROP_BLOCKED_CIDR);
    }
    // Outside by one bit, and "::203.0.113.5" (IPv4-compatible, not mapped):
    // the same last 32 bits under a different 96-bit prefix.
    for (const char* outside : {"203.0.112.255", "203.0.114.0", "2001:db8:bac::1",
                                "2001:db8:bae::1", "::203.0.113.5"}) {
        SCOPED_TRACE(outside);
        expect_attempt_only(syn(outside, 22));
    }

    // An allow entry inside the blocked prefix wins.
    prog_->allow_add(Cidr(addr("203.0.113.7"), 32));
    expect_attempt_only(syn("203.0.113.7", 22));
    expect_dropped(syn("203.0.113.8", 22), CW_STAT_DROP_BLOCKED_CIDR);

    // Removal keeps the fast path's count right and lets the prefix back in.
    ASSERT_TRUE(prog_->cidr_block_remove(Cidr(addr("203.0.113.0"), 24)));
    EXPECT_EQ(prog_->config().cidr_blocks, 1u);
    expect_attempt_only(syn("203.0.113.8", 22));
    expect_dropped(syn("2001:db8:bad::1", 22), CW_STAT_DROP_BLOCKED_CIDR);
}

TEST_F(Block, ExpiredCidrBlockStopsMatching)
{
    ASSERT_TRUE(prog_->cidr_block_add(Cidr(addr("203.0.113.0"), 24),
                                      manual_block(now(), now() + 10 * kSec)));
    expect_dropped(syn("203.0.113.5", 22), CW_STAT_DROP_BLOCKED_CIDR);
    advance(10 * kSec);
    expect_attempt_only(syn("203.0.113.5", 22));
}

// In the LPM trie an IPv6 prefix shorter than /96 covers the IPv4-mapped keys
// too: ::/0 would block every IPv4 client. The entry says it is IPv6
// (cw_block.v6_prefix, set by the loader), and IPv4 packets ignore it.
TEST_F(Block, Ipv6PrefixesNeverCoverIpv4)
{
    for (unsigned len : {0u, 8u, 64u, 80u}) {
        SCOPED_TRACE("::/" + std::to_string(len));
        const Cidr all6(addr("::"), len);
        ASSERT_TRUE(prog_->cidr_block_add(all6, manual_block(now(), 0)));
        EXPECT_EQ(prog_->cidr_block_list().at(0).second.v6_prefix, 1);
        // IPv6 inside the prefix: dropped, v4-compatible ::a.b.c.d included.
        expect_dropped(syn("::2", 22), CW_STAT_DROP_BLOCKED_CIDR);
        expect_dropped(syn("::203.0.113.5", 22), CW_STAT_DROP_BLOCKED_CIDR);
        if (len == 0)
            expect_dropped(syn("2001:db8::1", 22), CW_STAT_DROP_BLOCKED_CIDR);
        // IPv4, SYN or not: untouched.
        for (const char* v4 : {"192.0.2.1", "10.72.0.2", "1.0.0.1"})
            expect_attempt_only(syn(v4, 22));
        expect_passed_ack(tcp("198.51.100.7", 22, kAck));
        ASSERT_TRUE(prog_->cidr_block_remove(all6));
    }
    // Next to an IPv4 block, the longer (IPv4) prefix is the one that matches.
    ASSERT_TRUE(prog_->cidr_block_add(Cidr(addr("::"), 0), manual_block(now(), 0)));
    ASSERT_TRUE(prog_->cidr_block_add(Cidr(addr("203.0.113.0"), 24), manual_block(now(), 0)));
    expect_dropped(syn("203.0.113.5", 22), CW_STAT_DROP_BLOCKED_CIDR);
    expect_attempt_only(syn("203.0.114.5", 22));
    expect_dropped(syn("2001:db8::1", 22), CW_STAT_DROP_BLOCKED_CIDR);
    // And an IPv4 prefix written as IPv4 has no such mark.
    for (const auto& [c, b] : prog_->cidr_block_list())
        EXPECT_EQ(b.v6_prefix, c.address().is_v4() ? 0 : 1) << c.str();
}

// An IPv6 prefix pinned by a connwatch from before the mark reads 0 there: the
// loader that takes the pins over marks it, or ::/0 would go on covering IPv4.
TEST_F(Block, Ipv6PrefixPinnedByAnOlderConnwatchIsMarkedAtLoad)
{
    char tmpl[] = "/sys/fs/bpf/connwatch_test_XXXXXX"; // bpffs refuses dots in names
    ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
    const std::string dir = tmpl;
    LoadSettings s = load_settings();
    s.pin_dir = dir;
    {
        XdpProgram older(s);
        int fd = bpf_obj_get((dir + "/block_cidr").c_str());
        ASSERT_GE(fd, 0);
        cw_lpm_key k = Cidr(addr("::"), 0).to_lpm();
        cw_block b = manual_block(now(), 0); // v6_prefix 0, as written before it existed
        EXPECT_EQ(bpf_map_update_elem(fd, &k, &b, BPF_ANY), 0);
        close(fd);
    }
    {
        XdpProgram newer(s);
        auto cidrs = newer.cidr_block_list();
        ASSERT_EQ(cidrs.size(), 1u);
        EXPECT_EQ(cidrs[0].first, Cidr(addr("::"), 0));
        EXPECT_EQ(cidrs[0].second.v6_prefix, 1);
        EXPECT_EQ(newer.config().cidr_blocks, 1u);
        newer.unpin_runtime(); // what a clean stop leaves: the blocklists
    }
    for (const char* map : {"block_addr", "block_cidr", "offenders"})
        unlink((dir + "/" + map).c_str());
    EXPECT_EQ(rmdir(dir.c_str()), 0) << dir;
}

// ---- a full blocklist ---------------------------------------------------------

class SmallBlocklist : public Block {
protected:
    LoadSettings load_settings() const override
    {
        LoadSettings s = Block::load_settings();
        s.max_blocks = 4;
        return s;
    }
};

bool same(const std::vector<std::pair<Address, cw_block>>& a,
          std::vector<std::pair<Address, cw_block>> b)
{
    auto key = [](const auto& x, const auto& y) { return x.first < y.first; };
    auto a2 = a;
    std::sort(a2.begin(), a2.end(), key);
    std::sort(b.begin(), b.end(), key);
    return std::equal(a2.begin(), a2.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
        return x.first == y.first && x.second.created_ns == y.second.created_ns &&
               x.second.expires_ns == y.second.expires_ns && x.second.origin == y.second.origin;
    });
}

TEST_F(SmallBlocklist, ScanIsReportedButNotBlockedWhenTheBlocklistIsFull)
{
    std::vector<std::pair<Address, cw_block>> manual_blocks = {
        {addr("10.0.0.1"), manual_block(now(), 0)},
        {addr("10.0.0.2"), manual_block(now(), now() + 100 * kSec)},
        {addr("2001:db8::3"), manual_block(now(), 0)},
        {addr("10.0.0.4"), manual_block(now(), now() + 200 * kSec)},
    };
    for (const auto& [a, b] : manual_blocks)
        ASSERT_TRUE(prog_->block_add(a, b)) << a.str();
    // The map is really full: userspace cannot add a fifth either.
    EXPECT_FALSE(prog_->block_add(addr("10.0.0.5"), manual_block(now(), 0)));

    cw_event scan = scan_from(kScanner, {22, 80, 443, 8080},
                              {{CW_STAT_PASS_SYN, 1}, {CW_STAT_SYN, 1}, {CW_STAT_SCAN, 1},
                               {CW_STAT_BLOCK_FULL, 1}});
    EXPECT_EQ(scan.action, CW_ACT_BLOCKLIST_FULL) << describe(scan);
    EXPECT_EQ(scan.expires_ns, 0u);
    EXPECT_EQ(ports_of(scan), (std::set<uint16_t>{22, 80, 443, 8080}));

    // Not blocked, and nothing already there was touched or pushed out.
    expect_passed_ack(tcp(kScanner, 22, kAck));
    EXPECT_TRUE(same(prog_->block_list(), manual_blocks));
    expect_dropped(syn("10.0.0.1", 22), CW_STAT_DROP_BLOCKED);
    expect_dropped(syn("2001:db8::3", 22), CW_STAT_DROP_BLOCKED);

    // With room again, the scanner's next scan (a window later) is blocked.
    ASSERT_TRUE(prog_->block_remove(addr("10.0.0.4")));
    advance(60 * kSec);
    scan = scan_from(kScanner, {1, 2, 3, 4},
                     kBlocked);
    EXPECT_EQ(scan.action, CW_ACT_BLOCKED);
    expect_dropped(tcp(kScanner, 22, kAck), CW_STAT_DROP_BLOCKED);
}

// ---- a flood of sources ----------------------------------------------------------

// 70000 distinct sources, more than both LRU maps hold (scan_state 32768,
// syn_seen 65536), each sending one SYN. Spoofed-source floods look like this.
// The LRUs must evict -- and that is allowed to cost detections -- but the
// blocklist is a plain hash and must lose nothing.
TEST_F(Block, FloodOfSourcesOverflowsTheLrusButNotTheBlocklist)
{
    constexpr uint32_t kFlood = 70000;

    // A real scan, made before the flood, and a half-done one (3 of 4 ports).
    cw_event scan = scan_from(kScanner, {22, 80, 443, 8080},
                         kBlocked);
    ASSERT_EQ(scan.action, CW_ACT_BLOCKED);
    const std::string half = "192.0.2.77";
    for (uint16_t port : {22, 80, 443})
        expect_attempt_only(syn(half, port));
    const auto blocks_before = prog_->block_list();
    ASSERT_EQ(blocks_before.size(), 1u);

    // One template frame, its source address rewritten per run (bytes 8..23
    // of the IPv6 header); the TCP checksum goes stale, which the program never
    // looks at. Building 70000 frames from scratch would cost more than
    // running them.
    Bytes frame = tcp_from("2001:db8:f100::", 12345, 80).build();
    const size_t src_last = 14 + 8 + 12; // the low 32 bits of the source
    const Stats before = prog_->stats();
    size_t events = 0;
    for (uint32_t i = 1; i <= kFlood; i++) {
        frame[src_last] = static_cast<uint8_t>(i >> 24);
        frame[src_last + 1] = static_cast<uint8_t>(i >> 16);
        frame[src_last + 2] = static_cast<uint8_t>(i >> 8);
        frame[src_last + 3] = static_cast<uint8_t>(i);
        ASSERT_EQ(run_action(frame), XDP_PASS) << "source " << i;
        // The ring buffer holds 8192 events: read them as the daemon would.
        if (i % 4096 == 0)
            events += drain_events();
    }
    events += drain_events();
    const Stats after = prog_->stats();
    EXPECT_EQ(after[CW_STAT_SYN] - before[CW_STAT_SYN], kFlood);
    EXPECT_EQ(after[CW_STAT_PASS_SYN] - before[CW_STAT_PASS_SYN], kFlood);
    EXPECT_EQ(after[CW_STAT_SCAN] - before[CW_STAT_SCAN], 0u);
    EXPECT_EQ(after[CW_STAT_EVENTS_LOST] - before[CW_STAT_EVENTS_LOST], 0u);
    EXPECT_EQ(events, kFlood);

    // The block survived, and still drops.
    EXPECT_TRUE(same(prog_->block_list(), blocks_before));
    expect_dropped(tcp(kScanner, 22, kAck), CW_STAT_DROP_BLOCKED);
    expect_dropped(syn(kScanner, 9999), CW_STAT_DROP_BLOCKED);

    // Evidence that the flood did overflow both LRUs (otherwise this test
    // would prove nothing). syn_seen: the first flood SYN, sent again well
    // within dedup, is not recognised as a retransmission any more.
    advance(kSec);
    frame[src_last] = frame[src_last + 1] = frame[src_last + 2] = 0;
    frame[src_last + 3] = 1;
    RunResult again = run(frame);
    EXPECT_EQ(again.delta, syn_reported()) << "syn_seen did not evict the first flood SYN";
    // scan_state: the half-done scanner's three ports were forgotten, so its
    // fourth port is not a scan -- the documented price of an LRU (a missed
    // detection, never a lost block).
    expect_attempt_only(syn(half, 8080));
}

} // namespace
} // namespace connwatch::test
