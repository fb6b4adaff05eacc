// SPDX-License-Identifier: GPL-2.0-only
// What connwatchd keeps across restarts and reboots, besides the pinned maps:
// the metadata of every block (origin, reason, times in wall-clock seconds) and
// the allow entries added at run time. Written atomically as JSON.
#pragma once

#include <ctime>
#include <string>
#include <string_view>
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

    bool operator==(const BlockRecord&) const = default;
};

struct State {
    std::vector<BlockRecord> blocks;
    std::vector<Cidr> allow; // added with connwatchctl allow

    bool operator==(const State&) const = default;
};

// The state file's text. A file that is not a state file at all (not JSON,
// another version, no "blocks" or "allow" list) throws std::runtime_error. A
// record that cannot be read ("blocks[2]: ...") is skipped and said in
// `problems`: one hand-edited or damaged entry must not cost every other block.
State parse_state(std::string_view text, std::vector<std::string>* problems);

// The text save_state() writes; parse_state() reads it back to the same State.
std::string format_state(const State& state);

// Reads the state file. A missing file is an empty state. A file that cannot be
// parsed is moved aside to PATH.corrupt: starting without the old blocks beats
// not starting at all. When only some records are bad, the others are kept and
// the file as it was is copied to PATH.corrupt (the next save drops the bad
// records). Either way `warning` says what happened.
State load_state(const std::string& path, std::string* warning);

// Writes PATH.tmp, fsyncs it, renames it over PATH and fsyncs the directory:
// after a crash at any point the file is the old state or the new, never half.
// Throws Error.
void save_state(const std::string& path, const State& state);

} // namespace connwatch
