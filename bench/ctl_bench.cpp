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
//   flush     the M blocks removed (BlockTable::flush: slices of the kernel's
//             walk, one delete batch each).
//   resize    M blocks in a pinned blocklist carried into one of another capacity
//             (max-blocks changed at a restart): key by key, as XdpProgram did
//             before (get_next_key + lookup, then an update each), against
//             XdpProgram's start now (bpf_map_lookup_batch / update_batch).
//   cidr      P prefixes added to the CIDR blocklist one after the other
//             (XdpProgram::cidr_block_add), timed per thousand: the cost of an
//             add must not grow with the prefixes already there. And the drop
//             path's cost of the trie: the program alone (BPF_PROG_TEST_RUN,
//             1 M repeats, the kernel's own per-run time) on an established
//             flow's ACK from a source no prefix covers (the pass path: the
//             trie's lookup misses) and from one a prefix covers (dropped by
//             it), with 0, 1, 1,000 and P prefixes in the trie.
// Root (it loads the XDP program). Usage: ctl_bench [--blocks M] [--state N] [--dir D]
#include <bpf/bpf.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "blocks/block_table.h"
#include "blocks/kernel_maps.h"
#include "blocks/state.h"
#include "common.h"
#include "kernel/program.h"
#include "packet.h"
#include "protocol/wire.h"

using namespace connwatch;
using namespace connwatch::bench;

namespace {

long rss_kib()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

Cidr nth(uint32_t i)
{
    return Cidr::host(*Address::parse(nth_address(i)));
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
        std::printf("memory  the table's own estimate with %zu manual blocks: %.1f MiB "
                    "(%zu with a shared record, %zu shared records)\n",
                    table.counts().manual, table.memory_bytes() / 1048576.0,
                    table.shared_blocks(), table.shared_records());
        t0 = Clock::now();
        auto flushed = table.flush();
        std::printf("flush   %zu blocks: %.3f s\n", flushed.total(), secs(t0));
    }

    // ---- resize: a pinned blocklist of M carried into another capacity
    {
        const std::string pins = "/sys/fs/bpf/cw-ctl-bench-" + std::to_string(getpid());
        std::filesystem::remove_all(pins);
        {
            LoadSettings a;
            a.max_blocks = m + 4096;
            a.pin_dir = pins;
            XdpProgram p1(a);
            std::vector<cw_addr> keys;
            std::vector<cw_block> values;
            cw_block b{};
            b.origin = CW_ORIGIN_MANUAL;
            for (uint32_t i = 0; i < m; i++) {
                keys.push_back(nth(i).address().to_abi());
                values.push_back(b);
            }
            for (size_t at = 0; at < keys.size(); at += 65536) {
                size_t end = std::min(keys.size(), at + 65536);
                p1.block_add_batch({keys.begin() + at, keys.begin() + end},
                                   {values.begin() + at, values.begin() + end});
            }
            p1.unpin_runtime();
        }
        // Before: key by key out of the pinned map into a new one, as adopt_pins
        // and pin_new did (a vector pair per entry in between).
        auto t0 = Clock::now();
        size_t carried = 0;
        {
            int old_fd = bpf_obj_get((pins + "/block_addr").c_str());
            LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_NO_PREALLOC);
            int new_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "cw_resize", sizeof(cw_addr),
                                        sizeof(cw_block), m + 8192, &o);
            std::vector<std::tuple<std::string, std::vector<uint8_t>, std::vector<uint8_t>>> carry;
            std::vector<uint8_t> key(sizeof(cw_addr)), next(sizeof(cw_addr)), value(sizeof(cw_block));
            void* prev = nullptr;
            while (bpf_map_get_next_key(old_fd, prev, next.data()) == 0) {
                if (bpf_map_lookup_elem(old_fd, next.data(), value.data()) == 0)
                    carry.emplace_back("block_addr", next, value);
                key = next;
                prev = key.data();
            }
            for (auto& [name, k, v] : carry)
                carried += bpf_map_update_elem(new_fd, k.data(), v.data(), BPF_ANY) == 0;
            close(new_fd);
            close(old_fd);
        }
        double before = secs(t0);
        long rss_before = rss_kib();
        // Now: XdpProgram's own start with another max-blocks.
        t0 = Clock::now();
        std::string said;
        size_t now_carried = 0;
        {
            LoadSettings b;
            b.max_blocks = m + 8192;
            b.pin_dir = pins;
            XdpProgram p2(b);
            for (const auto& w : p2.warnings())
                said += w;
            p2.block_for_each([&](const cw_addr&, const cw_block&) { now_carried++; });
            p2.unpin_runtime();
        }
        double now = secs(t0);
        std::printf("resize  %u blocks carried into a new capacity: key by key %.3f s (%zu), "
                    "batched %.3f s (%zu, the start's whole load included): %.1fx; max RSS "
                    "%ld -> %ld MiB; said: %s\n",
                    m, before, carried, now, now_carried, before / now, rss_before / 1024,
                    rss_kib() / 1024, said.c_str());
        std::filesystem::remove_all(pins);
    }

    // ---- cidr: prefixes added one after the other; the cost per add as it fills
    {
        LoadSettings ls2;
        ls2.max_cidr_blocks = 1u << 20;
        XdpProgram p3(ls2);
        cw_block b{};
        b.origin = CW_ORIGIN_MANUAL;
        const uint32_t total = std::min<uint32_t>(m, 100000);
        // The program alone on one frame, 1 M times: ns a run (the kernel's figure).
        auto run_ns = [&](const char* src, uint32_t* action) {
            auto frame = test::tcp4(src, 40000, 80, test::kAck).build();
            LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(),
                        .data_size_in = static_cast<uint32_t>(frame.size()), .repeat = 1000000);
            if (bpf_prog_test_run_opts(p3.prog_fd(), &o) != 0)
                return -1.0;
            *action = o.retval;
            return static_cast<double>(o.duration);
        };
        std::string lookups;
        auto measure = [&](uint32_t prefixes) {
            uint32_t pass_act = 0, drop_act = 0;
            double pass = run_ns("198.51.100.7", &pass_act);
            double drop = prefixes ? run_ns("100.64.0.9", &drop_act) : 0;
            char buf[160];
            std::snprintf(buf, sizeof(buf), "\n        %6u prefixes: not covered %.0f ns (action %u)",
                          prefixes, pass, pass_act);
            lookups += buf;
            if (prefixes) {
                std::snprintf(buf, sizeof(buf), ", covered %.0f ns (action %u)", drop, drop_act);
                lookups += buf;
            }
        };
        measure(0);
        auto t0 = Clock::now();
        auto lap = t0;
        std::string laps;
        for (uint32_t i = 0; i < total; i++) {
            // /24s from 100.64.0.0 up (a /10 holds 16,384 of them; past it, the next /10s).
            auto c = Cidr(Address::parse(dotted(kBenchNet + (i << 8))).value(), 24);
            if (!p3.cidr_block_add(c, b))
                return 1;
            if (i + 1 == 1 || i + 1 == 1000 || i + 1 == total) {
                auto paused = Clock::now();
                measure(i + 1);
                // The lookups' time is not the adds'.
                auto spent = Clock::now() - paused;
                t0 += spent;
                lap += spent;
            }
            if (i + 1 == 1000 || i + 1 == 10000 || i + 1 == total) {
                char buf[96];
                std::snprintf(buf, sizeof(buf), " %u: %.2f us an add (last stretch);", i + 1,
                              secs(lap) * 1e6 / (i + 1 == 1000 ? 1000 : i + 1 == 10000 ? 9000 : total - 10000));
                laps += buf;
                lap = Clock::now();
            }
        }
        std::printf("cidr    %u prefixes added one by one: %.3f s;%s\n", total, secs(t0),
                    laps.c_str());
        std::printf("cidr    the program alone on an ACK, the trie holding N /24s (XDP_PASS = 2, "
                    "XDP_DROP = 1):%s\n",
                    lookups.c_str());
    }
    std::filesystem::remove_all(dir);
    return 0;
}
