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
#include "protocol/protocol.h"

namespace prometheus {
class Exposer;
}

namespace connwatch {

class XdpProgram;
class XdpAttachment;
class EventReader;
class ControlServer;
class LinkMonitor;
class RouteMirror;
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

// The rp-filter mode (enum cw_rp_mode) Linux applies to an interface whose
// net.ipv4.conf.all.rp_filter and net.ipv4.conf.IF.rp_filter are these (-1:
// unreadable, taken as 0): the larger one, 1 strict, 2 loose, else off.
uint32_t rp_mode_from_sysctl(int all, int iface);

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
    // The CrowdSec link as connwatchctl status shows it; nullopt when not configured.
    std::optional<protocol::CrowdsecStatus> crowdsec_status() const;
    // The same for STATUS=: "; CrowdSec: ..." or "".
    std::string crowdsec_summary() const;
    // The reverse-path check as connwatchctl status shows it: the configured
    // mode, whether it checks now, and for auto each interface's sysctl mode
    // (daemon/rp_filter.cpp).
    protocol::RpFilterStatus rp_status() const;
    EventSink& sink() { return *sink_; }
    // Re-reads the configuration; "" on success, else why the running one was kept.
    std::string reload();
    // Writes the state file now if it changed; a failure is logged, and retried
    // at the next tick. `stopping`: the last write (BlockTable::save_if_dirty).
    void save_state(bool stopping = false);
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
    // connwatchctl flush, a slice at a time (BlockTable::flush_step): begins
    // one, or joins the one under way; returns its number. flush_step() does
    // a slice of the flush under way (the requests' answers and the tick call
    // it: a flush whose client went away is finished all the same); when it
    // completes, one line says what it removed, by origin.
    uint64_t begin_flush(const std::string& who);
    void flush_step();
    // A bulk request or a flush freed much memory in small pieces: malloc's
    // arenas are trimmed at the next tick (once, however many requests).
    void trim_later() { trim_due_ = true; }
    // The number of the last flush completed, and what it removed.
    uint64_t flushes_done() const { return flushes_done_; }
    uint64_t last_flush_removed() const { return last_flush_removed_; }

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
    // The reverse-path check (daemon/rp_filter.cpp): what the kernel is told
    // (kernel_config, with the check off while there is no route mirror); the
    // mirror started or stopped as `o` says (a failure is said, the check off);
    // a failure after start turns the check off; the watched interfaces' modes
    // from their rp_filter sysctls (returns "eth0 strict, ..."); the status words.
    cw_config config_for(const Options& o) const;
    void start_route_mirror(const Options& o);
    void route_mirror_failed(const std::string& why);
    void on_routes();
    std::string refresh_rp_interfaces();
    std::string rp_summary() const;
    bool on_signals(); // false: stop
    void on_timer();
    void on_event(const cw_event& ev);
    void on_port_scan(const PortScan& s);
    // CW_ACT_BLOCKLIST_FULL: s's block made in place of the oldest automatic
    // one, if there is one to replace (s then says CW_ACT_BLOCKED).
    BlockTable::Replacement replace_when_full(PortScan& s);
    void report_lost_events();
    // CrowdSec (daemon/crowdsec.cpp): the worker started, or replaced when
    // the settings changed (reload); what it reports applied to the table.
    void apply_crowdsec(std::optional<crowdsec::Settings> settings);
    void on_crowdsec();
    void mirror_decisions(const crowdsec::StreamBatch& batch, bool startup);
    void alert_crowdsec(const PortScan& s);
    // Repeat offenders across a reboot (blocks/offenders.h): the history put
    // back into an empty map at start (or when a reload turns escalation
    // on); written at stop and, once
    // changed, at most once a minute (`force`: now).
    void restore_offenders();
    void save_offenders(bool force);
    void update_status(const BlockCounts& n);
    void update_metrics(const BlockCounts& n);
    std::string summary() const;
    void add_fd(int fd);
    // Runs one handler of the loop: what it throws is logged once and ignored.
    template <typename Fn>
    void guarded(const char* what, Fn&& fn);

    Options opts_;
    std::vector<std::string> args_;
    uint64_t flushes_begun_ = 0, flushes_done_ = 0, last_flush_removed_ = 0;
    std::string flush_by_;
    bool trim_due_ = false;
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
    std::unique_ptr<RouteMirror> routes_;  // null: the reverse-path check is off
    std::map<uint32_t, uint32_t> rp_modes_; // ifindex -> mode, as the kernel has it
    std::map<std::string, unsigned> attach_failed_; // name -> ifindex it failed on: said once
    std::unique_ptr<EventReader> reader_;
    std::unique_ptr<ControlHandler> handler_;
    std::unique_ptr<ControlServer> control_;
    UniqueFd epoll_, signal_, timer_;
    uint64_t lost_reported_ = 0;
    uint64_t watchdog_usec_ = 0;
    std::string status_;
    bool offenders_dirty_ = false;
    uint64_t offenders_forgiven_ = 0; // KernelMaps::forgiven() at the last save
    uint64_t offenders_saved_ns_ = 0; // monotonic
    std::string offenders_error_;     // the last failure, said once
    std::string own_prefixes_error_; // the last getifaddrs failure, to say it once
    std::vector<Cidr> own_;          // the own addresses in the allowlist now
    std::unique_ptr<crowdsec::Worker> crowdsec_;
    crowdsec::DecisionLedger ledger_;
    std::map<std::string, uint64_t> crowdsec_decisions_; // metric: result -> count
};

} // namespace connwatch
