// SPDX-License-Identifier: GPL-2.0-only
// connwatchd's options: one list, parsed by CLI11, validated once.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/address.h"
#include "config/defaults.h"
#include "connwatch_abi.h"

namespace connwatch {

enum class XdpMode { Auto, Native, Generic };
enum class LogTarget { Auto, Journal, Stdout };
// rp-filter: the reverse-path check of a scanner's source before its automatic
// block. Auto follows each watched interface's own rp_filter sysctl.
enum class RpFilter { Auto, Strict, Loose, Off };

struct Options {
    std::string config_file = defaults::kConfigFile;
    bool check_config = false;
    bool detach = false; // --detach: remove what an earlier connwatchd left attached, exit
    std::vector<std::string> interfaces; // empty: the default-route interface
    XdpMode xdp_mode = XdpMode::Auto;
    uint32_t threshold = defaults::kThreshold;
    std::chrono::seconds window = defaults::kWindow;
    std::chrono::seconds block_duration = defaults::kBlockDuration;
    bool monitor_only = defaults::kMonitorOnly;
    std::vector<Cidr> allow;
    bool allow_own_addresses = defaults::kAllowOwnAddresses;
    bool drop_tiny_fragments = defaults::kDropTinyFragments;
    RpFilter rp_filter = RpFilter::Auto;
    LogTarget log_target = LogTarget::Auto;
    uint32_t max_blocks = defaults::kMaxBlocks;
    uint32_t max_cidr_blocks = defaults::kMaxCidrBlocks;
    uint32_t max_new_blocks_per_second = defaults::kMaxNewBlocksPerSecond; // 0 = no bound
    uint32_t max_new_blocks_burst = defaults::kMaxNewBlocksBurst;
    // Sources counted and blocked per prefix of this length (32/128: per address).
    uint32_t ipv4_prefix = defaults::kIpv4Prefix;
    uint32_t ipv6_prefix = defaults::kIpv6Prefix;
    // Repeat offenders: a source blocked again within escalation_window of the
    // end of its previous automatic block gets the previous duration x factor,
    // at most max_block_duration. A zero window: no escalation.
    std::chrono::seconds escalation_window = defaults::kEscalationWindow;
    uint32_t escalation_factor_milli = defaults::kEscalationFactorMilli; // factor x 1000
    std::chrono::seconds max_block_duration = defaults::kMaxBlockDuration;
    std::string metrics_listen = defaults::kMetricsListen;
    std::string control_socket = defaults::kControlSocket;
    std::string control_group = defaults::kControlGroup;
    std::string state_dir = defaults::kStateDir;
    std::string pin_dir = defaults::kPinDir;
    // CrowdSec (docs/CROWDSEC.md): the bouncer (LAPI URL and key file, both or
    // neither) and the watcher (machine credentials file); empty = off.
    std::string crowdsec_lapi_url;
    std::string crowdsec_bouncer_key_file;
    std::chrono::seconds crowdsec_poll_interval = defaults::kCrowdsecPollInterval;
    std::string crowdsec_machine_credentials_file;
    std::string crowdsec_ca_file; // empty: the system's store
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
                                      const std::string& default_config = defaults::kConfigFile,
                                      std::string* error = nullptr);

// What the kernel program is told (its one-entry config map): the scan
// parameters of `o` and the dedup interval, which is not an option.
// cidr_blocks is 0: it counts block_cidr entries, which XdpProgram owns and
// keeps when set_config() writes the rest.
cw_config kernel_config(const Options& o);

// escalation-factor as written ("2", "1.5", at most three decimals) in
// thousandths, between kMinEscalationFactorMilli and kMaxEscalationFactorMilli;
// nullopt (and why in error) otherwise. format_factor() writes it back.
std::optional<uint32_t> parse_factor(const std::string& text, std::string* error = nullptr);
std::string format_factor(uint32_t milli);

// Why the options cannot work together as escalation needs them, or "":
// max-block-duration shorter than block-duration while escalation is on.
std::string escalation_conflict(const Options& o);
// A warning worth a line at start, at each reload and from --check-config
// (one function, so the three say the same), or "": with escalation on, a patient flood
// of spoofed repeat scans could keep rate x max-block-duration blocks, more
// than half of max-blocks (docs/SECURITY.md).
std::string escalation_warning(const Options& o);

const char* to_string(XdpMode m);
const char* to_string(LogTarget t);
const char* to_string(RpFilter r);

} // namespace connwatch
