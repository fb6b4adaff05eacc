// SPDX-License-Identifier: GPL-2.0-only
// The CLI11 Config on its own; through parse_command_line in options_test.cpp.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "config/config_file.h"
#include "config/defaults.h"

using namespace connwatch;

// The size is checked before CLI11 opens the file; what CLI11 then reads may
// be another file by the same name, and is bounded too.
TEST(ConfigFileReader, ReadsNoMoreThanTheLimitFromAnyStream)
{
    CLI::App app;
    app.add_option("--threshold");
    ConfigFile reader(app);
    reader.check_file("/nonexistent/connwatchd.conf", false);
    std::istringstream huge(std::string(kMaxConfigFileBytes * 2, '#'));
    try {
        reader.from_config(huge);
        FAIL() << "read more than kMaxConfigFileBytes";
    } catch (const ConfigFileError& e) {
        EXPECT_NE(std::string(e.what()).find("more than 1048576 bytes"), std::string::npos)
            << e.what();
        EXPECT_LT(static_cast<std::size_t>(huge.tellg()), kMaxConfigFileBytes * 2);
    }
}

TEST(ConfigFileReader, KeepsTheLineOfEveryValue)
{
    CLI::App app;
    std::vector<std::string> allow;
    app.add_option("--allow", allow);
    app.add_option("--threshold");
    ConfigFile reader(app);
    reader.check_file("f.conf", false);
    std::istringstream text("allow = a\n\nthreshold = 3\nallow = b c\n");
    auto items = reader.from_config(text);
    ASSERT_EQ(items.size(), 2u); // one per option
    EXPECT_EQ(items[0].name, "allow");
    EXPECT_EQ(items[0].inputs, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(items[1].name, "threshold");

    // Nothing checked yet: nothing to blame.
    EXPECT_EQ(reader.blame(CLI::ValidationError("--allow", "bad")), "");
}
