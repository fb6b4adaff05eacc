// SPDX-License-Identifier: GPL-2.0-only
// Where connwatchd's events go. The stdout sink prints the classic lines.
#pragma once

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "address.h"

namespace connwatch {

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
    // Operational messages (start, warnings): to stderr for the stdout sink.
    virtual void notice(const std::string& msg) = 0;
    virtual void warning(const std::string& msg) = 0;
};

// Classic lines on stdout, one per event, flushed at once; notices and
// warnings on stderr.
std::unique_ptr<EventSink> make_stdout_sink();

// The line that explains what was done about a scan, e.g.
// "2021-04-28 15:28:05: Blocked 192.0.2.56 until 2021-04-28 16:28:05".
std::string format_scan_action(const PortScan& ev);

} // namespace connwatch
