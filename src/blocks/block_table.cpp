// SPDX-License-Identifier: GPL-2.0-only
#include "blocks/block_table.h"

#include <algorithm>

#include "base/clock.h"
#include "base/error.h"

namespace connwatch {

BlockTable::BlockTable(BlockMaps& maps, std::string state_path)
    : maps_(maps), state_path_(std::move(state_path)), file_(state_path_)
{
}

namespace {

// The journal is rewritten as a snapshot once it holds more lines than this,
// or than there are blocks: a change costs one line, amortized, and a start
// replays at most about as many lines as the snapshot has records.
constexpr std::size_t kMinJournalLines = 4096;

} // namespace

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
    State st = file_.load(&out.warning);
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
        // Only manual blocks outlive a reboot; scan blocks end with the pins.
        if (r.origin != BlockOrigin::Manual || (r.expires != 0 && r.expires <= now))
            continue;
        cw_block b{};
        b.created_ns = now_ns;
        b.expires_ns = monotonic_deadline_of(r.expires, now, now_ns);
        b.origin = CW_ORIGIN_MANUAL;
        if (maps_.add_block(r.prefix, b)) {
            meta_[r.prefix] = r;
            out.restored++;
        }
    }
    for (const auto& [c, b] : kernel)
        if (!meta_.count(c))
            meta_[c] = record_of(c, b);
    out.kept = kernel.size();
    rewrite_ = true; // what was read, as it is now: one snapshot, no journal
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
        note(journal_allow(runtime_));
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
        note(journal_allow(runtime_));
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

std::string BlockTable::refusal(const Cidr& prefix, bool force) const
{
    if (auto a = allow_covering(prefix))
        return prefix.str() + " is covered by the allow entry " + a->str() +
               ": remove that first (connwatchctl disallow) if you really mean to block it";
    if (!force)
        if (auto why = danger(prefix); !why.empty())
            return "not blocking " + prefix.str() + ": " + why +
                   "; repeat with --force (\"force\": true) if you really mean it";
    return "";
}

std::string BlockTable::full_message(const Cidr& prefix) const
{
    if (prefix.is_host())
        return "the blocklist is full (max-blocks " + std::to_string(maps_.host_block_capacity()) +
               "): unblock entries or raise max-blocks";
    return "the CIDR blocklist is full (" + std::to_string(maps_.cidr_block_capacity()) +
           " prefixes): unblock entries";
}

std::variant<BlockRecord, std::string> BlockTable::block(const Cidr& prefix,
                                                         std::optional<std::chrono::seconds> duration,
                                                         std::string reason, bool force)
{
    if (auto why = refusal(prefix, force); !why.empty())
        return why;
    cw_block b{};
    b.created_ns = monotonic_now_ns();
    b.expires_ns = deadline_ns(b.created_ns, duration.value_or(std::chrono::seconds(0)));
    b.origin = CW_ORIGIN_MANUAL;
    if (!maps_.add_block(prefix, b))
        return full_message(prefix);
    BlockRecord r{prefix, BlockOrigin::Manual, std::move(reason), std::time(nullptr),
                  b.expires_ns ? wall_time_of(b.expires_ns) : 0};
    meta_[prefix] = r;
    manual_added_++;
    note(journal_add(r));
    return r;
}

bool BlockTable::remove(const Cidr& prefix, RemovalReason why)
{
    if (!maps_.remove_block(prefix))
        return false;
    forget(prefix, why);
    return true;
}

void BlockTable::forget(const Cidr& prefix, RemovalReason why)
{
    // Whatever ended the block, the source is judged afresh from its next
    // port: its scan state would otherwise still say "reported in this
    // window" and let it scan again unseen. (Prefix blocks are never made by
    // a scan, and the state is per address.)
    if (prefix.is_host())
        maps_.reset_scan_state(prefix.address());
    meta_.erase(prefix);
    removed_[why]++;
    note(journal_remove(prefix));
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
    note(journal_add(meta_[host]));
}

BlockTable::Sweep BlockTable::sweep_expired(uint64_t now_ns)
{
    Sweep s;
    for (const auto& [prefix, b] : maps_.blocks()) {
        if (b.expires_ns != 0 && b.expires_ns <= now_ns && remove(prefix, RemovalReason::Expired)) {
            s.expired.push_back({prefix, wall_time_of(b.expires_ns)});
            continue;
        }
        (block_origin_of(b.origin) == BlockOrigin::Manual ? s.left.manual : s.left.scan)++;
    }
    return s;
}

// ---- many at once ---------------------------------------------------------------

BlockTable::BulkResult BlockTable::block_many(const std::vector<BulkItem>& items, bool force)
{
    BulkResult out;
    // The entries the kernel is asked for, and their index in items.
    std::vector<std::pair<Cidr, cw_block>> batch;
    std::vector<size_t> index;
    std::set<Cidr> seen;
    const uint64_t now_ns = monotonic_now_ns();
    for (size_t i = 0; i < items.size(); i++) {
        const auto& it = items[i];
        // An existing block is left as it is (its expiry, its reason): an
        // import run again changes nothing.
        if (meta_.count(it.prefix) || !seen.insert(it.prefix).second) {
            out.present++;
            continue;
        }
        if (auto why = refusal(it.prefix, force); !why.empty()) {
            out.refused.emplace_back(i, std::move(why));
            continue;
        }
        cw_block b{};
        b.created_ns = now_ns;
        b.expires_ns = deadline_ns(now_ns, it.duration.value_or(std::chrono::seconds(0)));
        b.origin = CW_ORIGIN_MANUAL;
        batch.emplace_back(it.prefix, b);
        index.push_back(i);
    }
    auto done = maps_.add_blocks(batch);
    const std::time_t now = std::time(nullptr);
    for (size_t k = 0; k < batch.size(); k++) {
        const auto& [prefix, b] = batch[k];
        if (k >= done.size() || !done[k]) {
            out.refused.emplace_back(index[k], full_message(prefix));
            continue;
        }
        BlockRecord r{prefix, BlockOrigin::Manual, items[index[k]].reason, now,
                      b.expires_ns ? wall_time_of(b.expires_ns) : 0};
        meta_[prefix] = r;
        note(journal_add(r));
        out.added.push_back(std::move(r));
        manual_added_++;
    }
    std::sort(out.refused.begin(), out.refused.end());
    return out;
}

BlockTable::BulkRemoval BlockTable::unblock_many(const std::vector<Cidr>& prefixes)
{
    BulkRemoval out;
    // Only what the table knows of goes into the batch: a batch delete stops
    // at the first key that is not there.
    std::vector<Cidr> known;
    std::set<Cidr> seen;
    for (const auto& p : prefixes) {
        if (!seen.insert(p).second)
            continue;
        if (meta_.count(p))
            known.push_back(p);
        else if (maps_.remove_block(p)) { // in the kernel all the same (no record yet)
            forget(p, RemovalReason::Unblocked);
            out.removed.push_back(p);
        }
    }
    auto done = maps_.remove_blocks(known);
    for (size_t k = 0; k < known.size(); k++) {
        if (k < done.size() && done[k]) {
            forget(known[k], RemovalReason::Unblocked);
            out.removed.push_back(known[k]);
        }
    }
    out.absent = prefixes.size() - out.removed.size();
    return out;
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

bool BlockTable::ListFilter::passes(const BlockRecord& r) const
{
    if (origin && r.origin != *origin)
        return false;
    // Two prefixes overlap exactly when one covers the other.
    if (match && !match->covers(r.prefix) && !r.prefix.covers(*match))
        return false;
    return true;
}

BlockTable::ListPage BlockTable::list_page(const ListFilter& filter,
                                           const std::optional<Cidr>& after, size_t max,
                                           size_t budget) const
{
    ListPage page;
    page.last = after;
    // meta_ is ordered by prefix: a page resumes in O(log n), whatever was
    // added or removed since the last one.
    auto it = after ? meta_.upper_bound(*after) : meta_.begin();
    for (; it != meta_.end() && page.records.size() < max && budget > 0; ++it, budget--) {
        page.last = it->first;
        if (filter.passes(it->second))
            page.records.push_back(it->second);
    }
    page.end = it == meta_.end();
    return page;
}

BlockCounts BlockTable::counts() const
{
    BlockCounts n;
    for (const auto& [prefix, b] : maps_.blocks())
        (block_origin_of(b.origin) == BlockOrigin::Manual ? n.manual : n.scan)++;
    return n;
}

uint64_t BlockTable::removed(RemovalReason r) const
{
    auto it = removed_.find(r);
    return it == removed_.end() ? 0 : it->second;
}

// ---- persistence -----------------------------------------------------------------

void BlockTable::note(std::string line)
{
    // A snapshot is due anyway: the lines would only be thrown away.
    if (!rewrite_) {
        pending_ += line;
        pending_lines_++;
    }
    mark_dirty();
}

void BlockTable::mark_dirty()
{
    dirty_ = true;
    unsaid_change_ = true;
}

BlockTable::Save BlockTable::save_if_dirty()
{
    if (!dirty_ && !file_.unsynced())
        return {};
    if (file_.journal_lines() + pending_lines_ > std::max(kMinJournalLines, meta_.size()))
        rewrite_ = true;
    Save out;
    try {
        auto snapshot = [&] {
            State st;
            st.blocks.reserve(meta_.size());
            for (const auto& [c, r] : meta_)
                st.blocks.push_back(r);
            st.allow = runtime_;
            file_.rewrite(st);
        };
        if (!rewrite_) {
            try {
                file_.append(pending_, pending_lines_);
                const uint64_t now = monotonic_now_ns();
                if (now - synced_ns_ >= kNsPerSec) {
                    file_.sync();
                    synced_ns_ = now;
                }
            } catch (const Error&) {
                // What the journal got of it is unknown (half a line?): a
                // snapshot, which empties it, or the snapshot's error.
                rewrite_ = true;
            }
        }
        if (rewrite_)
            snapshot();
        rewrite_ = false;
        pending_.clear();
        pending_lines_ = 0;
    } catch (const Error& e) {
        rewrite_ = true; // the retry writes a snapshot

        pending_.clear();
        pending_lines_ = 0;
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
