// SPDX-License-Identifier: GPL-2.0-only
// Where connwatchd's events go: the classic lines on stdout, or one structured
// journald entry per event (MESSAGE_ID per event type, typed fields).
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "common/address.h"
#include "config/options.h"

namespace connwatch {

// MESSAGE_IDs, one per event type: `journalctl MESSAGE_ID=...` finds them and
// systemd/connwatch.catalog explains them. Never change one: operators' queries
// and alerts rely on them.
inline constexpr const char* kMsgNewConnection = "e18fa1fc536a4f27a8eebff10fb095bf";
inline constexpr const char* kMsgPortScan = "6f4d3a22a208414a9454080c9c0630c9";
inline constexpr const char* kMsgBlockAdded = "674ffcdc16a34d2abba8aacd8deb5369";
inline constexpr const char* kMsgBlockRemoved = "33409b065c174fc09edfcabd3d76c9dc";
inline constexpr const char* kMsgStarted = "3a4cfcd983604884a15c127a995372a4";
inline constexpr const char* kMsgReloaded = "9ad18623f6374caf9edb6b41021f1e1c";
inline constexpr const char* kMsgError = "dfcffc22fa2549078cc940e2eacc4394";
inline constexpr const char* kMsgSuppressed = "2606b488ce5e4b6f8ae66d7b3126ef57";

struct NewConnection {
    std::time_t when;
    Address src, dst;
    uint16_t sport, dport;
    std::string ifname;
};

struct PortScan {
    std::time_t when;
    Address src, dst;
    std::vector<uint16_t> ports;
    std::string ifname;
    uint8_t action;         // enum cw_scan_action
    std::time_t expires;    // CW_ACT_BLOCKED: wall-clock deadline, 0 = never
};

class EventSink {
public:
    virtual ~EventSink() = default;
    virtual void new_connection(const NewConnection& ev) = 0;
    virtual void port_scan(const PortScan& ev) = 0;
    virtual void block_expired(std::time_t when, const Address& addr) = 0;
    // An operator's block (connwatchctl block); scan blocks come with port_scan.
    virtual void block_added(const std::string& prefix, const std::string& reason,
                             std::time_t expires) = 0;
    // reason: "expired", "unblocked", "allowlisted", "flushed"
    virtual void block_removed(const std::string& prefix, const std::string& reason) = 0;
    virtual void started(const std::string& msg) = 0;
    virtual void reloaded(const std::string& msg) = 0;
    virtual void notice(const std::string& msg) = 0;
    virtual void warning(const std::string& msg) = 0;
    virtual void error(const std::string& msg) = 0;
    // Called once a second: reports what a rate limit held back.
    virtual void tick(std::chrono::steady_clock::time_point now) { (void)now; }
};

// Holds back events beyond `burst` per `interval`, and counts them. Only new
// connection events go through it: a SYN flood must not push scans and blocks
// out of journald's own per-unit limit (10,000 per 30 s by default), which
// would drop them without saying which.
class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;
    RateLimiter(unsigned burst, std::chrono::seconds interval)
        : burst_(burst), interval_(interval) {}
    bool allow(Clock::time_point now);
    // The count held back in an interval that has ended (then reset), else 0.
    uint64_t take_suppressed(Clock::time_point now);
    std::chrono::seconds interval() const { return interval_; }

private:
    void roll(Clock::time_point now);
    unsigned burst_;
    std::chrono::seconds interval_;
    Clock::time_point start_{};
    unsigned used_ = 0;
    uint64_t suppressed_ = 0, ended_suppressed_ = 0;
};

// The classic lines on stdout, one per event, flushed at once; notices,
// warnings and errors on stderr.
std::unique_ptr<EventSink> make_stdout_sink();

// One sd_journal_send entry per event.
std::unique_ptr<EventSink> make_journal_sink();

// auto: the journal when stderr is connected to it (systemd sets JOURNAL_STREAM
// to the device:inode of that stream), stdout otherwise.
std::unique_ptr<EventSink> make_sink(LogTarget target);
bool stderr_is_journal();

// The line that explains what was done about a scan, e.g.
// "2021-04-28 15:28:05: Blocked 192.0.2.56 until 2021-04-28 16:28:05".
std::string format_scan_action(const PortScan& ev);

// "blocked", "monitor-only", "allowlisted", "blocklist-full": the ACTION field.
const char* scan_action_name(uint8_t action);

} // namespace connwatch
