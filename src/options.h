// SPDX-License-Identifier: GPL-2.0-only
// connwatchd's options: one list, parsed by CLI11, validated once.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "address.h"

namespace connwatch {

enum class XdpMode { Auto, Native, Generic };
enum class LogTarget { Auto, Journal, Stdout };

// Limits that the kernel program relies on (bpf/connwatch_abi.h).
inline constexpr uint32_t kMaxThreshold = CW_SCAN_SLOTS - 1;
inline constexpr std::chrono::seconds kMaxWindow{86400};
inline constexpr uint32_t kMaxBlocksLimit = 1'000'000;

struct Options {
    std::vector<std::string> interfaces;
    XdpMode xdp_mode = XdpMode::Auto;
    uint32_t threshold = 3;
    std::chrono::seconds window{60};
    std::chrono::seconds block_duration{3600}; // 0 = until removed
    bool monitor_only = false;
    std::vector<Cidr> allow;
    bool allow_own_addresses = true;
    LogTarget log_target = LogTarget::Auto;
    uint32_t max_blocks = 65536;
    bool verbose = false; // libbpf's own messages, the verifier's log
};

// Parses argv. Returns nullopt to go on with `out` filled and validated, or an
// exit code: 0 after --help/--version, non-zero after an error, which has been
// printed to stderr as one line naming the option and what it accepts.
std::optional<int> parse_command_line(int argc, const char* const* argv, Options& out);

const char* to_string(XdpMode m);
const char* to_string(LogTarget t);

} // namespace connwatch
