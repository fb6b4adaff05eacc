// SPDX-License-Identifier: GPL-2.0-only
// What BlockTable needs of the kernel's maps, and nothing more: the blocklists
// (exact addresses and CIDR prefixes, one key type for both), the allowlist,
// and the scan state's reset. connwatchd gives it the real maps (KernelMaps, over XdpProgram);
// the unit tests give it a fake with tiny capacities, so the table's policy is
// tested without root.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "common/address.h"

namespace connwatch {

class BlockMaps {
public:
    virtual ~BlockMaps() = default;

    // A host prefix (/32, /128) lives in the exact hash, anything wider in the
    // CIDR trie. add_block replaces an existing entry; false when full.
    // The kernel's automatic prefix blocks (ipv4-prefix, ipv6-prefix) live in
    // the exact hash under the masked address, marked by cw_block.prefix_len:
    // blocks() and for_each_block() give them as prefixes, remove_block()
    // removes them by prefix.
    virtual bool add_block(const Cidr& prefix, const cw_block& b) = 0;
    virtual bool remove_block(const Cidr& prefix) = 0; // false: not there
    virtual std::vector<std::pair<Cidr, cw_block>> blocks() const = 0;
    // Many at once (bulk imports): entry i added or removed as add_block or
    // remove_block would, result[i] what it returned. One call each here;
    // KernelMaps writes the exact addresses in batches.
    // (remove_blocks is the one way BlockTable removes many: unblock --file,
    // expiry, flush.)
    virtual std::vector<bool> add_blocks(const std::vector<std::pair<Cidr, cw_block>>& entries)
    {
        std::vector<bool> done;
        done.reserve(entries.size());
        for (const auto& [c, b] : entries)
            done.push_back(add_block(c, b));
        return done;
    }
    virtual std::vector<bool> remove_blocks(const std::vector<Cidr>& prefixes)
    {
        std::vector<bool> done;
        done.reserve(prefixes.size());
        for (const auto& c : prefixes)
            done.push_back(remove_block(c));
        return done;
    }
    virtual uint32_t host_block_capacity() const = 0;

    // What BlockTable uses to follow a million blocks without walking them
    // every second. The defaults go through blocks(), enough for a fake with
    // tiny capacities; KernelMaps batches them (bpf_map_*_batch).
    using HostVisitor = std::function<void(const cw_addr&, const cw_block&)>;
    using CidrVisitor = std::function<void(const Cidr&, const cw_block&)>;
    // Every exact block, then every prefix block.
    virtual void for_each_block(const HostVisitor& host, const CidrVisitor& cidr) const;
    // About `max` exact blocks from `cursor` on (0: the start); returns the
    // cursor to go on from, 0 once the walk has reached the end, kSliceFailed
    // when it cannot go on (the walk is incomplete). An entry present during a
    // whole walk is visited exactly once.
    static constexpr uint64_t kSliceFailed = UINT64_MAX;
    virtual uint64_t host_block_slice(uint64_t cursor, size_t max, const HostVisitor& fn) const;
    // The kernel's entry of an exact block, if there is one.
    virtual std::optional<cw_block> find_host_block(const cw_addr& key) const;
    // The kernel's entry of a prefix block (trie, or an automatic prefix block
    // in the exact hash: cw_block.prefix_len), if there is one.
    virtual std::optional<cw_block> find_prefix_block(const Cidr& prefix) const;
    // Removes the kernel's automatic block of this prefix from the exact hash
    // only (a prefix block of the trie stays); false: there was none.
    virtual bool remove_prefix_entry(const Cidr& prefix) { return remove_block(prefix); }
    // Writes the kernel's kind of automatic prefix block: the exact hash's
    // entry under the prefix's (masked) address, b.prefix_len its length --
    // what the kernel itself writes for a scan of a prefix. A full blocklist's
    // replacement makes one in the kernel's place. The fake keeps it with the
    // prefix blocks.
    virtual bool add_prefix_entry(const Cidr& prefix, const cw_block& b) { return add_block(prefix, b); }

    virtual uint32_t cidr_block_capacity() const = 0;
    // Forgets a source's scan-detection state, so that its next port starts a
    // fresh count: called when its block ends, or the kernel's "reported in
    // this window" mark would let it scan again unseen.
    virtual void reset_scan_state(const Address& source) = 0;
    // Forgets a source's history of repeat offences (bpf/escalate.h), so that
    // its next automatic block is a first offence again: called when an
    // operator lifts its block (unblock, flush, an allow entry), never when a
    // block expires. The fake keeps no history.
    virtual void forgive(const Address& source) { (void)source; }
    // The source's history of repeat offences (bpf/escalate.h), if it has
    // one: which offence its latest automatic block is, and until when.
    virtual std::optional<cw_offender> find_offender(const cw_addr& key) const
    {
        (void)key;
        return std::nullopt;
    }
    // The sources that have scan state (bounded by its map), so that a flush
    // of a million blocks resets those few rather than asking for each
    // block; nullopt: cannot say (reset_scan_state each one).
    virtual std::optional<std::vector<cw_addr>> scan_state_sources() const { return std::nullopt; }
    virtual void reset_scan_states(const std::vector<cw_addr>& sources)
    {
        for (const auto& k : sources)
            reset_scan_state(Address(k));
    }

    // Throws Error when the kernel refuses (the trie is full, ...).
    virtual void add_allow(const Cidr& prefix) = 0;
    virtual bool remove_allow(const Cidr& prefix) = 0;
    virtual std::vector<Cidr> allow_list() const = 0;
    virtual uint32_t allow_capacity() const = 0;
};

} // namespace connwatch
