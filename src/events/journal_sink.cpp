// SPDX-License-Identifier: GPL-2.0-only
// One sd_journal_send entry per event: MESSAGE_ID per type, typed fields.
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include <string>
#include <vector>

#include "common/format.h"
#include "events/event_sink.h"
#include "events/messages.h"
#include "events/rate_limiter.h"

namespace connwatch {

namespace {

// 2000 connection and probe events per 10 s at most (6000 per 30 s): well under
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
    // Probes share the connection events' limit: both come one per packet, and
    // a flood of either must not push scans and blocks out of the journal.
    void probe(const Probe& ev) override
    {
        if (!limiter_.allow(RateLimiter::Clock::now()))
            return;
        auto msg = format_probe(ev.when, ev.src, ev.sport, ev.dst, ev.dport, ev.tcp_flags,
                                ev.tiny_fragment);
        // A tiny fragment's flags may lie in a later fragment: not said.
        auto flags = ev.tiny_fragment ? std::string("tiny-fragment") : format_tcp_flags(ev.tcp_flags);
        sd_journal_send("MESSAGE=%s", msg.c_str(), "MESSAGE_ID=%s", kMsgProbe, "PRIORITY=%i",
                        LOG_NOTICE, "SRC_ADDR=%s", ev.src.str().c_str(), "SRC_PORT=%u",
                        unsigned(ev.sport), "DST_ADDR=%s", ev.dst.str().c_str(),
                        "DST_PORT=%u", unsigned(ev.dport), "TCP_FLAGS=%s", flags.c_str(),
                        "INTERFACE=%s", ev.ifname.c_str(), nullptr);
    }
    void port_scan(const PortScan& ev) override
    {
        auto msg = format_port_scan(ev.when, ev.scanner_str(), ev.dst, ev.ports);
        auto ports = format_ports(ev.ports);
        sd_journal_send("MESSAGE=%s", msg.c_str(), "MESSAGE_ID=%s", kMsgPortScan,
                        "PRIORITY=%i", LOG_WARNING, "SRC_ADDR=%s", ev.src.str().c_str(),
                        "DST_ADDR=%s", ev.dst.str().c_str(), "PORTS=%s", ports.c_str(),
                        "INTERFACE=%s", ev.ifname.c_str(), "ACTION=%s",
                        scan_action_name(ev.action), nullptr);
        if (ev.action == CW_ACT_RATE_LIMITED) {
            skipped_.add(ev.src); // said once per interval, by tick()
            return;
        }
        if (ev.action == CW_ACT_SPOOFED) {
            spoofed_.add(ev.src); // the same: a decoy flood is a scan per decoy
            return;
        }
        auto what = format_scan_action(ev);
        if (ev.action == CW_ACT_BLOCKED) {
            // The optional fields make the list: offence and duration with
            // escalation on, the block it took the place of on a full list.
            std::vector<std::string> f{
                "MESSAGE=" + what,
                std::string("MESSAGE_ID=") + kMsgBlockAdded,
                "PRIORITY=" + std::to_string(LOG_NOTICE),
                "SRC_ADDR=" + ev.src.str(),
                "BLOCK_ORIGIN=scan",
                "BLOCK_EXPIRES=" + std::to_string(static_cast<long long>(ev.expires))};
            if (ev.offence) {
                f.push_back("BLOCK_OFFENCE=" + std::to_string(ev.offence));
                f.push_back("BLOCK_DURATION=" + std::to_string(ev.duration_ns / 1'000'000'000));
            }
            if (ev.replaced)
                f.push_back("BLOCK_REPLACED=" + ev.replaced->str());
            send_fields(f);
        } else
            sd_journal_send("MESSAGE=%s", what.c_str(), "MESSAGE_ID=%s", kMsgPortScan,
                            "PRIORITY=%i",
                            ev.action == CW_ACT_BLOCKLIST_FULL ? LOG_ERR : LOG_NOTICE,
                            "SRC_ADDR=%s", ev.src.str().c_str(), "ACTION=%s",
                            scan_action_name(ev.action), nullptr);
    }
    void block_expired(std::time_t when, const Address& addr) override
    {
        auto msg = block_expired_message(when, addr);
        sd_journal_send("MESSAGE=%s", msg.c_str(), "MESSAGE_ID=%s", kMsgBlockRemoved,
                        "PRIORITY=%i", LOG_NOTICE, "SRC_ADDR=%s", addr.str().c_str(),
                        "REASON=expired", nullptr);
    }
    void block_added(const std::string& prefix, const std::string& reason,
                     std::time_t expires) override
    {
        auto msg = block_added_message(prefix, reason, expires);
        sd_journal_send("MESSAGE=%s", msg.c_str(), "MESSAGE_ID=%s", kMsgBlockAdded,
                        "PRIORITY=%i", LOG_NOTICE, "SRC_ADDR=%s", prefix.c_str(),
                        "BLOCK_ORIGIN=manual", "BLOCK_REASON=%s", reason.c_str(),
                        "BLOCK_EXPIRES=%lld", static_cast<long long>(expires), nullptr);
    }
    void block_removed(const std::string& prefix, const std::string& reason) override
    {
        auto msg = block_removed_message(prefix, reason);
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
        if (uint64_t n = limiter_.take_suppressed(now)) {
            auto msg = suppressed_message(n, limiter_.interval(), limiter_.burst());
            sd_journal_send("MESSAGE=%s", msg.c_str(), "MESSAGE_ID=%s", kMsgSuppressed,
                            "PRIORITY=%i", LOG_WARNING, "SUPPRESSED=%llu",
                            static_cast<unsigned long long>(n), nullptr);
        }
        uint64_t skipped = 0;
        if (auto msg = skipped_.take(now, &skipped); !msg.empty())
            sd_journal_send("MESSAGE=%s", msg.substr(msg.find(": ") + 2).c_str(), "MESSAGE_ID=%s",
                            kMsgPortScan, "PRIORITY=%i", LOG_WARNING, "ACTION=rate-limited",
                            "SKIPPED=%llu", static_cast<unsigned long long>(skipped), nullptr);
        if (auto msg = spoofed_.take(now, &skipped); !msg.empty())
            sd_journal_send("MESSAGE=%s", msg.substr(msg.find(": ") + 2).c_str(), "MESSAGE_ID=%s",
                            kMsgPortScan, "PRIORITY=%i", LOG_WARNING, "ACTION=spoofed",
                            "SKIPPED=%llu", static_cast<unsigned long long>(skipped), nullptr);
    }

private:
    static void send_fields(const std::vector<std::string>& fields)
    {
        std::vector<iovec> iov;
        iov.reserve(fields.size());
        for (const auto& f : fields)
            iov.push_back({const_cast<char*>(f.data()), f.size()});
        sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
    }
    static void send(const char* id, int priority, const std::string& msg)
    {
        if (id)
            sd_journal_send("MESSAGE=%s", msg.c_str(), "MESSAGE_ID=%s", id, "PRIORITY=%i",
                            priority, nullptr);
        else
            sd_journal_send("MESSAGE=%s", msg.c_str(), "PRIORITY=%i", priority, nullptr);
    }
    RateLimiter limiter_{kConnectionBurst, kConnectionInterval};
    SkippedBlocks skipped_;
    SkippedBlocks spoofed_{true};
};

} // namespace

std::unique_ptr<EventSink> make_journal_sink()
{
    return std::make_unique<JournalSink>();
}

} // namespace connwatch
