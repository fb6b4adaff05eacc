// SPDX-License-Identifier: GPL-2.0-only
#include "blocks/block_table.h"

#include <algorithm>
#include <cstring>

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

BlockRecord BlockTable::record_for(const Cidr& prefix, const cw_block& b) const
{
    if (auto m = meta_.find(prefix); m != meta_.end())
        return m->second;
    if (prefix.is_host())
        if (const HostEntry* e = hosts_.find(prefix.address().to_abi()); e && e->shared) {
            const Shared& r = shared_[e->shared];
            return {prefix, BlockOrigin::Manual, r.reason, r.created, r.expires};
        }
    return record_of(prefix, b);
}

std::optional<BlockRecord> BlockTable::record(const Cidr& prefix) const
{
    if (!present(prefix))
        return std::nullopt;
    if (!prefix.is_host())
        return record_for(prefix, cidrs_.at(prefix));
    auto b = maps_.find_host_block(prefix.address().to_abi());
    if (!b) { // indexed, gone from the kernel a moment ago: what the index says
        const HostEntry* e = hosts_.find(prefix.address().to_abi());
        b = cw_block{};
        b->origin = e->origin;
    }
    return record_for(prefix, *b);
}

uint16_t BlockTable::share(const BlockRecord& r)
{
    auto key = std::make_tuple(r.reason, r.created, r.expires);
    if (auto it = shared_ids_.find(key); it != shared_ids_.end()) {
        shared_[it->second].refs++;
        return it->second;
    }
    uint16_t id = 0;
    if (!shared_free_.empty()) {
        id = shared_free_.back();
        shared_free_.pop_back();
    } else if (shared_.size() <= kMaxSharedRecords) {
        id = static_cast<uint16_t>(shared_.size());
        shared_.emplace_back();
    } else {
        return 0;
    }
    shared_[id] = {r.reason, r.created, r.expires, 1};
    shared_ids_.emplace(std::move(key), id);
    return id;
}

bool BlockTable::unshare(HostEntry& e)
{
    if (!e.shared)
        return false;
    Shared& r = shared_[e.shared];
    if (--r.refs == 0) {
        shared_ids_.erase(std::make_tuple(r.reason, r.created, r.expires));
        r = Shared{};
        shared_free_.push_back(e.shared);
    }
    e.shared = 0;
    shared_blocks_--;
    return true;
}

BlockTable::Restored BlockTable::restore()
{
    Restored out;
    State st = file_.load(&out.warning);
    runtime_ = st.allow;
    hosts_.clear();
    cidrs_.clear();
    cidr_due_.clear();
    cidr_scan_ = cidr_crowdsec_ = 0;
    meta_.clear();
    scan_records_ = 0;
    shared_.assign(1, Shared{});
    shared_free_.clear();
    shared_ids_.clear();
    shared_blocks_ = 0;
    flush_.reset();
    round_open_ = false;
    reconcile_cursor_ = 0;
    // The one walk of the blocklist: batched, straight into the index.
    maps_.for_each_block(
        [&](const cw_addr& k, const cw_block& b) { hosts_.put(k, b.expires_ns, b.origin); },
        [&](const Cidr& c, const cw_block& b) { note_block(c, b); });
    hosts_.compact();
    out.kept = hosts_.size() + cidrs_.size();
    std::time_t now = std::time(nullptr);
    uint64_t now_ns = monotonic_now_ns();
    for (auto& r : st.blocks) {
        if (present(r.prefix)) {
            keep_record(std::move(r));
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
            (r.origin == BlockOrigin::Manual ? out.restored : out.restored_crowdsec)++;
            note_block(r.prefix, b);
            keep_record(std::move(r));
        }
    }
    // What was read, as it is now: one snapshot (the journal may be long,
    // and records of blocks that are gone were dropped).
    compact_ = true;
    mark_dirty();
    return out;
}

void BlockTable::note_block(const Cidr& prefix, const cw_block& b)
{
    if (prefix.is_host()) {
        hosts_.put(prefix.address().to_abi(), b.expires_ns, b.origin);
        return;
    }
    auto [it, added] = cidrs_.try_emplace(prefix, b);
    if (!added) {
        cidr_scan_ -= it->second.origin == CW_ORIGIN_SCAN ? 1 : 0;
        cidr_crowdsec_ -= it->second.origin == CW_ORIGIN_CROWDSEC ? 1 : 0;
        it->second = b;
    }
    cidr_scan_ += b.origin == CW_ORIGIN_SCAN ? 1 : 0;
    cidr_crowdsec_ += b.origin == CW_ORIGIN_CROWDSEC ? 1 : 0;
    if (b.expires_ns)
        cidr_due_.insert({b.expires_ns, prefix});
}

void BlockTable::forget(const Cidr& prefix)
{
    bool had = false; // a record: its journal line says it is gone
    if (prefix.is_host()) {
        if (HostEntry* e = hosts_.find(prefix.address().to_abi()))
            had = unshare(*e);
        hosts_.erase(prefix.address().to_abi());
    } else if (auto it = cidrs_.find(prefix); it != cidrs_.end()) {
        cidr_scan_ -= it->second.origin == CW_ORIGIN_SCAN ? 1 : 0;
        cidr_crowdsec_ -= it->second.origin == CW_ORIGIN_CROWDSEC ? 1 : 0;
        cidrs_.erase(it);
    }
    had = erase_record(prefix) || had;
    if (had && !quiet_)
        note(journal_remove(prefix));
}

bool BlockTable::present(const Cidr& prefix) const
{
    return prefix.is_host() ? hosts_.find(prefix.address().to_abi()) != nullptr
                            : cidrs_.count(prefix) != 0;
}

bool BlockTable::keep_record(BlockRecord r)
{
    // A manual exact block shares its record when it can.
    HostEntry* e = r.prefix.is_host() ? hosts_.find(r.prefix.address().to_abi()) : nullptr;
    if (e && r.origin == BlockOrigin::Manual) {
        if (uint16_t id = share(r)) {
            erase_record(r.prefix);
            unshare(*e);
            e->shared = id;
            shared_blocks_++;
            return true;
        }
    }
    if (e)
        unshare(*e); // a record of its own from now on
    bool scan = r.origin == BlockOrigin::Scan;
    auto it = meta_.find(r.prefix);
    if (it == meta_.end()) {
        if (scan && scan_records_ >= kMaxScanRecords)
            return false;
        scan_records_ += scan ? 1 : 0;
        Cidr key = r.prefix;
        meta_.emplace(key, std::move(r));
        return true;
    }
    scan_records_ -= it->second.origin == BlockOrigin::Scan ? 1 : 0;
    scan_records_ += scan ? 1 : 0;
    it->second = std::move(r);
    return true;
}

bool BlockTable::erase_record(const Cidr& prefix)
{
    auto it = meta_.find(prefix);
    if (it == meta_.end())
        return false;
    scan_records_ -= it->second.origin == BlockOrigin::Scan ? 1 : 0;
    meta_.erase(it);
    return true;
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
    // The allowlist wins: blocks an entry now covers are lifted. Only the
    // entries added now can cover any (no block is ever made that an entry in
    // force covers), and they are found in memory, not in the kernel's map:
    // a host entry (an own address that came up) by one lookup in the index;
    // a wider one by a pass over the index, which at a million blocks takes
    // tens of milliseconds.
    std::vector<Cidr> covered, wide;
    for (const auto& a : added) {
        if (a.is_host()) {
            if (hosts_.find(a.address().to_abi()))
                covered.push_back(a);
        } else {
            wide.push_back(a);
        }
    }
    auto check = [&](const Cidr& prefix) {
        if (std::any_of(wide.begin(), wide.end(), [&](const Cidr& a) { return a.covers(prefix); }))
            covered.push_back(prefix);
    };
    if (!wide.empty()) {
        hosts_.for_each([&](const HostEntry& e) { check(Cidr::host(Address(e.key))); });
        for (const auto& entry : cidrs_)
            check(entry.first);
    }
    // An automatic prefix block (ipv4-prefix, ipv6-prefix) is never made over
    // an allowlisted address; one that an entry added now lies inside is
    // lifted, or it would drop that address.
    if (!added.empty())
        for (const auto& entry : cidrs_) {
            // (Not a structured binding: clang before 16 cannot capture one.)
            const Cidr& prefix = entry.first;
            if (entry.second.prefix_len &&
                std::any_of(added.begin(), added.end(),
                            [&](const Cidr& a) { return prefix.covers(a) && a != prefix; }))
                covered.push_back(prefix);
        }
    for (const auto& prefix : covered)
        if (remove(prefix, RemovalReason::Allowlisted) && lifted)
            lifted->push_back(prefix);
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

std::string BlockTable::refusal(const Cidr& prefix, bool force, BlockOrigin origin) const
{
    // One policy for both: an allow entry wins, a dangerous prefix needs force
    // (a CrowdSec decision never has it). The operator is told the fix; a
    // decision's refusal is logged beside its prefix, so the reason alone.
    const bool manual = origin == BlockOrigin::Manual;
    if (auto a = allow_covering(prefix))
        return manual ? prefix.str() + " is covered by the allow entry " + a->str() +
                            ": remove that first (connwatchctl disallow) if you really mean to "
                            "block it"
                      : "covered by the allow entry " + a->str();
    if (!force)
        if (auto why = danger(prefix); !why.empty())
            return manual ? "not blocking " + prefix.str() + ": " + why +
                                "; repeat with --force (\"force\": true) if you really mean it"
                          : why;
    return "";
}

std::string BlockTable::full_message(const Cidr& prefix) const
{
    if (prefix.is_host())
        return "the blocklist is full (max-blocks " + std::to_string(maps_.host_block_capacity()) +
               "): unblock entries or raise max-blocks";
    return "the CIDR blocklist is full (max-cidr-blocks " +
           std::to_string(maps_.cidr_block_capacity()) +
           "): unblock entries or raise max-cidr-blocks";
}

std::variant<BlockRecord, std::string> BlockTable::block(const Cidr& prefix,
                                                         std::optional<std::chrono::seconds> duration,
                                                         std::string reason, bool force)
{
    if (auto why = refusal(prefix, force, BlockOrigin::Manual); !why.empty())
        return why;
    cw_block b{};
    b.created_ns = monotonic_now_ns();
    b.expires_ns = deadline_ns(b.created_ns, duration.value_or(std::chrono::seconds(0)));
    b.origin = CW_ORIGIN_MANUAL;
    if (!free_prefix_key(prefix))
        return prefix.str() + " is the kernel's key of the automatic block of " +
               prefix_block_at(prefix.address())->str() +
               ", which would move to the CIDR blocklist; " +
               full_message(Cidr(prefix.address(), 0));
    if (!maps_.add_block(prefix, b))
        return full_message(prefix);
    BlockRecord r{prefix, BlockOrigin::Manual, std::move(reason), std::time(nullptr),
                  b.expires_ns ? wall_time_of(b.expires_ns) : 0};
    note_block(prefix, b);
    keep_record(r);
    manual_added_++;
    note(journal_add(r));
    return r;
}

bool BlockTable::remove(const Cidr& prefix, RemovalReason why)
{
    if (!maps_.remove_block(prefix)) {
        forget(prefix); // not in the kernel (any more): nor here
        return false;
    }
    forget_removed(prefix, why);
    return true;
}

void BlockTable::forget_removed(const Cidr& prefix, RemovalReason why)
{
    // Whatever ended the block, the source is judged afresh from its next
    // port: its scan state would otherwise still say "reported in this
    // window" and let it scan again unseen. An automatic prefix block's
    // state is kept under its masked address (ipv4-prefix, ipv6-prefix), the
    // prefix's address; an operator's prefix block follows no scan state.
    auto c = prefix.is_host() ? cidrs_.end() : cidrs_.find(prefix);
    if (prefix.is_host() || (c != cidrs_.end() && c->second.prefix_len))
        maps_.reset_scan_state(prefix.address());
    // A block an operator lifted is forgiven: the source's next automatic
    // block is a first offence (docs/SECURITY.md, "Repeat offenders"). One
    // that expired, a CrowdSec decision withdrawn, or a scan block replaced
    // on a full blocklist forgives nothing. An automatic prefix block's
    // history is under its masked address too.
    bool automatic_prefix = c != cidrs_.end() && c->second.prefix_len;
    if ((prefix.is_host() || automatic_prefix) && why != RemovalReason::Expired &&
        why != RemovalReason::Withdrawn && why != RemovalReason::Replaced)
        maps_.forgive(prefix.address());
    forget(prefix); // the record, and its journal line
    removed_[why]++;
}

bool BlockTable::unblock(const Cidr& prefix)
{
    return remove(prefix, RemovalReason::Unblocked);
}

void BlockTable::flush_begin(uint64_t now_ns)
{
    if (flush_)
        return; // one is under way: the caller joins it
    Flush f;
    f.started_ns = now_ns;
    // The prefix blocks (only connwatchd makes them; bounded by
    // max-cidr-blocks): listed now, removed a slice at a time. The exact ones
    // are found by walking the kernel's map, known to the index or not.
    for (const auto& [c, b] : cidrs_)
        if (b.created_ns <= now_ns)
            f.cidrs.push_back(c);
    f.scanned = maps_.scan_state_sources();
    if (f.scanned)
        std::sort(f.scanned->begin(), f.scanned->end(), [](const cw_addr& a, const cw_addr& b) {
            return std::memcmp(a.b, b.b, sizeof(a.b)) < 0;
        });
    flush_ = std::move(f);
}

bool BlockTable::flush_step(size_t max)
{
    if (!flush_)
        return true;
    Flush& f = *flush_;
    quiet_ = true;
    auto count = [&](uint8_t origin) { f.removed.count(block_origin_of(origin)); };
    // Prefix blocks first, one by one.
    for (size_t n = 0; f.cidr_at < f.cidrs.size() && n < max; f.cidr_at++, n++) {
        const Cidr& c = f.cidrs[f.cidr_at];
        auto it = cidrs_.find(c);
        uint8_t origin = it != cidrs_.end() ? it->second.origin : uint8_t{CW_ORIGIN_MANUAL};
        if (it != cidrs_.end() && it->second.created_ns > f.started_ns)
            continue; // made again since the flush began
        if (remove(c, RemovalReason::Flushed))
            count(origin);
    }
    if (f.cidr_at < f.cidrs.size()) {
        quiet_ = false;
        return false;
    }
    // Exact blocks: a slice of the kernel's walk (whatever the index knows),
    // removed in one batch.
    std::vector<Cidr> keys;
    std::vector<uint8_t> origins;
    if (!f.hosts_started || f.cursor) {
        f.hosts_started = true;
        f.cursor = maps_.host_block_slice(f.cursor, max, [&](const cw_addr& k, const cw_block& b) {
            if (b.created_ns > f.started_ns)
                return; // made since the flush began: kept
            // An automatic prefix block the index did not know yet: removed
            // as the prefix it is.
            keys.push_back(b.prefix_len ? prefix_of(Address(k), b.prefix_len)
                                        : Cidr::host(Address(k)));
            origins.push_back(b.origin);
        });
        if (f.cursor == BlockMaps::kSliceFailed)
            f.cursor = 0; // the walk cannot go on: what it saw is removed, the rest kept
    }
    auto done = maps_.remove_blocks(keys);
    std::vector<cw_addr> reset;
    for (size_t i = 0; i < keys.size(); i++) {
        if (!done[i]) {
            forget(keys[i]); // gone meanwhile (expired): nor here
            continue;
        }
        cw_addr k = keys[i].address().to_abi();
        if (!f.scanned)
            reset.push_back(k);
        else if (std::binary_search(f.scanned->begin(), f.scanned->end(), k,
                                    [](const cw_addr& a, const cw_addr& b) {
                                        return std::memcmp(a.b, b.b, sizeof(a.b)) < 0;
                                    }))
            reset.push_back(k);
        forget(keys[i]);
        removed_[RemovalReason::Flushed]++;
        count(origins[i]);
    }
    // Judged afresh from their next port (see remove()): the few with scan
    // state, in one batch.
    if (!reset.empty())
        maps_.reset_scan_states(reset);
    quiet_ = false;
    if (f.cursor)
        return false;
    // Complete: the state file gets a snapshot of what is left.
    flushed_ = f.removed;
    flush_.reset();
    rewrite_ = true;
    pending_.clear();
    pending_lines_ = 0;
    mark_dirty();
    return true;
}

BlockCounts BlockTable::flush()
{
    flush_begin(monotonic_now_ns());
    while (!flush_step(kFlushSlice)) {
    }
    return flushed_;
}

void BlockTable::record_scan_block(const Cidr& blocked, std::string reason, std::time_t created,
                                   std::time_t expires)
{
    // The kernel's own entry says the deadline to the nanosecond (and whether
    // it is still there: an event can be read after the block went).
    if (blocked.is_host()) {
        cw_addr key = blocked.address().to_abi();
        auto b = maps_.find_host_block(key);
        if (!b)
            return;
        hosts_.put(key, b->expires_ns, b->origin);
    } else {
        // An automatic prefix block (ipv4-prefix, ipv6-prefix): kept with the
        // prefix blocks, listed, unblocked and expired by prefix.
        auto b = maps_.find_prefix_block(blocked);
        if (!b)
            return;
        note_block(blocked, *b);
    }
    BlockRecord r{blocked, BlockOrigin::Scan, std::move(reason), created, expires};
    if (keep_record(r))
        note(journal_add(r));
}

BlockTable::Replacement BlockTable::replace_oldest_scan_block(const Cidr& unit,
                                                              const cw_block& block,
                                                              std::string reason,
                                                              std::time_t created,
                                                              std::time_t expires)
{
    Replacement out;
    cw_addr key = unit.address().to_abi();
    // The unit the kernel counted the scanner as: the address, or its
    // prefix (ipv4-prefix, ipv6-prefix), whose block lives in the exact hash
    // under the masked address, marked with its length -- as the kernel
    // would have written it.
    cw_block b = block;
    b.prefix_len = unit.is_host() ? 0 : static_cast<uint8_t>(unit.lpm_length());
    // Made meanwhile (the event was read late; another CPU's scan of it):
    // nothing to replace.
    if (unit.is_host() ? maps_.find_host_block(key).has_value()
                       : maps_.find_prefix_block(unit).has_value())
        return out;
    int failed_inserts = 0;
    while (failed_inserts < kMaxReplaceTries) {
        auto oldest = hosts_.oldest_scan();
        if (!oldest)
            return out; // nothing replaceable: refused, as before
        Cidr victim = Cidr::host(Address(*oldest));
        // The index may be behind the kernel: ask it about this one.
        auto kb = maps_.find_host_block(*oldest);
        if (!kb) {
            forget(victim); // gone meanwhile (its expiry, an unblock): nor here
            continue;
        }
        const HostEntry* e = hosts_.find(*oldest);
        if (kb->origin != CW_ORIGIN_SCAN || due_second(kb->expires_ns) != e->due_s) {
            // Renewed, or made another way: the index follows the kernel, and
            // the entry is judged again in its new place.
            hosts_.put(*oldest, kb->expires_ns, kb->origin);
            continue;
        }
        // A repeat offence is never replaced: the kernel's history is about
        // this very block when it ends when the block does.
        if (auto o = maps_.find_offender(*oldest);
            o && o->offences >= 2 && o->until_ns == kb->expires_ns) {
            hosts_.mark_escalated(*oldest);
            continue;
        }
        bool due = kb->expires_ns && kb->expires_ns <= monotonic_now_ns();
        if (!maps_.remove_block(victim)) {
            forget(victim);
            continue;
        }
        // An eviction forgives nothing: the replaced source's history stays
        // (forget_removed), so that its next block counts as a repeat.
        forget_removed(victim, due ? RemovalReason::Expired : RemovalReason::Replaced);
        (due ? out.expired : out.replaced).push_back(victim);
        if (!(unit.is_host() ? maps_.add_block(unit, b) : maps_.add_prefix_entry(unit, b))) {
            // The kernel's next automatic block took the room first.
            failed_inserts++;
            continue;
        }
        if (unit.is_host())
            hosts_.put(key, b.expires_ns, b.origin);
        else
            note_block(unit, b);
        BlockRecord r{unit, BlockOrigin::Scan, std::move(reason), created, expires};
        if (keep_record(r))
            note(journal_add(r));
        out.made = true;
        return out;
    }
    return out;
}

void BlockTable::reconcile()
{
    if (!round_open_) {
        hosts_.start_round();
        round_open_ = true;
        reconcile_cursor_ = 0;
    }
    size_t slice = std::clamp(hosts_.size() / kReconcileRounds, kReconcileMinSlice,
                              kReconcileMaxSlice);
    reconcile_cursor_ = maps_.host_block_slice(
        reconcile_cursor_, slice, [&](const cw_addr& k, const cw_block& b) {
            // An automatic prefix block whose event was lost is learnt here.
            if (b.prefix_len) {
                Cidr prefix = prefix_of(Address(k), b.prefix_len);
                if (!present(prefix))
                    note_block(prefix, b);
                return;
            }
            hosts_.put(k, b.expires_ns, b.origin);
        });
    if (reconcile_cursor_ == BlockMaps::kSliceFailed) {
        // An incomplete round proves nothing vanished: start a new one.
        round_open_ = false;
        return;
    }
    if (reconcile_cursor_)
        return;
    // The round is complete: what it never saw is not in the kernel any more
    // (deleted behind connwatchd's back, bpftool, another process).
    round_open_ = false;
    for (auto& e : hosts_.end_round()) {
        Cidr host = Cidr::host(Address(e.key));
        bool had = unshare(e);
        if (erase_record(host) || had)
            note(journal_remove(host));
    }
}

std::optional<Cidr> BlockTable::prefix_block_at(const Address& a) const
{
    // cidrs_ is ordered by address, then length: the blocks keyed at a.
    for (auto it = cidrs_.lower_bound(Cidr(a, 0)); it != cidrs_.end() && it->first.address() == a;
         ++it)
        if (it->second.prefix_len)
            return it->first;
    return std::nullopt;
}

bool BlockTable::free_prefix_key(const Cidr& host)
{
    if (!host.is_host())
        return true;
    auto prefix = prefix_block_at(host.address());
    if (!prefix)
        return true;
    // The automatic block of 2001:db8:1:2::/64 lives under the key
    // 2001:db8:1:2::, which an exact block of that address would overwrite:
    // the prefix block moves to the trie (same deadline), as on a change of
    // length, and both stay in force.
    auto it = cidrs_.find(*prefix);
    cw_block v = it->second;
    v.prefix_len = 0;
    if (!maps_.add_block(*prefix, v))
        return false;
    maps_.remove_prefix_entry(*prefix);
    it->second = v;
    return true;
}

std::vector<Cidr> BlockTable::move_prefix_blocks(unsigned ipv4_prefix, unsigned ipv6_prefix)
{
    std::vector<Cidr> stuck;
    for (auto& [prefix, b] : cidrs_) {
        unsigned len = prefix.address().is_v4() ? ipv4_prefix : ipv6_prefix;
        if (!b.prefix_len || prefix.length() == len)
            continue;
        cw_block v = b;
        v.prefix_len = 0;
        // Into the trie first, then out of the hash: matched throughout.
        if (!maps_.add_block(prefix, v)) {
            stuck.push_back(prefix);
            continue;
        }
        maps_.remove_prefix_entry(prefix);
        b = v;
    }
    return stuck;
}

// ---- CrowdSec decisions ---------------------------------------------------------

BlockTable::Mirror BlockTable::mirror(const Cidr& prefix, std::chrono::seconds remaining,
                                      std::string reason)
{
    return mirror_many({{prefix, remaining, std::move(reason)}}).front();
}

std::vector<BlockTable::Mirror> BlockTable::mirror_many(std::vector<MirrorItem> items)
{
    std::vector<Mirror> out(items.size());
    // The entries the kernel is asked for, and their index in items.
    std::vector<std::pair<Cidr, cw_block>> batch;
    std::vector<size_t> index;
    std::set<Cidr> seen;
    const uint64_t now_ns = monotonic_now_ns();
    for (size_t i = 0; i < items.size(); i++) {
        const auto& it = items[i];
        Mirror& m = out[i];
        if (!seen.insert(it.prefix).second) { // twice in one call: the first one counts
            m.outcome = Mirror::Outcome::Kept;
            continue;
        }
        if (auto why = refusal(it.prefix, false, BlockOrigin::Crowdsec); !why.empty()) {
            m.why = std::move(why);
            continue;
        }
        cw_block b{};
        b.created_ns = now_ns;
        b.expires_ns = deadline_ns(now_ns, std::max(it.remaining, std::chrono::seconds(1)));
        b.origin = CW_ORIGIN_CROWDSEC;
        // An operator's block stays, whether or not it keeps a record of its own
        // (an imported block shares one).
        if (it.prefix.is_host())
            if (const HostEntry* e = hosts_.find(it.prefix.address().to_abi());
                e && e->origin == CW_ORIGIN_MANUAL) {
                m.outcome = Mirror::Outcome::Kept;
                continue;
            }
        // The records, not the kernel's maps: a community blocklist brings
        // tens of thousands of decisions, and each must not walk the lists.
        auto r = meta_.find(it.prefix);
        if (r != meta_.end() &&
            (r->second.origin == BlockOrigin::Manual ||
             (r->second.origin == BlockOrigin::Scan &&
              (r->second.expires == 0 || r->second.expires >= wall_time_of(b.expires_ns))))) {
            m.outcome = Mirror::Outcome::Kept;
            continue;
        }
        m.outcome = r != meta_.end() ? Mirror::Outcome::Updated : Mirror::Outcome::Added;
        batch.emplace_back(it.prefix, b);
        index.push_back(i);
    }
    std::vector<std::string> reasons;
    reasons.reserve(index.size());
    for (size_t i : index)
        reasons.push_back(std::move(items[i].reason));
    auto made = commit(batch, BlockOrigin::Crowdsec, std::move(reasons));
    for (size_t k = 0; k < batch.size(); k++) {
        if (made[k])
            continue;
        out[index[k]].outcome = Mirror::Outcome::Refused;
        out[index[k]].why = full_message(batch[k].first);
    }
    return out;
}

std::vector<std::optional<BlockRecord>> BlockTable::commit(
    const std::vector<std::pair<Cidr, cw_block>>& batch, BlockOrigin origin,
    std::vector<std::string> reasons)
{
    // The kernel's maps in batches (the exact addresses; the trie one by one).
    // An address that is the key of an automatic prefix block moves that
    // block to the trie first (free_prefix_key()); when it cannot, the
    // address is not blocked (reported as the CIDR blocklist being full).
    std::vector<std::pair<Cidr, cw_block>> ok;
    std::vector<size_t> at;
    ok.reserve(batch.size());
    at.reserve(batch.size());
    for (size_t k = 0; k < batch.size(); k++)
        if (free_prefix_key(batch[k].first)) {
            ok.push_back(batch[k]);
            at.push_back(k);
        }
    std::vector<bool> done(batch.size(), false);
    {
        auto made = maps_.add_blocks(ok);
        for (size_t i = 0; i < at.size() && i < made.size(); i++)
            done[at[i]] = made[i];
    }
    std::vector<std::optional<BlockRecord>> out(batch.size());
    const std::time_t now = std::time(nullptr);
    for (size_t k = 0; k < batch.size(); k++) {
        const auto& [prefix, b] = batch[k];
        if (k >= done.size() || !done[k])
            continue; // its list is full
        BlockRecord r{prefix, origin, std::move(reasons[k]), now,
                      b.expires_ns ? wall_time_of(b.expires_ns) : 0};
        note_block(prefix, b);
        keep_record(r);
        note(journal_add(r));
        out[k] = std::move(r);
    }
    return out;
}

bool BlockTable::withdraw(const Cidr& prefix)
{
    return !withdraw_many({prefix}).empty();
}

std::vector<Cidr> BlockTable::withdraw_many(const std::vector<Cidr>& prefixes)
{
    // Only mirrored decisions the table knows of: a batch delete stops at the
    // first key that is not there.
    std::vector<Cidr> ours, out;
    std::set<Cidr> seen;
    for (const auto& p : prefixes) {
        auto it = meta_.find(p);
        if (it != meta_.end() && it->second.origin == BlockOrigin::Crowdsec && seen.insert(p).second)
            ours.push_back(p);
    }
    auto done = maps_.remove_blocks(ours);
    for (size_t k = 0; k < ours.size(); k++) {
        if (k < done.size() && done[k]) {
            forget_removed(ours[k], RemovalReason::Withdrawn);
            out.push_back(ours[k]);
        } else {
            forget(ours[k]); // not in the kernel (any more): nor here
        }
    }
    return out;
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
    reconcile();

    // Prefix blocks: few, in a set ordered by deadline.
    while (!cidr_due_.empty() && cidr_due_.begin()->first <= now_ns) {
        auto [expires_ns, prefix] = *cidr_due_.begin();
        cidr_due_.erase(cidr_due_.begin());
        auto it = cidrs_.find(prefix);
        if (it == cidrs_.end() || it->second.expires_ns != expires_ns)
            continue; // gone, or renewed: a later item has it
        if (remove(prefix, RemovalReason::Expired))
            s.expired.push_back({prefix, wall_time_of(expires_ns)});
    }

    // Exact blocks: the index says which may be due; the kernel's entry has
    // the last word (it may have been renewed by a new scan since).
    std::vector<cw_addr> gone;
    std::vector<uint64_t> when;
    for (const auto& k : hosts_.due(due_second(now_ns), kMaxDuePerTick)) {
        auto b = maps_.find_host_block(k);
        if (!b) {
            forget(Cidr::host(Address(k))); // removed behind our back
            continue;
        }
        if (b->expires_ns == 0 || b->expires_ns > now_ns) {
            const HostEntry* e = hosts_.find(k);
            if (e && e->due_s == due_second(b->expires_ns))
                hosts_.requeue(k); // due within this second: at the next tick
            else
                hosts_.put(k, b->expires_ns, b->origin);
            continue;
        }
        gone.push_back(k);
        when.push_back(b->expires_ns);
    }
    if (!gone.empty()) {
        std::vector<Cidr> hosts;
        hosts.reserve(gone.size());
        for (const auto& k : gone)
            hosts.push_back(Cidr::host(Address(k)));
        maps_.remove_blocks(hosts);
        for (size_t i = 0; i < gone.size(); i++) {
            const Cidr& host = hosts[i];
            // Judged afresh from its next port (see remove()).
            maps_.reset_scan_state(host.address());
            forget(host);
            removed_[RemovalReason::Expired]++;
            s.expired.push_back({host, wall_time_of(when[i])});
        }
    }
    s.left = counts();
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
        if (present(it.prefix) || !seen.insert(it.prefix).second) {
            out.present++;
            continue;
        }
        if (auto why = refusal(it.prefix, force, BlockOrigin::Manual); !why.empty()) {
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
    std::vector<std::string> reasons;
    reasons.reserve(index.size());
    for (size_t i : index)
        reasons.push_back(items[i].reason);
    auto made = commit(batch, BlockOrigin::Manual, std::move(reasons));
    for (size_t k = 0; k < batch.size(); k++) {
        if (!made[k]) {
            out.refused.emplace_back(index[k], full_message(batch[k].first));
            continue;
        }
        out.added.push_back(std::move(*made[k]));
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
        if (present(p))
            known.push_back(p);
        else if (maps_.remove_block(p)) { // in the kernel all the same (not indexed yet)
            forget_removed(p, RemovalReason::Unblocked);
            out.removed.push_back(p);
        }
    }
    auto done = maps_.remove_blocks(known);
    for (size_t k = 0; k < known.size(); k++) {
        if (k < done.size() && done[k]) {
            forget_removed(known[k], RemovalReason::Unblocked);
            out.removed.push_back(known[k]);
        }
    }
    out.absent = prefixes.size() - out.removed.size();
    return out;
}

// ---- views -----------------------------------------------------------------------

bool BlockTable::ListFilter::passes(const BlockRecord& r) const
{
    if (origin && r.origin != *origin)
        return false;
    // Two prefixes overlap exactly when one covers the other.
    if (match && !match->covers(r.prefix) && !r.prefix.covers(*match))
        return false;
    return true;
}

BlockTable::ListPage BlockTable::list_page(const ListFilter& filter, const ListCursor& from,
                                           size_t max, size_t budget) const
{
    ListPage page;
    page.next = from;
    auto take = [&](BlockRecord r) {
        if (filter.passes(r))
            page.records.push_back(std::move(r));
    };
    if (!from.hosts) {
        // cidrs_ is ordered by prefix: a page resumes in O(log n).
        auto it = from.after ? cidrs_.upper_bound(*from.after) : cidrs_.begin();
        for (; it != cidrs_.end() && page.records.size() < max && budget > 0; ++it, budget--) {
            page.next.after = it->first;
            take(record_for(it->first, it->second));
        }
        if (it != cidrs_.end())
            return page;
        page.next.hosts = true;
        page.next.bucket = 0;
        if (hosts_.size() == 0) {
            page.end = true;
            return page;
        }
        if (!page.records.empty() || budget == 0)
            return page; // the addresses from the next page on
    }
    uint64_t next = maps_.host_block_slice(
        page.next.bucket, std::max<size_t>(std::min(budget, max), 1), [&](const cw_addr& k, const cw_block& b) {
            if (b.prefix_len)
                return; // an automatic prefix block: listed with the prefixes
            take(record_for(Cidr::host(Address(k)), b));
        });
    // A failed walk ends the list: resuming it could list entries twice.
    page.end = next == 0 || next == BlockMaps::kSliceFailed;
    page.next.bucket = next;
    return page;
}

BlockCounts BlockTable::counts() const
{
    BlockCounts n;
    n.scan = hosts_.scan() + cidr_scan_;
    n.crowdsec = hosts_.crowdsec() + cidr_crowdsec_;
    n.manual = hosts_.manual() + (cidrs_.size() - cidr_scan_ - cidr_crowdsec_);
    return n;
}

size_t BlockTable::memory_bytes() const
{
    // Estimates for the node-based containers: a red-black tree node is 32
    // bytes of links and colour, plus the value, rounded by malloc.
    size_t records = 0;
    for (const auto& [c, r] : meta_)
        records += 32 + sizeof(c) + sizeof(r) + (r.reason.capacity() > 15 ? r.reason.capacity() + 1 : 0);
    for (const auto& r : shared_)
        records += sizeof(r) + (r.reason.capacity() > 15 ? r.reason.capacity() + 1 : 0);
    records += shared_ids_.size() * (32 + sizeof(Shared) + 8);
    return hosts_.bytes() + cidrs_.size() * (32 + sizeof(Cidr) + sizeof(cw_block)) +
           cidr_due_.size() * (32 + sizeof(uint64_t) + sizeof(Cidr)) + records;
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

SnapshotSource BlockTable::snapshot_source() const
{
    SnapshotSource src;
    src.records.reserve(meta_.size());
    for (const auto& [c, r] : meta_)
        src.records.push_back(r);
    if (shared_blocks_) {
        src.shared.reserve(shared_.size());
        for (const auto& r : shared_)
            src.shared.push_back({r.reason, r.created, r.expires});
        src.sharing.reserve(shared_blocks_);
        hosts_.for_each([&](const HostEntry& e) {
            if (e.shared)
                src.sharing.emplace_back(e.key, e.shared);
        });
    }
    src.allow = runtime_;
    return src;
}

// The lines, or a snapshot; "" or why not.
std::string BlockTable::write_changes(bool stopping)
{
    const size_t records = meta_.size() + shared_blocks_;
    if (!file_.compacting() &&
        file_.journal_lines() + pending_lines_ > std::max(kMinJournalLines, records))
        compact_ = true;
    // A small table's compaction is written at once, as a snapshot that
    // makes the pending lines needless.
    if (compact_ && !stopping && records < async_snapshot_from && !file_.compacting())
        rewrite_ = true;
    try {
        if (!rewrite_) {
            try {
                file_.append(pending_, pending_lines_);
                const uint64_t now = monotonic_now_ns();
                if (stopping || now - synced_ns_ >= kNsPerSec) {
                    file_.sync();
                    synced_ns_ = now;
                }
            } catch (const Error&) {
                // The journal lacks these lines (append() cut off what it
                // got of them): a snapshot, or the snapshot's error.
                rewrite_ = true;
            }
        }
        pending_.clear();
        pending_lines_ = 0;
        if (rewrite_) {
            file_.rewrite(snapshot_source()); // abandons a compaction under way
            rewrite_ = compact_ = false;
        } else if (compact_ && !stopping && !file_.compacting()) {
            // Every line is in the journal: the snapshot only shortens it.
            file_.compact_begin(snapshot_source());
            compact_ = false;
        }
    } catch (const Error& e) {
        rewrite_ = true; // the retry writes a snapshot
        pending_.clear();
        pending_lines_ = 0;
        return e.what();
    }
    return "";
}

BlockTable::Save BlockTable::save_if_dirty(bool stopping)
{
    std::string failure;
    if (file_.compacting()) {
        if (stopping) {
            file_.compact_cancel(); // the journal is whole: the next start replays it
        } else if (auto done = file_.compact_poll(); done && !done->empty()) {
            // The journal is whole: nothing is lost; the next call tries again.
            failure = "Failed to compact " + state_path_ + "'s journal into a snapshot (" + *done +
                      ")";
            compact_ = true;
        }
    }
    const bool work = dirty_ || file_.unsynced() || (compact_ && !stopping && !file_.compacting());
    if (!work && failure.empty() && save_error_.empty())
        return {};
    if (work) {
        if (auto e = write_changes(stopping); !e.empty())
            failure = e;
        else
            dirty_ = false;
    }
    Save out;
    if (!failure.empty()) {
        out.error = failure;
        // Retried every second: the same failure of the same changes is said once.
        out.say = out.error != save_error_ || unsaid_change_;
        save_error_ = out.error;
        unsaid_change_ = false;
        return out;
    }
    if (file_.compacting())
        return out; // a success is said when the compaction has succeeded too
    unsaid_change_ = false;
    out.recovered = out.say = !save_error_.empty();
    save_error_.clear();
    return out;
}

} // namespace connwatch
