// SPDX-License-Identifier: GPL-2.0-only
// BlockMaps over the loaded program's real maps.
#pragma once

#include "blocks/block_maps.h"
#include "kernel/program.h"

namespace connwatch {

class KernelMaps final : public BlockMaps {
public:
    explicit KernelMaps(XdpProgram& prog) : prog_(prog) {}

    bool add_block(const Cidr& prefix, const cw_block& b) override;
    bool remove_block(const Cidr& prefix) override;
    std::vector<std::pair<Cidr, cw_block>> blocks() const override;
    std::vector<bool> add_blocks(const std::vector<std::pair<Cidr, cw_block>>& entries) override;
    std::vector<bool> remove_blocks(const std::vector<Cidr>& prefixes) override;
    uint32_t host_block_capacity() const override { return prog_.block_capacity(); }
    uint32_t cidr_block_capacity() const override { return prog_.cidr_block_capacity(); }
    void reset_scan_state(const Address& source) override { prog_.scan_state_remove(source); }

    void add_allow(const Cidr& prefix) override { prog_.allow_add(prefix); }
    bool remove_allow(const Cidr& prefix) override { return prog_.allow_remove(prefix); }
    std::vector<Cidr> allow_list() const override { return prog_.allow_list(); }
    uint32_t allow_capacity() const override { return prog_.allow_capacity(); }

private:
    XdpProgram& prog_;
};

} // namespace connwatch
