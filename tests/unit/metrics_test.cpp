// SPDX-License-Identifier: GPL-2.0-only
// The metric texts a scrape shows that no integration test reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "common/block_kinds.h"
#include "metrics/metrics.h"

using namespace connwatch;

// Every RemovalReason is a `reason` label value of
// connwatch_blocks_removed_total (metrics.cpp emits one series per entry of
// kRemovalReasons), and its HELP text names each. The walk goes over the enum
// itself, up to the first value to_string does not know, so a reason appended
// to the enum but not to kRemovalReasons fails here too.
TEST(Metrics, BlocksRemovedHelpNamesEveryReason)
{
    const std::string help = blocks_removed_help();
    int known = 0;
    for (int i = 0; i < 256; ++i) {
        auto r = static_cast<RemovalReason>(i);
        std::string name(to_string(r));
        if (name == "?")
            break;
        ++known;
        EXPECT_NE(help.find(name), std::string::npos) << help << " lacks " << name;
        EXPECT_NE(std::find(std::begin(kRemovalReasons), std::end(kRemovalReasons), r),
                  std::end(kRemovalReasons))
            << name << " is not in kRemovalReasons, so no series is exported for it";
    }
    EXPECT_EQ(known, static_cast<int>(std::size(kRemovalReasons)));
    // The reasons the docs (docs/METRICS.md) list, the last two added after
    // the first HELP text was written.
    for (const char* name :
         {"expired", "unblocked", "allowlisted", "flushed", "withdrawn", "replaced"})
        EXPECT_NE(help.find(name), std::string::npos) << help << " lacks " << name;
}
