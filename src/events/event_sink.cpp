// SPDX-License-Identifier: GPL-2.0-only
#include "events/event_sink.h"

#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common/format.h"

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

const char* scan_action_name(uint8_t action)
{
    switch (action) {
    case CW_ACT_BLOCKED: return "blocked";
    case CW_ACT_MONITOR_ONLY: return "monitor-only";
    case CW_ACT_ALLOWLISTED: return "allowlisted";
    case CW_ACT_BLOCKLIST_FULL: return "blocklist-full";
    }
    return "unknown";
}

void RateLimiter::roll(Clock::time_point now)
{
    if (now - start_ >= interval_) {
        ended_suppressed_ += suppressed_;
        suppressed_ = 0;
        used_ = 0;
        start_ = now;
    }
}

bool RateLimiter::allow(Clock::time_point now)
{
    roll(now);
    if (used_ < burst_) {
        used_++;
        return true;
    }
    suppressed_++;
    return false;
}

uint64_t RateLimiter::take_suppressed(Clock::time_point now)
{
    roll(now);
    uint64_t n = ended_suppressed_;
    ended_suppressed_ = 0;
    return n;
}

namespace {

std::string ports_text(std::vector<uint16_t> ports)
{
    // The same order as the classic line: ascending, each once.
    std::sort(ports.begin(), ports.end());
    ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
    std::string s;
    for (auto p : ports)
        s += (s.empty() ? "" : ",") + std::to_string(p);
    return s;
}

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
    void block_added(const std::string& prefix, const std::string& reason,
                     std::time_t expires) override
    {
        line(format_timestamp(std::time(nullptr)) + ": Blocked " + prefix +
             (expires ? " until " + format_timestamp(expires) : " until removed") +
             " (manual" + (reason.empty() ? "" : ": " + reason) + ")");
    }
    void block_removed(const std::string& prefix, const std::string& reason) override
    {
        line(format_timestamp(std::time(nullptr)) + ": Unblocked " + prefix + " (" + reason +
             ")");
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
};

// 2000 connection events per 10 s at most (6000 per 30 s): well under
// journald's default per-unit limit, leaving room for everything else.
constexpr unsigned kConnectionBurst = 2000;
constexpr std::chrono::seconds kConnectionInterval{10};

class JournalSink final : public EventSink {
public:
    void new_connection(const NewConnection& ev) override
    {
        if (!limiter_.allow(RateLimiter::Clock::now()))
            return;
        auto msg = format_new_connection(ev.when, ev.src, ev.sport, ev.dst, ev.dport);
        sd_journal_send("MESSAGE=%s", msg.c_str(), "MESSAGE_ID=%s", kMsgNewConnection,
                        "PRIORITY=%i", LOG_INFO, "SRC_ADDR=%s", ev.src.str().c_str(),
                        "SRC_PORT=%u", unsigned(ev.sport), "DST_ADDR=%s",
                        ev.dst.str().c_str(), "DST_PORT=%u", unsigned(ev.dport),
                        "INTERFACE=%s", ev.ifname.c_str(), nullptr);
    }
    void port_scan(const PortScan& ev) override
    {
        auto msg = format_port_scan(ev.when, ev.src, ev.dst, ev.ports);
        auto ports = ports_text(ev.ports);
        sd_journal_send("MESSAGE=%s", msg.c_str(), "MESSAGE_ID=%s", kMsgPortScan,
                        "PRIORITY=%i", LOG_WARNING, "SRC_ADDR=%s", ev.src.str().c_str(),
                        "DST_ADDR=%s", ev.dst.str().c_str(), "PORTS=%s", ports.c_str(),
                        "INTERFACE=%s", ev.ifname.c_str(), "ACTION=%s",
                        scan_action_name(ev.action), nullptr);
        auto what = format_scan_action(ev);
        if (ev.action == CW_ACT_BLOCKED)
            sd_journal_send("MESSAGE=%s", what.c_str(), "MESSAGE_ID=%s", kMsgBlockAdded,
                            "PRIORITY=%i", LOG_NOTICE, "SRC_ADDR=%s", ev.src.str().c_str(),
                            "BLOCK_ORIGIN=scan", "BLOCK_EXPIRES=%lld",
                            static_cast<long long>(ev.expires), nullptr);
        else
            sd_journal_send("MESSAGE=%s", what.c_str(), "MESSAGE_ID=%s", kMsgPortScan,
                            "PRIORITY=%i",
                            ev.action == CW_ACT_BLOCKLIST_FULL ? LOG_ERR : LOG_NOTICE,
                            "SRC_ADDR=%s", ev.src.str().c_str(), "ACTION=%s",
                            scan_action_name(ev.action), nullptr);
    }
    void block_expired(std::time_t when, const Address& addr) override
    {
        auto msg = format_timestamp(when) + ": Block expired: " + addr.str();
        sd_journal_send("MESSAGE=%s", msg.c_str(), "MESSAGE_ID=%s", kMsgBlockRemoved,
                        "PRIORITY=%i", LOG_NOTICE, "SRC_ADDR=%s", addr.str().c_str(),
                        "REASON=expired", nullptr);
    }
    void block_added(const std::string& prefix, const std::string& reason,
                     std::time_t expires) override
    {
        std::string msg = "Blocked " + prefix +
                          (expires ? " until " + format_timestamp(expires) : " until removed") +
                          " (manual" + (reason.empty() ? "" : ": " + reason) + ")";
        sd_journal_send("MESSAGE=%s", msg.c_str(), "MESSAGE_ID=%s", kMsgBlockAdded,
                        "PRIORITY=%i", LOG_NOTICE, "SRC_ADDR=%s", prefix.c_str(),
                        "BLOCK_ORIGIN=manual", "BLOCK_REASON=%s", reason.c_str(),
                        "BLOCK_EXPIRES=%lld", static_cast<long long>(expires), nullptr);
    }
    void block_removed(const std::string& prefix, const std::string& reason) override
    {
        std::string msg = "Unblocked " + prefix + " (" + reason + ")";
        sd_journal_send("MESSAGE=%s", msg.c_str(), "MESSAGE_ID=%s", kMsgBlockRemoved,
                        "PRIORITY=%i", LOG_NOTICE, "SRC_ADDR=%s", prefix.c_str(), "REASON=%s",
                        reason.c_str(), nullptr);
    }
    void started(const std::string& msg) override { send(kMsgStarted, LOG_INFO, msg); }
    void reloaded(const std::string& msg) override { send(kMsgReloaded, LOG_INFO, msg); }
    void notice(const std::string& msg) override { send(nullptr, LOG_INFO, msg); }
    void warning(const std::string& msg) override { send(nullptr, LOG_WARNING, msg); }
    void error(const std::string& msg) override { send(kMsgError, LOG_ERR, msg); }
    void tick(RateLimiter::Clock::time_point now) override
    {
        if (uint64_t n = limiter_.take_suppressed(now))
            sd_journal_send("MESSAGE=%llu new connection events not logged in %llds (rate "
                            "limit %u per %llds; the counters are exact)",
                            static_cast<unsigned long long>(n),
                            static_cast<long long>(limiter_.interval().count()),
                            kConnectionBurst,
                            static_cast<long long>(limiter_.interval().count()),
                            "MESSAGE_ID=%s", kMsgSuppressed, "PRIORITY=%i", LOG_WARNING,
                            "SUPPRESSED=%llu", static_cast<unsigned long long>(n), nullptr);
    }

private:
    static void send(const char* id, int priority, const std::string& msg)
    {
        if (id)
            sd_journal_send("MESSAGE=%s", msg.c_str(), "MESSAGE_ID=%s", id, "PRIORITY=%i",
                            priority, nullptr);
        else
            sd_journal_send("MESSAGE=%s", msg.c_str(), "PRIORITY=%i", priority, nullptr);
    }
    RateLimiter limiter_{kConnectionBurst, kConnectionInterval};
};

} // namespace

std::unique_ptr<EventSink> make_stdout_sink()
{
    return std::make_unique<StdoutSink>();
}

std::unique_ptr<EventSink> make_journal_sink()
{
    return std::make_unique<JournalSink>();
}

bool stderr_is_journal()
{
    const char* js = std::getenv("JOURNAL_STREAM");
    if (!js)
        return false;
    unsigned long long dev = 0, ino = 0;
    struct stat st{};
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return st.st_dev == dev && st.st_ino == ino;
}

std::unique_ptr<EventSink> make_sink(LogTarget target)
{
    if (target == LogTarget::Journal || (target == LogTarget::Auto && stderr_is_journal()))
        return make_journal_sink();
    return make_stdout_sink();
}

} // namespace connwatch
