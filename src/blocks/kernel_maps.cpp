// SPDX-License-Identifier: GPL-2.0-only
#include "blocks/kernel_maps.h"

namespace connwatch {

bool KernelMaps::add_block(const Cidr& prefix, const cw_block& b)
{
    return prefix.is_host() ? prog_.block_add(prefix.address(), b) : prog_.cidr_block_add(prefix, b);
}

bool KernelMaps::remove_block(const Cidr& prefix)
{
    return prefix.is_host() ? prog_.block_remove(prefix.address())
                            : prog_.cidr_block_remove(prefix);
}

void KernelMaps::for_each_block(const HostVisitor& host, const CidrVisitor& cidr) const
{
    prog_.block_for_each(host);
    for (const auto& [c, b] : prog_.cidr_block_list())
        cidr(c, b);
}

std::vector<std::pair<Cidr, cw_block>> KernelMaps::blocks() const
{
    std::vector<std::pair<Cidr, cw_block>> out;
    for_each_block([&](const cw_addr& k, const cw_block& b) { out.emplace_back(Cidr::host(Address(k)), b); },
                   [&](const Cidr& c, const cw_block& b) { out.emplace_back(c, b); });
    return out;
}

// The exact addresses in batches: an addition the batch did not do (a full
// map, an old kernel) is tried alone; a removal skips the keys that are not
// there. The CIDR trie's entries (the LPM trie has no batch operations) one by
// one.
std::vector<bool> KernelMaps::add_blocks(const std::vector<std::pair<Cidr, cw_block>>& entries)
{
    std::vector<bool> done(entries.size(), false);
    std::vector<std::size_t> hosts;
    std::vector<cw_addr> keys;
    std::vector<cw_block> values;
    for (std::size_t i = 0; i < entries.size(); i++) {
        if (!entries[i].first.is_host())
            continue;
        hosts.push_back(i);
        keys.push_back(entries[i].first.address().to_abi());
        values.push_back(entries[i].second);
    }
    std::size_t n = prog_.block_add_batch(keys, values);
    for (std::size_t k = 0; k < hosts.size(); k++)
        done[hosts[k]] = k < n || prog_.block_add(entries[hosts[k]].first.address(), values[k]);
    for (std::size_t i = 0; i < entries.size(); i++)
        if (!entries[i].first.is_host())
            done[i] = prog_.cidr_block_add(entries[i].first, entries[i].second);
    return done;
}

std::vector<bool> KernelMaps::remove_blocks(const std::vector<Cidr>& prefixes)
{
    std::vector<bool> done(prefixes.size(), false);
    std::vector<std::size_t> hosts;
    std::vector<cw_addr> keys;
    for (std::size_t i = 0; i < prefixes.size(); i++) {
        if (!prefixes[i].is_host())
            continue;
        hosts.push_back(i);
        keys.push_back(prefixes[i].address().to_abi());
    }
    std::vector<bool> removed;
    prog_.block_remove_batch(keys, &removed);
    for (std::size_t k = 0; k < hosts.size(); k++)
        done[hosts[k]] = removed[k];
    for (std::size_t i = 0; i < prefixes.size(); i++)
        if (!prefixes[i].is_host())
            done[i] = prog_.cidr_block_remove(prefixes[i]);
    return done;
}

} // namespace connwatch
