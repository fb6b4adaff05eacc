// SPDX-License-Identifier: GPL-2.0-only
// One formatter per message, shared by both sinks: the stdout sink prints a
// message as it is, or after "TIMESTAMP: " where noted; the journal sink sends
// the same text as MESSAGE=.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

#include "events/events.h"

namespace connwatch {

// What was done about a scan, e.g.
// "2021-04-28 15:28:05: Blocked 192.0.2.56 until 2021-04-28 16:28:05", and with
// escalation on " (offence 3, blocked for 4h)" after it (offence_note).
std::string format_scan_action(const PortScan& ev);
// " (offence N, blocked for D)" for a block with escalation on, else "".
std::string offence_note(const PortScan& ev);
// " in place of ADDR, the oldest automatic block (the blocklist is full)" for
// a block made in place of another (PortScan::replaced), else "".
std::string replaced_note(const PortScan& ev);
// The reason of the replaced block's removal (its journald REASON=):
// "replaced by SRC: the blocklist was full, and this was the oldest automatic block".
std::string replaced_reason(const std::string& by);

// "blocked", "monitor-only", "allowlisted", "blocklist-full": journald's ACTION=.
const char* scan_action_name(uint8_t action);

// "2021-04-28 16:28:05: Block expired: 192.0.2.56"
std::string block_expired_message(std::time_t when, const Address& addr);

// "Blocked PREFIX until T (manual: REASON)"; the stdout sink prefixes a timestamp.
std::string block_added_message(const std::string& prefix, const std::string& reason,
                                std::time_t expires);

// "Unblocked PREFIX (REASON)"; the stdout sink prefixes a timestamp.
std::string block_removed_message(const std::string& prefix, const std::string& reason);

// The rate limiter's summary of what it held back.
std::string suppressed_message(uint64_t n, std::chrono::seconds interval, unsigned burst);

// Scans whose automatic block the kernel skipped (CW_ACT_RATE_LIMITED): every
// scan is still reported, but the "Not blocking" line comes once per interval
// with the count, not once per scan -- a flood of spoofed scans is what the
// bound is for. The first after a quiet interval is said at the next tick.
// The same summary serves the scans of sources that fail the reverse-path
// check (CW_ACT_SPOOFED): a decoy flood is one scan per decoy.
class SkippedBlocks {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::seconds kInterval{10};

    SkippedBlocks() = default;
    explicit SkippedBlocks(bool spoofed) : spoofed_(spoofed) {}

    void add(const Address& src)
    {
        n_++;
        latest_ = src;
    }
    // "TIMESTAMP: Not blocking N scanner(s) (the latest A): ..." when one is
    // due at `now`, else empty; n gets the count said.
    std::string take(Clock::time_point now, uint64_t* n = nullptr);

private:
    bool spoofed_ = false;
    uint64_t n_ = 0;
    Address latest_;
    Clock::time_point next_{};
};

} // namespace connwatch
