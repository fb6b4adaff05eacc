// SPDX-License-Identifier: GPL-2.0-only
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "options.h"

using namespace connwatch;

namespace {

struct Parsed {
    std::optional<int> code;
    Options opts;
    std::string err;
};

Parsed parse(std::initializer_list<const char*> args)
{
    std::vector<const char*> argv{"connwatchd"};
    argv.insert(argv.end(), args.begin(), args.end());
    Parsed p;
    testing::internal::CaptureStderr();
    testing::internal::CaptureStdout();
    p.code = parse_command_line(static_cast<int>(argv.size()), argv.data(), p.opts);
    testing::internal::GetCapturedStdout();
    p.err = testing::internal::GetCapturedStderr();
    return p;
}

} // namespace

TEST(Options, DefaultsNeedNoConfiguration)
{
    auto p = parse({});
    ASSERT_FALSE(p.code) << p.err;
    EXPECT_TRUE(p.opts.interfaces.empty());
    EXPECT_EQ(p.opts.xdp_mode, XdpMode::Auto);
    EXPECT_EQ(p.opts.threshold, 3u);
    EXPECT_EQ(p.opts.window, std::chrono::seconds(60));
    EXPECT_EQ(p.opts.block_duration, std::chrono::seconds(3600));
    EXPECT_FALSE(p.opts.monitor_only);
    EXPECT_TRUE(p.opts.allow_own_addresses);
    EXPECT_EQ(p.opts.log_target, LogTarget::Auto);
}

TEST(Options, EveryFlagIsApplied)
{
    auto p = parse({"--interface", "eth0", "-i", "eth1", "--xdp-mode", "generic",
                    "--threshold", "5", "--window", "2m", "--block-duration", "0",
                    "--monitor-only", "--allow", "192.0.2.0/24", "--allow", "2001:db8::/32",
                    "--allow-own-addresses", "false", "--log-target", "stdout",
                    "--max-blocks", "100"});
    ASSERT_FALSE(p.code) << p.err;
    EXPECT_EQ(p.opts.interfaces, (std::vector<std::string>{"eth0", "eth1"}));
    EXPECT_EQ(p.opts.xdp_mode, XdpMode::Generic);
    EXPECT_EQ(p.opts.threshold, 5u);
    EXPECT_EQ(p.opts.window, std::chrono::seconds(120));
    EXPECT_EQ(p.opts.block_duration, std::chrono::seconds(0));
    EXPECT_TRUE(p.opts.monitor_only);
    ASSERT_EQ(p.opts.allow.size(), 2u);
    EXPECT_EQ(p.opts.allow[0].str(), "192.0.2.0/24");
    EXPECT_EQ(p.opts.allow[1].str(), "2001:db8::/32");
    EXPECT_FALSE(p.opts.allow_own_addresses);
    EXPECT_EQ(p.opts.log_target, LogTarget::Stdout);
    EXPECT_EQ(p.opts.max_blocks, 100u);
}

// Each bad value: a non-zero exit, and one message naming the option.
TEST(Options, BadValuesAreRejectedNamingTheOption)
{
    struct Case {
        std::initializer_list<const char*> args;
        const char* mentions;
    };
    for (const auto& c : std::initializer_list<Case>{
             {{"--threshold", "0"}, "--threshold"},
             {{"--threshold", "32"}, "--threshold"},
             {{"--threshold", "three"}, "--threshold"},
             {{"--window", "0"}, "window must be between 1s and 1d"},
             {{"--window", "2d"}, "window must be between 1s and 1d"},
             {{"--window", "soon"}, "not a duration"},
             {{"--block-duration", "1y"}, "not a duration"},
             {{"--allow", "10.0.0.1/8"}, "did you mean '10.0.0.0/8'"},
             {{"--allow", "nonsense"}, "not an IPv4 or IPv6 address"},
             {{"--xdp-mode", "fast"}, "--xdp-mode"},
             {{"--log-target", "syslog"}, "--log-target"},
             {{"--max-blocks", "0"}, "--max-blocks"},
             {{"--allow-own-addresses", "maybe"}, "--allow-own-addresses"},
             {{"--no-such-flag"}, "--no-such-flag"},
             {{"--interface"}, "--interface"},
         }) {
        auto p = parse(c.args);
        std::string joined;
        for (auto a : c.args)
            joined += std::string(a) + " ";
        ASSERT_TRUE(p.code) << joined;
        EXPECT_NE(*p.code, 0) << joined;
        EXPECT_NE(p.err.find(c.mentions), std::string::npos) << joined << "-> " << p.err;
        EXPECT_EQ(p.err.rfind("connwatchd: ", 0), 0u) << p.err;
    }
}

TEST(Options, HelpAndVersionExitZero)
{
    EXPECT_EQ(parse({"--help"}).code, 0);
    EXPECT_EQ(parse({"--version"}).code, 0);
}
