// SPDX-License-Identifier: GPL-2.0-only
// The classic lines on stdout, one per event; notices, warnings and errors on stderr.
#include <cstdio>

#include "common/format.h"
#include "events/event_sink.h"
#include "events/messages.h"

namespace connwatch {

namespace {

class StdoutSink final : public EventSink {
public:
    void new_connection(const NewConnection& ev) override
    {
        line(format_new_connection(ev.when, ev.src, ev.sport, ev.dst, ev.dport));
    }
    void probe(const Probe& ev) override
    {
        line(format_probe(ev.when, ev.src, ev.sport, ev.dst, ev.dport, ev.tcp_flags,
                          ev.tiny_fragment));
    }
    void port_scan(const PortScan& ev) override
    {
        line(format_port_scan(ev.when, ev.scanner_str(), ev.dst, ev.ports));
        if (ev.action == CW_ACT_RATE_LIMITED)
            skipped_.add(ev.src); // said once per interval, by tick()
        else if (ev.action == CW_ACT_SPOOFED)
            spoofed_.add(ev.src); // the same
        else
            line(format_scan_action(ev));
    }
    void tick(SkippedBlocks::Clock::time_point now) override
    {
        if (auto msg = skipped_.take(now); !msg.empty())
            line(msg);
        if (auto msg = spoofed_.take(now); !msg.empty())
            line(msg);
    }
    void block_expired(std::time_t when, const Address& addr) override
    {
        line(block_expired_message(when, addr));
    }
    void block_added(const std::string& prefix, const std::string& reason,
                     std::time_t expires) override
    {
        line(format_timestamp(std::time(nullptr)) + ": " +
             block_added_message(prefix, reason, expires));
    }
    void block_removed(const std::string& prefix, const std::string& reason) override
    {
        line(format_timestamp(std::time(nullptr)) + ": " + block_removed_message(prefix, reason));
    }
    void started(const std::string& msg) override { notice(msg); }
    void reloaded(const std::string& msg) override { notice(msg); }
    void notice(const std::string& msg) override
    {
        std::fprintf(stderr, "connwatchd: %s\n", msg.c_str());
    }
    void warning(const std::string& msg) override
    {
        std::fprintf(stderr, "connwatchd: warning: %s\n", msg.c_str());
    }
    void error(const std::string& msg) override
    {
        std::fprintf(stderr, "connwatchd: error: %s\n", msg.c_str());
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
    SkippedBlocks skipped_;
    SkippedBlocks spoofed_{true};
};

} // namespace

std::unique_ptr<EventSink> make_stdout_sink()
{
    return std::make_unique<StdoutSink>();
}

} // namespace connwatch
