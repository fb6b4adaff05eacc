// SPDX-License-Identifier: GPL-2.0-only
#include "blocks/block_maps.h"

#include <cstring>

namespace connwatch {

void BlockMaps::for_each_block(const HostVisitor& host, const CidrVisitor& cidr) const
{
    for (const auto& [c, b] : blocks()) {
        if (c.is_host())
            host(c.address().to_abi(), b);
        else
            cidr(c, b);
    }
}

uint64_t BlockMaps::host_block_slice(uint64_t cursor, size_t max, const HostVisitor& fn) const
{
    // The cursor is the position in blocks()' order, + 1.
    uint64_t at = 0, next = cursor ? cursor - 1 : 0, taken = 0;
    for (const auto& [c, b] : blocks()) {
        if (!c.is_host())
            continue;
        if (at++ < next)
            continue;
        if (taken == max)
            return at; // at = next + taken + 1: the position after the last one taken, + 1
        fn(c.address().to_abi(), b);
        taken++;
    }
    return 0;
}

std::optional<cw_block> BlockMaps::find_host_block(const cw_addr& key) const
{
    Cidr host = Cidr::host(Address(key));
    for (const auto& [c, b] : blocks())
        if (c == host)
            return b;
    return std::nullopt;
}

std::optional<cw_block> BlockMaps::find_prefix_block(const Cidr& prefix) const
{
    for (const auto& [c, b] : blocks())
        if (c == prefix)
            return b;
    return std::nullopt;
}

} // namespace connwatch
