// SPDX-License-Identifier: GPL-2.0-only
// The Manager's interfaces: attached at start, changed by a reload, followed
// when the kernel deletes one and it comes back (daemon/link_monitor.h).
#include <net/if.h>

#include <algorithm>
#include <set>

#include "daemon/manager.h"
#include "kernel/attachment.h"

namespace connwatch {



// Detaches the interfaces no longer wanted, attaches the new ones; the others
// keep their links (and so keep judging packets) throughout.
void Manager::apply_interfaces(const std::vector<std::string>& wanted)
{
    wanted_ = wanted;
    attach_failed_.clear(); // a reload retries what failed
    sync_interfaces();
}

void Manager::sync_interfaces()
{
    std::set<std::string> want(wanted_.begin(), wanted_.end());
    std::erase_if(links_, [&](XdpAttachment& l) {
        bool drop = false;
        if (!want.count(l.ifname())) {
            drop = true; // no longer configured
        } else if (if_nametoindex(l.ifname().c_str()) != static_cast<unsigned>(l.ifindex())) {
            // The kernel detached the program with the device; the link is dead.
            sink_->warning("Interface '" + l.ifname() +
                           "' is gone: not watched until it is back (it will be attached again)");
            drop = true;
        }
        if (drop)
            l.detach(); // its pin too: nothing must take it over later
        return drop;
    });
    for (const auto& name : wanted_) {
        bool have = std::any_of(links_.begin(), links_.end(),
                                [&](const XdpAttachment& l) { return l.ifname() == name; });
        unsigned index = if_nametoindex(name.c_str());
        if (have || index == 0)
            continue;
        auto failed = attach_failed_.find(name);
        if (failed != attach_failed_.end() && failed->second == index)
            continue; // said already; a reload or a new device retries
        try {
            attach(name);
            attach_failed_.erase(name);
            sink_->notice("Interface '" + name + "' is watched (" + to_string(links_.back().mode()) +
                          ")");
        } catch (const Error& e) {
            attach_failed_[name] = index;
            sink_->error(e.what());
        }
    }
}

std::vector<std::string> Manager::missing_interfaces() const
{
    std::vector<std::string> out;
    for (const auto& name : wanted_)
        if (std::none_of(links_.begin(), links_.end(),
                         [&](const XdpAttachment& l) { return l.ifname() == name; }))
            out.push_back(name);
    return out;
}

} // namespace connwatch
