// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/control_handler.h"

#include <unistd.h>

#include "base/clock.h"
#include "common/duration.h"
#include "daemon/manager.h"
#include "kernel/attachment.h"
#include "kernel/program.h"

namespace connwatch {

using namespace protocol;

namespace {

// Who asked, for the log: " (by uid 0, pid 1234)".
std::string by(const Peer& p)
{
    return " (by uid " + std::to_string(p.uid) + ", pid " + std::to_string(p.pid) + ")";
}

} // namespace

Answer<StatusResponse> ControlHandler::status(const Peer&)
{
    const auto& o = m_.options();
    StatusResponse r;
    r.version = CONNWATCH_VERSION;
    r.pid = getpid();
    for (const auto& l : m_.links())
        r.interfaces.push_back({l.ifname(), to_string(l.mode())});
    r.missing_interfaces = m_.missing_interfaces();
    r.threshold = o.threshold;
    r.window = format_duration(o.window);
    r.block_duration = format_duration(o.block_duration);
    r.monitor_only = o.monitor_only;
    r.max_blocks = o.max_blocks;
    r.blocks = m_.table().counts().total();
    r.allow = m_.table().allow_size();
    auto st = m_.program().stats();
    for (const auto& s : stat_table())
        r.counters.emplace_back(std::string(s.name), st[s.id]);
    return r;
}

Answer<ListResponse> ControlHandler::list(const Peer&)
{
    ListResponse r;
    uint64_t now = monotonic_now_ns();
    for (const auto& v : m_.table().list()) {
        const auto& m = v.record;
        // Due but not swept yet (the sweep runs once a tick): 0, never a wrapped count.
        int64_t in = !v.expires_ns      ? -1
                     : v.expires_ns <= now ? 0
                                           : static_cast<int64_t>((v.expires_ns - now) / kNsPerSec);
        r.blocks.push_back({m.prefix, m.origin, m.reason, m.created, m.expires, in});
    }
    for (const auto& [prefix, source] : m_.table().allow_entries())
        r.allow.push_back({prefix, source});
    return r;
}

Answer<BlockResponse> ControlHandler::block(const BlockRequest& req, const Peer& p)
{
    auto made = m_.table().block(req.prefix, req.duration, req.reason, req.force);
    if (auto* why = std::get_if<std::string>(&made))
        return Refusal{*why};
    const auto& rec = std::get<BlockRecord>(made);
    m_.save_state();
    auto who = by(p);
    m_.sink().block_added(req.prefix.str(), req.reason.empty() ? who.substr(1) : req.reason + who,
                          rec.expires);
    return BlockResponse{req.prefix, rec.expires};
}

Answer<PrefixResponse> ControlHandler::unblock(const UnblockRequest& req, const Peer& p)
{
    if (!m_.table().unblock(req.prefix))
        return Refusal{req.prefix.str() + " is not blocked (see connwatchctl list)"};
    m_.save_state();
    m_.sink().block_removed(req.prefix.str(), "unblocked" + by(p));
    return PrefixResponse{req.prefix};
}

Answer<PrefixResponse> ControlHandler::allow(const AllowRequest& req, const Peer& p)
{
    auto u = m_.table().allow(req.prefix);
    if (!u.error.empty())
        return Refusal{u.error};
    m_.report_lifted(u.lifted, "");
    m_.save_state();
    m_.sink().notice("Allowed " + req.prefix.str() + by(p));
    return PrefixResponse{req.prefix};
}

Answer<PrefixResponse> ControlHandler::disallow(const DisallowRequest& req, const Peer& p)
{
    auto u = m_.table().disallow(req.prefix);
    if (!u.error.empty())
        return Refusal{u.error};
    m_.save_state();
    m_.sink().notice("Disallowed " + req.prefix.str() + by(p));
    return PrefixResponse{req.prefix};
}

Answer<FlushResponse> ControlHandler::flush(const Peer& p)
{
    auto removed = m_.table().flush();
    for (const auto& c : removed)
        m_.sink().block_removed(c.str(), "flushed" + by(p));
    m_.save_state();
    return FlushResponse{removed.size()};
}

Answer<ReloadResponse> ControlHandler::reload(const Peer&)
{
    auto why = m_.reload();
    if (!why.empty())
        return Refusal{why};
    return ReloadResponse{};
}

} // namespace connwatch
