// SPDX-License-Identifier: GPL-2.0-only
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "events/messages.h"
#include "common/format.h"

using namespace connwatch;

namespace {

// 2021-04-28 15:28:05 in UTC; the tests pin TZ so "local time" is known.
constexpr std::time_t kWhen = 1619623685;

class FormatTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        const char* tz = std::getenv("TZ");
        saved_ = tz ? tz : "";
        had_tz_ = tz != nullptr;
        setenv("TZ", "UTC", 1);
        tzset();
    }
    void TearDown() override
    {
        if (had_tz_)
            setenv("TZ", saved_.c_str(), 1);
        else
            unsetenv("TZ");
        tzset();
    }
    static Address a(const char* s) { return *Address::parse(s); }

private:
    std::string saved_;
    bool had_tz_ = false;
};

} // namespace

TEST_F(FormatTest, NewConnectionIsTheClassicLine)
{
    EXPECT_EQ(format_new_connection(kWhen, a("192.0.2.56"), 5973, a("10.0.0.5"), 80),
              "2021-04-28 15:28:05: New connection: 192.0.2.56:5973 -> 10.0.0.5:80");
}

TEST_F(FormatTest, NewConnectionIpv6UsesBrackets)
{
    EXPECT_EQ(format_new_connection(kWhen, a("2001:db8::56"), 5973, a("2001:db8::5"), 80),
              "2021-04-28 15:28:05: New connection: [2001:db8::56]:5973 -> [2001:db8::5]:80");
}

TEST_F(FormatTest, PortScanIsTheClassicLine)
{
    EXPECT_EQ(format_port_scan(kWhen, a("192.0.2.56"), a("10.0.0.5"), {80, 81, 82, 83}),
              "2021-04-28 15:28:05: Port scan detected: 192.0.2.56 -> 10.0.0.5 on ports "
              "80,81,82,83");
}

TEST_F(FormatTest, PortScanSortsAndDeduplicatesPorts)
{
    EXPECT_EQ(format_port_scan(kWhen, a("2001:db8::56"), a("2001:db8::5"), {443, 22, 80, 22}),
              "2021-04-28 15:28:05: Port scan detected: 2001:db8::56 -> 2001:db8::5 on ports "
              "22,80,443");
}

TEST_F(FormatTest, TimestampIsLocalTime)
{
    setenv("TZ", "UTC-2", 1); // POSIX: two hours east of UTC
    tzset();
    EXPECT_EQ(format_timestamp(kWhen), "2021-04-28 17:28:05");
}

TEST_F(FormatTest, ScanActionLinesSayWhatWasDone)
{
    PortScan s{kWhen, a("192.0.2.56"), a("10.0.0.5"), {80}, "eth0", CW_ACT_BLOCKED,
               kWhen + 3600, 0, 0, {}, {}};
    EXPECT_EQ(format_scan_action(s), "2021-04-28 15:28:05: Blocked 192.0.2.56 until "
                                     "2021-04-28 16:28:05");
    // Made in place of the oldest automatic block (a full blocklist).
    s.replaced = a("198.51.100.7");
    EXPECT_EQ(format_scan_action(s), "2021-04-28 15:28:05: Blocked 192.0.2.56 until "
                                     "2021-04-28 16:28:05 in place of 198.51.100.7, the "
                                     "oldest automatic block (the blocklist is full)");
    EXPECT_EQ(replaced_reason(a("192.0.2.56").str()),
              "replaced by 192.0.2.56: the blocklist was full, and this was the oldest "
              "automatic block");
    s.replaced.reset();
    s.expires = 0;
    EXPECT_EQ(format_scan_action(s),
              "2021-04-28 15:28:05: Blocked 192.0.2.56 until removed");
    s.action = CW_ACT_MONITOR_ONLY;
    EXPECT_NE(format_scan_action(s).find("Not blocking 192.0.2.56: monitor-only"),
              std::string::npos);
    s.action = CW_ACT_ALLOWLISTED;
    EXPECT_NE(format_scan_action(s).find("allowlist"), std::string::npos);
    s.action = CW_ACT_BLOCKLIST_FULL;
    EXPECT_NE(format_scan_action(s).find("blocklist is full"), std::string::npos);
    s.action = CW_ACT_RATE_LIMITED;
    EXPECT_NE(format_scan_action(s).find("Not blocking 192.0.2.56: more automatic blocks than "
                                         "max-new-blocks-per-second"),
              std::string::npos);
    EXPECT_STREQ(scan_action_name(CW_ACT_RATE_LIMITED), "rate-limited");
    s.action = CW_ACT_SPOOFED;
    EXPECT_NE(format_scan_action(s).find("Not blocking 192.0.2.56: its source fails the "
                                         "reverse-path check (rp-filter"),
              std::string::npos)
        << format_scan_action(s);
    EXPECT_STREQ(scan_action_name(CW_ACT_SPOOFED), "spoofed");
}

// Scans of sources that fail the reverse-path check: summed the same way.
TEST_F(FormatTest, SpoofedScansAreSummedOncePerInterval)
{
    SkippedBlocks sb(true);
    auto t0 = SkippedBlocks::Clock::now();
    for (int i = 0; i < 3; i++)
        sb.add(a("10.72.0.2"));
    uint64_t n = 0;
    std::string msg = sb.take(t0, &n);
    EXPECT_EQ(n, 3u);
    EXPECT_NE(msg.find("Not blocking 3 scanners (the latest 10.72.0.2): its source fails the "
                       "reverse-path check"),
              std::string::npos)
        << msg;
    EXPECT_EQ(msg.find("max-new-blocks-per-second"), std::string::npos) << msg;
}

// ipv6-prefix / ipv4-prefix: a source counted as its prefix is named by it;
// counted per address, the lines are exactly the classic ones.
TEST_F(FormatTest, ScanOfAPrefixNamesThePrefix)
{
    PortScan s{kWhen, a("2001:db8:1:2::a"), a("2001:db8::5"), {443, 22, 80, 8080}, "eth0",
               CW_ACT_BLOCKED, kWhen + 3600, 0, 0, {}, {}};
    EXPECT_EQ(format_port_scan(kWhen, s.scanner_str(), s.dst, s.ports),
              "2021-04-28 15:28:05: Port scan detected: 2001:db8:1:2::a -> 2001:db8::5 on "
              "ports 22,80,443,8080");
    EXPECT_EQ(format_scan_action(s), "2021-04-28 15:28:05: Blocked 2001:db8:1:2::a until "
                                     "2021-04-28 16:28:05");
    s.scanner_prefix = Cidr(a("2001:db8:1:2::"), 64);
    s.blocked_prefix = s.scanner_prefix;
    EXPECT_EQ(format_port_scan(kWhen, s.scanner_str(), s.dst, s.ports),
              "2021-04-28 15:28:05: Port scan detected: 2001:db8:1:2::/64 -> 2001:db8::5 on "
              "ports 22,80,443,8080");
    EXPECT_EQ(format_scan_action(s), "2021-04-28 15:28:05: Blocked 2001:db8:1:2::/64 until "
                                     "2021-04-28 16:28:05");
    // Counted as the prefix, blocked alone (its first address had an exact block).
    s.blocked_prefix.reset();
    EXPECT_EQ(format_scan_action(s), "2021-04-28 15:28:05: Blocked 2001:db8:1:2::a until "
                                     "2021-04-28 16:28:05");
    s.action = CW_ACT_ALLOWLISTED;
    EXPECT_NE(format_scan_action(s).find("Not blocking 2001:db8:1:2::/64: it is in the allowlist"),
              std::string::npos);
    PortScan v4{kWhen, a("192.0.2.56"), a("10.0.0.5"), {80, 81, 82, 83}, "eth0",
                CW_ACT_BLOCKED, 0, 0, 0, {}, {}};
    v4.scanner_prefix = v4.blocked_prefix = Cidr(a("192.0.2.0"), 24);
    EXPECT_EQ(format_port_scan(kWhen, v4.scanner_str(), v4.dst, v4.ports),
              "2021-04-28 15:28:05: Port scan detected: 192.0.2.0/24 -> 10.0.0.5 on ports "
              "80,81,82,83");
    EXPECT_EQ(format_scan_action(v4), "2021-04-28 15:28:05: Blocked 192.0.2.0/24 until removed");
}

// Skipped blocks are said once per interval, with the count, not per scan.
TEST_F(FormatTest, SkippedBlocksAreSummedOncePerInterval)
{
    SkippedBlocks sb;
    auto t0 = SkippedBlocks::Clock::now();
    EXPECT_EQ(sb.take(t0), "");
    sb.add(a("192.0.2.1"));
    uint64_t n = 0;
    std::string msg = sb.take(t0, &n); // the first after a quiet spell: at once
    EXPECT_EQ(n, 1u);
    EXPECT_NE(msg.find("Not blocking 1 scanner (the latest 192.0.2.1): more automatic blocks "
                       "than max-new-blocks-per-second allows"),
              std::string::npos)
        << msg;
    for (int i = 0; i < 1000; i++)
        sb.add(a("192.0.2.2"));
    EXPECT_EQ(sb.take(t0 + std::chrono::seconds(9)), ""); // within the interval: held
    msg = sb.take(t0 + SkippedBlocks::kInterval, &n);
    EXPECT_EQ(n, 1000u);
    EXPECT_NE(msg.find("Not blocking 1000 scanners (the latest 192.0.2.2)"), std::string::npos)
        << msg;
    EXPECT_EQ(sb.take(t0 + std::chrono::seconds(30)), ""); // nothing new
}

TEST_F(FormatTest, ProbeIsAClassicLineWithItsFlags)
{
    EXPECT_EQ(format_probe(kWhen, a("192.0.2.56"), 5973, a("10.0.0.5"), 80, 0x29),
              "2021-04-28 15:28:05: Probe: 192.0.2.56:5973 -> 10.0.0.5:80 (FIN,PSH,URG)");
    EXPECT_EQ(format_probe(kWhen, a("2001:db8::56"), 5973, a("2001:db8::5"), 443, 0x01),
              "2021-04-28 15:28:05: Probe: [2001:db8::56]:5973 -> [2001:db8::5]:443 (FIN)");
}

// Its flags may be in a later fragment, or byte 13 may be there: either way the
// line says what it is, not a guess at the flags.
TEST_F(FormatTest, TinyFragmentProbeSaysSo)
{
    EXPECT_EQ(format_probe(kWhen, a("192.0.2.56"), 5973, a("10.0.0.5"), 22, 0, true),
              "2021-04-28 15:28:05: Probe: 192.0.2.56:5973 -> 10.0.0.5:22 (tiny fragment)");
    EXPECT_EQ(format_probe(kWhen, a("192.0.2.56"), 5973, a("10.0.0.5"), 22, 0x02, true),
              "2021-04-28 15:28:05: Probe: 192.0.2.56:5973 -> 10.0.0.5:22 (tiny fragment)");
}

TEST_F(FormatTest, TcpFlagsAreNamedLowestBitFirst)
{
    EXPECT_EQ(format_tcp_flags(0), "none"); // a NULL probe
    EXPECT_EQ(format_tcp_flags(0x01), "FIN");
    EXPECT_EQ(format_tcp_flags(0x03), "FIN,SYN");
    EXPECT_EQ(format_tcp_flags(0x06), "SYN,RST");
    EXPECT_EQ(format_tcp_flags(0x29), "FIN,PSH,URG");
    EXPECT_EQ(format_tcp_flags(0xc2), "SYN,ECE,CWR");
    EXPECT_EQ(format_tcp_flags(0xff), "FIN,SYN,RST,PSH,ACK,URG,ECE,CWR");
}
