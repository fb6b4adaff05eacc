// SPDX-License-Identifier: GPL-2.0-only
// The reverse-path check (rp-filter; docs/SECURITY.md, "Spoofed sources and
// decoys"): the route mirror started, followed and given up on, and each
// watched interface's mode when rp-filter follows the rp_filter sysctls.
#include <sys/epoll.h>

#include <algorithm>
#include <fstream>

#include "daemon/manager.h"
#include "daemon/route_mirror.h"
#include "kernel/attachment.h"
#include "kernel/program.h"

namespace connwatch {

namespace {

// net.ipv4.conf.NAME.rp_filter; -1 when it cannot be read.
int read_rp_sysctl(const std::string& name)
{
    std::ifstream f("/proc/sys/net/ipv4/conf/" + name + "/rp_filter");
    int v = -1;
    if (!(f >> v))
        return -1;
    return v;
}

const char* mode_name(uint32_t m)
{
    switch (m) {
    case CW_RP_STRICT: return "strict";
    case CW_RP_LOOSE: return "loose";
    default: return "off";
    }
}

} // namespace

// The kernel's own rule (IN_DEV_RPFILTER): the larger of conf/all and the
// interface's value; 1 strict, 2 loose, 0 off. IPv6 has no such sysctl: its
// sources get the same mode as the interface's IPv4 (docs/SECURITY.md).
uint32_t rp_mode_from_sysctl(int all, int iface)
{
    int v = std::max(all, iface);
    return v == 1 ? CW_RP_STRICT : v == 2 ? CW_RP_LOOSE : CW_RP_OFF;
}

cw_config Manager::config_for(const Options& o) const
{
    cw_config c = kernel_config(o);
    if (!routes_)
        c.rp_filter = CW_RP_OFF; // no mirror, no check (said when it failed)
    return c;
}

void Manager::route_mirror_failed(const std::string& why)
{
    if (routes_) {
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, routes_->fd(), nullptr);
        routes_.reset();
    }
    sink_->warning(why + ": the reverse-path check (rp-filter) is off until connwatchd "
                         "reloads or restarts; scanners are blocked without it");
    try {
        prog_->set_config(config_for(opts_));
    } catch (const Error& e) {
        sink_->error(e.what());
    }
}

void Manager::start_route_mirror(const Options& o)
{
    if (o.rp_filter == RpFilter::Off) {
        if (routes_ && epoll_)
            epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, routes_->fd(), nullptr);
        routes_.reset();
        return;
    }
    if (routes_)
        return;
    try {
        routes_ = std::make_unique<RouteMirror>(*prog_);
    } catch (const Error& e) {
        routes_.reset();
        sink_->warning(std::string(e.what()) +
                       ": the reverse-path check (rp-filter) is off; scanners are blocked "
                       "without it");
        return;
    }
    if (epoll_)
        add_fd(routes_->fd());
}

void Manager::on_routes()
{
    try {
        routes_->on_readable();
    } catch (const Error& e) {
        route_mirror_failed(e.what());
    }
}

std::string Manager::refresh_rp_interfaces()
{
    std::map<uint32_t, uint32_t> modes;
    std::string said;
    int all = read_rp_sysctl("all");
    for (const auto& l : links_) {
        uint32_t m = rp_mode_from_sysctl(all, read_rp_sysctl(l.ifname()));
        modes[static_cast<uint32_t>(l.ifindex())] = m;
        said += (said.empty() ? "" : ", ") + l.ifname() + " " + mode_name(m);
    }
    if (modes != rp_modes_) {
        prog_->set_rp_interfaces(modes);
        rp_modes_ = modes;
    }
    return said;
}

std::string Manager::rp_summary() const
{
    if (opts_.rp_filter == RpFilter::Off)
        return "off";
    if (!routes_)
        return "off (no route mirror)";
    std::string s;
    if (opts_.rp_filter == RpFilter::Auto) {
        std::string each;
        for (const auto& l : links_) {
            auto it = rp_modes_.find(static_cast<uint32_t>(l.ifindex()));
            each += (each.empty() ? "" : ", ") + l.ifname() + " " +
                    mode_name(it == rp_modes_.end() ? uint32_t{CW_RP_OFF} : it->second);
        }
        s = "as each interface's rp_filter sysctl says (" + each + ")";
    } else {
        s = to_string(opts_.rp_filter);
    }
    return s + ", over " + std::to_string(routes_->size()) + " mirrored route prefixes";
}

protocol::RpFilterStatus Manager::rp_status() const
{
    protocol::RpFilterStatus r;
    r.mode = to_string(opts_.rp_filter);
    r.active = opts_.rp_filter != RpFilter::Off && routes_;
    if (opts_.rp_filter == RpFilter::Auto)
        for (const auto& l : links_) {
            auto it = rp_modes_.find(static_cast<uint32_t>(l.ifindex()));
            r.interfaces.emplace_back(
                l.ifname(), mode_name(it == rp_modes_.end() ? uint32_t{CW_RP_OFF} : it->second));
        }
    return r;
}

} // namespace connwatch
