// SPDX-License-Identifier: GPL-2.0-only
// Issue 12, the drop path's cost of IPv6 prefixes (ipv6-prefix; docs/ARCHITECTURE.md,
// "Sources counted per prefix"): the program alone (BPF_PROG_TEST_RUN, REPEAT
// runs of one frame, the kernel's own per-run time) on an established flow's
// ACK, rows side by side in each round, rounds interleaved:
//   v6 exact, /128      a source blocked alone, ipv6-prefix 128: one lookup, drop
//   v6 exact, /64       the same with ipv6-prefix 64: one lookup, drop
//   v6 in /64 block     an address of an automatic /64 block, not its key: the
//                       exact lookup misses, the masked one drops (two lookups)
//   v6 miss, /128       a source not blocked, ipv6-prefix 128: one lookup, pass
//   v6 miss, /64        the same with ipv6-prefix 64: two lookups, pass
//   v4 miss, /32        an IPv4 source not blocked at the default 32: one lookup
// The blocklist holds BLOCKS other exact blocks (default 65,536, the default
// max-blocks) so the hash is as full as in production.
// Root. Usage: prefix_bench [REPEAT] [ROUNDS] [BLOCKS]
#include <bpf/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "config/options.h"
#include "kernel/program.h"
#include "packet.h"

using namespace connwatch;

int main(int argc, char** argv)
{
    if (geteuid() != 0) {
        std::fprintf(stderr, "prefix_bench: loads the XDP program: run it as root\n");
        return 2;
    }
    const uint32_t repeat = argc > 1 ? static_cast<uint32_t>(std::atol(argv[1])) : 1000000;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
    const uint32_t fill = argc > 3 ? static_cast<uint32_t>(std::atol(argv[3])) : 65536;

    LoadSettings ls;
    ls.max_blocks = fill + 1024;
    XdpProgram prog(ls);
    cw_block b{};
    b.origin = CW_ORIGIN_SCAN;
    // Other blocks, as many as a full default blocklist: 2001:db8:ffff::/48 hosts.
    std::vector<cw_addr> keys;
    std::vector<cw_block> values;
    for (uint32_t i = 0; i < fill; i++) {
        Address a = *Address::parse("2001:db8:ffff::");
        cw_addr k = a.to_abi();
        k.b[12] = static_cast<uint8_t>(i >> 24);
        k.b[13] = static_cast<uint8_t>(i >> 16);
        k.b[14] = static_cast<uint8_t>(i >> 8);
        k.b[15] = static_cast<uint8_t>(i);
        keys.push_back(k);
        values.push_back(b);
    }
    if (prog.block_add_batch(keys, values) != keys.size()) {
        std::fprintf(stderr, "prefix_bench: could not fill the blocklist\n");
        return 1;
    }
    // The rows' own blocks: 2001:db8:1::7 alone, 2001:db8:2::/64 as an automatic prefix block.
    prog.block_add(*Address::parse("2001:db8:1::7"), b);
    cw_block pb = b;
    pb.prefix_len = 64;
    prog.block_add(*Address::parse("2001:db8:2::"), pb);

    cw_config base = kernel_config(Options{});
    base.rp_filter = 0;
    struct Row {
        const char* name;
        unsigned v6_prefix;
        test::Packet frame;
        uint32_t want; // XDP action
        std::vector<double> ns;
    };
    std::vector<Row> rows = {
        {"v6 exact, /128", 128, test::tcp6("2001:db8:1::7", 40000, 80, test::kAck), XDP_DROP, {}},
        {"v6 exact, /64", 64, test::tcp6("2001:db8:1::7", 40000, 80, test::kAck), XDP_DROP, {}},
        {"v6 in /64 block", 64, test::tcp6("2001:db8:2::abcd", 40000, 80, test::kAck), XDP_DROP, {}},
        {"v6 miss, /128", 128, test::tcp6("2001:db8:3::9", 40000, 80, test::kAck), XDP_PASS, {}},
        {"v6 miss, /64", 64, test::tcp6("2001:db8:3::9", 40000, 80, test::kAck), XDP_PASS, {}},
        {"v4 miss, /32", 64, test::tcp4("198.51.100.7", 40000, 80, test::kAck), XDP_PASS, {}},
    };
    for (int round = 0; round < rounds; round++)
        for (auto& r : rows) {
            cw_config c = base;
            c.ipv6_prefix = static_cast<uint8_t>(r.v6_prefix);
            c.ipv4_prefix = 32;
            prog.set_config(c);
            auto frame = r.frame.build();
            LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(),
                        .data_size_in = static_cast<uint32_t>(frame.size()), .repeat = static_cast<int>(repeat));
            if (bpf_prog_test_run_opts(prog.prog_fd(), &o) != 0) {
                std::perror("prefix_bench: BPF_PROG_TEST_RUN");
                return 1;
            }
            if (o.retval != r.want) {
                std::fprintf(stderr, "prefix_bench: %s: action %u, expected %u\n", r.name,
                             o.retval, r.want);
                return 1;
            }
            r.ns.push_back(static_cast<double>(o.duration));
        }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    std::printf("# prefix_bench %u %d %u: ns per run (BPF_PROG_TEST_RUN duration, median of %d "
                "rounds; all rounds); %u other exact blocks in block_addr\n",
                repeat, rounds, fill, rounds, fill);
    const double ref_drop = median(rows[0].ns), ref_miss = median(rows[3].ns);
    for (const auto& r : rows) {
        double m = median(r.ns);
        bool drop = r.want == XDP_DROP;
        std::printf("%-18s %6.1f ns  (x%.2f of %s, %+.1f ns)  rounds:", r.name, m,
                    m / (drop ? ref_drop : ref_miss), drop ? "v6 exact /128" : "v6 miss /128",
                    m - (drop ? ref_drop : ref_miss));
        for (double x : r.ns)
            std::printf(" %.1f", x);
        std::printf("\n");
    }
    return 0;
}
