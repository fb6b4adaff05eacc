// SPDX-License-Identifier: GPL-2.0-only
#include "metrics/metrics.h"

#include "events/events.h"
#include "kernel/stats.h"

namespace connwatch {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type)
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

} // namespace

std::string blocks_removed_help()
{
    std::string help = "Blocks removed, by reason (";
    const char* sep = "";
    for (auto r : kRemovalReasons) {
        help += sep;
        help += to_string(r);
        sep = ", ";
    }
    return help + ")";
}

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
    std::vector<MetricFamily> out;

    auto conns = family("connwatch_new_connections_total",
                        "Inbound TCP connection attempts (SYN without ACK) reported, by "
                        "interface; retransmissions not included",
                        MetricType::Counter);
    for (const auto& [ifindex, n] : prog_.connections_per_interface())
        add(conns, static_cast<double>(n), {{"interface", interface_name(ifindex)}});
    out.push_back(std::move(conns));

    // The kernel's counters, as kernel/stats.cpp's table maps them.
    for (const auto& f : stat_families()) {
        auto fam = family(std::string(f.metric), f.help, MetricType::Counter);
        for (const auto& stat : stat_table()) {
            if (stat.metric != f.metric)
                continue;
            std::vector<ClientMetric::Label> labels;
            if (!stat.label.empty())
                labels.push_back({std::string(stat.label), std::string(stat.label_value)});
            add(fam, static_cast<double>(st[stat.id]), std::move(labels));
        }
        // The operators' blocks are the daemon's to count, beside the kernel's.
        if (f.metric == "connwatch_blocks_added_total")
            add(fam, static_cast<double>(s.manual_blocks_added), {{"origin", "manual"}});
        out.push_back(std::move(fam));
    }

    auto removed = family("connwatch_blocks_removed_total", blocks_removed_help(),
                          MetricType::Counter);
    for (auto r : kRemovalReasons) {
        auto it = s.blocks_removed.find(r);
        add(removed, it == s.blocks_removed.end() ? 0.0 : static_cast<double>(it->second),
            {{"reason", std::string(to_string(r))}});
    }
    out.push_back(std::move(removed));

    auto entries = family("connwatch_blocklist_entries", "Blocks in force, by origin",
                          MetricType::Gauge);
    add(entries, static_cast<double>(s.blocks_scan), {{"origin", "scan"}});
    add(entries, static_cast<double>(s.blocks_manual), {{"origin", "manual"}});
    add(entries, static_cast<double>(s.blocks_crowdsec), {{"origin", "crowdsec"}});
    out.push_back(std::move(entries));

    // Exported whether or not CrowdSec is configured (0 then), so that a query
    // or an alert rule finds a series either way.
    const auto& cs = s.crowdsec;
    {
        auto pulls = family("connwatch_crowdsec_pulls_total",
                            "Decision pulls from the CrowdSec LAPI, failed ones included",
                            MetricType::Counter);
        add(pulls, static_cast<double>(cs.pulls));
        out.push_back(std::move(pulls));
        auto failed = family("connwatch_crowdsec_pull_failures_total",
                             "Decision pulls that failed (no answer, refused, not a decision "
                             "stream)",
                             MetricType::Counter);
        add(failed, static_cast<double>(cs.pull_failures));
        out.push_back(std::move(failed));
        auto decisions = family("connwatch_crowdsec_decisions_total",
                                "CrowdSec decisions pulled, by what became of them",
                                MetricType::Counter);
        for (const char* r : {"added", "updated", "withdrawn", "refused", "ignored", "invalid"}) {
            auto it = cs.decisions.find(r);
            add(decisions, it == cs.decisions.end() ? 0.0 : static_cast<double>(it->second),
                {{"result", r}});
        }
        out.push_back(std::move(decisions));
    }
    {
        auto counter = [&](const char* name, const char* help, uint64_t v) {
            auto f = family(name, help, MetricType::Counter);
            add(f, static_cast<double>(v));
            out.push_back(std::move(f));
        };
        counter("connwatch_crowdsec_alerts_sent_total",
                "Port-scan alerts the CrowdSec LAPI accepted", cs.alerts_sent);
        counter("connwatch_crowdsec_alerts_dropped_total",
                "Port-scan alerts dropped unsent: the queue was full while the LAPI was "
                "unreachable",
                cs.alerts_dropped);
        counter("connwatch_crowdsec_alert_failures_total",
                "Attempts to send alerts that failed (they stay queued)", cs.alert_failures);
        counter("connwatch_crowdsec_logins_total",
                "Logins of the watcher to the CrowdSec LAPI (POST /v1/watchers/login) that "
                "brought a token",
                cs.logins);
        auto relogins = family("connwatch_crowdsec_relogins_total",
                               "Logins that replaced the watcher's token: it was about to expire, "
                               "or the LAPI refused it (HTTP 401)",
                               MetricType::Counter);
        add(relogins, static_cast<double>(cs.relogins_expiry), {{"reason", "expiry"}});
        add(relogins, static_cast<double>(cs.relogins_refused), {{"reason", "refused"}});
        out.push_back(std::move(relogins));
        auto queued = family("connwatch_crowdsec_alerts_queued",
                             "Port-scan alerts waiting to be sent", MetricType::Gauge);
        add(queued, static_cast<double>(cs.alerts_queued));
        out.push_back(std::move(queued));
    }

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

} // namespace connwatch
