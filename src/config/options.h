// SPDX-License-Identifier: GPL-2.0-only
// connwatchd's options: one list, parsed by CLI11, validated once.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/address.h"

namespace connwatch {

enum class XdpMode { Auto, Native, Generic };
enum class LogTarget { Auto, Journal, Stdout };

// Limits that the kernel program relies on (bpf/connwatch_abi.h).
inline constexpr uint32_t kMaxThreshold = CW_SCAN_SLOTS - 1;
inline constexpr std::chrono::seconds kMaxWindow{86400};
inline constexpr uint32_t kMaxBlocksLimit = 1'000'000;

inline constexpr const char* kDefaultConfigFile = "/etc/connwatch/connwatchd.conf";

struct Options {
    std::string config_file = kDefaultConfigFile; // missing default file = defaults
    bool check_config = false;
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
    std::string metrics_listen = "127.0.0.1:9467"; // empty: no metrics endpoint
    std::string control_socket = "/run/connwatch/control.sock";
    std::string control_group = "connwatch";
    std::string state_dir = "/var/lib/connwatch";
    std::string pin_dir = "/sys/fs/bpf/connwatch"; // empty: blocks are not pinned
    bool verbose = false; // libbpf's own messages, the verifier's log
};

// Parses argv and the configuration file (INI: every key is also a flag of the
// same name, `threshold = 5` is `--threshold 5`; the command line wins).
// Returns nullopt to go on with `out` filled and validated, or an exit code: 0
// after --help/--version, non-zero after an error, which has been printed to
// stderr as one line naming where (file:line, or the command line), the key and
// what it accepts. Called again on reload with the same argv.
// default_config is the file read when --config is not given (tests point it
// elsewhere).
// With `error`, the message goes there instead of to stderr (reload logs it).
std::optional<int> parse_command_line(int argc, const char* const* argv, Options& out,
                                      const std::string& default_config = kDefaultConfigFile,
                                      std::string* error = nullptr);

// The kernel's view of the options (struct cw_config; cidr_blocks is the
// blocklist's to keep).
cw_config kernel_config(const Options& o);

const char* to_string(XdpMode m);
const char* to_string(LogTarget t);

} // namespace connwatch
