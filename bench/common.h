// SPDX-License-Identifier: GPL-2.0-only
#pragma once
// What the control-plane benchmarks (ctl_bench, crowdsec_bench) share: their
// clock and the addresses they make up.

#include <chrono>
#include <cstdint>
#include <string>

namespace connwatch::bench {

using Clock = std::chrono::steady_clock;

// Seconds since t0, by the wall clock.
inline double secs(Clock::time_point t0)
{
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// 100.64.0.0/10 (the shared address space, RFC 6598), as a host-order number:
// 4 M addresses, none of this host's.
constexpr uint32_t kBenchNet = 100u << 24 | 64u << 16;

// A host-order IPv4 address in dotted form.
inline std::string dotted(uint32_t a)
{
    return std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) + "." +
           std::to_string(a >> 8 & 255) + "." + std::to_string(a & 255);
}

// The i-th address from 100.64.0.0 up, dotted.
inline std::string nth_address(uint32_t i)
{
    return dotted(kBenchNet + i);
}

} // namespace connwatch::bench
