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

#include "config/options.h"
#include "events/events.h"

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
inline constexpr const char* kMsgProbe = "5654af0bfe0149db8fe0ac53ce67fceb";

class EventSink {
public:
    virtual ~EventSink() = default;
    virtual void new_connection(const NewConnection& ev) = 0;
    virtual void port_scan(const PortScan& ev) = 0;
    virtual void probe(const Probe& ev) = 0;
    virtual void block_expired(std::time_t when, const Address& addr) = 0;
    // An operator's block (connwatchctl block); scan blocks come with port_scan.
    virtual void block_added(const std::string& prefix, const std::string& reason,
                             std::time_t expires) = 0;
    // reason: "expired", "unblocked", "allowlisted", "flushed", and who asked
    virtual void block_removed(const std::string& prefix, const std::string& reason) = 0;
    virtual void started(const std::string& msg) = 0;
    virtual void reloaded(const std::string& msg) = 0;
    virtual void notice(const std::string& msg) = 0;
    virtual void warning(const std::string& msg) = 0;
    virtual void error(const std::string& msg) = 0;
    // Called once a second: reports what a rate limit held back.
    virtual void tick(std::chrono::steady_clock::time_point now) { (void)now; }
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

} // namespace connwatch
