// SPDX-License-Identifier: GPL-2.0-only
// An invariant of a fuzz target: when it does not hold, say which and abort, so
// libFuzzer keeps the input as a crash artifact (an assert() would vanish under
// NDEBUG, which RelWithDebInfo defines).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(cond, detail)                                                               \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n  %s\n", __FILE__, __LINE__,   \
                         #cond, std::string(detail).c_str());                                  \
            std::abort();                                                                      \
        }                                                                                      \
    } while (0)
