// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/manager.h"

#include <malloc.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <set>
#include <sstream>

#include <prometheus/exposer.h>

#include "base/clock.h"
#include "blocks/kernel_maps.h"
#include "blocks/offenders.h"
#include "common/duration.h"
#include "common/format.h"
#include "control/server.h"
#include "crowdsec/client.h"
#include "daemon/control_handler.h"
#include "daemon/host.h"
#include "daemon/link_monitor.h"
#include "daemon/route_mirror.h"
#include "events/events.h"
#include "events/messages.h"
#include "kernel/attachment.h"
#include "kernel/event_reader.h"
#include "kernel/program.h"
#include "metrics/metrics.h"

namespace connwatch {

namespace {

sigset_t handled_signals()
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    return mask;
}

} // namespace

Manager::Manager(Options opts, std::vector<std::string> args)
    : opts_(std::move(opts)), args_(std::move(args)), sink_(make_sink(opts_.log_target))
{
}

Manager::~Manager() = default;

template <typename Fn>
void Manager::guarded(const char* what, Fn&& fn)
{
    try {
        fn();
    } catch (const std::exception& e) {
        sink_->error(std::string(what) + " failed: " + e.what() + ", ignoring");
    } catch (...) {
        sink_->error(std::string(what) + " failed: unknown exception, ignoring");
    }
}

void Manager::add_fd(int fd)
{
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev))
        throw Error("epoll_ctl", errno_code(errno));
}

void Manager::attach(const std::string& name)
{
    links_.emplace_back(*prog_, name, opts_.xdp_mode, prog_->pin_dir());
    const auto& l = links_.back();
    if (!l.fallback_reason().empty())
        sink_->warning("'" + name + "': " + l.fallback_reason());
}

void Manager::save_state(bool stopping)
{
    auto saved = table_->save_if_dirty(stopping);
    if (saved.say && !saved.error.empty())
        sink_->warning(saved.error + "; will retry every second (said again if it changes)");
    else if (saved.recovered)
        sink_->notice("Wrote " + table_->state_path() + " again after the failures above");
}

std::vector<Cidr> Manager::own_addresses(bool enabled)
{
    if (!enabled) {
        own_prefixes_error_.clear();
        return {};
    }
    std::string why;
    auto own = own_prefixes(&why);
    // Said once, not at every call: a sandbox without AF_NETLINK fails the same
    // way each time.
    if (!why.empty() && why != own_prefixes_error_)
        sink_->warning(why);
    own_prefixes_error_ = why;
    return own;
}

void Manager::refresh_own_addresses()
{
    if (!opts_.allow_own_addresses)
        return;
    auto own = own_addresses(true);
    if (own == own_)
        return; // a link or address event that changed nothing of ours
    auto allowed = table_->set_allow_sources(opts_.allow, own);
    if (!allowed.error.empty()) {
        sink_->error("The host's addresses changed, but the allowlist cannot take them: " +
                     allowed.error + "; keeping the previous ones");
        return;
    }
    own_ = std::move(own);
    sync_prefix_guard();
    report_lifted(allowed.lifted, "");
    save_state();
}

void Manager::report_stuck_prefix_blocks(const std::vector<Cidr>& stuck)
{
    if (stuck.empty())
        return;
    sink_->error(std::to_string(stuck.size()) + " automatic blocks of another prefix length (" +
                 stuck.front().str() + (stuck.size() > 1 ? ", ..." : "") +
                 ") no longer match: the CIDR blocklist is full; raise max-cidr-blocks, or "
                 "block them again with connwatchctl");
}

void Manager::sync_prefix_guard(const Options& o)
{
    std::vector<Cidr> allow;
    for (const auto& [c, from] : table_->allow_entries())
        allow.push_back(c);
    try {
        prog_->set_allow_inside(prefixes_holding(allow, o.ipv4_prefix, o.ipv6_prefix));
    } catch (const Error& e) {
        sink_->error(std::string(e.what()) +
                     "; a scanner in such a prefix may be counted with its allowlisted "
                     "neighbour (set ipv4-prefix = 32 and ipv6-prefix = 128 to count per address)");
    }
}

uint64_t Manager::begin_flush(const std::string& who)
{
    if (!table_->flushing()) {
        table_->flush_begin(monotonic_now_ns());
        flushes_begun_++;
        flush_by_ = who;
    }
    return flushes_begun_;
}

void Manager::flush_step()
{
    if (!table_->flushing() || !table_->flush_step(BlockTable::kFlushSlice))
        return;
    const BlockCounts& n = table_->flushed();
    flushes_done_ = flushes_begun_;
    last_flush_removed_ = n.total();
    // One line, not one a block: a million lines would flood the journal.
    sink_->notice("Flushed " + std::to_string(n.total()) + " blocks (" +
                  std::to_string(n.manual) + " manual, " + std::to_string(n.scan) + " scan, " +
                  std::to_string(n.crowdsec) + " crowdsec)" + flush_by_);
    save_state();
    trim_later();
}

void Manager::report_lifted(const std::vector<Cidr>& lifted, const std::string& who)
{
    for (const auto& c : lifted)
        sink_->block_removed(c.str(), "allowlisted" + who);
}

std::string Manager::summary() const
{
    std::string ifs;
    for (const auto& l : links_)
        ifs += (ifs.empty() ? "" : ", ") + l.ifname() + " (" + to_string(l.mode()) + ")";
    for (const auto& name : missing_interfaces())
        ifs += (ifs.empty() ? "" : ", ") + name + " (missing)";
    std::ostringstream msg;
    msg << "watching " << ifs << "; scan threshold " << opts_.threshold << " ports in "
        << format_duration(opts_.window) << ", "
        << (opts_.monitor_only ? std::string("monitor-only")
                               : "block for " + (opts_.block_duration.count()
                                                     ? format_duration(opts_.block_duration)
                                                     : std::string("ever")))
        << (opts_.escalation_window.count() && opts_.block_duration.count() && !opts_.monitor_only
                ? " (x" + format_factor(opts_.escalation_factor_milli) +
                      " for each repeat offence within " + format_duration(opts_.escalation_window) +
                      ", up to " + format_duration(opts_.max_block_duration) + ")"
                : std::string())
        << ", " << table_->allow_size() << " allowlisted prefixes";
    return msg.str();
}

void Manager::start()
{
    // Signals through signalfd: handled in the loop like any other input. Blocked
    // before anything starts a thread (the metrics endpoint runs civetweb threads,
    // which inherit the mask): a thread with them unblocked would take SIGTERM or
    // SIGHUP with the default action and end the whole process, unreported.
    sigset_t mask = handled_signals();
    if (sigprocmask(SIG_BLOCK, &mask, nullptr))
        throw Error("sigprocmask", errno_code(errno));

    check_environment();
    auto interfaces = resolve_interfaces(opts_.interfaces);

    // The control socket first: if another connwatchd answers there, stop now,
    // before touching the pinned blocklists or the state file it owns. Requests
    // are only served from the loop, once everything below is in place.
    handler_ = std::make_unique<ControlHandler>(*this);
    if (!opts_.control_socket.empty())
        control_ = std::make_unique<ControlServer>(opts_.control_socket, opts_.control_group,
                                                   *handler_);
    if (control_ && !control_->warning().empty())
        sink_->warning(control_->warning());

    LoadSettings ls;
    ls.max_blocks = opts_.max_blocks;
    ls.max_cidr_blocks = opts_.max_cidr_blocks;
    if (!opts_.pin_dir.empty()) {
        if (auto why = ensure_bpffs(opts_.pin_dir); why.empty())
            ls.pin_dir = opts_.pin_dir;
        else
            sink_->warning(why);
    }
    prog_ = std::make_unique<XdpProgram>(ls);
    for (const auto& w : prog_->warnings())
        sink_->warning(w);
    // Before the config: the check is on only once the mirror holds the routes.
    start_route_mirror(opts_);
    prog_->set_config(config_for(opts_));
    // Counters taken over go on from the previous program's: the events lost
    // that the previous daemon already warned about are not said again.
    if (prog_->stats_taken_over() && prog_->previous_seen())
        lost_reported_ = (*prog_->previous_seen())[CW_STAT_EVENTS_LOST];

    if (auto w = escalation_warning(opts_); !w.empty())
        sink_->warning(w);
    restore_offenders();

    maps_ = std::make_unique<KernelMaps>(*prog_);
    table_ = std::make_unique<BlockTable>(*maps_, opts_.state_dir + "/state.json");
    auto restored = table_->restore();
    // Pinned automatic prefix blocks of another length than this run's.
    report_stuck_prefix_blocks(
        table_->move_prefix_blocks(opts_.ipv4_prefix, opts_.ipv6_prefix));
    // The walk of a large blocklist and the state file's parse leave freed
    // memory in malloc's arenas: give it back now, not at some later free.
    malloc_trim(0);
    if (!restored.warning.empty())
        sink_->warning(restored.warning);
    if (restored.kept)
        sink_->notice("Kept " + std::to_string(restored.kept) +
                      " blocks from the previous run (pinned in " + opts_.pin_dir + ")");
    if (restored.restored)
        sink_->notice("Restored " + std::to_string(restored.restored) + " manual blocks from " +
                      table_->state_path());
    if (restored.restored_crowdsec)
        sink_->notice("Restored " + std::to_string(restored.restored_crowdsec) +
                      " blocks of CrowdSec decisions from " + table_->state_path() +
                      " (until the first pull says which still stand)");
    auto own = own_addresses(opts_.allow_own_addresses);
    auto allowed = table_->set_allow_sources(opts_.allow, own);
    if (!allowed.error.empty())
        throw Error("Cannot set up the allowlist: " + allowed.error);
    own_ = own;
    sync_prefix_guard();
    report_lifted(allowed.lifted, "");
    save_state();
    start_metrics();

    reader_ = std::make_unique<EventReader>(
        *prog_, [this](const cw_event& ev) { on_event(ev); },
        [this](const std::string& what) {
            sink_->error("Handling an event failed: " + what + ", ignoring");
        });

    signal_ = UniqueFd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    timer_ = UniqueFd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    epoll_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
    if (!signal_ || !timer_ || !epoll_)
        throw Error("Failed to set up the event loop", errno_code(errno));

    // One timer for everything periodic; under a systemd watchdog it ticks at
    // least twice per watchdog interval.
    uint64_t tick_usec = 1000000;
    if (sd_watchdog_enabled(0, &watchdog_usec_) > 0)
        tick_usec = std::min<uint64_t>(tick_usec, watchdog_usec_ / 2);
    itimerspec its{};
    its.it_interval.tv_sec = static_cast<time_t>(tick_usec / 1000000);
    its.it_interval.tv_nsec = static_cast<long>(tick_usec % 1000000 * 1000);
    its.it_value = its.it_interval;
    if (timerfd_settime(timer_.get(), 0, &its, nullptr))
        throw Error("timerfd_settime", errno_code(errno));

    add_fd(reader_->epoll_fd());
    add_fd(signal_.get());
    add_fd(timer_.get());
    if (control_)
        add_fd(control_->fd());
    if (routes_)
        add_fd(routes_->fd());

    // Interfaces that go and come back are followed from here on; without it
    // (a sandbox refusing netlink) a reload still re-attaches them.
    try {
        link_monitor_ = std::make_unique<LinkMonitor>();
        add_fd(link_monitor_->fd());
    } catch (const Error& e) {
        sink_->warning(std::string(e.what()) + ": a deleted and re-created interface is "
                                               "attached again only on reload");
    }

    // CrowdSec after the table and the loop are in place: its reports are
    // applied from the loop. Its files are read here, so a missing key stops
    // the start with the reason.
    apply_crowdsec(crowdsec_settings(opts_));

    // Attach last: from here on packets are judged by this program, and events
    // have a reader. Links an earlier connwatchd left attached are taken over.
    wanted_ = interfaces;
    for (const auto& name : interfaces)
        attach(name);
    report_takeover();
    refresh_rp_interfaces();
    sink_->notice("Reverse-path check of scanners (rp-filter): " + rp_summary());

    status_ = summary();
    sink_->started("Started, " + status_);
    sd_notifyf(0, "READY=1\nSTATUS=%s", status_.c_str());
    update_metrics(table_->counts());
}

// What a previous connwatchd left running: the interfaces taken over, the links
// no longer configured (detached now), and what happened while no daemon ran.
void Manager::report_takeover()
{
    const std::string& dir = prog_->pin_dir();
    for (const auto& name : pinned_links(dir)) {
        if (std::find(wanted_.begin(), wanted_.end(), name) != wanted_.end())
            continue;
        if (unpin_link(dir, name))
            sink_->notice("Detached from '" + name +
                          "', which the previous connwatchd watched and the configuration "
                          "no longer names");
    }
    std::string taken;
    for (const auto& l : links_)
        if (l.taken_over())
            taken += (taken.empty() ? "" : ", ") + l.ifname() + " (" + to_string(l.mode()) + ")";
    if (taken.empty())
        return;
    auto same = prog_->same_as_pinned();
    sink_->notice("Took over " + taken + " from the previous connwatchd, attached throughout; " +
                  (same && *same ? "same program"
                                 : "its program replaced by this one (bpf_link_update)"));
    const auto& seen = prog_->previous_seen();
    const auto& then = prog_->previous_stats();
    if (seen && then) {
        auto d = [&](cw_stat i) {
            return (*then)[i] >= (*seen)[i] ? (*then)[i] - (*seen)[i] : 0;
        };
        sink_->notice(
            "While no connwatchd ran: " + std::to_string(d(CW_STAT_SYN)) +
            " connection attempts, " + std::to_string(d(CW_STAT_PROBE)) + " probes, " +
            std::to_string(d(CW_STAT_SCAN)) + " port scans, " +
            std::to_string(d(CW_STAT_BLOCK_ADDED)) + " automatic blocks, " +
            std::to_string(d(CW_STAT_DROP_BLOCKED) + d(CW_STAT_DROP_BLOCKED_CIDR)) +
            " packets dropped from blocked sources, " + std::to_string(d(CW_STAT_EVENTS_LOST)) +
            " events lost (the queued events follow)");
    }
    // A ring buffer of another layout: the old program's queue, read now that
    // no program writes to it any more.
    if (prog_->previous_events_fd() >= 0) {
        guarded("Reading the previous program's events", [&] {
            EventReader old(
                prog_->previous_events_fd(), [this](const cw_event& ev) { on_event(ev); },
                [this](const std::string& what) {
                    sink_->error("Handling an event failed: " + what + ", ignoring");
                });
            old.consume();
        });
        prog_->forget_previous_events();
    }
}

void Manager::on_event(const cw_event& raw)
{
    auto ev = decode_event(raw);
    if (auto* c = std::get_if<NewConnection>(&ev))
        sink_->new_connection(*c);
    else if (auto* s = std::get_if<PortScan>(&ev))
        on_port_scan(*s);
    else if (auto* p = std::get_if<Probe>(&ev))
        sink_->probe(*p);
}

void Manager::on_port_scan(const PortScan& scan)
{
    PortScan s = scan;
    BlockTable::Replacement made;
    if (s.action == CW_ACT_BLOCKLIST_FULL && !opts_.monitor_only)
        made = replace_when_full(s);
    sink_->port_scan(s);
    if (s.offence)
        offenders_dirty_ = true;
    for (const auto& p : made.expired)
        sink_->block_expired(std::time(nullptr), p.address());
    for (const auto& p : made.replaced)
        sink_->block_removed(p.str(), replaced_reason(s.blocked_str()));
    if (s.action == CW_ACT_BLOCKED && !made.made)
        table_->record_scan_block(s.blocked(), port_scan_message(s.scanner_str(), s.dst, s.ports),
                                  s.when, s.expires);
    alert_crowdsec(s);
}

BlockTable::Replacement Manager::replace_when_full(PortScan& s)
{
    // The kernel cannot find the oldest entry of a hash map: connwatchd
    // can (docs/SECURITY.md, "A full blocklist"). The block it makes is the
    // one the kernel would have made: its deadline is the one escalation
    // wrote into the source's history for this very scan (it ran before the
    // insert failed), else the scan's time + block-duration.
    uint64_t expires_ns = opts_.block_duration.count()
                              ? s.ts_ns + static_cast<uint64_t>(opts_.block_duration.count()) *
                                              1'000'000'000ull
                              : 0;
    uint32_t offence = 0;
    if (opts_.escalation_window.count() && expires_ns)
        if (auto o = prog_->offender(s.scanner().address().to_abi());
            o && o->offences && o->until_ns - o->block_ns == s.ts_ns) {
            expires_ns = o->until_ns;
            offence = o->offences;
        }
    cw_block b{};
    b.created_ns = monotonic_now_ns();
    b.expires_ns = expires_ns;
    b.origin = CW_ORIGIN_SCAN;
    std::time_t expires = expires_ns ? wall_time_of(expires_ns) : 0;
    // The unit the kernel counted: the scanner, or its prefix (the kernel
    // keys the history by it too).
    auto made = table_->replace_oldest_scan_block(
        s.scanner(), b, port_scan_message(s.scanner_str(), s.dst, s.ports), s.when, expires);
    if (made.made) {
        s.action = CW_ACT_BLOCKED;
        s.blocked_prefix = s.scanner_prefix;
        s.expires = expires;
        s.offence = offence;
        s.duration_ns = expires_ns > s.ts_ns ? expires_ns - s.ts_ns : 0;
        if (!made.replaced.empty())
            s.replaced = made.replaced.back().address();
        else if (!made.expired.empty())
            s.replaced = made.expired.back().address();
    }
    return made;
}

namespace {

// How long a changed history waits to be written: at most a minute of
// offences is lost to a crash followed by a reboot.
constexpr uint64_t kOffendersSaveEveryNs = 60'000'000'000;

std::string offenders_path(const Options& o)
{
    return o.state_dir + "/offenders.json";
}

} // namespace

void Manager::restore_offenders()
{
    // A map taken over from the pins with entries is the history itself,
    // newer than the file; without escalation nothing reads it.
    if (opts_.escalation_window.count() == 0 || !prog_->offender_list().empty())
        return;
    std::string warning;
    auto records = load_offenders(offenders_path(opts_), &warning);
    if (!warning.empty())
        sink_->warning(warning);
    auto entries = offenders_to_kernel(records, opts_.escalation_window, monotonic_now_ns(),
                                       std::time(nullptr));
    size_t put = 0;
    for (const auto& [key, o] : entries)
        if (put < prog_->offender_capacity() && prog_->offender_set(key, o))
            put++;
    if (put)
        sink_->notice("Restored the history of " + std::to_string(put) +
                      " repeat offenders from " + offenders_path(opts_));
}

void Manager::save_offenders(bool force)
{
    if (opts_.escalation_window.count() == 0 || !maps_)
        return;
    uint64_t now = monotonic_now_ns();
    bool changed = offenders_dirty_ || maps_->forgiven() != offenders_forgiven_;
    if (!force && (!changed || now - offenders_saved_ns_ < kOffendersSaveEveryNs))
        return;
    uint64_t forgiven = maps_->forgiven();
    auto records = offenders_from_kernel(prog_->offender_list(), opts_.escalation_window,
                                         monotonic_now_ns(), std::time(nullptr),
                                         prog_->offender_capacity());
    try {
        connwatch::save_offenders(offenders_path(opts_), records);
        if (!offenders_error_.empty())
            sink_->notice("Wrote " + offenders_path(opts_) + " again after the failure above");
        offenders_error_.clear();
        offenders_dirty_ = false;
        offenders_forgiven_ = forgiven;
    } catch (const Error& e) {
        // Retried a minute later; said once while it keeps failing the same way.
        if (e.what() != offenders_error_)
            sink_->warning(std::string(e.what()) +
                           "; the history of repeat offenders would not survive a reboot");
        offenders_error_ = e.what();
    }
    offenders_saved_ns_ = now;
}

void Manager::report_lost_events()
{
    uint64_t lost = prog_->stats()[CW_STAT_EVENTS_LOST];
    if (lost > lost_reported_) {
        sink_->warning(std::to_string(lost - lost_reported_) +
                       " events lost: the ring buffer was full (counters stay exact)");
        lost_reported_ = lost;
    }
}

// STATUS= for systemctl status: the summary and the counts so far.
void Manager::update_status(const BlockCounts& n)
{
    auto st = prog_->stats();
    std::string s = summary() + "; " + std::to_string(st[CW_STAT_SYN]) + " connections, " +
                    std::to_string(st[CW_STAT_SCAN]) + " scans, " + std::to_string(n.total()) +
                    " blocked" + crowdsec_summary();
    if (s != status_) {
        status_ = s;
        sd_notifyf(0, "STATUS=%s", status_.c_str());
    }
}

void Manager::on_timer()
{
    uint64_t expirations;
    while (read(timer_.get(), &expirations, sizeof(expirations)) > 0) {
    }
    if (watchdog_usec_)
        sd_notify(0, "WATCHDOG=1");
    // Expired blocks stop matching in the kernel at once; here they are removed
    // and logged, which also frees their room. One walk, which also counts.
    // A flush whose client went away goes on here, a slice a tick.
    flush_step();
    auto sweep = table_->sweep_expired(monotonic_now_ns());
    for (const auto& e : sweep.expired) {
        if (e.prefix.is_host())
            sink_->block_expired(e.when, e.prefix.address());
        else
            sink_->block_removed(e.prefix.str(), "expired");
    }
    report_lost_events();
    save_state();
    save_offenders(false);
    if (trim_due_) {
        // A million-line import parses a thousand requests of 4,096 entries and
        // grows the index: what it freed stays in malloc's arenas, resident,
        // until trimmed (7 to 20 MiB at a million blocks).
        trim_due_ = false;
        malloc_trim(0);
    }
    // What a successor would count as missed, should this process end now.
    prog_->record_seen(prog_->stats());
    // The control clients' deadlines pass without any event on the socket.
    if (control_)
        control_->process();
    sink_->tick(std::chrono::steady_clock::now());
    update_status(sweep.left);
    update_metrics(sweep.left);
}

void Manager::start_metrics()
{
    if (opts_.metrics_listen.empty())
        return;
    metrics_ = std::make_shared<MetricsCollector>(*prog_);
    try {
        // Several threads, and a bound on how long a request may take to arrive:
        // any local user can connect, and one that never finishes its request
        // must not hold the endpoint (civetweb's defaults: 1 thread as we used
        // it, 30 s). Scrapes are answered from the counters, in microseconds.
        exposer_ = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
            "listening_ports", opts_.metrics_listen, "num_threads", "4", "request_timeout_ms",
            "5000"});
    } catch (const std::exception& e) {
        throw Error("Cannot serve metrics on " + opts_.metrics_listen + ": " + e.what() +
                    " (is the port in use? set metrics-listen to another HOST:PORT, or empty "
                    "to disable)");
    }
    exposer_->RegisterCollectable(metrics_);
}

// The daemon's side of the metrics; the kernel's counters are read at scrape time.
void Manager::update_metrics(const BlockCounts& n)
{
    if (!metrics_)
        return;
    MetricsSnapshot s;
    for (const auto& l : links_)
        s.interfaces.emplace_back(l.ifname(), to_string(l.mode()));
    s.blocks_scan = n.scan;
    s.blocks_manual = n.manual;
    s.blocks_crowdsec = n.crowdsec;
    if (crowdsec_) {
        const auto& c = crowdsec_->counters();
        s.crowdsec.pulls = c.pulls;
        s.crowdsec.pull_failures = c.pull_failures;
        s.crowdsec.decisions = crowdsec_decisions_;
        s.crowdsec.alerts_sent = c.alerts_sent;
        s.crowdsec.alerts_queued = c.alerts_queued;
        s.crowdsec.alerts_dropped = c.alerts_dropped;
        s.crowdsec.alert_failures = c.alert_failures;
        s.crowdsec.logins = c.logins;
        s.crowdsec.relogins_expiry = c.relogins_expiry;
        s.crowdsec.relogins_refused = c.relogins_refused;
    }
    s.allow_entries = table_->allow_size();
    s.manual_blocks_added = table_->manual_added();
    for (auto r : kRemovalReasons)
        s.blocks_removed[r] = table_->removed(r);
    metrics_->update(std::move(s));
}

// Reads every pending signal; false when one asks to stop.
bool Manager::on_signals()
{
    signalfd_siginfo si{};
    while (read(signal_.get(), &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            // Errors are logged by reload(); a signal has no one to answer.
            reload();
            continue;
        }
        // Drain what the kernel already reported. SIGUSR1 (the unit's
        // RestartKillSignal): leave the program attached for the next
        // connwatchd; SIGTERM, SIGINT: a stop, detach.
        sd_notify(0, "STOPPING=1");
        guarded("Reading the last events", [&] { reader_->consume(); });
        save_state(/*stopping=*/true);
        save_offenders(true);
        if (crowdsec_ && crowdsec_->counters().alerts_queued)
            sink_->warning("CrowdSec: " + std::to_string(crowdsec_->counters().alerts_queued) +
                           " port-scan alerts not sent (the LAPI did not take them)");
        // Without a pin directory nothing can outlive the process: a stop.
        if (si.ssi_signo == SIGUSR1 && !prog_->pin_dir().empty()) {
            prog_->record_seen(prog_->stats());
            sink_->notice(std::string("received ") + strsignal(si.ssi_signo) +
                          ", leaving the program attached for the next connwatchd");
            return false;
        }
        for (auto& l : links_)
            l.detach();
        prog_->unpin_runtime();
        sink_->notice(std::string("received ") + strsignal(si.ssi_signo) + ", detaching");
        return false;
    }
    return true;
}

int Manager::run()
{
    start();
    for (;;) {
        epoll_event evs[8];
        int n = epoll_wait(epoll_.get(), evs, 8, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            sink_->error(std::string("epoll_wait: ") + std::strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == reader_->epoll_fd()) {
                guarded("Reading events", [&] { reader_->consume(); });
            } else if (control_ && fd == control_->fd()) {
                guarded("Serving the control socket", [&] { control_->process(); });
            } else if (link_monitor_ && fd == link_monitor_->fd()) {
                guarded("Following interface and address changes", [&] {
                    link_monitor_->drain();
                    sync_interfaces();
                    refresh_own_addresses();
                    refresh_rp_interfaces();
                });
            } else if (routes_ && fd == routes_->fd()) {
                guarded("Following route changes", [&] { on_routes(); });
            } else if (crowdsec_ && fd == crowdsec_->fd()) {
                guarded("Applying CrowdSec decisions", [&] { on_crowdsec(); });
            } else if (fd == timer_.get()) {
                guarded("The periodic tick", [&] { on_timer(); });
            } else if (fd == signal_.get()) {
                bool go_on = true;
                guarded("Handling a signal", [&] { go_on = on_signals(); });
                if (!go_on)
                    return 0;
            }
        }
    }
}

} // namespace connwatch
