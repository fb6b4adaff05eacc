// SPDX-License-Identifier: GPL-2.0-only
// Issue 14: a startup pull of a large CrowdSec blocklist applied, side by side in
// one run (bench/README.md, "CrowdSec: a startup pull"):
//   decode    the stream's JSON (N ban decisions, scope Ip, as a community
//             blocklist brings them) read by decode_stream, and the ledger's apply
//   one       the N changes mirrored one by one (BlockTable::mirror: a bpf()
//             call per decision, what connwatchd did before)
//   batched   the same N through BlockTable::mirror_many (the kernel's maps in
//             one batch, as connwatchd now applies a pull)
// Each row on the real (loaded, not attached) blocklist, emptied between them;
// the journal written after each (as the Manager saves after a pull), timed
// apart. Wall clock and this process's CPU time (user + system) for each.
// Root (it loads the XDP program). Usage: crowdsec_bench [--decisions N] [--dir D]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "blocks/block_table.h"
#include "blocks/kernel_maps.h"
#include "common.h"
#include "crowdsec/lapi_protocol.h"
#include "kernel/program.h"

using namespace connwatch;
using namespace connwatch::bench;

namespace {

// This process's CPU time (user + system: the bpf() calls' kernel work counts), in
// seconds: on a machine shared with other builds the wall clock mostly measures
// the wait for a CPU.
double cpu()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
    return s(u.ru_utime) + s(u.ru_stime);
}

} // namespace

int main(int argc, char** argv)
{
    uint32_t n = 100000;
    std::string dir = "/var/tmp/cw-crowdsec-bench";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--decisions")
            n = static_cast<uint32_t>(std::stoul(argv[i + 1]));
        else if (k == "--dir")
            dir = argv[i + 1];
    }
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);

    // The stream as the LAPI writes it.
    std::string json = "{\"new\":[";
    for (uint32_t i = 0; i < n; i++) {
        json += i ? "," : "";
        json += "{\"duration\":\"167h59m58.123s\",\"id\":" + std::to_string(i + 1) +
                ",\"origin\":\"lists\",\"scenario\":\"crowdsecurity/http-probing\","
                "\"scope\":\"Ip\",\"type\":\"ban\",\"value\":\"" +
                nth_address(i) + "\"}";
    }
    json += "],\"deleted\":null}";
    std::printf("crowdsec_bench: a startup pull of %u ban decisions (%.1f MB of JSON)\n", n,
                json.size() / 1e6);

    auto t0 = Clock::now();
    double c0 = cpu();
    auto batch = crowdsec::decode_stream(json);
    double decode = secs(t0), decode_cpu = cpu() - c0;
    t0 = Clock::now();
    c0 = cpu();
    crowdsec::DecisionLedger ledger;
    auto changes = ledger.apply(batch, true, 1000);
    double ledger_s = secs(t0), ledger_cpu = cpu() - c0;
    std::printf("decode  %zu decisions read %.3f s (cpu %.3f s), ledger %.3f s (cpu %.3f s), "
                "%zu changes\n",
                batch.added.size(), decode, decode_cpu, ledger_s, ledger_cpu, changes.size());
    std::vector<BlockTable::MirrorItem> items;
    for (size_t i = 0; i < changes.size(); i++)
        items.push_back({changes[i].prefix, *changes[i].remaining,
                         crowdsec::block_reason(batch.added[i])});

    LoadSettings ls;
    ls.max_blocks = n + 4096;
    XdpProgram prog(ls);
    KernelMaps kmaps(prog);
    double one = 0, bulk = 0, one_cpu = 0, bulk_cpu = 0, one_save = 0, bulk_save = 0;
    size_t one_added = 0, bulk_added = 0;
    {
        BlockTable table(kmaps, dir + "/one.json");
        table.restore();
        table.save_if_dirty();
        t0 = Clock::now();
        c0 = cpu();
        for (const auto& it : items)
            one_added += table.mirror(it.prefix, it.remaining, it.reason).outcome ==
                         BlockTable::Mirror::Outcome::Added;
        one = secs(t0);
        one_cpu = cpu() - c0;
        t0 = Clock::now();
        if (!table.save_if_dirty().error.empty())
            return 1;
        one_save = secs(t0);
        table.flush();
    }
    {
        BlockTable table(kmaps, dir + "/bulk.json");
        table.restore();
        table.save_if_dirty();
        t0 = Clock::now();
        c0 = cpu();
        for (const auto& m : table.mirror_many(items))
            bulk_added += m.outcome == BlockTable::Mirror::Outcome::Added;
        bulk = secs(t0);
        bulk_cpu = cpu() - c0;
        t0 = Clock::now();
        if (!table.save_if_dirty().error.empty())
            return 1;
        bulk_save = secs(t0);
        table.flush();
    }
    std::printf("apply   %u decisions: one by one %.3f s (cpu %.3f s, %zu added), batched %.3f s "
                "(cpu %.3f s, %zu added): %.1fx wall, %.1fx cpu\n",
                n, one, one_cpu, one_added, bulk, bulk_cpu, bulk_added, one / bulk,
                one_cpu / bulk_cpu);
    std::printf("journal the %u lines written after each: %.3f s, %.3f s\n", n, one_save,
                bulk_save);
    std::filesystem::remove_all(dir);
    return one_added == n && bulk_added == n ? 0 : 1;
}
