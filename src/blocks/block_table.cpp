// SPDX-License-Identifier: GPL-2.0-only
#include "blocks/block_table.h"

#include <algorithm>

#include "base/clock.h"
#include "base/error.h"

namespace connwatch {

BlockTable::BlockTable(BlockMaps& maps, std::string state_path)
    : maps_(maps), state_path_(std::move(state_path))
{
}

// A kernel entry with no record (the kernel made it a moment before a crash,
// before the state file was written): what the entry itself says.
BlockRecord BlockTable::record_of(const Cidr& prefix, const cw_block& b) const
{
    return {prefix, block_origin_of(b.origin), "", wall_time_of(b.created_ns),
            b.expires_ns ? wall_time_of(b.expires_ns) : 0};
}

BlockTable::Restored BlockTable::restore()
{
    Restored out;
    State st = load_state(state_path_, &out.warning);
    runtime_ = st.allow;
    auto kernel = maps_.blocks();
    std::set<Cidr> present;
    for (const auto& [c, b] : kernel)
        present.insert(c);
    std::time_t now = std::time(nullptr);
    uint64_t now_ns = monotonic_now_ns();
    for (const auto& r : st.blocks) {
        if (present.count(r.prefix)) {
            meta_[r.prefix] = r;
            continue;
        }
        // Manual blocks and mirrored CrowdSec decisions outlive a reboot (the
        // decisions until the first pull from the LAPI says which still
        // stand); scan blocks end with the pins.
        if (r.origin == BlockOrigin::Scan || (r.expires != 0 && r.expires <= now))
            continue;
        cw_block b{};
        b.created_ns = now_ns;
        b.expires_ns = monotonic_deadline_of(r.expires, now, now_ns);
        b.origin = static_cast<uint8_t>(r.origin);
        if (maps_.add_block(r.prefix, b)) {
            meta_[r.prefix] = r;
            (r.origin == BlockOrigin::Manual ? out.restored : out.restored_crowdsec)++;
        }
    }
    for (const auto& [c, b] : kernel)
        if (!meta_.count(c))
            meta_[c] = record_of(c, b);
    out.kept = kernel.size();
    mark_dirty();
    return out;
}

// ---- the allowlist ---------------------------------------------------------------

std::set<Cidr> BlockTable::wanted(const std::vector<Cidr>& runtime) const
{
    std::set<Cidr> w(configured_.begin(), configured_.end());
    w.insert(runtime.begin(), runtime.end());
    w.insert(own_.begin(), own_.end());
    return w;
}

std::string BlockTable::apply(const std::set<Cidr>& wanted, std::vector<Cidr>* lifted)
{
    // Checked first, so that a configuration that cannot fit changes nothing.
    if (wanted.size() > maps_.allow_capacity())
        return std::to_string(wanted.size()) +
               " allow entries (configured, added with connwatchctl, and this host's own "
               "addresses) do not fit the allowlist, which holds at most " +
               std::to_string(maps_.allow_capacity()) + ": remove some";
    auto current = maps_.allow_list();
    std::set<Cidr> have(current.begin(), current.end());
    // Removals first, to make room; undone if an addition fails after all.
    std::vector<Cidr> removed, added;
    for (const auto& c : have)
        if (!wanted.count(c) && maps_.remove_allow(c))
            removed.push_back(c);
    try {
        for (const auto& c : wanted)
            if (!have.count(c)) {
                maps_.add_allow(c);
                added.push_back(c);
            }
    } catch (const Error& e) {
        for (const auto& c : added)
            maps_.remove_allow(c);
        for (const auto& c : removed) {
            try {
                maps_.add_allow(c);
            } catch (const Error&) {
                // It was there a moment ago; nothing better to do than go on.
            }
        }
        return e.what();
    }
    applied_ = wanted;
    // The allowlist wins: blocks an entry now covers are lifted.
    for (const auto& block : maps_.blocks()) {
        // Not a structured binding: a lambda may capture one only from C++20 on
        // in clang 16, and the sanitizer and fuzz builds use clang 14.
        const Cidr& prefix = block.first;
        bool covered = std::any_of(wanted.begin(), wanted.end(),
                                   [&](const Cidr& a) { return a.covers(prefix); });
        if (covered && remove(prefix, RemovalReason::Allowlisted) && lifted)
            lifted->push_back(prefix);
    }
    return "";
}

BlockTable::AllowUpdate BlockTable::set_allow_sources(std::vector<Cidr> configured,
                                                      std::vector<Cidr> own)
{
    std::swap(configured_, configured);
    std::swap(own_, own);
    AllowUpdate u;
    u.error = apply(wanted(runtime_), &u.lifted);
    if (!u.error.empty()) {
        std::swap(configured_, configured);
        std::swap(own_, own);
    }
    return u;
}

BlockTable::AllowUpdate BlockTable::allow(const Cidr& prefix)
{
    auto runtime = runtime_;
    if (std::find(runtime.begin(), runtime.end(), prefix) == runtime.end())
        runtime.push_back(prefix);
    AllowUpdate u;
    u.error = apply(wanted(runtime), &u.lifted);
    if (u.error.empty()) {
        runtime_ = std::move(runtime);
        mark_dirty();
    }
    return u;
}

BlockTable::AllowUpdate BlockTable::disallow(const Cidr& prefix)
{
    AllowUpdate u;
    auto it = std::find(runtime_.begin(), runtime_.end(), prefix);
    if (it == runtime_.end()) {
        if (std::find(configured_.begin(), configured_.end(), prefix) != configured_.end())
            u.error = prefix.str() + " is allowed by the configuration file: remove it there "
                                     "and reload";
        else
            u.error = prefix.str() + " was not allowed with connwatchctl allow";
        return u;
    }
    auto runtime = runtime_;
    runtime.erase(runtime.begin() + (it - runtime_.begin()));
    u.error = apply(wanted(runtime), &u.lifted);
    if (u.error.empty()) {
        runtime_ = std::move(runtime);
        mark_dirty();
    }
    return u;
}

std::vector<std::pair<Cidr, AllowSource>> BlockTable::allow_entries() const
{
    auto has = [](const std::vector<Cidr>& v, const Cidr& c) {
        return std::find(v.begin(), v.end(), c) != v.end();
    };
    std::vector<std::pair<Cidr, AllowSource>> out;
    for (const auto& c : applied_)
        out.emplace_back(c, has(runtime_, c)      ? AllowSource::Connwatchctl
                            : has(configured_, c) ? AllowSource::Configuration
                                                  : AllowSource::OwnAddress);
    return out;
}

std::optional<Cidr> BlockTable::allow_covering(const Cidr& prefix) const
{
    for (const auto& a : applied_)
        if (a.covers(prefix))
            return a;
    return std::nullopt;
}

// ---- blocks ----------------------------------------------------------------------

std::string BlockTable::danger(const Cidr& prefix) const
{
    // An operator's typo (a /0 for a /32, the wrong prefix length) must not
    // cut off a whole Internet, or the operator: these need --force.
    const unsigned widest = prefix.address().is_v4() ? 8 : 16;
    std::string why;
    if (prefix.length() < widest)
        why = "it is wider than /" + std::to_string(widest);
    for (const auto& own : own_) {
        if (!prefix.covers(own))
            continue;
        why += (why.empty() ? "it covers " : ", and covers ") + own.str() +
               ", an address of this host";
        break;
    }
    return why;
}

std::variant<BlockRecord, std::string> BlockTable::block(const Cidr& prefix,
                                                         std::optional<std::chrono::seconds> duration,
                                                         std::string reason, bool force)
{
    if (auto a = allow_covering(prefix))
        return prefix.str() + " is covered by the allow entry " + a->str() +
               ": remove that first (connwatchctl disallow) if you really mean to block it";
    if (!force)
        if (auto why = danger(prefix); !why.empty())
            return "not blocking " + prefix.str() + ": " + why +
                   "; repeat with --force (\"force\": true) if you really mean it";
    cw_block b{};
    b.created_ns = monotonic_now_ns();
    b.expires_ns = deadline_ns(b.created_ns, duration.value_or(std::chrono::seconds(0)));
    b.origin = CW_ORIGIN_MANUAL;
    if (!maps_.add_block(prefix, b)) {
        if (prefix.is_host())
            return "the blocklist is full (max-blocks " +
                   std::to_string(maps_.host_block_capacity()) +
                   "): unblock entries or raise max-blocks";
        return "the CIDR blocklist is full (" + std::to_string(maps_.cidr_block_capacity()) +
               " prefixes): unblock entries";
    }
    BlockRecord r{prefix, BlockOrigin::Manual, std::move(reason), std::time(nullptr),
                  b.expires_ns ? wall_time_of(b.expires_ns) : 0};
    meta_[prefix] = r;
    manual_added_++;
    mark_dirty();
    return r;
}

bool BlockTable::remove(const Cidr& prefix, RemovalReason why)
{
    if (!maps_.remove_block(prefix))
        return false;
    // Whatever ended the block, the source is judged afresh from its next
    // port: its scan state would otherwise still say "reported in this
    // window" and let it scan again unseen. (Prefix blocks are never made by
    // a scan, and the state is per address.)
    if (prefix.is_host())
        maps_.reset_scan_state(prefix.address());
    meta_.erase(prefix);
    removed_[why]++;
    mark_dirty();
    return true;
}

bool BlockTable::unblock(const Cidr& prefix)
{
    return remove(prefix, RemovalReason::Unblocked);
}

std::vector<Cidr> BlockTable::flush()
{
    std::vector<Cidr> out;
    for (const auto& [prefix, b] : maps_.blocks())
        if (remove(prefix, RemovalReason::Flushed))
            out.push_back(prefix);
    return out;
}

void BlockTable::record_scan_block(const Address& src, std::string reason, std::time_t created,
                                   std::time_t expires)
{
    Cidr host = Cidr::host(src);
    meta_[host] = {host, BlockOrigin::Scan, std::move(reason), created, expires};
    mark_dirty();
}

// ---- CrowdSec decisions ---------------------------------------------------------

BlockTable::Mirror BlockTable::mirror(const Cidr& prefix, std::chrono::seconds remaining,
                                      std::string reason)
{
    Mirror m;
    if (auto a = allow_covering(prefix)) {
        m.why = "covered by the allow entry " + a->str();
        return m;
    }
    if (auto why = danger(prefix); !why.empty()) {
        m.why = why;
        return m;
    }
    cw_block b{};
    b.created_ns = monotonic_now_ns();
    b.expires_ns = deadline_ns(b.created_ns, std::max(remaining, std::chrono::seconds(1)));
    b.origin = CW_ORIGIN_CROWDSEC;
    std::time_t expires = wall_time_of(b.expires_ns);
    // The records, not the kernel's maps: a community blocklist brings tens of
    // thousands of decisions, and each must not walk the lists.
    auto it = meta_.find(prefix);
    bool existed = it != meta_.end();
    if (existed && (it->second.origin == BlockOrigin::Manual ||
                    (it->second.origin == BlockOrigin::Scan &&
                     (it->second.expires == 0 || it->second.expires >= expires)))) {
        m.outcome = Mirror::Outcome::Kept;
        return m;
    }
    if (!maps_.add_block(prefix, b)) {
        m.why = prefix.is_host() ? "the blocklist is full (max-blocks " +
                                       std::to_string(maps_.host_block_capacity()) + ")"
                                 : "the CIDR blocklist is full (" +
                                       std::to_string(maps_.cidr_block_capacity()) +
                                       " prefixes)";
        return m;
    }
    meta_[prefix] = {prefix, BlockOrigin::Crowdsec, std::move(reason), std::time(nullptr),
                     expires};
    mark_dirty();
    m.outcome = existed ? Mirror::Outcome::Updated : Mirror::Outcome::Added;
    return m;
}

bool BlockTable::withdraw(const Cidr& prefix)
{
    auto it = meta_.find(prefix);
    return it != meta_.end() && it->second.origin == BlockOrigin::Crowdsec &&
           remove(prefix, RemovalReason::Withdrawn);
}

std::vector<Cidr> BlockTable::mirrored() const
{
    std::vector<Cidr> out;
    for (const auto& [c, r] : meta_)
        if (r.origin == BlockOrigin::Crowdsec)
            out.push_back(c);
    return out;
}

BlockTable::Sweep BlockTable::sweep_expired(uint64_t now_ns)
{
    Sweep s;
    for (const auto& [prefix, b] : maps_.blocks()) {
        if (b.expires_ns != 0 && b.expires_ns <= now_ns && remove(prefix, RemovalReason::Expired)) {
            s.expired.push_back({prefix, wall_time_of(b.expires_ns)});
            continue;
        }
        s.left.count(block_origin_of(b.origin));
    }
    return s;
}

// ---- views -----------------------------------------------------------------------

std::vector<BlockView> BlockTable::list() const
{
    std::vector<BlockView> rows;
    for (const auto& [prefix, b] : maps_.blocks()) {
        auto it = meta_.find(prefix);
        rows.push_back({it != meta_.end() ? it->second : record_of(prefix, b), b.expires_ns});
    }
    std::sort(rows.begin(), rows.end(), [](const BlockView& a, const BlockView& b) {
        uint64_t ea = a.expires_ns ? a.expires_ns : UINT64_MAX;
        uint64_t eb = b.expires_ns ? b.expires_ns : UINT64_MAX;
        return ea != eb ? ea < eb : a.record.prefix < b.record.prefix;
    });
    return rows;
}

BlockCounts BlockTable::counts() const
{
    BlockCounts n;
    for (const auto& [prefix, b] : maps_.blocks())
        n.count(block_origin_of(b.origin));
    return n;
}

uint64_t BlockTable::removed(RemovalReason r) const
{
    auto it = removed_.find(r);
    return it == removed_.end() ? 0 : it->second;
}

// ---- persistence -----------------------------------------------------------------

void BlockTable::mark_dirty()
{
    dirty_ = true;
    unsaid_change_ = true;
}

BlockTable::Save BlockTable::save_if_dirty()
{
    if (!dirty_)
        return {};
    State st;
    for (const auto& [c, r] : meta_)
        st.blocks.push_back(r);
    st.allow = runtime_;
    Save out;
    try {
        save_state(state_path_, st);
    } catch (const Error& e) {
        out.error = e.what();
        // Retried every second: the same failure of the same changes is said once.
        out.say = out.error != save_error_ || unsaid_change_;
        save_error_ = out.error;
        unsaid_change_ = false;
        return out;
    }
    dirty_ = false;
    unsaid_change_ = false;
    out.recovered = out.say = !save_error_.empty();
    save_error_.clear();
    return out;
}

} // namespace connwatch
