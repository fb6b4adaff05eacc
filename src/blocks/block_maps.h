// SPDX-License-Identifier: GPL-2.0-only
// What BlockTable needs of the kernel's maps, and nothing more: the blocklists
// (exact addresses and CIDR prefixes, one key type for both), the allowlist,
// and the scan state's reset. connwatchd gives it the real maps (KernelMaps, over XdpProgram);
// the unit tests give it a fake with tiny capacities, so the table's policy is
// tested without root.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "common/address.h"

namespace connwatch {

class BlockMaps {
public:
    virtual ~BlockMaps() = default;

    // A host prefix (/32, /128) lives in the exact hash, anything wider in the
    // CIDR trie. add_block replaces an existing entry; false when full.
    virtual bool add_block(const Cidr& prefix, const cw_block& b) = 0;
    virtual bool remove_block(const Cidr& prefix) = 0; // false: not there
    virtual std::vector<std::pair<Cidr, cw_block>> blocks() const = 0;
    // Many at once (bulk imports): entry i added or removed as add_block or
    // remove_block would, result[i] what it returned. One call each here;
    // KernelMaps writes the exact addresses in batches.
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
    virtual uint32_t cidr_block_capacity() const = 0;
    // Forgets a source's scan-detection state, so that its next port starts a
    // fresh count: called when its block ends, or the kernel's "reported in
    // this window" mark would let it scan again unseen.
    virtual void reset_scan_state(const Address& source) = 0;

    // Throws Error when the kernel refuses (the trie is full, ...).
    virtual void add_allow(const Cidr& prefix) = 0;
    virtual bool remove_allow(const Cidr& prefix) = 0;
    virtual std::vector<Cidr> allow_list() const = 0;
    virtual uint32_t allow_capacity() const = 0;
};

} // namespace connwatch
