// SPDX-License-Identifier: GPL-2.0-only
// Prometheus metrics (docs/METRICS.md). The counters are read from the kernel's
// per-CPU counters at scrape time, so they count what userspace never saw too
// (lost events, drops); what only the daemon knows (interfaces, block counts by
// origin, removals) comes from a snapshot the event loop refreshes.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "common/block_kinds.h"
#include "kernel/program.h"

namespace connwatch {

// What the daemon knows that the kernel's counters do not say.
struct MetricsSnapshot {
    std::vector<std::pair<std::string, std::string>> interfaces; // name, xdp mode
    uint64_t blocks_scan = 0, blocks_manual = 0, blocks_crowdsec = 0; // entries now
    uint64_t allow_entries = 0;
    uint64_t manual_blocks_added = 0;
    std::map<RemovalReason, uint64_t> blocks_removed;
    // CrowdSec (docs/CROWDSEC.md); zeros when neither bouncer nor watcher is set.
    struct Crowdsec {
        uint64_t pulls = 0, pull_failures = 0;
        // Decisions of the stream, by what became of them: added, updated,
        // withdrawn, refused (allowlisted, too wide, list full), ignored (not a
        // ban of an Ip or Range), invalid.
        std::map<std::string, uint64_t> decisions;
        uint64_t alerts_sent = 0, alerts_queued = 0, alerts_dropped = 0, alert_failures = 0;
        // The watcher's logins, and those that replaced a token about to
        // expire or refused by the LAPI (401).
        uint64_t logins = 0, relogins_expiry = 0, relogins_refused = 0;
    } crowdsec;
};

// The HELP text of connwatch_blocks_removed_total: every reason label the
// daemon emits (kRemovalReasons), spelled from the same table so the two
// cannot drift apart.
std::string blocks_removed_help();

class MetricsCollector : public prometheus::Collectable {
public:
    // prog must outlive every scrape: destroy the exposer first.
    explicit MetricsCollector(const XdpProgram& prog) : prog_(prog) {}
    void update(MetricsSnapshot s);
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    const XdpProgram& prog_;
    mutable std::mutex mu_;
    MetricsSnapshot snap_;
};

} // namespace connwatch
