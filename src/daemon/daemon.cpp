// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/daemon.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <prometheus/exposer.h>

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/statfs.h>

#include "control/server.h"
#include "common/duration.h"
#include "events/event_sink.h"
#include "common/format.h"
#include "metrics/metrics.h"
#include "blocks/state.h"
#include "kernel/xdp_program.h"
#include "protocol/protocol.h"

namespace connwatch {

namespace {


std::string ifname_of(uint32_t ifindex)
{
    char buf[IF_NAMESIZE] = {};
    return if_indextoname(ifindex, buf) ? buf : std::to_string(ifindex);
}

cw_config config_from(const Options& o)
{
    cw_config c{};
    c.window_ns = static_cast<uint64_t>(o.window.count()) * kNsPerSec;
    c.block_ns = static_cast<uint64_t>(o.block_duration.count()) * kNsPerSec;
    c.dedup_ns = 5 * kNsPerSec;
    c.threshold = o.threshold;
    c.monitor_only = o.monitor_only ? 1 : 0;
    return c;
}

// How many blocks (by origin) and allow entries there are: walked once per
// timer tick, then shared by STATUS= and the metrics.
struct ListSizes {
    size_t blocks_scan = 0, blocks_manual = 0, allow = 0;
    size_t blocks() const { return blocks_scan + blocks_manual; }
};

ListSizes sizes_of(const std::vector<std::pair<Cidr, cw_block>>& blocks, size_t allow)
{
    ListSizes n;
    for (const auto& [c, b] : blocks)
        (b.origin == CW_ORIGIN_MANUAL ? n.blocks_manual : n.blocks_scan)++;
    n.allow = allow;
    return n;
}

// The control socket's commands (docs/CONTROL.md) are the protocol::Handler
// methods below.
class Daemon : private protocol::Handler {
public:
    Daemon(Options opts, std::vector<std::string> args)
        : opts_(std::move(opts)), args_(std::move(args)), sink_(make_sink(opts_.log_target))
    {
    }
    int run();

private:
    void start();
    std::string reload(); // "" on success, else why the running configuration was kept
    void apply_allowlist();
    void restore_state();
    void save_state_if_dirty();
    std::vector<std::pair<Cidr, cw_block>> all_blocks() const;
    bool remove_block(const Cidr& c);
    bool remove_block(const Cidr& c, const std::string& reason); // and count it
    protocol::Answer<protocol::StatusResponse> status(const protocol::Peer&) override;
    protocol::Answer<protocol::ListResponse> list(const protocol::Peer&) override;
    protocol::Answer<protocol::BlockResponse> block(const protocol::BlockRequest& r,
                                                    const protocol::Peer& peer) override;
    protocol::Answer<protocol::PrefixResponse> unblock(const protocol::UnblockRequest& r,
                                                       const protocol::Peer& peer) override;
    protocol::Answer<protocol::PrefixResponse> allow(const protocol::AllowRequest& r,
                                                     const protocol::Peer& peer) override;
    protocol::Answer<protocol::PrefixResponse> disallow(const protocol::DisallowRequest& r,
                                                        const protocol::Peer& peer) override;
    protocol::Answer<protocol::FlushResponse> flush(const protocol::Peer& peer) override;
    protocol::Answer<protocol::ReloadResponse> reload(const protocol::Peer&) override;
    void attach(const std::string& name);
    void on_event(const cw_event& ev);
    void on_timer();
    std::vector<std::pair<Cidr, cw_block>> sweep_expired(); // returns the blocks left
    void report_lost_events();
    void update_status(const ListSizes& n);
    void update_metrics(const ListSizes& n);
    ListSizes list_sizes() const; // for the calls outside the timer
    void start_metrics();
    void add_fd(int fd);
    std::string summary(size_t allow_entries) const;

    Options opts_;
    std::vector<std::string> args_; // argv, re-parsed on reload
    std::unique_ptr<EventSink> sink_;
    std::unique_ptr<XdpProgram> prog_;
    // After prog_, so destroyed before it: no scrape can outlive the program.
    std::shared_ptr<MetricsCollector> metrics_;
    std::unique_ptr<prometheus::Exposer> exposer_;
    uint64_t manual_blocks_added_ = 0;
    std::map<std::string, uint64_t> blocks_removed_; // by reason, for metrics
    std::vector<XdpAttachment> links_;
    std::unique_ptr<EventReader> reader_;
    UniqueFd epoll_, signal_, timer_;
    uint64_t lost_reported_ = 0;
    uint64_t watchdog_usec_ = 0;
    std::string status_;
    std::unique_ptr<ControlServer> control_;
    std::map<Cidr, BlockRecord> meta_; // what the kernel's entries do not say
    std::vector<Cidr> runtime_allow_;  // connwatchctl allow
    bool state_dirty_ = false;
    std::string own_prefixes_error_; // the last getifaddrs failure said, to say it once
};

std::string state_file(const Options& o)
{
    return o.state_dir + "/state.json";
}

// Pinning needs bpffs at /sys/fs/bpf. systemd mounts it; a plain machine may
// not have it, and root can mount it. Returns "" or why pinning is off.
std::string ensure_bpffs(const std::string& pin_dir)
{
    auto parent = std::filesystem::path(pin_dir).parent_path();
    struct statfs fs{};
    if (statfs(parent.c_str(), &fs) == 0 && fs.f_type == BPF_FS_MAGIC)
        return "";
    if (parent == "/sys/fs/bpf" && mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") == 0)
        return "";
    return parent.string() + " is not a bpf filesystem (mount -t bpf bpf /sys/fs/bpf): "
                             "blocks will not survive a restart of connwatchd";
}

void Daemon::add_fd(int fd)
{
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev))
        throw Error(std::string("epoll_ctl: ") + std::strerror(errno));
}

// The interfaces to watch: the configured ones, or the default-route one.
std::vector<std::string> resolve_interfaces(const Options& o)
{
    auto ifs = o.interfaces;
    if (ifs.empty()) {
        auto def = default_route_interface();
        if (def.empty())
            throw Error("No interface given and no default route to pick one from: name one "
                        "with --interface IF (or interface = IF in the configuration file)");
        ifs.push_back(def);
    }
    // Every name is resolved before anything is attached, so a typo fails fast.
    for (const auto& name : ifs)
        if (if_nametoindex(name.c_str()) == 0)
            throw Error("Interface '" + name + "' does not exist (see 'ip link show')");
    return ifs;
}

void Daemon::attach(const std::string& name)
{
    links_.emplace_back(*prog_, name, opts_.xdp_mode);
    const auto& l = links_.back();
    if (!l.fallback_reason().empty())
        sink_->warning("'" + name + "': " + l.fallback_reason());
}

// Makes the kernel's allowlist exactly the configured prefixes (plus loopback
// and the host's own addresses unless disabled), and lifts the blocks that an
// allow entry now covers: the allowlist always wins.
void Daemon::apply_allowlist()
{
    auto want = opts_.allow;
    want.insert(want.end(), runtime_allow_.begin(), runtime_allow_.end());
    if (opts_.allow_own_addresses) {
        std::string why;
        for (auto& c : own_prefixes(&why))
            want.push_back(c);
        // Said once, not at every pass: a sandbox without AF_NETLINK fails the same way each time.
        if (!why.empty() && why != own_prefixes_error_)
            sink_->warning(why);
        own_prefixes_error_ = why;
    }
    std::set<Cidr> wanted(want.begin(), want.end());
    for (const auto& c : prog_->allow_list())
        if (!wanted.count(c))
            prog_->allow_remove(c);
    for (const auto& c : wanted)
        prog_->allow_add(c);
    for (const auto& [prefix, b] : all_blocks()) {
        bool covered = std::any_of(wanted.begin(), wanted.end(), [&](const Cidr& c) {
            return c.length() <= prefix.length() && c.contains(prefix.address()) &&
                   c.address().is_v4() == prefix.address().is_v4();
        });
        if (covered && remove_block(prefix, "allowlisted"))
            sink_->block_removed(prefix.str(), "allowlisted");
    }
}

std::vector<std::pair<Cidr, cw_block>> Daemon::all_blocks() const
{
    std::vector<std::pair<Cidr, cw_block>> out;
    for (const auto& [a, b] : prog_->block_list())
        out.emplace_back(Cidr(a, a.is_v4() ? 32 : 128), b);
    for (auto& e : prog_->cidr_block_list())
        out.push_back(e);
    return out;
}

// A host prefix lives in the exact hash, anything wider in the CIDR trie.
bool is_host(const Cidr& c)
{
    return c.length() == (c.address().is_v4() ? 32u : 128u);
}

bool Daemon::remove_block(const Cidr& c, const std::string& reason)
{
    if (!remove_block(c))
        return false;
    blocks_removed_[reason]++;
    return true;
}

bool Daemon::remove_block(const Cidr& c)
{
    bool removed = is_host(c) ? prog_->block_remove(c.address()) : prog_->cidr_block_remove(c);
    if (removed) {
        meta_.erase(c);
        state_dirty_ = true;
    }
    return removed;
}

// Start-up: metadata of the blocks the pinned maps still hold, and the manual
// blocks that a reboot (which empties bpffs) took out of the kernel.
void Daemon::restore_state()
{
    std::string warning;
    State st = load_state(state_file(opts_), &warning);
    if (!warning.empty())
        sink_->warning(warning);
    runtime_allow_ = st.allow;
    auto kernel = all_blocks();
    std::set<Cidr> present;
    for (const auto& [c, b] : kernel)
        present.insert(c);
    std::time_t now = std::time(nullptr);
    size_t restored = 0;
    for (const auto& r : st.blocks) {
        if (present.count(r.prefix)) {
            meta_[r.prefix] = r;
            continue;
        }
        // Only manual blocks outlive a reboot; scan blocks end with the pins.
        if (r.origin != "manual" || (r.expires != 0 && r.expires <= now))
            continue;
        cw_block b{};
        b.created_ns = monotonic_now_ns();
        b.expires_ns = r.expires ? b.created_ns + static_cast<uint64_t>(r.expires - now) *
                                                      1000000000ull
                                 : 0;
        b.origin = CW_ORIGIN_MANUAL;
        bool ok = is_host(r.prefix) ? prog_->block_add(r.prefix.address(), b)
                                    : prog_->cidr_block_add(r.prefix, b);
        if (ok) {
            meta_[r.prefix] = r;
            restored++;
        }
    }
    // Kernel entries with no record (a crash before the state was written).
    for (const auto& [c, b] : kernel)
        if (!meta_.count(c))
            meta_[c] = {c, b.origin == CW_ORIGIN_MANUAL ? "manual" : "scan", "",
                        wall_time_of(b.created_ns), b.expires_ns ? wall_time_of(b.expires_ns) : 0};
    if (!kernel.empty())
        sink_->notice("Kept " + std::to_string(kernel.size()) +
                      " blocks from the previous run (pinned in " + opts_.pin_dir + ")");
    if (restored)
        sink_->notice("Restored " + std::to_string(restored) + " manual blocks from " +
                      state_file(opts_));
    state_dirty_ = true;
}

void Daemon::save_state_if_dirty()
{
    if (!state_dirty_)
        return;
    State st;
    for (const auto& [c, r] : meta_)
        st.blocks.push_back(r);
    st.allow = runtime_allow_;
    try {
        save_state(state_file(opts_), st);
        state_dirty_ = false;
    } catch (const Error& e) {
        sink_->warning(std::string(e.what()) + "; will retry");
    }
}

std::string Daemon::summary(size_t allow_entries) const
{
    std::string ifs;
    for (const auto& l : links_)
        ifs += (ifs.empty() ? "" : ", ") + l.ifname() + " (" + to_string(l.mode()) + ")";
    std::ostringstream msg;
    msg << "watching " << ifs << "; scan threshold " << opts_.threshold << " ports in "
        << format_duration(opts_.window) << ", "
        << (opts_.monitor_only ? std::string("monitor-only")
                               : "block for " + (opts_.block_duration.count()
                                                     ? format_duration(opts_.block_duration)
                                                     : std::string("ever")))
        << ", " << allow_entries << " allowlisted prefixes";
    return msg.str();
}

ListSizes Daemon::list_sizes() const
{
    return sizes_of(all_blocks(), prog_->allow_list().size());
}

void Daemon::start()
{
    // Signals through signalfd: handled in the loop like any other input. Blocked
    // before anything starts a thread (the metrics endpoint runs civetweb threads,
    // which inherit the mask): a thread with them unblocked would take SIGTERM or
    // SIGHUP with the default action and end the whole process, unreported.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, nullptr))
        throw Error(std::string("sigprocmask: ") + std::strerror(errno));

    check_environment();
    auto interfaces = resolve_interfaces(opts_);

    // The control socket first: if another connwatchd answers there, stop now,
    // before touching the pinned blocklists or the state file it owns. Requests
    // are only served from the loop, once everything below is in place.
    if (!opts_.control_socket.empty())
        control_ = std::make_unique<ControlServer>(opts_.control_socket, opts_.control_group,
                                                   static_cast<protocol::Handler&>(*this));
    if (control_ && !control_->warning().empty())
        sink_->warning(control_->warning());

    LoadSettings ls;
    ls.max_blocks = opts_.max_blocks;
    if (!opts_.pin_dir.empty()) {
        if (auto why = ensure_bpffs(opts_.pin_dir); why.empty())
            ls.pin_dir = opts_.pin_dir;
        else
            sink_->warning(why);
    }
    prog_ = std::make_unique<XdpProgram>(ls);
    for (const auto& w : prog_->warnings())
        sink_->warning(w);
    prog_->set_config(config_from(opts_));
    restore_state();
    apply_allowlist();
    save_state_if_dirty();
    start_metrics();

    reader_ = std::make_unique<EventReader>(*prog_, [this](const cw_event& ev) { on_event(ev); });

    signal_ = UniqueFd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    timer_ = UniqueFd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    epoll_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
    if (!signal_ || !timer_ || !epoll_)
        throw Error(std::string("Failed to set up the event loop: ") + std::strerror(errno));

    // One timer for everything periodic; under a systemd watchdog it ticks at
    // least twice per watchdog interval.
    uint64_t tick_usec = 1000000;
    if (sd_watchdog_enabled(0, &watchdog_usec_) > 0)
        tick_usec = std::min<uint64_t>(tick_usec, watchdog_usec_ / 2);
    itimerspec its{};
    its.it_interval.tv_sec = static_cast<time_t>(tick_usec / 1000000);
    its.it_interval.tv_nsec = static_cast<long>(tick_usec % 1000000 * 1000);
    its.it_value = its.it_interval;
    timerfd_settime(timer_.get(), 0, &its, nullptr);
    add_fd(reader_->epoll_fd());
    add_fd(signal_.get());
    add_fd(timer_.get());
    if (control_)
        add_fd(control_->fd());

    // Attach last: from here on packets are judged, and events are read.
    for (const auto& name : interfaces)
        attach(name);

    ListSizes n = list_sizes();
    update_metrics(n);
    status_ = summary(n.allow);
    sink_->started("Started, " + status_);
    sd_notifyf(0, "READY=1\nSTATUS=%s", status_.c_str());
}

// SIGHUP: re-read the configuration and apply it without dropping blocks or
// detaching unchanged interfaces. Anything invalid keeps the running one.
std::string Daemon::reload()
{
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               static_cast<unsigned long long>(monotonic_now_ns() / 1000));
    auto done = [this](std::string why) {
        sd_notifyf(0, "READY=1\nSTATUS=%s", status_.c_str());
        return why;
    };

    std::vector<const char*> argv;
    for (const auto& a : args_)
        argv.push_back(a.c_str());
    Options next;
    std::string why;
    auto code = parse_command_line(static_cast<int>(argv.size()), argv.data(), next,
                                   opts_.config_file, &why);
    if (code) {
        sink_->error("Reload failed, keeping the running configuration: " + why);
        return done(why);
    }
    std::vector<std::string> interfaces;
    try {
        interfaces = resolve_interfaces(next);
    } catch (const Error& e) {
        sink_->error(std::string("Reload failed, keeping the running configuration: ") +
                     e.what());
        return done(e.what());
    }
    // What is fixed for the life of the process: the map's size, and where its
    // socket, state and pins live. Say so, and keep the running values.
    auto restart_only = [this](const char* key, auto& next_value, const auto& running) {
        if (next_value != running) {
            sink_->warning(std::string(key) +
                           " changes take effect when connwatchd restarts, ignoring");
            next_value = running;
        }
    };
    restart_only("max-blocks", next.max_blocks, opts_.max_blocks);
    restart_only("control-socket", next.control_socket, opts_.control_socket);
    restart_only("control-group", next.control_group, opts_.control_group);
    restart_only("state-dir", next.state_dir, opts_.state_dir);
    restart_only("pin-dir", next.pin_dir, opts_.pin_dir);
    restart_only("metrics-listen", next.metrics_listen, opts_.metrics_listen);
    if (next.xdp_mode != opts_.xdp_mode)
        sink_->warning("xdp-mode applies to interfaces attached from now on; restart to "
                       "re-attach the others");
    if (next.log_target != opts_.log_target)
        sink_ = make_sink(next.log_target);

    opts_ = std::move(next);
    prog_->set_config(config_from(opts_));
    apply_allowlist();

    // Interfaces: detach the ones no longer wanted, attach the new ones; the
    // others keep their links (and so keep judging packets) throughout.
    std::set<std::string> wanted(interfaces.begin(), interfaces.end());
    std::erase_if(links_, [&](const XdpAttachment& l) { return !wanted.count(l.ifname()); });
    for (const auto& name : interfaces) {
        bool have = std::any_of(links_.begin(), links_.end(),
                                [&](const XdpAttachment& l) { return l.ifname() == name; });
        if (have)
            continue;
        try {
            attach(name);
        } catch (const Error& e) {
            sink_->error(std::string("Reload: ") + e.what());
        }
    }
    status_ = summary(prog_->allow_list().size());
    sink_->reloaded("Reloaded, " + status_);
    return done("");
}

void Daemon::on_event(const cw_event& ev)
{
    std::time_t when = wall_time_of(ev.ts_ns);
    if (ev.type == CW_EV_NEW_CONN) {
        sink_->new_connection({when, Address(ev.saddr), Address(ev.daddr), ev.sport, ev.dport,
                               ifname_of(ev.ifindex)});
    } else if (ev.type == CW_EV_SCAN) {
        PortScan s{when, Address(ev.saddr), Address(ev.daddr), {}, ifname_of(ev.ifindex),
                   ev.action, ev.expires_ns ? wall_time_of(ev.expires_ns) : 0};
        unsigned n = ev.nports < CW_SCAN_SLOTS ? ev.nports : CW_SCAN_SLOTS;
        s.ports.assign(ev.ports, ev.ports + n);
        sink_->port_scan(s);
        if (ev.action == CW_ACT_BLOCKED) {
            Cidr host(s.src, s.src.is_v4() ? 32 : 128);
            auto line = format_port_scan(s.when, s.src, s.dst, s.ports);
            meta_[host] = {host, "scan", line.substr(line.find("Port scan")), s.when, s.expires};
            state_dirty_ = true;
        }
    }
}

// Expired blocks stop matching in the kernel at once; here they are removed and
// logged, which also frees their room in the blocklist.
std::vector<std::pair<Cidr, cw_block>> Daemon::sweep_expired()
{
    uint64_t now = monotonic_now_ns();
    auto blocks = all_blocks();
    std::erase_if(blocks, [&](const std::pair<Cidr, cw_block>& e) {
        const auto& [prefix, b] = e;
        if (b.expires_ns == 0 || b.expires_ns > now || !remove_block(prefix, "expired"))
            return false;
        if (is_host(prefix))
            sink_->block_expired(wall_time_of(b.expires_ns), prefix.address());
        else
            sink_->block_removed(prefix.str(), "expired");
        return true;
    });
    return blocks;
}

void Daemon::report_lost_events()
{
    uint64_t lost = prog_->stats()[CW_STAT_EVENTS_LOST];
    if (lost > lost_reported_) {
        sink_->warning(std::to_string(lost - lost_reported_) +
                       " events lost: the ring buffer was full (counters stay exact)");
        lost_reported_ = lost;
    }
}

// STATUS= for systemctl status: the summary and the counts so far.
void Daemon::update_status(const ListSizes& n)
{
    auto st = prog_->stats();
    std::string s = summary(n.allow) + "; " + std::to_string(st[CW_STAT_SYN]) +
                    " connections, " + std::to_string(st[CW_STAT_SCAN]) + " scans, " +
                    std::to_string(n.blocks()) + " blocked";
    if (s != status_) {
        status_ = s;
        sd_notifyf(0, "STATUS=%s", status_.c_str());
    }
}

void Daemon::on_timer()
{
    uint64_t expirations;
    while (read(timer_.get(), &expirations, sizeof(expirations)) > 0) {
    }
    if (watchdog_usec_)
        sd_notify(0, "WATCHDOG=1");
    // One walk of each list per tick, shared by the sweep, STATUS= and metrics.
    auto blocks = sweep_expired();
    report_lost_events();
    save_state_if_dirty();
    sink_->tick(std::chrono::steady_clock::now());
    ListSizes n = sizes_of(blocks, prog_->allow_list().size());
    update_status(n);
    update_metrics(n);
}

void Daemon::start_metrics()
{
    if (opts_.metrics_listen.empty())
        return;
    metrics_ = std::make_shared<MetricsCollector>(*prog_);
    try {
        exposer_ = std::make_unique<prometheus::Exposer>(opts_.metrics_listen, 1);
    } catch (const std::exception& e) {
        throw Error("Cannot serve metrics on " + opts_.metrics_listen + ": " + e.what() +
                    " (is the port in use? set metrics-listen to another HOST:PORT, or empty "
                    "to disable)");
    }
    exposer_->RegisterCollectable(metrics_);
}

// The daemon's side of the metrics; the kernel's counters are read at scrape time.
void Daemon::update_metrics(const ListSizes& n)
{
    if (!metrics_)
        return;
    MetricsSnapshot s;
    for (const auto& l : links_)
        s.interfaces.emplace_back(l.ifname(), to_string(l.mode()));
    s.blocks_scan = n.blocks_scan;
    s.blocks_manual = n.blocks_manual;
    s.allow_entries = n.allow;
    s.manual_blocks_added = manual_blocks_added_;
    s.blocks_removed = blocks_removed_;
    metrics_->update(std::move(s));
}

// ---- the control socket (docs/CONTROL.md) ------------------------------------

protocol::Answer<protocol::StatusResponse> Daemon::status(const protocol::Peer&)
{
    protocol::StatusResponse r;
    r.version = CONNWATCH_VERSION;
    r.pid = getpid();
    for (const auto& l : links_)
        r.interfaces.push_back({l.ifname(), to_string(l.mode())});
    r.threshold = opts_.threshold;
    r.window = format_duration(opts_.window);
    r.block_duration = format_duration(opts_.block_duration);
    r.monitor_only = opts_.monitor_only;
    r.max_blocks = opts_.max_blocks;
    r.blocks = all_blocks().size();
    r.allow = prog_->allow_list().size();
    auto st = prog_->stats();
    for (uint32_t i = 0; i < CW_STAT_MAX; i++)
        r.counters.emplace_back(stat_name(i), st[i]);
    return r;
}

protocol::Answer<protocol::ListResponse> Daemon::list(const protocol::Peer&)
{
    struct Row {
        Cidr prefix;
        BlockRecord meta;
        uint64_t expires_ns;
    };
    std::vector<Row> rows;
    for (const auto& [c, b] : all_blocks()) {
        auto it = meta_.find(c);
        BlockRecord m = it != meta_.end()
                            ? it->second
                            : BlockRecord{c, b.origin == CW_ORIGIN_MANUAL ? "manual" : "scan", "",
                                          wall_time_of(b.created_ns),
                                          b.expires_ns ? wall_time_of(b.expires_ns) : 0};
        rows.push_back({c, m, b.expires_ns});
    }
    // Soonest expiry first; blocks without one last.
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
        uint64_t ea = a.expires_ns ? a.expires_ns : UINT64_MAX;
        uint64_t eb = b.expires_ns ? b.expires_ns : UINT64_MAX;
        return ea != eb ? ea < eb : a.prefix < b.prefix;
    });
    protocol::ListResponse out;
    uint64_t now = monotonic_now_ns();
    for (const auto& r : rows)
        out.blocks.push_back(
            {r.prefix, block_origin_from(r.meta.origin).value_or(BlockOrigin::Scan),
             r.meta.reason, r.meta.created, r.meta.expires,
             r.expires_ns ? static_cast<int64_t>((r.expires_ns - now) / 1000000000) : -1});
    std::set<Cidr> configured(opts_.allow.begin(), opts_.allow.end());
    std::set<Cidr> runtime(runtime_allow_.begin(), runtime_allow_.end());
    for (const auto& c : prog_->allow_list())
        out.allow.push_back({c, runtime.count(c)      ? AllowSource::Connwatchctl
                                : configured.count(c) ? AllowSource::Configuration
                                                      : AllowSource::OwnAddress});
    return out;
}

// Who asked, for the log lines of what a request changed.
std::string who(const protocol::Peer& peer)
{
    return " (by uid " + std::to_string(peer.uid) + ", pid " + std::to_string(peer.pid) + ")";
}

protocol::Answer<protocol::ReloadResponse> Daemon::reload(const protocol::Peer&)
{
    if (auto why = reload(); !why.empty())
        return protocol::Refusal{why};
    return protocol::ReloadResponse{};
}

protocol::Answer<protocol::FlushResponse> Daemon::flush(const protocol::Peer& peer)
{
    size_t n = 0;
    for (const auto& [c, b] : all_blocks())
        if (remove_block(c, "flushed")) {
            sink_->block_removed(c.str(), "flushed" + who(peer));
            n++;
        }
    save_state_if_dirty();
    return protocol::FlushResponse{n};
}

protocol::Answer<protocol::BlockResponse> Daemon::block(const protocol::BlockRequest& r,
                                                        const protocol::Peer& peer)
{
    const Cidr& p = r.prefix;
    for (const auto& a : prog_->allow_list())
        if (a.address().is_v4() == p.address().is_v4() && a.length() <= p.length() &&
            a.contains(p.address()))
            return protocol::Refusal{p.str() + " is covered by the allow entry " + a.str() +
                                     ": remove that first (connwatchctl disallow) if you "
                                     "really mean to block it"};
    cw_block b{};
    b.created_ns = monotonic_now_ns();
    b.expires_ns = r.duration && r.duration->count()
                       ? b.created_ns + static_cast<uint64_t>(r.duration->count()) * 1000000000ull
                       : 0;
    b.origin = CW_ORIGIN_MANUAL;
    bool ok = is_host(p) ? prog_->block_add(p.address(), b) : prog_->cidr_block_add(p, b);
    if (!ok)
        return protocol::Refusal{"the blocklist is full (max-blocks " +
                                 std::to_string(opts_.max_blocks) +
                                 "): unblock entries or raise max-blocks"};
    std::time_t expires = b.expires_ns ? wall_time_of(b.expires_ns) : 0;
    meta_[p] = {p, "manual", r.reason, std::time(nullptr), expires};
    manual_blocks_added_++;
    state_dirty_ = true;
    save_state_if_dirty();
    auto by = who(peer);
    sink_->block_added(p.str(), r.reason.empty() ? by.substr(1) : r.reason + by, expires);
    return protocol::BlockResponse{p, expires};
}

protocol::Answer<protocol::PrefixResponse> Daemon::unblock(const protocol::UnblockRequest& r,
                                                           const protocol::Peer& peer)
{
    const Cidr& p = r.prefix;
    if (!remove_block(p, "unblocked"))
        return protocol::Refusal{p.str() + " is not blocked (see connwatchctl list)"};
    save_state_if_dirty();
    sink_->block_removed(p.str(), "unblocked" + who(peer));
    return protocol::PrefixResponse{p};
}

protocol::Answer<protocol::PrefixResponse> Daemon::allow(const protocol::AllowRequest& r,
                                                         const protocol::Peer& peer)
{
    const Cidr& p = r.prefix;
    if (std::find(runtime_allow_.begin(), runtime_allow_.end(), p) == runtime_allow_.end())
        runtime_allow_.push_back(p);
    state_dirty_ = true;
    apply_allowlist();
    save_state_if_dirty();
    sink_->notice("Allowed " + p.str() + who(peer));
    return protocol::PrefixResponse{p};
}

protocol::Answer<protocol::PrefixResponse> Daemon::disallow(const protocol::DisallowRequest& r,
                                                            const protocol::Peer& peer)
{
    const Cidr& p = r.prefix;
    auto it = std::find(runtime_allow_.begin(), runtime_allow_.end(), p);
    if (it == runtime_allow_.end()) {
        if (std::find(opts_.allow.begin(), opts_.allow.end(), p) != opts_.allow.end())
            return protocol::Refusal{p.str() + " is allowed by the configuration file: remove "
                                               "it there and reload"};
        return protocol::Refusal{p.str() + " was not allowed with connwatchctl allow"};
    }
    runtime_allow_.erase(it);
    state_dirty_ = true;
    apply_allowlist();
    save_state_if_dirty();
    sink_->notice("Disallowed " + p.str() + who(peer));
    return protocol::PrefixResponse{p};
}

int Daemon::run()
{
    start();
    for (;;) {
        epoll_event evs[8];
        int n = epoll_wait(epoll_.get(), evs, 8, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            sink_->warning(std::string("epoll_wait: ") + std::strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == reader_->epoll_fd()) {
                reader_->consume();
            } else if (control_ && fd == control_->fd()) {
                control_->process();
            } else if (fd == timer_.get()) {
                on_timer();
            } else if (fd == signal_.get()) {
                signalfd_siginfo si{};
                while (read(signal_.get(), &si, sizeof(si)) == sizeof(si)) {
                    if (si.ssi_signo == SIGHUP) {
                        // Errors are logged by reload(); a signal has no one to answer.
                        reload();
                        continue;
                    }
                    // Drain what the kernel already reported, then detach
                    // (the links close in the destructor).
                    sd_notify(0, "STOPPING=1");
                    reader_->consume();
                    save_state_if_dirty();
                    sink_->notice(std::string("received ") + strsignal(si.ssi_signo) +
                                  ", detaching");
                    return 0;
                }
            }
        }
    }
}

} // namespace

std::string default_route_interface()
{
    // The IPv4 routing table; Destination 00000000 with mask 00000000 is the
    // default route. (Routes, not connections: nothing here reads connection
    // state from /proc.) Read through /proc/self: the unit's ProcSubset=pid
    // hides /proc/net, a symlink to self/net, but not the process's own
    // directory; the content is the same (this process's network namespace).
    std::ifstream in("/proc/self/net/route");
    std::string line;
    std::getline(in, line); // header
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string ifname, dest, gw, flags, refcnt, use, metric, mask;
        if (f >> ifname >> dest >> gw >> flags >> refcnt >> use >> metric >> mask &&
            dest == "00000000" && mask == "00000000")
            return ifname;
    }
    return "";
}

std::vector<Cidr> own_prefixes(std::string* error)
{
    std::vector<Cidr> out{*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1/128")};
    ifaddrs* ifa = nullptr;
    if (getifaddrs(&ifa) != 0) {
        if (error)
            *error = std::string("Cannot list this host's addresses (getifaddrs: ") +
                     std::strerror(errno) + "): only loopback is protected from blocking " +
                     "(a sandbox without AF_NETLINK does this)";
        return out;
    }
    for (auto* p = ifa; p; p = p->ifa_next) {
        if (!p->ifa_addr)
            continue;
        cw_addr raw{};
        if (p->ifa_addr->sa_family == AF_INET) {
            raw.b[10] = raw.b[11] = 0xff;
            std::memcpy(&raw.b[12], &reinterpret_cast<sockaddr_in*>(p->ifa_addr)->sin_addr, 4);
        } else if (p->ifa_addr->sa_family == AF_INET6) {
            std::memcpy(raw.b, &reinterpret_cast<sockaddr_in6*>(p->ifa_addr)->sin6_addr, 16);
        } else {
            continue;
        }
        Address a(raw);
        out.emplace_back(a, a.is_v4() ? 32 : 128);
    }
    freeifaddrs(ifa);
    return out;
}

int run_connwatchd(int argc, const char* const* argv)
{
    Options opts;
    if (auto code = parse_command_line(argc, argv, opts))
        return *code;
    if (opts.check_config) {
        // Nothing beyond parsing: no kernel, no interfaces touched.
        if (access(opts.config_file.c_str(), F_OK) == 0)
            std::printf("%s: configuration OK\n", opts.config_file.c_str());
        else
            std::printf("%s: absent, defaults apply; command line OK\n",
                        opts.config_file.c_str());
        return 0;
    }
    set_libbpf_verbose(opts.verbose);
    std::vector<std::string> args(argv, argv + argc);
    try {
        return Daemon(std::move(opts), std::move(args)).run();
    } catch (const Error& e) {
        // Logged once, here; systemctl status shows it too.
        std::fprintf(stderr, "connwatchd: %s\n", e.what());
        sd_notifyf(0, "STATUS=Failed to start: %s", e.what());
        return 1;
    }
}

} // namespace connwatch
