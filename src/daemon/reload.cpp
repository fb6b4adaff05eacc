// SPDX-License-Identifier: GPL-2.0-only
// Manager::reload: what a new configuration changes at once, what waits for a
// restart, and the order that lets a refused reload change nothing.
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <set>

#include "base/clock.h"
#include "crowdsec/client.h"
#include "daemon/host.h"
#include "daemon/manager.h"
#include "kernel/attachment.h"
#include "kernel/program.h"

namespace connwatch {

namespace {

std::string names(const std::vector<std::string>& list)
{
    std::string out;
    for (const auto& n : list)
        out += (out.empty() ? "" : ", ") + n;
    return out;
}

} // namespace

// SIGHUP: re-read the configuration and apply it without dropping blocks or
// detaching unchanged interfaces. Anything invalid keeps the running one.
std::string Manager::reload()
{
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               static_cast<unsigned long long>(monotonic_now_ns() / 1000));
    auto fail = [this](const std::string& why) {
        sink_->error("Reload failed, keeping the running configuration: " + why);
        sd_notifyf(0, "READY=1\nSTATUS=%s", status_.c_str());
        return why;
    };

    std::vector<const char*> argv;
    for (const auto& a : args_)
        argv.push_back(a.c_str());
    Options next;
    std::string why;
    if (parse_command_line(static_cast<int>(argv.size()), argv.data(), next, opts_.config_file,
                           &why))
        return fail(why);
    // No interface in a file that named some is far likelier a file caught
    // half-written (or an edit gone wrong) than a wish to move to the default
    // route's interface: attaching to the host's main interface on a reload
    // would surprise everyone. A start picks the default; a reload never does.
    if (next.interfaces.empty() && !opts_.interfaces.empty())
        return fail("the configuration names no interface, and connwatchd watches " +
                    names(opts_.interfaces) +
                    ": name the interfaces to watch (interface = IF), or restart "
                    "connwatchd to watch the default route's interface");
    std::vector<std::string> interfaces;
    std::optional<crowdsec::Settings> crowdsec;
    try {
        interfaces = resolve_interfaces(next.interfaces);
        // The key and credential files are read again: a rotated key is taken
        // at reload. Unreadable, the reload is refused like a bad file.
        crowdsec = crowdsec_settings(next);
    } catch (const Error& e) {
        return fail(e.what());
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
    restart_only("max-cidr-blocks", next.max_cidr_blocks, opts_.max_cidr_blocks);
    restart_only("control-socket", next.control_socket, opts_.control_socket);
    restart_only("control-group", next.control_group, opts_.control_group);
    restart_only("state-dir", next.state_dir, opts_.state_dir);
    restart_only("pin-dir", next.pin_dir, opts_.pin_dir);
    restart_only("metrics-listen", next.metrics_listen, opts_.metrics_listen);

    // The allowlist first: it is the one part that can still be refused (more
    // entries than the trie holds), and then nothing has changed yet.
    auto own = own_addresses(next.allow_own_addresses);
    auto allowed = table_->set_allow_sources(next.allow, own);
    if (!allowed.error.empty())
        return fail(allowed.error);
    auto previous_own = std::exchange(own_, own);
    sync_prefix_guard(next);
    report_stuck_prefix_blocks(table_->move_prefix_blocks(next.ipv4_prefix, next.ipv6_prefix));
    start_route_mirror(next);
    try {
        prog_->set_config(config_for(next));
    } catch (const Error& e) {
        own_ = previous_own;
        table_->set_allow_sources(opts_.allow, own_);
        sync_prefix_guard();
        return fail(e.what());
    }
    report_lifted(allowed.lifted, "");

    if (next.xdp_mode != opts_.xdp_mode)
        sink_->warning("xdp-mode applies to interfaces attached from now on; restart to "
                       "re-attach the others");
    if (next.log_target != opts_.log_target)
        sink_ = make_sink(next.log_target);
    bool escalation_on = next.escalation_window.count() && !opts_.escalation_window.count();
    opts_ = std::move(next);
    if (escalation_on)
        restore_offenders();
    if (auto w = escalation_warning(opts_); !w.empty())
        sink_->warning(w);
    apply_interfaces(interfaces);
    refresh_rp_interfaces();
    sink_->notice("Reverse-path check of scanners (rp-filter): " + rp_summary());
    // A worker with new settings starts over with a full pull; unchanged, the
    // running one goes on.
    apply_crowdsec(std::move(crowdsec));
    save_state();

    status_ = summary();
    sink_->reloaded("Reloaded, " + status_);
    sd_notifyf(0, "READY=1\nSTATUS=%s", status_.c_str());
    return "";
}

} // namespace connwatch
