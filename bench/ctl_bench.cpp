// SPDX-License-Identifier: GPL-2.0-only
// Issue 10, the control plane's own costs, side by side in one run
// (bench/README.md, "Control plane: bulk, list, state"):
//   state     N manual blocks added one by one, each saved before the next, as the
//             control handler does: the whole state.json rewritten and fsynced per
//             block (what connwatchd did before the journal) against a journal line
//             per block (written at once, fdatasynced at most once a second).
//   kernel    M exact blocks written into the real (loaded, not attached)
//             blocklist one bpf() call each, against bpf_map_update_batch in
//             batches of 4096 (KernelMaps::add_blocks); the same for removal.
//   bulk      M entries through BlockTable::block_many (the policy per entry, the
//             batch, the records), in requests of 4096 as connwatchctl sends them.
//   list      the M blocks read back a page of 256 at a time and written as the
//             list answer's JSON (BlockTable::list_page + the entries' text).
// Root (it loads the XDP program). Usage: ctl_bench [--blocks M] [--state N] [--dir D]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blocks/block_table.h"
#include "blocks/kernel_maps.h"
#include "blocks/state.h"
#include "kernel/program.h"
#include "protocol/wire.h"

using namespace connwatch;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point t0)
{
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

long rss_kib()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

Cidr nth(uint32_t i)
{
    // 100.64.0.0/10: 4 M addresses, none of this host's.
    uint32_t a = (100u << 24 | 64u << 16) + i;
    return Cidr::host(*Address::parse(std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) +
                                      "." + std::to_string(a >> 8 & 255) + "." +
                                      std::to_string(a & 255)));
}

// BlockMaps in memory, for the state row: what is measured is the disk.
class MemoryMaps final : public BlockMaps {
public:
    bool add_block(const Cidr& p, const cw_block& b) override { return blocks_.emplace(p, b), true; }
    bool remove_block(const Cidr& p) override { return blocks_.erase(p) == 1; }
    std::vector<std::pair<Cidr, cw_block>> blocks() const override
    {
        return {blocks_.begin(), blocks_.end()};
    }
    uint32_t host_block_capacity() const override { return 1u << 24; }
    uint32_t cidr_block_capacity() const override { return 1u << 16; }
    void reset_scan_state(const Address&) override {}
    void add_allow(const Cidr&) override {}
    bool remove_allow(const Cidr&) override { return true; }
    std::vector<Cidr> allow_list() const override { return {}; }
    uint32_t allow_capacity() const override { return 1024; }

private:
    std::map<Cidr, cw_block> blocks_;
};

} // namespace

int main(int argc, char** argv)
{
    uint32_t m = 1000000, n = 1500;
    std::string dir = "/var/tmp/cw-ctl-bench";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--blocks")
            m = static_cast<uint32_t>(std::stoul(argv[i + 1]));
        else if (k == "--state")
            n = static_cast<uint32_t>(std::stoul(argv[i + 1]));
        else if (k == "--dir")
            dir = argv[i + 1];
    }
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::printf("ctl_bench: %u blocks (kernel, bulk, list), %u for the state row; state in %s\n",
                m, n, dir.c_str());

    // ---- state: a rewrite per block against a journal line per block
    {
        State st;
        auto t0 = Clock::now();
        for (uint32_t i = 0; i < n; i++) {
            st.blocks.push_back({nth(i), BlockOrigin::Manual, "one by one", 1795578065, 0});
            save_state(dir + "/old-state.json", st);
        }
        double old_s = secs(t0);
        MemoryMaps maps;
        BlockTable table(maps, dir + "/state.json");
        table.restore();
        table.save_if_dirty();
        t0 = Clock::now();
        for (uint32_t i = 0; i < n; i++) {
            table.block(nth(i), std::nullopt, "one by one", false);
            if (!table.save_if_dirty().error.empty())
                return 1;
        }
        double new_s = secs(t0);
        std::printf("state   %u blocks one by one, each saved: rewrite %.3f s (%.2f ms each), "
                    "journal %.3f s (%.2f ms each): %.1fx\n",
                    n, old_s, old_s * 1e3 / n, new_s, new_s * 1e3 / n, old_s / new_s);
    }

    // ---- kernel: singles against batches, on the real map
    LoadSettings ls;
    ls.max_blocks = m + 4096;
    XdpProgram prog(ls);
    KernelMaps kmaps(prog);
    {
        cw_block b{};
        b.origin = CW_ORIGIN_MANUAL;
        auto t0 = Clock::now();
        for (uint32_t i = 0; i < m; i++)
            prog.block_add(nth(i).address(), b);
        double single_add = secs(t0);
        t0 = Clock::now();
        for (uint32_t i = 0; i < m; i++)
            prog.block_remove(nth(i).address());
        double single_del = secs(t0);
        std::vector<std::pair<Cidr, cw_block>> batch;
        std::vector<Cidr> keys;
        t0 = Clock::now();
        for (uint32_t i = 0; i < m; i += 4096) {
            batch.clear();
            for (uint32_t k = i; k < std::min(m, i + 4096); k++)
                batch.emplace_back(nth(k), b);
            kmaps.add_blocks(batch);
        }
        double batch_add = secs(t0);
        t0 = Clock::now();
        for (uint32_t i = 0; i < m; i += 4096) {
            keys.clear();
            for (uint32_t k = i; k < std::min(m, i + 4096); k++)
                keys.push_back(nth(k));
            kmaps.remove_blocks(keys);
        }
        double batch_del = secs(t0);
        std::printf("kernel  %u adds: one call each %.3f s, batches of 4096 %.3f s: %.1fx\n", m,
                    single_add, batch_add, single_add / batch_add);
        std::printf("kernel  %u removals: one call each %.3f s, batches of 4096 %.3f s: %.1fx\n",
                    m, single_del, batch_del, single_del / batch_del);
    }

    // ---- bulk: BlockTable::block_many on the real map, then the list
    {
        BlockTable table(kmaps, dir + "/bulk-state.json");
        table.restore();
        table.save_if_dirty();
        long rss0 = rss_kib();
        auto t0 = Clock::now();
        size_t added = 0;
        std::vector<BlockTable::BulkItem> items;
        for (uint32_t i = 0; i < m; i += 4096) {
            items.clear();
            for (uint32_t k = i; k < std::min(m, i + 4096); k++)
                items.push_back({nth(k), std::chrono::seconds(86400), "bulk"});
            added += table.block_many(items, false).added.size();
            table.save_if_dirty(); // the journal, as the handler saves after each request
        }
        double bulk = secs(t0);
        std::printf("bulk    %zu of %u added through block_many in requests of 4096, journal "
                    "included: %.3f s (%.0f entries/s); max RSS %ld -> %ld MiB\n",
                    added, m, bulk, added / bulk, rss0 / 1024, rss_kib() / 1024);

        t0 = Clock::now();
        BlockTable::ListCursor after;
        size_t listed = 0, bytes = 0, biggest = 0;
        for (;;) {
            auto page = table.list_page({}, after, 256, 16384);
            std::string text;
            for (const auto& r : page.records) {
                protocol::BlockEntry e{r.prefix, r.origin, r.reason, r.created, r.expires, 0};
                protocol::append_json(text, e); // as the list answer writes it
                text += ',';
            }
            listed += page.records.size();
            bytes += text.size();
            biggest = std::max(biggest, text.size());
            after = page.next;
            if (page.end)
                break;
        }
        double list = secs(t0);
        std::printf("list    %zu blocks in pages of 256: %.3f s, %.0f MB of JSON, the largest "
                    "page %zu KiB\n",
                    listed, list, bytes / 1e6, biggest / 1024);
        t0 = Clock::now();
        table.flush();
        std::printf("flush   %.3f s\n", secs(t0));
    }
    std::filesystem::remove_all(dir);
    return 0;
}
