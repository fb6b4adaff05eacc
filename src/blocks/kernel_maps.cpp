// SPDX-License-Identifier: GPL-2.0-only
#include "blocks/kernel_maps.h"

namespace connwatch {

bool KernelMaps::add_block(const Cidr& prefix, const cw_block& b)
{
    return prefix.is_host() ? prog_.block_add(prefix.address(), b) : prog_.cidr_block_add(prefix, b);
}

// An automatic prefix block: the masked address's entry in the exact hash,
// when it says it is one of this length (the same key may be the exact block
// of the prefix's first address).
static bool is_prefix_entry(const std::optional<cw_block>& b, const Cidr& prefix)
{
    return b && b->prefix_len && b->prefix_len == prefix.lpm_length();
}

bool KernelMaps::remove_block(const Cidr& prefix)
{
    return remove_block(prefix, true);
}

// retire false: the trie's removal leaves the verdict cache to the caller
// (XdpProgram::cidr_block_remove), who retires it once after many.
bool KernelMaps::remove_block(const Cidr& prefix, bool retire)
{
    if (prefix.is_host()) {
        auto b = prog_.block_get(prefix.address());
        return !(b && b->prefix_len) && prog_.block_remove(prefix.address());
    }
    // Both, should an operator's prefix block and the kernel's automatic one
    // of the same prefix exist: unblocking the prefix means unblocking it.
    bool trie = prog_.cidr_block_remove(prefix, retire);
    bool hash = is_prefix_entry(prog_.block_get(prefix.address()), prefix) &&
                prog_.block_remove(prefix.address());
    return trie || hash;
}

bool KernelMaps::add_prefix_entry(const Cidr& prefix, const cw_block& b)
{
    if (prefix.is_host())
        return add_block(prefix, b);
    cw_block entry = b;
    entry.prefix_len = static_cast<uint8_t>(prefix.lpm_length());
    return prog_.block_add(prefix.address(), entry);
}

bool KernelMaps::remove_prefix_entry(const Cidr& prefix)
{
    return is_prefix_entry(prog_.block_get(prefix.address()), prefix) &&
           prog_.block_remove(prefix.address());
}

std::optional<cw_block> KernelMaps::find_host_block(const cw_addr& key) const
{
    auto b = prog_.block_get(Address(key));
    if (b && b->prefix_len)
        return std::nullopt; // an automatic prefix block, not this address's
    return b;
}

std::optional<cw_block> KernelMaps::find_prefix_block(const Cidr& prefix) const
{
    if (prefix.is_host())
        return find_host_block(prefix.address().to_abi());
    auto b = prog_.block_get(prefix.address());
    if (is_prefix_entry(b, prefix))
        return b;
    for (const auto& [c, v] : prog_.cidr_block_list())
        if (c == prefix)
            return v;
    return std::nullopt;
}

void KernelMaps::for_each_block(const HostVisitor& host, const CidrVisitor& cidr) const
{
    prog_.block_for_each([&](const cw_addr& k, const cw_block& b) {
        if (b.prefix_len)
            cidr(prefix_of(Address(k), b.prefix_len), b);
        else
            host(k, b);
    });
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
    // The trie one by one, the verdict cache retired once after them all.
    bool any = false;
    for (std::size_t i = 0; i < entries.size(); i++)
        if (!entries[i].first.is_host()) {
            done[i] = prog_.cidr_block_add(entries[i].first, entries[i].second, false);
            any = any || done[i];
        }
    if (any)
        prog_.retire_verdicts();
    return done;
}

std::vector<bool> KernelMaps::remove_blocks(const std::vector<Cidr>& prefixes)
{
    std::vector<bool> done(prefixes.size(), false);
    std::vector<std::size_t> hosts;
    std::vector<cw_addr> keys;
    // An address that is the masked key of an automatic prefix block
    // (2001:db8:1:2:: for 2001:db8:1:2::/64) is no block of that address:
    // removing the address must not lift the prefix (remove_block() says the
    // same one at a time). Only addresses equal to their own prefix at the
    // configured length can be such a key: those few are looked up first.
    const cw_config cfg = prog_.config();
    auto key_length = [&](const Address& a) -> unsigned {
        if (a.is_v4())
            return cfg.ipv4_prefix && cfg.ipv4_prefix < 32 ? 96u + cfg.ipv4_prefix : 0u;
        return cfg.ipv6_prefix && cfg.ipv6_prefix < 128 ? cfg.ipv6_prefix : 0u;
    };
    for (std::size_t i = 0; i < prefixes.size(); i++) {
        if (!prefixes[i].is_host())
            continue;
        const Address& a = prefixes[i].address();
        if (unsigned len = key_length(a); len && prefix_of(a, len).address() == a) {
            auto b = prog_.block_get(a);
            if (b && b->prefix_len)
                continue; // not removed: done[i] stays false
        }
        hosts.push_back(i);
        keys.push_back(prefixes[i].address().to_abi());
    }
    std::vector<bool> removed;
    prog_.block_remove_batch(keys, &removed);
    for (std::size_t k = 0; k < hosts.size(); k++)
        done[hosts[k]] = removed[k];
    bool any = false;
    for (std::size_t i = 0; i < prefixes.size(); i++)
        if (!prefixes[i].is_host()) {
            done[i] = remove_block(prefixes[i], false);
            any = any || done[i];
        }
    if (any)
        prog_.retire_verdicts(); // once for all the trie's removals
    return done;
}

} // namespace connwatch
