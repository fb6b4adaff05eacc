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

std::vector<std::pair<Cidr, cw_block>> KernelMaps::blocks() const
{
    std::vector<std::pair<Cidr, cw_block>> out;
    for (const auto& [a, b] : prog_.block_list())
        out.emplace_back(Cidr::host(a), b);
    for (auto& e : prog_.cidr_block_list())
        out.push_back(std::move(e));
    return out;
}

} // namespace connwatch
