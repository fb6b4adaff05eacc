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

} // namespace connwatch
