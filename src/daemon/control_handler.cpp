// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/control_handler.h"

#include <unistd.h>

#include <algorithm>
#include <ctime>

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
    r.crowdsec = m_.crowdsec_status();
    r.rp_filter = m_.rp_status();
    return r;
}

namespace {

// Records looked at for one page at most: a filter that matches little costs
// the event loop a bounded time per page, however long the table.
constexpr size_t kPageBudget = 16384;

// A list answer's blocks, read from the table a page at a time, each page
// where the one before stopped (BlockTable::list_page): blocks added or
// removed meanwhile are listed or not, none twice. A page of the kernel's
// walk may bring more than asked: the rest waits here for the next call. The
// table outlives the server and its clients (the Manager destroys the server
// first).
class TableCursor final : public BlockCursor {
public:
    TableCursor(const BlockTable& table, const XdpProgram& prog, BlockTable::ListFilter filter)
        : table_(table), prog_(prog), filter_(std::move(filter))
    {
    }
    bool next(std::vector<BlockEntry>& out, size_t max) override
    {
        if (carry_.empty() && !end_) {
            auto page = table_.list_page(filter_, at_, max, kPageBudget);
            at_ = page.next;
            end_ = page.end;
            carry_ = std::move(page.records);
            taken_ = 0;
        }
        const std::time_t now = std::time(nullptr);
        for (; taken_ < carry_.size() && max > 0; taken_++, max--) {
            auto& r = carry_[taken_];
            // Due but not swept yet (the sweep runs once a tick): 0, never negative.
            int64_t in = r.expires == 0 ? -1 : std::max<int64_t>(0, r.expires - now);
            uint32_t offence = r.origin == BlockOrigin::Scan ? offence_of(r.prefix) : 0;
            out.push_back(
                {r.prefix, r.origin, std::move(r.reason), r.created, r.expires, in, offence});
        }
        if (taken_ == carry_.size()) {
            carry_.clear();
            taken_ = 0;
        }
        return !(end_ && carry_.empty());
    }

private:
    // The kernel's history says which offence a scan block is, when it is
    // the history of this very block (its end is the block's deadline): a
    // history from an earlier chain, or a block made with escalation off,
    // says nothing.
    uint32_t offence_of(const Cidr& prefix) const
    {
        if (!prefix.is_host())
            return 0;
        cw_addr key = prefix.address().to_abi();
        auto o = prog_.offender(key);
        if (!o)
            return 0;
        auto b = prog_.block_get(prefix.address());
        return b && b->expires_ns == o->until_ns ? o->offences : 0;
    }

    const BlockTable& table_;
    const XdpProgram& prog_;
    BlockTable::ListFilter filter_;
    BlockTable::ListCursor at_;
    std::vector<BlockRecord> carry_;
    size_t taken_ = 0;
    bool end_ = false;
};

} // namespace

Answer<ListStream> ControlHandler::list(const ListRequest& req, const Peer&)
{
    ListStream r;
    for (const auto& [prefix, source] : m_.table().allow_entries())
        r.allow.push_back({prefix, source});
    r.blocks = std::make_unique<TableCursor>(m_.table(), m_.program(),
                                             BlockTable::ListFilter{req.origin, req.match});
    return r;
}

Answer<BlockManyResponse> ControlHandler::block_many(const BlockManyRequest& req, const Peer& p)
{
    std::vector<BlockTable::BulkItem> items;
    items.reserve(req.entries.size());
    for (const auto& e : req.entries)
        items.push_back({e.prefix, e.duration, e.reason});
    auto done = m_.table().block_many(items, req.force);
    BlockManyResponse r;
    r.added = done.added.size();
    r.present = done.present;
    for (auto& [i, why] : done.refused)
        r.refused.push_back({i, std::move(why)});
    if (r.added)
        m_.save_state();
    m_.trim_later();
    // One line a request, not one a block: an import of a million would
    // flood the journal (and its rate limit would drop the rest).
    m_.sink().notice("Blocked " + std::to_string(r.added) + " of " +
                     std::to_string(req.entries.size()) + " prefixes at once" + by(p) + ": " +
                     std::to_string(r.present) + " already blocked, " +
                     std::to_string(r.refused.size()) + " refused");
    return r;
}

Answer<UnblockManyResponse> ControlHandler::unblock_many(const UnblockManyRequest& req,
                                                         const Peer& p)
{
    auto done = m_.table().unblock_many(req.prefixes);
    if (!done.removed.empty())
        m_.save_state();
    m_.trim_later();
    m_.sink().notice("Unblocked " + std::to_string(done.removed.size()) + " of " +
                     std::to_string(req.prefixes.size()) + " prefixes at once" + by(p) + ": " +
                     std::to_string(done.absent) + " were not blocked");
    return UnblockManyResponse{done.removed.size(), done.absent};
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
    m_.sync_prefix_guard();
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
    m_.sync_prefix_guard();
    m_.save_state();
    m_.sink().notice("Disallowed " + req.prefix.str() + by(p));
    return PrefixResponse{req.prefix};
}

Handler::FlushSteps ControlHandler::flush_steps(const Peer& p)
{
    uint64_t n = m_.begin_flush(by(p));
    return [this, n]() -> std::optional<Answer<FlushResponse>> {
        if (m_.flushes_done() < n)
            m_.flush_step();
        if (m_.flushes_done() < n)
            return std::nullopt;
        return FlushResponse{m_.last_flush_removed()};
    };
}

Answer<FlushResponse> ControlHandler::flush(const Peer& p)
{
    auto step = flush_steps(p);
    for (;;)
        if (auto a = step())
            return *a;
}

Answer<ReloadResponse> ControlHandler::reload(const Peer&)
{
    auto why = m_.reload();
    if (!why.empty())
        return Refusal{why};
    return ReloadResponse{};
}

} // namespace connwatch
