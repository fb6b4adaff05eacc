// SPDX-License-Identifier: GPL-2.0-only
// The two clocks connwatch lives by. The kernel stamps events and block
// deadlines with bpf_ktime_get_ns() (CLOCK_MONOTONIC, which stops across a
// reboot and means nothing outside this boot); people and the state file want
// wall-clock seconds. Every conversion between the two is here.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>

namespace connwatch {

inline constexpr uint64_t kNsPerSec = 1'000'000'000ull;

// CLOCK_MONOTONIC now, in nanoseconds: the kernel's bpf_ktime_get_ns().
uint64_t monotonic_now_ns();

// A monotonic instant as wall-clock seconds.
std::time_t wall_time_of(uint64_t monotonic_ns);

// The monotonic deadline `d` after `from_ns`; a zero duration is "never" (0),
// as in struct cw_block.
uint64_t deadline_ns(uint64_t from_ns, std::chrono::seconds d);

// A wall-clock deadline (0 = never) as a monotonic one, counted from now; one
// already past is now. For block expiries read back from the state file.
uint64_t monotonic_deadline_of(std::time_t wall, std::time_t now_wall, uint64_t now_ns);

} // namespace connwatch
