// SPDX-License-Identifier: GPL-2.0-only
// The kernel's records as typed events, and the counters' one table.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "base/clock.h"
#include "events/events.h"
#include "events/messages.h"
#include "kernel/stats.h"

using namespace connwatch;

namespace {

cw_addr mapped(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    cw_addr x{};
    x.b[10] = x.b[11] = 0xff;
    x.b[12] = a, x.b[13] = b, x.b[14] = c, x.b[15] = d;
    return x;
}

} // namespace

TEST(DecodeEvent, NewConnectionCarriesTheFourTupleAndTheInterface)
{
    cw_event ev{};
    ev.type = CW_EV_NEW_CONN;
    ev.ts_ns = monotonic_now_ns();
    ev.saddr = mapped(192, 0, 2, 56);
    ev.daddr = mapped(10, 0, 0, 5);
    ev.sport = 5973;
    ev.dport = 80;
    ev.ifindex = 1; // loopback, present on every machine
    auto e = decode_event(ev);
    auto* c = std::get_if<NewConnection>(&e);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->src.str(), "192.0.2.56");
    EXPECT_EQ(c->dst.str(), "10.0.0.5");
    EXPECT_EQ(c->sport, 5973);
    EXPECT_EQ(c->dport, 80);
    EXPECT_EQ(c->ifname, "lo");
    EXPECT_NEAR(static_cast<double>(c->when), static_cast<double>(std::time(nullptr)), 2.0);
}

TEST(DecodeEvent, APortScanSaysThePrefixItCountedAndBlocked)
{
    cw_event ev{};
    ev.type = CW_EV_SCAN;
    ev.ts_ns = monotonic_now_ns();
    ev.action = CW_ACT_BLOCKED;
    ev.saddr = mapped(192, 0, 2, 56);
    ev.nports = 0;
    auto e = decode_event(ev);
    auto* s = std::get_if<PortScan>(&e);
    ASSERT_NE(s, nullptr);
    EXPECT_FALSE(s->scanner_prefix); // 0: per address, as before
    EXPECT_EQ(s->scanner_str(), "192.0.2.56");
    EXPECT_EQ(s->blocked(), Cidr::host(s->src));

    ev.prefix_len = 96 + 24;
    ev.block_prefix_len = 96 + 24;
    e = decode_event(ev);
    s = std::get_if<PortScan>(&e);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->scanner_str(), "192.0.2.0/24");
    EXPECT_EQ(s->blocked_str(), "192.0.2.0/24");
    EXPECT_EQ(s->src.str(), "192.0.2.56"); // who completed it

    // A length that is not a prefix of the family (a broken record): the address.
    ev.prefix_len = 64;
    ev.block_prefix_len = 200;
    e = decode_event(ev);
    s = std::get_if<PortScan>(&e);
    ASSERT_NE(s, nullptr);
    EXPECT_FALSE(s->scanner_prefix);
    EXPECT_FALSE(s->blocked_prefix);
}

TEST(DecodeEvent, APortScanNeverReadsPastItsPortArray)
{
    cw_event ev{};
    ev.type = CW_EV_SCAN;
    ev.ts_ns = monotonic_now_ns();
    ev.action = CW_ACT_BLOCKED;
    ev.expires_ns = ev.ts_ns + 3600 * kNsPerSec;
    ev.nports = 200; // more than the array holds: a broken or hostile record
    for (unsigned i = 0; i < CW_SCAN_SLOTS; i++)
        ev.ports[i] = static_cast<uint16_t>(1000 + i);
    auto e = decode_event(ev);
    auto* s = std::get_if<PortScan>(&e);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->ports.size(), CW_SCAN_SLOTS);
    EXPECT_EQ(s->action, CW_ACT_BLOCKED);
    EXPECT_NEAR(static_cast<double>(s->expires - s->when), 3600.0, 1.0);

    ev.nports = 4;
    ev.expires_ns = 0;
    s = std::get_if<PortScan>(&(e = decode_event(ev)));
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->ports, (std::vector<uint16_t>{1000, 1001, 1002, 1003}));
    EXPECT_EQ(s->expires, 0) << "until removed";
}

// Repeat offenders: the block's line says which offence and for how long; the
// scan's own line is untouched, and without escalation (offence 0) so is the
// block's.
TEST(DecodeEvent, AnEscalatedBlockSaysItsOffence)
{
    cw_event ev{};
    ev.type = CW_EV_SCAN;
    ev.ts_ns = monotonic_now_ns();
    ev.action = CW_ACT_BLOCKED;
    ev.expires_ns = ev.ts_ns + 4 * 3600 * kNsPerSec;
    ev.saddr = mapped(192, 0, 2, 56);
    ev.daddr = mapped(198, 51, 100, 1);
    ev.nports = 4;
    ev.offence = 3;
    auto e = decode_event(ev);
    auto* s = std::get_if<PortScan>(&e);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->offence, 3u);
    EXPECT_EQ(s->duration_ns, 4 * 3600 * kNsPerSec);
    std::string line = format_scan_action(*s);
    EXPECT_NE(line.find(": Blocked 192.0.2.56 until "), std::string::npos) << line;
    EXPECT_EQ(line.substr(line.size() - 28), " (offence 3, blocked for 4h)") << line;

    ev.offence = 0;
    s = std::get_if<PortScan>(&(e = decode_event(ev)));
    ASSERT_NE(s, nullptr);
    line = format_scan_action(*s);
    EXPECT_EQ(line.find("offence"), std::string::npos) << line;

    // Not blocked: no offence, whatever the record says.
    ev.offence = 2;
    ev.action = CW_ACT_ALLOWLISTED;
    s = std::get_if<PortScan>(&(e = decode_event(ev)));
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->offence, 0u);
    EXPECT_EQ(format_scan_action(*s).find("offence"), std::string::npos);
}

TEST(DecodeEvent, AProbeCarriesItsFlagsAndIsNoConnection)
{
    cw_event ev{};
    ev.type = CW_EV_PROBE;
    ev.ts_ns = monotonic_now_ns();
    ev.saddr = mapped(192, 0, 2, 56);
    ev.daddr = mapped(10, 0, 0, 5);
    ev.sport = 5973;
    ev.dport = 80;
    ev.tcp_flags = 0x29; // FIN, PSH, URG: nmap -sX
    ev.ifindex = 1;
    auto e = decode_event(ev);
    ASSERT_FALSE(std::holds_alternative<NewConnection>(e));
    auto* p = std::get_if<Probe>(&e);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->src.str(), "192.0.2.56");
    EXPECT_EQ(p->dst.str(), "10.0.0.5");
    EXPECT_EQ(p->sport, 5973);
    EXPECT_EQ(p->dport, 80);
    EXPECT_EQ(p->tcp_flags, 0x29);
    EXPECT_EQ(p->ifname, "lo");
    EXPECT_NEAR(static_cast<double>(p->when), static_cast<double>(std::time(nullptr)), 2.0);

    ev.tcp_flags = 0; // a NULL probe is still a probe
    p = std::get_if<Probe>(&(e = decode_event(ev)));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->tcp_flags, 0);
}

TEST(DecodeEvent, AnUnknownTypeIsNotGuessedAt)
{
    cw_event ev{};
    ev.type = 77;
    auto e = decode_event(ev);
    ASSERT_TRUE(std::holds_alternative<UnknownEvent>(e));
    EXPECT_EQ(std::get<UnknownEvent>(e).type, 77);
}

TEST(InterfaceName, AGoneInterfaceIsNamedByItsIndex)
{
    EXPECT_EQ(interface_name(1), "lo");
    EXPECT_EQ(interface_name(0x7ffffff0u), "ifindex2147483632");
}

TEST(StatTable, EveryCounterHasOneNameAndEveryFamilyAHelp)
{
    std::set<std::string_view> names, families;
    for (const auto& f : stat_families()) {
        EXPECT_FALSE(f.help.empty()) << f.metric;
        EXPECT_TRUE(families.insert(f.metric).second) << f.metric << " twice";
    }
    std::set<std::pair<std::string_view, std::string_view>> series;
    for (uint32_t i = 0; i < CW_STAT_MAX; i++) {
        const auto& s = stat_table()[i];
        EXPECT_EQ(s.id, i);
        EXPECT_EQ(stat_name(i), s.name);
        EXPECT_TRUE(names.insert(s.name).second) << s.name << " twice";
        if (s.metric.empty())
            continue;
        EXPECT_TRUE(families.count(s.metric)) << s.name << ": family without help";
        EXPECT_TRUE(series.insert({s.metric, s.label_value}).second)
            << s.name << ": the same series as another counter";
    }
    EXPECT_EQ(stat_name(CW_STAT_MAX), "unknown");
    EXPECT_EQ(stat_name(CW_STAT_DROP_BLOCKED), "drop_blocked");
    EXPECT_EQ(stat_name(CW_STAT_PASS_PROBE), "pass_probe");
    EXPECT_EQ(stat_table()[CW_STAT_PROBE].metric, "connwatch_probes_total");
}
