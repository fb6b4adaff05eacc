// SPDX-License-Identifier: GPL-2.0-only
// connwatchd's Manager: it starts the parts, runs the one epoll loop (ring
// buffer, signalfd, timerfd, control socket) and orchestrates — reload, the
// watchdog, STATUS=, the metrics snapshot. The work itself is done by the parts:
// the kernel layer (kernel/), the BlockTable (blocks/), the event sinks
// (events/), the control server (control/) and the metrics (metrics/).
//
// Start-up throws Error; once the loop runs, nothing throws out of it: every
// handler catches, logs once (", ignoring") and the loop goes on.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "blocks/block_table.h"
#include "config/options.h"
#include "crowdsec/lapi_protocol.h"
#include "events/event_sink.h"

namespace prometheus {
class Exposer;
}

namespace connwatch {

class XdpProgram;
class XdpAttachment;
class EventReader;
class ControlServer;
class LinkMonitor;
class ControlHandler;
class MetricsCollector;
class KernelMaps;
struct PortScan;
namespace crowdsec {
class Worker;
struct Settings;
}

// The CrowdSec settings the options name, with the secrets read from their
// files (nullopt: neither bouncer nor watcher configured). Throws Error naming
// the file and the fix. `--check-config` calls it too.
std::optional<crowdsec::Settings> crowdsec_settings(const Options& o);

class Manager {
public:
    // args: argv, re-parsed on reload.
    Manager(Options opts, std::vector<std::string> args);
    ~Manager();
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

    // Starts (throws Error), then runs until SIGINT/SIGTERM; returns the exit code.
    int run();

    // ---- for the control handler
    const Options& options() const { return opts_; }
    const std::vector<XdpAttachment>& links() const { return links_; }
    // Wanted interfaces that do not exist now (deleted after start).
    std::vector<std::string> missing_interfaces() const;
    const XdpProgram& program() const { return *prog_; }
    BlockTable& table() { return *table_; }
    EventSink& sink() { return *sink_; }
    // Re-reads the configuration; "" on success, else why the running one was kept.
    std::string reload();
    // Writes the state file now if it changed; a failure is logged, and retried
    // at the next tick.
    void save_state();
    // Logs the blocks an allowlist change lifted.
    void report_lifted(const std::vector<Cidr>& lifted, const std::string& who);
    // After every allowlist change, and before prefix lengths change: the
    // source prefixes holding an allow entry (an own address, a configured
    // host) are counted and blocked per address (ipv4-prefix, ipv6-prefix;
    // map allow_inside). A failure is logged.
    void sync_prefix_guard() { sync_prefix_guard(opts_); }
    void sync_prefix_guard(const Options& o);
    // Warns about automatic prefix blocks that could not follow a change of
    // prefix length (BlockTable::move_prefix_blocks).
    void report_stuck_prefix_blocks(const std::vector<Cidr>& stuck);

private:
    void start();
    void start_metrics();
    void report_takeover();
    void attach(const std::string& name);
    // The interfaces to watch from now on; attaches and detaches to match.
    void apply_interfaces(const std::vector<std::string>& wanted);
    // Makes the attachments match the wanted interfaces as the kernel has them
    // now: a link whose interface is gone (or was replaced under the same
    // name) is dropped, an interface that is back is attached again.
    void sync_interfaces();
    // The host's own prefixes now, or none when `enabled` (allow-own-addresses)
    // is off; a failure to list them is warned about once, not at every call.
    std::vector<Cidr> own_addresses(bool enabled);
    // Puts the host's own addresses as they are now into the allowlist, when
    // they changed and allow-own-addresses is on.
    void refresh_own_addresses();
    bool on_signals(); // false: stop
    void on_timer();
    void on_event(const cw_event& ev);
    void on_port_scan(const PortScan& s);
    void report_lost_events();
    // CrowdSec (daemon/crowdsec.cpp): the worker started, or replaced when
    // the settings changed (reload); what it reports applied to the table.
    void apply_crowdsec(std::optional<crowdsec::Settings> settings);
    void on_crowdsec();
    void mirror_decisions(const crowdsec::StreamBatch& batch, bool startup);
    void alert_crowdsec(const PortScan& s);
    void update_status(const BlockCounts& n);
    void update_metrics(const BlockCounts& n);
    std::string summary() const;
    void add_fd(int fd);
    // Runs one handler of the loop: what it throws is logged once and ignored.
    template <typename Fn>
    void guarded(const char* what, Fn&& fn);

    Options opts_;
    std::vector<std::string> args_;
    std::unique_ptr<EventSink> sink_;
    std::unique_ptr<XdpProgram> prog_;
    std::unique_ptr<KernelMaps> maps_;
    std::unique_ptr<BlockTable> table_;
    // After prog_, so destroyed before it: no scrape can outlive the program.
    std::shared_ptr<MetricsCollector> metrics_;
    std::unique_ptr<prometheus::Exposer> exposer_;
    std::vector<std::string> wanted_; // interfaces to watch, as configured
    std::vector<XdpAttachment> links_;
    std::unique_ptr<LinkMonitor> link_monitor_;
    std::map<std::string, unsigned> attach_failed_; // name -> ifindex it failed on: said once
    std::unique_ptr<EventReader> reader_;
    std::unique_ptr<ControlHandler> handler_;
    std::unique_ptr<ControlServer> control_;
    UniqueFd epoll_, signal_, timer_;
    uint64_t lost_reported_ = 0;
    uint64_t watchdog_usec_ = 0;
    std::string status_;
    std::string own_prefixes_error_; // the last getifaddrs failure, to say it once
    std::vector<Cidr> own_;          // the own addresses in the allowlist now
    std::unique_ptr<crowdsec::Worker> crowdsec_;
    crowdsec::DecisionLedger ledger_;
    std::map<std::string, uint64_t> crowdsec_decisions_; // metric: result -> count
};

} // namespace connwatch
