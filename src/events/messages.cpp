// SPDX-License-Identifier: GPL-2.0-only
#include "events/messages.h"

#include "common/duration.h"
#include "common/format.h"

namespace connwatch {

namespace {

// Why a scanner failing the reverse-path check is not blocked.
constexpr const char* kSpoofedReason =
    "its source fails the reverse-path check (rp-filter: the route back to it does not "
    "leave by the interface the scan came in on, or there is none), so it is likely "
    "spoofed, a decoy";

std::string until(std::time_t expires)
{
    return expires ? " until " + format_timestamp(expires) : " until removed";
}

} // namespace

std::string offence_note(const PortScan& ev)
{
    if (ev.action != CW_ACT_BLOCKED || ev.offence == 0)
        return "";
    // Whole seconds: the kernel's deadline is to the nanosecond.
    auto secs = std::chrono::seconds((ev.duration_ns + 500'000'000) / 1'000'000'000);
    return " (offence " + std::to_string(ev.offence) + ", blocked for " +
           format_duration(secs) + ")";
}

std::string replaced_note(const PortScan& ev)
{
    if (ev.action != CW_ACT_BLOCKED || !ev.replaced)
        return "";
    return " in place of " + ev.replaced->str() +
           ", the oldest automatic block (the blocklist is full)";
}

std::string replaced_reason(const std::string& by)
{
    return "replaced by " + by +
           ": the blocklist was full, and this was the oldest automatic block";
}

std::string format_scan_action(const PortScan& ev)
{
    std::string head = format_timestamp(ev.when) + ": ";
    std::string src = ev.scanner_str();
    switch (ev.action) {
    case CW_ACT_BLOCKED:
        return head + "Blocked " + ev.blocked_str() + until(ev.expires) + offence_note(ev) +
               replaced_note(ev);
    case CW_ACT_MONITOR_ONLY:
        return head + "Not blocking " + src + ": monitor-only mode";
    case CW_ACT_ALLOWLISTED:
        return head + "Not blocking " + src + ": it is in the allowlist";
    case CW_ACT_BLOCKLIST_FULL:
        return head + "Not blocking " + src +
               ": the blocklist is full (raise max-blocks, or unblock entries)";
    case CW_ACT_RATE_LIMITED:
        return head + "Not blocking " + src +
               ": more automatic blocks than max-new-blocks-per-second allows";
    case CW_ACT_SPOOFED:
        return head + "Not blocking " + src + ": " + kSpoofedReason;
    }
    return head + "Unknown action " + std::to_string(ev.action) + " for " + src;
}

const char* scan_action_name(uint8_t action)
{
    switch (action) {
    case CW_ACT_BLOCKED: return "blocked";
    case CW_ACT_MONITOR_ONLY: return "monitor-only";
    case CW_ACT_ALLOWLISTED: return "allowlisted";
    case CW_ACT_BLOCKLIST_FULL: return "blocklist-full";
    case CW_ACT_RATE_LIMITED: return "rate-limited";
    case CW_ACT_SPOOFED: return "spoofed";
    }
    return "unknown";
}

std::string block_expired_message(std::time_t when, const Address& addr)
{
    return format_timestamp(when) + ": Block expired: " + addr.str();
}

std::string block_added_message(const std::string& prefix, const std::string& reason,
                                std::time_t expires)
{
    return "Blocked " + prefix + until(expires) + " (manual" +
           (reason.empty() ? "" : ": " + reason) + ")";
}

std::string block_removed_message(const std::string& prefix, const std::string& reason)
{
    return "Unblocked " + prefix + " (" + reason + ")";
}

std::string suppressed_message(uint64_t n, std::chrono::seconds interval, unsigned burst)
{
    auto secs = std::to_string(interval.count());
    return std::to_string(n) + " new connection and probe events not logged in " + secs +
           "s (rate limit " + std::to_string(burst) + " per " + secs +
           "s; the counters are exact)";
}

std::string SkippedBlocks::take(Clock::time_point now, uint64_t* n)
{
    if (!n_ || now < next_)
        return {};
    std::string msg = format_timestamp(std::time(nullptr)) + ": Not blocking " +
                      std::to_string(n_) + (n_ == 1 ? " scanner" : " scanners") +
                      " (the latest " + latest_.str() + "): " +
                      (spoofed_ ? std::string(kSpoofedReason) + "; the scans are reported"
                                : std::string(
                                      "more automatic blocks than max-new-blocks-per-second "
                                      "allows; the scans are reported, the blocks skipped "
                                      "(raise max-new-blocks-per-second or "
                                      "max-new-blocks-burst if they are real)"));
    if (n)
        *n = n_;
    n_ = 0;
    next_ = now + kInterval;
    return msg;
}

} // namespace connwatch
