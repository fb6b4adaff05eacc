// SPDX-License-Identifier: GPL-2.0-only
#include "blocks/block_index.h"

#include <algorithm>
#include <cstring>
#include <functional>

namespace connwatch {

namespace {

// Load factor after a resize, and the one that triggers the next: the table
// holds 1.18 to 1.67 slots a block, and a lookup probes a few slots on average
// (linear probing at 0.85 with a good hash: ~3.3 for a hit, ~22 for a miss).
constexpr double kLoadAfterResize = 0.6;
constexpr double kMaxLoad = 0.85;
constexpr double kMinLoad = 0.2; // below it (and above kMinSlots), the table shrinks
constexpr size_t kMinSlots = 64;

uint64_t mix(uint64_t x)
{
    // The finaliser of MurmurHash3: every input bit moves every output bit.
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

bool same(const cw_addr& a, const cw_addr& b)
{
    return std::memcmp(a.b, b.b, sizeof(a.b)) == 0;
}

} // namespace

size_t BlockIndex::slot_of(const cw_addr& key) const
{
    uint64_t lo, hi;
    std::memcpy(&lo, key.b, 8);
    std::memcpy(&hi, key.b + 8, 8);
    uint64_t h = mix(lo ^ mix(hi));
    // Multiply-shift onto [0, size): any table size, no modulo.
    return static_cast<size_t>((static_cast<unsigned __int128>(h) * slots_.size()) >> 64);
}

size_t BlockIndex::probe(const cw_addr& key) const
{
    if (slots_.empty())
        return SIZE_MAX;
    size_t n = slots_.size();
    for (size_t i = slot_of(key), step = 0; step < n; step++, i = i + 1 == n ? 0 : i + 1) {
        const HostEntry& e = slots_[i];
        if (!(e.flags & (kUsed | kTombstone)))
            return SIZE_MAX; // an empty slot ends the chain
        if ((e.flags & kUsed) && same(e.key, key))
            return i;
    }
    return SIZE_MAX;
}

HostEntry* BlockIndex::find(const cw_addr& key)
{
    size_t i = probe(key);
    return i == SIZE_MAX ? nullptr : &slots_[i];
}

const HostEntry* BlockIndex::find(const cw_addr& key) const
{
    size_t i = probe(key);
    return i == SIZE_MAX ? nullptr : &slots_[i];
}

void BlockIndex::rehash(size_t capacity)
{
    std::vector<HostEntry> old;
    old.swap(slots_);
    slots_.assign(std::max(capacity, kMinSlots), HostEntry{});
    slots_.shrink_to_fit();
    tombstones_ = 0;
    size_t n = slots_.size();
    for (const auto& e : old) {
        if (!(e.flags & kUsed))
            continue;
        size_t i = slot_of(e.key);
        while (slots_[i].flags & kUsed)
            i = i + 1 == n ? 0 : i + 1;
        slots_[i] = e;
    }
    rebuild_heap(); // slot numbers changed
}

void BlockIndex::push_due(uint32_t due_s, size_t slot)
{
    if (!due_s)
        return;
    heap_.push_back({due_s, static_cast<uint32_t>(slot)});
    std::push_heap(heap_.begin(), heap_.end(), std::greater<Due>());
}

bool BlockIndex::evictable(const HostEntry& e) const
{
    return (e.flags & kUsed) && !(e.flags & kEscalated) && e.origin == CW_ORIGIN_SCAN && e.due_s;
}

void BlockIndex::push_evictable(size_t slot)
{
    if (!evictable(slots_[slot]))
        return;
    evict_.push_back({slots_[slot].due_s, static_cast<uint32_t>(slot)});
    std::push_heap(evict_.begin(), evict_.end(), std::greater<Due>());
}

void BlockIndex::rebuild_heap()
{
    std::vector<Due> h, v;
    size_t with_deadline = 0, replaceable = 0;
    for (const auto& e : slots_) {
        with_deadline += (e.flags & kUsed) && e.due_s;
        replaceable += evictable(e);
    }
    h.reserve(with_deadline);
    v.reserve(replaceable);
    for (size_t i = 0; i < slots_.size(); i++) {
        if ((slots_[i].flags & kUsed) && slots_[i].due_s)
            h.push_back({slots_[i].due_s, static_cast<uint32_t>(i)});
        if (evictable(slots_[i]))
            v.push_back({slots_[i].due_s, static_cast<uint32_t>(i)});
    }
    std::make_heap(h.begin(), h.end(), std::greater<Due>());
    std::make_heap(v.begin(), v.end(), std::greater<Due>());
    heap_.swap(h);
    evict_.swap(v);
}

bool BlockIndex::put(const cw_addr& key, uint64_t expires_ns, uint8_t origin)
{
    uint32_t due_s = due_second(expires_ns);
    // Room first: then one walk of the chain finds the key, or the slot a
    // new key takes (the first tombstone on the way, else the empty slot
    // that ends it). A bulk import puts a million new keys: one walk each,
    // not a lookup's and then an insert's.
    if (slots_.empty() || static_cast<double>(used_ + tombstones_ + 1) > kMaxLoad * slots_.size())
        rehash(static_cast<size_t>(static_cast<double>(used_ + 1) / kLoadAfterResize));
    size_t n = slots_.size();
    size_t i = slot_of(key), free = SIZE_MAX;
    for (size_t step = 0; step < n; step++, i = i + 1 == n ? 0 : i + 1) {
        HostEntry& e = slots_[i];
        if (!(e.flags & (kUsed | kTombstone))) {
            if (free == SIZE_MAX)
                free = i;
            break;
        }
        if (!(e.flags & kUsed)) {
            if (free == SIZE_MAX)
                free = i;
            continue;
        }
        if (!same(e.key, key))
            continue;
        e.flags |= kSeen;
        bool changed = false;
        if (e.origin != origin) {
            scan_ += origin == CW_ORIGIN_SCAN ? 1 : 0;
            scan_ -= e.origin == CW_ORIGIN_SCAN ? 1 : 0;
            crowdsec_ += origin == CW_ORIGIN_CROWDSEC ? 1 : 0;
            crowdsec_ -= e.origin == CW_ORIGIN_CROWDSEC ? 1 : 0;
            e.origin = origin;
            changed = true;
        }
        if (e.due_s != due_s) {
            // Another block of the same source (renewed): whether it is a
            // repeat offence is for the history to say again.
            e.due_s = due_s;
            e.flags &= static_cast<uint8_t>(~kEscalated);
            push_due(due_s, i);
            changed = true;
        }
        if (changed)
            push_evictable(i);
        return false;
    }
    i = free; // the load factor keeps an empty slot: there is one
    if (slots_[i].flags & kTombstone)
        tombstones_--;
    slots_[i] = HostEntry{key, due_s, origin, static_cast<uint8_t>(kUsed | kSeen), 0};
    used_++;
    scan_ += origin == CW_ORIGIN_SCAN ? 1 : 0;
    crowdsec_ += origin == CW_ORIGIN_CROWDSEC ? 1 : 0;
    push_due(due_s, i);
    push_evictable(i);
    // Stale heap items (deadlines changed, entries gone) are dropped when
    // popped; when they outnumber the live ones, all at once.
    if (heap_.size() > 2 * used_ + 4096 || evict_.size() > 2 * scan_ + 4096)
        rebuild_heap();
    return true;
}

void BlockIndex::erase_slot(size_t i)
{
    HostEntry& e = slots_[i];
    scan_ -= e.origin == CW_ORIGIN_SCAN ? 1 : 0;
    crowdsec_ -= e.origin == CW_ORIGIN_CROWDSEC ? 1 : 0;
    e = HostEntry{};
    e.flags = kTombstone;
    used_--;
    tombstones_++;
}

bool BlockIndex::erase(const cw_addr& key)
{
    size_t i = probe(key);
    if (i == SIZE_MAX)
        return false;
    erase_slot(i);
    // Memory follows the blocks: a table mostly empty gives its room back.
    if (slots_.size() > kMinSlots && static_cast<double>(used_) < kMinLoad * slots_.size())
        rehash(static_cast<size_t>(static_cast<double>(used_) / kLoadAfterResize));
    else if (heap_.size() > 2 * used_ + 4096 || evict_.size() > 2 * scan_ + 4096)
        rebuild_heap();
    return true;
}

void BlockIndex::compact()
{
    // The heap grew by doubling; its items now are all it needs.
    rebuild_heap();
    heap_.shrink_to_fit();
    evict_.shrink_to_fit();
}

void BlockIndex::clear()
{
    std::vector<HostEntry>().swap(slots_);
    std::vector<Due>().swap(heap_);
    std::vector<Due>().swap(evict_);
    used_ = tombstones_ = scan_ = crowdsec_ = 0;
}

size_t BlockIndex::bytes() const
{
    return slots_.capacity() * sizeof(HostEntry) +
           (heap_.capacity() + evict_.capacity()) * sizeof(Due);
}

std::vector<cw_addr> BlockIndex::due(uint32_t now_s, size_t max)
{
    std::vector<cw_addr> out;
    while (!heap_.empty() && heap_.front().due_s <= now_s && out.size() < max) {
        Due d = heap_.front();
        std::pop_heap(heap_.begin(), heap_.end(), std::greater<Due>());
        heap_.pop_back();
        const HostEntry& e = slots_[d.slot];
        // Stale: the entry went, or its deadline moved (a newer item has it).
        if (!(e.flags & kUsed) || e.due_s != d.due_s)
            continue;
        out.push_back(e.key);
    }
    return out;
}

void BlockIndex::requeue(const cw_addr& key)
{
    if (size_t i = probe(key); i != SIZE_MAX)
        push_due(slots_[i].due_s, i);
}

std::optional<cw_addr> BlockIndex::oldest_scan()
{
    while (!evict_.empty()) {
        Due d = evict_.front();
        const HostEntry& e = slots_[d.slot];
        // Stale: the entry went, or its deadline or origin changed, or it was
        // marked escalated (a newer item has it, or none should).
        if (evictable(e) && e.due_s == d.due_s)
            return e.key;
        std::pop_heap(evict_.begin(), evict_.end(), std::greater<Due>());
        evict_.pop_back();
    }
    return std::nullopt;
}

void BlockIndex::mark_escalated(const cw_addr& key)
{
    if (size_t i = probe(key); i != SIZE_MAX)
        slots_[i].flags |= kEscalated;
}

void BlockIndex::start_round()
{
    for (auto& e : slots_)
        e.flags &= static_cast<uint8_t>(~kSeen);
}

std::vector<HostEntry> BlockIndex::end_round()
{
    std::vector<HostEntry> gone;
    for (size_t i = 0; i < slots_.size(); i++)
        if ((slots_[i].flags & kUsed) && !(slots_[i].flags & kSeen)) {
            gone.push_back(slots_[i]);
            erase_slot(i);
        }
    if (!gone.empty() && slots_.size() > kMinSlots &&
        static_cast<double>(used_) < kMinLoad * slots_.size())
        rehash(static_cast<size_t>(static_cast<double>(used_) / kLoadAfterResize));
    return gone;
}

} // namespace connwatch
