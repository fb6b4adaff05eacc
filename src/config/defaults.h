// SPDX-License-Identifier: GPL-2.0-only
// Every default of connwatchd, and the limits its options are checked against,
// in one place. struct Options starts from these; the man pages and
// packaging/connwatchd.conf state them in words, so a change here is a change
// there too.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "connwatch_abi.h"

namespace connwatch {

// Header-only, so connwatchctl (which links no daemon code) reads its default
// socket from here too.
namespace defaults {

inline constexpr uint32_t kThreshold = 3;
inline constexpr std::chrono::seconds kWindow{60};
inline constexpr std::chrono::seconds kBlockDuration = std::chrono::hours{1}; // 0 = until removed
inline constexpr bool kMonitorOnly = false;
inline constexpr bool kAllowOwnAddresses = true;
inline constexpr bool kDropTinyFragments = true;
inline constexpr uint32_t kMaxBlocks = 65536;
inline constexpr uint32_t kMaxCidrBlocks = 4096;
// At most this many automatic blocks per second, after a burst of
// kMaxNewBlocksBurst: in one kBlockDuration a flood of spoofed scans can make
// at most 5 * 3600 + 100 = 18100 blocks, 28% of kMaxBlocks (docs/ARCHITECTURE.md).
inline constexpr uint32_t kMaxNewBlocksPerSecond = 5; // 0 = no bound
inline constexpr uint32_t kMaxNewBlocksBurst = 100;
// Sources are counted and blocked per prefix of this length: an IPv6 scanner
// owns a /64 and rotates addresses inside it. 32 and 128: per address.
inline constexpr uint32_t kIpv4Prefix = 32;
inline constexpr uint32_t kIpv6Prefix = 64;
// Repeat offenders (docs/SECURITY.md, "Repeat offenders"): off unless
// escalation-window is set, so that an upgrade never lengthens blocks without
// the operator's word, and the bucket's bound above (rate x block-duration)
// stays the whole story. The factor and the cap are those fail2ban's
// bantime.increment users usually pick, and apply once a window is set.
inline constexpr std::chrono::seconds kEscalationWindow{0}; // 0 = no escalation
inline constexpr uint32_t kEscalationFactorMilli = 2000;   // x2 per offence
inline constexpr std::chrono::seconds kMaxBlockDuration = std::chrono::days{7};
inline constexpr const char* kMetricsListen = "127.0.0.1:9467"; // empty: no endpoint
inline constexpr const char* kControlSocket = "/run/connwatch/control.sock";
inline constexpr const char* kControlGroup = "connwatch";
inline constexpr const char* kStateDir = "/var/lib/connwatch";
inline constexpr const char* kPinDir = "/sys/fs/bpf/connwatch"; // empty: blocks are not pinned
// CrowdSec (docs/CROWDSEC.md): off unless a LAPI URL or machine credentials are given.
inline constexpr std::chrono::seconds kCrowdsecPollInterval{10};
inline constexpr const char* kConfigFile = "/etc/connwatch/connwatchd.conf"; // missing = defaults

// Not an option: a SYN of a TCP 4-tuple seen again within this interval is a
// retransmission, not a new attempt (dedup_ns of struct cw_config). The kernel
// refreshes it on every retransmission, so the usual chain 1 s, 2 s, 4 s apart
// stays one attempt.
inline constexpr std::chrono::seconds kDedupInterval{5};

} // namespace defaults

// Limits that the kernel program relies on (bpf/connwatch_abi.h): a source's
// ports live in CW_SCAN_SLOTS slots, and crossing the threshold needs one more.
inline constexpr uint32_t kMaxThreshold = CW_SCAN_SLOTS - 1;
inline constexpr std::chrono::seconds kMaxWindow = std::chrono::days{1};
// 2^24: every address of an IPv4 /8, CrowdSec's XDP bouncer's size. The kernel
// allocates a bucket array of 16 bytes per power-of-two slot up front
// (256 MiB at this limit), the entries as they come (docs/SCALE.md).
inline constexpr uint32_t kMaxBlocksLimit = 16'777'216;
// The CIDR trie's lookup costs the same whatever it holds (a walk of at most
// 128 bits of prefix); its memory follows its entries. 2^20 prefixes.
inline constexpr uint32_t kMaxCidrBlocksLimit = 1'048'576;

// connwatchd.conf holds a dozen keys; anything larger is not a configuration
// file, and reading it whole (/dev/zero never ends) must not be attempted.
inline constexpr std::size_t kMaxConfigFileBytes = std::size_t{1} << 20;

static_assert(defaults::kThreshold >= 1 && defaults::kThreshold <= kMaxThreshold);
static_assert(defaults::kWindow.count() >= 1 && defaults::kWindow <= kMaxWindow);
static_assert(defaults::kMaxBlocks >= 1 && defaults::kMaxBlocks <= kMaxBlocksLimit);
static_assert(defaults::kMaxCidrBlocks >= 1 && defaults::kMaxCidrBlocks <= kMaxCidrBlocksLimit);
static_assert(uint64_t{defaults::kMaxNewBlocksPerSecond} * defaults::kBlockDuration.count() +
                      defaults::kMaxNewBlocksBurst <
                  defaults::kMaxBlocks / 2,
              "the default bucket must not be able to fill half the default blocklist");
inline constexpr uint32_t kMaxNewBlocksLimit = 1'000'000;
// The widest ipv4-prefix and ipv6-prefix: the widest block an operator may
// make without --force (BlockTable::danger()).
inline constexpr uint32_t kMinIpv4Prefix = 8;
inline constexpr uint32_t kMinIpv6Prefix = 16;
// escalation-factor: 1 (offences counted, durations unchanged) to 100, in
// thousandths (bpf/escalate.h computes in them, without overflow up to this).
inline constexpr uint32_t kMinEscalationFactorMilli = 1000;
inline constexpr uint32_t kMaxEscalationFactorMilli = 100'000;

} // namespace connwatch
