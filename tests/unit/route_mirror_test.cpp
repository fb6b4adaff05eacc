// SPDX-License-Identifier: GPL-2.0-only
// The route mirror's netlink parsing (parse_route) on messages built here byte
// by byte as the kernel lays them out, and the merge into what the program is
// told (effective_routes); plus rp_mode_from_sysctl. The live dump runs
// against the real kernel (dump_routes needs no privilege).
#include <gtest/gtest.h>
#include <linux/rtnetlink.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "daemon/manager.h"
#include "daemon/route_mirror.h"

namespace connwatch {
namespace {

// An rtnetlink route message under construction.
class Msg {
public:
    Msg(uint8_t family, uint8_t dst_len, uint8_t type, uint8_t table = RT_TABLE_MAIN,
        uint16_t msg_type = RTM_NEWROUTE)
        : buf_(NLMSG_LENGTH(sizeof(rtmsg)))
    {
        auto* r = static_cast<rtmsg*>(NLMSG_DATA(hdr()));
        r->rtm_family = family;
        r->rtm_dst_len = dst_len;
        r->rtm_type = type;
        r->rtm_table = table;
        r->rtm_protocol = RTPROT_BOOT;
        r->rtm_scope = RT_SCOPE_UNIVERSE;
        hdr()->nlmsg_type = msg_type;
        fix();
    }
    rtmsg* rtm() { return static_cast<rtmsg*>(NLMSG_DATA(hdr())); }
    Msg& attr(uint16_t type, const void* data, size_t len)
    {
        size_t at = NLMSG_ALIGN(buf_.size());
        buf_.resize(at + RTA_SPACE(len));
        auto* a = reinterpret_cast<rtattr*>(buf_.data() + at);
        a->rta_type = type;
        a->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
        std::memcpy(RTA_DATA(a), data, len);
        fix();
        return *this;
    }
    Msg& u32(uint16_t type, uint32_t v) { return attr(type, &v, 4); }
    Msg& dst4(const char* a)
    {
        uint8_t b[4];
        inet_pton(AF_INET, a, b);
        return attr(RTA_DST, b, 4);
    }
    Msg& dst6(const char* a)
    {
        uint8_t b[16];
        inet_pton(AF_INET6, a, b);
        return attr(RTA_DST, b, 16);
    }
    // RTA_MULTIPATH with one rtnexthop per interface (each with a gateway
    // attribute, as the kernel sends them, to check the walk skips it).
    Msg& multipath(const std::vector<int>& oifs)
    {
        std::vector<uint8_t> mp;
        for (int oif : oifs) {
            size_t at = mp.size();
            size_t len = sizeof(rtnexthop) + RTA_SPACE(4);
            mp.resize(at + RTNH_ALIGN(len));
            auto* nh = reinterpret_cast<rtnexthop*>(mp.data() + at);
            nh->rtnh_len = static_cast<unsigned short>(len);
            nh->rtnh_ifindex = oif;
            auto* gw = reinterpret_cast<rtattr*>(mp.data() + at + sizeof(rtnexthop));
            gw->rta_type = RTA_GATEWAY;
            gw->rta_len = RTA_LENGTH(4);
            uint8_t g[4] = {10, 0, 0, static_cast<uint8_t>(oif)};
            std::memcpy(RTA_DATA(gw), g, 4);
        }
        return attr(RTA_MULTIPATH, mp.data(), mp.size());
    }
    std::optional<RouteEntry> parse() const
    {
        return parse_route(reinterpret_cast<const nlmsghdr*>(buf_.data()), buf_.size());
    }
    std::vector<uint8_t>& bytes() { return buf_; }

private:
    nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
    void fix() { hdr()->nlmsg_len = static_cast<uint32_t>(buf_.size()); }
    std::vector<uint8_t> buf_;
};

Cidr cidr(const char* s)
{
    return *Cidr::parse(s);
}

TEST(ParseRoute, IPv4UnicastWithInterfaceAndMetric)
{
    auto r = Msg(AF_INET, 24, RTN_UNICAST)
                 .dst4("10.72.0.0")
                 .u32(RTA_TABLE, RT_TABLE_MAIN)
                 .u32(RTA_PRIORITY, 100)
                 .u32(RTA_OIF, 5)
                 .parse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->dst, cidr("10.72.0.0/24"));
    EXPECT_EQ(r->table, RT_TABLE_MAIN);
    EXPECT_EQ(r->priority, 100u);
    EXPECT_EQ(r->type, RTN_UNICAST);
    EXPECT_EQ(r->oifs, std::vector<uint32_t>{5});
    EXPECT_FALSE(r->nexthop_object);
}

TEST(ParseRoute, DefaultRouteHasNoDestination)
{
    auto r = Msg(AF_INET, 0, RTN_UNICAST).u32(RTA_OIF, 2).parse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->dst, cidr("0.0.0.0/0"));
    auto r6 = Msg(AF_INET6, 0, RTN_UNICAST).u32(RTA_OIF, 2).parse();
    ASSERT_TRUE(r6);
    EXPECT_EQ(r6->dst, cidr("::/0"));
}

TEST(ParseRoute, IPv6AndMultipath)
{
    auto r = Msg(AF_INET6, 48, RTN_UNICAST).dst6("2001:db8:1::").multipath({3, 4, 9}).parse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->dst, cidr("2001:db8:1::/48"));
    EXPECT_EQ(r->oifs, (std::vector<uint32_t>{3, 4, 9}));
}

TEST(ParseRoute, LocalTableAndRejectTypesAndNexthopObjects)
{
    auto local = Msg(AF_INET, 32, RTN_LOCAL, RT_TABLE_LOCAL).dst4("10.72.0.1").u32(RTA_OIF, 3)
                     .parse();
    ASSERT_TRUE(local);
    EXPECT_EQ(local->table, RT_TABLE_LOCAL);
    EXPECT_EQ(local->type, RTN_LOCAL);
    auto bh = Msg(AF_INET, 8, RTN_BLACKHOLE).dst4("10.0.0.0").parse();
    ASSERT_TRUE(bh);
    EXPECT_EQ(bh->type, RTN_BLACKHOLE);
    EXPECT_TRUE(bh->oifs.empty());
    auto nh = Msg(AF_INET, 16, RTN_UNICAST).dst4("10.9.0.0").u32(RTA_NH_ID, 12).parse();
    ASSERT_TRUE(nh);
    EXPECT_TRUE(nh->nexthop_object);
}

TEST(ParseRoute, WhatTheMirrorDoesNotTake)
{
    // Another table (RTA_TABLE wins over the 8-bit field), another family, a
    // cached clone, a TOS route, another message type, a malformed one.
    EXPECT_FALSE(Msg(AF_INET, 24, RTN_UNICAST).dst4("10.1.0.0").u32(RTA_TABLE, 1000).parse());
    EXPECT_FALSE(Msg(AF_INET, 24, RTN_UNICAST, 100).dst4("10.1.0.0").parse());
    EXPECT_FALSE(Msg(128 /* RTNL_FAMILY_IPMR */, 0, RTN_MULTICAST).parse());
    Msg cloned(AF_INET6, 128, RTN_UNICAST);
    cloned.rtm()->rtm_flags = RTM_F_CLONED;
    EXPECT_FALSE(cloned.dst6("2001:db8::1").parse());
    Msg tos(AF_INET, 24, RTN_UNICAST);
    tos.rtm()->rtm_tos = 0x10;
    EXPECT_FALSE(tos.dst4("10.1.0.0").parse());
    EXPECT_FALSE(Msg(AF_INET, 24, RTN_UNICAST, RT_TABLE_MAIN, RTM_NEWADDR).dst4("10.1.0.0").parse());
    EXPECT_FALSE(Msg(AF_INET, 24, RTN_UNICAST).parse());               // length without RTA_DST
    EXPECT_FALSE(Msg(AF_INET, 33, RTN_UNICAST).dst4("10.1.0.0").parse()); // /33
    EXPECT_FALSE(Msg(AF_INET, 24, RTN_UNICAST).dst6("2001:db8::").parse()); // wrong size
    Msg m(AF_INET, 24, RTN_UNICAST);
    m.dst4("10.1.0.0");
    auto b = m.bytes();
    EXPECT_FALSE(parse_route(reinterpret_cast<const nlmsghdr*>(b.data()), b.size() - 1));
}

RouteEntry entry(const char* dst, uint8_t type, std::vector<uint32_t> oifs,
                 uint32_t priority = 0, uint32_t table = RT_TABLE_MAIN)
{
    RouteEntry r;
    r.dst = cidr(dst);
    r.type = type;
    r.oifs = std::move(oifs);
    r.priority = priority;
    r.table = table;
    return r;
}

TEST(EffectiveRoutes, MergeRules)
{
    std::vector<RouteEntry> in = {
        entry("0.0.0.0/0", RTN_UNICAST, {2}, 100),
        entry("0.0.0.0/0", RTN_UNICAST, {3}, 50), // lower metric wins
        entry("fe80::/64", RTN_UNICAST, {2}, 256),
        entry("fe80::/64", RTN_UNICAST, {3}, 256), // equal metric: added up
        entry("10.72.0.1/32", RTN_UNICAST, {3}, 0),
        entry("10.72.0.1/32", RTN_LOCAL, {3}, 0, RT_TABLE_LOCAL), // the local table wins
        entry("10.9.0.0/16", RTN_UNREACHABLE, {}),
        entry("10.8.0.0/16", RTN_UNICAST, {1, 2, 3, 4, 5}), // more than kept
    };
    RouteEntry nh = entry("10.7.0.0/16", RTN_UNICAST, {});
    nh.nexthop_object = true;
    in.push_back(nh);
    auto out = effective_routes(in);
    ASSERT_EQ(out.size(), 6u);
    const cw_route& def = out.at(cidr("0.0.0.0/0"));
    EXPECT_EQ(def.kind, CW_ROUTE_UNICAST);
    EXPECT_EQ(def.nhops, 1);
    EXPECT_EQ(def.ifindex[0], 3u);
    EXPECT_EQ(def.v6, 0);
    const cw_route& ll = out.at(cidr("fe80::/64"));
    EXPECT_EQ(ll.nhops, 2);
    EXPECT_EQ(ll.v6, 1);
    EXPECT_EQ(out.at(cidr("10.72.0.1/32")).kind, CW_ROUTE_LOCAL);
    EXPECT_EQ(out.at(cidr("10.9.0.0/16")).kind, CW_ROUTE_NONE);
    EXPECT_EQ(out.at(cidr("10.8.0.0/16")).kind, CW_ROUTE_ANY);
    EXPECT_EQ(out.at(cidr("10.7.0.0/16")).kind, CW_ROUTE_ANY);
}

TEST(RpSysctl, TheLargerOfAllAndTheInterface)
{
    EXPECT_EQ(rp_mode_from_sysctl(0, 0), static_cast<uint32_t>(CW_RP_OFF));
    EXPECT_EQ(rp_mode_from_sysctl(0, 1), static_cast<uint32_t>(CW_RP_STRICT));
    EXPECT_EQ(rp_mode_from_sysctl(2, 1), static_cast<uint32_t>(CW_RP_LOOSE));
    EXPECT_EQ(rp_mode_from_sysctl(1, 0), static_cast<uint32_t>(CW_RP_STRICT));
    EXPECT_EQ(rp_mode_from_sysctl(-1, -1), static_cast<uint32_t>(CW_RP_OFF));
}

// The real kernel's dump: every host has the local table's loopback routes.
TEST(DumpRoutes, TheKernelsRoutesIncludeLoopback)
{
    auto routes = dump_routes();
    bool loopback = false;
    for (const auto& r : routes)
        if (r.dst == cidr("127.0.0.0/8") && r.table == RT_TABLE_LOCAL && r.type == RTN_LOCAL)
            loopback = true;
    EXPECT_TRUE(loopback) << routes.size() << " routes";
}

} // namespace
} // namespace connwatch
