// SPDX-License-Identifier: GPL-2.0-only
#include "metrics/metrics.h"

#include <net/if.h>

#include <cctype>
#include <charconv>

namespace connwatch {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(const char* name, const char* help, MetricType type)
{
    return MetricFamily{name, help, type, {}};
}

void add(MetricFamily& f, double value, std::vector<ClientMetric::Label> labels = {})
{
    ClientMetric m;
    m.label = std::move(labels);
    if (f.type == MetricType::Counter)
        m.counter.value = value;
    else
        m.gauge.value = value;
    f.metric.push_back(std::move(m));
}

std::string ifname_of(uint32_t ifindex)
{
    char buf[IF_NAMESIZE] = {};
    return if_indextoname(ifindex, buf) ? buf : "ifindex" + std::to_string(ifindex);
}

} // namespace

void MetricsCollector::update(MetricsSnapshot s)
{
    std::lock_guard lock(mu_);
    snap_ = std::move(s);
}

std::vector<MetricFamily> MetricsCollector::Collect() const
{
    MetricsSnapshot s;
    {
        std::lock_guard lock(mu_);
        s = snap_;
    }
    Stats st = prog_.stats();
    auto d = [&](cw_stat i) { return static_cast<double>(st[i]); };
    std::vector<MetricFamily> out;

    auto conns = family("connwatch_new_connections_total",
                        "Inbound TCP connection attempts (SYN without ACK) reported, by "
                        "interface; retransmissions not included",
                        MetricType::Counter);
    for (const auto& [ifindex, n] : prog_.connections_per_interface())
        add(conns, static_cast<double>(n), {{"interface", ifname_of(ifindex)}});
    out.push_back(std::move(conns));

    auto scans = family("connwatch_port_scans_total", "Port scans detected", MetricType::Counter);
    add(scans, d(CW_STAT_SCAN));
    out.push_back(std::move(scans));

    auto dropped = family("connwatch_packets_dropped_total",
                          "Packets dropped in XDP, by reason", MetricType::Counter);
    add(dropped, d(CW_STAT_DROP_BLOCKED), {{"reason", "blocklist"}});
    add(dropped, d(CW_STAT_DROP_BLOCKED_CIDR), {{"reason", "blocklist_cidr"}});
    out.push_back(std::move(dropped));

    auto passed = family("connwatch_packets_passed_total",
                         "Packets passed to the kernel's stack, by reason; unparsed counts "
                         "truncated or malformed headers",
                         MetricType::Counter);
    add(passed, d(CW_STAT_PASS_NON_IP), {{"reason", "non_ip"}});
    add(passed, d(CW_STAT_PASS_NON_TCP), {{"reason", "non_tcp"}});
    add(passed, d(CW_STAT_PASS_UNPARSED), {{"reason", "unparsed"}});
    add(passed, d(CW_STAT_PASS_FRAGMENT), {{"reason", "fragment"}});
    add(passed, d(CW_STAT_PASS_TCP_OTHER), {{"reason", "tcp_other"}});
    add(passed, d(CW_STAT_PASS_SYN), {{"reason", "syn"}});
    out.push_back(std::move(passed));

    auto retrans = family("connwatch_syn_retransmits_total",
                          "SYNs of a connection attempt already reported within 5 s, not "
                          "reported again",
                          MetricType::Counter);
    add(retrans, d(CW_STAT_SYN_RETRANSMIT));
    out.push_back(std::move(retrans));

    auto lost = family("connwatch_events_lost_total",
                       "Events the kernel could not hand to connwatchd because the ring "
                       "buffer was full",
                       MetricType::Counter);
    add(lost, d(CW_STAT_EVENTS_LOST));
    out.push_back(std::move(lost));

    auto added = family("connwatch_blocks_added_total", "Blocks added, by origin",
                        MetricType::Counter);
    add(added, d(CW_STAT_BLOCK_ADDED), {{"origin", "scan"}});
    add(added, static_cast<double>(s.manual_blocks_added), {{"origin", "manual"}});
    out.push_back(std::move(added));

    auto skipped = family("connwatch_scan_blocks_skipped_total",
                          "Detected scanners not blocked, by reason", MetricType::Counter);
    add(skipped, d(CW_STAT_BLOCK_ALLOWED), {{"reason", "allowlisted"}});
    add(skipped, d(CW_STAT_BLOCK_MONITOR), {{"reason", "monitor_only"}});
    add(skipped, d(CW_STAT_BLOCK_FULL), {{"reason", "blocklist_full"}});
    out.push_back(std::move(skipped));

    auto removed = family("connwatch_blocks_removed_total",
                          "Blocks removed, by reason (expired, unblocked, allowlisted, flushed)",
                          MetricType::Counter);
    for (const char* r : {"expired", "unblocked", "allowlisted", "flushed"}) {
        auto it = s.blocks_removed.find(r);
        add(removed, it == s.blocks_removed.end() ? 0.0 : static_cast<double>(it->second),
            {{"reason", r}});
    }
    out.push_back(std::move(removed));

    auto entries = family("connwatch_blocklist_entries", "Blocks in force, by origin",
                          MetricType::Gauge);
    add(entries, static_cast<double>(s.blocks_scan), {{"origin", "scan"}});
    add(entries, static_cast<double>(s.blocks_manual), {{"origin", "manual"}});
    out.push_back(std::move(entries));

    auto allow = family("connwatch_allowlist_entries",
                        "Prefixes never blocked automatically (configured, added with "
                        "connwatchctl, and this host's own)",
                        MetricType::Gauge);
    add(allow, static_cast<double>(s.allow_entries));
    out.push_back(std::move(allow));

    auto ifs = family("connwatch_interface_info", "Watched interfaces and their XDP mode",
                      MetricType::Gauge);
    for (const auto& [name, mode] : s.interfaces)
        add(ifs, 1, {{"interface", name}, {"xdp_mode", mode}});
    out.push_back(std::move(ifs));

    auto build = family("connwatch_build_info", "connwatch's version", MetricType::Gauge);
    add(build, 1, {{"version", CONNWATCH_VERSION}});
    out.push_back(std::move(build));
    return out;
}

std::string check_listen_address(const std::string& v)
{
    if (v.empty())
        return "";
    auto colon = v.rfind(':');
    std::string host = colon == std::string::npos ? "" : v.substr(0, colon);
    std::string port = colon == std::string::npos ? "" : v.substr(colon + 1);
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    bool port_ok = !port.empty() && ec == std::errc() && end == port.data() + port.size() &&
                   p >= 1 && p <= 65535;
    bool host_ok = !host.empty();
    if (host_ok && host.front() == '[') {
        host_ok = host.back() == ']' && Address::parse(host.substr(1, host.size() - 2));
    } else {
        for (char c : host)
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'))
                host_ok = false;
    }
    if (host_ok && port_ok)
        return "";
    return "'" + v + "' is not HOST:PORT (e.g. 127.0.0.1:9467, [::1]:9467; empty disables)";
}

} // namespace connwatch
