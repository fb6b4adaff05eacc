// SPDX-License-Identifier: GPL-2.0-only
// The BlockTable tests' fixture: the kernel's maps replaced by FakeMaps, which
// keep the same rules (one key space for exact and CIDR blocks, bounded
// capacities, a refused insert when full), and a table over them.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/error.h"
#include "blocks/block_table.h"
#include "temp_dir.h"

namespace connwatch::test {

inline Cidr P(const char* text)
{
    auto c = Cidr::parse(text);
    EXPECT_TRUE(c) << text;
    return c ? *c : Cidr();
}

class FakeMaps final : public BlockMaps {
public:
    uint32_t host_cap = 4, cidr_cap = 2, allow_cap = 4;
    // The allow insert that fails with EIO (1 = the next one), 0 = none: a
    // kernel refusing for another reason than capacity.
    int fail_allow_after = 0;
    std::map<Cidr, cw_block> hosts, cidrs;
    std::set<Cidr> allows;
    std::vector<Address> scan_resets; // reset_scan_state() calls, in order
    std::vector<Address> forgiven;    // forgive() calls, in order
    // The kernel's history of repeat offences (find_offender), by source.
    std::map<Cidr, cw_offender> offenders;
    // Called after each remove_block that removed something: the kernel
    // acting meanwhile (taking the room, ...).
    std::function<void()> after_remove;
    mutable int walks = 0;            // blocks() calls: whole walks of the lists

    bool add_block(const Cidr& p, const cw_block& b) override
    {
        auto& m = p.is_host() ? hosts : cidrs;
        if (!m.count(p) && m.size() >= (p.is_host() ? host_cap : cidr_cap))
            return false;
        m[p] = b;
        return true;
    }
    bool remove_block(const Cidr& p) override
    {
        bool was = (p.is_host() ? hosts : cidrs).erase(p) == 1;
        if (was && after_remove)
            after_remove();
        return was;
    }
    std::vector<std::pair<Cidr, cw_block>> blocks() const override
    {
        walks++;
        std::vector<std::pair<Cidr, cw_block>> out(hosts.begin(), hosts.end());
        out.insert(out.end(), cidrs.begin(), cidrs.end());
        return out;
    }
    std::optional<cw_block> find_host_block(const cw_addr& k) const override
    {
        auto it = hosts.find(Cidr::host(Address(k)));
        return it == hosts.end() ? std::nullopt : std::optional<cw_block>(it->second);
    }
    uint32_t host_block_capacity() const override { return host_cap; }
    uint32_t cidr_block_capacity() const override { return cidr_cap; }
    void reset_scan_state(const Address& a) override { scan_resets.push_back(a); }
    void forgive(const Address& a) override { forgiven.push_back(a); }
    std::optional<cw_offender> find_offender(const cw_addr& k) const override
    {
        auto it = offenders.find(Cidr::host(Address(k)));
        return it == offenders.end() ? std::nullopt : std::optional<cw_offender>(it->second);
    }
    void add_allow(const Cidr& p) override
    {
        if (fail_allow_after > 0 && --fail_allow_after == 0)
            throw Error("Failed to add " + p.str() + " to the allowlist", errno_code(EIO));
        if (!allows.count(p) && allows.size() >= allow_cap)
            throw Error("Failed to add " + p.str() + " to the allowlist", errno_code(ENOSPC));
        allows.insert(p);
    }
    bool remove_allow(const Cidr& p) override { return allows.erase(p) == 1; }
    std::vector<Cidr> allow_list() const override { return {allows.begin(), allows.end()}; }
    uint32_t allow_capacity() const override { return allow_cap; }
};

inline cw_block kernel_block(BlockOrigin origin, uint64_t expires_ns)
{
    cw_block b{};
    b.created_ns = monotonic_now_ns();
    b.expires_ns = expires_ns;
    b.origin = static_cast<uint8_t>(origin);
    return b;
}

// Every block as connwatchctl list shows it: the list's pages to the end.
inline std::vector<BlockRecord> every_block(const BlockTable& table)
{
    std::vector<BlockRecord> out;
    BlockTable::ListCursor at;
    for (int pages = 0; pages < 100000; pages++) {
        auto page = table.list_page({}, at, 256, 16384);
        out.insert(out.end(), page.records.begin(), page.records.end());
        at = page.next;
        if (page.end)
            break;
    }
    return out;
}

class BlockTableTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        ASSERT_FALSE(tmp_.path.empty());
        dir_ = tmp_.path;
        table_ = std::make_unique<BlockTable>(maps_, state());
    }
    std::string state() const { return tmp_ / "state.json"; }

    // A block that must be made; fails the test with the refusal otherwise.
    BlockRecord must_block(const char* prefix, std::optional<std::chrono::seconds> d = {},
                           std::string reason = "", bool force = false)
    {
        auto r = table_->block(P(prefix), d, std::move(reason), force);
        if (auto* why = std::get_if<std::string>(&r)) {
            ADD_FAILURE() << prefix << " refused: " << *why;
            return {};
        }
        return std::get<BlockRecord>(r);
    }
    std::string refusal(const char* prefix, bool force = false)
    {
        auto r = table_->block(P(prefix), std::nullopt, "", force);
        if (auto* why = std::get_if<std::string>(&r))
            return *why;
        ADD_FAILURE() << prefix << " was blocked";
        return "";
    }
    std::vector<std::string> listed() const
    {
        std::vector<std::string> out;
        for (const auto& r : every_block(*table_))
            out.push_back(r.prefix.str());
        return out;
    }

    test::TempDir tmp_;
    std::string dir_;
    FakeMaps maps_;
    std::unique_ptr<BlockTable> table_;
};

} // namespace connwatch::test
