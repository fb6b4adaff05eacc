// SPDX-License-Identifier: GPL-2.0-only
// What connwatchd keeps across restarts and reboots, besides the pinned maps:
// the metadata of every block (origin, reason, times in wall-clock seconds) and
// the allow entries added at run time. Written atomically as JSON.
#pragma once

#include <ctime>
#include <string>
#include <vector>

#include "common/address.h"
#include "common/block_kinds.h"

namespace connwatch {

struct BlockRecord {
    Cidr prefix;
    BlockOrigin origin = BlockOrigin::Scan;
    std::string reason;
    std::time_t created = 0;
    std::time_t expires = 0; // 0 = until removed
};

struct State {
    std::vector<BlockRecord> blocks;
    std::vector<Cidr> allow; // added with connwatchctl allow
};

// Reads the state file. A missing file is an empty state. A file that cannot be
// parsed is moved aside to PATH.corrupt (and the reason returned in warning):
// starting without the old blocks beats not starting at all.
State load_state(const std::string& path, std::string* warning);

// Writes PATH.tmp, fsyncs it, renames it over PATH and fsyncs the directory:
// after a crash at any point the file is the old state or the new, never half.
// Throws Error.
void save_state(const std::string& path, const State& state);

} // namespace connwatch
