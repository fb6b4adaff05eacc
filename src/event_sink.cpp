// SPDX-License-Identifier: GPL-2.0-only
#include "event_sink.h"

#include <cstdio>

#include "format.h"

namespace connwatch {

std::string format_scan_action(const PortScan& ev)
{
    std::string head = format_timestamp(ev.when) + ": ";
    std::string src = ev.src.str();
    switch (ev.action) {
    case CW_ACT_BLOCKED:
        return head + "Blocked " + src +
               (ev.expires ? " until " + format_timestamp(ev.expires) : " until removed");
    case CW_ACT_MONITOR_ONLY:
        return head + "Not blocking " + src + ": monitor-only mode";
    case CW_ACT_ALLOWLISTED:
        return head + "Not blocking " + src + ": it is in the allowlist";
    case CW_ACT_BLOCKLIST_FULL:
        return head + "Not blocking " + src +
               ": the blocklist is full (raise max-blocks, or unblock entries)";
    }
    return head + "Unknown action " + std::to_string(ev.action) + " for " + src;
}

namespace {

class StdoutSink final : public EventSink {
public:
    void new_connection(const NewConnection& ev) override
    {
        line(format_new_connection(ev.when, ev.src, ev.sport, ev.dst, ev.dport));
    }
    void port_scan(const PortScan& ev) override
    {
        line(format_port_scan(ev.when, ev.src, ev.dst, ev.ports));
        line(format_scan_action(ev));
    }
    void block_expired(std::time_t when, const Address& addr) override
    {
        line(format_timestamp(when) + ": Block expired: " + addr.str());
    }
    void notice(const std::string& msg) override { std::fprintf(stderr, "connwatchd: %s\n", msg.c_str()); }
    void warning(const std::string& msg) override
    {
        std::fprintf(stderr, "connwatchd: warning: %s\n", msg.c_str());
    }

private:
    static void line(const std::string& s)
    {
        // One write per line and a flush: a reader tailing a file or pipe sees
        // each event as it happens, never half a line.
        std::fwrite(s.data(), 1, s.size(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
    }
};

} // namespace

std::unique_ptr<EventSink> make_stdout_sink()
{
    return std::make_unique<StdoutSink>();
}

} // namespace connwatch
