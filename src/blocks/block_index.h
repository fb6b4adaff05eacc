// SPDX-License-Identifier: GPL-2.0-only
// What connwatchd knows of every exact (host) block in the kernel's block_addr,
// in 24 bytes an entry: the address, the second it falls due, its origin. With
// it BlockTable counts blocks without walking the map, and removes blocks as
// they fall due (a min-heap of 8 bytes per block with a deadline) instead of
// reading the whole map every second. docs/SCALE.md has the budget.
//
// An open-addressing hash table (linear probing, tombstones, any capacity: a
// slot is picked by multiply-shift, so the table grows by half, not by
// doubling, and shrinks again when blocks go): at a million blocks it holds
// 1.18 to 1.67 M slots, 27 to 38 MiB, and the heap 8 MiB; a std::map node per
// block would be 3 to 4 times that before any string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

extern "C" {
#include "connwatch_abi.h"
}

namespace connwatch {

struct HostEntry {
    cw_addr key;
    uint32_t due_s = 0;  // CLOCK_MONOTONIC second the block falls due (ceil); 0: never
    uint8_t origin = 0;  // enum cw_origin
    uint8_t flags = 0;   // kUsed, kTombstone, kSeen, kEscalated (see BlockIndex)
    // A manual block's record, when it is one that many blocks share (a bulk
    // import's reason and times): its number in BlockTable's table of them;
    // 0: none. The index keeps it as it is on put(); BlockTable sets it.
    uint16_t shared = 0;
};
static_assert(sizeof(HostEntry) == 24);

// The second a monotonic deadline in ns falls due, rounded up (0 stays 0: never).
inline uint32_t due_second(uint64_t expires_ns)
{
    if (!expires_ns)
        return 0;
    uint64_t s = (expires_ns + 999'999'999) / 1'000'000'000;
    return s > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(s ? s : 1);
}

class BlockIndex {
public:
    // kEscalated: a scan block the kernel's history says is a repeat offence
    // (offence >= 2): never replaced (oldest_scan() skips it). Cleared when
    // the entry's deadline changes (a new block of the same source).
    static constexpr uint8_t kUsed = 1, kTombstone = 2, kSeen = 4, kEscalated = 8;

    // The entry of key, or nullptr.
    HostEntry* find(const cw_addr& key);
    const HostEntry* find(const cw_addr& key) const;
    // Adds or updates key: its deadline and origin; true when it was new.
    // Marks it seen in the current reconciliation round.
    bool put(const cw_addr& key, uint64_t expires_ns, uint8_t origin);
    // Removes key; false when it was not there.
    bool erase(const cw_addr& key);
    void clear();
    // Gives back what growing left unused (the heap's doubling): after a bulk
    // load such as the start-up walk.
    void compact();

    size_t size() const { return used_; }
    size_t scan() const { return scan_; }
    size_t crowdsec() const { return crowdsec_; }
    size_t manual() const { return used_ - scan_ - crowdsec_; }
    // Memory held, in bytes (table and heap), for docs/SCALE.md and the tests.
    size_t bytes() const;

    // Keys whose deadline second is at most now_s, each once, in deadline
    // order; at most `max`. They stay in the index: the caller checks each
    // with the kernel, then erases or re-puts it.
    std::vector<cw_addr> due(uint32_t now_s, size_t max);
    // Puts key back in the deadline queue at its current deadline: due()
    // returned it, and the kernel said it is not due yet after all.
    void requeue(const cw_addr& key);

    // The oldest replaceable automatic block (issue 12, a full blocklist):
    // of the scan blocks with a deadline and not marked escalated, the one
    // with the earliest deadline; nullopt when there is none. It stays in
    // the index. O(log n) amortised: a second min-heap, of scan blocks only
    // (8 bytes each), whose stale items (gone, renewed, marked) are dropped
    // when they reach the top.
    std::optional<cw_addr> oldest_scan();
    // Marks key's block escalated: oldest_scan() no longer returns it.
    void mark_escalated(const cw_addr& key);

    // Reconciliation rounds: start_round() clears every entry's seen mark,
    // put() sets it; end_round() erases the entries not seen since (their
    // kernel entry vanished without us) and returns them.
    void start_round();
    std::vector<HostEntry> end_round();

    template <typename Fn>
    void for_each(Fn fn) const
    {
        for (const auto& e : slots_)
            if (e.flags & kUsed)
                fn(e);
    }

private:
    struct Due {
        uint32_t due_s;
        uint32_t slot;
        bool operator>(const Due& o) const { return due_s > o.due_s; }
    };
    size_t slot_of(const cw_addr& key) const;
    size_t probe(const cw_addr& key) const; // the slot holding key, or SIZE_MAX
    void rehash(size_t capacity);
    void push_due(uint32_t due_s, size_t slot);
    void push_evictable(size_t slot);
    bool evictable(const HostEntry& e) const;
    void rebuild_heap();
    void erase_slot(size_t i);

    std::vector<HostEntry> slots_;
    std::vector<Due> heap_; // min-heap on due_s; stale items are skipped when popped
    // The same, of the scan blocks that may be replaced (evictable()).
    std::vector<Due> evict_;
    size_t used_ = 0, tombstones_ = 0, scan_ = 0, crowdsec_ = 0;
};

} // namespace connwatch
