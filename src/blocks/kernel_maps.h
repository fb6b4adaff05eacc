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
    bool add_prefix_entry(const Cidr& prefix, const cw_block& b) override;
    std::vector<std::pair<Cidr, cw_block>> blocks() const override;
    void for_each_block(const HostVisitor& host, const CidrVisitor& cidr) const override;
    uint64_t host_block_slice(uint64_t cursor, size_t max, const HostVisitor& fn) const override
    {
        return prog_.block_slice(cursor, max, fn);
    }
    std::optional<cw_block> find_host_block(const cw_addr& key) const override;
    std::optional<cw_block> find_prefix_block(const Cidr& prefix) const override;
    bool remove_prefix_entry(const Cidr& prefix) override;
    std::vector<bool> add_blocks(const std::vector<std::pair<Cidr, cw_block>>& entries) override;
    std::vector<bool> remove_blocks(const std::vector<Cidr>& prefixes) override;
    uint32_t host_block_capacity() const override { return prog_.block_capacity(); }
    uint32_t cidr_block_capacity() const override { return prog_.cidr_block_capacity(); }
    void reset_scan_state(const Address& source) override { prog_.scan_state_remove(source); }
    void forgive(const Address& source) override
    {
        if (prog_.offender_remove(source.to_abi()))
            forgiven_++;
    }
    std::optional<cw_offender> find_offender(const cw_addr& key) const override
    {
        return prog_.offender(key);
    }
    // Histories forgiven so far: the Manager saves offenders.json when it moves.
    uint64_t forgiven() const { return forgiven_; }
    std::optional<std::vector<cw_addr>> scan_state_sources() const override
    {
        return prog_.scan_state_sources();
    }
    void reset_scan_states(const std::vector<cw_addr>& sources) override
    {
        prog_.scan_state_remove_batch(sources);
    }

    void add_allow(const Cidr& prefix) override { prog_.allow_add(prefix); }
    bool remove_allow(const Cidr& prefix) override { return prog_.allow_remove(prefix); }
    std::vector<Cidr> allow_list() const override { return prog_.allow_list(); }
    uint32_t allow_capacity() const override { return prog_.allow_capacity(); }

private:
    bool remove_block(const Cidr& prefix, bool retire);
    XdpProgram& prog_;
    uint64_t forgiven_ = 0;
};

} // namespace connwatch
