// SPDX-License-Identifier: GPL-2.0-only
// The reverse-path check (rp-filter) before an automatic block, on a filled
// route mirror (map routes): a scanner whose source fails it is reported with
// CW_ACT_SPOOFED, counted in BLOCK_SPOOFED and never blocked; one that passes
// is blocked as before. Frames arrive on loopback (ifindex 1); "another
// interface" is ifindex 7, which need not exist: only the route names it.
#include <net/if.h>

#include <cstdio>

#include "config/options.h"
#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

constexpr uint32_t kOther = 7, kThird = 8;

struct Route {
    const char* prefix;
    uint8_t kind;
    std::vector<uint32_t> oifs;
};

struct Case {
    const char* name;
    uint32_t mode; // cw_config.rp_filter
    std::vector<Route> routes;
    const char* source;
    uint8_t action; // of the scan
};

class RpFilter : public XdpTest {
protected:
    void fill(const std::vector<Route>& routes)
    {
        for (const auto& r : routes) {
            auto c = Cidr::parse(r.prefix);
            ASSERT_TRUE(c) << r.prefix;
            cw_route v{};
            v.kind = r.kind;
            v.v6 = c->address().is_v4() ? 0 : 1;
            for (uint32_t oif : r.oifs)
                v.ifindex[v.nhops++] = oif;
            prog_->route_set(*c, v);
        }
    }
    void set_mode(uint32_t mode, bool monitor_only = false)
    {
        cw_config c = default_config();
        c.rp_filter = mode;
        c.monitor_only = monitor_only ? 1 : 0;
        prog_->set_config(c);
    }
    // A scan of 4 ports from src; returns the last run (the one with the scan).
    RunResult scan(const std::string& src)
    {
        for (uint16_t p = 1; p <= 3; p++)
            syn(src, p);
        return syn(src, 4);
    }
    uint8_t scan_action(const std::string& src)
    {
        RunResult r = scan(src);
        auto scans = events_of(r, CW_EV_SCAN);
        if (scans.size() != 1) {
            ADD_FAILURE() << src << ": " << describe(r.events);
            return 0;
        }
        return scans[0].action;
    }
};

TEST_F(RpFilter, ZeroConfigIsOffAndDefaultFollowsTheInterfaceMap)
{
    cw_config zero{};
    EXPECT_EQ(zero.rp_filter, static_cast<uint32_t>(CW_RP_OFF));
    EXPECT_EQ(default_config().rp_filter, static_cast<uint32_t>(CW_RP_IFACE));
    EXPECT_TRUE(prog_->rp_interfaces().empty()); // so: off on every interface
}

const Case kCases[] = {
    {"off_no_route", CW_RP_OFF, {}, "192.0.2.66", CW_ACT_BLOCKED},
    {"off_route_elsewhere", CW_RP_OFF, {{"192.0.2.0/24", CW_ROUTE_UNICAST, {kOther}}},
     "192.0.2.66", CW_ACT_BLOCKED},
    {"strict_no_route", CW_RP_STRICT, {}, "192.0.2.66", CW_ACT_SPOOFED},
    {"loose_no_route", CW_RP_LOOSE, {}, "192.0.2.66", CW_ACT_SPOOFED},
    {"strict_route_here", CW_RP_STRICT, {{"192.0.2.0/24", CW_ROUTE_UNICAST, {1}}},
     "192.0.2.66", CW_ACT_BLOCKED},
    {"strict_route_elsewhere", CW_RP_STRICT, {{"192.0.2.0/24", CW_ROUTE_UNICAST, {kOther}}},
     "192.0.2.66", CW_ACT_SPOOFED},
    {"loose_route_elsewhere", CW_RP_LOOSE, {{"192.0.2.0/24", CW_ROUTE_UNICAST, {kOther}}},
     "192.0.2.66", CW_ACT_BLOCKED},
    {"strict_multipath_with_here", CW_RP_STRICT,
     {{"192.0.2.0/24", CW_ROUTE_UNICAST, {kOther, kThird, 1}}}, "192.0.2.66", CW_ACT_BLOCKED},
    {"strict_multipath_without_here", CW_RP_STRICT,
     {{"192.0.2.0/24", CW_ROUTE_UNICAST, {kOther, kThird}}}, "192.0.2.66", CW_ACT_SPOOFED},
    {"strict_longest_prefix_here", CW_RP_STRICT,
     {{"0.0.0.0/0", CW_ROUTE_UNICAST, {kOther}}, {"192.0.2.64/26", CW_ROUTE_UNICAST, {1}}},
     "192.0.2.66", CW_ACT_BLOCKED},
    {"strict_longest_prefix_elsewhere", CW_RP_STRICT,
     {{"0.0.0.0/0", CW_ROUTE_UNICAST, {1}}, {"192.0.2.64/26", CW_ROUTE_UNICAST, {kOther}}},
     "192.0.2.66", CW_ACT_SPOOFED},
    {"strict_default_route_here", CW_RP_STRICT, {{"0.0.0.0/0", CW_ROUTE_UNICAST, {1}}},
     "192.0.2.66", CW_ACT_BLOCKED},
    {"loose_unreachable", CW_RP_LOOSE,
     {{"0.0.0.0/0", CW_ROUTE_UNICAST, {1}}, {"192.0.2.0/24", CW_ROUTE_NONE, {}}}, "192.0.2.66",
     CW_ACT_SPOOFED},
    {"strict_unreachable", CW_RP_STRICT,
     {{"0.0.0.0/0", CW_ROUTE_UNICAST, {1}}, {"192.0.2.0/24", CW_ROUTE_NONE, {}}}, "192.0.2.66",
     CW_ACT_SPOOFED},
    {"strict_any_interface", CW_RP_STRICT, {{"192.0.2.0/24", CW_ROUTE_ANY, {}}}, "192.0.2.66",
     CW_ACT_BLOCKED},
    {"loose_local_on_loopback", CW_RP_LOOSE, {{"192.0.2.66/32", CW_ROUTE_LOCAL, {}}},
     "192.0.2.66", CW_ACT_BLOCKED},
    // An IPv6 default route covers the mapped keys in the trie: it is no
    // route for an IPv4 source.
    {"strict_v4_source_only_v6_default", CW_RP_STRICT, {{"::/0", CW_ROUTE_UNICAST, {1}}},
     "192.0.2.66", CW_ACT_SPOOFED},
    {"loose_v4_source_only_v6_default", CW_RP_LOOSE, {{"::/0", CW_ROUTE_UNICAST, {1}}},
     "192.0.2.66", CW_ACT_SPOOFED},
    {"strict_v6_route_here", CW_RP_STRICT, {{"2001:db8:1::/48", CW_ROUTE_UNICAST, {1}}},
     "2001:db8:1::66", CW_ACT_BLOCKED},
    {"strict_v6_route_elsewhere", CW_RP_STRICT,
     {{"::/0", CW_ROUTE_UNICAST, {1}}, {"2001:db8:1::/48", CW_ROUTE_UNICAST, {kOther}}},
     "2001:db8:1::66", CW_ACT_SPOOFED},
    {"loose_v6_route_elsewhere", CW_RP_LOOSE, {{"2001:db8:1::/48", CW_ROUTE_UNICAST, {kOther}}},
     "2001:db8:1::66", CW_ACT_BLOCKED},
    {"loose_v6_no_route", CW_RP_LOOSE, {{"2001:db8:2::/48", CW_ROUTE_UNICAST, {1}}},
     "2001:db8:1::66", CW_ACT_SPOOFED},
    {"strict_v6_default_here", CW_RP_STRICT, {{"::/0", CW_ROUTE_UNICAST, {1}}}, "2001:db8:1::66",
     CW_ACT_BLOCKED},
};

class RpFilterTable : public RpFilter, public ::testing::WithParamInterface<Case> {};

TEST_P(RpFilterTable, Scan)
{
    const Case& c = GetParam();
    fill(c.routes);
    set_mode(c.mode);
    EXPECT_EQ(scan_action(c.source), c.action);
    bool blocked = prog_->block_get(addr(c.source)).has_value();
    EXPECT_EQ(blocked, c.action == CW_ACT_BLOCKED);
    Stats s = prog_->stats();
    EXPECT_EQ(s[CW_STAT_BLOCK_SPOOFED], c.action == CW_ACT_SPOOFED ? 1u : 0u);
    EXPECT_EQ(s[CW_STAT_BLOCK_ADDED], c.action == CW_ACT_BLOCKED ? 1u : 0u);
    EXPECT_EQ(s[CW_STAT_SCAN], 1u);
}

INSTANTIATE_TEST_SUITE_P(Routes, RpFilterTable, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

// The scan that fails the check: reported, counted, passed, nothing blocked;
// and the source's next ports are still judged (it is not blocked).
TEST_F(RpFilter, ASpoofedScanIsReportedCountedAndNotBlocked)
{
    fill({{"192.0.2.0/24", CW_ROUTE_UNICAST, {kOther}}});
    set_mode(CW_RP_STRICT);
    for (uint16_t p = 1; p <= 3; p++)
        syn(kScanner, p);
    RunResult r = syn(kScanner, 4);
    EXPECT_EQ(r.action, XDP_PASS);
    EXPECT_EQ(r.delta, StatDelta({{CW_STAT_PASS_SYN, 1},
                                  {CW_STAT_SYN, 1},
                                  {CW_STAT_SCAN, 1},
                                  {CW_STAT_BLOCK_SPOOFED, 1}}));
    auto scans = events_of(r, CW_EV_SCAN);
    ASSERT_EQ(scans.size(), 1u) << describe(r.events);
    EXPECT_EQ(scans[0].action, CW_ACT_SPOOFED);
    EXPECT_EQ(scans[0].expires_ns, 0u);
    EXPECT_EQ(ports_of(scans[0]), (std::set<uint16_t>{1, 2, 3, 4}));
    EXPECT_FALSE(prog_->block_get(addr(kScanner)));
    expect_attempt_only(syn(kScanner, 5));
}

// rp-filter unset: each interface's mode comes from the rp_iface map.
TEST_F(RpFilter, PerInterfaceModes)
{
    fill({{"192.0.2.0/24", CW_ROUTE_UNICAST, {kOther}}});
    set_mode(CW_RP_IFACE);
    prog_->set_rp_interfaces({{1, CW_RP_STRICT}});
    EXPECT_EQ(scan_action("192.0.2.66"), CW_ACT_SPOOFED);
    prog_->set_rp_interfaces({{1, CW_RP_LOOSE}});
    EXPECT_EQ(scan_action("192.0.2.67"), CW_ACT_BLOCKED);
    prog_->set_rp_interfaces({{kOther, CW_RP_STRICT}}); // not the one frames arrive on
    EXPECT_EQ(scan_action("192.0.2.68"), CW_ACT_BLOCKED);
    EXPECT_EQ(prog_->rp_interfaces(), (std::map<uint32_t, uint32_t>{{kOther, CW_RP_STRICT}}));
}

// The allowlist is said first; the check comes before monitor-only and before
// the token bucket, so decoys spend no token a real scanner's block needs.
TEST_F(RpFilter, OrderOfTheChecks)
{
    fill({{"192.0.2.0/24", CW_ROUTE_UNICAST, {kOther}}, {"198.18.0.0/15", CW_ROUTE_UNICAST, {1}}});
    set_mode(CW_RP_STRICT, true);
    EXPECT_EQ(scan_action("192.0.2.70"), CW_ACT_SPOOFED);
    EXPECT_EQ(scan_action("198.18.0.70"), CW_ACT_MONITOR_ONLY);

    prog_->allow_add(*Cidr::parse("192.0.2.71"));
    EXPECT_EQ(scan_action("192.0.2.71"), CW_ACT_ALLOWLISTED);

    Options o;
    o.rp_filter = connwatch::RpFilter::Strict;
    o.max_new_blocks_per_second = 1;
    o.max_new_blocks_burst = 1;
    prog_->set_config(kernel_config(o));
    for (unsigned i = 0; i < 50; i++) { // a decoy flood, one instant
        char src[32];
        std::snprintf(src, sizeof(src), "192.0.2.%u", 100 + i);
        EXPECT_EQ(scan_action(src), CW_ACT_SPOOFED) << src;
    }
    EXPECT_EQ(scan_action("198.18.0.71"), CW_ACT_BLOCKED); // the one token is still there
    EXPECT_EQ(scan_action("198.18.0.72"), CW_ACT_RATE_LIMITED);
    EXPECT_EQ(prog_->stats()[CW_STAT_BLOCK_SPOOFED], 51u);
}

// The mirror's map through the loader: set, listed back, removed.
TEST_F(RpFilter, RouteMapRoundTrip)
{
    fill({{"10.72.0.0/24", CW_ROUTE_UNICAST, {3, 4}}, {"2001:db8::/32", CW_ROUTE_NONE, {}}});
    auto list = prog_->route_list();
    ASSERT_EQ(list.size(), 2u);
    std::map<Cidr, cw_route> got(list.begin(), list.end());
    const cw_route& v4 = got.at(*Cidr::parse("10.72.0.0/24"));
    EXPECT_EQ(v4.kind, CW_ROUTE_UNICAST);
    EXPECT_EQ(v4.nhops, 2);
    EXPECT_EQ(v4.ifindex[1], 4u);
    EXPECT_EQ(got.at(*Cidr::parse("2001:db8::/32")).v6, 1);
    EXPECT_TRUE(prog_->route_remove(*Cidr::parse("10.72.0.0/24")));
    EXPECT_FALSE(prog_->route_remove(*Cidr::parse("10.72.0.0/24")));
    EXPECT_EQ(prog_->route_capacity(), 65536u);
}

} // namespace
} // namespace connwatch::test
